// The fused forward passes (rwkv_cpu_forward.h) built for AVX-512: this file
// is compiled with -mavx512f -mfma (engine/CMakeLists.txt) and its functions
// are called only where CpuHasAvx512(). Everything it instantiates lives in
// its own namespace, so no inline function compiled here is shared with the
// portable build.
#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>
#include <new>
#include <thread>

#include "engine/internal/cpu_linear.h"
#include "engine/internal/rwkv_cpu_forward.h"
#include "engine/internal/wkv7_cpu.h"

#if !defined(__AVX512F__)
#error "rwkv_cpu_forward_avx512.cc must be compiled with -mavx512f"
#endif

// GCC 12's AVX-512 intrinsics start from _mm512_undefined_*(), which
// -W(maybe-)uninitialized reports at every inlined use (a false positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rwkv::engine::internal::avx512 {

inline void CpuRelax() { _mm_pause(); }
#include "engine/internal/cpu_vec.h"
using Vec = VecAvx512;
#include "engine/internal/rwkv_cpu_forward_impl.h"

void Rwkv4Forward(const Rwkv4CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits) {
  Rwkv4ForwardImpl(w, tokens, B, T, state, logits);
}

void Rwkv7Forward(const Rwkv7CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits) {
  Rwkv7ForwardImpl(w, tokens, B, T, state, logits);
}

void Rwkv4Segments(const Rwkv4CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits) {
  static_assert(kCpuSegmentsMaxRows == kTeamMaxRows);
  Rwkv4SegmentsImpl(w, tokens, lengths, n, state, logits);
}

void Rwkv7Segments(const Rwkv7CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits) {
  static_assert(kCpuSegmentsMaxRows == kTeamMaxRows);
  Rwkv7SegmentsImpl(w, tokens, lengths, n, state, logits);
}

}  // namespace rwkv::engine::internal::avx512
