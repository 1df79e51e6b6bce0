// Rwkv4TrainModel: a trainable RWKV-4 (LibTorch autograd, CPU) whose
// parameters carry the BlinkDL checkpoint names and shapes (emb.weight,
// blocks.N.ln0/ln1/ln2, att.time_decay [C], att.time_first [C],
// att.time_mix_k/v/r [1, 1, C], att.key/value/receptance/output.weight,
// ffn.time_mix_k/r [1, 1, C], ffn.key/receptance/value.weight, ln_out,
// head.weight), so a saved checkpoint loads in the engine and in ChatRWKV.
// The math is the engine's (engine/internal/rwkv4_model.cc) over [B, T, C];
// the WKV step is the Wkv4 autograd op. Thread-compatible.
#ifndef RWKV_TOOLS_TRAIN_RWKV4_TRAIN_MODEL_H_
#define RWKV_TOOLS_TRAIN_RWKV4_TRAIN_MODEL_H_

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rwkv::train {

struct ModelShape {
  int n_layer = 4;
  int n_embd = 128;
  int vocab_size = 256;
  int ffn_dim = 0;  // 0 = 4 * n_embd
};

// The recurrent state in the op's unscaled form, [L, B, C] each: a = aa *
// exp(pp), b = bb * exp(pp) (engine representation), x_att / x_ffn the
// token-shift inputs.
struct TrainState {
  torch::Tensor a, b, x_att, x_ffn;
};

class Rwkv4TrainModel {
 public:
  // Random initialization (RWKV-LM's v4 scheme, simplified), deterministic
  // for a seed.
  Rwkv4TrainModel(const ModelShape& shape, uint64_t seed);
  // From named tensors (a checkpoint). Validates names and shapes.
  static absl::StatusOr<Rwkv4TrainModel> FromTensors(
      std::vector<std::pair<std::string, torch::Tensor>> named);
  static absl::StatusOr<Rwkv4TrainModel> Load(const std::string& path);

  const ModelShape& shape() const { return shape_; }
  // Parameters in checkpoint order, with their BlinkDL names.
  const std::vector<std::pair<std::string, torch::Tensor>>& named_parameters()
      const {
    return params_;
  }
  std::vector<torch::Tensor> parameters() const;
  int64_t num_parameters() const;
  void SetRequiresGrad(bool on);

  // A zero state ("no state") for `batch` sequences.
  TrainState ZeroState(int64_t batch) const;

  // tokens: [B, T] int64. Returns logits [B, T, V] fp32. `state` (optional)
  // is the initial state; if `final_state` is non-null it receives the state
  // after the last token (detached).
  torch::Tensor Forward(const torch::Tensor& tokens,
                        const TrainState* state = nullptr,
                        TrainState* final_state = nullptr) const;

  // Writes a torch.save-compatible .pth with the BlinkDL names; `fp16`
  // stores the weights as float16. `scalars` are extra dict entries (e.g.
  // the training step).
  absl::Status Save(const std::string& path, bool fp16,
                    const std::vector<std::pair<std::string, int64_t>>&
                        int_scalars = {}) const;

 private:
  Rwkv4TrainModel() = default;
  const torch::Tensor& P(const std::string& name) const;
  void Index();

  ModelShape shape_;
  std::vector<std::pair<std::string, torch::Tensor>> params_;
  std::vector<std::vector<torch::Tensor>> layer_;  // per layer, fixed order
  torch::Tensor emb_, ln0_w_, ln0_b_, ln_out_w_, ln_out_b_, head_;
};

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_RWKV4_TRAIN_MODEL_H_
