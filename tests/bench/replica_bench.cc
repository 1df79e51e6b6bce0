// replica-bench: the figures of README "Running several replicas", all
// measured in one run (only ratios within a run mean anything on a shared
// machine). It starts its own redis-server (appendonly yes, appendfsync
// always), rwkv-server replicas and haproxy as child processes on free
// loopback ports, stopped by pid.
//
//  1. The added latency of a Redis commit per turn: lease + Commit until
//     acknowledged, in process, for a state of the 169M shape (590 KB fp32),
//     Redis store vs memory store, one at a time (p50/p99) and 32 at once
//     (one pipelined group); then as a client sees it, through one
//     rwkv-server with each store (turns alternate between the two): the
//     whole turn's latency and the final message's (the gap between the
//     last token's message and the final one, which waits for the commit).
//  2. A session last used on replica A continuing on replica B: the time to
//     the first token of B's turn (B checks the version, reads the record
//     from Redis and parses it) vs a turn on A that hits A's RAM copy.
//  3. Aggregate tokens/s of 2 replicas (1 compute thread each) + Redis
//     behind HAProxy vs 1 replica (2 threads) with the memory store (and
//     with the Redis store), the same load through the client library's
//     load generator. CPU-bound on a 2-core machine: reported, not a target.
//
//   replica-bench [--quick] [--streams 16] [--seconds 10]
// --quick: the tiny model and few iterations (the ctest smoke run).
#include <algorithm>
#include <atomic>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "client/chat_client.h"
#include "client/latency_stats.h"
#include "client/grpc_load_target.h"
#include "client/load_generator.h"
#include "common/cli_parse.h"
#include "engine/rwkv_engine.h"
#include "server/session/memory_session_store.h"
#include "server/session/redis_session_store.h"
#include "server/session/session_manager.h"
#include "tests/testing/haproxy_process.h"
#include "tests/testing/redis_process.h"
#include "tests/testing/server_process.h"
#include "tests/testing/temp_dir.h"

namespace rwkv {
namespace {

using client::LatencyStats;
using server::SessionLease;
using server::SessionManager;
using server::StatePtr;
using testing::HaproxyProcess;
using testing::RedisProcess;
using testing::ServerProcess;
using testing::TempDir;

struct BenchOptions {
  bool quick = false;
  int streams = 16;
  double seconds = 10;
};

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

// A fresh directory under `dir` (each part's Redis starts empty).
std::string Subdir(TempDir& dir, const std::string& name) {
  std::filesystem::create_directories(dir.Sub(name));
  return dir.Sub(name);
}

std::string Stats(const LatencyStats& s) {
  return absl::StrFormat("p50 %.2f ms, p99 %.2f ms (n=%d)", s.Median(),
                         s.Percentile(99), s.count());
}

// Lease + Commit latencies of `n` sequential turns on one session, then
// the time 32 concurrent commits take together.
struct CommitFigures {
  LatencyStats lease_ms;
  LatencyStats commit_ms;
  LatencyStats turn_ms;   // lease + commit
  LatencyStats group_ms;  // 32 commits at once, until the last is acked
};

absl::StatusOr<CommitFigures> MeasureCommits(server::SessionStore* store,
                                             const engine::Model& model,
                                             int n) {
  server::SessionManagerOptions mo;
  SessionManager sessions(mo, store);
  StatePtr fresh = std::make_shared<const engine::State>(model.NewState());
  std::vector<std::string> ids;
  for (int i = 0; i < 32; ++i) {
    absl::Notification done;
    absl::Status created;
    server::NewSession ns;
    ns.id = absl::StrCat("bench-", i);
    ns.state = fresh;
    ns.initial = fresh;
    ns.initial_shared = true;
    sessions.Create(std::move(ns), [&](absl::StatusOr<server::SessionInfo> r) {
      created = r.status();
      done.Notify();
    });
    done.WaitForNotification();
    if (!created.ok()) return created;
    ids.push_back(absl::StrCat("bench-", i));
  }
  CommitFigures f;
  for (int i = 0; i < n; ++i) {
    // A new state object each turn (what a turn commits), same bytes.
    StatePtr next = std::make_shared<const engine::State>(fresh->Clone());
    const absl::Time t0 = absl::Now();
    absl::StatusOr<SessionLease> lease = sessions.Lease(ids[0]);
    if (!lease.ok()) return lease.status();
    const absl::Time t1 = absl::Now();
    absl::Notification done;
    absl::Status stored;
    lease->Commit(next, SessionLease::Initial::kKeep, [&](absl::Status s) {
      stored = s;
      done.Notify();
    });
    done.WaitForNotification();
    if (!stored.ok()) return stored;
    const absl::Time t2 = absl::Now();
    f.lease_ms.Add(Ms(t1 - t0));
    f.commit_ms.Add(Ms(t2 - t1));
    f.turn_ms.Add(Ms(t2 - t0));
  }
  for (int round = 0; round < std::max(3, n / 20); ++round) {
    std::vector<SessionLease> leases;
    for (const std::string& id : ids) {
      absl::StatusOr<SessionLease> l = sessions.Lease(id);
      if (!l.ok()) return l.status();
      leases.push_back(*std::move(l));
    }
    std::atomic<int> left{static_cast<int>(leases.size())};
    absl::Notification all;
    const absl::Time t0 = absl::Now();
    for (SessionLease& l : leases) {
      l.Commit(std::make_shared<const engine::State>(fresh->Clone()),
               SessionLease::Initial::kKeep, [&](absl::Status) {
                 if (--left == 0) all.Notify();
               });
    }
    all.WaitForNotification();
    f.group_ms.Add(Ms(absl::Now() - t0));
  }
  return f;
}

void PrintCommits(const char* name, const CommitFigures& f) {
  std::printf("  %-6s lease %s\n", name, Stats(f.lease_ms).c_str());
  std::printf("  %-6s commit %s\n", name, Stats(f.commit_ms).c_str());
  std::printf("  %-6s lease+commit %s\n", name, Stats(f.turn_ms).c_str());
  std::printf("  %-6s 32 commits at once: %s\n", name,
              Stats(f.group_ms).c_str());
}

absl::Status PartCommits(const BenchOptions& o, TempDir& dir) {
  engine::RandomModelSpec spec;
  if (!o.quick) {
    spec.n_layer = 12;
    spec.n_embd = 768;
    spec.vocab_size = 50277;
  }
  engine::EngineOptions eo;
  eo.num_threads = 1;
  absl::StatusOr<std::unique_ptr<engine::RwkvEngine>> engine =
      engine::RwkvEngine::CreateRandom(spec, eo);
  if (!engine.ok()) return engine.status();
  const engine::Model& model = (*engine)->model();
  std::printf("1. commit per turn, state %lld bytes (fp32)\n",
              static_cast<long long>(model.NewState().SizeBytes()));
  RedisProcess redis(Subdir(dir, "commits"));
  if (absl::Status s = redis.Start(); !s.ok()) return s;
  const int n = o.quick ? 20 : 200;
  server::MemorySessionStore memory;
  absl::StatusOr<CommitFigures> mem = MeasureCommits(&memory, model, n);
  if (!mem.ok()) return mem.status();
  server::RedisStoreOptions ro;
  ro.url = redis.url();
  auto store = server::RedisSessionStore::Open(ro, &model);
  if (!store.ok()) return store.status();
  absl::StatusOr<CommitFigures> red = MeasureCommits(store->get(), model, n);
  if (!red.ok()) return red.status();
  PrintCommits("memory", *mem);
  PrintCommits("redis", *red);
  std::printf(
      "[ measured ] added latency of a Redis commit per turn (lease + "
      "commit): p50 %.2f ms, p99 %.2f ms; 32 commits at once: %.2f ms "
      "(%.2f ms each)\n",
      red->turn_ms.Median() - mem->turn_ms.Median(),
      red->turn_ms.Percentile(99) - mem->turn_ms.Percentile(99),
      red->group_ms.Median(), red->group_ms.Median() / 32);
  const server::StoreWriterStats ws = (*store)->writer_stats();
  std::printf("  redis writer: %lld writes in %lld pipelined groups\n",
              static_cast<long long>(ws.writes),
              static_cast<long long>(ws.groups));
  redis.Stop();
  return absl::OkStatus();
}

std::vector<std::string> ModelArgs(const BenchOptions& o, int threads) {
  return {"--random-model",      o.quick ? "tiny" : "169m", "--threads",
          absl::StrCat(threads), "--max-tokens-limit",      "4096"};
}

absl::StatusOr<std::unique_ptr<ServerProcess>> StartServer(
    TempDir& dir, const std::string& name, std::vector<std::string> args) {
  auto p = std::make_unique<ServerProcess>(RWKV_SERVER_BIN, std::move(args),
                                           dir.Sub(name + ".log"));
  if (absl::Status s = p->Start(absl::Seconds(180)); !s.ok()) return s;
  return p;
}

// The time from sending a 2-token turn to its first token.
absl::StatusOr<double> FirstTokenMs(client::ChatClient& c,
                                    const std::string& id) {
  rwkv::v1::GenerateRequest r;
  r.set_session_id(id);
  r.set_text("hi");
  r.set_max_tokens(2);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  const absl::Time t0 = absl::Now();
  std::optional<absl::Time> first;
  absl::StatusOr<client::TurnResult> t =
      c.Generate(r, [&](const rwkv::v1::GenerateResponse& chunk) {
        if (!first.has_value() && !chunk.token_ids().empty()) {
          first = absl::Now();
        }
        return true;
      });
  if (!t.ok()) return t.status();
  return Ms(first.value_or(absl::Now()) - t0);
}

absl::Status PartMove(const BenchOptions& o, TempDir& dir) {
  std::printf("2. a session last used on replica A continues on replica B\n");
  RedisProcess redis(Subdir(dir, "move"));
  if (absl::Status s = redis.Start(); !s.ok()) return s;
  std::vector<std::unique_ptr<ServerProcess>> replicas;
  for (const char* name : {"move-a", "move-b"}) {
    std::vector<std::string> args = ModelArgs(o, 1);
    args.insert(args.end(), {"--store", redis.url()});
    auto p = StartServer(dir, name, args);
    if (!p.ok()) return p.status();
    replicas.push_back(*std::move(p));
  }
  auto a = client::ChatClient::Connect(replicas[0]->address());
  auto b = client::ChatClient::Connect(replicas[1]->address());
  LatencyStats hot, moved, back;
  const int n = o.quick ? 5 : 30;
  for (int i = 0; i < n; ++i) {
    const std::string id = absl::StrCat("move-", i);
    if (absl::Status s = a->GetOrCreateSession(id, 0).status(); !s.ok()) {
      return s;
    }
    if (absl::Status s = FirstTokenMs(*a, id).status(); !s.ok()) return s;
    absl::StatusOr<double> on_a = FirstTokenMs(*a, id);   // RAM copy current
    absl::StatusOr<double> on_b = FirstTokenMs(*b, id);   // B loads it
    absl::StatusOr<double> on_a2 = FirstTokenMs(*a, id);  // A's copy stale
    if (!on_a.ok() || !on_b.ok() || !on_a2.ok()) {
      return absl::InternalError("a turn failed");
    }
    hot.Add(*on_a);
    moved.Add(*on_b);
    back.Add(*on_a2);
  }
  std::printf("  same replica (RAM copy current): first token %s\n",
              Stats(hot).c_str());
  std::printf("  other replica (loads from Redis): first token %s\n",
              Stats(moved).c_str());
  std::printf("  back on A (its copy stale, reloads): first token %s\n",
              Stats(back).c_str());
  std::printf(
      "[ measured ] continuing on another replica costs p50 %.2f ms, p99 "
      "%.2f ms more than on the same one\n",
      moved.Median() - hot.Median(), moved.Percentile(99) - hot.Percentile(99));
  for (auto& r : replicas) r->Stop();
  redis.Stop();
  return absl::OkStatus();
}

// One greedy 8-token turn: its latency and the final message's gap.
absl::Status TimedTurn(client::ChatClient& c, const std::string& id,
                       LatencyStats& turn_ms, LatencyStats& final_ms) {
  rwkv::v1::GenerateRequest r;
  r.set_session_id(id);
  r.set_text("hi");
  r.set_max_tokens(8);
  r.set_ignore_eos(true);
  r.mutable_sampling()->set_temperature(0);
  const absl::Time t0 = absl::Now();
  absl::Time previous = t0, last = t0;
  absl::StatusOr<client::TurnResult> t =
      c.Generate(r, [&](const rwkv::v1::GenerateResponse&) {
        previous = last;
        last = absl::Now();
        return true;
      });
  if (!t.ok()) return t.status();
  turn_ms.Add(Ms(last - t0));
  final_ms.Add(Ms(last - previous));
  return absl::OkStatus();
}

absl::Status PartTurnLatency(const BenchOptions& o, TempDir& dir) {
  RedisProcess redis(Subdir(dir, "turns"));
  if (absl::Status s = redis.Start(); !s.ok()) return s;
  std::vector<std::unique_ptr<ServerProcess>> servers;
  for (const std::string& store : {std::string("memory"), redis.url()}) {
    std::vector<std::string> args = ModelArgs(o, 2);
    args.insert(args.end(), {"--store", store});
    auto p = StartServer(dir, absl::StrCat("turns-", servers.size()), args);
    if (!p.ok()) return p.status();
    servers.push_back(*std::move(p));
  }
  LatencyStats turn_ms[2], final_ms[2];
  std::unique_ptr<client::ChatClient> clients[2];
  for (int s = 0; s < 2; ++s) {
    clients[s] = client::ChatClient::Connect(servers[s]->address());
    absl::Status st = clients[s]->GetOrCreateSession("t", 0).status();
    if (st.ok()) st = TimedTurn(*clients[s], "t", turn_ms[s], final_ms[s]);
    if (!st.ok()) return st;
    turn_ms[s] = LatencyStats();  // the first turn warms up
    final_ms[s] = LatencyStats();
  }
  const int n = o.quick ? 5 : 60;
  for (int i = 0; i < n; ++i) {
    for (int s = 0; s < 2; ++s) {  // alternating: drift hits both alike
      absl::Status st = TimedTurn(*clients[s], "t", turn_ms[s], final_ms[s]);
      if (!st.ok()) return st;
    }
  }
  for (int s = 0; s < 2; ++s) {
    std::printf("  %-6s 8-token turn %s; final message %s\n",
                s == 0 ? "memory" : "redis", Stats(turn_ms[s]).c_str(),
                Stats(final_ms[s]).c_str());
  }
  std::printf(
      "[ measured ] through rwkv-server, Redis vs memory store: turn p50 "
      "+%.2f ms, p99 %+.2f ms; final message p50 +%.2f ms, p99 %+.2f ms\n",
      turn_ms[1].Median() - turn_ms[0].Median(),
      turn_ms[1].Percentile(99) - turn_ms[0].Percentile(99),
      final_ms[1].Median() - final_ms[0].Median(),
      final_ms[1].Percentile(99) - final_ms[0].Percentile(99));
  for (auto& p : servers) p->Stop();
  redis.Stop();
  return absl::OkStatus();
}

absl::StatusOr<client::PhaseResult> Load(const BenchOptions& o,
                                         const std::string& address) {
  client::LoadOptions lo;
  lo.server = address;
  lo.streams = o.streams;
  lo.tokens_per_stream = 32;
  lo.prompt_tokens = 16;
  lo.warmup_tokens = 4;
  lo.duration_seconds = o.seconds;
  auto c = client::ChatClient::Connect(address);
  client::GrpcLoadTarget target(c.get(), address);
  client::LoadGenerator gen(&target, lo);
  return gen.RunPhase(o.streams);
}

absl::Status PartThroughput(const BenchOptions& o, TempDir& dir) {
  std::printf("3. aggregate tokens/s, %d streams, %.0f s each\n", o.streams,
              o.seconds);
  RedisProcess redis(Subdir(dir, "load"));
  if (absl::Status s = redis.Start(); !s.ok()) return s;
  struct Setup {
    const char* name;
    int replicas;
    int threads;
    bool redis;
  };
  const Setup setups[] = {
      {"1 replica, 2 threads, memory store", 1, 2, false},
      {"1 replica, 2 threads, Redis store", 1, 2, true},
      {"2 replicas x 1 thread + Redis + HAProxy", 2, 1, true}};
  std::vector<double> tps;
  for (const Setup& setup : setups) {
    std::vector<std::unique_ptr<ServerProcess>> replicas;
    std::vector<std::string> backends;
    for (int i = 0; i < setup.replicas; ++i) {
      std::vector<std::string> args = ModelArgs(o, setup.threads);
      args.insert(args.end(),
                  {"--store", setup.redis ? redis.url() : "memory"});
      auto p =
          StartServer(dir, absl::StrCat("load-", tps.size(), "-", i), args);
      if (!p.ok()) return p.status();
      backends.push_back((*p)->address());
      replicas.push_back(*std::move(p));
    }
    std::unique_ptr<HaproxyProcess> lb;
    std::string address = backends[0];
    if (setup.replicas > 1) {
      lb = std::make_unique<HaproxyProcess>(
          std::string(RWKV_SOURCE_DIR) + "/docker/haproxy.cfg", dir.path(),
          backends);
      if (absl::Status s = lb->Start(); !s.ok()) return s;
      address = lb->address();
    }
    absl::StatusOr<client::PhaseResult> r = Load(o, address);
    if (!r.ok()) return r.status();
    std::printf("  %-42s %8.1f tokens/s, inter-token p50 %.1f ms, %d errors\n",
                setup.name, r->tokens_per_second, r->inter_token_ms.Median(),
                r->errors);
    tps.push_back(r->tokens_per_second);
    for (auto& p : replicas) p->Stop();
  }
  std::printf(
      "[ measured ] 2 replicas + Redis: %.1f tokens/s = %.2fx 1 replica with "
      "the memory store (%.1f); 1 replica with Redis: %.2fx\n",
      tps[2], tps[2] / tps[0], tps[0], tps[1] / tps[0]);
  redis.Stop();
  return absl::OkStatus();
}

}  // namespace
}  // namespace rwkv

int main(int argc, char** argv) {
  rwkv::BenchOptions o;
  CLI::App app("Replica benchmarks (README 'Running several replicas')",
               "replica-bench");
  app.add_flag("--quick", o.quick, "tiny model, few iterations (smoke run)");
  app.add_option("--streams", o.streams, "concurrent streams in part 3")
      ->capture_default_str();
  app.add_option("--seconds", o.seconds, "length of each load phase")
      ->capture_default_str();
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  if (!rwkv::testing::RedisProcess::Available() ||
      !rwkv::testing::HaproxyProcess::Available()) {
    std::fprintf(stderr, "replica-bench: needs redis-server and haproxy\n");
    return 1;
  }
  rwkv::testing::TempDir dir;
  for (auto part : {rwkv::PartCommits, rwkv::PartTurnLatency, rwkv::PartMove,
                    rwkv::PartThroughput}) {
    if (absl::Status s = part(o, dir); !s.ok()) {
      std::fprintf(stderr, "replica-bench: %s\n",
                   std::string(s.message()).c_str());
      return 1;
    }
  }
  return 0;
}
