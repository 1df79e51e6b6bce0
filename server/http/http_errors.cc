#include "server/http/http_errors.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "absl/strings/str_cat.h"
#include "server/app/field_error.h"
#include "server/app/retry_hint.h"

namespace rwkv::server {
namespace {

constexpr size_t kMaxMessageBytes = 1024;

const char* TypeFor(int http_status) {
  switch (http_status) {
    case 400:
      return "invalid_request_error";
    case 401:
      return "authentication_error";
    case 403:
      return "permission_error";
    case 404:
      return "not_found_error";
    case 409:
      return "conflict_error";
    case 429:
      return "rate_limit_error";
    case 499:
      return "cancelled";
    case 501:
      return "not_implemented_error";
    default:
      return "server_error";
  }
}

std::string CodeName(absl::StatusCode code) {
  std::string name = absl::StatusCodeToString(code);
  std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) {
    return c == ' ' ? '_' : static_cast<char>(std::tolower(c));
  });
  return name;
}

}  // namespace

int HttpStatusFor(const absl::Status& status) {
  switch (status.code()) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kFailedPrecondition:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kCancelled:
      return 499;
    case absl::StatusCode::kUnimplemented:
      return 501;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

int RetryAfterSeconds(const absl::Status& status) {
  // A tenant quota says how long (the token bucket's refill time).
  if (std::optional<int64_t> hint = RetryHintSeconds(status)) {
    return static_cast<int>(std::min<int64_t>(*hint, 86400));
  }
  switch (status.code()) {
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
      return 1;
    default:
      return 0;
  }
}

nlohmann::json ErrorObject(const absl::Status& status) {
  std::string message(status.message());
  if (message.size() > kMaxMessageBytes) {
    message = absl::StrCat(message.substr(0, kMaxMessageBytes),
                           "... (message of ", message.size(), " bytes cut)");
  }
  nlohmann::json error = {{"message", message},
                          {"type", TypeFor(HttpStatusFor(status))},
                          {"param", nullptr},
                          {"code", CodeName(status.code())}};
  if (std::optional<std::string> param = ErrorField(status)) {
    error["param"] = *param;
  }
  return error;
}

std::string ErrorBody(const absl::Status& status) {
  // Replacement characters for any invalid UTF-8 a message quotes.
  return nlohmann::json{{"error", ErrorObject(status)}}.dump(
      -1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace rwkv::server
