#include "server/session/stored_session_index.h"

namespace rwkv::server {

void StoredSessionIndex::Put(const StoredMeta& stored, int64_t meta_bytes) {
  Remove(stored.meta.id);
  Entry e{stored, meta_bytes + static_cast<int64_t>(stored.data_bytes)};
  bytes_ += e.bytes;
  by_expiry_.emplace(stored.meta.expires(), stored.meta.id);
  by_use_.emplace(stored.meta.last_used, stored.meta.id);
  if (!stored.initial_key.empty()) AddRef(stored.initial_key, +1);
  records_.emplace(stored.meta.id, std::move(e));
}

void StoredSessionIndex::Remove(const std::string& id) {
  auto it = records_.find(id);
  if (it == records_.end()) return;
  const StoredMeta& s = it->second.stored;
  bytes_ -= it->second.bytes;
  by_expiry_.erase({s.meta.expires(), id});
  by_use_.erase({s.meta.last_used, id});
  if (!s.initial_key.empty()) AddRef(s.initial_key, -1);
  records_.erase(it);
}

const StoredMeta* StoredSessionIndex::Find(const std::string& id) const {
  auto it = records_.find(id);
  return it == records_.end() ? nullptr : &it->second.stored;
}

int64_t StoredSessionIndex::BytesOf(const std::string& id) const {
  auto it = records_.find(id);
  if (it == records_.end()) return 0;
  int64_t bytes = it->second.bytes;
  const std::string& key = it->second.stored.initial_key;
  if (auto init = initials_.find(key);
      !key.empty() && init != initials_.end() && init->second.first == 1) {
    bytes += init->second.second;  // its initial state is its alone
  }
  return bytes;
}

int StoredSessionIndex::Refs(const std::string& key) const {
  auto it = initials_.find(key);
  return it == initials_.end() ? 0 : it->second.first;
}

void StoredSessionIndex::SetInitialBytes(const std::string& key,
                                         int64_t bytes) {
  auto it = initials_.find(key);
  if (it == initials_.end()) return;
  bytes_ += bytes - it->second.second;
  it->second.second = bytes;
}

void StoredSessionIndex::AddRef(const std::string& key, int delta) {
  auto& [refs, bytes] = initials_[key];
  refs += delta;
  if (refs <= 0) {
    bytes_ -= bytes;
    initials_.erase(key);
  }
}

std::vector<SessionMeta> StoredSessionIndex::List(const std::string& after,
                                                  int limit) const {
  std::vector<SessionMeta> out;
  for (auto it = records_.upper_bound(after);
       it != records_.end() && static_cast<int>(out.size()) < limit; ++it) {
    out.push_back(it->second.stored.meta);
  }
  return out;
}

std::vector<std::string> StoredSessionIndex::Expired(absl::Time now,
                                                     int limit) const {
  std::vector<std::string> out;
  for (auto it = by_expiry_.begin();
       it != by_expiry_.end() && it->first <= now &&
       static_cast<int>(out.size()) < limit;
       ++it) {
    out.push_back(it->second);
  }
  return out;
}

std::vector<std::pair<std::string, int64_t>>
StoredSessionIndex::LeastRecentlyUsed(int limit) const {
  std::vector<std::pair<std::string, int64_t>> out;
  for (auto it = by_use_.begin();
       it != by_use_.end() && static_cast<int>(out.size()) < limit; ++it) {
    out.emplace_back(it->second, BytesOf(it->second));
  }
  return out;
}

}  // namespace rwkv::server
