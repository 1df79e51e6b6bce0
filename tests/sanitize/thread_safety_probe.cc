// Compiled (not run) by the sanitizer build's tests sanitize.thread_safety_*:
// with -DRWKV_PROBE_VIOLATION it reads a guarded member without its mutex,
// which -Wthread-safety -Werror=thread-safety must reject; without it, the
// same code holds the lock and must compile. Together they show that the
// flags the build uses really check ABSL_GUARDED_BY.
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

class Counter {
 public:
  int Get() {
#ifndef RWKV_PROBE_VIOLATION
    absl::MutexLock lock(&mu_);
#endif
    return value_;
  }

 private:
  absl::Mutex mu_;
  int value_ ABSL_GUARDED_BY(mu_) = 0;
};

int main() { return Counter().Get(); }
