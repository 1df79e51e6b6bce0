#include "tools/cli_args.h"

#include <cmath>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace rwkv::tools {

CliArgs::CliArgs(std::set<std::string> value_flags,
                 std::set<std::string> bool_flags)
    : value_flags_(std::move(value_flags)),
      bool_flags_(std::move(bool_flags)) {}

absl::Status CliArgs::Parse(int argc, char** argv, int first) {
  for (int i = first; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.size() < 3 || arg.compare(0, 2, "--") != 0) {
      positionals_.push_back(arg);
      continue;
    }
    std::string name = arg.substr(2);
    std::optional<std::string> value;
    if (size_t eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
    }
    if (values_.count(name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", name, " given twice"));
    }
    if (bool_flags_.count(name)) {
      if (value && *value != "true" && *value != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("--", name, " takes no value (or =true/=false)"));
      }
      values_[name] = value.value_or("true");
    } else if (value_flags_.count(name)) {
      if (!value) {
        if (i + 1 >= argc) {
          return absl::InvalidArgumentError(
              absl::StrCat("--", name, " needs a value"));
        }
        value = argv[++i];
      }
      values_[name] = *value;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown flag --", name));
    }
  }
  return absl::OkStatus();
}

bool CliArgs::Has(const std::string& name) const {
  auto it = values_.find(name);
  return it != values_.end() && it->second != "false";
}

std::optional<std::string> CliArgs::Get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string CliArgs::GetOr(const std::string& name,
                           const std::string& fallback) const {
  return Get(name).value_or(fallback);
}

absl::StatusOr<int64_t> CliArgs::GetInt(const std::string& name,
                                        int64_t fallback) const {
  std::optional<std::string> v = Get(name);
  if (!v) return fallback;
  int64_t out = 0;
  if (!absl::SimpleAtoi(*v, &out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be an integer, got '", *v, "'"));
  }
  return out;
}

absl::StatusOr<double> CliArgs::GetDouble(const std::string& name,
                                          double fallback) const {
  std::optional<std::string> v = Get(name);
  if (!v) return fallback;
  double out = 0;
  if (!absl::SimpleAtod(*v, &out) || !std::isfinite(out)) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be a finite number, got '", *v, "'"));
  }
  return out;
}

absl::StatusOr<std::vector<int32_t>> ParseIdList(const std::string& text) {
  std::vector<int32_t> ids;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    if (part.empty()) continue;
    int32_t id = 0;
    if (!absl::SimpleAtoi(part, &id)) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad token id '", std::string(part), "' in --tokens"));
    }
    ids.push_back(id);
  }
  return ids;
}

}  // namespace rwkv::tools
