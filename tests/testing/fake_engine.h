// FakeEngine: a deterministic Engine for fast tests of the server's layers
// (no model, no real math). Its states have the real RWKV-4 schema (so the
// state tools work on them) at a toy size; att_x_prev[0][0] carries a hash
// of every token fed, and the logits put 10 at (hash mod vocab) and 0
// elsewhere, so greedy decoding continues a conversation deterministically
// and a state says exactly which tokens went into it. Batched, single,
// sequence and segments calls agree exactly. Like a real model, it cannot compute from a
// state out of the float range (OutOfRangeState): its logits are then NaN.
// Hooks let tests delay or fail a call and see
// every call's shape. Not thread-safe (like every Engine), except the
// counters and hooks.
#ifndef RWKV_TESTS_TESTING_FAKE_ENGINE_H_
#define RWKV_TESTS_TESTING_FAKE_ENGINE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "engine/engine.h"

namespace rwkv::testing {

class FakeEngine final : public engine::Engine {
 public:
  // One engine call, as the engine saw it.
  struct Call {
    bool batched = false;  // ForwardBatch (one token per row) or Forward
    size_t rows = 0;       // batch rows (1 for Forward; segments)
    size_t tokens = 0;     // tokens fed in all
    bool segments = false;  // ForwardSegments (one call, as a fused engine)
  };

  // `fingerprint` names the fake model (states of another fingerprint are
  // another model's).
  explicit FakeEngine(int vocab_size = 256,
                      const std::string& fingerprint = "fake-engine");

  const engine::Model& model() const override { return *model_; }
  std::shared_ptr<const engine::Model> shared_model() const override {
    return model_;
  }
  absl::StatusOr<engine::Logits> Forward(absl::Span<const int32_t> tokens,
                                         engine::State& state) override;
  absl::StatusOr<engine::Logits> ForwardBatch(
      absl::Span<const int32_t> tokens,
      absl::Span<engine::State* const> states) override;
  // One call (one Call with segments = true), each segment as Forward would
  // feed it; a segment on an OutOfRangeState gets NaN logits (its state
  // advanced), as in ForwardBatch.
  absl::StatusOr<engine::Logits> ForwardSegments(
      absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
      absl::Span<engine::State* const> states) override;

  // A fresh state that says it belongs to the model `fingerprint` (another
  // model's state of the same shape).
  static engine::State ForeignState(const std::string& fingerprint);
  // A fresh state whose ffn_x_prev is 3e38 (CheckStateHealth calls it
  // unhealthy). The logits after it are NaN, as a real model's are: Forward
  // answers NonFiniteLogitsError and leaves the state as it was;
  // ForwardBatch gives that row NaN logits and the other rows their usual
  // ones.
  engine::State OutOfRangeState() const;
  // The hash a state reached by feeding `tokens` into `start` has.
  static uint32_t Hash(uint32_t start, absl::Span<const int32_t> tokens);
  // The hash a state carries.
  static uint32_t HashOf(const engine::State& state);
  // The token greedy decoding picks after a state with this hash.
  int32_t GreedyAfter(uint32_t hash) const {
    return static_cast<int32_t>(hash % static_cast<uint32_t>(vocab_size_));
  }

  // Runs before every call (on the engine's thread), e.g. to block it.
  void set_before_call(std::function<void()> hook) ABSL_LOCKS_EXCLUDED(mu_);
  // The call with this index (0 = the first since construction) fails with
  // INTERNAL, after the hook ran.
  void FailCall(int index) ABSL_LOCKS_EXCLUDED(mu_);
  // Every call since construction.
  std::vector<Call> calls() const ABSL_LOCKS_EXCLUDED(mu_);
  // Tokens fed in all calls.
  int64_t tokens_fed() const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  absl::Status BeginCall(Call call) ABSL_LOCKS_EXCLUDED(mu_);

  const int vocab_size_;
  std::shared_ptr<const engine::Model> model_;
  mutable absl::Mutex mu_;
  std::vector<int> fail_calls_ ABSL_GUARDED_BY(mu_);
  std::function<void()> before_call_ ABSL_GUARDED_BY(mu_);
  std::vector<Call> calls_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_FAKE_ENGINE_H_
