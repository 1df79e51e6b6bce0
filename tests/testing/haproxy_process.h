// HaproxyProcess: a real haproxy child for tests, running the project's
// docker/haproxy.cfg with its "servers" block (between "# BEGIN servers" and
// "# END servers") replaced by the given loopback backends and its frontend
// on a free loopback port (RWKV_LB_BIND); `balance` (optional) sets
// RWKV_LB_BALANCE. Stopped by pid.
#ifndef RWKV_TESTS_TESTING_HAPROXY_PROCESS_H_
#define RWKV_TESTS_TESTING_HAPROXY_PROCESS_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "tests/testing/child_process.h"

namespace rwkv::testing {

class HaproxyProcess {
 public:
  // `config` is docker/haproxy.cfg; `dir` gets the generated config and the
  // log; `backends` are host:port addresses of the replicas.
  HaproxyProcess(std::string config, std::string dir,
                 std::vector<std::string> backends, std::string balance = "");

  static bool Available();

  absl::Status Start();
  void Kill() { child_->Kill(); }
  // "127.0.0.1:PORT"
  std::string address() const;
  std::string Log() const { return child_->Log(); }

 private:
  std::string config_;
  std::string dir_;
  std::vector<std::string> backends_;
  std::string balance_;
  int port_ = -1;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_HAPROXY_PROCESS_H_
