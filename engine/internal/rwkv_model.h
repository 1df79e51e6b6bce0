// RwkvModel: the small interface RwkvEngine drives, one implementation per
// RWKV generation (Rwkv4Model, Rwkv7Model). A model owns its weights, knows
// its state schema (component names and fresh values) and runs the math over
// [B, T] tokens; RwkvEngine adds validation, State bookkeeping and Status.
// Thread-compatible: Forward is const and touches only the state it is given.
#ifndef RWKV_ENGINE_INTERNAL_RWKV_MODEL_H_
#define RWKV_ENGINE_INTERNAL_RWKV_MODEL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/internal/cpu_linear.h"
#include "engine/internal/rwkv_cpu_forward.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

class RwkvModel {
 public:
  virtual ~RwkvModel() = default;

  virtual const ModelConfig& config() const = 0;
  virtual at::Device device() const = 0;
  // Compute dtype of the activations (the weights' dtype).
  virtual at::ScalarType dtype() const = 0;
  // Bytes of all weights as held (packed matrices included).
  virtual int64_t WeightBytes() const = 0;
  // True when the packed CPU kernels and the fused forward serve the model
  // (CPU inference: fp32, bf16 or int8 matrices, fp32 everything else).
  virtual bool fast_cpu() const = 0;
  // Format of the packed matrices (fast_cpu() only).
  virtual WeightFormat weight_format() const = 0;

  // State component names in schema order (state_schema.h).
  virtual const std::vector<std::string>& StateNames() const = 0;
  // Fresh state for `batch` sequences: one fp32 tensor per component, shaped
  // [n_layer, batch, ...] on the model's device.
  virtual std::vector<at::Tensor> NewState(int64_t batch) const = 0;
  // tokens: [B, T] int64. state: as NewState(B) returns, updated in place
  // (functionally replaced when autograd is recording). Returns fp32 logits
  // [B, V] after each row's last token.
  virtual at::Tensor Forward(const at::Tensor& tokens,
                             std::vector<at::Tensor>& state) const = 0;

  // The fused CPU forward (fast_cpu() only; no autograd): tokens [B, T]
  // row-major, each in [0, vocab); row b's state components where `state`
  // says (updated in place); logits [B, V] after each row's last token
  // (nullptr: not computed). No ATen op, no allocation once the thread's
  // scratch has grown.
  virtual void ForwardCpu(const int32_t* tokens, int64_t B, int64_t T,
                          const CpuStateRows& state, float* logits) const = 0;
  // The fused CPU forward of segments (fast_cpu() only): n sequences of
  // lengths[j] tokens laid end to end in `tokens`, sequence j into state row
  // j; logits [n, V] after each one's last token. REQUIRES: the lengths sum
  // to at most kCpuSegmentsMaxRows (rwkv_cpu_forward.h).
  virtual void ForwardCpuSegments(const int32_t* tokens,
                                  const int32_t* lengths, int64_t n,
                                  const CpuStateRows& state,
                                  float* logits) const = 0;

  // Batched step over B separately held states (no autograd): tokens [B, T]
  // int64; rows[b] is sequence b's state, one tensor per component shaped
  // [n_layer, ...] as NewState(1) with the batch dimension squeezed, updated
  // in place. Returns fp32 logits [B, V], the same as Forward on the stacked
  // states. This default stacks the rows, runs Forward and copies them back;
  // a model may override it to update the large components where they lie.
  virtual at::Tensor ForwardRows(
      const at::Tensor& tokens,
      const std::vector<std::vector<at::Tensor>*>& rows) const {
    CheckRows(tokens, rows);
    const size_t B = rows.size();
    std::vector<at::Tensor> state;
    std::vector<at::Tensor> parts(B);
    for (size_t j = 0; j < rows.front()->size(); ++j) {
      for (size_t b = 0; b < B; ++b) parts[b] = (*rows[b])[j];
      state.push_back(at::stack(parts, 1));
    }
    at::Tensor logits = Forward(tokens, state);
    for (size_t b = 0; b < B; ++b) {
      for (size_t j = 0; j < state.size(); ++j) {
        (*rows[b])[j].copy_(state[j].select(1, static_cast<int64_t>(b)));
      }
    }
    return logits;
  }

 protected:
  // Forward through ForwardCpu: tokens [B, T], state tensors [L, B, ...]
  // fp32 CPU (made contiguous if needed, and copied back).
  at::Tensor ForwardStackedFused(const at::Tensor& tokens,
                                 std::vector<at::Tensor>& state) const;
  // ForwardRows through ForwardCpu: each row's components [L, ...] fp32 CPU
  // (a non-contiguous one is replaced by a contiguous copy first).
  at::Tensor ForwardRowsFused(
      const at::Tensor& tokens,
      const std::vector<std::vector<at::Tensor>*>& rows) const;

  // ForwardRows' precondition: one non-empty row per token row.
  static void CheckRows(const at::Tensor& tokens,
                        const std::vector<std::vector<at::Tensor>*>& rows) {
    const size_t B = rows.size();
    TORCH_CHECK(
        B > 0 && tokens.dim() == 2 && tokens.size(0) == static_cast<int64_t>(B),
        "ForwardRows: ", B, " state rows for tokens of shape ", tokens.sizes());
    for (size_t b = 0; b < B; ++b) {
      TORCH_CHECK(rows[b] != nullptr && !rows[b]->empty(), "ForwardRows: row ",
                  b, " has no state tensors");
    }
  }
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV_MODEL_H_
