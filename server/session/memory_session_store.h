// MemorySessionStore: the SessionStore that keeps records in this process
// (--store memory): nothing survives a restart. Writes apply at once and call
// `done` before Write() returns. Records share their (immutable) states with
// the session layer's RAM table, so keeping both costs no state bytes.
// Thread-safe.
#ifndef RWKV_SERVER_SESSION_MEMORY_SESSION_STORE_H_
#define RWKV_SERVER_SESSION_MEMORY_SESSION_STORE_H_

#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/btree_map.h"
#include "absl/synchronization/mutex.h"
#include "server/session/session_store.h"

namespace rwkv::server {

class MemorySessionStore final : public SessionStore {
 public:
  bool durable() const override { return false; }
  absl::StatusOr<SessionRecord> Read(const std::string& id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<SessionMeta> ReadMeta(const std::string& id) override
      ABSL_LOCKS_EXCLUDED(mu_);
  void Write(std::vector<StoreWrite> writes, WriteDone done) override
      ABSL_LOCKS_EXCLUDED(mu_);
  absl::StatusOr<std::vector<SessionMeta>> List(const std::string& after,
                                                int limit) override
      ABSL_LOCKS_EXCLUDED(mu_);
  int64_t Count() override ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Checks every compare-and-set of `writes` against the records.
  absl::Status CheckLocked(const std::vector<StoreWrite>& writes) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Mutex mu_;
  absl::btree_map<std::string, SessionRecord> records_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_MEMORY_SESSION_STORE_H_
