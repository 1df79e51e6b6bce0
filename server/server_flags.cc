#include "server/server_flags.h"

#include <algorithm>
#include <cstdlib>
#include <limits>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/byte_size.h"
#include "common/cli_validators.h"
#include "common/env_config.h"
#include "engine/state_file.h"
#include "server/session/redis_connection.h"

namespace rwkv::server {
namespace {

using common::ByteSize;
using common::IntIn;

constexpr char kModelGroup[] = "Model";
constexpr char kServingGroup[] = "Serving";
constexpr char kHttpGroup[] = "HTTP";
constexpr char kSessionsGroup[] = "Sessions";
constexpr char kStoreGroup[] = "Session store";
constexpr char kLoggingGroup[] = "Logging";
constexpr char kSecurityGroup[] = "Security";
constexpr int64_t kTenYearsSeconds = int64_t{10} * 365 * 86400;

// An integer flag in [lo, hi] bound to `*field`.
template <typename T>
CLI::Option* AddInt(CLI::App& app, const std::string& name, T* field,
                    int64_t lo, int64_t hi, const std::string& help) {
  return app.add_option(name, *field, help)
      ->transform(IntIn(lo, hi))
      ->type_name("N")
      ->capture_default_str();
}

// A whole number of seconds in [lo, hi] bound to an absl::Duration.
CLI::Option* AddSeconds(CLI::App& app, const std::string& name,
                        absl::Duration* field, int64_t lo, int64_t hi,
                        const std::string& help) {
  return app
      .add_option_function<int64_t>(
          name, [field](int64_t s) { *field = absl::Seconds(s); }, help)
      ->transform(IntIn(lo, hi))
      ->type_name("SECONDS")
      ->default_str(absl::StrCat(absl::ToInt64Seconds(*field)));
}

// A byte count like 512M bound to an int64_t.
CLI::Option* AddBytes(CLI::App& app, const std::string& name, int64_t* field,
                      const std::string& help) {
  return app.add_option(name, *field, help)
      ->transform(ByteSize())
      ->type_name("BYTES")
      ->default_str(common::FormatByteSize(*field));
}

void AddModelFlags(CLI::App& app, ServerFlags* f) {
  app.add_option("--model", f->engine.model_path,
                 "RWKV checkpoint (.pth or .safetensors); none: the built-in "
                 "demo model")
      ->type_name("FILE")
      ->group(kModelGroup);
  app.add_option("--random-model", f->random_model,
                 "random weights instead of a checkpoint (tests, "
                 "benchmarks): 169m = 12 layers x 768, vocab 50277 (as "
                 "rwkv-bench); tiny = 2 layers x 64, vocab 256")
      ->check(common::OneOf({"169m", "tiny"}))
      ->type_name("169m|tiny")
      ->group(kModelGroup);
  AddInt(app, "--random-seed", &f->random_seed, 0,
         std::numeric_limits<int64_t>::max(), "seed of the random weights")
      ->group(kModelGroup);
  app.add_option("--tokenizer", f->tokenizer,
                 "bytes | World vocab file | tokenizer.json; none: inferred "
                 "from the vocabulary size (with --random-model: bytes, ids "
                 ">= 256 then add no text)")
      ->type_name("SPEC")
      ->group(kModelGroup);
  app.add_option("--device", f->engine.device, "cpu | cuda | cuda:N")
      ->capture_default_str()
      ->type_name("DEVICE")
      ->group(kModelGroup);
  app.add_option("--dtype", f->engine.dtype,
                 "weights (auto: int8 for a quantized file, else fp32; CPU "
                 "bf16/int8: the large matrices; fp16: CUDA only)")
      ->check(common::OneOf({"auto", "fp32", "bf16", "int8", "fp16"}))
      ->capture_default_str()
      ->type_name("auto|fp32|bf16|int8|fp16")
      ->group(kModelGroup);
  AddInt(app, "--threads", &f->engine.num_threads, 0, 1024,
         "compute threads, 0 = all cores")
      ->group(kModelGroup);
}

void AddServingFlags(CLI::App& app, ServerFlags* f) {
  ServerOptions& s = f->server;
  app.add_option("--listen", s.listen, "address to serve on; port 0 picks one")
      ->capture_default_str()
      ->type_name("HOST:PORT")
      ->group(kServingGroup);
  AddInt(app, "--max-batch", &s.scheduler.max_batch, 1, 4096,
         "sessions per batched decode step")
      ->group(kServingGroup);
  AddInt(app, "--chunk-size", &s.scheduler.chunk_size, 1, 1 << 20,
         "prompt tokens per scheduler step")
      ->group(kServingGroup);
  AddInt(app, "--max-prompt-tokens", &s.app.max_prompt_tokens, 1, 1 << 24,
         "per Generate text / Chat message")
      ->group(kServingGroup);
  AddInt(app, "--max-tokens-limit", &s.app.max_tokens_limit, 1, 1 << 24,
         "largest max_tokens a request may ask for")
      ->group(kServingGroup);
  AddInt(app, "--default-max-tokens", &s.app.default_max_tokens, 1, 1 << 24,
         "max_tokens when a request says 0 (at most --max-tokens-limit)")
      ->group(kServingGroup);
  app.add_option("--chat-template", s.app.chat_template,
                 "{message} is replaced by the message; \\n is a newline")
      ->transform(common::UnescapeNewlines())
      ->check(
          [](const std::string& t) {
            return t.find("{message}") == std::string::npos
                       ? std::string("must contain {message}")
                       : std::string();
          },
          "")
      ->type_name("TEMPLATE")
      ->default_str(common::EscapeNewlines(s.app.chat_template))
      ->group(kServingGroup);
  AddInt(app, "--max-conversation-tokens", &s.app.max_conversation_tokens, 1,
         1 << 24, "per message list sent at once over HTTP")
      ->group(kServingGroup);
  AddSeconds(app, "--shutdown-grace", &f->shutdown_grace, 0, 3600,
             "time running streams get to finish on SIGTERM/SIGINT")
      ->group(kServingGroup);
}

// "" or HOST:PORT with a port in [0, 65535].
std::string CheckHostPort(const std::string& value) {
  if (value.empty()) return "";
  const size_t colon = value.rfind(':');
  int port = -1;
  if (colon == std::string::npos || colon == 0 ||
      !absl::SimpleAtoi(value.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return "must be HOST:PORT (or empty), got '" + value.substr(0, 64) + "'";
  }
  return "";
}

void AddHttpFlags(CLI::App& app, ServerFlags* f) {
  HttpOptions& h = f->server.http;
  app.add_option("--http-listen", h.listen,
                 "HTTP address: OpenAI-compatible API under /v1, chat page "
                 "at /, /metrics, /healthz, /readyz; port 0 picks one; "
                 "empty: no HTTP")
      ->check(CheckHostPort, "")
      ->capture_default_str()
      ->type_name("HOST:PORT")
      ->group(kHttpGroup);
  AddInt(app, "--http-threads", &h.threads, 1, 4096,
         "HTTP worker threads; each open connection (a streaming reply "
         "too) holds one")
      ->group(kHttpGroup);
  AddBytes(app, "--http-max-body-bytes", &h.max_body_bytes,
           "largest HTTP request body (K/M/G suffixes; at least 1K); a "
           "bigger one is refused with 400")
      ->check(
          [](const std::string& v) {
            int64_t n = 0;
            return absl::SimpleAtoi(v, &n) && n >= 1024
                       ? std::string()
                       : std::string("must be at least 1K");
          },
          "")
      ->group(kHttpGroup);
  app.add_option("--model-name", h.model_name,
                 "the model id of the HTTP API; empty: the model file's "
                 "name without extension")
      ->type_name("NAME")
      ->group(kHttpGroup);
}

void AddSessionFlags(CLI::App& app, ServerFlags* f) {
  SessionManagerOptions& s = f->server.sessions;
  AddSeconds(app, "--ttl", &s.default_ttl, 1, kTenYearsSeconds,
             "idle time before a session expires")
      ->group(kSessionsGroup);
  AddInt(app, "--max-sessions", &s.max_sessions, 1, 10000000,
         "sessions alive at once")
      ->group(kSessionsGroup);
  AddBytes(app, "--max-state-bytes", &s.max_state_bytes,
           "memory bound over all session states (K/M/G suffixes); idle "
           "sessions are evicted LRU first; 0: none")
      ->group(kSessionsGroup);
  app.add_option("--initial-state", f->initial_states,
                 "a named state sessions can start from (repeatable; "
                 "RWKV_INITIAL_STATE may list several, comma-separated)")
      ->allow_extra_args(false)
      ->type_name("NAME=FILE")
      ->group(kSessionsGroup);
  AddBytes(app, "--prefix-cache-bytes", &f->server.prefix_cache_bytes,
           "shared-prefix state cache (K/M/G suffixes); 0: off")
      ->group(kSessionsGroup);
}

// "fp32" / "fp16" / "bf16".
std::string ShortDtypeName(engine::StateDtype dtype) {
  switch (dtype) {
    case engine::StateDtype::kFloat16:
      return "fp16";
    case engine::StateDtype::kBFloat16:
      return "bf16";
    case engine::StateDtype::kFloat32:
      break;
  }
  return "fp32";
}

void AddStoreFlags(CLI::App& app, ServerFlags* f) {
  ServerOptions& s = f->server;
  app.add_option("--store", s.store,
                 "rocksdb: every acknowledged change is on disk under "
                 "--data-dir and survives restarts and crashes; "
                 "redis://HOST:PORT[/DB]: sessions in Redis, shared by every "
                 "replica on it (any replica continues any session); "
                 "memory: nothing survives")
      ->check(
          [](const std::string& store) {
            if (store == "rocksdb" || store == "memory") return std::string();
            if (absl::StartsWith(store, "redis://")) {
              absl::StatusOr<RedisAddress> a = ParseRedisUrl(store);
              return a.ok() ? std::string() : std::string(a.status().message());
            }
            return "must be rocksdb, memory or redis://HOST:PORT[/DB], got '" +
                   store.substr(0, 64) + "'";
          },
          "")
      ->capture_default_str()
      ->type_name("rocksdb|memory|redis://HOST:PORT[/DB]")
      ->group(kStoreGroup);
  app.add_option("--data-dir", s.rocksdb.dir, "the RocksDB directory")
      ->capture_default_str()
      ->type_name("DIR")
      ->group(kStoreGroup);
  app.add_option_function<std::string>(
         "--store-dtype",
         [f](const std::string& name) {
           // The check below has parsed it.
           f->server.rocksdb.dtype = *engine::ParseStateDtype(name);
           f->server.redis.dtype = f->server.rocksdb.dtype;
         },
         "how states are stored (fp16 and bf16 halve the bytes)")
      ->check(
          [](const std::string& name) {
            return engine::ParseStateDtype(name).ok()
                       ? std::string()
                       : "must be fp32, fp16 or bf16, got '" +
                             name.substr(0, 64) + "'";
          },
          "")
      ->type_name("fp32|fp16|bf16")
      ->default_str(ShortDtypeName(s.rocksdb.dtype))
      ->group(kStoreGroup);
  AddBytes(app, "--max-disk-bytes", &s.sessions.max_disk_bytes,
           "bound on stored session bytes (K/M/G suffixes); beyond it the "
           "least recently used idle sessions are deleted; 0: none")
      ->group(kStoreGroup);
  app.add_flag("--list-sessions", f->list_sessions,
               "print the sessions --data-dir holds and exit")
      ->group(kStoreGroup);
  AddSeconds(app, "--redis-lease-timeout", &s.redis.lease_timeout, 1, 3600,
             "with --store redis: a turn's lease on its session not renewed "
             "for this long is free again (how long a replica that died "
             "mid-turn keeps its session busy)")
      ->group(kStoreGroup);
  AddSeconds(app, "--redis-timeout", &s.redis.timeout, 1, 600,
             "with --store redis: connect and command timeout (calls fail "
             "with UNAVAILABLE after it)")
      ->group(kStoreGroup);
}

void AddSecurityFlags(CLI::App& app, ServerFlags* f) {
  ServerOptions& s = f->server;
  app.add_option("--api-keys", s.auth.api_keys_file,
                 "API keys file: lines '<sha256-hex> <tenant> user|admin "
                 "[limit=value ...]' (see --hash-key); every call then needs "
                 "'authorization: Bearer <key>'; reread on SIGHUP")
      ->type_name("FILE")
      ->group(kSecurityGroup);
  app.add_flag("--allow-unauthenticated", s.allow_unauthenticated,
               "serve without --api-keys on a non-loopback address")
      ->group(kSecurityGroup);
  app.add_flag("--hash-key", f->hash_key,
               "read an API key from stdin, print the hash to put in the "
               "--api-keys file, and exit")
      ->group(kSecurityGroup);
  app.add_option("--tls-cert", s.tls.cert_file,
                 "serve TLS with this PEM certificate (chain)")
      ->type_name("FILE")
      ->group(kSecurityGroup);
  app.add_option("--tls-key", s.tls.key_file,
                 "the PEM private key of --tls-cert")
      ->type_name("FILE")
      ->group(kSecurityGroup);
  app.add_option("--tls-client-ca", s.tls.client_ca_file,
                 "require client certificates signed by this PEM CA "
                 "(mutual TLS)")
      ->type_name("FILE")
      ->group(kSecurityGroup);
  TenantLimits& t = s.auth.tenant_limits;
  AddInt(app, "--tenant-max-sessions", &t.max_sessions, 0, int64_t{1} << 40,
         "sessions one tenant may hold; 0: no limit (keys file lines may "
         "override per tenant)")
      ->group(kSecurityGroup);
  AddBytes(app, "--tenant-max-state-bytes", &t.max_state_bytes,
           "session state bytes one tenant may hold (K/M/G); 0: no limit")
      ->group(kSecurityGroup);
  AddInt(app, "--tenant-max-concurrent-turns", &t.max_concurrent_turns, 0,
         int64_t{1} << 40, "turns one tenant may run at once; 0: no limit")
      ->group(kSecurityGroup);
  AddInt(app, "--tenant-tokens-per-minute", &t.tokens_per_minute, 0,
         int64_t{1} << 40,
         "prompt + generated tokens per tenant per minute (token bucket of "
         "one minute); 0: no limit")
      ->group(kSecurityGroup);
}

void AddLoggingFlags(CLI::App& app, ServerFlags* f) {
  app.add_option_function<std::string>(
         "--log-format",
         [f](const std::string& name) {
           // OneOf() below has checked the name.
           f->log_format = *common::ParseLogFormat(name);
         },
         "text: '<time> <I|W|E> <message>'; json: one JSON object per "
         "line (time, level, message; request records add method, "
         "session_id, status, status_code, status_message, duration_ms, "
         "token counts)")
      ->check(common::OneOf({"text", "json"}))
      ->type_name("text|json")
      ->default_str(std::string(common::LogFormatName(f->log_format)))
      ->group(kLoggingGroup);
}

bool SameAsEnv(const char* name, const std::string& value) {
  const char* env = std::getenv(name);
  return env != nullptr && value == env;
}

// The checks that span flags; errors are usage errors naming the flags.
void FinishServerFlags(const CLI::App& app, ServerFlags* f) {
  if (!f->random_model.empty() && !f->engine.model_path.empty()) {
    // $RWKV_MODEL is a default model (as for rwkv-cli); --random-model
    // replaces it. Both given explicitly is a mistake.
    if (!SameAsEnv("RWKV_MODEL", f->engine.model_path)) {
      throw CLI::ValidationError(
          "--model and --random-model exclude each other");
    }
    f->engine.model_path.clear();
  }
  AppOptions& app_options = f->server.app;
  if (app_options.default_max_tokens > app_options.max_tokens_limit) {
    if (app.get_option("--default-max-tokens")->count() > 0) {
      throw CLI::ValidationError(absl::StrCat(
          "--default-max-tokens must be at most --max-tokens-limit (",
          app_options.max_tokens_limit, "), got ",
          app_options.default_max_tokens));
    }
    app_options.default_max_tokens = app_options.max_tokens_limit;
  }
  SessionManagerOptions& sessions = f->server.sessions;
  sessions.max_ttl = std::max(sessions.max_ttl, sessions.default_ttl);
  if (absl::StartsWith(f->server.store, "redis://")) {
    if (sessions.max_disk_bytes > 0) {
      throw CLI::ValidationError(
          "--max-disk-bytes bounds the RocksDB store; with --store redis "
          "bound Redis itself (maxmemory, with maxmemory-policy noeviction)");
    }
    if (f->server.redis.lease_timeout < 2 * f->server.redis.timeout) {
      // A renewal may wait a whole timeout for a slow Redis.
      throw CLI::ValidationError(
          absl::StrCat("--redis-lease-timeout (",
                       absl::ToInt64Seconds(f->server.redis.lease_timeout),
                       " s) must be at least twice --redis-timeout (",
                       absl::ToInt64Seconds(f->server.redis.timeout), " s)"));
    }
    if (f->list_sessions) {
      throw CLI::ValidationError(
          "--list-sessions reads a RocksDB --data-dir; with --store redis use "
          "the ListSessions RPC");
    }
  }

  std::vector<std::string> entries = f->initial_states;
  if (entries.size() == 1 && SameAsEnv("RWKV_INITIAL_STATE", entries[0])) {
    entries = absl::StrSplit(entries[0], ',', absl::SkipWhitespace());
  }
  for (const std::string& entry : entries) {
    const size_t eq = entry.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == entry.size()) {
      throw CLI::ValidationError(
          absl::StrCat("--initial-state expects NAME=FILE, got '",
                       entry.substr(0, 256), "'"));
    }
    f->server.initial_state_files[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
}

}  // namespace

void AddServerFlags(CLI::App& app, ServerFlags* flags) {
  app.description(
      "Serves rwkv.v1.ChatService (plus grpc.health.v1.Health and server "
      "reflection) and the OpenAI-compatible HTTP API, web chat page and "
      "Prometheus metrics for one RWKV model. SIGTERM/SIGINT: stop accepting "
      "calls, "
      "let running streams finish for --shutdown-grace, cancel the rest "
      "(rolled back), exit 0.");
  app.get_formatter()->column_width(36);
  AddModelFlags(app, flags);
  AddServingFlags(app, flags);
  AddHttpFlags(app, flags);
  AddSessionFlags(app, flags);
  AddStoreFlags(app, flags);
  AddSecurityFlags(app, flags);
  AddLoggingFlags(app, flags);
  common::AddEnvAndConfig(app, "RWKV_");
  // An action, not a setting: only on the command line.
  app.get_option("--list-sessions")->envname("")->configurable(false);
  app.get_option("--hash-key")->envname("")->configurable(false);
  app.callback([&app, flags] { FinishServerFlags(app, flags); });
}

}  // namespace rwkv::server
