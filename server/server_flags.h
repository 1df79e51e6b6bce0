// rwkv-server's command line: every flag (CLI11) bound to the field of the
// option struct it sets, so each default is written once, in that struct
// (ServerOptions and its nested options, EngineOptions, ServerFlags below),
// and --help shows it. Every flag also has an RWKV_* environment variable
// and a --config file key (common/env_config.h; precedence: command line >
// environment > config file > default). Compiled only into the rwkv-server
// program.
#ifndef RWKV_SERVER_SERVER_FLAGS_H_
#define RWKV_SERVER_SERVER_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/time/time.h"
#include "common/log.h"
#include "engine/engine_options.h"
#include "server/rwkv_server.h"

namespace rwkv::server {

// What rwkv-server is configured with: the library options plus the
// program's own settings.
struct ServerFlags {
  ServerOptions server;
  // model_path, device, dtype, num_threads. An empty model_path (no --model)
  // means the default model (common/default_model.h).
  engine::EngineOptions engine;
  // "169m" or "tiny": random weights of that shape instead of a checkpoint.
  std::string random_model;
  // Seed of the random weights.
  uint64_t random_seed = 1;
  // bytes | World vocab file | tokenizer.json; empty: inferred from the
  // vocabulary size (with --random-model: bytes).
  std::string tokenizer;
  // Time running streams get to finish on SIGTERM/SIGINT.
  absl::Duration shutdown_grace = absl::Seconds(10);
  common::LogFormat log_format = common::LogFormat::kText;
  // Print the sessions server.rocksdb.dir holds and exit (no model loaded).
  bool list_sessions = false;
  // Read an API key from stdin, print its SHA-256 (a keys file line's
  // first field) and exit.
  bool hash_key = false;
  // --initial-state NAME=FILE entries as given (parsed into
  // server.initial_state_files after parsing).
  std::vector<std::string> initial_states;
};

// Adds the flags, bound to `flags` (whose current values are the defaults),
// --config and the RWKV_* variables, and the checks that span flags (run
// after parsing; they fill server.initial_state_files). `flags` must outlive
// the parse.
void AddServerFlags(CLI::App& app, ServerFlags* flags);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SERVER_FLAGS_H_
