// ReplyCacheKey: files the state after a reply in the shared-prefix cache
// under the conversation's tokens: the prompt's (fed from a fresh state)
// followed by the reply's; and the state after the prompt alone, so that a
// resent history whose reply does not render to the tokens the model chose
// still finds everything up to that reply. For a chat reply, when the tokens
// fed spell exactly the text a resent history renders the reply to
// (ConversationRenderer::RenderReply) and are as many, the rendered tokens
// are the key, so the next request finds the state even if the model chose
// a tokenization of its own; otherwise the tokens fed are. Best effort: a
// full cache or an entry too big for it just keeps nothing.
// Thread-compatible (one per turn, on the scheduler thread).
#ifndef RWKV_SERVER_APP_REPLY_CACHE_KEY_H_
#define RWKV_SERVER_APP_REPLY_CACHE_KEY_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "engine/prefix_cache.h"
#include "engine/state.h"
#include "engine/tokenizer.h"
#include "server/app/conversation_renderer.h"
#include "server/sched/job.h"

namespace rwkv::server {

class ReplyCacheKey {
 public:
  // `cache` and `tokenizer` must outlive this; `renderer` (may be null: a
  // raw-text turn) too.
  ReplyCacheKey(engine::PrefixCache* cache, std::vector<int32_t> prompt,
                const ConversationRenderer* renderer,
                const engine::Tokenizer* tokenizer)
      : cache_(cache),
        renderer_(renderer),
        tokenizer_(tokenizer),
        key_(std::move(prompt)) {}

  // Caches the state after the prompt (before any reply token).
  void InsertPrompt(const engine::State& state, absl::Span<const float> logits);
  // A chunk of the reply (its ids were fed, its text sent).
  void Add(const TurnChunk& chunk);
  // Caches `state` (after the prompt and every reply token added) and the
  // logits after it.
  void Insert(const engine::State& state, absl::Span<const float> logits);

 private:
  // The reply's tokens under which the state is filed.
  std::vector<int32_t> ReplyKey() const;

  engine::PrefixCache* const cache_;
  const ConversationRenderer* const renderer_;
  const engine::Tokenizer* const tokenizer_;
  std::vector<int32_t> key_;  // the prompt's tokens
  std::vector<int32_t> reply_ids_;
  std::string reply_text_;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_APP_REPLY_CACHE_KEY_H_
