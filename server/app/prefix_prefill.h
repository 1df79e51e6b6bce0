// PrefixPrefill: the state after a CreateSession prefix, computed on the
// scheduler (in chunks, like any prompt, so a long prefix never freezes the
// running streams). Prefixes fed into the fresh state go through the shared
// prefix cache with single flight (PrefixCache::Acquire): a cached prefix
// costs nothing, the longest cached part of it is reused, and identical
// prefixes requested at the same time are computed once. Thread-safe; never
// blocks.
#ifndef RWKV_SERVER_APP_PREFIX_PREFILL_H_
#define RWKV_SERVER_APP_PREFIX_PREFILL_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "engine/model.h"
#include "engine/prefix_cache.h"
#include "server/sched/scheduler.h"
#include "server/session/session_record.h"

namespace rwkv::server {

class PrefixPrefill {
 public:
  struct Result {
    engine::State state;
    // Tokens of the prefix served from the cache (not computed).
    int64_t cached_tokens = 0;
  };
  using Done = absl::AnyInvocable<void(absl::StatusOr<Result>)>;

  // All must outlive this; `cache` may be null (no caching).
  PrefixPrefill(const engine::Model* model, Scheduler* scheduler,
                engine::PrefixCache* cache)
      : model_(model), scheduler_(scheduler), cache_(cache) {}

  // Feeds `tokens` (non-empty) into `base` (null: the fresh state, through
  // the cache) and calls `done` once, on any thread, with the state after
  // them or the error. `check` (optional) says when the caller has gone.
  // The scheduler shares its time fairly between tenants: the job counts
  // as `tenant`'s.
  void Run(StatePtr base, std::vector<int32_t> tokens,
           std::function<absl::Status()> check, Done done,
           const std::string& tenant = "") const;

 private:
  using SharedDone = std::shared_ptr<Done>;
  // The cached path for a fresh start; retried if the computing caller of a
  // joined flight gives up.
  void RunCached(std::shared_ptr<const std::vector<int32_t>> tokens,
                 std::function<absl::Status()> check, SharedDone done,
                 const std::string& tenant) const;
  // Queues the prefill job; reports a refusal to `on_result`.
  void Submit(engine::State start, std::vector<int32_t> tokens,
              std::function<absl::Status()> check,
              absl::AnyInvocable<void(absl::StatusOr<PrefillResult>)> on_result,
              const std::string& tenant) const;

  const engine::Model* const model_;
  Scheduler* const scheduler_;
  engine::PrefixCache* const cache_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_PREFIX_PREFILL_H_
