// Rwkv4Weights: the tensors of an RWKV-4 model, already in the layout the
// math wants (time_decay stored as -exp(time_decay), time_mix as [C]).
#ifndef RWKV_ENGINE_INTERNAL_RWKV4_WEIGHTS_H_
#define RWKV_ENGINE_INTERNAL_RWKV4_WEIGHTS_H_

#include <ATen/ATen.h>

#include <map>
#include <string>
#include <vector>

#include "engine/internal/linear_layer.h"
#include "engine/model_config.h"

namespace rwkv::engine::internal {

struct Rwkv4Layer {
  at::Tensor ln1_w, ln1_b, ln2_w, ln2_b;
  // Time mixing. time_decay = -exp(checkpoint value), fp32; time_first fp32.
  at::Tensor att_time_decay, att_time_first;
  at::Tensor att_mix_k, att_mix_v, att_mix_r;                 // [C]
  at::Tensor att_key, att_value, att_receptance, att_output;  // [C, C]
  // Channel mixing.
  at::Tensor ffn_mix_k, ffn_mix_r;  // [C]
  at::Tensor ffn_key;               // [F, C]
  at::Tensor ffn_receptance;        // [C, C]
  at::Tensor ffn_value;             // [C, F]
};

struct Rwkv4Weights {
  ModelConfig config;
  at::Tensor emb;           // [V, C]
  at::Tensor ln0_w, ln0_b;  // applied to the embedding (block 0's ln0)
  std::vector<Rwkv4Layer> layers;
  at::Tensor ln_out_w, ln_out_b;
  at::Tensor head;  // [V, C]
  // Matrices the checkpoint stores as int8, by tensor name
  // ("blocks.0.att.key.weight"); their fp32 tensors above are dequantized.
  std::map<std::string, Int8Source> int8;
};

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV4_WEIGHTS_H_
