// SessionLease: a hold on one session for a read-modify-write of its state
// (a Generate/Chat turn, Decay, Reset, Import with replace). While it is
// held the session is busy: a second lease is FAILED_PRECONDITION and the
// session never expires. Commit() stores the new state; destroying the lease
// without committing abandons it: the session keeps its state (a cancelled
// turn is rolled back). If the session is deleted meanwhile (or, with a
// shared store, the store-level lease is lost), Check() says ABORTED and a
// commit is dropped. Move-only; not thread-safe (one owner),
// except Check(), which any thread may call.
#ifndef RWKV_SERVER_SESSION_SESSION_LEASE_H_
#define RWKV_SERVER_SESSION_SESSION_LEASE_H_

#include <cstdint>
#include <memory>
#include <string>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "server/session/session_record.h"

namespace rwkv::server {

class SessionManager;

class SessionLease {
 public:
  using StatusCallback = absl::AnyInvocable<void(absl::Status)>;
  enum class Initial { kKeep, kReplace };

  SessionLease() = default;
  SessionLease(SessionLease&& other) noexcept;
  SessionLease& operator=(SessionLease&& other) noexcept;
  // Abandons the lease if still held.
  ~SessionLease();

  bool held() const { return manager_ != nullptr; }
  const std::string& session_id() const { return id_; }
  // The session's state and initial state when the lease was taken
  // (immutable; clone the state to compute on it).
  const StatePtr& state() const { return state_; }
  const StatePtr& initial() const { return initial_; }

  // OK while the lease can commit; ABORTED once the session has been
  // deleted or the lease lost.
  absl::Status Check() const;

  // Stores `state` as the session's state (and as its initial state with
  // kReplace) and releases the lease; `done` gets OK once the state is
  // stored (durably, if the store is durable), or the error (the session
  // then keeps its old state). `done` may run on another thread.
  // REQUIRES: held().
  void Commit(StatePtr state, Initial initial, StatusCallback done);

  // Releases the lease, keeping the session's state. No-op if not held.
  void Abandon();

 private:
  friend class SessionManager;
  SessionLease(SessionManager* manager, std::string id, uint64_t lease_id,
               StatePtr state, StatePtr initial, RevocationFlag revoked);

  SessionManager* manager_ = nullptr;  // null once released or moved from
  std::string id_;
  uint64_t lease_id_ = 0;
  StatePtr state_;
  StatePtr initial_;
  // Set when the session is deleted or the lease lost (see Revocation).
  RevocationFlag revoked_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_SESSION_LEASE_H_
