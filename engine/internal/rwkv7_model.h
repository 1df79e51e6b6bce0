// Rwkv7Model: the RWKV-7 ("Goose", x070) math over [B, T, C] activations,
// following ChatRWKV's rwkv/model.py: token shift into six mixes, dynamic
// decay w = exp(-e^-0.5 * sigmoid(w0 + tanh(x w1) w2)), in-context learning
// rate a, value residual from layer 0 (v_first), the generalized delta rule
// on the per-head [N x N] state (fp32 whatever the weight dtype), group norm
// ln_x (eps 64e-5), the r*k*r_k bonus and squared-ReLU channel mixing. One
// implementation serves single step (B=1, T=1), sequence mode (B=1, T=n:
// matmuls over all tokens, only the state update steps through time) and the
// batched step (B=n, T=1). CPU inference (fast_cpu) runs the fused forward
// of rwkv_cpu_forward.h. Thread-compatible.
#ifndef RWKV_ENGINE_INTERNAL_RWKV7_MODEL_H_
#define RWKV_ENGINE_INTERNAL_RWKV7_MODEL_H_

#include <ATen/ATen.h>

#include <string>
#include <vector>

#include "engine/internal/linear_layer.h"
#include "engine/internal/rwkv7_weights.h"
#include "engine/internal/rwkv_model.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

// Index of each component in a state vector (schema order).
enum Rwkv7StateIndex { kV7AttXPrev = 0, kV7AttKv, kV7FfnXPrev };
const std::vector<std::string>& Rwkv7StateNames();

// Parameter count and fp32 state bytes of `w`, into w.config.
void FinishRwkv7Config(Rwkv7Weights& w);

class Rwkv7Model final : public RwkvModel {
 public:
  // fast_cpu: use the fused CPU forward (CPU fp32 weights) with the large
  // matrices (R, K, V, O, FFN, head) packed in `format`. The LoRA factors
  // stay fp32 in every format: they are 3-4% of the weights and produce the
  // decay, in-context learning rate and value gate that drive the state.
  Rwkv7Model(Rwkv7Weights weights, bool fast_cpu,
             WeightFormat format = WeightFormat::kFloat32);

  const ModelConfig& config() const override { return w_.config; }
  at::Device device() const override { return w_.emb.device(); }
  at::ScalarType dtype() const override { return w_.emb.scalar_type(); }
  int64_t WeightBytes() const override;
  bool fast_cpu() const override { return fast_cpu_; }
  WeightFormat weight_format() const override { return format_; }
  const std::vector<std::string>& StateNames() const override {
    return Rwkv7StateNames();
  }

  // att_x_prev [L, B, C], att_kv [L, B, H, N, N], ffn_x_prev [L, B, C]; zeros.
  std::vector<at::Tensor> NewState(int64_t batch) const override;
  at::Tensor Forward(const at::Tensor& tokens,
                     std::vector<at::Tensor>& state) const override;
  void ForwardCpu(const int32_t* tokens, int64_t B, int64_t T,
                  const CpuStateRows& state, float* logits) const override;
  void ForwardCpuSegments(const int32_t* tokens, const int32_t* lengths,
                          int64_t n, const CpuStateRows& state,
                          float* logits) const override;
  // Fast CPU path: each row's components (att_kv: [L, H, N, N], 94% of the
  // state) updated where they lie instead of being stacked and copied back.
  at::Tensor ForwardRows(
      const at::Tensor& tokens,
      const std::vector<std::vector<at::Tensor>*>& rows) const override;

 private:
  struct LayerLinears {
    LinearLayer receptance, key, value, output;
    LinearLayer w1, w2, a1, a2, v1, v2, g1, g2;
    LinearLayer ffn_key, ffn_value;
  };

  // The ATen implementation (CUDA, autograd).
  at::Tensor Run(const at::Tensor& tokens,
                 std::vector<at::Tensor>& state) const;

  // r, w, k, v, kk, a: [B, T, C]; kv: [B, H, N, N] fp32, updated (replaced
  // when `functional`). Returns y [B, T, C] fp32.
  at::Tensor Wkv(const at::Tensor& r, const at::Tensor& w, const at::Tensor& k,
                 const at::Tensor& v, const at::Tensor& kk, const at::Tensor& a,
                 at::Tensor& kv, bool functional) const;

  Rwkv7Weights w_;
  bool fast_cpu_;
  WeightFormat format_;
  std::vector<LayerLinears> linears_;
  LinearLayer head_;
  Rwkv7CpuWeights cpu_;  // pointers into w_ and linears_ (fast_cpu)
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV7_MODEL_H_
