#include "client/chat_options.h"

#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "tools/cli_args.h"

namespace rwkv::client {

absl::StatusOr<ChatOptions> ParseChatOptions(int argc, char** argv) {
  tools::CliArgs args(
      {"server", "session", "ttl", "temperature", "top-p", "top-k", "seed",
       "max-tokens", "timeout", "initial-state"},
      {"generate", "health", "help"});
  if (absl::Status s = args.Parse(argc, argv, 1); !s.ok()) return s;
  ChatOptions options;
  options.server = args.GetOr("server", options.server);
  if (options.server.empty()) {
    return absl::InvalidArgumentError("--server must not be empty");
  }
  options.session = args.GetOr("session", "");
  if (args.Get("session") && options.session.empty()) {
    return absl::InvalidArgumentError("--session must not be empty");
  }
  options.initial_state = args.GetOr("initial-state", "");
  if (args.Get("initial-state") && options.initial_state.empty()) {
    return absl::InvalidArgumentError("--initial-state must not be empty");
  }
  options.generate = args.Has("generate");
  options.health = args.Has("health");
  options.help = args.Has("help");

  absl::StatusOr<int64_t> ttl = args.GetInt("ttl", 0);
  if (!ttl.ok()) return ttl.status();
  if (*ttl < 0) return absl::InvalidArgumentError("--ttl must be >= 0");
  options.ttl_seconds = *ttl;

  absl::StatusOr<int64_t> max_tokens = args.GetInt("max-tokens", 0);
  if (!max_tokens.ok()) return max_tokens.status();
  if (*max_tokens < 0 || *max_tokens > std::numeric_limits<int32_t>::max()) {
    return absl::InvalidArgumentError(
        "--max-tokens must be in [0, 2147483647]");
  }
  options.max_tokens = static_cast<int32_t>(*max_tokens);

  absl::StatusOr<double> timeout = args.GetDouble("timeout", 30);
  if (!timeout.ok()) return timeout.status();
  if (*timeout <= 0) return absl::InvalidArgumentError("--timeout must be > 0");
  options.timeout_seconds = *timeout;

  if (args.Get("temperature")) {
    absl::StatusOr<double> v = args.GetDouble("temperature", 1);
    if (!v.ok()) return v.status();
    if (*v < 0) return absl::InvalidArgumentError("--temperature must be >= 0");
    options.sampling.set_temperature(static_cast<float>(*v));
  }
  if (args.Get("top-p")) {
    absl::StatusOr<double> v = args.GetDouble("top-p", 1);
    if (!v.ok()) return v.status();
    if (*v <= 0 || *v > 1) {
      return absl::InvalidArgumentError("--top-p must be in (0, 1]");
    }
    options.sampling.set_top_p(static_cast<float>(*v));
  }
  if (args.Get("top-k")) {
    absl::StatusOr<int64_t> v = args.GetInt("top-k", 0);
    if (!v.ok()) return v.status();
    if (*v < 0 || *v > std::numeric_limits<int32_t>::max()) {
      return absl::InvalidArgumentError("--top-k must be >= 0");
    }
    options.sampling.set_top_k(static_cast<int32_t>(*v));
  }
  if (args.Get("seed")) {
    absl::StatusOr<int64_t> v = args.GetInt("seed", 0);
    if (!v.ok()) return v.status();
    if (*v < 0) return absl::InvalidArgumentError("--seed must be >= 0");
    options.sampling.set_seed(static_cast<uint64_t>(*v));
  }
  options.message = absl::StrJoin(args.positionals(), " ");
  options.one_shot = !args.positionals().empty();
  return options;
}

const char* ChatUsage() {
  return "usage: rwkv-chat [flags] [MESSAGE...]\n"
         "  With MESSAGE: send one turn, print the reply, exit (one-shot).\n"
         "  Without: an interactive REPL on a terminal, or one line per turn\n"
         "  (commands allowed) when stdin is not a terminal. /help in the\n"
         "  REPL lists the commands.\n"
         "flags:\n"
         "  --server ADDR       server address (default 127.0.0.1:50051)\n"
         "  --session ID        use session ID (created if missing)\n"
         "  --ttl SECONDS       session time to live (default: server's)\n"
         "  --initial-state NAME  new sessions start from the server's named\n"
         "                      initial state (rwkv-server --initial-state)\n"
         "  --temperature X     0 is greedy (default: server's, 1.0)\n"
         "  --top-p P           nucleus sampling (default: server's, 0.85)\n"
         "  --top-k K           0 is off\n"
         "  --seed S            sampling seed\n"
         "  --max-tokens N      reply length limit (default: server's)\n"
         "  --generate          continue the session with raw text (Generate)\n"
         "                      instead of the chat template (Chat)\n"
         "  --timeout SECONDS   deadline of each non-streaming call (30)\n"
         "  --health            check grpc.health.v1 and exit 0 if SERVING\n"
         "exit status: 0 ok, 1 a call failed (the message names the gRPC\n"
         "code), 2 a command-line mistake\n";
}

}  // namespace rwkv::client
