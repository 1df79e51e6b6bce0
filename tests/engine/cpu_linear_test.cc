// Tests of the CPU linear kernels (engine/internal/cpu_linear.h): every
// backend and kernel against a double-precision reference, odd shapes,
// packing layout and determinism, thread-count and batch invariance,
// concurrent use; bf16 and int8 weights against the same reference computed
// on the rounded / dequantized weights, the int8 quantizer's error bound, and
// the panel-range entry point the fused model code uses.
#include "engine/internal/cpu_linear.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace rwkv::engine::internal {
namespace {

std::vector<float> Random(size_t count, uint32_t seed, bool positive = false) {
  std::vector<float> v(count);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& f : v) {
    s = s * 1664525u + 1013904223u;
    const float u = static_cast<float>((s >> 8) & 0xffffff) / 16777216.0f;
    f = positive ? u : 2.0f * u - 1.0f;
  }
  return v;
}

// ref[M, N] in double, and mag[M, N] = sum_k |x w| (the scale of the
// rounding error of any summation order).
void Reference(const std::vector<float>& w, int64_t n, int64_t k,
               const std::vector<float>& x, int64_t m, std::vector<double>* ref,
               std::vector<double>* mag) {
  ref->assign(static_cast<size_t>(m * n), 0.0);
  mag->assign(static_cast<size_t>(m * n), 0.0);
  for (int64_t r = 0; r < m; ++r) {
    for (int64_t j = 0; j < n; ++j) {
      double s = 0, a = 0;
      for (int64_t kk = 0; kk < k; ++kk) {
        const double t = static_cast<double>(x[r * k + kk]) * w[j * k + kk];
        s += t;
        a += std::fabs(t);
      }
      (*ref)[r * n + j] = s;
      (*mag)[r * n + j] = a;
    }
  }
}

struct Config {
  LinearBackend backend;
  LinearKernel kernel;
  std::string name;
};

std::vector<Config> AllConfigs() {
  return {
      {LinearBackend::kAuto, LinearKernel::kAuto, "auto/auto"},
      {LinearBackend::kAuto, LinearKernel::kNative, "auto/native"},
      {LinearBackend::kAuto, LinearKernel::kOneDnn, "auto/onednn"},
      {LinearBackend::kPortable, LinearKernel::kAuto, "portable/auto"},
      {LinearBackend::kPortable, LinearKernel::kNative, "portable/native"},
      {LinearBackend::kPortable, LinearKernel::kOneDnn, "portable/onednn"},
  };
}

constexpr int64_t kGuard = 37;
constexpr float kCanary = -12345.5f;

// Runs LinearForward into a buffer with guard zones on both sides; checks
// the guards and returns y.
std::vector<float> RunGuarded(const PackedLinear& w,
                              const std::vector<float>& x, int64_t m,
                              LinearKernel kernel) {
  const int64_t size = m * w.n();
  std::vector<float> buf(static_cast<size_t>(size + 2 * kGuard), kCanary);
  LinearForward(w, x.data(), m, buf.data() + kGuard, kernel);
  for (int64_t i = 0; i < kGuard; ++i) {
    EXPECT_EQ(buf[i], kCanary) << "write before y";
    EXPECT_EQ(buf[kGuard + size + i], kCanary) << "write after y";
  }
  return std::vector<float>(buf.begin() + kGuard, buf.begin() + kGuard + size);
}

void ExpectClose(const std::vector<float>& y, const std::vector<double>& ref,
                 const std::vector<double>& mag, double tol,
                 const std::string& what) {
  ASSERT_EQ(y.size(), ref.size());
  int bad = 0;
  for (size_t i = 0; i < y.size(); ++i) {
    const double err = std::fabs(static_cast<double>(y[i]) - ref[i]);
    if (!(err <= tol * std::max(mag[i], 1e-30))) {
      if (++bad <= 5) {
        ADD_FAILURE() << what << " i=" << i << " y=" << y[i]
                      << " ref=" << ref[i] << " err=" << err
                      << " mag=" << mag[i];
      }
    }
  }
  EXPECT_EQ(bad, 0) << what;
}

const std::vector<int64_t> kRows = {1, 2, 3, 7, 8, 31, 32, 33, 64, 100};

void CheckShape(int64_t n, int64_t k, const std::vector<int64_t>& rows,
                bool positive) {
  const auto wv = Random(static_cast<size_t>(n * k), 1 + n * 7 + k, positive);
  const PackedLinear auto_w = PackedLinear::Pack(wv.data(), n, k);
  const PackedLinear port_w =
      PackedLinear::Pack(wv.data(), n, k, LinearBackend::kPortable);
  for (int64_t m : rows) {
    const auto x = Random(static_cast<size_t>(m * k), 100 + m, positive);
    std::vector<double> ref, mag;
    Reference(wv, n, k, x, m, &ref, &mag);
    for (const Config& c : AllConfigs()) {
      const PackedLinear& w =
          c.backend == LinearBackend::kAuto ? auto_w : port_w;
      const std::string what = c.name + " N=" + std::to_string(n) +
                               " K=" + std::to_string(k) +
                               " M=" + std::to_string(m);
      const auto y = RunGuarded(w, x, m, c.kernel);
      // Signed data: error relative to sum |x w|. Positive data: that is
      // the plain relative error.
      ExpectClose(y, ref, mag, 1e-4, what);
    }
  }
}

TEST(CpuLinearTest, SmallOddShapesAllRows) {
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{{1, 1},
                                                              {17, 17},
                                                              {1, 769},
                                                              {769, 1},
                                                              {16, 16},
                                                              {64, 64},
                                                              {65, 15},
                                                              {17, 3073},
                                                              {129, 100}}) {
    CheckShape(n, k, kRows, /*positive=*/false);
  }
}

TEST(CpuLinearTest, LargeOddShapes) {
  CheckShape(769, 769, kRows, false);
  CheckShape(3073, 769, {1, 7, 33}, false);
  CheckShape(769, 3073, {1, 8, 100}, false);
}

TEST(CpuLinearTest, ModelShapes) {
  CheckShape(768, 768, {1, 8, 32}, false);
  CheckShape(768, 3072, {1, 8}, false);
}

TEST(CpuLinearTest, RowsAboveNativeThreshold) {
  // kAuto switches kernels above NativeKernelMaxRows.
  const auto wv = Random(10, 1);
  const int64_t limit =
      NativeKernelMaxRows(PackedLinear::Pack(wv.data(), 2, 5));
  CheckShape(131, 77, {limit, limit + 1, 2 * limit + 3}, false);
}

TEST(CpuLinearTest, PositiveDataRelativeError) {
  CheckShape(257, 1031, {1, 5, 33}, /*positive=*/true);
}

TEST(CpuLinearTest, PackingIsDeterministicAndBlockedLayout) {
  const int64_t n = 130, k = 37;
  const auto wv = Random(static_cast<size_t>(n * k), 5);
  const PackedLinear a = PackedLinear::Pack(wv.data(), n, k);
  const PackedLinear b = PackedLinear::Pack(wv.data(), n, k);
  ASSERT_EQ(a.packed_bytes(), b.packed_bytes());
  EXPECT_EQ(0, std::memcmp(a.packed_data(), b.packed_data(), a.packed_bytes()));
  EXPECT_EQ(a.n(), n);
  EXPECT_EQ(a.k(), k);
  EXPECT_EQ(a.blocked(), CpuHasAvx512());
  if (a.blocked()) {
    // oneDNN BA16a64b for dims {K, N}: K padded to 16, N to 64, zeros.
    const int64_t kp = 48, np = 192;
    ASSERT_EQ(a.packed_bytes(), sizeof(float) * kp * np);
    const float* p = a.packed_data();
    for (int64_t j = 0; j < np; ++j) {
      for (int64_t kk = 0; kk < kp; ++kk) {
        const float v = p[(j / 64) * kp * 64 + kk * 64 + j % 64];
        const float want = (j < n && kk < k) ? wv[j * k + kk] : 0.0f;
        ASSERT_EQ(v, want) << "n=" << j << " k=" << kk;
      }
    }
  }
  const PackedLinear c =
      PackedLinear::Pack(wv.data(), n, k, LinearBackend::kPortable);
  EXPECT_FALSE(c.blocked());
  ASSERT_EQ(c.packed_bytes(), sizeof(float) * n * k);
  EXPECT_EQ(0, std::memcmp(c.packed_data(), wv.data(), c.packed_bytes()));
}

class ThreadsGuard {
 public:
  ThreadsGuard() : saved_(omp_get_max_threads()) {}
  ~ThreadsGuard() { omp_set_num_threads(saved_); }

 private:
  int saved_;
};

TEST(CpuLinearTest, OneVsTwoThreads) {
  ThreadsGuard guard;
  for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{
           {769, 769}, {3073, 768}, {768, 3073}}) {
    const auto wv = Random(static_cast<size_t>(n * k), 11);
    for (LinearBackend backend :
         {LinearBackend::kAuto, LinearBackend::kPortable}) {
      const PackedLinear w = PackedLinear::Pack(wv.data(), n, k, backend);
      for (int64_t m : {1, 3, 8, 33, 64}) {
        const auto x = Random(static_cast<size_t>(m * k), 12 + m);
        std::vector<double> ref, mag;
        Reference(wv, n, k, x, m, &ref, &mag);
        for (LinearKernel kernel : {LinearKernel::kAuto, LinearKernel::kNative,
                                    LinearKernel::kOneDnn}) {
          omp_set_num_threads(1);
          const auto y1 = RunGuarded(w, x, m, kernel);
          omp_set_num_threads(2);
          const auto y2 = RunGuarded(w, x, m, kernel);
          const std::string what =
              "N=" + std::to_string(n) + " M=" + std::to_string(m) +
              " kernel " + std::to_string(static_cast<int>(kernel)) +
              " backend " + std::to_string(static_cast<int>(backend));
          // Different thread counts: within 1e-5 (relative to sum |x w|).
          for (size_t i = 0; i < y1.size(); ++i) {
            ASSERT_LE(std::fabs(static_cast<double>(y1[i]) - y2[i]),
                      1e-5 * std::max(mag[i], 1e-30))
                << what << " i=" << i;
          }
          // The native kernels split only N across threads: bitwise equal.
          if (kernel == LinearKernel::kNative) {
            EXPECT_EQ(
                0, std::memcmp(y1.data(), y2.data(), y1.size() * sizeof(float)))
                << what;
          }
        }
      }
    }
  }
}

TEST(CpuLinearTest, NativeKernelIsBatchInvariant) {
  // A row's result does not depend on how many rows are computed with it.
  const int64_t n = 200, k = 300;
  const auto wv = Random(static_cast<size_t>(n * k), 21);
  const PackedLinear w = PackedLinear::Pack(wv.data(), n, k);
  const int64_t m = 33;
  const auto x = Random(static_cast<size_t>(m * k), 22);
  const auto all = RunGuarded(w, x, m, LinearKernel::kNative);
  for (int64_t r = 0; r < m; ++r) {
    const std::vector<float> xr(x.begin() + r * k, x.begin() + (r + 1) * k);
    const auto one = RunGuarded(w, xr, 1, LinearKernel::kNative);
    ASSERT_EQ(0, std::memcmp(one.data(), all.data() + r * n, n * sizeof(float)))
        << "row " << r;
  }
}

// The weights a bf16 / int8 PackedLinear holds, as fp32 [N, K]: the
// reference for its outputs.
std::vector<float> RoundedWeights(const std::vector<float>& w, int64_t n,
                                  int64_t k, WeightFormat format) {
  std::vector<float> out(w.size());
  if (format == WeightFormat::kBFloat16) {
    for (size_t i = 0; i < w.size(); ++i)
      out[i] = Bf16ToFloat(FloatToBf16(w[i]));
  } else if (format == WeightFormat::kInt8) {
    const int64_t groups = Int8Groups(k);
    std::vector<int8_t> q(w.size());
    std::vector<float> s(static_cast<size_t>(n * groups));
    QuantizeInt8(w.data(), n, k, q.data(), s.data());
    for (int64_t j = 0; j < n; ++j) {
      for (int64_t kk = 0; kk < k; ++kk) {
        out[j * k + kk] = static_cast<float>(q[j * k + kk]) *
                          s[j * groups + kk / kInt8GroupSize];
      }
    }
  } else {
    out = w;
  }
  return out;
}

TEST(CpuLinearTest, Bf16AndInt8WeightsMatchTheirRoundedReference) {
  for (WeightFormat format : {WeightFormat::kBFloat16, WeightFormat::kInt8}) {
    for (auto [n, k] : std::vector<std::pair<int64_t, int64_t>>{
             {1, 1}, {17, 33}, {65, 129}, {130, 300}, {769, 257}}) {
      const auto wv = Random(static_cast<size_t>(n * k), 3 + n + k);
      const auto rounded = RoundedWeights(wv, n, k, format);
      for (LinearBackend backend :
           {LinearBackend::kAuto, LinearBackend::kPortable}) {
        const PackedLinear w =
            PackedLinear::Pack(wv.data(), n, k, backend, format);
        EXPECT_EQ(w.format(), format);
        EXPECT_EQ(NativeKernelMaxRows(w), int64_t{1} << 62);
        for (int64_t m : {1, 5, 7, 33, 140}) {
          const auto x = Random(static_cast<size_t>(m * k), 50 + m);
          std::vector<double> ref, mag;
          Reference(rounded, n, k, x, m, &ref, &mag);
          const std::string what =
              std::string(WeightFormatName(format)) +
              (backend == LinearBackend::kAuto ? " auto" : " portable") +
              " N=" + std::to_string(n) + " K=" + std::to_string(k) +
              " M=" + std::to_string(m);
          ExpectClose(RunGuarded(w, x, m, LinearKernel::kAuto), ref, mag, 1e-5,
                      what);
        }
      }
    }
  }
}

TEST(CpuLinearTest, QuantizeInt8ErrorBoundAndPackInt8) {
  const int64_t n = 70, k = 300;  // 3 groups, the last one short
  auto wv = Random(static_cast<size_t>(n * k), 8);
  for (int64_t kk = 0; kk < k; ++kk) wv[5 * k + kk] = 0.0f;  // all-zero row
  wv[7 * k + 3] = 40.0f;                                     // an outlier
  const int64_t groups = Int8Groups(k);
  ASSERT_EQ(groups, 3);
  std::vector<int8_t> q(wv.size());
  std::vector<float> s(static_cast<size_t>(n * groups));
  QuantizeInt8(wv.data(), n, k, q.data(), s.data());
  for (int64_t j = 0; j < n; ++j) {
    for (int64_t g = 0; g < groups; ++g) {
      float amax = 0;
      int qmax = 0;
      for (int64_t kk = g * kInt8GroupSize;
           kk < std::min(k, (g + 1) * kInt8GroupSize); ++kk) {
        amax = std::max(amax, std::fabs(wv[j * k + kk]));
        qmax = std::max(qmax, std::abs(static_cast<int>(q[j * k + kk])));
        const float deq = q[j * k + kk] * s[j * groups + g];
        ASSERT_LE(std::fabs(deq - wv[j * k + kk]),
                  0.5f * s[j * groups + g] * (1 + 1e-5f) + 1e-30f)
            << j << "," << kk;
      }
      EXPECT_FLOAT_EQ(s[j * groups + g], amax / 127.0f);
      EXPECT_EQ(qmax, amax > 0 ? 127 : 0);
    }
  }
  // The outlier only coarsens its own block: other blocks of row 7 keep a
  // fine scale.
  EXPECT_GT(s[7 * groups + 0], 0.3f);
  EXPECT_LT(s[7 * groups + 1], 0.01f);
  // Packing pre-quantized weights == quantizing while packing, bitwise.
  for (LinearBackend backend :
       {LinearBackend::kAuto, LinearBackend::kPortable}) {
    const PackedLinear a =
        PackedLinear::Pack(wv.data(), n, k, backend, WeightFormat::kInt8);
    const PackedLinear b =
        PackedLinear::PackInt8(q.data(), s.data(), n, k, backend);
    EXPECT_EQ(a.packed_bytes(), b.packed_bytes());
    const auto x = Random(static_cast<size_t>(9 * k), 77);
    const auto ya = RunGuarded(a, x, 9, LinearKernel::kAuto);
    const auto yb = RunGuarded(b, x, 9, LinearKernel::kAuto);
    EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), ya.size() * sizeof(float)));
  }
  // Bytes: one byte a weight plus one fp32 scale per 128 (blocked: padded).
  const PackedLinear port = PackedLinear::PackInt8(q.data(), s.data(), n, k,
                                                   LinearBackend::kPortable);
  EXPECT_EQ(port.packed_bytes(), static_cast<size_t>(n * k + 4 * n * groups));
}

TEST(CpuLinearTest, Bf16Rounding) {
  EXPECT_EQ(FloatToBf16(1.0f), 0x3f80);
  EXPECT_EQ(Bf16ToFloat(0x3f80), 1.0f);
  // 1 + 2^-8 is halfway between two bf16 values: ties to even (down).
  EXPECT_EQ(FloatToBf16(1.0f + 1.0f / 256), 0x3f80);
  // 1 + 3 * 2^-8 is halfway too: ties to even (up).
  EXPECT_EQ(FloatToBf16(1.0f + 3.0f / 256), 0x3f82);
  EXPECT_TRUE(std::isnan(Bf16ToFloat(FloatToBf16(std::nanf("")))));
  EXPECT_EQ(FloatToBf16(-2.0f), 0xc000);
  // The largest float is above the largest bf16 + half an ulp: rounds to inf.
  EXPECT_TRUE(std::isinf(Bf16ToFloat(FloatToBf16(3.4028235e38f))));
}

TEST(CpuLinearTest, EveryFormatIsBatchInvariantAndPanelRangesMatch) {
  const int64_t n = 300, k = 260;
  const auto wv = Random(static_cast<size_t>(n * k), 61);
  for (WeightFormat format :
       {WeightFormat::kFloat32, WeightFormat::kBFloat16, WeightFormat::kInt8}) {
    const PackedLinear w =
        PackedLinear::Pack(wv.data(), n, k, LinearBackend::kAuto, format);
    ASSERT_EQ(w.panels(), 5);
    // fp32 above NativeKernelMaxRows goes to oneDNN; stay below it there.
    const int64_t m = format == WeightFormat::kFloat32 ? 100 : 150;
    const auto x = Random(static_cast<size_t>(m * k), 62);
    const auto all = RunGuarded(w, x, m, LinearKernel::kNative);
    for (int64_t r : {int64_t{0}, int64_t{1}, int64_t{6}, m - 1}) {
      const std::vector<float> xr(x.begin() + r * k, x.begin() + (r + 1) * k);
      const auto one = RunGuarded(w, xr, 1, LinearKernel::kNative);
      ASSERT_EQ(0,
                std::memcmp(one.data(), all.data() + r * n, n * sizeof(float)))
          << WeightFormatName(format) << " row " << r;
    }
    // Panels computed piecewise (as a team of threads splits them) give the
    // same bits as one call.
    if (!w.blocked() && format == WeightFormat::kFloat32) continue;
    std::vector<float> y(static_cast<size_t>(m * n), kCanary);
    LinearForwardPanels(w, x.data(), m, y.data(), 0, 2);
    LinearForwardPanels(w, x.data(), m, y.data(), 2, 3);
    LinearForwardPanels(w, x.data(), m, y.data(), 3, 99);  // clamped
    EXPECT_EQ(0, std::memcmp(y.data(), all.data(), y.size() * sizeof(float)))
        << WeightFormatName(format);
  }
}

TEST(CpuLinearTest, ConcurrentCallsOnSharedWeights) {
  ThreadsGuard guard;
  omp_set_num_threads(1);
  const int64_t n = 300, k = 257;
  const auto wv = Random(static_cast<size_t>(n * k), 31);
  const PackedLinear w = PackedLinear::Pack(wv.data(), n, k);
  std::vector<int64_t> rows = {1, 4, 9, 32, 64, 100, 160};  // 160: oneDNN
  std::vector<std::vector<float>> xs, expected;
  for (int64_t m : rows) {
    xs.push_back(Random(static_cast<size_t>(m * k), 40 + m));
    expected.push_back(RunGuarded(w, xs.back(), m, LinearKernel::kAuto));
  }
  std::vector<std::thread> threads;
  std::vector<int> mismatches(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      omp_set_num_threads(1 + t % 2);
      for (int it = 0; it < 20; ++it) {
        for (size_t i = 0; i < rows.size(); ++i) {
          std::vector<float> y(static_cast<size_t>(rows[i] * n));
          LinearForward(w, xs[i].data(), rows[i], y.data());
          for (size_t j = 0; j < y.size(); ++j) {
            if (std::fabs(y[j] - expected[i][j]) >
                1e-5f * (1.0f + std::fabs(expected[i][j]))) {
              ++mismatches[t];
              break;
            }
          }
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

TEST(CpuLinearTest, DegenerateSizes) {
  const auto wv = Random(12, 1);
  const PackedLinear w = PackedLinear::Pack(wv.data(), 3, 4);
  std::vector<float> y(6, kCanary);
  LinearForward(w, nullptr, 0, y.data());  // m == 0: nothing written
  for (float v : y) EXPECT_EQ(v, kCanary);
  const PackedLinear empty_k = PackedLinear::Pack(wv.data(), 3, 0);
  std::vector<float> x(2, 1.0f);
  LinearForward(empty_k, x.data(), 2, y.data());
  for (float v : y) EXPECT_EQ(v, 0.0f);
  PackedLinear none;
  EXPECT_TRUE(none.empty());
  EXPECT_EQ(none.n(), 0);
}

TEST(CpuLinearTest, Measurements) {
  // Smoke test: small sizes, positive finite results.
  const double bw = MeasureReadBandwidthGBs(size_t{8} << 20, 2);
  EXPECT_GT(bw, 0.1);
  EXPECT_TRUE(std::isfinite(bw));
  const double peak = MeasureGemmPeakGflops(128, 2);
  EXPECT_GT(peak, 0.1);
  EXPECT_TRUE(std::isfinite(peak));
}

}  // namespace
}  // namespace rwkv::engine::internal
