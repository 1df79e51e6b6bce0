#include "engine/internal/cpu_linear.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <tuple>
#include <unordered_map>
#include <vector>

#if RWKV_HAVE_ONEDNN
#include "oneapi/dnnl/dnnl.h"
#include "oneapi/dnnl/dnnl.hpp"
#endif

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace rwkv::engine::internal {
namespace {

// ---------------------------------------------------------------------------
// Layout constants. The blocked layout is oneDNN's BA16a64b for the weights
// of a matmul with dims {K, N}: float (k, n) lives at
//   (n / 64) * Kp * 64 + k * 64 + n % 64,    Kp = round_up(K, 16),
// N padded to a multiple of 64; padding is zero.
constexpr int64_t kPanel = 64;   // columns of W^T per panel (4 zmm)
constexpr int64_t kKBlock = 16;  // K padding of the blocked layout
constexpr int kMaxTile = 6;      // rows of x per register tile (6 x 4 zmm)
constexpr int64_t kKc = 128;     // K block when M spans several tiles
// Software prefetch distance (floats) ahead of the streamed panel.
constexpr int64_t kPrefetchFloats = 64 * 24;
// Largest M served by the native kernel under LinearKernel::kAuto.
constexpr int64_t kNativeMaxRowsBlocked = 128;
constexpr int64_t kNativeMaxRowsPortable = 1;

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct FreeDeleter {
  void operator()(float* p) const { std::free(p); }
};
using FloatBuffer = std::unique_ptr<float, FreeDeleter>;

// 64-byte aligned; buffers of 2 MiB and more are 2 MiB aligned and asked to
// be backed by transparent huge pages (fewer TLB misses while streaming).
FloatBuffer AllocFloats(size_t count) {
  size_t bytes = std::max<size_t>(count * sizeof(float), 64);
  size_t align = 64;
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= kHuge) align = kHuge;
  bytes = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHuge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return FloatBuffer(static_cast<float*>(p));
}

// Threads for a call that touches `bytes` of weights m times: small problems
// run on the calling thread only (an OpenMP fork costs a few microseconds).
int ThreadsFor(double work_bytes, int64_t max_parallel) {
  int nt = omp_in_parallel() ? 1 : omp_get_max_threads();
  if (work_bytes < 64.0 * 1024) nt = 1;
  return static_cast<int>(
      std::max<int64_t>(1, std::min<int64_t>(nt, max_parallel)));
}

}  // namespace

struct PackedLinearData {
  int64_t n = 0;
  int64_t k = 0;
  int64_t kp = 0;      // padded K (blocked) or K
  int64_t panels = 0;  // 64-column panels (blocked)
  bool blocked = false;
  size_t floats = 0;
  FloatBuffer buf;
};

bool CpuHasAvx512() {
  static const bool has = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") != 0;
  }();
  return has;
}

bool HaveOneDnn() {
#if RWKV_HAVE_ONEDNN
  return true;
#else
  return false;
#endif
}

// ---------------------------------------------------------------------------
// Packing.

PackedLinear PackedLinear::Pack(const float* w, int64_t n, int64_t k,
                                LinearBackend backend) {
  auto d = std::make_shared<PackedLinearData>();
  d->n = n;
  d->k = k;
  d->blocked = backend == LinearBackend::kAuto && CpuHasAvx512();
  if (d->blocked) {
    d->kp = RoundUp(std::max<int64_t>(k, 1), kKBlock);
    d->panels = (n + kPanel - 1) / kPanel;
    d->floats = static_cast<size_t>(d->panels * d->kp * kPanel);
  } else {
    d->kp = k;
    d->panels = 0;
    d->floats = static_cast<size_t>(n * k);
  }
  d->buf = AllocFloats(d->floats);
  float* out = d->buf.get();
  if (d->blocked) {
    const int64_t kp = d->kp;
    const int64_t panels = d->panels;
#pragma omp parallel for schedule(static)
    for (int64_t p = 0; p < panels; ++p) {
      float* dst = out + p * kp * kPanel;
      std::memset(dst, 0, sizeof(float) * kp * kPanel);
      const int64_t n0 = p * kPanel;
      const int64_t cols = std::min(kPanel, n - n0);
      // Transpose a [cols, k] row block into [kp, 64].
      for (int64_t c = 0; c < cols; ++c) {
        const float* src = w + (n0 + c) * k;
        for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + c] = src[kk];
      }
    }
  } else if (d->floats > 0) {
    std::memcpy(out, w, sizeof(float) * d->floats);
  }
  PackedLinear result;
  result.data_ = std::move(d);
  return result;
}

int64_t PackedLinear::n() const { return data_ ? data_->n : 0; }
int64_t PackedLinear::k() const { return data_ ? data_->k : 0; }
size_t PackedLinear::packed_bytes() const {
  return data_ ? data_->floats * sizeof(float) : 0;
}
bool PackedLinear::blocked() const { return data_ && data_->blocked; }
const float* PackedLinear::packed_data() const {
  return data_ ? data_->buf.get() : nullptr;
}

namespace {

// ---------------------------------------------------------------------------
// Native AVX-512 kernel on the blocked layout.

#define RWKV_AVX512 __attribute__((target("avx512f")))

// Software prefetch of the cache lines of [begin, end), issued evenly over
// the k steps of a tile kernel call: `lines` prefetches in `kc` steps
// (Bresenham), so that the request rate stays smooth.
struct PrefetchRange {
  const char* begin = nullptr;
  const char* end = nullptr;
  int64_t lines = 0;
};

// y[r, 0:cols] (+)= sum_{kk < kc} x[r, kk] * panel[kk, 0:64] for r < MR.
// Each accumulator sums in k order, so a row's result does not depend on M,
// on the tiling or on the thread count.
template <int MR, int kHint>
RWKV_AVX512 void TileKernel(const float* x, int64_t ldx, const float* panel,
                            int64_t kc, float* y, int64_t ldy,
                            const __mmask16* masks, bool accumulate,
                            PrefetchRange pf) {
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < 4; ++j) {
      acc[r][j] = accumulate
                      ? _mm512_maskz_loadu_ps(masks[j], y + r * ldy + 16 * j)
                      : _mm512_setzero_ps();
    }
  }
  const float* wk = panel;
  const char* p = pf.begin;
  int64_t credit = 0;
  for (int64_t kk = 0; kk < kc; ++kk, wk += kPanel) {
    credit += pf.lines;
    for (; credit >= kc; credit -= kc, p += 64) {
      // GCC declares _mm_prefetch(const void*, enum _mm_hint), clang a macro
      // taking an int constant.
#if defined(__clang__)
      if (p < pf.end) _mm_prefetch(p, kHint);
#else
      if (p < pf.end) _mm_prefetch(p, static_cast<_mm_hint>(kHint));
#endif
    }
    const __m512 w0 = _mm512_load_ps(wk);
    const __m512 w1 = _mm512_load_ps(wk + 16);
    const __m512 w2 = _mm512_load_ps(wk + 32);
    const __m512 w3 = _mm512_load_ps(wk + 48);
    for (int r = 0; r < MR; ++r) {
      const __m512 b = _mm512_set1_ps(x[r * ldx + kk]);
      acc[r][0] = _mm512_fmadd_ps(b, w0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(b, w1, acc[r][1]);
      acc[r][2] = _mm512_fmadd_ps(b, w2, acc[r][2]);
      acc[r][3] = _mm512_fmadd_ps(b, w3, acc[r][3]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < 4; ++j) {
      _mm512_mask_storeu_ps(y + r * ldy + 16 * j, masks[j], acc[r][j]);
    }
  }
}

template <int kHint>
RWKV_AVX512 void Tile(int rows, const float* x, int64_t ldx, const float* panel,
                      int64_t kc, float* y, int64_t ldy, const __mmask16* masks,
                      bool accumulate, PrefetchRange pf) {
  switch (rows) {
    case 1:
      return TileKernel<1, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
    case 2:
      return TileKernel<2, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
    case 3:
      return TileKernel<3, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
    case 4:
      return TileKernel<4, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
    case 5:
      return TileKernel<5, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
    default:
      return TileKernel<6, kHint>(x, ldx, panel, kc, y, ldy, masks, accumulate,
                                  pf);
  }
}

// Rows of the t-th of `tiles` balanced tiles covering m rows.
inline int64_t TileBegin(int64_t m, int64_t tiles, int64_t t) {
  return m * t / tiles;
}

RWKV_AVX512 void NativeBlockedPanels(const PackedLinearData& d, const float* x,
                                     int64_t m, float* y, int64_t p0,
                                     int64_t p1) {
  const int64_t k = d.k;
  const int64_t n = d.n;
  const int64_t tiles = (m + kMaxTile - 1) / kMaxTile;
  const char* range_end =
      reinterpret_cast<const char*>(d.buf.get() + p1 * d.kp * kPanel);
  for (int64_t p = p0; p < p1; ++p) {
    const float* panel = d.buf.get() + p * d.kp * kPanel;
    const int64_t n0 = p * kPanel;
    const int64_t cols = std::min(kPanel, n - n0);
    __mmask16 masks[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t c = std::clamp<int64_t>(cols - 16 * j, 0, 16);
      masks[j] = static_cast<__mmask16>((1u << c) - 1u);
    }
    if (tiles == 1) {
      // One pass over the panel: stream it with prefetch `kPrefetchFloats`
      // ahead.
      PrefetchRange pf;
      pf.begin = reinterpret_cast<const char*>(panel + kPrefetchFloats);
      pf.end = std::min(pf.begin + k * kPanel * 4, range_end);
      pf.lines = 4 * k;
      Tile<_MM_HINT_T0>(static_cast<int>(m), x, k, panel, k, y + n0, n, masks,
                        false, pf);
      continue;
    }
    // Several tiles: K blocks (32 KiB of the panel) that stay in L1 while
    // all tiles of x go over them. Meanwhile the tiles prefetch the next block
    // (contiguous: the rest of this panel, then the next panel) into L2, so
    // that memory traffic overlaps compute.
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = std::min(kKc, k - k0);
      const float* block = panel + k0 * kPanel;
      const char* next = reinterpret_cast<const char*>(block + kc * kPanel);
      const int64_t next_lines = kc * 4;
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t r0 = TileBegin(m, tiles, t);
        const int64_t rows = TileBegin(m, tiles, t + 1) - r0;
        const float* xt = x + r0 * k + k0;
        float* yt = y + r0 * n + n0;
        // Tile t prefetches the t-th share of the next block's lines.
        const int64_t l0 = next_lines * t / tiles;
        const int64_t l1 = next_lines * (t + 1) / tiles;
        PrefetchRange pf;
        pf.begin = next + l0 * 64;
        pf.end = std::min(next + l1 * 64, range_end);
        pf.lines = l1 - l0;
        Tile<_MM_HINT_T1>(static_cast<int>(rows), xt, k, block, kc, yt, n,
                          masks, k0 > 0, pf);
      }
    }
  }
}

void NativeBlocked(const PackedLinearData& d, const float* x, int64_t m,
                   float* y) {
  const int nt = ThreadsFor(static_cast<double>(d.floats) * 4.0 * m, d.panels);
  if (nt == 1) {
    NativeBlockedPanels(d, x, m, y, 0, d.panels);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nth = omp_get_num_threads();
    NativeBlockedPanels(d, x, m, y, d.panels * t / nth,
                        d.panels * (t + 1) / nth);
  }
}

// ---------------------------------------------------------------------------
// Portable kernel on the row-major layout (no AVX-512): dot products with
// eight explicit partial sums so the compiler can vectorize without
// reassociation.

void PortableRows(const PackedLinearData& d, const float* x, int64_t m,
                  float* y, int64_t n0, int64_t n1) {
  const int64_t k = d.k;
  const int64_t k8 = k / 8 * 8;
  for (int64_t j = n0; j < n1; ++j) {
    const float* wr = d.buf.get() + j * k;
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = x + r * k;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      for (int64_t kk = 0; kk < k8; kk += 8) {
        for (int l = 0; l < 8; ++l) s[l] += xr[kk + l] * wr[kk + l];
      }
      float tail = 0;
      for (int64_t kk = k8; kk < k; ++kk) tail += xr[kk] * wr[kk];
      y[r * d.n + j] = ((s[0] + s[4]) + (s[1] + s[5])) +
                       ((s[2] + s[6]) + (s[3] + s[7])) + tail;
    }
  }
}

void NativePortable(const PackedLinearData& d, const float* x, int64_t m,
                    float* y) {
  const int nt = ThreadsFor(static_cast<double>(d.floats) * 4.0 * m, d.n);
  if (nt == 1) {
    PortableRows(d, x, m, y, 0, d.n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nth = omp_get_num_threads();
    PortableRows(d, x, m, y, d.n * t / nth, d.n * (t + 1) / nth);
  }
}

// ---------------------------------------------------------------------------
// oneDNN matmul on the blocked layout; primitives cached process-wide.
// Without oneDNN (RWKV_USE_ONEDNN=OFF) the native kernels serve every M.

#if RWKV_HAVE_ONEDNN
dnnl::engine& CpuEngine() {
  static dnnl::engine* eng = new dnnl::engine(dnnl::engine::kind::cpu, 0);
  return *eng;
}

struct MatmulEntry {
  bool usable = false;  // false: no optimized implementation, use native
  dnnl::matmul prim;
  dnnl::memory::desc src_md, wei_md, dst_md;
  size_t scratch_bytes = 0;
};

using MatmulKey = std::tuple<int64_t, int64_t, int64_t, int>;

std::shared_ptr<const MatmulEntry> CreateMatmul(const MatmulKey& key) {
  auto e = std::make_shared<MatmulEntry>();
  const auto [m, n, k, nt] = key;
  using tag = dnnl::memory::format_tag;
  using dt = dnnl::memory::data_type;
  try {
    e->src_md = dnnl::memory::desc({m, k}, dt::f32, tag::ab);
    e->wei_md = dnnl::memory::desc({k, n}, dt::f32, tag::BA16a64b);
    e->dst_md = dnnl::memory::desc({m, n}, dt::f32, tag::ab);
    dnnl::primitive_attr attr;
    attr.set_scratchpad_mode(dnnl::scratchpad_mode::user);
    dnnl::matmul::primitive_desc pd(
        dnnl::matmul::desc(e->src_md, e->wei_md, e->dst_md), attr, CpuEngine());
    const char* impl = pd.impl_info_str();
    if (impl == nullptr || std::strncmp(impl, "ref", 3) == 0) return e;
    e->scratch_bytes = pd.scratchpad_desc().get_size();
    e->prim = dnnl::matmul(pd);
    e->usable = true;
  } catch (const dnnl::error&) {
    e->usable = false;
  }
  return e;
}

std::shared_ptr<const MatmulEntry> GetMatmul(int64_t m, int64_t n, int64_t k) {
  static std::mutex mu;
  static auto* cache =
      new std::map<MatmulKey, std::shared_ptr<const MatmulEntry>>();
  const MatmulKey key{m, n, k, omp_get_max_threads()};
  {
    std::lock_guard<std::mutex> lock(mu);
    auto it = cache->find(key);
    if (it != cache->end()) return it->second;
  }
  auto e = CreateMatmul(key);  // outside the lock: JIT takes a while
  std::lock_guard<std::mutex> lock(mu);
  if (cache->size() >= 1024)
    cache->clear();  // crude bound; entries are
                     // shared_ptr-held by users
  return cache->emplace(key, e).first->second;
}

struct ScratchDeleter {
  void operator()(char* p) const { std::free(p); }
};

char* ThreadScratch(size_t bytes) {
  thread_local std::unique_ptr<char, ScratchDeleter> buf;
  thread_local size_t cap = 0;
  if (bytes > cap) {
    cap = (bytes + 4095) / 4096 * 4096;
    buf.reset(static_cast<char*>(std::aligned_alloc(64, cap)));
    if (!buf) {
      cap = 0;
      throw std::bad_alloc();
    }
  }
  return buf.get();
}

// Returns false when oneDNN has no usable implementation.
bool OneDnnBlocked(const PackedLinearData& d, const float* x, int64_t m,
                   float* y) {
  auto e = GetMatmul(m, d.n, d.k);
  if (!e->usable) return false;
  dnnl::engine& eng = CpuEngine();
  thread_local dnnl::stream strm(CpuEngine());
  dnnl::memory src(e->src_md, eng, const_cast<float*>(x));
  dnnl::memory wei(e->wei_md, eng, const_cast<float*>(d.buf.get()));
  dnnl::memory dst(e->dst_md, eng, y);
  std::unordered_map<int, dnnl::memory> args = {
      {DNNL_ARG_SRC, src}, {DNNL_ARG_WEIGHTS, wei}, {DNNL_ARG_DST, dst}};
  if (e->scratch_bytes > 0) {
    args.emplace(DNNL_ARG_SCRATCHPAD,
                 dnnl::memory({{static_cast<int64_t>(e->scratch_bytes)},
                               dnnl::memory::data_type::u8,
                               dnnl::memory::format_tag::a},
                              eng, ThreadScratch(e->scratch_bytes)));
  }
  e->prim.execute(strm, args);
  strm.wait();
  return true;
}

void OneDnnPortable(const PackedLinearData& d, const float* x, int64_t m,
                    float* y) {
  dnnl_sgemm('N', 'T', m, d.n, d.k, 1.0f, x, d.k, d.buf.get(), d.k, 0.0f, y,
             d.n);
}
#else
bool OneDnnBlocked(const PackedLinearData&, const float*, int64_t, float*) {
  return false;
}

void OneDnnPortable(const PackedLinearData& d, const float* x, int64_t m,
                    float* y) {
  NativePortable(d, x, m, y);
}
#endif  // RWKV_HAVE_ONEDNN

}  // namespace

int64_t NativeKernelMaxRows(const PackedLinear& w) {
  return w.blocked() ? kNativeMaxRowsBlocked : kNativeMaxRowsPortable;
}

void LinearForward(const PackedLinear& w, const float* x, int64_t m, float* y,
                   LinearKernel kernel) {
  const PackedLinearData* d = w.data();
  if (d == nullptr || m <= 0 || d->n == 0) return;
  if (d->k == 0) {
    std::fill(y, y + m * d->n, 0.0f);
    return;
  }
  if (kernel == LinearKernel::kAuto) {
    kernel = m <= NativeKernelMaxRows(w) ? LinearKernel::kNative
                                         : LinearKernel::kOneDnn;
  }
  if (d->blocked) {
    if (kernel == LinearKernel::kOneDnn && OneDnnBlocked(*d, x, m, y)) return;
    NativeBlocked(*d, x, m, y);
  } else {
    if (kernel == LinearKernel::kOneDnn) {
      OneDnnPortable(*d, x, m, y);
    } else {
      NativePortable(*d, x, m, y);
    }
  }
}

// ---------------------------------------------------------------------------
// Measurements.

namespace {

RWKV_AVX512 float SumAvx512(const float* a, size_t b, size_t e) {
  __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;
  size_t i = b;
  for (; i + 64 <= e; i += 64) {
    s0 = _mm512_add_ps(s0, _mm512_load_ps(a + i));
    s1 = _mm512_add_ps(s1, _mm512_load_ps(a + i + 16));
    s2 = _mm512_add_ps(s2, _mm512_load_ps(a + i + 32));
    s3 = _mm512_add_ps(s3, _mm512_load_ps(a + i + 48));
  }
  alignas(64) float lanes[16];
  _mm512_store_ps(lanes,
                  _mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));
  float s = 0;
  for (float v : lanes) s += v;
  for (; i < e; ++i) s += a[i];
  return s;
}

float SumPortable(const float* a, size_t b, size_t e) {
  float s[16] = {};
  size_t i = b;
  for (; i + 16 <= e; i += 16) {
    for (int l = 0; l < 16; ++l) s[l] += a[i + l];
  }
  float t = 0;
  for (int l = 0; l < 16; ++l) t += s[l];
  for (; i < e; ++i) t += a[i];
  return t;
}

}  // namespace

double MeasureReadBandwidthGBs(size_t bytes, int repeats) {
  const size_t n = std::max<size_t>(bytes / sizeof(float), 1024) / 64 * 64;
  FloatBuffer buf = AllocFloats(n);
  float* a = buf.get();
  const int nt = omp_get_max_threads();
  // First touch from the threads that read it.
#pragma omp parallel num_threads(nt)
  {
    const size_t t = omp_get_thread_num(), nth = omp_get_num_threads();
    const size_t b = n / 64 * t / nth * 64, e = n / 64 * (t + 1) / nth * 64;
    for (size_t i = b; i < e; ++i) a[i] = 1.0f;
  }
  const bool avx512 = CpuHasAvx512();
  double best = 1e30;
  volatile float sink = 0;
  for (int r = 0; r < std::max(repeats, 1); ++r) {
    float total = 0;
    const double t0 = Now();
#pragma omp parallel num_threads(nt) reduction(+ : total)
    {
      const size_t t = omp_get_thread_num(), nth = omp_get_num_threads();
      const size_t b = n / 64 * t / nth * 64, e = n / 64 * (t + 1) / nth * 64;
      total += avx512 ? SumAvx512(a, b, e) : SumPortable(a, b, e);
    }
    best = std::min(best, Now() - t0);
    sink = sink + total;
  }
  return static_cast<double>(n) * sizeof(float) / best / 1e9;
}

GemmPeak MeasureGemmPeak(int n, int repeats) {
  const size_t nn = static_cast<size_t>(n) * n;
  FloatBuffer a = AllocFloats(nn), b = AllocFloats(nn), c = AllocFloats(nn);
  for (size_t i = 0; i < nn; ++i) {
    a.get()[i] = static_cast<float>(i % 7) * 0.1f;
    b.get()[i] = static_cast<float>(i % 5) * 0.1f;
  }
  const double flops = 2.0 * n * n * static_cast<double>(n);
  GemmPeak peak;
  // dnnl_sgemm (plain layouts; packs B on every call). Without oneDNN: the
  // native kernels on the blocked layout, the best this build has.
  double best = 1e30;
#if RWKV_HAVE_ONEDNN
  for (int r = 0; r < std::max(repeats, 1) + 1; ++r) {
    const double t0 = Now();
    dnnl_sgemm('N', 'T', n, n, n, 1.0f, a.get(), n, b.get(), n, 0.0f, c.get(),
               n);
    if (r > 0) best = std::min(best, Now() - t0);  // first run: warm-up
  }
#else
  {
    PackedLinear w = PackedLinear::Pack(b.get(), n, n);
    for (int r = 0; r < std::max(repeats, 1) + 1; ++r) {
      const double t0 = Now();
      LinearForward(w, a.get(), n, c.get(), LinearKernel::kNative);
      if (r > 0) best = std::min(best, Now() - t0);
    }
  }
#endif
  peak.sgemm_gflops = flops / best / 1e9;
  // Matmul primitive with blocked (prepacked) weights, as LinearForward.
  if (CpuHasAvx512() && HaveOneDnn()) {
    PackedLinear w = PackedLinear::Pack(b.get(), n, n);
    best = 1e30;
    for (int r = 0; r < std::max(repeats, 1) + 1; ++r) {
      const double t0 = Now();
      LinearForward(w, a.get(), n, c.get(), LinearKernel::kOneDnn);
      if (r > 0) best = std::min(best, Now() - t0);
    }
    peak.matmul_gflops = flops / best / 1e9;
  }
  return peak;
}

double MeasureGemmPeakGflops(int n, int repeats) {
  const GemmPeak p = MeasureGemmPeak(n, repeats);
  return std::max(p.sgemm_gflops, p.matmul_gflops);
}

}  // namespace rwkv::engine::internal
