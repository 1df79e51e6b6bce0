#include "tests/testing/haproxy_process.h"

#include <unistd.h>

#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/str_cat.h"

namespace rwkv::testing {

HaproxyProcess::HaproxyProcess(std::string config, std::string dir,
                               std::vector<std::string> backends,
                               std::string balance)
    : config_(std::move(config)),
      dir_(std::move(dir)),
      backends_(std::move(backends)),
      balance_(std::move(balance)) {}

bool HaproxyProcess::Available() {
  return access("/usr/sbin/haproxy", X_OK) == 0 ||
         access("/usr/local/sbin/haproxy", X_OK) == 0;
}

std::string HaproxyProcess::address() const {
  return absl::StrCat("127.0.0.1:", port_);
}

absl::Status HaproxyProcess::Start() {
  std::ifstream in(config_);
  if (!in) return absl::NotFoundError("cannot read " + config_);
  std::stringstream out;
  std::string line;
  bool in_servers = false;
  while (std::getline(in, line)) {
    if (line.find("# END servers") != std::string::npos) in_servers = false;
    if (in_servers) continue;
    out << line << "\n";
    if (line.find("# BEGIN servers") != std::string::npos) {
      in_servers = true;
      for (size_t i = 0; i < backends_.size(); ++i) {
        out << "    server replica" << i + 1 << " " << backends_[i] << "\n";
      }
    }
  }
  const std::string generated = dir_ + "/haproxy.cfg";
  std::ofstream(generated) << out.str();
  port_ = FreeLoopbackPort();
  std::vector<std::pair<std::string, std::string>> env = {
      {"RWKV_LB_BIND", address()}};
  if (!balance_.empty()) env.emplace_back("RWKV_LB_BALANCE", balance_);
  child_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{"haproxy", "-db", "-f", generated},
      dir_ + "/haproxy.log", std::move(env));
  if (absl::Status s = child_->Start(); !s.ok()) return s;
  return WaitForPort(port_, absl::Seconds(20), child_.get());
}

}  // namespace rwkv::testing
