#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <functional>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

// Determinism note: this file must be compiled without floating-point
// contraction and without -ffast-math (engine/CMakeLists.txt adds
// -ffp-contract=off, and -fno-trapping-math, which changes no value but lets
// the exp loops vectorize), so that every platform rounds the same
// operations the same way. Vectorized and scalar code give identical bits.

namespace rwkv::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();

// top_k values up to this are selected with a bounded heap over the
// vocabulary before the nucleus; larger ones after it, by quickselect.
constexpr int32_t kMaxHeapTopK = 1024;

// ExpNonPositive(x) is 0 exactly when x < kMinExpArg.
constexpr float kMinExpArg = -87.3f;

// Live tokens are bucketed by (max_logit - logit) * kBucketScale, which is
// < 87.3 * 23 < kDeadBucket; dead tokens go to kDeadBucket.
constexpr float kBucketScale = 23.0f;
constexpr uint16_t kDeadBucket = 2048;
constexpr size_t kLanes = 4;

// With more than 1/kDenseFraction of the vocabulary surviving, the draw runs
// over the whole vocabulary instead of a gathered list.
constexpr size_t kDenseFraction = 8;

uint64_t SplitMix64(uint64_t& x) {
  uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

inline uint64_t Rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

// exp(x) for x <= 0 (including -inf), within ~2 ulp, and exactly 0 below
// -87.3 (so results are never subnormal). Cephes expf: range reduction by
// ln 2 in two parts plus a degree-6 polynomial; only +, *, conversions and
// exponent-bit arithmetic, so it is bit-identical on every IEEE-754 platform
// and auto-vectorizes.
inline float ExpNonPositive(float x) {
  const float xc = x < kMinExpArg ? kMinExpArg : x;
  // round(xc / ln 2) for xc <= 0: truncation of (t - 0.5) rounds toward zero.
  const float t = xc * 1.44269504088896341f;
  const int32_t n = static_cast<int32_t>(t - 0.5f);  // in [-126, 0]
  const float nf = static_cast<float>(n);
  float r = xc - nf * 0.693359375f;
  r = r - nf * -2.12194440e-4f;
  const float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  const int32_t bits = (n + 127) << 23;  // 2^n, n >= -126 so normal
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  return x < kMinExpArg ? 0.0f : p * scale;
}

// Sum of w[0..n) in double with eight interleaved accumulators combined in a
// fixed tree: a fixed rounding order, but not one long dependency chain.
double SumInFixedOrder(const float* w, size_t n) {
  double acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (size_t j = 0; j < 8; ++j) acc[j] += w[i + j];
  }
  for (size_t j = 0; i < n; ++i, ++j) acc[j] += w[i];
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) +
         ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

// Every ranking uses one strict total order: higher logit first, then lower
// id. RankKey() encodes it as an integer (larger = ranked higher) so that
// comparisons are branch-free and selections and sorts give the same result
// with every standard library.
inline uint64_t RankKey(float logit, size_t id) {
  const float x = logit + 0.0f;  // -0 -> +0, so that equal logits tie
  uint32_t bits;
  std::memcpy(&bits, &x, sizeof(bits));
  const uint32_t key = (bits & 0x80000000u) ? ~bits : (bits | 0x80000000u);
  return (uint64_t{key} << 32) | static_cast<uint32_t>(~id);
}

inline size_t IdOf(uint64_t key) { return ~static_cast<uint32_t>(key); }

// The logit encoded in a RankKey() (key != 0).
inline float LogitOfKey(uint64_t key) {
  const uint32_t k = static_cast<uint32_t>(key >> 32);
  const uint32_t bits = (k & 0x80000000u) ? (k & 0x7fffffffu) : ~k;
  float logit;
  std::memcpy(&logit, &bits, sizeof(logit));
  return logit;
}

// Sum of weights[IdOf(keys[j])] for j in [0, n), in double, in that order
// with four interleaved accumulators.
double SumOfWeights(const uint64_t* keys, size_t n, const float* weights) {
  double acc[4] = {0, 0, 0, 0};
  size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    for (size_t l = 0; l < 4; ++l) acc[l] += weights[IdOf(keys[j + l])];
  }
  for (size_t l = 0; j < n; ++j, ++l) acc[l] += weights[IdOf(keys[j])];
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

// Quickselect ranges at most this long are finished with a sort; after this
// many partition rounds the rest is sorted too (guards against bad pivots).
constexpr size_t kSmallRange = 32;
constexpr int kMaxPartitionRounds = 64;

// Lomuto partition of c[lo, hi) (hi - lo >= 3) around the median of its
// first, middle and last keys: returns p such that c[lo, p) rank above c[p]
// and c(p, hi) below it. With `weights`, also returns in *upper_weight the
// weights of c[lo, p) summed in their final order. Fully specified, so the
// resulting order is the same everywhere.
size_t Partition(uint64_t* c, size_t lo, size_t hi, const float* weights,
                 double* upper_weight) {
  const size_t mid = lo + (hi - lo) / 2;
  const uint64_t x = c[lo];
  const uint64_t y = c[mid];
  const uint64_t z = c[hi - 1];
  size_t median;
  if (x < y) {
    median = y < z ? mid : (x < z ? hi - 1 : lo);
  } else {
    median = x < z ? lo : (y < z ? hi - 1 : mid);
  }
  std::swap(c[median], c[hi - 1]);
  const uint64_t pivot = c[hi - 1];
  // Branch-free: always swap, advance `store` only past keys that rank above
  // the pivot ([store, j) holds only ones that do not).
  size_t store = lo;
  for (size_t j = lo; j + 1 < hi; ++j) {
    const uint64_t key = c[j];
    const bool up = key > pivot;
    c[j] = c[store];
    c[store] = key;
    store += up;
  }
  std::swap(c[store], c[hi - 1]);
  if (weights != nullptr) {
    *upper_weight = SumOfWeights(c + lo, store - lo, weights);
  }
  return store;
}

// Reorders c[] and returns the index j of the key at which the running sum
// of weights[id], taken in rank order, first reaches `target`; then c[0, j)
// rank above c[j] and c(j, end) below it. Returns -1 if the whole sum stays
// below `target`. Expected O(n), no full sort.
ptrdiff_t FindNucleusEnd(std::vector<uint64_t>& c, const float* weights,
                         double target) {
  size_t lo = 0;
  size_t hi = c.size();
  double acc = 0.0;  // weight of c[0, lo), all ranked above c[lo, hi)
  bool narrowed = false;
  for (int round = 0; hi - lo > kSmallRange && round < kMaxPartitionRounds;
       ++round) {
    double upper = 0.0;
    const size_t p = Partition(c.data(), lo, hi, weights, &upper);
    if (acc + upper >= target) {
      hi = p;
      narrowed = true;
    } else if (acc + upper + weights[IdOf(c[p])] >= target) {
      return static_cast<ptrdiff_t>(p);
    } else {
      acc += upper + weights[IdOf(c[p])];
      lo = p + 1;
    }
  }
  std::sort(c.begin() + lo, c.begin() + hi, std::greater<uint64_t>());
  for (size_t j = lo; j < hi; ++j) {
    acc += weights[IdOf(c[j])];
    if (acc >= target) return static_cast<ptrdiff_t>(j);
  }
  // A narrower range sums slightly differently from the partition that chose
  // it; the crossing is then its last element.
  return narrowed ? static_cast<ptrdiff_t>(hi) - 1 : -1;
}

// Reorders c[] (k < c.size()) so that c[0, k) are its k highest-ranked keys,
// in an order fixed by this algorithm.
void SelectTopCount(std::vector<uint64_t>& c, size_t k) {
  size_t lo = 0;
  size_t hi = c.size();
  for (int round = 0; hi - lo > kSmallRange && round < kMaxPartitionRounds;
       ++round) {
    const size_t p = Partition(c.data(), lo, hi, nullptr, nullptr);
    if (p == k) return;
    if (p > k) {
      hi = p;
    } else {
      lo = p + 1;
    }
  }
  std::sort(c.begin() + lo, c.begin() + hi, std::greater<uint64_t>());
}

// Scans in chunks of this many tokens skip a chunk when AnyAbove() is false.
constexpr size_t kChunk = 16;

// True if any of x[0, kChunk) is > bar (branch-free, so it vectorizes).
inline bool AnyAbove(const float* x, float bar) {
  int32_t any = 0;
  for (size_t j = 0; j < kChunk; ++j) any |= x[j] > bar;
  return any != 0;
}

// True if any of x[0, kChunk) equals v (branch-free, so it vectorizes).
inline bool AnyEqual(const uint16_t* x, uint16_t v) {
  int32_t any = 0;
  for (size_t j = 0; j < kChunk; ++j) any |= x[j] == v;
  return any != 0;
}

// Largest finite-or-(-inf) value of x[0, n) using an integer key (so it
// vectorizes); *bad is set if any element is NaN or +inf.
float MaxAndCheck(const float* x, size_t n, bool* bad) {
  int32_t best = std::numeric_limits<int32_t>::min();
  int32_t bad_bits = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t bits;
    std::memcpy(&bits, &x[i], sizeof(bits));
    const int32_t magnitude = bits & 0x7fffffff;
    bad_bits |= (magnitude > 0x7f800000) | (bits == 0x7f800000);
    // Monotone map from float order to int32 order (two's complement).
    const int32_t key = bits ^ ((bits >> 31) & 0x7fffffff);
    best = key > best ? key : best;
  }
  *bad = bad_bits != 0;
  const int32_t bits = best ^ ((best >> 31) & 0x7fffffff);
  float max;
  std::memcpy(&max, &bits, sizeof(max));
  return max;
}

}  // namespace

Sampler::Sampler(const SamplingParams& params, int32_t vocab_size)
    : params_(params), vocab_size_(vocab_size) {
  Reset();
}

absl::StatusOr<Sampler> Sampler::Create(const SamplingParams& params,
                                        int32_t vocab_size) {
  absl::Status status = ValidateSamplingParams(params);
  if (!status.ok()) return status;
  if (vocab_size <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("Sampler vocab_size must be > 0, got ", vocab_size));
  }
  return Sampler(params, vocab_size);
}

void Sampler::Reset() {
  uint64_t x = params_.seed;
  for (uint64_t& s : rng_) s = SplitMix64(x);
  seen_tokens_.clear();
  seen_counts_.clear();
}

uint64_t Sampler::NextRandom() {
  const uint64_t result = Rotl(rng_[1] * 5, 7) * 9;
  const uint64_t t = rng_[1] << 17;
  rng_[2] ^= rng_[0];
  rng_[3] ^= rng_[1];
  rng_[1] ^= rng_[2];
  rng_[0] ^= rng_[3];
  rng_[2] ^= t;
  rng_[3] = Rotl(rng_[3], 45);
  return result;
}

double Sampler::NextUniform() {
  return static_cast<double>(NextRandom() >> 11) * 0x1.0p-53;
}

void Sampler::Accept(int32_t token) {
  if (token < 0 || token >= vocab_size_) return;
  if (params_.penalty_decay != 1.0f) {
    const double decay = params_.penalty_decay;
    for (double& count : seen_counts_) count *= decay;
  }
  for (size_t i = 0; i < seen_tokens_.size(); ++i) {
    if (seen_tokens_[i] == token) {
      seen_counts_[i] += 1.0;
      return;
    }
  }
  seen_tokens_.push_back(token);
  seen_counts_.push_back(1.0);
}

double Sampler::Occurrence(int32_t token) const {
  for (size_t i = 0; i < seen_tokens_.size(); ++i) {
    if (seen_tokens_[i] == token) return seen_counts_[i];
  }
  return 0.0;
}

float Sampler::Penalty(int32_t token) const {
  for (size_t i = 0; i < seen_tokens_.size(); ++i) {
    if (seen_tokens_[i] == token) {
      return static_cast<float>(
          static_cast<double>(params_.presence_penalty) +
          seen_counts_[i] * static_cast<double>(params_.frequency_penalty));
    }
  }
  return 0.0f;
}

absl::StatusOr<int32_t> Sampler::Sample(absl::Span<const float> logits) {
  if (logits.size() != static_cast<size_t>(vocab_size_)) {
    return absl::InvalidArgumentError(
        absl::StrCat("Sampler: got ", logits.size(), " logits, vocab_size is ",
                     vocab_size_));
  }
  const size_t n = logits.size();
  bool bad = false;
  float max_logit = MaxAndCheck(logits.data(), n, &bad);
  if (bad) {
    for (size_t i = 0; i < n; ++i) {
      if (!(logits[i] < kInf)) {
        return absl::InvalidArgumentError(
            absl::StrCat("Sampler: logits[", i, "] is ", logits[i]));
      }
    }
  }

  // 1. Penalties, keeping max_logit exact. Only then are the logits copied:
  // otherwise the steps below read the caller's row in place.
  lg_ = logits.data();
  if ((params_.presence_penalty != 0.0f || params_.frequency_penalty != 0.0f) &&
      !seen_tokens_.empty()) {
    logits_.assign(logits.begin(), logits.end());
    lg_ = logits_.data();
    const double presence = params_.presence_penalty;
    const double frequency = params_.frequency_penalty;
    bool max_lowered = false;
    float penalized_max = -kInf;
    for (size_t i = 0; i < seen_tokens_.size(); ++i) {
      float& x = logits_[seen_tokens_[i]];
      const float before = x;
      x -= static_cast<float>(presence + seen_counts_[i] * frequency);
      max_lowered |= before == max_logit && x < before;
      penalized_max = std::max(penalized_max, x);
    }
    max_logit = max_lowered ? MaxAndCheck(logits_.data(), n, &bad)
                            : std::max(max_logit, penalized_max);
  }
  if (max_logit == -kInf) {
    return absl::InvalidArgumentError("Sampler: all logits are -inf");
  }

  // 2. Greedy.
  if (params_.temperature == 0.0f) {
    return static_cast<int32_t>(std::find(lg_, lg_ + n, max_logit) - lg_);
  }

  // 3-5.
  uint64_t min_key = 0;
  return SelectSurvivors(max_logit, &min_key) ? DrawSparse(max_logit)
                                              : DrawDense(max_logit, min_key);
}

bool Sampler::SelectSurvivors(float max_logit, uint64_t* min_key) {
  *min_key = 0;
  const int32_t k = params_.top_k < vocab_size_ ? params_.top_k : 0;
  const bool nucleus = params_.top_p < 1.0f;
  if (!nucleus && k == 0) return false;

  const size_t n = static_cast<size_t>(vocab_size_);
  double total = 0.0;
  if (nucleus) {
    weights_.resize(n);
    for (size_t i = 0; i < n; ++i) {
      weights_[i] = ExpNonPositive(lg_[i] - max_logit);
    }
    total = SumInFixedOrder(weights_.data(), n);
  }
  const double target = static_cast<double>(params_.top_p) * total;
  // A token is alive (nonzero probability) iff its ExpNonPositive argument is
  // not below kMinExpArg.
  auto alive = [&](size_t i) { return lg_[i] - max_logit >= kMinExpArg; };
  auto logit_of = [&](uint64_t key) { return lg_[IdOf(key)]; };

  candidates_.clear();
  if (k > 0 && k <= kMaxHeapTopK) {
    // Top-k first, with a min-heap of keys whose front is the lowest-ranked
    // of the best k so far; then the nucleus cutoff within them (if the
    // running sum reaches top_p later, all k survive).
    const size_t kk = static_cast<size_t>(k);
    const std::greater<uint64_t> lower;
    // Once the heap is full, a token must beat `bar` (the front's logit) to
    // enter; scanning in id order, an equal logit never does.
    float bar = -kInf;
    auto offer = [&](size_t i) {
      if (!(lg_[i] > bar) || !alive(i)) return;
      const uint64_t key = RankKey(lg_[i], i);
      if (candidates_.size() < kk) {
        candidates_.push_back(key);
        std::push_heap(candidates_.begin(), candidates_.end(), lower);
        if (candidates_.size() < kk) return;
      } else {
        std::pop_heap(candidates_.begin(), candidates_.end(), lower);
        candidates_.back() = key;
        std::push_heap(candidates_.begin(), candidates_.end(), lower);
      }
      bar = logit_of(candidates_.front());
    };
    size_t i = 0;
    for (; i + kChunk <= n; i += kChunk) {
      if (AnyAbove(&lg_[i], bar)) {
        for (size_t j = i; j < i + kChunk; ++j) offer(j);
      }
    }
    for (; i < n; ++i) offer(i);
    std::sort_heap(candidates_.begin(), candidates_.end(), lower);  // best 1st
    if (!nucleus) return true;
    double acc = 0.0;
    for (size_t j = 0; j < candidates_.size(); ++j) {
      acc += weights_[IdOf(candidates_[j])];
      if (acc >= target) {
        const float cutoff = logit_of(candidates_[j]);
        size_t end = j + 1;
        while (end < candidates_.size() &&
               logit_of(candidates_[end]) >= cutoff) {
          ++end;  // ties with the cutoff survive
        }
        candidates_.resize(end);
        break;
      }
    }
    return true;
  }

  // Otherwise bucket the live tokens by how far their logit lies below the
  // max (a monotone map), find the bucket holding the nucleus cutoff and the
  // one holding the k-th survivor from the bucket totals, and rank only the
  // tokens inside those buckets.
  buckets_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float x = lg_[i] - max_logit;
    const int32_t b = static_cast<int32_t>(-x * kBucketScale);
    buckets_[i] = static_cast<uint16_t>(x < kMinExpArg ? kDeadBucket : b);
  }
  // kLanes interleaved histograms (merged in a fixed order) so that runs of
  // equal buckets do not serialize on one counter.
  constexpr size_t kSlots = kDeadBucket + 1;
  bucket_counts_.assign(kLanes * kSlots, 0);
  if (nucleus) {
    bucket_weights_.assign(kLanes * kSlots, 0.0);
    for (size_t i = 0; i < n; ++i) {
      const size_t slot = (i % kLanes) * kSlots + buckets_[i];
      ++bucket_counts_[slot];
      bucket_weights_[slot] += weights_[i];
    }
  } else {
    for (size_t i = 0; i < n; ++i) {
      ++bucket_counts_[(i % kLanes) * kSlots + buckets_[i]];
    }
  }
  for (size_t b = 0; b < kDeadBucket; ++b) {
    for (size_t lane = 1; lane < kLanes; ++lane) {
      bucket_counts_[b] += bucket_counts_[lane * kSlots + b];
    }
    if (nucleus) {
      static_assert(kLanes == 4, "the merge below assumes four lanes");
      bucket_weights_[b] =
          (bucket_weights_[b] + bucket_weights_[kSlots + b]) +
          (bucket_weights_[2 * kSlots + b] + bucket_weights_[3 * kSlots + b]);
    }
  }
  // Live tokens of bucket b that rank at or above `key`, into candidates_.
  auto gather_bucket = [&](size_t b, uint64_t key) {
    candidates_.clear();
    auto offer = [&](size_t i) {
      if (buckets_[i] != b) return;
      const uint64_t rank = RankKey(lg_[i], i);
      if (rank >= key) candidates_.push_back(rank);
    };
    size_t i = 0;
    for (; i + kChunk <= n; i += kChunk) {
      if (AnyEqual(&buckets_[i], static_cast<uint16_t>(b))) {
        for (size_t j = i; j < i + kChunk; ++j) offer(j);
      }
    }
    for (; i < n; ++i) offer(i);
  };

  size_t count = 0;  // survivors so far
  for (size_t b = 0; b < kDeadBucket; ++b) count += bucket_counts_[b];
  size_t cut_bucket = kDeadBucket;  // the bucket holding the nucleus cutoff
  size_t cut_count = 0;             // its survivors
  if (nucleus) {
    double acc = 0.0;
    size_t above = 0;
    for (size_t b = 0; b < kDeadBucket; ++b) {
      if (acc + bucket_weights_[b] >= target) {
        cut_bucket = b;
        break;
      }
      acc += bucket_weights_[b];
      above += bucket_counts_[b];
    }
    if (cut_bucket < kDeadBucket) {  // else rounding: everything survives
      gather_bucket(cut_bucket, 0);
      ptrdiff_t end =
          FindNucleusEnd(candidates_, weights_.data(), target - acc);
      if (end < 0) {  // rounding: the bucket's last token
        end = std::min_element(candidates_.begin(), candidates_.end()) -
              candidates_.begin();
      }
      const float cutoff = logit_of(candidates_[end]);
      *min_key = RankKey(cutoff, 0) & ~uint64_t{0xffffffff};  // all ties
      for (const uint64_t key : candidates_) cut_count += key >= *min_key;
      count = above + cut_count;
    }
  }
  if (k > 0 && count > static_cast<size_t>(k)) {
    const size_t kk = static_cast<size_t>(k);
    size_t cum = 0;
    size_t b = 0;
    for (;; ++b) {
      const size_t in_b = b == cut_bucket ? cut_count : bucket_counts_[b];
      if (cum + in_b >= kk) break;
      cum += in_b;
    }
    gather_bucket(b, *min_key);
    const size_t need = kk - cum;  // >= 1
    if (need < candidates_.size()) SelectTopCount(candidates_, need);
    *min_key =
        *std::min_element(candidates_.begin(), candidates_.begin() + need);
    count = kk;
  }
  if (count > n / kDenseFraction) return false;
  // Few survivors: collect them in id order for a sparse draw.
  float bar = -kInf;
  if (*min_key != 0) bar = std::nextafter(LogitOfKey(*min_key), -kInf);
  candidates_.clear();
  auto offer = [&](size_t i) {
    if (!alive(i)) return;
    const uint64_t key = RankKey(lg_[i], i);
    if (key >= *min_key) candidates_.push_back(key);
  };
  size_t i = 0;
  for (; i + kChunk <= n; i += kChunk) {
    if (AnyAbove(&lg_[i], bar)) {
      for (size_t j = i; j < i + kChunk; ++j) offer(j);
    }
  }
  for (; i < n; ++i) offer(i);
  return true;
}

namespace {

// 1 / temperature, saturated so that tiny temperatures stay finite.
float InverseTemperature(float temperature) {
  return temperature < 1e-30f ? 1e30f : 1.0f / temperature;
}

}  // namespace

int32_t Sampler::DrawSparse(float max_logit) {
  // p^(1/T) up to a constant factor.
  const float inv_t = InverseTemperature(params_.temperature);
  const size_t m = candidates_.size();  // >= 1: the top token always survives
  draw_weights_.resize(m);
  if (inv_t == 1.0f && params_.top_p < 1.0f) {
    // Same values as below (x * 1 == x), already computed for the nucleus.
    for (size_t j = 0; j < m; ++j) {
      draw_weights_[j] = weights_[IdOf(candidates_[j])];
    }
  } else {
    for (size_t j = 0; j < m; ++j) {
      draw_weights_[j] =
          ExpNonPositive((lg_[IdOf(candidates_[j])] - max_logit) * inv_t);
    }
  }
  return static_cast<int32_t>(
      IdOf(candidates_[DrawIndex(draw_weights_.data(), m)]));
}

int32_t Sampler::DrawDense(float max_logit, uint64_t min_key) {
  const float inv_t = InverseTemperature(params_.temperature);
  const size_t n = static_cast<size_t>(vocab_size_);
  // Survivors: live tokens ranked at or above min_key, i.e. logit > floor,
  // or logit == floor with id <= floor_id.
  const float floor = min_key == 0 ? -kInf : LogitOfKey(min_key);
  const size_t floor_id = IdOf(min_key);
  draw_weights_.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const float l = lg_[i];
    const float x = l - max_logit;
    // Tokens dead at temperature 1 stay dead (ChatRWKV: 0 ** (1/T) == 0).
    const float w = ExpNonPositive(x * inv_t);
    draw_weights_[i] = x < kMinExpArg || l < floor ? 0.0f : w;
  }
  for (size_t i = floor_id + 1; i < n; ++i) {
    if (lg_[i] == floor) draw_weights_[i] = 0.0f;
  }
  return static_cast<int32_t>(DrawIndex(draw_weights_.data(), n));
}

size_t Sampler::DrawIndex(const float* w, size_t n) {
  // Block sums make both the total and the search cheap; every sum is taken
  // in a fixed order.
  constexpr size_t kBlock = 64;
  const size_t blocks = (n + kBlock - 1) / kBlock;
  block_sums_.resize(blocks);
  double total = 0.0;
  for (size_t b = 0; b < blocks; ++b) {
    const size_t begin = b * kBlock;
    block_sums_[b] = SumInFixedOrder(w + begin, std::min(kBlock, n - begin));
  }
  for (size_t b = 0; b < blocks; ++b) total += block_sums_[b];
  const double target = NextUniform() * total;
  double acc = 0.0;
  for (size_t b = 0; b < blocks; ++b) {
    const double next = acc + block_sums_[b];
    if (next > target) {
      const size_t begin = b * kBlock;
      const size_t end = std::min(begin + kBlock, n);
      size_t last = begin;
      for (size_t i = begin; i < end; ++i) {
        if (w[i] > 0.0f) last = i;
        acc += w[i];
        if (acc > target) return i;
      }
      return last;  // this block's running sum rounded below `next`
    }
    acc = next;
  }
  // Rounding left `target` at the very end: the last token with weight.
  size_t i = n;
  while (i > 1 && !(w[i - 1] > 0.0f)) --i;
  return i - 1;
}

}  // namespace rwkv::engine
