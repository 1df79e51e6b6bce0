#include "server/app/field_error.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"

namespace rwkv::server {
namespace {

constexpr char kFieldPayload[] = "rwkv.dev/request-field";

}  // namespace

absl::Status FieldError(absl::string_view field, absl::string_view what) {
  return WithField(absl::InvalidArgumentError(absl::StrCat(field, " ", what)),
                   field);
}

absl::Status WithField(absl::Status status, absl::string_view field) {
  if (!status.ok()) status.SetPayload(kFieldPayload, absl::Cord(field));
  return status;
}

std::optional<std::string> ErrorField(const absl::Status& status) {
  const auto field = status.GetPayload(kFieldPayload);  // absl::optional
  if (!field.has_value()) return std::nullopt;
  return std::string(*field);
}

}  // namespace rwkv::server
