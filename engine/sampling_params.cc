#include "engine/sampling_params.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace rwkv::engine {
namespace {

// Returns InvalidArgument unless `value` is finite and within [lo, hi]
// (lo excluded when `lo_open`).
absl::Status CheckRange(const char* name, float value, float lo, bool lo_open,
                        float hi) {
  const bool ok = std::isfinite(value) &&
                  (lo_open ? value > lo : value >= lo) && value <= hi;
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("SamplingParams.", name, " must be finite and in ",
                   lo_open ? "(" : "[", lo, ", ", hi, "], got ", value));
}

}  // namespace

absl::Status ValidateSamplingParams(const SamplingParams& params) {
  absl::Status s = CheckRange("temperature", params.temperature, 0.0f,
                              /*lo_open=*/false, kMaxTemperature);
  if (!s.ok()) return s;
  s = CheckRange("top_p", params.top_p, 0.0f, /*lo_open=*/true, 1.0f);
  if (!s.ok()) return s;
  if (params.top_k < 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "SamplingParams.top_k must be >= 0 (0 = off), got ", params.top_k));
  }
  s = CheckRange("presence_penalty", params.presence_penalty, -kMaxAbsPenalty,
                 /*lo_open=*/false, kMaxAbsPenalty);
  if (!s.ok()) return s;
  s = CheckRange("frequency_penalty", params.frequency_penalty, -kMaxAbsPenalty,
                 /*lo_open=*/false, kMaxAbsPenalty);
  if (!s.ok()) return s;
  return CheckRange("penalty_decay", params.penalty_decay, 0.0f,
                    /*lo_open=*/true, 1.0f);
}

}  // namespace rwkv::engine
