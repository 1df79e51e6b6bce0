// common/cli_validators.h, cli_parse.h, env_config.h and id_list.h: what the
// programs' command lines are built from, on a small CLI11 app.
#include "CLI/CLI.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "common/cli_parse.h"
#include "common/cli_validators.h"
#include "common/env_config.h"
#include "common/id_list.h"
#include "gtest/gtest.h"

namespace rwkv::common {
namespace {

// A program with three flags, like rwkv-server's.
struct Settings {
  int max_batch = 32;
  int chunk_size = 32;
  int64_t ttl = 3600;
  double top_p = 1.0;
  std::string name = "a\nb";
};

void AddFlags(CLI::App& app, Settings* s) {
  app.add_option("--max-batch", s->max_batch, "")
      ->transform(IntIn(1, 4096))
      ->capture_default_str();
  app.add_option("--chunk-size", s->chunk_size, "")
      ->transform(IntIn(1, 1024))
      ->capture_default_str();
  app.add_option("--ttl", s->ttl, "")
      ->transform(IntIn(1, 86400))
      ->capture_default_str();
  app.add_option("--top-p", s->top_p, "")->check(NumberAboveUpTo(0, 1));
  app.add_option("--name", s->name, "")
      ->transform(UnescapeNewlines())
      ->default_str(EscapeNewlines(s->name));
}

absl::StatusOr<CliAction> Parse(CLI::App& app, std::vector<std::string> words) {
  words.insert(words.begin(), "prog");
  std::vector<const char*> argv;
  for (const std::string& w : words) argv.push_back(w.c_str());
  return ParseArgs(app, static_cast<int>(argv.size()), argv.data());
}

// Sets an environment variable for the life of the object.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    setenv(name, value, 1);
  }
  ~ScopedEnv() { unsetenv(name_); }

 private:
  const char* name_;
};

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

TEST(CliValidatorsTest, IntegersAreDecimalAndInRange) {
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  ASSERT_TRUE(Parse(app, {"--max-batch", "010"}).ok());
  EXPECT_EQ(s.max_batch, 10);  // CLI11 alone reads 010 as octal 8
  for (const char* bad : {"0x10", "1e3", "0", "4097", "", "1.5"}) {
    Settings t;
    CLI::App other("", "prog");
    AddFlags(other, &t);
    absl::StatusOr<CliAction> r = Parse(other, {"--max-batch", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(
        r.status().message(),
        std::string("--max-batch must be an integer in [1, 4096], got '") +
            bad + "'");
    EXPECT_TRUE(IsBadFlagValue(r.status()));
  }
}

TEST(CliValidatorsTest, Uint64TakesTheWholeRange) {
  uint64_t seed = 0;
  CLI::App app("", "prog");
  app.add_option("--seed", seed, "")->transform(Uint64());
  ASSERT_TRUE(Parse(app, {"--seed", "18446744073709551615"}).ok());
  EXPECT_EQ(seed, 18446744073709551615u);
  for (const char* bad : {"-1", "18446744073709551616", "0x1", "1.0"}) {
    uint64_t s = 0;
    CLI::App other("", "prog");
    other.add_option("--seed", s, "")->transform(Uint64());
    absl::StatusOr<CliAction> r = Parse(other, {"--seed", bad});
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().message(),
              std::string("--seed must be an integer in [0, "
                          "18446744073709551615], got '") +
                  bad + "'");
  }
}

TEST(CliValidatorsTest, NumbersAreFiniteAndInRange) {
  for (const auto& [value, message] :
       std::vector<std::pair<std::string, std::string>>{
           {"nan", "--top-p must be a finite number, got 'nan'"},
           {"inf", "--top-p must be a finite number, got 'inf'"},
           {"0", "--top-p must be in (0, 1], got '0'"},
           {"1.01", "--top-p must be in (0, 1], got '1.01'"}}) {
    Settings s;
    CLI::App app("", "prog");
    AddFlags(app, &s);
    absl::StatusOr<CliAction> r = Parse(app, {"--top-p", value});
    ASSERT_FALSE(r.ok()) << value;
    EXPECT_EQ(r.status().message(), message);
  }
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  ASSERT_TRUE(Parse(app, {"--top-p=0.25"}).ok());
  EXPECT_DOUBLE_EQ(s.top_p, 0.25);
}

TEST(CliValidatorsTest, ByteSizeOneOfNonEmptyNewlines) {
  int64_t bytes = 0;
  std::string format = "text", server = "x";
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  app.add_option("--bytes", bytes, "")->transform(ByteSize());
  app.add_option("--format", format, "")->check(OneOf({"text", "json"}));
  app.add_option("--server", server, "")->check(NonEmpty());
  ASSERT_TRUE(Parse(app, {"--bytes", "512M", "--format", "json", "--name",
                          "User: {message}\\n\\nA:"})
                  .ok());
  EXPECT_EQ(bytes, int64_t{512} << 20);
  EXPECT_EQ(format, "json");
  EXPECT_EQ(s.name, "User: {message}\n\nA:");
  EXPECT_EQ(EscapeNewlines(s.name), "User: {message}\\n\\nA:");

  CLI::App bad("", "prog");
  bad.add_option("--bytes", bytes, "")->transform(ByteSize());
  bad.add_option("--format", format, "")->check(OneOf({"text", "json"}));
  bad.add_option("--server", server, "")->check(NonEmpty());
  EXPECT_EQ(Parse(bad, {"--bytes", "1T"}).status().message(),
            "--bytes must be a byte count like 512M, got '1T'");
  EXPECT_EQ(Parse(bad, {"--format", "xml"}).status().message(),
            "--format must be one of text|json, got 'xml'");
  EXPECT_EQ(Parse(bad, {"--server", ""}).status().message(),
            "--server must not be empty");
}

TEST(CliParseTest, UsageErrorsAndHelp) {
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  absl::StatusOr<CliAction> r = Parse(app, {"--bogus"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--bogus"), absl::string_view::npos);
  EXPECT_FALSE(IsBadFlagValue(r.status()));
  r = Parse(app, {"--max-batch", "2", "--max-batch", "3"});
  EXPECT_EQ(r.status().message(), "--max-batch given more than once");
  r = Parse(app, {"--max-batch"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--max-batch"), absl::string_view::npos);
  r = Parse(app, {"--help"});
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(*r, CliAction::kShowHelp);
  const std::string help = app.help();
  EXPECT_NE(help.find("--max-batch INT:in [1, 4096]=32"), std::string::npos)
      << help;
  EXPECT_NE(help.find("--name TEXT=a\\nb"), std::string::npos) << help;
}

TEST(CliParseTest, ExitCodes) {
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  const char* bad_value[] = {"prog", "--max-batch", "0"};
  CliExitCodes codes;
  codes.bad_value = 1;
  testing::internal::CaptureStderr();
  EXPECT_EQ(HandleCommandLine(app, 3, bad_value, codes), 1);
  const char* unknown[] = {"prog", "--bogus"};
  EXPECT_EQ(HandleCommandLine(app, 2, unknown, codes), 2);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_NE(err.find("prog: --max-batch must be an integer"), std::string::npos)
      << err;
  EXPECT_NE(err.find("Run 'prog --help' for the flags."), std::string::npos);
  const char* fine[] = {"prog", "--ttl", "5"};
  EXPECT_EQ(HandleCommandLine(app, 3, fine), std::nullopt);
  EXPECT_EQ(s.ttl, 5);
  testing::internal::CaptureStdout();
  const char* help[] = {"prog", "--help"};
  EXPECT_EQ(HandleCommandLine(app, 2, help), 0);
  EXPECT_NE(testing::internal::GetCapturedStdout().find("--chunk-size"),
            std::string::npos);
}

TEST(EnvConfigTest, EnvVarNames) {
  EXPECT_EQ(EnvVarName("RWKV_", "max-batch"), "RWKV_MAX_BATCH");
  EXPECT_EQ(EnvVarName("RWKV_", "ttl"), "RWKV_TTL");
}

TEST(EnvConfigTest, CommandLineBeatsEnvironmentBeatsFileBeatsDefault) {
  const std::string file =
      WriteFile("precedence.toml",
                "# settings\nmax-batch = 7\nchunk_size = 9\nttl = 120\n");
  ScopedEnv ttl("RWKVTEST_TTL", "60");
  ScopedEnv batch("RWKVTEST_MAX_BATCH", "5");
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  AddEnvAndConfig(app, "RWKVTEST_");
  ASSERT_TRUE(Parse(app, {"--config", file, "--max-batch", "3"}).ok());
  EXPECT_EQ(s.max_batch, 3);     // command line over environment and file
  EXPECT_EQ(s.ttl, 60);          // environment over file
  EXPECT_EQ(s.chunk_size, 9);    // file (chunk_size names --chunk-size)
  EXPECT_DOUBLE_EQ(s.top_p, 1);  // default
  EXPECT_NE(app.help().find("(Env:RWKVTEST_MAX_BATCH)"), std::string::npos);
}

TEST(EnvConfigTest, ConfigFileFromTheEnvironment) {
  const std::string file = WriteFile("from_env.toml", "max-batch = 17\n");
  ScopedEnv config("RWKVTEST_CONFIG", file.c_str());
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  AddEnvAndConfig(app, "RWKVTEST_");
  ASSERT_TRUE(Parse(app, {}).ok());
  EXPECT_EQ(s.max_batch, 17);
}

TEST(EnvConfigTest, ErrorsNameTheKeyTheFileAndTheSource) {
  const std::string unknown =
      WriteFile("unknown.toml", "max-batch = 7\nbogus = 1\n");
  Settings s;
  CLI::App app("", "prog");
  AddFlags(app, &s);
  AddEnvAndConfig(app, "RWKVTEST_");
  absl::StatusOr<CliAction> r = Parse(app, {"--config", unknown});
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "config file " + unknown +
                ": unknown key 'bogus' (keys are the flag names without --, "
                "e.g. max-batch = 64)");

  const std::string bad_value = WriteFile("bad_value.toml", "ttl = 0\n");
  Settings t;
  CLI::App app2("", "prog");
  AddFlags(app2, &t);
  AddEnvAndConfig(app2, "RWKVTEST_");
  r = Parse(app2, {"--config", bad_value});
  EXPECT_EQ(r.status().message(),
            "--ttl must be an integer in [1, 86400], got '0' (from the config "
            "file)");

  ScopedEnv batch("RWKVTEST_MAX_BATCH", "lots");
  Settings u;
  CLI::App app3("", "prog");
  AddFlags(app3, &u);
  AddEnvAndConfig(app3, "RWKVTEST_");
  r = Parse(app3, {});
  EXPECT_EQ(r.status().message(),
            "--max-batch must be an integer in [1, 4096], got 'lots' (from "
            "RWKVTEST_MAX_BATCH)");

  Settings v;
  CLI::App app4("", "prog");
  AddFlags(app4, &v);
  AddEnvAndConfig(app4, "RWKVTEST_");
  r = Parse(app4, {"--config", testing::TempDir() + "/no-such.toml"});
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("--config: "), absl::string_view::npos);
  EXPECT_NE(r.status().message().find("no-such.toml"), absl::string_view::npos);
}

TEST(IdListTest, ParsesAndNamesBadItems) {
  EXPECT_EQ(*ParseIdList(" 1, 2,,3 ", "--tokens"),
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_TRUE(ParseIdList("", "--tokens")->empty());
  EXPECT_EQ(ParseIdList("1,x", "--batches").status().message(),
            "bad token id 'x' in --batches");
  EXPECT_FALSE(ParseIdList("99999999999", "--tokens").ok());
}

}  // namespace
}  // namespace rwkv::common
