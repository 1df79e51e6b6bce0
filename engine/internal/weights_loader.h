// Turns a parsed checkpoint into validated RWKV-4 weights on the target
// device and dtype: architecture and dims come from tensor names and shapes;
// any missing, unexpected, misshapen or non-finite tensor is an error that
// names the file and the tensor.
#ifndef RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_
#define RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_

#include <ATen/ATen.h>

#include "absl/status/statusor.h"
#include "engine/checkpoint.h"
#include "engine/internal/rwkv4_weights.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

struct LoadTarget {
  at::Device device = at::kCPU;
  at::ScalarType dtype = at::kFloat;
  float time_decay_clip = 0.0f;  // > 0: clamp raw time_decay to <= clip
};

// Which RWKV generation a checkpoint holds, from its key names.
absl::StatusOr<Architecture> DetectArchitecture(const Checkpoint& ckpt);

absl::StatusOr<Rwkv4Weights> LoadRwkv4Weights(const Checkpoint& ckpt,
                                              const LoadTarget& target);

// Fills config.n_params and config.state_bytes_fp32 from the dims.
void FinishRwkv4Config(ModelConfig& config);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_WEIGHTS_LOADER_H_
