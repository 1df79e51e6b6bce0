// PlanStep: which rows one scheduler step computes, as a pure function of
// the queues' sizes and the options (tested without an engine). Every step
//  * decodes one token of every decoding turn (at most max_batch, round
//    robin beyond that, so every turn advances within ceil(n / max_batch)
//    steps);
//  * lets the prompts waiting behind the oldest one ride along in the same
//    batched step, one prompt token each, while rows are left (many new
//    turns start together instead of one after another);
//  * feeds the oldest prompt one sequence-mode chunk of at most chunk_size
//    tokens, so a long prompt never freezes the other streams.
#ifndef RWKV_SERVER_SCHED_BATCH_PLANNER_H_
#define RWKV_SERVER_SCHED_BATCH_PLANNER_H_

#include <cstddef>
#include <vector>

namespace rwkv::server {

struct BatchLimits {
  // Most rows of one batched step (>= 1).
  size_t max_batch = 32;
  // Most prompt tokens of the oldest prompt fed in one step (>= 1).
  size_t chunk_size = 32;
};

struct StepInput {
  size_t decoding = 0;     // turns with a token to feed
  size_t prefilling = 0;   // jobs still reading their prompt, oldest first
  size_t round_robin = 0;  // first decoding turn of this step's window
  // Prompt tokens the oldest prefilling job has left (when prefilling > 0).
  size_t oldest_prompt_left = 0;
};

struct StepPlan {
  // The batched step's rows: decoding turns (indices into the decoding
  // list) first, then riding prompts (indices into the prefilling list).
  std::vector<size_t> decode;
  std::vector<size_t> ride;
  // Tokens of the oldest prompt (prefilling[0]) fed as one chunk; 0: none.
  size_t chunk = 0;
  // round_robin for the next step.
  size_t next_round_robin = 0;
};

StepPlan PlanStep(const StepInput& in, const BatchLimits& limits);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SCHED_BATCH_PLANNER_H_
