#include "engine/internal/rwkv4_model.h"

#include <ATen/core/grad_mode.h>

#include <string>
#include <utility>

#include "engine/internal/wkv4_cpu.h"

namespace rwkv::engine::internal {

const std::vector<std::string>& Rwkv4StateNames() {
  static const auto* names = new std::vector<std::string>{
      "att_aa", "att_ab", "att_pp", "att_x_prev", "ffn_x_prev"};
  return *names;
}

Rwkv4Model::Rwkv4Model(Rwkv4Weights weights, bool fast_cpu, WeightFormat format)
    : w_(std::move(weights)),
      fast_cpu_(fast_cpu),
      format_(fast_cpu ? format : WeightFormat::kFloat32) {
  const int64_t C = w_.config.n_embd;
  // ChatRWKV folds block 0's ln0 into the embedding at load; so do we.
  w_.emb = at::layer_norm(w_.emb.to(at::kFloat), {C}, w_.ln0_w.to(at::kFloat),
                          w_.ln0_b.to(at::kFloat), 1e-5)
               .to(w_.head.scalar_type())
               .contiguous();
  auto linear = [&](const at::Tensor& t, const std::string& name) {
    auto it = w_.int8.find(name);
    return LinearLayer(t, fast_cpu_, format_,
                       it == w_.int8.end() ? nullptr : &it->second);
  };
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    const Rwkv4Layer& l = w_.layers[i];
    const std::string p = "blocks." + std::to_string(i) + ".";
    linears_.push_back(
        LayerLinears{linear(l.att_key, p + "att.key.weight"),
                     linear(l.att_value, p + "att.value.weight"),
                     linear(l.att_receptance, p + "att.receptance.weight"),
                     linear(l.att_output, p + "att.output.weight"),
                     linear(l.ffn_key, p + "ffn.key.weight"),
                     linear(l.ffn_receptance, p + "ffn.receptance.weight"),
                     linear(l.ffn_value, p + "ffn.value.weight")});
  }
  head_ = linear(w_.head, "head.weight");
  w_.int8.clear();
  if (fast_cpu_) {
    // The linears hold the only copy of the matrices now.
    for (Rwkv4Layer& l : w_.layers) {
      for (at::Tensor* t :
           {&l.att_key, &l.att_value, &l.att_receptance, &l.att_output,
            &l.ffn_key, &l.ffn_receptance, &l.ffn_value}) {
        *t = at::Tensor();
      }
    }
    w_.head = at::Tensor();
    // The fused forward reads the fp32 vectors and packed matrices directly.
    auto f = [](const at::Tensor& t) { return t.data_ptr<float>(); };
    cpu_.n_embd = C;
    cpu_.ffn_dim = w_.config.ffn_dim;
    cpu_.vocab = w_.config.vocab_size;
    cpu_.emb = f(w_.emb);
    cpu_.ln_out_w = f(w_.ln_out_w);
    cpu_.ln_out_b = f(w_.ln_out_b);
    cpu_.head = head_.packed();
    for (size_t i = 0; i < w_.layers.size(); ++i) {
      const Rwkv4Layer& l = w_.layers[i];
      const LayerLinears& lin = linears_[i];
      cpu_.layers.push_back(Rwkv4CpuLayer{
          f(l.ln1_w), f(l.ln1_b), f(l.ln2_w), f(l.ln2_b), f(l.att_time_decay),
          f(l.att_time_first), f(l.att_mix_k), f(l.att_mix_v), f(l.att_mix_r),
          f(l.ffn_mix_k), f(l.ffn_mix_r), lin.att_key.packed(),
          lin.att_value.packed(), lin.att_receptance.packed(),
          lin.att_output.packed(), lin.ffn_key.packed(),
          lin.ffn_receptance.packed(), lin.ffn_value.packed()});
    }
  }
}

int64_t Rwkv4Model::WeightBytes() const {
  int64_t bytes = head_.weight_bytes();
  auto add = [&](const at::Tensor& t) {
    if (t.defined()) bytes += t.numel() * t.element_size();
  };
  add(w_.emb);
  add(w_.ln_out_w);
  add(w_.ln_out_b);
  for (size_t i = 0; i < w_.layers.size(); ++i) {
    const Rwkv4Layer& l = w_.layers[i];
    for (const at::Tensor* t :
         {&l.ln1_w, &l.ln1_b, &l.ln2_w, &l.ln2_b, &l.att_time_decay,
          &l.att_time_first, &l.att_mix_k, &l.att_mix_v, &l.att_mix_r,
          &l.att_key, &l.att_value, &l.att_receptance, &l.att_output,
          &l.ffn_mix_k, &l.ffn_mix_r, &l.ffn_key, &l.ffn_receptance,
          &l.ffn_value}) {
      add(*t);
    }
    const LayerLinears& lin = linears_[i];
    for (const LinearLayer* x :
         {&lin.att_key, &lin.att_value, &lin.att_receptance, &lin.att_output,
          &lin.ffn_key, &lin.ffn_receptance, &lin.ffn_value}) {
      bytes += x->weight_bytes();
    }
  }
  return bytes;
}

std::vector<at::Tensor> Rwkv4Model::NewState(int64_t batch) const {
  const int64_t L = w_.config.n_layer, C = w_.config.n_embd;
  auto opts = at::TensorOptions().dtype(at::kFloat).device(device());
  std::vector<at::Tensor> s(5);
  s[kAttAa] = at::zeros({L, batch, C}, opts);
  s[kAttAb] = at::zeros({L, batch, C}, opts);
  s[kAttPp] = at::full({L, batch, C}, -1e30, opts);
  s[kAttXPrev] = at::zeros({L, batch, C}, opts);
  s[kFfnXPrev] = at::zeros({L, batch, C}, opts);
  return s;
}

at::Tensor Rwkv4Model::Wkv(int layer, const at::Tensor& k, const at::Tensor& v,
                           at::Tensor& aa, at::Tensor& bb,
                           at::Tensor& pp) const {
  const Rwkv4Layer& l = w_.layers[layer];
  const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
  const bool grad =
      at::GradMode::is_enabled() &&
      (k.requires_grad() || v.requires_grad() || aa.requires_grad() ||
       bb.requires_grad() || pp.requires_grad());
  if (k.device().is_cpu() && !grad) {
    at::Tensor kc = k.to(at::kFloat).contiguous();
    at::Tensor vc = v.to(at::kFloat).contiguous();
    at::Tensor out = at::empty({B, T, C}, kc.options());
    at::Tensor a = aa.contiguous(), b = bb.contiguous(), p = pp.contiguous();
    Wkv4ForwardCpu(B, T, C, l.att_time_first.data_ptr<float>(),
                   l.att_time_decay.data_ptr<float>(), kc.data_ptr<float>(),
                   vc.data_ptr<float>(), a.data_ptr<float>(),
                   b.data_ptr<float>(), p.data_ptr<float>(),
                   out.data_ptr<float>());
    if (!a.is_same(aa)) aa.copy_(a);
    if (!b.is_same(bb)) bb.copy_(b);
    if (!p.is_same(pp)) pp.copy_(p);
    return out;
  }
  // Generic path (CUDA, autograd): the same recurrence in torch ops.
  at::Tensor kf = k.to(at::kFloat), vf = v.to(at::kFloat);
  at::Tensor a = aa, b = bb, p = pp;
  std::vector<at::Tensor> outs;
  outs.reserve(T);
  const at::Tensor& u = l.att_time_first;
  const at::Tensor& w = l.att_time_decay;
  for (int64_t t = 0; t < T; ++t) {
    at::Tensor kk = kf.select(1, t), vv = vf.select(1, t);
    at::Tensor ww = u + kk;
    at::Tensor q = at::maximum(p, ww);
    at::Tensor e1 = at::exp(p - q), e2 = at::exp(ww - q);
    outs.push_back((e1 * a + e2 * vv) / (e1 * b + e2));
    ww = w + p;
    q = at::maximum(ww, kk);
    e1 = at::exp(ww - q);
    e2 = at::exp(kk - q);
    a = e1 * a + e2 * vv;
    b = e1 * b + e2;
    p = q;
  }
  if (grad) {
    aa = a;
    bb = b;
    pp = p;
  } else {
    aa.copy_(a);
    bb.copy_(b);
    pp.copy_(p);
  }
  return at::stack(outs, 1);
}

void Rwkv4Model::ForwardCpu(const int32_t* tokens, int64_t B, int64_t T,
                            const CpuStateRows& state, float* logits) const {
  TORCH_CHECK(fast_cpu_, "ForwardCpu needs a fast_cpu model");
  Rwkv4CpuForward(cpu_, tokens, B, T, state, logits);
}

void Rwkv4Model::ForwardCpuSegments(const int32_t* tokens,
                                    const int32_t* lengths, int64_t n,
                                    const CpuStateRows& state,
                                    float* logits) const {
  TORCH_CHECK(fast_cpu_, "ForwardCpuSegments needs a fast_cpu model");
  Rwkv4CpuForwardSegments(cpu_, tokens, lengths, n, state, logits);
}

at::Tensor Rwkv4Model::ForwardRows(
    const at::Tensor& tokens,
    const std::vector<std::vector<at::Tensor>*>& rows) const {
  if (fast_cpu_ && !at::GradMode::is_enabled()) {
    return ForwardRowsFused(tokens, rows);
  }
  return RwkvModel::ForwardRows(tokens, rows);
}

at::Tensor Rwkv4Model::Forward(const at::Tensor& tokens,
                               std::vector<at::Tensor>& state) const {
  if (fast_cpu_ && !at::GradMode::is_enabled()) {
    return ForwardStackedFused(tokens, state);
  }
  const int64_t T = tokens.size(1);
  const int64_t C = w_.config.n_embd;
  const at::ScalarType dt = dtype();
  const bool grad = at::GradMode::is_enabled();
  std::vector<std::vector<at::Tensor>> new_layers(grad ? 5 : 0);
  at::Tensor x = at::embedding(w_.emb, tokens.to(device(), at::kLong))
                     .contiguous();  // [B,T,C]
  for (int i = 0; i < w_.config.n_layer; ++i) {
    const Rwkv4Layer& l = w_.layers[i];
    const LayerLinears& lin = linears_[i];
    at::Tensor aa = state[kAttAa].select(0, i);
    at::Tensor bb = state[kAttAb].select(0, i);
    at::Tensor pp = state[kAttPp].select(0, i);

    // Time mixing.
    at::Tensor xx = at::layer_norm(x, {C}, l.ln1_w, l.ln1_b, 1e-5);
    at::Tensor prev = state[kAttXPrev].select(0, i).to(dt).unsqueeze(1);
    at::Tensor sx = T == 1 ? prev : at::cat({prev, xx.narrow(1, 0, T - 1)}, 1);
    at::Tensor kx = xx * l.att_mix_k + sx * (1 - l.att_mix_k);
    at::Tensor vx = xx * l.att_mix_v + sx * (1 - l.att_mix_v);
    at::Tensor rx = xx * l.att_mix_r + sx * (1 - l.att_mix_r);
    at::Tensor r = at::sigmoid(lin.att_receptance.Forward(rx));
    at::Tensor k = lin.att_key.Forward(kx);
    at::Tensor v = lin.att_value.Forward(vx);
    at::Tensor wkv = Wkv(i, k, v, aa, bb, pp);
    x = x + lin.att_output.Forward(r * wkv.to(dt));
    at::Tensor last_xx = xx.select(1, T - 1).to(at::kFloat);

    // Channel mixing.
    at::Tensor xx2 = at::layer_norm(x, {C}, l.ln2_w, l.ln2_b, 1e-5);
    at::Tensor prev2 = state[kFfnXPrev].select(0, i).to(dt).unsqueeze(1);
    at::Tensor sx2 =
        T == 1 ? prev2 : at::cat({prev2, xx2.narrow(1, 0, T - 1)}, 1);
    at::Tensor kx2 = xx2 * l.ffn_mix_k + sx2 * (1 - l.ffn_mix_k);
    at::Tensor rx2 = xx2 * l.ffn_mix_r + sx2 * (1 - l.ffn_mix_r);
    at::Tensor r2 = at::sigmoid(lin.ffn_receptance.Forward(rx2));
    at::Tensor k2 = at::square(at::relu(lin.ffn_key.Forward(kx2)));
    x = x + r2 * lin.ffn_value.Forward(k2);
    at::Tensor last_xx2 = xx2.select(1, T - 1).to(at::kFloat);

    if (grad) {
      // Functional update keeps the graph intact for training: collect the
      // new per-layer tensors and stack them after the last layer.
      for (int j = 0; j < 5; ++j) {
        const at::Tensor* t[] = {&aa, &bb, &pp, &last_xx, &last_xx2};
        new_layers[j].push_back(*t[j]);
      }
    } else {
      state[kAttXPrev].select(0, i).copy_(last_xx);
      state[kFfnXPrev].select(0, i).copy_(last_xx2);
    }
  }
  if (grad) {
    for (int j = 0; j < 5; ++j) state[j] = at::stack(new_layers[j], 0);
  }
  at::Tensor last = x.select(1, T - 1);  // [B, C]
  last = at::layer_norm(last, {C}, w_.ln_out_w, w_.ln_out_b, 1e-5);
  return head_.Forward(last).to(at::kFloat);
}

}  // namespace rwkv::engine::internal
