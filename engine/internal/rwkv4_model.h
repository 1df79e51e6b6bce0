// Rwkv4Model: the RWKV-4 math over [B, T, C] activations. One implementation
// serves the three entry points: single step (B=1, T=1), sequence mode
// (B=1, T=n: every matmul over all T tokens, only WKV steps through time) and
// batched step (B=n, T=1: one GEMM per weight for the whole batch).
// Autograd-friendly when called with grad enabled. CPU inference
// (fast_cpu) runs the fused forward of rwkv_cpu_forward.h with fp32, bf16 or
// int8 matrices. Thread-compatible.
#ifndef RWKV_ENGINE_INTERNAL_RWKV4_MODEL_H_
#define RWKV_ENGINE_INTERNAL_RWKV4_MODEL_H_

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "engine/internal/linear_layer.h"
#include "engine/internal/rwkv4_weights.h"
#include "engine/internal/rwkv_model.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

// Index of each component in a state vector (schema order).
enum Rwkv4StateIndex { kAttAa = 0, kAttAb, kAttPp, kAttXPrev, kFfnXPrev };
const std::vector<std::string>& Rwkv4StateNames();

class Rwkv4Model final : public RwkvModel {
 public:
  // fast_cpu: use the fused CPU forward with the matrices packed in
  // `format` (weights must be CPU fp32; the checkpoint's int8 matrices, if
  // any, are packed bit-exact for kInt8); the matrices are then held only in
  // packed form, and autograd through the model is unavailable.
  Rwkv4Model(Rwkv4Weights weights, bool fast_cpu,
             WeightFormat format = WeightFormat::kFloat32);

  const ModelConfig& config() const override { return w_.config; }
  const Rwkv4Weights& weights() const { return w_; }
  at::Device device() const override { return w_.emb.device(); }
  at::ScalarType dtype() const override { return w_.emb.scalar_type(); }
  // Bytes of all weights as held (packed matrices included).
  int64_t WeightBytes() const override;
  bool fast_cpu() const override { return fast_cpu_; }
  WeightFormat weight_format() const override { return format_; }
  const std::vector<std::string>& StateNames() const override {
    return Rwkv4StateNames();
  }

  // Fresh state for `batch` sequences: 5 tensors [L, batch, C] fp32
  // (zeros; att_pp = -1e30).
  std::vector<at::Tensor> NewState(int64_t batch) const override;

  // tokens: [B, T] int64 (CPU or device). state: 5 tensors [L, B, C] fp32,
  // updated in place. Returns fp32 logits [B, V] after each row's last
  // token.
  at::Tensor Forward(const at::Tensor& tokens,
                     std::vector<at::Tensor>& state) const override;
  void ForwardCpu(const int32_t* tokens, int64_t B, int64_t T,
                  const CpuStateRows& state, float* logits) const override;
  void ForwardCpuSegments(const int32_t* tokens, const int32_t* lengths,
                          int64_t n, const CpuStateRows& state,
                          float* logits) const override;
  // Fast CPU path: each row's components updated where they lie.
  at::Tensor ForwardRows(
      const at::Tensor& tokens,
      const std::vector<std::vector<at::Tensor>*>& rows) const override;

 private:
  struct LayerLinears {
    LinearLayer att_key, att_value, att_receptance, att_output;
    LinearLayer ffn_key, ffn_receptance, ffn_value;
  };

  // x: [B, T, C]; returns wkv [B, T, C] fp32 and updates aa/bb/pp [B, C].
  at::Tensor Wkv(int layer, const at::Tensor& k, const at::Tensor& v,
                 at::Tensor& aa, at::Tensor& bb, at::Tensor& pp) const;

  Rwkv4Weights w_;
  bool fast_cpu_;
  WeightFormat format_;
  std::vector<LayerLinears> linears_;
  LinearLayer head_;
  Rwkv4CpuWeights cpu_;  // pointers into w_ and linears_ (fast_cpu)
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV4_MODEL_H_
