// EngineOptions: how to load and run a model. Every field has a documented
// default so `EngineOptions{.model_path = p}` is a complete configuration.
#ifndef RWKV_ENGINE_ENGINE_OPTIONS_H_
#define RWKV_ENGINE_ENGINE_OPTIONS_H_

#include <string>

namespace rwkv::engine {

struct EngineOptions {
  // A .pth (torch.save) or .safetensors RWKV checkpoint.
  std::string model_path;
  // "cpu" (default) or "cuda" / "cuda:N" (needs a CUDA build of LibTorch).
  std::string device = "cpu";
  // Weight and activation dtype: "fp32" (default), "bf16", or "fp16" (CUDA
  // only: LibTorch's CPU kernels have no fp16 matmul). The recurrent state
  // is always kept in fp32, as the reference implementation does.
  std::string dtype = "fp32";
  // Compute threads (LibTorch intra-op, OpenMP). 0 = all cores. Process-wide:
  // the last engine created sets it.
  int num_threads = 0;
  // If > 0, clamp RWKV-4 time_decay (before -exp) to at most this value at
  // load. A guard against accumulators underflowing with extreme decays.
  float time_decay_clip = 0.0f;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_ENGINE_OPTIONS_H_
