#include "server/session/rocksdb_session_store.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/log.h"
#include "engine/crc32.h"
#include "rocksdb/db.h"
#include "rocksdb/options.h"
#include "rocksdb/write_batch.h"
#include "server/quote.h"

namespace rwkv::server {

using common::LogError;

namespace {

std::string MetaKey(const std::string& id) { return "m/" + id; }
std::string DataKey(const std::string& id) { return "d/" + id; }
std::string InitialKeyName(const std::string& key) { return "i/" + key; }

std::string What(const std::string& id) {
  return absl::StrCat("session ", Quote(id));
}

// RocksDB's status as the API reports it.
absl::Status FromRocks(const rocksdb::Status& s, absl::string_view doing) {
  if (s.ok()) return absl::OkStatus();
  const std::string why = absl::StrCat(doing, ": ", s.ToString());
  if (s.IsNoSpace()) {
    return absl::ResourceExhaustedError(
        absl::StrCat("the session store's disk is full (", why, ")"));
  }
  if (s.IsCorruption()) return absl::DataLossError(why);
  if (s.IsNotFound()) return absl::NotFoundError(why);
  if (s.IsIOError() || s.IsBusy() || s.IsTimedOut() || s.IsTryAgain()) {
    return absl::UnavailableError(why);
  }
  return absl::InternalError(why);
}

}  // namespace

struct RocksDbSessionStore::Pending {
  std::vector<StoreWrite> writes;
  WriteDone done;
};

// One commit group: the batch and what the index holds once it is written.
struct RocksDbSessionStore::Group {
  rocksdb::WriteBatch batch;
  // id -> its record after the batch (nullopt: removed), with the size of
  // its encoded metadata.
  absl::flat_hash_map<std::string,
                      std::optional<std::pair<StoredMeta, int64_t>>>
      changed;
  // Reference count changes of initial states, and the sizes of those the
  // batch writes.
  absl::flat_hash_map<std::string, int> ref_delta;
  absl::flat_hash_map<std::string, int64_t> new_initials;
  int64_t bytes = 0;
};

absl::StatusOr<std::unique_ptr<RocksDbSessionStore>> RocksDbSessionStore::Open(
    const RocksDbStoreOptions& options, const engine::Model* model) {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.compression = rocksdb::kNoCompression;  // float states barely compress
  o.max_background_jobs = 2;
  // States (hundreds of KB each) go to blob files, so compaction moves only
  // the small keys and metadata.
  o.enable_blob_files = true;
  o.min_blob_size = 16 << 10;
  o.enable_blob_garbage_collection = true;
  o.blob_garbage_collection_age_cutoff = 0.5;
  o.info_log_level = rocksdb::WARN_LEVEL;
  // Bounded write-ahead log: after a crash at most this much is replayed at
  // open (a clean close flushes it all).
  o.write_buffer_size = 32 << 20;
  o.max_total_wal_size = 64 << 20;
  rocksdb::DB* raw = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(o, options.dir, &raw);
  if (!s.ok()) {
    if (absl::StrContains(s.ToString(), "lock")) {
      return absl::UnavailableError(absl::StrCat(
          "the session store ", options.dir,
          " is in use by another process (another rwkv-server on the same "
          "--data-dir?): ",
          s.ToString()));
    }
    return FromRocks(s,
                     absl::StrCat("opening the session store ", options.dir));
  }
  std::unique_ptr<RocksDbSessionStore> store(new RocksDbSessionStore(
      options, model, std::unique_ptr<rocksdb::DB>(raw)));
  if (absl::Status st = store->LoadIndex(); !st.ok()) return st;
  return store;
}

RocksDbSessionStore::RocksDbSessionStore(const RocksDbStoreOptions& options,
                                         const engine::Model* model,
                                         std::unique_ptr<rocksdb::DB> db)
    : options_(options), model_(model), db_(std::move(db)) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RocksDbSessionStore::~RocksDbSessionStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  writer_.join();
  // Everything to table and blob files: the next open replays no log.
  db_->Flush(rocksdb::FlushOptions()).PermitUncheckedError();
}

absl::Status RocksDbSessionStore::LoadIndex() {
  std::unique_ptr<rocksdb::Iterator> it(
      db_->NewIterator(rocksdb::ReadOptions()));
  absl::MutexLock lock(&mu_);
  for (it->Seek("m/"); it->Valid() && it->key().starts_with("m/"); it->Next()) {
    const std::string id = it->key().ToString().substr(2);
    absl::StatusOr<StoredMeta> meta = DecodeMeta(
        absl::string_view(it->value().data(), it->value().size()), What(id));
    if (!meta.ok()) {
      LogError(std::string(meta.status().message()));
      unreadable_[id] = meta.status();
      continue;
    }
    index_.Put(*meta, static_cast<int64_t>(it->value().size()));
  }
  for (it->Seek("i/"); it->Valid() && it->key().starts_with("i/"); it->Next()) {
    index_.SetInitialBytes(it->key().ToString().substr(2),
                           static_cast<int64_t>(it->value().size()));
  }
  return FromRocks(it->status(), "reading the session index");
}

absl::StatusOr<StatePtr> RocksDbSessionStore::ParseStored(
    std::string bytes, const std::string& what) const {
  // A stored state was accepted (and health-checked) when it entered the
  // server; reloading it must not refuse one a client imported with
  // allow_unhealthy.
  engine::LoadStateOptions load;
  load.allow_unhealthy = true;
  absl::StatusOr<engine::State> state =
      engine::ParseState(std::move(bytes), what, *model_, load);
  if (!state.ok()) {
    if (absl::IsFailedPrecondition(state.status())) return state.status();
    return absl::DataLossError(absl::StrCat(
        what, ": stored state is unreadable: ", state.status().message()));
  }
  return std::make_shared<const engine::State>(*std::move(state));
}

absl::StatusOr<StatePtr> RocksDbSessionStore::LoadInitial(
    const std::string& key, const void* snapshot, const std::string& what) {
  {
    absl::MutexLock lock(&keys_mu_);
    auto it = loaded_.find(key);
    if (it != loaded_.end()) {
      if (StatePtr shared = it->second.lock()) return shared;
    }
  }
  rocksdb::ReadOptions ro;
  ro.snapshot = static_cast<const rocksdb::Snapshot*>(snapshot);
  std::string bytes;
  rocksdb::Status s = db_->Get(ro, InitialKeyName(key), &bytes);
  if (!s.ok()) {
    return absl::DataLossError(absl::StrCat(what, ": its initial state ", key,
                                            " is missing: ", s.ToString()));
  }
  if (InitialKey(bytes) != key) {
    return absl::DataLossError(
        absl::StrCat(what, ": its initial state ", key, " is corrupt"));
  }
  absl::StatusOr<StatePtr> state = ParseStored(std::move(bytes), what);
  if (!state.ok()) return state.status();
  absl::MutexLock lock(&keys_mu_);
  loaded_[key] = *state;
  key_of_[state->get()] = {*state, key};
  return state;
}

absl::StatusOr<SessionRecord> RocksDbSessionStore::Read(const std::string& id) {
  const std::string what = What(id);
  if (model_ == nullptr) {
    return absl::FailedPreconditionError(
        "the store was opened without a model");
  }
  {
    absl::MutexLock lock(&mu_);
    auto bad = unreadable_.find(id);
    if (bad != unreadable_.end()) return bad->second;
  }
  // One snapshot: the metadata and the state belong to the same write.
  const rocksdb::Snapshot* snapshot = db_->GetSnapshot();
  auto release = [&] { db_->ReleaseSnapshot(snapshot); };
  rocksdb::ReadOptions ro;
  ro.snapshot = snapshot;
  std::string meta_bytes;
  rocksdb::Status s = db_->Get(ro, MetaKey(id), &meta_bytes);
  if (!s.ok()) {
    release();
    if (s.IsNotFound()) {
      return absl::NotFoundError(absl::StrCat("no stored ", what));
    }
    return FromRocks(s, absl::StrCat("reading ", what));
  }
  absl::StatusOr<StoredMeta> stored = DecodeMeta(meta_bytes, what);
  if (!stored.ok()) {
    release();
    return stored.status();
  }
  const std::string& model_fp = model_->config().fingerprint;
  if (stored->model_fingerprint != model_fp) {
    release();
    return absl::FailedPreconditionError(absl::StrCat(
        what, " was stored for model ", Quote(stored->model_fingerprint),
        "; this server runs model ", Quote(model_fp)));
  }
  SessionRecord record;
  record.meta = stored->meta;
  if (!stored->initial_key.empty()) {
    absl::StatusOr<StatePtr> initial =
        LoadInitial(stored->initial_key, snapshot, what);
    if (!initial.ok()) {
      release();
      return initial.status();
    }
    record.initial = *std::move(initial);
    record.initial_shared = true;
  }
  if (stored->state_is_initial) {
    record.state = record.initial;
  } else {
    std::string data;
    s = db_->Get(ro, DataKey(id), &data);
    absl::Status checked = s.ok()
                               ? CheckData(*stored, data, what)
                               : FromRocks(s, absl::StrCat("reading ", what));
    if (!checked.ok()) {
      release();
      return checked;
    }
    absl::StatusOr<StatePtr> state = ParseStored(std::move(data), what);
    if (!state.ok()) {
      release();
      return state.status();
    }
    record.state = *std::move(state);
  }
  release();
  if (record.initial == nullptr) record.initial = record.state;
  return record;
}

absl::StatusOr<SessionMeta> RocksDbSessionStore::ReadMeta(
    const std::string& id) {
  absl::MutexLock lock(&mu_);
  if (auto bad = unreadable_.find(id); bad != unreadable_.end()) {
    return bad->second;
  }
  const StoredMeta* stored = index_.Find(id);
  if (stored == nullptr) {
    return absl::NotFoundError(absl::StrCat("no stored ", What(id)));
  }
  return stored->meta;
}

void RocksDbSessionStore::Write(std::vector<StoreWrite> writes,
                                WriteDone done) {
  {
    absl::MutexLock lock(&queue_mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(writes), std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("the session store is closing"));
}

void RocksDbSessionStore::WriterLoop() {
  for (;;) {
    std::deque<Pending> queue;
    {
      absl::MutexLock lock(&queue_mu_);
      committing_ = false;
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return stopping_ || !queue_.empty();
      };
      queue_mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;  // stopping, nothing left
      queue.swap(queue_);
      committing_ = true;
    }
    Commit(std::vector<Pending>(std::make_move_iterator(queue.begin()),
                                std::make_move_iterator(queue.end())));
  }
}

void RocksDbSessionStore::Sync() {
  absl::MutexLock lock(&queue_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return queue_.empty() && !committing_;
  };
  queue_mu_.Await(absl::Condition(&idle));
}

std::string RocksDbSessionStore::KeyOf(const StatePtr& state,
                                       std::string* bytes) {
  {
    absl::MutexLock lock(&keys_mu_);
    auto it = key_of_.find(state.get());
    if (it != key_of_.end() && it->second.first.lock() == state) {
      return it->second.second;
    }
  }
  absl::StatusOr<std::string> serialized =
      engine::SerializeState(*state, options_.dtype);
  if (!serialized.ok()) return "";
  *bytes = *std::move(serialized);
  std::string key = InitialKey(*bytes);
  absl::MutexLock lock(&keys_mu_);
  if (key_of_.size() > 4096) {  // drop entries of states no one holds
    for (auto it = key_of_.begin(); it != key_of_.end();) {
      auto next = std::next(it);
      if (it->second.first.expired()) key_of_.erase(it);
      it = next;
    }
    for (auto it = loaded_.begin(); it != loaded_.end();) {
      auto next = std::next(it);
      if (it->second.expired()) loaded_.erase(it);
      it = next;
    }
  }
  key_of_[state.get()] = {state, key};
  loaded_.emplace(key, state);
  return key;
}

absl::Status RocksDbSessionStore::StagePut(StoreWrite& w, Group& group) {
  const SessionRecord& r = w.record;
  const std::string& id = r.meta.id;
  StoredMeta s;
  s.meta = r.meta;
  s.model_fingerprint = model_ != nullptr ? model_->config().fingerprint : "";
  std::string initial_bytes;
  if (r.initial != nullptr) {
    s.initial_key = KeyOf(r.initial, &initial_bytes);
    if (s.initial_key.empty()) {
      return absl::InternalError(
          absl::StrCat(What(id), ": cannot serialize its initial state"));
    }
  }
  s.state_is_initial = r.state == r.initial;
  std::string data;
  if (!s.state_is_initial) {
    absl::StatusOr<std::string> bytes =
        engine::SerializeState(*r.state, options_.dtype);
    if (!bytes.ok()) return bytes.status();
    data = *std::move(bytes);
    s.data_bytes = data.size();
    s.data_crc = engine::Crc32(data.data(), data.size());
  }
  // Reference counts as the index will hold them after this batch.
  int refs = 0;
  std::optional<std::string> old_key;
  {
    absl::MutexLock lock(&mu_);
    auto changed = group.changed.find(id);
    const StoredMeta* old =
        changed != group.changed.end()
            ? (changed->second ? &changed->second->first : nullptr)
            : index_.Find(id);
    if (old != nullptr && !old->initial_key.empty()) old_key = old->initial_key;
    if (!s.initial_key.empty()) refs = index_.Refs(s.initial_key);
  }
  if (!s.initial_key.empty()) {
    refs += group.ref_delta[s.initial_key];
    if (refs <= 0 && !group.new_initials.contains(s.initial_key)) {
      if (initial_bytes.empty()) {
        absl::StatusOr<std::string> b =
            engine::SerializeState(*r.initial, options_.dtype);
        if (!b.ok()) return b.status();
        initial_bytes = *std::move(b);
      }
      group.batch.Put(InitialKeyName(s.initial_key), initial_bytes);
      group.new_initials[s.initial_key] =
          static_cast<int64_t>(initial_bytes.size());
      group.bytes += static_cast<int64_t>(initial_bytes.size());
    }
    ++group.ref_delta[s.initial_key];
  }
  if (old_key.has_value()) --group.ref_delta[*old_key];
  if (s.state_is_initial) {
    group.batch.Delete(DataKey(id));
  } else {
    group.batch.Put(DataKey(id), data);
  }
  std::string meta = EncodeMeta(s);
  group.batch.Put(MetaKey(id), meta);
  group.bytes += static_cast<int64_t>(data.size() + meta.size());
  group.changed[id] =
      std::make_pair(std::move(s), static_cast<int64_t>(meta.size()));
  return absl::OkStatus();
}

absl::Status RocksDbSessionStore::Stage(std::vector<StoreWrite>& writes,
                                        Group& group) {
  // Compare-and-set first, so a caller's writes apply all or none.
  {
    absl::MutexLock lock(&mu_);
    for (const StoreWrite& w : writes) {
      if (w.op != StoreWrite::Op::kPut) continue;
      const std::string& id = w.record.meta.id;
      auto changed = group.changed.find(id);
      const StoredMeta* cur =
          changed != group.changed.end()
              ? (changed->second ? &changed->second->first : nullptr)
              : index_.Find(id);
      const uint64_t version = cur == nullptr ? 0 : cur->meta.version;
      if (version != w.expected_version) {
        return absl::AbortedError(
            absl::StrCat(What(id), version == 0 ? " no longer exists"
                                                : " was changed meanwhile"));
      }
    }
  }
  for (StoreWrite& w : writes) {
    const std::string& id = w.record.meta.id;
    if (w.op == StoreWrite::Op::kPut) {
      if (absl::Status s = StagePut(w, group); !s.ok()) return s;
      continue;
    }
    std::optional<StoredMeta> cur;
    {
      absl::MutexLock lock(&mu_);
      auto changed = group.changed.find(id);
      if (changed != group.changed.end()) {
        if (changed->second) cur = changed->second->first;
      } else if (const StoredMeta* found = index_.Find(id)) {
        cur = *found;
      }
    }
    if (!cur.has_value()) continue;  // touching or deleting nothing
    if (w.op == StoreWrite::Op::kTouch) {
      cur->meta.last_used = w.record.meta.last_used;
      cur->meta.ttl = w.record.meta.ttl;
      std::string meta = EncodeMeta(*cur);
      group.batch.Put(MetaKey(id), meta);
      group.changed[id] =
          std::make_pair(*std::move(cur), static_cast<int64_t>(meta.size()));
    } else {
      group.batch.Delete(MetaKey(id));
      group.batch.Delete(DataKey(id));
      if (!cur->initial_key.empty()) --group.ref_delta[cur->initial_key];
      group.changed[id] = std::nullopt;
    }
  }
  return absl::OkStatus();
}

void RocksDbSessionStore::Commit(std::vector<Pending> pending) {
  Group group;
  std::vector<absl::Status> results(pending.size());
  for (size_t i = 0; i < pending.size(); ++i) {
    results[i] = Stage(pending[i].writes, group);
  }
  // Initial states no record uses any more.
  {
    absl::MutexLock lock(&mu_);
    for (const auto& [key, delta] : group.ref_delta) {
      if (delta < 0 && index_.Refs(key) + delta <= 0 &&
          !group.new_initials.contains(key)) {
        group.batch.Delete(InitialKeyName(key));
      }
    }
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  absl::Status written =
      FromRocks(db_->Write(wo, &group.batch), "writing to the session store");
  if (!written.ok() && absl::IsResourceExhausted(written)) {
    // RocksDB stops writing after a full disk; let it retry next time.
    db_->Resume().PermitUncheckedError();
  }
  if (written.ok()) {
    absl::MutexLock lock(&mu_);
    for (auto& [id, after] : group.changed) {
      if (after.has_value()) {
        index_.Put(after->first, after->second);
      } else {
        index_.Remove(id);
      }
    }
    for (const auto& [key, bytes] : group.new_initials) {
      index_.SetInitialBytes(key, bytes);
    }
  } else {
    LogError(std::string(written.message()));
  }
  {
    absl::MutexLock lock(&queue_mu_);
    ++stats_.groups;
    stats_.writes += static_cast<int64_t>(pending.size());
    if (written.ok()) stats_.bytes += group.bytes;
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    pending[i].done(results[i].ok() ? written : results[i]);
  }
}

absl::StatusOr<std::vector<SessionMeta>> RocksDbSessionStore::List(
    const std::string& after, int limit) {
  absl::MutexLock lock(&mu_);
  return index_.List(after, limit);
}

int64_t RocksDbSessionStore::Count() {
  absl::MutexLock lock(&mu_);
  return index_.count();
}

std::vector<std::string> RocksDbSessionStore::Expired(absl::Time now,
                                                      int limit) {
  absl::MutexLock lock(&mu_);
  return index_.Expired(now, limit);
}

std::vector<std::pair<std::string, int64_t>>
RocksDbSessionStore::LeastRecentlyUsed(int limit) {
  absl::MutexLock lock(&mu_);
  return index_.LeastRecentlyUsed(limit);
}

int64_t RocksDbSessionStore::StoredBytes() {
  absl::MutexLock lock(&mu_);
  return index_.bytes();
}

int64_t RocksDbSessionStore::StoredBytesOf(const std::string& id) {
  absl::MutexLock lock(&mu_);
  return index_.BytesOf(id);
}

int64_t RocksDbSessionStore::PutBytes(const SessionRecord& record) {
  // Serialized states are their tensor bytes plus about 2 KB of zip and
  // pickle framing; the initial state counts if it may be new.
  const double scale =
      options_.dtype == engine::StateDtype::kFloat32 ? 1.0 : 0.5;
  auto bytes = [&](const StatePtr& s) {
    return s == nullptr ? 0
                        : static_cast<int64_t>(s->SizeBytes() * scale) + 2048;
  };
  int64_t total =
      512 + (record.state == record.initial ? 0 : bytes(record.state));
  if (!record.initial_shared) total += bytes(record.initial);
  return total;
}

StoreWriterStats RocksDbSessionStore::writer_stats() const {
  absl::MutexLock lock(&queue_mu_);
  return stats_;
}

std::vector<std::pair<std::string, absl::Status>>
RocksDbSessionStore::unreadable() const {
  absl::MutexLock lock(&mu_);
  return {unreadable_.begin(), unreadable_.end()};
}

}  // namespace rwkv::server
