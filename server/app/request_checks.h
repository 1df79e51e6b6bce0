// Checks of request fields shared by every front, each returning
// INVALID_ARGUMENT that names the field (and never echoes more of a client
// value than a short head, see quote.h); CheckText attaches the field
// (field_error.h).
#ifndef RWKV_SERVER_APP_REQUEST_CHECKS_H_
#define RWKV_SERVER_APP_REQUEST_CHECKS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "engine/sampling_params.h"
#include "server/app/app_options.h"
#include "server/app/app_types.h"
#include "server/session/session_manager.h"

namespace rwkv::server {

// Non-empty unless `allow_empty`, and valid UTF-8.
absl::Status CheckText(absl::string_view text, absl::string_view field,
                       bool allow_empty);
// A required session id ("session_id: ..." on error).
absl::Status CheckSessionId(absl::string_view id, absl::string_view field);
// An id that may be empty (the server then generates one).
absl::Status CheckOptionalSessionId(absl::string_view id,
                                    absl::string_view field);
// A request's ttl_seconds: 0 is the default; at most the server's --max-ttl.
absl::StatusOr<absl::Duration> TtlFromSeconds(int64_t seconds,
                                              const SessionManager& sessions);
// The request's sampling with the documented defaults filled in.
absl::StatusOr<engine::SamplingParams> ToSamplingParams(
    const SamplingRequest& request);
// max_tokens in [0, limit]; 0 becomes the default.
absl::StatusOr<int> ResolveMaxTokens(int32_t requested,
                                     const AppOptions& options);
// The request's own stop strings (not the template's): how many and how
// long, valid UTF-8.
absl::Status CheckStops(const std::vector<std::string>& stops,
                        const AppOptions& options);
// A state-file parsing error as the API reports it: the caller's bad bytes
// (INVALID_ARGUMENT) unless the state belongs to another model
// (FAILED_PRECONDITION).
absl::Status StateBytesError(const absl::Status& status);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_REQUEST_CHECKS_H_
