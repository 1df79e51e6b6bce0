// Benchmark of the CPU linear kernels (engine/internal/cpu_linear.h).
//
//   cpu_linear_bench [--threads N] [--repeats R] [--m M]... [--quick]
//                    [--no-hot] [--no-model] [--kernels] [--wait-idle]
//                    [--format fp32|bf16|int8]
//
// --format packs every weight in that format (default fp32); GB/s(W) then
// counts the packed bytes (bf16: 2 a weight, int8: 1 plus the scales).
//
// Prints, for the threads of this process (OMP_NUM_THREADS or --threads):
//   * measured read bandwidth (1 GiB buffer) and oneDNN fp32 GEMM peak;
//   * "hot" figures per weight shape and M (same weight repeated: L2/L3);
//   * "model" figures: every linear weight of RWKV-4 169M / 430M (distinct
//     buffers, as one forward pass touches them: mostly from DRAM) for each M,
//     per shape and in total (best of --repeats sweeps);
//   * the targets, each from rounds that measure bandwidth / peak right
//     next to the sweeps they are compared with (median over the rounds):
//       M=1:   time <= 1.3 x (weight bytes / bandwidth)
//       M=8:   rows/s >= 4 x rows/s of M=1
//       M=32:  GFLOP/s >= 0.70 x peak
//       M=512: GFLOP/s >= 0.60 x peak
// Timings on a shared machine are noisy: --wait-idle waits for the other
// processes before each measurement.
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/cli_parse.h"
#include "common/cli_validators.h"
#include "engine/internal/cpu_linear.h"

namespace {

using rwkv::engine::internal::LinearForward;
using rwkv::engine::internal::LinearKernel;
using rwkv::engine::internal::PackedLinear;
using rwkv::engine::internal::WeightFormat;

WeightFormat g_format = WeightFormat::kFloat32;

PackedLinear PackIn(const float* w, int64_t n, int64_t k) {
  return PackedLinear::Pack(
      w, n, k, rwkv::engine::internal::LinearBackend::kAuto, g_format);
}

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct Shape {
  int64_t n, k;
};

std::vector<float> RandomVec(size_t count, uint32_t seed) {
  std::vector<float> v(count);
  uint32_t s = seed * 2654435761u + 1;
  for (auto& f : v) {
    s = s * 1664525u + 1013904223u;
    f = static_cast<float>((s >> 8) & 0xffff) / 65536.0f - 0.5f;
  }
  return v;
}

const char* KernelName(LinearKernel k) {
  switch (k) {
    case LinearKernel::kAuto:
      return "auto";
    case LinearKernel::kNative:
      return "native";
    case LinearKernel::kOneDnn:
      return "onednn";
  }
  return "?";
}

struct Model {
  std::string name;
  int64_t c, f, vocab, layers;
  std::vector<Shape> shapes;          // distinct shapes
  std::vector<int> shape_of;          // per weight: index into shapes
  std::vector<PackedLinear> weights;  // in forward order
  double bytes = 0;                   // logical fp32 bytes (N*K*4)
  double flops_per_row = 0;           // 2*N*K summed
};

Model MakeModel(const std::string& name, int64_t c, int64_t f, int64_t vocab,
                int64_t layers) {
  Model m{name, c, f, vocab, layers, {}, {}, {}, 0, 0};
  m.shapes = {{c, c}, {f, c}, {c, f}, {vocab, c}};
  std::vector<int> order;
  for (int64_t l = 0; l < layers; ++l) {
    // att: key, value, receptance, output; ffn: key, receptance, value
    for (int s : {0, 0, 0, 0, 1, 0, 2}) order.push_back(s);
  }
  order.push_back(3);  // head
  uint32_t seed = 1;
  for (int s : order) {
    const Shape sh = m.shapes[s];
    auto w = RandomVec(static_cast<size_t>(sh.n * sh.k), seed++);
    m.weights.push_back(PackIn(w.data(), sh.n, sh.k));
    m.shape_of.push_back(s);
    m.bytes += static_cast<double>(m.weights.back().packed_bytes());
    m.flops_per_row += 2.0 * sh.n * sh.k;
  }
  return m;
}

struct SweepResult {
  double total = 0;              // seconds, best sweep
  std::vector<double> by_shape;  // seconds in the best sweep
};

SweepResult Sweep(const Model& model, int64_t m, int repeats,
                  LinearKernel kernel) {
  const int64_t maxd = std::max({model.c, model.f, model.vocab});
  std::vector<float> x = RandomVec(static_cast<size_t>(m * maxd), 99);
  std::vector<float> y(static_cast<size_t>(m * maxd));
  SweepResult best;
  best.total = 1e30;
  for (int r = 0; r < repeats + 1; ++r) {  // first sweep: warm-up
    std::vector<double> by(model.shapes.size(), 0.0);
    const double t0 = Now();
    for (size_t i = 0; i < model.weights.size(); ++i) {
      const double s0 = Now();
      LinearForward(model.weights[i], x.data(), m, y.data(), kernel);
      by[model.shape_of[i]] += Now() - s0;
    }
    const double t = Now() - t0;
    if (r > 0 && t < best.total) {
      best.total = t;
      best.by_shape = by;
    }
  }
  return best;
}

// Per-call times of `w` at m rows (same weight each call): best and median.
std::pair<double, double> HotTime(const PackedLinear& w, int64_t m,
                                  LinearKernel kernel, double min_seconds) {
  std::vector<float> x = RandomVec(static_cast<size_t>(m * w.k()), 7);
  std::vector<float> y(static_cast<size_t>(m * w.n()));
  LinearForward(w, x.data(), m, y.data(), kernel);  // warm-up / JIT
  std::vector<double> times;
  const double start = Now();
  while (times.size() < 5 ||
         (Now() - start < min_seconds && times.size() < 100000)) {
    const double t0 = Now();
    LinearForward(w, x.data(), m, y.data(), kernel);
    times.push_back(Now() - t0);
  }
  std::sort(times.begin(), times.end());
  return {times.front(), times[times.size() / 2]};
}

// --wait-idle: before each measurement, wait (up to 60 s) until the rest of
// the machine uses under 10% of the CPUs over 0.5 s (Linux /proc/stat), for
// shared machines where other jobs come and go.
bool g_wait_idle = false;

bool ReadCpuTimes(uint64_t* busy, uint64_t* total) {
  FILE* f = std::fopen("/proc/stat", "r");
  if (f == nullptr) return false;
  unsigned long long v[8] = {};
  const int got =
      std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0],
                  &v[1], &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  std::fclose(f);
  if (got < 5) return false;
  *total = 0;
  for (auto x : v) *total += x;
  *busy = *total - v[3] - v[4];  // minus idle and iowait
  return true;
}

void WaitIdle() {
  if (!g_wait_idle) return;
  const double start = Now();
  while (Now() - start < 60) {
    uint64_t b0, t0, b1, t1;
    if (!ReadCpuTimes(&b0, &t0)) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    if (!ReadCpuTimes(&b1, &t1)) return;
    if (t1 > t0 && (b1 - b0) * 10 < (t1 - t0)) return;
  }
  std::printf("(machine still busy after 60 s)\n");
}

const char* Verdict(bool ok) { return ok ? "PASS" : "FAIL"; }

// The benchmark's settings; the member initializers are the defaults --help
// shows.
struct BenchFlags {
  // 0: OpenMP's default (OMP_NUM_THREADS, else all cores).
  int threads = 0;
  // Sweeps per measurement (the best counts).
  int repeats = 10;
  // Row counts M to measure; empty: 1, 8, 32, 64, 512.
  std::vector<int64_t> m;
  bool quick = false;
  bool no_hot = false;
  bool no_model = false;
  // Also time the native and oneDNN kernels separately.
  bool kernels = false;
  bool wait_idle = false;
  // Weight format of every packed matrix.
  std::string format = "fp32";
};

void AddBenchFlags(CLI::App& app, BenchFlags* f) {
  app.add_option("--threads", f->threads, "0: OMP_NUM_THREADS, else all cores")
      ->transform(rwkv::common::IntIn(0, 1024))
      ->capture_default_str()
      ->type_name("N");
  app.add_option("--repeats", f->repeats, "sweeps per measurement (best)")
      ->transform(rwkv::common::IntIn(1, 10000))
      ->capture_default_str()
      ->type_name("R");
  app.add_option("--m", f->m,
                 "rows M to measure (repeatable); none: 1 8 32 64 512")
      ->transform(rwkv::common::IntIn(1, 1 << 20))
      ->allow_extra_args(false)
      ->type_name("M");
  app.add_flag("--quick", f->quick, "fewer bandwidth/peak measurements");
  app.add_flag("--no-hot", f->no_hot, "skip the hot (cached weight) figures");
  app.add_flag("--no-model", f->no_model, "skip the model sweeps");
  app.add_flag("--kernels", f->kernels,
               "also time the native and oneDNN kernels separately");
  app.add_flag("--wait-idle", f->wait_idle,
               "wait for the other processes before each measurement");
  app.add_option("--format", f->format,
                 "weight format; GB/s(W) counts the packed bytes")
      ->check(rwkv::common::OneOf({"fp32", "bf16", "int8"}))
      ->capture_default_str()
      ->type_name("fp32|bf16|int8");
}

}  // namespace

int main(int argc, char** argv) {
  BenchFlags flags;
  CLI::App app(
      "Benchmark of the CPU linear kernels (fp32, bf16, int8) against this "
      "machine's measured bandwidth and GEMM peak.",
      "cpu_linear_bench");
  AddBenchFlags(app, &flags);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  if (flags.threads > 0) omp_set_num_threads(flags.threads);
  const int repeats = flags.repeats;
  const bool quick = flags.quick, hot = !flags.no_hot,
             model_sweep = !flags.no_model, kernels = flags.kernels;
  g_wait_idle = flags.wait_idle;
  g_format = flags.format == "bf16"   ? WeightFormat::kBFloat16
             : flags.format == "int8" ? WeightFormat::kInt8
                                      : WeightFormat::kFloat32;
  const std::vector<int64_t>& only_m = flags.m;
  const int threads = omp_get_max_threads();
  std::printf("threads=%d avx512=%d format=%s\n", threads,
              rwkv::engine::internal::CpuHasAvx512() ? 1 : 0,
              rwkv::engine::internal::WeightFormatName(g_format));
  // Measured before and after the sweeps (see below).
  WaitIdle();
  const double bw = rwkv::engine::internal::MeasureReadBandwidthGBs(
      size_t{1} << 30, quick ? 3 : 5);
  const auto gp = rwkv::engine::internal::MeasureGemmPeak(2048, quick ? 3 : 5);
  const double peak = std::max(gp.sgemm_gflops, gp.matmul_gflops);
  std::printf(
      "read bandwidth (1 GiB) = %.1f GB/s, oneDNN fp32 peak (2048^3) "
      "= %.1f GFLOP/s (dnnl_sgemm %.1f, matmul prepacked %.1f)\n",
      bw, peak, gp.sgemm_gflops, gp.matmul_gflops);

  std::vector<int64_t> ms = {1, 8, 32, 64, 512};
  if (!only_m.empty()) ms = only_m;
  std::vector<LinearKernel> ks = {LinearKernel::kAuto};
  if (kernels) {
    ks.push_back(LinearKernel::kNative);
    ks.push_back(LinearKernel::kOneDnn);
  }

  if (hot) {
    std::printf(
        "\n== hot: same weight repeated (cache resident where it fits) ==\n");
    std::printf("%-12s %5s %-7s %10s %10s %10s %10s\n", "W[N,K]", "M", "kernel",
                "best us", "median us", "GB/s(W)", "GFLOP/s");
    const std::vector<Shape> shapes = {{768, 768},   {3072, 768},  {768, 3072},
                                       {50277, 768}, {1024, 1024}, {4096, 1024},
                                       {1024, 4096}, {50277, 1024}};
    for (const Shape& s : shapes) {
      if (quick && s.k == 1024) continue;
      auto wv = RandomVec(static_cast<size_t>(s.n * s.k), 3);
      PackedLinear w = PackIn(wv.data(), s.n, s.k);
      for (int64_t m : ms) {
        for (LinearKernel k : ks) {
          WaitIdle();
          const auto [t, med] = HotTime(w, m, k, quick ? 0.1 : 0.25);
          char name[32];
          std::snprintf(name, sizeof name, "%ldx%ld", static_cast<long>(s.n),
                        static_cast<long>(s.k));
          std::printf("%-12s %5ld %-7s %10.1f %10.1f %10.1f %10.1f\n", name,
                      static_cast<long>(m), KernelName(k), t * 1e6, med * 1e6,
                      static_cast<double>(w.packed_bytes()) / t / 1e9,
                      2.0 * m * s.n * s.k / t / 1e9);
        }
      }
    }
  }

  if (!model_sweep) return 0;
  std::vector<Model> models;
  models.push_back(MakeModel("169M", 768, 3072, 50277, 12));
  if (!quick) models.push_back(MakeModel("430M", 1024, 4096, 50277, 24));
  int failures = 0;
  std::vector<
      std::pair<const Model*, std::map<std::pair<int, int64_t>, double>>>
      results;
  for (const Model& model : models) {
    std::printf(
        "\n== model %s: all %zu linear weights, %.0f MB fp32, one sweep per "
        "forward ==\n",
        model.name.c_str(), model.weights.size(), model.bytes / 1e6);
    std::printf("%5s %-7s %10s %10s %10s %12s   per shape GFLOP/s (GB/s)\n",
                "M", "kernel", "ms", "GB/s(W)", "GFLOP/s", "rows/s");
    for (int64_t m : ms) {
      for (size_t ki = 0; ki < ks.size(); ++ki) {
        const int reps = m >= 512 ? std::max(3, repeats / 3) : repeats;
        WaitIdle();
        SweepResult r = Sweep(model, m, reps, ks[ki]);
        std::printf("%5ld %-7s %10.2f %10.1f %10.1f %12.0f  ",
                    static_cast<long>(m), KernelName(ks[ki]), r.total * 1e3,
                    model.bytes / r.total / 1e9,
                    model.flops_per_row * m / r.total / 1e9, m / r.total);
        for (size_t s = 0; s < model.shapes.size(); ++s) {
          double bytes = 0, flops = 0;
          for (size_t i = 0; i < model.weights.size(); ++i) {
            if (model.shape_of[i] == static_cast<int>(s)) {
              bytes += static_cast<double>(model.weights[i].packed_bytes());
              flops += 2.0 * model.weights[i].n() * model.weights[i].k();
            }
          }
          std::printf(
              " %ldx%ld:%.0f(%.0f)", static_cast<long>(model.shapes[s].n),
              static_cast<long>(model.shapes[s].k),
              flops * m / r.by_shape[s] / 1e9, bytes / r.by_shape[s] / 1e9);
        }
        std::printf("\n");
      }
    }
  }

  // Bandwidth and peak again after the sweeps.
  WaitIdle();
  const double bw2 = rwkv::engine::internal::MeasureReadBandwidthGBs(
      size_t{1} << 30, quick ? 3 : 5);
  const auto gp2 = rwkv::engine::internal::MeasureGemmPeak(2048, quick ? 3 : 5);
  std::printf(
      "\nread bandwidth again = %.1f GB/s, peak again = %.1f GFLOP/s "
      "(dnnl_sgemm %.1f, matmul %.1f)\n",
      bw2, std::max(gp2.sgemm_gflops, gp2.matmul_gflops), gp2.sgemm_gflops,
      gp2.matmul_gflops);

  // Targets. The CPU clock (and so the peak) drifts by 20% or more on a
  // shared VM, so each round measures bandwidth / peak right next to the
  // sweeps it is compared with; verdicts use the median over the rounds.
  const int rounds = quick ? 3 : 5;
  for (const Model& model : models) {
    std::vector<double> r1s, r8s, r32s, r512s, bws, peaks;
    for (int round = 0; round < rounds; ++round) {
      WaitIdle();
      const double bw_r =
          rwkv::engine::internal::MeasureReadBandwidthGBs(size_t{1} << 30, 2);
      const double t1 = Sweep(model, 1, 3, LinearKernel::kAuto).total;
      const double t8 = Sweep(model, 8, 3, LinearKernel::kAuto).total;
      WaitIdle();
      const double peak_r =
          rwkv::engine::internal::MeasureGemmPeakGflops(2048, 2);
      const double t32 = Sweep(model, 32, 3, LinearKernel::kAuto).total;
      const double t512 = Sweep(model, 512, 1, LinearKernel::kAuto).total;
      const double peak_r2 =
          rwkv::engine::internal::MeasureGemmPeakGflops(2048, 2);
      const double pk = std::max(peak_r, peak_r2);
      bws.push_back(bw_r);
      peaks.push_back(pk);
      r1s.push_back(t1 / (model.bytes / (bw_r * 1e9)));
      r8s.push_back((8 / t8) / (1 / t1));
      r32s.push_back(model.flops_per_row * 32 / t32 / 1e9 / pk);
      r512s.push_back(model.flops_per_row * 512 / t512 / 1e9 / pk);
    }
    auto median = [](std::vector<double> v) {
      std::sort(v.begin(), v.end());
      return v.size() % 2 ? v[v.size() / 2]
                          : 0.5 * (v[v.size() / 2 - 1] + v[v.size() / 2]);
    };
    auto range = [](const std::vector<double>& v) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "[%.2f..%.2f]",
                    *std::min_element(v.begin(), v.end()),
                    *std::max_element(v.begin(), v.end()));
      return std::string(buf);
    };
    const double r1 = median(r1s), r8 = median(r8s), r32 = median(r32s),
                 r512 = median(r512s);
    std::printf(
        "targets %s (auto kernel, %d threads; median of %d paired rounds "
        "[min..max]; BW %s GB/s, peak %s GFLOP/s):\n",
        model.name.c_str(), threads, rounds, range(bws).c_str(),
        range(peaks).c_str());
    std::printf("  M=1   time / (bytes/BW) = %.2f %s  (<= 1.30) %s\n", r1,
                range(r1s).c_str(), Verdict(r1 <= 1.3));
    std::printf("  M=8   rows/s vs M=1     = %.2f %s  (>= 4.0)  %s\n", r8,
                range(r8s).c_str(), Verdict(r8 >= 4.0));
    std::printf("  M=32  GFLOP/s / peak    = %.2f %s  (>= 0.70) %s\n", r32,
                range(r32s).c_str(), Verdict(r32 >= 0.7));
    std::printf("  M=512 GFLOP/s / peak    = %.2f %s  (>= 0.60) %s\n", r512,
                range(r512s).c_str(), Verdict(r512 >= 0.6));
    failures += (r1 > 1.3) + (r8 < 4.0) + (r32 < 0.7) + (r512 < 0.6);
  }
  std::printf("\n%d target(s) missed\n", failures);
  return 0;
}
