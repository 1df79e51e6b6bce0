// The model-free state commands of rwkv-cli (`rwkv-cli state <sub> ...`):
// inspect, blend, decay, distance and convert over saved state files, plus
// the usage-error convention shared with rwkv_cli.cc (exit code 2).
#ifndef RWKV_TOOLS_STATE_COMMANDS_H_
#define RWKV_TOOLS_STATE_COMMANDS_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"

namespace rwkv::tools {

// A command-line shape error (unknown flag or command, missing or surplus
// arguments): rwkv-cli exits with 2 for these, 1 for every other error.
absl::Status UsageError(const std::string& message);
bool IsUsageError(const absl::Status& status);

// Usage text of `rwkv-cli state`.
extern const char kStateUsage[];

// Runs `rwkv-cli state <sub> ...`; argv[first] is the subcommand.
absl::Status RunStateCommand(int argc, char** argv, int first);

// A failed SaveStateFile(path, ...) as a message that names the file once.
std::string WriteError(const std::string& path, const absl::Status& status);

// "12.3 KiB (12582 bytes)"-style rendering for humans.
std::string HumanBytes(int64_t bytes);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_STATE_COMMANDS_H_
