// Defects seen from a client (the server-layers issue), each checked through
// real gRPC against an RwkvServer that runs the FakeEngine (so timing can be
// controlled: a slow engine makes "while the prefix runs" and "during a
// turn" certain) and a fake clock (expiry without waiting).
#include <atomic>
#include <chrono>
#include <memory>
#include <string>

#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/state_file.h"
#include "engine/tokenizer.h"
#include "gmock/gmock.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rwkv/v1/chat.grpc.pb.h"
#include "server/rwkv_server.h"
#include "tests/testing/fake_clock.h"
#include "tests/testing/fake_engine.h"

namespace rwkv::server {
namespace {

namespace pb = ::rwkv::v1;
using ::rwkv::testing::FakeEngine;
using ::testing::HasSubstr;
using ::testing::StartsWith;

using ::rwkv::testing::FakeClock;

class ServerDefectsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto engine = std::make_unique<FakeEngine>();
    engine_ = engine.get();
    ServerOptions o;
    o.http.listen = "";  // gRPC only
    o.listen = "127.0.0.1:0";
    o.store = "memory";
    o.sessions.sweep_interval = absl::Hours(1);  // no background sweeps
    o.sessions.clock = [this] { return clock_.Now(); };
    o.scheduler.chunk_size = 4;
    auto server = RwkvServer::Start(std::move(engine),
                                    *engine::Tokenizer::Load("bytes"), o);
    ASSERT_TRUE(server.ok()) << server.status();
    server_ = *std::move(server);
    stub_ = pb::ChatService::NewStub(grpc::CreateChannel(
        server_->address(), grpc::InsecureChannelCredentials()));
  }
  void TearDown() override { server_->Shutdown(absl::Seconds(5)); }

  // Each engine call takes `ms` milliseconds.
  void SlowDown(int ms) {
    engine_->set_before_call([ms] { absl::SleepFor(absl::Milliseconds(ms)); });
  }
  static void Deadline(grpc::ClientContext& ctx, int ms) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::milliseconds(ms));
  }
  grpc::Status Create(const std::string& id, int64_t ttl = 0,
                      const std::string& prefix = "",
                      pb::SessionInfo* info = nullptr,
                      int deadline_ms = 30000) {
    grpc::ClientContext ctx;
    Deadline(ctx, deadline_ms);
    pb::CreateSessionRequest req;
    req.set_session_id(id);
    req.set_ttl_seconds(ttl);
    req.set_prefix(prefix);
    pb::SessionInfo ignored;
    return stub_->CreateSession(&ctx, req, info ? info : &ignored);
  }
  grpc::Status Get(const std::string& id) {
    grpc::ClientContext ctx;
    Deadline(ctx, 30000);
    pb::GetSessionRequest req;
    req.set_session_id(id);
    pb::SessionInfo info;
    return stub_->GetSession(&ctx, req, &info);
  }

  FakeClock clock_;
  FakeEngine* engine_ = nullptr;
  std::unique_ptr<RwkvServer> server_;
  std::unique_ptr<pb::ChatService::Stub> stub_;
};

// (a) Long client strings are echoed only in part, so the error stays small
// enough for a default client (before: RESOURCE_EXHAUSTED "received initial
// metadata size exceeds limit" instead of the real code).
TEST_F(ServerDefectsTest, HugeClientValuesGiveTheRealCodeWithAShortMessage) {
  ASSERT_TRUE(Create("s").ok());
  const std::string huge(10000, 'q');
  {
    grpc::ClientContext ctx;
    pb::ExportStateRequest req;
    req.set_session_id("s");
    req.set_dtype(huge);
    pb::ExportStateResponse resp;
    grpc::Status st = stub_->ExportState(&ctx, req, &resp);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_LT(st.error_message().size(), 300u);
  }
  {
    grpc::ClientContext ctx;
    pb::CreateSessionRequest req;
    req.set_initial_state_name(huge);
    pb::SessionInfo info;
    grpc::Status st = stub_->CreateSession(&ctx, req, &info);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_LT(st.error_message().size(), 300u);
  }
  {
    // A state file whose metadata strings are huge: another model's state
    // with a 10,000-character fingerprint.
    absl::StatusOr<std::string> bytes = engine::SerializeState(
        FakeEngine::ForeignState(huge), engine::StateDtype::kFloat32);
    ASSERT_TRUE(bytes.ok());
    grpc::ClientContext ctx;
    pb::ImportStateRequest req;
    req.set_state(*bytes);
    pb::SessionInfo info;
    grpc::Status st = stub_->ImportState(&ctx, req, &info);
    EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_LT(st.error_message().size(), 1200u);
  }
}

// (b) A CreateSession whose deadline passes while its prefix runs leaves no
// session behind; a retry with the same id works (before: ALREADY_EXISTS).
TEST_F(ServerDefectsTest, ACreateSessionThatTimesOutLeavesNothing) {
  SlowDown(20);  // 64-token prefix in chunks of 4: ~16 steps, ~320 ms
  grpc::Status st = Create("late", 0, std::string(64, 'p'), nullptr, 100);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED);
  // Whatever was in flight finishes or stops; the id never appears.
  absl::SleepFor(absl::Milliseconds(600));
  EXPECT_EQ(Get("late").error_code(), grpc::StatusCode::NOT_FOUND);
  SlowDown(0);
  EXPECT_TRUE(Create("late", 0, std::string(64, 'p')).ok());
  EXPECT_TRUE(Get("late").ok());
}

// (c) DeleteSession during a running turn stops the turn at the next step
// with ABORTED (before: the turn ran on to max_tokens and ended OK).
TEST_F(ServerDefectsTest, DeletingASessionStopsItsRunningTurn) {
  ASSERT_TRUE(Create("busy").ok());
  SlowDown(2);
  grpc::ClientContext ctx;
  Deadline(ctx, 60000);
  pb::GenerateRequest req;
  req.set_session_id("busy");
  req.set_text("go");
  req.set_max_tokens(4000);
  req.set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse msg;
  ASSERT_TRUE(reader->Read(&msg));  // the turn is running
  {
    grpc::ClientContext del_ctx;
    pb::DeleteSessionRequest del;
    del.set_session_id("busy");
    pb::DeleteSessionResponse del_resp;
    ASSERT_TRUE(stub_->DeleteSession(&del_ctx, del, &del_resp).ok());
  }
  int more = 0;
  while (reader->Read(&msg)) ++more;
  grpc::Status st = reader->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::ABORTED);
  EXPECT_THAT(st.error_message(), HasSubstr("deleted"));
  EXPECT_LT(more, 4000);
}

// (d) total_sessions counts only sessions a Get would find (before: expired
// but not yet swept ones too).
TEST_F(ServerDefectsTest, ListSessionsCountsOnlyLiveSessions) {
  ASSERT_TRUE(Create("short1", 10).ok());
  ASSERT_TRUE(Create("short2", 10).ok());
  ASSERT_TRUE(Create("long", 1000).ok());
  clock_.Advance(absl::Seconds(11));
  grpc::ClientContext ctx;
  pb::ListSessionsResponse resp;
  ASSERT_TRUE(stub_->ListSessions(&ctx, pb::ListSessionsRequest(), &resp).ok());
  EXPECT_EQ(resp.total_sessions(), 1);
  ASSERT_EQ(resp.sessions_size(), 1);
  EXPECT_EQ(resp.sessions(0).session_id(), "long");
}

// (e) Usage.cached_tokens reports prompt tokens served from the prefix
// cache (before: always 0).
TEST_F(ServerDefectsTest, UsageReportsCachedPromptTokens) {
  const std::string system = "System: be brief.\n";
  ASSERT_TRUE(Create("warm", 0, system).ok());
  ASSERT_TRUE(Create("fresh").ok());
  grpc::ClientContext ctx;
  pb::GenerateRequest req;
  req.set_session_id("fresh");
  req.set_text(system + "Q?");
  req.set_max_tokens(2);
  req.set_ignore_eos(true);
  auto reader = stub_->Generate(&ctx, req);
  pb::GenerateResponse msg;
  pb::Usage usage;
  while (reader->Read(&msg)) {
    if (msg.has_usage()) usage = msg.usage();
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(usage.cached_tokens(), static_cast<int32_t>(system.size()));
  EXPECT_EQ(usage.prompt_tokens(), static_cast<int32_t>(system.size() + 2));
}

// (f) CreateSession's bad-id message names the field like every other RPC.
TEST_F(ServerDefectsTest, CreateSessionBadIdNamesTheField) {
  grpc::Status st = Create("no spaces allowed");
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(st.error_message(), StartsWith("session_id: "));
}

}  // namespace
}  // namespace rwkv::server
