// The durable session store on a real RocksDB in a temp directory, through
// the SessionManager as the server uses it: records survive a reopen exactly,
// cold sessions load on use and expire on disk, shared initial states are
// stored once, writes are grouped, and damaged or foreign records give a
// clear error for that session only. States come from the FakeEngine.
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "engine/crc32.h"
#include "engine/rwkv_engine.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rocksdb/db.h"
#include "server/session/record_codec.h"
#include "server/session/rocksdb_session_store.h"
#include "server/session/session_manager.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/temp_dir.h"

namespace rwkv::server {
namespace {

using ::rwkv::testing::FakeClock;
using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::TempDir;
using ::testing::HasSubstr;

template <typename T>
absl::StatusOr<T> Wait(
    const std::function<void(absl::AnyInvocable<void(absl::StatusOr<T>)>)>&
        call) {
  absl::Notification done;
  absl::StatusOr<T> out = absl::UnknownError("no answer");
  call([&](absl::StatusOr<T> r) {
    out = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return out;
}

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

class RocksDbStoreTest : public ::testing::Test {
 protected:
  void Open(int64_t ram_bytes = 0, int64_t disk_bytes = 0) {
    manager_.reset();
    store_.reset();
    RocksDbStoreOptions so;
    so.dir = dir_.Sub("db");
    auto store = RocksDbSessionStore::Open(so, &engine_.model());
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
    SessionManagerOptions mo;
    mo.default_ttl = absl::Seconds(60);
    mo.sweep_interval = absl::ZeroDuration();
    mo.clock = [this] { return clock_.Now(); };
    mo.max_state_bytes = ram_bytes;
    mo.max_disk_bytes = disk_bytes;
    manager_ = std::make_unique<SessionManager>(mo, store_.get());
  }
  void Close() {
    manager_.reset();
    store_.reset();
  }
  // A state after `n` distinct tokens (its hash names it).
  StatePtr Fed(int n, int salt = 0) {
    engine::State s = engine_.NewState();
    std::vector<int32_t> tokens;
    for (int i = 0; i < n; ++i) tokens.push_back((i * 7 + salt) % 256);
    if (n > 0) {
      EXPECT_TRUE(engine_.Forward(tokens, s).ok());
    }
    return std::make_shared<const engine::State>(std::move(s));
  }
  absl::StatusOr<SessionInfo> Create(const std::string& id, StatePtr state,
                                     StatePtr initial = nullptr,
                                     bool shared = false) {
    return Wait<SessionInfo>([&](auto done) {
      NewSession ns;
      ns.id = id;
      ns.state = state;
      ns.initial = initial;
      ns.initial_shared = shared;
      manager_->Create(std::move(ns), std::move(done));
    });
  }
  absl::Status Commit(const std::string& id, StatePtr state) {
    absl::StatusOr<SessionLease> lease = manager_->Lease(id);
    if (!lease.ok()) return lease.status();
    return WaitStatus([&](auto done) {
      lease->Commit(state, SessionLease::Initial::kKeep, std::move(done));
    });
  }
  uint32_t HashOf(const std::string& id) {
    absl::StatusOr<StatePtr> s = manager_->ReadState(id);
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? FakeEngine::HashOf(**s) : 0;
  }
  // Rewrites one stored value behind the store's back (store closed).
  void Poke(const std::string& key,
            const std::function<void(std::string&)>& f) {
    rocksdb::DB* raw = nullptr;
    rocksdb::Options o;
    rocksdb::Status opened = rocksdb::DB::Open(o, dir_.Sub("db"), &raw);
    ASSERT_TRUE(opened.ok()) << opened.ToString();
    std::unique_ptr<rocksdb::DB> db(raw);
    std::string value;
    ASSERT_TRUE(db->Get(rocksdb::ReadOptions(), key, &value).ok()) << key;
    f(value);
    ASSERT_TRUE(db->Put(rocksdb::WriteOptions(), key, value).ok());
  }

  TempDir dir_;
  FakeClock clock_{absl::FromUnixSeconds(1800000000)};
  FakeEngine engine_;
  std::unique_ptr<RocksDbSessionStore> store_;
  std::unique_ptr<SessionManager> manager_;
};

TEST_F(RocksDbStoreTest, SessionsSurviveAReopenExactly) {
  Open();
  StatePtr fresh = Fed(0);
  ASSERT_TRUE(Create("plain", fresh, fresh, /*shared=*/true).ok());
  ASSERT_TRUE(Create("fed", Fed(5)).ok());
  ASSERT_TRUE(Commit("fed", Fed(9, 3)).ok());
  ASSERT_TRUE(Create("gone", Fed(2)).ok());
  ASSERT_TRUE(
      WaitStatus([&](auto d) { manager_->Delete("gone", std::move(d)); }).ok());
  const uint32_t want = FakeEngine::HashOf(*Fed(9, 3));
  Close();
  Open();
  EXPECT_EQ(HashOf("fed"), want);
  EXPECT_EQ(manager_->Get("fed")->token_count, 9);
  EXPECT_EQ(manager_->Get("plain")->token_count, 0);
  EXPECT_EQ(manager_->Get("gone").status().code(), absl::StatusCode::kNotFound);
  // Reset still goes back to the initial state the session was created with.
  absl::StatusOr<SessionLease> lease = manager_->Lease("fed");
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->initial()->token_count(), 5);
  EXPECT_EQ(store_->Count(), 2);
}

TEST_F(RocksDbStoreTest, SharedInitialStatesAreStoredOnce) {
  Open();
  StatePtr fresh = Fed(0);
  for (int i = 0; i < 50; ++i) {
    ASSERT_TRUE(Create("s" + std::to_string(i), fresh, fresh, true).ok());
  }
  const int64_t fifty = store_->StoredBytes();
  // 50 sessions that share one initial state and hold no state of their own
  // cost metadata only: far less than 50 states.
  ASSERT_TRUE(Commit("s0", Fed(3)).ok());
  const int64_t one_state = store_->StoredBytes() - fifty;
  EXPECT_GT(one_state, 0);
  EXPECT_LT(fifty, 10 * one_state);
}

TEST_F(RocksDbStoreTest, ConcurrentCommitsShareGroupCommits) {
  Open();
  constexpr int kSessions = 40;
  for (int i = 0; i < kSessions; ++i) {
    ASSERT_TRUE(Create("c" + std::to_string(i), Fed(1, i)).ok());
  }
  const StoreWriterStats before = store_->writer_stats();
  std::vector<SessionLease> leases;
  for (int i = 0; i < kSessions; ++i) {
    leases.push_back(*manager_->Lease("c" + std::to_string(i)));
  }
  std::atomic<int> ok{0};
  absl::Notification all;
  for (int i = 0; i < kSessions; ++i) {
    leases[i].Commit(Fed(4, i), SessionLease::Initial::kKeep,
                     [&](absl::Status s) {
                       if (s.ok() && ++ok == kSessions) all.Notify();
                     });
  }
  all.WaitForNotification();
  const StoreWriterStats after = store_->writer_stats();
  EXPECT_EQ(after.writes - before.writes, kSessions);
  // Commits queued while a group is being synced go out together.
  EXPECT_LT(after.groups - before.groups, kSessions / 2);
  for (int i = 0; i < kSessions; ++i) {
    EXPECT_EQ(HashOf("c" + std::to_string(i)), FakeEngine::HashOf(*Fed(4, i)));
  }
}

TEST_F(RocksDbStoreTest, ColdSessionsLoadOnUse) {
  const int64_t one = Fed(1)->SizeBytes();
  Open(/*ram_bytes=*/2 * one);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(Create("k" + std::to_string(i), Fed(3, i)).ok());
  }
  EXPECT_LE(manager_->total_bytes(), 2 * one);
  EXPECT_EQ(store_->Count(), 10);
  for (int i = 0; i < 10; ++i) {  // the client sees only latency
    EXPECT_EQ(HashOf("k" + std::to_string(i)), FakeEngine::HashOf(*Fed(3, i)));
  }
  EXPECT_TRUE(Commit("k0", Fed(6, 0)).ok());
  EXPECT_EQ(manager_->Get("k0")->token_count, 6);
}

TEST_F(RocksDbStoreTest, ColdSessionsExpireOnDiskAndDeletedOnesStayDeleted) {
  const int64_t one = Fed(1)->SizeBytes();
  Open(/*ram_bytes=*/one);
  ASSERT_TRUE(Create("old", Fed(2, 1)).ok());
  ASSERT_TRUE(Create("new", Fed(2, 2)).ok());  // pushes "old" out of RAM
  clock_.Advance(absl::Seconds(30));
  ASSERT_TRUE(manager_->ReadState("new").ok());  // used: lives longer
  clock_.Advance(absl::Seconds(31));
  EXPECT_EQ(manager_->Sweep(), 1);
  store_->Sync();
  EXPECT_EQ(store_->Count(), 1);
  absl::Status s = manager_->Get("old").status();
  EXPECT_THAT(std::string(s.message()), HasSubstr("expired"));
  Close();
  Open();
  EXPECT_EQ(manager_->Get("old").status().code(), absl::StatusCode::kNotFound);
  EXPECT_TRUE(manager_->Get("new").ok());
}

TEST_F(RocksDbStoreTest, ADamagedRecordFailsAloneWithDataLoss) {
  Open();
  ASSERT_TRUE(Create("good", Fed(3, 1)).ok());
  ASSERT_TRUE(Create("bad", Fed(3, 2)).ok());
  ASSERT_TRUE(Commit("bad", Fed(4, 2)).ok());  // a state of its own: d/bad
  ASSERT_TRUE(Create("badmeta", Fed(3, 3)).ok());
  Close();
  Poke("d/bad", [](std::string& v) { v[v.size() / 2] ^= 0x5a; });
  Poke("m/badmeta", [](std::string& v) { v[10] ^= 0x01; });
  Open();
  absl::Status s = manager_->ReadState("bad").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(s.message()), HasSubstr("'bad'"));
  s = manager_->Get("badmeta").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(HashOf("good"), FakeEngine::HashOf(*Fed(3, 1)));
  ASSERT_EQ(store_->unreadable().size(), 1u);
  EXPECT_EQ(store_->unreadable()[0].first, "badmeta");
  EXPECT_EQ(store_->unreadable()[0].second.code(), absl::StatusCode::kDataLoss);
}

TEST_F(RocksDbStoreTest, RecordsOfAnotherModelOrFormatAreRefused) {
  Open();
  ASSERT_TRUE(Create("mine", Fed(2)).ok());
  ASSERT_TRUE(Create("future", Fed(2, 5)).ok());
  Close();
  // A newer record format: rewrite the version and fix the checksum.
  Poke("m/future", [](std::string& v) {
    v[4] = 99;
    const uint32_t crc = engine::Crc32(v.data(), v.size() - 4);
    std::memcpy(v.data() + v.size() - 4, &crc, 4);
  });
  FakeEngine other(256, "another-model");
  RocksDbStoreOptions so;
  so.dir = dir_.Sub("db");
  auto store = RocksDbSessionStore::Open(so, &other.model());
  ASSERT_TRUE(store.ok());
  absl::Status s = (*store)->Read("mine").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("fake-engine"));
  EXPECT_THAT(std::string(s.message()), HasSubstr("another-model"));
  s = (*store)->Read("future").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(s.message()), HasSubstr("format version 99"));
}

TEST_F(RocksDbStoreTest, ASessionsNoteSurvivesAReopenAndTouches) {
  Open();
  ASSERT_TRUE(Wait<SessionInfo>([&](auto done) {
                NewSession ns;
                ns.id = "resp_1";
                ns.state = Fed(3);
                ns.note = R"({"object": "response"})";
                manager_->Create(std::move(ns), std::move(done));
              }).ok());
  ASSERT_TRUE(Wait<SessionInfo>([&](auto done) {
                manager_->Touch("resp_1", absl::Hours(2), std::move(done));
              }).ok());
  Close();
  Open();
  absl::StatusOr<SessionInfo> info = manager_->Get("resp_1");
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->note, R"({"object": "response"})");
  EXPECT_EQ(info->ttl, absl::Hours(2));
}

TEST(RecordCodecTest, VersionOneRecordsWithoutANoteAreStillRead) {
  StoredMeta plain;
  plain.meta.id = "old";
  plain.meta.token_count = 7;
  std::string v = EncodeMeta(plain);
  // Version 1 had no note: drop its (empty) length and the version 2 tag.
  v.erase(v.size() - 8, 4);
  v[4] = 1;
  v[5] = 0;
  const uint32_t crc = engine::Crc32(v.data(), v.size() - 4);
  std::memcpy(v.data() + v.size() - 4, &crc, 4);
  absl::StatusOr<StoredMeta> old = DecodeMeta(v, "old");
  ASSERT_TRUE(old.ok()) << old.status();
  EXPECT_EQ(old->meta.id, "old");
  EXPECT_EQ(old->meta.token_count, 7);
  EXPECT_EQ(old->meta.note, "");
}

TEST_F(RocksDbStoreTest, ASecondProcessCannotOpenTheSameDirectory) {
  Open();
  RocksDbStoreOptions so;
  so.dir = dir_.Sub("db");
  auto second = RocksDbSessionStore::Open(so, &engine_.model());
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(second.status().message()),
              HasSubstr("in use by another process"));
}

TEST_F(RocksDbStoreTest, DiskBoundEvictsLeastRecentlyUsedAndRefusesWhenFull) {
  Open();
  ASSERT_TRUE(Create("probe", Fed(3, 9)).ok());
  const int64_t per = store_->StoredBytes();
  ASSERT_TRUE(WaitStatus([&](auto d) {
                manager_->Delete("probe", std::move(d));
              }).ok());
  Open(/*ram_bytes=*/0, /*disk_bytes=*/3 * per + per / 2);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(Create("d" + std::to_string(i), Fed(3, i)).ok());
    clock_.Advance(absl::Seconds(1));
  }
  manager_->Sweep();                          // stored last-used times catch up
  ASSERT_TRUE(Create("d3", Fed(3, 3)).ok());  // evicts d0, the oldest
  store_->Sync();
  absl::Status s = manager_->Get("d0").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max-disk-bytes"));
  EXPECT_LE(store_->StoredBytes(), 3 * per + per / 2);
  // Everyone busy: no room, and nothing changes.
  std::vector<SessionLease> held;
  for (const char* id : {"d1", "d2", "d3"})
    held.push_back(*manager_->Lease(id));
  s = Create("d4", Fed(3, 4)).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  store_->Sync();
  EXPECT_EQ(store_->Count(), 3);
}

TEST_F(RocksDbStoreTest, AFullStoreFailsTheCommitAndKeepsTheOldState) {
  Open();
  StatePtr fresh = Fed(0);
  ASSERT_TRUE(Create("probe", fresh, fresh, true).ok());
  const int64_t meta_only = store_->StoredBytes();
  // Room for the fresh session's metadata, not for a state of its own.
  Open(/*ram_bytes=*/0, /*disk_bytes=*/meta_only + 64);
  absl::Status s = Commit("probe", Fed(5));
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(s.message()), HasSubstr("--max-disk-bytes"));
  EXPECT_EQ(manager_->Get("probe")->token_count, 0);  // rolled back
  EXPECT_FALSE(manager_->Get("probe")->busy);
  EXPECT_TRUE(manager_->ReadState("probe").ok());  // reads keep working
}

TEST(RocksDbStoreDtypeTest, HalfPrecisionStorageHalvesTheBytes) {
  // A real (random) model: its states are large enough to show the bytes.
  engine::RandomModelSpec spec;
  spec.n_layer = 2;
  spec.n_embd = 256;
  engine::EngineOptions eo;
  eo.num_threads = 1;
  auto engine = engine::RwkvEngine::CreateRandom(spec, eo);
  ASSERT_TRUE(engine.ok());
  engine::State fed = (*engine)->NewState();
  ASSERT_TRUE((*engine)->Forward({1, 2, 3}, fed).ok());
  const StatePtr state = std::make_shared<const engine::State>(std::move(fed));
  auto stored_bytes = [&](engine::StateDtype dtype) -> int64_t {
    TempDir dir;
    RocksDbStoreOptions so;
    so.dir = dir.Sub("db");
    so.dtype = dtype;
    auto store = RocksDbSessionStore::Open(so, &(*engine)->model());
    EXPECT_TRUE(store.ok());
    SessionManagerOptions mo;
    mo.sweep_interval = absl::ZeroDuration();
    SessionManager m(mo, store->get());
    NewSession ns;
    ns.id = "x";
    ns.state = state;
    EXPECT_TRUE(Wait<SessionInfo>([&](auto done) {
                  m.Create(std::move(ns), std::move(done));
                }).ok());
    auto back = (*store)->Read("x");
    EXPECT_TRUE(back.ok()) << back.status();
    return (*store)->StoredBytes();
  };
  const int64_t fp32 = stored_bytes(engine::StateDtype::kFloat32);
  const int64_t fp16 = stored_bytes(engine::StateDtype::kFloat16);
  EXPECT_LE(fp32, state->SizeBytes() * 105 / 100 + 4096);
  EXPECT_LE(fp16, state->SizeBytes() * 55 / 100 + 4096);
  EXPECT_LT(fp16, fp32 * 6 / 10);
}

// The owner is part of the stored record: after a restart another tenant
// still cannot see the session, and per-tenant usage is counted again from
// the store (cold sessions included).
TEST_F(RocksDbStoreTest, OwnersAndTenantUsageSurviveAReopen) {
  Open();
  for (const char* id : {"a1", "a2"}) {
    ASSERT_TRUE(Wait<SessionInfo>([&](auto done) {
                  NewSession ns;
                  ns.id = id;
                  ns.owner = "alpha";
                  ns.state = Fed(3);
                  manager_->Create(std::move(ns), std::move(done));
                }).ok());
  }
  ASSERT_TRUE(Create("anon", Fed(1)).ok());
  const int64_t bytes = manager_->usage("alpha").state_bytes;
  EXPECT_EQ(manager_->usage("alpha").sessions, 2);
  Close();
  Open();
  EXPECT_EQ(manager_->usage("alpha").sessions, 2);
  EXPECT_EQ(manager_->usage("alpha").state_bytes, bytes);
  EXPECT_EQ(manager_->usage("").sessions, 1);
  EXPECT_EQ(manager_->Get("a1", SessionAccess::Tenant("beta")).status().code(),
            absl::StatusCode::kNotFound);
  absl::Status del = WaitStatus([&](auto d) {
    manager_->Delete("a2", std::move(d), SessionAccess::Tenant("beta"));
  });
  EXPECT_EQ(del.code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(manager_->Get("a1", SessionAccess::Tenant("alpha")).ok());
  EXPECT_EQ(manager_->Get("a1")->owner, "alpha");
  ASSERT_TRUE(WaitStatus([&](auto d) {
                manager_->Delete("a2", std::move(d),
                                 SessionAccess::Tenant("alpha"));
              }).ok());
  EXPECT_EQ(manager_->usage("alpha").sessions, 1);
}

}  // namespace
}  // namespace rwkv::server
