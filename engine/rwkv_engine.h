// RwkvEngine: the Engine for RWKV-4 and RWKV-7 (x070) checkpoints (.pth
// written by torch.save, or .safetensors; fp32/fp16/bf16 weights, or int8
// matrices from `rwkv-cli quantize`); the architecture comes from the tensor
// names. On CPU it runs the fused forward pass (internal/rwkv_cpu_forward.h)
// with the large matrices in fp32, bf16 or int8 (EngineOptions::dtype);
// on CUDA, LibTorch ops. Create() loads and validates; every exception is
// caught inside and returned as a Status. Not thread-safe (see Engine).
#ifndef RWKV_ENGINE_RWKV_ENGINE_H_
#define RWKV_ENGINE_RWKV_ENGINE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/engine_options.h"

namespace rwkv::engine {

namespace internal {
class RwkvModel;
}  // namespace internal

// Shape of a random-weight model built in memory (tests, benchmarks).
// Scales are realistic (LayerNorm ~1, decays spread over (0.07, 0.92) for
// RWKV-4 and (0.55, 0.99) for RWKV-7, weights ~N(0, 1/sqrt(fan_in))), so every
// layer carries signal. RWKV-7 LoRA ranks follow the reference trainer's
// formulas (0.1B shape: w/a 64, v 32, g 128).
struct RandomModelSpec {
  Architecture arch = Architecture::kRwkv4;
  int n_layer = 2;
  int n_embd = 64;
  int vocab_size = 256;
  int ffn_dim = 0;     // 0 = 4 * n_embd
  int head_size = 64;  // RWKV-7: n_head = n_embd / head_size
  uint64_t seed = 0;
};

class RwkvEngine final : public Engine {
 public:
  // Loads options.model_path. Errors name the file and the problem.
  static absl::StatusOr<std::unique_ptr<RwkvEngine>> Create(
      const EngineOptions& options);
  // Builds a random-weight model; options.model_path is ignored.
  static absl::StatusOr<std::unique_ptr<RwkvEngine>> CreateRandom(
      const RandomModelSpec& spec, const EngineOptions& options);

  ~RwkvEngine() override;

  const Model& model() const override { return *model_info_; }
  std::shared_ptr<const Model> shared_model() const override {
    return model_info_;
  }
  absl::StatusOr<Logits> Forward(absl::Span<const int32_t> tokens,
                                 State& state) override;
  absl::StatusOr<Logits> ForwardBatch(absl::Span<const int32_t> tokens,
                                      absl::Span<State* const> states) override;
  // Fused (one pass over the weights) on the CPU while the segments total
  // at most 128 tokens; separate calls otherwise (engine.h).
  absl::StatusOr<Logits> ForwardSegments(
      absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
      absl::Span<State* const> states) override;

  // Compute threads in use, device and dtype names, and the matmul path
  // ("fused-cpu int8 avx512-gemv", "torch", ...) for logs and benchmarks.
  int num_threads() const { return num_threads_; }
  const std::string& device() const { return device_; }
  const std::string& dtype() const { return dtype_; }
  std::string matmul_backend() const;
  // Bytes of the weights as held in memory.
  int64_t weight_bytes() const;

 private:
  RwkvEngine(std::unique_ptr<internal::RwkvModel> model, int num_threads,
             std::string device, std::string dtype);

  absl::Status CheckTokens(absl::Span<const int32_t> tokens) const;
  absl::Status CheckState(const State& state) const;
  // The fused CPU path for checked tokens [B, T] and states, or (lengths
  // non-empty) checked segments laid end to end.
  absl::StatusOr<Logits> ForwardFused(
      absl::Span<const int32_t> tokens, absl::Span<State* const> states,
      int64_t T, absl::Span<const int32_t> lengths = {});

  std::unique_ptr<internal::RwkvModel> model_;
  // Config and fresh state, shared with other threads (immutable).
  std::shared_ptr<const Model> model_info_;
  const ModelConfig& config_;
  int num_threads_;
  std::string device_;
  std::string dtype_;
  // Shape of each state component of one sequence (schema order), and its
  // floats per layer.
  std::vector<std::vector<int64_t>> state_shapes_;
  std::vector<int64_t> state_strides_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_RWKV_ENGINE_H_
