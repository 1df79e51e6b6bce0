#include "server/rpc/proto_convert.h"

#include <utility>

#include "engine/utf8.h"

namespace rwkv::server {
namespace {

template <typename T>
std::optional<T> Opt(bool has, T value) {
  return has ? std::optional<T>(value) : std::nullopt;
}

pb::FinishReason ToProto(FinishReason reason) {
  switch (reason) {
    case FinishReason::kLength:
      return pb::FINISH_REASON_LENGTH;
    case FinishReason::kStop:
      return pb::FINISH_REASON_STOP;
    case FinishReason::kEos:
      return pb::FINISH_REASON_EOS;
    case FinishReason::kNone:
      break;
  }
  return pb::FINISH_REASON_UNSPECIFIED;
}

int64_t Millis(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

SamplingRequest FromProto(const pb::SamplingParams& p) {
  SamplingRequest r;
  r.temperature = Opt(p.has_temperature(), p.temperature());
  r.top_p = Opt(p.has_top_p(), p.top_p());
  r.top_k = Opt(p.has_top_k(), p.top_k());
  r.presence_penalty = Opt(p.has_presence_penalty(), p.presence_penalty());
  r.frequency_penalty = Opt(p.has_frequency_penalty(), p.frequency_penalty());
  r.penalty_decay = Opt(p.has_penalty_decay(), p.penalty_decay());
  r.seed = Opt(p.has_seed(), p.seed());
  return r;
}

namespace {

// The fields Generate and Chat share.
template <typename Request>
TurnRequest Turn(const Request& r, const std::string& text) {
  TurnRequest t;
  t.session_id = r.session_id();
  t.text = text;
  t.sampling = FromProto(r.sampling());
  t.max_tokens = r.max_tokens();
  t.stop.assign(r.stop().begin(), r.stop().end());
  return t;
}

}  // namespace

TurnRequest FromProto(const pb::GenerateRequest& r) {
  TurnRequest t = Turn(r, r.text());
  t.ignore_eos = r.ignore_eos();
  return t;
}

TurnRequest FromProto(const pb::ChatRequest& r) {
  TurnRequest t = Turn(r, r.message());
  t.chat = true;
  return t;
}

CreateSessionRequest FromProto(const pb::CreateSessionRequest& r) {
  CreateSessionRequest c;
  c.session_id = r.session_id();
  c.prefix = r.prefix();
  c.initial_state = r.initial_state();
  c.initial_state_name = r.initial_state_name();
  c.ttl_seconds = r.ttl_seconds();
  c.allow_unhealthy = r.allow_unhealthy();
  return c;
}

ForkRequest FromProto(const pb::ForkSessionRequest& r) {
  return ForkRequest{r.source_session_id(), r.new_session_id(),
                     r.ttl_seconds()};
}

BlendRequest FromProto(const pb::BlendSessionsRequest& r) {
  return BlendRequest{r.session_a(), r.session_b(), r.alpha(),
                      r.new_session_id(), r.ttl_seconds()};
}

ImportRequest FromProto(const pb::ImportStateRequest& r) {
  ImportRequest i;
  i.session_id = r.session_id();
  i.state = r.state();
  i.replace = r.replace();
  i.ttl_seconds = r.ttl_seconds();
  i.skip_fingerprint_check = r.skip_fingerprint_check();
  i.allow_unhealthy = r.allow_unhealthy();
  return i;
}

void ToProto(const SessionInfo& in, pb::SessionInfo* out) {
  out->set_session_id(in.id);
  out->set_token_count(in.token_count);
  out->set_created_at_ms(Millis(in.created));
  out->set_last_used_at_ms(Millis(in.last_used));
  out->set_expires_at_ms(Millis(in.expires()));
  out->set_ttl_seconds(absl::ToInt64Seconds(in.ttl));
  out->set_state_bytes(in.state_bytes);
  out->set_busy(in.busy);
  out->set_prefix_cached_tokens(in.prefix_cached_tokens);
}

void ToProto(const SessionPage& in, pb::ListSessionsResponse* out) {
  for (const SessionInfo& s : in.sessions) ToProto(s, out->add_sessions());
  out->set_next_page_token(in.next_page_token);
  out->set_total_sessions(in.total);
}

pb::GenerateResponse ToProto(TurnChunk chunk) {
  pb::GenerateResponse msg;
  msg.set_text(std::move(chunk.text));
  for (int32_t id : chunk.token_ids) msg.add_token_ids(id);
  msg.set_token_count(chunk.token_count);
  if (chunk.finish_reason != FinishReason::kNone) {
    msg.set_finish_reason(ToProto(chunk.finish_reason));
    pb::Usage* usage = msg.mutable_usage();
    usage->set_prompt_tokens(chunk.prompt_tokens);
    usage->set_generated_tokens(chunk.generated_tokens);
    usage->set_cached_tokens(chunk.cached_tokens);
  }
  return msg;
}

void ToProto(const std::string& session_id, const engine::StateReport& in,
             pb::InspectSessionResponse* out) {
  out->set_session_id(session_id);
  out->set_architecture(std::string(engine::ArchitectureName(in.arch)));
  out->set_token_count(in.token_count);
  out->set_state_bytes(in.bytes);
  for (const engine::ComponentReport& c : in.components) {
    pb::ComponentStats* cs = out->add_components();
    cs->set_name(c.name);
    for (int64_t d : c.shape) cs->add_shape(d);
    cs->set_mean_abs(c.mean_abs);
    cs->set_max_abs(c.max_abs);
    for (const engine::LayerStats& l : c.layers) {
      pb::LayerStats* ls = cs->add_layers();
      ls->set_mean_abs(l.mean_abs);
      ls->set_max_abs(l.max_abs);
      ls->set_max_log10_true(l.max_log10_true);
    }
  }
  out->set_healthy(in.healthy);
  for (const std::string& p : in.problems) {
    out->add_problems(engine::SanitizeUtf8(p));
  }
  out->set_report(engine::SanitizeUtf8(engine::FormatStateReport(in)));
}

void ToProto(const engine::StateDistance& in,
             pb::SessionDistanceResponse* out) {
  for (const auto& [name, l2] : in.components) {
    pb::ComponentDistance* c = out->add_components();
    c->set_name(name);
    c->set_l2(l2);
  }
  out->set_total(in.total);
}

void ToProto(ExportedState in, pb::ExportStateResponse* out) {
  out->set_state(std::move(in.bytes));
  out->set_token_count(in.token_count);
}

void ToProto(const ModelInfo& in, pb::ModelInfo* out) {
  out->set_architecture(in.architecture);
  out->set_n_layer(in.n_layer);
  out->set_n_embd(in.n_embd);
  out->set_vocab_size(in.vocab_size);
  out->set_n_head(in.n_head);
  out->set_head_size(in.head_size);
  out->set_n_params(in.n_params);
  out->set_tokenizer(in.tokenizer);
  out->set_state_bytes_per_session(in.state_bytes_per_session);
  out->set_model_path(engine::SanitizeUtf8(in.model_path));
  out->set_fingerprint(engine::SanitizeUtf8(in.fingerprint));
  out->set_device(in.device);
  out->set_dtype(in.dtype);
  out->set_chat_template(engine::SanitizeUtf8(in.chat_template));
  for (const std::string& name : in.initial_state_names) {
    out->add_initial_state_names(engine::SanitizeUtf8(name));
  }
  out->set_max_batch(in.max_batch);
  out->set_max_prompt_tokens(in.max_prompt_tokens);
  out->set_avg_batch_size(in.avg_batch_size);
  out->set_decode_steps(in.decode_steps);
  out->set_tokens_generated(in.tokens_generated);
}

}  // namespace rwkv::server
