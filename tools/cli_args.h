// CliArgs: a small `--name value` / `--name=value` / `--flag` parser for the
// command-line tools (Abseil flags cannot spell names like --max-tokens).
// Every flag must be declared; unknown or repeated flags and missing values
// are errors that name the flag.
#ifndef RWKV_TOOLS_CLI_ARGS_H_
#define RWKV_TOOLS_CLI_ARGS_H_

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rwkv::tools {

class CliArgs {
 public:
  // value_flags take a value; bool_flags do not.
  CliArgs(std::set<std::string> value_flags, std::set<std::string> bool_flags);

  // Parses argv[first..argc). Non-flag words are collected as positionals.
  absl::Status Parse(int argc, char** argv, int first);

  bool Has(const std::string& name) const;
  std::optional<std::string> Get(const std::string& name) const;
  std::string GetOr(const std::string& name, const std::string& fallback) const;
  absl::StatusOr<int64_t> GetInt(const std::string& name,
                                 int64_t fallback) const;
  absl::StatusOr<double> GetDouble(const std::string& name,
                                   double fallback) const;
  const std::vector<std::string>& positionals() const { return positionals_; }

 private:
  std::set<std::string> value_flags_;
  std::set<std::string> bool_flags_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positionals_;
};

// Parses "1,2,3" (spaces allowed) into ids; an error names the bad item.
absl::StatusOr<std::vector<int32_t>> ParseIdList(const std::string& text);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_CLI_ARGS_H_
