#include "engine/state_file.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_contents.h"
#include "engine/checkpoint_writer.h"
#include "engine/internal/state_impl.h"
#include "engine/internal/state_schema.h"
#include "engine/internal/torch_status.h"
#include "engine/parse_budget.h"
#include "engine/state_inspect.h"

namespace rwkv::engine {
namespace {

using internal::StateAccess;
using internal::StateImpl;

std::string Shape(at::IntArrayRef s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}
std::string Shape(const std::vector<int64_t>& s) {
  return absl::StrCat("[", absl::StrJoin(s, ", "), "]");
}

absl::StatusOr<Architecture> ParseArch(const std::string& s,
                                       const std::string& source) {
  if (s == "rwkv4") return Architecture::kRwkv4;
  if (s == "rwkv7") return Architecture::kRwkv7;
  return absl::InvalidArgumentError(absl::StrCat(
      source, ": unknown architecture '", PrintableName(s), "' in state file"));
}

// Checks the tensors of a parsed file against the architecture's schema and
// converts them to fp32 CPU tensors.
absl::StatusOr<std::unique_ptr<StateImpl>> BuildImpl(
    const Checkpoint& ckpt, const StateFileInfo& info,
    const std::string& source) {
  const std::vector<std::string>& names =
      internal::StateComponentNames(info.arch);
  for (const CheckpointTensor& t : ckpt.tensors()) {
    if (std::find(names.begin(), names.end(), t.name) == names.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": unexpected tensor '", PrintableName(t.name), "' in an ",
          std::string(ArchitectureName(info.arch)), " state file (expected ",
          absl::StrJoin(names, ", "), ")"));
    }
  }
  auto impl = std::make_unique<StateImpl>();
  impl->arch = info.arch;
  impl->names = names;
  impl->token_count = info.token_count;
  impl->model_fingerprint = info.model_fingerprint;
  int64_t L = -1, C = -1;
  for (const std::string& name : names) {
    const CheckpointTensor* t = ckpt.Find(name);
    if (t == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": state component '", name, "' is missing"));
    }
    at::ScalarType st;
    StateDtype sd;
    switch (t->dtype) {
      case DType::kFloat32:
        st = at::kFloat;
        sd = StateDtype::kFloat32;
        break;
      case DType::kFloat16:
        st = at::kHalf;
        sd = StateDtype::kFloat16;
        break;
      case DType::kBFloat16:
        st = at::kBFloat16;
        sd = StateDtype::kBFloat16;
        break;
      default:
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": state component '", name, "' has dtype ",
                         std::string(DTypeName(t->dtype)),
                         "; expected float32, float16 or bfloat16"));
    }
    if (info.format_version > 0 && sd != info.dtype) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": state component '", name, "' is ",
          std::string(DTypeName(t->dtype)), " but the file says dtype ",
          std::string(StateDtypeName(info.dtype))));
    }
    // Shapes: [L, C] for vectors, [L, H, N, N] for the RWKV-7 matrix.
    const bool matrix = name == "att_kv";
    const size_t rank = matrix ? 4 : 2;
    bool ok = t->shape.size() == rank;
    for (int64_t d : t->shape) ok = ok && d > 0 && d <= (1 << 20);
    if (ok && matrix) ok = t->shape[2] == t->shape[3];
    if (ok && L < 0) L = t->shape[0];
    if (ok && !matrix && C < 0) C = t->shape[1];
    if (ok) ok = t->shape[0] == L && (matrix || t->shape[1] == C);
    if (!ok) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": state component '", name, "' has shape ", Shape(t->shape),
          matrix ? ", expected [n_layer, n_head, head_size, head_size]"
                 : ", expected [n_layer, n_embd] like the other components"));
    }
    at::Tensor f = at::from_blob(const_cast<uint8_t*>(t->data), t->shape,
                                 at::TensorOptions().dtype(st))
                       .to(at::kFloat, false, /*copy=*/true);
    if (!at::isfinite(f).all().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": state component '", name,
                       "' contains NaN or infinite values"));
    }
    if (name == "att_ab" && (f < 0).any().item<bool>()) {
      return absl::InvalidArgumentError(
          absl::StrCat(source,
                       ": state component 'att_ab' has negative values (a WKV "
                       "denominator is a sum of positive weights)"));
    }
    impl->tensors.push_back(std::move(f));
  }
  return impl;
}

}  // namespace

absl::StatusOr<StateDtype> ParseStateDtype(std::string_view name) {
  if (name == "fp32" || name == "float32") return StateDtype::kFloat32;
  if (name == "fp16" || name == "float16") return StateDtype::kFloat16;
  if (name == "bf16" || name == "bfloat16") return StateDtype::kBFloat16;
  return absl::InvalidArgumentError(
      absl::StrCat("unknown state dtype '", std::string(name),
                   "' (expected fp32, fp16 or bf16)"));
}

std::string_view StateDtypeName(StateDtype dtype) {
  switch (dtype) {
    case StateDtype::kFloat32:
      return "float32";
    case StateDtype::kFloat16:
      return "float16";
    case StateDtype::kBFloat16:
      return "bfloat16";
  }
  return "unknown";
}

absl::StatusOr<std::string> SerializeState(const State& state,
                                           StateDtype dtype) {
  const StateImpl* impl = StateAccess::Get(state);
  if (impl == nullptr)
    return absl::InvalidArgumentError("cannot save an empty state");
  return internal::CatchTorch(
      "save state", [&]() -> absl::StatusOr<std::string> {
        at::NoGradGuard no_grad;
        std::vector<at::Tensor> keep;
        std::vector<TensorToWrite> tensors;
        for (size_t i = 0; i < impl->tensors.size(); ++i) {
          at::Tensor t = impl->tensors[i].detach().to(at::kCPU, at::kFloat);
          if (!at::isfinite(t).all().item<bool>()) {
            return absl::FailedPreconditionError(
                absl::StrCat("state component '", impl->names[i],
                             "' holds NaN or infinite values"));
          }
          DType dt = DType::kFloat32;
          if (dtype == StateDtype::kFloat16) {
            t = t.clamp(-65504.0, 65504.0).to(at::kHalf);
            dt = DType::kFloat16;
          } else if (dtype == StateDtype::kBFloat16) {
            t = t.to(at::kBFloat16);
            dt = DType::kBFloat16;
          }
          t = t.contiguous();
          keep.push_back(t);
          tensors.push_back(TensorToWrite{
              impl->names[i], dt,
              std::vector<int64_t>(t.sizes().begin(), t.sizes().end()),
              t.data_ptr(), static_cast<size_t>(t.numel() * t.element_size())});
        }
        const at::Tensor& first = impl->tensors.front();
        std::vector<ScalarToWrite> scalars = {
            {"rwkv_state_format", int64_t{kStateFormatVersion}},
            {"architecture", std::string(ArchitectureName(impl->arch))},
            {"model_fingerprint", impl->model_fingerprint},
            {"dtype", std::string(StateDtypeName(dtype))},
            {"token_count", impl->token_count},
            {"n_layer", int64_t{first.size(0)}},
        };
        return SerializePth(tensors, scalars);
      });
}

namespace {

absl::StatusOr<State> ParseStandalone(std::string bytes,
                                      const std::string& source,
                                      StateFileInfo* info_out) {
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(std::move(bytes), source);
  if (!ckpt.ok()) return ckpt.status();
  StateFileInfo info;
  const auto& meta = ckpt->metadata();
  if (auto it = meta.find("rwkv_state_format"); it != meta.end()) {
    if (!absl::SimpleAtoi(it->second, &info.format_version) ||
        info.format_version < 1) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": bad rwkv_state_format '", PrintableName(it->second), "'"));
    }
    if (info.format_version > kStateFormatVersion) {
      return absl::InvalidArgumentError(absl::StrCat(
          source, ": state format version ", info.format_version,
          " is newer than this build understands (", kStateFormatVersion, ")"));
    }
    auto get = [&](const char* key) -> absl::StatusOr<std::string> {
      auto m = meta.find(key);
      if (m == meta.end()) {
        return absl::InvalidArgumentError(
            absl::StrCat(source, ": state file lacks its '", key, "' entry"));
      }
      return m->second;
    };
    absl::StatusOr<std::string> arch = get("architecture");
    if (!arch.ok()) return arch.status();
    absl::StatusOr<Architecture> a = ParseArch(*arch, source);
    if (!a.ok()) return a.status();
    info.arch = *a;
    absl::StatusOr<std::string> fp = get("model_fingerprint");
    if (!fp.ok()) return fp.status();
    info.model_fingerprint = *fp;
    absl::StatusOr<std::string> dt = get("dtype");
    if (!dt.ok()) return dt.status();
    absl::StatusOr<StateDtype> d = ParseStateDtype(*dt);
    if (!d.ok())
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": ", d.status().message()));
    info.dtype = *d;
    absl::StatusOr<std::string> tc = get("token_count");
    if (!tc.ok()) return tc.status();
    if (!absl::SimpleAtoi(*tc, &info.token_count) || info.token_count < 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": bad token_count '", PrintableName(*tc), "'"));
    }
  } else {
    // A plain dict of state tensors (e.g. written by Python's torch.save).
    if (ckpt->Find("att_aa") != nullptr || ckpt->Find("att_pp") != nullptr) {
      info.arch = Architecture::kRwkv4;
    } else if (ckpt->Find("att_kv") != nullptr) {
      info.arch = Architecture::kRwkv7;
    } else {
      return absl::InvalidArgumentError(absl::StrCat(
          source,
          ": not an RWKV state file (no rwkv_state_format entry and no "
          "att_aa / att_kv tensor)"));
    }
    if (!ckpt->tensors().empty()) {
      switch (ckpt->tensors().front().dtype) {
        case DType::kFloat16:
          info.dtype = StateDtype::kFloat16;
          break;
        case DType::kBFloat16:
          info.dtype = StateDtype::kBFloat16;
          break;
        default:
          info.dtype = StateDtype::kFloat32;
      }
    }
  }
  return internal::CatchTorch(source, [&]() -> absl::StatusOr<State> {
    at::NoGradGuard no_grad;
    absl::StatusOr<std::unique_ptr<StateImpl>> impl =
        BuildImpl(*ckpt, info, source);
    if (!impl.ok()) return impl.status();
    if (info_out != nullptr) *info_out = info;
    return StateAccess::Make(*std::move(impl));
  });
}

absl::StatusOr<State> ParseForModel(std::string bytes,
                                    const std::string& source,
                                    const Model& model,
                                    const LoadStateOptions& options);

}  // namespace

absl::StatusOr<State> ParseStateStandalone(std::string bytes,
                                           std::string_view source_view,
                                           StateFileInfo* info) {
  const std::string source(source_view);
  return GuardAllocation(source, [&]() -> absl::StatusOr<State> {
    return ParseStandalone(std::move(bytes), source, info);
  });
}

int64_t MaxStateFileBytes(const ModelConfig& config) {
  return kStateFileSizeFactor * config.state_bytes_fp32 + kStateFileSlackBytes;
}

absl::StatusOr<State> ParseState(std::string bytes,
                                 std::string_view source_view,
                                 const Model& model,
                                 const LoadStateOptions& options) {
  const std::string source(source_view);
  return GuardAllocation(source, [&]() -> absl::StatusOr<State> {
    return ParseForModel(std::move(bytes), source, model, options);
  });
}

namespace {

absl::StatusOr<State> ParseForModel(std::string bytes,
                                    const std::string& source,
                                    const Model& model,
                                    const LoadStateOptions& options) {
  const int64_t limit = options.max_file_bytes > 0
                            ? options.max_file_bytes
                            : MaxStateFileBytes(model.config());
  if (static_cast<uint64_t>(bytes.size()) > static_cast<uint64_t>(limit)) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": a state file of ", bytes.size(),
        " bytes is larger than any state of this model can be (at most ", limit,
        " bytes; its state is ", model.config().state_bytes_fp32,
        " bytes in fp32)"));
  }
  StateFileInfo info;
  absl::StatusOr<State> loaded =
      ParseStateStandalone(std::move(bytes), source, &info);
  if (!loaded.ok()) return loaded.status();
  const ModelConfig& config = model.config();
  // A well-formed state of another model: FailedPrecondition (the bytes are
  // fine, this model is the wrong one for them).
  if (info.arch != config.arch) {
    return absl::FailedPreconditionError(absl::StrCat(
        source, ": state is for ", std::string(ArchitectureName(info.arch)),
        " but the model is ", std::string(ArchitectureName(config.arch))));
  }
  if (!options.skip_fingerprint_check && !info.model_fingerprint.empty() &&
      info.model_fingerprint != config.fingerprint) {
    return absl::FailedPreconditionError(
        absl::StrCat(source, ": state was saved for model ",
                     PrintableName(info.model_fingerprint),
                     ", not this model (", config.fingerprint,
                     "); loading it anyway needs the skip-fingerprint option"));
  }
  State templ = model.NewState();
  StateImpl* want = StateAccess::Get(templ);
  StateImpl* got = StateAccess::Get(*loaded);
  for (size_t i = 0; i < want->tensors.size(); ++i) {
    if (!want->tensors[i].sizes().equals(got->tensors[i].sizes())) {
      return absl::FailedPreconditionError(absl::StrCat(
          source, ": state component '", want->names[i], "' has shape ",
          Shape(got->tensors[i].sizes()), " but this model needs ",
          Shape(want->tensors[i].sizes())));
    }
  }
  if (!options.allow_unhealthy) {
    if (absl::Status health = CheckStateHealth(*loaded); !health.ok()) {
      return absl::Status(
          health.code(),
          absl::StrCat(source, ": ", health.message(),
                       "; loading it anyway needs the allow-unhealthy option"));
    }
  }
  return internal::CatchTorch(source, [&]() -> absl::StatusOr<State> {
    for (size_t i = 0; i < got->tensors.size(); ++i) {
      got->tensors[i] = got->tensors[i].to(want->tensors[i].device());
    }
    got->model_fingerprint = config.fingerprint;
    return *std::move(loaded);
  });
}

}  // namespace

absl::Status SaveStateFile(const std::string& path, const State& state,
                           StateDtype dtype) {
  absl::StatusOr<std::string> bytes = SerializeState(state, dtype);
  if (!bytes.ok()) return bytes.status();
  return WriteFileAtomically(path, *bytes);
}

namespace {
absl::StatusOr<std::string> ReadAll(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return absl::NotFoundError(absl::StrCat(path, ": cannot open state file"));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}
}  // namespace

absl::StatusOr<State> LoadStateFile(const std::string& path, const Model& model,
                                    const LoadStateOptions& options) {
  absl::StatusOr<std::string> bytes = ReadAll(path);
  if (!bytes.ok()) return bytes.status();
  return ParseState(*std::move(bytes), path, model, options);
}

absl::StatusOr<State> LoadStateFileStandalone(const std::string& path,
                                              StateFileInfo* info) {
  absl::StatusOr<std::string> bytes = ReadAll(path);
  if (!bytes.ok()) return bytes.status();
  return ParseStateStandalone(*std::move(bytes), path, info);
}

}  // namespace rwkv::engine
