#include "engine/internal/weights_loader.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "engine/internal/model_fingerprint.h"
#include "engine/internal/rwkv7_model.h"

namespace rwkv::engine::internal {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

// 16 lowercase hex digits (ModelFingerprint::Hex) or "random-" and those.
bool IsPlausibleFingerprint(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-') {
      return false;
    }
  }
  return true;
}

// Parses "blocks.<n>.<rest>"; false if the name has another form.
bool SplitBlockName(const std::string& name, int* layer, std::string* rest) {
  if (!absl::StartsWith(name, "blocks.")) return false;
  std::vector<std::string> parts =
      absl::StrSplit(name, absl::MaxSplits('.', 2));
  if (parts.size() != 3) return false;
  int n = 0;
  if (!absl::SimpleAtoi(parts[1], &n) || n < 0 || n > 100000) return false;
  *layer = n;
  *rest = parts[2];
  return true;
}

// Checks an `arch` checkpoint's tensor names: blocks.N.<key> with a key in
// [keys_begin, keys_end) (and ln0 in layer 0), otherwise only emb, ln_out
// and head; layers numbered 0..L-1 without a gap. Returns L.
absl::StatusOr<int> CountLayers(const Checkpoint& ckpt,
                                const char* const* keys_begin,
                                const char* const* keys_end, const char* arch) {
  const std::string& src = ckpt.source();
  const std::set<std::string> layer_keys(keys_begin, keys_end);
  std::set<int> layer_ids;
  for (const CheckpointTensor& t : ckpt.tensors()) {
    int layer = 0;
    std::string rest;
    bool known;
    if (SplitBlockName(t.name, &layer, &rest)) {
      const bool scale = absl::EndsWith(rest, kInt8ScaleSuffix) &&
                         IsInt8MatrixKey(rest.substr(
                             0, rest.size() - strlen(kInt8ScaleSuffix)));
      known = layer_keys.count(rest) > 0 || scale ||
              (layer == 0 && (rest == "ln0.weight" || rest == "ln0.bias"));
      if (known) layer_ids.insert(layer);
    } else {
      known = t.name == "emb.weight" || t.name == "ln_out.weight" ||
              t.name == "ln_out.bias" || t.name == "head.weight" ||
              t.name == std::string("head.weight") + kInt8ScaleSuffix;
    }
    if (!known) {
      return absl::InvalidArgumentError(
          absl::StrCat(src, ": unexpected tensor '", t.name, "' for an ", arch,
                       " checkpoint"));
    }
  }
  if (layer_ids.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(src, ": no blocks.N.* tensors"));
  }
  const int L = *layer_ids.rbegin() + 1;
  for (int i = 0; i < L; ++i) {
    if (!layer_ids.count(i)) {
      return absl::InvalidArgumentError(absl::StrCat(
          src, ": layer ", i, " is missing (found layers up to ", L - 1, ")"));
    }
  }
  return L;
}

class Converter {
 public:
  // Int8 matrices found go to *int8 (by name).
  Converter(const Checkpoint& ckpt, const LoadTarget& target,
            std::map<std::string, Int8Source>* int8)
      : ckpt_(ckpt), target_(target), int8_(int8) {}

  // A [N, K] matrix that a quantized checkpoint may store as int8 with
  // NAME_scale [N, Int8Groups(K)] fp32: returned dequantized to fp32 (and
  // its q and scales kept in *int8_); otherwise as Get.
  absl::StatusOr<at::Tensor> GetMatrix(const std::string& name,
                                       std::vector<int64_t> expected) {
    const CheckpointTensor* t = ckpt_.Find(name);
    const std::string scale_name = name + kInt8ScaleSuffix;
    const CheckpointTensor* st = ckpt_.Find(scale_name);
    if (t == nullptr || t->dtype != DType::kInt8) {
      if (t != nullptr && st != nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(ckpt_.source(), ": tensor '", scale_name,
                         "' holds int8 scales, but '", name, "' is ",
                         std::string(DTypeName(t->dtype)), ", not int8"));
      }
      return Get(name, std::move(expected));
    }
    if (t->shape != expected) {
      return absl::InvalidArgumentError(absl::StrCat(
          ckpt_.source(), ": tensor '", name, "' has shape ",
          ShapeString(t->shape), ", expected ", ShapeString(expected)));
    }
    const int64_t n = expected[0], k = expected[1], g = Int8Groups(k);
    if (st == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          ckpt_.source(), ": tensor '", name, "' is int8 but its scales '",
          scale_name, "' (float32 [", n, ", ", g, "]) are missing"));
    }
    if (st->dtype != DType::kFloat32 ||
        st->shape != std::vector<int64_t>{n, g}) {
      return absl::InvalidArgumentError(absl::StrCat(
          ckpt_.source(), ": int8 scales '", scale_name, "' are ",
          std::string(DTypeName(st->dtype)), " ", ShapeString(st->shape),
          ", expected float32 [", n, ", ", g, "] (one scale per ",
          kInt8GroupSize, " inputs of each output row)"));
    }
    if (t->nbytes != static_cast<size_t>(n * k) ||
        st->nbytes != static_cast<size_t>(n * g) * sizeof(float)) {
      return absl::InvalidArgumentError(
          absl::StrCat(ckpt_.source(), ": tensor '", name, "' or '", scale_name,
                       "' holds a byte count inconsistent with "
                       "its shape"));
    }
    at::Tensor q = at::from_blob(const_cast<uint8_t*>(t->data), {n, k},
                                 at::TensorOptions().dtype(at::kChar))
                       .clone();
    at::Tensor scales = at::from_blob(const_cast<uint8_t*>(st->data), {n, g},
                                      at::TensorOptions().dtype(at::kFloat))
                            .clone();
    if (!at::isfinite(scales).all().item<bool>() ||
        (scales < 0).any().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ckpt_.source(), ": int8 scales '", scale_name,
                       "' contain negative, NaN or infinite values"));
    }
    // w[n, k] = q[n, k] * scales[n, k / group]
    at::Tensor f32 =
        (q.to(at::kFloat) *
         scales.repeat_interleave(kInt8GroupSize, 1).narrow(1, 0, k))
            .contiguous();
    used_.insert(name);
    used_.insert(scale_name);
    fingerprint_.AddTensor(name, t->shape, f32.data_ptr<float>(), f32.numel());
    (*int8_)[name] = Int8Source{q, scales};
    return f32;
  }

  // Fetches `name`, checks its element count is prod(expected) and its
  // shape is `expected` or one of `also_ok`, converts to float32 on CPU.
  absl::StatusOr<at::Tensor> Get(
      const std::string& name, std::vector<int64_t> expected,
      std::vector<std::vector<int64_t>> also_ok = {}) {
    const CheckpointTensor* t = ckpt_.Find(name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(ckpt_.source(), ": missing tensor '", name,
                       "' (expected shape ", ShapeString(expected), ")"));
    }
    bool shape_ok = t->shape == expected;
    for (const auto& alt : also_ok) shape_ok = shape_ok || t->shape == alt;
    if (!shape_ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          ckpt_.source(), ": tensor '", name, "' has shape ",
          ShapeString(t->shape), ", expected ", ShapeString(expected)));
    }
    at::ScalarType src;
    switch (t->dtype) {
      case DType::kFloat32:
        src = at::kFloat;
        break;
      case DType::kFloat16:
        src = at::kHalf;
        break;
      case DType::kBFloat16:
        src = at::kBFloat16;
        break;
      case DType::kFloat64:
        src = at::kDouble;
        break;
      default:
        return absl::InvalidArgumentError(absl::StrCat(
            ckpt_.source(), ": tensor '", name, "' has dtype ",
            std::string(DTypeName(t->dtype)),
            "; RWKV weights must be float32, float16 or bfloat16 (int8 only "
            "for the large matrices, with NAME_scale)"));
    }
    int64_t numel = 1;
    for (int64_t d : expected) numel *= d;
    if (t->numel() != numel ||
        t->nbytes != static_cast<size_t>(numel) * at::elementSize(src)) {
      return absl::InvalidArgumentError(
          absl::StrCat(ckpt_.source(), ": tensor '", name, "' holds ",
                       t->nbytes, " bytes, inconsistent with its shape"));
    }
    at::Tensor view = at::from_blob(const_cast<uint8_t*>(t->data), expected,
                                    at::TensorOptions().dtype(src));
    at::Tensor f32 = view.to(at::kFloat, /*non_blocking=*/false, /*copy=*/true);
    if (!at::isfinite(f32).all().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(ckpt_.source(), ": tensor '", name,
                       "' contains NaN or infinite values"));
    }
    used_.insert(name);
    fingerprint_.AddTensor(name, t->shape, f32.data_ptr<float>(), f32.numel());
    return f32;
  }

  // Converts a float32 CPU tensor to the target device and dtype.
  at::Tensor Place(const at::Tensor& f32) const {
    return f32.to(target_.device, target_.dtype).contiguous();
  }
  at::Tensor PlaceF32(const at::Tensor& f32) const {
    return f32.to(target_.device, at::kFloat).contiguous();
  }

  const std::set<std::string>& used() const { return used_; }
  // The metadata's rwkv_model_fingerprint (a quantized file keeps the one
  // of the checkpoint it was made from), else the hash of the values read.
  std::string fingerprint() const {
    const auto& md = ckpt_.metadata();
    auto it = md.find(kFingerprintMetadataKey);
    if (it != md.end() && IsPlausibleFingerprint(it->second)) return it->second;
    return fingerprint_.Hex();
  }

 private:
  const Checkpoint& ckpt_;
  const LoadTarget& target_;
  std::map<std::string, Int8Source>* int8_;
  std::set<std::string> used_;
  ModelFingerprint fingerprint_;
};

#define RWKV_ASSIGN_OR_RETURN_TENSOR(lhs, expr) \
  do {                                          \
    absl::StatusOr<at::Tensor> _t = (expr);     \
    if (!_t.ok()) return _t.status();           \
    lhs = *std::move(_t);                       \
  } while (0)

}  // namespace

bool IsInt8MatrixKey(std::string_view key) {
  static constexpr std::string_view kKeys[] = {
      "att.key.weight",    "att.value.weight", "att.receptance.weight",
      "att.output.weight", "ffn.key.weight",   "ffn.receptance.weight",
      "ffn.value.weight"};
  for (std::string_view k : kKeys) {
    if (key == k) return true;
  }
  return false;
}

bool IsInt8MatrixName(std::string_view name) {
  if (name == "head.weight") return true;
  int layer = 0;
  std::string rest;
  return SplitBlockName(std::string(name), &layer, &rest) &&
         IsInt8MatrixKey(rest);
}

absl::StatusOr<Architecture> DetectArchitecture(const Checkpoint& ckpt) {
  if (ckpt.tensors().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ckpt.source(), ": the checkpoint holds no tensors"));
  }
  // Per-layer names only one generation uses.
  static const auto* v4_keys = new std::set<std::string>{
      "att.time_first", "att.time_decay", "att.time_mix_k", "att.time_mix_v",
      "att.time_mix_r", "ffn.time_mix_k", "ffn.time_mix_r"};
  static const auto* v7_keys = new std::set<std::string>{
      "att.r_k", "att.k_k", "att.k_a", "att.w0",  "att.w1",  "att.w2",
      "att.a0",  "att.a1",  "att.a2",  "att.g1",  "att.g2",  "att.x_r",
      "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g", "ffn.x_k"};
  std::string v4_name, v7_name;
  bool v5 = false;
  for (const CheckpointTensor& t : ckpt.tensors()) {
    int layer = 0;
    std::string rest;
    if (!SplitBlockName(t.name, &layer, &rest)) continue;
    if (rest == "att.time_faaaa") v5 = true;
    if (v4_name.empty() && v4_keys->count(rest)) v4_name = t.name;
    if (v7_name.empty() && v7_keys->count(rest)) v7_name = t.name;
  }
  if (v5) {
    return absl::UnimplementedError(absl::StrCat(
        ckpt.source(),
        ": this is an RWKV-5/6 checkpoint (att.time_faaaa); supported "
        "architectures are RWKV-4 and RWKV-7"));
  }
  if (!v4_name.empty() && !v7_name.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ckpt.source(), ": mixes RWKV-4 tensors ('", v4_name,
                     "') with RWKV-7 tensors ('", v7_name,
                     "'); not a valid RWKV checkpoint"));
  }
  if (!v4_name.empty()) return Architecture::kRwkv4;
  if (!v7_name.empty()) return Architecture::kRwkv7;
  if (ckpt.Find("emb.weight") == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        ckpt.source(),
        ": not an RWKV checkpoint (no 'emb.weight'; first tensor is '",
        ckpt.tensors().front().name, "')"));
  }
  return absl::InvalidArgumentError(absl::StrCat(
      ckpt.source(),
      ": unrecognized RWKV variant (no blocks.N.att.time_first (RWKV-4) or "
      "att.r_k / att.w0 (RWKV-7) tensors)"));
}

void FinishRwkv4Config(ModelConfig& c) {
  const int64_t C = c.n_embd, F = c.ffn_dim, V = c.vocab_size, L = c.n_layer;
  const int64_t per_layer = 4 * C /*ln1,ln2*/ + 2 * C /*decay,first*/ +
                            3 * C /*att mix*/ + 4 * C * C + 2 * C /*ffn mix*/ +
                            F * C + C * C + C * F;
  c.n_params = 2 * V * C + 2 * C /*ln0*/ + 2 * C /*ln_out*/ + L * per_layer;
  c.state_bytes_fp32 = 5 * L * C * 4;
}

absl::StatusOr<Rwkv4Weights> LoadRwkv4Weights(const Checkpoint& ckpt,
                                              const LoadTarget& target) {
  const CheckpointTensor* emb = ckpt.Find("emb.weight");
  if (emb == nullptr || emb->shape.size() != 2 || emb->shape[0] <= 0 ||
      emb->shape[1] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        ckpt.source(), ": 'emb.weight' missing or not a non-empty 2-D tensor"));
  }
  const int64_t V = emb->shape[0], C = emb->shape[1];
  if (V > (1 << 24) || C > (1 << 16)) {
    return absl::InvalidArgumentError(
        absl::StrCat(ckpt.source(), ": implausible emb.weight shape ",
                     ShapeString(emb->shape)));
  }
  // Layers and unexpected names.
  absl::StatusOr<int> layers =
      CountLayers(ckpt, std::begin(kRwkv4LayerTensorNames),
                  std::end(kRwkv4LayerTensorNames), "RWKV-4");
  if (!layers.ok()) return layers.status();
  const int L = *layers;
  const CheckpointTensor* ffn_key = ckpt.Find("blocks.0.ffn.key.weight");
  if (ffn_key == nullptr || ffn_key->shape.size() != 2 ||
      ffn_key->shape[0] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        ckpt.source(), ": 'blocks.0.ffn.key.weight' missing or not 2-D"));
  }
  const int64_t F = ffn_key->shape[0];

  Rwkv4Weights w;
  w.config.arch = Architecture::kRwkv4;
  w.config.n_layer = L;
  w.config.n_embd = static_cast<int>(C);
  w.config.vocab_size = static_cast<int>(V);
  w.config.ffn_dim = static_cast<int>(F);
  FinishRwkv4Config(w.config);

  Converter cv(ckpt, target, &w.int8);
  at::Tensor t;
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("emb.weight", {V, C}));
  w.emb = cv.Place(t);
  at::Tensor ln0w, ln0b;
  RWKV_ASSIGN_OR_RETURN_TENSOR(ln0w, cv.Get("blocks.0.ln0.weight", {C}));
  RWKV_ASSIGN_OR_RETURN_TENSOR(ln0b, cv.Get("blocks.0.ln0.bias", {C}));
  w.ln0_w = cv.Place(ln0w);
  w.ln0_b = cv.Place(ln0b);
  const std::vector<std::vector<int64_t>> mix_alt = {{1, 1, C}, {1, C}};
  for (int i = 0; i < L; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    Rwkv4Layer l;
    auto get = [&](const char* key, std::vector<int64_t> shape,
                   std::vector<std::vector<int64_t>> alt = {}) {
      return cv.Get(p + key, std::move(shape), std::move(alt));
    };
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ln1.weight", {C}));
    l.ln1_w = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ln1.bias", {C}));
    l.ln1_b = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ln2.weight", {C}));
    l.ln2_w = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ln2.bias", {C}));
    l.ln2_b = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("att.time_decay", {C}, {{1, 1, C}}));
    t = t.reshape({C});
    if (target.time_decay_clip > 0) t = t.clamp_max(target.time_decay_clip);
    l.att_time_decay = cv.PlaceF32(-at::exp(t));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("att.time_first", {C}, {{1, 1, C}}));
    l.att_time_first = cv.PlaceF32(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("att.time_mix_k", {C}, mix_alt));
    l.att_mix_k = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("att.time_mix_v", {C}, mix_alt));
    l.att_mix_v = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("att.time_mix_r", {C}, mix_alt));
    l.att_mix_r = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix(p + "att.key.weight", {C, C}));
    l.att_key = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "att.value.weight", {C, C}));
    l.att_value = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(
        t, cv.GetMatrix(p + "att.receptance.weight", {C, C}));
    l.att_receptance = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "att.output.weight", {C, C}));
    l.att_output = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ffn.time_mix_k", {C}, mix_alt));
    l.ffn_mix_k = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, get("ffn.time_mix_r", {C}, mix_alt));
    l.ffn_mix_r = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix(p + "ffn.key.weight", {F, C}));
    l.ffn_key = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(
        t, cv.GetMatrix(p + "ffn.receptance.weight", {C, C}));
    l.ffn_receptance = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "ffn.value.weight", {C, F}));
    l.ffn_value = cv.Place(t);
    w.layers.push_back(std::move(l));
  }
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("ln_out.weight", {C}));
  w.ln_out_w = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("ln_out.bias", {C}));
  w.ln_out_b = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix("head.weight", {V, C}));
  w.head = cv.Place(t);
  w.config.fingerprint = cv.fingerprint();
  return w;
}

namespace {

constexpr const char* kRwkv7LayerKeys[] = {
    "ln1.weight",
    "ln1.bias",
    "ln2.weight",
    "ln2.bias",
    "att.x_r",
    "att.x_w",
    "att.x_k",
    "att.x_v",
    "att.x_a",
    "att.x_g",
    "att.w0",
    "att.w1",
    "att.w2",
    "att.a0",
    "att.a1",
    "att.a2",
    "att.v0",
    "att.v1",
    "att.v2",
    "att.g1",
    "att.g2",
    "att.k_k",
    "att.k_a",
    "att.r_k",
    "att.receptance.weight",
    "att.key.weight",
    "att.value.weight",
    "att.output.weight",
    "att.ln_x.weight",
    "att.ln_x.bias",
    "ffn.x_k",
    "ffn.key.weight",
    "ffn.value.weight",
};

}  // namespace

absl::StatusOr<Rwkv7Weights> LoadRwkv7Weights(const Checkpoint& ckpt,
                                              const LoadTarget& target) {
  const std::string& src = ckpt.source();
  const CheckpointTensor* emb = ckpt.Find("emb.weight");
  if (emb == nullptr || emb->shape.size() != 2 || emb->shape[0] <= 0 ||
      emb->shape[1] <= 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": 'emb.weight' missing or not a non-empty 2-D tensor"));
  }
  const int64_t V = emb->shape[0], C = emb->shape[1];
  if (V > (1 << 24) || C > (1 << 16)) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": implausible emb.weight shape ", ShapeString(emb->shape)));
  }
  absl::StatusOr<int> layers = CountLayers(ckpt, std::begin(kRwkv7LayerKeys),
                                           std::end(kRwkv7LayerKeys), "RWKV-7");
  if (!layers.ok()) return layers.status();
  const int L = *layers;
  // Head layout from r_k [n_head, head_size].
  const CheckpointTensor* r_k = ckpt.Find("blocks.0.att.r_k");
  if (r_k == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat(
        src,
        ": missing tensor 'blocks.0.att.r_k' (RWKV-7 [n_head, head_size]; "
        "the file has other RWKV-7 tensors, so it is incomplete)"));
  }
  if (r_k->shape.size() != 2 || r_k->shape[0] <= 0 || r_k->shape[1] <= 0 ||
      r_k->shape[0] * r_k->shape[1] != C) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": tensor 'blocks.0.att.r_k' has shape ", ShapeString(r_k->shape),
        ", expected [n_head, head_size] with n_head * "
        "head_size = n_embd = ",
        C));
  }
  const int64_t H = r_k->shape[0], N = r_k->shape[1];
  if (N > 1024) {
    return absl::InvalidArgumentError(absl::StrCat(
        src, ": head_size ", N,
        " (from blocks.0.att.r_k) is larger than supported (1024)"));
  }
  const CheckpointTensor* ffn_key = ckpt.Find("blocks.0.ffn.key.weight");
  if (ffn_key == nullptr || ffn_key->shape.size() != 2 ||
      ffn_key->shape[0] <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(src, ": 'blocks.0.ffn.key.weight' missing or not 2-D"));
  }
  const int64_t F = ffn_key->shape[0];

  Rwkv7Weights w;
  w.config.arch = Architecture::kRwkv7;
  w.config.n_layer = L;
  w.config.n_embd = static_cast<int>(C);
  w.config.vocab_size = static_cast<int>(V);
  w.config.ffn_dim = static_cast<int>(F);
  w.config.n_head = static_cast<int>(H);
  w.config.head_size = static_cast<int>(N);

  Converter cv(ckpt, target, &w.int8);
  at::Tensor t;
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("emb.weight", {V, C}));
  w.emb = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("blocks.0.ln0.weight", {C}));
  w.ln0_w = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("blocks.0.ln0.bias", {C}));
  w.ln0_b = cv.Place(t);
  const std::vector<std::vector<int64_t>> vec_alt = {{1, 1, C}, {1, C}};
  for (int i = 0; i < L; ++i) {
    const std::string p = absl::StrCat("blocks.", i, ".");
    Rwkv7Layer l;
    auto vec = [&](const char* key) -> absl::StatusOr<at::Tensor> {
      absl::StatusOr<at::Tensor> v = cv.Get(p + key, {C}, vec_alt);
      if (!v.ok()) return v.status();
      return v->reshape({C});
    };
    // A LoRA factor: checkpoint [C, D] (down) or [D, C] (up); returned as
    // [out, in], i.e. transposed. D comes from the tensor itself.
    auto lora = [&](const char* key, bool down) -> absl::StatusOr<at::Tensor> {
      const std::string name = p + key;
      const CheckpointTensor* ct = ckpt.Find(name);
      if (ct == nullptr) {
        return absl::InvalidArgumentError(
            absl::StrCat(src, ": missing tensor '", name, "' (expected shape ",
                         down ? absl::StrCat("[", C, ", rank]")
                              : absl::StrCat("[rank, ", C, "]"),
                         ")"));
      }
      const bool ok = ct->shape.size() == 2 && ct->shape[down ? 0 : 1] == C &&
                      ct->shape[down ? 1 : 0] > 0 &&
                      ct->shape[down ? 1 : 0] <= 4 * C;
      if (!ok) {
        return absl::InvalidArgumentError(
            absl::StrCat(src, ": tensor '", name, "' has shape ",
                         ShapeString(ct->shape), ", expected ",
                         down ? absl::StrCat("[", C, ", rank]")
                              : absl::StrCat("[rank, ", C, "]")));
      }
      absl::StatusOr<at::Tensor> v = cv.Get(name, ct->shape);
      if (!v.ok()) return v.status();
      return v->t().contiguous();
    };
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("ln1.weight"));
    l.ln1_w = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("ln1.bias"));
    l.ln1_b = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("ln2.weight"));
    l.ln2_w = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("ln2.bias"));
    l.ln2_b = cv.Place(t);
    std::vector<at::Tensor> mix;
    for (const char* key :
         {"att.x_r", "att.x_w", "att.x_k", "att.x_v", "att.x_a", "att.x_g"}) {
      RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec(key));
      mix.push_back(t);
    }
    l.att_mix = cv.Place(at::stack(mix, 0));
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.w0"));
    l.w0 = cv.PlaceF32(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.w1", true));
    l.w1 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.w2", false));
    l.w2 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.a0"));
    l.a0 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.a1", true));
    l.a1 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.a2", false));
    l.a2 = cv.Place(t);
    if (i > 0) {  // layer 0 defines v_first; its v0/v1/v2 are never used
      RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.v0"));
      l.v0 = cv.Place(t);
      RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.v1", true));
      l.v1 = cv.Place(t);
      RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.v2", false));
      l.v2 = cv.Place(t);
    }
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.g1", true));
    l.g1 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, lora("att.g2", false));
    l.g2 = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.k_k"));
    l.k_k = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.k_a"));
    l.k_a = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get(p + "att.r_k", {H, N}));
    l.r_k = cv.Place(t.reshape({C}));
    RWKV_ASSIGN_OR_RETURN_TENSOR(
        t, cv.GetMatrix(p + "att.receptance.weight", {C, C}));
    l.receptance = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix(p + "att.key.weight", {C, C}));
    l.key = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "att.value.weight", {C, C}));
    l.value = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "att.output.weight", {C, C}));
    l.output = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.ln_x.weight"));
    l.ln_x_w = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("att.ln_x.bias"));
    l.ln_x_b = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, vec("ffn.x_k"));
    l.ffn_mix_k = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix(p + "ffn.key.weight", {F, C}));
    l.ffn_key = cv.Place(t);
    RWKV_ASSIGN_OR_RETURN_TENSOR(t,
                                 cv.GetMatrix(p + "ffn.value.weight", {C, F}));
    l.ffn_value = cv.Place(t);
    w.layers.push_back(std::move(l));
  }
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("ln_out.weight", {C}));
  w.ln_out_w = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.Get("ln_out.bias", {C}));
  w.ln_out_b = cv.Place(t);
  RWKV_ASSIGN_OR_RETURN_TENSOR(t, cv.GetMatrix("head.weight", {V, C}));
  w.head = cv.Place(t);
  FinishRwkv7Config(w);
  w.config.fingerprint = cv.fingerprint();
  return w;
}

}  // namespace rwkv::engine::internal
