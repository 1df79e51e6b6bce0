// Caller: who is making a request, as the front (gRPC, HTTP) authenticated
// it: the tenant, whether it is an admin, and the tenant's limits. The
// application layer scopes every session operation to the caller (see
// SessionAccess) and charges its quotas to the tenant.
#ifndef RWKV_SERVER_APP_CALLER_H_
#define RWKV_SERVER_APP_CALLER_H_

#include <cstdint>
#include <string>
#include <utility>

#include "server/session/session_access.h"

namespace rwkv::server {

// One tenant's limits; 0 = none. Server-wide defaults come from the
// --tenant-* flags; the API keys file may override them per tenant.
struct TenantLimits {
  int64_t max_sessions = 0;
  int64_t max_state_bytes = 0;
  int64_t max_concurrent_turns = 0;
  // Prompt plus generated tokens per minute (a token bucket holding one
  // minute's worth).
  int64_t tokens_per_minute = 0;
};

struct Caller {
  // "" is the anonymous tenant of a server without API keys.
  std::string tenant;
  // Admins see and may change every tenant's sessions.
  bool admin = false;
  TenantLimits limits;

  // A server without API keys: everyone is the anonymous tenant and sees
  // every session (as before tenants existed).
  static Caller Anonymous(TenantLimits limits = {}) {
    return Caller{"", true, limits};
  }
  static Caller Tenant(std::string tenant, bool admin = false,
                       TenantLimits limits = {}) {
    return Caller{std::move(tenant), admin, limits};
  }

  SessionAccess access() const {
    return admin ? SessionAccess::All() : SessionAccess::Tenant(tenant);
  }
  TenantSessionQuota session_quota() const {
    return TenantSessionQuota{limits.max_sessions, limits.max_state_bytes};
  }
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_CALLER_H_
