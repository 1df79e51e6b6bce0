#include "engine/internal/wkv4_cpu.h"

#include <algorithm>
#include <cmath>

namespace rwkv::engine::internal {

void Wkv4ForwardCpu(int64_t B, int64_t T, int64_t C, const float* time_first,
                    const float* time_decay, const float* k, const float* v,
                    float* aa, float* bb, float* pp, float* out) {
  // Channels are independent: parallelize over (b, c) when there is enough
  // work to pay for the threads.
  const int64_t n = B * C;
#pragma omp parallel for schedule(static) if (n * T >= 16384)
  for (int64_t bc = 0; bc < n; ++bc) {
    const int64_t b = bc / C, c = bc % C;
    const float u = time_first[c], w = time_decay[c];
    float a = aa[bc], d = bb[bc], p = pp[bc];
    const float* kp = k + b * T * C + c;
    const float* vp = v + b * T * C + c;
    float* op = out + b * T * C + c;
    for (int64_t t = 0; t < T; ++t) {
      const float kk = kp[t * C], vv = vp[t * C];
      float ww = u + kk;
      float q = std::max(p, ww);
      float e1 = std::exp(p - q), e2 = std::exp(ww - q);
      op[t * C] = (e1 * a + e2 * vv) / (e1 * d + e2);
      ww = w + p;
      q = std::max(ww, kk);
      e1 = std::exp(ww - q);
      e2 = std::exp(kk - q);
      a = e1 * a + e2 * vv;
      d = e1 * d + e2;
      p = q;
    }
    aa[bc] = a;
    bb[bc] = d;
    pp[bc] = p;
  }
}

}  // namespace rwkv::engine::internal
