// ParseBudget: the memory a parser of untrusted bytes may build (names,
// strings, containers, index tables, copies of tensor data), in bytes, set in
// proportion to the size of its input, so that no input makes a parser hold
// memory out of proportion to its size. Parsers charge what they are about
// to allocate before allocating it (conservatively: allocator overhead and
// container growth included) and fail with InvalidArgument once the budget
// is spent; the memory of the input itself is not charged.
//
// Every parser of this project's untrusted inputs takes one: the zip, pickle
// and .pth readers, the safetensors reader (one budget across all of a
// checkpoint's parsing), state files, tokenizer.json and the World
// vocabulary. The default is ForInput(): 4 x the input's size + 4 MiB.
//
// GuardAllocation() is the parsers' other half: it turns std::bad_alloc and
// std::length_error thrown while parsing into ResourceExhausted /
// InvalidArgument, so that no allocation failure escapes a parser (what was
// built is freed by the unwinding).
//
// Not thread-safe: one budget per parse.
#ifndef RWKV_ENGINE_PARSE_BUDGET_H_
#define RWKV_ENGINE_PARSE_BUDGET_H_

#include <cstddef>
#include <cstdint>
#include <new>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace rwkv::engine {

class ParseBudget {
 public:
  // The default budget of a parse: kFactor x input bytes + kSlackBytes.
  static constexpr uint64_t kFactor = 4;
  static constexpr uint64_t kSlackBytes = uint64_t{4} << 20;

  // Conservative per-allocation overhead parsers add to what they charge
  // (glibc malloc: 8-byte header, 16-byte granularity).
  static constexpr uint64_t kAllocOverhead = 16;

  // factor x input_bytes + slack_bytes (saturating).
  static ParseBudget ForInput(uint64_t input_bytes, uint64_t factor = kFactor,
                              uint64_t slack_bytes = kSlackBytes);

  // A budget of exactly `limit_bytes`; `input_bytes` only feeds messages.
  ParseBudget(uint64_t limit_bytes, uint64_t input_bytes);

  // Records `bytes` more as held. False (and nothing recorded) if that would
  // pass the limit; the parser then fails with Exceeded().
  [[nodiscard]] bool TryCharge(uint64_t bytes) {
    if (bytes > limit_ - used_) return false;
    used_ += bytes;
    if (used_ > peak_) peak_ = used_;
    return true;
  }
  // Gives back bytes charged earlier whose memory was freed.
  void Refund(uint64_t bytes) { used_ -= bytes < used_ ? bytes : used_; }

  // Makes room for `extra` more elements in *v (doubling its capacity),
  // charging the new buffer while the old one still counts and refunding
  // the old one after. False (nothing changed) if the budget cannot hold it.
  template <typename T>
  [[nodiscard]] bool Reserve(std::vector<T>* v, size_t extra) {
    const size_t need = v->size() + extra;
    const size_t old_cap = v->capacity();
    if (need <= old_cap) return true;
    const size_t cap = need > 2 * old_cap ? need : 2 * old_cap;
    if (cap > (uint64_t{1} << 60) / sizeof(T) ||
        !TryCharge(VectorBytes<T>(cap))) {
      return false;
    }
    v->reserve(cap);
    if (old_cap > 0) Refund(VectorBytes<T>(old_cap));
    return true;
  }
  // Makes room for `extra` more entries in the absl::flat_hash_map/set *m,
  // so that inserting them cannot rehash: charges the grown table (at least
  // double the entries) while the old one still counts, refunds the old one
  // after. False (nothing changed) if the budget cannot hold it.
  //
  // Exception safety: absl's tables (20220623) are corrupted when their own
  // rehash fails to allocate (the new capacity is recorded before the
  // allocation), so the grown table is built apart, by its constructor, and
  // the entries are moved over as node handles (no allocation); if the
  // allocation throws, *m is untouched. Parsers therefore reserve before
  // every insertion and insert entries whose construction cannot throw.
  template <typename Map>
  [[nodiscard]] bool ReserveTable(Map* m, size_t extra) {
    constexpr uint64_t slot = sizeof(typename Map::value_type);
    const size_t need = m->size() + extra;
    const size_t old_cap = m->capacity();
    if (need <= old_cap - old_cap / 8) return true;
    const size_t old_growth = old_cap - old_cap / 8;
    const size_t target = need > 2 * old_growth ? need : 2 * old_growth;
    if (target > (uint64_t{1} << 56) / slot) return false;
    const uint64_t capacity = TableCapacityFor(target);
    if (!TryCharge(TableBytes(capacity, slot))) return false;
    Map grown(capacity);
    for (auto it = m->begin(); it != m->end();) {
      grown.insert(m->extract(it++));
    }
    *m = std::move(grown);
    if (old_cap > 0) Refund(TableBytes(old_cap, slot));
    return true;
  }
  // An absl Swiss table of `capacity` slots: a control byte per slot plus
  // a group's worth of cloned control bytes, and the slots.
  static constexpr uint64_t TableBytes(uint64_t capacity, uint64_t slot) {
    return capacity * (slot + 1) + 16 + kAllocOverhead;
  }
  // The capacity absl gives reserve(n): the smallest 2^k - 1 whose 7/8
  // holds n.
  static constexpr uint64_t TableCapacityFor(uint64_t n) {
    const uint64_t want = n + (n > 0 ? (n - 1) / 7 : 0);
    uint64_t cap = 1;
    while (cap < want) cap = cap * 2 + 1;
    return cap;
  }

  // Charge for a vector buffer of n elements.
  template <typename T>
  static constexpr uint64_t VectorBytes(uint64_t n) {
    return n * sizeof(T) + kAllocOverhead;
  }

  // Charge for a heap string of `length` bytes (0 when it fits the small
  // string buffer of std::string, i.e. lives inside its owner).
  static constexpr uint64_t StringBytes(uint64_t length) {
    return length < 16 ? 0 : length + 1 + kAllocOverhead;
  }

  // InvalidArgument: "<what> needs more memory than is allowed for an
  // input of N bytes (L bytes: 4 x its size + 4 MiB); refused ...".
  absl::Status Exceeded(std::string_view what) const;

  uint64_t limit() const { return limit_; }
  uint64_t used() const { return used_; }
  uint64_t peak() const { return peak_; }
  uint64_t input_bytes() const { return input_bytes_; }

 private:
  uint64_t limit_;
  uint64_t input_bytes_;
  uint64_t factor_ = 0;  // 0: an explicit limit
  uint64_t slack_ = 0;
  uint64_t used_ = 0;
  uint64_t peak_ = 0;
};

// ResourceExhausted "<context>: out of memory while parsing"; if even that
// message cannot be allocated, a preallocated status without the context.
absl::Status OutOfMemoryWhileParsing(std::string_view context) noexcept;

// Runs f() (returning absl::Status or absl::StatusOr<T>) and maps allocation
// failures to a Status naming `context`: std::bad_alloc -> ResourceExhausted
// ("out of memory"), std::length_error -> InvalidArgument (a size no
// container can hold). Other exceptions propagate.
template <typename F>
auto GuardAllocation(std::string_view context, F&& f) -> decltype(f()) {
  try {
    return f();
  } catch (const std::bad_alloc&) {
    return OutOfMemoryWhileParsing(context);
  } catch (const std::length_error&) {
    return absl::InvalidArgumentError(
        absl::StrCat(absl::string_view(context.data(), context.size()),
                     ": the input asks for a size no container can hold"));
  }
}

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PARSE_BUDGET_H_
