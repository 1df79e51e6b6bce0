#include "client/turn_canceller.h"

namespace rwkv::client {

void TurnCanceller::Cancel() {
  absl::MutexLock lock(&mu_);
  cancelled_ = true;
  if (context_ != nullptr) context_->TryCancel();
}

void TurnCanceller::Reset() {
  absl::MutexLock lock(&mu_);
  cancelled_ = false;
}

bool TurnCanceller::cancelled() const {
  absl::MutexLock lock(&mu_);
  return cancelled_;
}

void TurnCanceller::Attach(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (cancelled_) context_->TryCancel();
}

void TurnCanceller::Detach() {
  absl::MutexLock lock(&mu_);
  context_ = nullptr;
}

}  // namespace rwkv::client
