#include "engine/zip_writer.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/crc32.h"

namespace rwkv::engine {
namespace {

constexpr uint64_t kAlignment = 64;  // PyTorch's kFieldAlignment

void Put16(std::string* out, uint64_t v) {
  out->push_back(static_cast<char>(v & 0xFF));
  out->push_back(static_cast<char>((v >> 8) & 0xFF));
}
void Put32(std::string* out, uint64_t v) {
  Put16(out, v & 0xFFFF);
  Put16(out, (v >> 16) & 0xFFFF);
}
void Put64(std::string* out, uint64_t v) {
  Put32(out, v & 0xFFFFFFFFu);
  Put32(out, v >> 32);
}

}  // namespace

ZipWriter::ZipWriter(std::string* out) : ZipWriter(out, Options()) {}

ZipWriter::ZipWriter(std::string* out, const Options& options)
    : out_(out), options_(options), start_(out->size()) {}

absl::Status ZipWriter::Add(std::string_view name, std::string_view data) {
  if (finished_) return absl::FailedPreconditionError("zip already finished");
  if (name.size() > 0xFFFF) {
    return absl::InvalidArgumentError(
        absl::StrCat("zip entry name of ", name.size(), " bytes is too long"));
  }
  const uint64_t offset = out_->size() - start_;
  const uint64_t size = data.size();
  const uint32_t crc = Crc32(data.data(), data.size());
  const bool big_size = size >= options_.zip64_threshold;
  const bool big_offset = offset >= options_.zip64_threshold;

  // Local header (sizes and CRC live in the data descriptor, as miniz writes
  // them for PyTorch).
  std::string extra;
  if (big_size || big_offset) {
    Put16(&extra, 0x0001);
    Put16(&extra, (big_size ? 16 : 0) + (big_offset ? 8 : 0));
    if (big_size) {
      Put64(&extra, size);
      Put64(&extra, size);
    }
    if (big_offset) Put64(&extra, offset);
  }
  // "FB" padding field so that the data starts on a 64-byte boundary.
  const uint64_t unpadded = offset + 30 + name.size() + extra.size() + 4;
  const uint64_t pad = (kAlignment - unpadded % kAlignment) % kAlignment;
  extra += "FB";
  Put16(&extra, pad);
  extra.append(pad, 'Z');

  Put32(out_, 0x04034b50);
  Put16(out_, 0);       // version needed
  Put16(out_, 0x0808);  // data descriptor, UTF-8 name
  Put16(out_, 0);       // stored
  Put16(out_, 0);       // time
  Put16(out_, 0);       // date
  Put32(out_, 0);       // crc (in the descriptor)
  Put32(out_, big_size ? 0xFFFFFFFFu : 0);
  Put32(out_, big_size ? 0xFFFFFFFFu : 0);
  Put16(out_, name.size());
  Put16(out_, extra.size());
  out_->append(name);
  out_->append(extra);
  out_->append(data);

  // Data descriptor.
  Put32(out_, 0x08074b50);
  Put32(out_, crc);
  if (big_size || big_offset) {
    Put64(out_, size);
    Put64(out_, size);
  } else {
    Put32(out_, size);
    Put32(out_, size);
  }
  records_.push_back(Record{std::string(name), offset, size, crc});
  return absl::OkStatus();
}

absl::Status ZipWriter::Finish() {
  if (finished_) return absl::FailedPreconditionError("zip already finished");
  finished_ = true;
  const uint64_t limit = options_.zip64_threshold;
  const uint64_t cd_offset = out_->size() - start_;
  for (const Record& r : records_) {
    const bool big_size = r.size >= limit;
    const bool big_offset = r.offset >= limit;
    std::string extra;
    if (big_size || big_offset) {
      Put16(&extra, 0x0001);
      Put16(&extra, (big_size ? 16 : 0) + (big_offset ? 8 : 0));
      if (big_size) {
        Put64(&extra, r.size);
        Put64(&extra, r.size);
      }
      if (big_offset) Put64(&extra, r.offset);
    }
    Put32(out_, 0x02014b50);
    Put16(out_, 0);       // version made by
    Put16(out_, 0);       // version needed
    Put16(out_, 0x0808);  // flags
    Put16(out_, 0);       // stored
    Put16(out_, 0);       // time
    Put16(out_, 0);       // date
    Put32(out_, r.crc);
    Put32(out_, big_size ? 0xFFFFFFFFu : r.size);
    Put32(out_, big_size ? 0xFFFFFFFFu : r.size);
    Put16(out_, r.name.size());
    Put16(out_, extra.size());
    Put16(out_, 0);  // comment
    Put16(out_, 0);  // disk
    Put16(out_, 0);  // internal attributes
    Put32(out_, 0);  // external attributes
    Put32(out_, big_offset ? 0xFFFFFFFFu : r.offset);
    out_->append(r.name);
    out_->append(extra);
  }
  const uint64_t cd_size = out_->size() - start_ - cd_offset;
  const uint64_t count = records_.size();

  // ZIP64 end of central directory record and locator (always written, as
  // PyTorch does), then the classic end record.
  const uint64_t z64_offset = out_->size() - start_;
  Put32(out_, 0x06064b50);
  Put64(out_, 44);      // size of the rest of the record
  Put16(out_, 0x031e);  // version made by (unix, 3.0)
  Put16(out_, 0x002d);  // version needed (4.5: zip64)
  Put32(out_, 0);       // this disk
  Put32(out_, 0);       // disk with the central directory
  Put64(out_, count);
  Put64(out_, count);
  Put64(out_, cd_size);
  Put64(out_, cd_offset);

  Put32(out_, 0x07064b50);
  Put32(out_, 0);  // disk with the zip64 end record
  Put64(out_, z64_offset);
  Put32(out_, 1);  // total disks

  Put32(out_, 0x06054b50);
  Put16(out_, 0);
  Put16(out_, 0);
  Put16(out_, count >= 0xFFFF ? 0xFFFF : count);
  Put16(out_, count >= 0xFFFF ? 0xFFFF : count);
  Put32(out_, cd_size >= limit ? 0xFFFFFFFFu : cd_size);
  Put32(out_, cd_offset >= limit ? 0xFFFFFFFFu : cd_offset);
  Put16(out_, 0);  // comment
  return absl::OkStatus();
}

}  // namespace rwkv::engine
