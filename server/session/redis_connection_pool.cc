#include "server/session/redis_connection_pool.h"

#include <utility>

namespace rwkv::server {

RedisConnectionPool::RedisConnectionPool(RedisAddress address,
                                         absl::Duration timeout, int max_idle)
    : address_(std::move(address)), timeout_(timeout), max_idle_(max_idle) {}

absl::Status RedisConnectionPool::Run(
    absl::FunctionRef<absl::Status(RedisConnection&)> fn) {
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<RedisConnection> conn;
    if (attempt == 0) {
      absl::MutexLock lock(&mu_);
      if (!idle_.empty()) {
        conn = std::move(idle_.back());
        idle_.pop_back();
      }
    }
    const bool reused = conn != nullptr;
    if (conn == nullptr) {
      absl::StatusOr<std::unique_ptr<RedisConnection>> opened =
          RedisConnection::Connect(address_, timeout_);
      if (!opened.ok()) return opened.status();
      conn = *std::move(opened);
    }
    absl::Status result = fn(*conn);
    if (!conn->broken()) {
      absl::MutexLock lock(&mu_);
      if (static_cast<int>(idle_.size()) < max_idle_) {
        idle_.push_back(std::move(conn));
      }
      return result;
    }
    // An idle connection may have died with its server (a restart): try
    // once more on a new one. Every operation run here is idempotent.
    if (!reused) return result;
  }
}

}  // namespace rwkv::server
