// Logits: the next-token scores of a forward call, one row per sequence in
// the batch, always copied to host memory as fp32. Plain value type.
#ifndef RWKV_ENGINE_LOGITS_H_
#define RWKV_ENGINE_LOGITS_H_

#include <cstdint>
#include <vector>

#include "absl/types/span.h"

namespace rwkv::engine {

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
  const std::vector<float>& values() const { return values_; }

 private:
  int batch_size_ = 0;
  int vocab_size_ = 0;
  std::vector<float> values_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_LOGITS_H_
