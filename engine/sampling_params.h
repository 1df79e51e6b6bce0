// SamplingParams: the per-request knobs of rwkv::engine::Sampler (ChatRWKV
// names in comments) and their validation. Plain value type; thread-compatible.

#ifndef RWKV_ENGINE_SAMPLING_PARAMS_H_
#define RWKV_ENGINE_SAMPLING_PARAMS_H_

#include <cstdint>

#include "absl/status/status.h"

namespace rwkv::engine {

// Documented limits enforced by ValidateSamplingParams().
inline constexpr float kMaxTemperature = 100.0f;
inline constexpr float kMaxAbsPenalty = 10.0f;

struct SamplingParams {
  // Softmax temperature. 0 means greedy: argmax of the penalized logits, the
  // lowest token id on ties (ChatRWKV would divide by zero). Finite, in
  // [0, kMaxTemperature].
  float temperature = 1.0f;
  // Nucleus mass, in (0, 1]. 1 disables the nucleus cut.
  float top_p = 1.0f;
  // Keep only the top_k most likely tokens; 0 (or >= vocab size) disables it.
  // Must be >= 0.
  int32_t top_k = 0;
  // ChatRWKV alpha_presence: subtracted once from the logit of every token
  // accepted since the last Reset(). Finite, in [-kMaxAbsPenalty,
  // kMaxAbsPenalty]; negative values encourage repetition.
  float presence_penalty = 0.0f;
  // ChatRWKV alpha_frequency: multiplied by the token's (decayed) occurrence
  // count and subtracted from its logit. Same limits as presence_penalty.
  float frequency_penalty = 0.0f;
  // ChatRWKV alpha_decay (0.996 in ChatRWKV chat): after each accepted token
  // all occurrence counts are multiplied by this, then the accepted token's
  // count is incremented. In (0, 1]; 1 means no decay.
  float penalty_decay = 1.0f;
  // Seed of the sampler's portable RNG (xoshiro256** seeded by splitmix64).
  uint64_t seed = 0;
};

// Returns OK, or InvalidArgument naming the first bad field and its value
// (NaN, infinity or out of the documented range).
absl::Status ValidateSamplingParams(const SamplingParams& params);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_SAMPLING_PARAMS_H_
