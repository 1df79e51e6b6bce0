#include "server/chat_service.h"

#include <cmath>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/state_file.h"
#include "engine/state_inspect.h"
#include "engine/state_ops.h"
#include "engine/utf8.h"
#include "server/generate_reactor.h"
#include "server/status_util.h"

namespace rwkv::server {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;

// Bytes of text allowed per prompt token before tokenizing (a cheap bound
// that keeps tokenization time in check).
constexpr size_t kMaxBytesPerToken = 64;
// Largest state file accepted (RWKV-4 14B fp32 states are ~20 MB).
constexpr size_t kMaxStateFileBytes = size_t{256} << 20;

ServerUnaryReactor* Done(CallbackServerContext* ctx,
                         const absl::Status& status) {
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

int64_t ToMillis(absl::Time t) { return absl::ToUnixMillis(t); }

void FillInfo(const SessionSnapshot& s, rwkv::v1::SessionInfo* info) {
  info->set_session_id(s.id);
  info->set_token_count(s.token_count);
  info->set_created_at_ms(ToMillis(s.created));
  info->set_last_used_at_ms(ToMillis(s.last_used));
  info->set_expires_at_ms(ToMillis(s.expires()));
  info->set_ttl_seconds(absl::ToInt64Seconds(s.ttl));
  info->set_state_bytes(s.state_bytes);
  info->set_busy(s.busy);
  info->set_prefix_cached_tokens(s.prefix_cached_tokens);
}

// Ends a call that answers with the session's info, or with the error.
ServerUnaryReactor* DoneWithInfo(CallbackServerContext* ctx,
                                 const absl::StatusOr<SessionSnapshot>& snap,
                                 rwkv::v1::SessionInfo* resp) {
  if (snap.ok()) FillInfo(*snap, resp);
  return Done(ctx, snap.status());
}

absl::Status CheckText(const std::string& text, const char* field,
                       bool allow_empty) {
  if (!allow_empty && text.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  if (!engine::IsValidUtf8(text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is not valid UTF-8 (first bad byte at offset ",
                     engine::ValidUtf8PrefixLength(text), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckSessionId(const std::string& id, const char* field) {
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  if (absl::Status s = StateManager::ValidateId(id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
  }
  return absl::OkStatus();
}

// Validates a request's ttl_seconds up front (0: the default; at most the
// server's --max-ttl) and returns it as the Duration the StateManager takes.
absl::Status ResolveTtl(const StateManager& sessions, int64_t seconds,
                        absl::Duration* ttl) {
  if (seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl_seconds must be >= 0, got ", seconds));
  }
  if (seconds > int64_t{10} * 365 * 24 * 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl_seconds is too large: ", seconds));
  }
  absl::Duration effective;
  if (absl::Status s = sessions.ResolveTtl(absl::Seconds(seconds), &effective);
      !s.ok()) {
    return s;
  }
  *ttl = absl::Seconds(seconds);
  return absl::OkStatus();
}

absl::StatusOr<engine::SamplingParams> ToSampling(
    const rwkv::v1::SamplingParams& p) {
  engine::SamplingParams out;
  out.temperature = p.has_temperature() ? p.temperature() : 1.0f;
  out.top_p = p.has_top_p() ? p.top_p() : 0.85f;
  out.top_k = p.has_top_k() ? p.top_k() : 0;
  out.presence_penalty = p.has_presence_penalty() ? p.presence_penalty() : 0;
  out.frequency_penalty = p.has_frequency_penalty() ? p.frequency_penalty() : 0;
  out.penalty_decay = p.has_penalty_decay() ? p.penalty_decay() : 0.996f;
  out.seed = p.has_seed() ? p.seed() : 0;
  if (absl::Status s = engine::ValidateSamplingParams(out); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", s.message()));
  }
  return out;
}

// State parsing errors are the caller's bad bytes unless they say the state
// belongs to another model (FAILED_PRECONDITION, see chat.proto).
absl::Status StateBytesError(const absl::Status& s) {
  if (absl::IsFailedPrecondition(s)) return s;
  return absl::InvalidArgumentError(
      absl::StrCat("bad state bytes: ", s.message()));
}

}  // namespace

ChatService::ChatService(const engine::Engine* engine,
                         const engine::Tokenizer* tokenizer,
                         StateManager* sessions, Scheduler* scheduler,
                         engine::PrefixCache* prefix_cache,
                         ChatServiceOptions options)
    : engine_(engine),
      tokenizer_(tokenizer),
      sessions_(sessions),
      scheduler_(scheduler),
      prefix_cache_(prefix_cache),
      options_(std::move(options)),
      fresh_state_(std::make_shared<const engine::State>(engine->NewState())) {}

std::string ChatService::FormatChat(const std::string& message) const {
  std::string msg = absl::StrReplaceAll(message, {{"\r\n", "\n"}});
  while (msg.find("\n\n") != std::string::npos) {
    msg = absl::StrReplaceAll(msg, {{"\n\n", "\n"}});
  }
  return absl::StrReplaceAll(options_.chat_template, {{"{message}", msg}});
}

absl::Status ChatService::CheckPromptBytes(const std::string& text,
                                           const char* field) const {
  const size_t max_bytes =
      static_cast<size_t>(options_.max_prompt_tokens) * kMaxBytesPerToken;
  if (text.size() > max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is too long: ", text.size(), " bytes (limit ",
                     max_bytes, ")"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<int32_t>> ChatService::TokenizePrompt(
    const std::string& text, const char* field) const {
  if (absl::Status s = CheckPromptBytes(text, field); !s.ok()) return s;
  absl::StatusOr<std::vector<int32_t>> tokens = tokenizer_->Encode(text);
  if (!tokens.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, ": ", tokens.status().message()));
  }
  if (tokens->empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " has no tokens"));
  }
  if (static_cast<int64_t>(tokens->size()) > options_.max_prompt_tokens) {
    return absl::InvalidArgumentError(
        absl::StrCat(field, " is too long: ", tokens->size(), " tokens (limit ",
                     options_.max_prompt_tokens, ", --max-prompt-tokens)"));
  }
  for (int32_t t : *tokens) {
    if (t < 0 || t >= engine_->config().vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          field, ": token ", t, " is outside the model's vocabulary"));
    }
  }
  return tokens;
}

// ------------------------------------------------------------- sessions

ServerUnaryReactor* ChatService::CreateSession(
    CallbackServerContext* ctx, const rwkv::v1::CreateSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  absl::Duration ttl;
  if (absl::Status s = ResolveTtl(*sessions_, req->ttl_seconds(), &ttl);
      !s.ok()) {
    return Done(ctx, s);
  }
  if (absl::Status s = CheckText(req->prefix(), "prefix", true); !s.ok()) {
    return Done(ctx, s);
  }
  if (req->initial_state().size() > kMaxStateFileBytes) {
    return Done(ctx, absl::InvalidArgumentError("initial_state is too large"));
  }
  std::shared_ptr<const engine::State> named;
  if (!req->initial_state_name().empty()) {
    auto it = options_.initial_states.find(req->initial_state_name());
    if (it == options_.initial_states.end()) {
      std::string known;
      for (const auto& [name, state] : options_.initial_states) {
        absl::StrAppend(&known, known.empty() ? "" : ", ", name);
      }
      return Done(ctx, absl::NotFoundError(absl::StrCat(
                           "no server initial state named '",
                           engine::SanitizeUtf8(req->initial_state_name()),
                           "' (known: ", known.empty() ? "none" : known, ")")));
    }
    named = it->second;
  }
  if (absl::Status s = sessions_->CheckCanCreate(req->session_id()); !s.ok()) {
    return Done(ctx, s);
  }
  std::vector<int32_t> prefix_tokens;
  if (!req->prefix().empty()) {
    absl::StatusOr<std::vector<int32_t>> t =
        TokenizePrompt(req->prefix(), "prefix");
    if (!t.ok()) return Done(ctx, t.status());
    prefix_tokens = *std::move(t);
  }

  // Plain sessions need no engine work.
  if (req->initial_state().empty() && prefix_tokens.empty()) {
    std::shared_ptr<const engine::State> initial =
        named != nullptr ? named : fresh_state_;
    NewSession ns;
    ns.id = req->session_id();
    ns.state = initial->Clone();
    ns.initial = initial;
    ns.initial_shared = true;
    ns.ttl = ttl;
    absl::StatusOr<SessionSnapshot> snap = sessions_->Create(std::move(ns));
    return DoneWithInfo(ctx, snap, resp);
  }

  // Otherwise: parse the state on the engine thread, then feed the prefix
  // (reusing the shared-prefix cache when starting fresh) in chunks like any
  // prompt, so a long prefix never freezes running streams.
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  // Creates the session and ends the call; runs on the scheduler thread.
  auto finish = [this, reactor, resp, id = req->session_id(), ttl](
                    absl::StatusOr<engine::State> state, int64_t reused) {
    absl::Status status = state.status();
    if (status.ok()) {
      NewSession ns;
      ns.id = id;
      ns.state = *std::move(state);
      ns.ttl = ttl;
      ns.prefix_cached_tokens = reused;
      absl::StatusOr<SessionSnapshot> snap = sessions_->Create(std::move(ns));
      if (snap.ok()) FillInfo(*snap, resp);
      status = snap.status();
    }
    reactor->Finish(ToGrpcStatus(status));
  };
  auto task = [this, finish, bytes = req->initial_state(), named,
               tokens =
                   std::move(prefix_tokens)](engine::Engine& engine) mutable {
    const bool fresh = bytes.empty() && named == nullptr;
    engine::State base;
    if (!bytes.empty()) {
      absl::StatusOr<engine::State> parsed =
          engine::ParseState(std::move(bytes), "initial_state", engine);
      if (!parsed.ok()) return finish(StateBytesError(parsed.status()), 0);
      base = *std::move(parsed);
    } else if (named != nullptr) {
      base = named->Clone();
    } else {
      base = engine.NewState();
    }
    if (tokens.empty()) return finish(std::move(base), 0);
    size_t reused = 0;
    engine::PrefixCache* cache = fresh ? prefix_cache_ : nullptr;
    if (cache != nullptr) {
      if (std::optional<engine::PrefixHit> hit = cache->Lookup(tokens)) {
        reused = hit->prefix_len;
        base = std::move(hit->state);
      }
    }
    if (reused == tokens.size()) {
      return finish(std::move(base), static_cast<int64_t>(reused));
    }
    Turn job;
    job.lease.state = std::move(base);
    job.prompt.assign(tokens.begin() + reused, tokens.end());
    job.max_tokens = 1;
    job.on_prefilled =
        [finish, cache, tokens,
         reused](absl::StatusOr<std::pair<engine::State, engine::Logits>> r) {
          if (!r.ok()) {
            return finish(r.status(), 0);
          }
          // Best effort: a full cache just does not store it.
          if (cache != nullptr)
            (void)cache->Insert(tokens, r->first, r->second);
          finish(std::move(r->first), static_cast<int64_t>(reused));
        };
    if (absl::Status s = scheduler_->Submit(std::move(job)); !s.ok()) {
      finish(s, 0);
    }
  };
  if (absl::Status s = scheduler_->RunOnEngineThread(std::move(task));
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
  }
  return reactor;
}

ServerUnaryReactor* ChatService::GetSession(
    CallbackServerContext* ctx, const rwkv::v1::GetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<SessionSnapshot> snap = sessions_->Get(req->session_id());
  return DoneWithInfo(ctx, snap, resp);
}

ServerUnaryReactor* ChatService::ListSessions(
    CallbackServerContext* ctx, const rwkv::v1::ListSessionsRequest* req,
    rwkv::v1::ListSessionsResponse* resp) {
  if (req->page_size() < 0 || req->page_size() > 1000) {
    return Done(ctx,
                absl::InvalidArgumentError(absl::StrCat(
                    "page_size must be in [0, 1000], got ", req->page_size())));
  }
  if (!req->page_token().empty()) {
    if (absl::Status s = StateManager::ValidateId(req->page_token()); !s.ok()) {
      return Done(ctx, absl::InvalidArgumentError("bad page_token"));
    }
  }
  SessionPage page = sessions_->List(req->page_size(), req->page_token());
  for (const SessionSnapshot& s : page.sessions) {
    FillInfo(s, resp->add_sessions());
  }
  resp->set_next_page_token(page.next_page_token);
  resp->set_total_sessions(page.total);
  return Done(ctx, absl::OkStatus());
}

ServerUnaryReactor* ChatService::DeleteSession(
    CallbackServerContext* ctx, const rwkv::v1::DeleteSessionRequest* req,
    rwkv::v1::DeleteSessionResponse* /*resp*/) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  return Done(ctx, sessions_->Delete(req->session_id()));
}

ServerUnaryReactor* ChatService::ResetSession(
    CallbackServerContext* ctx, const rwkv::v1::ResetSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<SessionSnapshot> snap = sessions_->Reset(req->session_id());
  return DoneWithInfo(ctx, snap, resp);
}

ServerUnaryReactor* ChatService::TouchSession(
    CallbackServerContext* ctx, const rwkv::v1::TouchSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::Duration ttl;
  if (absl::Status s = ResolveTtl(*sessions_, req->ttl_seconds(), &ttl);
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<SessionSnapshot> snap =
      sessions_->Touch(req->session_id(), ttl);
  return DoneWithInfo(ctx, snap, resp);
}

// ----------------------------------------------------------- generation

grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* ChatService::Generate(
    CallbackServerContext* /*ctx*/, const rwkv::v1::GenerateRequest* req) {
  TurnInput in;
  in.session_id = req->session_id();
  in.text = req->text();
  in.sampling = &req->sampling();
  in.max_tokens = req->max_tokens();
  in.stop.assign(req->stop().begin(), req->stop().end());
  in.ignore_eos = req->ignore_eos();
  return StartTurn(std::move(in));
}

grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* ChatService::Chat(
    CallbackServerContext* /*ctx*/, const rwkv::v1::ChatRequest* req) {
  TurnInput in;
  in.session_id = req->session_id();
  // The byte limit applies to the message as sent (before the template),
  // and is checked before anything scans it.
  absl::Status s = CheckPromptBytes(req->message(), "message");
  if (s.ok()) s = CheckText(req->message(), "message", false);
  if (!s.ok()) {
    auto* reactor = new GenerateReactor();
    reactor->FinishNow(ToGrpcStatus(s));
    return reactor;
  }
  in.text = FormatChat(req->message());
  in.sampling = &req->sampling();
  in.max_tokens = req->max_tokens();
  in.stop = options_.chat_stop;
  in.builtin_stops = in.stop.size();
  in.stop.insert(in.stop.end(), req->stop().begin(), req->stop().end());
  return StartTurn(std::move(in));
}

grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* ChatService::StartTurn(
    TurnInput in) {
  auto* reactor = new GenerateReactor();
  absl::Status status = [&]() -> absl::Status {
    if (absl::Status s = CheckSessionId(in.session_id, "session_id"); !s.ok()) {
      return s;
    }
    if (absl::Status s = CheckText(in.text, "text", false); !s.ok()) return s;
    absl::StatusOr<engine::SamplingParams> sampling = ToSampling(*in.sampling);
    if (!sampling.ok()) return sampling.status();
    if (in.max_tokens < 0 || in.max_tokens > options_.max_tokens_limit) {
      return absl::InvalidArgumentError(
          absl::StrCat("max_tokens must be in [0, ", options_.max_tokens_limit,
                       "] (0: the default), got ", in.max_tokens));
    }
    const int max_tokens =
        in.max_tokens == 0 ? options_.default_max_tokens : in.max_tokens;
    const size_t requested_stops = in.stop.size() - in.builtin_stops;
    if (static_cast<int64_t>(requested_stops) > options_.max_stop_strings) {
      return absl::InvalidArgumentError(
          absl::StrCat("at most ", options_.max_stop_strings,
                       " stop strings, got ", requested_stops));
    }
    for (const std::string& stop : in.stop) {
      if (static_cast<int>(stop.size()) > options_.max_stop_bytes) {
        return absl::InvalidArgumentError(
            absl::StrCat("a stop string is longer than ",
                         options_.max_stop_bytes, " bytes"));
      }
      if (absl::Status s = CheckText(stop, "stop", true); !s.ok()) return s;
    }
    absl::StatusOr<std::vector<int32_t>> prompt =
        TokenizePrompt(in.text, "text");
    if (!prompt.ok()) return prompt.status();

    absl::StatusOr<TurnLease> lease = sessions_->BeginTurn(in.session_id);
    if (!lease.ok()) return lease.status();
    Turn turn;
    turn.lease = *std::move(lease);
    turn.prompt = *std::move(prompt);
    turn.sampling = *sampling;
    turn.max_tokens = max_tokens;
    turn.stop = std::move(in.stop);
    turn.ignore_eos = in.ignore_eos;
    turn.sink = reactor->sink();
    return scheduler_->Submit(std::move(turn));
  }();
  if (!status.ok()) reactor->FinishNow(ToGrpcStatus(status));
  return reactor;
}

// ---------------------------------------------------------- state tools

ServerUnaryReactor* ChatService::ForkSession(
    CallbackServerContext* ctx, const rwkv::v1::ForkSessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s =
          CheckSessionId(req->source_session_id(), "source_session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::Duration ttl;
  if (absl::Status s = ResolveTtl(*sessions_, req->ttl_seconds(), &ttl);
      !s.ok()) {
    return Done(ctx, s);
  }
  if (absl::Status s = sessions_->CheckCanCreate(req->new_session_id());
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<engine::State> state =
      sessions_->CopyState(req->source_session_id());
  if (!state.ok()) return Done(ctx, state.status());
  NewSession ns;
  ns.id = req->new_session_id();
  ns.state = *std::move(state);
  ns.ttl = ttl;
  absl::StatusOr<SessionSnapshot> snap = sessions_->Create(std::move(ns));
  return DoneWithInfo(ctx, snap, resp);
}

ServerUnaryReactor* ChatService::BlendSessions(
    CallbackServerContext* ctx, const rwkv::v1::BlendSessionsRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s = CheckSessionId(req->session_a(), "session_a"); !s.ok()) {
    return Done(ctx, s);
  }
  if (absl::Status s = CheckSessionId(req->session_b(), "session_b"); !s.ok()) {
    return Done(ctx, s);
  }
  if (!std::isfinite(req->alpha()) || req->alpha() < 0 || req->alpha() > 1) {
    return Done(ctx, absl::InvalidArgumentError(absl::StrCat(
                         "alpha must be in [0, 1], got ", req->alpha())));
  }
  absl::Duration ttl;
  if (absl::Status s = ResolveTtl(*sessions_, req->ttl_seconds(), &ttl);
      !s.ok()) {
    return Done(ctx, s);
  }
  if (absl::Status s = sessions_->CheckCanCreate(req->new_session_id());
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<engine::State> a = sessions_->CopyState(req->session_a());
  if (!a.ok()) return Done(ctx, a.status());
  absl::StatusOr<engine::State> b = sessions_->CopyState(req->session_b());
  if (!b.ok()) return Done(ctx, b.status());
  absl::StatusOr<engine::State> blended =
      engine::BlendStates(*a, *b, req->alpha());
  if (!blended.ok()) return Done(ctx, blended.status());
  NewSession ns;
  ns.id = req->new_session_id();
  ns.state = *std::move(blended);
  ns.ttl = ttl;
  absl::StatusOr<SessionSnapshot> snap = sessions_->Create(std::move(ns));
  return DoneWithInfo(ctx, snap, resp);
}

ServerUnaryReactor* ChatService::DecaySession(
    CallbackServerContext* ctx, const rwkv::v1::DecaySessionRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  if (!std::isfinite(req->factor()) || req->factor() <= 0 ||
      req->factor() > 1) {
    return Done(ctx, absl::InvalidArgumentError(absl::StrCat(
                         "factor must be in (0, 1], got ", req->factor())));
  }
  // A read-modify-write of the state: hold the session like a turn, so a
  // turn that ends meanwhile cannot be overwritten (busy sessions get
  // FAILED_PRECONDITION, as for a second turn).
  absl::StatusOr<TurnLease> lease = sessions_->BeginTurn(req->session_id());
  if (!lease.ok()) return Done(ctx, lease.status());
  absl::StatusOr<engine::State> decayed =
      engine::DecayState(lease->state, req->factor());
  if (!decayed.ok()) {
    sessions_->AbandonTurn(*lease);
    return Done(ctx, decayed.status());
  }
  lease->state = *std::move(decayed);
  const std::string id = lease->session_id;
  if (absl::Status st = sessions_->CommitTurn(*std::move(lease)); !st.ok()) {
    return Done(ctx, st);
  }
  absl::StatusOr<SessionSnapshot> snap = sessions_->Get(id);
  return DoneWithInfo(ctx, snap, resp);
}

ServerUnaryReactor* ChatService::InspectSession(
    CallbackServerContext* ctx, const rwkv::v1::InspectSessionRequest* req,
    rwkv::v1::InspectSessionResponse* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<engine::State> state = sessions_->CopyState(req->session_id());
  if (!state.ok()) return Done(ctx, state.status());
  absl::StatusOr<engine::StateReport> report = engine::InspectState(*state);
  if (!report.ok()) return Done(ctx, report.status());
  resp->set_session_id(req->session_id());
  resp->set_architecture(std::string(engine::ArchitectureName(report->arch)));
  resp->set_token_count(report->token_count);
  resp->set_state_bytes(report->bytes);
  for (const engine::ComponentReport& c : report->components) {
    rwkv::v1::ComponentStats* out = resp->add_components();
    out->set_name(c.name);
    for (int64_t d : c.shape) out->add_shape(d);
    out->set_mean_abs(c.mean_abs);
    out->set_max_abs(c.max_abs);
    for (const engine::LayerStats& l : c.layers) {
      rwkv::v1::LayerStats* lo = out->add_layers();
      lo->set_mean_abs(l.mean_abs);
      lo->set_max_abs(l.max_abs);
      lo->set_max_log10_true(l.max_log10_true);
    }
  }
  resp->set_healthy(report->healthy);
  for (const std::string& p : report->problems) resp->add_problems(p);
  resp->set_report(engine::SanitizeUtf8(engine::FormatStateReport(*report)));
  return Done(ctx, absl::OkStatus());
}

ServerUnaryReactor* ChatService::SessionDistance(
    CallbackServerContext* ctx, const rwkv::v1::SessionDistanceRequest* req,
    rwkv::v1::SessionDistanceResponse* resp) {
  if (absl::Status s = CheckSessionId(req->session_a(), "session_a"); !s.ok()) {
    return Done(ctx, s);
  }
  if (absl::Status s = CheckSessionId(req->session_b(), "session_b"); !s.ok()) {
    return Done(ctx, s);
  }
  absl::StatusOr<engine::State> a = sessions_->CopyState(req->session_a());
  if (!a.ok()) return Done(ctx, a.status());
  absl::StatusOr<engine::State> b = sessions_->CopyState(req->session_b());
  if (!b.ok()) return Done(ctx, b.status());
  absl::StatusOr<engine::StateDistance> d = engine::DistanceBetween(*a, *b);
  if (!d.ok()) return Done(ctx, d.status());
  for (const auto& [name, l2] : d->components) {
    rwkv::v1::ComponentDistance* c = resp->add_components();
    c->set_name(name);
    c->set_l2(l2);
  }
  resp->set_total(d->total);
  return Done(ctx, absl::OkStatus());
}

ServerUnaryReactor* ChatService::ExportState(
    CallbackServerContext* ctx, const rwkv::v1::ExportStateRequest* req,
    rwkv::v1::ExportStateResponse* resp) {
  if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
      !s.ok()) {
    return Done(ctx, s);
  }
  engine::StateDtype dtype = engine::StateDtype::kFloat32;
  if (!req->dtype().empty()) {
    absl::StatusOr<engine::StateDtype> d =
        engine::ParseStateDtype(req->dtype());
    if (!d.ok()) {
      return Done(ctx, absl::InvalidArgumentError(absl::StrCat(
                           "dtype must be float32, float16 or bfloat16, got '",
                           engine::SanitizeUtf8(req->dtype()), "'")));
    }
    dtype = *d;
  }
  absl::StatusOr<engine::State> state = sessions_->CopyState(req->session_id());
  if (!state.ok()) return Done(ctx, state.status());
  absl::StatusOr<std::string> bytes = engine::SerializeState(*state, dtype);
  if (!bytes.ok()) return Done(ctx, bytes.status());
  resp->set_state(*std::move(bytes));
  resp->set_token_count(state->token_count());
  return Done(ctx, absl::OkStatus());
}

ServerUnaryReactor* ChatService::ImportState(
    CallbackServerContext* ctx, const rwkv::v1::ImportStateRequest* req,
    rwkv::v1::SessionInfo* resp) {
  if (!req->session_id().empty()) {
    if (absl::Status s = CheckSessionId(req->session_id(), "session_id");
        !s.ok()) {
      return Done(ctx, s);
    }
  }
  absl::Duration ttl;
  if (absl::Status s = ResolveTtl(*sessions_, req->ttl_seconds(), &ttl);
      !s.ok()) {
    return Done(ctx, s);
  }
  if (req->state().empty()) {
    return Done(ctx, absl::InvalidArgumentError("state is empty"));
  }
  if (req->state().size() > kMaxStateFileBytes) {
    return Done(ctx, absl::InvalidArgumentError("state is too large"));
  }
  const bool replace = req->replace() && !req->session_id().empty();
  if (!replace) {
    if (absl::Status s = sessions_->CheckCanCreate(req->session_id());
        !s.ok()) {
      return Done(ctx, s);
    }
  }
  ServerUnaryReactor* reactor = ctx->DefaultReactor();
  engine::LoadStateOptions load;
  load.skip_fingerprint_check = req->skip_fingerprint_check();
  auto task = [this, reactor, resp, id = req->session_id(),
               bytes = req->state(), load, ttl,
               replace](engine::Engine& engine) mutable {
    absl::Status status = [&]() -> absl::Status {
      absl::StatusOr<engine::State> state =
          engine::ParseState(std::move(bytes), "state", engine, load);
      if (!state.ok()) return StateBytesError(state.status());
      absl::StatusOr<SessionSnapshot> snap;
      if (replace && sessions_->Get(id).ok()) {
        snap = sessions_->ReplaceState(id, *std::move(state),
                                       StateManager::ReplaceInitial::kYes);
      } else {
        NewSession ns;
        ns.id = id;
        ns.state = *std::move(state);
        ns.ttl = ttl;
        snap = sessions_->Create(std::move(ns));
      }
      if (!snap.ok()) return snap.status();
      FillInfo(*snap, resp);
      return absl::OkStatus();
    }();
    reactor->Finish(ToGrpcStatus(status));
  };
  if (absl::Status s = scheduler_->RunOnEngineThread(std::move(task));
      !s.ok()) {
    reactor->Finish(ToGrpcStatus(s));
  }
  return reactor;
}

ServerUnaryReactor* ChatService::GetModelInfo(
    CallbackServerContext* ctx, const rwkv::v1::GetModelInfoRequest* /*req*/,
    rwkv::v1::ModelInfo* resp) {
  const engine::ModelConfig& c = engine_->config();
  resp->set_architecture(std::string(engine::ArchitectureName(c.arch)));
  resp->set_n_layer(c.n_layer);
  resp->set_n_embd(c.n_embd);
  resp->set_vocab_size(c.vocab_size);
  resp->set_n_head(c.n_head);
  resp->set_head_size(c.head_size);
  resp->set_n_params(c.n_params);
  resp->set_tokenizer(std::string(tokenizer_->name()));
  resp->set_state_bytes_per_session(c.state_bytes_fp32);
  resp->set_model_path(engine::SanitizeUtf8(options_.model_path));
  resp->set_fingerprint(engine::SanitizeUtf8(c.fingerprint));
  resp->set_device(options_.device);
  resp->set_dtype(options_.dtype);
  resp->set_chat_template(engine::SanitizeUtf8(options_.chat_template));
  for (const auto& [name, state] : options_.initial_states) {
    resp->add_initial_state_names(engine::SanitizeUtf8(name));
  }
  resp->set_max_batch(scheduler_->options().max_batch);
  resp->set_max_prompt_tokens(options_.max_prompt_tokens);
  const SchedulerStats stats = scheduler_->stats();
  resp->set_avg_batch_size(stats.avg_batch_size());
  resp->set_decode_steps(stats.decode_steps);
  resp->set_tokens_generated(stats.tokens_generated);
  return Done(ctx, absl::OkStatus());
}

}  // namespace rwkv::server
