// Engine: runs one RWKV model. The forward entry points (single token,
// sequence/prompt, batched, and segments: several sequences of different
// lengths at once) share one implementation and agree numerically.
// Not thread-safe: an Engine is used from one thread at a time (the server's
// scheduler thread owns it). States belong to the caller. What other threads
// need (config, fresh states, parsing state bytes) is the Model, shared and
// immutable (model()).
#ifndef RWKV_ENGINE_ENGINE_H_
#define RWKV_ENGINE_ENGINE_H_

#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/logits.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/state.h"

namespace rwkv::engine {

class Engine {
 public:
  virtual ~Engine() = default;

  // The model this engine runs (thread-safe, see model.h), and the same as
  // a shared pointer for holders that may outlive the engine.
  virtual const Model& model() const = 0;
  virtual std::shared_ptr<const Model> shared_model() const = 0;

  // Shorthands for model().config() and model().NewState().
  const ModelConfig& config() const { return model().config(); }
  State NewState() const { return model().NewState(); }

  // Feeds `tokens` into `state` and returns the logits after the last token
  // (batch_size 1). One token runs the single-step path; more run sequence
  // mode (every matmul over all tokens at once). On error `state` is
  // unchanged; logits that are not finite are such an error
  // (NonFiniteLogitsError, OutOfRange: see logits.h).
  // REQUIRES: tokens non-empty, each in [0, vocab_size).
  virtual absl::StatusOr<Logits> Forward(absl::Span<const int32_t> tokens,
                                         State& state) = 0;

  // One token for each of B states in one batched step; row i of the result
  // belongs to states[i]. The states must be distinct objects. Errors found
  // before computing (bad tokens, null, foreign or repeated states) change
  // no state. If the step itself fails (e.g. out of memory), the states may
  // have been partly advanced (RWKV-7 updates att_kv in place), so every
  // state of the batch is reset to empty (valid() == false) rather than
  // left half-updated; callers that must not lose a state batch copies
  // (the server's turns do). Rows are independent: a row whose logits are
  // not finite (Logits::CheckRowFinite) fails alone; its state has advanced
  // into out-of-range values and must be restored by the caller, the other
  // rows are valid.
  virtual absl::StatusOr<Logits> ForwardBatch(
      absl::Span<const int32_t> tokens, absl::Span<State* const> states) = 0;

  // Several sequences of different lengths, each into its own state, in one
  // call: segment i feeds the next lengths[i] tokens of `tokens` into
  // *states[i]; row i of the result is the logits after segment i's last
  // token. Why: the server's scheduler steps decode rows (one token each)
  // and a prompt chunk together, and on a memory-bound CPU every separate
  // call is another pass over the weights; the fused CPU engine computes
  // all segments in one pass while they total at most 128 tokens (beyond
  // that, and on other paths, it makes the separate calls). Results are
  // those of Forward on each segment alone (of ForwardBatch for one-token
  // segments): bit-identical on the fused CPU path.
  // Errors as ForwardBatch's: bad input (lengths < 1 or not summing to
  // tokens.size(), bad tokens, null, foreign or repeated states) is found
  // before computing and changes no state; if computing fails, every state
  // of the call is reset to empty (valid() == false). A segment whose
  // logits are not finite fails alone (Logits::CheckRowFinite on its row):
  // its state must be restored by the caller (it may have advanced into
  // out-of-range values), the other rows and states are valid.
  // This default makes the separate calls (Forward per multi-token segment,
  // one ForwardBatch for the one-token ones; a segment Forward refuses as
  // non-finite gets a NaN row); engines override it to fuse them.
  virtual absl::StatusOr<Logits> ForwardSegments(
      absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
      absl::Span<State* const> states);

 protected:
  // The input checks every ForwardSegments makes first (lengths, token
  // range, null and repeated states; not whether a state is this model's).
  absl::Status CheckSegments(absl::Span<const int32_t> tokens,
                             absl::Span<const int32_t> lengths,
                             absl::Span<State* const> states) const;
  // The separate calls of the default, for checked input; `states` already
  // known to be this model's where the caller checked them.
  absl::StatusOr<Logits> ForwardSegmentsSeparately(
      absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
      absl::Span<State* const> states);
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_ENGINE_H_
