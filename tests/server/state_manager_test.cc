#include "server/state_manager.h"

#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/rwkv_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

using ::testing::HasSubstr;

// A clock the test moves by hand.
class FakeClock {
 public:
  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ = absl::FromUnixSeconds(1700000000);
};

class StateManagerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    engine::RandomModelSpec spec;
    spec.n_layer = 1;
    spec.n_embd = 16;
    spec.vocab_size = 256;
    spec.seed = 3;
    engine::EngineOptions opts;
    opts.num_threads = 1;
    auto e = engine::RwkvEngine::CreateRandom(spec, opts);
    ASSERT_TRUE(e.ok()) << e.status();
    engine_ = e->release();
  }
  static void TearDownTestSuite() {
    delete engine_;
    engine_ = nullptr;
  }

  StateManagerOptions Options() {
    StateManagerOptions o;
    o.default_ttl = absl::Seconds(60);
    o.sweep_interval = absl::ZeroDuration();  // tests call Sweep()
    o.clock = [this] { return clock_.Now(); };
    return o;
  }
  NewSession Fresh(const std::string& id) {
    NewSession ns;
    ns.id = id;
    ns.state = engine_->NewState();
    return ns;
  }
  // A state with `n` tokens fed.
  engine::State Fed(int n) {
    engine::State s = engine_->NewState();
    std::vector<int32_t> tokens(n, 65);
    EXPECT_TRUE(engine_->Forward(tokens, s).ok());
    return s;
  }
  int64_t Bytes() { return engine_->NewState().SizeBytes(); }

  static engine::Engine* engine_;
  FakeClock clock_;
};

engine::Engine* StateManagerTest::engine_ = nullptr;

TEST_F(StateManagerTest, CreateGetAndGeneratedIds) {
  StateManager m(Options());
  auto a = m.Create(Fresh("alice"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "alice");
  EXPECT_EQ(a->ttl, absl::Seconds(60));
  auto g = m.Create(Fresh(""));
  ASSERT_TRUE(g.ok());
  EXPECT_FALSE(g->id.empty());
  EXPECT_TRUE(StateManager::ValidateId(g->id).ok());
  EXPECT_EQ(m.Create(Fresh("alice")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(m.Create(Fresh("bad id!")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.Create(Fresh(std::string(129, 'a'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m.session_count(), 2);
}

TEST_F(StateManagerTest, ExpiresAfterTtlFromLastUseAndSaysSo) {
  StateManager m(Options());
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  clock_.Advance(absl::Seconds(50));
  ASSERT_TRUE(m.Touch("a", absl::ZeroDuration()).ok());  // counts as use
  clock_.Advance(absl::Seconds(50));
  EXPECT_TRUE(m.Get("a").ok());
  clock_.Advance(absl::Seconds(11));
  absl::Status s = m.Get("a").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expired"));
  EXPECT_THAT(std::string(m.Get("nobody").status().message()),
              HasSubstr("unknown"));
}

TEST_F(StateManagerTest, SweepFreesExpiredSessionsWithoutAccess) {
  StateManager m(Options());
  NewSession longer = Fresh("long");
  longer.ttl = absl::Seconds(600);
  ASSERT_TRUE(m.Create(std::move(longer)).ok());
  ASSERT_TRUE(m.Create(Fresh("short")).ok());
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(m.Sweep(), 1);
  EXPECT_EQ(m.session_count(), 1);
  EXPECT_THAT(std::string(m.Get("short").status().message()),
              HasSubstr("expired"));
  EXPECT_TRUE(m.Get("long").ok());
}

TEST_F(StateManagerTest, BackgroundSweeperRuns) {
  StateManagerOptions o = Options();
  o.sweep_interval = absl::Milliseconds(5);
  StateManager m(o);
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  clock_.Advance(absl::Seconds(61));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (m.session_count() != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(m.session_count(), 0);
}

TEST_F(StateManagerTest, LruEvictionByBytesSkipsBusySessions) {
  StateManagerOptions o = Options();
  o.max_state_bytes = 3 * Bytes();  // three sessions (shared initial)
  StateManager m(o);
  auto make = [&](const std::string& id) {
    NewSession ns = Fresh(id);
    ns.initial = std::make_shared<const engine::State>(engine_->NewState());
    ns.initial_shared = true;
    return m.Create(std::move(ns));
  };
  ASSERT_TRUE(make("a").ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(make("b").ok());
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(make("c").ok());
  // "a" is the least recently used, but it is busy: "b" goes.
  auto lease = m.BeginTurn("a");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(make("d").ok());
  EXPECT_TRUE(m.Get("a").ok());
  absl::Status gone = m.Get("b").status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.message()), HasSubstr("evicted"));
  EXPECT_LE(m.total_bytes(), o.max_state_bytes);
  // Touching "c" makes "d" the LRU idle one.
  ASSERT_TRUE(m.Touch("c", absl::ZeroDuration()).ok());
  ASSERT_TRUE(make("e").ok());
  EXPECT_TRUE(m.Get("c").ok());
  EXPECT_THAT(std::string(m.Get("d").status().message()), HasSubstr("evicted"));
  // Everything else busy: no room.
  ASSERT_TRUE(m.BeginTurn("c").ok());
  ASSERT_TRUE(m.BeginTurn("e").ok());
  EXPECT_EQ(make("f").status().code(), absl::StatusCode::kResourceExhausted);
  m.AbandonTurn(*lease);
}

TEST_F(StateManagerTest, MaxSessionsIsResourceExhausted) {
  StateManagerOptions o = Options();
  o.max_sessions = 2;
  StateManager m(o);
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  ASSERT_TRUE(m.Create(Fresh("b")).ok());
  absl::Status s = m.Create(Fresh("c")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m.CheckCanCreate("c").code(), absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(m.Delete("a").ok());
  EXPECT_TRUE(m.Create(Fresh("c")).ok());
  EXPECT_THAT(std::string(m.Get("a").status().message()), HasSubstr("deleted"));
}

TEST_F(StateManagerTest, TurnLeaseBusyCommitAndAbandon) {
  StateManager m(Options());
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  auto lease = m.BeginTurn("a");
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(m.Get("a")->busy);
  EXPECT_EQ(m.BeginTurn("a").status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(m.Reset("a").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Busy sessions do not expire.
  clock_.Advance(absl::Seconds(120));
  EXPECT_EQ(m.Sweep(), 0);
  // Abandon: the pre-turn state stays.
  std::vector<int32_t> tokens = {1, 2, 3};
  ASSERT_TRUE(engine_->Forward(tokens, lease->state).ok());
  m.AbandonTurn(*lease);
  EXPECT_EQ(m.Get("a")->token_count, 0);
  EXPECT_FALSE(m.Get("a")->busy);
  // Commit: the new state is stored.
  auto lease2 = m.BeginTurn("a");
  ASSERT_TRUE(lease2.ok());
  ASSERT_TRUE(engine_->Forward(tokens, lease2->state).ok());
  ASSERT_TRUE(m.CommitTurn(*std::move(lease2)).ok());
  EXPECT_EQ(m.Get("a")->token_count, 3);
  // Reset goes back to the initial state.
  EXPECT_EQ(m.Reset("a")->token_count, 0);
}

TEST_F(StateManagerTest, CommitAfterDeleteIsDropped) {
  StateManager m(Options());
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  auto lease = m.BeginTurn("a");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(m.Delete("a").ok());
  ASSERT_TRUE(m.Create(Fresh("a")).ok());  // same id, new session
  EXPECT_EQ(m.CommitTurn(*std::move(lease)).code(),
            absl::StatusCode::kNotFound);
  EXPECT_FALSE(m.Get("a")->busy);
}

TEST_F(StateManagerTest, ReplaceStateAndInitial) {
  StateManager m(Options());
  ASSERT_TRUE(m.Create(Fresh("a")).ok());
  auto snap = m.ReplaceState("a", Fed(4), StateManager::ReplaceInitial::kYes);
  ASSERT_TRUE(snap.ok());
  EXPECT_EQ(snap->token_count, 4);
  ASSERT_TRUE(
      m.ReplaceState("a", Fed(7), StateManager::ReplaceInitial::kNo).ok());
  EXPECT_EQ(m.Get("a")->token_count, 7);
  EXPECT_EQ(m.Reset("a")->token_count, 4);
  auto copy = m.CopyState("a");
  ASSERT_TRUE(copy.ok());
  EXPECT_EQ(copy->token_count(), 4);
}

TEST_F(StateManagerTest, ListPagesInIdOrder) {
  StateManager m(Options());
  for (const char* id : {"c", "a", "e", "b", "d"}) {
    ASSERT_TRUE(m.Create(Fresh(id)).ok());
  }
  SessionPage p1 = m.List(2, "");
  ASSERT_EQ(p1.sessions.size(), 2u);
  EXPECT_EQ(p1.sessions[0].id, "a");
  EXPECT_EQ(p1.sessions[1].id, "b");
  EXPECT_EQ(p1.total, 5);
  SessionPage p2 = m.List(2, p1.next_page_token);
  EXPECT_EQ(p2.sessions[0].id, "c");
  SessionPage p3 = m.List(2, p2.next_page_token);
  ASSERT_EQ(p3.sessions.size(), 1u);
  EXPECT_EQ(p3.sessions[0].id, "e");
  EXPECT_TRUE(p3.next_page_token.empty());
}

TEST_F(StateManagerTest, RejectsTtlAboveTheMaximum) {
  StateManager m(Options());
  NewSession ns = Fresh("a");
  ns.ttl = absl::Hours(24 * 365);
  EXPECT_EQ(m.Create(std::move(ns)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace rwkv::server
