#include "server/app/turn_controller.h"

#include <utility>

namespace rwkv::server {

TurnController::TurnController(SessionLease lease,
                               std::shared_ptr<TurnStream> stream,
                               std::unique_ptr<ReplyCacheKey> cache_key,
                               std::unique_ptr<TenantThrottle::Ticket> ticket)
    : lease_(std::move(lease)),
      stream_(std::move(stream)),
      cache_key_(std::move(cache_key)),
      ticket_(std::move(ticket)) {}

absl::Status TurnController::Check() const {
  if (stream_->IsCancelled()) {
    return absl::CancelledError("the client cancelled the call");
  }
  return lease_.Check();
}

void TurnController::OnChunk(TurnChunk chunk) {
  if (ticket_ != nullptr) ticket_->Charge(chunk.token_ids.size());
  if (cache_key_ != nullptr) cache_key_->Add(chunk);
  stream_->OnChunk(std::move(chunk));
}

void TurnController::OnComplete(engine::State final_state,
                                absl::Span<const float> logits,
                                TurnChunk last) {
  if (ticket_ != nullptr) ticket_->Charge(last.token_ids.size());
  if (cache_key_ != nullptr) {
    cache_key_->Add(last);
    cache_key_->Insert(final_state, logits);
  }
  // The tenant's turn slot is free before the client hears the end.
  lease_.Commit(std::make_shared<const engine::State>(std::move(final_state)),
                SessionLease::Initial::kKeep,
                [stream = stream_, last = std::move(last),
                 ticket = std::move(ticket_)](absl::Status stored) mutable {
                  ticket.reset();
                  if (stored.ok()) stream->OnChunk(std::move(last));
                  stream->OnFinish(stored);
                });
}

void TurnController::OnError(absl::Status status) {
  lease_.Abandon();
  ticket_.reset();
  stream_->OnFinish(status);
}

}  // namespace rwkv::server
