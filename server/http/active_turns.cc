#include "server/http/active_turns.h"

#include <utility>
#include <vector>

namespace rwkv::server {

ActiveTurns::Registration& ActiveTurns::Registration::operator=(
    Registration&& other) noexcept {
  if (this != &other) {
    if (turns_ != nullptr) turns_->Remove(id_);
    turns_ = std::exchange(other.turns_, nullptr);
    id_ = other.id_;
  }
  return *this;
}

ActiveTurns::Registration::~Registration() {
  if (turns_ != nullptr) turns_->Remove(id_);
}

ActiveTurns::Registration ActiveTurns::Add(
    std::shared_ptr<TurnChannel> channel) {
  absl::MutexLock lock(&mu_);
  const uint64_t id = next_id_++;
  turns_.emplace(id, std::move(channel));
  return Registration(this, id);
}

void ActiveTurns::Remove(uint64_t id) {
  std::shared_ptr<TurnChannel> gone;  // released after the lock
  absl::MutexLock lock(&mu_);
  auto it = turns_.find(id);
  if (it == turns_.end()) return;
  gone = std::move(it->second);
  turns_.erase(it);
}

bool ActiveTurns::WaitIdle(absl::Time deadline) {
  absl::MutexLock lock(&mu_);
  auto idle = [this]()
                  ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return turns_.empty(); };
  return mu_.AwaitWithDeadline(absl::Condition(&idle), deadline);
}

void ActiveTurns::CancelAll(const absl::Status& reason) {
  std::vector<std::shared_ptr<TurnChannel>> all;
  {
    absl::MutexLock lock(&mu_);
    for (auto& [id, channel] : turns_) all.push_back(channel);
  }
  for (auto& channel : all) channel->Cancel(reason);
}

int64_t ActiveTurns::count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(turns_.size());
}

}  // namespace rwkv::server
