// rwkv-chat: chat with an rwkv-server from a terminal or a script.
//
//   rwkv-chat                                  interactive REPL (new session)
//   rwkv-chat --session alice "Hi, I'm Alice."  one turn, print the reply
//   printf 'Hi\n/info\n' | rwkv-chat           one line per turn or command
//   rwkv-chat --health                         exit 0 if the server serves
//
// See client/chat_flags.h (rwkv-chat --help) for the flags and ReplHelpText()
// for the REPL commands.
#include <signal.h>
#include <unistd.h>

#include <cstring>
#include <iostream>
#include <memory>
#include <optional>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "client/chat_client.h"
#include "client/chat_flags.h"
#include "client/chat_options.h"
#include "client/chat_repl.h"
#include "client/grpc_status.h"
#include "common/cli_parse.h"

namespace {

rwkv::client::ChatRepl* g_repl = nullptr;

void OnSigint(int /*signum*/) {
  if (g_repl != nullptr) g_repl->RequestCancel();
}

int RunHealth(rwkv::client::ChatClient& client) {
  absl::StatusOr<rwkv::client::HealthStatus> health = client.CheckHealth("");
  if (!health.ok()) {
    std::cerr << "rwkv-chat: "
              << rwkv::client::DescribeError("Health/Check", health.status())
              << "\n";
    return 1;
  }
  switch (*health) {
    case rwkv::client::HealthStatus::kServing:
      std::cout << "SERVING\n";
      return 0;
    case rwkv::client::HealthStatus::kNotServing:
      std::cout << "NOT_SERVING\n";
      return 1;
    default:
      std::cout << "UNKNOWN\n";
      return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  rwkv::client::ChatOptions options;
  CLI::App app("", "rwkv-chat");
  rwkv::client::AddChatFlags(app, &options);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  absl::StatusOr<std::unique_ptr<rwkv::client::ChatClient>> connected =
      rwkv::client::ChatClient::Connect(options.server, options.connect);
  if (!connected.ok()) {
    std::cerr << "rwkv-chat: " << connected.status().message() << "\n";
    return 2;
  }
  std::unique_ptr<rwkv::client::ChatClient> client = *std::move(connected);
  client->set_unary_timeout(absl::Seconds(options.timeout_seconds));
  if (options.health) return RunHealth(*client);

  rwkv::client::ChatRepl repl(client.get(), options, &std::cout, &std::cerr);
  if (absl::Status s = repl.Start(); !s.ok()) {
    std::cerr << "rwkv-chat: "
              << rwkv::client::DescribeError(
                     "opening a session on " + options.server, s)
              << "\n";
    return 1;
  }

  if (options.one_shot) {
    if (absl::Status s = repl.SendMessage(options.message); !s.ok()) {
      std::cerr << "rwkv-chat: "
                << rwkv::client::DescribeError(
                       options.generate ? "Generate" : "Chat", s)
                << "\n";
      return 1;
    }
    return 0;
  }

  const bool interactive = isatty(STDIN_FILENO) != 0;
  if (interactive) {
    // Ctrl-C cancels the reply in flight; at the prompt it ends the REPL
    // (getline is interrupted: no SA_RESTART).
    g_repl = &repl;
    struct sigaction action;
    std::memset(&action, 0, sizeof(action));
    action.sa_handler = OnSigint;
    sigemptyset(&action.sa_mask);
    sigaction(SIGINT, &action, nullptr);
    std::cout << "rwkv-chat: session " << repl.session_id() << " on "
              << options.server << " (/help for commands)\n";
  }
  int failures = repl.Run(std::cin, interactive);
  g_repl = nullptr;
  return (!interactive && failures > 0) ? 1 : 0;
}
