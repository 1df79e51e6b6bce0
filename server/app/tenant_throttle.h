// TenantThrottle: the per-tenant limits that are about work, not storage:
// concurrent turns and tokens per minute (a token bucket). A turn is
// admitted with a Ticket that holds its concurrency slot until it is
// destroyed and charges the tokens the turn generates. Refusals are
// RESOURCE_EXHAUSTED with a retry hint (retry_hint.h). Session counts and
// state bytes are bounded by the session layer (TenantSessionQuota).
// Thread-safe.
#ifndef RWKV_SERVER_APP_TENANT_THROTTLE_H_
#define RWKV_SERVER_APP_TENANT_THROTTLE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/app/caller.h"

namespace rwkv::server {

class TenantThrottle {
 public:
  // `clock` defaults to absl::Now (tests inject one).
  explicit TenantThrottle(std::function<absl::Time()> clock = nullptr);

  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    // Charges `tokens` generated tokens to the tenant's bucket.
    void Charge(int64_t tokens);

   private:
    friend class TenantThrottle;
    Ticket(TenantThrottle* throttle, std::string tenant, Caller caller);
    TenantThrottle* const throttle_;
    const std::string tenant_;
    const TenantLimits limits_;
  };

  // Admits a turn of `prompt_tokens` for `caller`'s tenant, or says why not
  // (RESOURCE_EXHAUSTED with a retry hint).
  absl::StatusOr<std::unique_ptr<Ticket>> AdmitTurn(const Caller& caller,
                                                    int64_t prompt_tokens)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Turns running now for `tenant`.
  int64_t running(const std::string& tenant) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  struct TenantState {
    int64_t running = 0;
    double tokens = 0;  // bucket level; may go below 0 (debt)
    absl::Time refilled;
    bool bucket_started = false;
  };
  absl::Time Now() const;
  // Refills the bucket to now; returns its capacity (0: no bucket).
  double RefillLocked(TenantState& t, const TenantLimits& limits)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Release(const std::string& tenant) ABSL_LOCKS_EXCLUDED(mu_);
  void Charge(const std::string& tenant, const TenantLimits& limits,
              int64_t tokens) ABSL_LOCKS_EXCLUDED(mu_);

  const std::function<absl::Time()> clock_;
  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, TenantState> tenants_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_TENANT_THROTTLE_H_
