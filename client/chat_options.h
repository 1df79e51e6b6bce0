// ChatOptions: what rwkv-chat (ChatRepl) is configured with. The defaults
// here are the flags' defaults: rwkv-chat's flags (client/chat_flags.h) are
// bound to these fields.
#ifndef RWKV_CLIENT_CHAT_OPTIONS_H_
#define RWKV_CLIENT_CHAT_OPTIONS_H_

#include <cstdint>
#include <string>

#include "client/connect_options.h"
#include "rwkv/v1/chat.pb.h"

namespace rwkv::client {

struct ChatOptions {
  std::string server = "127.0.0.1:50051";
  // API key and TLS.
  ConnectOptions connect;
  // Empty: a new session with a server-generated id.
  std::string session;
  // Seconds; 0: the server default.
  int64_t ttl_seconds = 0;
  // New sessions start from the server's initial state of this name
  // (rwkv-server --initial-state NAME=FILE); empty: the fresh state.
  std::string initial_state;
  // Only the fields given on the command line are set (the server applies
  // its defaults to the rest).
  rwkv::v1::SamplingParams sampling;
  // 0: the server default.
  int32_t max_tokens = 0;
  // Raw Generate instead of Chat.
  bool generate = false;
  // Only call grpc.health.v1 Health/Check and exit (0 when SERVING).
  bool health = false;
  // Seconds for each unary RPC (and the health check).
  double timeout_seconds = 30;
  // The positional words joined with spaces (one-shot mode when
  // `one_shot`, i.e. any positional word was given, even an empty one).
  std::string message;
  bool one_shot = false;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CHAT_OPTIONS_H_
