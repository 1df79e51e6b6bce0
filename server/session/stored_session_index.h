// StoredSessionIndex: a durable store's in-memory view of what it holds, so
// that listing, counting, expiry and LRU eviction of sessions on disk never
// read the disk: every record's metadata (by id, by expiry time, by last use)
// and the reference counts of the shared initial states. Built at startup
// from the stored metadata (small: no state is read). Thread-compatible (the
// store guards it).
#ifndef RWKV_SERVER_SESSION_STORED_SESSION_INDEX_H_
#define RWKV_SERVER_SESSION_STORED_SESSION_INDEX_H_

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/btree_map.h"
#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_map.h"
#include "absl/time/time.h"
#include "server/session/record_codec.h"

namespace rwkv::server {

class StoredSessionIndex {
 public:
  // Adds or replaces the record of stored.meta.id; `meta_bytes` is the size
  // of its encoded metadata.
  void Put(const StoredMeta& stored, int64_t meta_bytes);
  // Removes it (no-op if absent).
  void Remove(const std::string& id);
  const StoredMeta* Find(const std::string& id) const;
  // The bytes deleting one record frees: its metadata and data, and its
  // initial state if no other record uses it (0 if absent).
  int64_t BytesOf(const std::string& id) const;

  // Shared initial states: how many records use each, and their sizes.
  int Refs(const std::string& key) const;
  void SetInitialBytes(const std::string& key, int64_t bytes);

  std::vector<SessionMeta> List(const std::string& after, int limit) const;
  std::vector<std::string> Expired(absl::Time now, int limit) const;
  // Ids by last use, least recent first, with BytesOf each.
  std::vector<std::pair<std::string, int64_t>> LeastRecentlyUsed(
      int limit) const;
  int64_t count() const { return static_cast<int64_t>(records_.size()); }
  // Metadata + data of every record + every initial state once.
  int64_t bytes() const { return bytes_; }

 private:
  struct Entry {
    StoredMeta stored;
    int64_t bytes = 0;  // metadata + data
  };
  void AddRef(const std::string& key, int delta);

  absl::btree_map<std::string, Entry> records_;
  absl::btree_set<std::pair<absl::Time, std::string>> by_expiry_;
  absl::btree_set<std::pair<absl::Time, std::string>> by_use_;
  absl::flat_hash_map<std::string, std::pair<int, int64_t>> initials_;
  int64_t bytes_ = 0;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_STORED_SESSION_INDEX_H_
