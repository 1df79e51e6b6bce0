#include "server/app/detached_turn.h"

#include <utility>

namespace rwkv::server {

DetachedTurn::DetachedTurn(std::shared_ptr<TurnStream> stream,
                           std::unique_ptr<ReplyCacheKey> cache_key,
                           std::optional<Keep> keep, SessionManager* sessions,
                           std::unique_ptr<TenantThrottle::Ticket> ticket)
    : stream_(std::move(stream)),
      cache_key_(std::move(cache_key)),
      keep_(std::move(keep)),
      sessions_(sessions),
      ticket_(std::move(ticket)) {}

absl::Status DetachedTurn::Check() const {
  if (stream_->IsCancelled()) {
    return absl::CancelledError("the client cancelled the call");
  }
  return absl::OkStatus();
}

void DetachedTurn::OnPromptDone(const engine::State& state,
                                absl::Span<const float> logits) {
  if (cache_key_ != nullptr) cache_key_->InsertPrompt(state, logits);
}

void DetachedTurn::OnChunk(TurnChunk chunk) {
  if (ticket_ != nullptr) ticket_->Charge(chunk.token_ids.size());
  if (cache_key_ != nullptr) cache_key_->Add(chunk);
  if (keep_.has_value()) reply_ += chunk.text;
  stream_->OnChunk(std::move(chunk));
}

void DetachedTurn::OnComplete(engine::State final_state,
                              absl::Span<const float> logits, TurnChunk last) {
  if (ticket_ != nullptr) ticket_->Charge(last.token_ids.size());
  ticket_.reset();  // the tenant's turn slot is free before the end is told
  if (cache_key_ != nullptr) {
    cache_key_->Add(last);
    cache_key_->Insert(final_state, logits);
  }
  if (!keep_.has_value()) {
    stream_->OnChunk(std::move(last));
    stream_->OnFinish(absl::OkStatus());
    return;
  }
  reply_ += last.text;
  NewSession session = std::move(keep_->session);
  if (keep_->note) session.note = keep_->note(reply_, last);
  session.state = std::make_shared<const engine::State>(std::move(final_state));
  sessions_->Create(std::move(session),
                    [stream = stream_, last = std::move(last)](
                        absl::StatusOr<SessionInfo> kept) mutable {
                      if (kept.ok()) stream->OnChunk(std::move(last));
                      stream->OnFinish(kept.status());
                    });
}

void DetachedTurn::OnError(absl::Status status) {
  ticket_.reset();
  stream_->OnFinish(status);
}

}  // namespace rwkv::server
