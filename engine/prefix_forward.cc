#include "engine/prefix_forward.h"

#include <optional>
#include <utility>

namespace rwkv::engine {

absl::StatusOr<std::pair<State, Logits>> ForwardWithPrefixCache(
    Engine& engine, PrefixCache& cache, absl::Span<const int32_t> tokens,
    int64_t* reused_tokens, size_t checkpoint_len) {
  if (tokens.empty()) return absl::InvalidArgumentError("empty prompt");
  int64_t forwarded = 0;
  // Feeds `prefix` into base's state (or a fresh one) from base's end.
  auto run = [&](absl::Span<const int32_t> prefix,
                 std::optional<PrefixHit> base)
      -> absl::StatusOr<std::pair<State, Logits>> {
    State state = base.has_value() ? std::move(base->state) : engine.NewState();
    const size_t start = base.has_value() ? base->prefix_len : 0;
    absl::Span<const int32_t> rest = prefix.subspan(start);
    absl::StatusOr<Logits> logits = engine.Forward(rest, state);
    if (!logits.ok()) return logits.status();
    forwarded += static_cast<int64_t>(rest.size());
    return std::make_pair(std::move(state), *std::move(logits));
  };
  const bool use_checkpoint =
      checkpoint_len > 0 && checkpoint_len < tokens.size();
  absl::Span<const int32_t> head = tokens.subspan(0, checkpoint_len);

  absl::StatusOr<PrefixHit> hit = cache.GetOrCompute(
      tokens,
      [&](std::optional<PrefixHit> base)
          -> absl::StatusOr<std::pair<State, Logits>> {
        if (use_checkpoint &&
            (!base.has_value() || base->prefix_len < checkpoint_len)) {
          // Nested calls only go to shorter prefixes, so they cannot wait on
          // this computation.
          absl::StatusOr<PrefixHit> head_hit =
              cache.GetOrCompute(head, [&](std::optional<PrefixHit> head_base) {
                return run(head, std::move(head_base));
              });
          if (!head_hit.ok()) return head_hit.status();
          base = *std::move(head_hit);
        }
        return run(tokens, std::move(base));
      });
  if (!hit.ok()) return hit.status();
  if (reused_tokens != nullptr) {
    *reused_tokens = static_cast<int64_t>(tokens.size()) - forwarded;
  }
  return std::make_pair(std::move(hit->state), std::move(hit->logits));
}

}  // namespace rwkv::engine
