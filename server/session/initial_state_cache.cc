#include "server/session/initial_state_cache.h"

#include <algorithm>
#include <iterator>

#include "server/session/record_codec.h"

namespace rwkv::server {

std::string InitialStateCache::KeyOf(const StatePtr& state,
                                     engine::StateDtype dtype,
                                     std::string* bytes) {
  {
    absl::MutexLock lock(&mu_);
    auto it = key_of_.find(state.get());
    if (it != key_of_.end() && it->second.first.lock() == state) {
      return it->second.second;
    }
  }
  absl::StatusOr<std::string> serialized =
      engine::SerializeState(*state, dtype);
  if (!serialized.ok()) return "";
  *bytes = *std::move(serialized);
  std::string key = InitialKey(*bytes);
  Remember(key, state);
  return key;
}

StatePtr InitialStateCache::Find(const std::string& key) {
  absl::MutexLock lock(&mu_);
  auto it = by_key_.find(key);
  return it == by_key_.end() ? nullptr : it->second.lock();
}

void InitialStateCache::Remember(const std::string& key,
                                 const StatePtr& state) {
  absl::MutexLock lock(&mu_);
  if (key_of_.size() + by_key_.size() >= collect_at_) CollectLocked();
  key_of_[state.get()] = {state, key};
  auto& held = by_key_[key];
  if (held.expired()) held = state;
}

void InitialStateCache::CollectLocked() {
  for (auto it = key_of_.begin(); it != key_of_.end();) {
    auto next = std::next(it);
    if (it->second.first.expired()) key_of_.erase(it);
    it = next;
  }
  for (auto it = by_key_.begin(); it != by_key_.end();) {
    auto next = std::next(it);
    if (it->second.expired()) by_key_.erase(it);
    it = next;
  }
  collect_at_ = std::max<size_t>(8192, 2 * (key_of_.size() + by_key_.size()));
}

}  // namespace rwkv::server
