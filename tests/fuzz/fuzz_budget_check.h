// What every fuzz target of tests/fuzz checks besides "no crash, no
// sanitizer report": the memory a parse held at its peak, measured by the
// counting operator new of tests/testing/allocation_counter, stays within
// its ParseBudget (4 x the input + 4 MiB) plus a little untracked room for
// messages. A parse over budget aborts, so libFuzzer reports it as a crash
// with the input that caused it.
#ifndef RWKV_TESTS_FUZZ_FUZZ_BUDGET_CHECK_H_
#define RWKV_TESTS_FUZZ_FUZZ_BUDGET_CHECK_H_

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

#include "engine/parse_budget.h"
#include "tests/testing/allocation_counter.h"

namespace rwkv::fuzz {

class BudgetCheck {
 public:
  explicit BudgetCheck(size_t input_bytes)
      : limit_(static_cast<int64_t>(
                   engine::ParseBudget::ForInput(input_bytes).limit()) +
               (64 << 10)) {}
  ~BudgetCheck() {
    if (meter_.peak() > limit_) {
      std::fprintf(stderr,
                   "fuzz: the parse held %lld bytes at its peak, over its "
                   "budget of %lld\n",
                   static_cast<long long>(meter_.peak()),
                   static_cast<long long>(limit_));
      std::abort();
    }
  }

 private:
  int64_t limit_;
  testing::ScopedAllocationMeter meter_;
};

}  // namespace rwkv::fuzz

#endif  // RWKV_TESTS_FUZZ_FUZZ_BUDGET_CHECK_H_
