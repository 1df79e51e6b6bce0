// RedisConnection: one blocking connection to a Redis server (hiredis), with
// the session store's Lua scripts loaded, and the redis://HOST:PORT[/DB]
// address it connects to. Commands can be sent one at a time (Command,
// Eval) or pipelined (Append* then GetReply once per command: one network
// round trip for many commands). Every call has the connection's timeout;
// an I/O error or timeout leaves the connection broken() (the caller drops
// it and connects again: that is how reconnection happens). Errors are
// UNAVAILABLE and name the address. Thread-compatible (one user at a time).
#ifndef RWKV_SERVER_SESSION_REDIS_CONNECTION_H_
#define RWKV_SERVER_SESSION_REDIS_CONNECTION_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "server/session/redis_scripts.h"

struct redisContext;
struct redisReply;

namespace rwkv::server {

// Where the Redis server is: redis://HOST:PORT[/DB].
struct RedisAddress {
  std::string host;
  int port = 6379;
  int db = 0;
  // As given (for messages).
  std::string url;
};

// INVALID_ARGUMENT naming what is wrong: the scheme, a missing host, a port
// outside 1-65535, a database outside 0-1000000.
absl::StatusOr<RedisAddress> ParseRedisUrl(absl::string_view url);

struct RedisReplyDeleter {
  void operator()(redisReply* reply) const;
};
using RedisReplyPtr = std::unique_ptr<redisReply, RedisReplyDeleter>;

class RedisConnection {
 public:
  // Connects, selects the database and loads the scripts. UNAVAILABLE if the
  // server cannot be reached within `timeout`.
  static absl::StatusOr<std::unique_ptr<RedisConnection>> Connect(
      const RedisAddress& address, absl::Duration timeout);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Sends one command and returns its reply (an error reply is a reply:
  // see ReplyError). UNAVAILABLE on I/O errors and timeouts.
  absl::StatusOr<RedisReplyPtr> Command(
      const std::vector<absl::string_view>& args);
  // EVALSHA of `script` with no keys and `args` as ARGV, loading the script
  // again if the server lost it (NOSCRIPT, e.g. after SCRIPT FLUSH).
  absl::StatusOr<RedisReplyPtr> Eval(
      RedisScript script, const std::vector<absl::string_view>& args);

  // Pipelining: queue commands, then read one reply per queued command, in
  // order. Replies to a queued EVALSHA may be NOSCRIPT errors (IsNoScript):
  // send those again with Eval.
  void Append(const std::vector<absl::string_view>& args);
  void AppendEval(RedisScript script,
                  const std::vector<absl::string_view>& args);
  absl::StatusOr<RedisReplyPtr> GetReply();

  bool broken() const { return broken_; }
  const RedisAddress& address() const { return address_; }

  // The error message of an error reply ("" if `reply` is no error).
  static std::string ReplyError(const redisReply& reply);
  static bool IsNoScript(const redisReply& reply);
  // The status code an error reply maps to: UNAVAILABLE for the transient
  // ones (LOADING, BUSY, MISCONF: cannot persist, ...), RESOURCE_EXHAUSTED
  // for OOM (maxmemory), else INTERNAL.
  static absl::StatusCode ErrorCode(absl::string_view error);

 private:
  RedisConnection(RedisAddress address, redisContext* context);
  absl::Status LoadScripts();
  // UNAVAILABLE naming the address and hiredis' error; marks broken.
  absl::Status IoError(absl::string_view doing);
  std::vector<absl::string_view> EvalArgs(
      RedisScript script, const std::vector<absl::string_view>& args) const;

  const RedisAddress address_;
  redisContext* const context_;
  std::vector<std::string> shas_;  // by RedisScript
  bool broken_ = false;
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_REDIS_CONNECTION_H_
