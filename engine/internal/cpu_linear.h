// CPU matrix kernels for the engine (torch-free): fp32, bf16 and int8
// weights, fp32 activations and accumulation.
//
//   PackedLinear w = PackedLinear::Pack(weight, n, k);   // W [N, K] row-major
//   LinearForward(w, x, m, y);                           // y[M,N] = x[M,K] W^T
//
// Weight formats (WeightFormat):
//   * kFloat32.
//   * kBFloat16: each weight rounded to bfloat16 (round to nearest even);
//     widened to fp32 in registers (exact), so the only error is the
//     weight's rounding.
//   * kInt8: weight-only int8 with one fp32 scale per block of
//     kInt8GroupSize consecutive K (per output column and block):
//     w ~= q * scale, q in [-127, 127], scale = max|w| / 127 over the block.
//     Dequantized in registers (q * scale, one rounding) before the fp32 FMA.
// Activations, accumulators and outputs are fp32 in every format.
//
// On CPUs with AVX-512 (checked at run time; the rest of the binary does not
// need it) the weight is stored in panels of 64 output columns: panel p holds
// K rows (K padded to a multiple of 16) of 64 contiguous weights, zero
// padded; for fp32 this is oneDNN's blocked layout BA16a64b. int8 scales are
// stored alongside per panel as [groups][64]. Kernels:
//   * M <= 128 (fp32), any M (bf16, int8): a hand-written AVX-512 kernel.
//     Register tiles of up to 6 rows x 64 columns (24 zmm accumulators).
//     One tile (M <= 6, decode): each panel is streamed once with software
//     prefetch (into L1 for fp32, into L2 for bf16 / int8), memory bound.
//     Several tiles: K blocks of 128 rows are reused from L1/L2 by all tiles
//     (bf16/int8 blocks are widened once into an fp32 L1 buffer first) while
//     the tiles prefetch the next block.
//   * fp32, M > 128: oneDNN's brgemm matmul primitive on the same buffer,
//     created once per (M, N, K, threads) and cached process-wide.
// Without AVX-512 the weight stays row-major; fp32 M <= 128 and every bf16 /
// int8 call use portable dot-product loops (compiled for AVX2 too, picked at
// load time; batch invariant like the AVX-512 kernel), fp32 M > 128
// dnnl_sgemm (which dispatches on the CPU itself). A build without oneDNN
// (HaveOneDnn() false) runs the native kernels for every M.
//
// Threading: LinearForward runs on the calling thread's OpenMP team
// (omp_get_max_threads(); one thread when called inside a parallel region or
// for tiny problems). LinearForwardPanels computes a range of panels on the
// calling thread only, for callers that split the work over their own team.
// The native kernels split the output columns (N) across threads and never
// K, and sum each output in k order, so their result does not depend on the
// thread count or on M (batch invariant). oneDNN (fp32, M > 128) may differ
// from them in the last bits.
#ifndef RWKV_ENGINE_INTERNAL_CPU_LINEAR_H_
#define RWKV_ENGINE_INTERNAL_CPU_LINEAR_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rwkv::engine::internal {

// Which storage / kernels a PackedLinear uses.
enum class LinearBackend {
  kAuto,      // blocked AVX-512 layout when the CPU has AVX-512, else portable
  kPortable,  // row-major W, portable kernels + dnnl_sgemm (for tests)
};

// Which kernel LinearForward runs (kAuto picks by M; the others are for tests
// and benchmarks, and fall back to kAuto where unavailable).
enum class LinearKernel {
  kAuto,
  kNative,  // the hand-written kernel (AVX-512 tile kernel or portable GEMV)
  kOneDnn,  // oneDNN matmul (blocked layout) or dnnl_sgemm (portable layout)
};

// How the weights are stored (see the file comment).
enum class WeightFormat { kFloat32, kBFloat16, kInt8 };

// "fp32", "bf16", "int8".
const char* WeightFormatName(WeightFormat format);

// K block that shares one int8 scale (per output column).
inline constexpr int64_t kInt8GroupSize = 128;
// Output columns per panel: the unit LinearForwardPanels splits by.
inline constexpr int64_t kLinearPanelWidth = 64;
// Rows of x one register tile holds. A product of at most this many rows
// (decode) streams each panel once and is memory bound; more rows reuse
// each K block from cache across several tiles and are compute bound.
inline constexpr int64_t kLinearTileRows = 6;

// Number of int8 scale groups along K: ceil(k / kInt8GroupSize).
inline int64_t Int8Groups(int64_t k) {
  return (k + kInt8GroupSize - 1) / kInt8GroupSize;
}

// Quantizes W [N, K] (row-major) to int8: q [N, K] row-major and scales
// [N, Int8Groups(K)] (scale = max|w| / 127 over each block of K, 0 for an
// all-zero block; q = round-to-nearest-even(w / scale)). Deterministic; the
// packer and `rwkv-cli quantize` share it, so a quantized file loads to
// exactly the weights that quantizing at load gives.
void QuantizeInt8(const float* w, int64_t n, int64_t k, int8_t* q,
                  float* scales);

// fp32 -> bf16 bits, round to nearest even (NaN stays NaN).
uint16_t FloatToBf16(float f);
float Bf16ToFloat(uint16_t b);

struct PackedLinearData;

// A weight matrix W [N, K] (row-major, as torch nn.Linear stores it),
// prepacked for fast GEMM/GEMV. Immutable after construction; copies share
// the packed buffer; safe for concurrent use from any number of threads.
class PackedLinear {
 public:
  PackedLinear() = default;

  // Packs fp32 weights, converting them to `format` (bf16 rounding or int8
  // quantization with QuantizeInt8).
  static PackedLinear Pack(const float* w, int64_t n, int64_t k,
                           LinearBackend backend = LinearBackend::kAuto,
                           WeightFormat format = WeightFormat::kFloat32);
  // Packs weights already quantized as QuantizeInt8 writes them (q [N, K],
  // scales [N, Int8Groups(K)]), bit for bit.
  static PackedLinear PackInt8(const int8_t* q, const float* scales, int64_t n,
                               int64_t k,
                               LinearBackend backend = LinearBackend::kAuto);

  bool empty() const { return data_ == nullptr; }
  int64_t n() const;
  int64_t k() const;
  WeightFormat format() const;
  // Bytes of the packed weight buffer (including padding and int8 scales).
  size_t packed_bytes() const;
  // True when the blocked AVX-512 layout/kernels are used.
  bool blocked() const;
  // Panels of kLinearPanelWidth output columns: ceil(n / 64).
  int64_t panels() const;
  // The packed fp32 buffer (layout described above; nullptr for bf16 and
  // int8); for tests.
  const float* packed_data() const;

  const PackedLinearData* data() const { return data_.get(); }

 private:
  std::shared_ptr<const PackedLinearData> data_;
};

// y[M, N] = x[M, K] * W^T. x, y row-major contiguous, y must not alias x.
// m == 0 is a no-op. Runs on the calling thread's OpenMP team.
void LinearForward(const PackedLinear& w, const float* x, int64_t m, float* y,
                   LinearKernel kernel = LinearKernel::kAuto);

// The columns [64 * p0, min(64 * p1, N)) of y[M, N] = x[M, K] * W^T (y keeps
// its row stride N), on the calling thread only, with the native kernel for
// every M (each output bit-identical to LinearForward with M <=
// NativeKernelMaxRows).
void LinearForwardPanels(const PackedLinear& w, const float* x, int64_t m,
                         float* y, int64_t p0, int64_t p1);

// Largest M that kAuto serves with the native kernel (above it: oneDNN).
int64_t NativeKernelMaxRows(const PackedLinear& w);

// True when the CPU (and OS) support AVX-512F and the environment does not
// set RWKV_NO_AVX512 (to a value other than 0), which makes every kernel,
// layout and the fused forward take their portable path.
bool CpuHasAvx512();

// Marks a function built for AVX-512F in a translation unit that targets
// baseline x86-64 (the intrinsics kernels); call it only where
// CpuHasAvx512().
#define RWKV_AVX512 __attribute__((target("avx512f")))

// True when this build uses oneDNN (CMake option RWKV_USE_ONEDNN, default
// ON). Without it kOneDnn falls back to the native kernels for every M.
bool HaveOneDnn();

// Memory read bandwidth (GB/s, 1e9) measured with the same threading as
// LinearForward: streaming read of a `bytes` buffer (>> LLC), best of
// `repeats`.
double MeasureReadBandwidthGBs(size_t bytes, int repeats);

// fp32 GEMM peak (GFLOP/s) of oneDNN on an n x n x n GEMM, best of
// `repeats` each: dnnl_sgemm, and the matmul primitive with prepacked
// (blocked) weights (0 without AVX-512).
struct GemmPeak {
  double sgemm_gflops = 0;
  double matmul_gflops = 0;
};
GemmPeak MeasureGemmPeak(int n, int repeats);
// The larger of the two (the stricter reference for the targets).
double MeasureGemmPeakGflops(int n, int repeats);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_CPU_LINEAR_H_
