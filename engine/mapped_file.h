// MappedFile: the read-only bytes of a file, memory-mapped (so a multi-GB
// checkpoint is not copied), or of a string taken over by value. Immutable;
// safe for concurrent reads. The bytes stay at the same address for the
// object's lifetime. As with any mmap, truncating the file while it is mapped
// makes reads of the lost pages fault (SIGBUS); replace files by rename.
#ifndef RWKV_ENGINE_MAPPED_FILE_H_
#define RWKV_ENGINE_MAPPED_FILE_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/types/span.h"

namespace rwkv::engine {

class MappedFile {
 public:
  // Maps `path` read-only. NotFound if it does not exist, InvalidArgument for
  // a directory, PermissionDenied / Internal for other OS errors; the message
  // names the path. An empty file gives an empty mapping.
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(
      const std::string& path);

  // Wraps bytes already in memory.
  static std::unique_ptr<MappedFile> FromString(std::string bytes);

  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  ~MappedFile();

  absl::Span<const uint8_t> bytes() const { return {data_, size_}; }

 private:
  MappedFile() = default;

  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  void* mapping_ = nullptr;  // non-null when data_ comes from mmap
  std::string owned_;        // bytes given to FromString
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_MAPPED_FILE_H_
