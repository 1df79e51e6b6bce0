#include "server/rwkv_server.h"

#include <chrono>
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

using common::LogInfo;

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
  std::unique_ptr<RwkvServer> s(new RwkvServer());
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
  } else if (absl::StartsWith(options.store, "redis://")) {
    options.redis.url = options.store;
    absl::StatusOr<std::unique_ptr<RedisSessionStore>> store =
        RedisSessionStore::Open(options.redis, s->model_.get());
    if (!store.ok()) return store.status();
    LogInfo(absl::StrCat("session store ", options.store, ": keys ",
                         (*store)->key_prefix(), "*, ", (*store)->Count(),
                         " sessions; this replica is ",
                         (*store)->replica_token()));
    s->store_ = *std::move(store);
  } else {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown session store '", options.store.substr(0, 200),
                     "' (expected rocksdb, memory or redis://HOST:PORT[/DB])"));
  }
  s->sessions_ =
      std::make_unique<SessionManager>(options.sessions, s->store_.get());
  s->scheduler_ = std::make_unique<Scheduler>(
      s->engine_.get(), s->tokenizer_.get(), options.scheduler);
  s->app_ = std::make_unique<ChatApp>(s->model_, s->tokenizer_.get(),
                                      s->sessions_.get(), s->scheduler_.get(),
                                      s->prefix_cache_.get(), options.app);
  s->service_ = std::make_unique<ChatService>(s->app_.get());

  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(options.listen, grpc::InsecureServerCredentials(),
                           &port);
  // Without this, Linux lets a second server bind the same port silently
  // (SO_REUSEPORT) and the two split the connections.
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  builder.SetMaxReceiveMessageSize(options.max_message_bytes);
  builder.SetMaxSendMessageSize(options.max_message_bytes);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || port == 0) {
    s->scheduler_->Stop();
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.listen));
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
  if (server_ != nullptr) {
    if (grpc::HealthCheckServiceInterface* health =
            server_->GetHealthCheckService()) {
      health->SetServingStatus(false);
    }
    // Waits for running calls until the deadline, then cancels them; the
    // scheduler is still running, so cancelled streams finish cleanly.
    server_->Shutdown(std::chrono::system_clock::now() +
                      absl::ToChronoMilliseconds(grace));
    server_->Wait();
  }
  if (scheduler_ != nullptr) scheduler_->Stop();
  if (store_ != nullptr) store_->Sync();  // every answered write is stored
  absl::MutexLock lock(&mu_);
  stopped_ = true;
}

}  // namespace rwkv::server
