// Several rwkv-server replicas sharing sessions through Redis, behind HAProxy
// (docker/haproxy.cfg), all real child processes on free loopback ports with
// their data in a temp dir (redis-server with appendonly yes, appendfsync
// always), stopped by pid:
//  * a conversation whose turns alternate between replicas remembers (the
//    demo model's name recall through HAProxy, round-robin), word for word
//    what one replica alone answers;
//  * 16 concurrent sessions over 3 replicas give exactly their solo greedy
//    tokens;
//  * two replicas race turns on one session: exactly one runs, the other
//    gets FAILED_PRECONDITION, the state is never lost or doubled;
//  * kill -9 of the replica streaming a turn: the retry through HAProxy
//    lands on the other replica, the session is at its last acknowledged
//    turn (bit-exact), and the dead replica's lease frees within the lease
//    timeout;
//  * kill -9 of a replica under a load of 8 streams: every stream goes on
//    through HAProxy, no acknowledged turn lost;
//  * kill -9 of Redis mid-load and a restart: no acknowledged turn lost;
//  * Redis down: clear UNAVAILABLE errors, then recovery without restarting
//    the replicas;
//  * affinity: with HAProxy balancing on the x-session-id header the client
//    library sends, a session's calls stay on one replica.
// Skips without redis-server or haproxy (setup.sh installs both).
#include <hiredis/hiredis.h>

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/chat_client.h"
#include "engine/state_file.h"
#include "gtest/gtest.h"
#include "server/session/redis_connection.h"
#include "tests/testing/haproxy_process.h"
#include "tests/testing/redis_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"
#include "tools/train/corpus.h"

namespace rwkv {
namespace {

namespace pb = ::rwkv::v1;
using ::rwkv::client::ChatClient;
using ::rwkv::client::TurnResult;
using ::rwkv::testing::HaproxyProcess;
using ::rwkv::testing::RedisProcess;
using ::rwkv::testing::ServerProcess;
using ::rwkv::testing::TempDir;

constexpr int kLeaseTimeoutSeconds = 2;

std::vector<std::string> TinyModel() { return {"--random-model", "tiny"}; }

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

pb::GenerateRequest Turn(const std::string& id, const std::string& text,
                         int max_tokens) {
  pb::GenerateRequest r;
  r.set_session_id(id);
  r.set_text(text);
  r.set_max_tokens(max_tokens);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  return r;
}

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!RedisProcess::Available() || !HaproxyProcess::Available()) {
      GTEST_SKIP() << "redis-server or haproxy is not installed (setup.sh "
                      "installs both)";
    }
    redis_ = std::make_unique<RedisProcess>(dir_.path());
    ASSERT_TRUE(redis_->Start().ok()) << redis_->Log();
  }

  void StartReplicas(int n, const std::vector<std::string>& model) {
    for (int i = 0; i < n; ++i) {
      std::vector<std::string> args = model;
      args.insert(
          args.end(),
          {"--threads", "1", "--store", redis_->url(), "--redis-lease-timeout",
           absl::StrCat(kLeaseTimeoutSeconds), "--redis-timeout", "1"});
      replicas_.push_back(std::make_unique<ServerProcess>(
          RWKV_SERVER_BIN, args,
          dir_.Sub(absl::StrCat("replica", replicas_.size(), ".log"))));
      absl::Status s = replicas_.back()->Start();
      ASSERT_TRUE(s.ok()) << s;
    }
  }
  void StartHaproxy(const std::string& balance = "") {
    std::vector<std::string> backends;
    for (const auto& r : replicas_) backends.push_back(r->address());
    haproxy_ = std::make_unique<HaproxyProcess>(
        std::string(RWKV_SOURCE_DIR) + "/docker/haproxy.cfg", dir_.path(),
        backends, balance);
    absl::Status s = haproxy_->Start();
    ASSERT_TRUE(s.ok()) << s << "\n" << haproxy_->Log();
  }
  std::unique_ptr<ChatClient> Client(const std::string& address) {
    std::unique_ptr<ChatClient> c = ChatClient::Connect(address);
    c->set_unary_timeout(absl::Seconds(20));
    c->set_turn_timeout(absl::Seconds(60));
    return c;
  }
  // `method` calls on `session` that replica `i` answered OK.
  int Served(int i, const std::string& method, const std::string& session) {
    const std::string record = absl::StrCat(
        "request method=", method, " session_id=\"", session, "\" status=OK");
    const std::string log = replicas_[i]->Log();
    int n = 0;
    for (size_t at = log.find(record); at != std::string::npos;
         at = log.find(record, at + 1)) {
      ++n;
    }
    return n;
  }
  // A raw Redis command.
  server::RedisReplyPtr Raw(const std::vector<absl::string_view>& args) {
    absl::StatusOr<server::RedisAddress> a =
        server::ParseRedisUrl(redis_->url());
    auto c = server::RedisConnection::Connect(*a, absl::Seconds(2));
    if (!c.ok()) return nullptr;
    absl::StatusOr<server::RedisReplyPtr> r = (*c)->Command(args);
    return r.ok() ? *std::move(r) : nullptr;
  }
  // The store lease on `session` ("" if none): "<host>:<pid>:<rand>:<n>".
  std::string LeaseHolder(const std::string& session) {
    server::RedisReplyPtr keys =
        Raw({"KEYS", absl::StrCat("rwkv:*:l:", session)});
    if (keys == nullptr || keys->elements != 1) return "";
    server::RedisReplyPtr v =
        Raw({"GET",
             absl::string_view(keys->element[0]->str, keys->element[0]->len)});
    return v != nullptr && v->type == REDIS_REPLY_STRING
               ? std::string(v->str, v->len)
               : "";
  }
  // Retries `call` while it fails with a code a client should retry on
  // (busy elsewhere, unreachable) for up to `patience`.
  template <typename T, typename Call>
  absl::StatusOr<T> Retry(Call call, absl::Duration patience) {
    const absl::Time give_up = absl::Now() + patience;
    for (;;) {
      absl::StatusOr<T> r = call();
      const bool retry = absl::IsFailedPrecondition(r.status()) ||
                         absl::IsUnavailable(r.status());
      if (r.ok() || !retry || absl::Now() > give_up) return r;
      absl::SleepFor(absl::Milliseconds(100));
    }
  }

  // One client of a load: fixed turns through HAProxy until stop_.
  struct LoadStream {
    std::string id;
    int64_t acked = 0;
    std::string acked_state;  // exported right after the last ack
    int after_event = 0;      // turns acknowledged once event_ is set
    std::vector<std::string> errors;
  };
  void RunStream(LoadStream& s) {
    std::unique_ptr<ChatClient> c = Client(haproxy_->address());
    if (!c->GetOrCreateSession(s.id, 0).ok()) {
      s.errors.push_back("create failed");
      return;
    }
    while (!stop_.load()) {
      absl::StatusOr<TurnResult> r = c->Generate(Turn(s.id, "x", 16), nullptr);
      if (!r.ok()) {
        s.errors.push_back(r.status().ToString());
        absl::SleepFor(absl::Milliseconds(50));
        continue;
      }
      s.acked = r->token_count;
      s.after_event += event_.load();
      absl::StatusOr<pb::ExportStateResponse> e = c->ExportState(s.id, "fp32");
      s.acked_state = e.ok() && e->token_count() == s.acked ? e->state() : "";
    }
  }

  // After a load: every stream had turns acknowledged after the event, and
  // each session is exactly at its last acknowledged turn (bit-exact when
  // its state was exported right after that acknowledgement) or one whole
  // 16-token turn of "x" later (its answer was lost). Returns how many are
  // a turn later.
  int CheckStreams(const std::vector<LoadStream>& streams) {
    std::unique_ptr<ChatClient> c = Client(haproxy_->address());
    int unacked_applied = 0;
    for (const LoadStream& s : streams) {
      SCOPED_TRACE(s.id);
      EXPECT_GT(s.after_event, 0);
      absl::StatusOr<pb::SessionInfo> info = Retry<pb::SessionInfo>(
          [&] { return c->GetSession(s.id); }, absl::Seconds(10));
      EXPECT_TRUE(info.ok()) << info.status();
      if (!info.ok()) continue;
      if (info->token_count() == s.acked) {
        absl::StatusOr<pb::ExportStateResponse> now =
            c->ExportState(s.id, "fp32");
        EXPECT_TRUE(now.ok()) << now.status();
        if (now.ok() && !s.acked_state.empty()) {
          EXPECT_TRUE(SameState(now->state(), s.acked_state));
        }
      } else {
        EXPECT_EQ(info->token_count(), s.acked + 17);
        ++unacked_applied;
      }
    }
    return unacked_applied;
  }

  TempDir dir_;
  std::unique_ptr<RedisProcess> redis_;
  std::vector<std::unique_ptr<ServerProcess>> replicas_;
  std::unique_ptr<HaproxyProcess> haproxy_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> event_{false};  // the kill or restart happened
};

TEST_F(ReplicasTest, AConversationAlternatingBetweenReplicasRemembers) {
  const std::string demo =
      std::string(RWKV_SOURCE_DIR) + "/models/demo/rwkv4-demo.pth";
  if (access(demo.c_str(), R_OK) != 0) GTEST_SKIP() << "no " << demo;
  StartReplicas(2, {"--model", demo, "--tokenizer", "bytes"});
  StartHaproxy();
  std::unique_ptr<ChatClient> lb = Client(haproxy_->address());
  std::unique_ptr<ChatClient> alone = Client(replicas_[0]->address());
  auto chat = [](ChatClient& c, const std::string& id, const std::string& m) {
    pb::ChatRequest r;
    r.set_session_id(id);
    r.set_message(m);
    r.set_max_tokens(64);
    r.mutable_sampling()->set_temperature(0);
    absl::StatusOr<TurnResult> t = c.Chat(r, nullptr);
    EXPECT_TRUE(t.ok()) << t.status();
    return t.ok() ? t->text : "";
  };
  constexpr int kNames = 12;
  int recalled = 0;
  for (int i = 0; i < kNames; ++i) {
    const std::string& name = train::TrainingNames()[i];
    const std::string id = absl::StrCat("rr-", i);
    const std::string ref = absl::StrCat("alone-", i);
    ASSERT_TRUE(lb->GetOrCreateSession(id, 0).ok());
    ASSERT_TRUE(alone->GetOrCreateSession(ref, 0).ok());
    const std::string intro = absl::StrCat("My name is ", name, ".");
    EXPECT_EQ(chat(*lb, id, intro), chat(*alone, ref, intro));
    const std::string answer = chat(*lb, id, "What is my name?");
    EXPECT_EQ(answer, chat(*alone, ref, "What is my name?"));
    recalled += answer.find(name) != std::string::npos;
    // The two turns ran on different replicas.
    EXPECT_EQ(Served(0, "Chat", id), 1) << id;
    EXPECT_EQ(Served(1, "Chat", id), 1) << id;
  }
  std::printf("[ measured ] names recalled across replicas: %d of %d\n",
              recalled, kNames);
  EXPECT_GE(recalled, kNames * 8 / 10);
}

TEST_F(ReplicasTest, SixteenSessionsOverThreeReplicasGiveTheirSoloTokens) {
  StartReplicas(3, TinyModel());
  StartHaproxy();
  constexpr int kSessions = 16;
  constexpr int kTurns = 3;
  auto text = [](int s, int t) { return absl::StrCat("s", s, " t", t, " "); };
  // Alone: one session at a time on one replica.
  std::vector<std::vector<std::vector<int32_t>>> solo(kSessions);
  std::unique_ptr<ChatClient> one = Client(replicas_[0]->address());
  for (int s = 0; s < kSessions; ++s) {
    const std::string id = absl::StrCat("solo-", s);
    ASSERT_TRUE(one->GetOrCreateSession(id, 0).ok());
    for (int t = 0; t < kTurns; ++t) {
      absl::StatusOr<TurnResult> r =
          one->Generate(Turn(id, text(s, t), 24), nullptr);
      ASSERT_TRUE(r.ok()) << r.status();
      solo[s].push_back(r->token_ids);
    }
  }
  // Together, every call through HAProxy (round-robin over 3 replicas).
  std::vector<std::vector<std::vector<int32_t>>> together(kSessions);
  std::vector<std::string> errors(kSessions);
  std::vector<std::thread> threads;
  absl::Notification go;
  for (int s = 0; s < kSessions; ++s) {
    threads.emplace_back([&, s] {
      std::unique_ptr<ChatClient> c = Client(haproxy_->address());
      const std::string id = absl::StrCat("conc-", s);
      go.WaitForNotification();
      if (absl::Status st = c->GetOrCreateSession(id, 0).status(); !st.ok()) {
        errors[s] = st.ToString();
        return;
      }
      for (int t = 0; t < kTurns; ++t) {
        absl::StatusOr<TurnResult> r =
            c->Generate(Turn(id, text(s, t), 24), nullptr);
        if (!r.ok()) {
          errors[s] = r.status().ToString();
          return;
        }
        together[s].push_back(r->token_ids);
      }
    });
  }
  go.Notify();
  for (std::thread& t : threads) t.join();
  std::vector<int> per_replica(3, 0);
  for (int s = 0; s < kSessions; ++s) {
    EXPECT_EQ(errors[s], "") << s;
    EXPECT_EQ(together[s], solo[s]) << "session " << s;
    for (int r = 0; r < 3; ++r) {
      per_replica[r] += Served(r, "Generate", absl::StrCat("conc-", s));
    }
  }
  EXPECT_EQ(per_replica[0] + per_replica[1] + per_replica[2],
            kSessions * kTurns);
  for (int r = 0; r < 3; ++r) EXPECT_GT(per_replica[r], 0) << "replica " << r;
}

TEST_F(ReplicasTest, TwoReplicasRaceOneSessionAndExactlyOneTurnRuns) {
  StartReplicas(2, TinyModel());
  std::unique_ptr<ChatClient> a = Client(replicas_[0]->address());
  std::unique_ptr<ChatClient> b = Client(replicas_[1]->address());
  ASSERT_TRUE(a->GetOrCreateSession("race", 0).ok());
  int64_t count = 0;
  for (int round = 0; round < 6; ++round) {
    absl::StatusOr<TurnResult> ra = absl::UnknownError("");
    absl::StatusOr<TurnResult> rb = absl::UnknownError("");
    absl::Notification go;
    std::thread ta([&] {
      go.WaitForNotification();
      ra = a->Generate(Turn("race", "race a", 2000), nullptr);
    });
    std::thread tb([&] {
      go.WaitForNotification();
      rb = b->Generate(Turn("race", "race b", 2000), nullptr);
    });
    go.Notify();
    ta.join();
    tb.join();
    ASSERT_NE(ra.ok(), rb.ok()) << ra.status() << " / " << rb.status();
    const absl::Status& lost = ra.ok() ? rb.status() : ra.status();
    EXPECT_EQ(lost.code(), absl::StatusCode::kFailedPrecondition) << lost;
    EXPECT_TRUE(absl::StrContains(lost.message(), "busy on another replica"))
        << lost;
    const TurnResult& won = ra.ok() ? *ra : *rb;
    // Exactly one turn more: never lost, never doubled.
    EXPECT_EQ(won.token_count,
              count + won.usage.prompt_tokens() + won.usage.generated_tokens());
    count = won.token_count;
    EXPECT_EQ(a->GetSession("race")->token_count(), count);
    EXPECT_EQ(b->GetSession("race")->token_count(), count);
  }
}

TEST_F(ReplicasTest, AReplicaKilledMidStreamLosesNoAcknowledgedTurn) {
  StartReplicas(2, TinyModel());
  StartHaproxy();
  std::unique_ptr<ChatClient> c = Client(haproxy_->address());
  ASSERT_TRUE(c->GetOrCreateSession("k", 0).ok());
  absl::StatusOr<TurnResult> first =
      c->Generate(Turn("k", "hello", 8), nullptr);
  ASSERT_TRUE(first.ok()) << first.status();
  absl::StatusOr<pb::ExportStateResponse> acked = c->ExportState("k", "fp32");
  ASSERT_TRUE(acked.ok()) << acked.status();

  // A long turn; once it streams, kill -9 the replica running it (the one
  // whose pid its lease in Redis names).
  absl::Notification streaming;
  absl::StatusOr<TurnResult> cut = absl::UnknownError("");
  std::thread turn([&] {
    cut =
        c->Generate(Turn("k", "long", 4000), [&](const pb::GenerateResponse&) {
          if (!streaming.HasBeenNotified()) streaming.Notify();
          return true;
        });
  });
  ASSERT_TRUE(streaming.WaitForNotificationWithTimeout(absl::Seconds(20)));
  const std::vector<std::string> holder = absl::StrSplit(LeaseHolder("k"), ':');
  ASSERT_EQ(holder.size(), 4u) << LeaseHolder("k");
  int victim = -1;
  for (int i = 0; i < 2; ++i) {
    if (absl::StrCat(replicas_[i]->pid()) == holder[1]) victim = i;
  }
  ASSERT_GE(victim, 0) << "no replica has pid " << holder[1];
  replicas_[victim]->Kill();
  const absl::Time killed = absl::Now();
  turn.join();
  EXPECT_FALSE(cut.ok());

  // The dead replica's lease frees within the lease timeout.
  while (!LeaseHolder("k").empty() &&
         absl::Now() - killed < absl::Seconds(10)) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  const absl::Duration freed = absl::Now() - killed;
  std::printf("[ measured ] lease freed %.2f s after kill -9 (timeout %d s)\n",
              absl::ToDoubleSeconds(freed), kLeaseTimeoutSeconds);
  EXPECT_LE(freed,
            absl::Seconds(kLeaseTimeoutSeconds) + absl::Milliseconds(500));

  // Through HAProxy, on the survivor: the last acknowledged turn, exactly.
  absl::StatusOr<pb::SessionInfo> info = Retry<pb::SessionInfo>(
      [&] { return c->GetSession("k"); }, absl::Seconds(10));
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(info->token_count(), first->token_count);
  absl::StatusOr<pb::ExportStateResponse> now = c->ExportState("k", "fp32");
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_TRUE(SameState(now->state(), acked->state()));
  // The client's retry of the cut turn runs there.
  const int survivor = 1 - victim;
  const int served = Served(survivor, "Generate", "k");
  absl::StatusOr<TurnResult> again = Retry<TurnResult>(
      [&] { return c->Generate(Turn("k", "long", 64), nullptr); },
      absl::Seconds(10));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->token_count, first->token_count + 4 + 64);
  EXPECT_EQ(Served(survivor, "Generate", "k"), served + 1);
}

TEST_F(ReplicasTest, RedisKilledAndRestartedMidLoadLosesNoAcknowledgedTurn) {
  StartReplicas(2, TinyModel());
  StartHaproxy();
  constexpr int kStreams = 8;
  std::vector<LoadStream> streams(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    streams[i].id = absl::StrCat("load-", i);
    threads.emplace_back([&, i] { RunStream(streams[i]); });
  }
  absl::SleepFor(absl::Milliseconds(1500));
  redis_->Kill();
  absl::SleepFor(absl::Seconds(1));
  ASSERT_TRUE(redis_->Start().ok()) << redis_->Log();
  event_ = true;
  absl::SleepFor(absl::Seconds(4));
  stop_ = true;
  for (std::thread& t : threads) t.join();

  size_t errors = 0;
  for (const LoadStream& s : streams) errors += s.errors.size();
  EXPECT_GT(errors, 0u);  // the outage was felt
  for (const LoadStream& s : streams) {
    for (const std::string& e : s.errors) {
      // Retryable, and said so: Redis was unreachable, a lease of a turn
      // cut by the crash was still held, or the state moved meanwhile.
      EXPECT_TRUE(absl::StrContains(e, "UNAVAILABLE") ||
                  absl::StrContains(e, "FAILED_PRECONDITION") ||
                  absl::StrContains(e, "ABORTED"))
          << s.id << ": " << e;
    }
  }
  const int unacked_applied = CheckStreams(streams);
  std::printf(
      "[ measured ] %zu failed turns during the outage; sessions one "
      "unacknowledged turn ahead: %d of %d\n",
      errors, unacked_applied, kStreams);
}

TEST_F(ReplicasTest, AReplicaKilledMidLoadLosesNoAcknowledgedTurn) {
  StartReplicas(2, TinyModel());
  StartHaproxy();
  constexpr int kStreams = 8;
  std::vector<LoadStream> streams(kStreams);
  std::vector<std::thread> threads;
  for (int i = 0; i < kStreams; ++i) {
    streams[i].id = absl::StrCat("busy-", i);
    threads.emplace_back([&, i] { RunStream(streams[i]); });
  }
  absl::SleepFor(absl::Milliseconds(1500));
  replicas_[0]->Kill();
  event_ = true;
  // Cut turns' leases time out (2 s); HAProxy drops the dead replica.
  absl::SleepFor(absl::Seconds(5));
  stop_ = true;
  for (std::thread& t : threads) t.join();
  size_t errors = 0;
  for (const LoadStream& s : streams) errors += s.errors.size();
  // Every stream goes on on the survivor, at its last acknowledged turn.
  const int unacked_applied = CheckStreams(streams);
  std::printf(
      "[ measured ] replica killed under %d streams: %zu failed turns; "
      "sessions one unacknowledged turn ahead: %d of %d\n",
      kStreams, errors, unacked_applied, kStreams);
}

TEST_F(ReplicasTest, RedisDownGivesUnavailableThenRecoversWithoutRestarts) {
  StartReplicas(2, TinyModel());
  StartHaproxy();
  std::unique_ptr<ChatClient> c = Client(haproxy_->address());
  ASSERT_TRUE(c->GetOrCreateSession("d", 0).ok());
  absl::StatusOr<TurnResult> before = c->Generate(Turn("d", "abc", 8), nullptr);
  ASSERT_TRUE(before.ok()) << before.status();
  const pid_t pids[2] = {replicas_[0]->pid(), replicas_[1]->pid()};

  redis_->Kill();
  for (int i = 0; i < 2; ++i) {  // both replicas answer the same
    absl::Status turn = c->Generate(Turn("d", "abc", 8), nullptr).status();
    EXPECT_EQ(turn.code(), absl::StatusCode::kUnavailable) << turn;
    EXPECT_TRUE(absl::StrContains(turn.message(), redis_->url())) << turn;
    EXPECT_TRUE(absl::StrContains(turn.message(), "unreachable")) << turn;
    EXPECT_EQ(c->GetSession("d").status().code(),
              absl::StatusCode::kUnavailable);
    EXPECT_EQ(c->GetOrCreateSession("new", 0).status().code(),
              absl::StatusCode::kUnavailable);
  }
  EXPECT_TRUE(c->GetModelInfo().ok());  // what needs no session still works

  ASSERT_TRUE(redis_->Start().ok()) << redis_->Log();
  absl::StatusOr<TurnResult> after = Retry<TurnResult>(
      [&] { return c->Generate(Turn("d", "abc", 8), nullptr); },
      absl::Seconds(10));
  ASSERT_TRUE(after.ok()) << after.status();
  EXPECT_EQ(after->token_count, before->token_count + 3 + 8);
  EXPECT_EQ(c->GetSession("d")->token_count(), after->token_count);
  for (int i = 0; i < 2; ++i) {
    EXPECT_EQ(replicas_[i]->pid(), pids[i]);  // never restarted
  }
}

TEST_F(ReplicasTest, SessionHeaderAffinityKeepsASessionOnOneReplica) {
  StartReplicas(2, TinyModel());
  StartHaproxy("hdr(x-session-id)");
  std::unique_ptr<ChatClient> c = Client(haproxy_->address());
  constexpr int kSessions = 8;
  constexpr int kTurns = 4;
  std::vector<int> on(2, 0);
  for (int s = 0; s < kSessions; ++s) {
    const std::string id = absl::StrCat("sticky-", s);
    ASSERT_TRUE(c->GetOrCreateSession(id, 0).ok());
    for (int t = 0; t < kTurns; ++t) {
      ASSERT_TRUE(c->Generate(Turn(id, "hi", 4), nullptr).ok());
    }
    const int a = Served(0, "Generate", id);
    const int b = Served(1, "Generate", id);
    EXPECT_EQ(a + b, kTurns) << id;
    EXPECT_TRUE(a == 0 || b == 0) << id << ": " << a << " / " << b;
    on[a > 0 ? 0 : 1]++;
  }
  std::printf("[ measured ] sessions per replica with affinity: %d / %d\n",
              on[0], on[1]);
}

}  // namespace
}  // namespace rwkv
