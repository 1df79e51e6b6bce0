// AddConnectFlags: the flags rwkv-chat and rwkv-load share for reaching a
// secured server, bound to ConnectOptions: --api-key (or $RWKV_API_KEY,
// which keeps the key out of the process list), --tls-ca, --tls-cert,
// --tls-key, --tls-server-name.
#ifndef RWKV_CLIENT_CONNECT_FLAGS_H_
#define RWKV_CLIENT_CONNECT_FLAGS_H_

#include "CLI/CLI.hpp"
#include "client/connect_options.h"

namespace rwkv::client {

// `options` must outlive the parse.
void AddConnectFlags(CLI::App& app, ConnectOptions* options);

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_CONNECT_FLAGS_H_
