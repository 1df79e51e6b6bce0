// RedisProcess: a real redis-server child for tests, on a free loopback port,
// with its data (the append-only file) in a directory of the test's:
// appendonly yes, appendfsync always (every acknowledged write is on disk),
// maxmemory-policy noeviction, no RDB snapshots. Kill() is kill -9; Start()
// after it restarts Redis on the same port and data, as a crash and
// recovery. Skips are the caller's: Available() says whether redis-server is
// installed.
#ifndef RWKV_TESTS_TESTING_REDIS_PROCESS_H_
#define RWKV_TESTS_TESTING_REDIS_PROCESS_H_

#include <sys/types.h>

#include <memory>
#include <string>

#include "absl/status/status.h"
#include "tests/testing/child_process.h"

namespace rwkv::testing {

class RedisProcess {
 public:
  // `dir` holds the data and the log.
  explicit RedisProcess(std::string dir);

  static bool Available();

  // Starts it (the first time on a new free port, later on the same one)
  // and waits until it accepts connections and has loaded its data.
  absl::Status Start();
  void Kill() { child_->Kill(); }
  int Stop() { return child_->Stop(); }
  bool Running() { return child_->Running(); }
  int port() const { return port_; }
  // redis://127.0.0.1:PORT
  std::string url() const;
  std::string Log() const { return child_->Log(); }

 private:
  std::string dir_;
  int port_ = -1;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_REDIS_PROCESS_H_
