// QuantizeCheckpoint: rewrites an RWKV-4 / RWKV-7 checkpoint (.pth or
// .safetensors) as a .safetensors file whose large matrices (R, K, V, O, the
// FFN's and the head) are int8 or bf16, for `rwkv-cli quantize`. The engine
// loads the result directly: int8 matrices are stored as cpu_linear.h's
// QuantizeInt8 writes them (NAME: I8 [N, K]; NAME_scale: F32 [N, K / 128
// rounded up], one scale per 128 inputs of each output row), so a quantized
// file runs bit-identically to `--dtype int8` on the original. Everything else
// (embedding, norms, time-mix and decay parameters, RWKV-7's LoRA factors) is
// written as stored. The metadata keeps the source's metadata (safetensors),
// names the quantization and carries the source model's fingerprint, so
// state files move between the original and the quantized model.
// Stateless; thread-safe.
#ifndef RWKV_ENGINE_QUANTIZE_CHECKPOINT_H_
#define RWKV_ENGINE_QUANTIZE_CHECKPOINT_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"

namespace rwkv::engine {

struct QuantizeReport {
  std::string architecture;  // "rwkv4" / "rwkv7"
  std::string dtype;         // "int8" / "bf16"
  std::string fingerprint;   // the source model's
  int64_t tensors = 0;       // written (int8 scales included)
  int64_t matrices = 0;      // converted
  int64_t params_converted = 0;
  int64_t params_total = 0;
  uint64_t bytes_in = 0;   // tensor bytes of the source
  uint64_t bytes_out = 0;  // size of the written file
};

// Reads and validates `in_path` (as the engine loads it), writes `out_path`
// atomically. dtype: "int8" or "bf16". Errors name the file and the problem;
// a file already holding int8 matrices is refused (quantize the original).
absl::StatusOr<QuantizeReport> QuantizeCheckpoint(const std::string& in_path,
                                                  const std::string& out_path,
                                                  const std::string& dtype);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_QUANTIZE_CHECKPOINT_H_
