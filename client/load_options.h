// LoadOptions: what the load generator (LoadGenerator, rwkv-load) runs. The
// defaults here are the flags' defaults: rwkv-load's flags
// (client/load_flags.h) are bound to these fields.
#ifndef RWKV_CLIENT_LOAD_OPTIONS_H_
#define RWKV_CLIENT_LOAD_OPTIONS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "client/connect_options.h"

namespace rwkv::client {

struct LoadOptions {
  // The gRPC address (protocol grpc or both).
  std::string server = "127.0.0.1:50051";
  // API key and TLS.
  ConnectOptions connect;
  // The HTTP front's HOST:PORT (protocol http or both, --resend-turns).
  std::string http_server = "127.0.0.1:8080";
  // grpc, http (the OpenAI-compatible API, streamed), or both: every phase
  // runs over gRPC and then over HTTP and the ratio is printed.
  std::string protocol = "grpc";
  // > 0: instead of the streams, one conversation of this many turns over
  // HTTP, resent in full every turn, against the same history computed
  // cold (nothing cached): per turn the prompt tokens computed and the time
  // to the first token.
  int resend_turns = 0;
  // Concurrent streaming clients, each with its own session.
  int streams = 8;
  // Tokens each stream generates per turn (max_tokens, ignore_eos).
  int tokens_per_stream = 128;
  // Approximate prompt length in tokens (the server's count is reported).
  int prompt_tokens = 16;
  // > 0: one more client sends a prompt of this many tokens once all
  // streams are decoding, to measure how much it disturbs them.
  int long_prompt_tokens = 0;
  // > 0: streams repeat turns for this many seconds instead of one turn.
  double duration_seconds = 0;
  // Tokens of an unmeasured first turn per stream (0: none).
  int warmup_tokens = 8;
  // Non-empty: run one phase per entry (e.g. {1, 32}) and print the ratio of
  // the last to the first aggregate tokens/s. Overrides `streams`.
  std::vector<int> compare;
  // Sampling: temperature 0 (greedy) by default; stream i uses seed + i.
  double temperature = 0;
  uint64_t seed = 1;
  // > 0: rwkv-bench's engine-only tokens/s at the same batch, to print the
  // share the server reaches.
  double bench_tokens_per_second = 0;
  // Print one JSON object instead of text.
  bool json = false;
};

}  // namespace rwkv::client

#endif  // RWKV_CLIENT_LOAD_OPTIONS_H_
