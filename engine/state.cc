#include "engine/state.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/internal/state_impl.h"

namespace rwkv::engine {

State::State() = default;
State::~State() = default;
State::State(State&& other) noexcept = default;
State& State::operator=(State&& other) noexcept = default;
State::State(std::unique_ptr<internal::StateImpl> impl)
    : impl_(std::move(impl)) {}

State State::Clone() const {
  if (impl_ == nullptr) return State();
  auto copy = std::make_unique<internal::StateImpl>();
  copy->arch = impl_->arch;
  copy->names = impl_->names;
  copy->token_count = impl_->token_count;
  copy->model_fingerprint = impl_->model_fingerprint;
  copy->tensors.reserve(impl_->tensors.size());
  for (const at::Tensor& t : impl_->tensors) copy->tensors.push_back(t.clone());
  return State(std::move(copy));
}

int64_t State::token_count() const {
  return impl_ == nullptr ? 0 : impl_->token_count;
}

int64_t State::SizeBytes() const {
  if (impl_ == nullptr) return 0;
  int64_t bytes = 0;
  for (const at::Tensor& t : impl_->tensors)
    bytes += t.numel() * t.element_size();
  return bytes;
}

std::vector<std::string> State::ComponentNames() const {
  return impl_ == nullptr ? std::vector<std::string>{} : impl_->names;
}

namespace {
absl::StatusOr<size_t> FindComponent(const internal::StateImpl* impl,
                                     std::string_view name) {
  if (impl == nullptr) return absl::FailedPreconditionError("empty state");
  for (size_t i = 0; i < impl->names.size(); ++i) {
    if (impl->names[i] == name) return i;
  }
  return absl::NotFoundError(
      absl::StrCat("state has no component '", std::string(name), "'"));
}
}  // namespace

absl::StatusOr<std::vector<int64_t>> State::ComponentShape(
    std::string_view name) const {
  absl::StatusOr<size_t> i = FindComponent(impl_.get(), name);
  if (!i.ok()) return i.status();
  at::IntArrayRef sizes = impl_->tensors[*i].sizes();
  return std::vector<int64_t>(sizes.begin(), sizes.end());
}

absl::StatusOr<std::vector<float>> State::ComponentValues(
    std::string_view name) const {
  absl::StatusOr<size_t> i = FindComponent(impl_.get(), name);
  if (!i.ok()) return i.status();
  at::Tensor t = impl_->tensors[*i].to(at::kCPU, at::kFloat).contiguous();
  const float* p = t.data_ptr<float>();
  return std::vector<float>(p, p + t.numel());
}

}  // namespace rwkv::engine
