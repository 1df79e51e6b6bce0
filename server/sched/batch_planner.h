// PlanStep: which rows one scheduler step computes, as a pure function of
// the queues and the options (tested without an engine). Every step
//  * decodes one token of every decoding turn, at most max_batch; beyond
//    that rows go round robin by tenant (one turn of each tenant per round,
//    the turn that has waited longest first), so a tenant with many turns
//    cannot starve one with few, and within a tenant every turn advances in
//    turn;
//  * lets waiting prompts ride along in the same batched step, one prompt
//    token each, while rows are left (chosen the same way);
//  * feeds one prompt a chunk of at most chunk_size tokens (in the same
//    engine call as the rows, scheduler.h):
//    the oldest prompt of the tenant that least recently had a chunk, so a
//    long prompt never freezes the other streams and one tenant's queue of
//    prompts cannot hold back another tenant's.
#ifndef RWKV_SERVER_SCHED_BATCH_PLANNER_H_
#define RWKV_SERVER_SCHED_BATCH_PLANNER_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace rwkv::server {

struct BatchLimits {
  // Most rows of one batched step (>= 1).
  size_t max_batch = 32;
  // Most prompt tokens of one prompt fed as a chunk in one step (>= 1).
  size_t chunk_size = 32;
};

// One job as the planner sees it.
struct PlanRow {
  // Small index of the job's tenant (the scheduler numbers tenants).
  uint32_t tenant = 0;
  // When the job last had a row or a chunk (0: never), as a number that
  // grows with every row served: the scheduler numbers a step's rows in
  // the order the plan lists them, which keeps ties rotating. Lower has
  // waited longer.
  uint64_t last_served = 0;
  // Prompt tokens left (prefilling jobs).
  size_t prompt_left = 0;
};

struct StepInput {
  std::vector<PlanRow> decoding;    // turns with a token to feed
  std::vector<PlanRow> prefilling;  // jobs still reading their prompt,
                                    // oldest first
  // When each tenant (by index) last had a chunk (any growing number, e.g.
  // the step); missing: never.
  std::vector<uint64_t> tenant_last_chunk;
};

struct StepPlan {
  // The batched step's rows: decoding turns (indices into the decoding
  // list) first, then riding prompts (indices into the prefilling list);
  // each in the order picked (index order when all fit).
  std::vector<size_t> decode;
  std::vector<size_t> ride;
  // The prefilling job fed a chunk of `chunk` tokens (chunk 0: none).
  size_t chunk_job = 0;
  size_t chunk = 0;
};

StepPlan PlanStep(const StepInput& in, const BatchLimits& limits);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_BATCH_PLANNER_H_
