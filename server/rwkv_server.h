// RwkvServer: one running rwkv-server: the engine, tokenizer, session store
// and sessions, scheduler, application layer, and its two fronts over that
// one application layer: gRPC (ChatService, the standard health service and
// server reflection) and HTTP (the OpenAI-compatible API, the web page,
// /metrics, /healthz, /readyz), wired together and listening. Used by
// main.cc and by the end-to-end tests (listen on "127.0.0.1:0" and read
// port() / http_port()).
//
// Start-up in two steps, so that HTTP probes answer while a model loads:
// Listen() binds the HTTP front (/healthz 200, /readyz 503, /metrics), then
// Serve() takes the loaded engine, wires the rest and starts gRPC; /readyz
// turns 200. Start() does both.
//
// Shutdown in two halves. Drain(grace): the call gate starts draining (from
// then on every new gRPC call is answered UNAVAILABLE "the server is
// shutting down", new HTTP API requests 503) and health says NOT_SERVING,
// /readyz 503; calls already running on both fronts get `grace` to finish;
// the scheduler stops (turns still running end UNAVAILABLE and are rolled
// back); every answered write is synced. Shutdown(grace) = Drain, then the
// HTTP front and gRPC's own shutdown; the engine goes last (destructor).
// gRPC's shutdown cancels (CANCELLED) calls that reach it while it runs, so
// rwkv-server does not use it: after Drain and a quiet moment it closes the
// session store (CloseSessions) and exits, and calls still in flight see the
// connection close (UNAVAILABLE).
//
// Security: with auth.api_keys_file every ChatService call and HTTP API
// request needs "authorization: Bearer <key>" (server/auth/); without it the
// server refuses to listen (gRPC or HTTP) on anything but a loopback address
// unless allow_unauthenticated. tls.cert_file/key_file serve TLS on both
// fronts; tls.client_ca_file also requires client certificates signed by
// that CA (mutual TLS).
// Thread-safe: Shutdown() may be called from any thread, once or more.
#ifndef RWKV_SERVER_RWKV_SERVER_H_
#define RWKV_SERVER_RWKV_SERVER_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "engine/engine.h"
#include "engine/prefix_cache.h"
#include "engine/tokenizer.h"
#include "grpcpp/grpcpp.h"
#include "server/app/app_options.h"
#include "server/app/call_gate.h"
#include "server/app/chat_app.h"
#include "server/auth/authenticator.h"
#include "server/http/http_server.h"
#include "server/metrics/server_metrics.h"
#include "server/rpc/chat_service.h"
#include "server/sched/scheduler.h"
#include "server/session/redis_session_store.h"
#include "server/session/rocksdb_session_store.h"
#include "server/session/session_manager.h"
#include "server/session/session_store.h"

namespace rwkv::server {

// PEM files; all empty: plaintext.
struct TlsOptions {
  std::string cert_file;
  std::string key_file;
  // Clients must present a certificate this CA signed (mutual TLS).
  std::string client_ca_file;

  bool enabled() const { return !cert_file.empty(); }
};

struct ServerOptions {
  // host:port; port 0 picks a free one (see port()).
  std::string listen = "127.0.0.1:50051";
  // The HTTP front; http.listen "" disables it.
  HttpOptions http;
  // Where sessions are kept: "rocksdb" (durable, on disk under
  // rocksdb.dir: every acknowledged change survives a crash),
  // "redis://HOST:PORT[/DB]" (shared by every replica using that Redis:
  // any replica continues any session; redis.url is set from it) or
  // "memory" (lost on restart; for tests and throwaway runs).
  std::string store = "rocksdb";
  RocksDbStoreOptions rocksdb;
  RedisStoreOptions redis;
  SessionManagerOptions sessions;
  SchedulerOptions scheduler;
  AppOptions app;
  // --initial-state NAME=FILE entries, loaded at startup.
  std::map<std::string, std::string> initial_state_files;
  // Shared-prefix cache bound; 0 disables it.
  int64_t prefix_cache_bytes = int64_t{256} << 20;
  // Largest request message (state uploads).
  int max_message_bytes = 64 << 20;
  // API keys and the default per-tenant limits.
  AuthOptions auth;
  // Serve without API keys on a non-loopback address.
  bool allow_unauthenticated = false;
  TlsOptions tls;
};

class RwkvServer {
 public:
  // Starts serving: Listen() then Serve(). Errors: a bad initial state file,
  // a listen address that cannot be bound (UNAVAILABLE).
  static absl::StatusOr<std::unique_ptr<RwkvServer>> Start(
      std::unique_ptr<engine::Engine> engine,
      std::unique_ptr<engine::Tokenizer> tokenizer, ServerOptions options);
  // Binds the HTTP front (if enabled) before there is a model.
  static absl::StatusOr<std::unique_ptr<RwkvServer>> Listen(
      ServerOptions options);
  // Wires `engine` and `tokenizer` into the server and starts gRPC; the
  // HTTP front then serves the API. `options` replace Listen()'s (except
  // the HTTP listener's, already bound), so facts learnt while loading
  // (model path, device) can be added. Call once, after Listen().
  absl::Status Serve(std::unique_ptr<engine::Engine> engine,
                     std::unique_ptr<engine::Tokenizer> tokenizer,
                     ServerOptions options);
  // Shuts down (zero grace) if still running.
  ~RwkvServer();

  // See the file comment. Each returns once done; safe to call again.
  void Drain(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mu_);
  void Shutdown(absl::Duration grace) ABSL_LOCKS_EXCLUDED(mu_);
  // After Drain: destroys the application layer, scheduler, sessions and
  // store (a clean close of the store) while gRPC keeps answering
  // UNAVAILABLE; does nothing while a call is still running. Only Shutdown
  // or the destructor may follow.
  void CloseSessions() ABSL_LOCKS_EXCLUDED(mu_);

  // Rereads the API keys file (SIGHUP); on error the old keys stay.
  absl::StatusOr<size_t> ReloadApiKeys() { return auth_->Reload(); }

  int port() const { return port_; }
  std::string address() const;
  // The HTTP front's port and host:port (0 and "" when it is disabled).
  int http_port() const { return http_ != nullptr ? http_->port() : 0; }
  std::string http_address() const {
    return http_ != nullptr ? http_->address() : "";
  }
  ServerMetrics& metrics() { return *metrics_; }
  const engine::Engine& engine() const { return *engine_; }
  SessionManager& sessions() { return *sessions_; }
  Scheduler& scheduler() { return *scheduler_; }
  ChatApp& app() { return *app_; }

 private:
  RwkvServer() = default;
  // Loads the --initial-state files into options_.app.
  absl::Status LoadInitialStates();
  // Opens the session store options_.store names.
  absl::Status OpenStore();
  absl::Status OpenRedisStore();
  // Builds the gRPC server and starts it.
  absl::Status StartGrpc();

  ServerOptions options_;
  // Destroyed in reverse order: the fronts first, the engine, then the
  // metrics last.
  std::unique_ptr<ServerMetrics> metrics_;
  std::unique_ptr<engine::Engine> engine_;
  std::shared_ptr<const engine::Model> model_;
  std::unique_ptr<engine::Tokenizer> tokenizer_;
  std::unique_ptr<engine::PrefixCache> prefix_cache_;
  std::unique_ptr<SessionStore> store_;
  std::unique_ptr<SessionManager> sessions_;
  std::unique_ptr<Scheduler> scheduler_;
  std::unique_ptr<ChatApp> app_;
  std::unique_ptr<Authenticator> auth_;
  CallGate gate_;
  std::unique_ptr<ChatService> service_;
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<HttpServer> http_;
  std::string host_;
  int port_ = 0;

  absl::Mutex mu_;
  bool draining_ ABSL_GUARDED_BY(mu_) = false;
  bool drained_ ABSL_GUARDED_BY(mu_) = false;  // Drain() has finished
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;  // Shutdown() has finished
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_RWKV_SERVER_H_
