// How the HTTP front reports an absl::Status: the HTTP status code and
// OpenAI's error object {"error": {"message", "type", "param", "code"}}.
//
//   INVALID_ARGUMENT, OUT_OF_RANGE    400 invalid_request_error
//   UNAUTHENTICATED                   401 authentication_error
//   PERMISSION_DENIED                 403 permission_error
//   NOT_FOUND                         404 not_found_error
//   ALREADY_EXISTS, FAILED_PRECONDITION, ABORTED
//                                     409 conflict_error (an id taken, a
//                                     turn already running on the session,
//                                     a state of another model, the session
//                                     deleted during the turn)
//   RESOURCE_EXHAUSTED                429 rate_limit_error (queue or session
//                                     table full), with Retry-After
//   CANCELLED                         499 (the client has gone)
//   UNIMPLEMENTED                     501 not_implemented_error
//   UNAVAILABLE                       503 server_error (loading or shutting
//                                     down), with Retry-After
//   DEADLINE_EXCEEDED                 504 server_error
//   anything else                     500 server_error
// "code" is the gRPC code's name in lower case (e.g. "failed_precondition"),
// so clients see the same code on both fronts; "param" names the field when
// the error came from one (json_fields.h). Messages are bounded as on the
// gRPC side. Thread-safe (pure functions).
#ifndef RWKV_SERVER_HTTP_HTTP_ERRORS_H_
#define RWKV_SERVER_HTTP_HTTP_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace rwkv::server {

int HttpStatusFor(const absl::Status& status);
// The "error" object's members (message, type, param, code).
nlohmann::json ErrorObject(const absl::Status& status);
// {"error": ErrorObject(status)} serialized.
std::string ErrorBody(const absl::Status& status);
// Seconds a client should wait before retrying (Retry-After), 0 for none.
int RetryAfterSeconds(const absl::Status& status);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_HTTP_HTTP_ERRORS_H_
