#include "server/app/prefix_prefill.h"

#include <utility>

namespace rwkv::server {

void PrefixPrefill::Run(StatePtr base, std::vector<int32_t> tokens,
                        std::function<absl::Status()> check, Done done,
                        const std::string& tenant) const {
  if (base == nullptr && cache_ != nullptr) {
    return RunCached(
        std::make_shared<const std::vector<int32_t>>(std::move(tokens)),
        std::move(check), std::make_shared<Done>(std::move(done)), tenant);
  }
  engine::State start = base != nullptr ? base->Clone() : model_->NewState();
  Submit(
      std::move(start), std::move(tokens), std::move(check),
      [done = std::move(done)](absl::StatusOr<PrefillResult> r) mutable {
        if (!r.ok()) return done(r.status());
        done(Result{std::move(r->state), 0});
      },
      tenant);
}

void PrefixPrefill::RunCached(
    std::shared_ptr<const std::vector<int32_t>> tokens,
    std::function<absl::Status()> check, SharedDone done,
    const std::string& tenant) const {
  const int64_t n = static_cast<int64_t>(tokens->size());
  engine::PrefixAcquisition got =
      cache_->Acquire(*tokens, [this, tokens, check, done, n,
                                tenant](absl::StatusOr<engine::PrefixHit> hit) {
        if (hit.ok()) return (*done)(Result{std::move(hit->state), n});
        // The computing caller gave up (its client left): try again.
        if (absl::IsAborted(hit.status())) {
          return RunCached(tokens, check, done, tenant);
        }
        (*done)(hit.status());
      });
  switch (got.kind) {
    case engine::PrefixAcquisition::Kind::kHit:
      return (*done)(Result{std::move(got.hit.state), n});
    case engine::PrefixAcquisition::Kind::kJoined:
      return;
    case engine::PrefixAcquisition::Kind::kLead:
      break;
  }
  const size_t reused = got.base.has_value() ? got.base->prefix_len : 0;
  engine::State start =
      got.base.has_value() ? std::move(got.base->state) : model_->NewState();
  std::vector<int32_t> rest(tokens->begin() + reused, tokens->end());
  Submit(
      std::move(start), std::move(rest), std::move(check),
      [ticket = std::move(got.ticket), done,
       reused](absl::StatusOr<PrefillResult> r) mutable {
        if (!r.ok()) {
          // Give up the flight (waiters retry) rather than hand them this
          // caller's error (e.g. its client cancelled).
          ticket = engine::PrefixFlightTicket();
          return (*done)(r.status());
        }
        absl::StatusOr<engine::PrefixHit> hit = ticket.Finish(
            std::make_pair(std::move(r->state), std::move(r->logits)));
        if (!hit.ok()) return (*done)(hit.status());
        (*done)(Result{std::move(hit->state), static_cast<int64_t>(reused)});
      },
      tenant);
}

void PrefixPrefill::Submit(
    engine::State start, std::vector<int32_t> tokens,
    std::function<absl::Status()> check,
    absl::AnyInvocable<void(absl::StatusOr<PrefillResult>)> on_result,
    const std::string& tenant) const {
  // If the scheduler refuses the job, it destroys it with its callback: keep
  // the callback outside the job so the refusal can be reported.
  auto shared =
      std::make_shared<absl::AnyInvocable<void(absl::StatusOr<PrefillResult>)>>(
          std::move(on_result));
  PrefillJob job;
  job.state = std::move(start);
  job.prompt = std::move(tokens);
  job.check = std::move(check);
  job.tenant = tenant;
  job.done = [shared](absl::StatusOr<PrefillResult> r) {
    (*shared)(std::move(r));
  };
  if (absl::Status s = scheduler_->Submit(std::move(job)); !s.ok()) {
    (*shared)(s);
  }
}

}  // namespace rwkv::server
