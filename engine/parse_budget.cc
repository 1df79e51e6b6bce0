#include "engine/parse_budget.h"

#include <limits>

namespace rwkv::engine {

ParseBudget ParseBudget::ForInput(uint64_t input_bytes, uint64_t factor,
                                  uint64_t slack_bytes) {
  const uint64_t max = std::numeric_limits<uint64_t>::max();
  uint64_t limit;
  if (__builtin_mul_overflow(input_bytes, factor, &limit) ||
      __builtin_add_overflow(limit, slack_bytes, &limit)) {
    limit = max;
  }
  ParseBudget budget(limit, input_bytes);
  budget.factor_ = factor;
  budget.slack_ = slack_bytes;
  return budget;
}

ParseBudget::ParseBudget(uint64_t limit_bytes, uint64_t input_bytes)
    : limit_(limit_bytes), input_bytes_(input_bytes) {}

absl::Status ParseBudget::Exceeded(std::string_view what) const {
  std::string how = absl::StrCat(limit_, " bytes");
  if (factor_ != 0) {
    absl::StrAppend(&how, ": ", factor_, " x its size + ");
    if (slack_ % (1 << 20) == 0) {
      absl::StrAppend(&how, slack_ >> 20, " MiB");
    } else {
      absl::StrAppend(&how, slack_, " bytes");
    }
  }
  return absl::InvalidArgumentError(absl::StrCat(
      absl::string_view(what.data(), what.size()),
      " needs more memory than is allowed for an input of ", input_bytes_,
      " bytes (", how, "); refused (a hostile or corrupt file?)"));
}

absl::Status OutOfMemoryWhileParsing(std::string_view context) noexcept {
  // Made at startup, while memory is there; copying it allocates nothing.
  static const absl::Status* const kFallback = new absl::Status(
      absl::StatusCode::kResourceExhausted, "out of memory while parsing");
  try {
    return absl::ResourceExhaustedError(
        absl::StrCat(absl::string_view(context.data(), context.size()),
                     ": out of memory while parsing"));
  } catch (const std::bad_alloc&) {
    return *kFallback;
  }
}

namespace {
// Creates the fallback before any parse can run out of memory.
[[maybe_unused]] const bool kFallbackReady = !OutOfMemoryWhileParsing("").ok();
}  // namespace

}  // namespace rwkv::engine
