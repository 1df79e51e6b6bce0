// Sampler: turns one step's logits into a token id the way ChatRWKV does
// (presence/frequency penalties with decay, then top-p, top-k, temperature),
// with its own portable seeded RNG. One per stream; thread-compatible (no
// internal locking), copyable; a copy continues the same random sequence.

#ifndef RWKV_ENGINE_SAMPLER_H_
#define RWKV_ENGINE_SAMPLER_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/sampling_params.h"

namespace rwkv::engine {

// Semantics (ChatRWKV PIPELINE.generate + sample_logits), for each Sample():
//  1. For every token accepted since Reset():
//       logit[t] -= presence_penalty + occurrence[t] * frequency_penalty.
//     (Presence applies even after decay has shrunk the count towards 0.)
//  2. temperature == 0: return the argmax, lowest id on ties. No RNG use.
//  3. p = softmax(logits). Ranking tokens by p descending, the cutoff is the
//     first token at which the running sum reaches top_p; every token whose
//     logit is >= the cutoff's survives (ties at the cutoff included).
//     top_p == 1 keeps every token with p > 0 (ChatRWKV can collapse to
//     greedy there when float rounding keeps the sum below 1; this does not).
//  4. 0 < top_k < vocab_size: of the survivors keep the top_k highest.
//  5. Survivors are weighted p^(1/temperature) (computed as
//     exp((logit - max) / temperature)), renormalized, and one is drawn with
//     exactly one 64-bit RNG output.
// Ranking is by penalized logit (not by rounded float probability), ties
// broken by the lower token id. Tokens more than 87.3 below the top logit
// have p == 0 (as in float32 softmax) and are never drawn. The arithmetic is
// IEEE float/double in a fixed order with a built-in exp (no libm, no FMA
// contraction), so a (seed, logits) sequence yields the same tokens on every
// IEEE-754 platform. Cost per call: a few passes over the logits plus an
// expected-linear selection; no allocation once the buffers have grown.
class Sampler {
 public:
  // InvalidArgument if `params` fail ValidateSamplingParams() or
  // vocab_size <= 0.
  static absl::StatusOr<Sampler> Create(const SamplingParams& params,
                                        int32_t vocab_size);

  // Applies the penalties of accepted tokens and samples a token from
  // `logits` (vocab_size entries; -inf allowed and never drawn). Errors
  // (InvalidArgument): wrong size, a NaN or +inf logit, all logits -inf.
  // Does not Accept() the result.
  absl::StatusOr<int32_t> Sample(absl::Span<const float> logits);

  // Records `token` as generated: decays all occurrence counts by
  // penalty_decay, then adds 1 to the token's count. Tokens outside
  // [0, vocab_size) are ignored.
  void Accept(int32_t token);

  // Forgets all occurrences and rewinds the RNG to the state given by seed.
  void Reset();

  // The amount step 1 subtracts from `token`'s logit:
  // presence_penalty + occurrence * frequency_penalty, or 0 if the token was
  // not accepted since Reset().
  float Penalty(int32_t token) const;
  // The token's decayed occurrence count (0 if never accepted).
  double Occurrence(int32_t token) const;

  const SamplingParams& params() const { return params_; }
  int32_t vocab_size() const { return vocab_size_; }

 private:
  Sampler(const SamplingParams& params, int32_t vocab_size);

  uint64_t NextRandom();  // xoshiro256**
  double NextUniform();   // [0, 1), top 53 bits of NextRandom()

  // Steps 3-4. Either leaves the survivors' rank keys in candidates_ and
  // returns true, or returns false: the survivors are then the tokens with
  // nonzero probability whose rank key is >= *min_key (0: all of them).
  bool SelectSurvivors(float max_logit, uint64_t* min_key);
  // Step 5 over candidates_ (sparse) or over the whole vocabulary (dense).
  int32_t DrawSparse(float max_logit);
  int32_t DrawDense(float max_logit, uint64_t min_key);
  // Draws an index in [0, n) with probability proportional to w[i].
  size_t DrawIndex(const float* w, size_t n);

  SamplingParams params_;
  int32_t vocab_size_ = 0;
  std::array<uint64_t, 4> rng_{};

  // Accepted tokens and their decayed counts (ChatRWKV's `occurrence` dict),
  // in first-accepted order.
  std::vector<int32_t> seen_tokens_;
  std::vector<double> seen_counts_;

  // Reusable per-call buffers (at most vocab_size entries).
  std::vector<float> logits_;   // penalized logits (when any apply)
  const float* lg_ = nullptr;   // this call's logits: logits_ or the input
  std::vector<float> weights_;  // exp(logit - max), only when top_p < 1
  std::vector<uint64_t> candidates_;  // rank keys (see sampler.cc)
  std::vector<uint16_t> buckets_;     // per token, see SelectSurvivors()
  std::vector<uint32_t> bucket_counts_;
  std::vector<double> bucket_weights_;
  std::vector<float> draw_weights_;
  std::vector<double> block_sums_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_SAMPLER_H_
