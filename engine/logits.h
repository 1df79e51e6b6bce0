// Logits: the next-token scores of a forward call, one row per sequence in
// the batch, always copied to host memory as fp32. Plain value type.
#ifndef RWKV_ENGINE_LOGITS_H_
#define RWKV_ENGINE_LOGITS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"

namespace rwkv::engine {

// Non-finite logits: NaN or +-inf came out of a forward, i.e. the model's
// numbers left the float range (in practice from a state driven out of
// range: an unhealthy imported state, or a long divergent run). The error is
// OutOfRange, its message starts "non-finite logits", and it carries the
// payload kNonFiniteLogitsUrl, so that callers tell it from every other
// failure (IsNonFiniteLogits). Engine::Forward returns it and leaves the
// state unchanged; after Engine::ForwardBatch each row is checked with
// Logits::CheckRowFinite (the other rows are unaffected) and the caller
// restores that row's state.
inline constexpr char kNonFiniteLogitsUrl[] =
    "type.googleapis.com/rwkv.engine.NonFiniteLogits";
absl::Status NonFiniteLogitsError(int row, int index, float value);
bool IsNonFiniteLogits(const absl::Status& status);

class Logits {
 public:
  Logits() = default;
  // REQUIRES: values.size() == batch_size * vocab_size.
  Logits(int batch_size, int vocab_size, std::vector<float> values);

  int batch_size() const { return batch_size_; }
  int vocab_size() const { return vocab_size_; }
  // REQUIRES: 0 <= i < batch_size().
  absl::Span<const float> Row(int i) const;
  // Index of the largest value in row i (lowest index on ties).
  int32_t ArgMax(int i) const;
  // OK if every value of row i is finite, else NonFiniteLogitsError naming
  // the first bad one. REQUIRES: 0 <= i < batch_size().
  absl::Status CheckRowFinite(int i) const;
  const std::vector<float>& values() const { return values_; }

 private:
  int batch_size_ = 0;
  int vocab_size_ = 0;
  std::vector<float> values_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_LOGITS_H_
