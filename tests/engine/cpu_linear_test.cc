// Tests of the fp32 CPU linear kernels (engine/internal/cpu_linear.h): every
// backend and kernel against a double-precision reference, odd shapes,
// packing layout and determinism, thread-count and batch invariance,
// concurrent use.
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
