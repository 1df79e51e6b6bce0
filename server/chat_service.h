// ChatService: the rwkv.v1.ChatService implementation (gRPC callback API).
// Handlers validate every field (precise status codes, see chat.proto),
// tokenize, take session leases and hand turns to the Scheduler; they never
// wait for the engine: work that needs it (CreateSession with a prefix or
// initial state, ImportState) runs on the scheduler thread, which finishes
// the call. State tools (fork, blend, decay, inspect, distance, export) work
// on copies of session states on the calling gRPC thread.
// Thread-safe. Borrows everything it is given; all must outlive it.
#ifndef RWKV_SERVER_CHAT_SERVICE_H_
#define RWKV_SERVER_CHAT_SERVICE_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/prefix_cache.h"
#include "engine/sampling_params.h"
#include "engine/state.h"
#include "engine/tokenizer.h"
#include "rwkv/v1/chat.grpc.pb.h"
#include "server/scheduler.h"
#include "server/state_manager.h"

namespace rwkv::server {

struct ChatServiceOptions {
  // "{message}" is replaced by the user's message.
  std::string chat_template = "User: {message}\n\nAssistant:";
  // The template's stop strings (the reply ends there).
  std::vector<std::string> chat_stop = {"\n\n"};
  // Most tokens in one Generate text / Chat message (after templating) /
  // CreateSession prefix.
  int max_prompt_tokens = 8192;
  // Largest max_tokens a request may ask for, and the default for 0.
  int max_tokens_limit = 4096;
  int default_max_tokens = 256;
  // Stop strings per request and bytes per stop string.
  int max_stop_strings = 16;
  int max_stop_bytes = 256;
  // Shown by GetModelInfo.
  std::string model_path;
  std::string device = "cpu";
  std::string dtype = "fp32";
  // Server-side initial states (--initial-state NAME=FILE).
  std::map<std::string, std::shared_ptr<const engine::State>> initial_states;
};

class ChatService final : public rwkv::v1::ChatService::CallbackService {
 public:
  // `engine` is only used on the scheduler thread (and for its immutable
  // config()); `prefix_cache` may be null (no caching).
  ChatService(const engine::Engine* engine, const engine::Tokenizer* tokenizer,
              StateManager* sessions, Scheduler* scheduler,
              engine::PrefixCache* prefix_cache, ChatServiceOptions options);

  grpc::ServerUnaryReactor* CreateSession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::CreateSessionRequest* req,
      rwkv::v1::SessionInfo* resp) override;
  grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* Generate(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::GenerateRequest* req) override;
  grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* Chat(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::ChatRequest* req) override;
  grpc::ServerUnaryReactor* GetSession(grpc::CallbackServerContext* ctx,
                                       const rwkv::v1::GetSessionRequest* req,
                                       rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* ListSessions(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::ListSessionsRequest* req,
      rwkv::v1::ListSessionsResponse* resp) override;
  grpc::ServerUnaryReactor* DeleteSession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::DeleteSessionRequest* req,
      rwkv::v1::DeleteSessionResponse* resp) override;
  grpc::ServerUnaryReactor* ResetSession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::ResetSessionRequest* req,
      rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* TouchSession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::TouchSessionRequest* req,
      rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* ForkSession(grpc::CallbackServerContext* ctx,
                                        const rwkv::v1::ForkSessionRequest* req,
                                        rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* BlendSessions(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::BlendSessionsRequest* req,
      rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* DecaySession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::DecaySessionRequest* req,
      rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* InspectSession(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::InspectSessionRequest* req,
      rwkv::v1::InspectSessionResponse* resp) override;
  grpc::ServerUnaryReactor* SessionDistance(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::SessionDistanceRequest* req,
      rwkv::v1::SessionDistanceResponse* resp) override;
  grpc::ServerUnaryReactor* ExportState(
      grpc::CallbackServerContext* ctx, const rwkv::v1::ExportStateRequest* req,
      rwkv::v1::ExportStateResponse* resp) override;
  grpc::ServerUnaryReactor* ImportState(grpc::CallbackServerContext* ctx,
                                        const rwkv::v1::ImportStateRequest* req,
                                        rwkv::v1::SessionInfo* resp) override;
  grpc::ServerUnaryReactor* GetModelInfo(
      grpc::CallbackServerContext* ctx,
      const rwkv::v1::GetModelInfoRequest* req,
      rwkv::v1::ModelInfo* resp) override;

  // The chat template applied to `message` (blank lines in the message are
  // collapsed so that it cannot contain the "\n\n" turn separator).
  std::string FormatChat(const std::string& message) const;

 private:
  struct TurnInput {
    std::string session_id;
    std::string text;
    const rwkv::v1::SamplingParams* sampling = nullptr;
    int32_t max_tokens = 0;
    std::vector<std::string> stop;
    // How many of `stop` the server added (Chat's template stop); they do
    // not count against the request's stop-string limit.
    size_t builtin_stops = 0;
    bool ignore_eos = false;
  };
  grpc::ServerWriteReactor<rwkv::v1::GenerateResponse>* StartTurn(
      TurnInput input);
  // INVALID_ARGUMENT if `text` is over the prompt byte limit
  // (--max-prompt-tokens times a bound on bytes per token).
  absl::Status CheckPromptBytes(const std::string& text,
                                const char* field) const;
  absl::StatusOr<std::vector<int32_t>> TokenizePrompt(const std::string& text,
                                                      const char* field) const;

  // Constant after construction.
  const engine::Engine* const engine_;
  const engine::Tokenizer* const tokenizer_;
  StateManager* const sessions_;
  Scheduler* const scheduler_;
  engine::PrefixCache* const prefix_cache_;
  const ChatServiceOptions options_;
  // The fresh state every plain session starts from (shared, immutable).
  const std::shared_ptr<const engine::State> fresh_state_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_CHAT_SERVICE_H_
