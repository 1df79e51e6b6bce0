#include "engine/prefix_cache.h"

#include <algorithm>
#include <cassert>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace rwkv::engine {

// A radix tree over token ids: each node's `edge` holds the tokens from its
// parent to it (non-empty except at the root), children are keyed by the
// first token of their edge, and `depth` is the length of the whole key.
// Invariant: every node other than the root holds a value or has at least two
// children, so there are at most two nodes per entry and every leaf holds a
// value.
struct PrefixCache::Node {
  std::vector<int32_t> edge;
  Node* parent = nullptr;
  size_t depth = 0;
  absl::flat_hash_map<int32_t, std::unique_ptr<Node>> children;
  ValuePtr value;  // null: no entry ends here.
  int64_t charge = 0;
  std::list<Node*>::iterator lru;  // valid iff value != nullptr.
};

// Immutable once published: several threads may Clone() the state at once
// (const access; State is thread-compatible).
struct PrefixCache::Value {
  State state;
  Logits logits;
};

// One computation in progress: who waits for it (called once it ends).
struct PrefixCache::Flight {
  std::vector<Waiter> waiters;
};

namespace {

// Destroys a tree without recursion (nested prefixes can make it deep).
template <typename NodeT>
void DestroyTree(std::unique_ptr<NodeT> root) {
  std::vector<std::unique_ptr<NodeT>> stack;
  if (root != nullptr) stack.push_back(std::move(root));
  while (!stack.empty()) {
    std::unique_ptr<NodeT> node = std::move(stack.back());
    stack.pop_back();
    for (auto& [token, child] : node->children)
      stack.push_back(std::move(child));
  }
}

}  // namespace

int64_t PrefixCache::EntryBytes(size_t key_len, int64_t state_bytes,
                                size_t logits_values) {
  return state_bytes +
         static_cast<int64_t>(logits_values) * int64_t{sizeof(float)} +
         static_cast<int64_t>(key_len) * int64_t{sizeof(int32_t)} +
         kEntryOverheadBytes;
}

PrefixCache::PrefixCache(PrefixCacheOptions options)
    : options_([&] {
        options.min_prefix_tokens = std::max(options.min_prefix_tokens, 1);
        options.max_bytes = std::max<int64_t>(options.max_bytes, 0);
        return options;
      }()),
      root_(std::make_unique<Node>()) {}

PrefixCache::~PrefixCache() {
  absl::MutexLock lock(&mu_);
  DestroyTree(std::move(root_));
}

absl::StatusOr<int64_t> PrefixCache::CheckInsert(size_t key_len,
                                                 const State& state,
                                                 const Logits& logits) const {
  if (key_len == 0) return absl::InvalidArgumentError("empty prefix");
  if (!state.valid()) return absl::InvalidArgumentError("invalid state");
  if (state.token_count() != static_cast<int64_t>(key_len)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the state has been fed ", state.token_count(),
                     " tokens but the prefix has ", key_len));
  }
  if (key_len < static_cast<size_t>(options_.min_prefix_tokens)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("prefix of ", key_len, " tokens is shorter than ",
                     options_.min_prefix_tokens));
  }
  const int64_t charge =
      EntryBytes(key_len, state.SizeBytes(), logits.values().size());
  if (charge > options_.max_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("entry of ", charge, " bytes exceeds the cache's ",
                     options_.max_bytes));
  }
  return charge;
}

PrefixCache::Node* PrefixCache::FindLongestLocked(
    absl::Span<const int32_t> tokens) const {
  Node* node = root_.get();
  Node* best = nullptr;
  size_t pos = 0;
  while (pos < tokens.size()) {
    auto it = node->children.find(tokens[pos]);
    if (it == node->children.end()) break;
    Node* child = it->second.get();
    const std::vector<int32_t>& edge = child->edge;
    if (edge.size() > tokens.size() - pos ||
        !std::equal(edge.begin(), edge.end(), tokens.begin() + pos)) {
      break;
    }
    pos += edge.size();
    node = child;
    if (node->value != nullptr) best = node;
  }
  return best;
}

void PrefixCache::TouchLocked(Node* node) {
  lru_.splice(lru_.begin(), lru_, node->lru);
}

void PrefixCache::InsertLocked(absl::Span<const int32_t> tokens, ValuePtr value,
                               int64_t charge, std::vector<ValuePtr>& garbage) {
  Node* node = root_.get();
  size_t pos = 0;
  while (pos < tokens.size()) {
    std::unique_ptr<Node>& slot = node->children[tokens[pos]];
    if (slot == nullptr) {  // New leaf holding the rest of the key.
      slot = std::make_unique<Node>();
      slot->edge.assign(tokens.begin() + pos, tokens.end());
      slot->parent = node;
      slot->depth = tokens.size();
      ++stats_.nodes;
      node = slot.get();
      break;
    }
    Node* child = slot.get();
    const size_t limit = std::min(child->edge.size(), tokens.size() - pos);
    size_t common = 1;  // edge[0] == tokens[pos] by the map's key.
    while (common < limit && child->edge[common] == tokens[pos + common]) {
      ++common;
    }
    if (common < child->edge.size()) {
      // Split the edge: node -> mid (edge[0, common)) -> child (the rest).
      auto mid = std::make_unique<Node>();
      mid->edge.assign(child->edge.begin(), child->edge.begin() + common);
      mid->parent = node;
      mid->depth = node->depth + common;
      ++stats_.nodes;
      child->edge.erase(child->edge.begin(), child->edge.begin() + common);
      child->parent = mid.get();
      const int32_t child_first = child->edge[0];
      mid->children[child_first] = std::move(slot);
      slot = std::move(mid);
      child = slot.get();
    }
    node = child;
    pos += common;
  }

  if (node->value != nullptr) {  // Already cached: keep the existing entry.
    TouchLocked(node);
    garbage.push_back(std::move(value));
    return;
  }
  node->value = std::move(value);
  node->charge = charge;
  lru_.push_front(node);
  node->lru = lru_.begin();
  stats_.bytes += charge;
  ++stats_.entries;
  ++stats_.inserts;

  // The new entry is at the front and fits alone, so it is never evicted.
  while (stats_.bytes > options_.max_bytes) {
    Node* victim = lru_.back();
    assert(victim != node);
    RemoveLocked(victim, garbage);
    ++stats_.evictions;
  }
}

void PrefixCache::RemoveLocked(Node* node, std::vector<ValuePtr>& garbage) {
  garbage.push_back(std::move(node->value));
  node->value = nullptr;
  lru_.erase(node->lru);
  stats_.bytes -= node->charge;
  node->charge = 0;
  --stats_.entries;

  // Drop nodes that lead nowhere, then merge a remaining pass-through node
  // (no value, one child) into its child to restore the invariant.
  Node* cur = node;
  while (cur != root_.get() && cur->value == nullptr && cur->children.empty()) {
    Node* parent = cur->parent;
    parent->children.erase(cur->edge[0]);  // Destroys cur.
    --stats_.nodes;
    cur = parent;
  }
  if (cur != root_.get() && cur->value == nullptr &&
      cur->children.size() == 1) {
    std::unique_ptr<Node>& slot = cur->parent->children[cur->edge[0]];
    std::unique_ptr<Node> child = std::move(cur->children.begin()->second);
    child->edge.insert(child->edge.begin(), cur->edge.begin(), cur->edge.end());
    child->parent = cur->parent;
    slot = std::move(child);  // Destroys cur.
    --stats_.nodes;
  }
}

std::optional<PrefixHit> PrefixCache::Lookup(absl::Span<const int32_t> tokens) {
  ValuePtr value;
  size_t len = 0;
  {
    absl::MutexLock lock(&mu_);
    Node* node = FindLongestLocked(tokens);
    if (node == nullptr) {
      ++stats_.misses;
      return std::nullopt;
    }
    TouchLocked(node);
    ++stats_.hits;
    stats_.reused_tokens += static_cast<int64_t>(node->depth);
    value = node->value;
    len = node->depth;
  }
  // Copy outside the lock; `value` stays alive even if evicted meanwhile.
  return PrefixHit{len, value->state.Clone(), value->logits};
}

absl::Status PrefixCache::Insert(absl::Span<const int32_t> tokens,
                                 const State& state, const Logits& logits) {
  absl::StatusOr<int64_t> charge = CheckInsert(tokens.size(), state, logits);
  if (!charge.ok()) return charge.status();
  ValuePtr value = std::make_shared<const Value>(Value{state.Clone(), logits});
  std::vector<ValuePtr> garbage;  // Destroyed after the lock is released.
  {
    absl::MutexLock lock(&mu_);
    InsertLocked(tokens, std::move(value), *charge, garbage);
  }
  return absl::OkStatus();
}

PrefixAcquisition PrefixCache::Acquire(absl::Span<const int32_t> prefix,
                                       Waiter on_ready) {
  const size_t n = prefix.size();
  std::vector<int32_t> key(prefix.begin(), prefix.end());
  PrefixAcquisition out;
  ValuePtr hit;
  ValuePtr base;
  size_t base_len = 0;
  {
    absl::MutexLock lock(&mu_);
    Node* node = FindLongestLocked(prefix);
    if (node != nullptr && node->depth == n) {
      TouchLocked(node);
      ++stats_.hits;
      stats_.reused_tokens += static_cast<int64_t>(n);
      hit = node->value;
    } else if (auto it = in_flight_.find(key); it != in_flight_.end()) {
      ++stats_.coalesced;
      it->second->waiters.push_back(std::move(on_ready));
      out.kind = PrefixAcquisition::Kind::kJoined;
      return out;
    } else {
      ++stats_.misses;
      in_flight_.emplace(key, std::make_unique<Flight>());
      if (node != nullptr) {
        TouchLocked(node);
        stats_.reused_tokens += static_cast<int64_t>(node->depth);
        base = node->value;
        base_len = node->depth;
      }
    }
  }
  // Copies outside the lock; the values stay alive even if evicted meanwhile.
  if (hit != nullptr) {
    out.kind = PrefixAcquisition::Kind::kHit;
    out.hit = PrefixHit{n, hit->state.Clone(), hit->logits};
    return out;
  }
  out.kind = PrefixAcquisition::Kind::kLead;
  if (base != nullptr) {
    out.base = PrefixHit{base_len, base->state.Clone(), base->logits};
  }
  out.ticket = PrefixFlightTicket(this, std::move(key));
  return out;
}

absl::StatusOr<PrefixHit> PrefixCache::FinishFlight(
    const std::vector<int32_t>& key, absl::StatusOr<ValuePtr> value) {
  std::unique_ptr<Flight> flight;
  std::vector<ValuePtr> garbage;  // Destroyed after the lock is released.
  {
    absl::MutexLock lock(&mu_);
    auto it = in_flight_.find(key);
    assert(it != in_flight_.end());
    flight = std::move(it->second);
    in_flight_.erase(it);
    if (value.ok()) {
      // Not storable (too large or too short) is no error: still shared.
      absl::StatusOr<int64_t> charge =
          CheckInsert(key.size(), (*value)->state, (*value)->logits);
      if (charge.ok()) InsertLocked(key, *value, *charge, garbage);
    }
  }
  auto result = [&]() -> absl::StatusOr<PrefixHit> {
    if (!value.ok()) return value.status();
    return PrefixHit{key.size(), (*value)->state.Clone(), (*value)->logits};
  };
  for (Waiter& waiter : flight->waiters) waiter(result());
  return result();
}

absl::StatusOr<PrefixHit> PrefixCache::GetOrCompute(
    absl::Span<const int32_t> prefix, ComputeFn compute) {
  if (prefix.empty()) return absl::InvalidArgumentError("empty prefix");
  struct Joined {
    absl::Notification done;
    absl::StatusOr<PrefixHit> result = absl::UnknownError("not finished");
  };
  auto joined = std::make_shared<Joined>();
  PrefixAcquisition got =
      Acquire(prefix, [joined](absl::StatusOr<PrefixHit> result) {
        joined->result = std::move(result);
        joined->done.Notify();
      });
  switch (got.kind) {
    case PrefixAcquisition::Kind::kHit:
      return std::move(got.hit);
    case PrefixAcquisition::Kind::kJoined:
      joined->done.WaitForNotification();
      return std::move(joined->result);
    case PrefixAcquisition::Kind::kLead:
      break;
  }
  // If compute() throws, the ticket's destructor releases the waiters.
  return got.ticket.Finish(compute(std::move(got.base)));
}

PrefixFlightTicket::PrefixFlightTicket(PrefixFlightTicket&& other) noexcept
    : cache_(std::exchange(other.cache_, nullptr)),
      key_(std::move(other.key_)) {}

PrefixFlightTicket& PrefixFlightTicket::operator=(
    PrefixFlightTicket&& other) noexcept {
  if (this != &other) {
    if (active()) {
      (void)Finish(
          absl::AbortedError("the computation of this prefix was abandoned"));
    }
    cache_ = std::exchange(other.cache_, nullptr);
    key_ = std::move(other.key_);
  }
  return *this;
}

PrefixFlightTicket::~PrefixFlightTicket() {
  if (active()) {
    (void)Finish(
        absl::AbortedError("the computation of this prefix was abandoned"));
  }
}

absl::StatusOr<PrefixHit> PrefixFlightTicket::Finish(
    absl::StatusOr<std::pair<State, Logits>> result) {
  PrefixCache* cache = std::exchange(cache_, nullptr);
  assert(cache != nullptr);
  const size_t n = key_.size();
  absl::StatusOr<PrefixCache::ValuePtr> value =
      absl::UnknownError("not computed");
  if (!result.ok()) {
    value = result.status();
  } else {
    State& state = result->first;
    if (!state.valid() || state.token_count() != static_cast<int64_t>(n)) {
      value = absl::InternalError(absl::StrCat(
          "prefix computation returned a state fed ",
          state.valid() ? state.token_count() : -1, " tokens, expected ", n));
    } else {
      value = std::make_shared<const PrefixCache::Value>(
          PrefixCache::Value{std::move(state), std::move(result->second)});
    }
  }
  return cache->FinishFlight(key_, std::move(value));
}

PrefixCacheStats PrefixCache::stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void PrefixCache::Clear() {
  std::unique_ptr<Node> old_root = std::make_unique<Node>();
  {
    absl::MutexLock lock(&mu_);
    std::swap(old_root, root_);
    lru_.clear();
    stats_.entries = 0;
    stats_.bytes = 0;
    stats_.nodes = 0;
  }
  DestroyTree(std::move(old_root));  // Frees the states outside the lock.
}

}  // namespace rwkv::engine
