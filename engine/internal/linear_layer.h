// LinearLayer: y = x W^T for one weight matrix, choosing the fastest path:
// on CPU fp32 without autograd the engine's own kernels (AVX-512 GEMV for one
// row, oneDNN for more); otherwise torch::matmul (CUDA, bf16/fp16, training).
#ifndef RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_
#define RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_

#include <ATen/ATen.h>

#include <memory>
#include <vector>

namespace rwkv::engine::internal {

class PackedLinear;

class LinearLayer {
 public:
  LinearLayer() = default;
  // weight: [N, K] on the model's device and dtype. `fast_cpu` enables the
  // packed fp32 CPU kernels (requires a CPU fp32 weight).
  LinearLayer(at::Tensor weight, bool fast_cpu);
  ~LinearLayer();
  LinearLayer(LinearLayer&&) noexcept;
  LinearLayer& operator=(LinearLayer&&) noexcept;

  // x: [..., K] -> [..., N].
  at::Tensor Forward(const at::Tensor& x) const;
  // Bytes held for this layer's weight (packed or plain).
  int64_t weight_bytes() const;

 private:
  at::Tensor weight_;  // undefined once packed
  int64_t n_ = 0, k_ = 0;
  std::shared_ptr<const PackedLinear> packed_;
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_
