#include "engine/internal/rwkv7_model.h"

#include <ATen/core/grad_mode.h>

#include <cmath>
#include <string>
#include <utility>

#include "engine/internal/wkv7_cpu.h"

namespace rwkv::engine::internal {
namespace {

// Every tensor of a layer, for counting and byte sums.
std::vector<const at::Tensor*> LayerTensors(const Rwkv7Layer& l) {
  return {&l.ln1_w,     &l.ln1_b,   &l.ln2_w,    &l.ln2_b,  &l.att_mix,
          &l.w0,        &l.a0,      &l.v0,       &l.w1,     &l.w2,
          &l.a1,        &l.a2,      &l.v1,       &l.v2,     &l.g1,
          &l.g2,        &l.k_k,     &l.k_a,      &l.r_k,    &l.receptance,
          &l.key,       &l.value,   &l.output,   &l.ln_x_w, &l.ln_x_b,
          &l.ffn_mix_k, &l.ffn_key, &l.ffn_value};
}

}  // namespace

const std::vector<std::string>& Rwkv7StateNames() {
  static const auto* names =
      new std::vector<std::string>{"att_x_prev", "att_kv", "ffn_x_prev"};
  return *names;
}

void FinishRwkv7Config(Rwkv7Weights& w) {
  ModelConfig& c = w.config;
  int64_t n = 0;
  auto add = [&](const at::Tensor& t) {
    if (t.defined()) n += t.numel();
  };
  add(w.emb);
  add(w.ln0_w);
  add(w.ln0_b);
  add(w.ln_out_w);
  add(w.ln_out_b);
  add(w.head);
  for (const Rwkv7Layer& l : w.layers) {
    for (const at::Tensor* t : LayerTensors(l)) add(*t);
  }
  c.n_params = n;
  const int64_t L = c.n_layer, C = c.n_embd, N = c.head_size;
  c.state_bytes_fp32 = (2 * L * C + L * c.n_head * N * N) * 4;
}

Rwkv7Model::Rwkv7Model(Rwkv7Weights weights, bool fast_cpu, WeightFormat format)
    : w_(std::move(weights)),
      fast_cpu_(fast_cpu),
      format_(fast_cpu ? format : WeightFormat::kFloat32) {
  const int64_t C = w_.config.n_embd;
  // ChatRWKV folds block 0's ln0 into the embedding at load; so do we.
  w_.emb = at::layer_norm(w_.emb.to(at::kFloat), {C}, w_.ln0_w.to(at::kFloat),
                          w_.ln0_b.to(at::kFloat), 1e-5)
               .to(w_.head.scalar_type())
               .contiguous();
  // Large matrices in format_ (bit-exact from the checkpoint's int8); LoRA
  // factors in fp32.
  auto linear = [&](const at::Tensor& t, const std::string& name) {
    auto it = w_.int8.find(name);
    return LinearLayer(t, fast_cpu_, format_,
                       it == w_.int8.end() ? nullptr : &it->second);
  };
  auto lora = [&](const at::Tensor& t) {
    return t.defined() ? LinearLayer(t, fast_cpu_) : LinearLayer();
  };
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    const Rwkv7Layer& l = w_.layers[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    LayerLinears lin;
    lin.receptance = linear(l.receptance, p + "att.receptance.weight");
    lin.key = linear(l.key, p + "att.key.weight");
    lin.value = linear(l.value, p + "att.value.weight");
    lin.output = linear(l.output, p + "att.output.weight");
    lin.w1 = lora(l.w1);
    lin.w2 = lora(l.w2);
    lin.a1 = lora(l.a1);
    lin.a2 = lora(l.a2);
    lin.v1 = lora(l.v1);
    lin.v2 = lora(l.v2);
    lin.g1 = lora(l.g1);
    lin.g2 = lora(l.g2);
    lin.ffn_key = linear(l.ffn_key, p + "ffn.key.weight");
    lin.ffn_value = linear(l.ffn_value, p + "ffn.value.weight");
    linears_.push_back(std::move(lin));
  }
  head_ = linear(w_.head, "head.weight");
  w_.int8.clear();
  if (fast_cpu_) {
    // The linears hold the only copy of the matrices now.
    for (Rwkv7Layer& l : w_.layers) {
      for (at::Tensor* t :
           {&l.receptance, &l.key, &l.value, &l.output, &l.w1, &l.w2, &l.a1,
            &l.a2, &l.v1, &l.v2, &l.g1, &l.g2, &l.ffn_key, &l.ffn_value}) {
        *t = at::Tensor();
      }
    }
    w_.head = at::Tensor();
    auto f = [](const at::Tensor& t) {
      return t.defined() ? t.data_ptr<float>() : nullptr;
    };
    cpu_.n_embd = C;
    cpu_.ffn_dim = w_.config.ffn_dim;
    cpu_.vocab = w_.config.vocab_size;
    cpu_.n_head = w_.config.n_head;
    cpu_.head_size = w_.config.head_size;
    cpu_.emb = f(w_.emb);
    cpu_.ln_out_w = f(w_.ln_out_w);
    cpu_.ln_out_b = f(w_.ln_out_b);
    cpu_.head = head_.packed();
    for (size_t i = 0; i < w_.layers.size(); ++i) {
      const Rwkv7Layer& l = w_.layers[i];
      const LayerLinears& lin = linears_[i];
      Rwkv7CpuLayer c;
      c.ln1_w = f(l.ln1_w);
      c.ln1_b = f(l.ln1_b);
      c.ln2_w = f(l.ln2_w);
      c.ln2_b = f(l.ln2_b);
      c.att_mix = f(l.att_mix);
      c.w0 = f(l.w0);
      c.a0 = f(l.a0);
      c.v0 = f(l.v0);
      c.k_k = f(l.k_k);
      c.k_a = f(l.k_a);
      c.r_k = f(l.r_k);
      c.ln_x_w = f(l.ln_x_w);
      c.ln_x_b = f(l.ln_x_b);
      c.ffn_mix_k = f(l.ffn_mix_k);
      c.receptance = lin.receptance.packed();
      c.key = lin.key.packed();
      c.value = lin.value.packed();
      c.output = lin.output.packed();
      c.w1 = lin.w1.packed();
      c.w2 = lin.w2.packed();
      c.a1 = lin.a1.packed();
      c.a2 = lin.a2.packed();
      c.v1 = lin.v1.packed();
      c.v2 = lin.v2.packed();
      c.g1 = lin.g1.packed();
      c.g2 = lin.g2.packed();
      c.ffn_key = lin.ffn_key.packed();
      c.ffn_value = lin.ffn_value.packed();
      cpu_.layers.push_back(c);
    }
  }
}

int64_t Rwkv7Model::WeightBytes() const {
  int64_t bytes = head_.weight_bytes();
  auto add = [&](const at::Tensor& t) {
    if (t.defined()) bytes += t.numel() * t.element_size();
  };
  add(w_.emb);
  add(w_.ln_out_w);
  add(w_.ln_out_b);
  add(w_.head);
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    for (const at::Tensor* t : LayerTensors(w_.layers[i])) add(*t);
    const LayerLinears& lin = linears_[i];
    for (const LinearLayer* x :
         {&lin.receptance, &lin.key, &lin.value, &lin.output, &lin.w1, &lin.w2,
          &lin.a1, &lin.a2, &lin.v1, &lin.v2, &lin.g1, &lin.g2, &lin.ffn_key,
          &lin.ffn_value}) {
      bytes += x->weight_bytes();
    }
  }
  return bytes;
}

std::vector<at::Tensor> Rwkv7Model::NewState(int64_t batch) const {
  const int64_t L = w_.config.n_layer, C = w_.config.n_embd;
  const int64_t H = w_.config.n_head, N = w_.config.head_size;
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device());
  std::vector<at::Tensor> s(3);
  s[kV7AttXPrev] = at::zeros({L, batch, C}, opts);
  s[kV7AttKv] = at::zeros({L, batch, H, N, N}, opts);
  s[kV7FfnXPrev] = at::zeros({L, batch, C}, opts);
  return s;
}

at::Tensor Rwkv7Model::Wkv(const at::Tensor& r, const at::Tensor& w,
                           const at::Tensor& k, const at::Tensor& v,
                           const at::Tensor& kk, const at::Tensor& a,
                           at::Tensor& kv, bool functional) const {
  const int64_t B = r.size(0), T = r.size(1), C = r.size(2);
  const int64_t H = w_.config.n_head, N = w_.config.head_size;
  if (r.device().is_cpu() && !functional) {
    auto f32 = [](const at::Tensor& t) {
      return t.to(at::kFloat).contiguous();
    };
    at::Tensor rc = f32(r), wc = f32(w), kc = f32(k), vc = f32(v),
               kkc = f32(kk), ac = f32(a);
    at::Tensor s = kv.contiguous();
    at::Tensor out = at::empty({B, T, C}, rc.options());
    Wkv7ForwardCpu(B, T, H, N, rc.data_ptr<float>(), wc.data_ptr<float>(),
                   kc.data_ptr<float>(), vc.data_ptr<float>(),
                   kkc.data_ptr<float>(), ac.data_ptr<float>(),
                   s.data_ptr<float>(), out.data_ptr<float>());
    if (!s.is_same(kv)) kv.copy_(s);
    return out;
  }
  // Generic path (CUDA, autograd): the same recurrence in torch ops.
  auto heads = [&](const at::Tensor& t) {
    return t.to(at::kFloat).reshape({B, T, H, N});
  };
  at::Tensor rf = heads(r), wf = heads(w), kf = heads(k), vf = heads(v),
             kkf = heads(kk), af = heads(a);
  at::Tensor S = kv;
  std::vector<at::Tensor> outs;
  outs.reserve(T);
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor kkt = kkf.select(1, t);                    // [B, H, N]
    at::Tensor sa = at::matmul(S, (-kkt).unsqueeze(-1));  // [B, H, N, 1]
    S = S * wf.select(1, t).unsqueeze(-2) +
        sa * (kkt * af.select(1, t)).unsqueeze(-2) +
        vf.select(1, t).unsqueeze(-1) * kf.select(1, t).unsqueeze(-2);
    outs.push_back(at::matmul(S, rf.select(1, t).unsqueeze(-1)).squeeze(-1));
  }
  if (functional) {
    kv = S;
  } else {
    kv.copy_(S);
  }
  return at::stack(outs, 1).reshape({B, T, C});
}

void Rwkv7Model::ForwardCpu(const int32_t* tokens, int64_t B, int64_t T,
                            const CpuStateRows& state, float* logits) const {
  TORCH_CHECK(fast_cpu_, "ForwardCpu needs a fast_cpu model");
  Rwkv7CpuForward(cpu_, tokens, B, T, state, logits);
}

void Rwkv7Model::ForwardCpuSegments(const int32_t* tokens,
                                    const int32_t* lengths, int64_t n,
                                    const CpuStateRows& state,
                                    float* logits) const {
  TORCH_CHECK(fast_cpu_, "ForwardCpuSegments needs a fast_cpu model");
  Rwkv7CpuForwardSegments(cpu_, tokens, lengths, n, state, logits);
}

at::Tensor Rwkv7Model::Forward(const at::Tensor& tokens,
                               std::vector<at::Tensor>& state) const {
  if (fast_cpu_ && !at::GradMode::is_enabled()) {
    return ForwardStackedFused(tokens, state);
  }
  return Run(tokens, state);
}

at::Tensor Rwkv7Model::ForwardRows(
    const at::Tensor& tokens,
    const std::vector<std::vector<at::Tensor>*>& rows) const {
  if (fast_cpu_ && !at::GradMode::is_enabled()) {
    return ForwardRowsFused(tokens, rows);
  }
  return RwkvModel::ForwardRows(tokens, rows);
}

at::Tensor Rwkv7Model::Run(const at::Tensor& tokens,
                           std::vector<at::Tensor>& state) const {
  const int64_t B = tokens.size(0), T = tokens.size(1);
  const int64_t C = w_.config.n_embd;
  const int64_t H = w_.config.n_head, N = w_.config.head_size;
  const at::ScalarType dt = dtype();
  const bool grad = at::GradMode::is_enabled();
  const double decay_scale = -std::exp(-0.5);
  std::vector<std::vector<at::Tensor>> new_layers(grad ? 3 : 0);
  at::Tensor x = at::embedding(w_.emb, tokens.to(device(), at::kLong))
                     .contiguous();  // [B,T,C]
  at::Tensor v_first;
  auto shifted = [&](const at::Tensor& xx, const at::Tensor& prev_state) {
    at::Tensor prev = prev_state.to(dt).unsqueeze(1);
    return T == 1 ? prev : at::cat({prev, xx.narrow(1, 0, T - 1)}, 1);
  };
  for (int i = 0; i < w_.config.n_layer; ++i) {
    const Rwkv7Layer& l = w_.layers[i];
    const LayerLinears& lin = linears_[i];

    // Time mixing.
    at::Tensor xx = at::layer_norm(x, {C}, l.ln1_w, l.ln1_b, 1e-5);
    at::Tensor sx = shifted(xx, state[kV7AttXPrev].select(0, i));
    // Rows x_r, x_w, x_k, x_v, x_a, x_g of x + (x_prev - x) * mix.
    at::Tensor mixed =
        at::addcmul(xx.unsqueeze(2), (sx - xx).unsqueeze(2), l.att_mix);
    auto mix = [&](int j) { return mixed.select(2, j); };
    at::Tensor r = lin.receptance.Forward(mix(0));
    at::Tensor wl = lin.w2.Forward(at::tanh(lin.w1.Forward(mix(1))));
    at::Tensor k = lin.key.Forward(mix(2));
    at::Tensor xv = mix(3);
    at::Tensor v = lin.value.Forward(xv);
    at::Tensor a = at::sigmoid(lin.a2.Forward(lin.a1.Forward(mix(4))) + l.a0);
    at::Tensor g = lin.g2.Forward(at::sigmoid(lin.g1.Forward(mix(5))));
    at::Tensor kk = (k * l.k_k).reshape({B, T, H, N});
    kk =
        (kk /
         at::linalg_vector_norm(kk, 2, {-1}, /*keepdim=*/true).clamp_min(1e-12))
            .reshape({B, T, C});
    k = k * (1 + (a - 1) * l.k_a);
    if (i == 0) {
      v_first = v;
    } else {
      v = v + (v_first - v) *
                  at::sigmoid(lin.v2.Forward(lin.v1.Forward(xv)) + l.v0);
    }
    at::Tensor w = at::exp(at::sigmoid(wl.to(at::kFloat) + l.w0) * decay_scale);
    at::Tensor kv = state[kV7AttKv].select(0, i);
    at::Tensor y = Wkv(r, w, k, v, kk, a, kv, grad);
    y = at::group_norm(y.to(dt).reshape({B * T, C}), H, l.ln_x_w, l.ln_x_b,
                       64e-5)
            .reshape({B, T, C});
    y = y + ((r * k * l.r_k).reshape({B, T, H, N}).sum(-1, /*keepdim=*/true) *
             v.reshape({B, T, H, N}))
                .reshape({B, T, C});
    x = x + lin.output.Forward(y * g);
    at::Tensor last_xx = xx.select(1, T - 1).to(at::kFloat);

    // Channel mixing.
    at::Tensor xx2 = at::layer_norm(x, {C}, l.ln2_w, l.ln2_b, 1e-5);
    at::Tensor sx2 = shifted(xx2, state[kV7FfnXPrev].select(0, i));
    at::Tensor kx = at::addcmul(xx2, sx2 - xx2, l.ffn_mix_k);
    x = x +
        lin.ffn_value.Forward(at::square(at::relu(lin.ffn_key.Forward(kx))));
    at::Tensor last_xx2 = xx2.select(1, T - 1).to(at::kFloat);

    if (grad) {
      new_layers[kV7AttXPrev].push_back(last_xx);
      new_layers[kV7AttKv].push_back(kv);
      new_layers[kV7FfnXPrev].push_back(last_xx2);
    } else {
      state[kV7AttXPrev].select(0, i).copy_(last_xx);
      state[kV7FfnXPrev].select(0, i).copy_(last_xx2);
    }
  }
  if (grad) {
    for (int j = 0; j < 3; ++j) state[j] = at::stack(new_layers[j], 0);
  }
  at::Tensor last = x.select(1, T - 1);  // [B, C]
  last = at::layer_norm(last, {C}, w_.ln_out_w, w_.ln_out_b, 1e-5);
  return head_.Forward(last).to(at::kFloat);
}

}  // namespace rwkv::engine::internal
