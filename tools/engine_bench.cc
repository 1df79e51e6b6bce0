#include "tools/engine_bench.h"

#include <ATen/ATen.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/internal/cpu_linear.h"

namespace rwkv::tools {
namespace {

using Clock = std::chrono::steady_clock;
using engine::RwkvEngine;
using json = nlohmann::json;

double Seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

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

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2]
                      : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
}

std::vector<int32_t> RandomTokens(int n, int vocab, uint32_t seed) {
  std::mt19937 rng(seed);
  std::vector<int32_t> t(n);
  for (int32_t& x : t) x = static_cast<int32_t>(rng() % vocab);
  return t;
}

int64_t PeakRssBytes() {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return static_cast<int64_t>(ru.ru_maxrss) * 1024;
}

int64_t CurrentRssBytes() {
  std::ifstream in("/proc/self/statm");
  int64_t pages = 0, resident = 0;
  if (!(in >> pages >> resident)) return 0;
  return resident * sysconf(_SC_PAGESIZE);
}

// The machine's limits: memory read bandwidth (1 GiB buffer, the engine's
// threads) and the fp32 GEMM peak (2048^3) of every path this build has.
struct Limits {
  double bandwidth_gbs = 0;
  double openblas = 0, libtorch_onednn = 0, onednn_sgemm = 0, onednn_matmul = 0;
  double peak() const {
    return std::max({openblas, libtorch_onednn, onednn_sgemm, onednn_matmul});
  }
  json ToJson() const {
    return {{"memory_read_bandwidth_gbs", bandwidth_gbs},
            {"gemm_peak_gflops",
             {{"openblas", openblas},
              {"libtorch_onednn", libtorch_onednn},
              {"onednn_sgemm", onednn_sgemm},
              {"onednn_matmul_prepacked", onednn_matmul},
              {"best", peak()}}}};
  }
};

Limits MeasureLimits() {
  Limits l;
  l.bandwidth_gbs = engine::internal::MeasureReadBandwidthGBs(1ull << 30, 5);
  at::NoGradGuard no_grad;
  const int n = 2048;
  at::Tensor a = at::randn({n, n}), b = at::randn({n, n});
  const double flops = 2.0 * n * n * n;
  at::mm(a, b);
  l.openblas = flops / BestTime(3, [&] { at::mm(a, b); }) / 1e9;
  at::Tensor am = a.to_mkldnn();
  at::mkldnn_linear(am, b, {});
  l.libtorch_onednn =
      flops / BestTime(3, [&] { at::mkldnn_linear(am, b, {}); }) / 1e9;
  const engine::internal::GemmPeak p = engine::internal::MeasureGemmPeak(n, 3);
  l.onednn_sgemm = p.sgemm_gflops;
  l.onednn_matmul = p.matmul_gflops;
  return l;
}

void Say(std::ostream& out, const std::string& line) {
  out << line << std::endl;
}

// Work per token: every matrix is read once; the embedding only one row.
struct Work {
  double matrix_params = 0, head_params = 0;
  double flops_per_token = 0;
  double bytes_per_token = 0;  // weights read per decoded token
};

Work WorkOf(RwkvEngine& e) {
  const engine::ModelConfig& c = e.config();
  const double C = c.n_embd, F = c.ffn_dim, V = c.vocab_size, L = c.n_layer;
  Work w;
  // RWKV-4: R, K, V, O and the FFN's R (5 C x C) plus its key and value.
  // RWKV-7: all parameters but embedding, head and the per-channel vectors
  // (19 C per layer, 4 C outside): R, K, V, O, the FFN and the LoRA factors.
  w.matrix_params =
      c.arch == engine::Architecture::kRwkv7
          ? static_cast<double>(c.n_params) - 2 * V * C - L * 19 * C - 4 * C
          : L * (5 * C * C + 2 * F * C);
  w.head_params = V * C;
  w.flops_per_token = 2.0 * (w.matrix_params + w.head_params);
  // Everything held but the embedding, of which one fp32 row is read.
  w.bytes_per_token = static_cast<double>(e.weight_bytes()) - V * C * 4 + C * 4;
  return w;
}

// One engine under measurement: a weight dtype of random weights or of the
// file.
struct Entry {
  std::string source;  // "random" or "file"
  std::string dtype;
  std::unique_ptr<RwkvEngine> engine;
  Work work;
  engine::State decode_state;
  std::vector<int32_t> decode_tokens;
  size_t next_token = 0;
  std::vector<double> decode_ms;
  json r;

  std::string Label() const { return absl::StrCat(source, " ", dtype); }
};

// Single-stream decode of every entry in interleaved rounds (each entry
// decodes `per_round` tokens in turn), so that load changes on a shared
// machine hit all of them alike and their ratios stay meaningful.
void MeasureDecode(std::vector<Entry>& entries, int tokens) {
  const int kRounds = 4;
  const int per_round = std::max(1, (tokens + kRounds - 1) / kRounds);
  for (Entry& en : entries) {
    const int V = en.engine->config().vocab_size;
    en.decode_state = en.engine->NewState();
    (void)en.engine->Forward(RandomTokens(8, V, 1), en.decode_state);
    en.decode_tokens = RandomTokens(per_round * kRounds, V, 2);
  }
  for (int round = 0; round < kRounds; ++round) {
    for (Entry& en : entries) {
      for (int i = 0; i < per_round; ++i) {
        const int32_t t = en.decode_tokens[en.next_token++];
        auto t0 = Clock::now();
        (void)en.engine->Forward({t}, en.decode_state);
        en.decode_ms.push_back(Seconds(t0, Clock::now()) * 1e3);
      }
    }
  }
}

json Batched(RwkvEngine& e, const Work& w, int B) {
  const int V = e.config().vocab_size;
  std::vector<engine::State> states;
  std::vector<engine::State*> ptrs;
  for (int b = 0; b < B; ++b) states.push_back(e.NewState());
  for (engine::State& st : states) ptrs.push_back(&st);
  std::vector<int32_t> toks = RandomTokens(B, V, 3 + B);
  (void)e.ForwardBatch(toks, ptrs);
  const int steps = std::max(3, 64 / B);
  const double t = BestTime(3,
                            [&] {
                              for (int i = 0; i < steps; ++i)
                                (void)e.ForwardBatch(toks, ptrs);
                            }) /
                   steps;
  const double tps = B / t;
  return {{"batch", B},
          {"tokens_per_s", tps},
          {"step_ms", t * 1e3},
          {"gflops", tps * w.flops_per_token / 1e9}};
}

// A scheduler step with `rows` decode rows and a `chunk`-token prompt chunk:
// one ForwardSegments call (one pass over the weights) against the two calls
// it replaces (ForwardBatch, then a sequence-mode Forward).
json Mixed(RwkvEngine& e, int rows, int chunk) {
  const int V = e.config().vocab_size;
  std::vector<engine::State> states;
  for (int b = 0; b <= rows; ++b) states.push_back(e.NewState());
  std::vector<engine::State*> all, decode;
  for (engine::State& st : states) all.push_back(&st);
  decode.assign(all.begin(), all.begin() + rows);
  std::vector<int32_t> toks = RandomTokens(rows + chunk, V, 5);
  std::vector<int32_t> lengths(rows, 1);
  lengths.push_back(chunk);
  const absl::Span<const int32_t> decode_toks(toks.data(), rows);
  const absl::Span<const int32_t> chunk_toks(toks.data() + rows, chunk);
  auto one = [&] { (void)e.ForwardSegments(toks, lengths, all); };
  auto two = [&] {
    (void)e.ForwardBatch(decode_toks, decode);
    (void)e.Forward(chunk_toks, *all.back());
  };
  auto batch = [&] { (void)e.ForwardBatch(decode_toks, decode); };
  one();
  two();
  const int steps = 4;
  auto per_step = [&](const std::function<void()>& f) {
    return BestTime(3,
                    [&] {
                      for (int i = 0; i < steps; ++i) f();
                    }) /
           steps * 1e3;
  };
  return {{"rows", rows},
          {"chunk", chunk},
          {"one_call_ms", per_step(one)},
          {"two_calls_ms", per_step(two)},
          {"decode_only_ms", per_step(batch)}};
}

json Prefill(RwkvEngine& e, const Work& w, int n, bool serial) {
  const int V = e.config().vocab_size;
  std::vector<int32_t> prompt = RandomTokens(n, V, 4);
  const double seq_s = BestTime(2, [&] {
    engine::State st = e.NewState();
    (void)e.Forward(prompt, st);
  });
  const double flops = 2.0 * (w.matrix_params * n + w.head_params);
  json p = {{"tokens", n},
            {"sequence_tokens_per_s", n / seq_s},
            {"sequence_gflops", flops / seq_s / 1e9}};
  if (serial) {
    engine::State st = e.NewState();
    auto p0 = Clock::now();
    for (int32_t t : prompt) (void)e.Forward({t}, st);
    const double serial_tps = n / Seconds(p0, Clock::now());
    p["serial_tokens_per_s"] = serial_tps;
    p["speedup"] = (n / seq_s) / serial_tps;
  }
  return p;
}

// Figures of one (source, dtype) from the JSON, 0 when absent.
double Get(const json& results, const std::string& source,
           const std::string& dtype, const std::string& what) {
  for (const json& m : results) {
    if (m["source"] != source || m["dtype"] != dtype) continue;
    if (what == "decode_ms") return m["decode"]["median_ms_per_token"];
    if (what == "decode_ratio") return m["decode"]["ratio_to_limit"];
    if (what == "prefill_fraction" && m.contains("prefill")) {
      return m["prefill"]["sequence_fraction_of_peak"];
    }
    if (what == "prefill_speedup" && m.contains("prefill") &&
        m["prefill"].contains("speedup")) {
      return m["prefill"]["speedup"];
    }
    for (const json& b : m["batched"]) {
      if (what == absl::StrCat("b", b["batch"].get<int>(), "_tps")) {
        return b["tokens_per_s"];
      }
      if (what == absl::StrCat("b", b["batch"].get<int>(), "_fraction")) {
        return b["fraction_of_peak"];
      }
    }
  }
  return 0;
}

}  // namespace

absl::StatusOr<json> RunEngineBench(const EngineBenchOptions& o,
                                    std::ostream& out) {
  json report;
  engine::RandomModelSpec spec = o.spec;
  std::string model_name = absl::StrCat("random ", o.shape_name);
  // With a file: its dims for the random model too.
  if (!o.model.empty()) {
    engine::EngineOptions eo;
    eo.model_path = o.model;
    eo.num_threads = o.threads;
    eo.dtype = "fp32";
    absl::StatusOr<std::unique_ptr<RwkvEngine>> probe = RwkvEngine::Create(eo);
    if (!probe.ok()) return probe.status();
    const engine::ModelConfig& c = (*probe)->config();
    spec.arch = c.arch;
    spec.n_layer = c.n_layer;
    spec.n_embd = c.n_embd;
    spec.vocab_size = c.vocab_size;
    spec.ffn_dim = c.ffn_dim;
    if (c.head_size > 0) spec.head_size = c.head_size;
    model_name = absl::StrCat("random weights of ", o.model, "'s shape");
  }
  Say(out, absl::StrFormat(
               "model shape: %s, %d layers, %d wide, ffn %d, vocab %d",
               std::string(engine::ArchitectureName(spec.arch)), spec.n_layer,
               spec.n_embd, spec.ffn_dim > 0 ? spec.ffn_dim : 4 * spec.n_embd,
               spec.vocab_size));
  {
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    report["host"] = {{"name", host},
                      {"cpus_online", sysconf(_SC_NPROCESSORS_ONLN)},
                      {"avx512", engine::internal::CpuHasAvx512()},
                      {"load_average_1m_at_start", load[0]}};
    Say(out, absl::StrFormat("host: %s, %ld CPUs, AVX-512 %s, load average "
                             "%.2f at start",
                             host, sysconf(_SC_NPROCESSORS_ONLN),
                             engine::internal::CpuHasAvx512() ? "yes" : "no",
                             load[0]));
  }

  // Limits before and after the measurements; the targets use the higher
  // of each (the stricter reference).
  engine::EngineOptions first;
  first.num_threads = o.threads;
  {
    // Creating an engine sets the thread count the limits are measured with.
    engine::RandomModelSpec tiny;
    (void)RwkvEngine::CreateRandom(tiny, first);
  }
  const Limits before = MeasureLimits();
  Say(out,
      absl::StrFormat(
          "limits: read bandwidth %.1f GB/s; fp32 GEMM peak %.1f GFLOP/s "
          "(OpenBLAS %.1f, LibTorch oneDNN %.1f, oneDNN sgemm %.1f, "
          "oneDNN matmul prepacked %.1f)",
          before.bandwidth_gbs, before.peak(), before.openblas,
          before.libtorch_onednn, before.onednn_sgemm, before.onednn_matmul));

  std::vector<std::pair<std::string, std::string>> sources = {
      {"random", model_name}};
  if (!o.model.empty()) sources.push_back({"file", o.model});
  // Every engine is loaded first and kept, so that decode can be measured in
  // interleaved rounds.
  std::vector<Entry> entries;
  for (const auto& [source, name] : sources) {
    for (const std::string& dtype : o.dtypes) {
      engine::EngineOptions eo;
      eo.num_threads = o.threads;
      eo.dtype = dtype;
      absl::StatusOr<std::unique_ptr<RwkvEngine>> e;
      if (source == "file") {
        eo.model_path = o.model;
        e = RwkvEngine::Create(eo);
      } else {
        spec.seed = 1;
        e = RwkvEngine::CreateRandom(spec, eo);
      }
      if (!e.ok()) return e.status();
      Entry en;
      en.source = source;
      en.dtype = dtype;
      en.engine = *std::move(e);
      en.work = WorkOf(*en.engine);
      en.r["source"] = source;
      en.r["dtype"] = en.engine->dtype();
      en.r["matmul_backend"] = en.engine->matmul_backend();
      en.r["threads"] = en.engine->num_threads();
      en.r["weight_bytes"] = en.engine->weight_bytes();
      en.r["weight_bytes_read_per_token"] = en.work.bytes_per_token;
      en.r["flops_per_token"] = en.work.flops_per_token;
      Say(out,
          absl::StrFormat(
              "loaded %-12s %s, %d threads, weights %.1f MB (%.1f MB "
              "read per token)",
              en.Label(), en.engine->matmul_backend(), en.engine->num_threads(),
              en.engine->weight_bytes() / 1e6, en.work.bytes_per_token / 1e6));
      entries.push_back(std::move(en));
    }
  }
  report["rss_bytes_all_engines_loaded"] = CurrentRssBytes();

  Say(out, absl::StrFormat("single-stream decode (%d tokens each, 4 "
                           "interleaved rounds):",
                           o.decode_tokens));
  MeasureDecode(entries, o.decode_tokens);
  for (Entry& en : entries) {
    const std::vector<double>& ms = en.decode_ms;
    double mean = 0;
    for (double x : ms) mean += x;
    mean /= std::max<size_t>(ms.size(), 1);
    const double med = Median(ms);
    const double limit =
        en.work.bytes_per_token / (before.bandwidth_gbs * 1e9) * 1e3;
    en.r["decode"] = {
        {"tokens", ms.size()},
        {"median_ms_per_token", med},
        {"mean_ms_per_token", mean},
        {"min_ms_per_token", *std::min_element(ms.begin(), ms.end())},
        {"limit_ms", limit},
        {"ratio_to_limit", med / limit},
        {"ms_above_limit", med - limit}};
    Say(out, absl::StrFormat("  %-12s %6.2f ms/token median (mean %.2f); "
                             "limit %.2f ms (bytes / bandwidth); ratio %.3f",
                             en.Label(), med, mean, limit, med / limit));
  }
  for (Entry& en : entries) en.r["batched"] = json::array();
  for (int B : o.batches) {
    Say(out, absl::StrFormat("batched decode B=%d:", B));
    for (Entry& en : entries) {
      json b = Batched(*en.engine, en.work, B);
      b["fraction_of_peak"] = b["gflops"].get<double>() / before.peak();
      Say(out,
          absl::StrFormat("  %-12s %8.1f tokens/s (%.2f ms/step), %.1f "
                          "GFLOP/s = %.1f%% of peak",
                          en.Label(), b["tokens_per_s"].get<double>(),
                          b["step_ms"].get<double>(), b["gflops"].get<double>(),
                          100 * b["fraction_of_peak"].get<double>()));
      en.r["batched"].push_back(std::move(b));
    }
  }
  Say(out, "scheduler step of 8 decode rows and a 32-token prompt chunk:");
  for (Entry& en : entries) {
    json m = Mixed(*en.engine, 8, 32);
    Say(out, absl::StrFormat(
                 "  %-12s %.2f ms as one ForwardSegments call, %.2f ms as "
                 "ForwardBatch + Forward (decode rows alone %.2f ms)",
                 en.Label(), m["one_call_ms"].get<double>(),
                 m["two_calls_ms"].get<double>(),
                 m["decode_only_ms"].get<double>()));
    en.r["mixed_step"] = std::move(m);
  }
  if (o.prompt_tokens > 0) {
    Say(out, absl::StrFormat("prefill of %d tokens:", o.prompt_tokens));
    for (Entry& en : entries) {
      json p = Prefill(*en.engine, en.work, o.prompt_tokens, o.serial_prefill);
      std::string line = absl::StrFormat(
          "  %-12s %8.1f tokens/s sequence mode, %.1f GFLOP/s = %.1f%% of "
          "peak",
          en.Label(), p["sequence_tokens_per_s"].get<double>(),
          p["sequence_gflops"].get<double>(),
          100 * p["sequence_gflops"].get<double>() / before.peak());
      if (p.contains("speedup")) {
        absl::StrAppendFormat(&line, "; token by token %.1f tokens/s (%.1fx)",
                              p["serial_tokens_per_s"].get<double>(),
                              p["speedup"].get<double>());
      }
      Say(out, line);
      en.r["prefill"] = std::move(p);
    }
  }
  json results = json::array();
  for (Entry& en : entries) results.push_back(en.r);
  entries.clear();
  const Limits after = MeasureLimits();
  Say(out, absl::StrFormat(
               "limits again: read bandwidth %.1f GB/s; fp32 GEMM peak %.1f "
               "GFLOP/s",
               after.bandwidth_gbs, after.peak()));
  Limits lim = before;
  lim.bandwidth_gbs = std::max(before.bandwidth_gbs, after.bandwidth_gbs);
  lim.openblas = std::max(before.openblas, after.openblas);
  lim.libtorch_onednn = std::max(before.libtorch_onednn, after.libtorch_onednn);
  lim.onednn_sgemm = std::max(before.onednn_sgemm, after.onednn_sgemm);
  lim.onednn_matmul = std::max(before.onednn_matmul, after.onednn_matmul);
  // Ratios against the stricter limits.
  for (json& m : results) {
    const double bytes = m["weight_bytes_read_per_token"];
    const double limit = bytes / (lim.bandwidth_gbs * 1e9) * 1e3;
    m["decode"]["limit_ms"] = limit;
    m["decode"]["ratio_to_limit"] =
        m["decode"]["median_ms_per_token"].get<double>() / limit;
    for (json& b : m["batched"]) {
      b["fraction_of_peak"] = b["gflops"].get<double>() / lim.peak();
    }
    if (m.contains("prefill")) {
      m["prefill"]["sequence_fraction_of_peak"] =
          m["prefill"]["sequence_gflops"].get<double>() / lim.peak();
    }
  }
  report["model"] = {
      {"architecture", std::string(engine::ArchitectureName(spec.arch))},
      {"n_layer", spec.n_layer},
      {"n_embd", spec.n_embd},
      {"ffn_dim", spec.ffn_dim > 0 ? spec.ffn_dim : 4 * spec.n_embd},
      {"vocab_size", spec.vocab_size},
      {"shape", o.shape_name},
      {"file", o.model}};
  report["limits_before"] = before.ToJson();
  report["limits_after"] = after.ToJson();
  report["limits_used"] = lim.ToJson();
  report["results"] = results;
  report["peak_rss_bytes"] = PeakRssBytes();
  {
    double load[3] = {0, 0, 0};
    if (getloadavg(load, 3) < 0) load[0] = -1;
    report["host"]["load_average_1m_at_end"] = load[0];
  }

  // Targets, each a ratio of figures from this run.
  json targets = json::array();
  const bool v7 = spec.arch == engine::Architecture::kRwkv7;
  auto target = [&](const std::string& name, double value, double bound,
                    bool at_most, const std::string& what) {
    if (value <= 0) return;  // not measured in this run
    const bool met = at_most ? value <= bound : value >= bound;
    targets.push_back({{"target", name},
                       {"value", value},
                       {"bound", bound},
                       {"at_most", at_most},
                       {"met", met},
                       {"what", what}});
  };
  for (const auto& [source, name] : sources) {
    const std::string s = source + " ";
    target(s + "fp32 decode / limit",
           Get(results, source, "fp32", "decode_ratio"), 1.1, true,
           "median ms/token over (fp32 weight bytes / bandwidth)");
    target(s + "int8 decode / int8 limit",
           Get(results, source, "int8", "decode_ratio"), 1.2, true,
           "median ms/token over (int8 weight bytes / bandwidth)");
    const double f32 = Get(results, source, "fp32", "decode_ms");
    if (f32 > 0) {
      target(s + "int8 decode / fp32 decode",
             Get(results, source, "int8", "decode_ms") / f32, 0.45, true,
             "median ms/token, same run");
      target(s + "bf16 decode / fp32 decode",
             Get(results, source, "bf16", "decode_ms") / f32, 0.6, true,
             "median ms/token, same run");
    }
    const double b32 = Get(results, source, "fp32", "b32_tps");
    if (b32 > 0) {
      target(s + "int8 B=32 / fp32 B=32",
             Get(results, source, "int8", "b32_tps") / b32, 1.0, false,
             "batched tokens/s, same run");
    }
    target(s + "fp32 B=32 fraction of GEMM peak",
           Get(results, source, "fp32", "b32_fraction"), 0.7, false,
           v7 ? "issue 16: RWKV-7 B=32 >= 70% of peak"
              : "issue 2: B=32 >= 70% of peak");
    const double b1 = Get(results, source, "fp32", "b1_tps");
    if (b1 > 0) {
      target(s + "fp32 B=8 / B=1", Get(results, source, "fp32", "b8_tps") / b1,
             4.0, false, "batched tokens/s");
    }
    target(s + "fp32 prefill fraction of peak",
           Get(results, source, "fp32", "prefill_fraction"), 0.6, false,
           "sequence mode GFLOP/s over peak");
    target(s + "fp32 prefill sequence / token by token",
           Get(results, source, "fp32", "prefill_speedup"), 8.0, false,
           "tokens/s");
  }
  if (!o.model.empty()) {
    for (const std::string& dtype : o.dtypes) {
      const double rnd = Get(results, "random", dtype, "decode_ms");
      if (rnd > 0) {
        target(dtype + " decode file / random weights",
               Get(results, "file", dtype, "decode_ms") / rnd, 1.05, true,
               "a real file is not slower than random weights (5% noise "
               "allowance)");
      }
    }
  }
  report["targets"] = targets;
  Say(out,
      "targets (ratios within this run; limits: the higher of before / "
      "after):");
  int missed = 0;
  for (const json& t : targets) {
    const bool met = t["met"];
    missed += !met;
    Say(out,
        absl::StrFormat(
            "  %-44s %8.3f  %s %-5.2f  %s  (%s)",
            t["target"].get<std::string>(), t["value"].get<double>(),
            t["at_most"].get<bool>() ? "<=" : ">=", t["bound"].get<double>(),
            met ? "MET" : "MISSED", t["what"].get<std::string>()));
  }
  Say(out, absl::StrFormat("%d of %zu targets missed; peak RSS %.0f MiB",
                           missed, targets.size(), PeakRssBytes() / 1048576.0));
  return report;
}

}  // namespace rwkv::tools
