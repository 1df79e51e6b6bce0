#include "server/sched/batch_planner.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace rwkv::server {
namespace {

using ::testing::ElementsAre;
using ::testing::IsEmpty;

BatchLimits Limits(size_t max_batch, size_t chunk) {
  BatchLimits l;
  l.max_batch = max_batch;
  l.chunk_size = chunk;
  return l;
}

TEST(BatchPlannerTest, NothingToDoPlansNothing) {
  const StepPlan p = PlanStep(StepInput{}, Limits(4, 8));
  EXPECT_THAT(p.decode, IsEmpty());
  EXPECT_THAT(p.ride, IsEmpty());
  EXPECT_EQ(p.chunk, 0u);
}

TEST(BatchPlannerTest, EveryDecodingTurnAdvancesWhenTheyFit) {
  StepInput in;
  in.decoding = 3;
  const StepPlan p = PlanStep(in, Limits(4, 8));
  EXPECT_THAT(p.decode, ElementsAre(0, 1, 2));
  EXPECT_EQ(p.next_round_robin, 0u);
}

TEST(BatchPlannerTest, RoundRobinBeyondMaxBatchServesEveryTurnInTurn) {
  // 5 turns, 2 rows per step: windows [0,1] [2,3] [4,0] [1,2] ...
  StepInput in;
  in.decoding = 5;
  std::vector<int> served(5, 0);
  for (int step = 0; step < 5; ++step) {
    const StepPlan p = PlanStep(in, Limits(2, 8));
    ASSERT_EQ(p.decode.size(), 2u);
    for (size_t k : p.decode) ++served[k];
    in.round_robin = p.next_round_robin;
  }
  // 10 rows over 5 turns: each turn exactly twice (fair).
  EXPECT_THAT(served, ElementsAre(2, 2, 2, 2, 2));
}

TEST(BatchPlannerTest, OldestPromptGetsAChunkOthersRideAlong) {
  StepInput in;
  in.decoding = 1;
  in.prefilling = 4;
  in.oldest_prompt_left = 100;
  const StepPlan p = PlanStep(in, Limits(3, 16));
  EXPECT_THAT(p.decode, ElementsAre(0));
  // Rows left after the decode row: 2 of the 3 waiting behind the oldest.
  EXPECT_THAT(p.ride, ElementsAre(1, 2));
  EXPECT_EQ(p.chunk, 16u);
}

TEST(BatchPlannerTest, ChunkIsWhatIsLeftOfTheOldestPrompt) {
  StepInput in;
  in.prefilling = 1;
  in.oldest_prompt_left = 5;
  EXPECT_EQ(PlanStep(in, Limits(4, 16)).chunk, 5u);
}

TEST(BatchPlannerTest, FullBatchLeavesNoRowForRiders) {
  StepInput in;
  in.decoding = 8;
  in.prefilling = 3;
  in.oldest_prompt_left = 3;
  const StepPlan p = PlanStep(in, Limits(8, 4));
  EXPECT_EQ(p.decode.size(), 8u);
  EXPECT_THAT(p.ride, IsEmpty());
  EXPECT_EQ(p.chunk, 3u);  // the oldest prompt still advances
}

TEST(BatchPlannerTest, ZeroLimitsActAsOne) {
  StepInput in;
  in.decoding = 2;
  in.prefilling = 1;
  in.oldest_prompt_left = 9;
  const StepPlan p = PlanStep(in, Limits(0, 0));
  EXPECT_EQ(p.decode.size(), 1u);
  EXPECT_EQ(p.chunk, 1u);
}

}  // namespace
}  // namespace rwkv::server
