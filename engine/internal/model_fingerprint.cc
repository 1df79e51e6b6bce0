#include "engine/internal/model_fingerprint.h"

#include <cstdio>

namespace rwkv::engine::internal {

void ModelFingerprint::Mix(const void* data, size_t n) {
  const auto* p = static_cast<const unsigned char*>(data);
  for (size_t i = 0; i < n; ++i) {
    h1_ = (h1_ ^ p[i]) * 0x100000001b3ull;
    h2_ = (h2_ ^ p[i]) * 0x00000100000001b3ull + 0x9e3779b97f4a7c15ull;
  }
}

void ModelFingerprint::AddTensor(const std::string& name,
                                 const std::vector<int64_t>& shape,
                                 const float* values, int64_t numel) {
  const uint64_t len = name.size();
  Mix(&len, sizeof(len));
  Mix(name.data(), name.size());
  const uint64_t rank = shape.size();
  Mix(&rank, sizeof(rank));
  for (int64_t d : shape) Mix(&d, sizeof(d));
  if (numel <= 8192) {
    Mix(values, static_cast<size_t>(numel) * sizeof(float));
    return;
  }
  Mix(values, 64 * sizeof(float));
  Mix(values + numel - 64, 64 * sizeof(float));
  for (int64_t i = 0; i < 4096; ++i) {
    const int64_t idx = i * (numel / 4096);
    Mix(values + idx, sizeof(float));
  }
}

std::string ModelFingerprint::Hex() const {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx",
                static_cast<unsigned long long>(h1_ ^ (h2_ >> 1)));
  return buf;
}

}  // namespace rwkv::engine::internal
