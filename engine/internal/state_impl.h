// StateImpl: the tensors behind an opaque State, and StateAccess, the one
// door through which engine code reaches them. Internal to engine/.
#ifndef RWKV_ENGINE_INTERNAL_STATE_IMPL_H_
#define RWKV_ENGINE_INTERNAL_STATE_IMPL_H_

#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engine/model_config.h"
#include "engine/state.h"

namespace rwkv::engine::internal {

struct StateImpl {
  Architecture arch = Architecture::kRwkv4;
  // Component names in schema order (RWKV-4: att_aa, att_ab, att_pp,
  // att_x_prev, ffn_x_prev) and their tensors, each [n_layer, ...], fp32.
  std::vector<std::string> names;
  std::vector<at::Tensor> tensors;
  int64_t token_count = 0;
  // Fingerprint of the model this state belongs to ("" if unknown: a plain
  // tensor dict loaded without a model).
  std::string model_fingerprint;
};

class StateAccess {
 public:
  static State Make(std::unique_ptr<StateImpl> impl) {
    return State(std::move(impl));
  }
  static StateImpl* Get(State& s) { return s.impl_.get(); }
  // Makes `s` empty (valid() == false).
  static void Clear(State& s) { s.impl_.reset(); }
  static const StateImpl* Get(const State& s) { return s.impl_.get(); }
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_STATE_IMPL_H_
