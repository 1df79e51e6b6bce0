#include "server/app/tenant_throttle.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/app/retry_hint.h"
#include "server/quote.h"

namespace rwkv::server {

TenantThrottle::TenantThrottle(std::function<absl::Time()> clock)
    : clock_(std::move(clock)) {}

absl::Time TenantThrottle::Now() const {
  return clock_ ? clock_() : absl::Now();
}

double TenantThrottle::RefillLocked(TenantState& t,
                                    const TenantLimits& limits) {
  if (limits.tokens_per_minute <= 0) return 0;
  const double capacity = static_cast<double>(limits.tokens_per_minute);
  const absl::Time now = Now();
  if (!t.bucket_started) {
    t.bucket_started = true;
    t.tokens = capacity;  // a new tenant starts with a full minute
  } else if (now > t.refilled) {
    t.tokens =
        std::min(capacity, t.tokens + absl::ToDoubleSeconds(now - t.refilled) *
                                          capacity / 60.0);
  }
  t.refilled = std::max(t.refilled, now);
  return capacity;
}

absl::StatusOr<std::unique_ptr<TenantThrottle::Ticket>>
TenantThrottle::AdmitTurn(const Caller& caller, int64_t prompt_tokens) {
  const TenantLimits& limits = caller.limits;
  absl::MutexLock lock(&mu_);
  TenantState& t = tenants_[caller.tenant];
  if (limits.max_concurrent_turns > 0 &&
      t.running >= limits.max_concurrent_turns) {
    return WithRetryAfter(
        absl::ResourceExhaustedError(absl::StrCat(
            "tenant ", Quote(caller.tenant), " already runs ", t.running,
            " turns, its limit of concurrent turns; retry when one ends")),
        1);
  }
  if (const double capacity = RefillLocked(t, limits); capacity > 0) {
    // A prompt larger than the bucket waits for a full bucket.
    const double need = std::min(
        capacity, static_cast<double>(std::max<int64_t>(prompt_tokens, 1)));
    if (t.tokens < need) {
      const int64_t wait =
          static_cast<int64_t>(std::ceil((need - t.tokens) * 60.0 / capacity));
      return WithRetryAfter(
          absl::ResourceExhaustedError(absl::StrCat(
              "tenant ", Quote(caller.tenant), " has used its ",
              limits.tokens_per_minute, " tokens per minute; retry after ",
              std::max<int64_t>(wait, 1), " s")),
          wait);
    }
    t.tokens -= static_cast<double>(prompt_tokens);
  }
  ++t.running;
  return std::unique_ptr<Ticket>(new Ticket(this, caller.tenant, caller));
}

int64_t TenantThrottle::running(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  return it == tenants_.end() ? 0 : it->second.running;
}

void TenantThrottle::Release(const std::string& tenant) {
  absl::MutexLock lock(&mu_);
  auto it = tenants_.find(tenant);
  if (it == tenants_.end()) return;
  --it->second.running;
  // An idle tenant without a bucket leaves no state behind.
  if (it->second.running <= 0 && !it->second.bucket_started) {
    tenants_.erase(it);
  }
}

void TenantThrottle::Charge(const std::string& tenant,
                            const TenantLimits& limits, int64_t tokens) {
  if (limits.tokens_per_minute <= 0 || tokens <= 0) return;
  absl::MutexLock lock(&mu_);
  TenantState& t = tenants_[tenant];
  RefillLocked(t, limits);
  t.tokens -= static_cast<double>(tokens);
}

TenantThrottle::Ticket::Ticket(TenantThrottle* throttle, std::string tenant,
                               Caller caller)
    : throttle_(throttle), tenant_(std::move(tenant)), limits_(caller.limits) {}

TenantThrottle::Ticket::~Ticket() { throttle_->Release(tenant_); }

void TenantThrottle::Ticket::Charge(int64_t tokens) {
  throttle_->Charge(tenant_, limits_, tokens);
}

}  // namespace rwkv::server
