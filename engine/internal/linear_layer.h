// LinearLayer: y = x W^T for one weight matrix, choosing the fastest path:
// on CPU without autograd the engine's own packed kernels (fp32, bf16 or
// int8 weights; AVX-512 GEMV/GEMM, oneDNN for large fp32 M); otherwise
// torch::matmul (CUDA, training).
#ifndef RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_
#define RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_

#include <ATen/ATen.h>

#include <memory>
#include <vector>

#include "engine/internal/cpu_linear.h"

namespace rwkv::engine::internal {

// A matrix a quantized checkpoint stores as int8 (QuantizeInt8's layout):
// q [N, K] int8 and scales [N, Int8Groups(K)] fp32, both CPU contiguous.
struct Int8Source {
  at::Tensor q;
  at::Tensor scales;
};

class LinearLayer {
 public:
  LinearLayer() = default;
  // weight: [N, K] on the model's device and dtype. `fast_cpu` packs it for
  // the CPU kernels (requires a CPU fp32 weight) in `format`; with an int8
  // format and `int8` given, its q and scales are packed as they are
  // (bit-exact) instead of quantizing `weight`.
  LinearLayer(at::Tensor weight, bool fast_cpu,
              WeightFormat format = WeightFormat::kFloat32,
              const Int8Source* int8 = nullptr);
  ~LinearLayer();
  LinearLayer(LinearLayer&&) noexcept;
  LinearLayer& operator=(LinearLayer&&) noexcept;

  // x: [..., K] -> [..., N].
  at::Tensor Forward(const at::Tensor& x) const;
  // Bytes held for this layer's weight (packed or plain).
  int64_t weight_bytes() const;
  // The packed weight (null when the layer is absent or not packed).
  const PackedLinear* packed() const { return packed_.get(); }

 private:
  at::Tensor weight_;  // undefined once packed
  int64_t n_ = 0, k_ = 0;
  std::shared_ptr<const PackedLinear> packed_;
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_LINEAR_LAYER_H_
