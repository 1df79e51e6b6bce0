#include "server/scheduler.h"

#include <algorithm>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "engine/sampler.h"
#include "engine/stream_decoder.h"
#include "server/stop_matcher.h"

namespace rwkv::server {

using common::LogError;
using common::LogWarning;

struct Scheduler::Stream {
  Stream(Turn t, engine::Sampler sampler_in, const engine::Tokenizer& tok)
      : turn(std::move(t)),
        sampler(std::move(sampler_in)),
        decoder(tok),
        stops(turn.stop) {}

  Turn turn;
  engine::Sampler sampler;
  engine::StreamDecoder decoder;
  StopMatcher stops;
  size_t prompt_fed = 0;
  // A token sampled and sent but not yet fed into the state.
  std::optional<int32_t> pending;
  // Finish once `pending` has been fed.
  FinishReason finish_after_feed = FinishReason::kNone;
  int generated = 0;
  // What this step produced, sent by Emit().
  std::string out_text;
  std::vector<int32_t> out_ids;
};

Scheduler::Scheduler(engine::Engine* engine, const engine::Tokenizer* tokenizer,
                     StateManager* sessions, SchedulerOptions options)
    : engine_(engine),
      tokenizer_(tokenizer),
      sessions_(sessions),
      options_(options) {
  thread_ = std::thread([this] { Loop(); });
}

Scheduler::~Scheduler() { Stop(); }

absl::Status Scheduler::Submit(Turn turn) {
  {
    absl::MutexLock lock(&mu_);
    if (!stopping_ &&
        active_ + static_cast<int>(inbox_.size()) < options_.max_turns) {
      inbox_.push_back(std::move(turn));
      return absl::OkStatus();
    }
  }
  sessions_->AbandonTurn(turn.lease);
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  return absl::ResourceExhaustedError(
      absl::StrCat("the scheduler queue is full (", options_.max_turns,
                   " turns queued or running); retry later"));
}

absl::Status Scheduler::RunOnEngineThread(
    std::function<void(engine::Engine&)> task) {
  absl::MutexLock lock(&mu_);
  if (stopping_) return absl::UnavailableError("the server is shutting down");
  tasks_.push_back(std::move(task));
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
  s.decode_steps = decode_steps_.load();
  s.decode_rows = decode_rows_.load();
  s.prefill_chunks = prefill_chunks_.load();
  s.prompt_tokens = prompt_tokens_.load();
  s.tokens_generated = tokens_generated_.load();
  s.turns_finished = turns_finished_.load();
  s.turns_cancelled = turns_cancelled_.load();
  return s;
}

void Scheduler::SetActiveCount() {
  absl::MutexLock lock(&mu_);
  active_ = static_cast<int>(prefilling_.size() + decoding_.size());
}

void Scheduler::Loop() {
  for (;;) {
    std::deque<Turn> inbox;
    std::deque<std::function<void(engine::Engine&)>> tasks;
    bool stopping = false;
    {
      absl::MutexLock lock(&mu_);
      if (active_ == 0) {
        auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
          return stopping_ || !inbox_.empty() || !tasks_.empty();
        };
        mu_.Await(absl::Condition(&ready));
      }
      inbox.swap(inbox_);
      tasks.swap(tasks_);
      stopping = stopping_;
      active_ += static_cast<int>(inbox.size());
    }
    for (auto& task : tasks) task(*engine_);
    for (Turn& turn : inbox) {
      absl::StatusOr<engine::Sampler> sampler =
          engine::Sampler::Create(turn.sampling, engine_->config().vocab_size);
      if (!sampler.ok()) {
        sessions_->AbandonTurn(turn.lease);
        if (turn.on_prefilled) {
          turn.on_prefilled(sampler.status());
        } else {
          turn.sink->OnFinish(sampler.status());
        }
        continue;
      }
      prefilling_.push_back(std::make_unique<Stream>(
          std::move(turn), *std::move(sampler), *tokenizer_));
    }
    if (stopping) break;
    DropCancelled();
    DecodeStep();
    PrefillStep();
    SetActiveCount();
  }
  const absl::Status unavailable =
      absl::UnavailableError("the server is shutting down");
  while (!prefilling_.empty()) {
    std::unique_ptr<Stream> s = std::move(prefilling_.front());
    prefilling_.pop_front();
    Fail(std::move(s), unavailable);
  }
  for (auto& s : decoding_) Fail(std::move(s), unavailable);
  decoding_.clear();
  SetActiveCount();
}

void Scheduler::DropCancelled() {
  const absl::Status cancelled =
      absl::CancelledError("the client cancelled the call");
  for (auto it = prefilling_.begin(); it != prefilling_.end();) {
    if ((*it)->turn.sink != nullptr && (*it)->turn.sink->IsCancelled()) {
      Fail(std::move(*it), cancelled);
      it = prefilling_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto& s : decoding_) {
    if (s->turn.sink->IsCancelled()) Fail(std::move(s), cancelled);
  }
  decoding_.erase(std::remove(decoding_.begin(), decoding_.end(), nullptr),
                  decoding_.end());
}

void Scheduler::DecodeStep() {
  // Rows: every decoding turn (round robin beyond max_batch), then one prompt
  // token of each waiting turn except the oldest, which gets a sequence-mode
  // chunk in PrefillStep(). On the fp32 CPU path the engine computes every
  // row bit-identically to a single step or a sequence (the e2e tests check
  // batched == alone token for token), so the path a token takes is
  // invisible. Other devices/dtypes may round differently per path.
  const size_t max_batch = static_cast<size_t>(std::max(1, options_.max_batch));
  const size_t n = decoding_.size();
  const size_t decode_rows = std::min(n, max_batch);
  if (round_robin_ >= n) round_robin_ = 0;
  std::vector<Stream*> rows;
  std::vector<int32_t> tokens;
  std::vector<engine::State*> states;
  std::vector<size_t> decode_index;
  for (size_t i = 0; i < decode_rows; ++i) {
    const size_t k = (round_robin_ + i) % n;
    decode_index.push_back(k);
    rows.push_back(decoding_[k].get());
    tokens.push_back(*decoding_[k]->pending);
  }
  if (n > 0) round_robin_ = (round_robin_ + decode_rows) % n;
  for (size_t i = 1; i < prefilling_.size() && rows.size() < max_batch; ++i) {
    Stream* s = prefilling_[i].get();
    rows.push_back(s);
    tokens.push_back(s->turn.prompt[s->prompt_fed]);
  }
  if (rows.empty()) return;
  for (Stream* s : rows) states.push_back(&s->turn.lease.state);

  absl::StatusOr<engine::Logits> logits =
      engine_->ForwardBatch(tokens, absl::MakeConstSpan(states));
  decode_steps_.fetch_add(1);
  decode_rows_.fetch_add(static_cast<int64_t>(rows.size()));
  if (!logits.ok()) {
    // As TGI does: a failed batch fails every turn in it.
    LogError(
        absl::StrCat("batched forward failed: ", logits.status().ToString()));
    const absl::Status err = absl::InternalError(
        absl::StrCat("engine error: ", logits.status().message()));
    for (size_t k : decode_index) Fail(std::move(decoding_[k]), err);
    for (size_t i = 1, j = decode_rows; j < rows.size(); ++i, ++j) {
      Fail(std::move(prefilling_[i]), err);
    }
  } else {
    for (size_t j = 0; j < decode_rows; ++j) {
      std::unique_ptr<Stream>& s = decoding_[decode_index[j]];
      s->pending.reset();
      if (s->finish_after_feed != FinishReason::kNone) {
        Complete(std::move(s));
        continue;
      }
      if (absl::Status st = HandleLogits(*s, logits->Row(static_cast<int>(j)));
          !st.ok()) {
        Fail(std::move(s), st);
        continue;
      }
      if (!s->pending.has_value()) {  // end of text
        Complete(std::move(s));
        continue;
      }
      Emit(*s);
    }
    // Prompt rows: rows[decode_rows..] are prefilling_[1..] in order.
    size_t j = decode_rows;
    for (size_t i = 1; i < prefilling_.size() && j < rows.size(); ++i, ++j) {
      std::unique_ptr<Stream>& s = prefilling_[i];
      prompt_tokens_.fetch_add(1);
      if (++s->prompt_fed < s->turn.prompt.size()) continue;
      if (s->turn.on_prefilled) {
        const absl::Span<const float> row = logits->Row(static_cast<int>(j));
        FinishPrefill(
            std::move(s),
            engine::Logits(1, logits->vocab_size(),
                           std::vector<float>(row.begin(), row.end())));
        continue;
      }
      if (absl::Status st = HandleLogits(*s, logits->Row(static_cast<int>(j)));
          !st.ok()) {
        Fail(std::move(s), st);
        continue;
      }
      if (!s->pending.has_value()) {
        Complete(std::move(s));
        continue;
      }
      Emit(*s);
      decoding_.push_back(std::move(s));
    }
  }
  decoding_.erase(std::remove(decoding_.begin(), decoding_.end(), nullptr),
                  decoding_.end());
  prefilling_.erase(
      std::remove(prefilling_.begin(), prefilling_.end(), nullptr),
      prefilling_.end());
}

void Scheduler::PrefillStep() {
  if (prefilling_.empty()) return;
  std::unique_ptr<Stream> s = std::move(prefilling_.front());
  prefilling_.pop_front();
  const std::vector<int32_t>& prompt = s->turn.prompt;
  const size_t n =
      std::min(prompt.size() - s->prompt_fed,
               static_cast<size_t>(std::max(1, options_.chunk_size)));
  absl::Span<const int32_t> chunk(prompt.data() + s->prompt_fed, n);
  absl::StatusOr<engine::Logits> logits =
      engine_->Forward(chunk, s->turn.lease.state);
  prefill_chunks_.fetch_add(1);
  prompt_tokens_.fetch_add(static_cast<int64_t>(n));
  if (!logits.ok()) {
    LogError(
        absl::StrCat("prompt forward failed: ", logits.status().ToString()));
    Fail(std::move(s), absl::InternalError(absl::StrCat(
                           "engine error: ", logits.status().message())));
    return;
  }
  s->prompt_fed += n;
  if (s->prompt_fed < prompt.size()) {
    prefilling_.push_front(std::move(s));  // next chunk next step
    return;
  }
  if (s->turn.on_prefilled) {
    FinishPrefill(std::move(s), *std::move(logits));
    return;
  }
  if (absl::Status st = HandleLogits(*s, logits->Row(0)); !st.ok()) {
    Fail(std::move(s), st);
    return;
  }
  if (!s->pending.has_value()) {
    Complete(std::move(s));
    return;
  }
  Emit(*s);
  decoding_.push_back(std::move(s));
}

absl::Status Scheduler::HandleLogits(Stream& s, absl::Span<const float> row) {
  absl::StatusOr<int32_t> token = s.sampler.Sample(row);
  if (!token.ok()) {
    return absl::InternalError(
        absl::StrCat("sampling failed: ", token.status().message()));
  }
  const std::optional<int32_t> eos = tokenizer_->eos_token();
  if (!s.turn.ignore_eos && eos.has_value() && *token == *eos) {
    s.finish_after_feed = FinishReason::kEos;  // nothing pending: ends now
    return absl::OkStatus();
  }
  s.sampler.Accept(*token);
  ++s.generated;
  tokens_generated_.fetch_add(1);
  std::string piece;
  if (*token < tokenizer_->vocab_size()) {
    absl::StatusOr<std::string> decoded = s.decoder.Push(*token);
    if (decoded.ok()) piece = *std::move(decoded);
  }
  // Ids the tokenizer cannot decode (model padding rows) add no text.
  s.out_text += s.stops.Push(piece);
  s.out_ids.push_back(*token);
  s.pending = *token;
  if (s.stops.stopped()) {
    s.finish_after_feed = FinishReason::kStop;
  } else if (s.generated >= s.turn.max_tokens) {
    s.out_text += s.stops.Push(s.decoder.Flush());
    if (!s.stops.stopped()) s.out_text += s.stops.Flush();
    s.finish_after_feed =
        s.stops.stopped() ? FinishReason::kStop : FinishReason::kLength;
  }
  return absl::OkStatus();
}

void Scheduler::Emit(Stream& s) {
  if (s.out_text.empty() && s.out_ids.empty()) return;
  TurnChunk chunk;
  chunk.text = std::move(s.out_text);
  chunk.token_ids = std::move(s.out_ids);
  chunk.token_count =
      s.turn.lease.state.token_count() + (s.pending.has_value() ? 1 : 0);
  s.out_text.clear();
  s.out_ids.clear();
  s.turn.sink->OnChunk(std::move(chunk));
}

void Scheduler::Complete(std::unique_ptr<Stream> s) {
  FinishReason reason = s->finish_after_feed;
  if (reason == FinishReason::kEos) {
    // Whatever the decoder and the stop matcher still hold is sent.
    s->out_text += s->stops.Push(s->decoder.Flush());
    s->out_text += s->stops.Flush();
  }
  TurnChunk chunk;
  chunk.text = std::move(s->out_text);
  chunk.token_ids = std::move(s->out_ids);
  chunk.finish_reason = reason;
  chunk.prompt_tokens = static_cast<int32_t>(s->turn.prompt.size());
  chunk.generated_tokens = s->generated;
  chunk.token_count = s->turn.lease.state.token_count();
  std::shared_ptr<TurnSink> sink = std::move(s->turn.sink);
  if (absl::Status st = sessions_->CommitTurn(std::move(s->turn.lease));
      !st.ok()) {
    LogWarning(absl::StrCat("turn finished but not stored: ", st.message()));
  }
  turns_finished_.fetch_add(1);
  sink->OnChunk(std::move(chunk));
  sink->OnFinish(absl::OkStatus());
}

void Scheduler::FinishPrefill(std::unique_ptr<Stream> s,
                              engine::Logits logits) {
  PrefillDone done = std::move(s->turn.on_prefilled);
  done(std::make_pair(std::move(s->turn.lease.state), std::move(logits)));
}

void Scheduler::Fail(std::unique_ptr<Stream> s, const absl::Status& status) {
  if (s->turn.on_prefilled) {
    PrefillDone done = std::move(s->turn.on_prefilled);
    done(status);
    return;
  }
  sessions_->AbandonTurn(s->turn.lease);
  if (absl::IsCancelled(status)) turns_cancelled_.fetch_add(1);
  s->turn.sink->OnFinish(status);
}

}  // namespace rwkv::server
