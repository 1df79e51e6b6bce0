#include "engine/quantize_checkpoint.h"

#include <ATen/ATen.h>

#include <map>
#include <memory>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/internal/cpu_linear.h"
#include "engine/internal/torch_status.h"
#include "engine/internal/weights_loader.h"

namespace rwkv::engine {
namespace {

at::ScalarType TorchFloatType(DType d) {
  switch (d) {
    case DType::kFloat16:
      return at::kHalf;
    case DType::kBFloat16:
      return at::kBFloat16;
    case DType::kFloat64:
      return at::kDouble;
    default:
      return at::kFloat;
  }
}

}  // namespace

absl::StatusOr<QuantizeReport> QuantizeCheckpoint(const std::string& in_path,
                                                  const std::string& out_path,
                                                  const std::string& dtype) {
  if (dtype != "int8" && dtype != "bf16") {
    return absl::InvalidArgumentError(absl::StrCat(
        "quantize: unknown dtype '", dtype, "' (expected int8 or bf16)"));
  }
  if (out_path.empty()) {
    return absl::InvalidArgumentError("quantize: no output file given");
  }
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(in_path);
  if (!ckpt.ok()) return ckpt.status();
  for (const CheckpointTensor& t : ckpt->tensors()) {
    if (t.dtype == DType::kInt8 && internal::IsInt8MatrixName(t.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat(in_path, ": already quantized ('", t.name,
                       "' is int8); quantize the original checkpoint"));
    }
  }
  absl::StatusOr<Architecture> arch = internal::DetectArchitecture(*ckpt);
  if (!arch.ok()) return arch.status();
  return internal::CatchTorch(in_path, [&]() -> absl::StatusOr<QuantizeReport> {
    at::NoGradGuard no_grad;
    QuantizeReport report;
    report.architecture = std::string(ArchitectureName(*arch));
    report.dtype = dtype;
    // Validate every tensor and take the model's fingerprint the way
    // the engine computes it.
    internal::LoadTarget target;
    if (*arch == Architecture::kRwkv7) {
      absl::StatusOr<internal::Rwkv7Weights> w =
          internal::LoadRwkv7Weights(*ckpt, target);
      if (!w.ok()) return w.status();
      report.fingerprint = w->config.fingerprint;
    } else {
      absl::StatusOr<internal::Rwkv4Weights> w =
          internal::LoadRwkv4Weights(*ckpt, target);
      if (!w.ok()) return w.status();
      report.fingerprint = w->config.fingerprint;
    }
    // Converted buffers live here until the file is written.
    std::vector<std::unique_ptr<int8_t[]>> q_bufs;
    std::vector<std::unique_ptr<float[]>> s_bufs;
    std::vector<std::unique_ptr<uint16_t[]>> b_bufs;
    std::vector<TensorToWrite> out;
    for (const CheckpointTensor& t : ckpt->tensors()) {
      report.params_total += t.numel();
      report.bytes_in += t.nbytes;
      const bool convert = internal::IsInt8MatrixName(t.name) &&
                           t.shape.size() == 2 && t.numel() > 0;
      if (!convert) {
        out.push_back(
            TensorToWrite{t.name, t.dtype, t.shape, t.data, t.nbytes});
        continue;
      }
      const int64_t n = t.shape[0], k = t.shape[1];
      at::Tensor f32 =
          at::from_blob(const_cast<uint8_t*>(t.data), {n, k},
                        at::TensorOptions().dtype(TorchFloatType(t.dtype)))
              .to(at::kFloat)
              .contiguous();
      ++report.matrices;
      report.params_converted += n * k;
      if (dtype == "int8") {
        const int64_t g = internal::Int8Groups(k);
        auto q = std::make_unique<int8_t[]>(static_cast<size_t>(n * k));
        auto s = std::make_unique<float[]>(static_cast<size_t>(n * g));
        internal::QuantizeInt8(f32.data_ptr<float>(), n, k, q.get(), s.get());
        out.push_back(TensorToWrite{t.name, DType::kInt8, t.shape, q.get(),
                                    static_cast<size_t>(n * k)});
        out.push_back(
            TensorToWrite{t.name + internal::kInt8ScaleSuffix,
                          DType::kFloat32,
                          {n, g},
                          s.get(),
                          static_cast<size_t>(n * g) * sizeof(float)});
        q_bufs.push_back(std::move(q));
        s_bufs.push_back(std::move(s));
      } else {
        auto b = std::make_unique<uint16_t[]>(static_cast<size_t>(n * k));
        const float* src = f32.data_ptr<float>();
        for (int64_t i = 0; i < n * k; ++i) {
          b[i] = internal::FloatToBf16(src[i]);
        }
        out.push_back(TensorToWrite{t.name, DType::kBFloat16, t.shape, b.get(),
                                    static_cast<size_t>(n * k) * 2});
        b_bufs.push_back(std::move(b));
      }
    }
    report.tensors = static_cast<int64_t>(out.size());
    std::map<std::string, std::string> metadata;
    if (ckpt->format() == "safetensors") metadata = ckpt->metadata();
    metadata[internal::kFingerprintMetadataKey] = report.fingerprint;
    metadata["rwkv_quantization"] =
        dtype == "int8"
            ? absl::StrCat(
                  "int8 weight-only: NAME int8 [N, K], "
                  "NAME_scale float32 [N, ceil(K / ",
                  internal::kInt8GroupSize, ")]; w = q * scale[n, k / ",
                  internal::kInt8GroupSize, "]")
            : "bf16 matrices";
    absl::StatusOr<std::string> bytes = SerializeSafetensors(out, metadata);
    if (!bytes.ok()) {
      return absl::Status(
          bytes.status().code(),
          absl::StrCat(out_path, ": ", bytes.status().message()));
    }
    report.bytes_out = bytes->size();
    if (absl::Status s = WriteFileAtomically(out_path, *bytes); !s.ok()) {
      return s;
    }
    return report;
  });
}

}  // namespace rwkv::engine
