// SessionRecord: one session as the session layer and its store hold it,
// metadata plus states, and SessionInfo, the copy of its metadata callers
// get. States are immutable once stored (shared pointers to const): reads,
// exports and forks share them without copying; a turn computes on a clone
// and stores a new state.
#ifndef RWKV_SERVER_SESSION_SESSION_RECORD_H_
#define RWKV_SERVER_SESSION_SESSION_RECORD_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/state.h"

namespace rwkv::server {

using StatePtr = std::shared_ptr<const engine::State>;

struct SessionMeta {
  std::string id;
  // The tenant that owns the session ("": none).
  std::string owner;
  // Bumped by every stored change of the state: stores compare it before
  // writing (a stale writer cannot overwrite a newer state).
  uint64_t version = 0;
  int64_t token_count = 0;
  absl::Time created = absl::UnixEpoch();
  absl::Time last_used = absl::UnixEpoch();
  absl::Duration ttl = absl::ZeroDuration();
  // Prompt tokens of the creating prefix served from the prefix cache.
  int64_t prefix_cached_tokens = 0;
  // Application data kept with the session and deleted with it (the HTTP
  // front's Responses API stores the response object here); "" for plain
  // sessions. Set at creation only; charged to the session's RAM use.
  std::string note;
  // Bytes of the state in memory (fp32).
  int64_t state_bytes = 0;

  absl::Time expires() const { return last_used + ttl; }
};

struct SessionRecord {
  SessionMeta meta;
  StatePtr state;
  // The state ResetSession returns to.
  StatePtr initial;
  // True if `initial` is shared by many sessions (the fresh state, a named
  // server state): it is then not charged to this session.
  bool initial_shared = false;
};

// What callers see of a session.
struct SessionInfo {
  std::string id;
  std::string owner;
  int64_t token_count = 0;
  absl::Time created;
  absl::Time last_used;
  absl::Duration ttl;
  int64_t state_bytes = 0;
  // A turn (or another read-modify-write) holds the session.
  bool busy = false;
  int64_t prefix_cached_tokens = 0;
  std::string note;

  absl::Time expires() const { return last_used + ttl; }
};

// The metadata part of a session's info (busy is the session layer's to
// add).
inline SessionInfo InfoFromMeta(const SessionMeta& meta) {
  SessionInfo info;
  info.id = meta.id;
  info.owner = meta.owner;
  info.token_count = meta.token_count;
  info.created = meta.created;
  info.last_used = meta.last_used;
  info.ttl = meta.ttl;
  info.prefix_cached_tokens = meta.prefix_cached_tokens;
  info.note = meta.note;
  info.state_bytes = meta.state_bytes;
  return info;
}

struct SessionPage {
  std::vector<SessionInfo> sessions;  // ordered by id
  std::string next_page_token;        // "" on the last page
  // Sessions a Get would find now (expired ones are not counted).
  int64_t total = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_SESSION_RECORD_H_
