// GrpcLoadTarget: LoadTarget over rwkv.v1.ChatService (ChatClient): Generate
// with ignore_eos, GetModelInfo's counters. Thread-safe.
#ifndef RWKV_CLIENT_GRPC_LOAD_TARGET_H_
#define RWKV_CLIENT_GRPC_LOAD_TARGET_H_

#include <string>

#include "client/chat_client.h"
#include "client/load_target.h"

namespace rwkv::client {

class GrpcLoadTarget final : public LoadTarget {
 public:
  // `client` must outlive this.
  GrpcLoadTarget(ChatClient* client, std::string address)
      : client_(client), address_(std::move(address)) {}

  std::string Describe() const override { return "grpc " + address_; }
  absl::StatusOr<TargetInfo> Info() override;
  absl::Status CreateSession(const std::string& id) override;
  absl::Status DeleteSession(const std::string& id) override;
  absl::StatusOr<int> Generate(const LoadTurn& turn,
                               const OnTokens& on_tokens) override;

 private:
  ChatClient* const client_;
  const std::string address_;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_GRPC_LOAD_TARGET_H_
