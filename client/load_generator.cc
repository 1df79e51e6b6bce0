#include "client/load_generator.h"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace rwkv::client {
namespace {

using Clock = std::chrono::steady_clock;

double Ms(Clock::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

// What one turn of one stream saw.
struct TurnTrace {
  Clock::time_point sent;
  std::vector<std::pair<Clock::time_point, int>> chunks;  // (arrival, tokens)
  int prompt_tokens = 0;
};

struct StreamTrace {
  std::vector<TurnTrace> turns;
  absl::Status error;
};

}  // namespace

LoadGenerator::LoadGenerator(LoadTarget* target, const LoadOptions& options)
    : target_(target), options_(options) {}

std::string LoadGenerator::MakePrompt(int tokens) const {
  if (tokens <= 0) return "";
  if (tokenizer_ == "bytes") {
    // One token per byte; a fixed varied pattern, not one repeated byte.
    static constexpr char kText[] = "the quick brown fox jumps over a dog. ";
    std::string text;
    for (int i = 0; i < tokens; ++i) text += kText[i % (sizeof(kText) - 1)];
    return text;
  }
  // BPE vocabularies (GPT-NeoX, World) have " the" as one token.
  std::string text = "The";
  for (int i = 1; i < tokens; ++i) text += " the";
  return text;
}

absl::StatusOr<PhaseResult> LoadGenerator::RunPhase(int streams) {
  ++phase_;
  absl::StatusOr<TargetInfo> before = target_->Info();
  if (!before.ok()) return before.status();
  tokenizer_ = before->tokenizer;
  const bool long_prompt = options_.long_prompt_tokens > 0;

  // Sessions: streams, then the long-prompt client's.
  std::vector<std::string> sessions;
  auto cleanup = [&] {
    for (const std::string& id : sessions) {
      target_->DeleteSession(id).IgnoreError();
    }
  };
  const int total_sessions = streams + (long_prompt ? 1 : 0);
  for (int i = 0; i < total_sessions; ++i) {
    const std::string id =
        absl::StrCat("rwkv-load-", getpid(), "-", phase_, "-", i);
    if (absl::Status s = target_->CreateSession(id); !s.ok()) {
      cleanup();
      return s;
    }
    sessions.push_back(id);
  }

  const std::string prompt = MakePrompt(options_.prompt_tokens);
  auto make_request = [&](int stream, int max_tokens) {
    LoadTurn turn;
    turn.session_id = sessions[stream];
    turn.text = prompt;
    turn.max_tokens = max_tokens;
    turn.temperature = options_.temperature;
    turn.seed = options_.seed + stream;
    return turn;
  };

  // Warmup: one short unmeasured turn per stream, all at once.
  if (options_.warmup_tokens > 0) {
    std::vector<std::thread> threads;
    std::vector<absl::Status> errors(streams);
    for (int i = 0; i < streams; ++i) {
      threads.emplace_back([&, i] {
        errors[i] = target_
                        ->Generate(make_request(i, options_.warmup_tokens),
                                   [](int) { return true; })
                        .status();
      });
    }
    for (std::thread& t : threads) t.join();
    for (const absl::Status& s : errors) {
      if (!s.ok()) {
        cleanup();
        return absl::Status(s.code(), absl::StrCat("warmup: ", s.message()));
      }
    }
  }

  absl::StatusOr<TargetInfo> counters_before = target_->Info();
  if (!counters_before.ok()) {
    cleanup();
    return counters_before.status();
  }

  std::vector<StreamTrace> traces(streams);
  std::atomic<int> decoding{0};  // streams that received a token
  std::atomic<int> finished{0};  // streams done
  const Clock::time_point start = Clock::now();
  const bool timed = options_.duration_seconds > 0;
  const Clock::time_point deadline =
      start + std::chrono::duration_cast<Clock::duration>(
                  std::chrono::duration<double>(options_.duration_seconds));

  std::vector<std::thread> threads;
  for (int i = 0; i < streams; ++i) {
    threads.emplace_back([&, i] {
      StreamTrace& trace = traces[i];
      bool counted = false;
      do {
        trace.turns.emplace_back();
        TurnTrace& turn = trace.turns.back();
        turn.sent = Clock::now();
        absl::StatusOr<int> result = target_->Generate(
            make_request(i, options_.tokens_per_stream), [&](int tokens) {
              const Clock::time_point now = Clock::now();
              turn.chunks.emplace_back(now, tokens);
              if (!counted) {
                counted = true;
                decoding.fetch_add(1);
              }
              return !timed || now < deadline;
            });
        if (!result.ok()) {
          if (timed && absl::IsCancelled(result.status())) break;
          trace.error = result.status();
          break;
        }
        turn.prompt_tokens = *result;
      } while (timed && Clock::now() < deadline);
      if (!counted) decoding.fetch_add(1);  // do not hold up the long prompt
      finished.fetch_add(1);
    });
  }

  // The long prompt goes out once every stream is decoding.
  Clock::time_point long_sent, long_first;
  bool long_done = false;
  absl::Status long_error;
  int long_tokens = 0;
  if (long_prompt) {
    while (decoding.load() < streams) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    LoadTurn request = make_request(streams, 1);
    request.text = MakePrompt(options_.long_prompt_tokens);
    long_sent = Clock::now();
    bool got_first = false;
    absl::StatusOr<int> result = target_->Generate(request, [&](int) {
      if (!got_first) {
        got_first = true;
        long_first = Clock::now();
      }
      return true;
    });
    if (!got_first) long_first = Clock::now();
    if (result.ok()) {
      long_done = true;
      long_tokens = *result;
    } else {
      long_error = result.status();
    }
  }
  for (std::thread& t : threads) t.join();
  const Clock::time_point end_all = Clock::now();

  PhaseResult r;
  r.streams = streams;
  Clock::time_point window_end = start;
  for (const StreamTrace& trace : traces) {
    for (const TurnTrace& turn : trace.turns) {
      if (!turn.chunks.empty()) {
        window_end = std::max(window_end, turn.chunks.back().first);
      }
    }
  }
  if (timed) window_end = std::min(deadline, end_all);
  for (const StreamTrace& trace : traces) {
    if (!trace.error.ok()) {
      if (r.errors++ == 0) {
        r.first_error = std::string(trace.error.message());
      }
    }
    for (const TurnTrace& turn : trace.turns) {
      if (turn.chunks.empty()) continue;
      ++r.turns;
      if (r.prompt_tokens == 0) r.prompt_tokens = turn.prompt_tokens;
      r.ttft_ms.Add(Ms(turn.chunks.front().first - turn.sent));
      for (size_t c = 0; c < turn.chunks.size(); ++c) {
        if (turn.chunks[c].first <= window_end) {
          r.tokens += turn.chunks[c].second;
        }
        if (c == 0) continue;
        const Clock::time_point a = turn.chunks[c - 1].first;
        const Clock::time_point b = turn.chunks[c].first;
        r.inter_token_ms.Add(Ms(b - a));
        if (long_prompt && b >= long_sent && a <= long_first) {
          r.inter_token_during_long_prompt_ms.Add(Ms(b - a));
        }
      }
    }
  }
  // Steady-state window: all streams decoding.
  Clock::time_point all_decoding = start;
  Clock::time_point first_done = Clock::time_point::max();
  bool every_stream_decoded = true;
  for (const StreamTrace& trace : traces) {
    const TurnTrace* first = nullptr;
    const TurnTrace* last = nullptr;
    for (const TurnTrace& turn : trace.turns) {
      if (turn.chunks.empty()) continue;
      if (first == nullptr) first = &turn;
      last = &turn;
    }
    if (first == nullptr) {
      every_stream_decoded = false;
      break;
    }
    all_decoding = std::max(all_decoding, first->chunks.front().first);
    first_done = std::min(first_done, last->chunks.back().first);
  }
  if (timed) first_done = std::min(first_done, window_end);
  if (every_stream_decoded && first_done > all_decoding) {
    for (const StreamTrace& trace : traces) {
      for (const TurnTrace& turn : trace.turns) {
        for (const auto& [when, n] : turn.chunks) {
          if (when > all_decoding && when <= first_done) r.steady_tokens += n;
        }
      }
    }
    r.steady_seconds =
        std::chrono::duration<double>(first_done - all_decoding).count();
    r.steady_tokens_per_second =
        static_cast<double>(r.steady_tokens) / r.steady_seconds;
  }
  r.seconds =
      std::max(1e-9, std::chrono::duration<double>(window_end - start).count());
  r.tokens_per_second = static_cast<double>(r.tokens) / r.seconds;
  if (long_prompt) {
    if (long_done) {
      r.long_prompt_tokens = long_tokens;
      r.long_prompt_ttft_ms = Ms(long_first - long_sent);
    } else if (r.errors++ == 0) {
      r.first_error = absl::StrCat("long prompt: ", long_error.message());
    }
  }

  absl::StatusOr<TargetInfo> counters_after = target_->Info();
  if (counters_after.ok() && counters_after->decode_steps >= 0) {
    r.server_decode_steps =
        counters_after->decode_steps - counters_before->decode_steps;
    r.server_tokens =
        counters_after->tokens_generated - counters_before->tokens_generated;
    if (r.server_decode_steps > 0) {
      r.server_avg_batch = static_cast<double>(r.server_tokens) /
                           static_cast<double>(r.server_decode_steps);
    }
  }
  cleanup();
  return r;
}

}  // namespace rwkv::client
