// ChatRepl: rwkv-chat's conversation loop over a ChatClient.
//
// Holds the current session id and executes parsed REPL lines (messages and
// /commands, see repl_command.h), streaming replies to `out` as chunks
// arrive. Errors are printed to `err` as "<what> failed: CODE: message" and
// the loop goes on; the one-shot mode of rwkv-chat is Start() + one
// SendMessage(). Output streams are borrowed and must outlive the ChatRepl.
//
// Thread safety: one thread drives a ChatRepl; RequestCancel() may be called
// from any thread or a signal handler (it sets an atomic flag).
#ifndef RWKV_CLIENT_CHAT_REPL_H_
#define RWKV_CLIENT_CHAT_REPL_H_

#include <atomic>
#include <istream>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "client/chat_client.h"
#include "client/chat_options.h"
#include "client/repl_command.h"

namespace rwkv::client {

class ChatRepl {
 public:
  // `client` is borrowed and must outlive the ChatRepl.
  ChatRepl(ChatClient* client, const ChatOptions& options, std::ostream* out,
           std::ostream* err);

  ChatRepl(const ChatRepl&) = delete;
  ChatRepl& operator=(const ChatRepl&) = delete;

  // Opens options.session (creating it if missing) or a new session.
  absl::Status Start();

  // Sends `text` as one Chat (or Generate) turn on the current session,
  // printing the reply as it streams, then a newline.
  absl::Status SendMessage(const std::string& text);

  // Executes one parsed line; sets *quit on /quit. Errors are returned (and
  // not printed).
  absl::Status Execute(const ReplCommand& command, bool* quit);

  // Reads lines from `in` until EOF or /quit, printing a prompt when
  // `interactive`. Returns the number of lines that failed.
  int Run(std::istream& in, bool interactive);

  // Cancels the turn in flight, if any (async-signal-safe).
  void RequestCancel() { cancel_requested_.store(true); }

  const std::string& session_id() const { return session_id_; }

 private:
  // A creation request with the options' TTL and initial state; an empty id
  // lets the server choose one.
  rwkv::v1::CreateSessionRequest NewSessionRequest(
      const std::string& session_id) const;
  absl::Status SwitchTo(const std::string& session_id);
  absl::Status PrintInfo();
  absl::Status PrintInspect();

  ChatClient* const client_;
  const ChatOptions options_;
  std::ostream* const out_;
  std::ostream* const err_;
  std::string session_id_;
  std::atomic<bool> cancel_requested_{false};
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CHAT_REPL_H_
