// HttpRequestLog: the request record (common::LogRequest, as the gRPC front
// writes one per call) and the request count (ServerMetrics) of one HTTP
// request, written once, when its answer is complete. The gate
// (HttpServer::Dispatch) opens one per request and makes it the thread's
// current one while the handler runs: errors sent with SendError set its
// status, a turn's answer its token counts. A handler that streams its
// answer takes the record over (Defer) and finishes it when the stream
// ends, so its duration covers the whole stream. Thread-compatible.
#ifndef RWKV_SERVER_HTTP_HTTP_REQUEST_LOG_H_
#define RWKV_SERVER_HTTP_HTTP_REQUEST_LOG_H_

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/log.h"
#include "server/metrics/server_metrics.h"
#include "server/sched/job.h"

namespace rwkv::server {

class HttpRequestLog {
 public:
  // `metrics` must outlive the record. `route` is the route's pattern name.
  // Probes (/healthz, /readyz, /metrics) are counted but not logged: a
  // scraper and an orchestrator call them every few seconds.
  HttpRequestLog(ServerMetrics* metrics, std::string method, std::string route,
                 std::string session_id);
  // Finishes with status 499 (client gone) if nothing else finished it.
  ~HttpRequestLog();
  HttpRequestLog(const HttpRequestLog&) = delete;
  HttpRequestLog& operator=(const HttpRequestLog&) = delete;

  // The record open on this thread, or null.
  static HttpRequestLog* Current();
  // Makes `log` the thread's current record while it lives.
  class Scope {
   public:
    explicit Scope(HttpRequestLog* log);
    ~Scope();
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    HttpRequestLog* previous_;
  };

  // The status behind an error answer.
  void SetStatus(const absl::Status& status);
  // The authenticated tenant (logged; "" without API keys).
  void SetTenant(const std::string& tenant) { record_.tenant = tenant; }
  // A turn's usage (its last chunk).
  void SetUsage(const TurnChunk& last);
  // Hands the record over to whoever finishes the answer later (a stream);
  // this one is then finished and writes nothing.
  std::unique_ptr<HttpRequestLog> Defer();
  // Writes the record and counts the request (once).
  void Finish(int http_status);
  bool finished() const { return finished_; }

 private:
  HttpRequestLog() = default;

  ServerMetrics* metrics_ = nullptr;
  std::string method_;
  std::string route_;
  common::RequestLog record_;
  absl::Time start_;
  bool status_set_ = false;
  bool finished_ = false;
  bool quiet_ = false;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_HTTP_REQUEST_LOG_H_
