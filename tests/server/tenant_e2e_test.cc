// API keys, tenants and per-tenant quotas through real gRPC against an
// RwkvServer running the FakeEngine (the point 4 and 5): missing and
// wrong keys, every RPC on another tenant's session answering exactly as an
// unknown id, listings per tenant, admins, shared named states, key reloads,
// quota errors with their retry hints, and the loopback rule.
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/chat_client.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rwkv/v1/chat.grpc.pb.h"
#include "server/auth/api_key_table.h"
#include "server/rwkv_server.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"
#include "tests/testing/temp_dir.h"

namespace rwkv::server {
namespace {

namespace pb = ::rwkv::v1;
using ::rwkv::testing::FakeEngine;
using ::rwkv::testing::TempDir;
using ::testing::HasSubstr;

using ::rwkv::testing::FakeClock;

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream(path, std::ios::trunc) << text;
}

std::string KeyLine(const std::string& key, const std::string& rest) {
  return absl::StrCat(HashApiKey(key), " ", rest, "\n");
}

class TenantTest : public ::testing::Test {
 protected:
  void SetUp() override {
    keys_file_ = dir_.Sub("keys");
    WriteFile(keys_file_,
              "# test keys\n\n" + KeyLine("key-alpha", "alpha user") +
                  KeyLine("key-beta", "beta user") +
                  KeyLine("key-admin", "ops admin  # the operators") +
                  KeyLine("key-quota",
                          "quota user max-sessions=2 max-concurrent-turns=1 "
                          "tokens-per-minute=60"));
    StartServer(keys_file_);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(absl::Seconds(5));
  }

  void StartServer(const std::string& keys) {
    auto engine = std::make_unique<FakeEngine>();
    engine_ = engine.get();
    ServerOptions o;
    o.listen = "127.0.0.1:0";
    o.http.listen = "";  // gRPC only (http_tenant_e2e_test: HTTP)
    o.store = "memory";
    o.sessions.sweep_interval = absl::Hours(1);
    o.scheduler.chunk_size = 4;
    o.auth.api_keys_file = keys;
    o.app.clock = [this] { return clock_.Now(); };
    o.app.initial_states["persona"] =
        std::make_shared<const engine::State>(engine->model().NewState());
    auto server = RwkvServer::Start(std::move(engine),
                                    *engine::Tokenizer::Load("bytes"), o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    channel_ = grpc::CreateChannel(server_->address(),
                                   grpc::InsecureChannelCredentials());
    stub_ = pb::ChatService::NewStub(channel_);
  }

  // A context carrying `key` ("": none).
  static std::unique_ptr<grpc::ClientContext> Ctx(const std::string& key) {
    auto ctx = std::make_unique<grpc::ClientContext>();
    ctx->set_deadline(std::chrono::system_clock::now() +
                      std::chrono::seconds(30));
    if (!key.empty()) ctx->AddMetadata("authorization", "Bearer " + key);
    return ctx;
  }

  grpc::Status Create(const std::string& key, const std::string& id,
                      pb::SessionInfo* info = nullptr,
                      const std::string& initial_state_name = "") {
    pb::CreateSessionRequest req;
    req.set_session_id(id);
    req.set_initial_state_name(initial_state_name);
    pb::SessionInfo ignored;
    return stub_->CreateSession(Ctx(key).get(), req, info ? info : &ignored);
  }

  grpc::Status Generate(const std::string& key, const std::string& id,
                        int max_tokens = 4, std::string* retry_after = nullptr,
                        bool chat = false) {
    auto ctx = Ctx(key);
    pb::GenerateResponse msg;
    std::unique_ptr<grpc::ClientReader<pb::GenerateResponse>> reader;
    if (chat) {
      pb::ChatRequest req;
      req.set_session_id(id);
      req.set_message("hi");
      req.set_max_tokens(max_tokens);
      reader = stub_->Chat(ctx.get(), req);
    } else {
      pb::GenerateRequest req;
      req.set_session_id(id);
      req.set_text("hello");
      req.set_max_tokens(max_tokens);
      req.set_ignore_eos(true);
      reader = stub_->Generate(ctx.get(), req);
    }
    while (reader->Read(&msg)) {
    }
    grpc::Status st = reader->Finish();
    if (retry_after != nullptr) *retry_after = RetryAfter(*ctx);
    return st;
  }

  static std::string RetryAfter(const grpc::ClientContext& ctx) {
    auto it = ctx.GetServerTrailingMetadata().find("retry-after");
    if (it == ctx.GetServerTrailingMetadata().end()) return "";
    return std::string(it->second.data(), it->second.size());
  }

  // Every RPC that names a session, called by `key` on session `id` (the
  // second session of two-session RPCs is `own`, one the caller owns).
  std::map<std::string, grpc::Status> EveryRpcOn(const std::string& key,
                                                 const std::string& id,
                                                 const std::string& own) {
    std::map<std::string, grpc::Status> out;
    pb::SessionInfo info;
    {
      pb::GetSessionRequest r;
      r.set_session_id(id);
      out["GetSession"] = stub_->GetSession(Ctx(key).get(), r, &info);
    }
    {
      pb::TouchSessionRequest r;
      r.set_session_id(id);
      out["TouchSession"] = stub_->TouchSession(Ctx(key).get(), r, &info);
    }
    {
      pb::ResetSessionRequest r;
      r.set_session_id(id);
      out["ResetSession"] = stub_->ResetSession(Ctx(key).get(), r, &info);
    }
    out["Generate"] = Generate(key, id);
    out["Chat"] = Generate(key, id, 4, nullptr, /*chat=*/true);
    {
      pb::ForkSessionRequest r;
      r.set_source_session_id(id);
      out["ForkSession"] = stub_->ForkSession(Ctx(key).get(), r, &info);
    }
    {
      pb::BlendSessionsRequest r;
      r.set_session_a(id);
      r.set_session_b(own);
      r.set_alpha(0.5);
      out["BlendSessions(a)"] = stub_->BlendSessions(Ctx(key).get(), r, &info);
      r.set_session_a(own);
      r.set_session_b(id);
      out["BlendSessions(b)"] = stub_->BlendSessions(Ctx(key).get(), r, &info);
    }
    {
      pb::DecaySessionRequest r;
      r.set_session_id(id);
      r.set_factor(0.5);
      out["DecaySession"] = stub_->DecaySession(Ctx(key).get(), r, &info);
    }
    {
      pb::InspectSessionRequest r;
      r.set_session_id(id);
      pb::InspectSessionResponse resp;
      out["InspectSession"] = stub_->InspectSession(Ctx(key).get(), r, &resp);
    }
    {
      pb::SessionDistanceRequest r;
      r.set_session_a(id);
      r.set_session_b(own);
      pb::SessionDistanceResponse resp;
      out["SessionDistance(a)"] =
          stub_->SessionDistance(Ctx(key).get(), r, &resp);
      r.set_session_a(own);
      r.set_session_b(id);
      out["SessionDistance(b)"] =
          stub_->SessionDistance(Ctx(key).get(), r, &resp);
    }
    {
      pb::ExportStateRequest r;
      r.set_session_id(id);
      pb::ExportStateResponse resp;
      out["ExportState"] = stub_->ExportState(Ctx(key).get(), r, &resp);
    }
    {
      pb::DeleteSessionRequest r;
      r.set_session_id(id);
      pb::DeleteSessionResponse resp;
      out["DeleteSession"] = stub_->DeleteSession(Ctx(key).get(), r, &resp);
    }
    return out;
  }

  pb::ListSessionsResponse List(const std::string& key) {
    pb::ListSessionsResponse resp;
    EXPECT_TRUE(
        stub_->ListSessions(Ctx(key).get(), pb::ListSessionsRequest(), &resp)
            .ok());
    return resp;
  }

  TempDir dir_;
  std::string keys_file_;
  FakeClock clock_;
  FakeEngine* engine_ = nullptr;
  std::unique_ptr<RwkvServer> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<pb::ChatService::Stub> stub_;
};

TEST_F(TenantTest, MissingOrWrongKeysAreUnauthenticatedHealthIsPublic) {
  grpc::Status none = Create("", "s1");
  EXPECT_EQ(none.error_code(), grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_THAT(none.error_message(), HasSubstr("Bearer"));
  EXPECT_EQ(Create("key-wrong", "s1").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  {
    auto ctx = Ctx("");
    ctx->AddMetadata("authorization", "Basic a2V5LWFscGhhOg==");
    pb::SessionInfo info;
    pb::CreateSessionRequest req;
    EXPECT_EQ(stub_->CreateSession(ctx.get(), req, &info).error_code(),
              grpc::StatusCode::UNAUTHENTICATED);
  }
  EXPECT_EQ(Generate("", "s1").error_code(), grpc::StatusCode::UNAUTHENTICATED);
  {
    pb::ModelInfo info;
    EXPECT_EQ(
        stub_->GetModelInfo(Ctx("").get(), pb::GetModelInfoRequest(), &info)
            .error_code(),
        grpc::StatusCode::UNAUTHENTICATED);
    EXPECT_TRUE(stub_
                    ->GetModelInfo(Ctx("key-alpha").get(),
                                   pb::GetModelInfoRequest(), &info)
                    .ok());
  }
  // Nothing was created by the refused calls.
  EXPECT_EQ(List("key-admin").total_sessions(), 0);
  client::ChatClient keyless(channel_);
  absl::StatusOr<client::HealthStatus> health = keyless.CheckHealth("");
  ASSERT_TRUE(health.ok()) << health.status();
  EXPECT_EQ(*health, client::HealthStatus::kServing);
}

TEST_F(TenantTest, EveryRpcOnAnotherTenantsSessionIsNotFoundLikeAnUnknownId) {
  pb::SessionInfo generated;
  ASSERT_TRUE(Create("key-alpha", "", &generated).ok());
  ASSERT_TRUE(Create("key-alpha", "alpha-chosen").ok());
  ASSERT_TRUE(Create("key-alpha", "alpha-deleted").ok());
  {
    pb::DeleteSessionRequest r;
    r.set_session_id("alpha-deleted");
    pb::DeleteSessionResponse resp;
    ASSERT_TRUE(stub_->DeleteSession(Ctx("key-alpha").get(), r, &resp).ok());
  }
  ASSERT_TRUE(Create("key-beta", "beta-own").ok());
  const std::string unknown = "never-existed-id";
  const std::map<std::string, grpc::Status> baseline =
      EveryRpcOn("key-beta", unknown, "beta-own");
  for (const std::string& id :
       {generated.session_id(), std::string("alpha-chosen"),
        std::string("alpha-deleted")}) {
    const std::map<std::string, grpc::Status> got =
        EveryRpcOn("key-beta", id, "beta-own");
    ASSERT_EQ(got.size(), baseline.size());
    for (const auto& [rpc, st] : got) {
      const grpc::Status& want = baseline.at(rpc);
      EXPECT_EQ(want.error_code(), grpc::StatusCode::NOT_FOUND) << rpc;
      EXPECT_EQ(st.error_code(), want.error_code()) << rpc << " on " << id;
      // The same words, the id aside.
      EXPECT_EQ(absl::StrReplaceAll(st.error_message(), {{id, "ID"}}),
                absl::StrReplaceAll(want.error_message(), {{unknown, "ID"}}))
          << rpc << " on " << id;
    }
  }
  // Alpha's sessions are untouched (Beta's Reset/Decay/Delete did nothing).
  for (const std::string& id :
       {generated.session_id(), std::string("alpha-chosen")}) {
    pb::GetSessionRequest r;
    r.set_session_id(id);
    pb::SessionInfo info;
    EXPECT_TRUE(stub_->GetSession(Ctx("key-alpha").get(), r, &info).ok()) << id;
  }
  // Alpha itself is told why its own session is gone.
  pb::GetSessionRequest r;
  r.set_session_id("alpha-deleted");
  pb::SessionInfo info;
  EXPECT_THAT(
      stub_->GetSession(Ctx("key-alpha").get(), r, &info).error_message(),
      HasSubstr("was deleted"));
}

TEST_F(TenantTest, ImportReplaceCannotTouchAnotherTenantsSession) {
  ASSERT_TRUE(Create("key-alpha", "alpha-x").ok());
  ASSERT_EQ(Generate("key-alpha", "alpha-x", 3).error_code(),
            grpc::StatusCode::OK);
  pb::ExportStateRequest ex;
  ex.set_session_id("alpha-x");
  pb::ExportStateResponse exported;
  ASSERT_TRUE(stub_->ExportState(Ctx("key-alpha").get(), ex, &exported).ok());
  ASSERT_TRUE(Create("key-beta", "beta-y").ok());
  pb::ExportStateRequest ey;
  ey.set_session_id("beta-y");
  pb::ExportStateResponse beta_state;
  ASSERT_TRUE(stub_->ExportState(Ctx("key-beta").get(), ey, &beta_state).ok());
  pb::ImportStateRequest imp;
  imp.set_session_id("alpha-x");
  imp.set_replace(true);
  imp.set_state(beta_state.state());
  pb::SessionInfo info;
  grpc::Status st = stub_->ImportState(Ctx("key-beta").get(), imp, &info);
  // Ids are one namespace: the id is taken (as CreateSession would say).
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ALREADY_EXISTS);
  pb::ExportStateResponse after;
  ASSERT_TRUE(stub_->ExportState(Ctx("key-alpha").get(), ex, &after).ok());
  EXPECT_EQ(after.state(), exported.state());
  EXPECT_EQ(after.token_count(), exported.token_count());
}

TEST_F(TenantTest, ListingsShowTheCallersSessionsAdminsSeeAll) {
  for (const char* id : {"a1", "a2", "a3"}) {
    ASSERT_TRUE(Create("key-alpha", id).ok());
  }
  ASSERT_TRUE(Create("key-beta", "b1").ok());
  pb::ListSessionsResponse alpha = List("key-alpha");
  EXPECT_EQ(alpha.total_sessions(), 3);
  ASSERT_EQ(alpha.sessions_size(), 3);
  for (const auto& s : alpha.sessions()) EXPECT_NE(s.session_id(), "b1");
  pb::ListSessionsResponse beta = List("key-beta");
  EXPECT_EQ(beta.total_sessions(), 1);
  ASSERT_EQ(beta.sessions_size(), 1);
  EXPECT_EQ(beta.sessions(0).session_id(), "b1");
  // Pages of a tenant's listing.
  pb::ListSessionsRequest page;
  page.set_page_size(2);
  pb::ListSessionsResponse first;
  ASSERT_TRUE(stub_->ListSessions(Ctx("key-alpha").get(), page, &first).ok());
  ASSERT_EQ(first.sessions_size(), 2);
  EXPECT_EQ(first.next_page_token(), "a2");
  page.set_page_token(first.next_page_token());
  pb::ListSessionsResponse second;
  ASSERT_TRUE(stub_->ListSessions(Ctx("key-alpha").get(), page, &second).ok());
  ASSERT_EQ(second.sessions_size(), 1);
  EXPECT_EQ(second.sessions(0).session_id(), "a3");
  EXPECT_EQ(second.next_page_token(), "");

  pb::ListSessionsResponse admin = List("key-admin");
  EXPECT_EQ(admin.total_sessions(), 4);
  // Admins may act on any tenant's session.
  pb::InspectSessionRequest ins;
  ins.set_session_id("b1");
  pb::InspectSessionResponse report;
  EXPECT_TRUE(stub_->InspectSession(Ctx("key-admin").get(), ins, &report).ok());
  pb::DeleteSessionRequest del;
  del.set_session_id("a1");
  pb::DeleteSessionResponse gone;
  EXPECT_TRUE(stub_->DeleteSession(Ctx("key-admin").get(), del, &gone).ok());
  EXPECT_EQ(List("key-alpha").total_sessions(), 2);
}

TEST_F(TenantTest, NamedInitialStatesAreSharedByEveryTenant) {
  EXPECT_TRUE(Create("key-alpha", "pa", nullptr, "persona").ok());
  EXPECT_TRUE(Create("key-beta", "pb", nullptr, "persona").ok());
  EXPECT_EQ(Generate("key-beta", "pb").error_code(), grpc::StatusCode::OK);
  EXPECT_EQ(Generate("key-alpha", "pa").error_code(), grpc::StatusCode::OK);
}

TEST_F(TenantTest, ReloadedKeysTakeEffectAndABadFileKeepsTheOldOnes) {
  ASSERT_TRUE(Create("key-alpha", "before").ok());
  EXPECT_EQ(Create("key-gamma", "g").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  // Alpha's key is removed, Gamma's added (and a new key for Beta).
  WriteFile(keys_file_, KeyLine("key-gamma", "gamma user") +
                            KeyLine("key-beta2", "beta user") +
                            KeyLine("key-admin", "ops admin"));
  absl::StatusOr<size_t> loaded = server_->ReloadApiKeys();
  ASSERT_TRUE(loaded.ok()) << loaded.status();
  EXPECT_EQ(*loaded, 3u);
  EXPECT_TRUE(Create("key-gamma", "g").ok());
  EXPECT_EQ(Create("key-alpha", "after").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_EQ(Create("key-beta", "b").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
  EXPECT_TRUE(Create("key-beta2", "b").ok());
  // A malformed file is refused, naming the line; the keys in use stay.
  WriteFile(keys_file_,
            KeyLine("key-alpha", "alpha user") + "not-a-hash alpha user\n");
  absl::StatusOr<size_t> bad = server_->ReloadApiKeys();
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(bad.status().message()), HasSubstr("line 2"));
  EXPECT_TRUE(Create("key-gamma", "g2").ok());
  EXPECT_EQ(Create("key-alpha", "after").error_code(),
            grpc::StatusCode::UNAUTHENTICATED);
}

TEST_F(TenantTest, SessionQuotaIsPerTenant) {
  ASSERT_TRUE(Create("key-quota", "q1").ok());
  ASSERT_TRUE(Create("key-quota", "q2").ok());
  grpc::Status third = Create("key-quota", "q3");
  EXPECT_EQ(third.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(third.error_message(), HasSubstr("2 sessions"));
  // Forks count too; other tenants are not limited by it.
  pb::ForkSessionRequest fork;
  fork.set_source_session_id("q1");
  pb::SessionInfo info;
  EXPECT_EQ(
      stub_->ForkSession(Ctx("key-quota").get(), fork, &info).error_code(),
      grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Create("key-alpha", "a1").ok());
  EXPECT_TRUE(Create("key-alpha", "a2").ok());
  EXPECT_TRUE(Create("key-alpha", "a3").ok());
  pb::DeleteSessionRequest del;
  del.set_session_id("q1");
  pb::DeleteSessionResponse gone;
  ASSERT_TRUE(stub_->DeleteSession(Ctx("key-quota").get(), del, &gone).ok());
  EXPECT_TRUE(Create("key-quota", "q3").ok());
  EXPECT_EQ(server_->sessions().usage("quota").sessions, 2);
  EXPECT_EQ(server_->sessions().usage("alpha").sessions, 3);
}

TEST_F(TenantTest, ConcurrentTurnQuotaAnswersWithARetryHint) {
  ASSERT_TRUE(Create("key-quota", "q1").ok());
  ASSERT_TRUE(Create("key-quota", "q2").ok());
  engine_->set_before_call([] { absl::SleepFor(absl::Milliseconds(5)); });
  auto ctx = Ctx("key-quota");
  pb::GenerateRequest req;
  req.set_session_id("q1");
  req.set_text("x");
  req.set_max_tokens(50);
  req.set_ignore_eos(true);
  auto reader = stub_->Generate(ctx.get(), req);
  pb::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // the first turn runs
  std::string retry;
  grpc::Status second = Generate("key-quota", "q2", 4, &retry);
  EXPECT_EQ(second.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(second.error_message(), HasSubstr("concurrent turns"));
  EXPECT_EQ(retry, "1");
  while (reader->Read(&msg)) {
  }
  EXPECT_TRUE(reader->Finish().ok());
  engine_->set_before_call(nullptr);
  // The slot is free once the turn has answered (tokens: 1 + 50 of the 60
  // per minute used, 9 left for a 5-token prompt).
  EXPECT_EQ(Generate("key-quota", "q2", 4).error_code(), grpc::StatusCode::OK);
}

TEST_F(TenantTest, TokensPerMinuteBucketSaysHowLongToWait) {
  ASSERT_TRUE(Create("key-quota", "q1").ok());
  // 60 tokens per minute = 1 per second; the bucket starts full. "hello" is
  // 5 prompt tokens (bytes tokenizer) + 52 generated = 57: 3 left.
  ASSERT_EQ(Generate("key-quota", "q1", 52).error_code(), grpc::StatusCode::OK);
  std::string retry;
  grpc::Status st = Generate("key-quota", "q1", 4, &retry);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_THAT(st.error_message(), HasSubstr("60 tokens per minute"));
  EXPECT_THAT(st.error_message(), HasSubstr("retry after 2 s"));
  EXPECT_EQ(retry, "2");  // 2 tokens short at 1 token per second
  clock_.Advance(absl::Seconds(1));
  st = Generate("key-quota", "q1", 4, &retry);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(retry, "1");
  clock_.Advance(absl::Seconds(1));
  EXPECT_EQ(Generate("key-quota", "q1", 4).error_code(), grpc::StatusCode::OK);
  // Another tenant has its own (unlimited) budget.
  ASSERT_TRUE(Create("key-alpha", "a1").ok());
  EXPECT_EQ(Generate("key-alpha", "a1", 100).error_code(),
            grpc::StatusCode::OK);
}

TEST_F(TenantTest, ServersWithoutKeysRefuseNonLoopbackAddresses) {
  ServerOptions o;
  o.listen = "0.0.0.0:0";
  o.http.listen = "";
  o.store = "memory";
  auto refused = RwkvServer::Start(std::make_unique<FakeEngine>(),
                                   *engine::Tokenizer::Load("bytes"), o);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(refused.status().message()),
              HasSubstr("--allow-unauthenticated"));
  o.allow_unauthenticated = true;
  auto open = RwkvServer::Start(std::make_unique<FakeEngine>(),
                                *engine::Tokenizer::Load("bytes"), o);
  ASSERT_TRUE(open.ok()) << open.status();
  (*open)->Shutdown(absl::ZeroDuration());
  // The HTTP front's address counts too.
  o.allow_unauthenticated = false;
  o.listen = "127.0.0.1:0";
  o.http.listen = "0.0.0.0:0";
  auto http_refused = RwkvServer::Start(std::make_unique<FakeEngine>(),
                                        *engine::Tokenizer::Load("bytes"), o);
  ASSERT_FALSE(http_refused.ok());
  EXPECT_THAT(std::string(http_refused.status().message()),
              HasSubstr("refusing to listen on 0.0.0.0:0"));
  o.listen = "0.0.0.0:0";
  o.http.listen = "";
  o.auth.api_keys_file = keys_file_;
  auto keyed = RwkvServer::Start(std::make_unique<FakeEngine>(),
                                 *engine::Tokenizer::Load("bytes"), o);
  ASSERT_TRUE(keyed.ok()) << keyed.status();
  (*keyed)->Shutdown(absl::ZeroDuration());
}

}  // namespace
}  // namespace rwkv::server
