// ModelConfig: what a loaded RWKV checkpoint is, derived from its tensors
// (never from the file name). Plain value type.
#ifndef RWKV_ENGINE_MODEL_CONFIG_H_
#define RWKV_ENGINE_MODEL_CONFIG_H_

#include <cstdint>
#include <string>
#include <string_view>

namespace rwkv::engine {

enum class Architecture { kRwkv4, kRwkv7 };

// "rwkv4" / "rwkv7".
std::string_view ArchitectureName(Architecture arch);

// The per-layer tensors of a BlinkDL RWKV-4 checkpoint, named after
// "blocks.N." (layer 0 may add ln0.weight/ln0.bias): the loader accepts
// exactly these, and rwkv-train writes them in this order.
inline constexpr const char* kRwkv4LayerTensorNames[] = {
    "ln1.weight",
    "ln1.bias",
    "ln2.weight",
    "ln2.bias",
    "att.time_decay",
    "att.time_first",
    "att.time_mix_k",
    "att.time_mix_v",
    "att.time_mix_r",
    "att.key.weight",
    "att.value.weight",
    "att.receptance.weight",
    "att.output.weight",
    "ffn.time_mix_k",
    "ffn.time_mix_r",
    "ffn.key.weight",
    "ffn.receptance.weight",
    "ffn.value.weight",
};

struct ModelConfig {
  Architecture arch = Architecture::kRwkv4;
  int n_layer = 0;
  int n_embd = 0;
  int vocab_size = 0;
  int ffn_dim = 0;    // hidden width of channel mixing
  int n_head = 0;     // RWKV-7 only (0 for RWKV-4)
  int head_size = 0;  // RWKV-7 only
  int64_t n_params = 0;
  // Bytes of one session's recurrent state in fp32.
  int64_t state_bytes_fp32 = 0;
  // Identity of the weights (see internal/model_fingerprint.h): saved states
  // record it and loading checks it.
  std::string fingerprint;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_MODEL_CONFIG_H_
