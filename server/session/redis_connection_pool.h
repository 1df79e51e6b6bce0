// RedisConnectionPool: connections to one Redis server for callers on many
// threads (the session layer's reads, lease requests). Each call borrows an
// idle connection or opens a new one; a connection that broke (I/O error,
// timeout, the server restarted) is dropped, so the next call connects
// again: reconnection is automatic and needs no restart. At most `max_idle`
// idle connections are kept. Thread-safe.
#ifndef RWKV_SERVER_SESSION_REDIS_CONNECTION_POOL_H_
#define RWKV_SERVER_SESSION_REDIS_CONNECTION_POOL_H_

#include <memory>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "server/session/redis_connection.h"

namespace rwkv::server {

class RedisConnectionPool {
 public:
  RedisConnectionPool(RedisAddress address, absl::Duration timeout,
                      int max_idle);

  // Runs `fn` on a connection and returns what it returns, or UNAVAILABLE if
  // no connection could be opened. If a reused idle connection breaks, `fn`
  // runs once more on a new one, so `fn` must be idempotent.
  absl::Status Run(absl::FunctionRef<absl::Status(RedisConnection&)> fn)
      ABSL_LOCKS_EXCLUDED(mu_);

  const RedisAddress& address() const { return address_; }

 private:
  const RedisAddress address_;
  const absl::Duration timeout_;
  const int max_idle_;

  absl::Mutex mu_;
  std::vector<std::unique_ptr<RedisConnection>> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace rwkv::server

#endif  // RWKV_SERVER_SESSION_REDIS_CONNECTION_POOL_H_
