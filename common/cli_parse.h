// Running a CLI11 command line the way every program here does: --help
// prints the help (with each flag's default) to stdout and exits 0; a usage
// error prints one line naming the flag to stderr and exits 2.
//
// Messages: CLI11's own ("The following argument was not expected: --bogus",
// "--max-tokens is required") and those of common/cli_validators.h, printed
// as "--max-batch must be an integer in [1, 4096], got '0'". A value that
// came from an environment variable or the config file (common/env_config.h)
// says so: "... (from RWKV_MAX_BATCH)".
#ifndef RWKV_COMMON_CLI_PARSE_H_
#define RWKV_COMMON_CLI_PARSE_H_

#include <optional>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace rwkv::common {

enum class CliAction { kRun, kShowHelp };

// Parses argv[1..argc) with `app`. Errors are INVALID_ARGUMENT with the
// message above; IsBadFlagValue tells a value that failed its check or
// conversion from a malformed command line (unknown flag, missing value,
// wrong arguments).
absl::StatusOr<CliAction> ParseArgs(CLI::App& app, int argc,
                                    const char* const* argv);
bool IsBadFlagValue(const absl::Status& status);

struct CliExitCodes {
  int usage = 2;
  // rwkv-cli keeps its documented 1 here ("errors exit 1, command-line
  // mistakes 2"); the other programs use 2.
  int bad_value = 2;
};

// For main(): std::nullopt when the program should run; otherwise the exit
// code after printing the help (stdout) or "<app name>: <message>" and a
// hint (stderr).
std::optional<int> HandleCommandLine(CLI::App& app, int argc,
                                     const char* const* argv,
                                     const CliExitCodes& codes = {});

}  // namespace rwkv::common

#endif  // RWKV_COMMON_CLI_PARSE_H_
