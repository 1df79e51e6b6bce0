#include "common/cli_validators.h"

#include <cmath>
#include <limits>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "common/byte_size.h"

namespace rwkv::common {
namespace {

// The value as the user wrote it, bounded (a flag value may be a whole file
// pasted by mistake).
std::string Quoted(const std::string& value) {
  constexpr size_t kMax = 64;
  if (value.size() <= kMax) return absl::StrCat("'", value, "'");
  return absl::StrCat("'", value.substr(0, kMax), "...' (", value.size(),
                      " bytes)");
}

// A validator for a finite number that also satisfies `ok`; `what` completes
// "must be a number ...".
CLI::Validator Number(std::function<bool(double)> ok, std::string what,
                      std::string description) {
  return CLI::Validator(
             [ok = std::move(ok), what](std::string& value) -> std::string {
               double v = 0;
               if (!absl::SimpleAtod(value, &v) || !std::isfinite(v)) {
                 return absl::StrCat("must be a finite number, got ",
                                     Quoted(value));
               }
               if (!ok(v)) {
                 return absl::StrCat("must be ", what, ", got ", Quoted(value));
               }
               return std::string();
             },
             std::move(description))
      .non_modifying();
}

}  // namespace

CLI::Validator IntIn(int64_t lo, int64_t hi) {
  return CLI::Validator(
      [lo, hi](std::string& value) -> std::string {
        int64_t v = 0;
        if (!absl::SimpleAtoi(value, &v) || v < lo || v > hi) {
          return absl::StrCat("must be an integer in [", lo, ", ", hi,
                              "], got ", Quoted(value));
        }
        value = absl::StrCat(v);
        return std::string();
      },
      hi == std::numeric_limits<int64_t>::max()
          ? std::string()
          : absl::StrCat("in [", lo, ", ", hi, "]"));
}

CLI::Validator Uint64() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        uint64_t v = 0;
        if (!absl::SimpleAtoi(value, &v) ||
            value.find('-') != std::string::npos) {
          return absl::StrCat("must be an integer in [0, ",
                              std::numeric_limits<uint64_t>::max(), "], got ",
                              Quoted(value));
        }
        value = absl::StrCat(v);
        return std::string();
      },
      "");
}

CLI::Validator FiniteNumber() {
  return Number([](double) { return true; }, "", "");
}

CLI::Validator NumberIn(double lo, double hi) {
  const std::string range = absl::StrCat("[", lo, ", ", hi, "]");
  return Number([lo, hi](double v) { return v >= lo && v <= hi; },
                absl::StrCat("in ", range), absl::StrCat("in ", range));
}

CLI::Validator NumberAboveUpTo(double lo, double hi) {
  const std::string range = absl::StrCat("(", lo, ", ", hi, "]");
  return Number([lo, hi](double v) { return v > lo && v <= hi; },
                absl::StrCat("in ", range), absl::StrCat("in ", range));
}

CLI::Validator NumberAtLeast(double lo) {
  return Number([lo](double v) { return v >= lo; }, absl::StrCat(">= ", lo),
                absl::StrCat(">= ", lo));
}

CLI::Validator NumberAbove(double lo) {
  return Number([lo](double v) { return v > lo; }, absl::StrCat("> ", lo),
                absl::StrCat("> ", lo));
}

CLI::Validator ByteSize() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        absl::StatusOr<int64_t> bytes = ParseByteSize(value);
        if (!bytes.ok()) {
          return absl::StrCat("must be a byte count like 512M, got ",
                              Quoted(value));
        }
        value = absl::StrCat(*bytes);
        return std::string();
      },
      "N[K|M|G]");
}

CLI::Validator OneOf(std::vector<std::string> values) {
  const std::string joined = absl::StrJoin(values, "|");
  return CLI::Validator(
             [values = std::move(values), joined](std::string& value) {
               for (const std::string& v : values) {
                 if (value == v) return std::string();
               }
               return absl::StrCat("must be one of ", joined, ", got ",
                                   Quoted(value));
             },
             "")
      .non_modifying();
}

CLI::Validator NonEmpty() {
  return CLI::Validator(
             [](std::string& value) {
               return value.empty() ? std::string("must not be empty")
                                    : std::string();
             },
             "")
      .non_modifying();
}

CLI::Validator UnescapeNewlines() {
  return CLI::Validator(
      [](std::string& value) {
        value = absl::StrReplaceAll(value, {{"\\n", "\n"}});
        return std::string();
      },
      "");
}

std::string EscapeNewlines(const std::string& text) {
  return absl::StrReplaceAll(text, {{"\n", "\\n"}});
}

}  // namespace rwkv::common
