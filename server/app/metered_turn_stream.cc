#include "server/app/metered_turn_stream.h"

#include <utility>

namespace rwkv::server {
namespace {

const char* ReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kNone:
      break;
  }
  return "error";
}

const char* ErrorName(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kCancelled:
    case absl::StatusCode::kDeadlineExceeded:
      return "cancelled";
    case absl::StatusCode::kAborted:
      return "aborted";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    default:
      return "error";
  }
}

}  // namespace

MeteredTurnStream::MeteredTurnStream(std::shared_ptr<TurnStream> inner,
                                     TurnMetrics* metrics, Front front,
                                     Clock clock)
    : inner_(std::move(inner)),
      metrics_(metrics),
      front_(front),
      clock_(std::move(clock)),
      start_(Now()) {}

void MeteredTurnStream::OnStarted() {
  metrics_->ObserveQueueTime(front_, Now() - start_);
  inner_->OnStarted();
}

void MeteredTurnStream::OnChunk(TurnChunk chunk) {
  const int tokens = static_cast<int>(chunk.token_ids.size());
  if (tokens > 0 || chunk.finish_reason != FinishReason::kNone) {
    const absl::Time now = Now();
    absl::MutexLock lock(&mu_);
    if (tokens > 0) {
      if (!last_token_.has_value()) {
        metrics_->ObserveTimeToFirstToken(front_, now - start_);
      } else {
        metrics_->ObserveInterToken(front_, now - *last_token_, tokens);
      }
      last_token_ = now;
    }
    if (chunk.finish_reason != FinishReason::kNone) last_ = chunk;
  }
  inner_->OnChunk(std::move(chunk));
}

void MeteredTurnStream::OnFinish(const absl::Status& status) {
  TurnOutcome outcome;
  outcome.e2e = Now() - start_;
  {
    absl::MutexLock lock(&mu_);
    if (status.ok() && last_.has_value()) {
      outcome.reason = ReasonName(last_->finish_reason);
      outcome.prompt_tokens = last_->prompt_tokens;
      outcome.cached_tokens = last_->cached_tokens;
      outcome.generated_tokens = last_->generated_tokens;
    } else {
      outcome.reason = ErrorName(status);
    }
  }
  metrics_->ObserveFinished(front_, outcome);
  inner_->OnFinish(status);
}

}  // namespace rwkv::server
