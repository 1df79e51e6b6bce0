// The durability contract, tested the hard way: an rwkv-server child process
// with the RocksDB store under load (32 concurrent streams plus creates,
// deletes and forks) is killed with SIGKILL at a random moment, 20 times,
// and restarted on the same data directory each time. The clients log every
// acknowledged operation; after every restart:
//  * every acknowledged turn is there: the session's token count is the one
//    its final message said, and its state is bit-exact the state exported
//    right after that acknowledgement;
//  * a turn that was not acknowledged is never half-applied: the session is
//    at its last acknowledged state or exactly one whole turn later (the
//    crash came between the durable write and the answer);
//  * acknowledged creations and forks exist (forks bit-exact), acknowledged
//    deletions stay deleted.
#include <atomic>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "engine/state_file.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "rwkv/v1/chat.grpc.pb.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace rwkv {
namespace {

namespace pb = ::rwkv::v1;
using ::rwkv::testing::ServerProcess;
using ::rwkv::testing::TempDir;

constexpr int kStreams = 32;
constexpr int kRounds = 20;

// One stream's session; touched only by its thread while a round runs.
struct Tracked {
  std::string id;
  int64_t acked = 0;          // token count after the last acknowledged turn
  std::string acked_state;    // exported right after it ("": not known)
  bool in_flight = false;     // a turn was sent and not acknowledged
  int64_t in_flight_max = 0;  // its prompt tokens + max_tokens
  int64_t in_flight_min = 0;  // its prompt tokens + 1
};

// Two state files hold the same state (every value, bit for bit).
bool SameState(const std::string& a, const std::string& b) {
  absl::StatusOr<engine::State> sa = engine::ParseStateStandalone(a, "a");
  absl::StatusOr<engine::State> sb = engine::ParseStateStandalone(b, "b");
  if (!sa.ok() || !sb.ok()) return false;
  if (sa->token_count() != sb->token_count()) return false;
  for (const std::string& name : sa->ComponentNames()) {
    if (*sa->ComponentValues(name) != *sb->ComponentValues(name)) return false;
  }
  return true;
}

class Client {
 public:
  explicit Client(const std::string& address)
      : stub_(pb::ChatService::NewStub(grpc::CreateChannel(
            address, grpc::InsecureChannelCredentials()))) {}

  static void Deadline(grpc::ClientContext& ctx) {
    ctx.set_deadline(std::chrono::system_clock::now() +
                     std::chrono::seconds(30));
  }
  grpc::Status Create(const std::string& id) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::CreateSessionRequest req;
    req.set_session_id(id);
    pb::SessionInfo info;
    return stub_->CreateSession(&ctx, req, &info);
  }
  grpc::Status Get(const std::string& id, pb::SessionInfo* info) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::GetSessionRequest req;
    req.set_session_id(id);
    return stub_->GetSession(&ctx, req, info);
  }
  grpc::Status Delete(const std::string& id) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::DeleteSessionRequest req;
    req.set_session_id(id);
    pb::DeleteSessionResponse resp;
    return stub_->DeleteSession(&ctx, req, &resp);
  }
  grpc::Status Fork(const std::string& from, const std::string& to) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::ForkSessionRequest req;
    req.set_source_session_id(from);
    req.set_new_session_id(to);
    pb::SessionInfo info;
    return stub_->ForkSession(&ctx, req, &info);
  }
  grpc::Status Export(const std::string& id, pb::ExportStateResponse* resp) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::ExportStateRequest req;
    req.set_session_id(id);
    return stub_->ExportState(&ctx, req, resp);
  }
  // A greedy turn; `token_count` gets the final message's count.
  grpc::Status Turn(const std::string& id, const std::string& text,
                    int max_tokens, int64_t* token_count) {
    grpc::ClientContext ctx;
    Deadline(ctx);
    pb::GenerateRequest req;
    req.set_session_id(id);
    req.set_text(text);
    req.set_max_tokens(max_tokens);
    req.set_ignore_eos(true);
    req.mutable_sampling()->set_temperature(0);
    auto reader = stub_->Generate(&ctx, req);
    pb::GenerateResponse msg;
    bool finished = false;
    while (reader->Read(&msg)) {
      if (msg.finish_reason() != pb::FINISH_REASON_UNSPECIFIED) {
        finished = true;
        *token_count = msg.token_count();
      }
    }
    grpc::Status st = reader->Finish();
    if (st.ok() && !finished) {
      return grpc::Status(grpc::StatusCode::INTERNAL, "no final message");
    }
    return st;
  }

 private:
  std::unique_ptr<pb::ChatService::Stub> stub_;
};

class CrashRecoveryTest : public ::testing::Test {
 protected:
  std::unique_ptr<ServerProcess> StartServer() {
    auto server = std::make_unique<ServerProcess>(
        RWKV_SERVER_BIN,
        std::vector<std::string>{"--random-model", "tiny", "--threads", "1",
                                 "--data-dir", dir_.Sub("data"), "--max-batch",
                                 "32"},
        dir_.Sub("server.log"));
    absl::Status s = server->Start();
    EXPECT_TRUE(s.ok()) << s;
    return server;
  }

  // Checks every logged acknowledgement against the restarted server, then
  // makes what it finds the starting point of the next round.
  void Verify(Client& client, int round) {
    for (Tracked& t : streams_) {
      SCOPED_TRACE(absl::StrCat("round ", round, " session ", t.id));
      pb::SessionInfo info;
      grpc::Status s = client.Get(t.id, &info);
      ASSERT_TRUE(s.ok()) << s.error_message();
      const int64_t n = info.token_count();
      pb::ExportStateResponse now;
      ASSERT_TRUE(client.Export(t.id, &now).ok());
      if (n == t.acked) {
        if (!t.acked_state.empty()) {
          EXPECT_TRUE(SameState(now.state(), t.acked_state));
        }
      } else {
        // Only a whole unacknowledged turn may have been applied.
        ASSERT_TRUE(t.in_flight) << "at " << n << ", acknowledged " << t.acked;
        EXPECT_GE(n, t.acked + t.in_flight_min);
        EXPECT_LE(n, t.acked + t.in_flight_max);
        ++turns_applied_unacknowledged_;
      }
      t.acked = n;
      t.acked_state = now.state();
      t.in_flight = false;
    }
    for (const std::string& id : must_exist_) {
      pb::SessionInfo info;
      EXPECT_TRUE(client.Get(id, &info).ok()) << "round " << round << " " << id;
    }
    for (const std::string& id : must_not_exist_) {
      pb::SessionInfo info;
      EXPECT_EQ(client.Get(id, &info).error_code(), grpc::StatusCode::NOT_FOUND)
          << "round " << round << " " << id;
    }
    for (const auto& [id, state] : forks_) {
      pb::ExportStateResponse now;
      ASSERT_TRUE(client.Export(id, &now).ok())
          << "round " << round << " " << id;
      if (!state.empty()) {
        EXPECT_TRUE(SameState(now.state(), state)) << id;
      }
    }
  }

  void StreamLoop(Client& client, Tracked& t, uint32_t seed) {
    std::mt19937 rng(seed);
    while (!stop_.load()) {
      std::string text;
      const int len = 1 + static_cast<int>(rng() % 20);
      for (int i = 0; i < len; ++i) text += static_cast<char>('a' + rng() % 26);
      const int max_tokens = 1 + static_cast<int>(rng() % 8);
      t.in_flight = true;
      t.in_flight_min = len + 1;
      t.in_flight_max = len + max_tokens;
      int64_t count = 0;
      if (!client.Turn(t.id, text, max_tokens, &count).ok()) return;
      t.acked = count;
      t.in_flight = false;
      t.acked_state.clear();
      ++acked_turns_;
      pb::ExportStateResponse e;
      if (!client.Export(t.id, &e).ok()) return;
      if (e.token_count() == t.acked) t.acked_state = e.state();
    }
  }

  void AdminLoop(Client& client, int round, uint32_t seed) {
    std::mt19937 rng(seed);
    for (int n = 0; !stop_.load(); ++n) {
      const int op = static_cast<int>(rng() % 3);
      if (op == 0) {
        const std::string id = absl::StrCat("c-", round, "-", n);
        if (!client.Create(id).ok()) return;
        must_exist_.insert(id);
      } else if (op == 1 && !must_exist_.empty()) {
        auto it = must_exist_.begin();
        std::advance(it, rng() % must_exist_.size());
        const std::string id = *it;
        must_exist_.erase(it);  // unknown until acknowledged
        if (!client.Delete(id).ok()) return;
        must_not_exist_.insert(id);
      } else if (op == 2) {
        const std::string from = streams_[rng() % kStreams].id;
        const std::string id = absl::StrCat("f-", round, "-", n);
        if (!client.Fork(from, id).ok()) return;
        forks_[id] = "";
        pb::ExportStateResponse e;
        if (!client.Export(id, &e).ok()) return;
        forks_[id] = e.state();
      }
      absl::SleepFor(absl::Milliseconds(5));
    }
  }

  TempDir dir_;
  std::vector<Tracked> streams_;
  std::set<std::string> must_exist_;
  std::set<std::string> must_not_exist_;
  std::map<std::string, std::string> forks_;
  std::atomic<bool> stop_{false};
  std::atomic<int64_t> acked_turns_{0};
  int turns_applied_unacknowledged_ = 0;
};

TEST_F(CrashRecoveryTest, KillNineLosesNoAcknowledgedChange) {
  std::mt19937 rng(20261202);
  for (int round = 0; round <= kRounds; ++round) {
    std::unique_ptr<ServerProcess> server = StartServer();
    ASSERT_NE(server->pid(), -1);
    Client client(server->address());
    if (round == 0) {
      for (int i = 0; i < kStreams; ++i) {
        Tracked t;
        t.id = absl::StrCat("s", i);
        ASSERT_TRUE(client.Create(t.id).ok());
        streams_.push_back(t);
      }
    }
    Verify(client, round);
    if (HasFatalFailure() || round == kRounds) break;
    stop_ = false;
    std::vector<std::thread> threads;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < kStreams; ++i) {
      clients.push_back(std::make_unique<Client>(server->address()));
      // The thread gets its client, not `clients`: later push_backs move the
      // vector's buffer while earlier threads run.
      Client* c = clients.back().get();
      threads.emplace_back([&, c, i, seed = static_cast<uint32_t>(rng())] {
        StreamLoop(*c, streams_[i], seed);
      });
    }
    Client admin(server->address());
    threads.emplace_back([&, round, seed = static_cast<uint32_t>(rng())] {
      AdminLoop(admin, round, seed);
    });
    absl::SleepFor(absl::Milliseconds(300 + rng() % 1200));
    server->Kill();
    stop_ = true;
    for (std::thread& t : threads) t.join();
  }
  std::printf(
      "[ measured ] %d rounds, %lld acknowledged turns, %d turns "
      "applied but not acknowledged, %zu creations, %zu deletions, "
      "%zu forks checked\n",
      kRounds, static_cast<long long>(acked_turns_.load()),
      turns_applied_unacknowledged_, must_exist_.size(), must_not_exist_.size(),
      forks_.size());
  EXPECT_GT(acked_turns_.load(), 100);
}

// Sessions pushed out of RAM by a small --max-state-bytes stay on disk, load
// on use after a restart, and expire on disk like any other.
TEST_F(CrashRecoveryTest, RestartServesSessionsFromDiskAndExpiresThem) {
  const std::vector<std::string> flags = {
      "--random-model",    "tiny",
      "--threads",         "1",
      "--data-dir",        dir_.Sub("tiers"),
      "--max-state-bytes", "8K"};  // about 3 states
  std::map<std::string, std::string> states;
  {
    ServerProcess server(RWKV_SERVER_BIN, flags, dir_.Sub("tiers.log"));
    ASSERT_TRUE(server.Start().ok()) << server.Log();
    Client client(server.address());
    for (int i = 0; i < 12; ++i) {
      const std::string id = absl::StrCat("t", i);
      ASSERT_TRUE(client.Create(id).ok());
      int64_t count = 0;
      ASSERT_TRUE(client.Turn(id, absl::StrCat("hello ", i), 3, &count).ok());
      pb::ExportStateResponse e;
      ASSERT_TRUE(client.Export(id, &e).ok());
      states[id] = e.state();
    }
    // Short-lived sessions, soon cold and expired.
    for (int i = 0; i < 4; ++i) {
      grpc::ClientContext ctx;
      pb::CreateSessionRequest req;
      req.set_session_id(absl::StrCat("brief", i));
      req.set_ttl_seconds(1);
      pb::SessionInfo info;
      ASSERT_TRUE(pb::ChatService::NewStub(
                      grpc::CreateChannel(server.address(),
                                          grpc::InsecureChannelCredentials()))
                      ->CreateSession(&ctx, req, &info)
                      .ok());
    }
    server.Kill();  // expiry happens while it is down
  }
  absl::SleepFor(absl::Milliseconds(1500));
  ServerProcess server(RWKV_SERVER_BIN, flags, dir_.Sub("tiers2.log"));
  ASSERT_TRUE(server.Start().ok()) << server.Log();
  Client client(server.address());
  for (const auto& [id, state] : states) {
    pb::ExportStateResponse now;
    ASSERT_TRUE(client.Export(id, &now).ok()) << id;
    EXPECT_TRUE(SameState(now.state(), state)) << id;
    int64_t count = 0;
    EXPECT_TRUE(client.Turn(id, "more", 2, &count).ok()) << id;
  }
  for (int i = 0; i < 4; ++i) {
    pb::SessionInfo info;
    grpc::Status s = client.Get(absl::StrCat("brief", i), &info);
    EXPECT_EQ(s.error_code(), grpc::StatusCode::NOT_FOUND);
    EXPECT_NE(s.error_message().find("expired"), std::string::npos)
        << s.error_message();
  }
}

}  // namespace
}  // namespace rwkv
