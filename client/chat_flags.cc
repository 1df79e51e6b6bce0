#include "client/chat_flags.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "client/connect_flags.h"
#include "common/cli_validators.h"

namespace rwkv::client {

using common::IntIn;
using common::NonEmpty;

void AddChatFlags(CLI::App& app, ChatOptions* o) {
  constexpr int64_t kInt32Max = std::numeric_limits<int32_t>::max();
  constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();
  app.description(
      "Chat with an rwkv-server. With MESSAGE: send one turn, print the "
      "reply, exit (one-shot). Without: an interactive REPL on a terminal, "
      "or one line per turn (commands allowed) when stdin is not a "
      "terminal; /help in the REPL lists the commands.");
  app.footer(
      "Exit status: 0 ok, 1 a call failed (the message names the gRPC code), "
      "2 a command-line mistake.");
  app.get_formatter()->column_width(30);
  app.add_option_function<std::vector<std::string>>(
      "message",
      [o](const std::vector<std::string>& words) {
        o->message = absl::StrJoin(words, " ");
        o->one_shot = true;
      },
      "one turn to send (the words are joined with spaces)");
  AddConnectFlags(app, &o->connect);
  app.add_option("--server", o->server, "server address")
      ->check(NonEmpty())
      ->capture_default_str()
      ->type_name("ADDR");
  app.add_option("--session", o->session,
                 "use session ID (created if missing); none: a new session "
                 "with a server-generated id")
      ->check(NonEmpty())
      ->type_name("ID");
  app.add_option("--ttl", o->ttl_seconds,
                 "time to live of the sessions it creates or opens; 0: the "
                 "server's")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("SECONDS");
  app.add_option("--initial-state", o->initial_state,
                 "new sessions start from the server's named initial state "
                 "(rwkv-server --initial-state NAME=FILE)")
      ->check(NonEmpty())
      ->type_name("NAME");
  // Sampling flags set a field only when given: the server applies its own
  // defaults to the rest.
  app.add_option_function<double>(
         "--temperature",
         [o](double v) { o->sampling.set_temperature(static_cast<float>(v)); },
         "0 is greedy; none: the server's (1.0)")
      ->check(common::NumberAtLeast(0))
      ->type_name("X");
  app.add_option_function<double>(
         "--top-p",
         [o](double v) { o->sampling.set_top_p(static_cast<float>(v)); },
         "nucleus sampling; none: the server's (0.85)")
      ->check(common::NumberAboveUpTo(0, 1))
      ->type_name("P");
  app.add_option_function<int32_t>(
         "--top-k", [o](int32_t v) { o->sampling.set_top_k(v); },
         "0 is off; none: the server's")
      ->transform(IntIn(0, kInt32Max))
      ->type_name("K");
  app.add_option_function<int64_t>(
         "--seed",
         [o](int64_t v) { o->sampling.set_seed(static_cast<uint64_t>(v)); },
         "sampling seed; none: the server's")
      ->transform(IntIn(0, kInt64Max))
      ->type_name("S");
  app.add_option("--max-tokens", o->max_tokens,
                 "reply length limit; 0: the server's")
      ->transform(IntIn(0, kInt32Max))
      ->capture_default_str()
      ->type_name("N");
  app.add_flag("--generate", o->generate,
               "continue the session with raw text (Generate) instead of the "
               "chat template (Chat)");
  app.add_option("--timeout", o->timeout_seconds,
                 "deadline of each non-streaming call")
      ->check(common::NumberAbove(0))
      ->capture_default_str()
      ->type_name("SECONDS");
  app.add_flag("--health", o->health,
               "check grpc.health.v1 and exit 0 if SERVING");
}

}  // namespace rwkv::client
