#include "server/session/redis_session_store.h"

#include <hiredis/hiredis.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <iterator>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "common/log.h"
#include "engine/crc32.h"
#include "server/quote.h"
#include "server/session/record_codec.h"

namespace rwkv::server {

using common::LogError;
using common::LogWarning;

namespace {

// Most lease renewals per script call.
constexpr size_t kRenewBatch = 512;
// Expired index entries pruned per writer tick.
constexpr int kPruneBatch = 1000;

std::string Millis(absl::Time t) { return absl::StrCat(absl::ToUnixMillis(t)); }
std::string Millis(absl::Duration d) {
  return absl::StrCat(absl::ToInt64Milliseconds(d));
}

// "<host>:<pid>:<64 random bits>".
std::string NewReplicaToken() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  uint64_t r = 0;
  while (getrandom(&r, sizeof(r), 0) != sizeof(r)) {
  }
  return absl::StrFormat("%s:%d:%016x", host, getpid(), r);
}

std::string Str(const redisReply& r) {
  return r.type == REDIS_REPLY_STRING || r.type == REDIS_REPLY_STATUS
             ? std::string(r.str, r.len)
             : std::string();
}

// The views of `args` (for the connection's argv calls).
std::vector<absl::string_view> Views(const std::vector<std::string>& args) {
  return std::vector<absl::string_view>(args.begin(), args.end());
}

// The status of a reply that is an error or has the wrong shape.
absl::Status BadReply(const redisReply& r, absl::string_view doing) {
  const std::string error = RedisConnection::ReplyError(r);
  return absl::Status(
      error.empty() ? absl::StatusCode::kInternal
                    : RedisConnection::ErrorCode(error),
      absl::StrCat("the session store answered ", doing, " with ",
                   error.empty() ? "an unexpected reply" : error));
}

}  // namespace

absl::StatusOr<std::unique_ptr<RedisSessionStore>> RedisSessionStore::Open(
    const RedisStoreOptions& options, const engine::Model* model) {
  if (model == nullptr) {
    return absl::InvalidArgumentError("the Redis session store needs a model");
  }
  absl::StatusOr<RedisAddress> address = ParseRedisUrl(options.url);
  if (!address.ok()) return address.status();
  std::unique_ptr<RedisSessionStore> store(
      new RedisSessionStore(options, *address, model));
  // Reachable now, or the server does not start.
  absl::Status reached = store->pool_.Run([](RedisConnection& c) {
    absl::StatusOr<RedisReplyPtr> r = c.Command({"PING"});
    return r.status();
  });
  if (!reached.ok()) return reached;
  return store;
}

RedisSessionStore::RedisSessionStore(const RedisStoreOptions& options,
                                     RedisAddress address,
                                     const engine::Model* model)
    : options_(options),
      model_(model),
      prefix_(absl::StrCat("rwkv:", model->config().fingerprint, ":")),
      replica_(NewReplicaToken()),
      pool_(std::move(address), options.timeout, /*max_idle=*/16) {
  writer_ = std::thread([this] { WriterLoop(); });
}

RedisSessionStore::~RedisSessionStore() {
  {
    absl::MutexLock lock(&queue_mu_);
    stopping_ = true;
  }
  writer_.join();
}

std::string RedisSessionStore::What(const std::string& id) const {
  return absl::StrCat("session ", Quote(id));
}

// ------------------------------------------------------------------ reads

absl::StatusOr<StoredMeta> RedisSessionStore::DecodeStored(
    absl::string_view what, const std::string& meta, const std::string& used,
    const std::string& ttl) const {
  absl::StatusOr<StoredMeta> stored = DecodeMeta(meta, what);
  if (!stored.ok()) return stored.status();
  const std::string& model_fp = model_->config().fingerprint;
  if (stored->model_fingerprint != model_fp) {
    return absl::FailedPreconditionError(absl::StrCat(
        what, " was stored for model ", Quote(stored->model_fingerprint),
        "; this server runs model ", Quote(model_fp)));
  }
  int64_t used_ms = 0, ttl_ms = 0;
  if (!absl::SimpleAtoi(used, &used_ms) || !absl::SimpleAtoi(ttl, &ttl_ms)) {
    return absl::DataLossError(
        absl::StrCat(what, ": stored last use or TTL is not a number"));
  }
  stored->meta.last_used = absl::FromUnixMillis(used_ms);
  stored->meta.ttl = absl::Milliseconds(ttl_ms);
  return stored;
}

absl::StatusOr<StoredStamp> RedisSessionStore::ReadStamp(
    const std::string& id) {
  std::vector<std::string> fields;
  bool leased = false;
  absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
    absl::StatusOr<RedisReplyPtr> r =
        c.Eval(RedisScript::kStamp, {prefix_, id});
    if (!r.ok()) return r.status();
    const redisReply& reply = **r;
    if (reply.type == REDIS_REPLY_NIL) {
      return absl::NotFoundError(absl::StrCat("no stored ", What(id)));
    }
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 4) {
      return BadReply(reply, "a metadata read");
    }
    fields = {Str(*reply.element[0]), Str(*reply.element[1]),
              Str(*reply.element[2])};
    leased = reply.element[3]->integer != 0;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::StatusOr<StoredMeta> stored =
      DecodeStored(What(id), fields[0], fields[1], fields[2]);
  if (!stored.ok()) return stored.status();
  return StoredStamp{std::move(stored->meta), leased};
}

absl::StatusOr<SessionMeta> RedisSessionStore::ReadMeta(const std::string& id) {
  absl::StatusOr<StoredStamp> stamp = ReadStamp(id);
  if (!stamp.ok()) return stamp.status();
  return std::move(stamp->meta);
}

absl::StatusOr<StatePtr> RedisSessionStore::ParseStored(
    std::string bytes, const std::string& what) const {
  absl::StatusOr<engine::State> state =
      engine::ParseState(std::move(bytes), what, *model_);
  if (!state.ok()) {
    if (absl::IsFailedPrecondition(state.status())) return state.status();
    return absl::DataLossError(absl::StrCat(
        what, ": stored state is unreadable: ", state.status().message()));
  }
  return std::make_shared<const engine::State>(*std::move(state));
}

absl::StatusOr<StatePtr> RedisSessionStore::LoadInitial(
    const std::string& key, const std::string& what) {
  if (StatePtr cached = initials_.Find(key)) return cached;
  std::string bytes;
  bool found = false;
  absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
    absl::StatusOr<RedisReplyPtr> r =
        c.Command({"GET", absl::StrCat(prefix_, "i:", key)});
    if (!r.ok()) return r.status();
    found = (*r)->type == REDIS_REPLY_STRING;
    if (found) bytes = Str(**r);
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  if (!found) {
    return absl::DataLossError(absl::StrCat(
        what, ": its initial state ", key,
        " is missing from the store (was Redis' maxmemory-policy not "
        "noeviction?)"));
  }
  if (InitialKey(bytes) != key) {
    return absl::DataLossError(
        absl::StrCat(what, ": its initial state ", key, " is corrupt"));
  }
  absl::StatusOr<StatePtr> state = ParseStored(std::move(bytes), what);
  if (!state.ok()) return state.status();
  initials_.Remember(key, *state);
  return state;
}

absl::StatusOr<SessionRecord> RedisSessionStore::Read(const std::string& id) {
  const std::string what = What(id);
  std::vector<std::string> f;  // m d u t k
  bool has_data = false;
  absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
    absl::StatusOr<RedisReplyPtr> r = c.Command(
        {"HMGET", absl::StrCat(prefix_, "s:", id), "m", "d", "u", "t", "k"});
    if (!r.ok()) return r.status();
    const redisReply& reply = **r;
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements != 5) {
      return BadReply(reply, "a record read");
    }
    if (reply.element[0]->type != REDIS_REPLY_STRING) {
      return absl::NotFoundError(absl::StrCat("no stored ", what));
    }
    f.clear();
    for (size_t i = 0; i < 5; ++i) f.push_back(Str(*reply.element[i]));
    has_data = reply.element[1]->type == REDIS_REPLY_STRING;
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  absl::StatusOr<StoredMeta> stored = DecodeStored(what, f[0], f[2], f[3]);
  if (!stored.ok()) return stored.status();
  SessionRecord record;
  record.meta = stored->meta;
  if (!stored->initial_key.empty()) {
    absl::StatusOr<StatePtr> initial = LoadInitial(stored->initial_key, what);
    if (!initial.ok()) return initial.status();
    record.initial = *std::move(initial);
    record.initial_shared = true;
  }
  if (stored->state_is_initial) {
    record.state = record.initial;
  } else {
    if (!has_data) {
      return absl::DataLossError(absl::StrCat(what, ": stored state missing"));
    }
    if (absl::Status c = CheckData(*stored, f[1], what); !c.ok()) return c;
    absl::StatusOr<StatePtr> state = ParseStored(std::move(f[1]), what);
    if (!state.ok()) return state.status();
    record.state = *std::move(state);
  }
  if (record.state == nullptr) {
    return absl::DataLossError(absl::StrCat(what, ": no state stored"));
  }
  return record;
}

absl::StatusOr<std::vector<SessionMeta>> RedisSessionStore::List(
    const std::string& after, int limit) {
  std::vector<std::string> triples;
  absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
    absl::StatusOr<RedisReplyPtr> r = c.Eval(
        RedisScript::kList, {prefix_, after, absl::StrCat(std::max(limit, 1))});
    if (!r.ok()) return r.status();
    const redisReply& reply = **r;
    if (reply.type != REDIS_REPLY_ARRAY || reply.elements % 3 != 0) {
      return BadReply(reply, "a listing");
    }
    triples.clear();
    for (size_t i = 0; i < reply.elements; ++i) {
      triples.push_back(Str(*reply.element[i]));
    }
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  std::vector<SessionMeta> metas;
  for (size_t i = 0; i + 2 < triples.size(); i += 3) {
    absl::StatusOr<StoredMeta> stored = DecodeStored(
        "a listed session", triples[i], triples[i + 1], triples[i + 2]);
    if (!stored.ok()) {  // listed without it; reading it says why
      LogWarning(std::string(stored.status().message()));
      continue;
    }
    metas.push_back(std::move(stored->meta));
  }
  return metas;
}

int64_t RedisSessionStore::Count() {
  int64_t count = 0;
  absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
    absl::StatusOr<RedisReplyPtr> r =
        c.Command({"ZCOUNT", prefix_ + "exp",
                   absl::StrCat("(", absl::ToUnixMillis(absl::Now())), "+inf"});
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_INTEGER) return BadReply(**r, "a count");
    count = (*r)->integer;
    return absl::OkStatus();
  });
  if (!s.ok()) LogWarning(s.message());
  return count;
}

// ----------------------------------------------------------------- leases

absl::StatusOr<StoreLease> RedisSessionStore::AcquireLease(
    const std::string& id, RevocationFlag revoked) {
  StoreLease lease;
  {
    // Registered before it is asked for, so that no other thread here
    // takes it for a stale one of this replica's (see below); not renewed
    // before it is granted.
    absl::MutexLock lock(&held_mu_);
    lease.token = absl::StrCat(replica_, ":", next_lease_++);
    held_[lease.token] = Held{id, revoked, absl::Now(), false};
  }
  std::vector<std::string> fields;
  std::string stale;
  for (int attempt = 0; attempt < 2; ++attempt) {
    absl::Status s = pool_.Run([&](RedisConnection& c) -> absl::Status {
      absl::StatusOr<RedisReplyPtr> r =
          c.Eval(RedisScript::kAcquire,
                 {prefix_, id, lease.token, Millis(options_.lease_timeout),
                  Millis(absl::Now()), stale});
      if (!r.ok()) return r.status();
      const redisReply& reply = **r;
      if (reply.type != REDIS_REPLY_ARRAY || reply.elements < 1) {
        return BadReply(reply, "a lease request");
      }
      fields.clear();
      for (size_t i = 0; i < reply.elements; ++i) {
        fields.push_back(Str(*reply.element[i]));
      }
      return absl::OkStatus();
    });
    if (!s.ok()) {
      Forget(lease.token);
      return s;
    }
    // Held by this replica but by none of its holders: left behind by a
    // release that never reached Redis (it was down). Take it over.
    if (fields[0] != "BUSY" || fields.size() < 2 ||
        !absl::StartsWith(fields[1], replica_ + ":") || IsHeld(fields[1])) {
      break;
    }
    stale = fields[1];
  }
  if (fields[0] != "OK") Forget(lease.token);
  if (fields[0] == "GONE") {
    return absl::NotFoundError(absl::StrCat("no stored ", What(id)));
  }
  if (fields[0] == "BUSY") {
    if (fields.size() > 1 && absl::StartsWith(fields[1], replica_ + ":")) {
      return absl::FailedPreconditionError(
          absl::StrCat(What(id),
                       " is busy: another turn or state change is running on "
                       "it (one at a time per session)"));
    }
    return absl::FailedPreconditionError(absl::StrCat(
        What(id),
        " is busy on another replica: a turn or state change is running on "
        "it there (one at a time per session)"));
  }
  if (fields.size() != 4) return absl::InternalError("bad lease answer");
  absl::StatusOr<StoredMeta> stored =
      DecodeStored(What(id), fields[1], fields[2], fields[3]);
  if (!stored.ok()) {
    ReleaseLease(id, lease.token);
    return stored.status();
  }
  lease.meta = std::move(stored->meta);
  absl::MutexLock lock(&held_mu_);
  if (auto it = held_.find(lease.token); it != held_.end()) {
    it->second.granted = true;
    it->second.renewed = absl::Now();
  }
  return lease;
}

bool RedisSessionStore::IsHeld(const std::string& token) {
  absl::MutexLock lock(&held_mu_);
  return held_.contains(token);
}

void RedisSessionStore::Forget(const std::string& token) {
  absl::MutexLock lock(&held_mu_);
  held_.erase(token);
}

void RedisSessionStore::ReleaseLease(const std::string& id,
                                     const std::string& token) {
  Forget(token);
  absl::MutexLock lock(&queue_mu_);
  releases_.push_back(Release{id, token});
}

// ----------------------------------------------------------------- writes

void RedisSessionStore::Write(std::vector<StoreWrite> writes, WriteDone done) {
  {
    absl::MutexLock lock(&queue_mu_);
    if (!stopping_) {
      queue_.push_back(Pending{std::move(writes), std::move(done)});
      return;
    }
  }
  done(absl::UnavailableError("the session store is closing"));
}

void RedisSessionStore::Sync() {
  absl::MutexLock lock(&queue_mu_);
  auto idle = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
    return queue_.empty() && releases_.empty() && !committing_;
  };
  queue_mu_.Await(absl::Condition(&idle));
}

StoreWriterStats RedisSessionStore::writer_stats() const {
  absl::MutexLock lock(&queue_mu_);
  return stats_;
}

void RedisSessionStore::WriterLoop() {
  const absl::Duration tick = options_.lease_timeout / 3;
  absl::Time next_tick = absl::Now() + tick;
  for (;;) {
    std::deque<Pending> queue;
    std::vector<Release> releases;
    {
      absl::MutexLock lock(&queue_mu_);
      committing_ = false;
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(queue_mu_) {
        return stopping_ || !queue_.empty() || !releases_.empty();
      };
      queue_mu_.AwaitWithDeadline(absl::Condition(&ready), next_tick);
      if (stopping_ && queue_.empty() && releases_.empty()) return;
      queue.swap(queue_);
      releases.swap(releases_);
      committing_ = true;
    }
    if (!queue.empty()) {
      Commit(std::vector<Pending>(std::make_move_iterator(queue.begin()),
                                  std::make_move_iterator(queue.end())));
    }
    if (!releases.empty()) SendReleases(std::move(releases));
    if (absl::Now() >= next_tick) {
      RenewLeases();
      Prune();
      next_tick = absl::Now() + tick;
    }
  }
}

absl::StatusOr<RedisConnection*> RedisSessionStore::WriterConnection() {
  if (writer_conn_ != nullptr && writer_conn_->broken()) writer_conn_.reset();
  if (writer_conn_ == nullptr) {
    absl::StatusOr<std::unique_ptr<RedisConnection>> c =
        RedisConnection::Connect(pool_.address(), options_.timeout);
    if (!c.ok()) return c.status();
    writer_conn_ = *std::move(c);
  }
  return writer_conn_.get();
}

absl::Status RedisSessionStore::AddPut(const StoreWrite& w, bool with_initials,
                                       Script* script) {
  const SessionRecord& r = w.record;
  StoredMeta s;
  s.meta = r.meta;
  s.model_fingerprint = model_->config().fingerprint;
  std::string initial_bytes;
  if (r.initial != nullptr) {
    s.initial_key = initials_.KeyOf(r.initial, options_.dtype, &initial_bytes);
    if (s.initial_key.empty()) {
      return absl::InternalError(absl::StrCat(
          What(r.meta.id), ": cannot serialize its initial state"));
    }
    const bool send =
        with_initials || !stored_initials_.contains(s.initial_key);
    if (send && initial_bytes.empty()) {
      absl::StatusOr<std::string> b =
          engine::SerializeState(*r.initial, options_.dtype);
      if (!b.ok()) return b.status();
      initial_bytes = *std::move(b);
    }
    if (!send) initial_bytes.clear();
    script->initial_keys.push_back(s.initial_key);
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
  script->bytes += static_cast<int64_t>(data.size() + initial_bytes.size());
  const bool has_initial_bytes = !initial_bytes.empty();
  std::vector<std::string>& a = script->args;
  a.insert(a.end(),
           {"P", r.meta.id, absl::StrCat(w.expected_version),
            absl::StrCat(r.meta.version), w.lease_token, EncodeMeta(s)});
  a.push_back(std::move(data));  // hundreds of KB: moved, not copied
  a.insert(a.end(), {s.state_is_initial ? "0" : "1", s.initial_key});
  a.push_back(std::move(initial_bytes));
  a.insert(a.end(), {has_initial_bytes ? "1" : "0", Millis(r.meta.last_used),
                     Millis(r.meta.ttl)});
  return absl::OkStatus();
}

absl::Status RedisSessionStore::BuildScript(
    const std::vector<StoreWrite>& writes, bool with_initials, Script* script) {
  script->args = {prefix_};
  for (const StoreWrite& w : writes) {
    const std::string& id = w.record.meta.id;
    switch (w.op) {
      case StoreWrite::Op::kPut:
        if (absl::Status s = AddPut(w, with_initials, script); !s.ok()) {
          return s;
        }
        break;
      case StoreWrite::Op::kTouch:
        script->args.insert(script->args.end(),
                            {"T", id, Millis(w.record.meta.last_used),
                             Millis(w.record.meta.ttl)});
        break;
      case StoreWrite::Op::kDelete:
        script->args.insert(script->args.end(), {"D", id});
        break;
    }
  }
  return absl::OkStatus();
}

absl::Status RedisSessionStore::ScriptResult(
    const absl::StatusOr<RedisReplyPtr>& reply, bool* missing_initial) const {
  *missing_initial = false;
  if (!reply.ok()) return reply.status();
  const std::string answer = Str(**reply);
  if ((*reply)->type != REDIS_REPLY_STRING) return BadReply(**reply, "a write");
  if (answer == "OK") return absl::OkStatus();
  const size_t space = answer.find(' ');
  const std::string word = answer.substr(0, space);
  const std::string id =
      space == std::string::npos ? "" : answer.substr(space + 1);
  if (word == "NOINITIAL") {
    *missing_initial = true;
    return absl::AbortedError("initial state missing");
  }
  if (word == "EXISTS") {
    return absl::AbortedError(absl::StrCat(What(id), " already exists"));
  }
  if (word == "GONE") {
    return absl::AbortedError(absl::StrCat(
        What(id), " no longer exists (deleted, or expired, meanwhile)"));
  }
  if (word == "CHANGED") {
    return absl::AbortedError(
        absl::StrCat(What(id),
                     " was changed meanwhile (by another replica); nothing "
                     "was written"));
  }
  if (word == "LEASED") {
    return absl::AbortedError(
        absl::StrCat(What(id),
                     ": its lease was lost to another replica; nothing was "
                     "written"));
  }
  return absl::InternalError(
      absl::StrCat("the session store answered a write with ", answer));
}

absl::Status RedisSessionStore::Retry(const std::vector<StoreWrite>& writes,
                                      bool with_initials,
                                      RedisConnection& conn) {
  Script script;
  if (absl::Status s = BuildScript(writes, with_initials, &script); !s.ok()) {
    return s;
  }
  bool missing = false;
  absl::Status result = ScriptResult(
      conn.Eval(RedisScript::kApply, Views(script.args)), &missing);
  if (missing && !with_initials) return Retry(writes, true, conn);
  if (result.ok()) RememberInitials(script.initial_keys);
  return result;
}

absl::Status RedisSessionStore::Pipeline(std::vector<Pending>& pending,
                                         std::vector<Script>& scripts,
                                         std::vector<absl::Status>& results) {
  absl::StatusOr<RedisConnection*> conn = WriterConnection();
  if (!conn.ok()) return conn.status();
  // Every script sent, then every answer read: one round trip.
  std::vector<absl::StatusOr<RedisReplyPtr>> replies;
  for (size_t i = 0; i < pending.size(); ++i) {
    if (results[i].ok()) {
      (*conn)->AppendEval(RedisScript::kApply, Views(scripts[i].args));
    }
  }
  for (size_t i = 0; i < pending.size(); ++i) {
    replies.push_back(results[i].ok() ? (*conn)->GetReply()
                                      : absl::StatusOr<RedisReplyPtr>());
  }
  // Then the scripts that need another try, one at a time: the server lost
  // the scripts (NOSCRIPT), or an initial state it was not sent (NOINITIAL).
  for (size_t i = 0; i < pending.size(); ++i) {
    if (!results[i].ok()) continue;
    bool missing = false;
    if (replies[i].ok() && RedisConnection::IsNoScript(**replies[i])) {
      results[i] = Retry(pending[i].writes, false, **conn);
      continue;
    }
    results[i] = ScriptResult(replies[i], &missing);
    if (missing) {
      results[i] = Retry(pending[i].writes, true, **conn);
    } else if (results[i].ok()) {
      RememberInitials(scripts[i].initial_keys);
    }
  }
  if ((*conn)->broken())
    LogError("session store: the connection to Redis broke");
  return absl::OkStatus();
}

void RedisSessionStore::RememberInitials(const std::vector<std::string>& keys) {
  // A cache (a NOINITIAL answer corrects it): bounded by forgetting all.
  if (stored_initials_.size() > 100000) stored_initials_.clear();
  stored_initials_.insert(keys.begin(), keys.end());
}

void RedisSessionStore::Commit(std::vector<Pending> pending) {
  const size_t n = pending.size();
  std::vector<Script> scripts(n);
  std::vector<absl::Status> results(n);
  for (size_t i = 0; i < n; ++i) {
    results[i] = BuildScript(pending[i].writes, false, &scripts[i]);
  }
  if (absl::Status s = Pipeline(pending, scripts, results); !s.ok()) {
    for (absl::Status& r : results) {
      if (r.ok()) r = s;
    }
  }
  int64_t bytes = 0;
  for (size_t i = 0; i < n; ++i) {
    if (results[i].ok()) bytes += scripts[i].bytes;
    for (const StoreWrite& w : pending[i].writes) {
      if (!w.lease_token.empty()) Forget(w.lease_token);
    }
  }
  {
    absl::MutexLock lock(&queue_mu_);
    ++stats_.groups;
    stats_.writes += static_cast<int64_t>(n);
    stats_.bytes += bytes;
  }
  for (size_t i = 0; i < n; ++i) pending[i].done(std::move(results[i]));
}

void RedisSessionStore::SendReleases(std::vector<Release> releases) {
  absl::StatusOr<RedisConnection*> conn = WriterConnection();
  if (!conn.ok()) return;  // the leases time out
  for (const Release& r : releases) {
    (*conn)->AppendEval(RedisScript::kRelease, {prefix_, r.id, r.token});
  }
  for (size_t i = 0; i < releases.size(); ++i) {
    if (!(*conn)->GetReply().ok()) return;
  }
}

void RedisSessionStore::RenewLeases() {
  std::vector<std::pair<std::string, std::string>> leases;
  {
    absl::MutexLock lock(&held_mu_);
    for (const auto& [token, held] : held_) {
      if (held.granted) leases.emplace_back(held.id, token);
    }
  }
  if (leases.empty()) return;
  const absl::Time now = absl::Now();
  absl::StatusOr<RedisConnection*> conn = WriterConnection();
  for (size_t start = 0; start < leases.size(); start += kRenewBatch) {
    const size_t end = std::min(leases.size(), start + kRenewBatch);
    std::vector<std::string> args = {prefix_, Millis(options_.lease_timeout),
                                     Millis(now)};
    for (size_t i = start; i < end; ++i) {
      args.push_back(leases[i].first);
      args.push_back(leases[i].second);
    }
    absl::StatusOr<RedisReplyPtr> reply =
        conn.ok() ? (*conn)->Eval(RedisScript::kRenew, Views(args))
                  : absl::StatusOr<RedisReplyPtr>(conn.status());
    const bool answered = reply.ok() && (*reply)->type == REDIS_REPLY_ARRAY &&
                          (*reply)->elements == end - start;
    absl::MutexLock lock(&held_mu_);
    for (size_t i = start; i < end; ++i) {
      auto it = held_.find(leases[i].second);
      if (it == held_.end()) continue;
      Held& held = it->second;
      const long long result =
          answered ? (*reply)->element[i - start]->integer : 1;
      if (answered && result == 1) held.renewed = now;
      // Not renewed for a whole lease timeout: it may be someone else's.
      const bool lost =
          result == 0 ||
          (!answered && now - held.renewed >= options_.lease_timeout);
      if (result == -1 || lost) {
        if (held.revoked != nullptr) {
          held.revoked->store(result == -1 ? Revocation::kDeleted
                                           : Revocation::kLost);
        }
        held_.erase(it);
      }
    }
  }
}

void RedisSessionStore::Prune() {
  absl::StatusOr<RedisConnection*> conn = WriterConnection();
  if (!conn.ok()) return;
  absl::StatusOr<RedisReplyPtr> r =
      (*conn)->Eval(RedisScript::kPrune,
                    {prefix_, Millis(absl::Now()), absl::StrCat(kPruneBatch)});
  if (r.ok() && (*r)->type == REDIS_REPLY_ERROR) {
    LogWarning(absl::StrCat("session store: pruning the index: ",
                            RedisConnection::ReplyError(**r)));
  }
}

}  // namespace rwkv::server
