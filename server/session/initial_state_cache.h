// InitialStateCache: what a store remembers about shared initial states
// (the fresh state, named states) so that it serializes and hashes each one
// once, not once per session: the content key (record_codec.h InitialKey) of
// each state object, and the parsed state of each key, so records that share
// an initial state also share it in memory after loading. Both are weak:
// an entry lives only while some session (or the server) holds the state.
// Thread-safe.
#ifndef RWKV_SERVER_SESSION_INITIAL_STATE_CACHE_H_
#define RWKV_SERVER_SESSION_INITIAL_STATE_CACHE_H_

#include <memory>
#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "engine/state.h"
#include "engine/state_file.h"
#include "server/session/session_record.h"

namespace rwkv::server {

class InitialStateCache {
 public:
  // The content key of `state` stored as `dtype`; when it is not cached the
  // state is serialized and `*bytes` gets the serialized form. "" if the
  // state cannot be serialized.
  std::string KeyOf(const StatePtr& state, engine::StateDtype dtype,
                    std::string* bytes) ABSL_LOCKS_EXCLUDED(mu_);
  // The state loaded (or stored) under `key`, or null.
  StatePtr Find(const std::string& key) ABSL_LOCKS_EXCLUDED(mu_);
  // Remembers that `state` has content key `key`.
  void Remember(const std::string& key, const StatePtr& state)
      ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Drops entries of states no one holds (when the tables have doubled
  // since the last time: amortized O(1) per insertion).
  void CollectLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::flat_hash_map<
      const engine::State*,
      std::pair<std::weak_ptr<const engine::State>, std::string>>
      key_of_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::weak_ptr<const engine::State>> by_key_
      ABSL_GUARDED_BY(mu_);
  size_t collect_at_ ABSL_GUARDED_BY(mu_) = 8192;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_INITIAL_STATE_CACHE_H_
