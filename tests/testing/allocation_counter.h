// AllocationCounter: counts the bytes a test process holds through operator
// new/delete (every std::string, container and nlohmann::json node), so a
// test can assert how much memory a parser built at its peak, and can make
// allocations fail (std::bad_alloc) past a limit to check that a parser turns
// allocation failure into a Status and frees what it built.
//
// Linking tests/testing/allocation_counter.cc into a test binary replaces the
// global operator new/delete of that binary (they forward to malloc/free and
// count malloc_usable_size, so the figures include allocator rounding). Not
// counted: direct malloc calls (utf8proc), LibTorch's tensor allocator and
// mmap. Thread-safe (atomic counters); the figures are process-wide, so keep
// other threads quiet while measuring.
#ifndef RWKV_TESTS_TESTING_ALLOCATION_COUNTER_H_
#define RWKV_TESTS_TESTING_ALLOCATION_COUNTER_H_

#include <cstdint>

namespace rwkv::testing {

// True in the sanitizer build (tests scale their largest inputs down there).
#if defined(__SANITIZE_ADDRESS__)
inline constexpr bool kSanitizerBuild = true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif
#else
inline constexpr bool kSanitizerBuild = false;
#endif

class AllocationCounter {
 public:
  // Bytes currently held through operator new.
  static int64_t live_bytes();
  // Highest live_bytes() since the last ResetPeak() (or the start).
  static int64_t peak_bytes();
  // Makes peak_bytes() restart from live_bytes().
  static void ResetPeak();
  // Every operator new that would raise live_bytes() above `limit` throws
  // std::bad_alloc (the nothrow forms return nullptr); -1 removes the limit.
  static void SetLimit(int64_t limit);
};

// Measures the peak bytes held above the live bytes at construction, and
// optionally fails allocations past `fail_above` extra bytes (-1: never).
// Restores the previous limit on destruction.
class ScopedAllocationMeter {
 public:
  explicit ScopedAllocationMeter(int64_t fail_above = -1);
  ~ScopedAllocationMeter();
  ScopedAllocationMeter(const ScopedAllocationMeter&) = delete;
  ScopedAllocationMeter& operator=(const ScopedAllocationMeter&) = delete;

  // Highest extra bytes held since construction.
  int64_t peak() const;
  // Extra bytes held now (0 once everything built since construction is
  // freed).
  int64_t live() const;

 private:
  int64_t base_;
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_ALLOCATION_COUNTER_H_
