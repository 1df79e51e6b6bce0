#include "engine/rwkv_engine.h"

#include <ATen/ATen.h>
#include <ATen/CPUGeneratorImpl.h>
#include <ATen/Context.h>
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint.h"
#include "engine/internal/model_fingerprint.h"
#include "engine/internal/rwkv4_model.h"
#include "engine/internal/state_impl.h"
#include "engine/internal/torch_status.h"
#include "engine/internal/weights_loader.h"
#include "engine/state_ops.h"

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

absl::StatusOr<at::ScalarType> ParseDtype(const std::string& name,
                                          const at::Device& device) {
  if (name == "fp32" || name == "float32") return at::kFloat;
  if (name == "bf16" || name == "bfloat16") return at::kBFloat16;
  if (name == "fp16" || name == "float16") {
    if (device.is_cpu()) {
      return absl::InvalidArgumentError(
          "dtype fp16 needs a CUDA device (LibTorch has no fp16 matmul on "
          "CPU); "
          "on CPU use fp32 or bf16");
    }
    return at::kHalf;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("unknown dtype '", name, "' (expected fp32, bf16 or fp16)"));
}

int ResolveThreads(int requested) {
  if (requested > 0) return requested;
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(hw);
}

State MakeState(const internal::Rwkv4Model& model) {
  auto impl = std::make_unique<StateImpl>();
  impl->arch = Architecture::kRwkv4;
  impl->model_fingerprint = model.config().fingerprint;
  impl->names = internal::Rwkv4StateNames();
  for (at::Tensor& t : model.NewState(1)) impl->tensors.push_back(t.squeeze(1));
  return StateAccess::Make(std::move(impl));
}

at::Tensor RandomLike(at::Generator& gen, std::vector<int64_t> shape,
                      double mean, double stddev) {
  return at::normal(mean, stddev, shape, gen);
}

at::Tensor Uniform(at::Generator& gen, std::vector<int64_t> shape, double lo,
                   double hi) {
  return at::empty(shape).uniform_(lo, hi, gen);
}

// Fingerprint of a random model: the same scheme as for loaded checkpoints.
std::string RandomFingerprint(const internal::Rwkv4Weights& w) {
  internal::ModelFingerprint fp;
  auto add = [&](const std::string& name, const at::Tensor& t) {
    at::Tensor f = t.to(at::kCPU, at::kFloat).contiguous();
    fp.AddTensor(name, std::vector<int64_t>(f.sizes().begin(), f.sizes().end()),
                 f.data_ptr<float>(), f.numel());
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

}  // namespace

RwkvEngine::RwkvEngine(std::unique_ptr<internal::Rwkv4Model> model,
                       ModelConfig config, int num_threads, std::string device,
                       std::string dtype)
    : model_(std::move(model)),
      config_(std::move(config)),
      num_threads_(num_threads),
      device_(std::move(device)),
      dtype_(std::move(dtype)) {}

RwkvEngine::~RwkvEngine() = default;

absl::StatusOr<std::unique_ptr<RwkvEngine>> RwkvEngine::Create(
    const EngineOptions& options) {
  absl::StatusOr<at::Device> device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<at::ScalarType> dtype = ParseDtype(options.dtype, *device);
  if (!dtype.ok()) return dtype.status();
  if (options.model_path.empty()) {
    return absl::InvalidArgumentError("no model file given");
  }
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(options.model_path);
  if (!ckpt.ok()) return ckpt.status();
  absl::StatusOr<Architecture> arch = internal::DetectArchitecture(*ckpt);
  if (!arch.ok()) return arch.status();
  if (*arch != Architecture::kRwkv4) {
    return absl::UnimplementedError(absl::StrCat(
        options.model_path, ": ", std::string(ArchitectureName(*arch)),
        " checkpoints are not supported by this build yet (RWKV-4 only)"));
  }
  const int threads = ResolveThreads(options.num_threads);
  at::set_num_threads(threads);
  return internal::CatchTorch(
      options.model_path, [&]() -> absl::StatusOr<std::unique_ptr<RwkvEngine>> {
        at::NoGradGuard no_grad;
        internal::LoadTarget target{*device, *dtype, options.time_decay_clip};
        absl::StatusOr<internal::Rwkv4Weights> w =
            internal::LoadRwkv4Weights(*ckpt, target);
        if (!w.ok()) return w.status();
        ModelConfig config = w->config;
        const bool fast = device->is_cpu() && *dtype == at::kFloat;
        auto model =
            std::make_unique<internal::Rwkv4Model>(*std::move(w), fast);
        return std::unique_ptr<RwkvEngine>(new RwkvEngine(
            std::move(model), config, threads, options.device, options.dtype));
      });
}

absl::StatusOr<std::unique_ptr<RwkvEngine>> RwkvEngine::CreateRandom(
    const RandomModelSpec& spec, const EngineOptions& options) {
  if (spec.n_layer <= 0 || spec.n_embd <= 0 || spec.vocab_size <= 0 ||
      spec.ffn_dim < 0) {
    return absl::InvalidArgumentError("random model: dims must be positive");
  }
  absl::StatusOr<at::Device> device = ParseDevice(options.device);
  if (!device.ok()) return device.status();
  absl::StatusOr<at::ScalarType> dtype = ParseDtype(options.dtype, *device);
  if (!dtype.ok()) return dtype.status();
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
          l.att_time_decay = (-at::exp(d)).to(*device, at::kFloat).contiguous();
          l.att_time_first =
              Uniform(gen, {C}, -1.0, 1.0).to(*device, at::kFloat).contiguous();
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
        ModelConfig config = w.config;
        const bool fast = device->is_cpu() && *dtype == at::kFloat;
        auto model = std::make_unique<internal::Rwkv4Model>(std::move(w), fast);
        return std::unique_ptr<RwkvEngine>(new RwkvEngine(
            std::move(model), config, threads, options.device, options.dtype));
      });
}

State RwkvEngine::NewState() const {
  at::NoGradGuard no_grad;
  return MakeState(*model_);
}

std::string RwkvEngine::matmul_backend() const {
  return model_->fast_cpu() ? "avx512-gemv+onednn" : "torch";
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
  if (impl->batch != 0) {
    return absl::InvalidArgumentError(
        "a stacked (batched) state cannot be fed directly; split it first");
  }
  if (!impl->model_fingerprint.empty() &&
      impl->model_fingerprint != config_.fingerprint) {
    return absl::InvalidArgumentError(absl::StrCat(
        "state belongs to another model (fingerprint ", impl->model_fingerprint,
        ", this model is ", config_.fingerprint, ")"));
  }
  if (impl->arch != config_.arch || impl->tensors.size() != 5) {
    return absl::InvalidArgumentError(
        "state does not belong to this model's architecture");
  }
  for (const at::Tensor& t : impl->tensors) {
    if (t.dim() != 2 || t.size(0) != config_.n_layer ||
        t.size(1) != config_.n_embd) {
      return absl::InvalidArgumentError(absl::StrCat(
          "state shape [", t.dim() > 0 ? t.size(0) : 0, ", ",
          t.dim() > 1 ? t.size(1) : 0, "] does not match the model's [",
          config_.n_layer, ", ", config_.n_embd, "]"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Logits> RwkvEngine::Forward(absl::Span<const int32_t> tokens,
                                           State& state) {
  if (absl::Status s = CheckTokens(tokens); !s.ok()) return s;
  if (absl::Status s = CheckState(state); !s.ok()) return s;
  return internal::CatchTorch("forward", [&]() -> absl::StatusOr<Logits> {
    at::NoGradGuard no_grad;
    StateImpl* impl = StateAccess::Get(state);
    std::vector<at::Tensor> work;
    work.reserve(5);
    for (const at::Tensor& t : impl->tensors)
      work.push_back(t.unsqueeze(1).clone());
    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    at::Tensor tok = at::tensor(ids, at::kLong).view({1, -1});
    at::Tensor logits = model_->Forward(tok, work).contiguous().cpu();
    for (size_t j = 0; j < work.size(); ++j)
      impl->tensors[j].copy_(work[j].squeeze(1));
    impl->token_count += static_cast<int64_t>(tokens.size());
    const float* p = logits.data_ptr<float>();
    return Logits(1, config_.vocab_size,
                  std::vector<float>(p, p + config_.vocab_size));
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
  return internal::CatchTorch("forward batch", [&]() -> absl::StatusOr<Logits> {
    at::NoGradGuard no_grad;
    std::vector<const State*> in(states.begin(), states.end());
    absl::StatusOr<State> stacked = StackStates(in);  // tensors [L, B, C]
    if (!stacked.ok()) return stacked.status();
    std::vector<at::Tensor>& work = StateAccess::Get(*stacked)->tensors;
    std::vector<int64_t> ids(tokens.begin(), tokens.end());
    at::Tensor tok = at::tensor(ids, at::kLong).view({B, 1});
    at::Tensor logits = model_->Forward(tok, work).contiguous().cpu();
    for (int64_t b = 0; b < B; ++b) {
      StateImpl* impl = StateAccess::Get(*states[b]);
      for (size_t j = 0; j < 5; ++j)
        impl->tensors[j].copy_(work[j].select(1, b));
      impl->token_count += 1;
    }
    const float* p = logits.data_ptr<float>();
    return Logits(static_cast<int>(B), config_.vocab_size,
                  std::vector<float>(p, p + B * config_.vocab_size));
  });
}

}  // namespace rwkv::engine
