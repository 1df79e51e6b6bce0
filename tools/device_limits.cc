#include "tools/device_limits.h"

#include <ATen/ATen.h>
#include <ATen/Context.h>
#include <c10/util/Exception.h>

#include <algorithm>
#include <chrono>
#include <exception>

#include "absl/strings/str_cat.h"

namespace rwkv::tools {
namespace {

using Clock = std::chrono::steady_clock;

// Waits for the device's queued work: reading one value back synchronizes
// the stream (no CUDA headers needed).
void Sync(const at::Tensor& t) { (void)t.reshape({-1})[0].item<float>(); }

// Best of `repeats` wall times of `inner` calls of f(), synchronized.
template <typename F>
double BestSeconds(int repeats, int inner, const at::Tensor& sync_on, F&& f) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    Sync(sync_on);
    const auto t0 = Clock::now();
    for (int i = 0; i < inner; ++i) f();
    Sync(sync_on);
    best = std::min(best,
                    std::chrono::duration<double>(Clock::now() - t0).count());
  }
  return best / inner;
}

}  // namespace

absl::StatusOr<DeviceLimits> MeasureDeviceLimits(const std::string& device,
                                                 const std::string& dtype,
                                                 int gemm_n) {
  at::ScalarType st = at::kFloat;
  if (dtype == "fp16") {
    st = at::kHalf;
  } else if (dtype == "bf16") {
    st = at::kBFloat16;
  } else if (dtype != "fp32") {
    return absl::InvalidArgumentError(
        absl::StrCat("unknown dtype '", dtype, "'"));
  }
  try {
    at::NoGradGuard no_grad;
    const at::Device dev(device);
    DeviceLimits lim;
    // Copy bandwidth on 1 GiB.
    {
      const int64_t n = int64_t{1} << 28;  // floats
      at::Tensor a = at::ones({n}, at::TensorOptions().device(dev));
      at::Tensor b = at::empty_like(a);
      b.copy_(a);
      const double s = BestSeconds(3, 10, b, [&] { b.copy_(a); });
      lim.copy_bandwidth_gbs = 2.0 * n * 4 / s / 1e9;
    }
    // GEMM peak.
    {
      const int64_t n = gemm_n;
      auto opts = at::TensorOptions().device(dev).dtype(st);
      at::Tensor a = at::randn({n, n}, opts), b = at::randn({n, n}, opts);
      at::Tensor c = at::mm(a, b);
      const double s = BestSeconds(3, 5, c, [&] { at::mm_out(c, a, b); });
      lim.gemm_gflops = 2.0 * n * n * static_cast<double>(n) / s / 1e9;
      lim.gemm_n = gemm_n;
    }
    return lim;
  } catch (const c10::Error& e) {
    return absl::InternalError(
        absl::StrCat("measuring ", device, ": ", e.what_without_backtrace()));
  } catch (const std::exception& e) {
    return absl::InternalError(
        absl::StrCat("measuring ", device, ": ", e.what()));
  }
}

}  // namespace rwkv::tools
