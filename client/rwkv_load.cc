// rwkv-load: a load generator for rwkv-server (see load_generator.h for what
// is measured and client/load_flags.h, rwkv-load --help, for the flags).
//
//   rwkv-load --streams 16 --tokens-per-stream 128 --long-prompt-tokens 2000
//   rwkv-load --compare 1,32 --tokens-per-stream 128 --bench-tps 950 --json
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "client/chat_client.h"
#include "client/load_flags.h"
#include "client/load_generator.h"
#include "client/load_options.h"
#include "common/cli_parse.h"
#include "nlohmann/json.hpp"

namespace {

using rwkv::client::LatencyStats;
using rwkv::client::PhaseResult;

nlohmann::json StatsJson(const LatencyStats& s) {
  return {{"count", s.count()},
          {"p50", s.Median()},
          {"p99", s.Percentile(99)},
          {"mean", s.Mean()},
          {"max", s.Max()}};
}

nlohmann::json PhaseJson(const PhaseResult& r) {
  nlohmann::json j = {
      {"streams", r.streams},
      {"turns", r.turns},
      {"tokens", r.tokens},
      {"seconds", r.seconds},
      {"tokens_per_second", r.tokens_per_second},
      {"tokens_per_second_per_stream",
       r.tokens_per_second / std::max(1, r.streams)},
      {"steady_tokens", r.steady_tokens},
      {"steady_seconds", r.steady_seconds},
      {"steady_tokens_per_second", r.steady_tokens_per_second},
      {"prompt_tokens", r.prompt_tokens},
      {"ttft_ms", StatsJson(r.ttft_ms)},
      {"inter_token_ms", StatsJson(r.inter_token_ms)},
      {"server_decode_steps", r.server_decode_steps},
      {"server_tokens_generated", r.server_tokens},
      {"server_avg_batch", r.server_avg_batch >= 0
                               ? nlohmann::json(r.server_avg_batch)
                               : nlohmann::json(nullptr)},
      {"errors", r.errors},
  };
  if (r.long_prompt_ttft_ms >= 0) {
    j["long_prompt"] = {
        {"prompt_tokens", r.long_prompt_tokens},
        {"ttft_ms", r.long_prompt_ttft_ms},
        {"inter_token_ms_during",
         StatsJson(r.inter_token_during_long_prompt_ms)},
        {"p99_during_over_p50",
         r.inter_token_ms.Median() > 0
             ? r.inter_token_during_long_prompt_ms.Percentile(99) /
                   r.inter_token_ms.Median()
             : 0.0},
    };
  }
  if (!r.first_error.empty()) j["first_error"] = r.first_error;
  return j;
}

void PrintPhase(const PhaseResult& r) {
  std::cout << absl::StrFormat(
      "streams %d: %d tokens in %.3f s = %.1f tokens/s (%.1f per stream), "
      "prompt %d tokens, %d turns\n",
      r.streams, r.tokens, r.seconds, r.tokens_per_second,
      r.tokens_per_second / std::max(1, r.streams), r.prompt_tokens, r.turns);
  if (r.steady_seconds > 0) {
    std::cout << absl::StrFormat(
        "  steady state (all %d decoding): %.1f tokens/s (%d tokens in %.3f "
        "s)\n",
        r.streams, r.steady_tokens_per_second, r.steady_tokens,
        r.steady_seconds);
  }
  std::cout << absl::StrFormat(
      "  time to first token ms: p50 %.2f p99 %.2f\n"
      "  inter-token ms:         p50 %.2f p99 %.2f (n=%d)\n",
      r.ttft_ms.Median(), r.ttft_ms.Percentile(99), r.inter_token_ms.Median(),
      r.inter_token_ms.Percentile(99), r.inter_token_ms.count());
  if (r.server_avg_batch >= 0) {
    std::cout << absl::StrFormat(
        "  server avg batch:       %.2f (%d tokens / %d decode steps)\n",
        r.server_avg_batch, r.server_tokens, r.server_decode_steps);
  } else {
    std::cout << "  server avg batch:       n/a (server reports no counters)\n";
  }
  if (r.long_prompt_ttft_ms >= 0) {
    const LatencyStats& d = r.inter_token_during_long_prompt_ms;
    std::cout << absl::StrFormat(
        "  long prompt %d tokens:  first token after %.1f ms; inter-token "
        "during it p50 %.2f p99 %.2f (n=%d); p99 during / p50 overall = "
        "%.2f\n",
        r.long_prompt_tokens, r.long_prompt_ttft_ms, d.Median(),
        d.Percentile(99), d.count(),
        r.inter_token_ms.Median() > 0
            ? d.Percentile(99) / r.inter_token_ms.Median()
            : 0.0);
  }
  if (r.errors > 0) {
    std::cout << "  errors: " << r.errors << " (first: " << r.first_error
              << ")\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  rwkv::client::LoadOptions options;
  CLI::App app("", "rwkv-load");
  rwkv::client::AddLoadFlags(app, &options);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  absl::StatusOr<std::unique_ptr<rwkv::client::ChatClient>> connected =
      rwkv::client::ChatClient::Connect(options.server, options.connect);
  if (!connected.ok()) {
    std::cerr << "rwkv-load: " << connected.status().message() << "\n";
    return 2;
  }
  std::unique_ptr<rwkv::client::ChatClient> client = *std::move(connected);
  rwkv::client::LoadGenerator generator(client.get(), options);

  std::vector<int> phases = options.compare;
  if (phases.empty()) phases.push_back(options.streams);
  std::vector<PhaseResult> results;
  int errors = 0;
  for (int streams : phases) {
    absl::StatusOr<PhaseResult> r = generator.RunPhase(streams);
    if (!r.ok()) {
      std::cerr << "rwkv-load: phase with " << streams
                << " streams failed: " << r.status().ToString() << "\n";
      return 1;
    }
    errors += r->errors;
    if (!options.json) PrintPhase(*r);
    results.push_back(*std::move(r));
  }

  const PhaseResult& last = results.back();
  const double ratio =
      results.size() > 1 && results.front().tokens_per_second > 0
          ? last.tokens_per_second / results.front().tokens_per_second
          : 0;
  const double steady_ratio =
      results.size() > 1 && results.front().steady_tokens_per_second > 0
          ? last.steady_tokens_per_second /
                results.front().steady_tokens_per_second
          : 0;
  const double bench_share =
      options.bench_tokens_per_second > 0
          ? last.tokens_per_second / options.bench_tokens_per_second
          : 0;
  if (options.json) {
    nlohmann::json out = {{"server", options.server},
                          {"tokens_per_stream", options.tokens_per_stream},
                          {"duration_seconds", options.duration_seconds},
                          {"temperature", options.temperature},
                          {"phases", nlohmann::json::array()}};
    for (const PhaseResult& r : results) out["phases"].push_back(PhaseJson(r));
    if (results.size() > 1) {
      out["compare"] = {{"first_streams", results.front().streams},
                        {"last_streams", last.streams},
                        {"tokens_per_second_ratio", ratio},
                        {"steady_tokens_per_second_ratio", steady_ratio}};
    }
    if (options.bench_tokens_per_second > 0) {
      out["bench_tokens_per_second"] = options.bench_tokens_per_second;
      out["share_of_bench"] = bench_share;
      out["steady_share_of_bench"] =
          last.steady_tokens_per_second / options.bench_tokens_per_second;
    }
    std::cout << out.dump(2) << "\n";
  } else {
    if (results.size() > 1) {
      std::cout << absl::StrFormat(
          "compare: %d streams / %d stream(s) = %.2fx aggregate tokens/s, "
          "%.2fx steady-state tokens/s\n",
          last.streams, results.front().streams, ratio, steady_ratio);
    }
    if (options.bench_tokens_per_second > 0) {
      std::cout << absl::StrFormat(
          "share of engine-only %.1f tokens/s: %.1f%% aggregate, %.1f%% "
          "steady state\n",
          options.bench_tokens_per_second, 100 * bench_share,
          100 * last.steady_tokens_per_second /
              options.bench_tokens_per_second);
    }
  }
  return errors > 0 ? 1 : 0;
}
