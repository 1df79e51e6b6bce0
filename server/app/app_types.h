// The application layer's requests and results: plain structs, no protobuf,
// so that every front (gRPC, HTTP) speaks to the same layer. Field meanings
// and defaults follow proto/rwkv/v1/chat.proto.
#ifndef RWKV_SERVER_APP_APP_TYPES_H_
#define RWKV_SERVER_APP_APP_TYPES_H_

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "server/sched/job.h"

namespace rwkv::server {

// Sampling as a request states it: unset fields take the documented
// defaults (temperature 1, top_p 0.85, top_k 0, penalties 0, penalty_decay
// 0.996, seed 0).
struct SamplingRequest {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int32_t> top_k;
  std::optional<float> presence_penalty;
  std::optional<float> frequency_penalty;
  std::optional<float> penalty_decay;
  std::optional<uint64_t> seed;
};

// Which front a request came through (metrics are labelled by it).
enum class Front { kGrpc, kHttp };

// One message of a conversation (the HTTP front's message lists).
struct ChatMessage {
  enum class Role { kSystem, kUser, kAssistant };
  Role role = Role::kUser;
  std::string content;
  // How errors name this message's text, e.g. "messages[2].content".
  std::string field = "message";
};

// One Generate (raw text) or Chat (a user message in the chat template) turn.
struct TurnRequest {
  std::string session_id;
  std::string text;
  // How errors name `text` of a raw turn (e.g. "prompt" over HTTP).
  std::string text_field = "text";
  bool chat = false;
  // Chat turns only: several messages (rendered as a conversation, see
  // ConversationRenderer) instead of `text`. The assistant's turn follows.
  std::vector<ChatMessage> messages;
  SamplingRequest sampling;
  int32_t max_tokens = 0;  // 0: the server default
  std::vector<std::string> stop;
  bool ignore_eos = false;
  Front front = Front::kGrpc;
};

// Keeps a detached turn's final state as a new session (the stored
// responses of the HTTP front's Responses API).
struct KeepAs {
  std::string session_id;  // required
  int64_t ttl_seconds = 0;
  // The session's note (SessionMeta::note), made from the reply's text and
  // last chunk (finish reason, usage) once the turn has ended. Optional.
  std::function<std::string(const std::string& reply, const TurnChunk& last)>
      note;
};

// A turn that belongs to no session: it starts from a copy of a session's
// state (turn.session_id; that session is not changed) or, with
// turn.session_id empty, from the fresh state through the shared-prefix
// cache: the longest cached prefix of the prompt is reused and the state
// after the reply is cached under the conversation's tokens, so a client
// that resends the whole history computes only the new part. Nothing is
// committed unless `keep_as` names a new session for the final state.
struct DetachedTurnRequest {
  TurnRequest turn;
  std::optional<KeepAs> keep_as;
};

// Where a turn's output goes (the front's stream). Thread-safe: the
// scheduler thread writes while the front's threads may cancel.
class TurnStream {
 public:
  virtual ~TurnStream() = default;
  // True once the client has gone (cancelled, deadline passed).
  virtual bool IsCancelled() const = 0;
  // A piece of the reply; the last one has finish_reason set.
  virtual void OnChunk(TurnChunk chunk) = 0;
  // Called exactly once, last: OK after the last chunk, or the error.
  virtual void OnFinish(const absl::Status& status) = 0;
  // The scheduler has begun computing the turn's prompt (it waited in the
  // queue until now). At most once, before any chunk; optional.
  virtual void OnStarted() {}
};

struct CreateSessionRequest {
  std::string session_id;  // "": generated
  std::string prefix;
  std::string initial_state;       // state file bytes
  std::string initial_state_name;  // a server initial state
  int64_t ttl_seconds = 0;
  // True once the caller has gone: work in progress stops and nothing is
  // created. Optional.
  std::function<bool()> cancelled;
};

struct ForkRequest {
  std::string source_session_id;
  std::string new_session_id;
  int64_t ttl_seconds = 0;
};

struct BlendRequest {
  std::string session_a;
  std::string session_b;
  double alpha = 0;
  std::string new_session_id;
  int64_t ttl_seconds = 0;
};

struct ImportRequest {
  std::string session_id;  // "": generated
  std::string state;       // state file bytes
  bool replace = false;
  int64_t ttl_seconds = 0;
  bool skip_fingerprint_check = false;
};

struct ExportedState {
  std::string bytes;
  int64_t token_count = 0;
};

struct ModelInfo {
  std::string architecture;
  int n_layer = 0;
  int n_embd = 0;
  int vocab_size = 0;
  int n_head = 0;
  int head_size = 0;
  int64_t n_params = 0;
  std::string tokenizer;
  int64_t state_bytes_per_session = 0;
  std::string model_path;
  std::string fingerprint;
  std::string device;
  std::string dtype;
  std::string chat_template;
  std::vector<std::string> initial_state_names;
  int max_batch = 0;
  int max_prompt_tokens = 0;
  double avg_batch_size = 0;
  int64_t decode_steps = 0;
  int64_t tokens_generated = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_APP_TYPES_H_
