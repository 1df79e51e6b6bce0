// InspectState: per component and per layer statistics of a state (mean |x|,
// max |x|; for RWKV-4 accumulators the log10 magnitude of the true values,
// exp(pp) included; for the RWKV-7 matrix att_kv the norm of each head's
// [N x N] state) and a health verdict with the reasons. Pure function.
#ifndef RWKV_ENGINE_STATE_INSPECT_H_
#define RWKV_ENGINE_STATE_INSPECT_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/model_config.h"
#include "engine/state.h"

namespace rwkv::engine {

struct LayerStats {
  double mean_abs = 0;
  double max_abs = 0;
  // RWKV-4 att_aa / att_ab: max over channels of log10|true value|
  // (log10|x| + pp/ln 10); -inf where all are zero. NaN for other components.
  double max_log10_true = 0;
  // RWKV-7 att_kv: Frobenius norm of each head's matrix; empty otherwise.
  std::vector<double> head_norms;
};

struct ComponentReport {
  std::string name;
  std::vector<int64_t> shape;
  double mean_abs = 0;
  double max_abs = 0;
  std::vector<LayerStats> layers;
};

// Health bounds (engineering limits, documented in README "State health"):
// a healthy state is finite; RWKV-4: att_ab >= 0, every |att_aa| <=
// kMaxMeanRatio * att_ab (the running WKV mean stays bounded), att_pp <=
// kMaxExponent (lower values, such as a fresh state's -1e30 or its fp16 form
// -65504, weigh nothing), |x_prev| <= kMaxActivation;
// RWKV-7: every |att_kv| <= kHealthMaxKv.
inline constexpr double kHealthMaxActivation = 1e4;
inline constexpr double kHealthMaxKv = 1e6;
inline constexpr double kHealthMaxExponent = 1e4;
inline constexpr double kHealthMaxMeanRatio = 1e4;

struct StateReport {
  Architecture arch = Architecture::kRwkv4;
  std::string model_fingerprint;
  int64_t token_count = 0;
  int64_t bytes = 0;
  std::vector<ComponentReport> components;
  bool finite = true;
  bool healthy = true;
  std::vector<std::string> problems;  // why not healthy (capped at 20)
};

absl::StatusOr<StateReport> InspectState(const State& state);

// The health verdict alone, for accepting a state from outside (state
// files, uploads): OK for a healthy state; InvalidArgument "state is
// unhealthy: <the first problems>" otherwise (the same verdict and problems
// InspectState reports). Errors of InspectState pass through.
absl::Status CheckStateHealth(const State& state);

// A human-readable multi-line rendering (rwkv-cli state inspect).
std::string FormatStateReport(const StateReport& report);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_STATE_INSPECT_H_
