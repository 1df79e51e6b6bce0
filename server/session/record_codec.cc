#include "server/session/record_codec.h"

#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/crc32.h"

namespace rwkv::server {
namespace {

constexpr char kMagic[4] = {'R', 'W', 'K', 'M'};

class Writer {
 public:
  template <typename T>
  void Put(T v) {
    char bytes[sizeof(T)];
    std::memcpy(bytes, &v, sizeof(T));  // the machines we run on are LE
    out_.append(bytes, sizeof(T));
  }
  void PutString(absl::string_view s) {
    Put<uint32_t>(static_cast<uint32_t>(s.size()));
    out_.append(s.data(), s.size());
  }
  std::string& out() { return out_; }

 private:
  std::string out_;
};

class Reader {
 public:
  explicit Reader(absl::string_view in) : in_(in) {}
  template <typename T>
  bool Get(T* v) {
    if (in_.size() - pos_ < sizeof(T)) return false;
    std::memcpy(v, in_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  bool GetString(std::string* s) {
    uint32_t n = 0;
    if (!Get(&n) || in_.size() - pos_ < n) return false;
    s->assign(in_.data() + pos_, n);
    pos_ += n;
    return true;
  }

 private:
  absl::string_view in_;
  size_t pos_ = 0;
};

int64_t Ms(absl::Time t) { return absl::ToUnixMillis(t); }

}  // namespace

std::string EncodeMeta(const StoredMeta& s) {
  Writer w;
  w.out().append(kMagic, sizeof(kMagic));
  w.Put<uint16_t>(kRecordFormatVersion);
  const SessionMeta& m = s.meta;
  w.Put<uint64_t>(m.version);
  w.Put<int64_t>(m.token_count);
  w.Put<int64_t>(Ms(m.created));
  w.Put<int64_t>(Ms(m.last_used));
  w.Put<int64_t>(absl::ToInt64Milliseconds(m.ttl));
  w.Put<int64_t>(m.prefix_cached_tokens);
  w.Put<int64_t>(m.state_bytes);
  w.PutString(m.id);
  w.PutString(m.owner);
  w.PutString(s.model_fingerprint);
  w.PutString(s.initial_key);
  w.Put<uint8_t>(s.state_is_initial ? 1 : 0);
  w.Put<uint64_t>(s.data_bytes);
  w.Put<uint32_t>(s.data_crc);
  w.PutString(m.note);  // since version 2
  const uint32_t crc = engine::Crc32(w.out().data(), w.out().size());
  w.Put<uint32_t>(crc);
  return std::move(w.out());
}

absl::StatusOr<StoredMeta> DecodeMeta(absl::string_view bytes,
                                      absl::string_view what) {
  auto loss = [&](absl::string_view why) {
    return absl::DataLossError(
        absl::StrCat(what, ": stored metadata is ", why));
  };
  if (bytes.size() < sizeof(kMagic) + 2 + 4 ||
      std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return loss("not a session record (bad magic)");
  }
  uint32_t stored_crc = 0;
  std::memcpy(&stored_crc, bytes.data() + bytes.size() - 4, 4);
  if (engine::Crc32(bytes.data(), bytes.size() - 4) != stored_crc) {
    return loss("corrupt (checksum mismatch)");
  }
  Reader r(bytes.substr(sizeof(kMagic), bytes.size() - sizeof(kMagic) - 4));
  uint16_t version = 0;
  r.Get(&version);
  if (version < 1 || version > kRecordFormatVersion) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, ": stored in record format version ", version,
        "; this server reads versions 1 to ", kRecordFormatVersion));
  }
  StoredMeta s;
  SessionMeta& m = s.meta;
  int64_t created = 0, last_used = 0, ttl_ms = 0;
  uint8_t flags = 0;
  const bool ok =
      r.Get(&m.version) && r.Get(&m.token_count) && r.Get(&created) &&
      r.Get(&last_used) && r.Get(&ttl_ms) && r.Get(&m.prefix_cached_tokens) &&
      r.Get(&m.state_bytes) && r.GetString(&m.id) && r.GetString(&m.owner) &&
      r.GetString(&s.model_fingerprint) && r.GetString(&s.initial_key) &&
      r.Get(&flags) && r.Get(&s.data_bytes) && r.Get(&s.data_crc) &&
      (version < 2 || r.GetString(&m.note));
  if (!ok) return loss("truncated");
  m.created = absl::FromUnixMillis(created);
  m.last_used = absl::FromUnixMillis(last_used);
  m.ttl = absl::Milliseconds(ttl_ms);
  s.state_is_initial = (flags & 1) != 0;
  return s;
}

absl::Status CheckData(const StoredMeta& stored, absl::string_view data,
                       absl::string_view what) {
  if (data.size() != stored.data_bytes ||
      engine::Crc32(data.data(), data.size()) != stored.data_crc) {
    return absl::DataLossError(absl::StrCat(
        what, ": stored state is corrupt (", data.size(), " bytes, expected ",
        stored.data_bytes, "; checksum mismatch)"));
  }
  return absl::OkStatus();
}

std::string InitialKey(absl::string_view state_bytes) {
  uint64_t fnv = 1469598103934665603ull;  // FNV-1a 64
  for (unsigned char c : state_bytes) {
    fnv = (fnv ^ c) * 1099511628211ull;
  }
  const uint32_t crc = engine::Crc32(state_bytes.data(), state_bytes.size());
  return absl::StrFormat("%016x%08x", fnv, crc);
}

}  // namespace rwkv::server
