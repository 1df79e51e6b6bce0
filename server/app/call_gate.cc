#include "server/app/call_gate.h"

namespace rwkv::server {

absl::Status CallGate::Enter() {
  absl::MutexLock lock(&mu_);
  if (draining_) return ShuttingDown();
  ++in_flight_;
  return absl::OkStatus();
}

void CallGate::Leave() {
  absl::MutexLock lock(&mu_);
  --in_flight_;
}

void CallGate::StartDraining() {
  absl::MutexLock lock(&mu_);
  draining_ = true;
}

bool CallGate::draining() const {
  absl::MutexLock lock(&mu_);
  return draining_;
}

bool CallGate::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return in_flight_ == 0;
  };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

int64_t CallGate::in_flight() const {
  absl::MutexLock lock(&mu_);
  return in_flight_;
}

}  // namespace rwkv::server
