// fp32 CPU matrix kernels for the engine (torch-free).
//
//   PackedLinear w = PackedLinear::Pack(weight, n, k);   // W [N, K] row-major
//   LinearForward(w, x, m, y);                           // y[M,N] = x[M,K] W^T
//
// On CPUs with AVX-512 (checked at run time; the rest of the binary does not
// need it) the weight is stored once in oneDNN's blocked layout BA16a64b:
// 64-column panels of W^T, each K rows (K padded to a multiple of 16) by 64
// contiguous floats, zero padded. Two kernels read that same buffer:
//   * M <= 128: a hand-written AVX-512 kernel. Register tiles of up to 6
//     rows x 64 columns (24 zmm accumulators, x broadcast from memory). One
//     tile (M <= 6, decode): each panel is streamed once with software
//     prefetch, memory bound. Several tiles: K blocks of 128 rows are reused
//     from L1/L2 by all tiles while the tiles prefetch the next block into L2
//     at an even rate (one line every few k steps), so that the DRAM stream
//     overlaps the FMAs.
//   * M > 128: oneDNN's brgemm matmul primitive on the same buffer, created
//     once per (M, N, K, threads) and cached process-wide (user scratchpad,
//     so the same primitive runs from any thread, concurrently).
// Without AVX-512 the weight stays row-major; M == 1 uses a portable GEMV
// and larger M dnnl_sgemm (which dispatches on the CPU itself). A build
// without oneDNN (HaveOneDnn() false) runs the native kernels for every M.
//
// Threading: each call runs on the calling thread's OpenMP team
// (omp_get_max_threads(); one thread when called inside a parallel region or
// for tiny problems). The native kernels split the output columns (N) across
// threads and never K, and sum each output in k order, so their result does
// not depend on the thread count or on M (batch invariant). oneDNN (M > 128)
// may differ from them in the last bits.
#ifndef RWKV_ENGINE_INTERNAL_CPU_LINEAR_H_
#define RWKV_ENGINE_INTERNAL_CPU_LINEAR_H_

#include <cstddef>
#include <cstdint>
#include <memory>

namespace rwkv::engine::internal {

// Which storage / kernels a PackedLinear uses.
enum class LinearBackend {
  kAuto,      // blocked AVX-512 layout when the CPU has AVX-512, else portable
  kPortable,  // row-major W, portable GEMV + dnnl_sgemm (for tests)
};

// Which kernel LinearForward runs (kAuto picks by M; the others are for tests
// and benchmarks, and fall back to kAuto where unavailable).
enum class LinearKernel {
  kAuto,
  kNative,  // the hand-written kernel (AVX-512 tile kernel or portable GEMV)
  kOneDnn,  // oneDNN matmul (blocked layout) or dnnl_sgemm (portable layout)
};

struct PackedLinearData;

// A weight matrix W [N, K] (row-major, as torch nn.Linear stores it),
// prepacked for fast GEMM/GEMV. Immutable after construction; copies share
// the packed buffer; safe for concurrent use from any number of threads.
class PackedLinear {
 public:
  PackedLinear() = default;

  static PackedLinear Pack(const float* w, int64_t n, int64_t k,
                           LinearBackend backend = LinearBackend::kAuto);

  bool empty() const { return data_ == nullptr; }
  int64_t n() const;
  int64_t k() const;
  // Bytes of the packed weight buffer (including padding).
  size_t packed_bytes() const;
  // True when the blocked AVX-512 layout/kernels are used.
  bool blocked() const;
  // The packed buffer (layout described above); for tests.
  const float* packed_data() const;

  const PackedLinearData* data() const { return data_.get(); }

 private:
  std::shared_ptr<const PackedLinearData> data_;
};

// y[M, N] = x[M, K] * W^T. x, y row-major contiguous, y must not alias x.
// m == 0 is a no-op. Runs on the calling thread's OpenMP team.
void LinearForward(const PackedLinear& w, const float* x, int64_t m, float* y,
                   LinearKernel kernel = LinearKernel::kAuto);

// Largest M that kAuto serves with the native kernel (above it: oneDNN).
int64_t NativeKernelMaxRows(const PackedLinear& w);

// True when the CPU (and OS) support AVX-512F.
bool CpuHasAvx512();

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
