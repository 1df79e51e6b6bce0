#include "server/sched/batch_planner.h"

#include <algorithm>
#include <map>
#include <utility>

namespace rwkv::server {
namespace {

// Up to `capacity` of `candidates` (indices into `rows`), round robin by
// tenant: each round takes one job of every tenant that has one left, the
// longest-waiting first; tenants whose next job waited longest go first.
// Returns the chosen indices in the order they were picked (all of them in
// index order when they fit).
std::vector<size_t> FairPick(const std::vector<PlanRow>& rows,
                             std::vector<size_t> candidates, size_t capacity) {
  if (candidates.size() <= capacity) return candidates;
  auto waited_longer = [&rows](size_t a, size_t b) {
    return std::make_pair(rows[a].last_served, a) <
           std::make_pair(rows[b].last_served, b);
  };
  std::map<uint32_t, std::vector<size_t>> by_tenant;
  for (size_t i : candidates) by_tenant[rows[i].tenant].push_back(i);
  std::vector<std::vector<size_t>*> queues;
  for (auto& [tenant, queue] : by_tenant) {
    std::sort(queue.begin(), queue.end(), waited_longer);
    queues.push_back(&queue);
  }
  std::sort(queues.begin(), queues.end(),
            [&](const std::vector<size_t>* a, const std::vector<size_t>* b) {
              return waited_longer(a->front(), b->front());
            });
  std::vector<size_t> picked;
  for (size_t round = 0; picked.size() < capacity; ++round) {
    for (const std::vector<size_t>* q : queues) {
      if (round < q->size() && picked.size() < capacity) {
        picked.push_back((*q)[round]);
      }
    }
  }
  return picked;
}

std::vector<size_t> AllBut(size_t n, size_t skip) {
  std::vector<size_t> out;
  for (size_t i = 0; i < n; ++i) {
    if (i != skip) out.push_back(i);
  }
  return out;
}

}  // namespace

StepPlan PlanStep(const StepInput& in, const BatchLimits& limits) {
  const size_t max_batch = std::max<size_t>(1, limits.max_batch);
  StepPlan plan;
  plan.decode =
      FairPick(in.decoding, AllBut(in.decoding.size(), SIZE_MAX), max_batch);
  if (in.prefilling.empty()) return plan;
  // The chunk: the oldest prompt of the tenant that waited longest for one.
  auto last_chunk = [&in](uint32_t tenant) -> uint64_t {
    return tenant < in.tenant_last_chunk.size() ? in.tenant_last_chunk[tenant]
                                                : 0;
  };
  size_t chunk_job = 0;
  for (size_t i = 1; i < in.prefilling.size(); ++i) {
    if (last_chunk(in.prefilling[i].tenant) <
        last_chunk(in.prefilling[chunk_job].tenant)) {
      chunk_job = i;
    }
  }
  plan.chunk_job = chunk_job;
  plan.chunk = std::min(in.prefilling[chunk_job].prompt_left,
                        std::max<size_t>(1, limits.chunk_size));
  plan.ride = FairPick(in.prefilling, AllBut(in.prefilling.size(), chunk_job),
                       max_batch - plan.decode.size());
  return plan;
}

}  // namespace rwkv::server
