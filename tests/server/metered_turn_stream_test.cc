// MeteredTurnStream: what it reports for a completed, a cancelled and a
// refused turn, on a fake clock, and that the front's stream sees every
// call unchanged.
#include "server/app/metered_turn_stream.h"

#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/recording_stream.h"

namespace rwkv::server {
namespace {

using ::rwkv::testing::RecordingStream;

class RecordingMetrics final : public TurnMetrics {
 public:
  void ObserveQueueTime(Front f, absl::Duration d) override {
    log.push_back(Line("queue", f, d));
  }
  void ObserveTimeToFirstToken(Front f, absl::Duration d) override {
    log.push_back(Line("ttft", f, d));
  }
  void ObserveInterToken(Front f, absl::Duration d, int tokens) override {
    log.push_back(Line("itl", f, d) + " x" + std::to_string(tokens));
  }
  void ObserveFinished(Front f, const TurnOutcome& o) override {
    log.push_back(Line("done:" + o.reason, f, o.e2e) + " p" +
                  std::to_string(o.prompt_tokens) + " c" +
                  std::to_string(o.cached_tokens) + " g" +
                  std::to_string(o.generated_tokens));
  }
  std::vector<std::string> log;

 private:
  static std::string Line(const std::string& what, Front f, absl::Duration d) {
    return what + (f == Front::kHttp ? " http " : " grpc ") +
           std::to_string(absl::ToInt64Milliseconds(d)) + "ms";
  }
};

class MeteredTurnStreamTest : public ::testing::Test {
 protected:
  // A metered stream over `inner` (a new recording stream if null).
  std::shared_ptr<MeteredTurnStream> Make(
      Front front, std::shared_ptr<RecordingStream> inner = nullptr) {
    if (inner == nullptr) inner = std::make_shared<RecordingStream>();
    return std::make_shared<MeteredTurnStream>(inner, &metrics_, front,
                                               [this] { return now_; });
  }
  static TurnChunk Chunk(int tokens,
                         FinishReason reason = FinishReason::kNone) {
    TurnChunk c;
    c.token_ids.assign(tokens, 7);
    c.text = std::string(tokens, 'x');
    c.finish_reason = reason;
    return c;
  }

  absl::Time now_ = absl::FromUnixSeconds(1000);
  std::shared_ptr<RecordingStream> inner_ = std::make_shared<RecordingStream>();
  RecordingMetrics metrics_;
};

TEST_F(MeteredTurnStreamTest, ReportsTheTimesAndUsageOfACompletedTurn) {
  auto s = Make(Front::kHttp, inner_);
  now_ += absl::Milliseconds(30);
  s->OnStarted();
  now_ += absl::Milliseconds(70);
  s->OnChunk(Chunk(1));
  now_ += absl::Milliseconds(40);
  s->OnChunk(Chunk(2));
  now_ += absl::Milliseconds(10);
  TurnChunk last = Chunk(0, FinishReason::kStop);
  last.prompt_tokens = 50;
  last.cached_tokens = 40;
  last.generated_tokens = 3;
  s->OnChunk(last);
  s->OnFinish(absl::OkStatus());
  EXPECT_THAT(metrics_.log,
              ::testing::ElementsAre("queue http 30ms", "ttft http 100ms",
                                     "itl http 40ms x2",
                                     "done:stop http 150ms p50 c40 g3"));
  absl::MutexLock lock(&inner_->mu);
  EXPECT_EQ(inner_->text, "xxx");
  EXPECT_EQ(inner_->chunks, 3);
  EXPECT_TRUE(inner_->finished.HasBeenNotified());
  EXPECT_TRUE(inner_->started.HasBeenNotified());
}

TEST_F(MeteredTurnStreamTest, NamesHowAnUnfinishedTurnEnded) {
  auto cancelled = Make(Front::kGrpc);
  cancelled->OnChunk(Chunk(1));
  now_ += absl::Seconds(2);
  cancelled->OnFinish(absl::CancelledError("gone"));
  Make(Front::kGrpc)->OnFinish(absl::InvalidArgumentError("bad"));
  Make(Front::kHttp)->OnFinish(absl::AbortedError("deleted"));
  Make(Front::kHttp)->OnFinish(absl::UnavailableError("stopping"));
  EXPECT_THAT(metrics_.log,
              ::testing::ElementsAre("ttft grpc 0ms",
                                     "done:cancelled grpc 2000ms p0 c0 g0",
                                     "done:error grpc 0ms p0 c0 g0",
                                     "done:aborted http 0ms p0 c0 g0",
                                     "done:unavailable http 0ms p0 c0 g0"));
}

}  // namespace
}  // namespace rwkv::server
