#include "engine/sampler.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "engine/sampling_params.h"
#include "gtest/gtest.h"

namespace rwkv::engine {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();

Sampler MakeSampler(const SamplingParams& params, int32_t vocab_size) {
  absl::StatusOr<Sampler> sampler = Sampler::Create(params, vocab_size);
  EXPECT_TRUE(sampler.ok()) << sampler.status();
  return *std::move(sampler);
}

int32_t SampleOk(Sampler& sampler, const std::vector<float>& logits) {
  absl::StatusOr<int32_t> token = sampler.Sample(logits);
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : -1;
}

// Portable pseudo-random logits: mt19937's output is fixed by the standard
// (its distributions are not, so the uniform is built by hand).
std::vector<float> RandomLogits(int32_t n, uint32_t seed, float scale,
                                float power) {
  std::mt19937 gen(seed);
  std::vector<float> logits(n);
  for (float& x : logits) {
    const double u = static_cast<double>(gen() >> 8) / (1 << 24);
    x = static_cast<float>(scale * std::pow(u, power));
  }
  return logits;
}

// ChatRWKV's sample_logits, in double, on already-penalized logits: the
// probability with which each token should be drawn. Ties rank by lower id.
std::vector<double> ReferenceDistribution(const std::vector<float>& logits,
                                          double temperature, double top_p,
                                          int32_t top_k) {
  const size_t n = logits.size();
  const double max = *std::max_element(logits.begin(), logits.end());
  std::vector<double> probs(n);
  double z = 0;
  for (size_t i = 0; i < n; ++i) z += probs[i] = std::exp(logits[i] - max);
  for (double& p : probs) p /= z;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return logits[a] > logits[b]; });
  if (top_p < 1.0) {
    double cum = 0;
    double cutoff = 0;
    for (size_t j = 0; j < n; ++j) {
      cum += probs[order[j]];
      if (cum >= top_p) {
        cutoff = probs[order[j]];
        break;
      }
    }
    for (double& p : probs) {
      if (p < cutoff) p = 0;
    }
  }
  if (top_k > 0 && static_cast<size_t>(top_k) < n) {
    for (size_t j = top_k; j < n; ++j) probs[order[j]] = 0;
  }
  double sum = 0;
  for (double& p : probs) sum += p = std::pow(p, 1.0 / temperature);
  for (double& p : probs) p /= sum;
  return probs;
}

std::vector<int64_t> Histogram(Sampler& sampler,
                               const std::vector<float>& logits, int draws) {
  std::vector<int64_t> counts(logits.size(), 0);
  for (int i = 0; i < draws; ++i) {
    const int32_t token = SampleOk(sampler, logits);
    if (token < 0) break;
    ++counts[token];
  }
  return counts;
}

// Pearson chi-square of `counts` against `probs`; tokens with probability 0
// must never have been drawn (checked here).
double ChiSquare(const std::vector<int64_t>& counts,
                 const std::vector<double>& probs) {
  int64_t total = 0;
  for (int64_t c : counts) total += c;
  double chi2 = 0;
  for (size_t i = 0; i < counts.size(); ++i) {
    if (probs[i] == 0) {
      EXPECT_EQ(counts[i], 0) << "token " << i << " is outside the support";
      continue;
    }
    const double expected = probs[i] * total;
    chi2 += (counts[i] - expected) * (counts[i] - expected) / expected;
  }
  return chi2;
}

// Ten tokens whose ranking differs from id order. Softmax probabilities:
// 0.338 0.205 0.152 0.124 0.092 0.062 0.046 0.028 0.017 0.006 (by rank).
const std::vector<float> kTen = {0.0f, 2.0f, -1.0f, 1.0f,  0.3f,
                                 1.5f, 1.2f, -2.0f, -0.5f, 0.7f};

// ---------------------------------------------------------------------------
// Parameter validation.

TEST(SamplingParamsTest, DefaultsAndBoundariesAreValid) {
  EXPECT_TRUE(ValidateSamplingParams(SamplingParams{}).ok());
  SamplingParams p;
  p.temperature = 0.0f;
  p.top_p = 1.0f;
  p.top_k = 0;
  p.presence_penalty = -10.0f;
  p.frequency_penalty = 10.0f;
  p.penalty_decay = 1.0f;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
  p.temperature = 100.0f;
  p.top_p = 1e-6f;
  p.top_k = 1 << 30;
  p.presence_penalty = 10.0f;
  p.frequency_penalty = -10.0f;
  p.penalty_decay = 1e-6f;
  EXPECT_TRUE(ValidateSamplingParams(p).ok());
}

struct BadParamCase {
  std::string field;
  std::string value_text;
  void (*mutate)(SamplingParams&);
};

TEST(SamplingParamsTest, EachBadFieldIsInvalidArgumentNamingFieldAndValue) {
  const std::vector<BadParamCase> cases = {
      {"temperature", "nan", [](SamplingParams& p) { p.temperature = kNaN; }},
      {"temperature", "inf", [](SamplingParams& p) { p.temperature = kInf; }},
      {"temperature", "-0.5", [](SamplingParams& p) { p.temperature = -0.5f; }},
      {"temperature", "100.5",
       [](SamplingParams& p) { p.temperature = 100.5f; }},
      {"top_p", "0", [](SamplingParams& p) { p.top_p = 0.0f; }},
      {"top_p", "-0.25", [](SamplingParams& p) { p.top_p = -0.25f; }},
      {"top_p", "1.5", [](SamplingParams& p) { p.top_p = 1.5f; }},
      {"top_p", "nan", [](SamplingParams& p) { p.top_p = kNaN; }},
      {"top_k", "-1", [](SamplingParams& p) { p.top_k = -1; }},
      {"presence_penalty", "nan",
       [](SamplingParams& p) { p.presence_penalty = kNaN; }},
      {"presence_penalty", "-inf",
       [](SamplingParams& p) { p.presence_penalty = -kInf; }},
      {"presence_penalty", "10.5",
       [](SamplingParams& p) { p.presence_penalty = 10.5f; }},
      {"frequency_penalty", "inf",
       [](SamplingParams& p) { p.frequency_penalty = kInf; }},
      {"frequency_penalty", "-12",
       [](SamplingParams& p) { p.frequency_penalty = -12.0f; }},
      {"penalty_decay", "0", [](SamplingParams& p) { p.penalty_decay = 0.0f; }},
      {"penalty_decay", "1.25",
       [](SamplingParams& p) { p.penalty_decay = 1.25f; }},
      {"penalty_decay", "nan",
       [](SamplingParams& p) { p.penalty_decay = kNaN; }},
      {"penalty_decay", "-0.5",
       [](SamplingParams& p) { p.penalty_decay = -0.5f; }},
  };
  for (const BadParamCase& c : cases) {
    SamplingParams params;
    c.mutate(params);
    const absl::Status status = ValidateSamplingParams(params);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument)
        << c.field << "=" << c.value_text;
    const std::string message(status.message());
    EXPECT_NE(message.find(c.field), std::string::npos) << message;
    EXPECT_NE(message.find("got " + c.value_text), std::string::npos)
        << message;
    // Create() refuses the same parameters.
    EXPECT_EQ(Sampler::Create(params, 10).status().code(),
              absl::StatusCode::kInvalidArgument);
  }
}

TEST(SamplerTest, CreateRejectsNonPositiveVocab) {
  EXPECT_EQ(Sampler::Create(SamplingParams{}, 0).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Sampler::Create(SamplingParams{}, -5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(Sampler::Create(SamplingParams{}, 1).ok());
}

// ---------------------------------------------------------------------------
// Logit errors.

TEST(SamplerTest, WrongLogitCountIsInvalidArgument) {
  Sampler sampler = MakeSampler(SamplingParams{}, 10);
  for (size_t size : {0, 9, 11}) {
    std::vector<float> logits(size, 0.0f);
    const absl::Status status = sampler.Sample(logits).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << size;
  }
}

TEST(SamplerTest, NanOrPlusInfLogitIsInvalidArgumentNamingIndex) {
  for (float temperature : {0.0f, 1.0f}) {
    SamplingParams params;
    params.temperature = temperature;
    Sampler sampler = MakeSampler(params, 10);
    std::vector<float> logits = kTen;
    logits[7] = kNaN;
    absl::Status status = sampler.Sample(logits).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(status.message()).find("logits[7] is nan"),
              std::string::npos)
        << status;
    logits[7] = kInf;
    status = sampler.Sample(logits).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(status.message()).find("logits[7] is inf"),
              std::string::npos)
        << status;
  }
}

TEST(SamplerTest, AllMinusInfIsInvalidArgument) {
  Sampler sampler = MakeSampler(SamplingParams{}, 4);
  const std::vector<float> logits(4, -kInf);
  EXPECT_EQ(sampler.Sample(logits).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(SamplerTest, MinusInfLogitsAreNeverDrawn) {
  SamplingParams params;
  params.temperature = 3.0f;  // flattens, so any leak would show
  params.seed = 7;
  Sampler sampler = MakeSampler(params, 6);
  const std::vector<float> logits = {-kInf, 0.0f, -kInf, 0.5f, -kInf, 0.1f};
  const std::vector<int64_t> counts = Histogram(sampler, logits, 3000);
  EXPECT_EQ(counts[0] + counts[2] + counts[4], 0);
  EXPECT_GT(counts[1], 0);
  EXPECT_GT(counts[3], 0);
  EXPECT_GT(counts[5], 0);
}

// ---------------------------------------------------------------------------
// Greedy and top-k = 1.

TEST(SamplerTest, TemperatureZeroIsArgmax) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.top_p = 0.3f;  // irrelevant for greedy
  Sampler sampler = MakeSampler(params, 10);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(SampleOk(sampler, kTen), 1);
  const std::vector<float> logits = RandomLogits(5000, 11, 4.0f, 1.0f);
  Sampler big = MakeSampler(params, 5000);
  EXPECT_EQ(SampleOk(big, logits),
            std::max_element(logits.begin(), logits.end()) - logits.begin());
}

TEST(SamplerTest, TemperatureZeroTieTakesLowestId) {
  SamplingParams params;
  params.temperature = 0.0f;
  Sampler sampler = MakeSampler(params, 6);
  EXPECT_EQ(SampleOk(sampler, {0.0f, 3.0f, -kInf, 3.0f, 1.0f, 3.0f}), 1);
  EXPECT_EQ(SampleOk(sampler, {5.0f, 3.0f, 5.0f, 3.0f, 1.0f, 3.0f}), 0);
}

TEST(SamplerTest, TopKOneEqualsGreedyAtAnyTemperature) {
  std::vector<float> near_tie = kTen;
  near_tie[6] = std::nextafter(2.0f, kInf);  // beats token 1 by one ulp
  for (float temperature : {0.05f, 0.7f, 1.0f, 1.5f, 7.0f, 100.0f}) {
    for (float top_p : {1.0f, 0.5f}) {
      SamplingParams params;
      params.temperature = temperature;
      params.top_p = top_p;
      params.top_k = 1;
      params.seed = 99;
      Sampler sampler = MakeSampler(params, 10);
      for (int i = 0; i < 50; ++i) EXPECT_EQ(SampleOk(sampler, kTen), 1);
      EXPECT_EQ(SampleOk(sampler, near_tie), 6);
      EXPECT_EQ(SampleOk(sampler, {1.0f, 4.0f, 4.0f, 4.0f, 0.0f, 0.0f, 0.0f,
                                   0.0f, 0.0f, 0.0f}),
                1);  // tie: lowest id
      for (uint32_t seed = 0; seed < 5; ++seed) {
        const std::vector<float> logits = RandomLogits(3000, seed, 6.0f, 1.0f);
        Sampler big = MakeSampler(params, 3000);
        EXPECT_EQ(
            SampleOk(big, logits),
            std::max_element(logits.begin(), logits.end()) - logits.begin());
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Distribution: top-p, top-k and temperature against a reference.

// Chi-square bound for <= 9 degrees of freedom at p ~ 1e-5.
constexpr double kChiSquareBound = 40.0;

TEST(SamplerTest, TopPNucleusMaskAndFrequencies) {
  // Ranked probabilities 0.338 0.205 0.152 0.124: the running sum reaches 0.7
  // at the fourth token (0.695 before it), so ids {1, 5, 6, 3} survive.
  SamplingParams params;
  params.top_p = 0.75f;
  params.seed = 1;
  Sampler sampler = MakeSampler(params, 10);
  const std::vector<double> probs = ReferenceDistribution(kTen, 1.0, 0.75, 0);
  int support = 0;
  for (double p : probs) support += p > 0;
  ASSERT_EQ(support, 4);
  ASSERT_GT(probs[1], 0);
  ASSERT_GT(probs[5], 0);
  ASSERT_GT(probs[6], 0);
  ASSERT_GT(probs[3], 0);
  const std::vector<int64_t> counts = Histogram(sampler, kTen, 20000);
  EXPECT_LT(ChiSquare(counts, probs), kChiSquareBound);
  EXPECT_GT(counts[3], 1000);  // the last nucleus token is really drawn
}

TEST(SamplerTest, TopPKeepsTiesAtTheCutoff) {
  // probs 0.4 0.2 0.2 0.2: the sum reaches 0.5 at a 0.2 token and every 0.2
  // token survives, as in ChatRWKV (probs < cutoff are zeroed).
  const std::vector<float> logits = {std::log(0.2f), std::log(0.4f),
                                     std::log(0.2f), std::log(0.2f)};
  SamplingParams params;
  params.top_p = 0.5f;
  Sampler sampler = MakeSampler(params, 4);
  const std::vector<int64_t> counts = Histogram(sampler, logits, 4000);
  for (int i = 0; i < 4; ++i) EXPECT_GT(counts[i], 500) << i;
}

TEST(SamplerTest, DistributionMatchesReferenceForParameterMixes) {
  struct Mix {
    float temperature, top_p;
    int32_t top_k;
  };
  const std::vector<Mix> mixes = {
      {1.0f, 1.0f, 0},   {0.7f, 0.8f, 0},  {1.3f, 0.95f, 5}, {1.0f, 1.0f, 3},
      {0.5f, 0.6f, 2},   {2.0f, 0.9f, 0},  {1.0f, 0.4f, 0},  {3.0f, 1.0f, 9},
      {0.25f, 0.99f, 0}, {1.0f, 0.8f, 10},
  };
  uint64_t seed = 100;
  for (const Mix& mix : mixes) {
    SamplingParams params;
    params.temperature = mix.temperature;
    params.top_p = mix.top_p;
    params.top_k = mix.top_k;
    params.seed = seed++;
    Sampler sampler = MakeSampler(params, 10);
    const std::vector<double> probs =
        ReferenceDistribution(kTen, mix.temperature, mix.top_p, mix.top_k);
    const std::vector<int64_t> counts = Histogram(sampler, kTen, 20000);
    EXPECT_LT(ChiSquare(counts, probs), kChiSquareBound)
        << "T=" << mix.temperature << " top_p=" << mix.top_p
        << " top_k=" << mix.top_k;
  }
}

TEST(SamplerTest, TemperatureSharpensAndFlattens) {
  // probs 0.6 0.3 0.1. T=0.5 squares them: 0.783 0.196 0.022; T=2 takes
  // square roots: 0.473 0.334 0.193.
  const std::vector<float> logits = {std::log(0.3f), std::log(0.1f),
                                     std::log(0.6f)};
  std::vector<double> top_share;
  for (float temperature : {0.5f, 1.0f, 2.0f}) {
    SamplingParams params;
    params.temperature = temperature;
    params.seed = 5;
    Sampler sampler = MakeSampler(params, 3);
    const std::vector<int64_t> counts = Histogram(sampler, logits, 20000);
    const std::vector<double> probs =
        ReferenceDistribution(logits, temperature, 1.0, 0);
    EXPECT_LT(ChiSquare(counts, probs), kChiSquareBound) << temperature;
    top_share.push_back(counts[2] / 20000.0);
  }
  EXPECT_NEAR(top_share[0], 0.783, 0.015);
  EXPECT_NEAR(top_share[1], 0.600, 0.015);
  EXPECT_NEAR(top_share[2], 0.473, 0.015);
}

// Large vocabularies take the quickselect nucleus (top_k 0 or > 1024) and the
// heap top-k (top_k <= 1024) paths; every draw must be in the reference
// support, and the support must be drawn from broadly.
TEST(SamplerTest, LargeVocabDrawsStayInReferenceSupport) {
  struct Mix {
    float top_p;
    int32_t top_k;
  };
  const int32_t vocab = 50277;
  const std::vector<float> logits = RandomLogits(vocab, 3, 12.0f, 4.0f);
  for (const Mix& mix : std::vector<Mix>{{0.9f, 0},
                                         {0.5f, 0},
                                         {0.9f, 40},
                                         {0.97f, 2000},
                                         {1.0f, 300},
                                         {1.0f, 5000},
                                         {0.3f, 1000}}) {
    SCOPED_TRACE(testing::Message()
                 << "top_p=" << mix.top_p << " top_k=" << mix.top_k);
    const std::vector<double> probs =
        ReferenceDistribution(logits, 1.0, mix.top_p, mix.top_k);
    int support = 0;
    for (double p : probs) support += p > 0;
    ASSERT_GT(support, 5);
    ASSERT_LT(support, vocab / 2);
    SamplingParams params;
    params.top_p = mix.top_p;
    params.top_k = mix.top_k;
    params.seed = 17;
    Sampler sampler = MakeSampler(params, vocab);
    std::set<int32_t> distinct;
    double drawn_mass = 0;
    const int draws = 400;
    for (int i = 0; i < draws; ++i) {
      const int32_t token = SampleOk(sampler, logits);
      ASSERT_GE(token, 0);
      ASSERT_GT(probs[token], 0) << "token " << token;
      distinct.insert(token);
      drawn_mass += probs[token];
    }
    EXPECT_GT(distinct.size(), std::min<size_t>(support, 1000) / 4);
    // Mean probability of a drawn token is sum(p^2); loose 20% check.
    double sum_sq = 0;
    for (double p : probs) sum_sq += p * p;
    EXPECT_NEAR(drawn_mass / draws, sum_sq, 0.2 * sum_sq);
  }
}

TEST(SamplerTest, LargeVocabTiesAtCutoffAndTopKTieBreak) {
  // 100 tokens (ids 7, 57, 107, ...) at logit 3 hold 29% of the mass; 4900
  // tokens at logit 0 hold the rest. top_p 0.1 cuts inside the tied group, so
  // the whole group survives and nothing else (quickselect path).
  const int32_t vocab = 5000;
  std::vector<float> logits(vocab, 0.0f);
  for (int32_t i = 7; i < vocab; i += 50) logits[i] = 3.0f;
  SamplingParams params;
  params.top_p = 0.1f;
  params.seed = 21;
  Sampler nucleus = MakeSampler(params, vocab);
  std::set<int32_t> drawn;
  for (int i = 0; i < 2000; ++i) {
    const int32_t token = SampleOk(nucleus, logits);
    ASSERT_EQ(token % 50, 7) << token;
    drawn.insert(token);
  }
  EXPECT_GT(drawn.size(), 90u);

  // top_k 2000 (quickselect path) keeps the group plus the 1900 lowest ids
  // among the logit-0 tokens: ids below 1939, since 39 group ids lie there.
  params.top_p = 1.0f;
  params.top_k = 2000;
  Sampler top_k = MakeSampler(params, vocab);
  int64_t zeros = 0;
  for (int i = 0; i < 3000; ++i) {
    const int32_t token = SampleOk(top_k, logits);
    if (token % 50 == 7) continue;
    ++zeros;
    ASSERT_LT(token, 1939) << token;
  }
  // Mass of the zeros: 1900 / (1900 + 100 e^3) = 0.486.
  EXPECT_NEAR(zeros / 3000.0, 0.486, 0.03);
}

TEST(SamplerTest, ManySurvivorsWithTiesAtTheFloor) {
  // Even ids at logit 1, odd ids at 0. More than 1/8 of the vocabulary
  // survives, so the draw runs over the whole vocabulary with a rank floor.
  const int32_t vocab = 4000;
  std::vector<float> logits(vocab, 0.0f);
  for (int32_t i = 0; i < vocab; i += 2) logits[i] = 1.0f;

  // top_k 2500: the 2000 ones and the 500 lowest-id zeros (odd ids < 1000),
  // which hold 500 / (500 + 2000 e) = 0.0843 of the mass.
  SamplingParams params;
  params.top_k = 2500;
  params.seed = 4;
  Sampler top_k = MakeSampler(params, vocab);
  int64_t zeros = 0;
  std::set<int32_t> drawn;
  for (int i = 0; i < 2500; ++i) {
    const int32_t token = SampleOk(top_k, logits);
    drawn.insert(token);
    if (token % 2 == 0) continue;
    ++zeros;
    ASSERT_LT(token, 1000) << token;
  }
  EXPECT_NEAR(zeros / 2500.0, 0.0843, 0.02);
  EXPECT_GT(drawn.size(), 1000u);

  // top_p 0.5: the ones hold 0.731 of the mass, so the cutoff is a one and
  // all 2000 tied ones survive, no zero.
  params.top_k = 0;
  params.top_p = 0.5f;
  Sampler nucleus = MakeSampler(params, vocab);
  drawn.clear();
  for (int i = 0; i < 2500; ++i) {
    const int32_t token = SampleOk(nucleus, logits);
    ASSERT_EQ(token % 2, 0) << token;
    drawn.insert(token);
  }
  EXPECT_GT(drawn.size(), 1200u);
}

// ---------------------------------------------------------------------------
// Penalties.

TEST(SamplerTest, PenaltyValuesMatchHandComputation) {
  SamplingParams params;
  params.presence_penalty = 0.4f;
  params.frequency_penalty = 0.3f;
  params.penalty_decay = 0.5f;
  Sampler sampler = MakeSampler(params, 10);
  EXPECT_EQ(sampler.Penalty(2), 0.0f);
  sampler.Accept(2);  // {2: 1}
  sampler.Accept(3);  // {2: 0.5, 3: 1}
  sampler.Accept(2);  // {2: 1.25, 3: 0.5}
  EXPECT_EQ(sampler.Occurrence(2), 1.25);
  EXPECT_EQ(sampler.Occurrence(3), 0.5);
  EXPECT_EQ(sampler.Occurrence(4), 0.0);
  EXPECT_NEAR(sampler.Penalty(2), 0.4 + 1.25 * 0.3, 1e-6);
  EXPECT_NEAR(sampler.Penalty(3), 0.4 + 0.5 * 0.3, 1e-6);
  EXPECT_EQ(sampler.Penalty(4), 0.0f);
  // Presence keeps applying while the count decays towards zero.
  for (int i = 0; i < 20; ++i) sampler.Accept(7);
  EXPECT_EQ(sampler.Occurrence(3), std::ldexp(0.5, -20));
  EXPECT_NEAR(sampler.Penalty(3), 0.4, 1e-6);
  // Out-of-range tokens are ignored (and do not decay anything).
  const double before = sampler.Occurrence(7);
  sampler.Accept(-1);
  sampler.Accept(10);
  EXPECT_EQ(sampler.Occurrence(7), before);
}

// Greedy over logits {1.0, 0.75}: token 0 wins until its penalty exceeds 0.25.
int32_t GreedyAfter(float presence, float frequency, float decay,
                    int accepts_of_0) {
  SamplingParams params;
  params.temperature = 0.0f;
  params.presence_penalty = presence;
  params.frequency_penalty = frequency;
  params.penalty_decay = decay;
  Sampler sampler = MakeSampler(params, 2);
  for (int i = 0; i < accepts_of_0; ++i) sampler.Accept(0);
  return SampleOk(sampler, {1.0f, 0.75f});
}

TEST(SamplerTest, PresencePenaltyFlipsAtThreshold) {
  EXPECT_EQ(GreedyAfter(0.2f, 0.0f, 1.0f, 1), 0);   // 0.8 > 0.75
  EXPECT_EQ(GreedyAfter(0.3f, 0.0f, 1.0f, 1), 1);   // 0.7 < 0.75
  EXPECT_EQ(GreedyAfter(0.2f, 0.0f, 1.0f, 5), 0);   // presence is not counted
  EXPECT_EQ(GreedyAfter(0.3f, 0.0f, 1.0f, 0), 0);   // nothing accepted
  EXPECT_EQ(GreedyAfter(-0.3f, 0.0f, 1.0f, 1), 0);  // negative boosts
}

TEST(SamplerTest, FrequencyPenaltyFlipsAtThreshold) {
  EXPECT_EQ(GreedyAfter(0.0f, 0.1f, 1.0f, 2), 0);  // 1.0 - 0.2
  EXPECT_EQ(GreedyAfter(0.0f, 0.1f, 1.0f, 3), 1);  // 1.0 - 0.3
  EXPECT_EQ(GreedyAfter(0.1f, 0.1f, 1.0f, 1), 0);  // 1.0 - 0.2
  EXPECT_EQ(GreedyAfter(0.1f, 0.1f, 1.0f, 2), 1);  // 1.0 - 0.3
}

TEST(SamplerTest, PenaltyDecayBoundsTheCount) {
  // With decay 0.5 the count tends to 2 (1, 1.5, 1.75, ...), so a frequency
  // penalty of 0.2 stays below 0.4 (0.3996 after 10 accepts); without decay
  // 10 accepts cost 2.0.
  SamplingParams params;
  params.temperature = 0.0f;
  params.frequency_penalty = 0.2f;
  params.penalty_decay = 0.5f;
  Sampler decayed = MakeSampler(params, 2);
  for (int i = 0; i < 10; ++i) decayed.Accept(0);
  EXPECT_NEAR(decayed.Occurrence(0), 2.0 - std::ldexp(1.0, -9), 1e-12);
  EXPECT_EQ(SampleOk(decayed, {1.0f, 0.59f}), 0);  // 1 - 0.3996 > 0.59
  params.penalty_decay = 1.0f;
  Sampler plain = MakeSampler(params, 2);
  for (int i = 0; i < 10; ++i) plain.Accept(0);
  EXPECT_EQ(plain.Occurrence(0), 10.0);
  EXPECT_EQ(SampleOk(plain, {1.0f, 0.59f}), 1);
  // ChatRWKV order: decay first, then add one, so after two accepts of 0 and
  // one of 1 with decay 0.5: {0: 0.75, 1: 1}.
  params.penalty_decay = 0.5f;
  Sampler order = MakeSampler(params, 2);
  order.Accept(0);
  order.Accept(0);
  order.Accept(1);
  EXPECT_EQ(order.Occurrence(0), 0.75);
  EXPECT_EQ(order.Occurrence(1), 1.0);
}

TEST(SamplerTest, PenaltiesShiftTheSampledDistribution) {
  // Penalties are applied before softmax: the frequencies must match the
  // reference on the penalized logits.
  SamplingParams params;
  params.presence_penalty = 0.5f;
  params.frequency_penalty = 0.25f;
  params.top_p = 0.9f;
  params.seed = 3;
  Sampler sampler = MakeSampler(params, 10);
  sampler.Accept(1);
  sampler.Accept(1);
  sampler.Accept(5);
  std::vector<float> penalized = kTen;
  penalized[1] -= 0.5f + 2 * 0.25f;
  penalized[5] -= 0.5f + 1 * 0.25f;
  const std::vector<double> probs = ReferenceDistribution(penalized, 1, 0.9, 0);
  const std::vector<int64_t> counts = Histogram(sampler, kTen, 20000);
  EXPECT_LT(ChiSquare(counts, probs), kChiSquareBound);
}

// ---------------------------------------------------------------------------
// Seeds, copies and Reset.

std::vector<int32_t> Sequence(Sampler& sampler,
                              const std::vector<float>& logits, int n,
                              bool accept) {
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    out.push_back(SampleOk(sampler, logits));
    if (accept) sampler.Accept(out.back());
  }
  return out;
}

SamplingParams ChatParams(uint64_t seed) {
  SamplingParams params;
  params.temperature = 1.0f;
  params.top_p = 0.9f;
  params.presence_penalty = 0.4f;
  params.frequency_penalty = 0.4f;
  params.penalty_decay = 0.996f;
  params.seed = seed;
  return params;
}

TEST(SamplerTest, SameSeedSameSequenceDifferentSeedDifferent) {
  const std::vector<float> logits = RandomLogits(1000, 5, 3.0f, 1.0f);
  Sampler a = MakeSampler(ChatParams(42), 1000);
  Sampler b = MakeSampler(ChatParams(42), 1000);
  Sampler c = MakeSampler(ChatParams(43), 1000);
  const std::vector<int32_t> seq_a = Sequence(a, logits, 100, true);
  const std::vector<int32_t> seq_b = Sequence(b, logits, 100, true);
  const std::vector<int32_t> seq_c = Sequence(c, logits, 100, true);
  EXPECT_EQ(seq_a, seq_b);
  EXPECT_NE(seq_a, seq_c);
  EXPECT_GT(std::set<int32_t>(seq_a.begin(), seq_a.end()).size(), 50u);
}

TEST(SamplerTest, CopyContinuesTheSameSequence) {
  const std::vector<float> logits = RandomLogits(1000, 6, 3.0f, 1.0f);
  Sampler a = MakeSampler(ChatParams(8), 1000);
  Sequence(a, logits, 10, true);
  Sampler b = a;
  EXPECT_EQ(Sequence(a, logits, 30, true), Sequence(b, logits, 30, true));
}

TEST(SamplerTest, ResetForgetsOccurrencesAndRewindsRng) {
  const std::vector<float> logits = RandomLogits(1000, 9, 3.0f, 1.0f);
  Sampler sampler = MakeSampler(ChatParams(77), 1000);
  const std::vector<int32_t> first = Sequence(sampler, logits, 40, true);
  EXPECT_GT(sampler.Penalty(first[0]), 0.0f);
  sampler.Reset();
  EXPECT_EQ(sampler.Penalty(first[0]), 0.0f);
  EXPECT_EQ(sampler.Occurrence(first[0]), 0.0);
  EXPECT_EQ(Sequence(sampler, logits, 40, true), first);
}

// Pins the exact token stream (RNG, exp, summation order) so that a change in
// platform or implementation that alters sampling is noticed. Values were
// produced by this implementation; ChatRWKV's RNG differs, so they are not
// ChatRWKV's tokens.
TEST(SamplerTest, GoldenSequence) {
  std::vector<float> logits(1000);
  for (int i = 0; i < 1000; ++i) logits[i] = ((i * 37) % 101) / 10.0f - 5.0f;
  SamplingParams params = ChatParams(2024);
  params.temperature = 0.8f;
  Sampler nucleus = MakeSampler(params, 1000);
  EXPECT_EQ(Sequence(nucleus, logits, 12, true),
            (std::vector<int32_t>{57, 786, 76, 161, 775, 251, 401, 262, 565, 49,
                                  734, 939}));
  params.top_k = 50;
  Sampler top_k = MakeSampler(params, 1000);
  EXPECT_EQ(Sequence(top_k, logits, 12, true),
            (std::vector<int32_t>{232, 726, 333, 838, 928, 262, 969, 363, 999,
                                  131, 251, 685}));
}

// ---------------------------------------------------------------------------
// Timing (run with --gtest_also_run_disabled_tests).

TEST(SamplerBenchmark, DISABLED_NanosecondsPerSample) {
  struct Mix {
    const char* name;
    float temperature, top_p;
    int32_t top_k;
    float presence;
  };
  const std::vector<Mix> mixes = {
      {"greedy", 0.0f, 1.0f, 0, 0.0f},
      {"T=1 top_p=1", 1.0f, 1.0f, 0, 0.0f},
      {"T=1 top_p=0.85", 1.0f, 0.85f, 0, 0.0f},
      {"T=0.7 top_p=0.3", 0.7f, 0.3f, 0, 0.0f},
      {"T=1 top_k=40", 1.0f, 1.0f, 40, 0.0f},
      {"T=0.8 top_p=0.9 top_k=5000", 0.8f, 0.9f, 5000, 0.0f},
      {"chat: T=1 top_p=0.85 pen 0.4/0.4 x500", 1.0f, 0.85f, 0, 0.4f},
  };
  for (int32_t vocab : {50277, 65536}) {
    // "peaked": 16 u^6, nucleus(0.85) ~1500 tokens; "normal": Irwin-Hall
    // approximation of N(0, 2.5^2), nucleus(0.85) ~6000; "flat": 2 u, a
    // worst case whose nucleus(0.85) holds two thirds of the vocabulary.
    for (const char* shape : {"peaked", "normal", "flat"}) {
      const std::string name = shape;
      std::vector<float> logits;
      if (name == "peaked") {
        logits = RandomLogits(vocab, 1, 16.0f, 6.0f);
      } else if (name == "flat") {
        logits = RandomLogits(vocab, 1, 2.0f, 1.0f);
      } else {
        logits.assign(vocab, 0.0f);
        for (int part = 0; part < 12; ++part) {
          const std::vector<float> u = RandomLogits(vocab, 100 + part, 1, 1);
          for (int32_t i = 0; i < vocab; ++i) logits[i] += u[i];
        }
        for (float& x : logits) x = (x - 6.0f) * 2.5f;
      }
      for (const Mix& mix : mixes) {
        SamplingParams params;
        params.temperature = mix.temperature;
        params.top_p = mix.top_p;
        params.top_k = mix.top_k;
        params.presence_penalty = mix.presence;
        params.frequency_penalty = mix.presence;
        params.penalty_decay = 0.996f;
        Sampler sampler = MakeSampler(params, vocab);
        if (mix.presence != 0.0f) {
          for (int i = 0; i < 500; ++i) sampler.Accept((i * 7919) % vocab);
        }
        for (int i = 0; i < 20; ++i) SampleOk(sampler, logits);  // warm up
        // CPU time, so that other processes on the machine matter less.
        const int iters = 300;
        const std::clock_t start = std::clock();
        int64_t sink = 0;
        for (int i = 0; i < iters; ++i) sink += SampleOk(sampler, logits);
        const double ns = 1e9 * static_cast<double>(std::clock() - start) /
                          CLOCKS_PER_SEC / iters;
        std::printf("vocab %6d %-6s %-40s %9.0f ns/Sample (sink %lld)\n", vocab,
                    shape, mix.name, ns, static_cast<long long>(sink));
      }
    }
  }
}

}  // namespace
}  // namespace rwkv::engine
