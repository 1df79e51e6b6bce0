#include "server/rwkv_server.h"

#include <chrono>
#include <fstream>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "engine/state_file.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "server/session/memory_session_store.h"

namespace rwkv::server {
namespace {

using common::LogInfo;

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
  if (options.auth.api_keys_file.empty() && !options.allow_unauthenticated &&
      !IsLoopback(options.listen)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "refusing to listen on ", options.listen,
        " without API keys: anyone who can reach it could read, change and "
        "delete every session. Give --api-keys FILE (see --hash-key), or "
        "--allow-unauthenticated to serve openly anyway (e.g. behind an "
        "authenticating proxy), or listen on 127.0.0.1"));
  }
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      Credentials(options.tls);
  if (!credentials.ok()) return credentials.status();
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(options.auth);
  if (!auth.ok()) return auth.status();
  std::unique_ptr<RwkvServer> s(new RwkvServer());
  s->auth_ = *std::move(auth);
  for (const auto& [name, path] : options.initial_state_files) {
    absl::StatusOr<engine::State> state =
        engine::LoadStateFile(path, engine->model());
    if (!state.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--initial-state ", name, "=", path, ": ", state.status().message()));
    }
    options.app.initial_states[name] =
        std::make_shared<const engine::State>(*std::move(state));
  }
  s->engine_ = std::move(engine);
  s->tokenizer_ = std::move(tokenizer);
  if (options.prefix_cache_bytes > 0) {
    engine::PrefixCacheOptions pc;
    pc.max_bytes = options.prefix_cache_bytes;
    s->prefix_cache_ = std::make_unique<engine::PrefixCache>(pc);
  }
  s->model_ = s->engine_->shared_model();
  if (options.store == "memory") {
    s->store_ = std::make_unique<MemorySessionStore>();
  } else if (options.store == "rocksdb") {
    const absl::Time opening = absl::Now();
    absl::StatusOr<std::unique_ptr<RocksDbSessionStore>> store =
        RocksDbSessionStore::Open(options.rocksdb, s->model_.get());
    if (!store.ok()) return store.status();
    LogInfo(absl::StrCat("session store rocksdb:", options.rocksdb.dir,
                         " opened in ",
                         absl::ToInt64Milliseconds(absl::Now() - opening),
                         " ms: ", (*store)->Count(), " sessions, ",
                         (*store)->StoredBytes(), " bytes"));
    s->store_ = *std::move(store);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown session store '", options.store,
                     "' (expected rocksdb or memory)"));
  }
  s->sessions_ =
      std::make_unique<SessionManager>(options.sessions, s->store_.get());
  s->scheduler_ = std::make_unique<Scheduler>(
      s->engine_.get(), s->tokenizer_.get(), options.scheduler);
  s->app_ = std::make_unique<ChatApp>(s->model_, s->tokenizer_.get(),
                                      s->sessions_.get(), s->scheduler_.get(),
                                      s->prefix_cache_.get(), options.app);
  s->service_ = std::make_unique<ChatService>(
      RpcEnv{s->app_.get(), s->auth_.get(), &s->gate_});

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, *credentials, &port);
  // Without this, Linux lets a second server bind the same port silently
  // (SO_REUSEPORT) and the two split the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || port == 0) {
    s->scheduler_->Stop();
    return absl::UnavailableError(absl::StrCat(
        "cannot listen on ", options.listen,
        options.tls.enabled()
            ? " (or the TLS certificate and key do not load or match)"
            : ""));
  }
  s->port_ = port;
  const size_t colon = options.listen.rfind(':');
  s->host_ = colon == std::string::npos ? options.listen
                                        : options.listen.substr(0, colon);
  if (grpc::HealthCheckServiceInterface* health =
          s->server_->GetHealthCheckService()) {
    health->SetServingStatus(true);
    health->SetServingStatus("rwkv.v1.ChatService", true);
  }
  return s;
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
  // From here on every new call is UNAVAILABLE (the gate), never CANCELLED.
  gate_.StartDraining();
  if (server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health =
            server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
  }
  // Calls already admitted finish within the grace; then the scheduler
  // ends what is still running with UNAVAILABLE (rolled back), and those
  // calls answer.
  gate_.WaitIdle(absl::Now() + grace);
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
  // No call passes the gate any more: nothing reaches these.
  app_.reset();
  scheduler_.reset();
  sessions_.reset();
  store_.reset();
}

void RwkvServer::Shutdown(absl::Duration grace) {
  {
    absl::MutexLock lock(&mu_);
    if (shut_down_) {
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
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace rwkv::server
