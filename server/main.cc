// rwkv-server: serves rwkv.v1.ChatService (plus grpc.health.v1.Health and
// server reflection) and the OpenAI-compatible HTTP API, web chat page and
// Prometheus metrics for one RWKV model. Flags: server/server_flags.h and
// `rwkv-server --help` (every flag also has an RWKV_* variable and a --config
// file key).
// Start-up: the HTTP front listens first (/healthz 200, /readyz 503 while
// the model loads), then the model loads and gRPC starts.
// SIGTERM/SIGINT: every new call is answered UNAVAILABLE (HTTP: 503),
// running calls get --shutdown-grace seconds to finish, the rest end
// UNAVAILABLE (rolled back), exit 0. SIGHUP: reread the --api-keys file (a
// bad file keeps the old keys). --hash-key: print the SHA-256 of the API key
// read from stdin and exit.
// Exit status: 0 after a signal, 1 a start-up failure, 2 a command-line
// mistake (or no model to serve).
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <iterator>
#include <memory>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/cli_parse.h"
#include "common/default_model.h"
#include "common/log.h"
#include "engine/rwkv_engine.h"
#include "engine/tokenizer.h"
#include "server/auth/api_key_table.h"
#include "server/rwkv_server.h"
#include "server/server_flags.h"
#include "server/store_admin.h"

namespace {

using rwkv::common::LogError;
using rwkv::common::LogInfo;
using rwkv::engine::RwkvEngine;
using rwkv::engine::Tokenizer;
using rwkv::server::RwkvServer;
using rwkv::server::ServerFlags;
using rwkv::server::ServerOptions;

// A failure after the command line was read: logged (in the chosen format).
int Fail(const absl::Status& s, int code) {
  LogError(absl::StrCat("rwkv-server: ", s.message()));
  return code;
}

// Parses the command line into `flags` and sets the log format. An exit
// code when the program should stop here (--help, a usage error).
std::optional<int> ParseCommandLine(int argc, char** argv, ServerFlags* flags) {
  CLI::App app("", "rwkv-server");
  rwkv::server::AddServerFlags(app, flags);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return exit;
  }
  rwkv::common::SetLogFormat(flags->log_format);
  return std::nullopt;
}

// --hash-key: prints the SHA-256 of the key on stdin; the exit code.
int HashKey() {
  std::string key((std::istreambuf_iterator<char>(std::cin)),
                  std::istreambuf_iterator<char>());
  while (!key.empty() && (key.back() == '\n' || key.back() == '\r')) {
    key.pop_back();
  }
  if (key.empty()) {
    std::fputs("rwkv-server --hash-key: no key on stdin\n", stderr);
    return 2;
  }
  std::printf("%s\n", rwkv::server::HashApiKey(key).c_str());
  return 0;
}

// --list-sessions: prints what the RocksDB store holds; the exit code.
int ListSessions(const ServerOptions& options) {
  absl::StatusOr<std::string> listing =
      rwkv::server::ListStoredSessions(options.rocksdb);
  if (!listing.ok()) return Fail(listing.status(), 1);
  std::fputs(listing->c_str(), stdout);
  return 0;
}

// Decides what model is served and records its name in the app options:
// --random-model, else --model, else the demo model the project trains and
// commits (common/default_model.h), so a fresh checkout serves out of the
// box. INVALID_ARGUMENT when there is none.
absl::Status ChooseModel(ServerFlags& flags) {
  std::string& model_path = flags.engine.model_path;
  if (!flags.random_model.empty()) {
    flags.server.app.model_path = absl::StrCat("random:", flags.random_model);
    return absl::OkStatus();
  }
  if (model_path.empty()) {
    absl::StatusOr<std::string> demo = rwkv::common::DefaultModelPath();
    if (!demo.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "no --model given and no demo model found (", demo.status().message(),
          "); pass --model FILE or --random-model 169m|tiny"));
    }
    model_path = *demo;
  }
  flags.server.app.model_path = model_path;
  return absl::OkStatus();
}

// Blocks SIGINT and SIGTERM in this thread and every thread started after
// it; WaitForShutdown() takes them. Returns the set.
sigset_t BlockShutdownSignals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// Binds the HTTP front so probes answer while the model loads.
absl::StatusOr<std::unique_ptr<RwkvServer>> ListenForProbes(
    const ServerOptions& options) {
  absl::StatusOr<std::unique_ptr<RwkvServer>> server =
      RwkvServer::Listen(options);
  if (server.ok() && (*server)->http_port() != 0) {
    LogInfo(absl::StrCat("HTTP front on ",
                         options.tls.enabled() ? "https://" : "http://",
                         (*server)->http_address(),
                         "/ (OpenAI-compatible API under /v1, chat page at /, "
                         "/metrics, /healthz, /readyz)"));
  }
  return server;
}

// The weights of --random-model's shape.
rwkv::engine::RandomModelSpec RandomSpec(const ServerFlags& flags) {
  rwkv::engine::RandomModelSpec spec;
  if (flags.random_model == "169m") {
    spec.n_layer = 12;
    spec.n_embd = 768;
    spec.vocab_size = 50277;
  } else {  // "tiny" (the flag accepts nothing else)
    spec.n_layer = 2;
    spec.n_embd = 64;
    spec.vocab_size = 256;
  }
  spec.seed = flags.random_seed;
  return spec;
}

struct LoadedModel {
  std::unique_ptr<RwkvEngine> engine;
  std::unique_ptr<Tokenizer> tokenizer;
};

// Loads the chosen model (ChooseModel) and its tokenizer: --tokenizer, else
// bytes for random weights, else the one the vocabulary size implies.
absl::StatusOr<LoadedModel> LoadModel(const ServerFlags& flags) {
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine =
      flags.random_model.empty()
          ? RwkvEngine::Create(flags.engine)
          : RwkvEngine::CreateRandom(RandomSpec(flags), flags.engine);
  if (!engine.ok()) return engine.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer;
  if (!flags.tokenizer.empty()) {
    tokenizer = Tokenizer::Load(flags.tokenizer);
  } else if (!flags.random_model.empty()) {
    tokenizer = Tokenizer::Load("bytes");
  } else {
    tokenizer = Tokenizer::ForVocabSize((*engine)->config().vocab_size);
  }
  if (!tokenizer.ok()) return tokenizer.status();
  return LoadedModel{*std::move(engine), *std::move(tokenizer)};
}

// One log line describing the model being served.
std::string DescribeModel(const LoadedModel& model,
                          const std::string& model_path) {
  const RwkvEngine& e = *model.engine;
  const rwkv::engine::ModelConfig& c = e.config();
  return absl::StrCat("model ", model_path, ": ",
                      std::string(rwkv::engine::ArchitectureName(c.arch)),
                      " n_layer=", c.n_layer, " n_embd=", c.n_embd,
                      " vocab=", c.vocab_size, " params=", c.n_params,
                      "; tokenizer ", std::string(model.tokenizer->name()),
                      "; state bytes/session=", c.state_bytes_fp32, "; device ",
                      e.device(), " ", e.dtype(), "; threads ", e.num_threads(),
                      "; matmul ", e.matmul_backend());
}

// The line the tests and operators wait for: the server is serving.
void LogListening(const RwkvServer& server, const ServerOptions& options) {
  LogInfo(absl::StrCat(
      "rwkv-server listening on ", server.address(), "; max batch ",
      options.scheduler.max_batch, ", chunk ", options.scheduler.chunk_size,
      ", ttl ", absl::ToInt64Seconds(options.sessions.default_ttl),
      " s, max sessions ", options.sessions.max_sessions, ", store ",
      options.store == "rocksdb" ? absl::StrCat("rocksdb:", options.rocksdb.dir)
                                 : options.store,
      ", max state bytes ", options.sessions.max_state_bytes,
      ", prefix cache bytes ", options.prefix_cache_bytes,
      options.tls.enabled()
          ? (options.tls.client_ca_file.empty() ? "; TLS" : "; mutual TLS")
          : "; plaintext"));
  if (options.auth.api_keys_file.empty()) {
    LogInfo("no --api-keys: every caller is the anonymous tenant");
  } else {
    LogInfo(absl::StrCat("API keys from ", options.auth.api_keys_file));
  }
}

// Loads the model and starts serving it on `server` (after Listen).
absl::Status LoadAndServe(ServerFlags& flags, RwkvServer& server) {
  absl::StatusOr<LoadedModel> model = LoadModel(flags);
  if (!model.ok()) return model.status();
  ServerOptions& options = flags.server;
  options.app.device = model->engine->device();
  options.app.dtype = model->engine->dtype();
  const std::string model_line = DescribeModel(*model, options.app.model_path);
  if (absl::Status s = server.Serve(std::move(model->engine),
                                    std::move(model->tokenizer), options);
      !s.ok()) {
    return s;
  }
  LogInfo(model_line);
  LogListening(server, options);
  return absl::OkStatus();
}

// SIGHUP: rereads the API keys file (a bad one keeps the keys in use).
void ReloadKeys(const ServerOptions& options, RwkvServer& server) {
  if (options.auth.api_keys_file.empty()) {
    LogInfo("SIGHUP: no --api-keys file to reload");
    return;
  }
  absl::StatusOr<size_t> keys = server.ReloadApiKeys();
  if (keys.ok()) {
    LogInfo(absl::StrCat("SIGHUP: reloaded ", *keys, " API keys from ",
                         options.auth.api_keys_file));
  } else {
    LogError(absl::StrCat("SIGHUP: keeping the API keys in use: ",
                          keys.status().message()));
  }
}

// Waits for SIGTERM or SIGINT (blocked by BlockShutdownSignals; SIGHUP
// reloads the keys meanwhile), then drains `server` with `grace` for
// running streams, closes the session store and exits the process without
// gRPC's shutdown, which would cancel (CANCELLED) calls arriving while it
// runs: calls in flight see the connection close (UNAVAILABLE).
[[noreturn]] void WaitForShutdown(const sigset_t& signals,
                                  const ServerOptions& options,
                                  absl::Duration grace, RwkvServer& server) {
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    ReloadKeys(options, server);
  }
  LogInfo(absl::StrCat("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                       "; shutting down (grace ", absl::FormatDuration(grace),
                       ")"));
  server.Drain(grace);
  const rwkv::server::SchedulerStats stats = server.scheduler().stats();
  // The last answers leave; calls arriving meanwhile are told UNAVAILABLE.
  absl::SleepFor(absl::Milliseconds(200));
  server.CloseSessions();
  LogInfo(absl::StrCat("stopped; ", stats.tokens_generated,
                       " tokens generated, average batch ",
                       stats.avg_batch_size()));
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  ServerFlags flags;
  if (std::optional<int> exit = ParseCommandLine(argc, argv, &flags)) {
    return *exit;
  }
  if (flags.hash_key) return HashKey();
  if (flags.list_sessions) return ListSessions(flags.server);
  if (absl::Status s = ChooseModel(flags); !s.ok()) return Fail(s, 2);
  const sigset_t signals = BlockShutdownSignals();
  absl::StatusOr<std::unique_ptr<RwkvServer>> server =
      ListenForProbes(flags.server);
  if (!server.ok()) return Fail(server.status(), 1);
  if (absl::Status s = LoadAndServe(flags, **server); !s.ok()) {
    return Fail(s, 1);
  }
  WaitForShutdown(signals, flags.server, flags.shutdown_grace, **server);
}
