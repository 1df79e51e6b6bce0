#include "server/app/turn_starter.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "server/app/detached_turn.h"
#include "server/app/field_error.h"
#include "server/app/metered_turn_stream.h"
#include "server/app/request_checks.h"
#include "server/app/turn_controller.h"

namespace rwkv::server {

std::shared_ptr<TurnStream> TurnStarter::Meter(
    Front front, std::shared_ptr<TurnStream> stream) const {
  if (d_.metrics == nullptr) return stream;
  return std::make_shared<MeteredTurnStream>(std::move(stream), d_.metrics,
                                             front);
}

void TurnStarter::StartSessionTurn(const Caller& caller, TurnRequest request,
                                   std::shared_ptr<TurnStream> stream) {
  stream = Meter(request.front, std::move(stream));
  if (absl::Status s = SubmitSessionTurn(caller, request, stream); !s.ok()) {
    stream->OnFinish(s);
  }
}

void TurnStarter::StartDetachedTurn(const Caller& caller,
                                    DetachedTurnRequest request,
                                    std::shared_ptr<TurnStream> stream) {
  stream = Meter(request.turn.front, std::move(stream));
  if (absl::Status s = SubmitDetachedTurn(caller, request, stream); !s.ok()) {
    stream->OnFinish(s);
  }
}

absl::StatusOr<std::vector<int32_t>> TurnStarter::Prompt(
    const TurnRequest& r) const {
  if (r.chat) {
    if (!r.messages.empty()) return d_.renderer->Render(r.messages, "messages");
    const ChatMessage message{ChatMessage::Role::kUser, r.text, "message"};
    return d_.renderer->Render({message}, "message");
  }
  const std::string& field = r.text_field;
  // The byte limit applies before anything scans the text.
  if (absl::Status s = d_.prompts->CheckBytes(r.text, field); !s.ok()) {
    return WithField(std::move(s), field);
  }
  if (absl::Status s = CheckText(r.text, field, false); !s.ok()) return s;
  absl::StatusOr<std::vector<int32_t>> tokens =
      d_.prompts->Tokenize(r.text, field);
  if (!tokens.ok()) return WithField(tokens.status(), field);
  return tokens;
}

absl::StatusOr<GenerateJob> TurnStarter::Prepare(const TurnRequest& r) const {
  absl::StatusOr<engine::SamplingParams> sampling =
      ToSamplingParams(r.sampling);
  if (!sampling.ok()) return sampling.status();
  absl::StatusOr<int> max_tokens = ResolveMaxTokens(r.max_tokens, *d_.options);
  if (!max_tokens.ok()) return max_tokens.status();
  if (absl::Status s = CheckStops(r.stop, *d_.options); !s.ok()) return s;
  absl::StatusOr<std::vector<int32_t>> prompt = Prompt(r);
  if (!prompt.ok()) return prompt.status();
  GenerateJob job;
  job.prompt = *std::move(prompt);
  job.sampling = *sampling;
  job.max_tokens = *max_tokens;
  if (r.chat) job.stop = d_.chat_template->stops();
  job.stop.insert(job.stop.end(), r.stop.begin(), r.stop.end());
  job.ignore_eos = r.ignore_eos;
  return job;
}

void TurnStarter::StartFromCache(GenerateJob& job) const {
  if (d_.prefix_cache == nullptr || job.prompt.size() <= 1) return;
  std::optional<engine::PrefixHit> hit = d_.prefix_cache->Lookup(
      absl::MakeConstSpan(job.prompt.data(), job.prompt.size() - 1));
  if (!hit.has_value()) return;
  job.state = std::move(hit->state);
  job.cached_tokens = static_cast<int32_t>(hit->prefix_len);
  job.prompt.erase(job.prompt.begin(), job.prompt.begin() + hit->prefix_len);
}

absl::Status TurnStarter::SubmitSessionTurn(
    const Caller& caller, const TurnRequest& request,
    std::shared_ptr<TurnStream> stream) {
  if (absl::Status s = CheckSessionId(request.session_id, "session_id");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<GenerateJob> job = Prepare(request);
  if (!job.ok()) return job.status();
  absl::StatusOr<SessionLease> lease =
      d_.sessions->Lease(request.session_id, caller.access());
  if (!lease.ok()) return lease.status();
  // Quotas after the session check: another tenant's id stays NOT_FOUND.
  absl::StatusOr<std::unique_ptr<TenantThrottle::Ticket>> ticket =
      d_.throttle->AdmitTurn(caller, static_cast<int64_t>(job->prompt.size()));
  if (!ticket.ok()) return ticket.status();
  job->tenant = caller.tenant;
  // A fresh session's first turn may start from a cached prefix.
  if (lease->state() == d_.fresh_state) StartFromCache(*job);
  if (!job->state.valid()) job->state = lease->state()->Clone();
  job->sink = std::make_unique<TurnController>(
      *std::move(lease), std::move(stream), /*cache_key=*/nullptr,
      *std::move(ticket));
  return d_.scheduler->Submit(*std::move(job));
}

absl::Status TurnStarter::SubmitDetachedTurn(
    const Caller& caller, DetachedTurnRequest& request,
    std::shared_ptr<TurnStream> stream) {
  const TurnRequest& turn = request.turn;
  std::optional<DetachedTurn::Keep> keep;
  if (request.keep_as.has_value()) {
    const KeepAs& k = *request.keep_as;
    if (absl::Status s = CheckSessionId(k.session_id, "keep_as.session_id");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<absl::Duration> ttl =
        TtlFromSeconds(k.ttl_seconds, *d_.sessions);
    if (!ttl.ok()) return ttl.status();
    if (absl::Status s = d_.sessions->CheckCanCreate(
            k.session_id, caller.tenant, caller.session_quota());
        !s.ok()) {
      return s;
    }
    keep.emplace();
    keep->session.id = k.session_id;
    keep->session.owner = caller.tenant;
    keep->session.quota = caller.session_quota();
    keep->session.ttl = *ttl;
    keep->session.initial = d_.fresh_state;
    keep->session.initial_shared = true;
    keep->note = k.note;
  }
  absl::StatusOr<GenerateJob> job = Prepare(turn);
  if (!job.ok()) return job.status();
  std::unique_ptr<ReplyCacheKey> cache_key;
  if (!turn.session_id.empty()) {
    if (absl::Status s = CheckSessionId(turn.session_id, "session_id");
        !s.ok()) {
      return s;
    }
    absl::StatusOr<StatePtr> base =
        d_.sessions->ReadState(turn.session_id, caller.access());
    if (!base.ok()) return base.status();
    job->state = (*base)->Clone();
    // Usage counts what the base state holds as cached prompt tokens.
    job->cached_tokens = static_cast<int32_t>(std::min<int64_t>(
        (*base)->token_count(), std::numeric_limits<int32_t>::max() / 2));
  } else {
    if (d_.prefix_cache != nullptr) {
      cache_key = std::make_unique<ReplyCacheKey>(
          d_.prefix_cache, job->prompt, turn.chat ? d_.renderer : nullptr,
          &d_.prompts->tokenizer());
    }
    StartFromCache(*job);
    if (!job->state.valid()) job->state = d_.fresh_state->Clone();
  }
  absl::StatusOr<std::unique_ptr<TenantThrottle::Ticket>> ticket =
      d_.throttle->AdmitTurn(caller, static_cast<int64_t>(job->prompt.size()));
  if (!ticket.ok()) return ticket.status();
  job->tenant = caller.tenant;
  job->sink = std::make_unique<DetachedTurn>(
      std::move(stream), std::move(cache_key), std::move(keep), d_.sessions,
      *std::move(ticket));
  return d_.scheduler->Submit(*std::move(job));
}

}  // namespace rwkv::server
