// ModelFingerprint: a cheap identity of a model's weights (names, shapes and
// a fixed sample of fp32 values of every tensor), so a saved state can say
// which model it belongs to. The same weights give the same fingerprint
// whether loaded from .pth or .safetensors; any retrained or re-quantized
// copy gives another (except that a file written by `rwkv-cli quantize`
// names its source's fingerprint in its metadata, and the loader uses that).
// Not cryptographic. Thread-compatible.
#ifndef RWKV_ENGINE_INTERNAL_MODEL_FINGERPRINT_H_
#define RWKV_ENGINE_INTERNAL_MODEL_FINGERPRINT_H_

#include <cstdint>
#include <string>
#include <vector>

namespace rwkv::engine::internal {

class ModelFingerprint {
 public:
  // Adds one tensor; call in a fixed order. Hashes every value of tensors up
  // to 8192 elements, else 4096 evenly spaced values plus the first and last
  // 64.
  void AddTensor(const std::string& name, const std::vector<int64_t>& shape,
                 const float* values, int64_t numel);
  // 16 lowercase hex digits.
  std::string Hex() const;

 private:
  void Mix(const void* data, size_t n);
  uint64_t h1_ = 0xcbf29ce484222325ull;  // FNV-1a
  uint64_t h2_ = 0x84222325cbf29ce4ull;  // FNV-1a, other seed, other prime
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_MODEL_FINGERPRINT_H_
