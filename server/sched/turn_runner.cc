#include "server/sched/turn_runner.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace rwkv::server {

absl::StatusOr<TurnRunner> TurnRunner::Create(
    const GenerateJob& job, const engine::Tokenizer& tokenizer,
    int vocab_size) {
  absl::StatusOr<engine::Sampler> sampler =
      engine::Sampler::Create(job.sampling, vocab_size);
  if (!sampler.ok()) return sampler.status();
  return TurnRunner(*std::move(sampler), tokenizer, job);
}

TurnRunner::TurnRunner(engine::Sampler sampler,
                       const engine::Tokenizer& tokenizer,
                       const GenerateJob& job)
    : sampler_(std::move(sampler)),
      tokenizer_(&tokenizer),
      decoder_(tokenizer),
      stops_(job.stop),
      max_tokens_(job.max_tokens),
      ignore_eos_(job.ignore_eos) {}

absl::StatusOr<TurnRunner::Next> TurnRunner::OnLogits(
    absl::Span<const float> row) {
  pending_.reset();
  if (finish_ != FinishReason::kNone) return Next::kFinish;
  absl::StatusOr<int32_t> token = sampler_.Sample(row);
  if (!token.ok()) {
    return absl::InternalError(
        absl::StrCat("sampling failed: ", token.status().message()));
  }
  const std::optional<int32_t> eos = tokenizer_->eos_token();
  if (!ignore_eos_ && eos.has_value() && *token == *eos) {
    // Whatever the decoder and the stop matcher still hold is sent.
    out_text_ += stops_.Push(decoder_.Flush());
    out_text_ += stops_.Flush();
    finish_ = FinishReason::kEos;
    return Next::kFinish;
  }
  Accept(*token);
  pending_ = *token;
  if (stops_.stopped()) {
    finish_ = FinishReason::kStop;
  } else if (generated_ >= max_tokens_) {
    out_text_ += stops_.Push(decoder_.Flush());
    if (!stops_.stopped()) out_text_ += stops_.Flush();
    finish_ = stops_.stopped() ? FinishReason::kStop : FinishReason::kLength;
  }
  return Next::kFeed;
}

void TurnRunner::Accept(int32_t token) {
  sampler_.Accept(token);
  ++generated_;
  std::string piece;
  // Ids the tokenizer cannot decode (model padding rows) add no text.
  if (token < tokenizer_->vocab_size()) {
    absl::StatusOr<std::string> decoded = decoder_.Push(token);
    if (decoded.ok()) piece = *std::move(decoded);
  }
  out_text_ += stops_.Push(piece);
  out_ids_.push_back(token);
}

std::optional<TurnChunk> TurnRunner::TakeChunk(int64_t token_count) {
  if (out_text_.empty() && out_ids_.empty()) return std::nullopt;
  TurnChunk chunk;
  chunk.text = std::exchange(out_text_, "");
  chunk.token_ids = std::exchange(out_ids_, {});
  chunk.token_count = token_count + (pending_.has_value() ? 1 : 0);
  return chunk;
}

TurnChunk TurnRunner::TakeLast(int64_t token_count, int32_t prompt_tokens,
                               int32_t cached_tokens) {
  TurnChunk chunk;
  chunk.text = std::exchange(out_text_, "");
  chunk.token_ids = std::exchange(out_ids_, {});
  chunk.finish_reason = finish_;
  chunk.prompt_tokens = prompt_tokens;
  chunk.generated_tokens = generated_;
  chunk.cached_tokens = cached_tokens;
  chunk.token_count = token_count;
  return chunk;
}

}  // namespace rwkv::server
