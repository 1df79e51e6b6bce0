// Environment variables and a config file for every flag of a program
// (rwkv-server), on top of CLI11's own support for both:
//
//   rwkv-server --max-batch 64          the command line
//   RWKV_MAX_BATCH=64 rwkv-server       the environment (prefix + the flag's
//                                       name in upper case, '-' as '_')
//   rwkv-server --config server.toml    a TOML or INI file of flag = value
//                                       lines: max-batch = 64 (max_batch
//                                       works too); a list flag takes an
//                                       array: initial-state = ["a=a.pth"]
//   RWKV_CONFIG=server.toml rwkv-server the config file from the environment
//
// Precedence: command line > environment > config file > default. (CLI11
// alone reads the file before the environment, so a file value would beat a
// variable; the file reader here skips the keys whose variable is set.) A key
// that names no flag, and any [section], is an error naming the key and the
// file; a missing config file is an error.
#ifndef RWKV_COMMON_ENV_CONFIG_H_
#define RWKV_COMMON_ENV_CONFIG_H_

#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/string_view.h"

namespace rwkv::common {

// "RWKV_" + "max-batch" -> "RWKV_MAX_BATCH".
std::string EnvVarName(absl::string_view prefix, absl::string_view flag_name);

// Gives every option of `app` with a long name (except --help) the variable
// EnvVarName(env_prefix, name), adds --config FILE (variable env_prefix +
// "CONFIG") and explains the precedence in the help's footer. Call after the
// last option is added; `app` must outlive its parse.
void AddEnvAndConfig(CLI::App& app, absl::string_view env_prefix);

}  // namespace rwkv::common

#endif  // RWKV_COMMON_ENV_CONFIG_H_
