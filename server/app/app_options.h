// AppOptions: the request limits and presentation of the application layer,
// each with its documented default (the server's flags take their defaults
// from here).
#ifndef RWKV_SERVER_APP_APP_OPTIONS_H_
#define RWKV_SERVER_APP_APP_OPTIONS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "engine/state.h"

namespace rwkv::server {

struct AppOptions {
  // "{message}" is replaced by the user's message.
  std::string chat_template = "User: {message}\n\nAssistant:";
  // The template's stop strings (the reply ends there).
  std::vector<std::string> chat_stop = {"\n\n"};
  // How a system message of a conversation is rendered.
  std::string system_template = "System: {message}\n\n";
  // Most tokens in one Generate text / Chat message (after templating) /
  // CreateSession prefix.
  int max_prompt_tokens = 8192;
  // Most tokens of a whole rendered conversation (a message list sent at
  // once, e.g. a resent history; most of it is usually cached).
  int max_conversation_tokens = 65536;
  // Largest max_tokens a request may ask for.
  int max_tokens_limit = 4096;
  // max_tokens of requests that say 0 (at most max_tokens_limit).
  int default_max_tokens = 256;
  // Stop strings per request and bytes per stop string.
  int max_stop_strings = 16;
  int max_stop_bytes = 256;
  // Largest state file accepted (ImportState, CreateSession.initial_state).
  int64_t max_state_file_bytes = int64_t{256} << 20;
  // Shown by GetModelInfo.
  std::string model_path;
  std::string device = "cpu";
  std::string dtype = "fp32";
  // Server-side initial states by name (--initial-state NAME=FILE).
  std::map<std::string, std::shared_ptr<const engine::State>> initial_states;
  // The clock of the per-tenant token buckets; defaults to absl::Now.
  std::function<absl::Time()> clock;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_APP_OPTIONS_H_
