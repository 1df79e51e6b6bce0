// The RWKV-4 WKV recurrence as a plain fp32 loop for CPU inference: the one
// part of sequence mode that must step through time. Thousands of tiny torch
// ops per prompt would dominate prefill; this loop costs ~T*C exp() calls.
#ifndef RWKV_ENGINE_INTERNAL_WKV4_CPU_H_
#define RWKV_ENGINE_INTERNAL_WKV4_CPU_H_

#include <cstdint>

namespace rwkv::engine::internal {

// k, v, out: [B, T, C]; aa, bb, pp: [B, C] (updated in place);
// time_first, time_decay: [C] (time_decay already = -exp(raw)).
// All contiguous fp32.
void Wkv4ForwardCpu(int64_t B, int64_t T, int64_t C, const float* time_first,
                    const float* time_decay, const float* k, const float* v,
                    float* aa, float* bb, float* pp, float* out);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_WKV4_CPU_H_
