// FieldError: an INVALID_ARGUMENT that says which request field is at fault,
// both in its message ("messages[2].content is empty") and as a payload a
// front can read back (ErrorField), e.g. the HTTP front's OpenAI "param".
// The gRPC front sends the message only. Thread-safe (pure functions).
#ifndef RWKV_SERVER_APP_FIELD_ERROR_H_
#define RWKV_SERVER_APP_FIELD_ERROR_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace rwkv::server {

// INVALID_ARGUMENT "<field> <what>", with `field` attached.
absl::Status FieldError(absl::string_view field, absl::string_view what);
// `status` with `field` attached (its code and message unchanged).
absl::Status WithField(absl::Status status, absl::string_view field);
// The field FieldError or WithField attached, if any.
std::optional<std::string> ErrorField(const absl::Status& status);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_FIELD_ERROR_H_
