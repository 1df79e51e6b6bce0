// LoadTarget: the calls the load generator (load_generator.h) makes on a
// server, so that one measurement runs over either front of rwkv-server:
// gRPC (GrpcLoadTarget: ChatService) or HTTP (HttpLoadTarget: the
// OpenAI-compatible API, streamed as Server-Sent Events). Implementations
// are safe for concurrent use by the generator's stream threads.
#ifndef RWKV_CLIENT_LOAD_TARGET_H_
#define RWKV_CLIENT_LOAD_TARGET_H_

#include <cstdint>
#include <functional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rwkv::client {

// The server's model and scheduler counters.
struct TargetInfo {
  std::string tokenizer;  // "bytes", "world", "gpt-neox"
  // Batched decode steps and tokens generated since the server started
  // (their ratio over a phase is the average batch); steps < 0: the server
  // reports none.
  int64_t decode_steps = -1;
  int64_t tokens_generated = 0;
};

// One streamed raw-text turn on a session.
struct LoadTurn {
  std::string session_id;
  std::string text;
  int max_tokens = 0;
  double temperature = 0;
  uint64_t seed = 0;
};

class LoadTarget {
 public:
  // Called per received piece of the reply with its token count (> 0);
  // false stops the turn (the client cancels it).
  using OnTokens = std::function<bool(int tokens)>;

  virtual ~LoadTarget() = default;
  virtual std::string Describe() const = 0;  // "grpc 127.0.0.1:50051"
  virtual absl::StatusOr<TargetInfo> Info() = 0;
  virtual absl::Status CreateSession(const std::string& id) = 0;
  virtual absl::Status DeleteSession(const std::string& id) = 0;
  // Runs the turn to its end (max_tokens, end-of-text ignored); returns the
  // prompt tokens the server counted. A turn stopped by `on_tokens` is
  // CANCELLED.
  virtual absl::StatusOr<int> Generate(const LoadTurn& turn,
                                       const OnTokens& on_tokens) = 0;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_LOAD_TARGET_H_
