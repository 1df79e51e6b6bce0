// ZipWriter: writes a zip archive the way PyTorch's PyTorchStreamWriter does
// (STORED records whose data starts on a 64-byte boundary, data descriptors,
// ZIP64 end records), into a string. Not thread-safe.
#ifndef RWKV_ENGINE_ZIP_WRITER_H_
#define RWKV_ENGINE_ZIP_WRITER_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"

namespace rwkv::engine {

class ZipWriter {
 public:
  struct Options {
    // Sizes and offsets at or above this use ZIP64 fields. Tests lower it to
    // exercise the ZIP64 paths with small archives.
    uint64_t zip64_threshold = 0xFFFFFFFFu;
  };

  // Appends to *out, which must outlive the writer.
  explicit ZipWriter(std::string* out);
  ZipWriter(std::string* out, const Options& options);

  // Adds a stored record; InvalidArgument for a name over 65535 bytes or a
  // call after Finish.
  absl::Status Add(std::string_view name, std::string_view data);

  // Writes the central directory and end records.
  absl::Status Finish();

 private:
  struct Record {
    std::string name;
    uint64_t offset;
    uint64_t size;
    uint32_t crc;
  };

  std::string* out_;
  Options options_;
  uint64_t start_;  // out_->size() at construction: offsets are relative
  std::vector<Record> records_;
  bool finished_ = false;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_ZIP_WRITER_H_
