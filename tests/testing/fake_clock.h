// FakeClock: a thread-safe settable clock for the server's injectable
// `clock` options (TTL and quota tests advance it instead of sleeping).
#ifndef RWKV_TESTS_TESTING_FAKE_CLOCK_H_
#define RWKV_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rwkv::testing {

class FakeClock {
 public:
  // Starts at `start` (a fixed time makes stored times reproducible).
  explicit FakeClock(absl::Time start = absl::Now()) : now_(start) {}

  absl::Time Now() {
    absl::MutexLock lock(&mu_);
    return now_;
  }
  void Advance(absl::Duration d) {
    absl::MutexLock lock(&mu_);
    now_ += d;
  }

 private:
  absl::Mutex mu_;
  absl::Time now_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_FAKE_CLOCK_H_
