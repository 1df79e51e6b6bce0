// ReadSafetensors: reads a .safetensors file (8-byte little-endian header
// length, JSON header, data section) with full validation of the header.
// Stateless; safe to call concurrently.
#ifndef RWKV_ENGINE_SAFETENSORS_READER_H_
#define RWKV_ENGINE_SAFETENSORS_READER_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/checkpoint_contents.h"

namespace rwkv::engine {

// Largest header accepted (the reference implementation's limit).
inline constexpr uint64_t kMaxSafetensorsHeader = 100'000'000;

// `file` must outlive the result (tensors point into it when aligned).
// Tensors are in header order; metadata is the header's __metadata__.
absl::StatusOr<CheckpointContents> ReadSafetensors(
    absl::Span<const uint8_t> file, std::string_view source);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_SAFETENSORS_READER_H_
