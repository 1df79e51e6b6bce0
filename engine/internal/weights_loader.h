// Turns a parsed checkpoint into validated RWKV-4 or RWKV-7 weights on the
// target device and dtype: architecture and dims come from tensor names and
// shapes; any missing, unexpected, misshapen or non-finite tensor is an error
// that names the file and the tensor. The large matrices (R, K, V, O, the
// FFN's, the head) may be stored int8 with one fp32 scale per 128 inputs of
// each output row in NAME_scale (what `rwkv-cli quantize` writes).
#ifndef RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_
#define RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_

#include <ATen/ATen.h>

#include <string_view>

#include "absl/status/statusor.h"
#include "engine/checkpoint.h"
#include "engine/internal/rwkv4_weights.h"
#include "engine/internal/rwkv7_weights.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

// Suffix of an int8 matrix's scales: "blocks.0.att.key.weight_scale".
inline constexpr char kInt8ScaleSuffix[] = "_scale";
// Metadata entry with the fingerprint of the checkpoint a quantized file was
// made from (the loader uses it as the model's fingerprint).
inline constexpr char kFingerprintMetadataKey[] = "rwkv_model_fingerprint";

// Per-layer keys of the matrices a checkpoint may store as int8
// ("att.key.weight", "ffn.value.weight", ...; the same for RWKV-4 and 7).
bool IsInt8MatrixKey(std::string_view key);
// Full names: "blocks.N." + such a key, or "head.weight".
bool IsInt8MatrixName(std::string_view name);

struct LoadTarget {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  float time_decay_clip = 0.0f;  // > 0: clamp raw time_decay to <= clip
};

// Which RWKV generation a checkpoint holds, from its key names (RWKV-4:
// att.time_first / time_decay; RWKV-7: att.r_k, att.w0, att.x_r, ...). A file
// mixing both naming schemes is an error.
absl::StatusOr<Architecture> DetectArchitecture(const Checkpoint& ckpt);

absl::StatusOr<Rwkv4Weights> LoadRwkv4Weights(const Checkpoint& ckpt,
                                              const LoadTarget& target);

// RWKV-7 (x070): dims from shapes (n_head, head_size from att.r_k; LoRA
// ranks from att.w1/a1/v1/g1). Layer 0 needs no att.v0/v1/v2 (ignored when
// present: layer 0 defines v_first). Fills config completely.
absl::StatusOr<Rwkv7Weights> LoadRwkv7Weights(const Checkpoint& ckpt,
                                              const LoadTarget& target);

// Fills config.n_params and config.state_bytes_fp32 from the dims.
void FinishRwkv4Config(ModelConfig& config);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_
