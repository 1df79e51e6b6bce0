// libFuzzer target: a state upload (.pth or .safetensors bytes) parsed for a
// small random RWKV-4 model with ParseState (size limit, parse, schema,
// fingerprint, health), then, if accepted, one forward from it, which must
// succeed or report non-finite logits; and parsed without a model
// (ParseStateStandalone, the rwkv-cli state tools). The parse stays within
// its budget.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "engine/logits.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "tests/fuzz/fuzz_budget_check.h"

namespace {

rwkv::engine::RwkvEngine* Engine() {
  static rwkv::engine::RwkvEngine* const engine = [] {
    rwkv::engine::RandomModelSpec spec;
    spec.n_layer = 2;
    spec.n_embd = 16;
    spec.vocab_size = 64;
    spec.seed = 5;
    rwkv::engine::EngineOptions options;
    options.num_threads = 1;
    return rwkv::engine::RwkvEngine::CreateRandom(spec, options)->release();
  }();
  return engine;
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  Engine();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  {
    rwkv::fuzz::BudgetCheck check(size);
    (void)rwkv::engine::ParseStateStandalone(bytes, "fuzz.pt");
  }
  rwkv::engine::LoadStateOptions options;
  options.skip_fingerprint_check = size % 2 == 0;
  absl::StatusOr<rwkv::engine::State> state;
  {
    rwkv::fuzz::BudgetCheck check(size);
    state =
        rwkv::engine::ParseState(bytes, "fuzz.pt", Engine()->model(), options);
  }
  if (!state.ok()) return 0;
  const int32_t token = 7;
  absl::StatusOr<rwkv::engine::Logits> logits =
      Engine()->Forward({&token, 1}, *state);
  if (!logits.ok() && !rwkv::engine::IsNonFiniteLogits(logits.status())) {
    std::abort();  // a healthy accepted state must run
  }
  return 0;
}
