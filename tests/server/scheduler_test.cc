// The scheduler on the FakeEngine: what each job gets (checked against the
// fake model's deterministic continuation), how calls are batched and
// chunked, and how jobs end early. No real model; runs in well under a
// second.
#include "server/sched/scheduler.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/synchronization/notification.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/recording_sink.h"

namespace rwkv::server {
namespace {

using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::RecordingSink;
using ::rwkv::testing::TurnRecord;
using ::testing::ElementsAreArray;
using ::testing::HasSubstr;

constexpr int kVocab = 256;

std::vector<int32_t> Tokens(const std::string& text) {
  return std::vector<int32_t>(text.begin(), text.end());
}

// What greedy decoding on the fake model yields after `prompt` from a fresh
// state, and the hash of the state after feeding all of it.
struct Expected {
  std::vector<int32_t> ids;
  uint32_t final_hash = 0;
};
Expected Greedy(const FakeEngine& e, const std::vector<int32_t>& prompt,
                int max_tokens) {
  Expected out;
  uint32_t h = FakeEngine::Hash(0, prompt);
  for (int i = 0; i < max_tokens; ++i) {
    const int32_t t = e.GreedyAfter(h);
    out.ids.push_back(t);
    h = FakeEngine::Hash(h, {t});
  }
  out.final_hash = h;
  return out;
}

class SchedulerTest : public ::testing::Test {
 protected:
  void Start(int max_batch, int chunk_size, int max_jobs = 4096) {
    SchedulerOptions o;
    o.max_batch = max_batch;
    o.chunk_size = chunk_size;
    o.max_jobs = max_jobs;
    scheduler_ = std::make_unique<Scheduler>(&engine_, tokenizer_.get(), o);
  }
  std::shared_ptr<TurnRecord> Turn(const std::vector<int32_t>& prompt,
                                   int max_tokens,
                                   absl::Status* submit = nullptr,
                                   const std::string& tenant = "") {
    return TurnFrom(engine_.NewState(), prompt, max_tokens, submit, tenant);
  }
  std::shared_ptr<TurnRecord> TurnFrom(engine::State state,
                                       const std::vector<int32_t>& prompt,
                                       int max_tokens,
                                       absl::Status* submit = nullptr,
                                       const std::string& tenant = "") {
    auto record = std::make_shared<TurnRecord>();
    GenerateJob job;
    job.tenant = tenant;
    job.state = std::move(state);
    job.prompt = prompt;
    job.sampling.temperature = 0;
    job.max_tokens = max_tokens;
    job.ignore_eos = true;
    job.sink = std::make_unique<RecordingSink>(record);
    absl::Status s = scheduler_->Submit(std::move(job));
    if (submit != nullptr) *submit = s;
    return record;
  }

  FakeEngine engine_{kVocab};
  std::unique_ptr<engine::Tokenizer> tokenizer_ =
      *engine::Tokenizer::Load("bytes");
  std::unique_ptr<Scheduler> scheduler_;
};

TEST_F(SchedulerTest, ATurnContinuesGreedilyAndEndsWithItsFinalState) {
  Start(4, 8);
  const std::vector<int32_t> prompt = Tokens("hello there");
  auto r = Turn(prompt, 6);
  r->finished.WaitForNotification();
  const Expected want = Greedy(engine_, prompt, 6);
  absl::MutexLock lock(&r->mu);
  ASSERT_TRUE(r->completed) << r->status;
  EXPECT_THAT(r->ids, ElementsAreArray(want.ids));
  EXPECT_EQ(r->finish, FinishReason::kLength);
  EXPECT_EQ(r->final_hash, want.final_hash);
  EXPECT_EQ(r->final_tokens, static_cast<int64_t>(prompt.size() + 6));
  const TurnChunk& last = r->chunks.back();
  EXPECT_EQ(last.prompt_tokens, static_cast<int32_t>(prompt.size()));
  EXPECT_EQ(last.generated_tokens, 6);
}

TEST_F(SchedulerTest, ManyTurnsBatchedGetWhatEachGetsAlone) {
  Start(/*max_batch=*/4, /*chunk_size=*/3);
  std::vector<std::shared_ptr<TurnRecord>> records;
  std::vector<std::vector<int32_t>> prompts;
  for (int i = 0; i < 10; ++i) {
    prompts.push_back(Tokens("prompt number " + std::to_string(i * 7)));
    records.push_back(Turn(prompts.back(), 5 + i));
  }
  for (int i = 0; i < 10; ++i) {
    records[i]->finished.WaitForNotification();
    const Expected want = Greedy(engine_, prompts[i], 5 + i);
    absl::MutexLock lock(&records[i]->mu);
    ASSERT_TRUE(records[i]->completed) << records[i]->status;
    EXPECT_THAT(records[i]->ids, ElementsAreArray(want.ids)) << i;
    EXPECT_EQ(records[i]->final_hash, want.final_hash) << i;
  }
  size_t widest = 0;
  for (const FakeEngine::Call& c : engine_.calls()) {
    if (c.segments) {
      // The batched rows and one chunk (the last segment) in one call.
      ASSERT_GE(c.rows, 2u);
      widest = std::max(widest, c.rows - 1);
      EXPECT_LE(c.rows - 1, 4u);
      EXPECT_LE(c.tokens - (c.rows - 1), 3u);
      continue;
    }
    if (c.batched) widest = std::max(widest, c.rows);
    EXPECT_LE(c.rows, 4u);
    if (!c.batched) {
      EXPECT_LE(c.tokens, 3u);
    }
  }
  EXPECT_EQ(widest, 4u);  // turns really shared steps
}

TEST_F(SchedulerTest, ALongPromptIsFedInChunksOfChunkSize) {
  Start(4, 16);
  auto r = Turn(std::vector<int32_t>(50, 'x'), 1);
  r->finished.WaitForNotification();
  std::vector<size_t> chunks;
  for (const FakeEngine::Call& c : engine_.calls()) {
    if (!c.batched) chunks.push_back(c.tokens);
  }
  EXPECT_THAT(chunks, ElementsAreArray({16u, 16u, 16u, 2u}));
}

TEST_F(SchedulerTest, ACancelledTurnStopsAndGetsItsStatus) {
  Start(4, 8);
  auto r = std::make_shared<TurnRecord>();
  r->cancel_after_chunks = 2;
  GenerateJob job;
  job.state = engine_.NewState();
  job.prompt = Tokens("abc");
  job.sampling.temperature = 0;
  job.max_tokens = 1000;
  job.ignore_eos = true;
  job.sink = std::make_unique<RecordingSink>(r);
  ASSERT_TRUE(scheduler_->Submit(std::move(job)).ok());
  r->finished.WaitForNotification();
  absl::MutexLock lock(&r->mu);
  EXPECT_FALSE(r->completed);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kCancelled);
  // Stopped at the next step: far fewer than 1000 tokens were computed.
  EXPECT_LT(engine_.tokens_fed(), 10);
}

TEST_F(SchedulerTest, AFailedBatchFailsItsRowsAndNothingElse) {
  Start(4, 8);
  absl::Notification entered, gate;
  std::atomic<int> seen{0};
  engine_.set_before_call([&] {
    if (seen++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  // Call 0: a's prompt chunk (held). Then b and c queue; call 1 is the
  // step with a's first decode row, c's prompt token riding along and b's
  // prompt chunk, in one engine call: its failure ends all three. d,
  // queued after, is served as usual.
  auto a = Turn(Tokens("first"), 3);  // one chunk
  entered.WaitForNotification();
  auto b = Turn(Tokens("second"), 3);
  auto c = Turn(Tokens("c"), 3);
  engine_.FailCall(1);
  gate.Notify();
  for (auto* r : {a.get(), b.get(), c.get()}) {
    r->finished.WaitForNotification();
    absl::MutexLock lock(&r->mu);
    EXPECT_EQ(r->status.code(), absl::StatusCode::kInternal) << r->status;
    EXPECT_THAT(std::string(r->status.message()), HasSubstr("engine error"));
  }
  ASSERT_GE(engine_.calls().size(), 2u);
  EXPECT_TRUE(engine_.calls()[1].segments);
  EXPECT_EQ(engine_.calls()[1].rows, 3u);
  auto d = Turn(Tokens("fourth"), 3);
  d->finished.WaitForNotification();
  absl::MutexLock lock(&d->mu);
  EXPECT_TRUE(d->completed) << d->status;
  EXPECT_THAT(d->ids,
              ElementsAreArray(Greedy(engine_, Tokens("fourth"), 3).ids));
}

// A step with decode rows (and riders) and a prompt chunk makes ONE engine
// call (ForwardSegments: one pass over the weights), and each job gets
// exactly what it gets alone.
TEST_F(SchedulerTest, AStepWithDecodeRowsAndAChunkIsOneEngineCall) {
  Start(/*max_batch=*/4, /*chunk_size=*/8);
  absl::Notification entered, gate;
  std::atomic<int> seen{0};
  engine_.set_before_call([&] {
    if (seen++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  // Call 0: a's prompt (one chunk, held). Then b's 20-token prompt and c's
  // queue: each later step decodes a, lets c's prompt ride, feeds b a chunk.
  const std::vector<int32_t> pa = Tokens("first"),
                             pb = Tokens("a twenty-token prompt"),
                             pc = Tokens("cc");
  auto a = Turn(pa, 6);
  entered.WaitForNotification();
  auto b = Turn(pb, 3);
  auto c = Turn(pc, 3);
  gate.Notify();
  const std::vector<std::pair<TurnRecord*, std::vector<int32_t>>> all = {
      {a.get(), pa}, {b.get(), pb}, {c.get(), pc}};
  for (const auto& [r, prompt] : all) {
    r->finished.WaitForNotification();
    const Expected want = Greedy(engine_, prompt, r == a.get() ? 6 : 3);
    absl::MutexLock lock(&r->mu);
    ASSERT_TRUE(r->completed) << r->status;
    EXPECT_THAT(r->ids, ElementsAreArray(want.ids));
    EXPECT_EQ(r->final_hash, want.final_hash);
  }
  const std::vector<FakeEngine::Call> calls = engine_.calls();
  ASSERT_GE(calls.size(), 4u);
  // Step 2: a's decode row, c's first prompt token, b's first 8 tokens.
  EXPECT_TRUE(calls[1].segments);
  EXPECT_EQ(calls[1].rows, 3u);
  EXPECT_EQ(calls[1].tokens, 2u + 8u);
  // b's prompt went in chunks of 8, 8, 5, each inside a step's one call.
  int chunks = 0;
  for (const FakeEngine::Call& call : calls) {
    chunks += call.segments || (!call.batched && call.tokens > 1);
  }
  EXPECT_EQ(chunks, 1 + 3);  // a's prompt alone, then b's three
  EXPECT_EQ(scheduler_->stats().prefill_chunks, 4);
}

TEST_F(SchedulerTest, NonFiniteLogitsInABatchEndThatRowAloneWithOutOfRange) {
  Start(4, 8);
  absl::Notification entered, gate;
  std::atomic<int> seen{0};
  engine_.set_before_call([&] {
    if (seen++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  // Call 0: a's prompt chunk (held). b and c queue behind it; the next step
  // batches a's first decode row with c's one prompt token riding (c is
  // behind the oldest prompt, b's, which gets the chunk).
  auto a = Turn(Tokens("first"), 4);
  entered.WaitForNotification();
  auto b = Turn(Tokens("second"), 4);
  auto c = TurnFrom(engine_.OutOfRangeState(), Tokens("x"), 4);
  gate.Notify();
  for (auto* r : {a.get(), b.get(), c.get()}) r->finished.WaitForNotification();
  {
    absl::MutexLock lock(&c->mu);
    EXPECT_FALSE(c->completed);
    EXPECT_TRUE(c->ids.empty());
    EXPECT_EQ(c->status.code(), absl::StatusCode::kOutOfRange) << c->status;
    EXPECT_THAT(std::string(c->status.message()), HasSubstr("rolled back"));
    EXPECT_THAT(std::string(c->status.message()),
                HasSubstr("non-finite logits"));
  }
  bool c_rode = false;
  for (const FakeEngine::Call& call : engine_.calls()) {
    // With b's chunk in the same call: a's row, c's row, b's chunk.
    if (call.segments && call.rows == 3) c_rode = true;
  }
  EXPECT_TRUE(c_rode) << "c's token did not share a batched step";
  const std::vector<std::pair<TurnRecord*, std::string>> good = {
      {a.get(), "first"}, {b.get(), "second"}};
  for (const auto& [r, prompt] : good) {
    const Expected want = Greedy(engine_, Tokens(prompt), 4);
    absl::MutexLock lock(&r->mu);
    ASSERT_TRUE(r->completed) << prompt << ": " << r->status;
    EXPECT_THAT(r->ids, ElementsAreArray(want.ids)) << prompt;
    EXPECT_EQ(r->final_hash, want.final_hash) << prompt;
  }
  EXPECT_EQ(scheduler_->stats().jobs_failed, 1);
}

TEST_F(SchedulerTest, NonFiniteLogitsOfAPromptChunkAreOutOfRangeNotInternal) {
  Start(4, 8);
  auto bad = TurnFrom(engine_.OutOfRangeState(), Tokens("hello"), 4);
  bad->finished.WaitForNotification();
  {
    absl::MutexLock lock(&bad->mu);
    EXPECT_FALSE(bad->completed);
    EXPECT_EQ(bad->status.code(), absl::StatusCode::kOutOfRange) << bad->status;
  }
  // The engine goes on serving.
  auto good = Turn(Tokens("hello"), 4);
  good->finished.WaitForNotification();
  absl::MutexLock lock(&good->mu);
  ASSERT_TRUE(good->completed) << good->status;
  EXPECT_THAT(good->ids,
              ElementsAreArray(Greedy(engine_, Tokens("hello"), 4).ids));
}

// The chunk inside a step's one call: non-finite logits of its segment end
// that job alone with OUT_OF_RANGE; the decode row beside it goes on.
TEST_F(SchedulerTest, NonFiniteLogitsOfAChunkBesideDecodeRowsEndOnlyItsJob) {
  Start(4, 8);
  absl::Notification entered, gate;
  std::atomic<int> seen{0};
  engine_.set_before_call([&] {
    if (seen++ == 0) {
      entered.Notify();
      gate.WaitForNotification();
    }
  });
  auto a = Turn(Tokens("first"), 4);  // call 0: a's prompt (held)
  entered.WaitForNotification();
  auto bad = TurnFrom(engine_.OutOfRangeState(), Tokens("hello"), 4);
  gate.Notify();
  bad->finished.WaitForNotification();
  a->finished.WaitForNotification();
  {
    absl::MutexLock lock(&bad->mu);
    EXPECT_FALSE(bad->completed);
    EXPECT_EQ(bad->status.code(), absl::StatusCode::kOutOfRange) << bad->status;
    EXPECT_THAT(std::string(bad->status.message()), HasSubstr("rolled back"));
  }
  ASSERT_GE(engine_.calls().size(), 2u);
  EXPECT_TRUE(engine_.calls()[1].segments);  // a's row and bad's chunk
  EXPECT_EQ(engine_.calls()[1].rows, 2u);
  const Expected want = Greedy(engine_, Tokens("first"), 4);
  absl::MutexLock lock(&a->mu);
  ASSERT_TRUE(a->completed) << a->status;
  EXPECT_THAT(a->ids, ElementsAreArray(want.ids));
  EXPECT_EQ(a->final_hash, want.final_hash);
  EXPECT_EQ(scheduler_->stats().jobs_failed, 1);
}

TEST_F(SchedulerTest, StopEndsQueuedAndRunningJobsWithUnavailable) {
  Start(4, 8);
  absl::Notification gate;
  // Each call also takes 1 ms, so the 1000-token turns cannot finish before
  // the stopper thread runs, even on a loaded machine.
  engine_.set_before_call([&gate] {
    gate.WaitForNotification();
    absl::SleepFor(absl::Milliseconds(1));
  });
  auto running = Turn(Tokens("one"), 1000);
  auto queued = Turn(Tokens("two"), 1000);
  std::thread stopper([this] { scheduler_->Stop(); });
  gate.Notify();
  stopper.join();
  for (auto* r : {running.get(), queued.get()}) {
    ASSERT_TRUE(r->finished.HasBeenNotified());
    absl::MutexLock lock(&r->mu);
    EXPECT_EQ(r->status.code(), absl::StatusCode::kUnavailable);
  }
  absl::Status late;
  Turn(Tokens("three"), 1, &late);
  EXPECT_EQ(late.code(), absl::StatusCode::kUnavailable);
}

TEST_F(SchedulerTest, AFullQueueIsResourceExhausted) {
  Start(4, 8, /*max_jobs=*/1);
  absl::Notification gate;
  engine_.set_before_call([&gate] { gate.WaitForNotification(); });
  auto first = Turn(Tokens("one"), 2);
  absl::Status second;
  Turn(Tokens("two"), 2, &second);
  EXPECT_EQ(second.code(), absl::StatusCode::kResourceExhausted);
  gate.Notify();
  first->finished.WaitForNotification();
}

TEST_F(SchedulerTest, PrefillJobReturnsTheStateAndLogitsAfterItsPrompt) {
  Start(4, 16);
  const std::vector<int32_t> prompt(40, 'p');
  absl::Notification done;
  absl::StatusOr<PrefillResult> result = absl::UnknownError("");
  PrefillJob job;
  job.state = engine_.NewState();
  job.prompt = prompt;
  job.done = [&](absl::StatusOr<PrefillResult> r) {
    result = std::move(r);
    done.Notify();
  };
  ASSERT_TRUE(scheduler_->Submit(std::move(job)).ok());
  done.WaitForNotification();
  ASSERT_TRUE(result.ok()) << result.status();
  const uint32_t h = FakeEngine::Hash(0, prompt);
  EXPECT_EQ(FakeEngine::HashOf(result->state), h);
  EXPECT_EQ(result->state.token_count(), 40);
  EXPECT_EQ(result->logits.ArgMax(0), engine_.GreedyAfter(h));
}

TEST_F(SchedulerTest, PrefillJobStopsWhenItsCallerHasGone) {
  Start(4, 4);
  absl::Notification done;
  absl::Status status;
  PrefillJob job;
  job.state = engine_.NewState();
  job.prompt = std::vector<int32_t>(400, 'p');
  job.check = [] { return absl::CancelledError("gone"); };
  job.done = [&](absl::StatusOr<PrefillResult> r) {
    status = r.status();
    done.Notify();
  };
  ASSERT_TRUE(scheduler_->Submit(std::move(job)).ok());
  done.WaitForNotification();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled);
  EXPECT_LT(engine_.tokens_fed(), 400);
}

TEST_F(SchedulerTest, BadSamplingFailsTheTurnAtAdmission) {
  Start(4, 8);
  auto r = std::make_shared<TurnRecord>();
  GenerateJob job;
  job.state = engine_.NewState();
  job.prompt = Tokens("x");
  job.sampling.temperature = -1;
  job.max_tokens = 3;
  job.sink = std::make_unique<RecordingSink>(r);
  ASSERT_TRUE(scheduler_->Submit(std::move(job)).ok());
  r->finished.WaitForNotification();
  absl::MutexLock lock(&r->mu);
  EXPECT_EQ(r->status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_.tokens_fed(), 0);
}

// Tenant A floods the scheduler with 30 turns, tenant B sends one: B's turn
// decodes in every step (round robin by tenant) and finishes in about as
// many steps as it has tokens. Round robin over turns alone would give B a
// row every ceil(31 / 4) = 8 steps: ~80 steps for its 10 tokens.
TEST_F(SchedulerTest, OneTenantsFloodDoesNotStarveAnother) {
  Start(/*max_batch=*/4, /*chunk_size=*/8);
  absl::Notification go;
  std::atomic<int> calls{0};
  engine_.set_before_call([&] {
    go.WaitForNotification();  // every job is queued before the first step
    ++calls;
    absl::SleepFor(absl::Milliseconds(1));
  });
  std::vector<std::shared_ptr<TurnRecord>> flood;
  for (int i = 0; i < 30; ++i) {
    flood.push_back(Turn(Tokens("a" + std::to_string(i)), 40, nullptr, "A"));
  }
  auto b = Turn(Tokens("b"), 10, nullptr, "B");
  go.Notify();
  b->finished.WaitForNotification();
  const int calls_for_b = calls.load();
  {
    absl::MutexLock lock(&b->mu);
    ASSERT_TRUE(b->completed) << b->status;
    EXPECT_EQ(b->ids.size(), 10u);
  }
  // B's prompt: a chunk in step 1 or 2; then 10 decode rows in 10 steps
  // (each step: one batched call, plus a chunk call while A's prompts last).
  EXPECT_LE(calls_for_b, 40);
  for (auto& r : flood) {
    r->finished.WaitForNotification();
    absl::MutexLock lock(&r->mu);
    EXPECT_TRUE(r->completed) << r->status;
    EXPECT_EQ(r->ids.size(), 40u);
  }
  // A's turns, meanwhile, shared the other rows: none finished before B.
  EXPECT_GT(calls.load(), 300);
}

}  // namespace
}  // namespace rwkv::server
