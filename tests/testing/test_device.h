// Which device the engine parity suites run their models on, so that the same
// tests check a GPU build (tools/cuda_check.sh) and stay CPU-only elsewhere:
//   RWKV_TEST_DEVICE           "cpu" when unset or empty; "cuda" / "cuda:N"
//   RWKV_TEST_DEVICE_REQUIRED  "1": a device that cannot be used is a test
//                              failure instead of a skip (the GPU check sets
//                              it, so that a build without working CUDA
//                              cannot pass by skipping everything)
// Tests that ask for the device call RWKV_REQUIRE_DEVICE(device) first.
#ifndef RWKV_TESTS_TESTING_TEST_DEVICE_H_
#define RWKV_TESTS_TESTING_TEST_DEVICE_H_

#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <mutex>
#include <string>

#include "absl/status/status.h"
#include "engine/rwkv_engine.h"

namespace rwkv::testing {

inline std::string TestDevice() {
  const char* env = std::getenv("RWKV_TEST_DEVICE");
  return env == nullptr || *env == '\0' ? "cpu" : env;
}

inline bool TestDeviceRequired() {
  const char* env = std::getenv("RWKV_TEST_DEVICE_REQUIRED");
  return env != nullptr && std::string(env) == "1";
}

inline bool IsCudaDevice(const std::string& device) {
  return device.rfind("cuda", 0) == 0;
}

// The device of the CUDA-only cases: TestDevice() when it names a CUDA
// device, else "cuda".
inline std::string CudaTestDevice() {
  const std::string d = TestDevice();
  return IsCudaDevice(d) ? d : "cuda";
}

// OK when the engine can build a model on `device` (probed once per device
// and process with a tiny random model), else the engine's own error.
inline absl::Status DeviceUsable(const std::string& device) {
  static std::mutex mu;
  static auto* probed = new std::map<std::string, absl::Status>();
  std::lock_guard<std::mutex> lock(mu);
  auto it = probed->find(device);
  if (it != probed->end()) return it->second;
  engine::RandomModelSpec spec;
  spec.n_layer = 1;
  spec.n_embd = 8;
  spec.vocab_size = 16;
  engine::EngineOptions options;
  options.device = device;
  options.num_threads = 1;
  absl::Status s = engine::RwkvEngine::CreateRandom(spec, options).status();
  probed->emplace(device, s);
  return s;
}

}  // namespace rwkv::testing

// Skips the test (or fails it under RWKV_TEST_DEVICE_REQUIRED=1) when the
// engine cannot run on `device`.
#define RWKV_REQUIRE_DEVICE(device)                                    \
  do {                                                                 \
    const std::string rwkv_device_ = (device);                         \
    const absl::Status rwkv_usable_ =                                  \
        ::rwkv::testing::DeviceUsable(rwkv_device_);                   \
    if (!rwkv_usable_.ok()) {                                          \
      if (::rwkv::testing::TestDeviceRequired()) {                     \
        FAIL() << "device '" << rwkv_device_                           \
               << "' is required (RWKV_TEST_DEVICE_REQUIRED=1) but "   \
                  "unusable: "                                         \
               << rwkv_usable_;                                        \
      }                                                                \
      GTEST_SKIP() << "device '" << rwkv_device_                       \
                   << "' not usable here: " << rwkv_usable_.message(); \
    }                                                                  \
  } while (0)

#endif  // RWKV_TESTS_TESTING_TEST_DEVICE_H_
