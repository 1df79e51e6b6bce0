// StateManager: the server's sessions. Maps a session id to its recurrent
// state, its initial state (for ResetSession) and metadata (created, last
// used, TTL). Thread-safe: every method may be called from any thread.
//
// Lifetime rules:
//  * A session expires `ttl` after its last use (default 3600 s, per-session
//    override). A background sweeper thread frees expired sessions every
//    `sweep_interval`; lookups also treat an expired session as gone. Busy
//    sessions (a turn is running) never expire.
//  * The memory bound (`max_state_bytes`, 0 = none) counts each session's
//    charge: its state bytes plus its initial state's bytes unless that one
//    is shared between sessions (a fresh or a named server state). When a
//    new or grown session would exceed it, idle sessions are evicted least
//    recently used first; if nothing idle is left, creation fails with
//    RESOURCE_EXHAUSTED.
//  * Unknown, expired, evicted and deleted ids all give NOT_FOUND; the
//    message says which (the last `remembered_ids` gone ids are remembered).
//
// Turns (Generate/Chat) use a lease: BeginTurn() marks the session busy and
// hands out a deep copy of its state; the session keeps its pre-turn state
// meanwhile (reads like Fork/Export see that). CommitTurn() stores the state
// after the turn; AbandonTurn() (cancel, error) keeps the pre-turn state:
// a cancelled turn is rolled back. A second BeginTurn() on a busy session is
// FAILED_PRECONDITION. Deleting a busy session is allowed; its turn's commit
// is then dropped (the lease id no longer matches).
#ifndef RWKV_SERVER_STATE_MANAGER_H_
#define RWKV_SERVER_STATE_MANAGER_H_

#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/state.h"

namespace rwkv::server {

struct StateManagerOptions {
  // TTL of sessions created with ttl <= 0.
  absl::Duration default_ttl = absl::Hours(1);
  // Largest TTL a caller may ask for.
  absl::Duration max_ttl = absl::Hours(24 * 30);
  // Memory bound over all sessions' charges; 0 = unbounded.
  int64_t max_state_bytes = 0;
  // Most sessions alive at once; 0 = unbounded.
  int max_sessions = 10000;
  // How often the sweeper frees expired sessions. <= 0: no sweeper thread
  // (tests call Sweep() themselves).
  absl::Duration sweep_interval = absl::Seconds(1);
  // How many gone ids are remembered for NOT_FOUND messages.
  int remembered_ids = 4096;
  // The clock; defaults to absl::Now. Tests inject a fake one.
  std::function<absl::Time()> clock;
};

// A copy of one session's metadata.
struct SessionSnapshot {
  std::string id;
  int64_t token_count = 0;
  absl::Time created;
  absl::Time last_used;
  absl::Duration ttl;
  int64_t state_bytes = 0;
  bool busy = false;
  int64_t prefix_cached_tokens = 0;
  absl::Time expires() const { return last_used + ttl; }
};

struct SessionPage {
  std::vector<SessionSnapshot> sessions;  // ordered by id
  std::string next_page_token;            // "" on the last page
  int64_t total = 0;
};

// What a new session starts from.
struct NewSession {
  // Empty: the manager generates an id.
  std::string id;
  engine::State state;
  // The state ResetSession returns to. Null: a copy of `state` is kept.
  std::shared_ptr<const engine::State> initial;
  // True if `initial` is shared with other sessions (not charged here).
  bool initial_shared = false;
  // <= 0: the default TTL.
  absl::Duration ttl = absl::ZeroDuration();
  int64_t prefix_cached_tokens = 0;
};

// A running turn's hold on a session (see BeginTurn).
struct TurnLease {
  std::string session_id;
  uint64_t lease_id = 0;
  engine::State state;  // the turn's working copy
};

class StateManager {
 public:
  explicit StateManager(StateManagerOptions options);
  // Stops the sweeper.
  ~StateManager();
  StateManager(const StateManager&) = delete;
  StateManager& operator=(const StateManager&) = delete;

  // Checks an id's syntax: 1-128 characters of [A-Za-z0-9._:-].
  static absl::Status ValidateId(const std::string& id);

  // Errors: INVALID_ARGUMENT (bad id or TTL), ALREADY_EXISTS,
  // RESOURCE_EXHAUSTED (max sessions, memory bound with nothing idle).
  absl::StatusOr<SessionSnapshot> Create(NewSession session)
      ABSL_LOCKS_EXCLUDED(mu_);
  // The TTL a request gets: `requested` <= 0 means the default; more than
  // max_ttl is INVALID_ARGUMENT. Lets callers reject a bad TTL before work.
  absl::Status ResolveTtl(absl::Duration requested, absl::Duration* ttl) const;
  // Cheap early check before expensive work: the id is free and a session
  // could be added now. Create() checks again.
  absl::Status CheckCanCreate(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);

  // Metadata; does not count as use.
  absl::StatusOr<SessionSnapshot> Get(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // page_size <= 0: 100; at most 1000. page_token: the last id of the
  // previous page.
  SessionPage List(int page_size, const std::string& page_token)
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::Status Delete(const std::string& id) ABSL_LOCKS_EXCLUDED(mu_);
  // Back to the initial state. FAILED_PRECONDITION while busy.
  absl::StatusOr<SessionSnapshot> Reset(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Marks the session used now; ttl > 0 sets a new TTL.
  absl::StatusOr<SessionSnapshot> Touch(const std::string& id,
                                        absl::Duration ttl)
      ABSL_LOCKS_EXCLUDED(mu_);

  // A deep copy of the session's state (the pre-turn state while busy).
  // Counts as use.
  absl::StatusOr<engine::State> CopyState(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Replaces the state (and, if `also_initial`, the initial state).
  // FAILED_PRECONDITION while busy.
  enum class ReplaceInitial { kNo, kYes };
  absl::StatusOr<SessionSnapshot> ReplaceState(const std::string& id,
                                               engine::State state,
                                               ReplaceInitial replace_initial)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Starts a turn (see the file comment). NOT_FOUND / FAILED_PRECONDITION.
  absl::StatusOr<TurnLease> BeginTurn(const std::string& id)
      ABSL_LOCKS_EXCLUDED(mu_);
  // Stores the turn's final state, clears busy, counts as use. Returns
  // NOT_FOUND (and drops the state) if the session was deleted meanwhile.
  absl::Status CommitTurn(TurnLease lease) ABSL_LOCKS_EXCLUDED(mu_);
  // Ends a turn keeping the pre-turn state.
  void AbandonTurn(const TurnLease& lease) ABSL_LOCKS_EXCLUDED(mu_);

  // Frees every expired idle session now; returns how many.
  int Sweep() ABSL_LOCKS_EXCLUDED(mu_);

  int64_t session_count() const ABSL_LOCKS_EXCLUDED(mu_);
  int64_t total_bytes() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct Entry {
    engine::State state;
    std::shared_ptr<const engine::State> initial;
    bool initial_shared = false;
    absl::Time created;
    absl::Time last_used;
    absl::Duration ttl;
    int64_t charge = 0;
    int64_t prefix_cached_tokens = 0;
    bool busy = false;
    uint64_t lease_id = 0;
    uint64_t lru_stamp = 0;  // larger = used more recently
  };
  enum class GoneReason { kExpired, kEvicted, kDeleted };

  absl::Time Now() const;
  static int64_t ChargeOf(const Entry& entry);
  // The live entry, or NOT_FOUND saying why. Frees it if it has expired.
  absl::StatusOr<Entry*> FindLocked(const std::string& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status NotFoundLocked(const std::string& id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void TouchLocked(Entry& entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RemoveLocked(const std::string& id, GoneReason reason,
                    std::vector<engine::State>& garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts idle sessions (LRU first, never `keep`) until `extra` more bytes
  // fit. Returns false if they cannot.
  bool MakeRoomLocked(int64_t extra, const std::string& keep,
                      std::vector<engine::State>& garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CheckCanCreateLocked(const std::string& id) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  std::string GenerateIdLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  SessionSnapshot SnapshotLocked(const std::string& id,
                                 const Entry& entry) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void SweeperLoop() ABSL_LOCKS_EXCLUDED(mu_);

  // Constant after construction.
  const StateManagerOptions options_;

  mutable absl::Mutex mu_;
  // Ordered by id (ListSessions pages by id).
  absl::btree_map<std::string, Entry> sessions_ ABSL_GUARDED_BY(mu_);
  int64_t total_bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_stamp_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_lease_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t id_counter_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<std::string, GoneReason> gone_ ABSL_GUARDED_BY(mu_);
  std::deque<std::string> gone_order_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  std::thread sweeper_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_STATE_MANAGER_H_
