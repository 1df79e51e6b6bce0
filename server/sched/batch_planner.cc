#include "server/sched/batch_planner.h"

#include <algorithm>

namespace rwkv::server {

StepPlan PlanStep(const StepInput& in, const BatchLimits& limits) {
  const size_t max_batch = std::max<size_t>(1, limits.max_batch);
  StepPlan plan;
  const size_t n = in.decoding;
  const size_t start = n == 0 ? 0 : in.round_robin % n;
  const size_t rows = std::min(n, max_batch);
  for (size_t i = 0; i < rows; ++i) plan.decode.push_back((start + i) % n);
  plan.next_round_robin = n == 0 ? 0 : (start + rows) % n;
  // prefilling[0] gets the chunk; the others ride along while rows are left.
  for (size_t i = 1;
       i < in.prefilling && plan.decode.size() + plan.ride.size() < max_batch;
       ++i) {
    plan.ride.push_back(i);
  }
  if (in.prefilling > 0) {
    plan.chunk =
        std::min(in.oldest_prompt_left, std::max<size_t>(1, limits.chunk_size));
  }
  return plan;
}

}  // namespace rwkv::server
