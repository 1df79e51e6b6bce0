// Tests of the RWKV-7 state update (engine/internal/wkv7_cpu.h): Wkv7Head
// (the AVX-512 N = 64 kernel where the CPU has it) and the portable loop
// against a double-precision reference over several steps, the two against
// each other, and the properties the server relies on: T steps in one call
// == T calls of one step, and a batch of rows == each row alone (at another
// alignment), bit for bit.
#include "engine/internal/wkv7_cpu.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace rwkv::engine::internal {
namespace {

std::vector<float> Random(size_t count, uint32_t seed, float lo, float hi) {
  std::vector<float> v(count);
  uint32_t s = seed * 2654435761u + 12345u;
  for (auto& f : v) {
    s = s * 1664525u + 1013904223u;
    const float u = static_cast<float>((s >> 8) & 0xffffff) / 16777216.0f;
    f = lo + (hi - lo) * u;
  }
  return v;
}

// Inputs of one head-set over T steps, [T, C] each, C = H * N, as the model
// produces them: w a decay in (0, 1), kk unit-norm-ish, a in (0, 1).
struct Inputs {
  Inputs(int64_t T, int64_t C, uint32_t seed)
      : r(Random(T * C, seed + 1, -1, 1)),
        w(Random(T * C, seed + 2, 0.5f, 0.999f)),
        k(Random(T * C, seed + 3, -1, 1)),
        v(Random(T * C, seed + 4, -1, 1)),
        kk(Random(T * C, seed + 5, -0.2f, 0.2f)),
        a(Random(T * C, seed + 6, 0, 1)) {}
  std::vector<float> r, w, k, v, kk, a;
};

// The update in double: S <- S diag(w) + (S (-kk)) (kk*a)^T + v k^T; y = S r.
void Reference(int64_t T, int64_t H, int64_t N, const Inputs& in,
               std::vector<double>* S, std::vector<double>* y) {
  const int64_t C = H * N;
  y->assign(T * C, 0.0);
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t h = 0; h < H; ++h) {
      const int64_t o = t * C + h * N;
      double* Sh = S->data() + h * N * N;
      for (int64_t i = 0; i < N; ++i) {
        double* row = Sh + i * N;
        double sa = 0;
        for (int64_t j = 0; j < N; ++j) sa -= row[j] * in.kk[o + j];
        double acc = 0;
        for (int64_t j = 0; j < N; ++j) {
          row[j] = row[j] * in.w[o + j] + sa * in.kk[o + j] * in.a[o + j] +
                   static_cast<double>(in.v[o + i]) * in.k[o + j];
          acc += row[j] * in.r[o + j];
        }
        (*y)[o + i] = acc;
      }
    }
  }
}

// One row (B = 1) over T steps from state s0, head by head through
// Wkv7Head (the kernel the CPU has) or Wkv7HeadPortable.
void RunOneRow(int64_t T, int64_t H, int64_t N, const Inputs& in,
               const std::vector<float>& s0, bool portable,
               std::vector<float>* s, std::vector<float>* y) {
  const int64_t C = H * N;
  *s = s0;
  y->assign(T * C, 0.0f);
  for (int64_t h = 0; h < H; ++h) {
    const int64_t o = h * N;
    (portable ? Wkv7HeadPortable : Wkv7Head)(
        T, C, N, in.r.data() + o, in.w.data() + o, in.k.data() + o,
        in.v.data() + o, in.kk.data() + o, in.a.data() + o,
        s->data() + h * N * N, y->data() + o, nullptr);
  }
}

class Wkv7CpuTest : public ::testing::TestWithParam<int64_t> {};

TEST_P(Wkv7CpuTest, MatchesDoubleReferenceOnEveryPath) {
  const int64_t N = GetParam(), H = 3, T = 5, C = H * N;
  const Inputs in(T, C, 7);
  const std::vector<float> s0 = Random(H * N * N, 99, -0.5f, 0.5f);
  std::vector<double> ref_s(s0.begin(), s0.end()), ref_y;
  Reference(T, H, N, in, &ref_s, &ref_y);
  for (bool portable : {false, true}) {
    SCOPED_TRACE(portable ? "portable loop" : "Wkv7Head");
    std::vector<float> s, y;
    RunOneRow(T, H, N, in, s0, portable, &s, &y);
    double max_s = 0, max_y = 0;
    for (size_t i = 0; i < s.size(); ++i) {
      max_s = std::max(max_s, std::abs(s[i] - ref_s[i]));
    }
    for (size_t i = 0; i < y.size(); ++i) {
      max_y = std::max(max_y, std::abs(y[i] - ref_y[i]));
    }
    // States are O(1), outputs sums of 64 such products: float rounding
    // over 5 steps stays far below these bounds; a wrong row, lane or
    // sign does not.
    EXPECT_LT(max_s, 2e-5) << "N=" << N;
    EXPECT_LT(max_y, 2e-4) << "N=" << N;
    EXPECT_GT(max_s + max_y, 0.0);  // float vs double differ somewhere
  }
}

TEST_P(Wkv7CpuTest, KernelAndPortableLoopAgree) {
  const int64_t N = GetParam(), H = 2, T = 3, C = H * N;
  const Inputs in(T, C, 11);
  const std::vector<float> s0 = Random(H * N * N, 5, -1, 1);
  std::vector<float> s_a, y_a, s_b, y_b;
  RunOneRow(T, H, N, in, s0, false, &s_a, &y_a);
  RunOneRow(T, H, N, in, s0, true, &s_b, &y_b);
  for (size_t i = 0; i < s_a.size(); ++i) {
    ASSERT_NEAR(s_a[i], s_b[i], 1e-5) << i;
  }
  for (size_t i = 0; i < y_a.size(); ++i) {
    ASSERT_NEAR(y_a[i], y_b[i], 1e-4) << i;
  }
}

TEST_P(Wkv7CpuTest, StepsAndRowsAreBitIdentical) {
  const int64_t N = GetParam(), H = 2, T = 4, B = 3, C = H * N;
  // B rows' inputs, [B, T, C], and states [B, H, N, N] (aligned).
  std::vector<Inputs> rows;
  for (int64_t b = 0; b < B; ++b) rows.emplace_back(T, C, 20 + b);
  auto stack = [&](std::vector<float> Inputs::*f) {
    std::vector<float> out;
    for (const Inputs& in : rows) {
      out.insert(out.end(), (in.*f).begin(), (in.*f).end());
    }
    return out;
  };
  const std::vector<float> s0 = Random(B * H * N * N, 3, -1, 1);
  // All rows and steps in one call.
  std::vector<float> all = s0;
  std::vector<float> y_all(B * T * C);
  Wkv7ForwardCpu(B, T, H, N, stack(&Inputs::r).data(), stack(&Inputs::w).data(),
                 stack(&Inputs::k).data(), stack(&Inputs::v).data(),
                 stack(&Inputs::kk).data(), stack(&Inputs::a).data(),
                 all.data(), y_all.data());
  // Each row alone, one step per call.
  for (int64_t b = 0; b < B; ++b) {
    // At an odd offset: the result must not depend on alignment.
    std::vector<float> one_buf(H * N * N + 1);
    float* one = one_buf.data() + 1;
    std::memcpy(one, s0.data() + b * H * N * N, H * N * N * sizeof(float));
    const Inputs& in = rows[b];
    for (int64_t t = 0; t < T; ++t) {
      std::vector<float> y(C);
      const int64_t o = t * C;
      Wkv7ForwardCpu(1, 1, H, N, in.r.data() + o, in.w.data() + o,
                     in.k.data() + o, in.v.data() + o, in.kk.data() + o,
                     in.a.data() + o, one, y.data());
      ASSERT_EQ(0, std::memcmp(y.data(), y_all.data() + (b * T + t) * C,
                               C * sizeof(float)))
          << "row " << b << " step " << t;
    }
    ASSERT_EQ(0, std::memcmp(one, all.data() + b * H * N * N,
                             H * N * N * sizeof(float)))
        << "row " << b;
  }
}

// 64: every RWKV-7 release (the AVX-512 kernel where the CPU has it);
// 32 and 16: the portable loop only.
INSTANTIATE_TEST_SUITE_P(HeadSizes, Wkv7CpuTest, ::testing::Values(64, 32, 16));

}  // namespace
}  // namespace rwkv::engine::internal
