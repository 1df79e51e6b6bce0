#include "client/repl_command.h"

#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rwkv::client {
namespace {

using Kind = ReplCommand::Kind;

struct Spec {
  const char* name;
  Kind kind;
  int min_args;
  int max_args;
  const char* usage;
};

constexpr Spec kSpecs[] = {
    {"new", Kind::kNew, 0, 0, "/new"},
    {"session", Kind::kSession, 1, 1, "/session ID"},
    {"reset", Kind::kReset, 0, 0, "/reset"},
    {"fork", Kind::kFork, 0, 1, "/fork [NEW_ID]"},
    {"export", Kind::kExport, 1, 1, "/export FILE"},
    {"import", Kind::kImport, 1, 1, "/import FILE"},
    {"inspect", Kind::kInspect, 0, 0, "/inspect"},
    {"ttl", Kind::kTtl, 1, 1, "/ttl SECONDS"},
    {"info", Kind::kInfo, 0, 0, "/info"},
    {"help", Kind::kHelp, 0, 0, "/help"},
    {"quit", Kind::kQuit, 0, 0, "/quit"},
    {"exit", Kind::kQuit, 0, 0, "/exit"},
};

}  // namespace

absl::StatusOr<ReplCommand> ParseReplCommand(absl::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  ReplCommand command;
  if (absl::StripAsciiWhitespace(line).empty()) return command;
  if (line.front() != '/') {
    command.kind = Kind::kMessage;
    command.text = std::string(line);
    return command;
  }
  if (line.size() > 1 && line[1] == '/') {  // "//text" -> "/text"
    command.kind = Kind::kMessage;
    command.text = std::string(line.substr(1));
    return command;
  }
  std::vector<std::string> words =
      absl::StrSplit(line.substr(1), absl::ByAnyChar(" \t"), absl::SkipEmpty());
  if (words.empty()) {
    return absl::InvalidArgumentError("empty command; /help lists them");
  }
  const std::string name = absl::AsciiStrToLower(words[0]);
  for (const Spec& spec : kSpecs) {
    if (name != spec.name) continue;
    const int args = static_cast<int>(words.size()) - 1;
    if (args < spec.min_args || args > spec.max_args) {
      return absl::InvalidArgumentError(absl::StrCat("usage: ", spec.usage));
    }
    command.kind = spec.kind;
    if (args > 0) command.arg = words[1];
    if (spec.kind == Kind::kTtl) {
      if (!absl::SimpleAtoi(command.arg, &command.ttl_seconds) ||
          command.ttl_seconds <= 0) {
        return absl::InvalidArgumentError(
            absl::StrCat("/ttl needs a positive number of seconds, got '",
                         command.arg, "'"));
      }
    }
    return command;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown command /", words[0], "; /help lists them"));
}

const char* ReplHelpText() {
  return "Type a message to chat. Commands:\n"
         "  /new             start a new session (server-generated id)\n"
         "  /session ID      switch to session ID (created if missing)\n"
         "  /reset           back to the session's initial state\n"
         "  /fork [NEW_ID]   copy this session and switch to the copy\n"
         "  /export FILE     save the session's state to FILE\n"
         "  /import FILE     replace the session's state with FILE\n"
         "  /inspect         state statistics and health\n"
         "  /ttl SECONDS     set the session's time to live\n"
         "  /info            session and model information\n"
         "  /help            this text\n"
         "  /quit            leave (also Ctrl-D)\n"
         "  //text           send a message that starts with '/'\n";
}

}  // namespace rwkv::client
