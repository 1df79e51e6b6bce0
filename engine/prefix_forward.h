// ForwardWithPrefixCache: runs a prompt on an Engine, reusing the longest
// cached prefix and caching the result. Call it from the engine's own thread
// (Engine is not thread-safe); the PrefixCache may be shared by many engines.
#ifndef RWKV_ENGINE_PREFIX_FORWARD_H_
#define RWKV_ENGINE_PREFIX_FORWARD_H_

#include <cstddef>
#include <cstdint>
#include <utility>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/engine.h"
#include "engine/logits.h"
#include "engine/prefix_cache.h"
#include "engine/state.h"

namespace rwkv::engine {

// Returns the state after `tokens` (fed from a fresh state) and the logits
// after the last token, as engine.Forward(tokens, fresh) would (up to the
// rounding of running the remainder as a shorter sequence; bit-exact on the
// fp32 CPU path in the tests), computing only what the cache lacks: the longest
// cached prefix is cloned and the rest is run through engine.Forward (nothing
// runs if all of `tokens` is cached). The full prompt's state is cached (best
// effort) and computed once across concurrent callers
// (PrefixCache::GetOrCompute). If 0 < checkpoint_len < tokens.size(), the state
// after tokens[0, checkpoint_len) (say, a shared system prompt) is also cached
// and single-flighted, so later prompts that share only that part reuse it.
// `reused_tokens` (optional) receives how many tokens this call did not run
// through the engine. Errors: InvalidArgument for empty `tokens`; engine errors
// as is.
absl::StatusOr<std::pair<State, Logits>> ForwardWithPrefixCache(
    Engine& engine, PrefixCache& cache, absl::Span<const int32_t> tokens,
    int64_t* reused_tokens = nullptr, size_t checkpoint_len = 0);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PREFIX_FORWARD_H_
