// The fused forward passes (rwkv_cpu_forward.h) for CPUs without AVX-512:
// the same code over one-lane vectors (the compiler's baseline target).
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

namespace rwkv::engine::internal::generic {

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}
#include "engine/internal/cpu_vec.h"
using Vec = VecScalar;
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

}  // namespace rwkv::engine::internal::generic
