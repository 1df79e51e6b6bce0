// The component names and shapes of each architecture's recurrent state,
// shared by the state file reader and the state operations.
#ifndef RWKV_ENGINE_INTERNAL_STATE_SCHEMA_H_
#define RWKV_ENGINE_INTERNAL_STATE_SCHEMA_H_

#include <string>
#include <vector>

#include "engine/model_config.h"

namespace rwkv::engine::internal {

// RWKV-4: att_aa, att_ab, att_pp, att_x_prev, ffn_x_prev ([L, C] each).
// RWKV-7: att_x_prev [L, C], att_kv [L, H, N, N], ffn_x_prev [L, C].
inline const std::vector<std::string>& StateComponentNames(Architecture arch) {
  static const auto* v4 = new std::vector<std::string>{
      "att_aa", "att_ab", "att_pp", "att_x_prev", "ffn_x_prev"};
  static const auto* v7 =
      new std::vector<std::string>{"att_x_prev", "att_kv", "ffn_x_prev"};
  return arch == Architecture::kRwkv4 ? *v4 : *v7;
}

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_STATE_SCHEMA_H_
