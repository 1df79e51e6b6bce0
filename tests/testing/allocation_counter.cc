#include "tests/testing/allocation_counter.h"

#include <malloc.h>

#include <algorithm>
#include <atomic>
#include <cstddef>
#include <cstdlib>
#include <new>

namespace rwkv::testing {
namespace {

std::atomic<int64_t> g_live{0};
std::atomic<int64_t> g_peak{0};
std::atomic<int64_t> g_limit{-1};

void RaisePeak(int64_t live) {
  int64_t peak = g_peak.load(std::memory_order_relaxed);
  while (live > peak &&
         !g_peak.compare_exchange_weak(peak, live, std::memory_order_relaxed)) {
  }
}

// nullptr when the limit forbids it or malloc fails.
void* CountedAlloc(std::size_t size, std::size_t alignment) {
  if (size == 0) size = 1;
  void* p = nullptr;
  if (alignment <= alignof(std::max_align_t)) {
    p = std::malloc(size);
  } else if (posix_memalign(&p, alignment, size) != 0) {
    p = nullptr;
  }
  if (p == nullptr) return nullptr;
  const int64_t usable = static_cast<int64_t>(malloc_usable_size(p));
  const int64_t live =
      g_live.fetch_add(usable, std::memory_order_relaxed) + usable;
  const int64_t limit = g_limit.load(std::memory_order_relaxed);
  if (limit >= 0 && live > limit) {
    g_live.fetch_sub(usable, std::memory_order_relaxed);
    std::free(p);
    return nullptr;
  }
  RaisePeak(live);
  return p;
}

void CountedFree(void* p) {
  if (p == nullptr) return;
  g_live.fetch_sub(static_cast<int64_t>(malloc_usable_size(p)),
                   std::memory_order_relaxed);
  std::free(p);
}

void* AllocOrThrow(std::size_t size, std::size_t alignment) {
  void* p = CountedAlloc(size, alignment);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

}  // namespace

int64_t AllocationCounter::live_bytes() {
  return g_live.load(std::memory_order_relaxed);
}
int64_t AllocationCounter::peak_bytes() {
  return g_peak.load(std::memory_order_relaxed);
}
void AllocationCounter::ResetPeak() {
  g_peak.store(g_live.load(std::memory_order_relaxed),
               std::memory_order_relaxed);
}
void AllocationCounter::SetLimit(int64_t limit) {
  g_limit.store(limit, std::memory_order_relaxed);
}

ScopedAllocationMeter::ScopedAllocationMeter(int64_t fail_above)
    : base_(AllocationCounter::live_bytes()) {
  AllocationCounter::ResetPeak();
  if (fail_above >= 0) AllocationCounter::SetLimit(base_ + fail_above);
}

ScopedAllocationMeter::~ScopedAllocationMeter() {
  AllocationCounter::SetLimit(-1);
}

int64_t ScopedAllocationMeter::peak() const {
  return AllocationCounter::peak_bytes() - base_;
}

int64_t ScopedAllocationMeter::live() const {
  return AllocationCounter::live_bytes() - base_;
}

}  // namespace rwkv::testing

// The replaceable global allocation functions ([new.delete]); every form
// forwards to the counted malloc/free above.
void* operator new(std::size_t n) { return rwkv::testing::AllocOrThrow(n, 0); }
void* operator new[](std::size_t n) {
  return rwkv::testing::AllocOrThrow(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a) {
  return rwkv::testing::AllocOrThrow(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a) {
  return rwkv::testing::AllocOrThrow(n, static_cast<std::size_t>(a));
}
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  return rwkv::testing::CountedAlloc(n, 0);
}
void* operator new[](std::size_t n, const std::nothrow_t&) noexcept {
  return rwkv::testing::CountedAlloc(n, 0);
}
void* operator new(std::size_t n, std::align_val_t a,
                   const std::nothrow_t&) noexcept {
  return rwkv::testing::CountedAlloc(n, static_cast<std::size_t>(a));
}
void* operator new[](std::size_t n, std::align_val_t a,
                     const std::nothrow_t&) noexcept {
  return rwkv::testing::CountedAlloc(n, static_cast<std::size_t>(a));
}
void operator delete(void* p) noexcept { rwkv::testing::CountedFree(p); }
void operator delete[](void* p) noexcept { rwkv::testing::CountedFree(p); }
void operator delete(void* p, std::size_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete[](void* p, std::size_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete(void* p, std::size_t, std::align_val_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete[](void* p, std::size_t, std::align_val_t) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete(void* p, std::align_val_t,
                     const std::nothrow_t&) noexcept {
  rwkv::testing::CountedFree(p);
}
void operator delete[](void* p, std::align_val_t,
                       const std::nothrow_t&) noexcept {
  rwkv::testing::CountedFree(p);
}
