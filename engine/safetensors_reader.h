// ReadSafetensors: reads a .safetensors file (8-byte little-endian header
// length, JSON header, data section) with full validation of the header.
// The header is read as a stream of JSON events (no document tree is built):
// what is kept (tensor names, shapes, __metadata__ strings, copies of
// misaligned tensors) is charged to a ParseBudget. Stateless; safe to call
// concurrently.
#ifndef RWKV_ENGINE_SAFETENSORS_READER_H_
#define RWKV_ENGINE_SAFETENSORS_READER_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/checkpoint_contents.h"
#include "engine/parse_budget.h"

namespace rwkv::engine {

// Largest header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// `file` must outlive the result (tensors point into it when aligned).
// Tensors are in header order; metadata is the header's __metadata__.
// `budget` null: ParseBudget::ForInput(file.size()).
absl::StatusOr<CheckpointContents> ReadSafetensors(
    absl::Span<const uint8_t> file, std::string_view source,
    ParseBudget* budget = nullptr);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_SAFETENSORS_READER_H_
