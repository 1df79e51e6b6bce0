#include "server/sched/turn_runner.h"

#include <cmath>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

using ::testing::ElementsAre;
using Next = TurnRunner::Next;

// Bytes 0-255 plus an end-of-text token 256.
class EosByteTokenizer final : public engine::Tokenizer {
 public:
  absl::StatusOr<std::vector<int32_t>> Encode(
      std::string_view text) const override {
    return std::vector<int32_t>(text.begin(), text.end());
  }
  absl::StatusOr<std::string> Decode(
      absl::Span<const int32_t> ids) const override {
    std::string out;
    for (int32_t id : ids) {
      if (id < 0 || id > 255) return absl::InvalidArgumentError("bad id");
      out.push_back(static_cast<char>(id));
    }
    return out;
  }
  int vocab_size() const override { return 257; }
  std::string_view name() const override { return "bytes+eos"; }
  std::optional<int32_t> eos_token() const override { return 256; }
};

constexpr int kVocab = 257;
constexpr int32_t kEos = 256;

// Logits whose argmax is `token`.
std::vector<float> Row(int32_t token) {
  std::vector<float> row(kVocab, 0.0f);
  row[token] = 5.0f;
  return row;
}

GenerateJob Job(int max_tokens, std::vector<std::string> stop = {},
                bool ignore_eos = false) {
  GenerateJob job;
  job.sampling.temperature = 0;  // greedy
  job.max_tokens = max_tokens;
  job.stop = std::move(stop);
  job.ignore_eos = ignore_eos;
  return job;
}

class TurnRunnerTest : public ::testing::Test {
 protected:
  TurnRunner Make(const GenerateJob& job) {
    absl::StatusOr<TurnRunner> r = TurnRunner::Create(job, tokenizer_, kVocab);
    EXPECT_TRUE(r.ok()) << r.status();
    return *std::move(r);
  }
  // Feeds rows for `tokens`; returns the text of the chunks taken.
  std::string Run(TurnRunner& runner, const std::vector<int32_t>& tokens,
                  std::vector<Next>* nexts) {
    std::string text;
    for (int32_t t : tokens) {
      absl::StatusOr<Next> next = runner.OnLogits(Row(t));
      EXPECT_TRUE(next.ok()) << next.status();
      nexts->push_back(*next);
      if (*next == Next::kFinish) break;
      if (std::optional<TurnChunk> c = runner.TakeChunk(0)) text += c->text;
    }
    return text;
  }

  EosByteTokenizer tokenizer_;
};

TEST_F(TurnRunnerTest, MaxTokensSendsEverythingAndFeedsTheLastToken) {
  TurnRunner runner = Make(Job(/*max_tokens=*/2));
  std::vector<Next> nexts;
  // Two samples, then the logits after feeding the second end the turn.
  EXPECT_EQ(Run(runner, {'H', 'i', 'x'}, &nexts), "Hi");
  EXPECT_THAT(nexts, ElementsAre(Next::kFeed, Next::kFeed, Next::kFinish));
  TurnChunk last = runner.TakeLast(/*token_count=*/7, 5, 1);
  EXPECT_EQ(last.finish_reason, FinishReason::kLength);
  EXPECT_EQ(last.generated_tokens, 2);
  EXPECT_EQ(last.prompt_tokens, 5);
  EXPECT_EQ(last.cached_tokens, 1);
  EXPECT_EQ(last.token_count, 7);
  EXPECT_TRUE(last.text.empty());
}

TEST_F(TurnRunnerTest, StopStringIsNotSentButItsTokenIsFed) {
  TurnRunner runner = Make(Job(10, {"\n\n"}));
  std::vector<Next> nexts;
  EXPECT_EQ(Run(runner, {'a', '\n', '\n', 'z'}, &nexts), "a");
  // The token completing the stop is pending (fed) before the turn ends.
  EXPECT_THAT(
      nexts, ElementsAre(Next::kFeed, Next::kFeed, Next::kFeed, Next::kFinish));
  EXPECT_EQ(runner.TakeLast(0, 0, 0).finish_reason, FinishReason::kStop);
}

TEST_F(TurnRunnerTest, ChunkIdsIncludeTokensWhoseTextIsHeldBack) {
  TurnRunner runner = Make(Job(10, {"xy"}));
  ASSERT_EQ(*runner.OnLogits(Row('x')), Next::kFeed);
  EXPECT_EQ(runner.pending_token(), 'x');
  std::optional<TurnChunk> c = runner.TakeChunk(/*token_count=*/3);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->text, "");  // might become "xy"
  EXPECT_THAT(c->token_ids, ElementsAre('x'));
  EXPECT_EQ(c->token_count, 4);  // the pending token counts
}

TEST_F(TurnRunnerTest, EndOfTextEndsAtOnceAndIsNeitherSentNorFed) {
  TurnRunner runner = Make(Job(10, {"\n\n"}));
  ASSERT_EQ(*runner.OnLogits(Row('a')), Next::kFeed);
  (void)runner.TakeChunk(0);
  ASSERT_EQ(*runner.OnLogits(Row('\n')), Next::kFeed);
  (void)runner.TakeChunk(0);
  ASSERT_EQ(*runner.OnLogits(Row(kEos)), Next::kFinish);
  TurnChunk last = runner.TakeLast(0, 0, 0);
  EXPECT_EQ(last.finish_reason, FinishReason::kEos);
  EXPECT_EQ(last.text, "\n");  // the held-back newline is flushed
  EXPECT_TRUE(last.token_ids.empty());
  EXPECT_EQ(last.generated_tokens, 2);
}

TEST_F(TurnRunnerTest, IgnoreEosTreatsItAsAnUndecodableToken) {
  TurnRunner runner = Make(Job(1, {}, /*ignore_eos=*/true));
  ASSERT_EQ(*runner.OnLogits(Row(kEos)), Next::kFeed);
  EXPECT_EQ(runner.pending_token(), kEos);
  std::optional<TurnChunk> c = runner.TakeChunk(0);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->text, "");
  EXPECT_THAT(c->token_ids, ElementsAre(kEos));
}

TEST_F(TurnRunnerTest, SplitCharactersAreSentWhole) {
  TurnRunner runner = Make(Job(10));
  ASSERT_EQ(*runner.OnLogits(Row(0xC3)), Next::kFeed);
  EXPECT_EQ(runner.TakeChunk(0)->text, "");
  ASSERT_EQ(*runner.OnLogits(Row(0xA9)), Next::kFeed);
  EXPECT_EQ(runner.TakeChunk(0)->text, "\xC3\xA9");
}

TEST_F(TurnRunnerTest, NonFiniteLogitsAreAnError) {
  TurnRunner runner = Make(Job(10));
  std::vector<float> row = Row('a');
  row[3] = std::numeric_limits<float>::quiet_NaN();
  absl::StatusOr<Next> next = runner.OnLogits(row);
  EXPECT_FALSE(next.ok());
  EXPECT_THAT(std::string(next.status().message()),
              ::testing::HasSubstr("sampling failed"));
}

TEST_F(TurnRunnerTest, BadSamplingIsRefusedAtCreation) {
  GenerateJob job = Job(4);
  job.sampling.top_p = 2.0f;
  EXPECT_EQ(TurnRunner::Create(job, tokenizer_, kVocab).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rwkv::server
