// rwkv-bench: speed figures of the RWKV engine on a model with a real
// model's shape (random weights built in memory: --arch v4 with --shape
// 169m|430m, --arch v7 with --shape 0.1b|0.4b; or --model FILE), printed
// next to the limits this machine allows, all measured in the same run.
// On CPU (tools/engine_bench.h) every weight dtype of --dtype (default
// fp32,bf16,int8) is measured, on random weights and, with --model FILE, on
// the file next to random weights of its shape, decode in interleaved
// rounds, and every target of issues 2 and 16 is printed as a ratio within
// the run; --json-file FILE writes it all as one JSON object. The figures:
//   - single-stream decode ms/token vs (weight bytes read per token /
//     measured memory read bandwidth);
//   - batched decode tokens/s at B = 1, 8, 32, 64 and its effective FLOP rate
//     vs the machine's fp32 GEMM peak (best of OpenBLAS via torch::mm,
//     LibTorch's oneDNN op and oneDNN's sgemm on a large square GEMM);
//   - prefill of a 512-token prompt in sequence mode vs token by token;
//   - peak RSS, threads and the BLAS/GEMM paths in use.
// --device cuda[:N] runs the engine on a GPU (--dtype fp32|fp16|bf16); the
// limits are then the GPU's (tools/device_limits.h) and B = 256 is compared
// with B = 1 (target >= 50x).
// --json prints the same figures as one JSON object on stdout, --json-file
// FILE writes it to FILE (both may be given).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/cli_parse.h"
#include "common/cli_validators.h"
#include "common/id_list.h"
#include "engine/rwkv_engine.h"
#include "tools/device_limits.h"
#include "tools/engine_bench.h"

namespace rwkv::tools {
namespace {

using Clock = std::chrono::steady_clock;
using engine::RwkvEngine;
using json = nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

// Best-of-N wall time of f().
template <typename F>
double BestTime(int repeats, F&& f) {
  double best = 1e30;
  for (int i = 0; i < repeats; ++i) {
    auto t0 = Clock::now();
    f();
    best = std::min(best, Seconds(t0, Clock::now()));
  }
  return best;
}

struct GemmPeak {
  double openblas = 0, mkldnn = 0, onednn_sgemm = 0, device = 0;
  double best() const {
    return std::max({openblas, mkldnn, onednn_sgemm, device});
  }
};

int64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

std::vector<int32_t> RandomTokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

// rwkv-bench's settings; the member initializers are the defaults --help
// shows.
struct BenchFlags {
  // A checkpoint instead of random weights.
  std::optional<std::string> model;
  std::string arch = "v4";
  // Empty: 169m for v4, 0.1b for v7.
  std::string shape;
  // Override the shape's dimensions.
  std::optional<int> layers;
  std::optional<int> embd;
  std::optional<int> vocab;
  int threads = 0;
  // cpu | cuda[:N]. dtype: CPU, a comma list of fp32, bf16, int8 (empty:
  // all three); CUDA, one of fp32, fp16, bf16 (empty: fp32).
  std::string device = "cpu";
  std::string dtype;
  int prompt_tokens = 512;
  int decode_tokens = 64;
  std::string batches = "1,8,32,64";
  bool skip_serial_prefill = false;
  bool json = false;
  std::optional<std::string> json_file;
};

void AddBenchFlags(CLI::App& app, BenchFlags* f) {
  using common::IntIn;
  app.add_option("--arch", f->arch, "architecture of the random model")
      ->check(common::OneOf({"v4", "rwkv4", "v7", "rwkv7"}))
      ->capture_default_str()
      ->type_name("v4|v7");
  app.add_option("--shape", f->shape,
                 "169m|430m (v4), 0.1b|0.4b (v7); none: 169m / 0.1b")
      ->type_name("SHAPE");
  app.add_option("--model", f->model, "a checkpoint instead")
      ->type_name("FILE");
  app.add_option("--layers", f->layers, "override the shape's layer count")
      ->transform(IntIn(1, 1024))
      ->type_name("N");
  app.add_option("--embd", f->embd, "override the shape's width")
      ->transform(IntIn(1, 1 << 16))
      ->type_name("N");
  app.add_option("--vocab", f->vocab, "override the shape's vocabulary")
      ->transform(IntIn(1, 1 << 24))
      ->type_name("N");
  app.add_option("--threads", f->threads, "0 = all cores")
      ->transform(IntIn(0, 1024))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--device", f->device,
                 "cuda: the GPU's limits, and B = 256 vs B = 1 (target 50x)")
      ->capture_default_str()
      ->type_name("cpu|cuda[:N]");
  app.add_option("--dtype", f->dtype,
                 "CPU: weight dtypes to measure, comma separated (none: "
                 "fp32,bf16,int8); CUDA: one of fp32|fp16|bf16 (none: fp32)")
      ->check(
          [](const std::string& text) {
            std::vector<std::string> names =
                absl::StrSplit(text, ',', absl::SkipEmpty());
            if (names.empty()) return std::string("must name a dtype");
            for (const std::string& d : names) {
              if (d != "fp32" && d != "bf16" && d != "int8" && d != "fp16") {
                return absl::StrCat(
                    "must list dtypes of fp32, bf16, int8 (CPU) or fp16 "
                    "(CUDA), got '",
                    d.substr(0, 64), "'");
              }
            }
            return std::string();
          },
          "")
      ->type_name("DTYPES");
  app.add_option("--prompt-tokens", f->prompt_tokens, "prefill prompt length")
      ->transform(IntIn(1, 1 << 20))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--decode-tokens", f->decode_tokens,
                 "single-stream decode tokens")
      ->transform(IntIn(1, 1 << 20))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--batches", f->batches, "batched decode batch sizes")
      ->check(
          [](const std::string& text) {
            absl::StatusOr<std::vector<int32_t>> list =
                common::ParseIdList(text, "--batches");
            if (!list.ok()) return std::string(list.status().message());
            for (int32_t b : *list) {
              if (b < 1 || b > 4096) {
                return absl::StrCat("must list batch sizes in [1, 4096], got ",
                                    b);
              }
            }
            return std::string();
          },
          "")
      ->capture_default_str()
      ->type_name("B,B,...");
  app.add_flag("--skip-serial-prefill", f->skip_serial_prefill,
               "skip the token-by-token prefill (slow on big shapes)");
  app.add_flag("--json", f->json,
               "one JSON object with every figure on stdout (CPU: the text "
               "report goes to stderr)");
  app.add_option("--json-file", f->json_file,
                 "also write that JSON object to FILE")
      ->type_name("FILE");
}

// Writes `report` to --json-file; false (after saying why) when it cannot.
bool WriteJsonFile(const std::string& path, const json& report) {
  std::ofstream f(path, std::ios::binary);
  f << report.dump(2) << "\n";
  f.close();
  if (!f) {
    std::fprintf(stderr, "rwkv-bench: cannot write --json-file %s\n",
                 path.c_str());
    return false;
  }
  return true;
}

// The CPU run: every dtype, limits and targets (tools/engine_bench.h).
int RunCpu(const BenchFlags& flags, const engine::RandomModelSpec& spec,
           const std::string& shape) {
  EngineBenchOptions o;
  o.spec = spec;
  o.shape_name = shape;
  o.model = flags.model.value_or("");
  o.threads = flags.threads;
  o.prompt_tokens = flags.prompt_tokens;
  o.decode_tokens = flags.decode_tokens;
  o.serial_prefill = !flags.skip_serial_prefill;
  absl::StatusOr<std::vector<int32_t>> batches =
      common::ParseIdList(flags.batches, "--batches");  // checked by the flag
  o.batches.assign(batches->begin(), batches->end());
  if (!flags.dtype.empty()) {
    o.dtypes = absl::StrSplit(flags.dtype, ',', absl::SkipEmpty());
    for (const std::string& d : o.dtypes) {
      if (d == "fp16") {  // the flag's check let only the four names through
        std::fprintf(stderr,
                     "rwkv-bench: --dtype fp16 needs --device cuda (CPU: "
                     "fp32, bf16, int8)\n");
        return 2;
      }
    }
  }
  absl::StatusOr<json> report =
      RunEngineBench(o, flags.json ? std::cerr : std::cout);
  if (!report.ok()) {
    std::fprintf(stderr, "rwkv-bench: %s\n",
                 std::string(report.status().message()).c_str());
    return 1;
  }
  if (flags.json) std::cout << report->dump(2) << std::endl;
  if (flags.json_file && !WriteJsonFile(*flags.json_file, *report)) return 1;
  return 0;
}

int Main(int argc, char** argv) {
  BenchFlags flags;
  CLI::App app(
      "Speed of the RWKV engine on a model with a real model's shape (random "
      "weights) next to this machine's measured limits.",
      "rwkv-bench");
  AddBenchFlags(app, &flags);
  if (std::optional<int> exit = common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  const std::string& arch = flags.arch;
  engine::RandomModelSpec spec;
  std::string shape = flags.shape;
  if (arch == "v4" || arch == "rwkv4") {
    if (shape.empty()) shape = "169m";
    spec.vocab_size = 50277;
    if (shape == "169m") {
      spec.n_layer = 12;
      spec.n_embd = 768;
    } else if (shape == "430m") {
      spec.n_layer = 24;
      spec.n_embd = 1024;
    } else {
      std::fprintf(stderr,
                   "rwkv-bench: unknown --shape '%s' for v4 (169m or 430m)\n",
                   shape.c_str());
      return 2;
    }
  } else {  // v7 (--arch accepts nothing else)
    // RWKV-7 World / G1 shapes: World vocabulary, heads of 64.
    spec.arch = engine::Architecture::kRwkv7;
    spec.head_size = 64;
    if (shape.empty()) shape = "0.1b";
    spec.vocab_size = 65536;
    if (shape == "0.1b") {
      spec.n_layer = 12;
      spec.n_embd = 768;
    } else if (shape == "0.4b") {
      spec.n_layer = 24;
      spec.n_embd = 1024;
    } else {
      std::fprintf(stderr,
                   "rwkv-bench: unknown --shape '%s' for v7 (0.1b or 0.4b)\n",
                   shape.c_str());
      return 2;
    }
  }
  spec.n_layer = flags.layers.value_or(spec.n_layer);
  spec.n_embd = flags.embd.value_or(spec.n_embd);
  spec.vocab_size = flags.vocab.value_or(spec.vocab_size);
  spec.seed = 1;
  if (flags.device == "cpu") return RunCpu(flags, spec, shape);
  // An accelerator: one dtype, against the device's limits.
  engine::EngineOptions opts;
  opts.num_threads = flags.threads;
  opts.device = flags.device;
  opts.dtype = flags.dtype.empty() ? "fp32" : flags.dtype;
  if (opts.dtype.find(',') != std::string::npos) {  // int8: the engine says
    std::fprintf(stderr,
                 "rwkv-bench: --dtype on %s: one dtype (fp32, fp16 or bf16), "
                 "got '%s'\n",
                 opts.device.c_str(), opts.dtype.c_str());
    return 2;
  }
  absl::StatusOr<std::unique_ptr<RwkvEngine>> created =
      flags.model ? (opts.model_path = *flags.model, RwkvEngine::Create(opts))
                  : RwkvEngine::CreateRandom(spec, opts);
  if (!created.ok()) {
    std::fprintf(stderr, "rwkv-bench: %s\n",
                 std::string(created.status().message()).c_str());
    return 1;
  }
  RwkvEngine& e = **created;
  const engine::ModelConfig& c = e.config();
  const bool quiet = flags.json;
  const bool want_json = flags.json || flags.json_file.has_value();
  auto say = [&](const std::string& line) {
    if (!quiet) std::cout << line << std::endl;
  };
  say(absl::StrCat("model: ", flags.model ? *flags.model : "random " + shape,
                   " (", std::string(engine::ArchitectureName(c.arch)), ", ",
                   c.n_layer, " layers, ", c.n_embd, " wide, vocab ",
                   c.vocab_size, ", ", c.n_params, " params)"));
  say(absl::StrCat("threads: ", e.num_threads(),
                   "; matmul path: ", e.matmul_backend(), "; device ",
                   e.device(), ", dtype ", e.dtype()));

  // Limits of the GPU the engine runs on, measured now.
  double bandwidth = 0;
  GemmPeak peak;
  {
    absl::StatusOr<DeviceLimits> lim =
        MeasureDeviceLimits(opts.device, opts.dtype);
    if (!lim.ok()) {
      std::fprintf(stderr, "rwkv-bench: %s\n",
                   std::string(lim.status().message()).c_str());
      return 1;
    }
    bandwidth = lim->copy_bandwidth_gbs;
    peak.device = lim->gemm_gflops;
    say(absl::StrCat(opts.device, " copy bandwidth (read + write): ", bandwidth,
                     " GB/s"));
    say(absl::StrCat(opts.device, " ", opts.dtype, " GEMM peak (", lim->gemm_n,
                     "^3): ", peak.device, " GFLOP/s"));
  }

  // Work per token: every matrix is read once; the embedding only one row.
  const int64_t C = c.n_embd, F = c.ffn_dim, V = c.vocab_size, L = c.n_layer;
  // RWKV-4: R, K, V, O and the FFN's R (5 C x C) plus its key and value.
  // RWKV-7: all parameters but embedding, head and the per-channel vectors
  // (19 C per layer, 4 C outside): R, K, V, O, the FFN and the LoRA factors.
  const double matrix_params =
      c.arch == engine::Architecture::kRwkv7
          ? static_cast<double>(c.n_params - 2 * V * C - L * 19 * C - 4 * C)
          : static_cast<double>(L) * (5 * C * C + 2 * F * C);
  const double head_params = static_cast<double>(V) * C;
  const double flops_per_token = 2.0 * (matrix_params + head_params);
  const double elem = e.dtype() == "fp32" ? 4.0 : 2.0;  // embedding bytes
  const double bytes_per_token = static_cast<double>(e.weight_bytes()) -
                                 static_cast<double>(V * C) * elem + C * elem;

  // Single-stream decode.
  const int decode_tokens = flags.decode_tokens;
  engine::State s = e.NewState();
  if (auto warm = e.Forward(RandomTokens(8, V, 1), s); !warm.ok()) {
    std::fprintf(stderr, "rwkv-bench: %s\n",
                 std::string(warm.status().message()).c_str());
    return 1;
  }
  (void)e.Forward({1}, s);  // first single-token step (GPU: kernel choice)
  std::vector<int32_t> dec = RandomTokens(decode_tokens, V, 2);
  auto t0 = Clock::now();
  for (int32_t t : dec) (void)e.Forward({t}, s);
  const double decode_ms = Seconds(t0, Clock::now()) / decode_tokens * 1e3;
  const double decode_limit_ms = bytes_per_token / (bandwidth * 1e9) * 1e3;
  say(absl::StrCat("single-stream decode: ", decode_ms, " ms/token; limit ",
                   decode_limit_ms, " ms (", bytes_per_token / 1e6,
                   " MB of weights / bandwidth); ratio ",
                   decode_ms / decode_limit_ms, " (target <= 1.3)"));

  // Batched decode.
  json batched = json::array();
  double tps_b1 = 0, tps_b8 = 0, tps_b256 = 0, gflops_b32 = 0;
  absl::StatusOr<std::vector<int32_t>> batch_list =
      common::ParseIdList(flags.batches, "--batches");  // checked by the flag
  for (int B : *batch_list) {
    std::vector<engine::State> states;
    std::vector<engine::State*> ptrs;
    for (int b = 0; b < B; ++b) states.push_back(e.NewState());
    for (engine::State& st : states) ptrs.push_back(&st);
    std::vector<int32_t> toks = RandomTokens(B, V, 3 + B);
    if (auto warm = e.ForwardBatch(toks, ptrs); !warm.ok()) {
      std::fprintf(stderr, "rwkv-bench: B=%d: %s\n", B,
                   std::string(warm.status().message()).c_str());
      return 1;
    }
    const int steps = std::max(3, 64 / B);
    const double t = BestTime(3,
                              [&] {
                                for (int i = 0; i < steps; ++i)
                                  (void)e.ForwardBatch(toks, ptrs);
                              }) /
                     steps;
    const double tps = B / t;
    const double gflops = tps * flops_per_token / 1e9;
    if (B == 1) tps_b1 = tps;
    if (B == 8) tps_b8 = tps;
    if (B == 256) tps_b256 = tps;
    if (B == 32) gflops_b32 = gflops;
    batched.push_back({{"batch", B},
                       {"tokens_per_s", tps},
                       {"step_ms", t * 1e3},
                       {"gflops", gflops},
                       {"fraction_of_peak", gflops / peak.best()}});
    say(absl::StrCat("batched decode B=", B, ": ", tps, " tokens/s (", t * 1e3,
                     " ms/step), ", gflops,
                     " GFLOP/s = ", 100 * gflops / peak.best(), "% of peak"));
  }

  // Prefill.
  const int n_prompt = flags.prompt_tokens;
  std::vector<int32_t> prompt = RandomTokens(n_prompt, V, 4);
  double seq_s = BestTime(2, [&] {
    engine::State st = e.NewState();
    (void)e.Forward(prompt, st);
  });
  const double prefill_flops = 2.0 * (matrix_params * n_prompt + head_params);
  const double seq_tps = n_prompt / seq_s;
  const double seq_gflops = prefill_flops / seq_s / 1e9;
  say(absl::StrCat("prefill ", n_prompt, " tokens, sequence mode: ", seq_tps,
                   " tokens/s, ", seq_gflops,
                   " GFLOP/s = ", 100 * seq_gflops / peak.best(), "% of peak"));
  double serial_tps = 0;
  if (!flags.skip_serial_prefill) {
    engine::State st = e.NewState();
    auto p0 = Clock::now();
    for (int32_t t : prompt) (void)e.Forward({t}, st);
    serial_tps = n_prompt / Seconds(p0, Clock::now());
    say(absl::StrCat(
        "prefill ", n_prompt, " tokens, token by token: ", serial_tps,
        " tokens/s; sequence mode is ", seq_tps / serial_tps, "x faster"));
  }
  const int64_t rss = PeakRssBytes();
  say(absl::StrCat("peak RSS: ", rss / (1 << 20), " MiB"));

  // Targets, as ratios measured in this run.
  const bool t1 = decode_ms / decode_limit_ms <= 1.3;
  const bool t2 = gflops_b32 / peak.best() >= 0.7;
  const bool t3 = tps_b1 > 0 && tps_b8 / tps_b1 >= 4;
  const bool t4 = seq_gflops / peak.best() >= 0.6;
  const bool t5 = serial_tps > 0 && seq_tps / serial_tps >= 8;
  say(absl::StrCat("targets: decode<=1.3x limit ", t1 ? "MET" : "MISSED",
                   "; B=32>=70% peak ", t2 ? "MET" : "MISSED", "; B=8>=4x B=1 ",
                   t3 ? "MET" : "MISSED", " (",
                   tps_b1 > 0 ? tps_b8 / tps_b1 : 0, "x); prefill>=60% peak ",
                   t4 ? "MET" : "MISSED", "; prefill>=8x serial ",
                   t5 ? "MET" : "MISSED"));
  // GPU batching target: B = 256 at >= 50x the B = 1 rate.
  const bool t6 = tps_b1 > 0 && tps_b256 / tps_b1 >= 50;
  if (tps_b256 > 0) {
    say(absl::StrCat("B=256>=50x B=1 ", t6 ? "MET" : "MISSED", " (",
                     tps_b256 / tps_b1, "x)"));
  }
  if (want_json) {
    json out;
    out["model"] = {
        {"architecture", std::string(engine::ArchitectureName(c.arch))},
        {"n_layer", c.n_layer},
        {"n_embd", c.n_embd},
        {"vocab_size", c.vocab_size},
        {"n_params", c.n_params}};
    out["threads"] = e.num_threads();
    out["device"] = e.device();
    out["dtype"] = e.dtype();
    out["matmul_backend"] = e.matmul_backend();
    out["torch_blas"] = "cuBLAS";
    // CPU: streaming read bandwidth; GPU: copy bandwidth (read + write).
    out["memory_bandwidth_gbs"] = bandwidth;
    out["gemm_peak_gflops"] = {{"openblas", peak.openblas},
                               {"libtorch_onednn", peak.mkldnn},
                               {"onednn_sgemm", peak.onednn_sgemm},
                               {"device", peak.device},
                               {"best", peak.best()}};
    out["decode"] = {{"ms_per_token", decode_ms},
                     {"limit_ms", decode_limit_ms},
                     {"ratio_to_limit", decode_ms / decode_limit_ms},
                     {"weight_bytes_per_token", bytes_per_token}};
    out["batched"] = batched;
    out["prefill"] = {{"tokens", n_prompt},
                      {"sequence_tokens_per_s", seq_tps},
                      {"sequence_gflops", seq_gflops},
                      {"sequence_fraction_of_peak", seq_gflops / peak.best()},
                      {"serial_tokens_per_s", serial_tps},
                      {"speedup", serial_tps > 0 ? seq_tps / serial_tps : 0}};
    out["peak_rss_bytes"] = rss;
    out["targets"] = {{"decode_within_1_3x", t1},
                      {"b32_70pct_peak", t2},
                      {"b8_4x_b1", t3},
                      {"prefill_60pct_peak", t4},
                      {"prefill_8x_serial", t5}};
    if (tps_b256 > 0) {
      out["targets"]["b256_50x_b1"] = t6;
      out["b256_over_b1"] = tps_b256 / tps_b1;
    }
    if (flags.json) std::cout << out.dump(2) << std::endl;
    if (flags.json_file && !WriteJsonFile(*flags.json_file, out)) return 1;
  }
  return 0;
}

}  // namespace
}  // namespace rwkv::tools

int main(int argc, char** argv) { return rwkv::tools::Main(argc, argv); }
