#include "tests/testing/redis_process.h"

#include <unistd.h>

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace rwkv::testing {

RedisProcess::RedisProcess(std::string dir) : dir_(std::move(dir)) {}

bool RedisProcess::Available() {
  return access("/usr/bin/redis-server", X_OK) == 0 ||
         access("/usr/local/bin/redis-server", X_OK) == 0;
}

std::string RedisProcess::url() const {
  return absl::StrCat("redis://127.0.0.1:", port_);
}

absl::Status RedisProcess::Start() {
  if (port_ < 0) port_ = FreeLoopbackPort();
  std::vector<std::string> argv = {"redis-server",
                                   "--port",
                                   absl::StrCat(port_),
                                   "--bind",
                                   "127.0.0.1",
                                   "--dir",
                                   dir_,
                                   "--appendonly",
                                   "yes",
                                   "--appendfsync",
                                   "always",
                                   "--save",
                                   "",
                                   "--maxmemory-policy",
                                   "noeviction",
                                   "--daemonize",
                                   "no",
                                   "--logfile",
                                   ""};
  child_ = std::make_unique<ChildProcess>(std::move(argv), dir_ + "/redis.log");
  if (absl::Status s = child_->Start(); !s.ok()) return s;
  if (absl::Status s = WaitForPort(port_, absl::Seconds(20), child_.get());
      !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(s.message(), "\n", Log()));
  }
  // Redis accepts connections while it loads the AOF (answering LOADING):
  // wait for its log line.
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (absl::Now() < give_up) {
    if (absl::StrContains(Log(), "Ready to accept connections")) {
      return absl::OkStatus();
    }
    absl::SleepFor(absl::Milliseconds(10));
  }
  return absl::DeadlineExceededError("redis-server did not get ready:\n" +
                                     Log());
}

}  // namespace rwkv::testing
