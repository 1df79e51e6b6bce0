#include "server/http/http_request_log.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rwkv::server {
namespace {

thread_local HttpRequestLog* current = nullptr;

// The canonical code of an HTTP status no error status was given for.
absl::StatusCode CodeOf(int http_status) {
  if (http_status < 400) return absl::StatusCode::kOk;
  switch (http_status) {
    case 400:
    case 413:
      return absl::StatusCode::kInvalidArgument;
    case 404:
      return absl::StatusCode::kNotFound;
    case 499:
      return absl::StatusCode::kCancelled;
    case 503:
      return absl::StatusCode::kUnavailable;
    default:
      return http_status < 500 ? absl::StatusCode::kFailedPrecondition
                               : absl::StatusCode::kInternal;
  }
}

}  // namespace

HttpRequestLog::HttpRequestLog(ServerMetrics* metrics, std::string method,
                               std::string route, std::string session_id)
    : metrics_(metrics),
      method_(std::move(method)),
      route_(std::move(route)),
      start_(absl::Now()),
      quiet_(route_ == "/healthz" || route_ == "/readyz" ||
             route_ == "/metrics") {
  record_.method = absl::StrCat("HTTP ", method_, " ", route_);
  record_.session_id = std::move(session_id);
}

HttpRequestLog::~HttpRequestLog() {
  if (finished_) return;
  if (!status_set_) SetStatus(absl::CancelledError("the client has gone"));
  Finish(499);
}

HttpRequestLog* HttpRequestLog::Current() { return current; }

HttpRequestLog::Scope::Scope(HttpRequestLog* log) : previous_(current) {
  current = log;
}

HttpRequestLog::Scope::~Scope() { current = previous_; }

void HttpRequestLog::SetStatus(const absl::Status& status) {
  status_set_ = true;
  record_.status_code = status.code();
  record_.status_message = std::string(status.message());
}

void HttpRequestLog::SetUsage(const TurnChunk& last) {
  record_.prompt_tokens = last.prompt_tokens;
  record_.generated_tokens = last.generated_tokens;
  record_.cached_tokens = last.cached_tokens;
}

std::unique_ptr<HttpRequestLog> HttpRequestLog::Defer() {
  std::unique_ptr<HttpRequestLog> out(new HttpRequestLog());
  out->metrics_ = metrics_;
  out->method_ = method_;
  out->route_ = route_;
  out->record_ = record_;
  out->start_ = start_;
  out->status_set_ = status_set_;
  out->quiet_ = quiet_;
  finished_ = true;
  return out;
}

void HttpRequestLog::Finish(int http_status) {
  if (finished_) return;
  finished_ = true;
  if (!status_set_) record_.status_code = CodeOf(http_status);
  record_.duration = absl::Now() - start_;
  metrics_->ObserveHttpRequest(method_, route_, http_status);
  if (!quiet_) common::LogRequest(record_);
}

}  // namespace rwkv::server
