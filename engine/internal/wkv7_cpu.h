// The RWKV-7 state update (generalized delta rule) as a plain fp32 loop for
// CPU inference: the one part of sequence mode that steps through time.
// Per head, with S[i][j] (i = value index, j = key index, ChatRWKV's
// orientation) and column vectors:
//   S <- S diag(w) + (S (-kk)) (kk*a)^T + v k^T;   y = S r
#ifndef RWKV_ENGINE_INTERNAL_WKV7_CPU_H_
#define RWKV_ENGINE_INTERNAL_WKV7_CPU_H_

#include <cstdint>

namespace rwkv::engine::internal {

// One head of one sequence over T steps: r, w, k, v, kk, a, out point at the
// head's first channel of step 0, rows C floats apart; S is the head's
// [N, N] state, updated in place. REQUIRES: N <= 1024. The building block of
// the functions below and of the fused forward (rwkv_cpu_forward.h).
// `next_state` (may be null): the [N, N] state the caller updates next; its
// rows are prefetched during the first step, so that a batch of states
// (16 KB each at N = 64, far more than the caches hold in total) streams
// from memory without a stall per head. Timing only: results are the same.
// N = 64 (every RWKV-7 release) runs an AVX-512 kernel where the CPU has it
// (CpuHasAvx512()), any other N the portable loop below. Both sum in a fixed
// order that does not depend on T, B, alignment or the thread split, so a
// process's results are bit-identical across single, batched and sequence
// calls (the two paths differ from each other by float rounding only).
void Wkv7Head(int64_t T, int64_t C, int64_t N, const float* r, const float* w,
              const float* k, const float* v, const float* kk, const float* a,
              float* S, float* out, const float* next_state = nullptr);

// The portable loop, any N <= 1024, same arguments (exposed for tests that
// compare the kernels).
void Wkv7HeadPortable(int64_t T, int64_t C, int64_t N, const float* r,
                      const float* w, const float* k, const float* v,
                      const float* kk, const float* a, float* S, float* out,
                      const float* next_state = nullptr);

// r, w, k, v, kk, a, out: [B, T, H*N] (w = decay factor in (0, 1));
// state: [B, H, N, N], updated in place. All contiguous fp32. REQUIRES:
// N <= 1024.
void Wkv7ForwardCpu(int64_t B, int64_t T, int64_t H, int64_t N, const float* r,
                    const float* w, const float* k, const float* v,
                    const float* kk, const float* a, float* state, float* out);

// The same with each row's state held separately: states[b] points to row b's
// [H, N, N] state (contiguous), updated in place. Same arithmetic, so results
// are bit-identical to the stacked form.
void Wkv7ForwardCpuRows(int64_t B, int64_t T, int64_t H, int64_t N,
                        const float* r, const float* w, const float* k,
                        const float* v, const float* kk, const float* a,
                        float* const* states, float* out);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_WKV7_CPU_H_
