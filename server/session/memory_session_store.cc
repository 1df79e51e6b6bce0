#include "server/session/memory_session_store.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "server/quote.h"

namespace rwkv::server {

absl::StatusOr<SessionRecord> MemorySessionStore::Read(const std::string& id) {
  absl::MutexLock lock(&mu_);
  auto it = records_.find(id);
  if (it == records_.end()) {
    return absl::NotFoundError(absl::StrCat("no stored session ", Quote(id)));
  }
  return it->second;
}

absl::StatusOr<SessionMeta> MemorySessionStore::ReadMeta(
    const std::string& id) {
  absl::StatusOr<SessionRecord> record = Read(id);
  if (!record.ok()) return record.status();
  return record->meta;
}

absl::Status MemorySessionStore::CheckLocked(
    const std::vector<StoreWrite>& writes) const {
  for (const StoreWrite& w : writes) {
    if (w.op != StoreWrite::Op::kPut) continue;
    auto it = records_.find(w.record.meta.id);
    const uint64_t current = it == records_.end() ? 0 : it->second.meta.version;
    if (current != w.expected_version) {
      return absl::AbortedError(absl::StrCat(
          "session ", Quote(w.record.meta.id),
          current == 0 ? " no longer exists" : " was changed meanwhile"));
    }
  }
  return absl::OkStatus();
}

void MemorySessionStore::Write(std::vector<StoreWrite> writes, WriteDone done) {
  std::vector<SessionRecord> garbage;  // freed after the lock is released
  absl::Status status;
  {
    absl::MutexLock lock(&mu_);
    status = CheckLocked(writes);
    for (size_t i = 0; status.ok() && i < writes.size(); ++i) {
      StoreWrite& w = writes[i];
      auto it = records_.find(w.record.meta.id);
      switch (w.op) {
        case StoreWrite::Op::kPut:
          if (it != records_.end()) garbage.push_back(std::move(it->second));
          records_[w.record.meta.id] = std::move(w.record);
          break;
        case StoreWrite::Op::kTouch:
          if (it != records_.end()) {
            it->second.meta.last_used = w.record.meta.last_used;
            it->second.meta.ttl = w.record.meta.ttl;
          }
          break;
        case StoreWrite::Op::kDelete:
          if (it != records_.end()) {
            garbage.push_back(std::move(it->second));
            records_.erase(it);
          }
          break;
      }
    }
  }
  done(status);
}

absl::StatusOr<std::vector<SessionMeta>> MemorySessionStore::List(
    const std::string& after, int limit) {
  std::vector<SessionMeta> out;
  absl::MutexLock lock(&mu_);
  for (auto it = records_.upper_bound(after);
       it != records_.end() && static_cast<int>(out.size()) < limit; ++it) {
    out.push_back(it->second.meta);
  }
  return out;
}

int64_t MemorySessionStore::Count() {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(records_.size());
}

}  // namespace rwkv::server
