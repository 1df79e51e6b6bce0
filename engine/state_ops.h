// Operations on recurrent states that are the point of this product: fork,
// blend, decay, distance.
// RWKV-4 accumulators are handled by what they mean: the true WKV numerator
// and denominator are att_aa*exp(att_pp) and att_ab*exp(att_pp), so blend,
// decay and distance work on those (at a common exponent), never on the raw
// numbers. RWKV-7 states are linear in every component (att_kv holds the true
// per-head matrices), so blend and distance act on the raw values and decay
// scales att_kv. Pure functions: inputs are not modified; thread-compatible.
#ifndef RWKV_ENGINE_STATE_OPS_H_
#define RWKV_ENGINE_STATE_OPS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/state.h"

namespace rwkv::engine {

// A deep copy (same as State::Clone): changing one never changes the other.
State ForkState(const State& state);

// alpha*A + (1-alpha)*B over the true values. Accumulators are combined at
// pp = max(ppA, ppB); x_prev components linearly. The token count becomes
// round(alpha*nA + (1-alpha)*nB). REQUIRES alpha in [0, 1]; A and B from the
// same model (fingerprints equal when both are known).
absl::StatusOr<State> BlendStates(const State& a, const State& b, double alpha);

// Multiplies the true accumulators by factor in (0, 1] (RWKV-4: pp +=
// log(factor): exact, no underflow however small the factor; RWKV-7: att_kv
// *= factor); x_prev unchanged.
absl::StatusOr<State> DecayState(const State& state, double factor);

// L2 distances of the true values per component (RWKV-4: att_num =
// att_aa*exp(att_pp), att_den = att_ab*exp(att_pp), att_x_prev, ffn_x_prev)
// and in total (root of the sum of squares), computed in double.
struct StateDistance {
  std::vector<std::pair<std::string, double>> components;
  double total = 0;
};
absl::StatusOr<StateDistance> DistanceBetween(const State& a, const State& b);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_STATE_OPS_H_
