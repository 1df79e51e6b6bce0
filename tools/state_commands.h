// The model-free state commands of rwkv-cli (`rwkv-cli state <sub> ...`):
// inspect, blend, decay, distance and convert over saved state files (their
// CLI11 subcommands and flags), plus the usage-error convention shared with
// rwkv_cli.cc (exit code 2). Compiled into the rwkv-cli program only.
#ifndef RWKV_TOOLS_STATE_COMMANDS_H_
#define RWKV_TOOLS_STATE_COMMANDS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"

namespace rwkv::tools {

// A command-line shape error (unknown flag or command, missing or surplus
// arguments): rwkv-cli exits with 2 for these, 1 for every other error.
absl::Status UsageError(const std::string& message);
bool IsUsageError(const absl::Status& status);

// What the state commands' flags set (each command binds the fields it
// reads); the member initializers are the defaults --help shows.
struct StateFlags {
  // The FILE / A B arguments.
  std::vector<std::string> files;
  // blend: alpha * A + (1 - alpha) * B (--alpha is required).
  double alpha = 0;
  // decay: accumulators * factor (--factor is required).
  double factor = 1;
  // Output file (blend, decay; convert: default FILE as NAME.<dtype>.pt).
  std::string out;
  // Stored dtype of blend/decay outputs.
  std::string state_dtype = "fp32";
  // convert's target dtype.
  std::string dtype;
  bool json = false;
};

// Adds `state` and its subcommands to `app`, bound to `flags` (which must
// outlive the parse); returns `state`.
CLI::App* AddStateCommands(CLI::App& app, StateFlags* flags);

// Runs the state command parsed into `state` (AddStateCommands' result).
absl::Status RunStateCommand(const CLI::App& state, const StateFlags& flags);

// A failed SaveStateFile(path, ...) as a message that names the file once.
std::string WriteError(const std::string& path, const absl::Status& status);

// "12.3 KiB (12582 bytes)"-style rendering for humans.
std::string HumanBytes(int64_t bytes);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_STATE_COMMANDS_H_
