#include "client/load_flags.h"

#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "client/connect_flags.h"
#include "common/cli_validators.h"

namespace rwkv::client {
namespace {

using common::IntIn;

constexpr int kMaxStreams = 4096;
constexpr int kMaxTokens = 1 << 24;

// "1,32" (spaces allowed) -> {1, 32}: at least two counts in [1,
// kMaxStreams]. Returns the problem, or "" with `out` filled.
std::string ParseCompare(const std::string& text, std::vector<int>* out) {
  out->clear();
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    part = absl::StripAsciiWhitespace(part);
    int n = 0;
    if (!absl::SimpleAtoi(part, &n) || n < 1 || n > kMaxStreams) {
      return absl::StrCat("must be stream counts like 1,32 (each in [1, ",
                          kMaxStreams, "]); bad entry '",
                          std::string(part.substr(0, 32)), "'");
    }
    out->push_back(n);
  }
  if (out->size() < 2) {
    return "must list at least two stream counts, e.g. 1,32";
  }
  return "";
}

}  // namespace

void AddLoadFlags(CLI::App& app, LoadOptions* o) {
  app.description(
      "Runs concurrent streaming Generate clients against an rwkv-server "
      "(gRPC, or its OpenAI-compatible HTTP API) and prints aggregate "
      "tokens/s, time to first token and inter-token latency p50/p99, and "
      "the server's average decode batch size.");
  app.get_formatter()->column_width(34);
  AddConnectFlags(app, &o->connect);
  app.add_option("--server", o->server, "server address")
      ->check(common::NonEmpty())
      ->capture_default_str()
      ->type_name("ADDR");
  app.add_option("--http-server", o->http_server,
                 "the HTTP front's address (--protocol http or both, "
                 "--resend-turns)")
      ->check(common::NonEmpty())
      ->capture_default_str()
      ->type_name("ADDR");
  app.add_option("--protocol", o->protocol,
                 "grpc, http (OpenAI API, streamed), or both: each phase "
                 "over gRPC then HTTP, with the HTTP/gRPC ratio")
      ->check(common::OneOf({"grpc", "http", "both"}))
      ->capture_default_str()
      ->type_name("grpc|http|both");
  app.add_option("--resend-turns", o->resend_turns,
                 "one conversation of N turns resent in full each turn "
                 "over HTTP vs the same history computed cold; 0: off")
      ->transform(IntIn(0, 1000))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--streams", o->streams,
                 "concurrent streams, one session each")
      ->transform(IntIn(1, kMaxStreams))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--tokens-per-stream", o->tokens_per_stream,
                 "tokens per turn, EOS ignored")
      ->transform(IntIn(1, kMaxTokens))
      ->capture_default_str()
      ->type_name("T");
  app.add_option("--prompt-tokens", o->prompt_tokens,
                 "prompt length in tokens, approx.")
      ->transform(IntIn(1, kMaxTokens))
      ->capture_default_str()
      ->type_name("P");
  app.add_option("--long-prompt-tokens", o->long_prompt_tokens,
                 "one extra client sends a K-token prompt while the streams "
                 "decode; 0: off")
      ->transform(IntIn(0, kMaxTokens))
      ->capture_default_str()
      ->type_name("K");
  app.add_option("--duration", o->duration_seconds,
                 "repeat turns for this long; 0: one turn")
      ->check(common::NumberIn(0, 86400))
      ->capture_default_str()
      ->type_name("SECONDS");
  app.add_option("--warmup", o->warmup_tokens,
                 "unmeasured first turn of T tokens; 0: none")
      ->transform(IntIn(0, kMaxTokens))
      ->capture_default_str()
      ->type_name("T");
  app.add_option_function<std::string>(
         "--compare",
         [o](const std::string& text) { ParseCompare(text, &o->compare); },
         "one phase per stream count; prints the last/first aggregate "
         "tokens/s ratio")
      ->check(
          [](const std::string& text) {
            std::vector<int> counts;
            return ParseCompare(text, &counts);
          },
          "")
      ->type_name("A,B[,..]");
  app.add_option("--temperature", o->temperature, "0: greedy")
      ->check(common::NumberAtLeast(0))
      ->capture_default_str()
      ->type_name("X");
  app.add_option("--seed", o->seed, "stream i samples with seed S+i")
      ->transform(IntIn(0, std::numeric_limits<int64_t>::max()))
      ->capture_default_str()
      ->type_name("S");
  app.add_option("--bench-tps", o->bench_tokens_per_second,
                 "rwkv-bench's engine-only tokens/s, to print the share "
                 "reached through gRPC")
      ->check(common::NumberAtLeast(0))
      ->capture_default_str()
      ->type_name("X");
  app.add_flag("--json", o->json, "one JSON object instead of text");
}

}  // namespace rwkv::client
