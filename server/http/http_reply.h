// Writing HTTP answers: a JSON body, or an error as OpenAI's error object
// with its status code (http_errors.h) and, for retryable errors,
// Retry-After (and the status goes into the thread's request record).
// Thread-compatible (one response per call).
#ifndef RWKV_SERVER_HTTP_HTTP_REPLY_H_
#define RWKV_SERVER_HTTP_HTTP_REPLY_H_

#include "absl/status/status.h"
#include "httplib.h"
#include "nlohmann/json.hpp"

namespace rwkv::server {

void SendJson(httplib::Response& res, const nlohmann::json& body,
              int status = 200);
void SendError(httplib::Response& res, const absl::Status& status);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_HTTP_REPLY_H_
