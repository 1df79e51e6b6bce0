#include "server/http/http_server.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "server/http/http_reply.h"
#include "server/http/http_request_log.h"
#include "server/http/static_files.h"
#include "server/quote.h"

namespace rwkv::server {
namespace {

constexpr char kId[] = "([A-Za-z0-9._:-]{1,128})";
// Connections waiting to be accepted (the kernel caps it at somaxconn).
constexpr int kListenBacklog = 1024;

absl::Status NotReady(bool draining) {
  return absl::UnavailableError(draining ? "the server is shutting down"
                                         : "the model is still loading");
}

}  // namespace

HttpServer::HttpServer(HttpOptions options, ServerMetrics* metrics)
    : options_(std::move(options)), metrics_(metrics), json_(options_.json) {
  context_.turns = &turns_;
  context_.json = &json_;
}

absl::Status HttpServer::MakeServer() {
  if (options_.tls_cert_file.empty()) {
    auto plain = std::make_unique<Server<httplib::Server>>();
    set_backlog_ = [p = plain.get()](int backlog) {
      return p->SetBacklog(backlog);
    };
    server_ = std::move(plain);
    return absl::OkStatus();
  }
  auto tls = std::make_unique<Server<httplib::SSLServer>>(
      options_.tls_cert_file.c_str(), options_.tls_key_file.c_str(),
      options_.tls_client_ca_file.empty()
          ? nullptr
          : options_.tls_client_ca_file.c_str());
  if (!tls->is_valid()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "HTTPS: cannot load the certificate ", Quote(options_.tls_cert_file),
        " and key ", Quote(options_.tls_key_file),
        options_.tls_client_ca_file.empty()
            ? ""
            : absl::StrCat(" or the client CA ",
                           Quote(options_.tls_client_ca_file))));
  }
  set_backlog_ = [p = tls.get()](int backlog) {
    return p->SetBacklog(backlog);
  };
  server_ = std::move(tls);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(
    HttpOptions options, ServerMetrics* metrics) {
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(options), metrics));
  if (absl::Status st = s->MakeServer(); !st.ok()) return st;
  s->RegisterRoutes();
  if (absl::Status st = s->Listen(); !st.ok()) return st;
  return s;
}

HttpServer::~HttpServer() { Shutdown(absl::Now()); }

absl::Status HttpServer::Listen() {
  const std::string& listen = options_.listen;
  const size_t colon = listen.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(listen.substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--http-listen must be HOST:PORT, got ", Quote(listen)));
  }
  host_ = listen.substr(0, colon);
  std::string bind_host = host_;
  if (bind_host.size() > 2 && bind_host.front() == '[') {
    bind_host = bind_host.substr(1, bind_host.size() - 2);
  }
  const int threads = std::max(1, options_.threads);
  server_->new_task_queue = [threads] {
    return new httplib::ThreadPool(static_cast<size_t>(threads));
  };
  server_->set_payload_max_length(static_cast<size_t>(options_.max_body_bytes));
  server_->set_keep_alive_timeout(options_.keep_alive_seconds);
  server_->set_tcp_nodelay(true);
  port_ = port == 0 ? server_->bind_to_any_port(bind_host)
                    : (server_->bind_to_port(bind_host, port) ? port : -1);
  if (port_ <= 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (HTTP)"));
  }
  if (!set_backlog_(kListenBacklog)) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", listen, " (HTTP backlog)"));
  }
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // stop() only works once the loop runs.
  while (!server_->is_running()) absl::SleepFor(absl::Milliseconds(1));
  return absl::OkStatus();
}

std::string HttpServer::address() const {
  return absl::StrCat(host_, ":", port_);
}

void HttpServer::Attach(ChatApp* app, std::string model_name,
                        const Authenticator* auth) {
  auth_ = auth;
  context_.app = app;
  context_.model = std::move(model_name);
  context_.model_created = absl::ToUnixSeconds(absl::Now());
  ready_.store(true);
}

void HttpServer::Drain() { draining_.store(true); }

void HttpServer::Shutdown(absl::Time deadline) {
  {
    absl::MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  Drain();
  if (!turns_.WaitIdle(deadline)) {
    turns_.CancelAll(absl::UnavailableError("the server is shutting down"));
    turns_.WaitIdle(absl::Now() + absl::Seconds(30));
  }
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

void HttpServer::Route(const std::string& method, const std::string& pattern,
                       const std::string& name, Needs needs, Handler handler) {
  auto gated = [this, name, needs, handler = std::move(handler)](
                   const httplib::Request& req, httplib::Response& res) {
    Dispatch(name, needs, handler, req, res);
  };
  if (method == "GET") {
    server_->Get(pattern, gated);
  } else if (method == "POST") {
    server_->Post(pattern, gated);
  } else {
    server_->Delete(pattern, gated);
  }
}

void HttpServer::ApiRoute(const std::string& method, const std::string& pattern,
                          const std::string& name, ApiHandler handler) {
  Route(method, pattern, name, Needs::kApp,
        [this, handler = std::move(handler)](const httplib::Request& req,
                                             httplib::Response& res) {
          absl::StatusOr<Caller> caller =
              auth_ != nullptr
                  ? auth_->Authenticate(req.get_header_value("Authorization"))
                  : absl::StatusOr<Caller>(Caller::Anonymous());
          if (!caller.ok()) {
            res.set_header("WWW-Authenticate", "Bearer");
            return SendError(res, caller.status());
          }
          if (HttpRequestLog* log = HttpRequestLog::Current()) {
            log->SetTenant(caller->tenant);
          }
          handler(*caller, req, res);
        });
}

void HttpServer::Dispatch(const std::string& name, Needs needs,
                          const Handler& handler, const httplib::Request& req,
                          httplib::Response& res) {
  std::string session = req.get_header_value("X-Session-Id");
  if (session.empty() && req.matches.size() > 1) session = req.matches[1];
  HttpRequestLog log(metrics_, req.method, name, std::move(session));
  HttpRequestLog::Scope scope(&log);
  // API routes authenticate in ApiRoute's handler (after this gate).
  if (needs == Needs::kApp && !ready()) {
    SendError(res, NotReady(draining_.load()));
  } else {
    handler(req, res);
  }
  log.Finish(res.status);  // unless a stream has taken the record over
}

httplib::Server::HandlerResponse HttpServer::OnError(
    const httplib::Request& req, httplib::Response& res) {
  if (!res.body.empty() || res.content_length_ > 0) {
    return httplib::Server::HandlerResponse::Unhandled;  // ours already
  }
  if (res.status == 413) {
    SendError(res,
              absl::InvalidArgumentError(absl::StrCat(
                  "the request body is larger than the limit of ",
                  options_.max_body_bytes, " bytes (--http-max-body-bytes)")));
  } else if (res.status == 404) {
    SendError(res, absl::NotFoundError(absl::StrCat("no route for ", req.method,
                                                    " ", Quote(req.path))));
  } else {
    const int code = res.status;
    SendError(res, absl::UnknownError(absl::StrCat("HTTP error ", code)));
    res.status = code;
  }
  HttpRequestLog log(metrics_, req.method, "(unrouted)", "");
  log.Finish(res.status);
  return httplib::Server::HandlerResponse::Handled;
}

httplib::Server::HandlerResponse HttpServer::RefuseUnboundedBody(
    const httplib::Request& req, httplib::Response& res) {
  absl::Status refusal;
  int code = 0;
  const std::string encoding = req.get_header_value("Content-Encoding");
  if (!encoding.empty() && encoding != "identity") {
    refusal = absl::InvalidArgumentError(
        absl::StrCat("request bodies with Content-Encoding ", Quote(encoding),
                     " are not accepted; send the body uncompressed"));
    code = 415;
  } else if (req.has_header("Transfer-Encoding")) {
    refusal = absl::InvalidArgumentError(
        "a request body must come with a Content-Length (chunked transfer "
        "encoding is not accepted)");
    code = 411;
  } else {
    return httplib::Server::HandlerResponse::Unhandled;
  }
  HttpRequestLog log(metrics_, req.method, "(refused)", "");
  HttpRequestLog::Scope scope(&log);
  SendError(res, refusal);
  res.status = code;
  // The body was not read: the client must not send another request on
  // this connection.
  res.set_header("Connection", "close");
  log.Finish(res.status);
  return httplib::Server::HandlerResponse::Handled;
}

void HttpServer::RegisterRoutes() {
  server_->set_error_handler(httplib::Server::HandlerWithResponse(
      [this](const httplib::Request& req, httplib::Response& res) {
        return OnError(req, res);
      }));
  server_->set_pre_routing_handler(
      [this](const httplib::Request& req, httplib::Response& res) {
        return RefuseUnboundedBody(req, res);
      });
  Route("GET", "/healthz", "/healthz", Needs::kNothing,
        [](const httplib::Request&, httplib::Response& res) {
          SendJson(res, {{"status", "ok"}});
        });
  Route("GET", "/readyz", "/readyz", Needs::kNothing,
        [this](const httplib::Request&, httplib::Response& res) {
          if (!ready()) return SendError(res, NotReady(draining_.load()));
          SendJson(res, {{"status", "ready"}, {"model", context_.model}});
        });
  Route("GET", "/metrics", "/metrics", Needs::kNothing,
        [this](const httplib::Request&, httplib::Response& res) {
          res.set_content(metrics_->Render(),
                          "text/plain; version=0.0.4; charset=utf-8");
        });
  Route("GET", R"(/|/[A-Za-z0-9_-]+\.(?:html|js|css|svg))", "/{page}",
        Needs::kNothing, StaticFiles::Serve);
  RegisterApiRoutes();
}

void HttpServer::RegisterApiRoutes() {
  using R = httplib::Request;
  using W = httplib::Response;
  const std::string id = kId;
  ApiRoute(
      "GET", "/v1/models", "/v1/models",
      [this](const Caller& c, const R& q, W& w) { models_.List(c, q, w); });
  ApiRoute("GET", R"(/v1/models/([^/]+))", "/v1/models/{id}",
           [this](const Caller& c, const R& q, W& w) { models_.Get(c, q, w); });
  ApiRoute("POST", "/v1/chat/completions", "/v1/chat/completions",
           [this](const Caller& c, const R& q, W& w) {
             completions_.Chat(c, q, w);
           });
  ApiRoute("POST", "/v1/completions", "/v1/completions",
           [this](const Caller& c, const R& q, W& w) {
             completions_.Text(c, q, w);
           });
  ApiRoute("POST", "/v1/responses", "/v1/responses",
           [this](const Caller& c, const R& q, W& w) {
             responses_.Create(c, q, w);
           });
  ApiRoute(
      "GET", "/v1/responses/" + id, "/v1/responses/{id}",
      [this](const Caller& c, const R& q, W& w) { responses_.Get(c, q, w); });
  ApiRoute("DELETE", "/v1/responses/" + id, "/v1/responses/{id}",
           [this](const Caller& c, const R& q, W& w) {
             responses_.Delete(c, q, w);
           });
  ApiRoute(
      "POST", "/v1/sessions", "/v1/sessions",
      [this](const Caller& c, const R& q, W& w) { sessions_.Create(c, q, w); });
  ApiRoute(
      "GET", "/v1/sessions", "/v1/sessions",
      [this](const Caller& c, const R& q, W& w) { sessions_.List(c, q, w); });
  ApiRoute(
      "GET", "/v1/sessions/" + id, "/v1/sessions/{id}",
      [this](const Caller& c, const R& q, W& w) { sessions_.Get(c, q, w); });
  ApiRoute(
      "DELETE", "/v1/sessions/" + id, "/v1/sessions/{id}",
      [this](const Caller& c, const R& q, W& w) { sessions_.Delete(c, q, w); });
  ApiRoute(
      "POST", "/v1/sessions/" + id + "/reset", "/v1/sessions/{id}/reset",
      [this](const Caller& c, const R& q, W& w) { sessions_.Reset(c, q, w); });
  ApiRoute(
      "POST", "/v1/sessions/" + id + "/fork", "/v1/sessions/{id}/fork",
      [this](const Caller& c, const R& q, W& w) { sessions_.Fork(c, q, w); });
  ApiRoute(
      "GET", "/v1/sessions/" + id + "/state", "/v1/sessions/{id}/state",
      [this](const Caller& c, const R& q, W& w) { sessions_.State(c, q, w); });
}

}  // namespace rwkv::server
