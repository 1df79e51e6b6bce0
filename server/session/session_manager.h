// SessionManager: the server's sessions. Maps a session id to its record
// (states + metadata) in RAM, over a SessionStore that keeps every record
// (the memory store, or a durable one). Thread-safe: every method may be
// called from any thread. State bytes are never copied or freed under the
// manager's mutex: states are shared immutable pointers (see
// session_record.h), and callers clone them outside.
//
// Lifetime rules:
//  * A session expires `ttl` after its last use (default 3600 s, per-session
//    override). A sweeper thread frees expired sessions every
//    `sweep_interval` (an index by expiry time makes that O(expired)); lookups
//    also treat an expired session as gone. Busy sessions never expire.
//  * The RAM bound (`max_state_bytes`, 0 = none) counts each session's
//    charge: its state bytes plus its initial state's bytes unless that one
//    is shared between sessions. When a new or grown session would exceed
//    it, idle sessions leave RAM least recently used first (O(1) each). With
//    a store that is not durable that deletes them ("evicted"); if nothing
//    idle is left, creation fails with RESOURCE_EXHAUSTED.
//  * Unknown, expired, evicted and deleted ids all give NOT_FOUND; the
//    message says which (the last `remembered_ids` gone ids are remembered).
//  * Tenants: each session has an owner. Calls pass a SessionAccess; a
//    session it does not allow (another tenant's, live or gone) answers
//    exactly as an unknown id. Ids are one namespace: creating an id another
//    tenant holds is ALREADY_EXISTS (the same message as for one's own).
//    Per-tenant usage (sessions, state bytes; stored ones included) is kept
//    here and bounded at creation by NewSession::quota. With a shared store
//    it is this replica's RAM copies (a quota bounds each replica; sessions
//    other replicas hold or Redis expired are not counted).
//  * Changes are acknowledged (their callbacks called) only after the store
//    has them. Uses that do not change the state (ReadState, leases) update
//    last-used in RAM and reach the store lazily, within one sweep interval
//    (and before the session leaves RAM). A deleted or expired session never
//    comes back: the stored last-used time is never later than RAM's.
//  * With a durable store, sessions not in RAM ("cold") are loaded on use;
//    the sweeper expires cold sessions through the store's expiry index,
//    and --max-disk-bytes evicts the least recently used idle ones.
//  * With a shared store (other processes write the same records: replicas
//    over Redis) RAM holds copies, never the truth: every use first asks the
//    store for the record's version (one round trip; a read-modify-write's
//    store lease answers it) and reloads a copy whose version is not the
//    stored one (each commit draws a new random version, so an equal
//    version means the same record, even after the store lost writes); a
//    record the store no longer has leaves RAM (NOT_FOUND).
//    Every read-modify-write also holds the store-level lease, so a second
//    process gets FAILED_PRECONDITION ("busy on another replica"). Expiry is
//    the store's (RAM expiry only drops copies). No store round trip ever
//    happens under the manager's mutex, so the scheduler thread (which
//    commits) never waits on the store. If the store cannot be reached,
//    every session operation fails with UNAVAILABLE: also reads of sessions
//    held in RAM, since their copies may be stale.
//
// Read-modify-writes (turns, Decay, Reset, Import with replace) take a
// SessionLease (see session_lease.h); the session keeps its state until the
// lease commits. Deleting a leased session is allowed: the lease's Check()
// then says ABORTED and its commit is dropped.
#ifndef RWKV_SERVER_SESSION_SESSION_MANAGER_H_
#define RWKV_SERVER_SESSION_SESSION_MANAGER_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/session/session_access.h"
#include "server/session/session_lease.h"
#include "server/session/session_record.h"
#include "server/session/session_store.h"

namespace rwkv::server {

struct SessionManagerOptions {
  // TTL of sessions created with ttl <= 0.
  absl::Duration default_ttl = absl::Hours(1);
  // Largest TTL a caller may ask for.
  absl::Duration max_ttl = absl::Hours(24 * 30);
  // RAM bound over all sessions' charges; 0 = unbounded. With a durable
  // store, sessions pushed out of RAM stay stored and load on next use.
  int64_t max_state_bytes = 0;
  // Bound on the bytes a durable store holds (SessionStore::StoredBytes);
  // beyond it the least recently used idle sessions are deleted
  // ("evicted"); 0 = unbounded.
  int64_t max_disk_bytes = 0;
  // Most sessions at once; 0 = unbounded.
  int max_sessions = 10000;
  // How often the sweeper frees expired sessions and writes last-used
  // times. <= 0: no sweeper thread (tests call Sweep() themselves).
  absl::Duration sweep_interval = absl::Seconds(1);
  // How many gone ids are remembered for NOT_FOUND messages.
  int remembered_ids = 4096;
  // The clock; defaults to absl::Now. Tests inject a fake one.
  std::function<absl::Time()> clock;
};

// What a new session starts from.
struct NewSession {
  // Empty: the manager generates an id.
  std::string id;
  // The tenant that owns it, and the bounds on that tenant's sessions.
  std::string owner;
  TenantSessionQuota quota;
  StatePtr state;
  // The state ResetSession returns to. Null: `state`.
  StatePtr initial;
  // True if `initial` is shared with other sessions (not charged here).
  bool initial_shared = false;
  // <= 0: the default TTL.
  absl::Duration ttl = absl::ZeroDuration();
  int64_t prefix_cached_tokens = 0;
  // See SessionMeta::note.
  std::string note;
};

class SessionManager {
 public:
  template <typename T>
  using Callback = absl::AnyInvocable<void(absl::StatusOr<T>)>;
  using StatusCallback = absl::AnyInvocable<void(absl::Status)>;

  // `store` must outlive the manager.
  SessionManager(SessionManagerOptions options, SessionStore* store);
  // Stops the sweeper. REQUIRES: no lease is held any more.
  ~SessionManager();
  SessionManager(const SessionManager&) = delete;
  SessionManager& operator=(const SessionManager&) = delete;

  // Checks an id's syntax: 1-128 characters of [A-Za-z0-9._:-].
  static absl::Status ValidateId(absl::string_view id);

  // The TTL a request gets: `requested` <= 0 means the default; more than
  // max_ttl is INVALID_ARGUMENT.
  absl::Status ResolveTtl(absl::Duration requested, absl::Duration* ttl) const;
  // Cheap early check before expensive work: the id is valid and free (""
  // is: one will be generated) and a session could be added now. Create()
  // checks again.
  // With `owner`/`quota`, also that the owner's quota leaves room.
  absl::Status CheckCanCreate(const std::string& id,
                              const std::string& owner = "",
                              const TenantSessionQuota& quota = {})
      ABSL_LOCKS_EXCLUDED(mu_);

  // Errors: INVALID_ARGUMENT (bad id or TTL), ALREADY_EXISTS,
  // RESOURCE_EXHAUSTED (max sessions, RAM bound with nothing idle, the
  // owner's quota), store errors.
  void Create(NewSession session, Callback<SessionInfo> done)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Metadata; does not count as use.
  // Every call below sees only the sessions `access` allows (see the file
  // comment); the default sees all.
  absl::StatusOr<SessionInfo> Get(
      const std::string& id, const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);
  // page_size <= 0: 100; at most 1000. page_token: the last id of the
  // previous page. A tenant's listing (and total) has its sessions only.
  absl::StatusOr<SessionPage> List(
      int page_size, const std::string& page_token,
      const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);
  void Delete(const std::string& id, StatusCallback done,
              const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);
  // Marks the session used now; ttl > 0 sets a new TTL.
  void Touch(const std::string& id, absl::Duration ttl,
             Callback<SessionInfo> done,
             const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);
  // The session's state (shared, immutable; the pre-turn state while a
  // lease is held). Counts as use.
  absl::StatusOr<StatePtr> ReadState(
      const std::string& id, const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the session for a read-modify-write. Counts as use. NOT_FOUND;
  // FAILED_PRECONDITION if it is busy.
  absl::StatusOr<SessionLease> Lease(
      const std::string& id, const SessionAccess& access = SessionAccess::All())
      ABSL_LOCKS_EXCLUDED(mu_);

  // Frees every expired idle session and writes pending last-used times
  // now; returns how many sessions expired.
  int Sweep() ABSL_LOCKS_EXCLUDED(mu_);

  // Sessions held now (including ones being created).
  int64_t session_count() const ABSL_LOCKS_EXCLUDED(mu_);
  // Sum of the charges of the sessions in RAM.
  int64_t total_bytes() const ABSL_LOCKS_EXCLUDED(mu_);
  // What `tenant` holds now.
  TenantUsage usage(const std::string& tenant) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class SessionLease;
  struct Entry;
  enum class GoneReason {
    kExpired,
    kEvicted,
    kEvictedFromDisk,
    kDeleted,
    kGoneFromStore,  // a shared store no longer has it
  };
  struct Gone {
    GoneReason reason;
    std::string owner;
  };
  // Work gathered under the mutex and done after it is released: declare
  // one before the MutexLock; its destructor frees the records and writes
  // the store changes (deletions, last-used times) in order.
  struct Deferred {
    explicit Deferred(SessionManager* m) : manager(m) {}
    ~Deferred() { Flush(); }
    void Flush();
    SessionManager* manager;
    std::vector<SessionRecord> garbage;
    std::vector<StoreWrite> writes;
  };

  absl::Time Now() const;
  static int64_t ChargeOf(const SessionRecord& record);
  SessionInfo InfoLocked(const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The live entry `access` allows, or NOT_FOUND saying why. Removes it if
  // it has expired.
  absl::StatusOr<Entry*> FindLocked(
      const std::string& id, Deferred& deferred,
      const SessionAccess& access = SessionAccess::All())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Why `id` is not found, told only if `access` allows its last owner.
  absl::Status NotFoundLocked(
      const std::string& id,
      const SessionAccess& access = SessionAccess::All()) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Adds (sign 1) or removes (sign -1) a stored session from its owner's
  // usage.
  void AccountLocked(const SessionMeta& meta, int sign)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED if `owner` cannot add a session of `state_bytes`.
  absl::Status CheckQuotaLocked(const std::string& owner,
                                const TenantSessionQuota& quota,
                                int64_t state_bytes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Tenant listing: scans the store for `access.tenant`'s sessions.
  absl::StatusOr<SessionPage> ListOwnedBy(int page_size,
                                          const std::string& page_token,
                                          const SessionAccess& access)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Brings a cold session of a durable store into RAM (releasing mu_ while
  // it reads). NOT_FOUND if it is not stored (or has expired: then it is
  // deleted); the store's error if it cannot be read.
  absl::Status LoadLocked(const std::string& id, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Deletes a cold session from the store (deferred) and remembers why.
  void DropStoredLocked(const SessionMeta& meta, GoneReason reason,
                        Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same for an id whose metadata is read from the store first.
  void DropStoredIdLocked(const std::string& id, GoneReason reason,
                          Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts idle stored sessions (least recently used first, never `keep`)
  // until a put of `extra` bytes fits --max-disk-bytes. False if it cannot.
  bool MakeDiskRoomLocked(int64_t extra, const std::string& keep,
                          Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // RESOURCE_EXHAUSTED naming the disk bound.
  absl::Status DiskFullError(int64_t extra) const;
  // Queues the last-used times the store has not seen yet.
  void FlushTouchesLocked(Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks the entry used now (lazily written).
  void TouchLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts an idle live entry into the LRU list and the expiry index, or
  // takes it out (busy entries are in neither).
  void IndexLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void UnindexLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops the entry from RAM. Unless the store is durable and the reason is
  // eviction, the store's record is deleted too (deferred).
  void RemoveLocked(const std::string& id, GoneReason reason,
                    Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RememberGoneLocked(const std::string& id, GoneReason reason,
                          const std::string& owner)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts idle sessions (LRU first, never `keep`) until `extra` more bytes
  // fit. Returns false if they cannot.
  bool MakeRoomLocked(int64_t extra, const std::string& keep,
                      Deferred& deferred) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ALREADY_EXISTS / RESOURCE_EXHAUSTED; frees an expired holder of `id`.
  absl::Status CheckCanCreateLocked(const std::string& id, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Counts the stored sessions' usage per tenant (construction, durable
  // stores).
  void LoadUsage() ABSL_LOCKS_EXCLUDED(mu_);
  std::string GenerateIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks that a session can be added, makes room, assigns the id and
  // times of `record` and holds its place (invisible until FinishCreate).
  absl::Status ReserveLocked(const std::string& id, int64_t charge,
                             const TenantSessionQuota& quota,
                             SessionRecord& record, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A fresh record version (see NewVersion in the .cc).
  static uint64_t NewVersion();
  void FinishCreate(const std::string& id, absl::Status stored,
                    Callback<SessionInfo> done) ABSL_LOCKS_EXCLUDED(mu_);

  // ---- Shared stores (store_->shared()); none of these hold mu_ while the
  // store is asked.
  // Asks the store for `id` (one round trip) and brings RAM up to date
  // (SyncShared). NOT_FOUND (the RAM copy dropped) if it has no record.
  absl::Status RefreshShared(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Makes RAM hold the stored version `stored` of `id`: keeps an idle copy
  // of that version (taking the stored last use and TTL), else reads the
  // record. A copy leased here, being created or being loaded is left
  // alone.
  absl::Status SyncShared(const std::string& id, const SessionMeta& stored)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Takes the stored last use and TTL into an idle RAM copy.
  void AdoptTimesLocked(Entry& entry, const SessionMeta& stored)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Puts a record read from the store into RAM, replacing an idle copy.
  void InstallLocked(SessionRecord record, Deferred& deferred)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The store has no record of `id`: its idle RAM copy goes (a lease held
  // here is revoked). Returns the NOT_FOUND to answer.
  absl::Status ForgetLocked(const std::string& id, Deferred& deferred,
                            const SessionAccess& access = SessionAccess::All())
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The checks of CheckCanCreateLocked that ask the store: the id is free
  // ("" skips that), fewer than max_sessions are stored.
  absl::Status CheckCanCreateShared(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<SessionInfo> GetShared(const std::string& id,
                                        const SessionAccess& access)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<SessionLease> LeaseShared(const std::string& id,
                                           const SessionAccess& access)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The lease of `id` as the entry holds it; `token`: its store lease.
  SessionLease GrantLocked(Entry& entry, const std::string& id,
                           RevocationFlag revoked, std::string token)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status BusyError(const std::string& id) const;

  // Called by SessionLease.
  void CommitLease(SessionLease& lease, StatePtr state,
                   SessionLease::Initial initial, StatusCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void FinishCommit(const std::string& id, uint64_t lease_id,
                    const std::string& token, SessionRecord record,
                    absl::Status stored, StatusCallback done)
      ABSL_LOCKS_EXCLUDED(mu_);
  void AbandonLease(const std::string& id, uint64_t lease_id)
      ABSL_LOCKS_EXCLUDED(mu_);

  void SweeperLoop() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const SessionManagerOptions options_;
  SessionStore* const store_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::unique_ptr<Entry>> entries_
      ABSL_GUARDED_BY(mu_);
  // Idle live sessions, most recently used first.
  std::list<std::string> lru_ ABSL_GUARDED_BY(mu_);
  // Idle live sessions by expiry time.
  absl::btree_set<std::pair<absl::Time, std::string>> expiry_
      ABSL_GUARDED_BY(mu_);
  // Sessions whose last-used time the store has not seen yet.
  absl::flat_hash_set<std::string> dirty_ ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_lease_ ABSL_GUARDED_BY(mu_) = 1;
  // Bumped whenever a load of a cold session ends (waiters recheck).
  uint64_t loads_done_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, Gone> gone_ ABSL_GUARDED_BY(mu_);
  // Per owner, over stored sessions and ones being created.
  absl::flat_hash_map<std::string, TenantUsage> usage_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> gone_order_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread sweeper_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_SESSION_MANAGER_H_
