// PrefixCache: maps token-id prefixes to the (State, Logits) after them, so a
// prompt that starts with a cached prefix only runs its remainder. Thread-safe:
// one cache is shared by all engines (threads) that run the same model.
#ifndef RWKV_ENGINE_PREFIX_CACHE_H_
#define RWKV_ENGINE_PREFIX_CACHE_H_

#include <cstddef>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/types/span.h"
#include "engine/logits.h"
#include "engine/state.h"

namespace rwkv::engine {

struct PrefixCacheOptions {
  // Upper bound on stats().bytes (see PrefixCache::EntryBytes). 0 disables
  // storing; lookups then always miss.
  int64_t max_bytes = int64_t{256} << 20;
  // Prefixes shorter than this are never stored. Values below 1 act as 1
  // (the empty prefix is Engine::NewState()).
  int min_prefix_tokens = 1;
};

// Counters since construction, and gauges (entries, bytes, nodes) of what is
// held now. Clear() zeroes only the gauges.
struct PrefixCacheStats {
  int64_t hits = 0;       // Lookup found a prefix; GetOrCompute found `prefix`.
  int64_t misses = 0;     // Lookup found nothing; GetOrCompute ran compute.
  int64_t coalesced = 0;  // GetOrCompute waited on another caller's compute.
  int64_t reused_tokens = 0;  // Tokens served from the cache (hits + bases).
  int64_t inserts = 0;        // New entries stored.
  int64_t evictions = 0;      // Entries dropped to fit max_bytes.
  int64_t entries = 0;        // Entries now held.
  int64_t bytes = 0;          // Sum of EntryBytes of the entries now held.
  int64_t nodes = 0;          // Trie nodes now held (at most 2 * entries).
};

// A cached prefix of `prefix_len` tokens. `state` is a deep copy the caller
// owns (token_count() == prefix_len); `logits` are those after its last token.
struct PrefixHit {
  size_t prefix_len = 0;
  State state;
  Logits logits;
};

class PrefixCache;

// The computing caller's hold on a prefix in flight (see PrefixCache::Acquire):
// Finish() stores the result (best effort, as Insert) and hands it to every
// waiter; destroying an unfinished ticket finishes it with ABORTED ("the
// computation was abandoned"), so waiters are never left hanging. Move-only.
class PrefixFlightTicket {
 public:
  PrefixFlightTicket() = default;
  PrefixFlightTicket(PrefixFlightTicket&& other) noexcept;
  PrefixFlightTicket& operator=(PrefixFlightTicket&& other) noexcept;
  ~PrefixFlightTicket();

  // True while this ticket still owes a result.
  bool active() const { return cache_ != nullptr; }
  // Publishes the state after the whole prefix and the logits after its last
  // token, or the error. A state with the wrong token_count() becomes an
  // InternalError. Returns what the waiters got. REQUIRES: active().
  absl::StatusOr<PrefixHit> Finish(
      absl::StatusOr<std::pair<State, Logits>> result);

 private:
  friend class PrefixCache;
  PrefixFlightTicket(PrefixCache* cache, std::vector<int32_t> key)
      : cache_(cache), key_(std::move(key)) {}
  PrefixCache* cache_ = nullptr;  // null once finished or moved from
  std::vector<int32_t> key_;
};

// What PrefixCache::Acquire found.
struct PrefixAcquisition {
  enum class Kind {
    kHit,     // `hit` is the entry for exactly the prefix
    kLead,    // compute it (from `base` if set) and finish `ticket`
    kJoined,  // another caller computes it: the waiter will be called
  };
  Kind kind = Kind::kHit;
  PrefixHit hit;                  // kHit
  std::optional<PrefixHit> base;  // kLead: the longest shorter cached prefix
  PrefixFlightTicket ticket;      // kLead
};

class PrefixCache {
 public:
  // Accounting estimate for the trie nodes (at most two per entry: its own
  // and one branch node), the LRU link, the shared value's control block and
  // the State's tensor objects, beyond the bytes counted separately.
  static constexpr int64_t kEntryOverheadBytes = 2048;

  // Bytes charged for one entry: state data + logits values + key tokens +
  // kEntryOverheadBytes. An upper bound on what the entry adds (keys are
  // charged in full although the trie shares common prefixes).
  static int64_t EntryBytes(size_t key_len, int64_t state_bytes,
                            size_t logits_values);

  explicit PrefixCache(PrefixCacheOptions options = {});
  ~PrefixCache();
  PrefixCache(const PrefixCache&) = delete;
  PrefixCache& operator=(const PrefixCache&) = delete;

  const PrefixCacheOptions& options() const { return options_; }

  // The longest cached prefix of `tokens` (possibly all of them), or nullopt.
  // Counts a hit or a miss and marks the entry most recently used. O(tokens).
  std::optional<PrefixHit> Lookup(absl::Span<const int32_t> tokens)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Stores a deep copy of `state` and `logits` as the entry for exactly
  // `tokens`, evicting least recently used entries to fit. If the key is
  // already cached, the existing entry is kept and marked most recently used.
  // Errors: InvalidArgument if `state` is invalid or its token_count() is not
  // tokens.size(), or `tokens` is empty; ResourceExhausted if the entry alone
  // exceeds max_bytes or the key is shorter than min_prefix_tokens (nothing is
  // stored or evicted then). Callers that treat the cache as best effort may
  // ignore ResourceExhausted.
  absl::Status Insert(absl::Span<const int32_t> tokens, const State& state,
                      const Logits& logits) ABSL_LOCKS_EXCLUDED(mu_);

  // The state of a prefix computed from the longest shorter cached prefix:
  // `base` is that prefix (a clone the callee owns), or nullopt if none is
  // cached. The callee returns the state after all of `prefix` (fed from
  // base->state or a fresh state) and the logits after its last token.
  using ComputeFn = absl::FunctionRef<absl::StatusOr<std::pair<State, Logits>>(
      std::optional<PrefixHit> base)>;

  // Single flight. Returns the entry for exactly `prefix` if cached (a hit).
  // Otherwise, if another thread is computing `prefix`, blocks until it is
  // done and returns its result or its error (coalesced). Otherwise runs
  // compute() once on this thread without holding any lock (a miss), stores
  // the result (best effort, as Insert) and hands it to every waiter. Errors
  // are never cached: the next call after a failure computes again. An error
  // of compute() is returned as is; a result whose state has the wrong
  // token_count() is an InternalError. compute() may use this cache but must
  // not call GetOrCompute for the same prefix (it would wait on itself).
  // Errors: InvalidArgument if `prefix` is empty.
  absl::StatusOr<PrefixHit> GetOrCompute(absl::Span<const int32_t> prefix,
                                         ComputeFn compute)
      ABSL_LOCKS_EXCLUDED(mu_);

  // The same single flight without blocking (the server's request threads
  // must not wait; its engine runs on another thread). Returns kHit with the
  // entry for exactly `prefix`, or kLead: the caller computes the prefix (the
  // longest shorter cached prefix is `base`) and finishes the ticket, or
  // kJoined: `on_ready` is called once, on the thread that finishes the
  // flight, with its result (a clone of the state) or its error (ABORTED if
  // the computing caller gave up; a waiter may then Acquire again).
  // `on_ready` is dropped uncalled for kHit and kLead. Counts hits, misses
  // and coalesced calls as GetOrCompute does. REQUIRES: prefix non-empty.
  using Waiter = absl::AnyInvocable<void(absl::StatusOr<PrefixHit>)>;
  PrefixAcquisition Acquire(absl::Span<const int32_t> prefix, Waiter on_ready)
      ABSL_LOCKS_EXCLUDED(mu_);

  PrefixCacheStats stats() const ABSL_LOCKS_EXCLUDED(mu_);

  // Drops every entry (not the counters, nor computations in flight).
  void Clear() ABSL_LOCKS_EXCLUDED(mu_);

 private:
  friend class PrefixFlightTicket;
  struct Node;
  struct Value;
  struct Flight;
  using ValuePtr = std::shared_ptr<const Value>;

  // Ends the flight of `key`: stores `value` (if storable) and calls the
  // waiters outside the lock.
  absl::StatusOr<PrefixHit> FinishFlight(const std::vector<int32_t>& key,
                                         absl::StatusOr<ValuePtr> value)
      ABSL_LOCKS_EXCLUDED(mu_);

  // Deepest node with a value on the path of `tokens`, or nullptr.
  Node* FindLongestLocked(absl::Span<const int32_t> tokens) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Marks `node` (which holds a value) most recently used.
  void TouchLocked(Node* node) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Stores `value` for `tokens` (checked by the caller: fits, long enough)
  // and evicts to fit; evicted values are moved to `garbage` so that they are
  // destroyed after the lock is released.
  void InsertLocked(absl::Span<const int32_t> tokens, ValuePtr value,
                    int64_t charge, std::vector<ValuePtr>& garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes the value of `node` and prunes the trie around it.
  void RemoveLocked(Node* node, std::vector<ValuePtr>& garbage)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Checks a value against Insert's preconditions; returns its charge.
  absl::StatusOr<int64_t> CheckInsert(size_t key_len, const State& state,
                                      const Logits& logits) const;

  const PrefixCacheOptions options_;

  mutable absl::Mutex mu_;
  std::unique_ptr<Node> root_ ABSL_GUARDED_BY(mu_);
  // Nodes holding a value, most recently used first.
  std::list<Node*> lru_ ABSL_GUARDED_BY(mu_);
  // Prefixes being computed and who waits for them.
  absl::flat_hash_map<std::vector<int32_t>, std::unique_ptr<Flight>> in_flight_
      ABSL_GUARDED_BY(mu_);
  PrefixCacheStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PREFIX_CACHE_H_
