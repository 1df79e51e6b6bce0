// rwkv-load: a load generator for rwkv-server (see load_generator.h for what
// is measured and client/load_flags.h, rwkv-load --help, for the flags),
// over gRPC or the OpenAI-compatible HTTP API, and the resent-conversation
// benchmark (resend_benchmark.h).
//
//   rwkv-load --streams 16 --tokens-per-stream 128 --long-prompt-tokens 2000
//   rwkv-load --compare 1,32 --tokens-per-stream 128 --bench-tps 950 --json
//   rwkv-load --streams 32 --protocol both --http-server 127.0.0.1:8080
//   rwkv-load --resend-turns 10 --http-server 127.0.0.1:8080
#include <cstdio>
#include <iostream>
#include <memory>
#include <optional>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_format.h"
#include "client/chat_client.h"
#include "client/grpc_load_target.h"
#include "client/http_load_target.h"
#include "client/load_flags.h"
#include "client/load_generator.h"
#include "client/load_options.h"
#include "client/resend_benchmark.h"
#include "common/cli_parse.h"
#include "nlohmann/json.hpp"

namespace {

using rwkv::client::LatencyStats;
using rwkv::client::LoadTarget;
using rwkv::client::PhaseResult;
using rwkv::client::ResendTurnResult;

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

// --resend-turns: the table (text) or one JSON object.
int RunResend(const rwkv::client::LoadOptions& options) {
  absl::StatusOr<std::unique_ptr<rwkv::client::HttpLoadTarget>> target =
      rwkv::client::HttpLoadTarget::Create(options.http_server);
  if (!target.ok()) {
    std::cerr << "rwkv-load: " << target.status().message() << "\n";
    return 2;
  }
  rwkv::client::ResendBenchmark bench(target->get(), options.tokens_per_stream);
  absl::StatusOr<std::vector<ResendTurnResult>> turns =
      bench.Run(options.resend_turns);
  if (!turns.ok()) {
    std::cerr << "rwkv-load: " << turns.status().message() << "\n";
    return 1;
  }
  nlohmann::json out = nlohmann::json::array();
  if (!options.json) {
    std::cout << "turn  prompt  warm: cached computed  ttft ms | cold: "
                 "computed  ttft ms | new message (bytes)\n";
  }
  for (const ResendTurnResult& t : *turns) {
    if (options.json) {
      out.push_back({{"turn", t.turn},
                     {"prompt_tokens", t.prompt_tokens},
                     {"warm_cached_tokens", t.warm_cached_tokens},
                     {"warm_computed_tokens", t.warm_computed_tokens},
                     {"warm_ttft_ms", t.warm_ttft_ms},
                     {"cold_computed_tokens", t.cold_computed_tokens},
                     {"cold_ttft_ms", t.cold_ttft_ms},
                     {"new_message_bytes", t.new_message_bytes}});
    } else {
      std::cout << absl::StrFormat(
          "%4d  %6d  %12d %8d %8.1f | %14d %8.1f | %d\n", t.turn,
          t.prompt_tokens, t.warm_cached_tokens, t.warm_computed_tokens,
          t.warm_ttft_ms, t.cold_computed_tokens, t.cold_ttft_ms,
          t.new_message_bytes);
    }
  }
  if (options.json) std::cout << out.dump(2) << "\n";
  return 0;
}

// The comparisons (phases, protocols, engine-only share), as text or JSON.
void PrintResults(const rwkv::client::LoadOptions& options,
                  const std::vector<PhaseResult>& grpc_results,
                  const std::vector<PhaseResult>& http_results) {
  const bool both = !grpc_results.empty() && !http_results.empty();
  const std::vector<PhaseResult>& results =
      grpc_results.empty() ? http_results : grpc_results;
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
                          {"protocol", options.protocol},
                          {"tokens_per_stream", options.tokens_per_stream},
                          {"duration_seconds", options.duration_seconds},
                          {"temperature", options.temperature},
                          {"phases", nlohmann::json::array()}};
    for (const PhaseResult& r : results) out["phases"].push_back(PhaseJson(r));
    if (both) {
      out["http_server"] = options.http_server;
      out["http_phases"] = nlohmann::json::array();
      for (const PhaseResult& r : http_results) {
        out["http_phases"].push_back(PhaseJson(r));
      }
      out["http_over_grpc_tokens_per_second"] =
          http_results.back().tokens_per_second /
          std::max(1e-9, grpc_results.back().tokens_per_second);
      out["http_over_grpc_steady_tokens_per_second"] =
          http_results.back().steady_tokens_per_second /
          std::max(1e-9, grpc_results.back().steady_tokens_per_second);
    }
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
    if (both) {
      std::cout << absl::StrFormat(
          "http / grpc at %d streams: %.3f aggregate tokens/s (%.1f vs "
          "%.1f), %.3f steady state\n",
          http_results.back().streams,
          http_results.back().tokens_per_second /
              std::max(1e-9, grpc_results.back().tokens_per_second),
          http_results.back().tokens_per_second,
          grpc_results.back().tokens_per_second,
          http_results.back().steady_tokens_per_second /
              std::max(1e-9, grpc_results.back().steady_tokens_per_second));
    }
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
}

// Runs the phases over `target`; nullopt (after a message) on failure.
std::optional<std::vector<PhaseResult>> RunPhases(
    LoadTarget* target, const rwkv::client::LoadOptions& options,
    const std::vector<int>& phases) {
  rwkv::client::LoadGenerator generator(target, options);
  std::vector<PhaseResult> results;
  for (int streams : phases) {
    absl::StatusOr<PhaseResult> r = generator.RunPhase(streams);
    if (!r.ok()) {
      std::cerr << "rwkv-load: " << target->Describe() << ": phase with "
                << streams << " streams failed: " << r.status().ToString()
                << "\n";
      return std::nullopt;
    }
    if (!options.json) {
      std::cout << target->Describe() << "\n";
      PrintPhase(*r);
    }
    results.push_back(*std::move(r));
  }
  return results;
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
  if (options.resend_turns > 0) return RunResend(options);

  std::vector<int> phases = options.compare;
  if (phases.empty()) phases.push_back(options.streams);
  // The gRPC phases, then the HTTP ones (protocol both runs the two).
  std::unique_ptr<rwkv::client::ChatClient> client;
  std::unique_ptr<LoadTarget> grpc_target, http_target;
  if (options.protocol != "http") {
    absl::StatusOr<std::unique_ptr<rwkv::client::ChatClient>> connected =
        rwkv::client::ChatClient::Connect(options.server, options.connect);
    if (!connected.ok()) {
      std::cerr << "rwkv-load: " << connected.status().message() << "\n";
      return 2;
    }
    client = *std::move(connected);
    grpc_target = std::make_unique<rwkv::client::GrpcLoadTarget>(
        client.get(), options.server);
  }
  if (options.protocol != "grpc") {
    absl::StatusOr<std::unique_ptr<rwkv::client::HttpLoadTarget>> http =
        rwkv::client::HttpLoadTarget::Create(options.http_server);
    if (!http.ok()) {
      std::cerr << "rwkv-load: " << http.status().message() << "\n";
      return 2;
    }
    http_target = *std::move(http);
  }
  std::vector<PhaseResult> grpc_results, http_results;
  for (auto [target, results] :
       {std::make_pair(grpc_target.get(), &grpc_results),
        std::make_pair(http_target.get(), &http_results)}) {
    if (target == nullptr) continue;
    std::optional<std::vector<PhaseResult>> r =
        RunPhases(target, options, phases);
    if (!r.has_value()) return 1;
    *results = *std::move(r);
  }
  int errors = 0;
  for (const auto* list : {&grpc_results, &http_results}) {
    for (const PhaseResult& r : *list) errors += r.errors;
  }

  PrintResults(options, grpc_results, http_results);
  return errors > 0 ? 1 : 0;
}
