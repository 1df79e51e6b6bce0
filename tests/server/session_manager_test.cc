// SessionManager over the memory store, on FakeEngine states and a fake
// clock: TTL, LRU eviction by bytes, leases, listing, and what the store
// holds. No real model, no wall-clock waits (except the one test of the
// sweeper thread itself).
#include "server/session/session_manager.h"

#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/session/memory_session_store.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"

namespace rwkv::server {
namespace {

using ::rwkv::testing::FakeClock;
using ::rwkv::testing::FakeEngine;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

// A memory store whose writes can be made to fail.
class FlakyStore final : public SessionStore {
 public:
  bool durable() const override { return false; }
  absl::StatusOr<SessionRecord> Read(const std::string& id) override {
    return inner_.Read(id);
  }
  absl::StatusOr<SessionMeta> ReadMeta(const std::string& id) override {
    return inner_.ReadMeta(id);
  }
  void Write(std::vector<StoreWrite> writes, WriteDone done) override {
    if (fail_writes) return done(absl::UnavailableError("disk on fire"));
    inner_.Write(std::move(writes), std::move(done));
  }
  absl::StatusOr<std::vector<SessionMeta>> List(const std::string& after,
                                                int limit) override {
    return inner_.List(after, limit);
  }
  int64_t Count() override { return inner_.Count(); }

  bool fail_writes = false;

 private:
  MemorySessionStore inner_;
};

class SessionManagerTest : public ::testing::Test {
 protected:
  SessionManagerOptions Options() {
    SessionManagerOptions o;
    o.default_ttl = absl::Seconds(60);
    o.sweep_interval = absl::ZeroDuration();  // tests call Sweep()
    o.clock = [this] { return clock_.Now(); };
    return o;
  }
  std::unique_ptr<SessionManager> Make(SessionManagerOptions o) {
    return std::make_unique<SessionManager>(std::move(o), &store_);
  }
  StatePtr Fed(int n) {
    engine::State s = engine_.NewState();
    if (n > 0) {
      EXPECT_TRUE(engine_.Forward(std::vector<int32_t>(n, 65), s).ok());
    }
    return std::make_shared<const engine::State>(std::move(s));
  }
  NewSession Fresh(const std::string& id) {
    NewSession ns;
    ns.id = id;
    ns.state = fresh_;
    ns.initial_shared = true;
    return ns;
  }
  // The memory store answers inline, so the callbacks have run on return.
  static absl::StatusOr<SessionInfo> Create(SessionManager& m, NewSession ns) {
    absl::StatusOr<SessionInfo> out = absl::UnknownError("no answer");
    m.Create(std::move(ns), [&](absl::StatusOr<SessionInfo> r) { out = r; });
    return out;
  }
  static absl::Status Delete(SessionManager& m, const std::string& id) {
    absl::Status out = absl::UnknownError("no answer");
    m.Delete(id, [&](absl::Status s) { out = s; });
    return out;
  }
  static absl::Status Touch(SessionManager& m, const std::string& id) {
    absl::Status out = absl::UnknownError("no answer");
    m.Touch(id, absl::ZeroDuration(),
            [&](absl::StatusOr<SessionInfo> r) { out = r.status(); });
    return out;
  }
  static absl::Status Commit(
      SessionLease& lease, StatePtr state,
      SessionLease::Initial initial = SessionLease::Initial::kKeep) {
    absl::Status out = absl::UnknownError("no answer");
    lease.Commit(std::move(state), initial, [&](absl::Status s) { out = s; });
    return out;
  }

  FakeEngine engine_;
  FakeClock clock_{absl::FromUnixSeconds(1700000000)};
  FlakyStore store_;
  const StatePtr fresh_ = Fed(0);
  const int64_t bytes_ = fresh_->SizeBytes();
};

TEST_F(SessionManagerTest, CreateGetAndGeneratedIds) {
  auto m = Make(Options());
  auto a = Create(*m, Fresh("alice"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "alice");
  EXPECT_EQ(a->ttl, absl::Seconds(60));
  auto g1 = Create(*m, Fresh(""));
  auto g2 = Create(*m, Fresh(""));
  ASSERT_TRUE(g1.ok() && g2.ok());
  // 128 random bits.
  EXPECT_THAT(g1->id, MatchesRegex("s-[0-9a-f]{32}"));
  EXPECT_NE(g1->id, g2->id);
  EXPECT_EQ(Create(*m, Fresh("alice")).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(Create(*m, Fresh("bad id!")).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(Create(*m, Fresh(std::string(129, 'a'))).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(m->session_count(), 3);
  EXPECT_EQ(store_.Count(), 3);
}

TEST_F(SessionManagerTest, ExpiresAfterTtlFromLastUseAndSaysSo) {
  auto m = Make(Options());
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  clock_.Advance(absl::Seconds(50));
  ASSERT_TRUE(Touch(*m, "a").ok());  // counts as use
  clock_.Advance(absl::Seconds(50));
  EXPECT_TRUE(m->Get("a").ok());
  clock_.Advance(absl::Seconds(11));
  absl::Status s = m->Get("a").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("expired"));
  EXPECT_THAT(std::string(m->Get("nobody").status().message()),
              HasSubstr("unknown"));
  m->Sweep();
  EXPECT_EQ(store_.Count(), 0);  // the store's copy went too
}

TEST_F(SessionManagerTest, SweepFreesExpiredSessionsWithoutAccess) {
  auto m = Make(Options());
  NewSession longer = Fresh("long");
  longer.ttl = absl::Seconds(600);
  ASSERT_TRUE(Create(*m, std::move(longer)).ok());
  ASSERT_TRUE(Create(*m, Fresh("short")).ok());
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(m->Sweep(), 1);
  EXPECT_EQ(m->session_count(), 1);
  EXPECT_EQ(store_.Count(), 1);
  EXPECT_THAT(std::string(m->Get("short").status().message()),
              HasSubstr("expired"));
  EXPECT_TRUE(m->Get("long").ok());
}

TEST_F(SessionManagerTest, BackgroundSweeperRuns) {
  SessionManagerOptions o = Options();
  o.sweep_interval = absl::Milliseconds(5);
  auto m = Make(o);
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  clock_.Advance(absl::Seconds(61));
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (m->session_count() != 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(m->session_count(), 0);
}

TEST_F(SessionManagerTest, LruEvictionByBytesSkipsBusySessions) {
  SessionManagerOptions o = Options();
  o.max_state_bytes = 3 * bytes_;  // three sessions (shared initial)
  auto m = Make(o);
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  ASSERT_TRUE(Create(*m, Fresh("b")).ok());
  ASSERT_TRUE(Create(*m, Fresh("c")).ok());
  // "a" is the least recently used, but it is busy: "b" goes.
  absl::StatusOr<SessionLease> lease = m->Lease("a");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(Create(*m, Fresh("d")).ok());
  EXPECT_TRUE(m->Get("a").ok());
  absl::Status gone = m->Get("b").status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.message()), HasSubstr("evicted"));
  EXPECT_LE(m->total_bytes(), o.max_state_bytes);
  EXPECT_EQ(store_.Count(), 3);  // not durable: eviction deletes
  // Touching "c" makes "d" the LRU idle one.
  ASSERT_TRUE(Touch(*m, "c").ok());
  ASSERT_TRUE(Create(*m, Fresh("e")).ok());
  EXPECT_TRUE(m->Get("c").ok());
  EXPECT_THAT(std::string(m->Get("d").status().message()),
              HasSubstr("evicted"));
  // Everything else busy: no room.
  absl::StatusOr<SessionLease> c = m->Lease("c");
  absl::StatusOr<SessionLease> e = m->Lease("e");
  ASSERT_TRUE(c.ok() && e.ok());
  EXPECT_EQ(Create(*m, Fresh("f")).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(SessionManagerTest, MaxSessionsIsResourceExhausted) {
  SessionManagerOptions o = Options();
  o.max_sessions = 2;
  auto m = Make(o);
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  ASSERT_TRUE(Create(*m, Fresh("b")).ok());
  EXPECT_EQ(Create(*m, Fresh("c")).status().code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m->CheckCanCreate("c").code(),
            absl::StatusCode::kResourceExhausted);
  ASSERT_TRUE(Delete(*m, "a").ok());
  EXPECT_TRUE(Create(*m, Fresh("c")).ok());
  EXPECT_THAT(std::string(m->Get("a").status().message()),
              HasSubstr("deleted"));
}

TEST_F(SessionManagerTest, LeaseIsExclusiveAbandonKeepsCommitStores) {
  auto m = Make(Options());
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  absl::StatusOr<SessionLease> lease = m->Lease("a");
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(m->Get("a")->busy);
  EXPECT_EQ(m->Lease("a").status().code(),
            absl::StatusCode::kFailedPrecondition);
  // Busy sessions do not expire.
  clock_.Advance(absl::Seconds(120));
  EXPECT_EQ(m->Sweep(), 0);
  // Abandon (here: destruction) keeps the pre-turn state.
  lease = absl::UnknownError("dropped");
  EXPECT_EQ(m->Get("a")->token_count, 0);
  EXPECT_FALSE(m->Get("a")->busy);
  // Commit stores the new state; the initial state stays for Reset.
  absl::StatusOr<SessionLease> lease2 = m->Lease("a");
  ASSERT_TRUE(lease2.ok());
  ASSERT_TRUE(Commit(*lease2, Fed(3)).ok());
  EXPECT_EQ(m->Get("a")->token_count, 3);
  EXPECT_EQ(FakeEngine::HashOf(**m->ReadState("a")),
            FakeEngine::HashOf(*Fed(3)));
  absl::StatusOr<SessionLease> reset = m->Lease("a");
  ASSERT_TRUE(reset.ok());
  StatePtr initial = reset->initial();
  ASSERT_TRUE(Commit(*reset, initial).ok());
  EXPECT_EQ(m->Get("a")->token_count, 0);
}

TEST_F(SessionManagerTest, DeletingALeasedSessionRevokesTheLease) {
  auto m = Make(Options());
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  absl::StatusOr<SessionLease> lease = m->Lease("a");
  ASSERT_TRUE(lease.ok());
  EXPECT_TRUE(lease->Check().ok());
  ASSERT_TRUE(Delete(*m, "a").ok());
  EXPECT_EQ(lease->Check().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(lease->Check().message()), HasSubstr("deleted"));
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());  // same id, new session
  EXPECT_EQ(Commit(*lease, Fed(5)).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(m->Get("a")->token_count, 0);
  EXPECT_FALSE(m->Get("a")->busy);
}

TEST_F(SessionManagerTest, ReplacingTheInitialStateMovesReset) {
  auto m = Make(Options());
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  absl::StatusOr<SessionLease> l1 = m->Lease("a");
  ASSERT_TRUE(l1.ok());
  ASSERT_TRUE(Commit(*l1, Fed(4), SessionLease::Initial::kReplace).ok());
  absl::StatusOr<SessionLease> l2 = m->Lease("a");
  ASSERT_TRUE(l2.ok());
  ASSERT_TRUE(Commit(*l2, Fed(7)).ok());
  EXPECT_EQ(m->Get("a")->token_count, 7);
  absl::StatusOr<SessionLease> l3 = m->Lease("a");
  ASSERT_TRUE(l3.ok());
  EXPECT_EQ(l3->initial()->token_count(), 4);
}

TEST_F(SessionManagerTest, ListPagesInIdOrder) {
  auto m = Make(Options());
  for (const char* id : {"c", "a", "e", "b", "d"}) {
    ASSERT_TRUE(Create(*m, Fresh(id)).ok());
  }
  SessionPage p1 = *m->List(2, "");
  ASSERT_EQ(p1.sessions.size(), 2u);
  EXPECT_EQ(p1.sessions[0].id, "a");
  EXPECT_EQ(p1.sessions[1].id, "b");
  EXPECT_EQ(p1.total, 5);
  SessionPage p2 = *m->List(2, p1.next_page_token);
  EXPECT_EQ(p2.sessions[0].id, "c");
  SessionPage p3 = *m->List(2, p2.next_page_token);
  ASSERT_EQ(p3.sessions.size(), 1u);
  EXPECT_EQ(p3.sessions[0].id, "e");
  EXPECT_TRUE(p3.next_page_token.empty());
}

TEST_F(SessionManagerTest, ListCountsOnlySessionsAGetWouldFind) {
  auto m = Make(Options());
  NewSession keep = Fresh("keep");
  keep.ttl = absl::Seconds(600);
  ASSERT_TRUE(Create(*m, std::move(keep)).ok());
  ASSERT_TRUE(Create(*m, Fresh("old1")).ok());
  ASSERT_TRUE(Create(*m, Fresh("old2")).ok());
  clock_.Advance(absl::Seconds(61));  // expired, not yet swept
  SessionPage page = *m->List(100, "");
  EXPECT_EQ(page.total, 1);
  ASSERT_EQ(page.sessions.size(), 1u);
  EXPECT_EQ(page.sessions[0].id, "keep");
}

TEST_F(SessionManagerTest, RejectsTtlAboveTheMaximum) {
  auto m = Make(Options());
  NewSession ns = Fresh("a");
  ns.ttl = absl::Hours(24 * 365);
  EXPECT_EQ(Create(*m, std::move(ns)).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST_F(SessionManagerTest, StatesAreSharedNotCopied) {
  auto m = Make(Options());
  StatePtr s = Fed(9);
  NewSession a = Fresh("a");
  a.state = s;
  NewSession b = Fresh("b");
  b.state = s;
  ASSERT_TRUE(Create(*m, std::move(a)).ok());
  ASSERT_TRUE(Create(*m, std::move(b)).ok());
  EXPECT_EQ(*m->ReadState("a"), s);
  EXPECT_EQ(*m->ReadState("b"), s);
}

TEST_F(SessionManagerTest, AFailedStoreWriteLeavesNothingBehind) {
  auto m = Make(Options());
  ASSERT_TRUE(Create(*m, Fresh("a")).ok());
  store_.fail_writes = true;
  // A creation the store refused does not exist.
  EXPECT_EQ(Create(*m, Fresh("b")).status().code(),
            absl::StatusCode::kUnavailable);
  EXPECT_EQ(m->Get("b").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->session_count(), 1);
  // A commit the store refused keeps the old state and frees the session.
  absl::StatusOr<SessionLease> lease = m->Lease("a");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(Commit(*lease, Fed(3)).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(m->Get("a")->token_count, 0);
  EXPECT_FALSE(m->Get("a")->busy);
  store_.fail_writes = false;
  EXPECT_TRUE(Create(*m, Fresh("b")).ok());
}

TEST(MemorySessionStoreTest, PutsCompareVersions) {
  MemorySessionStore store;
  auto write = [&](StoreWrite w) {
    absl::Status out;
    std::vector<StoreWrite> ws;
    ws.push_back(std::move(w));
    store.Write(std::move(ws), [&](absl::Status s) { out = s; });
    return out;
  };
  StoreWrite put;
  put.record.meta.id = "x";
  put.record.meta.version = 10;
  put.expected_version = 0;
  ASSERT_TRUE(write(put).ok());
  EXPECT_EQ(write(put).code(), absl::StatusCode::kAborted);  // exists
  put.expected_version = 10;
  put.record.meta.version = 11;
  ASSERT_TRUE(write(put).ok());
  put.expected_version = 10;  // stale
  put.record.meta.version = 12;
  EXPECT_EQ(write(put).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store.Read("x")->meta.version, 11u);
  StoreWrite del;
  del.op = StoreWrite::Op::kDelete;
  del.record.meta.id = "x";
  ASSERT_TRUE(write(del).ok());
  put.expected_version = 11;  // the record is gone
  EXPECT_EQ(write(put).code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store.Count(), 0);
}

// Tenants: another tenant's session (live, expired or deleted) answers
// exactly as an unknown id; per-tenant quotas on sessions and state bytes
// count creations, deletions and expiry.
TEST_F(SessionManagerTest, TenantsSeeOnlyTheirSessionsAndGoneReasons) {
  auto m = Make(Options());
  const SessionAccess alpha = SessionAccess::Tenant("alpha");
  const SessionAccess beta = SessionAccess::Tenant("beta");
  NewSession a = Fresh("a");
  a.owner = "alpha";
  ASSERT_TRUE(Create(*m, a).ok());
  NewSession gone = Fresh("gone");
  gone.owner = "alpha";
  ASSERT_TRUE(Create(*m, gone).ok());
  ASSERT_TRUE(Delete(*m, "gone").ok());
  const std::string unknown =
      std::string(m->Get("nope", beta).status().message());
  EXPECT_EQ(m->Get("a", beta).status().message(),
            absl::StrReplaceAll(unknown, {{"nope", "a"}}));
  EXPECT_EQ(m->Get("gone", beta).status().message(),
            absl::StrReplaceAll(unknown, {{"nope", "gone"}}));
  EXPECT_THAT(std::string(m->Get("gone", alpha).status().message()),
              HasSubstr("was deleted"));
  EXPECT_EQ(m->Lease("a", beta).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(m->ReadState("a", beta).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status deleted = absl::UnknownError("no answer");
  m->Delete(
      "a", [&](absl::Status s) { deleted = s; }, beta);
  EXPECT_EQ(deleted.code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(m->Get("a", alpha).ok());
  EXPECT_TRUE(m->Get("a").ok());  // all-seeing access (admins)
  EXPECT_EQ(m->Get("a")->owner, "alpha");
  EXPECT_EQ(m->List(10, "", beta)->total, 0);
  EXPECT_EQ(m->List(10, "", alpha)->total, 1);
}

TEST_F(SessionManagerTest, TenantQuotasCountSessionsAndStateBytes) {
  auto m = Make(Options());
  auto make = [&](const std::string& id, const std::string& owner,
                  TenantSessionQuota quota) {
    NewSession ns = Fresh(id);
    ns.owner = owner;
    ns.quota = quota;
    return Create(*m, ns);
  };
  const TenantSessionQuota two{2, 0};
  ASSERT_TRUE(make("t1", "t", two).ok());
  ASSERT_TRUE(make("t2", "t", two).ok());
  absl::StatusOr<SessionInfo> third = make("t3", "t", two);
  EXPECT_EQ(third.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(m->CheckCanCreate("", "t", two).code(),
            absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(make("u1", "u", two).ok());  // another tenant
  EXPECT_EQ(m->usage("t").sessions, 2);
  EXPECT_EQ(m->usage("t").state_bytes, 2 * bytes_);
  ASSERT_TRUE(Delete(*m, "t1").ok());
  EXPECT_TRUE(make("t3", "t", two).ok());
  // Expiry frees the quota too.
  clock_.Advance(absl::Seconds(61));
  EXPECT_EQ(m->Sweep(), 3);
  EXPECT_EQ(m->usage("t").sessions, 0);
  EXPECT_EQ(m->usage("t").state_bytes, 0);
  // State bytes: room for exactly two states.
  const TenantSessionQuota bytes{0, 2 * bytes_};
  ASSERT_TRUE(make("b1", "b", bytes).ok());
  ASSERT_TRUE(make("b2", "b", bytes).ok());
  absl::StatusOr<SessionInfo> over = make("b3", "b", bytes);
  EXPECT_EQ(over.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(over.status().message()),
              HasSubstr("bytes of session state"));
}

}  // namespace
}  // namespace rwkv::server
