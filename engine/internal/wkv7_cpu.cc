#include "engine/internal/wkv7_cpu.h"

#include <immintrin.h>

#include <cstdint>
#include <vector>

#include "engine/internal/cpu_linear.h"

namespace rwkv::engine::internal {

// One head over T steps, any N. The reductions are marked `omp simd` so the
// compiler may vectorize them (reassociating the sums; the order is the same
// for every head, row and batch size, so results do not depend on B). Cloned
// for AVX-512 / AVX2 and picked at load time, as the rest of the binary
// targets baseline x86-64.
__attribute__((target_clones("avx512f", "avx2", "default"))) void
Wkv7HeadPortable(int64_t T, int64_t C, int64_t N, const float* r,
                 const float* w, const float* k, const float* v,
                 const float* kk, const float* a, float* S, float* out,
                 const float* next_state) {
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

namespace {

// The 16 horizontal sums of acc[0..15] in one vector, in 4 rounds of
// shuffles and adds (instead of 16 separate reductions). Lane l holds the sum
// of acc[kSum16Slot[l]]; kSum16Slot is its own inverse, so a caller that puts
// row i's partial sums in acc[kSum16Slot[i]] gets row i's sum in lane i.
constexpr int kSum16Slot[16] = {0, 2, 1, 3, 8,  10, 9,  11,
                                4, 6, 5, 7, 12, 14, 13, 15};

// GCC 12 warns that _mm512_shuffle_f32x4's internal _mm512_undefined_ps()
// may be used uninitialized (GCC bug 105593, fixed in GCC 13): it is not.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
RWKV_AVX512 inline __m512 Sum16(const __m512* acc) {
  __m512 s8[8], s4[4], s2[2];
  for (int i = 0; i < 8; ++i) {  // lanes 0-7: acc[i], 8-15: acc[i + 8]
    s8[i] = _mm512_add_ps(_mm512_shuffle_f32x4(acc[i], acc[i + 8], 0x44),
                          _mm512_shuffle_f32x4(acc[i], acc[i + 8], 0xEE));
  }
  for (int i = 0; i < 4; ++i) {  // 4 lanes per accumulator
    s4[i] = _mm512_add_ps(_mm512_shuffle_f32x4(s8[i], s8[i + 4], 0x88),
                          _mm512_shuffle_f32x4(s8[i], s8[i + 4], 0xDD));
  }
  for (int i = 0; i < 2; ++i) {  // 2 lanes per accumulator
    s2[i] = _mm512_add_ps(_mm512_shuffle_ps(s4[i], s4[i + 2], 0x44),
                          _mm512_shuffle_ps(s4[i], s4[i + 2], 0xEE));
  }
  return _mm512_add_ps(_mm512_shuffle_ps(s2[0], s2[1], 0x88),
                       _mm512_shuffle_ps(s2[0], s2[1], 0xDD));
}

// The N = 64 head with AVX-512 (every RWKV-7 release): the same update, 16
// rows at a time, the vectors of step t held in registers and both row dot
// products reduced 16 at once by Sum16. A B=32 step's WKV phase is a stream
// of 75 MB of state read and written back: this kernel keeps that stream
// near the memory's pace (the portable loop's two reductions per row did
// not; 5.3 -> 4.1 ms per step in the 12-layer microbenchmark, 2 threads).
RWKV_AVX512 void Wkv7Head64(int64_t T, int64_t C, const float* r,
                            const float* w, const float* k, const float* v,
                            const float* kk, const float* a, float* S,
                            float* out, const float* next_state) {
  constexpr int64_t N = 64;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t off = t * C;
    __m512 wt[4], kt[4], rt[4], kkt[4], kka[4];
    for (int q = 0; q < 4; ++q) {
      wt[q] = _mm512_loadu_ps(w + off + 16 * q);
      kt[q] = _mm512_loadu_ps(k + off + 16 * q);
      rt[q] = _mm512_loadu_ps(r + off + 16 * q);
      kkt[q] = _mm512_loadu_ps(kk + off + 16 * q);
      kka[q] = _mm512_mul_ps(kkt[q], _mm512_loadu_ps(a + off + 16 * q));
    }
    const float* vt = v + off;
    for (int64_t g = 0; g < N; g += 16) {
      float* rows = S + g * N;
      if (t == 0 && next_state != nullptr) {
        // The next state's rows g..g+15, with intent to write (it is updated
        // in place): 64 lines, while this head's same rows are processed.
        const char* nr = reinterpret_cast<const char*>(next_state + g * N);
        for (int l = 0; l < 64; ++l) _mm_prefetch(nr + 64 * l, _MM_HINT_ET0);
      }
      // sa_i = -(S_i . kk) for the 16 rows.
      __m512 acc[16];
      for (int i = 0; i < 16; ++i) {
        const float* row = rows + i * N;
        __m512 d = _mm512_mul_ps(_mm512_loadu_ps(row), kkt[0]);
        for (int q = 1; q < 4; ++q) {
          d = _mm512_fmadd_ps(_mm512_loadu_ps(row + 16 * q), kkt[q], d);
        }
        acc[kSum16Slot[i]] = d;
      }
      alignas(64) float sa[16];
      _mm512_store_ps(sa, _mm512_sub_ps(_mm512_setzero_ps(), Sum16(acc)));
      // S_i <- S_i * w + sa_i * kka + v_i * k;  y_i = S_i . r.
      for (int i = 0; i < 16; ++i) {
        float* row = rows + i * N;
        const __m512 sai = _mm512_set1_ps(sa[i]);
        const __m512 vi = _mm512_set1_ps(vt[g + i]);
        __m512 y = _mm512_setzero_ps();
        for (int q = 0; q < 4; ++q) {
          const __m512 s = _mm512_fmadd_ps(
              _mm512_loadu_ps(row + 16 * q), wt[q],
              _mm512_fmadd_ps(sai, kka[q], _mm512_mul_ps(vi, kt[q])));
          _mm512_storeu_ps(row + 16 * q, s);
          y = q == 0 ? _mm512_mul_ps(s, rt[0]) : _mm512_fmadd_ps(s, rt[q], y);
        }
        acc[kSum16Slot[i]] = y;
      }
      _mm512_storeu_ps(out + off + g, Sum16(acc));
    }
  }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

}  // namespace

void Wkv7Head(int64_t T, int64_t C, int64_t N, const float* r, const float* w,
              const float* k, const float* v, const float* kk, const float* a,
              float* S, float* out, const float* next_state) {
  if (N == 64 && CpuHasAvx512()) {
    Wkv7Head64(T, C, r, w, k, v, kk, a, S, out, next_state);
  } else {
    Wkv7HeadPortable(T, C, N, r, w, k, v, kk, a, S, out, next_state);
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
