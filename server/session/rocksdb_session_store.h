// RocksDbSessionStore: the durable SessionStore (--store rocksdb, the
// default): every record in an embedded RocksDB under --data-dir, in the
// record format of record_codec.h (metadata "m/<id>", state "d/<id>",
// shared initial states "i/<key>" stored once per content).
//
// Durability: Write() returns at once; a writer thread applies everything
// queued since its last commit as ONE RocksDB write batch with ONE fsync
// (group commit, as LevelDB's writers do) and only then calls each write's
// `done`. So a caller's acknowledgement always follows a synced write, and
// the engine's thread never waits on the disk.
// Reads: metadata comes from an in-memory index built at open (no state is
// read, so opening 10,000 sessions takes milliseconds); a record's state is
// read and checked (size, CRC-32, model fingerprint, format version) when it
// is loaded. A second process on the same directory fails to open (RocksDB's
// lock). Thread-safe.
#ifndef RWKV_SERVER_SESSION_ROCKSDB_SESSION_STORE_H_
#define RWKV_SERVER_SESSION_ROCKSDB_SESSION_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "engine/model.h"
#include "engine/state_file.h"
#include "server/session/record_codec.h"
#include "server/session/session_store.h"
#include "server/session/stored_session_index.h"

namespace rocksdb {
class DB;
}  // namespace rocksdb

namespace rwkv::server {

struct RocksDbStoreOptions {
  // The RocksDB directory (created if missing).
  std::string dir = "./rwkv-data";
  // How states are stored: fp32 (exact) or fp16/bf16 (half the bytes).
  engine::StateDtype dtype = engine::StateDtype::kFloat32;
  // fsync every commit group (the durability contract). Off only for tests
  // of other things and for measuring its cost.
  bool sync = true;
};

class RocksDbSessionStore final : public SessionStore {
 public:
  // Opens (or creates) the store. `model` may be null for a read-only look
  // at metadata (--list-sessions): Read() then fails. Errors name the
  // directory: UNAVAILABLE if another process holds it, DATA_LOSS if RocksDB
  // finds it corrupt.
  static absl::StatusOr<std::unique_ptr<RocksDbSessionStore>> Open(
      const RocksDbStoreOptions& options, const engine::Model* model);
  // Applies every queued write, then closes the database.
  ~RocksDbSessionStore() override;

  bool durable() const override { return true; }
  absl::StatusOr<SessionRecord> Read(const std::string& id) override;
  absl::StatusOr<SessionMeta> ReadMeta(const std::string& id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void Write(std::vector<StoreWrite> writes, WriteDone done) override
      ABSL_LOCKS_EXCLUDED(queue_mu_);
  void Sync() override ABSL_LOCKS_EXCLUDED(queue_mu_);
  absl::StatusOr<std::vector<SessionMeta>> List(const std::string& after,
                                                int limit) override
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Count() override ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::string> Expired(absl::Time now, int limit) override
      ABSL_LOCKS_EXCLUDED(mu_);
  std::vector<std::pair<std::string, int64_t>> LeastRecentlyUsed(
      int limit) override ABSL_LOCKS_EXCLUDED(mu_);
  int64_t StoredBytes() override ABSL_LOCKS_EXCLUDED(mu_);
  int64_t StoredBytesOf(const std::string& id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t PutBytes(const SessionRecord& record) override;

  StoreWriterStats writer_stats() const ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Records whose metadata could not be read at open (id -> why).
  std::vector<std::pair<std::string, absl::Status>> unreadable() const
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Pending;
  struct Group;

  RocksDbSessionStore(const RocksDbStoreOptions& options,
                      const engine::Model* model,
                      std::unique_ptr<rocksdb::DB> db);
  absl::Status LoadIndex() ABSL_LOCKS_EXCLUDED(mu_);
  void WriterLoop() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Builds one batch from `pending` (compare-and-set checked against the
  // index and the batch so far), writes it, updates the index, answers.
  void Commit(std::vector<Pending> pending) ABSL_LOCKS_EXCLUDED(mu_);
  // Adds one caller's writes to `group`, or returns why they cannot apply.
  absl::Status Stage(std::vector<StoreWrite>& writes, Group& group)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status StagePut(StoreWrite& write, Group& group)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The content key of an initial state (cached by object), serializing it
  // into `bytes` when it is not cached.
  std::string KeyOf(const StatePtr& state, std::string* bytes)
      ABSL_LOCKS_EXCLUDED(keys_mu_);
  absl::StatusOr<StatePtr> LoadInitial(const std::string& key,
                                       const void* snapshot,
                                       const std::string& what)
      ABSL_LOCKS_EXCLUDED(keys_mu_);
  absl::StatusOr<StatePtr> ParseStored(std::string bytes,
                                       const std::string& what) const;

  // Constant after construction.
  const RocksDbStoreOptions options_;
  const engine::Model* const model_;
  const std::unique_ptr<rocksdb::DB> db_;

  mutable absl::Mutex mu_;
  StoredSessionIndex index_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, absl::Status> unreadable_
      ABSL_GUARDED_BY(mu_);

  // Content keys of initial states by object, and loaded initial states by
  // key (weak: kept only while sessions hold them).
  absl::Mutex keys_mu_;
  absl::flat_hash_map<
      const engine::State*,
      std::pair<std::weak_ptr<const engine::State>, std::string>>
      key_of_ ABSL_GUARDED_BY(keys_mu_);
  absl::flat_hash_map<std::string, std::weak_ptr<const engine::State>> loaded_
      ABSL_GUARDED_BY(keys_mu_);

  mutable absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  // The writer is applying a group taken from queue_.
  bool committing_ ABSL_GUARDED_BY(queue_mu_) = false;
  StoreWriterStats stats_ ABSL_GUARDED_BY(queue_mu_);
  std::thread writer_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_ROCKSDB_SESSION_STORE_H_
