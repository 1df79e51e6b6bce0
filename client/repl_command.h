// ReplCommand: one line typed into rwkv-chat's REPL, parsed.
//
// A line that starts with '/' is a command (/new, /session ID, /reset,
// /fork [NEW_ID], /export FILE, /import FILE, /inspect, /ttl SECONDS, /info,
// /help, /quit); "//text" sends the message "/text"; anything else is a
// message for the model. Parsing is separate from execution so it can be
// tested without a server.
#ifndef RWKV_CLIENT_REPL_COMMAND_H_
#define RWKV_CLIENT_REPL_COMMAND_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace rwkv::client {

struct ReplCommand {
  enum class Kind {
    kEmpty,    // blank line: nothing to do
    kMessage,  // `text` is sent to the model
    kNew,
    kSession,  // `arg`: the session id
    kReset,
    kFork,    // `arg`: the new id, may be empty (server-generated)
    kExport,  // `arg`: the file
    kImport,  // `arg`: the file
    kInspect,
    kTtl,  // `ttl_seconds` > 0
    kInfo,
    kHelp,
    kQuit,
  };
  Kind kind = Kind::kEmpty;
  std::string text;
  std::string arg;
  int64_t ttl_seconds = 0;
};

// Parses one line (without its newline; a trailing '\r' is dropped). Unknown
// commands and missing/extra arguments are INVALID_ARGUMENT with a message
// that names the command.
absl::StatusOr<ReplCommand> ParseReplCommand(absl::string_view line);

// The /help text.
const char* ReplHelpText();

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_REPL_COMMAND_H_
