// Unit tests of the client library's server-free pieces: gRPC status
// mapping, REPL line parsing, rwkv-chat / rwkv-load flag parsing (the
// programs' CLI11 flags, client/chat_flags.h and load_flags.h) and the
// latency percentiles.
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "client/chat_flags.h"
#include "client/grpc_status.h"
#include "client/latency_stats.h"
#include "client/load_flags.h"
#include "client/repl_command.h"
#include "common/cli_parse.h"
#include "gtest/gtest.h"

namespace rwkv::client {
namespace {

// argv from words; argv[0] is the program name.
class Argv {
 public:
  explicit Argv(std::vector<std::string> words) : words_(std::move(words)) {
    words_.insert(words_.begin(), "prog");
    for (std::string& w : words_) pointers_.push_back(w.data());
  }
  int argc() const { return static_cast<int>(pointers_.size()); }
  char** argv() { return pointers_.data(); }

 private:
  std::vector<std::string> words_;
  std::vector<char*> pointers_;
};

// The programs' own parse: their flags (chat_flags.h, load_flags.h) through
// common::ParseArgs, as HandleCommandLine runs it in main().
template <typename Options, typename AddFlags>
absl::StatusOr<Options> Parse(AddFlags add_flags, int argc, char** argv) {
  Options options;
  CLI::App app("", "prog");
  add_flags(app, &options);
  absl::StatusOr<common::CliAction> action = common::ParseArgs(app, argc, argv);
  if (!action.ok()) return action.status();
  if (*action != common::CliAction::kRun) {
    return absl::FailedPreconditionError("help requested");
  }
  return options;
}

absl::StatusOr<ChatOptions> ParseChatOptions(int argc, char** argv) {
  return Parse<ChatOptions>(AddChatFlags, argc, argv);
}

absl::StatusOr<LoadOptions> ParseLoadOptions(int argc, char** argv) {
  return Parse<LoadOptions>(AddLoadFlags, argc, argv);
}

// The --help text of a program's flags.
template <typename Options, typename AddFlags>
std::string Help(AddFlags add_flags) {
  Options options;
  CLI::App app("", "prog");
  add_flags(app, &options);
  return app.help();
}

TEST(GrpcStatusTest, EveryCanonicalCodeKeepsCodeAndMessage) {
  for (int code = 1; code <= 16; ++code) {
    grpc::Status in(static_cast<grpc::StatusCode>(code), "msg");
    absl::Status out = FromGrpcStatus(in);
    EXPECT_EQ(static_cast<int>(out.code()), code);
    EXPECT_EQ(out.message(), "msg");
  }
  EXPECT_TRUE(FromGrpcStatus(grpc::Status::OK).ok());
}

TEST(GrpcStatusTest, NonCanonicalCodeBecomesUnknown) {
  absl::Status out =
      FromGrpcStatus(grpc::Status(static_cast<grpc::StatusCode>(99), "x"));
  EXPECT_EQ(out.code(), absl::StatusCode::kUnknown);
  EXPECT_NE(out.message().find("99"), absl::string_view::npos);
}

TEST(GrpcStatusTest, DescribeErrorNamesTheCode) {
  EXPECT_EQ(DescribeError("Chat", absl::NotFoundError("session 'a' expired")),
            "Chat failed: NOT_FOUND: session 'a' expired");
  EXPECT_EQ(StatusCodeName(absl::StatusCode::kFailedPrecondition),
            "FAILED_PRECONDITION");
}

TEST(ReplCommandTest, MessagesAndEmptyLines) {
  absl::StatusOr<ReplCommand> c = ParseReplCommand("Hello there");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, ReplCommand::Kind::kMessage);
  EXPECT_EQ(c->text, "Hello there");

  c = ParseReplCommand("   \r");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, ReplCommand::Kind::kEmpty);

  c = ParseReplCommand("//etc/passwd is a path\r");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->kind, ReplCommand::Kind::kMessage);
  EXPECT_EQ(c->text, "/etc/passwd is a path");
}

TEST(ReplCommandTest, Commands) {
  struct Case {
    const char* line;
    ReplCommand::Kind kind;
    const char* arg;
  };
  const Case cases[] = {
      {"/new", ReplCommand::Kind::kNew, ""},
      {"/session bob", ReplCommand::Kind::kSession, "bob"},
      {"/reset", ReplCommand::Kind::kReset, ""},
      {"/fork", ReplCommand::Kind::kFork, ""},
      {"/fork  alice-2 ", ReplCommand::Kind::kFork, "alice-2"},
      {"/export a.pth", ReplCommand::Kind::kExport, "a.pth"},
      {"/import b.pth", ReplCommand::Kind::kImport, "b.pth"},
      {"/inspect", ReplCommand::Kind::kInspect, ""},
      {"/info", ReplCommand::Kind::kInfo, ""},
      {"/HELP", ReplCommand::Kind::kHelp, ""},
      {"/quit", ReplCommand::Kind::kQuit, ""},
      {"/exit", ReplCommand::Kind::kQuit, ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ReplCommand> parsed = ParseReplCommand(c.line);
    ASSERT_TRUE(parsed.ok()) << c.line << ": " << parsed.status();
    EXPECT_EQ(parsed->kind, c.kind) << c.line;
    EXPECT_EQ(parsed->arg, c.arg) << c.line;
  }
  absl::StatusOr<ReplCommand> ttl = ParseReplCommand("/ttl 600");
  ASSERT_TRUE(ttl.ok());
  EXPECT_EQ(ttl->kind, ReplCommand::Kind::kTtl);
  EXPECT_EQ(ttl->ttl_seconds, 600);
}

TEST(ReplCommandTest, BadCommandsAreErrorsThatSayWhy) {
  const char* bad[] = {"/",       "/frobnicate", "/session", "/session a b",
                       "/export", "/ttl",        "/ttl -5",  "/ttl soon",
                       "/ttl 0",  "/new extra",  "/fork a b"};
  for (const char* line : bad) {
    absl::StatusOr<ReplCommand> parsed = ParseReplCommand(line);
    ASSERT_FALSE(parsed.ok()) << line;
    EXPECT_EQ(parsed.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_FALSE(parsed.status().message().empty());
  }
  EXPECT_NE(ParseReplCommand("/ttl x").status().message().find("/ttl"),
            absl::string_view::npos);
}

TEST(ChatOptionsTest, DefaultsAndOneShot) {
  Argv a({"--session", "alice", "My", "name", "is", "Alice."});
  absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "127.0.0.1:50051");
  EXPECT_EQ(o->session, "alice");
  EXPECT_EQ(o->message, "My name is Alice.");
  EXPECT_TRUE(o->one_shot);
  EXPECT_FALSE(o->generate);
  EXPECT_FALSE(o->sampling.has_temperature());
  EXPECT_FALSE(o->sampling.has_seed());
  EXPECT_EQ(o->initial_state, "");
}

TEST(ChatOptionsTest, InitialStateName) {
  Argv a({"--initial-state", "arr", "Ahoy"});
  absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->initial_state, "arr");
  Argv empty({"--initial-state="});
  EXPECT_FALSE(ParseChatOptions(empty.argc(), empty.argv()).ok());
}

TEST(ChatOptionsTest, SamplingFlagsAreSetOnlyWhenGiven) {
  Argv a({"--server=localhost:1", "--temperature", "0", "--top-p", "0.5",
          "--top-k", "40", "--seed", "7", "--max-tokens", "32", "--ttl", "60",
          "--generate"});
  absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->server, "localhost:1");
  EXPECT_TRUE(o->sampling.has_temperature());
  EXPECT_EQ(o->sampling.temperature(), 0.0f);
  EXPECT_FLOAT_EQ(o->sampling.top_p(), 0.5f);
  EXPECT_EQ(o->sampling.top_k(), 40);
  EXPECT_EQ(o->sampling.seed(), 7u);
  EXPECT_FALSE(o->sampling.has_presence_penalty());
  EXPECT_EQ(o->max_tokens, 32);
  EXPECT_EQ(o->ttl_seconds, 60);
  EXPECT_TRUE(o->generate);
  EXPECT_TRUE(o->message.empty());
  EXPECT_FALSE(o->one_shot);
}

TEST(ChatOptionsTest, BadFlagsAreRejected) {
  const std::vector<std::vector<std::string>> bad = {{"--bogus"},
                                                     {"--session"},
                                                     {"--session="},
                                                     {"--ttl", "-1"},
                                                     {"--ttl", "x"},
                                                     {"--top-p", "0"},
                                                     {"--top-p", "1.5"},
                                                     {"--top-k", "-1"},
                                                     {"--seed", "-3"},
                                                     {"--max-tokens", "-1"},
                                                     {"--temperature", "nan"},
                                                     {"--temperature", "-1"},
                                                     {"--timeout", "0"},
                                                     {"--server="},
                                                     {"--health=maybe"}};
  for (const std::vector<std::string>& words : bad) {
    Argv a(words);
    absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
    EXPECT_FALSE(o.ok()) << words[0];
  }
}

TEST(ChatOptionsTest, ErrorsNameTheFlag) {
  const std::vector<std::vector<std::string>> bad = {
      {"--top-p", "1.5"}, {"--ttl", "x"}, {"--server="},
      {"--bogus"},        {"--session"},  {"--seed", "-3"}};
  for (const std::vector<std::string>& words : bad) {
    Argv a(words);
    absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
    ASSERT_FALSE(o.ok()) << words[0];
    const std::string flag = words[0].substr(0, words[0].find('='));
    EXPECT_NE(o.status().message().find(flag), absl::string_view::npos)
        << o.status().message();
  }
  Argv a({"--top-p", "1.5"});
  EXPECT_EQ(ParseChatOptions(a.argc(), a.argv()).status().message(),
            "--top-p must be in (0, 1], got '1.5'");
}

TEST(ChatOptionsTest, IntegersAreDecimalAndMessagesMayLookLikeNumbers) {
  // CLI11 alone would read 010 as octal 8.
  Argv a({"--max-tokens", "010", "-5", "degrees"});
  absl::StatusOr<ChatOptions> o = ParseChatOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->max_tokens, 10);
  EXPECT_EQ(o->message, "-5 degrees");
  Argv escaped({"--", "--not-a-flag"});
  o = ParseChatOptions(escaped.argc(), escaped.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->message, "--not-a-flag");
  Argv empty({""});
  o = ParseChatOptions(empty.argc(), empty.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->one_shot);
  EXPECT_EQ(o->message, "");
}

TEST(ChatOptionsTest, HelpShowsTheStructDefaults) {
  const std::string help = Help<ChatOptions>(AddChatFlags);
  const ChatOptions defaults;
  EXPECT_NE(help.find("--server ADDR=" + defaults.server), std::string::npos)
      << help;
  EXPECT_NE(help.find("--timeout SECONDS:> 0=30"), std::string::npos) << help;
  EXPECT_NE(help.find("--max-tokens N:in [0, 2147483647]=0"), std::string::npos)
      << help;
}

TEST(LoadOptionsTest, HelpShowsTheStructDefaults) {
  const std::string help = Help<LoadOptions>(AddLoadFlags);
  EXPECT_NE(help.find("--streams N:in [1, 4096]=8"), std::string::npos) << help;
  EXPECT_NE(help.find("--tokens-per-stream T:in [1, 16777216]=128"),
            std::string::npos)
      << help;
  EXPECT_NE(help.find("--warmup T:in [0, 16777216]=8"), std::string::npos)
      << help;
}

TEST(LoadOptionsTest, Defaults) {
  Argv a({});
  absl::StatusOr<LoadOptions> o = ParseLoadOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->streams, 8);
  EXPECT_EQ(o->temperature, 0);
  EXPECT_TRUE(o->compare.empty());
}

TEST(LoadOptionsTest, AllFlags) {
  Argv a({"--streams", "16", "--tokens-per-stream", "64", "--prompt-tokens",
          "4", "--long-prompt-tokens", "2000", "--duration", "2.5", "--warmup",
          "0", "--compare", "1, 32", "--seed", "9", "--json", "--bench-tps",
          "950"});
  absl::StatusOr<LoadOptions> o = ParseLoadOptions(a.argc(), a.argv());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_EQ(o->streams, 16);
  EXPECT_EQ(o->tokens_per_stream, 64);
  EXPECT_EQ(o->prompt_tokens, 4);
  EXPECT_EQ(o->long_prompt_tokens, 2000);
  EXPECT_DOUBLE_EQ(o->duration_seconds, 2.5);
  EXPECT_EQ(o->warmup_tokens, 0);
  EXPECT_EQ(o->compare, (std::vector<int>{1, 32}));
  EXPECT_EQ(o->seed, 9u);
  EXPECT_TRUE(o->json);
  EXPECT_DOUBLE_EQ(o->bench_tokens_per_second, 950);
}

TEST(LoadOptionsTest, BadFlagsAreRejected) {
  const std::vector<std::vector<std::string>> bad = {
      {"--streams", "0"},
      {"--streams", "many"},
      {"--compare", "32"},
      {"--compare", "1,x"},
      {"--compare", "0,4"},
      {"--duration", "-1"},
      {"--tokens-per-stream", "0"},
      {"--long-prompt-tokens", "-5"},
      {"stray"},
      {"--bench-tps", "-1"}};
  for (const std::vector<std::string>& words : bad) {
    Argv a(words);
    EXPECT_FALSE(ParseLoadOptions(a.argc(), a.argv()).ok()) << words[0];
  }
}

TEST(LatencyStatsTest, NearestRankPercentiles) {
  LatencyStats s;
  EXPECT_EQ(s.Percentile(99), 0);
  for (int i = 100; i >= 1; --i) s.Add(i);
  EXPECT_EQ(s.count(), 100u);
  EXPECT_EQ(s.Median(), 50);
  EXPECT_EQ(s.Percentile(99), 99);
  EXPECT_EQ(s.Percentile(100), 100);
  EXPECT_EQ(s.Percentile(0), 1);
  EXPECT_DOUBLE_EQ(s.Mean(), 50.5);
  EXPECT_EQ(s.Max(), 100);
  LatencyStats t;
  t.Add(1000);
  s.Merge(t);
  EXPECT_EQ(s.Max(), 1000);
  EXPECT_EQ(s.count(), 101u);
}

}  // namespace
}  // namespace rwkv::client
