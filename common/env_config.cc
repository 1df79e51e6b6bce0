#include "common/env_config.h"

#include <cctype>
#include <cstdlib>
#include <memory>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"

namespace rwkv::common {
namespace {

bool EnvSet(const std::string& name) {
  const char* value = name.empty() ? nullptr : std::getenv(name.c_str());
  return value != nullptr && *value != '\0';
}

// CLI11's TOML/INI reader, checked against the app's flags, minus the keys
// whose environment variable is set (see the header for why).
class EnvFirstConfig final : public CLI::ConfigTOML {
 public:
  explicit EnvFirstConfig(const CLI::App* app) : app_(app) {}

  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    std::vector<CLI::ConfigItem> items = CLI::ConfigTOML::from_config(input);
    std::vector<CLI::ConfigItem> kept;
    for (CLI::ConfigItem& item : items) {
      if (!item.parents.empty()) {
        throw CLI::ConfigError(absl::StrCat(
            FileName(), ": unknown section [", item.parents.front(),
            "] (keys go at the top level, e.g. max-batch = 64)"));
      }
      const CLI::Option* opt = Lookup(&item.name);
      if (opt == nullptr) {
        throw CLI::ConfigError(absl::StrCat(
            FileName(), ": unknown key '", item.name,
            "' (keys are the flag names without --, e.g. max-batch = 64)"));
      }
      if (EnvSet(opt->get_envname())) continue;  // the environment wins
      kept.push_back(std::move(item));
    }
    return kept;
  }

 private:
  // The flag a key names ("max-batch" or "max_batch"); the key is rewritten
  // to the flag's name. Null for unknown keys, --help and --config.
  const CLI::Option* Lookup(std::string* key) const {
    for (const std::string& name :
         {*key, absl::StrReplaceAll(*key, {{"_", "-"}})}) {
      const CLI::Option* opt = app_->get_option_no_throw("--" + name);
      if (opt == nullptr) continue;
      if (opt == app_->get_help_ptr() || opt == app_->get_config_ptr()) {
        return nullptr;
      }
      *key = name;
      return opt;
    }
    return nullptr;
  }

  std::string FileName() const {
    const CLI::Option* config = app_->get_config_ptr();
    if (config == nullptr) return "config file";
    if (!config->results().empty()) {
      return absl::StrCat("config file ", config->results().front());
    }
    return absl::StrCat("config file ", config->get_default_str());
  }

  const CLI::App* app_;
};

}  // namespace

std::string EnvVarName(absl::string_view prefix, absl::string_view flag_name) {
  std::string name(prefix);
  for (char c : flag_name) {
    name +=
        c == '-'
            ? '_'
            : static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  return name;
}

void AddEnvAndConfig(CLI::App& app, absl::string_view env_prefix) {
  for (CLI::Option* opt : app.get_options()) {
    if (opt == app.get_help_ptr() || opt->get_lnames().empty()) continue;
    if (opt->get_envname().empty()) {
      opt->envname(EnvVarName(env_prefix, opt->get_lnames().front()));
    }
  }
  const std::string config_env = EnvVarName(env_prefix, "config");
  CLI::Option* config = app.set_config(
      "--config", "",
      absl::StrCat("TOML or INI file of flag = value lines (max-batch = 64; "
                   "lists as arrays: initial-state = [\"a=a.pth\"])"));
  config->type_name("FILE")->envname(config_env);
  if (const char* file = std::getenv(config_env.c_str()); file && *file) {
    // Read like --config FILE: a missing file is an error, not skipped.
    config->default_str(file)->required();
  }
  app.config_formatter(std::make_shared<EnvFirstConfig>(&app));
  app.allow_config_extras(CLI::config_extras_mode::error);
  std::string footer = app.get_footer();
  if (!footer.empty()) footer += "\n\n";
  absl::StrAppend(
      &footer,
      "Every flag can also be set by the environment variable shown with it "
      "(Env:...) or in the --config file. Precedence: command line, then "
      "environment, then config file, then the default (shown after '=').");
  app.footer(footer);
}

}  // namespace rwkv::common
