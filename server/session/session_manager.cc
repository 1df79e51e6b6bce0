#include "server/session/session_manager.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "server/quote.h"
#include "server/session/random_id.h"

namespace rwkv::server {

using common::LogWarning;

struct SessionManager::Entry {
  SessionRecord record;
  int64_t charge = 0;
  // False while the creating write is in flight (invisible to readers).
  bool live = false;
  // True while a cold session is being read from the store.
  bool loading = false;
  // A lease holds the session.
  bool busy = false;
  uint64_t lease_id = 0;
  RevocationFlag revoked;
  // Shared stores: the store lease the lease holds.
  std::string store_token;
  // Where the entry is indexed while idle and live.
  bool indexed = false;
  std::list<std::string>::iterator lru;
  absl::Time indexed_expiry;
};

uint64_t SessionManager::NewVersion() {
  // Random and nonzero: a session deleted and created again never reuses the
  // version an old writer expects (compare-and-set stays sound, also across
  // replicas). Commits count up from it, except over a shared store, where
  // every commit draws a new one (see CommitLease).
  uint64_t v = 0;
  while (v == 0) RandomWords(&v, 1);
  return (v >> 2) + 1;
}

SessionManager::SessionManager(SessionManagerOptions options,
                               SessionStore* store)
    : options_(std::move(options)), store_(store) {
  // A shared store's usage is this replica's RAM copies (counted as they
  // come and go); other stores count every stored session.
  if (store_->durable() && !store_->shared()) LoadUsage();
  if (options_.sweep_interval > absl::ZeroDuration()) {
    sweeper_ = std::thread([this] { SweeperLoop(); });
  }
}

SessionManager::~SessionManager() {
  store_->Sync();  // answers of writes in flight still reach this manager
  {
    Deferred deferred(this);  // last-used times reach the store
    absl::MutexLock lock(&mu_);
    stopping_ = true;
    FlushTouchesLocked(deferred);
  }
  if (sweeper_.joinable()) sweeper_.join();
}

absl::Time SessionManager::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

absl::Status SessionManager::ValidateId(absl::string_view id) {
  if (id.empty() || id.size() > 128) {
    return absl::InvalidArgumentError(absl::StrCat(
        "session id must have 1 to 128 characters, got ", id.size()));
  }
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
                    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
                    c == ':' || c == '-';
    if (!ok) {
      return absl::InvalidArgumentError(
          absl::StrCat("session id ", Quote(id),
                       " has a character outside [A-Za-z0-9._:-]"));
    }
  }
  return absl::OkStatus();
}

int64_t SessionManager::ChargeOf(const SessionRecord& record) {
  int64_t charge = record.state != nullptr ? record.state->SizeBytes() : 0;
  charge += static_cast<int64_t>(record.meta.note.size());
  if (!record.initial_shared && record.initial != nullptr &&
      record.initial != record.state) {
    charge += record.initial->SizeBytes();
  }
  return charge;
}

absl::Status SessionManager::ResolveTtl(absl::Duration requested,
                                        absl::Duration* ttl) const {
  if (requested <= absl::ZeroDuration()) {
    *ttl = options_.default_ttl;
    return absl::OkStatus();
  }
  if (requested > options_.max_ttl) {
    return absl::InvalidArgumentError(absl::StrCat(
        "ttl_seconds must be at most ", absl::ToInt64Seconds(options_.max_ttl),
        ", got ", absl::ToInt64Seconds(requested)));
  }
  *ttl = requested;
  return absl::OkStatus();
}

SessionInfo SessionManager::InfoLocked(const Entry& entry) const {
  SessionInfo info = InfoFromMeta(entry.record.meta);
  info.state_bytes =
      entry.record.state != nullptr ? entry.record.state->SizeBytes() : 0;
  info.busy = entry.busy;
  return info;
}

void SessionManager::LoadUsage() {
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<SessionMeta>> metas = store_->List(after, 1000);
    if (!metas.ok()) {
      LogWarning(absl::StrCat("counting stored sessions per tenant: ",
                              metas.status().message()));
      return;
    }
    absl::MutexLock lock(&mu_);
    for (const SessionMeta& meta : *metas) AccountLocked(meta, 1);
    if (metas->size() < 1000) return;
    after = metas->back().id;
  }
}

void SessionManager::AccountLocked(const SessionMeta& meta, int sign) {
  TenantUsage& u = usage_[meta.owner];
  u.sessions += sign;
  u.state_bytes += sign * meta.state_bytes;
  if (u.sessions <= 0) usage_.erase(meta.owner);
}

absl::Status SessionManager::CheckQuotaLocked(const std::string& owner,
                                              const TenantSessionQuota& quota,
                                              int64_t state_bytes) const {
  TenantUsage u;
  if (auto it = usage_.find(owner); it != usage_.end()) u = it->second;
  if (quota.max_sessions > 0 && u.sessions >= quota.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "tenant ", Quote(owner), " holds ", u.sessions,
        " sessions, its limit (delete sessions or wait for them to expire)"));
  }
  if (quota.max_state_bytes > 0 &&
      u.state_bytes + state_bytes > quota.max_state_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("tenant ", Quote(owner), " holds ", u.state_bytes,
                     " bytes of session state; ", state_bytes,
                     " more would pass its limit of ", quota.max_state_bytes,
                     " (delete sessions or wait for them to expire)"));
  }
  return absl::OkStatus();
}

TenantUsage SessionManager::usage(const std::string& tenant) const {
  absl::MutexLock lock(&mu_);
  auto it = usage_.find(tenant);
  return it == usage_.end() ? TenantUsage{} : it->second;
}

absl::Status SessionManager::NotFoundLocked(const std::string& id,
                                            const SessionAccess& access) const {
  auto it = gone_.find(id);
  if (it == gone_.end() || !access.Allows(it->second.owner)) {
    // The same words for another tenant's session as for an unknown id.
    return absl::NotFoundError(
        absl::StrCat("session ", Quote(id), " not found (unknown id)"));
  }
  switch (it->second.reason) {
    case GoneReason::kExpired:
      return absl::NotFoundError(absl::StrCat(
          "session ", Quote(id), " expired (unused for longer than its TTL)"));
    case GoneReason::kEvicted:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id),
                       " was evicted to stay within the server's memory "
                       "bound (least recently used first)"));
    case GoneReason::kEvictedFromDisk:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id),
                       " was evicted to stay within the session store's "
                       "disk bound (--max-disk-bytes; least recently used "
                       "first)"));
    case GoneReason::kDeleted:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id), " was deleted"));
    case GoneReason::kGoneFromStore:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id),
                       " no longer exists (deleted, or expired, on another "
                       "replica)"));
  }
  return absl::NotFoundError(absl::StrCat("session ", Quote(id), " not found"));
}

absl::StatusOr<SessionManager::Entry*> SessionManager::FindLocked(
    const std::string& id, Deferred& deferred, const SessionAccess& access) {
  for (;;) {
    auto it = entries_.find(id);
    if (it == entries_.end()) {
      if (!store_->durable()) return NotFoundLocked(id, access);
      if (absl::Status s = LoadLocked(id, deferred); !s.ok()) {
        return absl::IsNotFound(s) ? NotFoundLocked(id, access) : s;
      }
      continue;
    }
    Entry& entry = *it->second;
    if (entry.loading) {  // another caller is reading it: wait, look again
      const uint64_t seen = loads_done_;
      auto done = [this, seen]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return loads_done_ != seen;
      };
      mu_.Await(absl::Condition(&done));
      continue;
    }
    if (!entry.live) return NotFoundLocked(id, access);
    if (!access.Allows(entry.record.meta.owner)) {
      return NotFoundLocked(id, access);  // as if it did not exist
    }
    if (!entry.busy && Now() >= entry.record.meta.expires()) {
      RemoveLocked(id, GoneReason::kExpired, deferred);
      return NotFoundLocked(id, access);
    }
    return &entry;
  }
}

absl::Status SessionManager::LoadLocked(const std::string& id,
                                        Deferred& deferred) {
  // A shared store is not asked under mu_ (Read below releases it); it
  // expires records itself.
  if (!store_->shared()) {
    absl::StatusOr<SessionMeta> meta = store_->ReadMeta(id);
    if (absl::IsNotFound(meta.status())) return NotFoundLocked(id);
    if (!meta.ok()) return meta.status();
    if (Now() >= meta->expires()) {
      DropStoredLocked(*meta, GoneReason::kExpired, deferred);
      return NotFoundLocked(id);
    }
  }
  auto placeholder = std::make_unique<Entry>();
  placeholder->loading = true;
  entries_.emplace(id, std::move(placeholder));
  mu_.Unlock();
  absl::StatusOr<SessionRecord> record = store_->Read(id);
  mu_.Lock();
  ++loads_done_;
  auto it = entries_.find(id);
  Entry& entry = *it->second;  // placeholders are never removed by others
  if (!record.ok()) {
    entries_.erase(it);
    if (store_->shared() && absl::IsNotFound(record.status())) {
      return NotFoundLocked(id);
    }
    LogWarning(std::string(record.status().message()));
    return record.status();
  }
  entry.record = *std::move(record);
  entry.charge = ChargeOf(entry.record);
  entry.loading = false;
  entry.live = true;
  total_bytes_ += entry.charge;
  if (store_->shared()) AccountLocked(entry.record.meta, 1);
  IndexLocked(entry);
  MakeRoomLocked(0, id, deferred);
  return absl::OkStatus();
}

void SessionManager::DropStoredLocked(const SessionMeta& meta,
                                      GoneReason reason, Deferred& deferred) {
  StoreWrite del;
  del.op = StoreWrite::Op::kDelete;
  del.record.meta.id = meta.id;
  deferred.writes.push_back(std::move(del));
  if (!store_->shared()) AccountLocked(meta, -1);  // not in RAM: not counted
  RememberGoneLocked(meta.id, reason, meta.owner);
}

void SessionManager::DropStoredIdLocked(const std::string& id,
                                        GoneReason reason, Deferred& deferred) {
  absl::StatusOr<SessionMeta> meta = store_->ReadMeta(id);
  if (meta.ok()) return DropStoredLocked(*meta, reason, deferred);
  SessionMeta unknown;  // unreadable: deleted all the same, owner unknown
  unknown.id = id;
  unknown.owner = "\x01unreadable";
  DropStoredLocked(unknown, reason, deferred);
}

void SessionManager::TouchLocked(Entry& entry) {
  SessionMeta& m = entry.record.meta;
  m.last_used = std::max(m.last_used, Now());
  dirty_.insert(m.id);
  if (entry.indexed) {
    UnindexLocked(entry);
    IndexLocked(entry);
  }
}

void SessionManager::IndexLocked(Entry& entry) {
  if (entry.indexed || entry.busy || !entry.live) return;
  lru_.push_front(entry.record.meta.id);
  entry.lru = lru_.begin();
  entry.indexed_expiry = entry.record.meta.expires();
  expiry_.emplace(entry.indexed_expiry, entry.record.meta.id);
  entry.indexed = true;
}

void SessionManager::UnindexLocked(Entry& entry) {
  if (!entry.indexed) return;
  lru_.erase(entry.lru);
  expiry_.erase({entry.indexed_expiry, entry.record.meta.id});
  entry.indexed = false;
}

void SessionManager::RememberGoneLocked(const std::string& id,
                                        GoneReason reason,
                                        const std::string& owner) {
  if (options_.remembered_ids <= 0) return;
  if (gone_.insert_or_assign(id, Gone{reason, owner}).second) {
    gone_order_.push_back(id);
  }
  while (static_cast<int>(gone_order_.size()) > options_.remembered_ids) {
    gone_.erase(gone_order_.front());
    gone_order_.pop_front();
  }
}

void SessionManager::RemoveLocked(const std::string& id, GoneReason reason,
                                  Deferred& deferred) {
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Entry& entry = *it->second;
  UnindexLocked(entry);
  if (entry.revoked != nullptr) entry.revoked->store(Revocation::kDeleted);
  total_bytes_ -= entry.charge;
  dirty_.erase(id);
  // A durable store keeps what leaves RAM to make room; a shared one also
  // keeps what this process saw expire (others may have used it since: the
  // store expires it) and what it no longer has anyway.
  const bool keep_stored =
      store_->durable() &&
      (reason == GoneReason::kEvicted ||
       (store_->shared() && reason != GoneReason::kDeleted));
  if (!keep_stored) {
    StoreWrite del;
    del.op = StoreWrite::Op::kDelete;
    del.record.meta.id = id;
    deferred.writes.push_back(std::move(del));
  }
  // Stored sessions count until deleted; a shared store's while in RAM.
  if (!keep_stored || store_->shared()) AccountLocked(entry.record.meta, -1);
  if (!store_->durable() || reason != GoneReason::kEvicted) {
    RememberGoneLocked(id, reason, entry.record.meta.owner);
  }
  deferred.garbage.push_back(std::move(entry.record));
  entries_.erase(it);
}

bool SessionManager::MakeRoomLocked(int64_t extra, const std::string& keep,
                                    Deferred& deferred) {
  if (options_.max_state_bytes <= 0) return true;
  while (total_bytes_ + extra > options_.max_state_bytes) {
    auto victim = lru_.rbegin();
    if (victim != lru_.rend() && *victim == keep) ++victim;
    if (victim == lru_.rend()) return false;
    const std::string id = *victim;
    RemoveLocked(id, GoneReason::kEvicted, deferred);
  }
  return true;
}

bool SessionManager::MakeDiskRoomLocked(int64_t extra, const std::string& keep,
                                        Deferred& deferred) {
  if (options_.max_disk_bytes <= 0 || !store_->durable()) return true;
  if (extra > options_.max_disk_bytes) return false;
  // Deletions queued in `deferred` are not applied yet: count them here.
  int64_t stored = store_->StoredBytes();
  absl::flat_hash_set<std::string> dropped;
  while (stored + extra > options_.max_disk_bytes) {
    bool evicted = false;
    for (const auto& [id, bytes] :
         store_->LeastRecentlyUsed(static_cast<int>(dropped.size()) + 64)) {
      if (id == keep || dropped.contains(id)) continue;
      auto it = entries_.find(id);
      if (it != entries_.end() &&
          (!it->second->live || it->second->busy || it->second->loading)) {
        continue;
      }
      if (it != entries_.end()) {
        const SessionMeta meta = it->second->record.meta;
        RemoveLocked(id, GoneReason::kEvicted, deferred);
        DropStoredLocked(meta, GoneReason::kEvictedFromDisk, deferred);
      } else {
        DropStoredIdLocked(id, GoneReason::kEvictedFromDisk, deferred);
      }
      dropped.insert(id);
      stored -= bytes;
      evicted = true;
      break;
    }
    if (!evicted) return false;
  }
  return true;
}

absl::Status SessionManager::DiskFullError(int64_t extra) const {
  return absl::ResourceExhaustedError(absl::StrCat(
      "the session store is full: ", extra, " more bytes do not fit the ",
      options_.max_disk_bytes,
      "-byte bound (--max-disk-bytes) and every stored session is busy"));
}

std::string SessionManager::GenerateIdLocked() {
  for (;;) {
    std::string id = RandomId("s-");
    if (!entries_.contains(id)) return id;
  }
}

absl::Status SessionManager::CheckCanCreateLocked(const std::string& id,
                                                  Deferred& deferred) {
  if (!id.empty()) {
    bool taken = false;
    if (auto it = entries_.find(id); it != entries_.end()) {
      // Being created or loaded, or live (an expired one is freed here).
      taken = !it->second->live || FindLocked(id, deferred).ok();
    } else if (store_->durable() && !store_->shared()) {
      // (A shared store was asked before mu_ was taken.)
      absl::StatusOr<SessionMeta> cold = store_->ReadMeta(id);
      taken = !absl::IsNotFound(cold.status());
      if (cold.ok() && Now() >= cold->expires()) {
        DropStoredLocked(*cold, GoneReason::kExpired, deferred);
        taken = false;
      }
    }
    if (taken) {
      return absl::AlreadyExistsError(
          absl::StrCat("session ", Quote(id), " already exists"));
    }
  }
  const int64_t sessions =
      store_->durable() && !store_->shared()
          ? std::max<int64_t>(store_->Count(), entries_.size())
          : static_cast<int64_t>(entries_.size());
  if (options_.max_sessions > 0 && sessions >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many sessions: the server holds at most ", options_.max_sessions,
        " (delete sessions or wait for them to expire)"));
  }
  return absl::OkStatus();
}

absl::Status SessionManager::CheckCanCreate(const std::string& id,
                                            const std::string& owner,
                                            const TenantSessionQuota& quota) {
  if (!id.empty()) {
    if (absl::Status s = ValidateId(id); !s.ok()) return s;
  }
  if (store_->shared()) {
    if (absl::Status s = CheckCanCreateShared(id); !s.ok()) return s;
  }
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  if (absl::Status s = CheckCanCreateLocked(id, deferred); !s.ok()) return s;
  return CheckQuotaLocked(owner, quota, 0);
}

void SessionManager::Create(NewSession session, Callback<SessionInfo> done) {
  if (!session.id.empty()) {
    if (absl::Status s = ValidateId(session.id); !s.ok()) return done(s);
  }
  if (session.state == nullptr || !session.state->valid()) {
    return done(absl::InvalidArgumentError("a new session needs a state"));
  }
  std::vector<StoreWrite> put(1);
  SessionRecord& record = put[0].record;
  if (absl::Status s = ResolveTtl(session.ttl, &record.meta.ttl); !s.ok()) {
    return done(s);
  }
  record.meta.owner = std::move(session.owner);
  record.meta.version = NewVersion();
  record.meta.token_count = session.state->token_count();
  record.meta.state_bytes = session.state->SizeBytes();
  record.meta.prefix_cached_tokens = session.prefix_cached_tokens;
  record.meta.note = std::move(session.note);
  record.initial =
      session.initial != nullptr ? std::move(session.initial) : session.state;
  record.initial_shared = session.initial_shared;
  record.state = std::move(session.state);
  const int64_t charge = ChargeOf(record);
  if (store_->shared()) {
    // The count only: the put itself refuses a taken id.
    if (absl::Status s = CheckCanCreateShared(""); !s.ok()) return done(s);
  }
  {
    Deferred deferred(this);  // flushed before the put below
    absl::MutexLock lock(&mu_);
    if (absl::Status s =
            ReserveLocked(session.id, charge, session.quota, record, deferred);
        !s.ok()) {
      return done(s);
    }
  }
  const std::string id = record.meta.id;
  store_->Write(std::move(put),
                [this, id, done = std::move(done)](absl::Status s) mutable {
                  FinishCreate(id, std::move(s), std::move(done));
                });
}

absl::Status SessionManager::ReserveLocked(const std::string& id,
                                           int64_t charge,
                                           const TenantSessionQuota& quota,
                                           SessionRecord& record,
                                           Deferred& deferred) {
  if (absl::Status s = CheckCanCreateLocked(id, deferred); !s.ok()) return s;
  if (absl::Status s =
          CheckQuotaLocked(record.meta.owner, quota, record.meta.state_bytes);
      !s.ok()) {
    return s;
  }
  if (options_.max_state_bytes > 0 && charge > options_.max_state_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("one session needs ", charge,
                     " bytes, more than the server's memory bound of ",
                     options_.max_state_bytes));
  }
  if (!MakeRoomLocked(charge, "", deferred)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memory bound of ", options_.max_state_bytes,
                     " bytes reached and every session is busy"));
  }
  if (const int64_t put = store_->PutBytes(record);
      !MakeDiskRoomLocked(put, "", deferred)) {
    return DiskFullError(put);
  }
  const absl::Time now = Now();
  record.meta.id = id.empty() ? GenerateIdLocked() : id;
  record.meta.created = now;
  record.meta.last_used = now;
  auto entry = std::make_unique<Entry>();
  entry->record = record;
  entry->charge = charge;
  total_bytes_ += charge;
  AccountLocked(record.meta, 1);
  gone_.erase(record.meta.id);  // a stale "gone" reason no longer applies
  entries_.emplace(record.meta.id, std::move(entry));
  return absl::OkStatus();
}

void SessionManager::FinishCreate(const std::string& id, absl::Status stored,
                                  Callback<SessionInfo> done) {
  if (absl::IsAborted(stored)) {  // the store holds a record with this id
    stored = absl::AlreadyExistsError(
        absl::StrCat("session ", Quote(id), " already exists"));
  }
  absl::StatusOr<SessionInfo> info = absl::UnknownError("not created");
  if (!stored.ok()) info = stored;
  {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && !it->second->live) {
      Entry& entry = *it->second;
      if (stored.ok()) {
        entry.live = true;
        IndexLocked(entry);
        info = InfoLocked(entry);
      } else {
        total_bytes_ -= entry.charge;
        AccountLocked(entry.record.meta, -1);
        deferred.garbage.push_back(std::move(entry.record));
        entries_.erase(it);
      }
    }
  }
  done(std::move(info));
}

absl::StatusOr<SessionInfo> SessionManager::Get(const std::string& id,
                                                const SessionAccess& access) {
  if (store_->shared()) return GetShared(id, access);
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = FindLocked(id, deferred, access);
  if (!entry.ok()) return entry.status();
  return InfoLocked(**entry);
}

absl::StatusOr<SessionPage> SessionManager::List(int page_size,
                                                 const std::string& page_token,
                                                 const SessionAccess& access) {
  if (page_size <= 0) page_size = 100;
  page_size = std::min(page_size, 1000);
  Sweep();  // expired sessions are neither listed nor counted
  if (!access.all) return ListOwnedBy(page_size, page_token, access);
  SessionPage page;
  page.total = store_->Count();
  std::string after = page_token;
  for (;;) {
    absl::StatusOr<std::vector<SessionMeta>> metas =
        store_->List(after, page_size + 1);
    if (!metas.ok()) return metas.status();
    absl::MutexLock lock(&mu_);
    const absl::Time now = Now();
    for (const SessionMeta& meta : *metas) {
      after = meta.id;
      auto it = entries_.find(meta.id);
      if (it != entries_.end() && !it->second->live) continue;  // creating
      // A shared store's metadata is newer than any RAM copy.
      SessionInfo info = it != entries_.end() && !store_->shared()
                             ? InfoLocked(*it->second)
                             : InfoFromMeta(meta);
      if (it != entries_.end()) info.busy = it->second->busy;
      if (!info.busy && now >= info.expires()) continue;
      if (static_cast<int>(page.sessions.size()) == page_size) {
        page.next_page_token = page.sessions.back().id;
        return page;
      }
      page.sessions.push_back(std::move(info));
    }
    if (static_cast<int>(metas->size()) < page_size + 1) return page;
  }
}

absl::StatusOr<SessionPage> SessionManager::ListOwnedBy(
    int page_size, const std::string& page_token, const SessionAccess& access) {
  // Every stored session is scanned: the page and the total count only the
  // tenant's (O(all sessions); ListSessions is not a hot path).
  SessionPage page;
  std::string after;
  for (;;) {
    absl::StatusOr<std::vector<SessionMeta>> metas = store_->List(after, 1000);
    if (!metas.ok()) return metas.status();
    absl::MutexLock lock(&mu_);
    const absl::Time now = Now();
    for (const SessionMeta& meta : *metas) {
      after = meta.id;
      if (!access.Allows(meta.owner)) continue;
      auto it = entries_.find(meta.id);
      if (it != entries_.end() && !it->second->live) continue;  // creating
      SessionInfo info =
          it != entries_.end() ? InfoLocked(*it->second) : InfoFromMeta(meta);
      if (!info.busy && now >= info.expires()) continue;
      ++page.total;
      if (meta.id <= page_token) continue;
      if (static_cast<int>(page.sessions.size()) == page_size) {
        if (page.next_page_token.empty()) {
          page.next_page_token = page.sessions.back().id;
        }
        continue;
      }
      page.sessions.push_back(std::move(info));
    }
    if (metas->size() < 1000) return page;
  }
}

void SessionManager::Delete(const std::string& id, StatusCallback done,
                            const SessionAccess& access) {
  // A shared store is asked before mu_ is taken (never under it).
  absl::Status stored = absl::OkStatus();
  SessionMeta shared_meta;
  bool denied = false;
  if (store_->shared()) {
    absl::StatusOr<SessionMeta> meta = store_->ReadMeta(id);
    stored = meta.status();
    if (meta.ok()) {
      shared_meta = *std::move(meta);
      // Another tenant's session answers as an unknown id.
      denied = !access.Allows(shared_meta.owner);
    }
  }
  if (!stored.ok() && !absl::IsNotFound(stored)) return done(stored);
  std::vector<StoreWrite> writes;
  {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    if (denied) return done(NotFoundLocked(id, access));
    if (absl::IsNotFound(stored)) {
      return done(ForgetLocked(id, deferred, access));
    }
    if (store_->shared()) {
      // The store has it: delete it there, with any RAM copy (whose times
      // may be stale, so it is not looked up).
      if (entries_.contains(id) && entries_.at(id)->live) {
        RemoveLocked(id, GoneReason::kDeleted, deferred);
      } else {
        DropStoredLocked(shared_meta, GoneReason::kDeleted, deferred);
      }
    } else if (!entries_.contains(id) && store_->durable()) {
      // A cold session: delete it without reading its state.
      absl::StatusOr<SessionMeta> cold = store_->ReadMeta(id);
      if (absl::IsNotFound(cold.status()) ||
          (cold.ok() && !access.Allows(cold->owner)) ||
          (!cold.ok() && !access.all)) {
        return done(NotFoundLocked(id, access));
      }
      DropStoredIdLocked(id, GoneReason::kDeleted, deferred);
    } else {
      absl::StatusOr<Entry*> entry = FindLocked(id, deferred, access);
      if (!entry.ok()) return done(entry.status());
      RemoveLocked(id, GoneReason::kDeleted, deferred);
    }
    writes.swap(deferred.writes);  // written here, acknowledged by `done`
  }
  store_->Write(std::move(writes), std::move(done));
}

void SessionManager::Touch(const std::string& id, absl::Duration ttl,
                           Callback<SessionInfo> done,
                           const SessionAccess& access) {
  absl::Duration new_ttl;
  if (ttl > absl::ZeroDuration()) {
    if (absl::Status s = ResolveTtl(ttl, &new_ttl); !s.ok()) return done(s);
  }
  if (store_->shared()) {
    if (absl::Status s = RefreshShared(id); !s.ok()) return done(s);
  }
  std::vector<StoreWrite> touch(1);
  SessionInfo info;
  {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = FindLocked(id, deferred, access);
    if (!found.ok()) return done(found.status());
    Entry& entry = **found;
    if (ttl > absl::ZeroDuration()) entry.record.meta.ttl = new_ttl;
    TouchLocked(entry);
    dirty_.erase(id);  // written now
    touch[0].op = StoreWrite::Op::kTouch;
    touch[0].record.meta = entry.record.meta;
    info = InfoLocked(entry);
  }
  store_->Write(std::move(touch),
                [info, done = std::move(done)](absl::Status s) mutable {
                  if (!s.ok()) return done(s);
                  done(std::move(info));
                });
}

absl::StatusOr<StatePtr> SessionManager::ReadState(
    const std::string& id, const SessionAccess& access) {
  if (store_->shared()) {
    if (absl::Status s = RefreshShared(id); !s.ok()) return s;
  }
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id, deferred, access);
  if (!found.ok()) return found.status();
  TouchLocked(**found);
  return (*found)->record.state;
}

absl::Status SessionManager::BusyError(const std::string& id) const {
  return absl::FailedPreconditionError(
      absl::StrCat("session ", Quote(id),
                   " is busy: another turn or state change is running on "
                   "it (one at a time per session)"));
}

absl::StatusOr<SessionLease> SessionManager::Lease(
    const std::string& id, const SessionAccess& access) {
  if (store_->shared()) return LeaseShared(id, access);
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id, deferred, access);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (entry.busy) return BusyError(id);
  return GrantLocked(
      entry, id, std::make_shared<std::atomic<Revocation>>(Revocation::kNone),
      "");
}

SessionLease SessionManager::GrantLocked(Entry& entry, const std::string& id,
                                         RevocationFlag revoked,
                                         std::string token) {
  TouchLocked(entry);
  UnindexLocked(entry);
  entry.busy = true;
  entry.lease_id = next_lease_++;
  entry.revoked = std::move(revoked);
  entry.store_token = std::move(token);
  return SessionLease(this, id, entry.lease_id, entry.record.state,
                      entry.record.initial, entry.revoked);
}

void SessionManager::CommitLease(SessionLease& lease, StatePtr state,
                                 SessionLease::Initial initial,
                                 StatusCallback done) {
  std::vector<StoreWrite> put(1);
  {
    Deferred deferred(this);  // flushed before the put below
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(lease.id_);
    if (it == entries_.end() || !it->second->busy ||
        it->second->lease_id != lease.lease_id_) {
      return done(absl::AbortedError(
          absl::StrCat("session ", Quote(lease.id_), " was deleted")));
    }
    SessionRecord record = it->second->record;
    put[0].expected_version = record.meta.version;
    put[0].lease_token = it->second->store_token;
    // Over a shared store a version names one record's content for good:
    // if the store loses acknowledged writes (Redis with appendfsync
    // everysec or no, a failover) and the session is then changed from its
    // older version, a counted-up version could equal that of a lost write
    // another replica still holds in RAM, which would then pass the version
    // check with the wrong state. A fresh random version cannot.
    record.meta.version =
        store_->shared() ? NewVersion() : record.meta.version + 1;
    record.meta.token_count = state->token_count();
    record.meta.state_bytes = state->SizeBytes();
    record.meta.last_used = std::max(record.meta.last_used, Now());
    if (initial == SessionLease::Initial::kReplace) {
      record.initial = state;
      record.initial_shared = false;
    }
    record.state = std::move(state);
    const int64_t extra =
        store_->PutBytes(record) - store_->StoredBytesOf(lease.id_);
    if (!MakeDiskRoomLocked(extra, lease.id_, deferred)) {
      Entry& entry = *it->second;  // the session keeps its state
      entry.busy = false;
      entry.revoked.reset();
      IndexLocked(entry);
      return done(DiskFullError(extra));
    }
    put[0].record = std::move(record);
  }
  SessionRecord record = put[0].record;
  std::string token = put[0].lease_token;
  store_->Write(std::move(put),
                [this, id = lease.id_, lease_id = lease.lease_id_,
                 token = std::move(token), record = std::move(record),
                 done = std::move(done)](absl::Status s) mutable {
                  FinishCommit(id, lease_id, token, std::move(record),
                               std::move(s), std::move(done));
                });
}

void SessionManager::FinishCommit(const std::string& id, uint64_t lease_id,
                                  const std::string& token,
                                  SessionRecord record, absl::Status stored,
                                  StatusCallback done) {
  // A put that applied released the store lease; one that failed did not.
  if (!stored.ok() && !token.empty()) store_->ReleaseLease(id, token);
  {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || it->second->lease_id != lease_id) {
      deferred.garbage.push_back(std::move(record));
      if (stored.ok()) {
        stored = absl::AbortedError(
            absl::StrCat("session ", Quote(id), " was deleted"));
      }
    } else {
      Entry& entry = *it->second;
      entry.busy = false;
      entry.revoked.reset();
      entry.store_token.clear();
      if (stored.ok()) {
        AccountLocked(entry.record.meta, -1);
        AccountLocked(record.meta, 1);
        deferred.garbage.push_back(std::move(entry.record));
        entry.record = std::move(record);
        total_bytes_ -= entry.charge;
        entry.charge = ChargeOf(entry.record);
        total_bytes_ += entry.charge;
        dirty_.erase(id);
      }
      IndexLocked(entry);
      MakeRoomLocked(0, id, deferred);  // the session itself stays
    }
  }
  done(std::move(stored));
}

void SessionManager::AbandonLease(const std::string& id, uint64_t lease_id) {
  std::string token;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it == entries_.end() || !it->second->busy ||
        it->second->lease_id != lease_id) {
      return;
    }
    Entry& entry = *it->second;
    entry.busy = false;
    entry.revoked.reset();
    token = std::exchange(entry.store_token, "");
    TouchLocked(entry);
    IndexLocked(entry);
  }
  if (!token.empty()) store_->ReleaseLease(id, token);
}

int SessionManager::Sweep() {
  int expired = 0;
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  while (!expiry_.empty() && expiry_.begin()->first <= now) {
    const std::string id = expiry_.begin()->second;
    RemoveLocked(id, GoneReason::kExpired, deferred);
    ++expired;
  }
  if (store_->durable()) {
    // Cold sessions expire by their stored last use (RAM's is never
    // earlier, so one held in RAM is left to the RAM index above).
    for (const std::string& id : store_->Expired(now, 10000)) {
      if (entries_.contains(id)) continue;
      DropStoredIdLocked(id, GoneReason::kExpired, deferred);
      ++expired;
    }
  }
  FlushTouchesLocked(deferred);
  return expired;
}

void SessionManager::FlushTouchesLocked(Deferred& deferred) {
  for (const std::string& id : dirty_) {
    auto it = entries_.find(id);
    if (it == entries_.end() || !it->second->live) continue;
    StoreWrite touch;
    touch.op = StoreWrite::Op::kTouch;
    touch.record.meta = it->second->record.meta;
    // A shared store keeps its TTL: another process may have set a newer
    // one than this copy's.
    if (store_->shared()) touch.record.meta.ttl = absl::ZeroDuration();
    deferred.writes.push_back(std::move(touch));
  }
  dirty_.clear();
}

void SessionManager::Deferred::Flush() {
  garbage.clear();
  if (writes.empty()) return;
  manager->store_->Write(std::move(writes), [](absl::Status s) {
    if (!s.ok()) LogWarning(absl::StrCat("session store: ", s.message()));
  });
  writes.clear();
}

int64_t SessionManager::session_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(entries_.size());
}

int64_t SessionManager::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

void SessionManager::SweeperLoop() {
  for (;;) {
    {
      absl::MutexLock lock(&mu_);
      auto stop = [this]()
                      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithTimeout(absl::Condition(&stop), options_.sweep_interval);
      if (stopping_) return;
    }
    Sweep();
  }
}

// ------------------------------------------------------- shared stores

absl::Status SessionManager::RefreshShared(const std::string& id) {
  absl::StatusOr<StoredStamp> stamp = store_->ReadStamp(id);
  if (absl::IsNotFound(stamp.status())) {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    return ForgetLocked(id, deferred);
  }
  if (!stamp.ok()) return stamp.status();
  return SyncShared(id, stamp->meta);
}

absl::Status SessionManager::SyncShared(const std::string& id,
                                        const SessionMeta& stored) {
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end()) {
      Entry& entry = *it->second;
      // Being created or loaded here, or leased here (then no one else can
      // have changed it): FindLocked takes it from there.
      if (!entry.live || entry.loading || entry.busy) return absl::OkStatus();
      if (entry.record.meta.version == stored.version) {
        AdoptTimesLocked(entry, stored);
        return absl::OkStatus();
      }
    }
  }
  absl::StatusOr<SessionRecord> record = store_->Read(id);
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  if (absl::IsNotFound(record.status())) return ForgetLocked(id, deferred);
  if (!record.ok()) {
    LogWarning(std::string(record.status().message()));
    return record.status();
  }
  InstallLocked(*std::move(record), deferred);
  return absl::OkStatus();
}

void SessionManager::AdoptTimesLocked(Entry& entry, const SessionMeta& stored) {
  SessionMeta& m = entry.record.meta;
  m.last_used = std::max(m.last_used, stored.last_used);
  m.ttl = stored.ttl;
  if (entry.indexed) {
    UnindexLocked(entry);
    IndexLocked(entry);
  }
}

void SessionManager::InstallLocked(SessionRecord record, Deferred& deferred) {
  const std::string id = record.meta.id;
  auto it = entries_.find(id);
  bool added = false;
  if (it == entries_.end()) {
    it = entries_.emplace(id, std::make_unique<Entry>()).first;
    it->second->live = true;
    added = true;
  }
  Entry& entry = *it->second;
  if (!entry.live || entry.loading || entry.busy) {
    deferred.garbage.push_back(std::move(record));  // see SyncShared
    return;
  }
  UnindexLocked(entry);
  total_bytes_ -= entry.charge;
  if (!added) AccountLocked(entry.record.meta, -1);
  AccountLocked(record.meta, 1);
  deferred.garbage.push_back(std::exchange(entry.record, std::move(record)));
  entry.charge = ChargeOf(entry.record);
  total_bytes_ += entry.charge;
  gone_.erase(id);
  IndexLocked(entry);
  MakeRoomLocked(0, id, deferred);
}

absl::Status SessionManager::ForgetLocked(const std::string& id,
                                          Deferred& deferred,
                                          const SessionAccess& access) {
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second->live && !it->second->loading) {
    Entry& entry = *it->second;
    if (entry.busy) {
      // Leased here, gone from the store: deleted by another process.
      if (entry.revoked != nullptr) entry.revoked->store(Revocation::kDeleted);
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id), " was deleted"));
    }
    RemoveLocked(id,
                 Now() >= entry.record.meta.expires()
                     ? GoneReason::kExpired
                     : GoneReason::kGoneFromStore,
                 deferred);
  }
  return NotFoundLocked(id, access);
}

absl::Status SessionManager::CheckCanCreateShared(const std::string& id) {
  if (!id.empty()) {
    absl::StatusOr<StoredStamp> stamp = store_->ReadStamp(id);
    if (absl::IsUnavailable(stamp.status())) return stamp.status();
    if (!absl::IsNotFound(stamp.status())) {  // also an unreadable record
      return absl::AlreadyExistsError(
          absl::StrCat("session ", Quote(id), " already exists"));
    }
  }
  if (options_.max_sessions > 0 && store_->Count() >= options_.max_sessions) {
    return absl::ResourceExhaustedError(
        absl::StrCat("too many sessions: the session store holds at most ",
                     options_.max_sessions,
                     " (delete sessions or wait for them to expire)"));
  }
  return absl::OkStatus();
}

absl::StatusOr<SessionInfo> SessionManager::GetShared(
    const std::string& id, const SessionAccess& access) {
  // The stored metadata is the truth; no state needs to be read.
  absl::StatusOr<StoredStamp> stamp = store_->ReadStamp(id);
  Deferred deferred(this);
  absl::MutexLock lock(&mu_);
  if (absl::IsNotFound(stamp.status())) {
    return ForgetLocked(id, deferred, access);
  }
  if (!stamp.ok()) return stamp.status();
  if (!access.Allows(stamp->meta.owner)) return NotFoundLocked(id, access);
  SessionInfo info = InfoFromMeta(stamp->meta);
  info.busy = stamp->leased;
  auto it = entries_.find(id);
  if (it != entries_.end() && it->second->live) {
    if (it->second->busy) info.busy = true;
    if (!it->second->loading && !it->second->busy) {
      AdoptTimesLocked(*it->second, stamp->meta);
    }
  }
  return info;
}

absl::StatusOr<SessionLease> SessionManager::LeaseShared(
    const std::string& id, const SessionAccess& access) {
  if (!access.all) {
    // The owner is checked before anything that could say "busy", so
    // another tenant's session never shows it exists.
    absl::StatusOr<SessionMeta> meta = store_->ReadMeta(id);
    if (meta.ok() && !access.Allows(meta->owner)) {
      absl::MutexLock lock(&mu_);
      return NotFoundLocked(id, access);
    }
    if (!meta.ok() && !absl::IsNotFound(meta.status())) return meta.status();
  }
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(id);
    if (it != entries_.end() && it->second->busy &&
        access.Allows(it->second->record.meta.owner)) {
      return BusyError(id);
    }
  }
  auto revoked = std::make_shared<std::atomic<Revocation>>(Revocation::kNone);
  absl::StatusOr<StoreLease> held = store_->AcquireLease(id, revoked);
  if (absl::IsNotFound(held.status())) {
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    return ForgetLocked(id, deferred, access);
  }
  if (!held.ok()) return held.status();
  if (!access.Allows(held->meta.owner)) {
    store_->ReleaseLease(id, held->token);
    absl::MutexLock lock(&mu_);
    return NotFoundLocked(id, access);
  }
  // The store lease is ours: no other process can change the record, so
  // one sync makes the RAM copy the stored version (a concurrent install of
  // an older read is caught below and read again).
  absl::Status failed = absl::OkStatus();
  for (int attempt = 0; attempt < 3; ++attempt) {
    if (absl::Status s = SyncShared(id, held->meta); !s.ok()) {
      failed = s;
      break;
    }
    Deferred deferred(this);
    absl::MutexLock lock(&mu_);
    absl::StatusOr<Entry*> found = FindLocked(id, deferred, access);
    if (!found.ok()) {
      failed = found.status();
      break;
    }
    Entry& entry = **found;
    if (entry.busy) {
      failed = BusyError(id);
      break;
    }
    if (entry.record.meta.version == held->meta.version) {
      AdoptTimesLocked(entry, held->meta);
      return GrantLocked(entry, id, revoked, held->token);
    }
    failed = absl::AbortedError(absl::StrCat(
        "session ", Quote(id), " changed while it was being read; retry"));
  }
  store_->ReleaseLease(id, held->token);
  return failed;
}

// ------------------------------------------------------------ SessionLease

SessionLease::SessionLease(SessionManager* manager, std::string id,
                           uint64_t lease_id, StatePtr state, StatePtr initial,
                           RevocationFlag revoked)
    : manager_(manager),
      id_(std::move(id)),
      lease_id_(lease_id),
      state_(std::move(state)),
      initial_(std::move(initial)),
      revoked_(std::move(revoked)) {}

SessionLease::SessionLease(SessionLease&& other) noexcept
    : manager_(std::exchange(other.manager_, nullptr)),
      id_(std::move(other.id_)),
      lease_id_(other.lease_id_),
      state_(std::move(other.state_)),
      initial_(std::move(other.initial_)),
      revoked_(std::move(other.revoked_)) {}

SessionLease& SessionLease::operator=(SessionLease&& other) noexcept {
  if (this != &other) {
    Abandon();
    manager_ = std::exchange(other.manager_, nullptr);
    id_ = std::move(other.id_);
    lease_id_ = other.lease_id_;
    state_ = std::move(other.state_);
    initial_ = std::move(other.initial_);
    revoked_ = std::move(other.revoked_);
  }
  return *this;
}

SessionLease::~SessionLease() { Abandon(); }

absl::Status SessionLease::Check() const {
  const Revocation why =
      revoked_ != nullptr ? revoked_->load() : Revocation::kNone;
  switch (why) {
    case Revocation::kNone:
      break;
    case Revocation::kDeleted:
      return absl::AbortedError(
          absl::StrCat("session ", Quote(id_), " was deleted"));
    case Revocation::kLost:
      return absl::AbortedError(absl::StrCat(
          "session ", Quote(id_),
          ": its lease in the session store was lost (it could not be "
          "renewed within the lease timeout); the turn is rolled back"));
  }
  return absl::OkStatus();
}

void SessionLease::Commit(StatePtr state, Initial initial,
                          StatusCallback done) {
  SessionManager* manager = std::exchange(manager_, nullptr);
  manager->CommitLease(*this, std::move(state), initial, std::move(done));
}

void SessionLease::Abandon() {
  if (SessionManager* manager = std::exchange(manager_, nullptr)) {
    manager->AbandonLease(id_, lease_id_);
  }
}

}  // namespace rwkv::server
