// rwkv-server: serves rwkv.v1.ChatService (plus grpc.health.v1.Health and
// server reflection) for one RWKV model. Flags: server/server_flags.h and
// `rwkv-server --help` (every flag also has an RWKV_* variable and a --config
// file key).
// SIGTERM/SIGINT: every new call is answered UNAVAILABLE, running calls get
// --shutdown-grace seconds to finish, the rest end UNAVAILABLE (rolled back),
// exit 0. SIGHUP: reread the --api-keys file (a bad file keeps the old keys).
// --hash-key: print the SHA-256 of the API key read from stdin and exit.
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
using rwkv::server::ServerFlags;

// A failure after the command line was read: logged (in the chosen format).
int Fail(const absl::Status& s, int code) {
  LogError(absl::StrCat("rwkv-server: ", s.message()));
  return code;
}

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

}  // namespace

int main(int argc, char** argv) {
  ServerFlags flags;
  CLI::App app("", "rwkv-server");
  rwkv::server::AddServerFlags(app, &flags);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  rwkv::common::SetLogFormat(flags.log_format);
  rwkv::server::ServerOptions& options = flags.server;
  if (flags.hash_key) {
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
  if (flags.list_sessions) {
    absl::StatusOr<std::string> listing =
        rwkv::server::ListStoredSessions(options.rocksdb);
    if (!listing.ok()) return Fail(listing.status(), 1);
    std::fputs(listing->c_str(), stdout);
    return 0;
  }

  // Block the shutdown signals in every thread; main waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  rwkv::engine::EngineOptions& engine_options = flags.engine;
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine;
  if (!flags.random_model.empty()) {
    engine = RwkvEngine::CreateRandom(RandomSpec(flags), engine_options);
    options.app.model_path = absl::StrCat("random:", flags.random_model);
  } else {
    // No --model: the demo model the project trains and commits
    // (common/default_model.h), so a fresh checkout serves out of the box.
    if (engine_options.model_path.empty()) {
      absl::StatusOr<std::string> demo = rwkv::common::DefaultModelPath();
      if (!demo.ok()) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
                        "no --model given and no demo model found (",
                        demo.status().message(),
                        "); pass --model FILE or --random-model 169m|tiny")),
                    2);
      }
      engine_options.model_path = *demo;
    }
    engine = RwkvEngine::Create(engine_options);
    options.app.model_path = engine_options.model_path;
  }
  if (!engine.ok()) return Fail(engine.status(), 1);

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer;
  if (!flags.tokenizer.empty()) {
    tokenizer = Tokenizer::Load(flags.tokenizer);
  } else if (!flags.random_model.empty()) {
    tokenizer = Tokenizer::Load("bytes");
  } else {
    tokenizer = Tokenizer::ForVocabSize((*engine)->config().vocab_size);
  }
  if (!tokenizer.ok()) return Fail(tokenizer.status(), 1);

  const RwkvEngine& e = **engine;
  const rwkv::engine::ModelConfig& c = e.config();
  options.app.device = e.device();
  options.app.dtype = e.dtype();
  const std::string model_line = absl::StrCat(
      "model ", options.app.model_path, ": ",
      std::string(rwkv::engine::ArchitectureName(c.arch)),
      " n_layer=", c.n_layer, " n_embd=", c.n_embd, " vocab=", c.vocab_size,
      " params=", c.n_params, "; tokenizer ", std::string((*tokenizer)->name()),
      "; state bytes/session=", c.state_bytes_fp32, "; device ", e.device(),
      " ", e.dtype(), "; threads ", e.num_threads(), "; matmul ",
      e.matmul_backend());

  absl::StatusOr<std::unique_ptr<rwkv::server::RwkvServer>> server =
      rwkv::server::RwkvServer::Start(*std::move(engine), *std::move(tokenizer),
                                      options);
  if (!server.ok()) return Fail(server.status(), 1);
  LogInfo(model_line);
  LogInfo(absl::StrCat(
      "rwkv-server listening on ", (*server)->address(), "; max batch ",
      options.scheduler.max_batch, ", chunk ", options.scheduler.chunk_size,
      ", ttl ", absl::ToInt64Seconds(options.sessions.default_ttl),
      " s, max sessions ", options.sessions.max_sessions, ", store ",
      options.store == "memory" ? "memory"
                                : absl::StrCat("rocksdb:", options.rocksdb.dir),
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
  int sig = 0;
  for (;;) {
    sigwait(&signals, &sig);
    if (sig != SIGHUP) break;
    if (options.auth.api_keys_file.empty()) {
      LogInfo("SIGHUP: no --api-keys file to reload");
      continue;
    }
    absl::StatusOr<size_t> keys = (*server)->ReloadApiKeys();
    if (keys.ok()) {
      LogInfo(absl::StrCat("SIGHUP: reloaded ", *keys, " API keys from ",
                           options.auth.api_keys_file));
    } else {
      LogError(absl::StrCat("SIGHUP: keeping the API keys in use: ",
                            keys.status().message()));
    }
  }
  LogInfo(absl::StrCat("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                       "; shutting down (grace ",
                       absl::FormatDuration(flags.shutdown_grace), ")"));
  (*server)->Drain(flags.shutdown_grace);
  const rwkv::server::SchedulerStats stats = (*server)->scheduler().stats();
  // The last answers leave; calls arriving meanwhile are told UNAVAILABLE.
  absl::SleepFor(absl::Milliseconds(200));
  (*server)->CloseSessions();
  LogInfo(absl::StrCat("stopped; ", stats.tokens_generated,
                       " tokens generated, average batch ",
                       stats.avg_batch_size()));
  // No gRPC shutdown: it would cancel (CANCELLED) calls that arrive while it
  // runs. The process exits; calls in flight see the connection close
  // (UNAVAILABLE).
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(0);
}
