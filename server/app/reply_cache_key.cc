#include "server/app/reply_cache_key.h"

#include <utility>

#include "engine/logits.h"

namespace rwkv::server {

namespace {

// Best effort (see the header).
void InsertBestEffort(engine::PrefixCache* cache,
                      const std::vector<int32_t>& key,
                      const engine::State& state,
                      absl::Span<const float> logits) {
  (void)cache->Insert(
      key, state,
      engine::Logits(1, static_cast<int>(logits.size()),
                     std::vector<float>(logits.begin(), logits.end())));
}

}  // namespace

void ReplyCacheKey::InsertPrompt(const engine::State& state,
                                 absl::Span<const float> logits) {
  InsertBestEffort(cache_, key_, state, logits);
}

void ReplyCacheKey::Add(const TurnChunk& chunk) {
  reply_ids_.insert(reply_ids_.end(), chunk.token_ids.begin(),
                    chunk.token_ids.end());
  reply_text_ += chunk.text;
}

std::vector<int32_t> ReplyCacheKey::ReplyKey() const {
  if (renderer_ == nullptr) return reply_ids_;
  absl::StatusOr<std::string> fed = tokenizer_->Decode(reply_ids_);
  if (!fed.ok() || *fed != renderer_->chat_template().Reply(reply_text_)) {
    return reply_ids_;
  }
  absl::StatusOr<std::vector<int32_t>> rendered =
      renderer_->RenderReply(reply_text_);
  if (!rendered.ok() || rendered->size() != reply_ids_.size()) {
    return reply_ids_;
  }
  return *std::move(rendered);
}

void ReplyCacheKey::Insert(const engine::State& state,
                           absl::Span<const float> logits) {
  std::vector<int32_t> key = key_;
  const std::vector<int32_t> reply = ReplyKey();
  key.insert(key.end(), reply.begin(), reply.end());
  // The key holds exactly as many tokens as were fed (an end-of-text token
  // is not).
  InsertBestEffort(cache_, key, state, logits);
}

}  // namespace rwkv::server
