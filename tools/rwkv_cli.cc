// rwkv-cli: run RWKV models and tokenizers from the command line.
//
//   rwkv-cli eval     --model M [--tokenizer T] <input> [--json]
//   rwkv-cli generate --model M [--tokenizer T] <input> --max-tokens N
//                     [--temperature X] [--top-p P] [--top-k K] [--seed S]
//                     [--presence-penalty A] [--frequency-penalty B] [--json]
//   rwkv-cli tokenize   --tokenizer T --text TEXT [--json]
//   rwkv-cli detokenize --tokenizer T --tokens ID,ID,... [--json]
//   rwkv-cli info     --model M [--json]
//   rwkv-cli state-size --model M [--json]
//   rwkv-cli state inspect|blend|decay|distance|convert ...  (state_commands.h)
//
// <input> is exactly one of --prompt TEXT, --prompt-file FILE (its bytes as
// they are) or --tokens ID,ID,...  Common: --threads N (default: all cores),
// --device cpu|cuda, --dtype fp32|bf16|fp16. eval and generate continue from
// --state-in FILE and save the state after the run to --state-out FILE.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "engine/rwkv_engine.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/state.h"
#include "engine/state_file.h"
#include "engine/stream_decoder.h"
#include "engine/tokenizer.h"
#include "tools/cli_args.h"
#include "tools/default_model.h"
#include "tools/state_commands.h"

namespace rwkv::tools {
namespace {

using engine::EngineOptions;
using engine::RwkvEngine;
using engine::Tokenizer;
using json = nlohmann::json;

constexpr char kUsage[] =
    "usage: rwkv-cli <command> [flags]\n"
    "commands:\n"
    "  eval       [--model M] [--tokenizer T] <input> [--json]\n"
    "             logits after the input (JSON: \"tokens\", \"logits\")\n"
    "  generate   [--model M] [--tokenizer T] <input> --max-tokens N\n"
    "             [--temperature X (0 = greedy; default 1)] [--top-p P "
    "(0.85)]\n"
    "             [--top-k K (0 = off)] [--presence-penalty A] "
    "[--frequency-penalty B]\n"
    "             [--penalty-decay D] [--seed S (default: random, printed)] "
    "[--json]\n"
    "  tokenize   --tokenizer T --text TEXT [--json]      (JSON: \"ids\")\n"
    "  detokenize --tokenizer T --tokens ID,... [--json]  (JSON: \"text\")\n"
    "  info       [--model M] [--json]\n"
    "  state-size [--model M] [--json]   state bytes vs a transformer's KV "
    "cache\n"
    "  state      inspect|blend|decay|distance|convert ...  (no model; see\n"
    "             'rwkv-cli state --help')\n"
    "--model: default $RWKV_MODEL, else the demo model "
    "models/demo/rwkv4-demo.pth\n"
    "<input>: --prompt TEXT | --prompt-file FILE | --tokens ID,ID,...\n"
    "eval/generate state files: [--state-in FILE [--ignore-fingerprint]\n"
    "             [--allow-unhealthy-state]]"
    "\n"
    "             [--state-out FILE [--state-dtype fp32|fp16|bf16]]: continue "
    "from\n"
    "             a saved state; save the state after the run (generate: "
    "after\n"
    "             the prompt and every printed token)\n"
    "--tokenizer: 'bytes', an RWKV World vocab .txt, or a tokenizer.json;\n"
    "             inferred from the vocab size when unambiguous (256: bytes)\n"
    "common: --threads N (0 = all cores) --device cpu|cuda --dtype "
    "fp32|bf16|fp16\n";

absl::StatusOr<std::unique_ptr<RwkvEngine>> LoadEngine(const CliArgs& args) {
  std::optional<std::string> model = args.Get("model");
  if (!model) {
    // No --model: the committed demo model (see README "The demo model").
    absl::StatusOr<std::string> demo = DefaultModelPath();
    if (!demo.ok()) return demo.status();
    model = *demo;
  }
  EngineOptions opts;
  opts.model_path = *model;
  opts.device = args.GetOr("device", "cpu");
  opts.dtype = args.GetOr("dtype", "fp32");
  absl::StatusOr<int64_t> threads = args.GetInt("threads", 0);
  if (!threads.ok()) return threads.status();
  if (*threads < 0 || *threads > 1024) {
    return absl::InvalidArgumentError("--threads must be in [0, 1024]");
  }
  opts.num_threads = static_cast<int>(*threads);
  return RwkvEngine::Create(opts);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const CliArgs& args,
                                                         int vocab_size) {
  if (std::optional<std::string> spec = args.Get("tokenizer")) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = Tokenizer::Load(*spec);
    if (!t.ok()) return t.status();
    if (vocab_size > 0 && (*t)->vocab_size() > vocab_size) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tokenizer '", *spec, "' has ", (*t)->vocab_size(),
          " tokens but the model's vocabulary has only ", vocab_size));
    }
    return t;
  }
  if (vocab_size <= 0)
    return absl::InvalidArgumentError("--tokenizer is required");
  return Tokenizer::ForVocabSize(vocab_size);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The input of eval/generate as token ids. `tokenizer` is loaded on demand.
absl::StatusOr<std::vector<int32_t>> ReadInput(
    const CliArgs& args, int vocab_size,
    std::unique_ptr<Tokenizer>& tokenizer) {
  const int given =
      args.Has("prompt") + args.Has("prompt-file") + args.Has("tokens");
  if (given != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of --prompt, --prompt-file or --tokens");
  }
  if (std::optional<std::string> ids = args.Get("tokens")) {
    absl::StatusOr<std::vector<int32_t>> parsed = ParseIdList(*ids);
    if (parsed.ok() && parsed->empty()) {
      return absl::InvalidArgumentError("--tokens is empty");
    }
    return parsed;
  }
  std::string text;
  if (std::optional<std::string> p = args.Get("prompt")) {
    text = *p;
  } else {
    absl::StatusOr<std::string> bytes = ReadFile(*args.Get("prompt-file"));
    if (!bytes.ok()) return bytes.status();
    text = *std::move(bytes);
  }
  if (tokenizer == nullptr) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t =
        LoadTokenizer(args, vocab_size);
    if (!t.ok()) return t.status();
    tokenizer = *std::move(t);
  }
  absl::StatusOr<std::vector<int32_t>> ids = tokenizer->Encode(text);
  if (ids.ok() && ids->empty()) {
    return absl::InvalidArgumentError("the prompt is empty (no tokens)");
  }
  return ids;
}

std::string JsonDump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

// --state-in / --state-out / --state-dtype / --ignore-fingerprint of eval and
// generate.
struct StateIo {
  std::optional<std::string> in;
  std::optional<std::string> out;
  engine::StateDtype dtype = engine::StateDtype::kFloat32;
  bool ignore_fingerprint = false;
  bool allow_unhealthy = false;
};

absl::StatusOr<StateIo> ReadStateIo(const CliArgs& args) {
  StateIo io;
  io.in = args.Get("state-in");
  io.out = args.Get("state-out");
  io.ignore_fingerprint = args.Has("ignore-fingerprint");
  if (io.ignore_fingerprint && !io.in) {
    return UsageError("--ignore-fingerprint applies only with --state-in");
  }
  io.allow_unhealthy = args.Has("allow-unhealthy-state");
  if (io.allow_unhealthy && !io.in) {
    return UsageError("--allow-unhealthy-state applies only with --state-in");
  }
  if (std::optional<std::string> d = args.Get("state-dtype")) {
    if (!io.out)
      return UsageError("--state-dtype applies only with --state-out");
    absl::StatusOr<engine::StateDtype> parsed = engine::ParseStateDtype(*d);
    if (!parsed.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--state-dtype: ", std::string(parsed.status().message())));
    }
    io.dtype = *parsed;
  }
  if (io.in && io.in->empty()) return UsageError("--state-in needs a file");
  if (io.out && io.out->empty()) return UsageError("--state-out needs a file");
  return io;
}

// A fresh state, or the one in --state-in checked against the model.
absl::StatusOr<engine::State> StartState(const RwkvEngine& engine,
                                         const StateIo& io) {
  if (!io.in) return engine.NewState();
  engine::LoadStateOptions opts;
  opts.skip_fingerprint_check = io.ignore_fingerprint;
  opts.allow_unhealthy = io.allow_unhealthy;
  absl::StatusOr<engine::State> state =
      engine::LoadStateFile(*io.in, engine, opts);
  if (!state.ok()) {
    std::string msg(state.status().message());
    if (absl::StrContains(msg, "fingerprint") ||
        absl::StrContains(msg, "not this model")) {
      msg += " (rwkv-cli: --ignore-fingerprint)";
    }
    if (absl::StrContains(msg, "allow-unhealthy")) {
      msg += " (rwkv-cli: --allow-unhealthy-state)";
    }
    return absl::Status(state.status().code(),
                        absl::StrCat("--state-in: ", msg));
  }
  return state;
}

absl::Status SaveStateOut(const StateIo& io, const engine::State& state,
                          bool quiet) {
  if (!io.out) return absl::OkStatus();
  absl::Status s = engine::SaveStateFile(*io.out, state, io.dtype);
  if (!s.ok()) {
    return absl::Status(s.code(),
                        absl::StrCat("--state-out: ", WriteError(*io.out, s)));
  }
  if (!quiet) {
    std::fprintf(stderr, "rwkv-cli: saved state (%lld tokens, %s) to %s\n",
                 static_cast<long long>(state.token_count()),
                 std::string(engine::StateDtypeName(io.dtype)).c_str(),
                 io.out->c_str());
  }
  return absl::OkStatus();
}

absl::Status RunEval(const CliArgs& args) {
  absl::StatusOr<StateIo> io = ReadStateIo(args);
  if (!io.ok()) return io.status();
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(args);
  if (!engine.ok()) return engine.status();
  std::unique_ptr<Tokenizer> tokenizer;
  absl::StatusOr<std::vector<int32_t>> ids =
      ReadInput(args, (*engine)->config().vocab_size, tokenizer);
  if (!ids.ok()) return ids.status();
  absl::StatusOr<engine::State> state = StartState(**engine, *io);
  if (!state.ok()) return state.status();
  absl::StatusOr<engine::Logits> logits = (*engine)->Forward(*ids, *state);
  if (!logits.ok()) return logits.status();
  const bool as_json = args.Has("json");
  if (absl::Status s = SaveStateOut(*io, *state, as_json); !s.ok()) return s;
  absl::Span<const float> row = logits->Row(0);
  if (as_json) {
    json out;
    out["tokens"] = *ids;
    out["logits"] = std::vector<float>(row.begin(), row.end());
    if (io->in || io->out) out["state_token_count"] = state->token_count();
    std::cout << JsonDump(out) << "\n";
    return absl::OkStatus();
  }
  std::vector<int32_t> order(row.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int32_t>(i);
  const size_t k = std::min<size_t>(10, order.size());
  std::partial_sort(order.begin(), order.begin() + k, order.end(),
                    [&](int32_t a, int32_t b) { return row[a] > row[b]; });
  std::cout << ids->size() << " prompt tokens; top " << k << " next tokens:\n";
  for (size_t i = 0; i < k; ++i) {
    std::string text;
    if (tokenizer != nullptr) {
      absl::StatusOr<std::string> t = tokenizer->Decode({order[i]});
      if (t.ok()) text = JsonDump(json(*t));
    }
    std::printf("  %6d  %10.4f  %s\n", order[i], row[order[i]], text.c_str());
  }
  return absl::OkStatus();
}

absl::StatusOr<engine::SamplingParams> ReadSampling(const CliArgs& args) {
  engine::SamplingParams p;
  absl::StatusOr<double> temperature = args.GetDouble("temperature", 1.0);
  absl::StatusOr<double> top_p = args.GetDouble("top-p", 0.85);
  absl::StatusOr<int64_t> top_k = args.GetInt("top-k", 0);
  absl::StatusOr<double> presence = args.GetDouble("presence-penalty", 0.0);
  absl::StatusOr<double> frequency = args.GetDouble("frequency-penalty", 0.0);
  absl::StatusOr<double> decay = args.GetDouble("penalty-decay", 1.0);
  for (const absl::Status& s :
       {temperature.status(), top_p.status(), top_k.status(), presence.status(),
        frequency.status(), decay.status()}) {
    if (!s.ok()) return s;
  }
  if (*top_k < 0 || *top_k > (1 << 30)) {
    return absl::InvalidArgumentError("--top-k must be >= 0");
  }
  p.temperature = static_cast<float>(*temperature);
  p.top_p = static_cast<float>(*top_p);
  p.top_k = static_cast<int32_t>(*top_k);
  p.presence_penalty = static_cast<float>(*presence);
  p.frequency_penalty = static_cast<float>(*frequency);
  p.penalty_decay = static_cast<float>(*decay);
  if (std::optional<std::string> seed = args.Get("seed")) {
    uint64_t s = 0;
    if (!absl::SimpleAtoi(*seed, &s)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--seed must be a non-negative integer, got '", *seed, "'"));
    }
    p.seed = s;
  } else {
    std::random_device rd;
    p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (absl::Status s = engine::ValidateSamplingParams(p); !s.ok()) return s;
  return p;
}

absl::Status RunGenerate(const CliArgs& args) {
  absl::StatusOr<StateIo> io = ReadStateIo(args);
  if (!io.ok()) return io.status();
  absl::StatusOr<int64_t> max_tokens = args.GetInt("max-tokens", -1);
  if (!max_tokens.ok()) return max_tokens.status();
  if (*max_tokens < 0 || *max_tokens > 10'000'000) {
    return absl::InvalidArgumentError(
        "--max-tokens N is required (0 <= N <= 1e7)");
  }
  absl::StatusOr<engine::SamplingParams> params = ReadSampling(args);
  if (!params.ok()) return params.status();
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(args);
  if (!engine.ok()) return engine.status();
  const int vocab = (*engine)->config().vocab_size;
  std::unique_ptr<Tokenizer> tokenizer;
  absl::StatusOr<std::vector<int32_t>> ids = ReadInput(args, vocab, tokenizer);
  if (!ids.ok()) return ids.status();
  if (tokenizer == nullptr) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer(args, vocab);
    if (!t.ok()) return t.status();
    tokenizer = *std::move(t);
  }
  absl::StatusOr<engine::Sampler> sampler =
      engine::Sampler::Create(*params, vocab);
  if (!sampler.ok()) return sampler.status();

  const bool as_json = args.Has("json");
  absl::StatusOr<engine::State> start = StartState(**engine, *io);
  if (!start.ok()) return start.status();
  engine::State state = *std::move(start);
  absl::StatusOr<engine::Logits> logits = (*engine)->Forward(*ids, state);
  if (!logits.ok()) return logits.status();
  engine::StreamDecoder decoder(*tokenizer);
  std::vector<int32_t> generated;
  std::string text;
  const std::optional<int32_t> eos = tokenizer->eos_token();
  for (int64_t i = 0; i < *max_tokens; ++i) {
    absl::StatusOr<int32_t> tok = sampler->Sample(logits->Row(0));
    if (!tok.ok()) return tok.status();
    if (eos && *tok == *eos) break;
    sampler->Accept(*tok);
    generated.push_back(*tok);
    absl::StatusOr<std::string> piece = decoder.Push(*tok);
    if (!piece.ok()) return piece.status();
    text += *piece;
    if (!as_json) {
      std::fwrite(piece->data(), 1, piece->size(), stdout);
      std::fflush(stdout);
    }
    // The last token is fed only when the state is saved, so that the saved
    // state is exactly the state after the printed text.
    if (i + 1 < *max_tokens || io->out) {
      logits = (*engine)->Forward({*tok}, state);
      if (!logits.ok()) return logits.status();
    }
  }
  const std::string tail = decoder.Flush();
  text += tail;
  if (as_json) {
    if (absl::Status s = SaveStateOut(*io, state, true); !s.ok()) return s;
    json out;
    out["tokens"] = generated;
    out["text"] = text;
    out["prompt_tokens"] = ids->size();
    out["seed"] = params->seed;
    if (io->in || io->out) out["state_token_count"] = state.token_count();
    std::cout << JsonDump(out) << "\n";
  } else {
    std::fwrite(tail.data(), 1, tail.size(), stdout);
    std::cout << "\n";
    std::cout.flush();
    if (absl::Status s = SaveStateOut(*io, state, false); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status RunTokenize(const CliArgs& args) {
  if (!args.Has("tokenizer"))
    return absl::InvalidArgumentError("--tokenizer is required");
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(args, 0);
  if (!tok.ok()) return tok.status();
  std::string text;
  if (std::optional<std::string> t = args.Get("text")) {
    text = *t;
  } else if (std::optional<std::string> p = args.Get("prompt")) {
    text = *p;
  } else if (std::optional<std::string> f = args.Get("prompt-file")) {
    absl::StatusOr<std::string> bytes = ReadFile(*f);
    if (!bytes.ok()) return bytes.status();
    text = *std::move(bytes);
  } else {
    return absl::InvalidArgumentError("--text is required");
  }
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
  if (!ids.ok()) return ids.status();
  if (args.Has("json")) {
    std::cout << JsonDump(json{{"ids", *ids}}) << "\n";
  } else {
    for (size_t i = 0; i < ids->size(); ++i)
      std::cout << (i ? " " : "") << (*ids)[i];
    std::cout << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunDetokenize(const CliArgs& args) {
  if (!args.Has("tokenizer"))
    return absl::InvalidArgumentError("--tokenizer is required");
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(args, 0);
  if (!tok.ok()) return tok.status();
  std::optional<std::string> list = args.Get("tokens");
  if (!list) return absl::InvalidArgumentError("--tokens is required");
  absl::StatusOr<std::vector<int32_t>> ids = ParseIdList(*list);
  if (!ids.ok()) return ids.status();
  absl::StatusOr<std::string> text = (*tok)->Decode(*ids);
  if (!text.ok()) return text.status();
  if (args.Has("json")) {
    std::cout << JsonDump(json{{"text", *text}}) << "\n";
  } else {
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::cout << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunInfo(const CliArgs& args) {
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(args);
  if (!engine.ok()) return engine.status();
  const engine::ModelConfig& c = (*engine)->config();
  json out;
  out["architecture"] = std::string(engine::ArchitectureName(c.arch));
  out["n_layer"] = c.n_layer;
  out["n_embd"] = c.n_embd;
  out["ffn_dim"] = c.ffn_dim;
  if (c.n_head > 0) {  // RWKV-7
    out["n_head"] = c.n_head;
    out["head_size"] = c.head_size;
  }
  out["vocab_size"] = c.vocab_size;
  out["n_params"] = c.n_params;
  out["state_bytes_fp32"] = c.state_bytes_fp32;
  out["weight_bytes"] = (*engine)->weight_bytes();
  out["device"] = (*engine)->device();
  out["dtype"] = (*engine)->dtype();
  if (args.Has("json")) {
    std::cout << JsonDump(out) << "\n";
    return absl::OkStatus();
  }
  std::printf(
      "architecture  %s\nlayers        %d\nembedding     %d\nffn           %d\n"
      "vocab         %d\nparameters    %lld\nstate         %lld bytes per "
      "session (fp32)\n"
      "weights       %lld bytes (%s on %s)\n",
      std::string(engine::ArchitectureName(c.arch)).c_str(), c.n_layer,
      c.n_embd, c.ffn_dim, c.vocab_size, static_cast<long long>(c.n_params),
      static_cast<long long>(c.state_bytes_fp32),
      static_cast<long long>((*engine)->weight_bytes()),
      (*engine)->dtype().c_str(), (*engine)->device().c_str());
  if (c.n_head > 0) {
    std::printf("heads         %d x %d (state matrix per head)\n", c.n_head,
                c.head_size);
  }
  return absl::OkStatus();
}

// One session's recurrent state next to the KV cache a transformer of the
// same width and depth needs (K and V per layer: 2 * n_layer * n_embd *
// tokens * bytes per value).
absl::Status RunStateSize(const CliArgs& args) {
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(args);
  if (!engine.ok()) return engine.status();
  const engine::ModelConfig& c = (*engine)->config();
  const int64_t state32 = c.state_bytes_fp32;
  const int64_t state16 = state32 / 2;
  struct Row {
    int64_t tokens, kv16, kv32;
    double ratio;
  };
  std::vector<Row> rows;
  for (int64_t tokens : {int64_t{1024}, int64_t{8192}, int64_t{32768}}) {
    const int64_t kv16 = 2 * int64_t{c.n_layer} * c.n_embd * tokens * 2;
    rows.push_back({tokens, kv16, kv16 * 2,
                    state32 > 0 ? static_cast<double>(kv16 * 2) / state32 : 0});
  }
  const std::string arch(engine::ArchitectureName(c.arch));
  if (args.Has("json")) {
    json out;
    out["architecture"] = arch;
    out["n_layer"] = c.n_layer;
    out["n_embd"] = c.n_embd;
    out["state_bytes_fp32"] = state32;
    out["state_bytes_fp16"] = state16;
    json kv = json::array();
    for (const Row& r : rows) {
      kv.push_back({{"context_tokens", r.tokens},
                    {"kv_bytes_fp16", r.kv16},
                    {"kv_bytes_fp32", r.kv32},
                    {"kv_to_state_ratio", r.ratio}});
    }
    out["kv_cache"] = std::move(kv);
    std::cout << JsonDump(out) << "\n";
    return absl::OkStatus();
  }
  std::printf("model         %s, %d layers, n_embd %d\n", arch.c_str(),
              c.n_layer, c.n_embd);
  std::printf(
      "RWKV state    %s fp32, %s fp16 per session (%lld / %lld bytes), the "
      "same at any context length\n",
      HumanBytes(state32).c_str(), HumanBytes(state16).c_str(),
      static_cast<long long>(state32), static_cast<long long>(state16));
  std::printf(
      "KV cache of a transformer of the same width and depth (K and V in "
      "every layer):\n");
  std::printf("  %-8s %12s %12s  %s\n", "context", "fp16 KV", "fp32 KV",
              "KV / RWKV state (same precision)");
  for (const Row& r : rows) {
    std::printf(
        "  %-8s %12s %12s  %.0fx\n", absl::StrCat(r.tokens / 1024, "k").c_str(),
        HumanBytes(r.kv16).c_str(), HumanBytes(r.kv32).c_str(), r.ratio);
  }
  return absl::OkStatus();
}

int Finish(const absl::Status& s, const char* help = "rwkv-cli --help") {
  if (s.ok()) return 0;
  std::fprintf(stderr, "rwkv-cli: error: %s\n",
               std::string(s.message()).c_str());
  if (IsUsageError(s)) {
    std::fprintf(stderr, "run '%s' for usage\n", help);
    return 2;
  }
  return 1;
}

int Main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" ||
      std::string(argv[1]) == "help") {
    std::fputs(kUsage, argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  if (command == "state")
    return Finish(RunStateCommand(argc, argv, 2), "rwkv-cli state --help");
  CliArgs args({"model",
                "tokenizer",
                "prompt",
                "prompt-file",
                "tokens",
                "text",
                "max-tokens",
                "temperature",
                "top-p",
                "top-k",
                "seed",
                "presence-penalty",
                "frequency-penalty",
                "penalty-decay",
                "threads",
                "device",
                "dtype",
                "state-in",
                "state-out",
                "state-dtype"},
               {"json", "help", "ignore-fingerprint", "allow-unhealthy-state"});
  absl::Status s = args.Parse(argc, argv, 2);
  if (!s.ok()) s = UsageError(std::string(s.message()));
  if (s.ok() && args.Has("help")) {
    std::fputs(kUsage, stdout);
    return 0;
  }
  if (s.ok() && !args.positionals().empty()) {
    s = UsageError(
        absl::StrCat("unexpected argument '", args.positionals()[0], "'"));
  }
  if (s.ok()) {
    if (command == "eval") {
      s = RunEval(args);
    } else if (command == "generate") {
      s = RunGenerate(args);
    } else if (command == "tokenize") {
      s = RunTokenize(args);
    } else if (command == "detokenize") {
      s = RunDetokenize(args);
    } else if (command == "info") {
      s = RunInfo(args);
    } else if (command == "state-size") {
      s = RunStateSize(args);
    } else {
      std::fprintf(stderr, "rwkv-cli: unknown command '%s'\n%s",
                   command.c_str(), kUsage);
      return 2;
    }
  }
  return Finish(s);
}

}  // namespace
}  // namespace rwkv::tools

int main(int argc, char** argv) {
  try {
    return rwkv::tools::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "rwkv-cli: error: %s\n", e.what());
    return 1;
  }
}
