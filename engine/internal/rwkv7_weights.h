// Rwkv7Weights: the tensors of an RWKV-7 ("Goose", x070) model in the layout
// the math wants. Every matrix is stored as torch's nn.Linear stores it,
// [out, in] (y = x W^T): the checkpoint's receptance/key/value/output and
// ffn key/value already are; the LoRA factors w1/w2, a1/a2, v1/v2, g1/g2 are
// used as x @ w1 by the reference and are transposed at load.
#ifndef RWKV_ENGINE_INTERNAL_RWKV7_WEIGHTS_H_
#define RWKV_ENGINE_INTERNAL_RWKV7_WEIGHTS_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "engine/internal/linear_layer.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

struct Rwkv7Layer {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;  // [C]
  // Time mixing. att_mix rows: x_r, x_w, x_k, x_v, x_a, x_g ([6, C]).
  at::Tensor att_mix;
  at::Tensor w0;      // [C], fp32 (decay bias)
  at::Tensor a0, v0;  // [C] (v0 undefined in layer 0, which makes v_first)
  // LoRA factors, [out, in]: w1 [Dw, C], w2 [C, Dw], a1 [Da, C], a2 [C, Da],
  // v1 [Dv, C], v2 [C, Dv] (undefined in layer 0), g1 [Dg, C], g2 [C, Dg].
  at::Tensor w1, w2, a1, a2, v1, v2, g1, g2;
  at::Tensor k_k, k_a;  // [C]
  at::Tensor r_k;       // [C] (the checkpoint's [H, N], flattened)
  at::Tensor receptance, key, value, output;  // [C, C]
  at::Tensor ln_x_w, ln_x_b;                  // [C] (group norm over heads)
  // Channel mixing.
  at::Tensor ffn_mix_k;  // [C]
  at::Tensor ffn_key;    // [F, C]
  at::Tensor ffn_value;  // [C, F]
};

struct Rwkv7Weights {
  ModelConfig config;       // arch kRwkv7; n_head * head_size == n_embd
  at::Tensor emb;           // [V, C]
  at::Tensor ln0_w, ln0_b;  // applied to the embedding (block 0's ln0)
  std::vector<Rwkv7Layer> layers;
  at::Tensor ln_out_w, ln_out_b;
  at::Tensor head;  // [V, C]
  // Matrices the checkpoint stores as int8, by tensor name; their tensors
  // above are dequantized ([out, in] like the others).
  std::map<std::string, Int8Source> int8;
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV7_WEIGHTS_H_
