#include "engine/internal/cpu_linear.h"

#include <immintrin.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
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

// GCC 12's AVX-512 conversion intrinsics start from _mm512_undefined_*(),
// which -Wmaybe-uninitialized reports at every inlined use (a false
// positive).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

namespace rwkv::engine::internal {
namespace {

// ---------------------------------------------------------------------------
// Layout constants. The blocked layout of panel p (64 output columns) holds
// element (k, n) at p * Kp * 64 + k * 64 + n % 64, Kp = round_up(K, 16), N
// padded to a multiple of 64, padding zero; for fp32 this is oneDNN's
// BA16a64b for the weights of a matmul with dims {K, N}.
constexpr int64_t kPanel = kLinearPanelWidth;  // 4 zmm of fp32
constexpr int64_t kKBlock = 16;                // K padding of the layout
constexpr int64_t kKc = 128;  // K block when M spans several tiles
static_assert(kInt8GroupSize == kKc,
              "the multi-tile kernel widens one int8 scale group per K block");
// Software prefetch distance (bytes) ahead of the streamed panel.
constexpr int64_t kPrefetchBytes = 64 * 24 * 4;
// Largest M served by the native kernel under LinearKernel::kAuto.
constexpr int64_t kNativeMaxRowsBlocked = 128;
constexpr int64_t kNativeMaxRowsPortable = 128;
constexpr int64_t kNativeMaxRowsAll = int64_t{1} << 62;

int64_t RoundUp(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

double Now() {
  return std::chrono::duration<double>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

struct FreeDeleter {
  void operator()(void* p) const { std::free(p); }
};
using ByteBuffer = std::unique_ptr<uint8_t, FreeDeleter>;
using FloatBuffer = std::unique_ptr<float, FreeDeleter>;

// 64-byte aligned; buffers of 2 MiB and more are 2 MiB aligned and asked to
// be backed by transparent huge pages (fewer TLB misses while streaming).
void* AllocAligned(size_t bytes) {
  bytes = std::max<size_t>(bytes, 64);
  size_t align = 64;
  constexpr size_t kHuge = size_t{2} << 20;
  if (bytes >= kHuge) align = kHuge;
  bytes = (bytes + align - 1) / align * align;
  void* p = std::aligned_alloc(align, bytes);
  if (p == nullptr) throw std::bad_alloc();
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (align == kHuge) madvise(p, bytes, MADV_HUGEPAGE);
#endif
  return p;
}

FloatBuffer AllocFloats(size_t count) {
  return FloatBuffer(static_cast<float*>(AllocAligned(count * sizeof(float))));
}

size_t ElementBytes(WeightFormat f) {
  switch (f) {
    case WeightFormat::kFloat32:
      return 4;
    case WeightFormat::kBFloat16:
      return 2;
    case WeightFormat::kInt8:
      return 1;
  }
  return 4;
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
  int64_t panels = 0;  // 64-column panels
  int64_t groups = 0;  // int8 scale groups along K
  bool blocked = false;
  WeightFormat format = WeightFormat::kFloat32;
  size_t elements = 0;  // weight elements held (with padding)
  ByteBuffer buf;       // the weights, in `format`
  FloatBuffer scales;   // int8: blocked [panels][groups][64], else [n][groups]

  const float* f32() const { return reinterpret_cast<const float*>(buf.get()); }
  const uint16_t* bf16() const {
    return reinterpret_cast<const uint16_t*>(buf.get());
  }
  const int8_t* i8() const {
    return reinterpret_cast<const int8_t*>(buf.get());
  }
  size_t scale_count() const {
    if (format != WeightFormat::kInt8) return 0;
    return static_cast<size_t>(blocked ? panels * groups * kPanel : n * groups);
  }
};

const char* WeightFormatName(WeightFormat format) {
  switch (format) {
    case WeightFormat::kFloat32:
      return "fp32";
    case WeightFormat::kBFloat16:
      return "bf16";
    case WeightFormat::kInt8:
      return "int8";
  }
  return "?";
}

bool CpuHasAvx512() {
  static const bool has = [] {
    // RWKV_NO_AVX512=1 runs the portable kernels and layouts on any CPU
    // (tests of the fallback path, comparisons).
    const char* off = std::getenv("RWKV_NO_AVX512");
    if (off != nullptr && off[0] != '\0' && off[0] != '0') return false;
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

uint16_t FloatToBf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u)
    return static_cast<uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}

float Bf16ToFloat(uint16_t b) {
  const uint32_t u = static_cast<uint32_t>(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void QuantizeInt8(const float* w, int64_t n, int64_t k, int8_t* q,
                  float* scales) {
  const int64_t groups = Int8Groups(k);
  for (int64_t j = 0; j < n; ++j) {
    const float* row = w + j * k;
    for (int64_t g = 0; g < groups; ++g) {
      const int64_t k0 = g * kInt8GroupSize;
      const int64_t k1 = std::min(k, k0 + kInt8GroupSize);
      float amax = 0.0f;
      for (int64_t kk = k0; kk < k1; ++kk)
        amax = std::max(amax, std::fabs(row[kk]));
      const float scale = amax / 127.0f;
      scales[j * groups + g] = scale;
      for (int64_t kk = k0; kk < k1; ++kk) {
        float v = scale > 0.0f ? std::nearbyint(row[kk] / scale) : 0.0f;
        v = std::min(127.0f, std::max(-127.0f, v));
        q[j * k + kk] = static_cast<int8_t>(v);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Packing.

namespace {

// Allocates d's buffers for its dims and format (d->n, k, format, blocked
// set), zero filled where padding exists.
void AllocatePacked(PackedLinearData* d) {
  d->panels = (d->n + kPanel - 1) / kPanel;
  d->groups = d->format == WeightFormat::kInt8 ? Int8Groups(d->k) : 0;
  if (d->blocked) {
    d->kp = RoundUp(std::max<int64_t>(d->k, 1), kKBlock);
    d->elements = static_cast<size_t>(d->panels * d->kp * kPanel);
  } else {
    d->kp = d->k;
    d->elements = static_cast<size_t>(d->n * d->k);
  }
  d->buf = ByteBuffer(static_cast<uint8_t*>(
      AllocAligned(d->elements * ElementBytes(d->format))));
  if (d->format == WeightFormat::kInt8)
    d->scales = AllocFloats(d->scale_count());
}

// Stores row-major source values (element type E, already in d's format)
// into d's layout. For int8, `scales` [n][groups] go along.
template <typename E>
void StoreLayout(PackedLinearData* d, const E* src, const float* scales) {
  E* out = reinterpret_cast<E*>(d->buf.get());
  const int64_t n = d->n, k = d->k;
  if (!d->blocked) {
    if (d->elements > 0) std::memcpy(out, src, sizeof(E) * d->elements);
    if (scales != nullptr) {
      std::memcpy(d->scales.get(), scales, sizeof(float) * d->scale_count());
    }
    return;
  }
  const int64_t kp = d->kp, panels = d->panels, groups = d->groups;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    E* dst = out + p * kp * kPanel;
    std::memset(static_cast<void*>(dst), 0, sizeof(E) * kp * kPanel);
    const int64_t n0 = p * kPanel;
    const int64_t cols = std::min(kPanel, n - n0);
    // Transpose a [cols, k] row block into [kp, 64].
    for (int64_t c = 0; c < cols; ++c) {
      const E* s = src + (n0 + c) * k;
      for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanel + c] = s[kk];
    }
    if (scales != nullptr) {
      float* sd = d->scales.get() + p * groups * kPanel;
      std::memset(sd, 0, sizeof(float) * groups * kPanel);
      for (int64_t c = 0; c < cols; ++c) {
        for (int64_t g = 0; g < groups; ++g) {
          sd[g * kPanel + c] = scales[(n0 + c) * groups + g];
        }
      }
    }
  }
}

}  // namespace

PackedLinear PackedLinear::Pack(const float* w, int64_t n, int64_t k,
                                LinearBackend backend, WeightFormat format) {
  if (format == WeightFormat::kInt8) {
    std::vector<int8_t> q(static_cast<size_t>(n * k));
    std::vector<float> s(static_cast<size_t>(n * Int8Groups(k)));
    QuantizeInt8(w, n, k, q.data(), s.data());
    return PackInt8(q.data(), s.data(), n, k, backend);
  }
  auto d = std::make_shared<PackedLinearData>();
  d->n = n;
  d->k = k;
  d->format = format;
  d->blocked = backend == LinearBackend::kAuto && CpuHasAvx512();
  AllocatePacked(d.get());
  if (format == WeightFormat::kBFloat16) {
    std::vector<uint16_t> b(static_cast<size_t>(n * k));
    for (size_t i = 0; i < b.size(); ++i) b[i] = FloatToBf16(w[i]);
    StoreLayout<uint16_t>(d.get(), b.data(), nullptr);
  } else {
    StoreLayout<float>(d.get(), w, nullptr);
  }
  PackedLinear result;
  result.data_ = std::move(d);
  return result;
}

PackedLinear PackedLinear::PackInt8(const int8_t* q, const float* scales,
                                    int64_t n, int64_t k,
                                    LinearBackend backend) {
  auto d = std::make_shared<PackedLinearData>();
  d->n = n;
  d->k = k;
  d->format = WeightFormat::kInt8;
  d->blocked = backend == LinearBackend::kAuto && CpuHasAvx512();
  AllocatePacked(d.get());
  StoreLayout<int8_t>(d.get(), q, scales);
  PackedLinear result;
  result.data_ = std::move(d);
  return result;
}

int64_t PackedLinear::n() const { return data_ ? data_->n : 0; }
int64_t PackedLinear::k() const { return data_ ? data_->k : 0; }
WeightFormat PackedLinear::format() const {
  return data_ ? data_->format : WeightFormat::kFloat32;
}
size_t PackedLinear::packed_bytes() const {
  if (!data_) return 0;
  return data_->elements * ElementBytes(data_->format) +
         data_->scale_count() * sizeof(float);
}
bool PackedLinear::blocked() const { return data_ && data_->blocked; }
int64_t PackedLinear::panels() const { return data_ ? data_->panels : 0; }
const float* PackedLinear::packed_data() const {
  return data_ && data_->format == WeightFormat::kFloat32 ? data_->f32()
                                                          : nullptr;
}

namespace {

// ---------------------------------------------------------------------------
// Native AVX-512 kernels on the blocked layout.

// Software prefetch of the cache lines of [begin, end), issued evenly over
// the k steps of a tile kernel call: `lines` prefetches in `kc` steps
// (Bresenham), so that the request rate stays smooth.
struct PrefetchRange {
  const char* begin = nullptr;
  const char* end = nullptr;
  int64_t lines = 0;
};

// Loads the 16 weights j*16..j*16+15 of one k row of a panel as fp32.
// `s` holds the 4 scale vectors of the current int8 group.
template <WeightFormat F>
struct PanelRow;

template <>
struct PanelRow<WeightFormat::kFloat32> {
  using E = float;
  static constexpr int64_t kGroup = kNativeMaxRowsAll;  // no scale groups
  RWKV_AVX512 static inline __m512 Load(const E* wk, int j, const __m512*) {
    return _mm512_load_ps(wk + 16 * j);
  }
};

template <>
struct PanelRow<WeightFormat::kBFloat16> {
  using E = uint16_t;
  static constexpr int64_t kGroup = kNativeMaxRowsAll;
  RWKV_AVX512 static inline __m512 Load(const E* wk, int j, const __m512*) {
    const __m256i h =
        _mm256_load_si256(reinterpret_cast<const __m256i*>(wk + 16 * j));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
  }
};

template <>
struct PanelRow<WeightFormat::kInt8> {
  using E = int8_t;
  static constexpr int64_t kGroup = kInt8GroupSize;
  RWKV_AVX512 static inline __m512 Load(const E* wk, int j, const __m512* s) {
    const __m128i b =
        _mm_load_si128(reinterpret_cast<const __m128i*>(wk + 16 * j));
    return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(b)), s[j]);
  }
};

// One k step of a tile: acc[r] += x[r * ldx] * W row `wrow` (64 weights,
// format F) for r < MR.
template <int MR, WeightFormat F>
RWKV_AVX512 __attribute__((always_inline)) inline void TileStep(
    __m512 (&acc)[MR][4], const float* x, int64_t ldx,
    const typename PanelRow<F>::E* wrow, const __m512* s) {
  using Row = PanelRow<F>;
  const __m512 w0 = Row::Load(wrow, 0, s);
  const __m512 w1 = Row::Load(wrow, 1, s);
  const __m512 w2 = Row::Load(wrow, 2, s);
  const __m512 w3 = Row::Load(wrow, 3, s);
  for (int r = 0; r < MR; ++r) {
    const __m512 b = _mm512_set1_ps(x[r * ldx]);
    acc[r][0] = _mm512_fmadd_ps(b, w0, acc[r][0]);
    acc[r][1] = _mm512_fmadd_ps(b, w1, acc[r][1]);
    acc[r][2] = _mm512_fmadd_ps(b, w2, acc[r][2]);
    acc[r][3] = _mm512_fmadd_ps(b, w3, acc[r][3]);
  }
}

// y[r, 0:cols] (+)= sum_{kk < kc} x[r, kk] * W[k0 + kk, 0:64] for r < MR,
// with W the panel (format F) and k0 the first K row of `panel` (int8: the
// scale group of row k0 + kk is (k0 + kk) / kGroup; `scales` is the panel's
// [groups][64]). Each accumulator sums in k order, so a row's result does
// not depend on M, on the tiling or on the thread count.
template <int MR, int kHint, WeightFormat F, int kUnroll>
RWKV_AVX512 void TileKernel(const float* x, int64_t ldx,
                            const typename PanelRow<F>::E* panel,
                            const float* scales, int64_t k0, int64_t kc,
                            float* y, int64_t ldy, const __mmask16* masks,
                            bool accumulate, const PrefetchRange& pf) {
  using Row = PanelRow<F>;
  __m512 acc[MR][4];
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < 4; ++j) {
      acc[r][j] = accumulate
                      ? _mm512_maskz_loadu_ps(masks[j], y + r * ldy + 16 * j)
                      : _mm512_setzero_ps();
    }
  }
  const typename Row::E* wk = panel;
  const char* p = pf.begin;
  int64_t credit = 0;
  __m512 s[4] = {};
  for (int64_t g0 = 0; g0 < kc;) {
    const int64_t group =
        Row::kGroup == kNativeMaxRowsAll ? 0 : (k0 + g0) / Row::kGroup;
    const int64_t g1 = Row::kGroup == kNativeMaxRowsAll
                           ? kc
                           : std::min(kc, (group + 1) * Row::kGroup - k0);
    if constexpr (F == WeightFormat::kInt8) {
      for (int j = 0; j < 4; ++j) {
        s[j] = _mm512_load_ps(scales + group * kPanel + 16 * j);
      }
    }
    // Issues the prefetches that `steps` more k steps have earned.
    auto prefetch = [&](int64_t steps) {
      credit += steps * pf.lines;
      for (; credit >= kc; credit -= kc, p += 64) {
        // GCC declares _mm_prefetch(const void*, enum _mm_hint), clang a
        // macro taking an int constant.
#if defined(__clang__)
        if (p < pf.end) _mm_prefetch(p, kHint);
#else
        if (p < pf.end) _mm_prefetch(p, static_cast<_mm_hint>(kHint));
#endif
      }
    };
    int64_t kk = g0;
    if constexpr (kUnroll > 1) {
      // kUnroll k steps per iteration: the loop and prefetch bookkeeping
      // (scalar uops that compete with the FMAs for ports) once per kUnroll.
      for (; kk + kUnroll <= g1; kk += kUnroll, wk += kUnroll * kPanel) {
        prefetch(kUnroll);
        for (int u = 0; u < kUnroll; ++u) {
          TileStep<MR, F>(acc, x + kk + u, ldx, wk + u * kPanel, s);
        }
      }
    }
    for (; kk < g1; ++kk, wk += kPanel) {
      prefetch(1);
      TileStep<MR, F>(acc, x + kk, ldx, wk, s);
    }
    g0 = g1;
  }
  for (int r = 0; r < MR; ++r) {
    for (int j = 0; j < 4; ++j) {
      _mm512_mask_storeu_ps(y + r * ldy + 16 * j, masks[j], acc[r][j]);
    }
  }
}

template <int kHint, WeightFormat F, int kUnroll = 1>
RWKV_AVX512 void Tile(int rows, const float* x, int64_t ldx,
                      const typename PanelRow<F>::E* panel, const float* scales,
                      int64_t k0, int64_t kc, float* y, int64_t ldy,
                      const __mmask16* masks, bool accumulate,
                      const PrefetchRange& pf) {
  switch (rows) {
    case 1:
      return TileKernel<1, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
    case 2:
      return TileKernel<2, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
    case 3:
      return TileKernel<3, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
    case 4:
      return TileKernel<4, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
    case 5:
      return TileKernel<5, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
    default:
      return TileKernel<6, kHint, F, kUnroll>(x, ldx, panel, scales, k0, kc, y,
                                              ldy, masks, accumulate, pf);
  }
}

// Widens rows [k0, k0 + kc) of a bf16 / int8 panel into fp32 (64 floats a
// row), exactly as PanelRow<F>::Load does in the streaming kernel.
template <WeightFormat F>
RWKV_AVX512 void WidenBlock(const typename PanelRow<F>::E* block,
                            const float* scales, int64_t k0, int64_t kc,
                            float* out) {
  __m512 s[4] = {};
  if constexpr (F == WeightFormat::kInt8) {
    const int64_t group = k0 / kInt8GroupSize;
    for (int j = 0; j < 4; ++j) {
      s[j] = _mm512_load_ps(scales + group * kPanel + 16 * j);
    }
  }
  for (int64_t kk = 0; kk < kc; ++kk) {
    for (int j = 0; j < 4; ++j) {
      _mm512_store_ps(out + kk * kPanel + 16 * j,
                      PanelRow<F>::Load(block + kk * kPanel, j, s));
    }
  }
}

template <WeightFormat F>
RWKV_AVX512 void NativeBlockedPanels(const PackedLinearData& d, const float* x,
                                     int64_t m, float* y, int64_t p0,
                                     int64_t p1) {
  using E = typename PanelRow<F>::E;
  const E* base = reinterpret_cast<const E*>(d.buf.get());
  const int64_t k = d.k;
  const int64_t n = d.n;
  const int64_t tiles = (m + kLinearTileRows - 1) / kLinearTileRows;
  const char* range_end =
      reinterpret_cast<const char*>(base + p1 * d.kp * kPanel);
  constexpr int64_t kRowBytes = kPanel * sizeof(E);
  alignas(64) float widened[F == WeightFormat::kFloat32 ? 1 : kKc * kPanel];
  // Balanced tiles: tile t holds rows [m t / tiles, m (t + 1) / tiles),
  // stepped below by quotient and remainder (no division per tile).
  const int64_t tile_q = m / tiles, tile_rem = m % tiles;
  for (int64_t p = p0; p < p1; ++p) {
    const E* panel = base + p * d.kp * kPanel;
    const float* scales = F == WeightFormat::kInt8
                              ? d.scales.get() + p * d.groups * kPanel
                              : nullptr;
    const int64_t n0 = p * kPanel;
    const int64_t cols = std::min(kPanel, n - n0);
    __mmask16 masks[4];
    for (int j = 0; j < 4; ++j) {
      const int64_t c = std::clamp<int64_t>(cols - 16 * j, 0, 16);
      masks[j] = static_cast<__mmask16>((1u << c) - 1u);
    }
    if (tiles == 1) {
      // One pass over the panel: stream it with prefetch kPrefetchBytes
      // ahead: into L1 for fp32; into L2 only for bf16 / int8, whose
      // RWKV-7 0.1B decode measured 8-10% faster that way (rwkv-bench on
      // the 2-core AVX-512 VM, several interleaved runs, 2026-12-03), while
      // fp32 showed no clear difference. Timing only: the results are the
      // same.
      PrefetchRange pf;
      pf.begin = reinterpret_cast<const char*>(panel) + kPrefetchBytes;
      pf.end = std::min(pf.begin + k * kRowBytes, range_end);
      pf.lines = k * kRowBytes / 64;
      constexpr int kStreamHint =
          F == WeightFormat::kFloat32 ? _MM_HINT_T0 : _MM_HINT_T1;
      Tile<kStreamHint, F>(static_cast<int>(m), x, k, panel, scales, 0, k,
                           y + n0, n, masks, false, pf);
      continue;
    }
    // Several tiles: K blocks of the panel that stay in L1 while all tiles
    // of x go over them (bf16 / int8 blocks widened to fp32 once).
    // Meanwhile the tiles prefetch the next block (contiguous: the rest of
    // this panel, then the next panel) into L2, so that memory traffic
    // overlaps compute.
    for (int64_t k0 = 0; k0 < k; k0 += kKc) {
      const int64_t kc = std::min(kKc, k - k0);
      const E* block = panel + k0 * kPanel;
      const char* next = reinterpret_cast<const char*>(block + kc * kPanel);
      const int64_t next_lines = kc * kRowBytes / 64;
      const float* fblock;
      if constexpr (F == WeightFormat::kFloat32) {
        fblock = block;
      } else {
        WidenBlock<F>(block, scales, k0, kc, widened);
        fblock = widened;
      }
      // Tile t prefetches the t-th share of the next block's lines.
      const int64_t share = (next_lines + tiles - 1) / tiles;
      PrefetchRange pf;
      int64_t r1 = 0, frac = 0;  // frac = (m t) mod tiles
      for (int64_t t = 0; t < tiles; ++t) {
        const int64_t r0 = r1;
        r1 += tile_q;
        frac += tile_rem;
        if (frac >= tiles) {
          ++r1;
          frac -= tiles;
        }
        const int64_t rows = r1 - r0;
        const float* xt = x + r0 * k + k0;
        float* yt = y + r0 * n + n0;
        const int64_t l0 = std::min(next_lines, t * share);
        const int64_t l1 = std::min(next_lines, l0 + share);
        pf.begin = next + l0 * 64;
        pf.end = std::min(next + l1 * 64, range_end);
        pf.lines = l1 - l0;
        // Four k steps per loop iteration: a RWKV-7 0.1B B=32 step 1.5%
        // faster (alternating steps of one process). The one-tile decode
        // stream keeps one: its prefetches in bursts of four made fp32 and
        // bf16 decode 2-3% slower.
        Tile<_MM_HINT_T1, WeightFormat::kFloat32, 4>(static_cast<int>(rows), xt,
                                                     k, fblock, nullptr, 0, kc,
                                                     yt, n, masks, k0 > 0, pf);
      }
    }
  }
}

void NativeBlockedRange(const PackedLinearData& d, const float* x, int64_t m,
                        float* y, int64_t p0, int64_t p1) {
  switch (d.format) {
    case WeightFormat::kFloat32:
      return NativeBlockedPanels<WeightFormat::kFloat32>(d, x, m, y, p0, p1);
    case WeightFormat::kBFloat16:
      return NativeBlockedPanels<WeightFormat::kBFloat16>(d, x, m, y, p0, p1);
    case WeightFormat::kInt8:
      return NativeBlockedPanels<WeightFormat::kInt8>(d, x, m, y, p0, p1);
  }
}

// ---------------------------------------------------------------------------
// Portable kernels on the row-major layout (no AVX-512): dot products with
// eight explicit partial sums so the compiler can vectorize without
// reassociation; cloned for AVX2 and picked at load time.

inline float WeightAt(const float* w, const float*, int64_t i, int64_t) {
  return w[i];
}
inline float WeightAt(const uint16_t* w, const float*, int64_t i, int64_t) {
  return Bf16ToFloat(w[i]);
}
inline float WeightAt(const int8_t* w, const float* s, int64_t i, int64_t g) {
  return static_cast<float>(w[i]) * s[g];
}

template <typename E>
inline void PortableRowsImpl(const PackedLinearData& d, const E* wbuf,
                             const float* x, int64_t m, float* y, int64_t n0,
                             int64_t n1) {
  const int64_t k = d.k;
  for (int64_t j = n0; j < n1; ++j) {
    const E* wr = wbuf + j * k;
    const float* sr = d.format == WeightFormat::kInt8
                          ? d.scales.get() + j * d.groups
                          : nullptr;
    for (int64_t r = 0; r < m; ++r) {
      const float* xr = x + r * k;
      float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      float tail = 0;
      // Groups of kInt8GroupSize (a multiple of 8) keep the scale constant.
      for (int64_t k0 = 0; k0 < k; k0 += kInt8GroupSize) {
        const int64_t k1 = std::min(k, k0 + kInt8GroupSize);
        const int64_t g = k0 / kInt8GroupSize;
        const int64_t k8 = k0 + (k1 - k0) / 8 * 8;
        for (int64_t kk = k0; kk < k8; kk += 8) {
          for (int l = 0; l < 8; ++l) {
            s[l] += xr[kk + l] * WeightAt(wr, sr, kk + l, g);
          }
        }
        for (int64_t kk = k8; kk < k1; ++kk) {
          tail += xr[kk] * WeightAt(wr, sr, kk, g);
        }
      }
      y[r * d.n + j] = ((s[0] + s[4]) + (s[1] + s[5])) +
                       ((s[2] + s[6]) + (s[3] + s[7])) + tail;
    }
  }
}

__attribute__((target_clones("avx2", "default"))) void PortableRows(
    const PackedLinearData& d, const float* x, int64_t m, float* y, int64_t n0,
    int64_t n1) {
  switch (d.format) {
    case WeightFormat::kFloat32:
      return PortableRowsImpl(d, d.f32(), x, m, y, n0, n1);
    case WeightFormat::kBFloat16:
      return PortableRowsImpl(d, d.bf16(), x, m, y, n0, n1);
    case WeightFormat::kInt8:
      return PortableRowsImpl(d, d.i8(), x, m, y, n0, n1);
  }
}

// Columns [n0, n1) on the calling thread, native kernel.
void NativeRange(const PackedLinearData& d, const float* x, int64_t m, float* y,
                 int64_t n0, int64_t n1) {
  if (d.blocked) {
    NativeBlockedRange(d, x, m, y, n0 / kPanel, (n1 + kPanel - 1) / kPanel);
  } else {
    PortableRows(d, x, m, y, n0, n1);
  }
}

void Native(const PackedLinearData& d, const float* x, int64_t m, float* y) {
  const double bytes =
      static_cast<double>(d.elements) * ElementBytes(d.format) * m;
  const int nt = ThreadsFor(bytes, d.panels);
  if (nt == 1) {
    NativeRange(d, x, m, y, 0, d.n);
    return;
  }
#pragma omp parallel num_threads(nt)
  {
    const int64_t t = omp_get_thread_num();
    const int64_t nth = omp_get_num_threads();
    const int64_t p0 = d.panels * t / nth, p1 = d.panels * (t + 1) / nth;
    NativeRange(d, x, m, y, p0 * kPanel, std::min(d.n, p1 * kPanel));
  }
}

// ---------------------------------------------------------------------------
// oneDNN matmul on the blocked fp32 layout; primitives cached process-wide.
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

char* ThreadScratch(size_t bytes) {
  thread_local std::unique_ptr<char, FreeDeleter> buf;
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
  dnnl::memory wei(e->wei_md, eng, const_cast<float*>(d.f32()));
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

// Columns [n0, n1) of y (row stride d.n) with dnnl_sgemm on the row-major
// weights.
void OneDnnPortable(const PackedLinearData& d, const float* x, int64_t m,
                    float* y, int64_t n0, int64_t n1) {
  dnnl_sgemm('N', 'T', m, n1 - n0, d.k, 1.0f, x, d.k, d.f32() + n0 * d.k, d.k,
             0.0f, y + n0, d.n);
}
#else
bool OneDnnBlocked(const PackedLinearData&, const float*, int64_t, float*) {
  return false;
}

void OneDnnPortable(const PackedLinearData& d, const float* x, int64_t m,
                    float* y, int64_t n0, int64_t n1) {
  NativeRange(d, x, m, y, n0, n1);
}
#endif  // RWKV_HAVE_ONEDNN

}  // namespace

int64_t NativeKernelMaxRows(const PackedLinear& w) {
  if (w.format() != WeightFormat::kFloat32) return kNativeMaxRowsAll;
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
  if (d->format != WeightFormat::kFloat32) kernel = LinearKernel::kNative;
  if (kernel == LinearKernel::kAuto) {
    kernel = m <= NativeKernelMaxRows(w) ? LinearKernel::kNative
                                         : LinearKernel::kOneDnn;
  }
  if (d->blocked) {
    if (kernel == LinearKernel::kOneDnn && OneDnnBlocked(*d, x, m, y)) return;
    Native(*d, x, m, y);
  } else {
    if (kernel == LinearKernel::kOneDnn) {
      OneDnnPortable(*d, x, m, y, 0, d->n);
    } else {
      Native(*d, x, m, y);
    }
  }
}

void LinearForwardPanels(const PackedLinear& w, const float* x, int64_t m,
                         float* y, int64_t p0, int64_t p1) {
  const PackedLinearData* d = w.data();
  if (d == nullptr || m <= 0 || d->n == 0) return;
  p1 = std::min(p1, d->panels);
  if (p0 >= p1) return;
  const int64_t n0 = p0 * kPanel, n1 = std::min(d->n, p1 * kPanel);
  if (d->k == 0) {
    for (int64_t r = 0; r < m; ++r) {
      std::fill(y + r * d->n + n0, y + r * d->n + n1, 0.0f);
    }
    return;
  }
  NativeRange(*d, x, m, y, n0, n1);
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
