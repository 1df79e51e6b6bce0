#include "server/state_manager.h"

#include <algorithm>
#include <utility>

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"

namespace rwkv::server {
namespace {

std::string Quote(const std::string& id) {
  // Ids in messages are echoed only if short and printable.
  std::string out;
  for (char c : id.substr(0, 128)) {
    out += (c >= 0x20 && c < 0x7f) ? c : '?';
  }
  return absl::StrCat("'", out, "'");
}

}  // namespace

StateManager::StateManager(StateManagerOptions options)
    : options_(std::move(options)) {
  if (options_.sweep_interval > absl::ZeroDuration()) {
    sweeper_ = std::thread([this] { SweeperLoop(); });
  }
}

StateManager::~StateManager() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (sweeper_.joinable()) sweeper_.join();
}

absl::Time StateManager::Now() const {
  return options_.clock ? options_.clock() : absl::Now();
}

absl::Status StateManager::ValidateId(const std::string& id) {
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

int64_t StateManager::ChargeOf(const Entry& entry) {
  int64_t charge = entry.state.valid() ? entry.state.SizeBytes() : 0;
  if (!entry.initial_shared && entry.initial != nullptr &&
      entry.initial->valid()) {
    charge += entry.initial->SizeBytes();
  }
  return charge;
}

absl::Status StateManager::ResolveTtl(absl::Duration requested,
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

absl::Status StateManager::NotFoundLocked(const std::string& id) const {
  auto it = gone_.find(id);
  if (it == gone_.end()) {
    return absl::NotFoundError(
        absl::StrCat("session ", Quote(id), " not found (unknown id)"));
  }
  switch (it->second) {
    case GoneReason::kExpired:
      return absl::NotFoundError(absl::StrCat(
          "session ", Quote(id), " expired (unused for longer than its TTL)"));
    case GoneReason::kEvicted:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id),
                       " was evicted to stay within the server's memory "
                       "bound (least recently used first)"));
    case GoneReason::kDeleted:
      return absl::NotFoundError(
          absl::StrCat("session ", Quote(id), " was deleted"));
  }
  return absl::NotFoundError(absl::StrCat("session ", Quote(id), " not found"));
}

absl::StatusOr<StateManager::Entry*> StateManager::FindLocked(
    const std::string& id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return NotFoundLocked(id);
  Entry& entry = it->second;
  if (!entry.busy && Now() >= entry.last_used + entry.ttl) {
    std::vector<engine::State> garbage;
    RemoveLocked(id, GoneReason::kExpired, garbage);
    return NotFoundLocked(id);
  }
  return &entry;
}

void StateManager::TouchLocked(Entry& entry) {
  entry.last_used = std::max(entry.last_used, Now());
  entry.lru_stamp = next_stamp_++;
}

void StateManager::RemoveLocked(const std::string& id, GoneReason reason,
                                std::vector<engine::State>& garbage) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  total_bytes_ -= it->second.charge;
  garbage.push_back(std::move(it->second.state));
  sessions_.erase(it);
  if (options_.remembered_ids > 0) {
    if (gone_.insert_or_assign(id, reason).second) gone_order_.push_back(id);
    while (static_cast<int>(gone_order_.size()) > options_.remembered_ids) {
      gone_.erase(gone_order_.front());
      gone_order_.pop_front();
    }
  }
}

bool StateManager::MakeRoomLocked(int64_t extra, const std::string& keep,
                                  std::vector<engine::State>& garbage) {
  if (options_.max_state_bytes <= 0) return true;
  while (total_bytes_ + extra > options_.max_state_bytes) {
    const std::string* victim = nullptr;
    uint64_t oldest = 0;
    for (const auto& [id, entry] : sessions_) {
      if (entry.busy || id == keep) continue;
      if (victim == nullptr || entry.lru_stamp < oldest) {
        victim = &id;
        oldest = entry.lru_stamp;
      }
    }
    if (victim == nullptr) return false;
    RemoveLocked(std::string(*victim), GoneReason::kEvicted, garbage);
  }
  return true;
}

std::string StateManager::GenerateIdLocked() {
  static thread_local absl::BitGen gen;
  for (;;) {
    std::string id = absl::StrFormat(
        "s-%016x", absl::Uniform<uint64_t>(gen) ^ (++id_counter_));
    if (!sessions_.contains(id)) return id;
  }
}

absl::Status StateManager::CheckCanCreateLocked(const std::string& id) const {
  if (!id.empty() && sessions_.contains(id)) {
    return absl::AlreadyExistsError(
        absl::StrCat("session ", Quote(id), " already exists"));
  }
  if (options_.max_sessions > 0 &&
      static_cast<int64_t>(sessions_.size()) >= options_.max_sessions) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "too many sessions: the server holds at most ", options_.max_sessions,
        " (delete sessions or wait for them to expire)"));
  }
  return absl::OkStatus();
}

absl::Status StateManager::CheckCanCreate(const std::string& id) {
  if (!id.empty()) {
    if (absl::Status s = ValidateId(id); !s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  // An expired session with this id no longer blocks it.
  if (!id.empty() && sessions_.contains(id)) (void)FindLocked(id);
  return CheckCanCreateLocked(id);
}

SessionSnapshot StateManager::SnapshotLocked(const std::string& id,
                                             const Entry& entry) const {
  SessionSnapshot s;
  s.id = id;
  s.token_count = entry.state.valid() ? entry.state.token_count() : 0;
  s.created = entry.created;
  s.last_used = entry.last_used;
  s.ttl = entry.ttl;
  s.state_bytes = entry.state.valid() ? entry.state.SizeBytes() : 0;
  s.busy = entry.busy;
  s.prefix_cached_tokens = entry.prefix_cached_tokens;
  return s;
}

absl::StatusOr<SessionSnapshot> StateManager::Create(NewSession session) {
  if (!session.id.empty()) {
    if (absl::Status s = ValidateId(session.id); !s.ok()) return s;
  }
  if (!session.state.valid()) {
    return absl::InvalidArgumentError("a new session needs a valid state");
  }
  Entry entry;
  if (absl::Status s = ResolveTtl(session.ttl, &entry.ttl); !s.ok()) return s;
  entry.initial =
      session.initial != nullptr
          ? std::move(session.initial)
          : std::make_shared<const engine::State>(session.state.Clone());
  entry.initial_shared = session.initial_shared;
  entry.state = std::move(session.state);
  entry.prefix_cached_tokens = session.prefix_cached_tokens;
  entry.charge = ChargeOf(entry);

  std::vector<engine::State> garbage;  // destroyed after the lock is released
  absl::MutexLock lock(&mu_);
  if (!session.id.empty() && sessions_.contains(session.id)) {
    (void)FindLocked(session.id);  // frees it if expired
  }
  if (absl::Status s = CheckCanCreateLocked(session.id); !s.ok()) return s;
  if (options_.max_state_bytes > 0 && entry.charge > options_.max_state_bytes) {
    return absl::ResourceExhaustedError(
        absl::StrCat("one session needs ", entry.charge,
                     " bytes, more than the server's memory bound of ",
                     options_.max_state_bytes));
  }
  if (!MakeRoomLocked(entry.charge, "", garbage)) {
    return absl::ResourceExhaustedError(
        absl::StrCat("memory bound of ", options_.max_state_bytes,
                     " bytes reached and every session is busy"));
  }
  const std::string id =
      session.id.empty() ? GenerateIdLocked() : std::move(session.id);
  const absl::Time now = Now();
  entry.created = now;
  entry.last_used = now;
  entry.lru_stamp = next_stamp_++;
  total_bytes_ += entry.charge;
  gone_.erase(id);  // stale "gone" reason no longer applies
  auto [it, inserted] = sessions_.emplace(id, std::move(entry));
  return SnapshotLocked(id, it->second);
}

absl::StatusOr<SessionSnapshot> StateManager::Get(const std::string& id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = FindLocked(id);
  if (!entry.ok()) return entry.status();
  return SnapshotLocked(id, **entry);
}

SessionPage StateManager::List(int page_size, const std::string& page_token) {
  if (page_size <= 0) page_size = 100;
  page_size = std::min(page_size, 1000);
  SessionPage page;
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  page.total = static_cast<int64_t>(sessions_.size());
  auto it = page_token.empty() ? sessions_.begin()
                               : sessions_.upper_bound(page_token);
  for (; it != sessions_.end(); ++it) {
    const Entry& e = it->second;
    if (!e.busy && now >= e.last_used + e.ttl) continue;  // expired
    if (static_cast<int>(page.sessions.size()) == page_size) {
      page.next_page_token = page.sessions.back().id;
      break;
    }
    page.sessions.push_back(SnapshotLocked(it->first, e));
  }
  return page;
}

absl::Status StateManager::Delete(const std::string& id) {
  std::vector<engine::State> garbage;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> entry = FindLocked(id);
  if (!entry.ok()) return entry.status();
  RemoveLocked(id, GoneReason::kDeleted, garbage);
  return absl::OkStatus();
}

absl::StatusOr<SessionSnapshot> StateManager::Reset(const std::string& id) {
  engine::State old;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (entry.busy) {
    return absl::FailedPreconditionError(absl::StrCat(
        "session ", Quote(id), " is busy with a turn; reset it afterwards"));
  }
  old = std::move(entry.state);
  entry.state = entry.initial->Clone();
  TouchLocked(entry);
  return SnapshotLocked(id, entry);
}

absl::StatusOr<SessionSnapshot> StateManager::Touch(const std::string& id,
                                                    absl::Duration ttl) {
  absl::Duration new_ttl;
  if (ttl > absl::ZeroDuration()) {
    if (absl::Status s = ResolveTtl(ttl, &new_ttl); !s.ok()) return s;
  }
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (ttl > absl::ZeroDuration()) entry.ttl = new_ttl;
  TouchLocked(entry);
  return SnapshotLocked(id, entry);
}

absl::StatusOr<engine::State> StateManager::CopyState(const std::string& id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id);
  if (!found.ok()) return found.status();
  TouchLocked(**found);
  return (*found)->state.Clone();
}

absl::StatusOr<SessionSnapshot> StateManager::ReplaceState(
    const std::string& id, engine::State state,
    ReplaceInitial replace_initial) {
  if (!state.valid()) return absl::InvalidArgumentError("invalid state");
  std::shared_ptr<const engine::State> initial;
  if (replace_initial == ReplaceInitial::kYes) {
    initial = std::make_shared<const engine::State>(state.Clone());
  }
  std::vector<engine::State> garbage;
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (entry.busy) {
    return absl::FailedPreconditionError(
        absl::StrCat("session ", Quote(id), " is busy with a turn"));
  }
  garbage.push_back(std::move(entry.state));
  entry.state = std::move(state);
  if (initial != nullptr) {
    entry.initial = std::move(initial);
    entry.initial_shared = false;
  }
  total_bytes_ -= entry.charge;
  entry.charge = ChargeOf(entry);
  total_bytes_ += entry.charge;
  TouchLocked(entry);
  MakeRoomLocked(0, id, garbage);  // best effort: the session itself stays
  return SnapshotLocked(id, entry);
}

absl::StatusOr<TurnLease> StateManager::BeginTurn(const std::string& id) {
  absl::MutexLock lock(&mu_);
  absl::StatusOr<Entry*> found = FindLocked(id);
  if (!found.ok()) return found.status();
  Entry& entry = **found;
  if (entry.busy) {
    return absl::FailedPreconditionError(
        absl::StrCat("session ", Quote(id),
                     " is busy: another Generate/Chat turn is running on it "
                     "(one turn at a time per session)"));
  }
  entry.busy = true;
  entry.lease_id = next_lease_++;
  TouchLocked(entry);
  TurnLease lease;
  lease.session_id = id;
  lease.lease_id = entry.lease_id;
  lease.state = entry.state.Clone();
  return lease;
}

absl::Status StateManager::CommitTurn(TurnLease lease) {
  std::vector<engine::State> garbage;
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(lease.session_id);
  if (it == sessions_.end() || !it->second.busy ||
      it->second.lease_id != lease.lease_id) {
    garbage.push_back(std::move(lease.state));
    return absl::NotFoundError(absl::StrCat("session ", Quote(lease.session_id),
                                            " was removed during the turn"));
  }
  Entry& entry = it->second;
  garbage.push_back(std::move(entry.state));
  entry.state = std::move(lease.state);
  entry.busy = false;
  total_bytes_ -= entry.charge;
  entry.charge = ChargeOf(entry);
  total_bytes_ += entry.charge;
  TouchLocked(entry);
  MakeRoomLocked(0, lease.session_id, garbage);
  return absl::OkStatus();
}

void StateManager::AbandonTurn(const TurnLease& lease) {
  absl::MutexLock lock(&mu_);
  auto it = sessions_.find(lease.session_id);
  if (it == sessions_.end() || !it->second.busy ||
      it->second.lease_id != lease.lease_id) {
    return;
  }
  it->second.busy = false;
  TouchLocked(it->second);
}

int StateManager::Sweep() {
  std::vector<engine::State> garbage;
  absl::MutexLock lock(&mu_);
  const absl::Time now = Now();
  std::vector<std::string> expired;
  for (const auto& [id, entry] : sessions_) {
    if (!entry.busy && now >= entry.last_used + entry.ttl) {
      expired.push_back(id);
    }
  }
  for (const std::string& id : expired) {
    RemoveLocked(id, GoneReason::kExpired, garbage);
  }
  return static_cast<int>(expired.size());
}

int64_t StateManager::session_count() const {
  absl::MutexLock lock(&mu_);
  return static_cast<int64_t>(sessions_.size());
}

int64_t StateManager::total_bytes() const {
  absl::MutexLock lock(&mu_);
  return total_bytes_;
}

void StateManager::SweeperLoop() {
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

}  // namespace rwkv::server
