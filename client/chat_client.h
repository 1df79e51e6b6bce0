// ChatClient: a small synchronous C++ client for rwkv.v1.ChatService.
//
// It wraps the generated stub so that programs (rwkv-chat, rwkv-load, tests)
// deal in absl::Status / absl::StatusOr instead of grpc::Status out-params:
// every failure carries the gRPC code and the server's message unchanged
// (see grpc_status.h). Streaming turns (Chat, Generate) call a callback for
// each chunk as it arrives and return the whole turn at the end.
//
// Every call about one session carries its id in the `x-session-id` request
// header, so a load balancer in front of several replicas can send a
// session's calls to the same replica (RAM-cache hits; docker/haproxy.cfg).
// Correctness never depends on it.
//
// Thread safety: a ChatClient is safe for concurrent use from several threads
// (the channel and stub are); each call uses its own ClientContext.
#ifndef RWKV_CLIENT_CHAT_CLIENT_H_
#define RWKV_CLIENT_CHAT_CLIENT_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/connect_options.h"
#include "client/turn_canceller.h"
#include "grpcpp/channel.h"
#include "rwkv/v1/chat.grpc.pb.h"

namespace rwkv::client {

// Called for every streamed chunk, in order, on the calling thread. Return
// false to cancel the turn (the server stops generating; the turn then ends
// with CANCELLED).
using ChunkCallback = std::function<bool(const rwkv::v1::GenerateResponse&)>;

// Everything one streamed turn produced.
struct TurnResult {
  std::string text;                // all chunks' text, concatenated
  std::vector<int32_t> token_ids;  // all chunks' token ids
  int chunks = 0;                  // messages received
  rwkv::v1::FinishReason finish_reason = rwkv::v1::FINISH_REASON_UNSPECIFIED;
  rwkv::v1::Usage usage;    // from the last chunk
  int64_t token_count = 0;  // the session's token count at the end
};

// grpc.health.v1 serving status, as the Health/Check RPC reports it.
enum class HealthStatus { kUnknown = 0, kServing = 1, kNotServing = 2 };

// The request header that names the call's session (see above).
inline constexpr char kSessionIdHeader[] = "x-session-id";

class ChatClient {
 public:
  // A client over an insecure channel to `address` ("host:port").
  static std::unique_ptr<ChatClient> Connect(const std::string& address);
  // With an API key and/or TLS (connect_options.h). Errors: unreadable TLS
  // files (INVALID_ARGUMENT naming them).
  static absl::StatusOr<std::unique_ptr<ChatClient>> Connect(
      const std::string& address, const ConnectOptions& options);

  // Uses `channel` (e.g. a server's InProcessChannel in tests).
  explicit ChatClient(std::shared_ptr<grpc::Channel> channel);

  ChatClient(const ChatClient&) = delete;
  ChatClient& operator=(const ChatClient&) = delete;

  // Deadline for every unary call (default 30 s). Streaming turns have no
  // deadline unless `set_turn_timeout` gives one.
  void set_unary_timeout(absl::Duration timeout) { unary_timeout_ = timeout; }
  void set_turn_timeout(absl::Duration timeout) { turn_timeout_ = timeout; }
  // Sent as "authorization: Bearer <key>" with every ChatService call.
  void set_api_key(std::string key) { api_key_ = std::move(key); }

  // ---- sessions
  absl::StatusOr<rwkv::v1::SessionInfo> CreateSession(
      const rwkv::v1::CreateSessionRequest& request);
  // Creates `session_id` (ttl_seconds 0: the server default) or, when it
  // already exists (ALREADY_EXISTS), returns its info and, if ttl_seconds > 0,
  // sets its TTL. `*created` (optional) tells which happened.
  absl::StatusOr<rwkv::v1::SessionInfo> GetOrCreateSession(
      const std::string& session_id, int64_t ttl_seconds,
      bool* created = nullptr);
  // The same with the whole creation request (e.g. an initial state);
  // `request.session_id()` names the session. An existing session is
  // continued even if the server does not know the request's
  // initial_state_name (that name only matters when creating).
  absl::StatusOr<rwkv::v1::SessionInfo> GetOrCreateSession(
      const rwkv::v1::CreateSessionRequest& request, bool* created = nullptr);
  absl::StatusOr<rwkv::v1::SessionInfo> GetSession(
      const std::string& session_id);
  absl::StatusOr<rwkv::v1::ListSessionsResponse> ListSessions(
      int32_t page_size, const std::string& page_token);
  absl::Status DeleteSession(const std::string& session_id);
  absl::StatusOr<rwkv::v1::SessionInfo> ResetSession(
      const std::string& session_id);
  absl::StatusOr<rwkv::v1::SessionInfo> TouchSession(
      const std::string& session_id, int64_t ttl_seconds);

  // ---- turns
  // `on_chunk` may be empty. `canceller` (optional, borrowed) lets another
  // thread cancel the turn; a cancelled turn returns CANCELLED.
  absl::StatusOr<TurnResult> Chat(const rwkv::v1::ChatRequest& request,
                                  const ChunkCallback& on_chunk,
                                  TurnCanceller* canceller = nullptr);
  absl::StatusOr<TurnResult> Generate(const rwkv::v1::GenerateRequest& request,
                                      const ChunkCallback& on_chunk,
                                      TurnCanceller* canceller = nullptr);

  // ---- state tools
  absl::StatusOr<rwkv::v1::SessionInfo> ForkSession(
      const std::string& source_session_id, const std::string& new_session_id,
      int64_t ttl_seconds);
  absl::StatusOr<rwkv::v1::SessionInfo> BlendSessions(
      const rwkv::v1::BlendSessionsRequest& request);
  absl::StatusOr<rwkv::v1::SessionInfo> DecaySession(
      const std::string& session_id, double factor);
  absl::StatusOr<rwkv::v1::InspectSessionResponse> InspectSession(
      const std::string& session_id);
  absl::StatusOr<rwkv::v1::SessionDistanceResponse> SessionDistance(
      const std::string& session_a, const std::string& session_b);
  absl::StatusOr<rwkv::v1::ExportStateResponse> ExportState(
      const std::string& session_id, const std::string& dtype);
  absl::StatusOr<rwkv::v1::SessionInfo> ImportState(
      const rwkv::v1::ImportStateRequest& request);
  // ExportState written to `path` atomically (temp file + rename).
  absl::StatusOr<rwkv::v1::ExportStateResponse> ExportStateToFile(
      const std::string& session_id, const std::string& dtype,
      const std::string& path);
  // ImportState with the bytes of `path`; other fields from `request`.
  absl::StatusOr<rwkv::v1::SessionInfo> ImportStateFromFile(
      const std::string& path, rwkv::v1::ImportStateRequest request);

  // ---- server
  absl::StatusOr<rwkv::v1::ModelInfo> GetModelInfo();
  // grpc.health.v1.Health/Check for `service` ("" = the whole server).
  absl::StatusOr<HealthStatus> CheckHealth(const std::string& service);

 private:
  // A context with the unary deadline, the API key and, if `session_id` is
  // not empty, the session header.
  void PrepareUnary(grpc::ClientContext* context,
                    const std::string& session_id = "") const;
  void AddApiKey(grpc::ClientContext* context) const;
  static void AddSessionHeader(grpc::ClientContext* context,
                               const std::string& session_id);
  template <typename Request>
  absl::StatusOr<TurnResult> RunTurn(
      const Request& request, const ChunkCallback& on_chunk,
      TurnCanceller* canceller,
      std::unique_ptr<grpc::ClientReader<rwkv::v1::GenerateResponse>> (
          rwkv::v1::ChatService::Stub::*method)(grpc::ClientContext*,
                                                const Request&));

  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<rwkv::v1::ChatService::Stub> stub_;
  absl::Duration unary_timeout_ = absl::Seconds(30);
  std::string api_key_;
  absl::Duration turn_timeout_ = absl::InfiniteDuration();
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CHAT_CLIENT_H_
