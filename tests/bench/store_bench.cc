// store-bench: the durable session store's costs, measured through real
// rwkv-server processes in one run (ratios only within the run; the machine
// is noisy). Prints every figure and, with --json FILE, writes them:
//  1. 32 streams on a model of the 169M shape: aggregate tokens/s with the
//     RocksDB store vs the memory store (phases alternate M R M R ... so
//     drift cancels), and the final message's latency (the gap between the
//     last token's message and the final one, which waits for the commit).
//  2. A store holding --sessions sessions, each with its own state (one
//     greedy token after a distinct prompt): restart to SERVING (exec to a
//     SERVING health check) next to the same restart on an empty store, the
//     store's own open time (from the server's log), the latency of the
//     first use of an on-disk session (ExportState, which loads it) next to
//     a second use, and disk bytes per session vs state bytes (fp32 and,
//     with a smaller store, fp16).
// Usage: store-bench --server build/bin/rwkv-server [--model FILE]
//          [--sessions 10000] [--fp16-sessions 1000] [--streams 32]
//          [--turns 2] [--tokens 32] [--rounds 2] [--dir DIR] [--json FILE]
#include <sys/stat.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/chat_client.h"
#include "client/latency_stats.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"
#include "rwkv/v1/chat.grpc.pb.h"
#include "tests/testing/server_process.h"

namespace {

namespace pb = ::rwkv::v1;
using rwkv::client::LatencyStats;
using rwkv::testing::ServerProcess;

struct Options {
  std::string server;
  std::string model;  // "" = --random-model 169m
  int sessions = 10000;
  int fp16_sessions = 1000;
  int streams = 32;
  int turns = 2;
  int tokens = 32;
  int rounds = 2;
  std::string dir = "/tmp/rwkv-store-bench";
  std::string json;
};

std::vector<std::string> ModelFlags(const Options& o) {
  if (o.model.empty()) return {"--random-model", "169m"};
  return {"--model", o.model};
}

double Ms(absl::Duration d) { return absl::ToDoubleMilliseconds(d); }

int64_t DirBytes(const std::string& dir) {
  int64_t total = 0;
  std::error_code ec;
  for (const auto& e :
       std::filesystem::recursive_directory_iterator(dir, ec)) {
    if (e.is_regular_file(ec)) total += static_cast<int64_t>(e.file_size(ec));
  }
  return total;
}

std::unique_ptr<pb::ChatService::Stub> Stub(const std::string& address) {
  return pb::ChatService::NewStub(
      grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
}

// One greedy turn; `gaps` gets (time of last token message, final message).
bool Turn(pb::ChatService::Stub& stub, const std::string& id,
          const std::string& text, int max_tokens, int64_t* tokens,
          double* final_gap_ms) {
  grpc::ClientContext ctx;
  pb::GenerateRequest req;
  req.set_session_id(id);
  req.set_text(text);
  req.set_max_tokens(max_tokens);
  req.set_ignore_eos(true);
  req.mutable_sampling()->set_temperature(0);
  auto reader = stub.Generate(&ctx, req);
  pb::GenerateResponse msg;
  absl::Time last = absl::Now();
  while (reader->Read(&msg)) {
    const absl::Time now = absl::Now();
    *tokens += msg.token_ids_size();
    if (msg.finish_reason() != pb::FINISH_REASON_UNSPECIFIED &&
        final_gap_ms != nullptr) {
      *final_gap_ms = Ms(now - last);
    }
    last = now;
  }
  return reader->Finish().ok();
}

struct Phase {
  double tokens_per_second = 0;
  LatencyStats final_ms;
};

// `streams` sessions, each running `turns` turns at once.
Phase RunStreams(const Options& o, const std::string& address, int round) {
  std::vector<std::thread> threads;
  std::atomic<int64_t> tokens{0};
  std::mutex mu;
  Phase phase;
  const absl::Time start = absl::Now();
  for (int i = 0; i < o.streams; ++i) {
    threads.emplace_back([&, i] {
      auto stub = Stub(address);
      const std::string id = absl::StrCat("load-", round, "-", i);
      grpc::ClientContext ctx;
      pb::CreateSessionRequest create;
      create.set_session_id(id);
      pb::SessionInfo info;
      if (!stub->CreateSession(&ctx, create, &info).ok()) return;
      for (int t = 0; t < o.turns; ++t) {
        int64_t n = 0;
        double gap = -1;
        if (!Turn(*stub, id, absl::StrCat("stream ", i, " turn ", t, "."),
                  o.tokens, &n, &gap)) {
          return;
        }
        tokens += n;
        std::lock_guard<std::mutex> lock(mu);
        if (gap >= 0) phase.final_ms.Add(gap);
      }
    });
  }
  for (std::thread& t : threads) t.join();
  phase.tokens_per_second = tokens.load() / absl::ToDoubleSeconds(
                                                absl::Now() - start);
  return phase;
}

bool Serving(const std::string& address) {
  auto client = rwkv::client::ChatClient::Connect(address);
  client->set_unary_timeout(absl::Seconds(2));
  absl::StatusOr<rwkv::client::HealthStatus> h = client->CheckHealth("");
  return h.ok() && *h == rwkv::client::HealthStatus::kServing;
}

// Starts a server on `data_dir` and returns the time from exec to SERVING.
double StartTimed(ServerProcess& server) {
  const absl::Time start = absl::Now();
  if (!server.Start(absl::Seconds(600)).ok()) return -1;
  while (!Serving(server.address())) absl::SleepFor(absl::Milliseconds(5));
  return Ms(absl::Now() - start);
}

int64_t StoreOpenMs(const std::string& log) {
  const size_t at = log.find(" opened in ");
  if (at == std::string::npos) return -1;
  return std::atoll(log.c_str() + at + 11);
}

// Fills a store with `n` sessions, each with its own state.
void Populate(const std::string& address, int n, int threads_n) {
  std::vector<std::thread> threads;
  std::atomic<int> next{0};
  for (int t = 0; t < threads_n; ++t) {
    threads.emplace_back([&] {
      auto stub = Stub(address);
      for (int i = next++; i < n; i = next++) {
        const std::string id = absl::StrCat("p", i);
        grpc::ClientContext ctx;
        pb::CreateSessionRequest create;
        create.set_session_id(id);
        pb::SessionInfo info;
        if (!stub->CreateSession(&ctx, create, &info).ok()) continue;
        int64_t tokens = 0;
        Turn(*stub, id, absl::StrCat(i), 1, &tokens, nullptr);
      }
    });
  }
  for (std::thread& t : threads) t.join();
}

LatencyStats ExportTimes(const std::string& address,
                         const std::vector<std::string>& ids) {
  auto stub = Stub(address);
  LatencyStats stats;
  for (const std::string& id : ids) {
    grpc::ClientContext ctx;
    pb::ExportStateRequest req;
    req.set_session_id(id);
    pb::ExportStateResponse resp;
    const absl::Time t0 = absl::Now();
    if (stub->ExportState(&ctx, req, &resp).ok()) {
      stats.Add(Ms(absl::Now() - t0));
    }
  }
  return stats;
}

nlohmann::json Stats(const LatencyStats& s) {
  return {{"count", s.count()}, {"p50_ms", s.Percentile(50)},
          {"p99_ms", s.Percentile(99)}};
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  CLI::App app{"store-bench: costs of the durable session store"};
  app.add_option("--server", o.server, "rwkv-server binary")->required();
  app.add_option("--model", o.model, "model file (default: random 169M)");
  app.add_option("--sessions", o.sessions, "sessions for the restart")
      ->capture_default_str();
  app.add_option("--fp16-sessions", o.fp16_sessions,
                 "sessions for the fp16 bytes figure")
      ->capture_default_str();
  app.add_option("--streams", o.streams, "concurrent streams")
      ->capture_default_str();
  app.add_option("--turns", o.turns, "turns per stream per phase")
      ->capture_default_str();
  app.add_option("--tokens", o.tokens, "tokens per turn")
      ->capture_default_str();
  app.add_option("--rounds", o.rounds, "memory/rocksdb phase pairs")
      ->capture_default_str();
  app.add_option("--dir", o.dir, "scratch directory (emptied)")
      ->capture_default_str();
  app.add_option("--json", o.json, "write the figures here");
  CLI11_PARSE(app, argc, argv);
  std::filesystem::remove_all(o.dir);
  std::filesystem::create_directories(o.dir);
  nlohmann::json out;

  // 1. Throughput and the final message's latency, memory vs rocksdb.
  std::vector<double> tps[2];
  LatencyStats final_ms[2];
  const char* kStores[2] = {"memory", "rocksdb"};
  for (int round = 0; round < o.rounds; ++round) {
    for (int s = 0; s < 2; ++s) {
      std::vector<std::string> flags = ModelFlags(o);
      flags.insert(flags.end(), {"--store", kStores[s], "--data-dir",
                                 absl::StrCat(o.dir, "/load-", round),
                                 "--max-batch", "32"});
      ServerProcess server(o.server, flags, o.dir + "/load.log");
      if (!server.Start(absl::Seconds(600)).ok()) {
        std::fprintf(stderr, "server failed:\n%s\n", server.Log().c_str());
        return 1;
      }
      Phase p = RunStreams(o, server.address(), round);
      tps[s].push_back(p.tokens_per_second);
      final_ms[s].Merge(p.final_ms);
      std::printf("phase %d %-8s %8.1f tok/s  final message p50 %.1f ms\n",
                  round, kStores[s], p.tokens_per_second,
                  p.final_ms.Percentile(50));
      server.Stop();
    }
  }
  double sum[2] = {0, 0};
  for (int s = 0; s < 2; ++s) {
    for (double v : tps[s]) sum[s] += v;
  }
  const double ratio = sum[1] / sum[0];
  std::printf("[ measured ] %d streams: rocksdb %.1f tok/s vs memory %.1f "
              "tok/s = %.3f (target >= 0.90)\n",
              o.streams, sum[1] / o.rounds, sum[0] / o.rounds, ratio);
  std::printf("[ measured ] final message: memory p50 %.1f p99 %.1f ms; "
              "rocksdb p50 %.1f p99 %.1f ms (added p50 %.1f ms)\n",
              final_ms[0].Percentile(50), final_ms[0].Percentile(99),
              final_ms[1].Percentile(50), final_ms[1].Percentile(99),
              final_ms[1].Percentile(50) - final_ms[0].Percentile(50));
  out["throughput"] = {{"memory_tok_s", tps[0]},
                       {"rocksdb_tok_s", tps[1]},
                       {"ratio", ratio},
                       {"target", 0.90},
                       {"final_message_memory", Stats(final_ms[0])},
                       {"final_message_rocksdb", Stats(final_ms[1])}};

  // 2. Restart with many sessions on disk.
  auto restart_figures = [&](const std::string& dtype, int n,
                             nlohmann::json* fig) -> bool {
    const std::string data = absl::StrCat(o.dir, "/store-", dtype);
    std::vector<std::string> flags = ModelFlags(o);
    flags.insert(flags.end(), {"--data-dir", data, "--store-dtype", dtype,
                               "--max-batch", "32", "--max-sessions",
                               std::to_string(n + 100)});
    int64_t state_bytes = 0;
    {
      ServerProcess empty(o.server, flags, o.dir + "/empty.log");
      (*fig)["serving_ms_empty_store"] = StartTimed(empty);
      (*fig)["store_open_ms_empty"] = StoreOpenMs(empty.Log());
      const absl::Time t0 = absl::Now();
      Populate(empty.address(), n, o.streams);
      (*fig)["populate_s"] = absl::ToDoubleSeconds(absl::Now() - t0);
      auto stub = Stub(empty.address());
      grpc::ClientContext ctx;
      pb::ModelInfo info;
      stub->GetModelInfo(&ctx, pb::GetModelInfoRequest(), &info);
      state_bytes = info.state_bytes_per_session();
      empty.Stop();
    }
    ServerProcess full(o.server, flags, o.dir + "/full.log");
    (*fig)["serving_ms"] = StartTimed(full);
    (*fig)["store_open_ms"] = StoreOpenMs(full.Log());
    const int64_t disk = DirBytes(data);
    (*fig)["sessions"] = n;
    (*fig)["state_bytes"] = state_bytes;
    (*fig)["disk_bytes_per_session"] = static_cast<double>(disk) / n;
    (*fig)["disk_per_state_ratio"] =
        static_cast<double>(disk) / n / std::max<int64_t>(1, state_bytes);
    std::vector<std::string> ids;
    std::mt19937 rng(7);
    for (int i = 0; i < std::min(n, 200); ++i) {
      ids.push_back(absl::StrCat("p", rng() % n));
    }
    LatencyStats cold = ExportTimes(full.address(), ids);
    LatencyStats hot = ExportTimes(full.address(), ids);
    (*fig)["first_use_export"] = Stats(cold);
    (*fig)["second_use_export"] = Stats(hot);
    std::printf("[ measured ] %s store, %d sessions: restart to SERVING "
                "%.0f ms (empty store %.0f ms; store open %lld ms vs %lld "
                "ms); disk %.0f bytes/session = %.3f x state bytes; first "
                "use (load) p50 %.1f p99 %.1f ms, second use p50 %.1f ms\n",
                dtype.c_str(), n, (*fig)["serving_ms"].get<double>(),
                (*fig)["serving_ms_empty_store"].get<double>(),
                static_cast<long long>((*fig)["store_open_ms"].get<int64_t>()),
                static_cast<long long>(
                    (*fig)["store_open_ms_empty"].get<int64_t>()),
                (*fig)["disk_bytes_per_session"].get<double>(),
                (*fig)["disk_per_state_ratio"].get<double>(),
                cold.Percentile(50), cold.Percentile(99), hot.Percentile(50));
    full.Stop();
    return true;
  };
  restart_figures("fp32", o.sessions, &out["restart_fp32"]);
  if (o.fp16_sessions > 0) {
    restart_figures("fp16", o.fp16_sessions, &out["restart_fp16"]);
  }
  if (!o.json.empty()) std::ofstream(o.json) << out.dump(2) << "\n";
  return 0;
}
