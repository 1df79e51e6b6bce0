// FakeClock: a thread-safe settable clock for the server's injectable
// `clock` options (TTL and quota tests advance it instead of sleeping).
#ifndef RWKV_TESTS_TESTING_FAKE_CLOCK_H_
#define RWKV_TESTS_TESTING_FAKE_CLOCK_H_

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace rwkv::testing {

class FakeClock {
 public:
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
  absl::Time now_ = absl::Now();
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_FAKE_CLOCK_H_
