#include "engine/internal/wkv7_cpu.h"

#include <vector>

namespace rwkv::engine::internal {

// One head over T steps. The reductions are marked `omp simd` so the compiler
// may vectorize them (reassociating the sums; the order is the same for every
// head, row and batch size, so results do not depend on B). Cloned for
// AVX-512 / AVX2 and picked at load time, as the rest of the binary targets
// baseline x86-64.
__attribute__((target_clones("avx512f", "avx2", "default"))) void Wkv7Head(
    int64_t T, int64_t C, int64_t N, const float* r, const float* w,
    const float* k, const float* v, const float* kk, const float* a, float* S,
    float* out, const float* next_state) {
  float kka[1024];  // N <= 1024 (checked by the caller)
  for (int64_t t = 0; t < T; ++t) {
    const int64_t off = t * C;
    const float* rt = r + off;
    const float* wt = w + off;
    const float* kt = k + off;
    const float* vt = v + off;
    const float* kkt = kk + off;
    const float* at = a + off;
    float* yt = out + off;
#pragma omp simd
    for (int64_t j = 0; j < N; ++j) kka[j] = kkt[j] * at[j];
    for (int64_t i = 0; i < N; ++i) {
      float* row = S + i * N;
      if (t == 0 && next_state != nullptr) {
        // The next state's row i, with intent to write (it is updated in
        // place): a line every 16 floats.
        const float* nr = next_state + i * N;
        for (int64_t j = 0; j < N; j += 16) __builtin_prefetch(nr + j, 1, 3);
      }
      float sa = 0;
#pragma omp simd reduction(+ : sa)
      for (int64_t j = 0; j < N; ++j) sa += row[j] * kkt[j];
      sa = -sa;
      const float vi = vt[i];
      float y = 0;
#pragma omp simd reduction(+ : y)
      for (int64_t j = 0; j < N; ++j) {
        const float s = row[j] * wt[j] + sa * kka[j] + vi * kt[j];
        row[j] = s;
        y += s * rt[j];
      }
      yt[i] = y;
    }
  }
}

void Wkv7ForwardCpuRows(int64_t B, int64_t T, int64_t H, int64_t N,
                        const float* r, const float* w, const float* k,
                        const float* v, const float* kk, const float* a,
                        float* const* states, float* out) {
  const int64_t C = H * N;
  const int64_t n = B * H;
  // Heads are independent: parallelize over (b, h) when there is enough work.
#pragma omp parallel for schedule(static) if (n * T * N * N >= (1 << 18))
  for (int64_t bh = 0; bh < n; ++bh) {
    const int64_t b = bh / H, h = bh % H;
    const int64_t off = b * T * C + h * N;
    const int64_t nb = (bh + 1) / H, nh = (bh + 1) % H;
    Wkv7Head(T, C, N, r + off, w + off, k + off, v + off, kk + off, a + off,
             states[b] + h * N * N, out + off,
             bh + 1 < n ? states[nb] + nh * N * N : nullptr);
  }
}

void Wkv7ForwardCpu(int64_t B, int64_t T, int64_t H, int64_t N, const float* r,
                    const float* w, const float* k, const float* v,
                    const float* kk, const float* a, float* state, float* out) {
  std::vector<float*> rows(B);
  for (int64_t b = 0; b < B; ++b) rows[b] = state + b * H * N * N;
  Wkv7ForwardCpuRows(B, T, H, N, r, w, k, v, kk, a, rows.data(), out);
}

}  // namespace rwkv::engine::internal
