#include "common/cli_parse.h"

#include <cctype>
#include <cstdlib>
#include <iostream>
#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace rwkv::common {
namespace {

constexpr char kBadValuePayload[] = "rwkv/cli-bad-value";

// The first "--name" in `message` (CLI11 puts it first or after "Could not
// convert: ").
std::string FirstFlag(absl::string_view message) {
  const size_t start = message.find("--");
  if (start == absl::string_view::npos) return "";
  size_t end = start + 2;
  while (end < message.size() &&
         (std::isalnum(static_cast<unsigned char>(message[end])) ||
          message[end] == '-' || message[end] == '_')) {
    ++end;
  }
  return std::string(message.substr(start, end - start));
}

bool OnCommandLine(absl::string_view flag, int argc, const char* const* argv) {
  for (int i = 1; i < argc; ++i) {
    const absl::string_view arg = argv[i];
    if (arg == flag || absl::StartsWith(arg, absl::StrCat(flag, "="))) {
      return true;
    }
  }
  return false;
}

// " (from RWKV_X)" / " (from the config file)" when the failing flag's value
// did not come from the command line.
std::string Origin(const CLI::App& app, const std::string& flag, int argc,
                   const char* const* argv) {
  if (flag.empty() || OnCommandLine(flag, argc, argv)) return "";
  const CLI::Option* opt = app.get_option_no_throw(flag);
  if (opt == nullptr) return "";
  const std::string env = opt->get_envname();
  if (!env.empty()) {
    const char* value = std::getenv(env.c_str());
    if (value != nullptr && *value != '\0')
      return absl::StrCat(" (from ", env, ")");
  }
  const CLI::Option* config = app.get_config_ptr();
  if (config != nullptr && (config->count() > 0)) {
    return " (from the config file)";
  }
  return "";
}

// "rwkv-cli state blend": the app and the subcommands parsed so far.
std::string CommandPath(const CLI::App& app) {
  std::string path = app.get_name();
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) {
    at = at->get_subcommands().front();
    absl::StrAppend(&path, " ", at->get_name());
  }
  return path;
}

}  // namespace

absl::StatusOr<CliAction> ParseArgs(CLI::App& app, int argc,
                                    const char* const* argv) {
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp&) {
    return CliAction::kShowHelp;
  } catch (const CLI::CallForAllHelp&) {
    return CliAction::kShowHelp;
  } catch (const CLI::ParseError& e) {
    std::string message = e.what();
    const bool bad_value = dynamic_cast<const CLI::ValidationError*>(&e) ||
                           dynamic_cast<const CLI::ConversionError*>(&e);
    if (bad_value) {
      // "--flag: must be ..." -> "--flag must be ..."
      if (size_t at = message.find(": must "); at != std::string::npos) {
        message.erase(at, 1);
      }
      message += Origin(app, FirstFlag(message), argc, argv);
    } else if (dynamic_cast<const CLI::FileError*>(&e)) {
      message = absl::StrCat("--config: ", message,
                             Origin(app, "--config", argc, argv));
    } else if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) &&
               absl::StrContains(message, "At Most 1 required")) {
      message = absl::StrCat(FirstFlag(message), " given more than once");
    }
    absl::Status status = absl::InvalidArgumentError(message);
    if (bad_value) status.SetPayload(kBadValuePayload, absl::Cord("1"));
    return status;
  }
  return CliAction::kRun;
}

bool IsBadFlagValue(const absl::Status& status) {
  return status.GetPayload(kBadValuePayload).has_value();
}

std::optional<int> HandleCommandLine(CLI::App& app, int argc,
                                     const char* const* argv,
                                     const CliExitCodes& codes) {
  absl::StatusOr<CliAction> action = ParseArgs(app, argc, argv);
  if (!action.ok()) {
    std::cerr << app.get_name() << ": " << action.status().message() << "\n"
              << "Run '" << CommandPath(app) << " --help' for the flags.\n";
    return IsBadFlagValue(action.status()) ? codes.bad_value : codes.usage;
  }
  if (*action == CliAction::kShowHelp) {
    std::cout << app.help();
    return 0;
  }
  return std::nullopt;
}

}  // namespace rwkv::common
