#include "server/sched/scheduler.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "engine/logits.h"
#include "server/sched/turn_runner.h"

namespace rwkv::server {

using common::LogError;

// A job in the loop: the state being fed, how far its prompt is, and what
// its logits mean. The two kinds of job differ only here.
class Scheduler::Stream {
 public:
  virtual ~Stream() = default;
  virtual engine::State& state() = 0;
  virtual const std::vector<int32_t>& prompt() const = 0;
  // OK to go on; otherwise why the job must end now.
  virtual absl::Status Check() const = 0;
  // Handles the logits after the last token fed (the prompt's last, or
  // next_token()). Returns true if the job goes on with next_token(); false
  // once it has ended (its owner has been told).
  virtual bool OnLogits(absl::Span<const float> row, Counters& counters) = 0;
  virtual int32_t next_token() const = 0;
  // Ends the job with `status` (its owner is told).
  virtual void Fail(const absl::Status& status) = 0;
  // The first prompt token is about to be fed.
  virtual void OnStarted() {}

  virtual const std::string& tenant() const = 0;

  bool prompt_done() const { return prompt_fed == prompt().size(); }
  size_t prompt_fed = 0;
  // The planner's bookkeeping (batch_planner.h).
  uint32_t tenant_index = 0;
  uint64_t last_served = 0;
};

namespace {

using Stream = Scheduler::Stream;

class GenerateStream final : public Stream {
 public:
  GenerateStream(GenerateJob job, TurnRunner runner)
      : job_(std::move(job)), runner_(std::move(runner)) {}

  engine::State& state() override { return job_.state; }
  const std::vector<int32_t>& prompt() const override { return job_.prompt; }
  absl::Status Check() const override { return job_.sink->Check(); }
  int32_t next_token() const override { return runner_.pending_token(); }
  const std::string& tenant() const override { return job_.tenant; }
  void OnStarted() override { job_.sink->OnStarted(); }

  bool OnLogits(absl::Span<const float> row,
                Scheduler::Counters& counters) override {
    if (!prompt_reported_) {
      prompt_reported_ = true;
      job_.sink->OnPromptDone(job_.state, row);
    }
    absl::StatusOr<TurnRunner::Next> next = runner_.OnLogits(row);
    if (!next.ok()) {
      Fail(next.status());
      ++counters.jobs_failed;
      return false;
    }
    const int64_t count = job_.state.token_count();
    if (*next == TurnRunner::Next::kFinish) {
      const int32_t prompt_tokens =
          job_.cached_tokens + static_cast<int32_t>(job_.prompt.size());
      TurnChunk last =
          runner_.TakeLast(count, prompt_tokens, job_.cached_tokens);
      ++counters.turns_finished;
      job_.sink->OnComplete(std::move(job_.state), row, std::move(last));
      return false;
    }
    ++counters.tokens_generated;
    if (std::optional<TurnChunk> chunk = runner_.TakeChunk(count)) {
      job_.sink->OnChunk(*std::move(chunk));
    }
    return true;
  }

  void Fail(const absl::Status& status) override { job_.sink->OnError(status); }

 private:
  GenerateJob job_;
  TurnRunner runner_;
  bool prompt_reported_ = false;
};

class PrefillStream final : public Stream {
 public:
  explicit PrefillStream(PrefillJob job) : job_(std::move(job)) {}

  engine::State& state() override { return job_.state; }
  const std::vector<int32_t>& prompt() const override { return job_.prompt; }
  absl::Status Check() const override {
    return job_.check ? job_.check() : absl::OkStatus();
  }
  int32_t next_token() const override { return -1; }  // never decodes
  const std::string& tenant() const override { return job_.tenant; }

  bool OnLogits(absl::Span<const float> row,
                Scheduler::Counters& counters) override {
    PrefillResult result{
        std::move(job_.state),
        engine::Logits(1, static_cast<int>(row.size()),
                       std::vector<float>(row.begin(), row.end()))};
    job_.done(std::move(result));
    return false;
  }

  void Fail(const absl::Status& status) override { job_.done(status); }

 private:
  PrefillJob job_;
};

// The loop's stream for a queued job, or the job's error (bad sampling).
absl::StatusOr<std::unique_ptr<Stream>> MakeStream(
    Job job, const engine::Tokenizer& tokenizer, int vocab_size) {
  if (auto* prefill = std::get_if<PrefillJob>(&job)) {
    return std::make_unique<PrefillStream>(std::move(*prefill));
  }
  GenerateJob& gen = std::get<GenerateJob>(job);
  absl::StatusOr<TurnRunner> runner =
      TurnRunner::Create(gen, tokenizer, vocab_size);
  if (!runner.ok()) {
    gen.sink->OnError(runner.status());
    return runner.status();
  }
  return std::make_unique<GenerateStream>(std::move(gen), *std::move(runner));
}

// A forward's failure as the job's owner hears it. Non-finite logits are
// not a server fault: the job's state drove the model out of the float
// range, so that job ends with OUT_OF_RANGE (chat.proto) and its state is
// thrown away (a turn is rolled back by its owner); anything else is
// INTERNAL.
absl::Status EngineError(const absl::Status& s) {
  if (engine::IsNonFiniteLogits(s)) {
    return absl::OutOfRangeError(absl::StrCat(
        "the model's output became NaN or infinite on this session's state, "
        "so the turn was stopped and rolled back (reset, decay or replace "
        "the state before retrying): ",
        s.message()));
  }
  return absl::InternalError(absl::StrCat("engine error: ", s.message()));
}

}  // namespace

Scheduler::Scheduler(engine::Engine* engine, const engine::Tokenizer* tokenizer,
                     SchedulerOptions options)
    : engine_(engine),
      tokenizer_(tokenizer),
      options_(options),
      limits_{static_cast<size_t>(std::max(1, options.max_batch)),
              static_cast<size_t>(std::max(1, options.chunk_size))},
      batch_size_counts_(limits_.max_batch + 1) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Stop(); }

absl::Status Scheduler::Submit(Job job) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  if (active_ + static_cast<int>(inbox_.size()) >= options_.max_jobs) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the scheduler queue is full (", options_.max_jobs,
                     " jobs queued or running); retry later"));
  }
  inbox_.push_back(std::move(job));
  return absl::OkStatus();
}

void Scheduler::Stop() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (thread_.joinable()) thread_.join();
}

SchedulerStats Scheduler::stats() const {
  SchedulerStats s;
  s.decode_steps = counters_.decode_steps.load();
  s.decode_rows = counters_.decode_rows.load();
  s.prefill_chunks = counters_.prefill_chunks.load();
  s.prompt_tokens = counters_.prompt_tokens.load();
  s.tokens_generated = counters_.tokens_generated.load();
  s.turns_finished = counters_.turns_finished.load();
  s.jobs_failed = counters_.jobs_failed.load();
  for (const std::atomic<int64_t>& n : batch_size_counts_) {
    s.batch_size_counts.push_back(n.load());
  }
  const int64_t not_started = counters_.not_started.load();
  absl::MutexLock lock(&mu_);
  s.running = std::max<int64_t>(0, active_ - not_started);
  s.waiting = static_cast<int64_t>(inbox_.size()) +
              std::min<int64_t>(not_started, active_);
  return s;
}

bool Scheduler::Admit() {
  std::deque<Job> inbox;
  bool stopping = false;
  {
    absl::MutexLock lock(&mu_);
    active_ = static_cast<int>(prefilling_.size() + decoding_.size());
    if (active_ == 0) {
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stopping_ || !inbox_.empty();
      };
      mu_.Await(absl::Condition(&ready));
    }
    inbox.swap(inbox_);
    stopping = stopping_;
    active_ += static_cast<int>(inbox.size());
  }
  for (Job& job : inbox) {
    absl::StatusOr<std::unique_ptr<Stream>> stream =
        MakeStream(std::move(job), *tokenizer_, engine_->config().vocab_size);
    if (stream.ok()) {
      (*stream)->tenant_index = TenantIndex((*stream)->tenant());
      prefilling_.push_back(*std::move(stream));
    } else {
      ++counters_.jobs_failed;
    }
  }
  return !stopping;
}

uint32_t Scheduler::TenantIndex(const std::string& tenant) {
  auto [it, inserted] =
      tenant_ids_.emplace(tenant, static_cast<uint32_t>(tenant_ids_.size()));
  if (inserted) tenant_last_chunk_.push_back(0);
  return it->second;
}

StepInput Scheduler::PlanInput() const {
  StepInput in;
  for (const auto& s : decoding_) {
    in.decoding.push_back(PlanRow{s->tenant_index, s->last_served, 0});
  }
  for (const auto& s : prefilling_) {
    in.prefilling.push_back(PlanRow{s->tenant_index, s->last_served,
                                    s->prompt().size() - s->prompt_fed});
  }
  in.tenant_last_chunk = tenant_last_chunk_;
  return in;
}

void Scheduler::MarkServed(const StepPlan& plan) {
  for (size_t k : plan.decode) decoding_[k]->last_served = ++served_;
  for (size_t k : plan.ride) prefilling_[k]->last_served = ++served_;
  if (plan.chunk > 0) {
    Stream& job = *prefilling_[plan.chunk_job];
    job.last_served = ++served_;
    tenant_last_chunk_[job.tenant_index] = step_;
  }
}

void Scheduler::Loop() {
  while (Admit()) {
    EndStopped();
    ++step_;
    const StepPlan plan = PlanStep(PlanInput(), limits_);
    MarkServed(plan);
    // The chunk's job is no row of the batch: it survives BatchStep (which
    // may renumber the lists).
    Stream* chunk_job =
        plan.chunk > 0 ? prefilling_[plan.chunk_job].get() : nullptr;
    if (!plan.decode.empty() || !plan.ride.empty()) {
      BatchStep(plan, chunk_job);  // with the chunk in the same engine call
    } else if (chunk_job != nullptr) {
      ChunkStep(chunk_job, plan.chunk);
    }
    int64_t not_started = 0;
    for (const auto& p : prefilling_) not_started += p->prompt_fed == 0;
    counters_.not_started = not_started;
  }
  FailAll(absl::UnavailableError("the server is shutting down"));
  absl::MutexLock lock(&mu_);
  active_ = 0;
}

void Scheduler::FailAll(const absl::Status& status) {
  for (auto& s : prefilling_) s->Fail(status);
  for (auto& s : decoding_) s->Fail(status);
  prefilling_.clear();
  decoding_.clear();
}

void Scheduler::EndStopped() {
  auto end_if_stopped = [this](std::unique_ptr<Stream>& s) {
    absl::Status status = s->Check();
    if (status.ok()) return false;
    s->Fail(status);
    ++counters_.jobs_failed;
    return true;
  };
  prefilling_.erase(
      std::remove_if(prefilling_.begin(), prefilling_.end(), end_if_stopped),
      prefilling_.end());
  decoding_.erase(
      std::remove_if(decoding_.begin(), decoding_.end(), end_if_stopped),
      decoding_.end());
}

void Scheduler::HandleLogits(std::unique_ptr<Stream>& stream,
                             absl::Span<const float> row, bool into_decoding) {
  if (!stream->OnLogits(row, counters_)) {
    stream.reset();
  } else if (into_decoding) {
    decoding_.push_back(std::move(stream));
  }
}

void Scheduler::BatchStep(const StepPlan& plan, Stream* chunk_job) {
  std::vector<std::unique_ptr<Stream>*> rows;
  std::vector<int32_t> tokens;
  for (size_t k : plan.decode) {
    rows.push_back(&decoding_[k]);
    tokens.push_back(decoding_[k]->next_token());
  }
  for (size_t k : plan.ride) {
    if (prefilling_[k]->prompt_fed == 0) prefilling_[k]->OnStarted();
    rows.push_back(&prefilling_[k]);
    tokens.push_back(prefilling_[k]->prompt()[prefilling_[k]->prompt_fed]);
  }
  if (rows.empty()) return;
  std::vector<engine::State*> states;
  for (auto* s : rows) states.push_back(&(*s)->state());
  // The chunk (no row of the batch: riders exclude its job) as one more
  // segment of the same call: one pass over the weights for the whole step.
  std::unique_ptr<Stream>* chunk = nullptr;
  if (chunk_job != nullptr && plan.chunk > 0) {
    auto it = std::find_if(
        prefilling_.begin(), prefilling_.end(),
        [chunk_job](const std::unique_ptr<Stream>& s) {
          return s.get() == chunk_job;
        });
    if (it != prefilling_.end()) chunk = &*it;
  }
  absl::StatusOr<engine::Logits> logits;
  if (chunk != nullptr) {
    Stream& c = **chunk;
    if (c.prompt_fed == 0) c.OnStarted();
    std::vector<int32_t> lengths(rows.size(), 1);
    lengths.push_back(static_cast<int32_t>(plan.chunk));
    tokens.insert(tokens.end(), c.prompt().begin() + c.prompt_fed,
                  c.prompt().begin() + c.prompt_fed + plan.chunk);
    states.push_back(&c.state());
    logits = engine_->ForwardSegments(tokens, lengths,
                                      absl::MakeConstSpan(states));
    ++counters_.prefill_chunks;
    counters_.prompt_tokens += static_cast<int64_t>(plan.chunk);
  } else {
    logits = engine_->ForwardBatch(tokens, absl::MakeConstSpan(states));
  }
  ++counters_.decode_steps;
  counters_.decode_rows += static_cast<int64_t>(rows.size());
  ++batch_size_counts_[std::min(rows.size(), batch_size_counts_.size() - 1)];
  if (!logits.ok()) {
    // As TGI does: a failed batch fails every job in it.
    LogError(
        absl::StrCat("batched forward failed: ", logits.status().ToString()));
    for (auto* s : rows) {
      (*s)->Fail(EngineError(logits.status()));
      ++counters_.jobs_failed;
      s->reset();
    }
    if (chunk != nullptr) {
      (*chunk)->Fail(EngineError(logits.status()));
      ++counters_.jobs_failed;
      chunk->reset();
    }
  } else {
    for (size_t j = 0; j < rows.size(); ++j) {
      std::unique_ptr<Stream>& s = *rows[j];
      // A row whose logits are not finite ends its own job only (its state
      // is discarded with it); the other rows are independent.
      if (absl::Status finite = logits->CheckRowFinite(static_cast<int>(j));
          !finite.ok()) {
        s->Fail(EngineError(finite));
        ++counters_.jobs_failed;
        s.reset();
        continue;
      }
      const bool riding = j >= plan.decode.size();
      if (riding) {
        ++counters_.prompt_tokens;
        if (++s->prompt_fed < s->prompt().size()) continue;
      }
      HandleLogits(s, logits->Row(static_cast<int>(j)),
                   /*into_decoding=*/riding);
    }
    if (chunk != nullptr) {
      // As ChunkStep: a non-finite chunk ends its job (its state, advanced
      // into out-of-range values, is thrown away with it).
      const int row = static_cast<int>(rows.size());
      std::unique_ptr<Stream>& s = *chunk;
      if (absl::Status finite = logits->CheckRowFinite(row); !finite.ok()) {
        s->Fail(EngineError(finite));
        ++counters_.jobs_failed;
        s.reset();
      } else {
        s->prompt_fed += plan.chunk;
        if (s->prompt_done()) {
          HandleLogits(s, logits->Row(row), /*into_decoding=*/true);
          s.reset();  // moved into decoding_, or ended
        }
      }
    }
  }
  decoding_.erase(std::remove(decoding_.begin(), decoding_.end(), nullptr),
                  decoding_.end());
  prefilling_.erase(
      std::remove(prefilling_.begin(), prefilling_.end(), nullptr),
      prefilling_.end());
}

void Scheduler::ChunkStep(Stream* job, size_t tokens) {
  auto it = std::find_if(
      prefilling_.begin(), prefilling_.end(),
      [job](const std::unique_ptr<Stream>& s) { return s.get() == job; });
  if (it == prefilling_.end() || tokens == 0) return;
  std::unique_ptr<Stream>& s = *it;  // stays in place (its age) unless done
  if (s->prompt_fed == 0) s->OnStarted();
  absl::Span<const int32_t> chunk(s->prompt().data() + s->prompt_fed, tokens);
  absl::StatusOr<engine::Logits> logits = engine_->Forward(chunk, s->state());
  ++counters_.prefill_chunks;
  counters_.prompt_tokens += static_cast<int64_t>(tokens);
  if (!logits.ok()) {
    if (!engine::IsNonFiniteLogits(logits.status())) {
      LogError(
          absl::StrCat("prompt forward failed: ", logits.status().ToString()));
    }
    s->Fail(EngineError(logits.status()));
    ++counters_.jobs_failed;
    prefilling_.erase(it);
    return;
  }
  s->prompt_fed += tokens;
  if (!s->prompt_done()) return;  // next chunk in a later step
  HandleLogits(s, logits->Row(0), /*into_decoding=*/true);  // moves it out
  prefilling_.erase(it);
}

}  // namespace rwkv::server
