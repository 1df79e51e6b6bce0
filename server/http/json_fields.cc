#include "server/http/json_fields.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace rwkv::server {
namespace {

absl::Status WrongType(absl::string_view field, absl::string_view want,
                       const nlohmann::json& got) {
  return FieldError(
      field, absl::StrCat("must be ", want, ", got ", JsonTypeName(got)));
}

}  // namespace

const char* JsonTypeName(const nlohmann::json& value) {
  switch (value.type()) {
    case nlohmann::json::value_t::null:
      return "null";
    case nlohmann::json::value_t::object:
      return "an object";
    case nlohmann::json::value_t::array:
      return "an array";
    case nlohmann::json::value_t::string:
      return "a string";
    case nlohmann::json::value_t::boolean:
      return "a boolean";
    case nlohmann::json::value_t::number_integer:
    case nlohmann::json::value_t::number_unsigned:
    case nlohmann::json::value_t::number_float:
      return "a number";
    default:
      return "a value of another kind";
  }
}

std::string JsonFields::Path(absl::string_view name) const {
  return path_.empty() ? std::string(name) : absl::StrCat(path_, ".", name);
}

const nlohmann::json* JsonFields::Find(absl::string_view name) const {
  auto it = object_.find(std::string(name));
  if (it == object_.end() || it->is_null()) return nullptr;
  return &*it;
}

absl::StatusOr<std::optional<std::string>> JsonFields::String(
    absl::string_view name) const {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_string()) return WrongType(Path(name), "a string", *v);
  return v->get<std::string>();
}

absl::StatusOr<std::optional<bool>> JsonFields::Bool(
    absl::string_view name) const {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_boolean()) return WrongType(Path(name), "a boolean", *v);
  return v->get<bool>();
}

absl::StatusOr<std::optional<double>> JsonFields::Number(absl::string_view name,
                                                         double lo,
                                                         double hi) const {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_number()) return WrongType(Path(name), "a number", *v);
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi)) {
    return FieldError(Path(name),
                      absl::StrCat("must be in [", lo, ", ", hi, "], got ", d));
  }
  return d;
}

absl::StatusOr<std::optional<int64_t>> JsonFields::Integer(
    absl::string_view name, int64_t lo, int64_t hi) const {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  const bool whole = v->is_number_integer() ||
                     (v->is_number_float() &&
                      std::trunc(v->get<double>()) == v->get<double>() &&
                      std::abs(v->get<double>()) < 9.0e18);
  if (!whole) return WrongType(Path(name), "an integer", *v);
  if (v->is_number_unsigned() &&
      v->get<uint64_t>() > static_cast<uint64_t>(hi)) {
    return FieldError(Path(name), absl::StrCat("must be at most ", hi));
  }
  const int64_t i = v->is_number_float()
                        ? static_cast<int64_t>(v->get<double>())
                        : v->get<int64_t>();
  if (i < lo || i > hi) {
    return FieldError(Path(name),
                      absl::StrCat("must be in [", lo, ", ", hi, "], got ", i));
  }
  return i;
}

absl::StatusOr<std::optional<JsonFields>> JsonFields::Object(
    absl::string_view name) const {
  const nlohmann::json* v = Find(name);
  if (v == nullptr) return std::nullopt;
  if (!v->is_object()) return WrongType(Path(name), "an object", *v);
  return JsonFields(*v, Path(name));
}

}  // namespace rwkv::server
