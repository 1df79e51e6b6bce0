#include "server/rwkv_server.h"

#include <chrono>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "engine/state_file.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/metrics/server_state_collector.h"
#include "server/session/memory_session_store.h"

namespace rwkv::server {

using common::LogInfo;

namespace {

// The model id HTTP clients see: --model-name, else the model file's name
// without its extension ("random:169m" becomes "random-169m").
std::string ModelName(const ServerOptions& o) {
  if (!o.http.model_name.empty()) return o.http.model_name;
  std::string name = o.app.model_path;
  const size_t slash = name.find_last_of('/');
  if (slash != std::string::npos) name = name.substr(slash + 1);
  const size_t dot = name.find_last_of('.');
  if (dot != std::string::npos && dot > 0) name = name.substr(0, dot);
  name = absl::StrReplaceAll(name, {{":", "-"}});
  return name.empty() ? "rwkv" : name;
}

// True for addresses only this machine can reach.
bool IsLoopback(const std::string& listen) {
  if (absl::StartsWith(listen, "unix:")) return true;
  const size_t colon = listen.rfind(':');
  std::string host =
      colon == std::string::npos ? listen : listen.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  return host == "localhost" || host == "::1" || absl::StartsWith(host, "127.");
}

// Without API keys only loopback addresses are served (either front),
// unless the options say to serve openly.
absl::Status CheckExposure(const ServerOptions& o) {
  if (!o.auth.api_keys_file.empty() || o.allow_unauthenticated) {
    return absl::OkStatus();
  }
  for (const std::string& listen : {o.listen, o.http.listen}) {
    if (listen.empty() || IsLoopback(listen)) continue;
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", listen,
        " without API keys: anyone who can reach it could read, change and "
        "delete every session. Give --api-keys FILE (see --hash-key), or "
        "--allow-unauthenticated to serve openly anyway (e.g. behind an "
        "authenticating proxy), or listen on 127.0.0.1"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadPem(const std::string& path,
                                    absl::string_view flag) {
  std::ifstream in(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(in)),
                   std::istreambuf_iterator<char>());
  if (!in.good() && !in.eof()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": cannot read ", path));
  }
  if (text.find("-----BEGIN ") == std::string::npos) {
    return absl::InvalidArgumentError(absl::StrCat(
        flag, ": ", path, " is not a PEM file (no -----BEGIN line)"));
  }
  return text;
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> Credentials(
    const TlsOptions& tls) {
  if (!tls.enabled()) {
    if (!tls.key_file.empty() || !tls.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "--tls-key and --tls-client-ca need --tls-cert");
    }
    return grpc::InsecureServerCredentials();
  }
  if (tls.key_file.empty()) {
    return absl::InvalidArgumentError("--tls-cert needs --tls-key");
  }
  grpc::SslServerCredentialsOptions ssl;
  absl::StatusOr<std::string> cert = ReadPem(tls.cert_file, "--tls-cert");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPem(tls.key_file, "--tls-key");
  if (!key.ok()) return key.status();
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!tls.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca =
        ReadPem(tls.client_ca_file, "--tls-client-ca");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request =
        GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace

absl::StatusOr<std::unique_ptr<RwkvServer>> RwkvServer::Start(
    std::unique_ptr<engine::Engine> engine,
    std::unique_ptr<engine::Tokenizer> tokenizer, ServerOptions options) {
  absl::StatusOr<std::unique_ptr<RwkvServer>> s = Listen(options);
  if (!s.ok()) return s.status();
  if (absl::Status st = (*s)->Serve(std::move(engine), std::move(tokenizer),
                                    std::move(options));
      !st.ok()) {
    return st;
  }
  return s;
}

absl::StatusOr<std::unique_ptr<RwkvServer>> RwkvServer::Listen(
    ServerOptions options) {
  if (absl::Status s = CheckExposure(options); !s.ok()) return s;
  // Bad TLS files are named before anything listens.
  if (absl::Status s = Credentials(options.tls).status(); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(options.auth);
  if (!auth.ok()) return auth.status();
  std::unique_ptr<RwkvServer> s(new RwkvServer());
  s->auth_ = *std::move(auth);
  options.http.tls_cert_file = options.tls.cert_file;
  options.http.tls_key_file = options.tls.key_file;
  options.http.tls_client_ca_file = options.tls.client_ca_file;
  s->options_ = std::move(options);
  s->metrics_ = std::make_unique<ServerMetrics>();
  if (!s->options_.http.listen.empty()) {
    absl::StatusOr<std::unique_ptr<HttpServer>> http =
        HttpServer::Start(s->options_.http, s->metrics_.get());
    if (!http.ok()) return http.status();
    s->http_ = *std::move(http);
  }
  return s;
}

absl::Status RwkvServer::LoadInitialStates() {
  for (const auto& [name, path] : options_.initial_state_files) {
    absl::StatusOr<engine::State> state =
        engine::LoadStateFile(path, engine_->model());
    if (!state.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--initial-state ", name, "=", path, ": ", state.status().message()));
    }
    options_.app.initial_states[name] =
        std::make_shared<const engine::State>(*std::move(state));
  }
  return absl::OkStatus();
}

absl::Status RwkvServer::OpenStore() {
  if (options_.store == "memory") {
    store_ = std::make_unique<MemorySessionStore>();
    return absl::OkStatus();
  }
  if (absl::StartsWith(options_.store, "redis://")) return OpenRedisStore();
  if (options_.store != "rocksdb") {
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown session store '", options_.store.substr(0, 200),
        "' (expected rocksdb, memory or redis://HOST:PORT[/DB])"));
  }
  const absl::Time opening = absl::Now();
  absl::StatusOr<std::unique_ptr<RocksDbSessionStore>> store =
      RocksDbSessionStore::Open(options_.rocksdb, model_.get());
  if (!store.ok()) return store.status();
  LogInfo(absl::StrCat("session store rocksdb:", options_.rocksdb.dir,
                       " opened in ",
                       absl::ToInt64Milliseconds(absl::Now() - opening),
                       " ms: ", (*store)->Count(), " sessions, ",
                       (*store)->StoredBytes(), " bytes"));
  store_ = *std::move(store);
  return absl::OkStatus();
}

absl::Status RwkvServer::OpenRedisStore() {
  options_.redis.url = options_.store;
  absl::StatusOr<std::unique_ptr<RedisSessionStore>> store =
      RedisSessionStore::Open(options_.redis, model_.get());
  if (!store.ok()) return store.status();
  LogInfo(absl::StrCat("session store ", options_.store, ": keys ",
                       (*store)->key_prefix(), "*, ", (*store)->Count(),
                       " sessions; this replica is ",
                       (*store)->replica_token()));
  store_ = *std::move(store);
  return absl::OkStatus();
}

absl::Status RwkvServer::Serve(std::unique_ptr<engine::Engine> engine,
                               std::unique_ptr<engine::Tokenizer> tokenizer,
                               ServerOptions options) {
  options.http = options_.http;  // already bound
  // The keys and TLS are Listen()'s too (the Authenticator is built).
  options.auth = options_.auth;
  options.tls = options_.tls;
  options_ = std::move(options);
  if (engine == nullptr || tokenizer == nullptr) {
    return absl::InvalidArgumentError(
        "RwkvServer needs an engine and a tokenizer");
  }
  if (tokenizer->vocab_size() > engine->config().vocab_size) {
    return absl::InvalidArgumentError(
        absl::StrCat("the tokenizer has ", tokenizer->vocab_size(),
                     " tokens but the model's vocabulary has only ",
                     engine->config().vocab_size));
  }
  engine_ = std::move(engine);
  model_ = engine_->shared_model();
  tokenizer_ = std::move(tokenizer);
  if (absl::Status s = LoadInitialStates(); !s.ok()) return s;
  if (options_.prefix_cache_bytes > 0) {
    engine::PrefixCacheOptions pc;
    pc.max_bytes = options_.prefix_cache_bytes;
    prefix_cache_ = std::make_unique<engine::PrefixCache>(pc);
  }
  if (absl::Status s = OpenStore(); !s.ok()) return s;
  sessions_ = std::make_unique<SessionManager>(options_.sessions, store_.get());
  scheduler_ = std::make_unique<Scheduler>(engine_.get(), tokenizer_.get(),
                                           options_.scheduler);
  app_ = std::make_unique<ChatApp>(model_, tokenizer_.get(), sessions_.get(),
                                   scheduler_.get(), prefix_cache_.get(),
                                   options_.app, metrics_.get());
  metrics_->set_state_source(std::make_shared<ServerStateCollector>(
      scheduler_.get(), sessions_.get(), store_.get(), prefix_cache_.get()));
  if (absl::Status s = StartGrpc(); !s.ok()) {
    metrics_->set_state_source(nullptr);
    scheduler_->Stop();
    return s;
  }
  if (http_ != nullptr) {
    http_->Attach(app_.get(), ModelName(options_), auth_.get());
  }
  return absl::OkStatus();
}

absl::Status RwkvServer::StartGrpc() {
  service_ =
      std::make_unique<ChatService>(RpcEnv{app_.get(), auth_.get(), &gate_});
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options_.tls);
  if (!credentials.ok()) return credentials.status();
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options_.listen, *credentials, &port);
  // Without this, Linux lets a second server bind the same port silently
  // (SO_REUSEPORT) and the two split the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options_.max_message_bytes);
  builder.SetMaxSendMessageSize(options_.max_message_bytes);
  builder.RegisterService(service_.get());
  server_ = builder.BuildAndStart();
  if (server_ == nullptr || port == 0) {
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options_.listen,
        options_.tls.enabled()
            ? " (or the TLS certificate and key do not load or match)"
            : ""));
  }
  port_ = port;
  const size_t colon = options_.listen.rfind(':');
  host_ = colon == std::string::npos ? options_.listen
                                     : options_.listen.substr(0, colon);
  if (grpc::HealthCheckServiceInterface* health =
          server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("rwkv.v1.ChatService", true);
  }
  return absl::OkStatus();
}

RwkvServer::~RwkvServer() { Shutdown(absl::ZeroDuration()); }

std::string RwkvServer::address() const {
  return absl::StrCat(host_, ":", port_);
}

void RwkvServer::Drain(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (draining_) {
      // Another caller is draining: return once it has.
      mu_.Await(absl::Condition(&drained_));
      return;
    }
    draining_ = true;
  }
  const absl::Time deadline = absl::Now() + grace;
  // From here on every new gRPC call is UNAVAILABLE (the gate), never
  // CANCELLED, and every new HTTP API request 503.
  gate_.StartDraining();
  if (http_ != nullptr) http_->Drain();
  if (server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health =
            server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
  }
  // Calls already admitted finish within the grace (HTTP turns get what is
  // left of it; the rest end 503, rolled back); then the scheduler ends
  // what is still running with UNAVAILABLE (rolled back), and those calls
  // answer.
  gate_.WaitIdle(deadline);
  if (http_ != nullptr) http_->Shutdown(deadline);
  if (scheduler_ != nullptr) scheduler_->Stop();
  gate_.WaitIdle(absl::Now() + absl::Seconds(5));
  if (store_ != nullptr) store_->Sync();  // every answered write is stored
  absl::MutexLock lock(&mu_);
  drained_ = true;
}

void RwkvServer::CloseSessions() {
  Drain(absl::ZeroDuration());
  if (gate_.in_flight() > 0) {
    // A call still holds on (a client that stopped reading its stream):
    // leave everything in place; the process exit ends it.
    common::LogWarning(absl::StrCat(gate_.in_flight(),
                                    " calls still running; the session store "
                                    "is synced but not closed"));
    return;
  }
  // No call passes the gate any more and the HTTP front has stopped:
  // nothing reaches these.
  metrics_->set_state_source(nullptr);
  app_.reset();
  scheduler_.reset();
  sessions_.reset();
  store_.reset();
}

void RwkvServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
      // Another caller is stopping the server: return once it has.
      mu_.Await(absl::Condition(&stopped_));
      return;
    }
    shut_down_ = true;
  }
  Drain(grace);
  if (server_ != nullptr) {
    // Every admitted call has answered: what gRPC still holds are answers
    // on their way and idle connections (told to go away).
    server_->Shutdown(std::chrono::system_clock::now() +
                      std::chrono::milliseconds(500));
    server_->Wait();
  }
  metrics_->set_state_source(nullptr);
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace rwkv::server
