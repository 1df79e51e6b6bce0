// rwkv-load's command line: CLI11 flags bound to LoadOptions
// (client/load_options.h), whose member initializers are the defaults
// --help shows. Compiled into the rwkv-load program and its flag tests only.
#ifndef RWKV_CLIENT_LOAD_FLAGS_H_
#define RWKV_CLIENT_LOAD_FLAGS_H_

#include "CLI/CLI.hpp"
#include "client/load_options.h"

namespace rwkv::client {

// Adds rwkv-load's flags to `app`, bound to `options` (which must outlive
// the parse). Bad values are usage errors naming the flag.
void AddLoadFlags(CLI::App& app, LoadOptions* options);

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_LOAD_FLAGS_H_
