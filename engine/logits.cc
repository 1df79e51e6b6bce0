#include "engine/logits.h"

#include <cmath>
#include <utility>

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace rwkv::engine {

absl::Status NonFiniteLogitsError(int row, int index, float value) {
  absl::Status status = absl::OutOfRangeError(absl::StrCat(
      "non-finite logits: logit ", index, " of row ", row, " is ", value,
      " (the model's values left the float range, usually because the "
      "state is out of range; the state was not advanced)"));
  status.SetPayload(kNonFiniteLogitsUrl, absl::Cord(absl::StrCat(row)));
  return status;
}

bool IsNonFiniteLogits(const absl::Status& status) {
  return status.code() == absl::StatusCode::kOutOfRange &&
         status.GetPayload(kNonFiniteLogitsUrl).has_value();
}

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

absl::Status Logits::CheckRowFinite(int i) const {
  absl::Span<const float> row = Row(i);
  for (size_t j = 0; j < row.size(); ++j) {
    if (!std::isfinite(row[j])) {
      return NonFiniteLogitsError(i, static_cast<int>(j), row[j]);
    }
  }
  return absl::OkStatus();
}

}  // namespace rwkv::engine
