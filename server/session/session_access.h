// SessionAccess: whose sessions a call may see and change, and the bounds on
// what one tenant may hold. The session layer applies it under its own lock:
// a session another tenant owns is indistinguishable from an id that never
// existed (the same NOT_FOUND message), so ids do not leak across tenants.
#ifndef RWKV_SERVER_SESSION_SESSION_ACCESS_H_
#define RWKV_SERVER_SESSION_SESSION_ACCESS_H_

#include <cstdint>
#include <string>
#include <utility>

namespace rwkv::server {

struct SessionAccess {
  // The tenant whose sessions are visible (and who owns new ones).
  std::string tenant;
  // True: every session is visible (admins; servers without API keys).
  bool all = true;

  static SessionAccess All() { return SessionAccess{}; }
  static SessionAccess Tenant(std::string tenant) {
    return SessionAccess{std::move(tenant), false};
  }
  bool Allows(const std::string& owner) const { return all || owner == tenant; }
};

// Bounds on one tenant's sessions, checked when a session is created; 0 = no
// bound (the server-wide bounds still apply).
struct TenantSessionQuota {
  int64_t max_sessions = 0;
  // Over the tenant's sessions' states as held in memory (fp32 bytes).
  int64_t max_state_bytes = 0;
};

// What one tenant holds now (stored sessions and ones being created).
struct TenantUsage {
  int64_t sessions = 0;
  int64_t state_bytes = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_SESSION_ACCESS_H_
