#include "tools/train/rwkv4_train_model.h"

#include <cmath>
#include <iterator>
#include <map>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/model_config.h"
#include "tools/train/wkv4_op.h"

namespace rwkv::train {
namespace {

// Per-layer parameter suffixes, in checkpoint (and layer_ vector) order:
// the engine's list, so what rwkv-train writes is what the loader accepts.
const std::vector<std::string>& LayerNames() {
  static const auto* names =
      new std::vector<std::string>(std::begin(engine::kRwkv4LayerTensorNames),
                                   std::end(engine::kRwkv4LayerTensorNames));
  return *names;
}
enum LayerParam {
  kLn1W = 0,
  kLn1B,
  kLn2W,
  kLn2B,
  kDecay,
  kFirst,
  kMixK,
  kMixV,
  kMixR,
  kKey,
  kValue,
  kRec,
  kOut,
  kFMixK,
  kFMixR,
  kFKey,
  kFRec,
  kFValue,
  kNumLayerParams
};
static_assert(std::size(engine::kRwkv4LayerTensorNames) == kNumLayerParams,
              "LayerParam follows kRwkv4LayerTensorNames");

std::vector<int64_t> LayerShape(int p, int64_t C, int64_t F) {
  switch (p) {
    case kDecay:
    case kFirst:
      return {C};
    case kMixK:
    case kMixV:
    case kMixR:
    case kFMixK:
    case kFMixR:
      return {1, 1, C};
    case kKey:
    case kValue:
    case kRec:
    case kOut:
    case kFRec:
      return {C, C};
    case kFKey:
      return {F, C};
    case kFValue:
      return {C, F};
    default:
      return {C};
  }
}

engine::DType ToDType(torch::ScalarType t) {
  return t == torch::kHalf ? engine::DType::kFloat16 : engine::DType::kFloat32;
}

}  // namespace

Rwkv4TrainModel::Rwkv4TrainModel(const ModelShape& shape, uint64_t seed)
    : shape_(shape) {
  if (shape_.ffn_dim == 0) shape_.ffn_dim = 4 * shape_.n_embd;
  const int64_t L = shape_.n_layer, C = shape_.n_embd, V = shape_.vocab_size,
                F = shape_.ffn_dim;
  torch::manual_seed(seed);
  auto f32 = torch::TensorOptions().dtype(torch::kFloat);
  params_.emplace_back("emb.weight",
                       torch::empty({V, C}, f32).uniform_(-1e-4, 1e-4));
  torch::Tensor x = torch::arange(C, f32) / static_cast<double>(C);
  for (int64_t i = 0; i < L; ++i) {
    const double r01 = L > 1 ? static_cast<double>(i) / (L - 1) : 0.0;
    const double r1a0 = 1.0 - static_cast<double>(i) / L;
    const std::string pre = absl::StrCat("blocks.", i, ".");
    for (int p = 0; p < static_cast<int>(LayerNames().size()); ++p) {
      std::vector<int64_t> s = LayerShape(p, C, F);
      torch::Tensor t;
      switch (p) {
        case kLn1W:
        case kLn2W:
          t = torch::ones(s, f32);
          break;
        case kLn1B:
        case kLn2B:
          t = torch::zeros(s, f32);
          break;
        case kDecay: {
          torch::Tensor h = torch::arange(C, f32) / static_cast<double>(C - 1);
          t = -5.0 + 8.0 * torch::pow(h, 0.7 + 1.3 * r01);
          break;
        }
        case kFirst: {
          torch::Tensor zig =
              (torch::remainder(torch::arange(C, f32) + 1, 3) - 1) * 0.5;
          t = std::log(0.3) + zig;
          break;
        }
        case kMixK:
        case kFMixK:
        case kFMixR:
          t = torch::pow(x, r1a0).reshape(s);
          break;
        case kMixV:
          t = (torch::pow(x, r1a0) + 0.3 * r01).reshape(s);
          break;
        case kMixR:
          t = torch::pow(x, 0.5 * r1a0).reshape(s);
          break;
        case kValue:
        case kFKey:
          t = torch::randn(s, f32) / std::sqrt(static_cast<double>(s[1]));
          break;
        default:  // key, receptance, output, ffn receptance/value: zero
          t = torch::zeros(s, f32);
          break;
      }
      params_.emplace_back(pre + LayerNames()[p], t.contiguous());
      if (i == 0 && p == kLn2B) {
        params_.emplace_back(pre + "ln0.weight", torch::ones({C}, f32));
        params_.emplace_back(pre + "ln0.bias", torch::zeros({C}, f32));
      }
    }
  }
  params_.emplace_back("ln_out.weight", torch::ones({C}, f32));
  params_.emplace_back("ln_out.bias", torch::zeros({C}, f32));
  params_.emplace_back("head.weight",
                       torch::randn({V, C}, f32) * (0.5 / std::sqrt(C)));
  Index();
  SetRequiresGrad(true);
}

absl::StatusOr<Rwkv4TrainModel> Rwkv4TrainModel::FromTensors(
    std::vector<std::pair<std::string, torch::Tensor>> named) {
  std::map<std::string, torch::Tensor> by_name;
  for (auto& [n, t] : named) by_name[n] = t.to(torch::kFloat).contiguous();
  auto get = [&](const std::string& n) -> torch::Tensor {
    auto it = by_name.find(n);
    return it == by_name.end() ? torch::Tensor() : it->second;
  };
  torch::Tensor emb = get("emb.weight");
  if (!emb.defined() || emb.dim() != 2) {
    return absl::InvalidArgumentError("checkpoint has no emb.weight [V, C]");
  }
  ModelShape shape;
  shape.vocab_size = emb.size(0);
  shape.n_embd = emb.size(1);
  int L = 0;
  while (get(absl::StrCat("blocks.", L, ".ln1.weight")).defined()) ++L;
  shape.n_layer = L;
  torch::Tensor fk = get("blocks.0.ffn.key.weight");
  if (L == 0 || !fk.defined()) {
    return absl::InvalidArgumentError("checkpoint has no RWKV-4 blocks");
  }
  shape.ffn_dim = fk.size(0);
  Rwkv4TrainModel m;
  m.shape_ = shape;
  const int64_t C = shape.n_embd, F = shape.ffn_dim, V = shape.vocab_size;
  auto take = [&](const std::string& n,
                  std::vector<int64_t> s) -> absl::Status {
    torch::Tensor t = get(n);
    if (!t.defined()) return absl::InvalidArgumentError("missing " + n);
    if (t.numel() != torch::empty(s).numel()) {
      return absl::InvalidArgumentError("bad shape for " + n);
    }
    m.params_.emplace_back(n, t.reshape(s).clone());
    return absl::OkStatus();
  };
  absl::Status st = take("emb.weight", {V, C});
  for (int i = 0; i < L && st.ok(); ++i) {
    const std::string pre = absl::StrCat("blocks.", i, ".");
    for (int p = 0; p < static_cast<int>(LayerNames().size()) && st.ok(); ++p) {
      st = take(pre + LayerNames()[p], LayerShape(p, C, F));
      if (st.ok() && i == 0 && p == kLn2B) {
        st = take(pre + "ln0.weight", {C});
        if (st.ok()) st = take(pre + "ln0.bias", {C});
      }
    }
  }
  if (st.ok()) st = take("ln_out.weight", {C});
  if (st.ok()) st = take("ln_out.bias", {C});
  if (st.ok()) st = take("head.weight", {V, C});
  if (!st.ok()) return st;
  m.Index();
  m.SetRequiresGrad(true);
  return m;
}

absl::StatusOr<Rwkv4TrainModel> Rwkv4TrainModel::Load(const std::string& path) {
  absl::StatusOr<engine::Checkpoint> ckpt = engine::Checkpoint::Open(path);
  if (!ckpt.ok()) return ckpt.status();
  std::vector<std::pair<std::string, torch::Tensor>> named;
  for (const engine::CheckpointTensor& t : ckpt->tensors()) {
    torch::ScalarType st;
    switch (t.dtype) {
      case engine::DType::kFloat32:
        st = torch::kFloat;
        break;
      case engine::DType::kFloat16:
        st = torch::kHalf;
        break;
      case engine::DType::kBFloat16:
        st = torch::kBFloat16;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(path, ": tensor ", t.name, " is not a float type"));
    }
    named.emplace_back(
        t.name, torch::from_blob(const_cast<uint8_t*>(t.data), t.shape,
                                 torch::TensorOptions().dtype(st))
                    .to(torch::kFloat, /*non_blocking=*/false, /*copy=*/true));
  }
  absl::StatusOr<Rwkv4TrainModel> m = FromTensors(std::move(named));
  if (!m.ok()) {
    return absl::Status(m.status().code(),
                        absl::StrCat(path, ": ", m.status().message()));
  }
  return m;
}

void Rwkv4TrainModel::Index() {
  std::map<std::string, torch::Tensor> by_name(params_.begin(), params_.end());
  emb_ = by_name.at("emb.weight");
  ln0_w_ = by_name.at("blocks.0.ln0.weight");
  ln0_b_ = by_name.at("blocks.0.ln0.bias");
  ln_out_w_ = by_name.at("ln_out.weight");
  ln_out_b_ = by_name.at("ln_out.bias");
  head_ = by_name.at("head.weight");
  layer_.clear();
  for (int i = 0; i < shape_.n_layer; ++i) {
    std::vector<torch::Tensor> l;
    for (const std::string& n : LayerNames()) {
      l.push_back(by_name.at(absl::StrCat("blocks.", i, ".", n)));
    }
    layer_.push_back(std::move(l));
  }
}

std::vector<torch::Tensor> Rwkv4TrainModel::parameters() const {
  std::vector<torch::Tensor> out;
  for (const auto& [n, t] : params_) out.push_back(t);
  return out;
}

int64_t Rwkv4TrainModel::num_parameters() const {
  int64_t n = 0;
  for (const auto& [name, t] : params_) n += t.numel();
  return n;
}

void Rwkv4TrainModel::SetRequiresGrad(bool on) {
  for (auto& [n, t] : params_) t.requires_grad_(on);
}

TrainState Rwkv4TrainModel::ZeroState(int64_t batch) const {
  auto z = [&] { return torch::zeros({shape_.n_layer, batch, shape_.n_embd}); };
  return TrainState{z(), z(), z(), z()};
}

torch::Tensor Rwkv4TrainModel::Forward(const torch::Tensor& tokens,
                                       const TrainState* state,
                                       TrainState* final_state) const {
  const int64_t B = tokens.size(0), T = tokens.size(1), C = shape_.n_embd;
  TrainState zero;
  if (state == nullptr) {
    zero = ZeroState(B);
    state = &zero;
  }
  std::vector<torch::Tensor> fa, fb, fxa, fxf;
  torch::Tensor x = torch::embedding(emb_, tokens);
  x = torch::layer_norm(x, {C}, ln0_w_, ln0_b_, 1e-5);
  for (int i = 0; i < shape_.n_layer; ++i) {
    const std::vector<torch::Tensor>& l = layer_[i];
    torch::Tensor xx = torch::layer_norm(x, {C}, l[kLn1W], l[kLn1B], 1e-5);
    torch::Tensor prev = state->x_att[i].unsqueeze(1);
    torch::Tensor sx =
        T == 1 ? prev : torch::cat({prev, xx.narrow(1, 0, T - 1)}, 1);
    torch::Tensor kx = sx + (xx - sx) * l[kMixK];
    torch::Tensor vx = sx + (xx - sx) * l[kMixV];
    torch::Tensor rx = sx + (xx - sx) * l[kMixR];
    torch::Tensor k = torch::matmul(kx, l[kKey].t());
    torch::Tensor v = torch::matmul(vx, l[kValue].t());
    torch::Tensor r = torch::sigmoid(torch::matmul(rx, l[kRec].t()));
    Wkv4Result wkv =
        Wkv4(-torch::exp(l[kDecay]), l[kFirst], k, v, state->a[i], state->b[i]);
    x = x + torch::matmul(r * wkv.y, l[kOut].t());
    torch::Tensor xx2 = torch::layer_norm(x, {C}, l[kLn2W], l[kLn2B], 1e-5);
    torch::Tensor prev2 = state->x_ffn[i].unsqueeze(1);
    torch::Tensor sx2 =
        T == 1 ? prev2 : torch::cat({prev2, xx2.narrow(1, 0, T - 1)}, 1);
    torch::Tensor kx2 = sx2 + (xx2 - sx2) * l[kFMixK];
    torch::Tensor rx2 = sx2 + (xx2 - sx2) * l[kFMixR];
    torch::Tensor r2 = torch::sigmoid(torch::matmul(rx2, l[kFRec].t()));
    torch::Tensor k2 =
        torch::square(torch::relu(torch::matmul(kx2, l[kFKey].t())));
    x = x + r2 * torch::matmul(k2, l[kFValue].t());
    if (final_state != nullptr) {
      fa.push_back(wkv.a_final.to(torch::kFloat));
      fb.push_back(wkv.b_final.to(torch::kFloat));
      fxa.push_back(xx.select(1, T - 1).detach());
      fxf.push_back(xx2.select(1, T - 1).detach());
    }
  }
  if (final_state != nullptr) {
    *final_state = TrainState{torch::stack(fa), torch::stack(fb),
                              torch::stack(fxa), torch::stack(fxf)};
  }
  x = torch::layer_norm(x, {C}, ln_out_w_, ln_out_b_, 1e-5);
  return torch::matmul(x, head_.t());
}

absl::Status Rwkv4TrainModel::Save(
    const std::string& path, bool fp16,
    const std::vector<std::pair<std::string, int64_t>>& int_scalars) const {
  std::vector<torch::Tensor> keep;
  std::vector<engine::TensorToWrite> tw;
  for (const auto& [n, t] : params_) {
    torch::Tensor c =
        t.detach().to(fp16 ? torch::kHalf : torch::kFloat).contiguous();
    keep.push_back(c);
    tw.push_back(engine::TensorToWrite{
        n, ToDType(c.scalar_type()),
        std::vector<int64_t>(c.sizes().begin(), c.sizes().end()), c.data_ptr(),
        static_cast<size_t>(c.numel() * c.element_size())});
  }
  std::vector<engine::ScalarToWrite> sw;
  for (const auto& [n, v] : int_scalars) sw.push_back({n, v});
  absl::StatusOr<std::string> bytes = engine::SerializePth(tw, sw);
  if (!bytes.ok()) return bytes.status();
  return engine::WriteFileAtomically(path, *bytes);
}

const torch::Tensor& Rwkv4TrainModel::P(const std::string& name) const {
  for (const auto& [n, t] : params_) {
    if (n == name) return t;
  }
  static const torch::Tensor* none = new torch::Tensor();
  return *none;
}

}  // namespace rwkv::train
