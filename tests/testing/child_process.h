// ChildProcess: a program a test starts as a child process (fork/exec, its
// stdout and stderr in a log file), stopped by pid (never by name), and the
// loopback port helpers such tests need. Used for redis-server and haproxy
// (rwkv-server children: server_process.h).
#ifndef RWKV_TESTS_TESTING_CHILD_PROCESS_H_
#define RWKV_TESTS_TESTING_CHILD_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace rwkv::testing {

class ChildProcess {
 public:
  // `argv[0]` is the program (searched on PATH); `env` adds NAME=VALUE
  // entries to the child's environment.
  ChildProcess(std::vector<std::string> argv, std::string log_path,
               std::vector<std::pair<std::string, std::string>> env = {});
  // SIGKILL if it still runs.
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  // Starts it (again, after it stopped; the log is truncated).
  absl::Status Start();
  // True while it runs (reaps it once it has exited).
  bool Running();
  // SIGKILL, then reaps it.
  void Kill();
  // SIGTERM and waits; the exit status (-1 if it did not run).
  int Stop();
  pid_t pid() const { return pid_; }
  std::string Log() const;

 private:
  std::vector<std::string> argv_;
  std::string log_path_;
  std::vector<std::pair<std::string, std::string>> env_;
  pid_t pid_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago.
int FreeLoopbackPort();
// Waits until 127.0.0.1:`port` accepts connections; fails early if `child`
// (optional) exits.
absl::Status WaitForPort(int port, absl::Duration timeout,
                         ChildProcess* child = nullptr);

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_CHILD_PROCESS_H_
