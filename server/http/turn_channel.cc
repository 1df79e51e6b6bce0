#include "server/http/turn_channel.h"

#include <utility>

namespace rwkv::server {

void TurnChannel::OnChunk(TurnChunk chunk) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  events_.push_back(Event{std::move(chunk), std::nullopt});
}

void TurnChannel::OnFinish(const absl::Status& status) {
  absl::MutexLock lock(&mu_);
  if (finished_) return;
  finished_ = true;
  events_.push_back(Event{std::nullopt, status});
}

std::optional<TurnChannel::Event> TurnChannel::Next(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return !events_.empty();
  };
  if (!mu_.AwaitWithTimeout(absl::Condition(&ready), timeout)) {
    return std::nullopt;
  }
  Event e = std::move(events_.front());
  events_.pop_front();
  return e;
}

void TurnChannel::Cancel(const absl::Status& reason) {
  absl::MutexLock lock(&mu_);
  if (cancel_reason_.ok()) cancel_reason_ = reason;
  cancelled_.store(true);
}

absl::Status TurnChannel::cancel_reason() const {
  absl::MutexLock lock(&mu_);
  return cancel_reason_;
}

bool TurnChannel::finished() const {
  absl::MutexLock lock(&mu_);
  return finished_;
}

}  // namespace rwkv::server
