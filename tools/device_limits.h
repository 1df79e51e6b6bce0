// The speed limits of a LibTorch accelerator, measured in the caller's run so
// that rwkv-bench can print its figures as fractions of them (rwkv-bench
// measures the CPU's limits itself, with the engine's own kernels):
//   - copy bandwidth: bytes read plus bytes written per second of a
//     device-to-device copy of a 1 GiB buffer (what streaming the weights
//     once per token can reach);
//   - GEMM peak: an n x n x n matrix product in the compute dtype through
//     LibTorch (cuBLAS on CUDA; fp32 without TF32, as the engine runs it).
#ifndef RWKV_TOOLS_DEVICE_LIMITS_H_
#define RWKV_TOOLS_DEVICE_LIMITS_H_

#include <string>

#include "absl/status/statusor.h"

namespace rwkv::tools {

struct DeviceLimits {
  double copy_bandwidth_gbs = 0;  // 1e9 bytes/s, read + written
  double gemm_gflops = 0;         // 1e9 FLOP/s
  int gemm_n = 0;
};

// device: "cuda" or "cuda:N"; dtype: "fp32", "fp16" or "bf16". Errors (no
// such device, out of memory) come back as a Status.
absl::StatusOr<DeviceLimits> MeasureDeviceLimits(const std::string& device,
                                                 const std::string& dtype,
                                                 int gemm_n = 8192);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_DEVICE_LIMITS_H_
