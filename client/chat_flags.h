// rwkv-chat's command line: CLI11 flags bound to ChatOptions
// (client/chat_options.h), whose member initializers are the defaults
// --help shows. Compiled into the rwkv-chat program and its flag tests only.
#ifndef RWKV_CLIENT_CHAT_FLAGS_H_
#define RWKV_CLIENT_CHAT_FLAGS_H_

#include "CLI/CLI.hpp"
#include "client/chat_options.h"

namespace rwkv::client {

// Adds rwkv-chat's flags and its MESSAGE words to `app`, bound to `options`
// (which must outlive the parse). Bad values are usage errors naming the
// flag (common/cli_parse.h).
void AddChatFlags(CLI::App& app, ChatOptions* options);

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CHAT_FLAGS_H_
