// The Redis session store against a real redis-server child (a free loopback
// port, its append-only file in a temp dir; appendfsync always), alone and
// under two SessionManagers that act as two replicas (each with its own
// store, so its own connections, lease token and RAM copies):
//  * records round-trip exactly, keyed by model fingerprint (another model
//    sees nothing), TTL is the key's expiry, initial states are stored once;
//  * compare-and-set: a stale or duplicate put is refused and changes
//    nothing;
//  * store leases: exclusive across stores, kept alive while held, free
//    again once a dead holder's lease times out, revoked when lost;
//  * replicas: a session continues on the other replica (stale RAM copies
//    are reloaded, also a copy of a write Redis lost), a race on one session
//    lets exactly one through, a deletion on one is seen by the other;
//  * Redis killed (kill -9) and restarted: calls fail with UNAVAILABLE
//    naming Redis, nothing is half-written, the same store reconnects.
// States come from the FakeEngine. Skips without redis-server.
#include <hiredis/hiredis.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/session/redis_connection.h"
#include "server/session/redis_session_store.h"
#include "server/session/session_manager.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/redis_process.h"
#include "tests/testing/temp_dir.h"

namespace rwkv::server {
namespace {

using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::RedisProcess;
using ::rwkv::testing::TempDir;
using ::testing::HasSubstr;

absl::Status WaitStatus(
    const std::function<void(absl::AnyInvocable<void(absl::Status)>)>& call) {
  absl::Notification done;
  absl::Status out = absl::UnknownError("no answer");
  call([&](absl::Status s) {
    out = s;
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

// One replica: a store and a manager over it.
struct Replica {
  std::unique_ptr<RedisSessionStore> store;
  std::unique_ptr<SessionManager> manager;
};

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisProcess::Available()) {
      GTEST_SKIP() << "redis-server is not installed (setup.sh installs it)";
    }
    redis_ = std::make_unique<RedisProcess>(dir_.path());
    ASSERT_TRUE(redis_->Start().ok()) << redis_->Log();
  }

  RedisStoreOptions StoreOptions() const {
    RedisStoreOptions o;
    o.url = redis_->url();
    o.lease_timeout = absl::Seconds(1);
    o.timeout = absl::Seconds(1);
    return o;
  }
  std::unique_ptr<RedisSessionStore> OpenStore(const FakeEngine& engine) {
    auto store = RedisSessionStore::Open(StoreOptions(), &engine.model());
    EXPECT_TRUE(store.ok()) << store.status();
    return store.ok() ? *std::move(store) : nullptr;
  }
  Replica OpenReplica() {
    Replica r;
    r.store = OpenStore(engine_);
    SessionManagerOptions mo;
    mo.default_ttl = absl::Seconds(600);
    mo.sweep_interval = absl::ZeroDuration();
    r.manager = std::make_unique<SessionManager>(mo, r.store.get());
    return r;
  }
  // A state after `n` tokens (its hash names it).
  StatePtr Fed(int n, int salt = 0) {
    engine::State s = engine_.NewState();
    std::vector<int32_t> tokens;
    for (int i = 0; i < n; ++i) tokens.push_back((i * 7 + salt) % 256);
    if (n > 0) {
      EXPECT_TRUE(engine_.Forward(tokens, s).ok());
    }
    return std::make_shared<const engine::State>(std::move(s));
  }
  absl::StatusOr<SessionInfo> Create(
      SessionManager& m, const std::string& id, StatePtr state,
      StatePtr initial = nullptr, absl::Duration ttl = absl::ZeroDuration()) {
    absl::Notification done;
    absl::StatusOr<SessionInfo> out = absl::UnknownError("no answer");
    NewSession ns;
    ns.id = id;
    ns.state = std::move(state);
    ns.initial = std::move(initial);
    ns.initial_shared = ns.initial != nullptr;
    ns.ttl = ttl;
    m.Create(std::move(ns), [&](absl::StatusOr<SessionInfo> r) {
      out = std::move(r);
      done.Notify();
    });
    done.WaitForNotification();
    return out;
  }
  absl::Status Commit(SessionManager& m, const std::string& id,
                      StatePtr state) {
    absl::StatusOr<SessionLease> lease = m.Lease(id);
    if (!lease.ok()) return lease.status();
    return WaitStatus([&](auto done) {
      lease->Commit(state, SessionLease::Initial::kKeep, std::move(done));
    });
  }
  uint32_t HashOf(SessionManager& m, const std::string& id) {
    absl::StatusOr<StatePtr> s = m.ReadState(id);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? FakeEngine::HashOf(**s) : 0;
  }
  // A raw command to the test's Redis.
  RedisReplyPtr Raw(const std::vector<absl::string_view>& args) {
    absl::StatusOr<RedisAddress> a = ParseRedisUrl(redis_->url());
    auto c = RedisConnection::Connect(*a, absl::Seconds(2));
    EXPECT_TRUE(c.ok()) << c.status();
    if (!c.ok()) return nullptr;
    absl::StatusOr<RedisReplyPtr> r = (*c)->Command(args);
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *std::move(r) : nullptr;
  }
  std::vector<std::string> Keys(const std::string& pattern) {
    RedisReplyPtr r = Raw({"KEYS", pattern});
    std::vector<std::string> keys;
    for (size_t i = 0; r != nullptr && i < r->elements; ++i) {
      keys.emplace_back(r->element[i]->str, r->element[i]->len);
    }
    return keys;
  }
  StoreWrite Put(const std::string& id, StatePtr state, uint64_t expected,
                 uint64_t version) {
    StoreWrite w;
    w.record.meta.id = id;
    w.record.meta.version = version;
    w.record.meta.token_count = state->token_count();
    w.record.meta.last_used = absl::Now();
    w.record.meta.created = absl::Now();
    w.record.meta.ttl = absl::Seconds(600);
    w.record.state = state;
    w.record.initial = state;
    w.expected_version = expected;
    return w;
  }
  absl::Status Apply(SessionStore& store, std::vector<StoreWrite> writes) {
    return WaitStatus(
        [&](auto done) { store.Write(std::move(writes), std::move(done)); });
  }

  TempDir dir_;
  FakeEngine engine_;
  std::unique_ptr<RedisProcess> redis_;
};

TEST_F(RedisStoreTest, RecordsRoundTripUnderTheirModelsFingerprint) {
  Replica a = OpenReplica();
  StatePtr fresh = Fed(0);
  ASSERT_TRUE(Create(*a.manager, "fed", Fed(5), fresh).ok());
  ASSERT_TRUE(Commit(*a.manager, "fed", Fed(9, 3)).ok());
  ASSERT_TRUE(Create(*a.manager, "plain", fresh, fresh).ok());
  EXPECT_EQ(a.store->Count(), 2);

  // A second process reads exactly what the first stored.
  std::unique_ptr<RedisSessionStore> b = OpenStore(engine_);
  absl::StatusOr<SessionRecord> fed = b->Read("fed");
  ASSERT_TRUE(fed.ok()) << fed.status();
  EXPECT_EQ(FakeEngine::HashOf(*fed->state), FakeEngine::HashOf(*Fed(9, 3)));
  EXPECT_EQ(fed->meta.token_count, 9);
  EXPECT_EQ(fed->initial->token_count(), 0);
  absl::StatusOr<SessionRecord> plain = b->Read("plain");
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->state, plain->initial);  // stored once, shared
  EXPECT_EQ(b->List("", 10)->size(), 2u);

  // Keys carry the fingerprint: another model sees none of them.
  EXPECT_EQ(a.store->key_prefix(), "rwkv:fake-engine:");
  FakeEngine other(256, "other-model");
  std::unique_ptr<RedisSessionStore> c = OpenStore(other);
  EXPECT_EQ(c->Read("fed").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(c->Count(), 0);
  EXPECT_EQ(Keys("rwkv:other-model:*").size(), 0u);
  EXPECT_EQ(Keys("rwkv:fake-engine:s:*").size(), 2u);
}

TEST_F(RedisStoreTest, SharedInitialStatesAreStoredOnceAndOutliveTheirUsers) {
  Replica a = OpenReplica();
  StatePtr fresh = Fed(0);
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(Create(*a.manager, absl::StrCat("s", i), fresh, fresh,
                       absl::Seconds(100 + i))
                    .ok());
  }
  const std::vector<std::string> initials = Keys("rwkv:fake-engine:i:*");
  ASSERT_EQ(initials.size(), 1u);
  // The initial state expires no earlier than the last session using it.
  RedisReplyPtr session = Raw({"PEXPIRETIME", "rwkv:fake-engine:s:s19"});
  RedisReplyPtr initial = Raw({"PEXPIRETIME", initials[0]});
  ASSERT_NE(session, nullptr);
  ASSERT_NE(initial, nullptr);
  EXPECT_GE(initial->integer, session->integer);
}

TEST_F(RedisStoreTest, TtlIsTheKeysExpiryAndRedisDropsExpiredSessions) {
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  absl::StatusOr<SessionInfo> info =
      Create(*a.manager, "brief", Fed(2), nullptr, absl::Seconds(1));
  ASSERT_TRUE(info.ok()) << info.status();
  RedisReplyPtr at = Raw({"PEXPIRETIME", "rwkv:fake-engine:s:brief"});
  ASSERT_NE(at, nullptr);
  EXPECT_EQ(at->integer,
            absl::ToUnixMillis(info->last_used + absl::Seconds(1)));
  ASSERT_TRUE(b.manager->Get("brief").ok());
  absl::SleepFor(absl::Milliseconds(1500));
  EXPECT_EQ(Keys("rwkv:fake-engine:s:*").size(), 0u);
  EXPECT_EQ(a.manager->Get("brief").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(b.manager->ReadState("brief").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(a.store->Count(), 0);
}

TEST_F(RedisStoreTest, StaleAndDuplicatePutsAreRefusedAndChangeNothing) {
  std::unique_ptr<RedisSessionStore> store = OpenStore(engine_);
  ASSERT_TRUE(Apply(*store, {Put("x", Fed(3), 0, 100)}).ok());
  ASSERT_TRUE(Apply(*store, {Put("x", Fed(4), 100, 101)}).ok());
  // A writer that still believes version 100 is current.
  absl::Status stale = Apply(*store, {Put("x", Fed(7), 100, 101)});
  EXPECT_EQ(stale.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(stale.message()), HasSubstr("changed meanwhile"));
  // Creating an id that exists.
  absl::Status dup = Apply(*store, {Put("x", Fed(8), 0, 5)});
  EXPECT_EQ(dup.code(), absl::StatusCode::kAborted);
  EXPECT_THAT(std::string(dup.message()), HasSubstr("already exists"));
  // All or nothing: a good put next to a stale one is not applied either.
  absl::Status mixed =
      Apply(*store, {Put("y", Fed(2), 0, 7), Put("x", Fed(9), 100, 101)});
  EXPECT_EQ(mixed.code(), absl::StatusCode::kAborted);
  EXPECT_EQ(store->Read("y").status().code(), absl::StatusCode::kNotFound);
  absl::StatusOr<SessionRecord> x = store->Read("x");
  ASSERT_TRUE(x.ok()) << x.status();
  EXPECT_EQ(x->meta.version, 101u);
  EXPECT_EQ(FakeEngine::HashOf(*x->state), FakeEngine::HashOf(*Fed(4)));
}

TEST_F(RedisStoreTest, LeasesAreExclusiveRenewedAndFreedWhenTheHolderDies) {
  std::unique_ptr<RedisSessionStore> a = OpenStore(engine_);
  std::unique_ptr<RedisSessionStore> b = OpenStore(engine_);
  ASSERT_TRUE(Apply(*a, {Put("x", Fed(3), 0, 100)}).ok());
  auto flag = std::make_shared<std::atomic<Revocation>>(Revocation::kNone);
  absl::StatusOr<StoreLease> held = a->AcquireLease("x", flag);
  ASSERT_TRUE(held.ok()) << held.status();
  EXPECT_EQ(held->meta.version, 100u);
  absl::Status busy = b->AcquireLease("x", nullptr).status();
  EXPECT_EQ(busy.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(busy.message()),
              HasSubstr("busy on another replica"));
  // Held past the 1 s lease timeout: the holder renews it.
  absl::SleepFor(absl::Milliseconds(2500));
  EXPECT_EQ(b->AcquireLease("x", nullptr).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(flag->load(), Revocation::kNone);
  // The holder dies without releasing it: free again within the timeout.
  a.reset();
  const absl::Time died = absl::Now();
  absl::StatusOr<StoreLease> taken = absl::UnknownError("not tried");
  while (absl::Now() - died < absl::Seconds(3)) {
    taken = b->AcquireLease("x", nullptr);
    if (taken.ok()) break;
    absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(taken.ok()) << taken.status();
  EXPECT_LE(absl::Now() - died, absl::Milliseconds(1300));
}

TEST_F(RedisStoreTest, APutCommitsItsLeaseAndALostLeaseIsRevoked) {
  std::unique_ptr<RedisSessionStore> a = OpenStore(engine_);
  std::unique_ptr<RedisSessionStore> b = OpenStore(engine_);
  ASSERT_TRUE(Apply(*a, {Put("x", Fed(3), 0, 100)}).ok());
  absl::StatusOr<StoreLease> held = a->AcquireLease("x", nullptr);
  ASSERT_TRUE(held.ok());
  StoreWrite commit = Put("x", Fed(5), 100, 101);
  commit.lease_token = held->token;
  ASSERT_TRUE(Apply(*a, {commit}).ok());
  // The put released it.
  absl::StatusOr<StoreLease> next = b->AcquireLease("x", nullptr);
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(next->meta.version, 101u);
  // A put carrying a lease someone else now holds is refused.
  StoreWrite late = Put("x", Fed(6), 101, 102);
  late.lease_token = held->token;
  EXPECT_THAT(std::string(Apply(*a, {late}).message()),
              HasSubstr("lease was lost"));
  // A lease taken over behind the holder's back is revoked at renewal.
  auto flag = std::make_shared<std::atomic<Revocation>>(Revocation::kNone);
  b->ReleaseLease("x", next->token);
  b->Sync();
  ASSERT_TRUE(a->AcquireLease("x", flag).ok());
  Raw({"SET", "rwkv:fake-engine:l:x", "someone-else"});
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(flag->load(), Revocation::kLost);
  // ... and one whose record is deleted says so.
  ASSERT_TRUE(Apply(*a, {Put("z", Fed(2), 0, 9)}).ok());
  auto deleted = std::make_shared<std::atomic<Revocation>>(Revocation::kNone);
  ASSERT_TRUE(a->AcquireLease("z", deleted).ok());
  StoreWrite del;
  del.op = StoreWrite::Op::kDelete;
  del.record.meta.id = "z";
  ASSERT_TRUE(Apply(*b, {del}).ok());
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_EQ(deleted->load(), Revocation::kDeleted);
}

TEST_F(RedisStoreTest, ASessionContinuesOnTheOtherReplica) {
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  ASSERT_TRUE(Create(*a.manager, "conv", Fed(2, 1)).ok());
  ASSERT_TRUE(Commit(*a.manager, "conv", Fed(4, 1)).ok());
  // B has never seen it; then A's RAM copy is stale after B's turn.
  EXPECT_EQ(HashOf(*b.manager, "conv"), FakeEngine::HashOf(*Fed(4, 1)));
  ASSERT_TRUE(Commit(*b.manager, "conv", Fed(6, 1)).ok());
  EXPECT_EQ(HashOf(*a.manager, "conv"), FakeEngine::HashOf(*Fed(6, 1)));
  absl::StatusOr<SessionLease> lease = a.manager->Lease("conv");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(FakeEngine::HashOf(*lease->state()),
            FakeEngine::HashOf(*Fed(6, 1)));
  EXPECT_EQ(lease->initial()->token_count(), 2);
  lease->Abandon();
  EXPECT_EQ(b.manager->Get("conv")->token_count, 6);
}

TEST_F(RedisStoreTest, ACopyOfAWriteRedisLostIsNeverTakenForANewerOne) {
  // Redis loses an acknowledged write (appendfsync everysec or no and a
  // crash of its machine, or a failover): the record goes back to an older
  // version. Replica A still holds the lost state in RAM; B then changes
  // the session from the older version. A must use B's state, not its own.
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  ASSERT_TRUE(Create(*a.manager, "lost", Fed(2, 7)).ok());
  RedisReplyPtr before = Raw({"DUMP", "rwkv:fake-engine:s:lost"});
  ASSERT_NE(before, nullptr);
  ASSERT_EQ(before->type, REDIS_REPLY_STRING);
  const std::string dump(before->str, before->len);
  ASSERT_TRUE(Commit(*a.manager, "lost", Fed(4, 7)).ok());  // A's RAM copy
  RedisReplyPtr restored =
      Raw({"RESTORE", "rwkv:fake-engine:s:lost", "0", dump, "REPLACE"});
  ASSERT_NE(restored, nullptr);
  ASSERT_EQ(restored->type, REDIS_REPLY_STATUS);
  EXPECT_EQ(HashOf(*b.manager, "lost"), FakeEngine::HashOf(*Fed(2, 7)));
  ASSERT_TRUE(Commit(*b.manager, "lost", Fed(5, 7)).ok());
  EXPECT_EQ(HashOf(*a.manager, "lost"), FakeEngine::HashOf(*Fed(5, 7)));
  absl::StatusOr<SessionLease> lease = a.manager->Lease("lost");
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_EQ(FakeEngine::HashOf(*lease->state()),
            FakeEngine::HashOf(*Fed(5, 7)));
}

TEST_F(RedisStoreTest, TwoReplicasRaceOneSessionAndExactlyOneWins) {
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  ASSERT_TRUE(Create(*a.manager, "race", Fed(2, 5)).ok());
  for (int round = 0; round < 20; ++round) {
    absl::StatusOr<SessionLease> la = absl::UnknownError("");
    absl::StatusOr<SessionLease> lb = absl::UnknownError("");
    std::thread ta([&] { la = a.manager->Lease("race"); });
    std::thread tb([&] { lb = b.manager->Lease("race"); });
    ta.join();
    tb.join();
    ASSERT_NE(la.ok(), lb.ok()) << la.status() << " / " << lb.status();
    const absl::Status& lost = la.ok() ? lb.status() : la.status();
    EXPECT_EQ(lost.code(), absl::StatusCode::kFailedPrecondition) << lost;
    SessionLease& won = la.ok() ? *la : *lb;
    const int64_t before = won.state()->token_count();
    EXPECT_EQ(before, 2 + round);
    ASSERT_TRUE(WaitStatus([&](auto done) {
                  won.Commit(Fed(3 + round, 5), SessionLease::Initial::kKeep,
                             std::move(done));
                }).ok());
  }
  // Every turn counted once: never lost, never doubled.
  EXPECT_EQ(a.manager->Get("race")->token_count, 22);
  EXPECT_EQ(HashOf(*b.manager, "race"), FakeEngine::HashOf(*Fed(22, 5)));
}

TEST_F(RedisStoreTest, ADeletionOnOneReplicaIsSeenByTheOther) {
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  ASSERT_TRUE(Create(*a.manager, "d", Fed(3)).ok());
  ASSERT_TRUE(b.manager->ReadState("d").ok());  // B holds a copy
  EXPECT_EQ(b.manager->session_count(), 1);
  ASSERT_TRUE(WaitStatus([&](auto done) {
                a.manager->Delete("d", std::move(done));
              }).ok());
  absl::Status gone = b.manager->ReadState("d").status();
  EXPECT_EQ(gone.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(gone.message()), HasSubstr("no longer exists"));
  EXPECT_EQ(b.manager->session_count(), 0);  // the copy left RAM
  EXPECT_EQ(b.manager->Lease("d").status().code(), absl::StatusCode::kNotFound);
  // A turn running on B when A deletes the session stops.
  ASSERT_TRUE(Create(*a.manager, "d2", Fed(3)).ok());
  absl::StatusOr<SessionLease> lease = b.manager->Lease("d2");
  ASSERT_TRUE(lease.ok());
  ASSERT_TRUE(WaitStatus([&](auto done) {
                a.manager->Delete("d2", std::move(done));
              }).ok());
  absl::SleepFor(absl::Milliseconds(800));  // a renewal (every 1/3 s)
  EXPECT_EQ(lease->Check().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(WaitStatus([&](auto done) {
              lease->Commit(Fed(5), SessionLease::Initial::kKeep,
                            std::move(done));
            }).code(),
            absl::StatusCode::kAborted);
}

// Tenants over a shared store: another tenant's session is NOT_FOUND on
// every replica, exactly like an unknown id (also Delete, which must leave
// it in place), and each replica counts its RAM copies toward the owner's
// usage: they come and go with the copies, so usage cannot drift.
TEST_F(RedisStoreTest, AnotherTenantsSessionIsNotFoundOnEveryReplica) {
  Replica a = OpenReplica();
  Replica b = OpenReplica();
  const SessionAccess acme = SessionAccess::Tenant("acme");
  const SessionAccess evil = SessionAccess::Tenant("evil");
  {
    absl::Notification done;
    NewSession ns;
    ns.id = "owned";
    ns.owner = "acme";
    ns.state = Fed(3);
    a.manager->Create(std::move(ns), [&](absl::StatusOr<SessionInfo> r) {
      EXPECT_TRUE(r.ok()) << r.status();
      done.Notify();
    });
    done.WaitForNotification();
  }
  EXPECT_EQ(a.manager->usage("acme").sessions, 1);
  const absl::Status unknown = b.manager->Get("nosuch", evil).status();
  ASSERT_EQ(unknown.code(), absl::StatusCode::kNotFound);
  for (SessionManager* m : {a.manager.get(), b.manager.get()}) {
    absl::Status get = m->Get("owned", evil).status();
    EXPECT_EQ(get.code(), absl::StatusCode::kNotFound);
    EXPECT_EQ(std::string(get.message()),
              absl::StrReplaceAll(std::string(unknown.message()),
                                  {{"nosuch", "owned"}}));
    EXPECT_EQ(m->ReadState("owned", evil).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(m->Lease("owned", evil).status().code(),
              absl::StatusCode::kNotFound);
    EXPECT_EQ(WaitStatus([&](auto done) {
                m->Delete("owned", std::move(done), evil);
              }).code(),
              absl::StatusCode::kNotFound);
  }
  // Still there for its owner, on the other replica too.
  ASSERT_TRUE(b.manager->Get("owned", acme).ok());
  EXPECT_EQ(HashOf(*b.manager, "owned"), FakeEngine::HashOf(*Fed(3)));
  EXPECT_EQ(b.manager->usage("acme").sessions, 1);  // B's copy
  ASSERT_TRUE(WaitStatus([&](auto done) {
                b.manager->Delete("owned", std::move(done), acme);
              }).ok());
  EXPECT_EQ(b.manager->usage("acme").sessions, 0);
  // A's copy leaves when A learns the session is gone.
  EXPECT_EQ(a.manager->ReadState("owned", acme).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(a.manager->usage("acme").sessions, 0);
}

TEST_F(RedisStoreTest, RedisDownFailsWithUnavailableAndTheStoreReconnects) {
  Replica a = OpenReplica();
  ASSERT_TRUE(Create(*a.manager, "k", Fed(3)).ok());
  ASSERT_TRUE(Commit(*a.manager, "k", Fed(5)).ok());
  absl::StatusOr<SessionLease> lease = a.manager->Lease("k");
  ASSERT_TRUE(lease.ok());
  redis_->Kill();
  // The commit of a turn running when Redis died fails and is rolled back.
  absl::Status commit = WaitStatus([&](auto done) {
    lease->Commit(Fed(8), SessionLease::Initial::kKeep, std::move(done));
  });
  EXPECT_EQ(commit.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(commit.message()), HasSubstr(redis_->url()));
  // Every session call fails clearly, also reads of the RAM copy.
  for (const absl::Status& s :
       {a.manager->ReadState("k").status(), a.manager->Get("k").status(),
        a.manager->Lease("k").status(),
        Create(*a.manager, "n", Fed(1)).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr("unreachable"));
  }
  // Back (same data): the same store works again; the acknowledged turn is
  // there, the failed one is not.
  ASSERT_TRUE(redis_->Start().ok()) << redis_->Log();
  EXPECT_EQ(HashOf(*a.manager, "k"), FakeEngine::HashOf(*Fed(5)));
  ASSERT_TRUE(Commit(*a.manager, "k", Fed(6)).ok());
  EXPECT_EQ(a.manager->Get("k")->token_count, 6);
  EXPECT_EQ(a.manager->Get("n").status().code(), absl::StatusCode::kNotFound);
}

TEST_F(RedisStoreTest, BadAddressesAndAnUnreachableRedisFailAtOpen) {
  RedisStoreOptions o = StoreOptions();
  for (const char* url : {"http://x:1", "redis://", "redis://h:0",
                          "redis://h:70000", "redis://h:1/x"}) {
    o.url = url;
    EXPECT_EQ(RedisSessionStore::Open(o, &engine_.model()).status().code(),
              absl::StatusCode::kInvalidArgument)
        << url;
  }
  o.url = absl::StrCat("redis://127.0.0.1:", testing::FreeLoopbackPort());
  absl::Status s = RedisSessionStore::Open(o, &engine_.model()).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(s.message()), HasSubstr(o.url));
}

}  // namespace
}  // namespace rwkv::server
