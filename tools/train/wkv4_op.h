// Wkv4: the RWKV-4 WKV recurrence as a differentiable LibTorch op for
// training (CPU). Forward and backward are plain C++ loops over [B, T, C],
// computed in double whatever the input dtype (the role of the official
// wkv_forward / wkv_backward CUDA kernels), with gradients for the decay w,
// the bonus u, k, v and the initial numerator/denominator a0, b0.
//
// In the unscaled form (a = aa * exp(pp), b = bb * exp(pp) in the engine's
// scaled representation):
//   y_t = (a_{t-1} + e^{u+k_t} v_t) / (b_{t-1} + e^{u+k_t})
//   a_t = e^w a_{t-1} + e^{k_t} v_t,  b_t = e^w b_{t-1} + e^{k_t}
// where w = -exp(time_decay) is passed already transformed. Exponents are
// evaluated in double (no overflow below |k| ~ 700), which is why the op
// needs no running-maximum rescaling.
#ifndef RWKV_TOOLS_TRAIN_WKV4_OP_H_
#define RWKV_TOOLS_TRAIN_WKV4_OP_H_

#include <torch/torch.h>

namespace rwkv::train {

struct Wkv4Result {
  torch::Tensor y;        // [B, T, C], dtype of k
  torch::Tensor a_final;  // [B, C] float64, no gradient
  torch::Tensor b_final;  // [B, C] float64, no gradient
};

// w, u: [C]; k, v: [B, T, C]; a0, b0: [B, C] (b0 > 0 or all zero).
// Differentiable in w, u, k, v, a0, b0.
Wkv4Result Wkv4(const torch::Tensor& w, const torch::Tensor& u,
                const torch::Tensor& k, const torch::Tensor& v,
                const torch::Tensor& a0, const torch::Tensor& b0);

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_WKV4_OP_H_
