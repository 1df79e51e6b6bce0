// SessionStore: where session records live; the seam between the session
// layer's logic (leases, TTL, RAM bound: SessionManager) and storage.
// MemorySessionStore keeps records in this process; RocksDbSessionStore
// keeps them on disk. A store that is not durable holds only sessions the
// manager also holds in RAM (the manager expires and evicts those itself);
// a durable one also holds sessions that have left RAM ("cold" ones), which
// the manager loads back on use and expires or evicts through the store.
//
// Contract:
//  * Write() applies its writes atomically (all or none) and calls `done`
//    once they are durable, or with the error. `done` may run on any thread,
//    also before Write() returns; it must not call back into the store.
//  * Puts are compare-and-set on the record's version: a put states the
//    version it replaces (0: the id must be free); a stale put fails with
//    ABORTED and changes nothing. Metadata-only touches and deletes do not
//    compare (a touch of a missing record does nothing).
//  * Thread-safe.
#ifndef RWKV_SERVER_SESSION_SESSION_STORE_H_
#define RWKV_SERVER_SESSION_SESSION_STORE_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/session/session_record.h"

namespace rwkv::server {

struct StoreWrite {
  enum class Op {
    kPut,     // the whole record (meta + states)
    kTouch,   // meta.last_used and meta.ttl only
    kDelete,  // meta.id only
  };
  Op op = Op::kPut;
  SessionRecord record;
  // kPut: the version being replaced; 0 = a new session.
  uint64_t expected_version = 0;
  // kPut on a shared store: the token of the store lease this put commits
  // (from AcquireLease; "" = none). The put fails with ABORTED if another
  // holder has the lease, and releases it when it applies.
  std::string lease_token;
};

// Counters of a durable store's writer thread (for logs and benchmarks).
struct StoreWriterStats {
  // Commit groups: RocksDB writes (one fsync each), Redis pipelines (one
  // round trip each).
  int64_t groups = 0;
  int64_t writes = 0;  // Write() calls they carried
  int64_t bytes = 0;   // bytes put
};

// A shared store's lease on one record, as AcquireLease grants it.
struct StoreLease {
  // Names this holder; a put carrying it commits and releases the lease.
  std::string token;
  // The record's metadata when the lease was taken (its current version,
  // last use and TTL).
  SessionMeta meta;
};

// What a shared store holds for a record now (one cheap round trip).
struct StoredStamp {
  SessionMeta meta;
  // A store lease holds the record (a turn runs on it somewhere).
  bool leased = false;
};

class SessionStore {
 public:
  using WriteDone = absl::AnyInvocable<void(absl::Status)>;

  virtual ~SessionStore() = default;

  // True if records outlive the process (RAM eviction then loses nothing).
  virtual bool durable() const = 0;
  // True if other processes write the same records (see the file comment).
  // Shared stores are durable.
  virtual bool shared() const { return false; }

  // The record of `id`; NOT_FOUND if there is none; DATA_LOSS for a record
  // that fails its checksum; FAILED_PRECONDITION for one written for another
  // model or in an unknown format. The message names the session.
  virtual absl::StatusOr<SessionRecord> Read(const std::string& id) = 0;
  // Its metadata alone (no state is read); NOT_FOUND if there is none.
  virtual absl::StatusOr<SessionMeta> ReadMeta(const std::string& id) = 0;

  // See the file comment.
  virtual void Write(std::vector<StoreWrite> writes, WriteDone done) = 0;
  // Returns once every write queued before the call has been applied and
  // its `done` has returned.
  virtual void Sync() {}

  // Metadata of up to `limit` records with ids greater than `after`, in id
  // order.
  virtual absl::StatusOr<std::vector<SessionMeta>> List(
      const std::string& after, int limit) = 0;

  // How many records are stored.
  virtual int64_t Count() = 0;

  // Durable stores only (others return nothing / 0):
  // Ids of records whose stored expiry (last_used + ttl) is at or before
  // `now`, soonest first, at most `limit`.
  virtual std::vector<std::string> Expired(absl::Time now, int limit) {
    return {};
  }
  // Ids by stored last use, least recent first, at most `limit`, with the
  // bytes each holds (what deleting it frees).
  virtual std::vector<std::pair<std::string, int64_t>> LeastRecentlyUsed(
      int limit) {
    return {};
  }
  // Bytes of session data stored (what --max-disk-bytes bounds), and what a
  // put of `record` would add at most.
  virtual int64_t StoredBytes() { return 0; }
  virtual int64_t StoredBytesOf(const std::string& id) { return 0; }
  virtual int64_t PutBytes(const SessionRecord& record) { return 0; }

  // Shared stores only (others answer UNIMPLEMENTED / do nothing); all may
  // fail with UNAVAILABLE when the store cannot be reached:
  // The record's stored metadata and whether it is leased; NOT_FOUND.
  virtual absl::StatusOr<StoredStamp> ReadStamp(const std::string& id) {
    absl::StatusOr<SessionMeta> meta = ReadMeta(id);
    if (!meta.ok()) return meta.status();
    return StoredStamp{*std::move(meta), false};
  }
  // Takes the record's store lease, held until a put with its token applies
  // or ReleaseLease; the store keeps it alive meanwhile (renewal) and sets
  // `revoked` if it is lost (timed out, taken over) or the record is deleted
  // (the holder should then stop: its put would fail). Taking it counts as
  // a use of the record. FAILED_PRECONDITION if another holder has it;
  // NOT_FOUND.
  virtual absl::StatusOr<StoreLease> AcquireLease(const std::string& id,
                                                  RevocationFlag revoked) {
    return absl::UnimplementedError("this session store has no leases");
  }
  // Gives the lease up if this holder still has it (asynchronously).
  virtual void ReleaseLease(const std::string& id, const std::string& token) {}
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_SESSION_STORE_H_
