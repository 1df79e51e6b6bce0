// Model: what the rest of the program needs to know about a loaded model
// without running it: its config, its fresh state, and the state bytes that
// belong to it (ParseState in state_file.h takes a Model). Immutable and
// thread-safe: the server's request threads share it while the Engine runs
// forwards on the scheduler thread. An Engine hands out its Model (shared).
#ifndef RWKV_ENGINE_MODEL_H_
#define RWKV_ENGINE_MODEL_H_

#include "engine/model_config.h"
#include "engine/state.h"

namespace rwkv::engine {

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;

  // The reference initial state ("no state": zeros; RWKV-4 att_pp = -1e30),
  // on the model's device. A new, independent state on every call.
  virtual State NewState() const = 0;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_MODEL_H_
