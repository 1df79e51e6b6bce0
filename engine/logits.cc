#include "engine/logits.h"

#include <utility>

namespace rwkv::engine {

Logits::Logits(int batch_size, int vocab_size, std::vector<float> values)
    : batch_size_(batch_size),
      vocab_size_(vocab_size),
      values_(std::move(values)) {}

absl::Span<const float> Logits::Row(int i) const {
  return absl::MakeConstSpan(values_).subspan(
      static_cast<size_t>(i) * vocab_size_, vocab_size_);
}

int32_t Logits::ArgMax(int i) const {
  absl::Span<const float> row = Row(i);
  int32_t best = 0;
  for (int32_t j = 1; j < static_cast<int32_t>(row.size()); ++j) {
    if (row[j] > row[best]) best = j;
  }
  return best;
}

}  // namespace rwkv::engine
