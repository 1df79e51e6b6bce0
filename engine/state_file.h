// State files: a session's recurrent state as a file Python's torch.load
// opens directly (a dict of tensors named as the RWKV state is documented,
// plus metadata entries), and the validated way back. Loading checks the
// architecture, the model fingerprint (unless told not to), every component's
// presence, shape and dtype, and that all values are finite; a plain dict of
// those tensors written by Python's torch.save is accepted too.
// Stateless functions; safe to call from any thread.
#ifndef RWKV_ENGINE_STATE_FILE_H_
#define RWKV_ENGINE_STATE_FILE_H_

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "engine/model.h"
#include "engine/model_config.h"
#include "engine/state.h"

namespace rwkv::engine {

// Storage dtype of a state file. fp16/bf16 halve the bytes; values are
// restored to fp32 on load. (fp16 cannot hold a fresh state's att_pp of
// -1e30: such values are stored as -65504, which is equivalent because
// exp(-65504 - x) is 0 in fp32.)
enum class StateDtype { kFloat32, kFloat16, kBFloat16 };

// "fp32"/"float32", "fp16"/"float16", "bf16"/"bfloat16".
absl::StatusOr<StateDtype> ParseStateDtype(std::string_view name);
std::string_view StateDtypeName(StateDtype dtype);  // "float32", ...

// What a state file says about itself.
struct StateFileInfo {
  int format_version = 0;  // 0: a plain tensor dict without metadata
  Architecture arch = Architecture::kRwkv4;
  std::string model_fingerprint;  // "" when the file does not say
  StateDtype dtype = StateDtype::kFloat32;
  int64_t token_count = 0;
};

inline constexpr int kStateFormatVersion = 1;

// Serializes `state` (one sequence, not a stack) as torch.save-compatible
// .pth bytes: the state's components by name (RWKV-4: att_aa, att_ab,
// att_pp, att_x_prev, ffn_x_prev, [n_layer, n_embd] each; RWKV-7: att_x_prev,
// att_kv [n_layer, n_head, head_size, head_size] in ChatRWKV's [value, key]
// orientation, ffn_x_prev) and entries rwkv_state_format,
// architecture, model_fingerprint, dtype, token_count.
absl::StatusOr<std::string> SerializeState(const State& state,
                                           StateDtype dtype);

struct LoadStateOptions {
  // Accept a state saved by another model of the same shape.
  bool skip_fingerprint_check = false;
  // Accept a state that CheckStateHealth calls unhealthy (finite values
  // beyond the health bounds, e.g. x_prev near 3e38, which make the next
  // forward produce NaN). Off: such a state is InvalidArgument.
  bool allow_unhealthy = false;
  // Largest file accepted, checked before anything is parsed. 0: the
  // model's own limit, MaxStateFileBytes(model.config()).
  int64_t max_file_bytes = 0;
};

// How large a state file of `config`'s model can legitimately be:
// kStateFileSizeFactor x its fp32 state bytes + kStateFileSlackBytes (the
// archive's records and metadata take ~3 KB; the factor leaves room for
// tensors saved as views of larger storages).
inline constexpr int64_t kStateFileSizeFactor = 2;
inline constexpr int64_t kStateFileSlackBytes = 64 << 10;
int64_t MaxStateFileBytes(const ModelConfig& config);

// Parses state file bytes for `model`. The result lives on the
// model's device and carries its fingerprint. `source` names the file in
// errors. Bytes over the size limit (options.max_file_bytes) are refused
// before parsing; parsing holds what it builds to ParseBudget::ForInput
// (Checkpoint); the state must be healthy unless options.allow_unhealthy.
// Errors: InvalidArgument for malformed, oversized or unhealthy bytes;
// FailedPrecondition for a well-formed state of another model
// (architecture, fingerprint or shape); ResourceExhausted if an allocation
// fails (nothing escapes as an exception).
absl::StatusOr<State> ParseState(std::string bytes, std::string_view source,
                                 const Model& model,
                                 const LoadStateOptions& options = {});

// Parses state file bytes without a model (the state tools of rwkv-cli): the
// schema comes from the file. `info` (optional) receives its metadata.
absl::StatusOr<State> ParseStateStandalone(std::string bytes,
                                           std::string_view source,
                                           StateFileInfo* info = nullptr);

// File helpers over the two above (atomic write).
absl::Status SaveStateFile(const std::string& path, const State& state,
                           StateDtype dtype);
absl::StatusOr<State> LoadStateFile(const std::string& path, const Model& model,
                                    const LoadStateOptions& options = {});
absl::StatusOr<State> LoadStateFileStandalone(const std::string& path,
                                              StateFileInfo* info = nullptr);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_STATE_FILE_H_
