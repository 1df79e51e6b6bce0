#include "server/session/redis_connection.h"

#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace rwkv::server {

absl::StatusOr<RedisAddress> ParseRedisUrl(absl::string_view url) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad Redis address '", url.substr(0, 200), "': ", why,
                     " (expected redis://HOST:PORT[/DB])"));
  };
  constexpr absl::string_view kScheme = "redis://";
  if (!absl::StartsWith(url, kScheme))
    return bad("it must start with redis://");
  RedisAddress a;
  a.url = std::string(url);
  absl::string_view rest = url.substr(kScheme.size());
  absl::string_view db;
  if (const size_t slash = rest.find('/'); slash != absl::string_view::npos) {
    db = rest.substr(slash + 1);
    rest = rest.substr(0, slash);
    if (!absl::SimpleAtoi(db, &a.db) || a.db < 0 || a.db > 1000000) {
      return bad("the database must be a number in [0, 1000000]");
    }
  }
  const size_t colon = rest.rfind(':');
  if (colon != absl::string_view::npos) {
    if (!absl::SimpleAtoi(rest.substr(colon + 1), &a.port) || a.port < 1 ||
        a.port > 65535) {
      return bad("the port must be a number in [1, 65535]");
    }
    rest = rest.substr(0, colon);
  }
  if (rest.empty()) return bad("no host");
  a.host = std::string(rest);
  return a;
}

void RedisReplyDeleter::operator()(redisReply* reply) const {
  freeReplyObject(reply);
}

absl::StatusOr<std::unique_ptr<RedisConnection>> RedisConnection::Connect(
    const RedisAddress& address, absl::Duration timeout) {
  redisContext* c = redisConnectWithTimeout(address.host.c_str(), address.port,
                                            absl::ToTimeval(timeout));
  if (c == nullptr || c->err != 0) {
    const std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisFree(c);
    return absl::UnavailableError(absl::StrCat(
        "the session store ", address.url, " is unreachable: ", why));
  }
  redisSetTimeout(c, absl::ToTimeval(timeout));
  redisEnableKeepAlive(c);
  std::unique_ptr<RedisConnection> conn(new RedisConnection(address, c));
  if (address.db != 0) {
    const std::string db = absl::StrCat(address.db);
    absl::StatusOr<RedisReplyPtr> r = conn->Command({"SELECT", db});
    if (!r.ok()) return r.status();
    if (std::string e = ReplyError(**r); !e.empty()) {
      return absl::Status(ErrorCode(e),
                          absl::StrCat("the session store ", address.url,
                                       ": SELECT ", db, ": ", e));
    }
  }
  if (absl::Status s = conn->LoadScripts(); !s.ok()) return s;
  return conn;
}

RedisConnection::RedisConnection(RedisAddress address, redisContext* context)
    : address_(std::move(address)),
      context_(context),
      shas_(kRedisScriptCount) {}

RedisConnection::~RedisConnection() { redisFree(context_); }

absl::Status RedisConnection::LoadScripts() {
  for (int i = 0; i < kRedisScriptCount; ++i) {
    const auto script = static_cast<RedisScript>(i);
    absl::StatusOr<RedisReplyPtr> r =
        Command({"SCRIPT", "LOAD", RedisScriptSource(script)});
    if (!r.ok()) return r.status();
    if ((*r)->type != REDIS_REPLY_STRING) {
      const std::string e = ReplyError(**r);
      return absl::Status(ErrorCode(e),
                          absl::StrCat("the session store ", address_.url,
                                       " refused the script ",
                                       RedisScriptName(script), ": ", e));
    }
    shas_[i].assign((*r)->str, (*r)->len);
  }
  return absl::OkStatus();
}

absl::Status RedisConnection::IoError(absl::string_view doing) {
  broken_ = true;
  return absl::UnavailableError(absl::StrCat(
      "the session store ", address_.url, " is unreachable (", doing, ": ",
      context_->err != 0 ? context_->errstr : "connection lost", ")"));
}

absl::StatusOr<RedisReplyPtr> RedisConnection::Command(
    const std::vector<absl::string_view>& args) {
  Append(args);
  return GetReply();
}

void RedisConnection::Append(const std::vector<absl::string_view>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  argv.reserve(args.size());
  lens.reserve(args.size());
  for (absl::string_view a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()),
                             argv.data(), lens.data()) != REDIS_OK) {
    broken_ = true;  // GetReply reports it
  }
}

std::vector<absl::string_view> RedisConnection::EvalArgs(
    RedisScript script, const std::vector<absl::string_view>& args) const {
  std::vector<absl::string_view> full = {"EVALSHA",
                                         shas_[static_cast<int>(script)], "0"};
  full.insert(full.end(), args.begin(), args.end());
  return full;
}

void RedisConnection::AppendEval(RedisScript script,
                                 const std::vector<absl::string_view>& args) {
  Append(EvalArgs(script, args));
}

absl::StatusOr<RedisReplyPtr> RedisConnection::Eval(
    RedisScript script, const std::vector<absl::string_view>& args) {
  absl::StatusOr<RedisReplyPtr> r = Command(EvalArgs(script, args));
  if (r.ok() && IsNoScript(**r)) {
    if (absl::Status s = LoadScripts(); !s.ok()) return s;
    r = Command(EvalArgs(script, args));
  }
  return r;
}

absl::StatusOr<RedisReplyPtr> RedisConnection::GetReply() {
  if (broken_) return IoError("sending");
  void* raw = nullptr;
  if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) {
    return IoError("waiting for the reply");
  }
  return RedisReplyPtr(static_cast<redisReply*>(raw));
}

std::string RedisConnection::ReplyError(const redisReply& reply) {
  if (reply.type != REDIS_REPLY_ERROR) return "";
  return std::string(reply.str, reply.len);
}

absl::StatusCode RedisConnection::ErrorCode(absl::string_view error) {
  // Redis is loading its data, busy with a script, a replica without its
  // primary, or cannot persist (a full disk under the AOF): try again later.
  for (absl::string_view transient :
       {"LOADING", "BUSY", "MASTERDOWN", "TRYAGAIN", "CLUSTERDOWN",
        "NOREPLICAS", "READONLY", "MISCONF"}) {
    if (absl::StartsWith(error, transient))
      return absl::StatusCode::kUnavailable;
  }
  if (absl::StartsWith(error, "OOM")) {
    return absl::StatusCode::kResourceExhausted;  // maxmemory reached
  }
  return absl::StatusCode::kInternal;
}

bool RedisConnection::IsNoScript(const redisReply& reply) {
  return reply.type == REDIS_REPLY_ERROR &&
         absl::StartsWith(absl::string_view(reply.str, reply.len), "NOSCRIPT");
}

}  // namespace rwkv::server
