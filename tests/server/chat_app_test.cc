// The application layer without gRPC: ChatApp over the FakeEngine, the real
// scheduler and the memory store. Covers the turn life cycle, creation with
// prefixes (single flight, cancellation), the state tools and the checks
// that make error messages safe. Runs in about a second.
#include "server/app/chat_app.h"

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/session/memory_session_store.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/recording_stream.h"

namespace rwkv::server {
namespace {

// A server without API keys: the anonymous tenant, which sees everything.
const Caller kCaller = Caller::Anonymous();

using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::RecordingStream;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;
using ::testing::StartsWith;

template <typename T>
class Waiter {
 public:
  ChatApp::Callback<T> Callback() {
    return [this](absl::StatusOr<T> r) {
      result_ = std::move(r);
      done_.Notify();
    };
  }
  absl::StatusOr<T> Get() {
    done_.WaitForNotification();
    return std::move(result_);
  }

 private:
  absl::Notification done_;
  absl::StatusOr<T> result_ = absl::UnknownError("no answer");
};

std::vector<int32_t> Tokens(const std::string& text) {
  return std::vector<int32_t>(text.begin(), text.end());
}

class ChatAppTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SessionManagerOptions so;
    so.sweep_interval = absl::ZeroDuration();
    sessions_ = std::make_unique<SessionManager>(so, &store_);
    SchedulerOptions sched;
    sched.chunk_size = 8;
    scheduler_ = std::make_unique<Scheduler>(&engine_, tokenizer_.get(), sched);
    engine::PrefixCacheOptions pc;
    cache_ = std::make_unique<engine::PrefixCache>(pc);
    app_ = std::make_unique<ChatApp>(engine_.shared_model(), tokenizer_.get(),
                                     sessions_.get(), scheduler_.get(),
                                     cache_.get(), AppOptions());
  }
  void TearDown() override { scheduler_->Stop(); }

  absl::StatusOr<SessionInfo> Create(CreateSessionRequest r) {
    Waiter<SessionInfo> w;
    app_->CreateSession(kCaller, std::move(r), w.Callback());
    return w.Get();
  }
  absl::StatusOr<SessionInfo> Create(const std::string& id,
                                     const std::string& prefix = "") {
    CreateSessionRequest r;
    r.session_id = id;
    r.prefix = prefix;
    return Create(std::move(r));
  }
  std::shared_ptr<RecordingStream> Start(const std::string& id,
                                         const std::string& text,
                                         int max_tokens) {
    auto stream = std::make_shared<RecordingStream>();
    TurnRequest r;
    r.session_id = id;
    r.text = text;
    r.sampling.temperature = 0;
    r.max_tokens = max_tokens;
    r.ignore_eos = true;
    app_->StartTurn(kCaller, std::move(r), stream);
    return stream;
  }
  // Each engine call takes a millisecond: long turns last seconds.
  void SlowDown() {
    engine_.set_before_call([] { absl::SleepFor(absl::Milliseconds(1)); });
  }
  // The fake model's greedy continuation from a state with hash `h`.
  std::vector<int32_t> Greedy(uint32_t h, int n) {
    std::vector<int32_t> out;
    for (int i = 0; i < n; ++i) {
      out.push_back(engine_.GreedyAfter(h));
      h = FakeEngine::Hash(h, {out.back()});
    }
    return out;
  }

  FakeEngine engine_;
  std::unique_ptr<engine::Tokenizer> tokenizer_ =
      *engine::Tokenizer::Load("bytes");
  MemorySessionStore store_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<engine::PrefixCache> cache_;
  std::unique_ptr<ChatApp> app_;
};

TEST_F(ChatAppTest, TurnsContinueTheSession) {
  ASSERT_TRUE(Create("a").ok());
  auto t1 = Start("a", "hello", 4);
  t1->finished.WaitForNotification();
  std::vector<int32_t> first;
  {
    absl::MutexLock lock(&t1->mu);
    ASSERT_TRUE(t1->status.ok()) << t1->status;
    first = t1->ids;
    EXPECT_THAT(first, ElementsAreArray(
                           Greedy(FakeEngine::Hash(0, Tokens("hello")), 4)));
    EXPECT_EQ(t1->last.finish_reason, FinishReason::kLength);
  }
  EXPECT_EQ(app_->GetSession(kCaller, "a")->token_count, 9);
  // The next turn starts where the first ended.
  uint32_t h = FakeEngine::Hash(FakeEngine::Hash(0, Tokens("hello")), first);
  auto t2 = Start("a", "more", 3);
  t2->finished.WaitForNotification();
  absl::MutexLock lock(&t2->mu);
  EXPECT_THAT(t2->ids,
              ElementsAreArray(Greedy(FakeEngine::Hash(h, Tokens("more")), 3)));
  EXPECT_EQ(app_->GetSession(kCaller, "a")->token_count, 16);
}

TEST_F(ChatAppTest, DeletingTheSessionStopsItsTurnWithAborted) {
  ASSERT_TRUE(Create("a").ok());
  SlowDown();
  auto t = Start("a", "go", 4000);
  t->first_chunk.WaitForNotification();
  absl::Notification deleted;
  app_->DeleteSession(kCaller, "a", [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    deleted.Notify();
  });
  deleted.WaitForNotification();
  t->finished.WaitForNotification();
  absl::MutexLock lock(&t->mu);
  EXPECT_EQ(t->status.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(t->status.message()), HasSubstr("deleted"));
  EXPECT_LT(t->ids.size(), 4000u);
  EXPECT_EQ(app_->GetSession(kCaller, "a").status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ChatAppTest, ACancelledTurnIsRolledBack) {
  ASSERT_TRUE(Create("a").ok());
  SlowDown();
  auto t = Start("a", "go", 4000);
  t->first_chunk.WaitForNotification();
  t->cancelled = true;
  t->finished.WaitForNotification();
  {
    absl::MutexLock lock(&t->mu);
    EXPECT_EQ(t->status.code(), absl::StatusCode::kCancelled);
  }
  absl::StatusOr<SessionInfo> info = app_->GetSession(kCaller, "a");
  EXPECT_EQ(info->token_count, 0);
  EXPECT_FALSE(info->busy);
}

TEST_F(ChatAppTest, ASecondTurnOnABusySessionIsRefused) {
  ASSERT_TRUE(Create("a").ok());
  SlowDown();
  auto t1 = Start("a", "go", 4000);
  t1->first_chunk.WaitForNotification();
  auto t2 = Start("a", "again", 2);
  t2->finished.WaitForNotification();
  {
    absl::MutexLock lock(&t2->mu);
    EXPECT_EQ(t2->status.code(), absl::StatusCode::kFailedPrecondition);
  }
  t1->cancelled = true;
  t1->finished.WaitForNotification();
}

TEST_F(ChatAppTest, ACancelledCreateSessionLeavesNothingBehind) {
  absl::Notification entered, gate;
  std::atomic<int> calls{0};
  engine_.set_before_call([&] {
    if (calls++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  std::atomic<bool> gone{false};
  CreateSessionRequest r;
  r.session_id = "c";
  r.prefix = std::string(40, 'p');  // five chunks of 8
  r.cancelled = [&gone] { return gone.load(); };
  Waiter<SessionInfo> w;
  app_->CreateSession(kCaller, std::move(r), w.Callback());
  entered.WaitForNotification();
  gone = true;  // the client leaves while the prefix runs
  gate.Notify();
  EXPECT_EQ(w.Get().status().code(), absl::StatusCode::kCancelled);
  absl::Status s = app_->GetSession(kCaller, "c").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("unknown"));
  EXPECT_LT(engine_.tokens_fed(), 40);                  // it stopped early
  EXPECT_TRUE(Create("c", std::string(40, 'p')).ok());  // a retry works
}

TEST_F(ChatAppTest, IdenticalConcurrentPrefixesAreComputedOnce) {
  absl::Notification entered, gate;
  std::atomic<int> calls{0};
  engine_.set_before_call([&] {
    if (calls++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  const std::string prefix(30, 's');
  CreateSessionRequest a;
  a.session_id = "a";
  a.prefix = prefix;
  CreateSessionRequest b = a;
  b.session_id = "b";
  Waiter<SessionInfo> wa, wb;
  app_->CreateSession(kCaller, std::move(a), wa.Callback());
  entered.WaitForNotification();
  app_->CreateSession(kCaller, std::move(b), wb.Callback());
  gate.Notify();
  absl::StatusOr<SessionInfo> ia = wa.Get();
  absl::StatusOr<SessionInfo> ib = wb.Get();
  ASSERT_TRUE(ia.ok() && ib.ok()) << ia.status() << ib.status();
  EXPECT_EQ(engine_.tokens_fed(), 30);  // computed once
  EXPECT_EQ(ia->prefix_cached_tokens, 0);
  EXPECT_EQ(ib->prefix_cached_tokens, 30);
  const uint32_t want = FakeEngine::Hash(0, Tokens(prefix));
  EXPECT_EQ(FakeEngine::HashOf(**sessions_->ReadState("a")), want);
  EXPECT_EQ(FakeEngine::HashOf(**sessions_->ReadState("b")), want);
  EXPECT_EQ(cache_->stats().coalesced, 1);
}

TEST_F(ChatAppTest, AFreshSessionsFirstTurnReportsCachedPromptTokens) {
  const std::string system = "You are a helpful assistant. ";
  ASSERT_TRUE(Create("warm", system).ok());  // caches the system prompt
  ASSERT_TRUE(Create("fresh").ok());
  const int64_t fed_before = engine_.tokens_fed();
  auto t = Start("fresh", system + "Hi!", 3);
  t->finished.WaitForNotification();
  absl::MutexLock lock(&t->mu);
  ASSERT_TRUE(t->status.ok()) << t->status;
  EXPECT_EQ(t->last.cached_tokens, static_cast<int32_t>(system.size()));
  EXPECT_EQ(t->last.prompt_tokens, static_cast<int32_t>(system.size() + 3));
  // Only "Hi!" and the reply were computed, and the reply is what a cold
  // run gives.
  EXPECT_EQ(engine_.tokens_fed() - fed_before, 3 + 3);
  EXPECT_THAT(t->ids, ElementsAreArray(Greedy(
                          FakeEngine::Hash(0, Tokens(system + "Hi!")), 3)));
}

TEST_F(ChatAppTest, EchoedClientValuesAreCut) {
  const std::string huge(10000, 'z');
  absl::Status s = app_->ExportState(kCaller, "x", huge).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);  // bad id first
  ASSERT_TRUE(Create("x").ok());
  s = app_->ExportState(kCaller, "x", huge).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
  EXPECT_THAT(std::string(s.message()), HasSubstr("(10000 bytes)"));
  CreateSessionRequest r;
  r.initial_state_name = huge;
  s = Create(std::move(r)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_LT(s.message().size(), 200u);
  s = app_->GetSession(kCaller, huge + "!").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_LT(s.message().size(), 200u);
}

TEST_F(ChatAppTest, EveryBadSessionIdSaysWhichField) {
  EXPECT_THAT(std::string(Create("bad id!").status().message()),
              StartsWith("session_id: "));
  EXPECT_THAT(
      std::string(app_->GetSession(kCaller, "bad id!").status().message()),
      StartsWith("session_id: "));
  Waiter<SessionInfo> w;
  app_->ForkSession(kCaller, ForkRequest{"ok", "bad id!", 0}, w.Callback());
  EXPECT_THAT(std::string(w.Get().status().message()),
              StartsWith("new_session_id: "));
}

TEST_F(ChatAppTest, StateToolsWorkOnSharedStates) {
  ASSERT_TRUE(Create("a", "abc").ok());
  Waiter<SessionInfo> fork;
  app_->ForkSession(kCaller, ForkRequest{"a", "b", 0}, fork.Callback());
  ASSERT_TRUE(fork.Get().ok());
  EXPECT_EQ(*sessions_->ReadState("a"), *sessions_->ReadState("b"));
  // A turn on the fork leaves the source alone.
  auto t = Start("b", "x", 2);
  t->finished.WaitForNotification();
  EXPECT_EQ(app_->GetSession(kCaller, "a")->token_count, 3);
  EXPECT_EQ(app_->GetSession(kCaller, "b")->token_count, 6);
  // Export and import round-trip; reset goes back to the fork point.
  absl::StatusOr<ExportedState> bytes = app_->ExportState(kCaller, "b", "");
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  ImportRequest imp;
  imp.session_id = "c";
  imp.state = bytes->bytes;
  Waiter<SessionInfo> imported;
  app_->ImportState(kCaller, std::move(imp), imported.Callback());
  ASSERT_TRUE(imported.Get().ok());
  EXPECT_EQ(FakeEngine::HashOf(**sessions_->ReadState("c")),
            FakeEngine::HashOf(**sessions_->ReadState("b")));
  Waiter<SessionInfo> reset;
  app_->ResetSession(kCaller, "b", reset.Callback());
  EXPECT_EQ(reset.Get()->token_count, 3);
}

}  // namespace
}  // namespace rwkv::server
