// HttpServer: the HTTP front of rwkv-server, on cpp-httplib (Debian
// libcpp-httplib-dev, as llama.cpp's server uses): the OpenAI-compatible API
// (chat completions, completions, models, the Responses API), sessions for
// the web chat page, the page itself, /metrics, /healthz and /readyz. It
// calls the same application layer (ChatApp) as the gRPC front.
//
// Life cycle: Start() binds and serves /healthz, /readyz (503) and /metrics
// at once, so probes answer while the model loads; Attach() gives it the
// application (then /readyz is 200 and the API answers); Drain() turns new
// API requests and /readyz to 503; Shutdown() waits for running turns until
// a deadline, ends the rest with 503 (rolled back), stops listening and
// joins its threads.
//
// Every request passes through one gate (Dispatch): readiness, the body
// limit's error, metrics by route and status; that is where authentication
// and quotas plug in. Request bodies are bounded (max_body_bytes) and parsed
// with bounded memory (JsonBodyParser). Each connection is served by one
// worker thread (a streaming reply holds it until the reply ends).
// Thread-safe.
#ifndef RWKV_SERVER_HTTP_HTTP_SERVER_H_
#define RWKV_SERVER_HTTP_HTTP_SERVER_H_

#include <sys/socket.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "httplib.h"
#include "server/app/caller.h"
#include "server/app/chat_app.h"
#include "server/auth/authenticator.h"
#include "server/http/active_turns.h"
#include "server/http/completions_handler.h"
#include "server/http/http_context.h"
#include "server/http/json_body_parser.h"
#include "server/http/models_handler.h"
#include "server/http/responses_handler.h"
#include "server/http/sessions_handler.h"
#include "server/metrics/server_metrics.h"

namespace rwkv::server {

struct HttpOptions {
  // host:port; port 0 picks a free one (see port()); "" disables HTTP.
  std::string listen = "127.0.0.1:8080";
  // Worker threads: each open connection (a streaming reply too) holds one;
  // more connections wait to be accepted.
  int threads = 64;
  // Largest request body; a bigger one is refused (400).
  int64_t max_body_bytes = int64_t{8} << 20;
  JsonLimits json;
  // The model id clients see; "": the model file's name without extension.
  std::string model_name;
  // How long an idle keep-alive connection stays open.
  int keep_alive_seconds = 5;
  // PEM files (rwkv-server's --tls-*): HTTPS when tls_cert_file is set;
  // with tls_client_ca_file, clients must present a certificate it signed.
  std::string tls_cert_file;
  std::string tls_key_file;
  std::string tls_client_ca_file;
};

class HttpServer {
 public:
  // Binds `options.listen` and starts serving. `metrics` (for /metrics and
  // the request counts) must outlive the server. UNAVAILABLE if the address
  // cannot be bound.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(
      HttpOptions options, ServerMetrics* metrics);
  // Shuts down at once if still running.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Serves the API with `app` from now on; `auth` turns each request's
  // `Authorization: Bearer <key>` into its Caller (a missing or bad key is
  // 401 with an OpenAI error body). Both must outlive the server.
  // `model_name` is the model id clients see. Call once.
  void Attach(ChatApp* app, std::string model_name, const Authenticator* auth);
  // New API requests and /readyz answer 503 from now on.
  void Drain();
  // See the file comment. Returns once everything has stopped.
  void Shutdown(absl::Time deadline) ABSL_LOCKS_EXCLUDED(mu_);

  int port() const { return port_; }
  std::string address() const;
  // HTTP turns running now.
  int64_t active_turns() const { return turns_.count(); }

 private:
  using Handler =
      std::function<void(const httplib::Request&, httplib::Response&)>;
  // An API handler: runs for the authenticated caller.
  using ApiHandler = std::function<void(const Caller&, const httplib::Request&,
                                        httplib::Response&)>;
  enum class Needs { kNothing, kApp };

  HttpServer(HttpOptions options, ServerMetrics* metrics);
  absl::Status Listen();
  void RegisterRoutes();
  void RegisterApiRoutes();
  // Registers `handler` for `method` and `pattern` behind the gate; `name`
  // labels its metrics.
  void Route(const std::string& method, const std::string& pattern,
             const std::string& name, Needs needs, Handler handler);
  // An API route: ready and authenticated first (Needs::kApp).
  void ApiRoute(const std::string& method, const std::string& pattern,
                const std::string& name, ApiHandler handler);
  // The gate every routed request passes.
  void Dispatch(const std::string& name, Needs needs, const Handler& handler,
                const httplib::Request& req, httplib::Response& res);
  // Fills in the bodies of errors httplib answers itself (unknown route,
  // body too large).
  httplib::Server::HandlerResponse OnError(const httplib::Request& req,
                                           httplib::Response& res);
  // Before any body is read: refuses bodies whose size cannot be bounded
  // up front. httplib 0.11 applies the body limit to a Content-Length body
  // only; a chunked body (411 Length Required) would be read whole, and a
  // gzip or brotli body (415) is decompressed whole (a small body can
  // expand a thousandfold).
  httplib::Server::HandlerResponse RefuseUnboundedBody(
      const httplib::Request& req, httplib::Response& res);
  bool ready() const { return ready_.load() && !draining_.load(); }

  // Constant after construction.
  const HttpOptions options_;
  ServerMetrics* const metrics_;
  const JsonBodyParser json_;
  // Filled by Attach() before ready_ is set; read-only after.
  HttpContext context_;
  const CompletionsHandler completions_{&context_};
  const ResponsesHandler responses_{&context_};
  const SessionsHandler sessions_{&context_};
  const ModelsHandler models_{&context_};

  // httplib's server with a longer accept queue (httplib 0.11 listens with a
  // backlog of 5: a burst of new connections, e.g. 32 clients starting at
  // once, overflows it and some connections fail).
  template <typename Base>
  class Server final : public Base {
   public:
    using Base::Base;
    // Re-listens on the bound socket with `backlog` (Linux takes the new
    // value). REQUIRES: bound.
    bool SetBacklog(int backlog) {
      return ::listen(this->svr_sock_, backlog) == 0;
    }
  };
  // The server, plain or HTTPS (options_.tls_*), and its SetBacklog.
  absl::Status MakeServer();

  std::atomic<bool> ready_{false};
  std::atomic<bool> draining_{false};
  ActiveTurns turns_;
  std::unique_ptr<httplib::Server> server_;
  std::function<bool(int)> set_backlog_;
  const Authenticator* auth_ = nullptr;  // set by Attach
  std::thread thread_;
  std::string host_;
  int port_ = 0;

  absl::Mutex mu_;
  bool stopped_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_HTTP_SERVER_H_
