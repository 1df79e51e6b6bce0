// LoadGenerator: drives N concurrent streaming Generate turns against a
// server, over gRPC or HTTP (load_target.h), and measures what clients see.
//
// One phase: create one session per stream (plus one for the optional
// long-prompt client), run an unmeasured warmup turn on each, read the
// server's scheduler counters (GetModelInfo), start every stream at once
// (one thread each, greedy or fixed seeds, max_tokens with ignore_eos so each
// turn runs its full length), optionally send one long prompt once all
// streams decode, read the counters again and delete the sessions.
//
// Measured per phase: aggregate tokens/s (tokens received in the window /
// window), time to first token per turn, inter-token latency as the gap
// between consecutive token-carrying chunks (overall and for the gaps that
// overlap the long prompt's processing), and the server's average batch
// size (delta tokens_generated / delta decode_steps).
//
// Thread safety: RunPhase() is called from one thread; it starts and joins
// its own stream threads. `target` is borrowed and shared by them.
#ifndef RWKV_CLIENT_LOAD_GENERATOR_H_
#define RWKV_CLIENT_LOAD_GENERATOR_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "client/latency_stats.h"
#include "client/load_options.h"
#include "client/load_target.h"

namespace rwkv::client {

struct PhaseResult {
  int streams = 0;
  int turns = 0;
  int64_t tokens = 0;
  double seconds = 0;
  double tokens_per_second = 0;
  // Steady state: tokens received while every stream was decoding (from the
  // last stream's first token to the first stream's last token) over that
  // interval; excludes the ramp-up (prompts) and the tail. 0: no overlap.
  int64_t steady_tokens = 0;
  double steady_seconds = 0;
  double steady_tokens_per_second = 0;
  // The server's prompt token count (usage.prompt_tokens) of the first turn.
  int prompt_tokens = 0;
  LatencyStats ttft_ms;
  LatencyStats inter_token_ms;
  // Gaps that overlap the long prompt's [sent, first token] interval.
  LatencyStats inter_token_during_long_prompt_ms;
  // Long prompt: tokens as the server counted them and its time to first
  // token (< 0: not run).
  int long_prompt_tokens = 0;
  double long_prompt_ttft_ms = -1;
  // Server-side counters over the phase; avg < 0: the server reports none.
  int64_t server_decode_steps = 0;
  int64_t server_tokens = 0;
  double server_avg_batch = -1;
  int errors = 0;
  std::string first_error;
};

class LoadGenerator {
 public:
  LoadGenerator(LoadTarget* target, const LoadOptions& options);

  // Runs one phase with `streams` concurrent streams. Fails only when the
  // phase cannot start (server unreachable, session creation fails); errors
  // of single turns are counted in the result.
  absl::StatusOr<PhaseResult> RunPhase(int streams);

 private:
  // A prompt of about `tokens` tokens for the server's tokenizer.
  std::string MakePrompt(int tokens) const;

  LoadTarget* const target_;
  const LoadOptions options_;
  std::string tokenizer_;
  int phase_ = 0;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_LOAD_GENERATOR_H_
