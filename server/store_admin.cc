#include "server/store_admin.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace rwkv::server {

absl::StatusOr<std::string> ListStoredSessions(
    const RocksDbStoreOptions& options) {
  absl::StatusOr<std::unique_ptr<RocksDbSessionStore>> store =
      RocksDbSessionStore::Open(options, /*model=*/nullptr);
  if (!store.ok()) return store.status();
  std::string out =
      absl::StrFormat("%-40s %10s %-20s %-20s\n", "session", "tokens",
                      "last used (UTC)", "expires (UTC)");
  const absl::Time now = absl::Now();
  auto when = [](absl::Time t) {
    return absl::FormatTime("%Y-%m-%d %H:%M:%S", t, absl::UTCTimeZone());
  };
  int64_t listed = 0;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<SessionMeta>> page = (*store)->List(after, 1000);
    if (!page.ok()) return page.status();
    for (const SessionMeta& m : *page) {
      absl::StrAppendFormat(&out, "%-40s %10d %-20s %-20s%s\n", m.id,
                            m.token_count, when(m.last_used), when(m.expires()),
                            now >= m.expires() ? " (expired)" : "");
      ++listed;
      after = m.id;
    }
    if (page->size() < 1000) break;
  }
  for (const auto& [id, why] : (*store)->unreadable()) {
    absl::StrAppendFormat(&out, "%-40s unreadable: %s\n", id, why.message());
  }
  absl::StrAppendFormat(&out, "%d sessions, %d bytes stored in %s\n", listed,
                        (*store)->StoredBytes(), options.dir);
  return out;
}

}  // namespace rwkv::server
