#include "server/sched/batch_planner.h"

#include <algorithm>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;
using ::testing::UnorderedElementsAre;

BatchLimits Limits(size_t max_batch, size_t chunk) {
  BatchLimits l;
  l.max_batch = max_batch;
  l.chunk_size = chunk;
  return l;
}

// `n` jobs of `tenant`, never served, with `prompt_left` tokens each.
void Add(std::vector<PlanRow>& rows, size_t n, uint32_t tenant = 0,
         size_t prompt_left = 0) {
  for (size_t i = 0; i < n; ++i) rows.push_back({tenant, 0, prompt_left});
}

// Marks the plan's decode rows served as the scheduler does (numbered in
// plan order).
void MarkServed(StepInput& in, const StepPlan& p, uint64_t& counter) {
  for (size_t k : p.decode) in.decoding[k].last_served = ++counter;
}

// Runs `steps` steps; returns how many rows each decoding turn got.
std::vector<int> Serve(StepInput in, const BatchLimits& limits, int steps) {
  std::vector<int> served(in.decoding.size(), 0);
  uint64_t counter = 0;
  for (int step = 1; step <= steps; ++step) {
    const StepPlan p = PlanStep(in, limits);
    for (size_t k : p.decode) ++served[k];
    MarkServed(in, p, counter);
  }
  return served;
}

TEST(BatchPlannerTest, NothingToDoPlansNothing) {
  const StepPlan p = PlanStep(StepInput{}, Limits(4, 8));
  EXPECT_THAT(p.decode, IsEmpty());
  EXPECT_THAT(p.ride, IsEmpty());
  EXPECT_EQ(p.chunk, 0u);
}

TEST(BatchPlannerTest, EveryDecodingTurnAdvancesWhenTheyFit) {
  StepInput in;
  Add(in.decoding, 3);
  const StepPlan p = PlanStep(in, Limits(4, 8));
  EXPECT_THAT(p.decode, ElementsAre(0, 1, 2));
}

TEST(BatchPlannerTest, RoundRobinBeyondMaxBatchServesEveryTurnInTurn) {
  // 5 turns of one tenant, 2 rows per step: [0,1] [2,3] [4,0] [1,2] [3,4].
  StepInput in;
  Add(in.decoding, 5);
  std::vector<std::vector<size_t>> windows;
  uint64_t counter = 0;
  for (int step = 1; step <= 5; ++step) {
    const StepPlan p = PlanStep(in, Limits(2, 8));
    ASSERT_EQ(p.decode.size(), 2u);
    windows.push_back(p.decode);
    MarkServed(in, p, counter);
  }
  EXPECT_THAT(windows, ElementsAre(ElementsAre(0, 1), ElementsAre(2, 3),
                                   ElementsAre(4, 0), ElementsAre(1, 2),
                                   ElementsAre(3, 4)));
  // 10 rows over 5 turns: each turn exactly twice (fair).
  StepInput fresh;
  Add(fresh.decoding, 5);
  EXPECT_THAT(Serve(fresh, Limits(2, 8), 5), ElementsAre(2, 2, 2, 2, 2));
}

TEST(BatchPlannerTest, ATenantWithOneTurnDecodesEveryStepBesideAFlood) {
  // Tenant 0 has 30 turns, tenant 1 one turn (the last, newest); 8 rows.
  StepInput in;
  Add(in.decoding, 30, /*tenant=*/0);
  Add(in.decoding, 1, /*tenant=*/1);
  const std::vector<int> served = Serve(in, Limits(8, 8), 30);
  EXPECT_EQ(served[30], 30);  // every step
  // The flood shares the other 7 rows evenly: 210 rows over 30 turns.
  for (size_t k = 0; k < 30; ++k) EXPECT_EQ(served[k], 7) << k;
}

TEST(BatchPlannerTest, RowsAreSharedEquallyBetweenBusyTenants) {
  // 3 tenants with 10, 5 and 2 turns, 6 rows: 2 rows each per step.
  StepInput in;
  Add(in.decoding, 10, 0);
  Add(in.decoding, 5, 1);
  Add(in.decoding, 2, 2);
  const StepPlan p = PlanStep(in, Limits(6, 8));
  ASSERT_EQ(p.decode.size(), 6u);
  int per_tenant[3] = {0, 0, 0};
  for (size_t k : p.decode) ++per_tenant[in.decoding[k].tenant];
  EXPECT_EQ(per_tenant[0], 2);
  EXPECT_EQ(per_tenant[1], 2);
  EXPECT_EQ(per_tenant[2], 2);
  // A tenant with fewer turns than its share leaves its rows to others.
  StepInput uneven;
  Add(uneven.decoding, 10, 0);
  Add(uneven.decoding, 1, 1);
  const StepPlan q = PlanStep(uneven, Limits(6, 8));
  EXPECT_EQ(q.decode.size(), 6u);
  EXPECT_EQ(std::count(q.decode.begin(), q.decode.end(), 10u), 1);
}

TEST(BatchPlannerTest, OldestPromptGetsAChunkOthersRideAlong) {
  StepInput in;
  Add(in.decoding, 1);
  Add(in.prefilling, 4, 0, 100);
  const StepPlan p = PlanStep(in, Limits(3, 16));
  EXPECT_THAT(p.decode, ElementsAre(0));
  // Rows left after the decode row: 2 of the 3 waiting behind the oldest.
  EXPECT_THAT(p.ride, ElementsAre(1, 2));
  EXPECT_EQ(p.chunk_job, 0u);
  EXPECT_EQ(p.chunk, 16u);
}

TEST(BatchPlannerTest, ChunksRotateBetweenTenants) {
  // Tenant 0 queued three long prompts before tenant 1's one.
  StepInput in;
  Add(in.prefilling, 3, 0, 100);
  Add(in.prefilling, 1, 1, 100);
  in.tenant_last_chunk = {0, 0};
  StepPlan p = PlanStep(in, Limits(1, 16));
  EXPECT_EQ(p.chunk_job, 0u);  // tie: the oldest
  in.tenant_last_chunk[0] = 1;
  p = PlanStep(in, Limits(1, 16));
  EXPECT_EQ(p.chunk_job, 3u);  // tenant 1, not tenant 0's second prompt
  in.tenant_last_chunk[1] = 2;
  p = PlanStep(in, Limits(1, 16));
  EXPECT_EQ(p.chunk_job, 0u);  // back to tenant 0's oldest
}

TEST(BatchPlannerTest, RidersAreChosenRoundRobinByTenant) {
  StepInput in;
  Add(in.prefilling, 5, 0, 10);  // the chunk goes to job 0
  Add(in.prefilling, 1, 1, 10);  // job 5
  const StepPlan p = PlanStep(in, Limits(2, 16));
  EXPECT_EQ(p.chunk_job, 0u);
  EXPECT_THAT(p.ride, UnorderedElementsAre(1, 5));
}

TEST(BatchPlannerTest, ChunkIsWhatIsLeftOfThePrompt) {
  StepInput in;
  Add(in.prefilling, 1, 0, 5);
  EXPECT_EQ(PlanStep(in, Limits(4, 16)).chunk, 5u);
}

TEST(BatchPlannerTest, FullBatchLeavesNoRowForRiders) {
  StepInput in;
  Add(in.decoding, 8);
  Add(in.prefilling, 3, 0, 3);
  const StepPlan p = PlanStep(in, Limits(8, 4));
  EXPECT_EQ(p.decode.size(), 8u);
  EXPECT_THAT(p.ride, IsEmpty());
  EXPECT_EQ(p.chunk, 3u);  // the oldest prompt still advances
}

TEST(BatchPlannerTest, ZeroLimitsActAsOne) {
  StepInput in;
  Add(in.decoding, 2);
  Add(in.prefilling, 1, 0, 9);
  const StepPlan p = PlanStep(in, Limits(0, 0));
  EXPECT_EQ(p.decode.size(), 1u);
  EXPECT_EQ(p.chunk, 1u);
}

}  // namespace
}  // namespace rwkv::server
