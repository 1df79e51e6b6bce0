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
  // Weight dtype. On CPU: "fp32", "bf16" or "int8" for the large matrices
  // (R, K, V, O, FFN, head; int8 is weight-only with one scale per 128
  // inputs of each output row); embeddings, norms, time-mix/decay
  // parameters, RWKV-7's LoRA factors, activations and the recurrent state
  // stay fp32. On CUDA: "fp32", "bf16" or "fp16" for every weight and the
  // activations (the state stays fp32). "auto" (default): "int8" for a
  // checkpoint whose matrices are stored int8 (`rwkv-cli quantize`) on CPU,
  // else "fp32".
  std::string dtype = "auto";
  // Compute threads (LibTorch intra-op, OpenMP). 0 = all cores. Process-wide:
  // the last engine created sets it.
  int num_threads = 0;
  // If > 0, clamp RWKV-4 time_decay (before -exp) to at most this value at
  // load. A guard against accumulators underflowing with extreme decays.
  float time_decay_clip = 0.0f;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_ENGINE_OPTIONS_H_
