// rwkv-bench: speed figures of the RWKV engine for each weight dtype on a
// model with a real model's shape (random weights built in memory: --arch v4
// with --shape 169m|430m, --arch v7 with --shape 0.1b|0.4b) and, with
// --model FILE, on that checkpoint next to random weights of its shape,
// printed next to the limits this machine allows, all measured in the same
// run (tools/engine_bench.h):
//   - single-stream decode ms/token vs (weight bytes read per token /
//     measured memory read bandwidth);
//   - batched decode tokens/s at B = 1, 8, 32, 64 and its effective FLOP rate
//     vs the machine's fp32 GEMM peak;
//   - prefill of a 512-token prompt in sequence mode vs token by token;
//   - every target of issues 2 and 16 as a ratio of figures of this run.
// --json FILE writes every figure and limit as one JSON object ("-": stdout).
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "tools/cli_args.h"
#include "tools/engine_bench.h"

namespace rwkv::tools {
namespace {

constexpr char kUsage[] =
    "usage: rwkv-bench [--arch v4|v7] [--shape 169m|430m (v4), 0.1b|0.4b "
    "(v7)]\n"
    "                  [--model FILE] [--dtype fp32,bf16,int8 (default: all "
    "three)]\n"
    "                  [--threads N] [--prompt-tokens 512] [--decode-tokens "
    "64]\n"
    "                  [--batches 1,8,32,64] [--skip-serial-prefill] [--json "
    "FILE|-]\n";

int Main(int argc, char** argv) {
  CliArgs args({"model", "arch", "shape", "threads", "layers", "embd", "vocab",
                "prompt-tokens", "decode-tokens", "batches", "dtype", "json"},
               {"help", "skip-serial-prefill"});
  if (absl::Status s = args.Parse(argc, argv, 1); !s.ok() || args.Has("help")) {
    std::fprintf(stderr, "%s%s%s",
                 s.ok() ? "" : std::string(s.message()).c_str(),
                 s.ok() ? "" : "\n", kUsage);
    return s.ok() ? 0 : 2;
  }
  EngineBenchOptions o;
  const std::string arch = args.GetOr("arch", "v4");
  engine::RandomModelSpec& spec = o.spec;
  if (arch == "v4" || arch == "rwkv4") {
    o.shape_name = args.GetOr("shape", "169m");
    spec.vocab_size = 50277;
    if (o.shape_name == "169m") {
      spec.n_layer = 12;
      spec.n_embd = 768;
    } else if (o.shape_name == "430m") {
      spec.n_layer = 24;
      spec.n_embd = 1024;
    } else {
      std::fprintf(stderr,
                   "rwkv-bench: unknown --shape '%s' for v4 (169m or 430m)\n",
                   o.shape_name.c_str());
      return 2;
    }
  } else if (arch == "v7" || arch == "rwkv7") {
    // RWKV-7 World / G1 shapes: World vocabulary, heads of 64.
    spec.arch = engine::Architecture::kRwkv7;
    spec.head_size = 64;
    o.shape_name = args.GetOr("shape", "0.1b");
    spec.vocab_size = 65536;
    if (o.shape_name == "0.1b") {
      spec.n_layer = 12;
      spec.n_embd = 768;
    } else if (o.shape_name == "0.4b") {
      spec.n_layer = 24;
      spec.n_embd = 1024;
    } else {
      std::fprintf(stderr,
                   "rwkv-bench: unknown --shape '%s' for v7 (0.1b or 0.4b)\n",
                   o.shape_name.c_str());
      return 2;
    }
  } else {
    std::fprintf(stderr, "rwkv-bench: unknown --arch '%s' (v4 or v7)\n",
                 arch.c_str());
    return 2;
  }
  absl::StatusOr<int64_t> layers = args.GetInt("layers", spec.n_layer);
  absl::StatusOr<int64_t> embd = args.GetInt("embd", spec.n_embd);
  absl::StatusOr<int64_t> vocab = args.GetInt("vocab", spec.vocab_size);
  absl::StatusOr<int64_t> threads = args.GetInt("threads", 0);
  absl::StatusOr<int64_t> prompt = args.GetInt("prompt-tokens", 512);
  absl::StatusOr<int64_t> decode = args.GetInt("decode-tokens", 64);
  absl::StatusOr<std::vector<int32_t>> batches =
      ParseIdList(args.GetOr("batches", "1,8,32,64"));
  for (const absl::Status& s :
       {layers.status(), embd.status(), vocab.status(), threads.status(),
        prompt.status(), decode.status(), batches.status()}) {
    if (!s.ok()) {
      std::fprintf(stderr, "rwkv-bench: %s\n",
                   std::string(s.message()).c_str());
      return 2;
    }
  }
  if (*decode < 1 || *prompt < 0 || *threads < 0) {
    std::fprintf(stderr,
                 "rwkv-bench: --decode-tokens must be >= 1, --prompt-tokens "
                 "and --threads >= 0\n");
    return 2;
  }
  spec.n_layer = static_cast<int>(*layers);
  spec.n_embd = static_cast<int>(*embd);
  spec.vocab_size = static_cast<int>(*vocab);
  o.model = args.GetOr("model", "");
  o.threads = static_cast<int>(*threads);
  o.prompt_tokens = static_cast<int>(*prompt);
  o.decode_tokens = static_cast<int>(*decode);
  o.batches.assign(batches->begin(), batches->end());
  o.serial_prefill = !args.Has("skip-serial-prefill");
  if (std::optional<std::string> d = args.Get("dtype")) {
    o.dtypes = absl::StrSplit(*d, ',', absl::SkipEmpty());
    for (const std::string& x : o.dtypes) {
      if (x != "fp32" && x != "bf16" && x != "int8") {
        std::fprintf(stderr,
                     "rwkv-bench: unknown --dtype '%s' (fp32, bf16, int8)\n",
                     x.c_str());
        return 2;
      }
    }
  }
  absl::StatusOr<nlohmann::json> report = RunEngineBench(o, std::cout);
  if (!report.ok()) {
    std::fprintf(stderr, "rwkv-bench: %s\n",
                 std::string(report.status().message()).c_str());
    return 1;
  }
  if (std::optional<std::string> path = args.Get("json")) {
    const std::string text = report->dump(2) + "\n";
    if (*path == "-") {
      std::cout << text;
    } else {
      std::ofstream f(*path, std::ios::binary);
      f << text;
      if (!f) {
        std::fprintf(stderr, "rwkv-bench: cannot write %s\n", path->c_str());
        return 1;
      }
      std::cout << "JSON: " << *path << std::endl;
    }
  }
  return 0;
}

}  // namespace
}  // namespace rwkv::tools

int main(int argc, char** argv) { return rwkv::tools::Main(argc, argv); }
