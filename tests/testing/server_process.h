// ServerProcess: an rwkv-server started as a child process for tests that
// must kill, restart or share it: it listens on a free loopback port (the
// address is read from its startup log line) and is stopped by pid. Its log
// goes to a file the test can show on failure.
#ifndef RWKV_TESTS_TESTING_SERVER_PROCESS_H_
#define RWKV_TESTS_TESTING_SERVER_PROCESS_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace rwkv::testing {

class ServerProcess {
 public:
  // `binary` is rwkv-server; `args` are its flags except --listen.
  ServerProcess(std::string binary, std::vector<std::string> args,
                std::string log_path);
  // Kills the child (SIGKILL) if it still runs.
  ~ServerProcess();
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Starts it and waits until it logs its address (or exits, or `timeout`).
  absl::Status Start(absl::Duration timeout = absl::Seconds(60));
  // SIGKILL, then reaps it.
  void Kill();
  // SIGTERM and waits; returns the exit status (-1 if it did not run).
  int Stop();
  // "127.0.0.1:PORT" once started.
  const std::string& address() const { return address_; }
  pid_t pid() const { return pid_; }
  std::string Log() const;

 private:
  std::string binary_;
  std::vector<std::string> args_;
  std::string log_path_;
  pid_t pid_ = -1;
  std::string address_;
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_SERVER_PROCESS_H_
