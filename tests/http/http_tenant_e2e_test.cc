// API keys, tenants and quotas on the HTTP front (issue 15's HTTP side):
// real HTTP on loopback against an RwkvServer on the FakeEngine. A missing
// or wrong `Authorization: Bearer` key is 401 with an OpenAI error body,
// probes stay public, another tenant's session or stored response is 404
// with exactly the unknown id's body, listings are per tenant, and a tenant
// over its tokens per minute gets 429 with Retry-After.
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "nlohmann/json.hpp"
#include "server/auth/api_key_table.h"
#include "server/rwkv_server.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/temp_dir.h"

namespace rwkv::server {
namespace {

using json = nlohmann::json;
using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::TempDir;
using ::testing::HasSubstr;

using ::rwkv::testing::FakeClock;

class HttpTenantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::ofstream(dir_.Sub("keys"))
        << HashApiKey("key-alpha") << " alpha user\n"
        << HashApiKey("key-beta") << " beta user\n"
        << HashApiKey("key-admin") << " ops admin\n"
        << HashApiKey("key-quota") << " quota user tokens-per-minute=60\n";
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.http.listen = "127.0.0.1:0";
    o.http.model_name = "fake";
    o.store = "memory";
    o.sessions.sweep_interval = absl::Hours(1);
    o.auth.api_keys_file = dir_.Sub("keys");
    o.app.clock = [this] { return clock_.Now(); };
    auto server = RwkvServer::Start(std::make_unique<FakeEngine>(),
                                    *engine::Tokenizer::Load("bytes"), o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  httplib::Result Call(const std::string& method, const std::string& path,
                       const std::string& key, const std::string& body = "",
                       httplib::Headers headers = {}) {
    httplib::Client c("127.0.0.1", server_->http_port());
    c.set_read_timeout(30, 0);
    if (!key.empty()) headers.emplace("Authorization", "Bearer " + key);
    if (method == "GET") return c.Get(path.c_str(), headers);
    if (method == "DELETE") return c.Delete(path.c_str(), headers);
    return c.Post(path.c_str(), headers, body, "application/json");
  }
  std::string NewSession(const std::string& key, const std::string& id) {
    httplib::Result r =
        Call("POST", "/v1/sessions", key, json{{"session_id", id}}.dump());
    EXPECT_TRUE(r && r->status == 200) << (r ? r->body : "no answer");
    return r ? json::parse(r->body).value("id", "") : "";
  }
  static json ChatBody(int max_tokens) {
    return {{"messages", {{{"role", "user"}, {"content", "Hello"}}}},
            {"max_tokens", max_tokens},
            {"temperature", 0}};
  }

  TempDir dir_;
  FakeClock clock_;
  std::unique_ptr<RwkvServer> server_;
};

TEST_F(HttpTenantTest, MissingOrWrongKeyIs401WithAnOpenAIErrorProbesArePublic) {
  for (const std::string& key : {std::string(""), std::string("key-wrong")}) {
    httplib::Result r =
        Call("POST", "/v1/chat/completions", key, ChatBody(4).dump());
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 401);
    EXPECT_EQ(r->get_header_value("WWW-Authenticate"), "Bearer");
    json error = json::parse(r->body)["error"];
    EXPECT_EQ(error["type"], "authentication_error");
    EXPECT_EQ(error["code"], "unauthenticated");
    EXPECT_FALSE(std::string(error["message"]).empty());
    EXPECT_EQ(Call("GET", "/v1/models", key)->status, 401);
    EXPECT_EQ(Call("GET", "/v1/sessions", key)->status, 401);
  }
  httplib::Result basic = Call("GET", "/v1/models", "", "",
                               {{"Authorization", "Basic a2V5LWFscGhhOg=="}});
  EXPECT_EQ(basic->status, 401);
  EXPECT_EQ(Call("GET", "/v1/models", "key-alpha")->status, 200);
  EXPECT_EQ(Call("GET", "/healthz", "")->status, 200);
  EXPECT_EQ(Call("GET", "/readyz", "")->status, 200);
  EXPECT_EQ(Call("GET", "/metrics", "")->status, 200);
  httplib::Result ok =
      Call("POST", "/v1/chat/completions", "key-alpha", ChatBody(4).dump());
  ASSERT_EQ(ok->status, 200) << ok->body;
}

TEST_F(HttpTenantTest, AnotherTenantsSessionIs404ExactlyLikeAnUnknownId) {
  const std::string a = NewSession("key-alpha", "alpha-s");
  ASSERT_EQ(a, "alpha-s");
  NewSession("key-beta", "beta-s");
  struct Req {
    std::string method, path_fmt, body;
  };
  const std::vector<Req> reqs = {
      {"GET", "/v1/sessions/ID", ""},
      {"POST", "/v1/sessions/ID/reset", ""},
      {"POST", "/v1/sessions/ID/fork", "{}"},
      {"GET", "/v1/sessions/ID/state", ""},
      {"DELETE", "/v1/sessions/ID", ""},
  };
  for (const Req& q : reqs) {
    httplib::Result unknown =
        Call(q.method, absl::StrReplaceAll(q.path_fmt, {{"ID", "nope-id"}}),
             "key-beta", q.body);
    httplib::Result theirs =
        Call(q.method, absl::StrReplaceAll(q.path_fmt, {{"ID", a}}), "key-beta",
             q.body);
    ASSERT_TRUE(unknown && theirs);
    EXPECT_EQ(unknown->status, 404) << q.path_fmt;
    EXPECT_EQ(theirs->status, 404) << q.path_fmt;
    EXPECT_EQ(absl::StrReplaceAll(theirs->body, {{a, "ID"}}),
              absl::StrReplaceAll(unknown->body, {{"nope-id", "ID"}}))
        << q.path_fmt;
  }
  // A turn on it (X-Session-Id) is 404 too, and beta's own session works.
  httplib::Result turn = Call("POST", "/v1/chat/completions", "key-beta",
                              ChatBody(3).dump(), {{"X-Session-Id", a}});
  EXPECT_EQ(turn->status, 404);
  httplib::Result own = Call("POST", "/v1/chat/completions", "key-beta",
                             ChatBody(3).dump(), {{"X-Session-Id", "beta-s"}});
  EXPECT_EQ(own->status, 200) << own->body;
  // Alpha's session is untouched: beta's reset/delete did nothing.
  EXPECT_EQ(Call("GET", "/v1/sessions/" + a, "key-alpha")->status, 200);
  // Listings: each tenant its own; the admin all.
  json alpha = json::parse(Call("GET", "/v1/sessions", "key-alpha")->body);
  json beta = json::parse(Call("GET", "/v1/sessions", "key-beta")->body);
  json admin = json::parse(Call("GET", "/v1/sessions", "key-admin")->body);
  EXPECT_THAT(alpha.dump(), HasSubstr("alpha-s"));
  EXPECT_THAT(alpha.dump(), ::testing::Not(HasSubstr("beta-s")));
  EXPECT_THAT(beta.dump(), ::testing::Not(HasSubstr("alpha-s")));
  EXPECT_THAT(admin.dump(), HasSubstr("alpha-s"));
  EXPECT_THAT(admin.dump(), HasSubstr("beta-s"));
  EXPECT_EQ(Call("GET", "/v1/sessions/" + a, "key-admin")->status, 200);
}

TEST_F(HttpTenantTest, StoredResponsesBelongToTheirTenant) {
  httplib::Result r1 = Call(
      "POST", "/v1/responses", "key-alpha",
      json{{"input", "Hello"}, {"max_output_tokens", 3}, {"temperature", 0}}
          .dump());
  ASSERT_EQ(r1->status, 200) << r1->body;
  const std::string id = json::parse(r1->body)["id"];
  EXPECT_EQ(Call("GET", "/v1/responses/" + id, "key-alpha")->status, 200);
  httplib::Result unknown = Call("GET", "/v1/responses/resp_nope", "key-beta");
  httplib::Result theirs = Call("GET", "/v1/responses/" + id, "key-beta");
  EXPECT_EQ(theirs->status, 404);
  EXPECT_EQ(absl::StrReplaceAll(theirs->body, {{id, "ID"}}),
            absl::StrReplaceAll(unknown->body, {{"resp_nope", "ID"}}));
  // Continuing another tenant's response is refused the same way.
  httplib::Result next = Call("POST", "/v1/responses", "key-beta",
                              json{{"input", "And?"},
                                   {"previous_response_id", id},
                                   {"max_output_tokens", 3}}
                                  .dump());
  EXPECT_EQ(next->status, 404);
  EXPECT_EQ(Call("DELETE", "/v1/responses/" + id, "key-beta")->status, 404);
  EXPECT_EQ(Call("GET", "/v1/responses/" + id, "key-alpha")->status, 200);
}

TEST_F(HttpTenantTest, TokensPerMinuteIs429WithRetryAfter) {
  // 60 tokens per minute: "User: Hello\n\nAssistant:" is 23 prompt tokens
  // (bytes tokenizer) + 30 generated = 53; 7 left, 23 needed: 16 s.
  httplib::Result first =
      Call("POST", "/v1/chat/completions", "key-quota", ChatBody(30).dump());
  ASSERT_EQ(first->status, 200) << first->body;
  httplib::Result second =
      Call("POST", "/v1/chat/completions", "key-quota", ChatBody(4).dump());
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 429);
  EXPECT_EQ(second->get_header_value("Retry-After"), "16");
  json error = json::parse(second->body)["error"];
  EXPECT_EQ(error["type"], "rate_limit_error");
  EXPECT_THAT(std::string(error["message"]), HasSubstr("tokens per minute"));
  clock_.Advance(absl::Seconds(16));
  EXPECT_EQ(
      Call("POST", "/v1/chat/completions", "key-quota", ChatBody(4).dump())
          ->status,
      200);
  // Another tenant is not limited by it.
  EXPECT_EQ(
      Call("POST", "/v1/chat/completions", "key-alpha", ChatBody(40).dump())
          ->status,
      200);
}

}  // namespace
}  // namespace rwkv::server
