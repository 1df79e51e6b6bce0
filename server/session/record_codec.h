// The stored form of a session record, shared by the durable stores. A
// record is two values: its metadata (small; every durable store can index
// all of them at startup without reading any state) and its data, the
// session's state in the state-file format (state_file.h: torch.load opens
// it). Initial states are stored once per content (content-addressed by
// InitialKey), so sessions that start from the same state share it.
//
// Metadata layout (little-endian): magic "RWKM", u16 format version, the
// fields below, then a CRC-32 of everything before it. The data's size and
// CRC-32 are in the metadata, so a torn or corrupted record is detected
// (DATA_LOSS) instead of being served. Unknown versions are
// FAILED_PRECONDITION. Pure functions; thread-safe.
#ifndef RWKV_SERVER_SESSION_RECORD_CODEC_H_
#define RWKV_SERVER_SESSION_RECORD_CODEC_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "server/session/session_record.h"

namespace rwkv::server {

// Version 2 added SessionMeta::note (after the data's CRC); version 1
// records are still read (their note is empty).
inline constexpr uint16_t kRecordFormatVersion = 2;

struct StoredMeta {
  SessionMeta meta;
  // The model the state belongs to.
  std::string model_fingerprint;
  // Where the initial state is stored ("": none).
  std::string initial_key;
  // The state is the initial state (no data of its own).
  bool state_is_initial = false;
  // The data value: its size and CRC-32.
  uint64_t data_bytes = 0;
  uint32_t data_crc = 0;
};

std::string EncodeMeta(const StoredMeta& stored);
// DATA_LOSS (checksum, truncation), FAILED_PRECONDITION (unknown format
// version). `what` names the record in messages.
absl::StatusOr<StoredMeta> DecodeMeta(absl::string_view bytes,
                                      absl::string_view what);

// DATA_LOSS unless `data` has the size and CRC the metadata records.
absl::Status CheckData(const StoredMeta& stored, absl::string_view data,
                       absl::string_view what);

// The content address of serialized state bytes: 96 bits as 24 hex digits.
std::string InitialKey(absl::string_view state_bytes);

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_RECORD_CODEC_H_
