#include "server/app/turn_controller.h"

#include <utility>

namespace rwkv::server {

TurnController::TurnController(SessionLease lease,
                               std::shared_ptr<TurnStream> stream,
                               engine::PrefixCache* cache,
                               std::vector<int32_t> cache_key,
                               std::unique_ptr<TenantThrottle::Ticket> ticket)
    : lease_(std::move(lease)),
      stream_(std::move(stream)),
      cache_(cache_key.empty() ? nullptr : cache),
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
  if (cache_ != nullptr) {
    cache_key_.insert(cache_key_.end(), chunk.token_ids.begin(),
                      chunk.token_ids.end());
  }
  stream_->OnChunk(std::move(chunk));
}

void TurnController::OnComplete(engine::State final_state,
                                absl::Span<const float> logits,
                                TurnChunk last) {
  if (ticket_ != nullptr) ticket_->Charge(last.token_ids.size());
  if (cache_ != nullptr) {
    cache_key_.insert(cache_key_.end(), last.token_ids.begin(),
                      last.token_ids.end());
    // Best effort: a full or too small cache just does not keep it. The
    // key holds exactly the tokens fed (an end-of-text token is not).
    (void)cache_->Insert(
        cache_key_, final_state,
        engine::Logits(1, static_cast<int>(logits.size()),
                       std::vector<float>(logits.begin(), logits.end())));
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
