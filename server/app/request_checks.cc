#include "server/app/request_checks.h"

#include <string_view>

#include "absl/strings/str_cat.h"
#include "engine/utf8.h"
#include "server/app/field_error.h"

namespace rwkv::server {

absl::Status CheckText(absl::string_view text, absl::string_view field,
                       bool allow_empty) {
  if (!allow_empty && text.empty()) {
    return FieldError(field, "is empty");
  }
  const std::string_view bytes(text.data(), text.size());
  if (!engine::IsValidUtf8(bytes)) {
    return FieldError(
        field, absl::StrCat("is not valid UTF-8 (first bad byte at offset ",
                            engine::ValidUtf8PrefixLength(bytes), ")"));
  }
  return absl::OkStatus();
}

absl::Status CheckSessionId(absl::string_view id, absl::string_view field) {
  if (id.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(field, " is empty"));
  }
  return CheckOptionalSessionId(id, field);
}

absl::Status CheckOptionalSessionId(absl::string_view id,
                                    absl::string_view field) {
  if (id.empty()) return absl::OkStatus();
  if (absl::Status s = SessionManager::ValidateId(id); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message()));
  }
  return absl::OkStatus();
}

absl::StatusOr<absl::Duration> TtlFromSeconds(int64_t seconds,
                                              const SessionManager& sessions) {
  if (seconds < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl_seconds must be >= 0, got ", seconds));
  }
  if (seconds > int64_t{10} * 365 * 24 * 3600) {
    return absl::InvalidArgumentError(
        absl::StrCat("ttl_seconds is too large: ", seconds));
  }
  absl::Duration ttl;
  if (absl::Status s = sessions.ResolveTtl(absl::Seconds(seconds), &ttl);
      !s.ok()) {
    return s;
  }
  return absl::Seconds(seconds);
}

absl::StatusOr<engine::SamplingParams> ToSamplingParams(
    const SamplingRequest& r) {
  engine::SamplingParams out;
  out.temperature = r.temperature.value_or(1.0f);
  out.top_p = r.top_p.value_or(0.85f);
  out.top_k = r.top_k.value_or(0);
  out.presence_penalty = r.presence_penalty.value_or(0.0f);
  out.frequency_penalty = r.frequency_penalty.value_or(0.0f);
  out.penalty_decay = r.penalty_decay.value_or(0.996f);
  out.seed = r.seed.value_or(0);
  if (absl::Status s = engine::ValidateSamplingParams(out); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("sampling: ", s.message()));
  }
  return out;
}

absl::StatusOr<int> ResolveMaxTokens(int32_t requested,
                                     const AppOptions& options) {
  if (requested < 0 || requested > options.max_tokens_limit) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens must be in [0, ", options.max_tokens_limit,
                     "] (0: the default), got ", requested));
  }
  return requested == 0 ? options.default_max_tokens : requested;
}

absl::Status CheckStops(const std::vector<std::string>& stops,
                        const AppOptions& options) {
  if (static_cast<int64_t>(stops.size()) > options.max_stop_strings) {
    return absl::InvalidArgumentError(
        absl::StrCat("at most ", options.max_stop_strings,
                     " stop strings, got ", stops.size()));
  }
  for (const std::string& stop : stops) {
    if (static_cast<int64_t>(stop.size()) > options.max_stop_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a stop string is longer than ", options.max_stop_bytes, " bytes"));
    }
    if (absl::Status s = CheckText(stop, "stop", true); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status StateBytesError(const absl::Status& status) {
  if (absl::IsFailedPrecondition(status)) return status;
  if (absl::IsResourceExhausted(status)) return status;
  return absl::InvalidArgumentError(
      absl::StrCat("bad state bytes: ", status.message()));
}

}  // namespace rwkv::server
