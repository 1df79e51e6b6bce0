// The --api-keys file format (server/auth/api_key_table.h) and the
// Authenticator over it.
#include "server/auth/api_key_table.h"

#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/auth/authenticator.h"

namespace rwkv::server {
namespace {

using ::testing::HasSubstr;

TEST(ApiKeyTableTest, HashIsSha256Hex) {
  // FIPS 180-2's test vector.
  EXPECT_EQ(HashApiKey("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ApiKeyTableTest, ParsesKeysRolesCommentsAndLimits) {
  const std::string text =
      absl::StrCat("# comment\n\n   \n", HashApiKey("k1"), " alpha user\n",
                   HashApiKey("k2"), "\talpha admin   # trailing comment\r\n",
                   // Upper-case hex is accepted.
                   absl::AsciiStrToUpper(HashApiKey("k3")),
                   " beta user max-sessions=5 max-state-bytes=2M "
                   "max-concurrent-turns=3 tokens-per-minute=600\n");
  absl::StatusOr<ApiKeyTable> t = ApiKeyTable::Parse(text, "keys");
  ASSERT_TRUE(t.ok()) << t.status();
  EXPECT_EQ(t->size(), 3u);
  EXPECT_EQ(t->tenant_count(), 2u);
  const ApiKeyTable::Entry* e1 = t->Find("k1");
  ASSERT_NE(e1, nullptr);
  EXPECT_EQ(e1->tenant, "alpha");
  EXPECT_FALSE(e1->admin);
  ASSERT_NE(t->Find("k2"), nullptr);
  EXPECT_TRUE(t->Find("k2")->admin);
  ASSERT_NE(t->Find("k3"), nullptr);
  EXPECT_EQ(t->Find("k3")->tenant, "beta");
  EXPECT_EQ(t->Find("k4"), nullptr);
  EXPECT_EQ(t->Find(""), nullptr);
  TenantLimits defaults{1, 2, 3, 4};
  TenantLimits beta = t->OverridesOf("beta").Apply(defaults);
  EXPECT_EQ(beta.max_sessions, 5);
  EXPECT_EQ(beta.max_state_bytes, 2 << 20);
  EXPECT_EQ(beta.max_concurrent_turns, 3);
  EXPECT_EQ(beta.tokens_per_minute, 600);
  TenantLimits alpha = t->OverridesOf("alpha").Apply(defaults);
  EXPECT_EQ(alpha.max_sessions, 1);
  EXPECT_EQ(alpha.tokens_per_minute, 4);
}

TEST(ApiKeyTableTest, MalformedLinesAreRefusedNamingTheLine) {
  const std::string good = HashApiKey("k1") + " alpha user\n";
  struct Case {
    std::string line;
    std::string says;
  };
  const Case cases[] = {
      {"abc alpha user", "64 hex digits"},
      {HashApiKey("k2") + " alpha", "expected '<sha256-hex>"},
      {HashApiKey("k2") + " alpha root", "role must be user or admin"},
      {HashApiKey("k2") + " al/pha user", "tenant must be"},
      {HashApiKey("k1") + " beta user", "already listed"},
      {HashApiKey("k2") + " alpha user max-sessions=-1", "max-sessions"},
      {HashApiKey("k2") + " alpha user speed=3", "unknown limit"},
      {HashApiKey("k2") + " alpha user max-sessions", "limit=value"},
      {HashApiKey("k2") + " alpha user max-state-bytes=lots",
       "max-state-bytes"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<ApiKeyTable> t =
        ApiKeyTable::Parse(good + "\n" + c.line + "\n", "/etc/keys");
    ASSERT_FALSE(t.ok()) << c.line;
    EXPECT_EQ(t.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(t.status().message()),
                HasSubstr("/etc/keys line 3: "))
        << c.line;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr(c.says)) << c.line;
  }
}

TEST(ApiKeyTableTest, OneTenantCannotGetTwoDifferentLimits) {
  absl::StatusOr<ApiKeyTable> same = ApiKeyTable::Parse(
      HashApiKey("a") + " t user max-sessions=2\n" + HashApiKey("b") +
          " t user max-sessions=2\n" + HashApiKey("c") + " t admin\n",
      "k");
  EXPECT_TRUE(same.ok()) << same.status();
  absl::StatusOr<ApiKeyTable> other =
      ApiKeyTable::Parse(HashApiKey("a") + " t user max-sessions=2\n" +
                             HashApiKey("b") + " t user max-sessions=3\n",
                         "k");
  ASSERT_FALSE(other.ok());
  EXPECT_THAT(std::string(other.status().message()),
              HasSubstr("k line 2: tenant 't' was given other limits on "
                        "line 1"));
}

TEST(AuthenticatorTest, WithoutKeysEveryoneIsTheAnonymousTenant) {
  AuthOptions o;
  o.tenant_limits.max_sessions = 7;
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(o);
  ASSERT_TRUE(auth.ok());
  EXPECT_FALSE((*auth)->enabled());
  absl::StatusOr<Caller> c = (*auth)->Authenticate("");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->tenant, "");
  EXPECT_TRUE(c->admin);
  EXPECT_EQ(c->limits.max_sessions, 7);
}

TEST(AuthenticatorTest, AMissingKeysFileIsAnError) {
  AuthOptions o;
  o.api_keys_file = "/nonexistent/keys";
  absl::StatusOr<std::unique_ptr<Authenticator>> auth =
      Authenticator::Create(o);
  ASSERT_FALSE(auth.ok());
  EXPECT_THAT(std::string(auth.status().message()),
              HasSubstr("/nonexistent/keys"));
}

}  // namespace
}  // namespace rwkv::server
