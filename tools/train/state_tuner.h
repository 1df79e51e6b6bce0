// State tuning (the RWKV community's name for learning an initial state with
// the weights frozen): learns an RWKV-4 initial state that steers a model,
// e.g. towards a reply style, and writes it in the state toolkit's file
// format (engine/state_file.h), loadable by the engine and the server.
//
// Parameterization: the WKV denominator b = exp(log_b) (positive, learned on
// a log scale) and numerator a = b * mean, in the unscaled form (the file
// stores att_aa = a, att_ab = b, att_pp = 0), and the two token-shift
// vectors att_x_prev and ffn_x_prev, all [n_layer, n_embd]; log_b starts at
// StateTuneOptions::init_log_b and the rest at 0 (next to the zero state). The
// loss is the mean cross entropy of the assistant replies' bytes (from the
// first byte after "Assistant:" through the closing "\n\n"), each training
// dialogue starting from the learned state.
#ifndef RWKV_TOOLS_TRAIN_STATE_TUNER_H_
#define RWKV_TOOLS_TRAIN_STATE_TUNER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/engine.h"
#include "engine/state.h"
#include "tools/train/rwkv4_train_model.h"

namespace rwkv::train {

// A learned initial state for one sequence: [L, C] each.
struct LearnedState {
  torch::Tensor a, b, x_att, x_ffn;
};

// Reply-only mean cross entropy (nats/byte) of `docs` from `state` (null:
// the zero state).
double ReplyLoss(const Rwkv4TrainModel& model,
                 const std::vector<std::string>& docs,
                 const LearnedState* state);

struct StateTuneOptions {
  int64_t steps = 200;
  int batch = 8;
  double lr = 0.05;
  // Starting log of the denominator (see above); the accumulators of real
  // sequences reach e^k sums far above 1, so small values start next to the
  // zero state.
  double init_log_b = 0.0;
  // log_b is bounded softly to (-max_log_b, max_log_b) (max * tanh(raw /
  // max)): the engine runs the WKV in fp32, where a token's e^k added to a
  // far larger accumulator is lost, so an unbounded state learned in double
  // precision would not carry over.
  double max_log_b = 6.0;
  uint64_t seed = 1;
  bool progress = true;
};

absl::StatusOr<LearnedState> TuneState(const Rwkv4TrainModel& model,
                                       const std::vector<std::string>& docs,
                                       const StateTuneOptions& options);

// Bytes of a state file (toolkit format, fp32) for `state`, tagged with the
// model's fingerprint.
absl::StatusOr<std::string> SerializeLearnedState(
    const LearnedState& state, const std::string& model_fingerprint);

// Dialogues in a fixed answer style for state-tuning demos and tests: the
// corpus' fact and small-talk turns with every reply ending in " Arr!".
std::vector<std::string> StyledDialogues(uint64_t seed, int count);

// The same reply-only loss computed by the engine (fp32 inference path),
// token by token from `start`.
absl::StatusOr<double> EngineReplyLoss(engine::Engine& engine,
                                       const engine::State& start,
                                       const std::vector<std::string>& docs);

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_STATE_TUNER_H_
