#include "engine/internal/linear_layer.h"

#include <ATen/core/grad_mode.h>

#include <utility>

namespace rwkv::engine::internal {

LinearLayer::LinearLayer(at::Tensor weight, bool fast_cpu, WeightFormat format,
                         const Int8Source* int8)
    : weight_(std::move(weight)) {
  if (fast_cpu && weight_.device().is_cpu() &&
      weight_.scalar_type() == at::kFloat && weight_.dim() == 2) {
    at::Tensor w = weight_.contiguous();
    n_ = w.size(0);
    k_ = w.size(1);
    if (format == WeightFormat::kInt8 && int8 != nullptr) {
      TORCH_CHECK(int8->q.sizes() == w.sizes() && int8->scales.size(0) == n_ &&
                      int8->scales.size(1) == Int8Groups(k_),
                  "int8 source does not match the weight's shape");
      at::Tensor q = int8->q.contiguous();
      at::Tensor s = int8->scales.contiguous();
      packed_ = std::make_shared<const PackedLinear>(PackedLinear::PackInt8(
          q.data_ptr<int8_t>(), s.data_ptr<float>(), n_, k_));
    } else {
      packed_ = std::make_shared<const PackedLinear>(PackedLinear::Pack(
          w.data_ptr<float>(), n_, k_, LinearBackend::kAuto, format));
    }
    // The packed copy is all the fast path reads: drop the original so the
    // weights are held once. (Training builds its model without fast_cpu.)
    weight_ = at::Tensor();
  } else {
    n_ = weight_.size(0);
    k_ = weight_.dim() > 1 ? weight_.size(1) : 0;
  }
}
LinearLayer::~LinearLayer() = default;
LinearLayer::LinearLayer(LinearLayer&&) noexcept = default;
LinearLayer& LinearLayer::operator=(LinearLayer&&) noexcept = default;

at::Tensor LinearLayer::Forward(const at::Tensor& x) const {
  if (packed_ == nullptr) return at::matmul(x, weight_.t());
  TORCH_CHECK(!(at::GradMode::is_enabled() && x.requires_grad()),
              "autograd through the packed CPU kernels is not supported; "
              "build the model with fast_cpu = false to train");
  const int64_t k = k_, n = n_;
  at::Tensor xc = x.to(at::kFloat).contiguous();
  const int64_t m = xc.numel() / k;
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = n;
  at::Tensor y = at::empty(out_shape, xc.options());
  LinearForward(*packed_, xc.data_ptr<float>(), m, y.data_ptr<float>());
  return y;
}

int64_t LinearLayer::weight_bytes() const {
  if (packed_ != nullptr) return static_cast<int64_t>(packed_->packed_bytes());
  if (!weight_.defined()) return 0;  // a default-constructed (absent) layer
  return weight_.numel() * weight_.element_size();
}

}  // namespace rwkv::engine::internal
