// ZipReader: a bounds-checked parser for the zip archives torch.save writes
// (STORED records, ZIP64 end records, data descriptors), over bytes owned by
// the caller. Its directory (entries and their index) is charged to a
// ParseBudget. Immutable after Parse; safe for concurrent const use.
#ifndef RWKV_ENGINE_ZIP_READER_H_
#define RWKV_ENGINE_ZIP_READER_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "engine/parse_budget.h"

namespace rwkv::engine {

class ZipReader {
 public:
  struct Entry {
    std::string name;
    uint64_t local_header_offset = 0;
    uint64_t compressed_size = 0;
    uint64_t uncompressed_size = 0;
    uint32_t crc32 = 0;
    uint16_t method = 0;  // 0 = stored
    uint16_t flags = 0;
  };

  // Reads the central directory of the archive in `data`, which must outlive
  // the reader. `source` prefixes error messages ("model.pth: zip ...").
  // The directory is charged to `budget` (null: ForInput(data.size())).
  // DataLoss for a truncated or inconsistent archive, InvalidArgument for
  // multi-disk archives or a spent budget, ResourceExhausted if an
  // allocation fails.
  static absl::StatusOr<ZipReader> Parse(absl::Span<const uint8_t> data,
                                         std::string_view source,
                                         ParseBudget* budget = nullptr);

  // Central directory order.
  const std::vector<Entry>& entries() const { return entries_; }

  // nullptr if there is no entry of that name.
  const Entry* Find(std::string_view name) const;

  // The bytes of a stored entry, inside `data`. InvalidArgument for a
  // compressed or encrypted entry; DataLoss for a bad local header, an entry
  // that runs past the end of the data or (with verify_crc) a CRC mismatch.
  absl::StatusOr<absl::Span<const uint8_t>> Read(const Entry& entry,
                                                 bool verify_crc) const;

 private:
  ZipReader() = default;
  static absl::StatusOr<ZipReader> ParseDirectory(
      absl::Span<const uint8_t> data, const std::string& source,
      ParseBudget* budget);

  absl::Span<const uint8_t> data_;
  std::string source_;
  std::vector<Entry> entries_;
  std::map<std::string, size_t, std::less<>> index_;
};

}  // namespace rwkv::engine

#endif  // RWKV_ENGINE_ZIP_READER_H_
