#include "server/app/chat_app.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/state_file.h"
#include "server/app/request_checks.h"
#include "server/quote.h"

namespace rwkv::server {
namespace {

absl::Status CancelledByClient() {
  return absl::CancelledError("the client cancelled the call");
}

}  // namespace

ChatApp::ChatApp(std::shared_ptr<const engine::Model> model,
                 const engine::Tokenizer* tokenizer, SessionManager* sessions,
                 Scheduler* scheduler, engine::PrefixCache* prefix_cache,
                 AppOptions options, TurnMetrics* metrics)
    : model_(std::move(model)),
      sessions_(sessions),
      scheduler_(scheduler),
      prefix_cache_(prefix_cache),
      options_(std::move(options)),
      template_(options_.chat_template, options_.chat_stop,
                options_.system_template),
      prompts_(tokenizer, options_.max_prompt_tokens,
               model_->config().vocab_size),
      prefill_(model_.get(), scheduler, prefix_cache),
      fresh_state_(std::make_shared<const engine::State>(model_->NewState())),
      renderer_(&template_, &prompts_,
                std::max(options_.max_prompt_tokens,
                         options_.max_conversation_tokens)),
      throttle_(options_.clock),
      turns_(TurnStarter::Deps{&options_, &template_, &prompts_, &renderer_,
                               sessions_, scheduler_, prefix_cache_, metrics,
                               fresh_state_, &throttle_}) {}

// ------------------------------------------------------------- sessions

absl::StatusOr<absl::Duration> ChatApp::CheckNewSession(
    const Caller& caller, const std::string& id, absl::string_view id_field,
    int64_t ttl_seconds) {
  if (absl::Status s = CheckOptionalSessionId(id, id_field); !s.ok()) return s;
  absl::StatusOr<absl::Duration> ttl = TtlFromSeconds(ttl_seconds, *sessions_);
  if (!ttl.ok()) return ttl.status();
  if (absl::Status s =
          sessions_->CheckCanCreate(id, caller.tenant, caller.session_quota());
      !s.ok()) {
    return s;
  }
  return ttl;
}

NewSession ChatApp::NewSessionFor(const Caller& caller, std::string id,
                                  absl::Duration ttl) {
  NewSession session;
  session.id = std::move(id);
  session.owner = caller.tenant;
  session.quota = caller.session_quota();
  session.ttl = ttl;
  return session;
}

absl::StatusOr<ChatApp::Base> ChatApp::ResolveBase(
    CreateSessionRequest& request) const {
  if (!request.initial_state.empty()) {
    engine::LoadStateOptions load;
    load.allow_unhealthy = request.allow_unhealthy;
    absl::StatusOr<engine::State> parsed =
        engine::ParseState(std::exchange(request.initial_state, {}),
                           "initial_state", *model_, load);
    if (!parsed.ok()) return StateBytesError(parsed.status());
    return Base{std::make_shared<const engine::State>(*std::move(parsed)),
                /*shared=*/false, /*fresh=*/false};
  }
  if (!request.initial_state_name.empty()) {
    auto it = options_.initial_states.find(request.initial_state_name);
    if (it == options_.initial_states.end()) {
      std::string known;
      for (const auto& [name, state] : options_.initial_states) {
        absl::StrAppend(&known, known.empty() ? "" : ", ", name);
      }
      return absl::NotFoundError(absl::StrCat(
          "no server initial state named ", Quote(request.initial_state_name),
          " (known: ", known.empty() ? "none" : known, ")"));
    }
    return Base{it->second, /*shared=*/true, /*fresh=*/false};
  }
  return Base{fresh_state_, /*shared=*/true, /*fresh=*/true};
}

void ChatApp::CreateSession(const Caller& caller, CreateSessionRequest request,
                            Callback<SessionInfo> done) {
  absl::StatusOr<absl::Duration> ttl = CheckNewSession(
      caller, request.session_id, "session_id", request.ttl_seconds);
  if (!ttl.ok()) return done(ttl.status());
  if (absl::Status s = CheckText(request.prefix, "prefix", true); !s.ok()) {
    return done(s);
  }
  if (static_cast<int64_t>(request.initial_state.size()) >
      options_.max_state_file_bytes) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        "initial_state is too large: ", request.initial_state.size(),
        " bytes (limit ", options_.max_state_file_bytes, ")")));
  }
  std::vector<int32_t> tokens;
  if (!request.prefix.empty()) {
    absl::StatusOr<std::vector<int32_t>> t =
        prompts_.Tokenize(request.prefix, "prefix");
    if (!t.ok()) return done(t.status());
    tokens = *std::move(t);
  }
  absl::StatusOr<Base> base = ResolveBase(request);
  if (!base.ok()) return done(base.status());

  NewSession session = NewSessionFor(caller, request.session_id, *ttl);
  if (tokens.empty()) {
    session.state = base->state;
    session.initial_shared = base->shared;
    return sessions_->Create(std::move(session), std::move(done));
  }
  // The prefix runs on the scheduler; the session is created when it is
  // done, unless the caller has gone meanwhile.
  std::function<bool()> cancelled = std::move(request.cancelled);
  auto check = [cancelled]() {
    return cancelled && cancelled() ? CancelledByClient() : absl::OkStatus();
  };
  prefill_.Run(
      base->fresh ? nullptr : base->state, std::move(tokens), check,
      [this, check, session = std::move(session), done = std::move(done)](
          absl::StatusOr<PrefixPrefill::Result> r) mutable {
        if (!r.ok()) return done(r.status());
        if (absl::Status s = check(); !s.ok()) return done(s);
        session.state =
            std::make_shared<const engine::State>(std::move(r->state));
        session.prefix_cached_tokens = r->cached_tokens;
        sessions_->Create(std::move(session), std::move(done));
      },
      caller.tenant);
}

absl::StatusOr<SessionInfo> ChatApp::GetSession(const Caller& caller,
                                                const std::string& id) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) return s;
  return sessions_->Get(id, caller.access());
}

absl::StatusOr<SessionPage> ChatApp::ListSessions(
    const Caller& caller, int32_t page_size, const std::string& page_token) {
  if (page_size < 0 || page_size > 1000) {
    return absl::InvalidArgumentError(
        absl::StrCat("page_size must be in [0, 1000], got ", page_size));
  }
  if (!page_token.empty() && !SessionManager::ValidateId(page_token).ok()) {
    return absl::InvalidArgumentError("bad page_token");
  }
  return sessions_->List(page_size, page_token, caller.access());
}

void ChatApp::DeleteSession(const Caller& caller, const std::string& id,
                            StatusCallback done) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) {
    return done(s);
  }
  sessions_->Delete(id, std::move(done), caller.access());
}

void ChatApp::CommitAndInfo(SessionLease lease, StatePtr state,
                            SessionLease::Initial initial,
                            Callback<SessionInfo> done) {
  const std::string id = lease.session_id();
  lease.Commit(std::move(state), initial,
               [this, id, done = std::move(done)](absl::Status s) mutable {
                 if (!s.ok()) return done(s);
                 done(sessions_->Get(id));
               });
}

void ChatApp::ResetSession(const Caller& caller, const std::string& id,
                           Callback<SessionInfo> done) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) {
    return done(s);
  }
  absl::StatusOr<SessionLease> lease = sessions_->Lease(id, caller.access());
  if (!lease.ok()) return done(lease.status());
  StatePtr initial = lease->initial();
  CommitAndInfo(*std::move(lease), std::move(initial),
                SessionLease::Initial::kKeep, std::move(done));
}

void ChatApp::TouchSession(const Caller& caller, const std::string& id,
                           int64_t ttl_seconds, Callback<SessionInfo> done) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) {
    return done(s);
  }
  absl::StatusOr<absl::Duration> ttl = TtlFromSeconds(ttl_seconds, *sessions_);
  if (!ttl.ok()) return done(ttl.status());
  sessions_->Touch(id, *ttl, std::move(done), caller.access());
}

// ----------------------------------------------------------- generation

void ChatApp::StartTurn(const Caller& caller, TurnRequest request,
                        std::shared_ptr<TurnStream> stream) {
  turns_.StartSessionTurn(caller, std::move(request), std::move(stream));
}

void ChatApp::StartDetachedTurn(const Caller& caller,
                                DetachedTurnRequest request,
                                std::shared_ptr<TurnStream> stream) {
  turns_.StartDetachedTurn(caller, std::move(request), std::move(stream));
}

// ---------------------------------------------------------- state tools

void ChatApp::ForkSession(const Caller& caller, ForkRequest request,
                          Callback<SessionInfo> done) {
  if (absl::Status s =
          CheckSessionId(request.source_session_id, "source_session_id");
      !s.ok()) {
    return done(s);
  }
  if (absl::Status s =
          CheckOptionalSessionId(request.new_session_id, "new_session_id");
      !s.ok()) {
    return done(s);
  }
  // The source before the new id's availability: another tenant's source
  // is NOT_FOUND whatever else.
  absl::StatusOr<StatePtr> state =
      sessions_->ReadState(request.source_session_id, caller.access());
  if (!state.ok()) return done(state.status());
  absl::StatusOr<absl::Duration> ttl = CheckNewSession(
      caller, request.new_session_id, "new_session_id", request.ttl_seconds);
  if (!ttl.ok()) return done(ttl.status());
  NewSession session = NewSessionFor(caller, request.new_session_id, *ttl);
  session.state = *std::move(state);  // shared: states are immutable
  sessions_->Create(std::move(session), std::move(done));
}

void ChatApp::BlendSessions(const Caller& caller, BlendRequest request,
                            Callback<SessionInfo> done) {
  if (absl::Status s = CheckSessionId(request.session_a, "session_a");
      !s.ok()) {
    return done(s);
  }
  if (absl::Status s = CheckSessionId(request.session_b, "session_b");
      !s.ok()) {
    return done(s);
  }
  if (!std::isfinite(request.alpha) || request.alpha < 0 || request.alpha > 1) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("alpha must be in [0, 1], got ", request.alpha)));
  }
  if (absl::Status s =
          CheckOptionalSessionId(request.new_session_id, "new_session_id");
      !s.ok()) {
    return done(s);
  }
  absl::StatusOr<StatePtr> a =
      sessions_->ReadState(request.session_a, caller.access());
  if (!a.ok()) return done(a.status());
  absl::StatusOr<StatePtr> b =
      sessions_->ReadState(request.session_b, caller.access());
  if (!b.ok()) return done(b.status());
  absl::StatusOr<absl::Duration> ttl = CheckNewSession(
      caller, request.new_session_id, "new_session_id", request.ttl_seconds);
  if (!ttl.ok()) return done(ttl.status());
  absl::StatusOr<engine::State> blended =
      engine::BlendStates(**a, **b, request.alpha);
  if (!blended.ok()) return done(blended.status());
  NewSession session = NewSessionFor(caller, request.new_session_id, *ttl);
  session.state = std::make_shared<const engine::State>(*std::move(blended));
  sessions_->Create(std::move(session), std::move(done));
}

void ChatApp::DecaySession(const Caller& caller, const std::string& id,
                           double factor, Callback<SessionInfo> done) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) {
    return done(s);
  }
  if (!std::isfinite(factor) || factor <= 0 || factor > 1) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("factor must be in (0, 1], got ", factor)));
  }
  // A read-modify-write: the lease keeps a turn from ending in between.
  absl::StatusOr<SessionLease> lease = sessions_->Lease(id, caller.access());
  if (!lease.ok()) return done(lease.status());
  absl::StatusOr<engine::State> decayed =
      engine::DecayState(*lease->state(), factor);
  if (!decayed.ok()) return done(decayed.status());
  CommitAndInfo(*std::move(lease),
                std::make_shared<const engine::State>(*std::move(decayed)),
                SessionLease::Initial::kKeep, std::move(done));
}

absl::StatusOr<engine::StateReport> ChatApp::InspectSession(
    const Caller& caller, const std::string& id) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) return s;
  absl::StatusOr<StatePtr> state = sessions_->ReadState(id, caller.access());
  if (!state.ok()) return state.status();
  return engine::InspectState(**state);
}

absl::StatusOr<engine::StateDistance> ChatApp::SessionDistance(
    const Caller& caller, const std::string& session_a,
    const std::string& session_b) {
  if (absl::Status s = CheckSessionId(session_a, "session_a"); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckSessionId(session_b, "session_b"); !s.ok()) {
    return s;
  }
  absl::StatusOr<StatePtr> a = sessions_->ReadState(session_a, caller.access());
  if (!a.ok()) return a.status();
  absl::StatusOr<StatePtr> b = sessions_->ReadState(session_b, caller.access());
  if (!b.ok()) return b.status();
  return engine::DistanceBetween(**a, **b);
}

absl::StatusOr<ExportedState> ChatApp::ExportState(const Caller& caller,
                                                   const std::string& id,
                                                   const std::string& dtype) {
  if (absl::Status s = CheckSessionId(id, "session_id"); !s.ok()) return s;
  engine::StateDtype storage = engine::StateDtype::kFloat32;
  if (!dtype.empty()) {
    absl::StatusOr<engine::StateDtype> d = engine::ParseStateDtype(dtype);
    if (!d.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "dtype must be float32, float16 or bfloat16, got ", Quote(dtype)));
    }
    storage = *d;
  }
  absl::StatusOr<StatePtr> state = sessions_->ReadState(id, caller.access());
  if (!state.ok()) return state.status();
  absl::StatusOr<std::string> bytes = engine::SerializeState(**state, storage);
  if (!bytes.ok()) return bytes.status();
  return ExportedState{*std::move(bytes), (*state)->token_count()};
}

void ChatApp::ImportState(const Caller& caller, ImportRequest request,
                          Callback<SessionInfo> done) {
  const bool replace = request.replace && !request.session_id.empty();
  absl::StatusOr<absl::Duration> ttl =
      replace ? TtlFromSeconds(request.ttl_seconds, *sessions_)
              : CheckNewSession(caller, request.session_id, "session_id",
                                request.ttl_seconds);
  if (!ttl.ok()) return done(ttl.status());
  if (absl::Status s = CheckOptionalSessionId(request.session_id, "session_id");
      !s.ok()) {
    return done(s);
  }
  if (request.state.empty()) {
    return done(absl::InvalidArgumentError("state is empty"));
  }
  if (static_cast<int64_t>(request.state.size()) >
      options_.max_state_file_bytes) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("state is too large: ", request.state.size(),
                     " bytes (limit ", options_.max_state_file_bytes, ")")));
  }
  engine::LoadStateOptions load;
  load.skip_fingerprint_check = request.skip_fingerprint_check;
  load.allow_unhealthy = request.allow_unhealthy;
  absl::StatusOr<engine::State> parsed =
      engine::ParseState(std::move(request.state), "state", *model_, load);
  if (!parsed.ok()) return done(StateBytesError(parsed.status()));
  auto state = std::make_shared<const engine::State>(*std::move(parsed));
  if (replace && sessions_->Get(request.session_id, caller.access()).ok()) {
    absl::StatusOr<SessionLease> lease =
        sessions_->Lease(request.session_id, caller.access());
    if (!lease.ok()) return done(lease.status());
    return CommitAndInfo(*std::move(lease), std::move(state),
                         SessionLease::Initial::kReplace, std::move(done));
  }
  NewSession session = NewSessionFor(caller, request.session_id, *ttl);
  session.state = std::move(state);
  sessions_->Create(std::move(session), std::move(done));
}

ModelInfo ChatApp::GetModelInfo() const {
  const engine::ModelConfig& c = model_->config();
  ModelInfo info;
  info.architecture = std::string(engine::ArchitectureName(c.arch));
  info.n_layer = c.n_layer;
  info.n_embd = c.n_embd;
  info.vocab_size = c.vocab_size;
  info.n_head = c.n_head;
  info.head_size = c.head_size;
  info.n_params = c.n_params;
  info.tokenizer = std::string(prompts_.tokenizer().name());
  info.state_bytes_per_session = c.state_bytes_fp32;
  info.model_path = options_.model_path;
  info.fingerprint = c.fingerprint;
  info.device = options_.device;
  info.dtype = options_.dtype;
  info.chat_template = options_.chat_template;
  for (const auto& [name, state] : options_.initial_states) {
    info.initial_state_names.push_back(name);
  }
  info.max_batch = scheduler_->options().max_batch;
  info.max_prompt_tokens = options_.max_prompt_tokens;
  const SchedulerStats stats = scheduler_->stats();
  info.avg_batch_size = stats.avg_batch_size();
  info.decode_steps = stats.decode_steps;
  info.tokens_generated = stats.tokens_generated;
  return info;
}

}  // namespace rwkv::server
