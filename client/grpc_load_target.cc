#include "client/grpc_load_target.h"

#include "client/grpc_status.h"

namespace rwkv::client {

absl::StatusOr<TargetInfo> GrpcLoadTarget::Info() {
  absl::StatusOr<rwkv::v1::ModelInfo> info = client_->GetModelInfo();
  if (!info.ok()) return info.status();
  TargetInfo out;
  out.tokenizer = info->tokenizer();
  out.decode_steps = info->decode_steps();
  out.tokens_generated = info->tokens_generated();
  return out;
}

absl::Status GrpcLoadTarget::CreateSession(const std::string& id) {
  rwkv::v1::CreateSessionRequest request;
  request.set_session_id(id);
  request.set_ttl_seconds(3600);
  absl::StatusOr<rwkv::v1::SessionInfo> info = client_->CreateSession(request);
  if (!info.ok()) {
    return absl::Status(info.status().code(),
                        DescribeError("CreateSession", info.status()));
  }
  return absl::OkStatus();
}

absl::Status GrpcLoadTarget::DeleteSession(const std::string& id) {
  return client_->DeleteSession(id);
}

absl::StatusOr<int> GrpcLoadTarget::Generate(const LoadTurn& turn,
                                             const OnTokens& on_tokens) {
  rwkv::v1::GenerateRequest request;
  request.set_session_id(turn.session_id);
  request.set_text(turn.text);
  request.set_max_tokens(turn.max_tokens);
  request.set_ignore_eos(true);
  request.mutable_sampling()->set_temperature(
      static_cast<float>(turn.temperature));
  request.mutable_sampling()->set_seed(turn.seed);
  absl::StatusOr<TurnResult> result =
      client_->Generate(request, [&](const rwkv::v1::GenerateResponse& chunk) {
        return chunk.token_ids_size() == 0 || on_tokens(chunk.token_ids_size());
      });
  if (!result.ok()) {
    if (absl::IsCancelled(result.status())) return result.status();
    return absl::Status(result.status().code(),
                        DescribeError("Generate", result.status()));
  }
  return static_cast<int>(result->usage.prompt_tokens());
}

}  // namespace rwkv::client
