// The fused RWKV-4 / RWKV-7 CPU forward passes (rwkv_cpu_forward.h) as
// templates over a vector type (cpu_vec.h) and an executor:
//   TeamExec  runs inside one OpenMP parallel region: each phase's rows or
//             matrix panels are cut into items that the team's threads claim
//             one at a time, and the phase ends when all are done (no
//             barrier: a preempted thread delays the others only by an item
//             it holds); matrix products use the native kernels on the
//             item's panels (LinearForwardPanels), with the element-wise
//             epilogue on the columns just computed.
//   ForkExec  runs phases one after another from the calling thread: matrix
//             products through LinearForward (oneDNN for large fp32 M), the
//             element-wise parts in their own parallel regions. Used for long
//             fp32 prompt chunks.
// Both run the same element-wise code on the same rows and columns, so a
// row's result depends only on the matrix kernel.
//
// Not a public header: included only by rwkv_cpu_forward_avx512.cc and
// rwkv_cpu_forward_generic.cc, inside their instruction-set namespace, after
// cpu_vec.h and every standard header, with `Vec` defined.
#ifndef RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_IMPL_H_
#define RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_IMPL_H_

// ---------------------------------------------------------------------------
// Work splitting.

struct Gemm {
  const PackedLinear* w;  // null: skipped
  const float* x;         // [m, K]
  float* y;               // [m, N]
  int64_t m;
};

// Columns [begin, end) of one matrix product's output that a thread owns.
struct ColRange {
  int64_t begin = 0, end = 0;
};

inline int64_t SplitAt(int64_t n, int64_t t, int64_t nt) { return n * t / nt; }

// The panels of `g` thread t of nt computes. Aligned: each product split
// evenly by its own panels (products of equal N give each thread the same
// columns). Balanced: the products' panels, weighted by their cost, laid end
// to end and cut into nt equal shares.
//
// A panel's cost: its packed bytes for decode-sized products (m <=
// kLinearTileRows: one streaming pass, memory bound, so an fp32 LoRA panel
// next to bf16 or int8 ones weighs its 2-4x bytes), else K (compute bound;
// bf16 / int8 blocks are widened to fp32 first). Only the split depends on it,
// never a result.
inline int64_t PanelCost(const Gemm& g) {
  if (g.m <= kLinearTileRows) {
    return std::max<int64_t>(1, static_cast<int64_t>(g.w->packed_bytes()) /
                                    std::max<int64_t>(g.w->panels(), 1));
  }
  return std::max<int64_t>(g.w->k(), 1);
}

template <size_t K>
void PanelShares(const std::array<Gemm, K>& g, bool balanced, int64_t t,
                 int64_t nt, std::array<int64_t, K>* p0,
                 std::array<int64_t, K>* p1) {
  if (!balanced) {
    for (size_t i = 0; i < K; ++i) {
      const int64_t panels = g[i].w == nullptr ? 0 : g[i].w->panels();
      (*p0)[i] = SplitAt(panels, t, nt);
      (*p1)[i] = SplitAt(panels, t + 1, nt);
    }
    return;
  }
  int64_t total = 0;
  for (size_t i = 0; i < K; ++i) {
    if (g[i].w != nullptr) total += g[i].w->panels() * PanelCost(g[i]);
  }
  const int64_t lo = SplitAt(total, t, nt), hi = SplitAt(total, t + 1, nt);
  int64_t start = 0;
  for (size_t i = 0; i < K; ++i) {
    (*p0)[i] = (*p1)[i] = 0;
    if (g[i].w == nullptr) continue;
    const int64_t cost = PanelCost(g[i]);
    const int64_t panels = g[i].w->panels();
    // Panel p belongs to the share its start offset falls in.
    auto first_at_or_after = [&](int64_t off) {
      if (off <= start) return int64_t{0};
      return std::min(panels, (off - start + cost - 1) / cost);
    };
    (*p0)[i] = first_at_or_after(lo);
    (*p1)[i] = first_at_or_after(hi);
    start += panels * cost;
  }
}

template <size_t K>
std::array<ColRange, K> ColumnsOf(const std::array<Gemm, K>& g,
                                  const std::array<int64_t, K>& p0,
                                  const std::array<int64_t, K>& p1) {
  std::array<ColRange, K> r;
  for (size_t i = 0; i < K; ++i) {
    if (g[i].w == nullptr) continue;
    r[i].begin = std::min(g[i].w->n(), p0[i] * kLinearPanelWidth);
    r[i].end = std::min(g[i].w->n(), p1[i] * kLinearPanelWidth);
  }
  return r;
}

// Work of one phase, claimed item by item by the team's threads (so a
// thread the OS has preempted holds up the others only for an item it has
// already claimed, not for its whole share), and how many items are done.
struct PhaseCounter {
  alignas(64) std::atomic<int64_t> next{0};
  alignas(64) std::atomic<int64_t> done{0};
};

// Waits until `c` has `items` items done.
inline void AwaitPhase(const PhaseCounter& c, int64_t items) {
  for (int spin = 0; c.done.load(std::memory_order_acquire) < items; ++spin) {
    if (spin < 4096) {
      CpuRelax();
    } else {
      std::this_thread::yield();
    }
  }
}

// Items a phase is cut into (at most one per panel). Decode-sized products
// (m <= kLinearTileRows, streamed once, memory bound): about one per 256 KB
// of weights, at least one per thread. Larger m (compute bound, K blocks reused
// by several register tiles): two per thread, i.e. long runs of contiguous
// panels, because each item starts with a K block that nothing prefetched
// (the kernel prefetches the next block only within its range): one item per
// panel made a RWKV-7 0.1B B=32 step 48 ms, two per thread 42-43 ms
// (b32 profile, 2-core AVX-512 VM, 2026-12-03). A thread the OS preempts
// still holds up the others only by half of its share.
inline int64_t GemmItems(double bytes, int64_t panels, int nt, int64_t m) {
  if (m > kLinearTileRows) {
    return std::max<int64_t>(1, std::min<int64_t>(panels, 2 * nt));
  }
  const int64_t want = static_cast<int64_t>(bytes / (256.0 * 1024));
  return std::max<int64_t>(1, std::min(panels, std::max<int64_t>(want, nt)));
}

class TeamExec {
 public:
  // counters: `phases` zeroed PhaseCounters, one per phase of the call,
  // shared by the team (every thread runs the same phases in the same
  // order).
  TeamExec(int t, int nt, int64_t m, PhaseCounter* counters, int64_t phases)
      : t_(t), nt_(nt), m_(m), counters_(counters), phases_(phases) {}
  int thread() const { return t_; }
  int64_t m() const { return m_; }

  // fn(begin, end, thread) over items of [0, count) until none is left;
  // returns when every item is done.
  template <typename F>
  void Rows(int64_t count, F&& fn) {
    PhaseCounter& c = NextPhase();
    const int64_t items = std::min<int64_t>(count, 4 * nt_);
    for (;;) {
      const int64_t i = c.next.fetch_add(1, std::memory_order_relaxed);
      if (i >= items) break;
      const int64_t b = SplitAt(count, i, items),
                    e = SplitAt(count, i + 1, items);
      if (b < e) fn(b, e, t_);
      c.done.fetch_add(1, std::memory_order_release);
    }
    AwaitPhase(c, items);
  }

  // Items of panels of the products (balanced: the products' panels laid end
  // to end; aligned: the same share of each product's panels), each followed
  // by epi(columns) on the columns it computed; returns when all are done.
  template <size_t K, typename F>
  void Gemms(const std::array<Gemm, K>& g, bool balanced, F&& epi) {
    PhaseCounter& c = NextPhase();
    double bytes = 0;
    int64_t m = 0;
    int64_t panels = balanced ? 0 : int64_t{1} << 62;
    for (const Gemm& x : g) {
      if (x.w == nullptr) continue;
      bytes += static_cast<double>(x.w->packed_bytes());
      m = std::max(m, x.m);
      panels =
          balanced ? panels + x.w->panels() : std::min(panels, x.w->panels());
    }
    if (panels == int64_t{1} << 62) panels = 1;
    const int64_t items = GemmItems(bytes, panels, nt_, m);
    for (;;) {
      const int64_t j = c.next.fetch_add(1, std::memory_order_relaxed);
      if (j >= items) break;
      std::array<int64_t, K> p0, p1;
      PanelShares(g, balanced, j, items, &p0, &p1);
      for (size_t i = 0; i < K; ++i) {
        if (g[i].w != nullptr && p0[i] < p1[i]) {
          LinearForwardPanels(*g[i].w, g[i].x, g[i].m, g[i].y, p0[i], p1[i]);
        }
      }
      epi(ColumnsOf(g, p0, p1));
      c.done.fetch_add(1, std::memory_order_release);
    }
    AwaitPhase(c, items);
  }

 private:
  PhaseCounter& NextPhase() {
    if (phase_ >= phases_) std::abort();  // PhaseCount() is too small
    return counters_[phase_++];
  }

  int t_, nt_;
  int64_t m_;
  PhaseCounter* counters_;
  int64_t phases_;
  int64_t phase_ = 0;
};

class ForkExec {
 public:
  ForkExec(int nt, int64_t m) : nt_(nt), m_(m) {}
  int64_t m() const { return m_; }

  template <typename F>
  void Rows(int64_t count, F&& fn) {
#pragma omp parallel num_threads(nt_)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      const int64_t b = SplitAt(count, t, nt), e = SplitAt(count, t + 1, nt);
      if (b < e) fn(b, e, t);
    }
  }

  template <size_t K, typename F>
  void Gemms(const std::array<Gemm, K>& g, bool balanced, F&& epi) {
    for (size_t i = 0; i < K; ++i) {
      if (g[i].w != nullptr) LinearForward(*g[i].w, g[i].x, g[i].m, g[i].y);
    }
#pragma omp parallel num_threads(nt_)
    {
      const int t = omp_get_thread_num(), nt = omp_get_num_threads();
      std::array<int64_t, K> p0, p1;
      PanelShares(g, balanced, t, nt, &p0, &p1);
      epi(ColumnsOf(g, p0, p1));
    }
  }

 private:
  int nt_;
  int64_t m_;
};

// ---------------------------------------------------------------------------
// Element-wise building blocks (lane-wise, masked tails).

// Runs body(offset, lanes) over [begin, end) in vectors of Vec::kLanes, the
// last one partial (lanes < kLanes).
template <typename F>
inline void ForLanes(int64_t begin, int64_t end, F&& body) {
  int64_t i = begin;
  for (; i + Vec::kLanes <= end; i += Vec::kLanes)
    body(i, int64_t{Vec::kLanes});
  if (i < end) body(i, end - i);
}

inline Vec LoadL(const float* p, int64_t lanes) {
  return lanes == Vec::kLanes ? Vec::Load(p) : Vec::LoadN(p, lanes);
}
inline void StoreL(const Vec& v, float* p, int64_t lanes) {
  if (lanes == Vec::kLanes) {
    v.Store(p);
  } else {
    v.StoreN(p, lanes);
  }
}

// out = (x - mean) / sqrt(var + eps) * w + b over n elements (two passes;
// the sums in a fixed order).
inline void LayerNormRow(const float* x, const float* w, const float* b,
                         int64_t n, float eps, float* out) {
  Vec acc = Vec::Zero();
  ForLanes(0, n, [&](int64_t i, int64_t l) { acc = acc + LoadL(x + i, l); });
  const float mean = Vec::ReduceAdd(acc) / static_cast<float>(n);
  const Vec vm = Vec::Set(mean);
  Vec acc2 = Vec::Zero();
  ForLanes(0, n, [&](int64_t i, int64_t l) {
    const Vec d = Vec::KeepFirst(LoadL(x + i, l) - vm, l);
    acc2 = Vec::Fma(d, d, acc2);
  });
  const float sq = Vec::ReduceAdd(acc2);
  const float rstd = 1.0f / std::sqrt(sq / static_cast<float>(n) + eps);
  const Vec vr = Vec::Set(rstd);
  ForLanes(0, n, [&](int64_t i, int64_t l) {
    const Vec y =
        Vec::Fma((LoadL(x + i, l) - vm) * vr, LoadL(w + i, l), LoadL(b + i, l));
    StoreL(y, out + i, l);
  });
}

// out = s + (x - s) * mix (token shift: x this token, s the previous one).
inline void MixRow(const float* x, const float* s, const float* mix, int64_t n,
                   float* out) {
  ForLanes(0, n, [&](int64_t i, int64_t l) {
    const Vec sv = LoadL(s + i, l);
    StoreL(Vec::Fma(LoadL(x + i, l) - sv, LoadL(mix + i, l), sv), out + i, l);
  });
}

inline void CopyRow(const float* src, int64_t n, float* dst) {
  std::memcpy(dst, src, sizeof(float) * n);
}

// y[r, c] for rows [0, m) and columns [cols.begin, cols.end), row stride n.
template <typename F>
inline void ForCols(int64_t m, int64_t n, ColRange cols, F&& body) {
  for (int64_t r = 0; r < m; ++r) {
    ForLanes(cols.begin, cols.end,
             [&](int64_t c, int64_t l) { body(r * n + c, c, l); });
  }
}

// ---------------------------------------------------------------------------
// Chunking shared by both models.

constexpr int64_t kTeamMaxRows = 128;  // rows a team chunk holds (native)
constexpr int64_t kForkMaxRows = 512;  // fp32 prompt chunks through oneDNN

// Threads for a call: the OpenMP team size, one inside a parallel region or
// for models so small that a barrier costs more than the work.
inline int CallThreads(double weight_bytes) {
  if (omp_in_parallel()) return 1;
  if (weight_bytes < 512.0 * 1024) return 1;
  return std::max(1, omp_get_max_threads());
}

// Calls run(b0, nb, t0, nt_tokens, fork) over the chunks of a [B, T] call:
// T == 1 batches of up to kTeamMaxRows rows; otherwise each row's tokens in
// chunks (fp32: up to kForkMaxRows, the part above kTeamMaxRows through
// ForkExec; other formats: kTeamMaxRows).
template <typename F>
void ForEachChunk(int64_t B, int64_t T, bool fp32, F&& run) {
  if (T == 1) {
    for (int64_t b0 = 0; b0 < B; b0 += kTeamMaxRows) {
      run(b0, std::min(kTeamMaxRows, B - b0), int64_t{0}, int64_t{1}, false);
    }
    return;
  }
  const int64_t chunk = fp32 ? kForkMaxRows : kTeamMaxRows;
  for (int64_t b = 0; b < B; ++b) {
    for (int64_t t0 = 0; t0 < T; t0 += chunk) {
      const int64_t n = std::min(chunk, T - t0);
      run(b, int64_t{1}, t0, n, n > kTeamMaxRows);
    }
  }
}

// A bump allocator over one scratch block (64-byte aligned pieces).
class Arena {
 public:
  explicit Arena(float* base) : base_(base) {}
  // With a null base only counts (sizing pass) and returns null.
  float* Take(int64_t floats) {
    const int64_t off = used_;
    used_ += (floats + 15) / 16 * 16;
    return base_ == nullptr ? nullptr : base_ + off;
  }
  int64_t used() const { return used_; }

 private:
  float* base_;
  int64_t used_ = 0;
};

// The rows of one chunk: nb segments (state rows b0..b0+nb) laid end to
// end, segment j being rows [row0[j], row0[j + 1]) (consecutive tokens of
// one sequence); row m feeds tokens[m]. A batched step is nb segments of
// one row, a prompt chunk one segment, a mixed call (ForwardSegments) any
// lengths.
struct ChunkRows {
  int64_t b0 = 0, nb = 1;
  const int32_t* tokens = nullptr;  // [M], row order
  std::array<int64_t, kTeamMaxRows + 1> row0{};
  float* logits = nullptr;  // [nb, V]: after each segment's last row; null:
                            // not computed
  int64_t token(int64_t m) const { return tokens[m]; }
  int64_t last(int64_t j) const { return row0[j + 1] - 1; }
  // The segment row m belongs to.
  int64_t SegmentOf(int64_t m) const {
    return std::upper_bound(row0.begin(), row0.begin() + nb + 1, m) -
           row0.begin() - 1;
  }
  // nb segments of `len` rows each (nb * len <= kForkMaxRows, nb <=
  // kTeamMaxRows).
  void SetUniform(int64_t segments, int64_t len) {
    nb = segments;
    for (int64_t j = 0; j <= nb; ++j) row0[j] = j * len;
  }
};

// Component `comp` of chunk sequence j at layer i.
inline float* StateAt(const CpuStateRows& st, int ncomp, const ChunkRows& cr,
                      int64_t j, int comp, int64_t layer) {
  return st.rows[(cr.b0 + j) * ncomp + comp] + layer * st.layer_stride[comp];
}

// Embedding rows, then barrier.
template <typename Exec>
void Embed(Exec& ex, const float* emb, int64_t C, const ChunkRows& cr,
           float* x) {
  ex.Rows(ex.m(), [&](int64_t m0, int64_t m1, int) {
    for (int64_t m = m0; m < m1; ++m)
      CopyRow(emb + cr.token(m) * C, C, x + m * C);
  });
}

// xx[m] = LN(x[m]) and the token-shift partner of each row (the state for
// a sequence's first token, else the previous row's xx), for rows
// [m0, m1): calls mix(m, xx, shifted).
template <typename F>
void NormAndShift(const float* x, const float* ln_w, const float* ln_b,
                  int64_t C, const ChunkRows& cr, const CpuStateRows& st,
                  int ncomp, int comp, int64_t layer, int64_t m0, int64_t m1,
                  float* xx, float* prev, F&& mix) {
  int64_t j = m0 < m1 ? cr.SegmentOf(m0) : 0;
  for (int64_t m = m0; m < m1; ++m) {
    while (cr.row0[j + 1] <= m) ++j;
    float* row = xx + m * C;
    LayerNormRow(x + m * C, ln_w, ln_b, C, 1e-5f, row);
    const float* shifted;
    if (m == cr.row0[j]) {
      shifted = StateAt(st, ncomp, cr, j, comp, layer);
    } else if (m == m0) {
      // The previous row belongs to another thread's share: recompute it
      // (the same function on the same input gives the same bits).
      LayerNormRow(x + (m - 1) * C, ln_w, ln_b, C, 1e-5f, prev);
      shifted = prev;
    } else {
      shifted = xx + (m - 1) * C;
    }
    mix(m, row, shifted);
  }
}

// The new token-shift state of every chunk sequence, columns `cols`: its
// last row of xx.
inline void SaveShift(const float* xx, int64_t C, const ChunkRows& cr,
                      const CpuStateRows& st, int ncomp, int comp,
                      int64_t layer, ColRange cols) {
  if (cols.begin >= cols.end) return;
  for (int64_t j = 0; j < cr.nb; ++j) {
    std::memcpy(StateAt(st, ncomp, cr, j, comp, layer) + cols.begin,
                xx + cr.last(j) * C + cols.begin,
                sizeof(float) * (cols.end - cols.begin));
  }
}

// x[m, cols] += y[m, cols] (times r[m, cols] when r is given).
inline void AddResidual(int64_t M, int64_t C, ColRange cols, const float* y,
                        const float* r, float* x) {
  ForCols(M, C, cols, [&](int64_t i, int64_t, int64_t l) {
    Vec d = LoadL(y + i, l);
    if (r != nullptr) d = d * LoadL(r + i, l);
    StoreL(LoadL(x + i, l) + d, x + i, l);
  });
}

inline void ReluSquare(int64_t M, int64_t N, ColRange cols, float* y) {
  ForCols(M, N, cols, [&](int64_t i, int64_t, int64_t l) {
    const Vec v = Vec::Max(LoadL(y + i, l), Vec::Zero());
    StoreL(v * v, y + i, l);
  });
}

// Final layer norm of each sequence's last row and the head, into logits.
template <typename Exec>
void Head(Exec& ex, const float* x, const float* ln_w, const float* ln_b,
          const PackedLinear* head, int64_t C, const ChunkRows& cr, float* xo) {
  if (cr.logits == nullptr) return;
  ex.Rows(cr.nb, [&](int64_t j0, int64_t j1, int) {
    for (int64_t j = j0; j < j1; ++j) {
      LayerNormRow(x + cr.last(j) * C, ln_w, ln_b, C, 1e-5f, xo + j * C);
    }
  });
  ex.Gemms(std::array<Gemm, 1>{{{head, xo, cr.logits, cr.nb}}},
           /*balanced=*/false, [](const std::array<ColRange, 1>&) {});
}

// ---------------------------------------------------------------------------
// RWKV-4.

enum { kV4Aa = 0, kV4Ab, kV4Pp, kV4AttShift, kV4FfnShift, kV4Components };

struct V4Buffers {
  float *x, *xx, *kx, *vx, *rx, *k, *v, *r, *k2, *xo, *prev;

  V4Buffers(Arena& a, int64_t M, int64_t nb, int64_t C, int64_t F, int nt) {
    x = a.Take(M * C);
    xx = a.Take(M * C);
    kx = a.Take(M * C);
    vx = a.Take(M * C);
    rx = a.Take(M * C);
    k = a.Take(M * C);
    v = a.Take(M * C);
    r = a.Take(M * C);
    k2 = a.Take(M * F);
    xo = a.Take(nb * C);
    prev = a.Take(static_cast<int64_t>(nt) * C);
  }
};

template <typename Exec>
void Rwkv4Chunk(Exec& ex, const Rwkv4CpuWeights& w, const V4Buffers& b,
                const ChunkRows& cr, const CpuStateRows& st) {
  const int64_t C = w.n_embd, F = w.ffn_dim, M = ex.m();
  constexpr int kN = kV4Components;
  Embed(ex, w.emb, C, cr, b.x);
  for (int64_t i = 0; i < static_cast<int64_t>(w.layers.size()); ++i) {
    const Rwkv4CpuLayer& l = w.layers[i];
    // Time mixing: LN1 and the three token-shift mixes.
    ex.Rows(M, [&](int64_t m0, int64_t m1, int th) {
      NormAndShift(b.x, l.ln1_w, l.ln1_b, C, cr, st, kN, kV4AttShift, i, m0, m1,
                   b.xx, b.prev + th * C,
                   [&](int64_t m, const float* xx, const float* sx) {
                     MixRow(xx, sx, l.mix_k, C, b.kx + m * C);
                     MixRow(xx, sx, l.mix_v, C, b.vx + m * C);
                     MixRow(xx, sx, l.mix_r, C, b.rx + m * C);
                   });
    });
    // K, V, R on this thread's channels, then the WKV recurrence over them:
    // r becomes sigmoid(r) * wkv.
    ex.Gemms(
        std::array<Gemm, 3>{{{l.key, b.kx, b.k, M},
                             {l.value, b.vx, b.v, M},
                             {l.receptance, b.rx, b.r, M}}},
        /*balanced=*/false, [&](const std::array<ColRange, 3>& cols) {
          const ColRange c = cols[0];  // equal N: the same columns
          for (int64_t j = 0; j < cr.nb; ++j) {
            float* aa = StateAt(st, kN, cr, j, kV4Aa, i);
            float* bb = StateAt(st, kN, cr, j, kV4Ab, i);
            float* pp = StateAt(st, kN, cr, j, kV4Pp, i);
            ForLanes(c.begin, c.end, [&](int64_t ch, int64_t ln) {
              Vec a = LoadL(aa + ch, ln), d = LoadL(bb + ch, ln),
                  p = LoadL(pp + ch, ln);
              const Vec u = LoadL(l.time_first + ch, ln);
              const Vec wd = LoadL(l.time_decay + ch, ln);
              for (int64_t m = cr.row0[j]; m < cr.row0[j + 1]; ++m) {
                const int64_t o = m * C + ch;
                const Vec kk = LoadL(b.k + o, ln), vv = LoadL(b.v + o, ln);
                Vec ww = u + kk;
                Vec q = Vec::Max(p, ww);
                Vec e1 = Vec::Exp(p - q), e2 = Vec::Exp(ww - q);
                const Vec wkv = Vec::Fma(e1, a, e2 * vv) / Vec::Fma(e1, d, e2);
                StoreL(Vec::Sigmoid(LoadL(b.r + o, ln)) * wkv, b.r + o, ln);
                ww = wd + p;
                q = Vec::Max(ww, kk);
                e1 = Vec::Exp(ww - q);
                e2 = Vec::Exp(kk - q);
                a = Vec::Fma(e1, a, e2 * vv);
                d = Vec::Fma(e1, d, e2);
                p = q;
              }
              StoreL(a, aa + ch, ln);
              StoreL(d, bb + ch, ln);
              StoreL(p, pp + ch, ln);
            });
          }
          SaveShift(b.xx, C, cr, st, kN, kV4AttShift, i, c);
        });
    ex.Gemms(std::array<Gemm, 1>{{{l.output, b.r, b.kx, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 1>& cols) {
               AddResidual(M, C, cols[0], b.kx, nullptr, b.x);
             });
    // Channel mixing.
    ex.Rows(M, [&](int64_t m0, int64_t m1, int th) {
      NormAndShift(b.x, l.ln2_w, l.ln2_b, C, cr, st, kN, kV4FfnShift, i, m0, m1,
                   b.xx, b.prev + th * C,
                   [&](int64_t m, const float* xx, const float* sx) {
                     MixRow(xx, sx, l.ffn_mix_k, C, b.kx + m * C);
                     MixRow(xx, sx, l.ffn_mix_r, C, b.rx + m * C);
                   });
    });
    ex.Gemms(std::array<Gemm, 2>{{{l.ffn_key, b.kx, b.k2, M},
                                  {l.ffn_receptance, b.rx, b.r, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 2>& cols) {
               ReluSquare(M, F, cols[0], b.k2);
               ForCols(M, C, cols[1], [&](int64_t o, int64_t, int64_t ln) {
                 StoreL(Vec::Sigmoid(LoadL(b.r + o, ln)), b.r + o, ln);
               });
               SaveShift(b.xx, C, cr, st, kN, kV4FfnShift, i, cols[1]);
             });
    ex.Gemms(std::array<Gemm, 1>{{{l.ffn_value, b.k2, b.v, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 1>& cols) {
               AddResidual(M, C, cols[0], b.v, b.r, b.x);
             });
  }
  Head(ex, b.x, w.ln_out_w, w.ln_out_b, w.head, C, cr, b.xo);
}

// Runs one chunk in the executor its size calls for. counters: at least as
// many PhaseCounters as the chunk has phases (reset here).
template <typename Run>
void RunChunk(int nt, int64_t M, bool fork, PhaseCounter* counters,
              int64_t phases, Run&& run) {
  if (fork) {
    ForkExec ex(nt, M);
    run(ex);
    return;
  }
  for (int64_t i = 0; i < phases; ++i) {
    counters[i].next.store(0, std::memory_order_relaxed);
    counters[i].done.store(0, std::memory_order_relaxed);
  }
  if (nt == 1) {
    TeamExec ex(0, 1, M, counters, phases);
    run(ex);
  } else {
#pragma omp parallel num_threads(nt)
    {
      TeamExec ex(omp_get_thread_num(), omp_get_num_threads(), M, counters,
                  phases);
      run(ex);
    }
  }
}

// The phases of a chunk of an L-layer model: embedding, at most 8 a layer,
// the head's two.
inline int64_t PhaseCount(int64_t layers) { return 8 * layers + 4; }

// Zeroed phase counters in the arena (placement-constructed on first use of
// the memory; RunChunk resets them).
inline PhaseCounter* TakeCounters(Arena& a, int64_t n) {
  float* p = a.Take(n * static_cast<int64_t>(sizeof(PhaseCounter) / 4));
  if (p == nullptr) return nullptr;
  return new (p) PhaseCounter[static_cast<size_t>(n)];
}

inline double MatrixBytes(std::initializer_list<const PackedLinear*> ws) {
  double b = 0;
  for (const PackedLinear* w : ws) {
    if (w != nullptr) b += static_cast<double>(w->packed_bytes());
  }
  return b;
}

inline int Rwkv4Threads(const Rwkv4CpuWeights& w) {
  double bytes = MatrixBytes({w.head});
  for (const Rwkv4CpuLayer& l : w.layers) {
    bytes += MatrixBytes({l.key, l.value, l.receptance, l.output, l.ffn_key,
                          l.ffn_receptance, l.ffn_value});
  }
  return CallThreads(bytes);
}

// One chunk of M rows on nt threads.
inline void Rwkv4RunChunk(const Rwkv4CpuWeights& w, int nt, int64_t M,
                          bool fork, const ChunkRows& cr,
                          const CpuStateRows& st) {
  const int64_t C = w.n_embd, F = w.ffn_dim;
  const int64_t phases = PhaseCount(static_cast<int64_t>(w.layers.size()));
  Arena sizing(nullptr);
  V4Buffers(sizing, M, cr.nb, C, F, nt);
  TakeCounters(sizing, phases);
  Arena arena(CpuForwardScratch(static_cast<size_t>(sizing.used())));
  const V4Buffers buf(arena, M, cr.nb, C, F, nt);
  PhaseCounter* counters = TakeCounters(arena, phases);
  RunChunk(nt, M, fork, counters, phases,
           [&](auto& ex) { Rwkv4Chunk(ex, w, buf, cr, st); });
}

inline void Rwkv4ForwardImpl(const Rwkv4CpuWeights& w, const int32_t* tokens,
                             int64_t B, int64_t T, const CpuStateRows& st,
                             float* logits) {
  const int64_t V = w.vocab;
  const int nt = Rwkv4Threads(w);
  const bool fp32 = w.head->format() == WeightFormat::kFloat32;
  ForEachChunk(
      B, T, fp32,
      [&](int64_t b0, int64_t nb, int64_t t0, int64_t ntok, bool fork) {
        ChunkRows cr;
        cr.b0 = b0;
        cr.SetUniform(nb, ntok);
        cr.tokens = tokens + b0 * T + t0;
        cr.logits =
            logits != nullptr && t0 + ntok == T ? logits + b0 * V : nullptr;
        Rwkv4RunChunk(w, nt, nb * ntok, fork, cr, st);
      });
}

// Segments laid end to end in one team chunk (rwkv_cpu_forward.h).
inline void SetSegments(const int32_t* tokens, const int32_t* lengths,
                        int64_t n, float* logits, ChunkRows* cr) {
  cr->b0 = 0;
  cr->nb = n;
  cr->tokens = tokens;
  cr->logits = logits;
  if (n < 1 || n > kTeamMaxRows) std::abort();  // the engine checks
  cr->row0[0] = 0;
  for (int64_t j = 0; j < n; ++j) {
    if (lengths[j] < 1) std::abort();
    cr->row0[j + 1] = cr->row0[j] + lengths[j];
  }
  if (cr->row0[n] > kTeamMaxRows) std::abort();
}

inline void Rwkv4SegmentsImpl(const Rwkv4CpuWeights& w, const int32_t* tokens,
                              const int32_t* lengths, int64_t n,
                              const CpuStateRows& st, float* logits) {
  ChunkRows cr;
  SetSegments(tokens, lengths, n, logits, &cr);
  Rwkv4RunChunk(w, Rwkv4Threads(w), cr.row0[n], /*fork=*/false, cr, st);
}

// ---------------------------------------------------------------------------
// RWKV-7.

enum { kV7AttShift = 0, kV7Kv, kV7FfnShift, kV7Components };

struct V7Buffers {
  // x: residual stream; xx: normalized rows; xr..xg: the six mixes (reused
  // later: xw/xa/xg take the LoRA outputs w, a, g; xr the v LoRA and then
  // the projections' outputs; xk the normalized kk, then the FFN input; xv
  // the WKV output y); r, k, v: projections; v_first: layer 0's v.
  float *x, *xx, *xr, *xw, *xk, *xv, *xa, *xg, *r, *k, *v, *v_first;
  float *w1o, *a1o, *g1o, *v1o, *k2, *xo, *prev;

  V7Buffers(Arena& a, int64_t M, int64_t nb, int64_t C, int64_t F,
            const int64_t lora[4], int nt) {
    for (float** p :
         {&x, &xx, &xr, &xw, &xk, &xv, &xa, &xg, &r, &k, &v, &v_first}) {
      *p = a.Take(M * C);
    }
    w1o = a.Take(M * lora[0]);
    a1o = a.Take(M * lora[1]);
    g1o = a.Take(M * lora[2]);
    v1o = a.Take(M * lora[3]);
    k2 = a.Take(M * F);
    xo = a.Take(nb * C);
    prev = a.Take(static_cast<int64_t>(nt) * C);
  }
};

// Per head h of the segment whose T rows start at row r0: decay, in-context
// rate, normalized kk, the key and value updates, the state update over the
// chunk's tokens, group norm, bonus and gate. Rows of head h are channels
// [h N, (h + 1) N).
inline void Rwkv7Head(const Rwkv7CpuLayer& l, bool first_layer, int64_t C,
                      int64_t N, int64_t r0, int64_t T, int64_t h,
                      const V7Buffers& b, float* S, const float* next_S) {
  const float decay_scale = -std::exp(-0.5f);
  const int64_t c0 = h * N;
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = (r0 + t) * C;
    // wl -> decay w (in xw), al -> a (in xa), k * k_k -> xk, v residual.
    Vec sq = Vec::Zero();
    ForLanes(c0, c0 + N, [&](int64_t c, int64_t ln) {
      const int64_t o = row + c;
      const Vec wv =
          Vec::Exp(Vec::Sigmoid(LoadL(l.w0 + c, ln) + LoadL(b.xw + o, ln)) *
                   Vec::Set(decay_scale));
      StoreL(wv, b.xw + o, ln);
      StoreL(Vec::Sigmoid(LoadL(l.a0 + c, ln) + LoadL(b.xa + o, ln)), b.xa + o,
             ln);
      const Vec kk = LoadL(b.k + o, ln) * LoadL(l.k_k + c, ln);
      StoreL(kk, b.xk + o, ln);
      sq = Vec::Fma(kk, kk, sq);  // masked lanes load as 0
      const Vec v = LoadL(b.v + o, ln);
      if (first_layer) {
        StoreL(v, b.v_first + o, ln);
      } else {
        const Vec gate =
            Vec::Sigmoid(LoadL(l.v0 + c, ln) + LoadL(b.xr + o, ln));
        StoreL(Vec::Fma(LoadL(b.v_first + o, ln) - v, gate, v), b.v + o, ln);
      }
    });
    const float norm = std::max(std::sqrt(Vec::ReduceAdd(sq)), 1e-12f);
    const Vec vn = Vec::Set(norm);
    ForLanes(c0, c0 + N, [&](int64_t c, int64_t ln) {
      const int64_t o = row + c;
      StoreL(LoadL(b.xk + o, ln) / vn, b.xk + o, ln);
      // k = k * (1 + (a - 1) * k_a)
      const Vec a = LoadL(b.xa + o, ln);
      const Vec one = Vec::Set(1.0f);
      StoreL(LoadL(b.k + o, ln) * Vec::Fma(a - one, LoadL(l.k_a + c, ln), one),
             b.k + o, ln);
    });
  }
  const int64_t off = r0 * C + c0;
  Wkv7Head(T, C, N, b.r + off, b.xw + off, b.k + off, b.v + off, b.xk + off,
           b.xa + off, S, b.xv + off, next_S);
  for (int64_t t = 0; t < T; ++t) {
    const int64_t row = (r0 + t) * C;
    Vec sum = Vec::Zero(), bonus = Vec::Zero();
    ForLanes(c0, c0 + N, [&](int64_t c, int64_t ln) {
      const int64_t o = row + c;
      sum = sum + LoadL(b.xv + o, ln);
      bonus = Vec::Fma(LoadL(b.r + o, ln) * LoadL(b.k + o, ln),
                       LoadL(l.r_k + c, ln), bonus);
    });
    const float mean = Vec::ReduceAdd(sum) / static_cast<float>(N);
    const Vec vm = Vec::Set(mean);
    Vec var = Vec::Zero();
    ForLanes(c0, c0 + N, [&](int64_t c, int64_t ln) {
      const Vec d = Vec::KeepFirst(LoadL(b.xv + row + c, ln) - vm, ln);
      var = Vec::Fma(d, d, var);
    });
    const float rstd =
        1.0f / std::sqrt(Vec::ReduceAdd(var) / static_cast<float>(N) + 64e-5f);
    const Vec vr = Vec::Set(rstd), vb = Vec::Set(Vec::ReduceAdd(bonus));
    ForLanes(c0, c0 + N, [&](int64_t c, int64_t ln) {
      const int64_t o = row + c;
      const Vec y = Vec::Fma((LoadL(b.xv + o, ln) - vm) * vr,
                             LoadL(l.ln_x_w + c, ln), LoadL(l.ln_x_b + c, ln));
      StoreL(Vec::Fma(vb, LoadL(b.v + o, ln), y) * LoadL(b.xg + o, ln),
             b.xv + o, ln);
    });
  }
}

template <typename Exec>
void Rwkv7Chunk(Exec& ex, const Rwkv7CpuWeights& w, const V7Buffers& b,
                const ChunkRows& cr, const CpuStateRows& st) {
  const int64_t C = w.n_embd, F = w.ffn_dim, M = ex.m();
  const int64_t H = w.n_head, N = w.head_size;
  constexpr int kN = kV7Components;
  Embed(ex, w.emb, C, cr, b.x);
  for (int64_t i = 0; i < static_cast<int64_t>(w.layers.size()); ++i) {
    const Rwkv7CpuLayer& l = w.layers[i];
    const bool first = i == 0;
    ex.Rows(M, [&](int64_t m0, int64_t m1, int th) {
      NormAndShift(b.x, l.ln1_w, l.ln1_b, C, cr, st, kN, kV7AttShift, i, m0, m1,
                   b.xx, b.prev + th * C,
                   [&](int64_t m, const float* xx, const float* sx) {
                     // x + (x_prev - x) * mix, for r, w, k, v, a, g.
                     float* outs[6] = {b.xr, b.xw, b.xk, b.xv, b.xa, b.xg};
                     for (int q = 0; q < 6; ++q) {
                       MixRow(sx, xx, l.att_mix + q * C, C, outs[q] + m * C);
                     }
                   });
    });
    ex.Gemms(std::array<Gemm, 7>{{{l.receptance, b.xr, b.r, M},
                                  {l.key, b.xk, b.k, M},
                                  {l.value, b.xv, b.v, M},
                                  {l.w1, b.xw, b.w1o, M},
                                  {l.a1, b.xa, b.a1o, M},
                                  {l.g1, b.xg, b.g1o, M},
                                  {first ? nullptr : l.v1, b.xv, b.v1o, M}}},
             /*balanced=*/true, [&](const std::array<ColRange, 7>& cols) {
               const int64_t dw = l.w1->n(), dg = l.g1->n();
               ForCols(M, dw, cols[3], [&](int64_t o, int64_t, int64_t ln) {
                 StoreL(Vec::Tanh(LoadL(b.w1o + o, ln)), b.w1o + o, ln);
               });
               ForCols(M, dg, cols[5], [&](int64_t o, int64_t, int64_t ln) {
                 StoreL(Vec::Sigmoid(LoadL(b.g1o + o, ln)), b.g1o + o, ln);
               });
               SaveShift(b.xx, C, cr, st, kN, kV7AttShift, i, cols[0]);
             });
    ex.Gemms(std::array<Gemm, 4>{{{l.w2, b.w1o, b.xw, M},
                                  {l.a2, b.a1o, b.xa, M},
                                  {l.g2, b.g1o, b.xg, M},
                                  {first ? nullptr : l.v2, b.v1o, b.xr, M}}},
             /*balanced=*/true, [](const std::array<ColRange, 4>&) {});
    ex.Rows(cr.nb * H, [&](int64_t u0, int64_t u1, int) {
      for (int64_t u = u0; u < u1; ++u) {
        const int64_t j = u / H, h = u % H;
        const int64_t nj = (u + 1) / H, nh = (u + 1) % H;
        Rwkv7Head(l, first, C, N, cr.row0[j], cr.row0[j + 1] - cr.row0[j], h, b,
                  StateAt(st, kN, cr, j, kV7Kv, i) + h * N * N,
                  u + 1 < u1 ? StateAt(st, kN, cr, nj, kV7Kv, i) + nh * N * N
                             : nullptr);
      }
    });
    ex.Gemms(std::array<Gemm, 1>{{{l.output, b.xv, b.xr, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 1>& cols) {
               AddResidual(M, C, cols[0], b.xr, nullptr, b.x);
             });
    // Channel mixing.
    ex.Rows(M, [&](int64_t m0, int64_t m1, int th) {
      NormAndShift(b.x, l.ln2_w, l.ln2_b, C, cr, st, kN, kV7FfnShift, i, m0, m1,
                   b.xx, b.prev + th * C,
                   [&](int64_t m, const float* xx, const float* sx) {
                     MixRow(sx, xx, l.ffn_mix_k, C, b.xk + m * C);
                   });
    });
    ex.Gemms(std::array<Gemm, 1>{{{l.ffn_key, b.xk, b.k2, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 1>& cols) {
               ReluSquare(M, F, cols[0], b.k2);
             });
    ex.Gemms(std::array<Gemm, 1>{{{l.ffn_value, b.k2, b.xr, M}}},
             /*balanced=*/false, [&](const std::array<ColRange, 1>& cols) {
               AddResidual(M, C, cols[0], b.xr, nullptr, b.x);
               SaveShift(b.xx, C, cr, st, kN, kV7FfnShift, i, cols[0]);
             });
  }
  Head(ex, b.x, w.ln_out_w, w.ln_out_b, w.head, C, cr, b.xo);
}

// Threads for a call and the largest LoRA widths (w, a, g, v).
inline int Rwkv7Threads(const Rwkv7CpuWeights& w, int64_t lora[4]) {
  double bytes = MatrixBytes({w.head});
  for (int q = 0; q < 4; ++q) lora[q] = 0;
  for (const Rwkv7CpuLayer& l : w.layers) {
    bytes +=
        MatrixBytes({l.receptance, l.key, l.value, l.output, l.w1, l.w2, l.a1,
                     l.a2, l.v1, l.v2, l.g1, l.g2, l.ffn_key, l.ffn_value});
    lora[0] = std::max(lora[0], l.w1->n());
    lora[1] = std::max(lora[1], l.a1->n());
    lora[2] = std::max(lora[2], l.g1->n());
    if (l.v1 != nullptr) lora[3] = std::max(lora[3], l.v1->n());
  }
  return CallThreads(bytes);
}

inline void Rwkv7RunChunk(const Rwkv7CpuWeights& w, int nt,
                          const int64_t lora[4], int64_t M, bool fork,
                          const ChunkRows& cr, const CpuStateRows& st) {
  const int64_t C = w.n_embd, F = w.ffn_dim;
  const int64_t phases = PhaseCount(static_cast<int64_t>(w.layers.size()));
  Arena sizing(nullptr);
  V7Buffers(sizing, M, cr.nb, C, F, lora, nt);
  TakeCounters(sizing, phases);
  Arena arena(CpuForwardScratch(static_cast<size_t>(sizing.used())));
  const V7Buffers buf(arena, M, cr.nb, C, F, lora, nt);
  PhaseCounter* counters = TakeCounters(arena, phases);
  RunChunk(nt, M, fork, counters, phases,
           [&](auto& ex) { Rwkv7Chunk(ex, w, buf, cr, st); });
}

inline void Rwkv7ForwardImpl(const Rwkv7CpuWeights& w, const int32_t* tokens,
                             int64_t B, int64_t T, const CpuStateRows& st,
                             float* logits) {
  const int64_t V = w.vocab;
  int64_t lora[4];
  const int nt = Rwkv7Threads(w, lora);
  const bool fp32 = w.head->format() == WeightFormat::kFloat32;
  ForEachChunk(
      B, T, fp32,
      [&](int64_t b0, int64_t nb, int64_t t0, int64_t ntok, bool fork) {
        ChunkRows cr;
        cr.b0 = b0;
        cr.SetUniform(nb, ntok);
        cr.tokens = tokens + b0 * T + t0;
        cr.logits =
            logits != nullptr && t0 + ntok == T ? logits + b0 * V : nullptr;
        Rwkv7RunChunk(w, nt, lora, nb * ntok, fork, cr, st);
      });
}

inline void Rwkv7SegmentsImpl(const Rwkv7CpuWeights& w, const int32_t* tokens,
                              const int32_t* lengths, int64_t n,
                              const CpuStateRows& st, float* logits) {
  int64_t lora[4];
  const int nt = Rwkv7Threads(w, lora);
  ChunkRows cr;
  SetSegments(tokens, lengths, n, logits, &cr);
  Rwkv7RunChunk(w, nt, lora, cr.row0[n], /*fork=*/false, cr, st);
}

#endif  // RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_IMPL_H_
