#include "client/load_options.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "tools/cli_args.h"

namespace rwkv::client {
namespace {

// An integer flag within [lo, hi].
absl::Status GetIntInRange(const tools::CliArgs& args, const char* name,
                           int64_t lo, int64_t hi, int* out) {
  absl::StatusOr<int64_t> v = args.GetInt(name, *out);
  if (!v.ok()) return v.status();
  if (*v < lo || *v > hi) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", name, " must be in [", lo, ", ", hi, "]"));
  }
  *out = static_cast<int>(*v);
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadOptions> ParseLoadOptions(int argc, char** argv) {
  tools::CliArgs args({"server", "streams", "tokens-per-stream",
                       "prompt-tokens", "long-prompt-tokens", "duration",
                       "warmup", "compare", "temperature", "seed", "bench-tps"},
                      {"json", "help"});
  if (absl::Status s = args.Parse(argc, argv, 1); !s.ok()) return s;
  if (!args.positionals().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("unexpected argument '", args.positionals()[0], "'"));
  }
  LoadOptions o;
  o.server = args.GetOr("server", o.server);
  if (o.server.empty()) {
    return absl::InvalidArgumentError("--server must not be empty");
  }
  o.json = args.Has("json");
  o.help = args.Has("help");
  constexpr int64_t kMaxStreams = 4096;
  constexpr int64_t kMaxTokens = 1 << 24;
  if (absl::Status s =
          GetIntInRange(args, "streams", 1, kMaxStreams, &o.streams);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = GetIntInRange(args, "tokens-per-stream", 1, kMaxTokens,
                                     &o.tokens_per_stream);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          GetIntInRange(args, "prompt-tokens", 1, kMaxTokens, &o.prompt_tokens);
      !s.ok()) {
    return s;
  }
  if (absl::Status s = GetIntInRange(args, "long-prompt-tokens", 0, kMaxTokens,
                                     &o.long_prompt_tokens);
      !s.ok()) {
    return s;
  }
  if (absl::Status s =
          GetIntInRange(args, "warmup", 0, kMaxTokens, &o.warmup_tokens);
      !s.ok()) {
    return s;
  }
  absl::StatusOr<double> duration = args.GetDouble("duration", 0);
  if (!duration.ok()) return duration.status();
  if (*duration < 0 || *duration > 86400) {
    return absl::InvalidArgumentError("--duration must be in [0, 86400]");
  }
  o.duration_seconds = *duration;
  absl::StatusOr<double> temperature = args.GetDouble("temperature", 0);
  if (!temperature.ok()) return temperature.status();
  if (*temperature < 0) {
    return absl::InvalidArgumentError("--temperature must be >= 0");
  }
  o.temperature = *temperature;
  absl::StatusOr<int64_t> seed = args.GetInt("seed", 1);
  if (!seed.ok()) return seed.status();
  if (*seed < 0) return absl::InvalidArgumentError("--seed must be >= 0");
  o.seed = static_cast<uint64_t>(*seed);
  absl::StatusOr<double> bench = args.GetDouble("bench-tps", 0);
  if (!bench.ok()) return bench.status();
  if (*bench < 0) return absl::InvalidArgumentError("--bench-tps must be >= 0");
  o.bench_tokens_per_second = *bench;
  if (std::optional<std::string> compare = args.Get("compare")) {
    for (absl::string_view part : absl::StrSplit(*compare, ',')) {
      part = absl::StripAsciiWhitespace(part);
      int n = 0;
      if (!absl::SimpleAtoi(part, &n) || n < 1 || n > kMaxStreams) {
        return absl::InvalidArgumentError(
            absl::StrCat("--compare takes stream counts like 1,32; bad entry '",
                         std::string(part), "'"));
      }
      o.compare.push_back(n);
    }
    if (o.compare.size() < 2) {
      return absl::InvalidArgumentError(
          "--compare needs at least two stream counts, e.g. 1,32");
    }
  }
  return o;
}

const char* LoadUsage() {
  return "usage: rwkv-load [flags]\n"
         "Runs concurrent streaming Generate clients against an rwkv-server\n"
         "and prints aggregate tokens/s, time to first token and inter-token\n"
         "latency p50/p99, and the server's average decode batch size.\n"
         "flags:\n"
         "  --server ADDR              (default 127.0.0.1:50051)\n"
         "  --streams N                concurrent streams, one session each "
         "(8)\n"
         "  --tokens-per-stream T      tokens per turn, EOS ignored (128)\n"
         "  --prompt-tokens P          prompt length in tokens, approx. (16)\n"
         "  --long-prompt-tokens K     one extra client sends a K-token "
         "prompt\n"
         "                             while the streams decode (0: off)\n"
         "  --duration SECONDS         repeat turns for this long (0: one "
         "turn)\n"
         "  --warmup T                 unmeasured first turn of T tokens (8)\n"
         "  --compare A,B[,..]         one phase per stream count; prints the\n"
         "                             last/first aggregate tokens/s ratio\n"
         "  --temperature X            0: greedy (default)\n"
         "  --seed S                   stream i samples with seed S+i (1)\n"
         "  --bench-tps X              rwkv-bench's engine-only tokens/s, to\n"
         "                             print the share reached through gRPC\n"
         "  --json                     one JSON object instead of text\n";
}

}  // namespace rwkv::client
