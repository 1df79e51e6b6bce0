#include "engine/rwkv_engine.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint.h"
#include "engine/internal/model_fingerprint.h"
#include "engine/internal/rwkv4_model.h"
#include "engine/internal/rwkv7_model.h"
#include "engine/internal/state_impl.h"
#include "engine/internal/torch_status.h"
#include "engine/internal/weights_loader.h"

namespace rwkv::engine {
namespace {

using internal::StateAccess;
using internal::StateImpl;

absl::StatusOr<at::Device> ParseDevice(const std::string& name) {
  if (name == "cpu") return at::Device(at::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!at::hasCUDA()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "device '", name,
          "' requested, but this LibTorch build has no CUDA support (or no GPU "
          "is visible); use --device cpu"));
    }
    return internal::CatchTorch(
        "parse device",
        [&]() -> absl::StatusOr<at::Device> { return at::Device(name); });
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown device '", name, "' (expected cpu, cuda or cuda:N)"));
}

// What a dtype name means on a device: the dtype tensors are loaded in
// (`tensors`) and, for the fused CPU path, the format of its matrices.
struct DtypePlan {
  at::ScalarType tensors = at::kFloat;
  internal::WeightFormat format = internal::WeightFormat::kFloat32;
  bool fast_cpu = false;
};

absl::StatusOr<DtypePlan> ParseDtype(const std::string& name,
                                     const at::Device& device) {
  DtypePlan plan;
  plan.fast_cpu = device.is_cpu();
  if (name == "fp32" || name == "float32") return plan;
  if (name == "bf16" || name == "bfloat16") {
    // CPU: bf16 matrices, fp32 activations; CUDA: bf16 throughout.
    if (device.is_cpu()) {
      plan.format = internal::WeightFormat::kBFloat16;
    } else {
      plan.tensors = at::kBFloat16;
    }
    return plan;
  }
  if (name == "int8") {
    if (!device.is_cpu()) {
      return absl::InvalidArgumentError(
          "dtype int8 (weight-only int8 matrices) runs on the CPU only; use "
          "--device cpu, or fp16/bf16 on CUDA");
    }
    plan.format = internal::WeightFormat::kInt8;
    return plan;
  }
  if (name == "fp16" || name == "float16") {
    if (device.is_cpu()) {
      return absl::InvalidArgumentError(
          "dtype fp16 needs a CUDA device (LibTorch has no fp16 matmul on "
          "CPU); on CPU use fp32, bf16 or int8");
    }
    plan.tensors = at::kHalf;
    return plan;
  }
  return absl::InvalidArgumentError(absl::StrCat(
      "unknown dtype '", name, "' (expected fp32, bf16, int8 or fp16)"));
}

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

State MakeState(const internal::RwkvModel& model) {
  auto impl = std::make_unique<StateImpl>();
  impl->arch = model.config().arch;
  impl->model_fingerprint = model.config().fingerprint;
  impl->names = model.StateNames();
  for (at::Tensor& t : model.NewState(1)) impl->tensors.push_back(t.squeeze(1));
  return StateAccess::Make(std::move(impl));
}

// The engine's Model: config and a prototype fresh state that NewState()
// clones (reading the prototype from many threads at once is safe).
class LoadedModel final : public Model {
 public:
  LoadedModel(ModelConfig config, State fresh)
      : config_(std::move(config)), fresh_(std::move(fresh)) {}
  const ModelConfig& config() const override { return config_; }
  State NewState() const override {
    at::NoGradGuard no_grad;
    return fresh_.Clone();
  }

 private:
  const ModelConfig config_;
  const State fresh_;
};

at::Tensor RandomLike(at::Generator& gen, std::vector<int64_t> shape,
                      double mean, double stddev) {
  return at::normal(mean, stddev, shape, gen);
}

at::Tensor Uniform(at::Generator& gen, std::vector<int64_t> shape, double lo,
                   double hi) {
  return at::empty(shape).uniform_(lo, hi, gen);
}

void AddToFingerprint(internal::ModelFingerprint& fp, const std::string& name,
                      const at::Tensor& t) {
  at::Tensor f = t.to(at::kCPU, at::kFloat).contiguous();
  fp.AddTensor(name, std::vector<int64_t>(f.sizes().begin(), f.sizes().end()),
               f.data_ptr<float>(), f.numel());
}

// Fingerprint of a random model: the same scheme as for loaded checkpoints.
std::string RandomFingerprint(const internal::Rwkv4Weights& w) {
  internal::ModelFingerprint fp;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    AddToFingerprint(fp, name, t);
  };
  add("emb.weight", w.emb);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    add(p + "att.time_decay", w.layers[i].att_time_decay);
    add(p + "att.key.weight", w.layers[i].att_key);
    add(p + "ffn.key.weight", w.layers[i].ffn_key);
  }
  add("head.weight", w.head);
  return "random-" + fp.Hex();
}

std::string RandomFingerprint(const internal::Rwkv7Weights& w) {
  internal::ModelFingerprint fp;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    AddToFingerprint(fp, name, t);
  };
  add("emb.weight", w.emb);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    add(p + "att.w0", w.layers[i].w0);
    add(p + "att.key.weight", w.layers[i].key);
    add(p + "ffn.key.weight", w.layers[i].ffn_key);
  }
  add("head.weight", w.head);
  return "random-" + fp.Hex();
}

// LoRA rank of the reference trainer: max(32, round(factor * C^power / 32)
// * 32).
int64_t LoraRank(int64_t C, double factor, double power) {
  const double r = std::round(factor * std::pow(double(C), power) / 32.0);
  return std::max<int64_t>(32, static_cast<int64_t>(r) * 32);
}

}  // namespace

RwkvEngine::RwkvEngine(std::unique_ptr<internal::RwkvModel> model,
                       int num_threads, std::string device, std::string dtype)
    : model_(std::move(model)),
      model_info_(
          std::make_shared<LoadedModel>(model_->config(), MakeState(*model_))),
      config_(model_info_->config()),
      num_threads_(num_threads),
      device_(std::move(device)),
      dtype_(std::move(dtype)) {
  at::NoGradGuard no_grad;
  for (const at::Tensor& t : model_->NewState(1)) {
    at::Tensor one = t.squeeze(1);
    state_shapes_.emplace_back(one.sizes().begin(), one.sizes().end());
    state_strides_.push_back(one.numel() / std::max<int64_t>(one.size(0), 1));
  }
}

RwkvEngine::~RwkvEngine() = default;

absl::StatusOr<std::unique_ptr<RwkvEngine>> RwkvEngine::Create(
    const EngineOptions& options) {
  absl::StatusOr<at::Device> device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  const bool auto_dtype = options.dtype == "auto";
  absl::StatusOr<DtypePlan> dtype =
      ParseDtype(auto_dtype ? "fp32" : options.dtype, *device);
  if (!dtype.ok()) return dtype.status();
  if (options.model_path.empty()) {
    return absl::InvalidArgumentError("no model file given");
  }
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(options.model_path);
  if (!ckpt.ok()) return ckpt.status();
  absl::StatusOr<Architecture> arch = internal::DetectArchitecture(*ckpt);
  if (!arch.ok()) return arch.status();
  std::string dtype_name = options.dtype;
  if (auto_dtype) {
    // A quantized checkpoint runs as it is stored.
    dtype_name = "fp32";
    for (const CheckpointTensor& t : ckpt->tensors()) {
      if (device->is_cpu() && t.dtype == DType::kInt8 &&
          internal::IsInt8MatrixName(t.name)) {
        dtype_name = "int8";
        break;
      }
    }
    dtype = ParseDtype(dtype_name, *device);
    if (!dtype.ok()) return dtype.status();
  }
  const int threads = ResolveThreads(options.num_threads);
  at::set_num_threads(threads);
  return internal::CatchTorch(
      options.model_path, [&]() -> absl::StatusOr<std::unique_ptr<RwkvEngine>> {
        at::NoGradGuard no_grad;
        internal::LoadTarget target{*device, dtype->tensors,
                                    options.time_decay_clip};
        std::unique_ptr<internal::RwkvModel> model;
        if (*arch == Architecture::kRwkv7) {
          absl::StatusOr<internal::Rwkv7Weights> w =
              internal::LoadRwkv7Weights(*ckpt, target);
          if (!w.ok()) return w.status();
          model = std::make_unique<internal::Rwkv7Model>(
              *std::move(w), dtype->fast_cpu, dtype->format);
        } else {
          absl::StatusOr<internal::Rwkv4Weights> w =
              internal::LoadRwkv4Weights(*ckpt, target);
          if (!w.ok()) return w.status();
          model = std::make_unique<internal::Rwkv4Model>(
              *std::move(w), dtype->fast_cpu, dtype->format);
        }
        return std::unique_ptr<RwkvEngine>(new RwkvEngine(
            std::move(model), threads, options.device, dtype_name));
      });
}

absl::StatusOr<std::unique_ptr<RwkvEngine>> RwkvEngine::CreateRandom(
    const RandomModelSpec& spec, const EngineOptions& options) {
  if (spec.n_layer <= 0 || spec.n_embd <= 0 || spec.vocab_size <= 0 ||
      spec.ffn_dim < 0) {
    return absl::InvalidArgumentError("random model: dims must be positive");
  }
  if (spec.arch == Architecture::kRwkv7 &&
      (spec.head_size <= 0 || spec.head_size > 1024 ||
       spec.n_embd % spec.head_size != 0)) {
    return absl::InvalidArgumentError(
        "random RWKV-7 model: n_embd must be a multiple of head_size (<= "
        "1024)");
  }
  absl::StatusOr<at::Device> device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  const std::string dtype_name =
      options.dtype == "auto" ? "fp32" : options.dtype;
  absl::StatusOr<DtypePlan> plan = ParseDtype(dtype_name, *device);
  if (!plan.ok()) return plan.status();
  const at::ScalarType* dtype = &plan->tensors;
  const int threads = ResolveThreads(options.num_threads);
  at::set_num_threads(threads);
  return internal::CatchTorch(
      "random model", [&]() -> absl::StatusOr<std::unique_ptr<RwkvEngine>> {
        at::NoGradGuard no_grad;
        const int64_t L = spec.n_layer, C = spec.n_embd, V = spec.vocab_size;
        const int64_t F = spec.ffn_dim > 0 ? spec.ffn_dim : 4 * C;
        at::Generator gen = at::make_generator<at::CPUGeneratorImpl>(spec.seed);
        auto place = [&](const at::Tensor& t) {
          return t.to(*device, *dtype).contiguous();
        };
        auto mat = [&](int64_t n, int64_t k, double scale) {
          return place(
              RandomLike(gen, {n, k}, 0.0, scale / std::sqrt(double(k))));
        };
        auto ln_w = [&]() { return place(RandomLike(gen, {C}, 1.0, 0.1)); };
        auto ln_b = [&]() { return place(RandomLike(gen, {C}, 0.0, 0.1)); };
        const bool fast = plan->fast_cpu;
        std::unique_ptr<internal::RwkvModel> model;
        if (spec.arch == Architecture::kRwkv7) {
          const int64_t N = spec.head_size;
          internal::Rwkv7Weights w;
          w.config.arch = Architecture::kRwkv7;
          w.config.n_layer = spec.n_layer;
          w.config.n_embd = spec.n_embd;
          w.config.vocab_size = spec.vocab_size;
          w.config.ffn_dim = static_cast<int>(F);
          w.config.n_head = static_cast<int>(C / N);
          w.config.head_size = static_cast<int>(N);
          const int64_t Dw = LoraRank(C, 1.8, 0.5), Da = LoraRank(C, 1.8, 0.5),
                        Dv = LoraRank(C, 1.3, 0.5), Dg = LoraRank(C, 0.6, 0.8);
          auto f32 = [&](const at::Tensor& t) {
            return t.to(*device, at::kFloat).contiguous();
          };
          w.emb = place(RandomLike(gen, {V, C}, 0.0, 1.0));
          w.ln0_w = ln_w();
          w.ln0_b = ln_b();
          for (int64_t i = 0; i < L; ++i) {
            internal::Rwkv7Layer l;
            l.ln1_w = ln_w();
            l.ln1_b = ln_b();
            l.ln2_w = ln_w();
            l.ln2_b = ln_b();
            l.att_mix = place(Uniform(gen, {6, C}, 0.0, 1.0));
            // Decay factors exp(-e^-0.5 sigmoid(w0 + ...)) over ~(0.55, 0.99).
            l.w0 = f32(Uniform(gen, {C}, -4.0, 2.0));
            l.w1 = mat(Dw, C, 1.0);
            l.w2 = mat(C, Dw, 0.5);
            l.a0 = place(Uniform(gen, {C}, -1.0, 1.0));
            l.a1 = mat(Da, C, 1.0);
            l.a2 = mat(C, Da, 0.5);
            if (i > 0) {
              l.v0 = place(Uniform(gen, {C}, -1.0, 1.0));
              l.v1 = mat(Dv, C, 1.0);
              l.v2 = mat(C, Dv, 0.5);
            }
            l.g1 = mat(Dg, C, 1.0);
            l.g2 = mat(C, Dg, 1.0);
            l.k_k = place(Uniform(gen, {C}, 0.5, 1.0));
            l.k_a = place(Uniform(gen, {C}, 0.5, 1.5));
            l.r_k = place(RandomLike(gen, {C}, 0.0, 0.3));
            l.receptance = mat(C, C, 1.1);
            l.key = mat(C, C, 1.1);
            l.value = mat(C, C, 1.1);
            l.output = mat(C, C, 1.1);
            l.ln_x_w = ln_w();
            l.ln_x_b = ln_b();
            l.ffn_mix_k = place(Uniform(gen, {C}, 0.0, 1.0));
            l.ffn_key = mat(F, C, 1.1);
            l.ffn_value = mat(C, F, 1.1);
            w.layers.push_back(std::move(l));
          }
          w.ln_out_w = ln_w();
          w.ln_out_b = ln_b();
          w.head = mat(V, C, 1.1);
          internal::FinishRwkv7Config(w);
          w.config.fingerprint = RandomFingerprint(w);
          model = std::make_unique<internal::Rwkv7Model>(std::move(w), fast,
                                                         plan->format);
        } else {
          internal::Rwkv4Weights w;
          w.config.arch = Architecture::kRwkv4;
          w.config.n_layer = spec.n_layer;
          w.config.n_embd = spec.n_embd;
          w.config.vocab_size = spec.vocab_size;
          w.config.ffn_dim = static_cast<int>(F);
          internal::FinishRwkv4Config(w.config);
          w.emb = place(RandomLike(gen, {V, C}, 0.0, 1.0));
          w.ln0_w = ln_w();
          w.ln0_b = ln_b();
          for (int64_t i = 0; i < L; ++i) {
            internal::Rwkv4Layer l;
            l.ln1_w = ln_w();
            l.ln1_b = ln_b();
            l.ln2_w = ln_w();
            l.ln2_b = ln_b();
            // Decay factors exp(-exp(d)) spread over ~(0.07, 0.92).
            at::Tensor d = Uniform(gen, {C}, -2.5, 1.0);
            l.att_time_decay =
                (-at::exp(d)).to(*device, at::kFloat).contiguous();
            l.att_time_first = Uniform(gen, {C}, -1.0, 1.0)
                                   .to(*device, at::kFloat)
                                   .contiguous();
            l.att_mix_k = place(Uniform(gen, {C}, 0.0, 1.0));
            l.att_mix_v = place(Uniform(gen, {C}, 0.0, 1.0));
            l.att_mix_r = place(Uniform(gen, {C}, 0.0, 1.0));
            l.att_key = mat(C, C, 2.0);
            l.att_value = mat(C, C, 1.1);
            l.att_receptance = mat(C, C, 1.1);
            l.att_output = mat(C, C, 1.1);
            l.ffn_mix_k = place(Uniform(gen, {C}, 0.0, 1.0));
            l.ffn_mix_r = place(Uniform(gen, {C}, 0.0, 1.0));
            l.ffn_key = mat(F, C, 1.1);
            l.ffn_receptance = mat(C, C, 1.1);
            l.ffn_value = mat(C, F, 1.1);
            w.layers.push_back(std::move(l));
          }
          w.ln_out_w = ln_w();
          w.ln_out_b = ln_b();
          w.head = mat(V, C, 1.1);
          w.config.fingerprint = RandomFingerprint(w);
          model = std::make_unique<internal::Rwkv4Model>(std::move(w), fast,
                                                         plan->format);
        }
        return std::unique_ptr<RwkvEngine>(new RwkvEngine(
            std::move(model), threads, options.device, dtype_name));
      });
}

std::string RwkvEngine::matmul_backend() const {
  if (!model_->fast_cpu()) return "torch";
  const char* format = internal::WeightFormatName(model_->weight_format());
  if (!internal::CpuHasAvx512()) {
    return absl::StrCat("fused-cpu ", format, " portable+dnnl_sgemm");
  }
  return absl::StrCat(
      "fused-cpu ", format, " avx512-gemv",
      model_->weight_format() == internal::WeightFormat::kFloat32 ? "+onednn"
                                                                  : "");
}

int64_t RwkvEngine::weight_bytes() const { return model_->WeightBytes(); }

absl::Status RwkvEngine::CheckTokens(absl::Span<const int32_t> tokens) const {
  if (tokens.empty()) return absl::InvalidArgumentError("no tokens to feed");
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= config_.vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "token id ", tokens[i], " at position ", i,
          " is outside the vocabulary [0, ", config_.vocab_size, ")"));
    }
  }
  return absl::OkStatus();
}

absl::Status RwkvEngine::CheckState(const State& state) const {
  const StateImpl* impl = StateAccess::Get(state);
  if (impl == nullptr) return absl::InvalidArgumentError("empty state");
  if (!impl->model_fingerprint.empty() &&
      impl->model_fingerprint != config_.fingerprint) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state belongs to another model (fingerprint ", impl->model_fingerprint,
        ", this model is ", config_.fingerprint, ")"));
  }
  if (impl->arch != config_.arch || impl->names != model_->StateNames() ||
      impl->tensors.size() != impl->names.size()) {
    return absl::InvalidArgumentError(
        "state does not belong to this model's architecture");
  }
  // Per component: [n_layer, ...] as a fresh state of this model (shapes
  // taken once at construction: this runs for every state of every step).
  for (size_t j = 0; j < state_shapes_.size(); ++j) {
    const at::Tensor& t = impl->tensors[j];
    if (!t.sizes().equals(state_shapes_[j])) {
      return absl::InvalidArgumentError(
          absl::StrCat("state component '", impl->names[j], "' has shape [",
                       absl::StrJoin(t.sizes(), ", "), "], the model needs [",
                       absl::StrJoin(state_shapes_[j], ", "), "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Logits> RwkvEngine::ForwardFused(
    absl::Span<const int32_t> tokens, absl::Span<State* const> states,
    int64_t T, absl::Span<const int32_t> lengths) {
  // Everything that can fail (contiguous copies, the logits, the scratch of
  // the first and largest chunk) happens before the first state write, so
  // an error leaves the states as they were. (One exception: running out of
  // memory while oneDNN builds its GEMM for a later chunk of an fp32 prompt
  // longer than 512 tokens, after earlier chunks advanced the state.)
  const int64_t B = static_cast<int64_t>(states.size());
  const size_t n = state_shapes_.size();
  std::vector<float*> rows(states.size() * n);
  std::vector<int64_t> strides(n);
  for (size_t j = 0; j < n; ++j) strides[j] = state_strides_[j];
  for (int64_t b = 0; b < B; ++b) {
    StateImpl* impl = StateAccess::Get(*states[b]);
    for (size_t j = 0; j < n; ++j) {
      at::Tensor& t = impl->tensors[j];
      if (!t.is_contiguous() || t.scalar_type() != at::kFloat ||
          !t.device().is_cpu()) {
        t = t.to(at::kCPU, at::kFloat).contiguous();
      }
      rows[b * n + j] = t.data_ptr<float>();
    }
  }
  std::vector<float> logits(static_cast<size_t>(B) * config_.vocab_size);
  const internal::CpuStateRows where{rows.data(), strides.data()};
  if (lengths.empty()) {
    model_->ForwardCpu(tokens.data(), B, T, where, logits.data());
    for (State* s : states) StateAccess::Get(*s)->token_count += T;
  } else {
    model_->ForwardCpuSegments(tokens.data(), lengths.data(), B, where,
                               logits.data());
    for (int64_t b = 0; b < B; ++b) {
      StateAccess::Get(*states[b])->token_count += lengths[b];
    }
  }
  return Logits(static_cast<int>(B), config_.vocab_size, std::move(logits));
}

absl::StatusOr<Logits> RwkvEngine::Forward(absl::Span<const int32_t> tokens,
                                           State& state) {
  if (absl::Status s = CheckTokens(tokens); !s.ok()) return s;
  if (absl::Status s = CheckState(state); !s.ok()) return s;
  if (model_->fast_cpu()) {
    State* one = &state;
    return internal::CatchTorch("forward", [&]() -> absl::StatusOr<Logits> {
      // The fused step updates the state in place: keep a copy (a few
      // hundred KB, next to the weights streamed per token) so that
      // non-finite logits leave the state as it was, as on the other path.
      StateImpl* impl = StateAccess::Get(state);
      std::vector<at::Tensor> before;
      before.reserve(impl->tensors.size());
      for (const at::Tensor& t : impl->tensors) before.push_back(t.clone());
      const int64_t count = impl->token_count;
      absl::StatusOr<Logits> out =
          ForwardFused(tokens, absl::MakeConstSpan(&one, 1),
                       static_cast<int64_t>(tokens.size()));
      if (!out.ok()) return out;
      if (absl::Status finite = out->CheckRowFinite(0); !finite.ok()) {
        impl->tensors = std::move(before);
        impl->token_count = count;
        return finite;
      }
      return out;
    });
  }
  return internal::CatchTorch("forward", [&]() -> absl::StatusOr<Logits> {
    at::NoGradGuard no_grad;
    StateImpl* impl = StateAccess::Get(state);
    std::vector<at::Tensor> work;
    work.reserve(impl->tensors.size());
    for (const at::Tensor& t : impl->tensors)
      work.push_back(t.unsqueeze(1).clone());
    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    at::Tensor tok = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logits = model_->Forward(tok, work).contiguous().cpu();
    const float* p = logits.data_ptr<float>();
    Logits out(1, config_.vocab_size,
               std::vector<float>(p, p + config_.vocab_size));
    // Non-finite logits leave the state as it was (the work copy is
    // dropped): the caller gets a distinct error, not a poisoned state.
    if (absl::Status finite = out.CheckRowFinite(0); !finite.ok()) {
      return finite;
    }
    // The work copy (taken so that an error leaves the state untouched)
    // becomes the state: no copy back.
    for (size_t j = 0; j < work.size(); ++j)
      impl->tensors[j] = work[j].squeeze(1);
    impl->token_count += static_cast<int64_t>(tokens.size());
    return out;
  });
}

absl::StatusOr<Logits> RwkvEngine::ForwardBatch(
    absl::Span<const int32_t> tokens, absl::Span<State* const> states) {
  if (tokens.size() != states.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ForwardBatch: ", tokens.size(), " tokens for ",
                     states.size(), " states"));
  }
  if (absl::Status s = CheckTokens(tokens); !s.ok()) return s;
  for (size_t i = 0; i < states.size(); ++i) {
    if (states[i] == nullptr) return absl::InvalidArgumentError("null state");
    if (absl::Status s = CheckState(*states[i]); !s.ok()) return s;
    for (size_t j = 0; j < i; ++j) {
      if (states[j] == states[i]) {
        return absl::InvalidArgumentError(
            "ForwardBatch: the same state appears twice in one batch");
      }
    }
  }
  const int64_t B = static_cast<int64_t>(states.size());
  if (model_->fast_cpu()) {
    // The fused path writes the states only after everything that can fail.
    return internal::CatchTorch("forward batch",
                                [&]() -> absl::StatusOr<Logits> {
                                  return ForwardFused(tokens, states, 1);
                                });
  }
  absl::StatusOr<Logits> result =
      internal::CatchTorch("forward batch", [&]() -> absl::StatusOr<Logits> {
        at::NoGradGuard no_grad;
        // Each row's tensors are updated in place by the model (no stacked copy
        // of the whole batch's state).
        std::vector<std::vector<at::Tensor>*> rows;
        rows.reserve(states.size());
        for (State* s : states) rows.push_back(&StateAccess::Get(*s)->tensors);
        std::vector<int64_t> ids(tokens.begin(), tokens.end());
        at::Tensor tok = at::tensor(ids, at::kLong).view({B, 1});
        at::Tensor logits = model_->ForwardRows(tok, rows).contiguous().cpu();
        for (State* s : states) StateAccess::Get(*s)->token_count += 1;
        const float* p = logits.data_ptr<float>();
        return Logits(static_cast<int>(B), config_.vocab_size,
                      std::vector<float>(p, p + B * config_.vocab_size));
      });
  if (!result.ok()) {
    // The rows may be partly advanced: never leave a half-updated state.
    for (State* s : states) StateAccess::Clear(*s);
    return absl::Status(result.status().code(),
                        absl::StrCat(result.status().message(),
                                     " (the batch's states were cleared)"));
  }
  return result;
}

absl::StatusOr<Logits> RwkvEngine::ForwardSegments(
    absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
    absl::Span<State* const> states) {
  if (absl::Status s = CheckSegments(tokens, lengths, states); !s.ok()) {
    return s;
  }
  for (State* state : states) {
    if (absl::Status s = CheckState(*state); !s.ok()) return s;
  }
  if (!model_->fast_cpu() ||
      static_cast<int64_t>(tokens.size()) > internal::kCpuSegmentsMaxRows) {
    return ForwardSegmentsSeparately(tokens, lengths, states);
  }
  absl::StatusOr<Logits> result =
      internal::CatchTorch("forward segments", [&]() -> absl::StatusOr<Logits> {
        return ForwardFused(tokens, states, 0, lengths);
      });
  if (!result.ok()) {
    // As ForwardBatch: never leave a state that may be half-updated.
    for (State* s : states) StateAccess::Clear(*s);
    return absl::Status(result.status().code(),
                        absl::StrCat(result.status().message(),
                                     " (the call's states were cleared)"));
  }
  return result;
}

}  // namespace rwkv::engine
