// ReadPth: reads the tensors and scalar entries of a torch.save zip archive
// (Python torch.save, LibTorch torch::pickle_save) without LibTorch.
// Stateless; safe to call concurrently.
#ifndef RWKV_ENGINE_PTH_READER_H_
#define RWKV_ENGINE_PTH_READER_H_

#include <cstdint>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/checkpoint_contents.h"
#include "engine/parse_budget.h"

namespace rwkv::engine {

// `file` must outlive the result (tensors point into it when they can).
// The archive holds one folder of any name with data.pkl, data/<key> and
// version records. The pickled object is a dict (or OrderedDict, list,
// tuple) of tensors; nested containers are flattened with '.'-joined names
// and scalar entries go to metadata. With verify_checksums the CRC32 of
// every storage record is checked (data.pkl's always is). Everything built
// (zip directory, pickle objects, names, copies of strided or misaligned
// tensors) is charged to `budget` (null: ParseBudget::ForInput(file.size())).
absl::StatusOr<CheckpointContents> ReadPth(absl::Span<const uint8_t> file,
                                           std::string_view source,
                                           bool verify_checksums,
                                           ParseBudget* budget = nullptr);

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_PTH_READER_H_
