#include "server/http/http_reply.h"

#include <string>

#include "server/http/http_errors.h"
#include "server/http/http_request_log.h"
#include "server/http/openai_json.h"

namespace rwkv::server {

void SendJson(httplib::Response& res, const nlohmann::json& body, int status) {
  res.status = status;
  res.set_content(Dump(body), "application/json");
}

void SendError(httplib::Response& res, const absl::Status& status) {
  if (HttpRequestLog* log = HttpRequestLog::Current()) log->SetStatus(status);
  res.status = HttpStatusFor(status);
  if (const int after = RetryAfterSeconds(status); after > 0) {
    res.set_header("Retry-After", std::to_string(after));
  }
  res.set_content(ErrorBody(status), "application/json");
}

}  // namespace rwkv::server
