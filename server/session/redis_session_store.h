// RedisSessionStore: the shared SessionStore (--store redis://HOST:PORT[/DB])
// that lets several rwkv-server replicas serve the same sessions. Every
// record lives in Redis in the record format of record_codec.h, under keys
// namespaced by the model's fingerprint (key layout: redis_scripts.h); each
// replica's SessionManager keeps a RAM cache of the sessions it serves and
// checks its version against Redis on every use.
//
// Concurrency across replicas:
//  * Puts are compare-and-set on the record version inside one Lua script,
//    so a stale replica can never overwrite a newer state; a put that
//    commits a lease also fails if another holder has that lease.
//  * Store leases (AcquireLease): one holder per record, SET NX PX with a
//    token naming this replica; renewed by the writer thread every third of
//    lease_timeout while held, released by the committing put or by a
//    compare-and-delete. A replica that dies holding one loses it after
//    lease_timeout. A lease whose renewal finds it lost (or the record
//    deleted), or that could not be renewed for lease_timeout (Redis
//    unreachable), is revoked: its holder stops.
//  * TTL is the key's expiry (PEXPIREAT last use + TTL): Redis drops expired
//    sessions itself; every use pushes it (lazily, as the manager writes
//    last-used times).
//
// Durability: acknowledged = Redis acknowledged the write (the script ran);
// what survives a Redis crash then depends on Redis' appendonly/appendfsync
// settings (README "Running several replicas"). Write() returns at once; a
// writer thread with its own connection sends everything queued since its
// last commit as pipelined scripts (one round trip per group; one script,
// so all or nothing, per Write call) and only then calls each `done`. The
// engine's thread never waits on Redis. Reads and leases run on the
// calling threads over a connection pool.
//
// Redis unreachable: every call fails with UNAVAILABLE naming the address;
// connections are reopened on the next call (no restart needed). A write
// whose connection broke after sending may have applied or not (like a
// crash between write and answer): its `done` says UNAVAILABLE, and the
// record's version tells the session layer which. Thread-safe.
#ifndef RWKV_SERVER_SESSION_REDIS_SESSION_STORE_H_
#define RWKV_SERVER_SESSION_REDIS_SESSION_STORE_H_

#include <cstdint>
#include <deque>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/model.h"
#include "engine/state_file.h"
#include "server/session/initial_state_cache.h"
#include "server/session/record_codec.h"
#include "server/session/redis_connection.h"
#include "server/session/redis_connection_pool.h"
#include "server/session/session_store.h"

namespace rwkv::server {

struct RedisStoreOptions {
  // redis://HOST:PORT[/DB] (rwkv-server takes it from --store).
  std::string url;
  // How states are stored: fp32 (exact) or fp16/bf16 (half the bytes).
  engine::StateDtype dtype = engine::StateDtype::kFloat32;
  // A store lease not renewed for this long is free again: the longest a
  // replica that died mid-turn keeps its session busy.
  absl::Duration lease_timeout = absl::Seconds(10);
  // Connect and command timeout: how long a call waits for an unreachable
  // Redis before it fails with UNAVAILABLE.
  absl::Duration timeout = absl::Seconds(2);
};

class RedisSessionStore final : public SessionStore {
 public:
  // Connects (UNAVAILABLE naming the address if Redis cannot be reached,
  // INVALID_ARGUMENT for a bad URL). `model` must outlive the store.
  static absl::StatusOr<std::unique_ptr<RedisSessionStore>> Open(
      const RedisStoreOptions& options, const engine::Model* model);
  // Applies every queued write, then stops the writer.
  ~RedisSessionStore() override;

  bool durable() const override { return true; }
  bool shared() const override { return true; }
  absl::StatusOr<SessionRecord> Read(const std::string& id) override;
  absl::StatusOr<SessionMeta> ReadMeta(const std::string& id) override;
  absl::StatusOr<StoredStamp> ReadStamp(const std::string& id) override;
  void Write(std::vector<StoreWrite> writes, WriteDone done) override
      ABSL_LOCKS_EXCLUDED(queue_mu_);
  void Sync() override ABSL_LOCKS_EXCLUDED(queue_mu_);
  absl::StatusOr<std::vector<SessionMeta>> List(const std::string& after,
                                                int limit) override;
  // Live (unexpired) records; 0 if Redis cannot be reached.
  int64_t Count() override;
  absl::StatusOr<StoreLease> AcquireLease(const std::string& id,
                                          RevocationFlag revoked) override
      ABSL_LOCKS_EXCLUDED(held_mu_);
  void ReleaseLease(const std::string& id, const std::string& token) override
      ABSL_LOCKS_EXCLUDED(held_mu_, queue_mu_);

  StoreWriterStats writer_stats() const ABSL_LOCKS_EXCLUDED(queue_mu_);
  // "rwkv:<fingerprint>:": the prefix of every key of this model.
  const std::string& key_prefix() const { return prefix_; }
  // "<host>:<pid>:<random>": this process in lease tokens.
  const std::string& replica_token() const { return replica_; }

 private:
  struct Pending {
    std::vector<StoreWrite> writes;
    WriteDone done;
  };
  struct Release {
    std::string id;
    std::string token;
  };
  struct Held {
    std::string id;
    RevocationFlag revoked;
    absl::Time renewed;
    // Redis has granted it (else it is being asked for).
    bool granted = false;
  };
  // One Write() call as script arguments.
  struct Script {
    std::vector<std::string> args;
    // Initial-state keys its puts reference.
    std::vector<std::string> initial_keys;
    int64_t bytes = 0;
  };

  RedisSessionStore(const RedisStoreOptions& options, RedisAddress address,
                    const engine::Model* model);

  std::string What(const std::string& id) const;
  // Decodes a stored m/u/t triple (DATA_LOSS, FAILED_PRECONDITION for a
  // record of another model or format); `what` names it in messages.
  absl::StatusOr<StoredMeta> DecodeStored(absl::string_view what,
                                          const std::string& meta,
                                          const std::string& used,
                                          const std::string& ttl) const;
  absl::StatusOr<StatePtr> ParseStored(std::string bytes,
                                       const std::string& what) const;
  absl::StatusOr<StatePtr> LoadInitial(const std::string& key,
                                       const std::string& what);

  // Writer thread.
  void WriterLoop() ABSL_LOCKS_EXCLUDED(queue_mu_);
  // The writer's connection, opened if needed.
  absl::StatusOr<RedisConnection*> WriterConnection();
  void Commit(std::vector<Pending> pending) ABSL_LOCKS_EXCLUDED(queue_mu_);
  // Sends scripts[i] for every results[i] that is OK and puts the answers
  // in results; the error if Redis cannot be reached at all.
  absl::Status Pipeline(std::vector<Pending>& pending,
                        std::vector<Script>& scripts,
                        std::vector<absl::Status>& results);
  // One call's script; `with_initials`: send every referenced initial
  // state's bytes (else only those not known to be stored).
  absl::Status BuildScript(const std::vector<StoreWrite>& writes,
                           bool with_initials, Script* script);
  absl::Status AddPut(const StoreWrite& write, bool with_initials,
                      Script* script);
  // The script's answer as a status; *missing_initial for NOINITIAL.
  absl::Status ScriptResult(const absl::StatusOr<RedisReplyPtr>& reply,
                            bool* missing_initial) const;
  // Runs scripts[i] again, one at a time (after NOINITIAL or NOSCRIPT).
  absl::Status Retry(const std::vector<StoreWrite>& writes, bool with_initials,
                     RedisConnection& conn);
  // Notes initial-state keys Redis has (writer thread).
  void RememberInitials(const std::vector<std::string>& keys);
  void SendReleases(std::vector<Release> releases);
  void RenewLeases() ABSL_LOCKS_EXCLUDED(held_mu_);
  void Prune();
  // True if a holder in this process has (or is asking for) `token`.
  bool IsHeld(const std::string& token) ABSL_LOCKS_EXCLUDED(held_mu_);
  // Stops tracking (and renewing) the lease `token`.
  void Forget(const std::string& token) ABSL_LOCKS_EXCLUDED(held_mu_);

  // Constant after construction.
  const RedisStoreOptions options_;
  const engine::Model* const model_;
  const std::string prefix_;
  const std::string replica_;
  RedisConnectionPool pool_;

  InitialStateCache initials_;

  absl::Mutex held_mu_;
  // Leases held here, by token.
  absl::flat_hash_map<std::string, Held> held_ ABSL_GUARDED_BY(held_mu_);
  uint64_t next_lease_ ABSL_GUARDED_BY(held_mu_) = 1;

  mutable absl::Mutex queue_mu_;
  std::deque<Pending> queue_ ABSL_GUARDED_BY(queue_mu_);
  std::vector<Release> releases_ ABSL_GUARDED_BY(queue_mu_);
  bool stopping_ ABSL_GUARDED_BY(queue_mu_) = false;
  bool committing_ ABSL_GUARDED_BY(queue_mu_) = false;
  StoreWriterStats stats_ ABSL_GUARDED_BY(queue_mu_);

  // Writer thread only: its connection, and the initial-state keys it has
  // seen stored (their bytes are not sent again; a NOINITIAL answer sends
  // them when Redis has dropped one).
  std::unique_ptr<RedisConnection> writer_conn_;
  absl::flat_hash_set<std::string> stored_initials_;
  std::thread writer_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_REDIS_SESSION_STORE_H_
