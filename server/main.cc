// rwkv-server: serves rwkv.v1.ChatService (plus grpc.health.v1.Health and
// server reflection) and the OpenAI-compatible HTTP API, web page and
// metrics for one RWKV model. See `rwkv-server --help`.
// SIGTERM/SIGINT: stop accepting calls, let running streams finish for
// --shutdown-grace seconds, cancel the rest (rolled back), exit 0.
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/rwkv_engine.h"
#include "engine/tokenizer.h"
#include "server/log.h"
#include "server/rwkv_server.h"
#include "tools/cli_args.h"
#include "tools/default_model.h"

namespace {

using rwkv::engine::RwkvEngine;
using rwkv::engine::Tokenizer;
using rwkv::server::LogError;
using rwkv::server::LogInfo;
using rwkv::server::ServerOptions;
using rwkv::tools::CliArgs;

constexpr char kUsage[] = R"(usage: rwkv-server [flags]

Model:
  --model FILE              RWKV checkpoint (.pth or .safetensors); default:
                            $RWKV_MODEL, else the built-in demo model
  --random-model 169m|tiny  random-weight model instead (tests, benchmarks):
                            169m = 12 layers x 768, vocab 50277 (as
                            rwkv-bench); tiny = 2 layers x 64, vocab 256
  --random-seed N           seed of the random weights (default 1)
  --tokenizer SPEC          bytes | World vocab file | tokenizer.json
                            (default: inferred from the vocabulary size; with
                            --random-model: bytes, ids >= 256 then add no text)
  --device cpu|cuda[:N]     (default cpu)
  --dtype fp32|bf16|fp16    (default fp32)
  --threads N               compute threads, 0 = all cores (default 0)
Serving:
  --listen HOST:PORT        gRPC (default 127.0.0.1:50051)
  --http-listen HOST:PORT   HTTP: OpenAI-compatible API, chat page, /metrics;
                            "" disables it (default 127.0.0.1:8080)
  --http-threads N          HTTP worker threads; each open connection holds
                            one (default 64)
  --http-max-body-bytes N[K|M|G]  largest HTTP request body (default 8M)
  --model-name NAME         model id of the HTTP API (default: the model
                            file's name without extension)
  --max-batch N             sessions per batched decode step (default 32)
  --chunk-size N            prompt tokens per scheduler step (default 32)
  --max-prompt-tokens N     per Generate text / Chat message (default 8192)
  --max-conversation-tokens N  per message list sent at once over HTTP
                            (default 65536)
  --max-tokens-limit N      largest max_tokens a request may ask (default 4096)
  --default-max-tokens N    max_tokens when a request says 0 (default 256)
  --chat-template T         "{message}" is replaced; \n is a newline
                            (default "User: {message}\n\nAssistant:")
  --shutdown-grace SECONDS  time streams get to finish on SIGTERM (default 10)
Sessions:
  --ttl SECONDS             idle time before a session expires (default 3600)
  --max-sessions N          (default 10000)
  --max-state-bytes N[K|M|G]  memory bound over all session states; idle
                            sessions are evicted LRU first (default 0: none)
  --initial-state NAME=FILE a named state sessions can start from (repeatable)
  --prefix-cache-bytes N[K|M|G]  shared-prefix state cache (default 256M)
)";

absl::StatusOr<int64_t> ParseBytes(const std::string& flag,
                                   const std::string& text) {
  std::string digits = text;
  int64_t mult = 1;
  if (!digits.empty()) {
    const char last = digits.back();
    const int shift = last == 'K' || last == 'k'   ? 10
                      : last == 'M' || last == 'm' ? 20
                      : last == 'G' || last == 'g' ? 30
                                                   : 0;
    if (shift != 0) {
      mult = int64_t{1} << shift;
      digits.pop_back();
    }
  }
  int64_t n = 0;
  if (!absl::SimpleAtoi(digits, &n) || n < 0 || n > (int64_t{1} << 50) / mult) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--", flag, ": expected a byte count like 512M, got '", text, "'"));
  }
  return n * mult;
}

absl::StatusOr<int64_t> IntFlag(const CliArgs& args, const std::string& name,
                                int64_t fallback, int64_t lo, int64_t hi) {
  absl::StatusOr<int64_t> v = args.GetInt(name, fallback);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be in [", lo, ", ", hi, "], got ", *v));
  }
  return v;
}

// The model to serve: random weights of a named shape, or a file.
struct ModelChoice {
  std::optional<rwkv::engine::RandomModelSpec> random;
  std::string path;  // as shown to clients ("random:tiny" for random ones)
};

// --model / --random-model / $RWKV_MODEL / the demo model; errors are
// command-line mistakes.
absl::StatusOr<ModelChoice> ChooseModel(const CliArgs& args, uint64_t seed) {
  ModelChoice choice;
  const std::string random_model = args.GetOr("random-model", "");
  if (!random_model.empty()) {
    if (args.Has("model")) {
      return absl::InvalidArgumentError(
          "--model and --random-model exclude each other");
    }
    rwkv::engine::RandomModelSpec spec;
    if (random_model == "169m") {
      spec.n_layer = 12;
      spec.n_embd = 768;
      spec.vocab_size = 50277;
    } else if (random_model == "tiny") {
      spec.n_layer = 2;
      spec.n_embd = 64;
      spec.vocab_size = 256;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          "--random-model must be 169m or tiny, got '", random_model, "'"));
    }
    spec.seed = seed;
    choice.random = spec;
    choice.path = absl::StrCat("random:", random_model);
    return choice;
  }
  // No --model: $RWKV_MODEL, else the demo model the project trains and
  // commits (tools/default_model.h), so a fresh checkout serves out of the
  // box.
  choice.path = args.GetOr("model", "");
  if (choice.path.empty()) {
    absl::StatusOr<std::string> demo = rwkv::tools::DefaultModelPath();
    if (!demo.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("no --model given and no demo model found (",
                       std::string(demo.status().message()),
                       "); pass --model FILE or --random-model 169m|tiny"));
    }
    choice.path = *demo;
  }
  return choice;
}

int Fail(const absl::Status& s, int code) {
  std::fprintf(stderr, "rwkv-server: %s\n", std::string(s.message()).c_str());
  return code;
}

}  // namespace

int main(int argc, char** argv) {
  // --initial-state may repeat; CliArgs does not allow that, so take those
  // out first.
  std::map<std::string, std::string> initial_states;
  std::vector<char*> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    if (arg == "--initial-state") {
      if (i + 1 >= argc) {
        return Fail(
            absl::InvalidArgumentError("--initial-state needs NAME=FILE"), 2);
      }
      value = argv[++i];
    } else if (arg.rfind("--initial-state=", 0) == 0) {
      value = arg.substr(std::strlen("--initial-state="));
    } else {
      rest.push_back(argv[i]);
      continue;
    }
    const size_t eq = value.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == value.size()) {
      return Fail(absl::InvalidArgumentError(absl::StrCat(
                      "--initial-state expects NAME=FILE, got '", value, "'")),
                  2);
    }
    initial_states[value.substr(0, eq)] = value.substr(eq + 1);
  }

  CliArgs args({"model",
                "random-model",
                "random-seed",
                "tokenizer",
                "device",
                "dtype",
                "threads",
                "listen",
                "http-listen",
                "http-threads",
                "http-max-body-bytes",
                "model-name",
                "max-batch",
                "chunk-size",
                "max-prompt-tokens",
                "max-conversation-tokens",
                "max-tokens-limit",
                "default-max-tokens",
                "chat-template",
                "shutdown-grace",
                "ttl",
                "max-sessions",
                "max-state-bytes",
                "prefix-cache-bytes"},
               {"help"});
  if (absl::Status s =
          args.Parse(static_cast<int>(rest.size()), rest.data(), 1);
      !s.ok()) {
    std::fprintf(stderr, "rwkv-server: %s\n%s",
                 std::string(s.message()).c_str(), kUsage);
    return 2;
  }
  if (args.Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (!args.positionals().empty()) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(
                    "unexpected argument '", args.positionals()[0], "'")),
                2);
  }

  ServerOptions options;
  options.listen = args.GetOr("listen", options.listen);
  options.http.listen = args.GetOr("http-listen", options.http.listen);
  options.http.model_name = args.GetOr("model-name", "");
  options.initial_state_files = initial_states;
  absl::Status flag_status;
  auto int_flag = [&](const std::string& name, int64_t fallback, int64_t lo,
                      int64_t hi) -> int64_t {
    absl::StatusOr<int64_t> v = IntFlag(args, name, fallback, lo, hi);
    if (!v.ok()) {
      if (flag_status.ok()) flag_status = v.status();
      return fallback;
    }
    return *v;
  };
  const int64_t threads = int_flag("threads", 0, 0, 1024);
  options.scheduler.max_batch =
      static_cast<int>(int_flag("max-batch", 32, 1, 4096));
  options.scheduler.chunk_size =
      static_cast<int>(int_flag("chunk-size", 32, 1, 1 << 20));
  options.app.max_prompt_tokens =
      static_cast<int>(int_flag("max-prompt-tokens", 8192, 1, 1 << 24));
  options.app.max_conversation_tokens =
      static_cast<int>(int_flag("max-conversation-tokens", 65536, 1, 1 << 24));
  options.http.threads =
      static_cast<int>(int_flag("http-threads", options.http.threads, 1, 4096));
  options.app.max_tokens_limit =
      static_cast<int>(int_flag("max-tokens-limit", 4096, 1, 1 << 24));
  options.app.default_max_tokens = static_cast<int>(
      int_flag("default-max-tokens",
               std::min<int64_t>(256, options.app.max_tokens_limit), 1,
               options.app.max_tokens_limit));
  const int64_t grace_s = int_flag("shutdown-grace", 10, 0, 3600);
  options.sessions.default_ttl =
      absl::Seconds(int_flag("ttl", 3600, 1, int64_t{10} * 365 * 86400));
  options.sessions.max_ttl =
      std::max(options.sessions.max_ttl, options.sessions.default_ttl);
  options.sessions.max_sessions =
      static_cast<int>(int_flag("max-sessions", 10000, 1, 10000000));
  const int64_t random_seed = int_flag("random-seed", 1, 0, INT64_MAX);
  if (!flag_status.ok()) return Fail(flag_status, 2);
  if (auto v = args.Get("max-state-bytes")) {
    absl::StatusOr<int64_t> b = ParseBytes("max-state-bytes", *v);
    if (!b.ok()) return Fail(b.status(), 2);
    options.sessions.max_state_bytes = *b;
  }
  if (auto v = args.Get("http-max-body-bytes")) {
    absl::StatusOr<int64_t> b = ParseBytes("http-max-body-bytes", *v);
    if (!b.ok()) return Fail(b.status(), 2);
    if (*b < 1024) {
      return Fail(absl::InvalidArgumentError(
                      "--http-max-body-bytes must be at least 1K"),
                  2);
    }
    options.http.max_body_bytes = *b;
  }
  if (auto v = args.Get("prefix-cache-bytes")) {
    absl::StatusOr<int64_t> b = ParseBytes("prefix-cache-bytes", *v);
    if (!b.ok()) return Fail(b.status(), 2);
    options.prefix_cache_bytes = *b;
  }
  if (auto t = args.Get("chat-template")) {
    if (t->find("{message}") == std::string::npos) {
      return Fail(
          absl::InvalidArgumentError("--chat-template must contain {message}"),
          2);
    }
    options.app.chat_template = absl::StrReplaceAll(*t, {{"\\n", "\n"}});
  }

  absl::StatusOr<ModelChoice> model =
      ChooseModel(args, static_cast<uint64_t>(random_seed));
  if (!model.ok()) return Fail(model.status(), 2);

  // Block the shutdown signals in every thread; main waits for them below.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // HTTP first: /healthz and /readyz (503) answer while the model loads.
  absl::StatusOr<std::unique_ptr<rwkv::server::RwkvServer>> server =
      rwkv::server::RwkvServer::Listen(options);
  if (!server.ok()) {
    return Fail(server.status(),
                absl::IsInvalidArgument(server.status()) ? 2 : 1);
  }
  if ((*server)->http_port() != 0) {
    LogInfo(absl::StrCat("HTTP front on http://", (*server)->http_address(),
                         "/ (OpenAI-compatible API under /v1, chat page at /, "
                         "/metrics, /healthz, /readyz)"));
  }

  rwkv::engine::EngineOptions engine_options;
  engine_options.device = args.GetOr("device", "cpu");
  engine_options.dtype = args.GetOr("dtype", "fp32");
  engine_options.num_threads = static_cast<int>(threads);
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine;
  if (model->random.has_value()) {
    engine = RwkvEngine::CreateRandom(*model->random, engine_options);
  } else {
    engine_options.model_path = model->path;
    engine = RwkvEngine::Create(engine_options);
  }
  options.app.model_path = model->path;
  if (!engine.ok()) return Fail(engine.status(), 1);

  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer;
  if (auto spec = args.Get("tokenizer")) {
    tokenizer = Tokenizer::Load(*spec);
  } else if (model->random.has_value()) {
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

  if (absl::Status s =
          (*server)->Serve(*std::move(engine), *std::move(tokenizer), options);
      !s.ok()) {
    return Fail(s, 1);
  }
  LogInfo(model_line);
  LogInfo(absl::StrCat("rwkv-server listening on ", (*server)->address(),
                       "; max batch ", options.scheduler.max_batch, ", chunk ",
                       options.scheduler.chunk_size, ", ttl ",
                       absl::ToInt64Seconds(options.sessions.default_ttl),
                       " s, max sessions ", options.sessions.max_sessions,
                       ", max state bytes ", options.sessions.max_state_bytes));

  int sig = 0;
  sigwait(&signals, &sig);
  LogInfo(absl::StrCat("received ", sig == SIGTERM ? "SIGTERM" : "SIGINT",
                       "; shutting down (grace ", grace_s, " s)"));
  (*server)->Shutdown(absl::Seconds(grace_s));
  const rwkv::server::SchedulerStats stats = (*server)->scheduler().stats();
  LogInfo(absl::StrCat("stopped; ", stats.tokens_generated,
                       " tokens generated, average batch ",
                       stats.avg_batch_size()));
  return 0;
}
