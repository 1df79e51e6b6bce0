#include "engine/zip_reader.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "engine/checkpoint_contents.h"
#include "engine/crc32.h"

namespace rwkv::engine {
namespace {

constexpr uint32_t kLocalHeaderSig = 0x04034b50;
constexpr uint32_t kCentralHeaderSig = 0x02014b50;
constexpr uint32_t kEndSig = 0x06054b50;
constexpr uint32_t kZip64EndSig = 0x06064b50;
constexpr uint32_t kZip64LocatorSig = 0x07064b50;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kCentralHeaderSize = 46;
constexpr size_t kLocalHeaderSize = 30;

uint16_t Le16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] | (p[1] << 8));
}
uint32_t Le32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) |
         (static_cast<uint32_t>(p[2]) << 16) |
         (static_cast<uint32_t>(p[3]) << 24);
}
uint64_t Le64(const uint8_t* p) {
  return static_cast<uint64_t>(Le32(p)) |
         (static_cast<uint64_t>(Le32(p + 4)) << 32);
}

// One entry of the index: a red-black tree node holding the key and value,
// plus allocator overhead.
constexpr uint64_t kIndexNodeBytes =
    4 * sizeof(void*) + sizeof(std::pair<const std::string, size_t>) +
    ParseBudget::kAllocOverhead;

}  // namespace

absl::StatusOr<ZipReader> ZipReader::Parse(absl::Span<const uint8_t> data,
                                           std::string_view source_name,
                                           ParseBudget* budget) {
  const std::string source(source_name);
  return GuardAllocation(source, [&]() -> absl::StatusOr<ZipReader> {
    ParseBudget own = ParseBudget::ForInput(data.size());
    return ParseDirectory(data, source, budget != nullptr ? budget : &own);
  });
}

absl::StatusOr<ZipReader> ZipReader::ParseDirectory(
    absl::Span<const uint8_t> data, const std::string& source,
    ParseBudget* budget) {
  auto loss = [&](auto&&... parts) {
    return absl::DataLossError(absl::StrCat(source, ": ", parts...));
  };
  const uint8_t* base = data.data();
  const uint64_t size = data.size();

  // End of central directory: the last signature whose comment fits.
  if (size < kEndSize) {
    return loss("zip end of central directory not found (truncated file?)");
  }
  uint64_t end_pos = 0;
  bool found = false;
  const uint64_t lowest =
      size - kEndSize > 0xFFFF ? size - kEndSize - 0xFFFF : 0;
  for (uint64_t pos = size - kEndSize + 1; pos-- > lowest;) {
    if (Le32(base + pos) == kEndSig &&
        Le16(base + pos + 20) <= size - kEndSize - pos) {
      end_pos = pos;
      found = true;
      break;
    }
  }
  if (!found) {
    return loss("zip end of central directory not found (truncated file?)");
  }
  const uint8_t* end = base + end_pos;
  uint64_t disk = Le16(end + 4);
  uint64_t cd_disk = Le16(end + 6);
  uint64_t count = Le16(end + 10);
  uint64_t cd_size = Le32(end + 12);
  uint64_t cd_offset = Le32(end + 16);
  uint64_t cd_limit = end_pos;  // the central directory ends before this

  if (end_pos >= kZip64LocatorSize &&
      Le32(base + end_pos - kZip64LocatorSize) == kZip64LocatorSig) {
    const uint8_t* loc = base + end_pos - kZip64LocatorSize;
    const uint64_t z64_pos = Le64(loc + 8);
    if (Le32(loc + 4) != 0 || Le32(loc + 16) > 1) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": multi-disk zip archives are not supported"));
    }
    if (z64_pos > end_pos - kZip64LocatorSize ||
        end_pos - kZip64LocatorSize - z64_pos < kZip64EndSize ||
        Le32(base + z64_pos) != kZip64EndSig) {
      return loss("zip64 end of central directory record not found at offset ",
                  z64_pos, " (corrupt file?)");
    }
    const uint8_t* z = base + z64_pos;
    disk = Le32(z + 16);
    cd_disk = Le32(z + 20);
    count = Le64(z + 32);
    cd_size = Le64(z + 40);
    cd_offset = Le64(z + 48);
    cd_limit = z64_pos;
  } else if (count == 0xFFFF || cd_size == 0xFFFFFFFFu ||
             cd_offset == 0xFFFFFFFFu) {
    return loss(
        "zip64 end of central directory locator missing (corrupt "
        "file?)");
  }
  if (disk != 0 || cd_disk != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source, ": multi-disk zip archives are not supported"));
  }
  if (cd_offset > cd_limit || cd_size > cd_limit - cd_offset) {
    return loss("zip central directory (offset ", cd_offset, ", ", cd_size,
                " bytes) lies outside the file (truncated file?)");
  }
  if (count > cd_size / kCentralHeaderSize) {
    return loss("zip central directory claims ", count,
                " entries but its size allows at most ",
                cd_size / kCentralHeaderSize, " (corrupt file?)");
  }

  if (!budget->TryCharge(count * sizeof(Entry) + ParseBudget::kAllocOverhead +
                         ParseBudget::StringBytes(source.size()))) {
    return budget->Exceeded(
        absl::StrCat(source, ": the zip directory of ", count, " entries"));
  }
  ZipReader reader;
  reader.data_ = data;
  reader.source_ = source;
  reader.entries_.reserve(count);
  uint64_t p = cd_offset;
  const uint64_t cd_end = cd_offset + cd_size;
  for (uint64_t i = 0; i < count; ++i) {
    if (cd_end - p < kCentralHeaderSize ||
        Le32(base + p) != kCentralHeaderSig) {
      return loss("zip central directory entry ", i, " at offset ", p,
                  " is invalid (corrupt file?)");
    }
    const uint8_t* h = base + p;
    const uint64_t name_len = Le16(h + 28);
    const uint64_t extra_len = Le16(h + 30);
    const uint64_t comment_len = Le16(h + 32);
    if (cd_end - p - kCentralHeaderSize < name_len + extra_len + comment_len) {
      return loss("zip central directory entry ", i,
                  " runs past the directory's end (corrupt file?)");
    }
    Entry e;
    e.flags = Le16(h + 8);
    e.method = Le16(h + 10);
    e.crc32 = Le32(h + 16);
    e.compressed_size = Le32(h + 20);
    e.uncompressed_size = Le32(h + 24);
    const uint32_t disk_start = Le16(h + 34);
    e.local_header_offset = Le32(h + 42);
    if (!budget->TryCharge(2 * ParseBudget::StringBytes(name_len) +
                           kIndexNodeBytes)) {
      return budget->Exceeded(
          absl::StrCat(source, ": the zip directory of ", count, " entries"));
    }
    e.name.assign(reinterpret_cast<const char*>(h + kCentralHeaderSize),
                  name_len);

    const bool need_usize = e.uncompressed_size == 0xFFFFFFFFu;
    const bool need_csize = e.compressed_size == 0xFFFFFFFFu;
    const bool need_offset = e.local_header_offset == 0xFFFFFFFFu;
    if (need_usize || need_csize || need_offset) {
      // ZIP64 extended information: the 8-byte fields whose 4-byte
      // counterparts are 0xFFFFFFFF, in this order.
      const uint8_t* x = h + kCentralHeaderSize + name_len;
      uint64_t left = extra_len;
      bool done = false;
      while (left >= 4 && !done) {
        const uint16_t id = Le16(x);
        const uint64_t len = Le16(x + 2);
        if (len > left - 4) break;
        if (id == 0x0001) {
          const uint64_t needed =
              8 * (uint64_t{need_usize} + need_csize + need_offset);
          if (len < needed) break;
          const uint8_t* f = x + 4;
          if (need_usize) {
            e.uncompressed_size = Le64(f);
            f += 8;
          }
          if (need_csize) {
            e.compressed_size = Le64(f);
            f += 8;
          }
          if (need_offset) e.local_header_offset = Le64(f);
          done = true;
        }
        x += 4 + len;
        left -= 4 + len;
      }
      if (!done) {
        return loss("zip entry '", PrintableName(e.name),
                    "' lacks its zip64 extended information (corrupt file?)");
      }
    }
    if (disk_start != 0 && disk_start != 0xFFFF) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ": multi-disk zip archives are not supported"));
    }
    if (e.method == 0 && e.compressed_size != e.uncompressed_size) {
      return loss("zip stored entry '", PrintableName(e.name),
                  "' has compressed size ", e.compressed_size, " != size ",
                  e.uncompressed_size, " (corrupt file?)");
    }
    if (e.local_header_offset >= cd_offset) {
      return loss("zip entry '", PrintableName(e.name),
                  "' starts past the file's records (corrupt file?)");
    }
    if (!reader.index_.emplace(e.name, reader.entries_.size()).second) {
      return loss("zip archive has a duplicate entry '", PrintableName(e.name),
                  "'");
    }
    reader.entries_.push_back(std::move(e));
    p += kCentralHeaderSize + name_len + extra_len + comment_len;
  }
  return reader;
}

const ZipReader::Entry* ZipReader::Find(std::string_view name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &entries_[it->second];
}

absl::StatusOr<absl::Span<const uint8_t>> ZipReader::Read(
    const Entry& entry, bool verify_crc) const {
  const std::string name = PrintableName(entry.name);
  if (entry.flags & 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        source_, ": zip entry '", name, "' is encrypted (not supported)"));
  }
  if (entry.method != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(source_, ": zip entry '", name, "' is compressed (method ",
                     entry.method, entry.method == 8 ? ", deflate" : "",
                     "); checkpoints must store their records uncompressed, as "
                     "torch.save does (was the file re-zipped?)"));
  }
  const uint8_t* base = data_.data();
  const uint64_t size = data_.size();
  const uint64_t off = entry.local_header_offset;
  if (off > size || size - off < kLocalHeaderSize ||
      Le32(base + off) != kLocalHeaderSig) {
    return absl::DataLossError(absl::StrCat(source_, ": zip local header of '",
                                            name, "' not found at offset ", off,
                                            " (corrupt file?)"));
  }
  const uint64_t name_len = Le16(base + off + 26);
  const uint64_t extra_len = Le16(base + off + 28);
  const uint64_t start = off + kLocalHeaderSize + name_len + extra_len;
  if (start > size || size - start < entry.compressed_size) {
    return absl::DataLossError(
        absl::StrCat(source_, ": zip entry '", name,
                     "' extends past the end of the file (truncated file?)"));
  }
  if (name_len != entry.name.size() ||
      std::memcmp(base + off + kLocalHeaderSize, entry.name.data(), name_len) !=
          0) {
    return absl::DataLossError(
        absl::StrCat(source_, ": zip local header of '", name,
                     "' names a different file (corrupt file?)"));
  }
  absl::Span<const uint8_t> bytes(base + start, entry.compressed_size);
  if (verify_crc && Crc32(bytes.data(), bytes.size()) != entry.crc32) {
    return absl::DataLossError(
        absl::StrCat(source_, ": zip entry '", name,
                     "' fails its CRC32 check (corrupt file?)"));
  }
  return bytes;
}

}  // namespace rwkv::engine
