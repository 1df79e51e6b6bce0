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
//   rwkv-cli quantize --model M --out F.safetensors [--dtype int8|bf16]
//   rwkv-cli bpb      --model M (--jsonl FILE [--max-texts N] | <input>)
//
// <input> is exactly one of --prompt TEXT, --prompt-file FILE (its bytes as
// they are) or --tokens ID,ID,...  Common: --threads N (default: all cores),
// --device cpu|cuda, --dtype auto|fp32|bf16|int8|fp16. eval and generate
// continue from --state-in FILE and save the state after the run to
// --state-out FILE.
// Flags are CLI11 subcommand options bound to CliFlags below (`rwkv-cli
// <command> --help` shows each command's flags and defaults). Exit status: 0
// ok, 1 an error (also a flag value out of range), 2 a command-line mistake.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <limits>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/cli_validators.h"
#include "common/default_model.h"
#include "common/id_list.h"
#include "engine/quantize_checkpoint.h"
#include "engine/rwkv_engine.h"
#include "engine/sampler.h"
#include "engine/sampling_params.h"
#include "engine/state.h"
#include "engine/state_file.h"
#include "engine/stream_decoder.h"
#include "engine/tokenizer.h"
#include "tools/bits_per_byte.h"
#include "tools/state_commands.h"

namespace rwkv::tools {
namespace {

using engine::EngineOptions;
using engine::RwkvEngine;
using engine::Tokenizer;
using json = nlohmann::json;

// What rwkv-cli's flags set; each command binds the fields it reads (see
// AddCommands). The member initializers are the defaults --help shows.
struct CliFlags {
  // --model (empty: the default model, common/default_model.h), --device,
  // --dtype, --threads.
  EngineOptions engine;
  std::optional<std::string> tokenizer;
  // The input: exactly one of these for eval/generate.
  std::optional<std::string> prompt;
  std::optional<std::string> prompt_file;
  std::optional<std::string> tokens;
  // tokenize's text (or --prompt / --prompt-file).
  std::optional<std::string> text;
  bool json = false;
  // eval/generate state files.
  std::optional<std::string> state_in;
  std::optional<std::string> state_out;
  std::optional<std::string> state_dtype;
  bool ignore_fingerprint = false;
  bool allow_unhealthy_state = false;
  // generate.
  int64_t max_tokens = 0;
  // The engine's sampling defaults but ChatRWKV's nucleus 0.85.
  engine::SamplingParams sampling = [] {
    engine::SamplingParams p;
    p.top_p = 0.85f;
    return p;
  }();
  // None: a random seed (printed with --json, so a run can be repeated).
  std::optional<uint64_t> seed;
  // quantize.
  std::string out;
  std::string quantize_dtype = "int8";
  // bpb.
  std::optional<std::string> jsonl;
  int64_t max_texts = 0;
};

absl::StatusOr<std::unique_ptr<RwkvEngine>> LoadEngine(const CliFlags& f) {
  EngineOptions opts = f.engine;
  if (opts.model_path.empty()) {
    // No --model: the committed demo model (see README "The demo model").
    absl::StatusOr<std::string> demo = common::DefaultModelPath();
    if (!demo.ok()) return demo.status();
    opts.model_path = *demo;
  }
  return RwkvEngine::Create(opts);
}

absl::StatusOr<std::unique_ptr<Tokenizer>> LoadTokenizer(const CliFlags& f,
                                                         int vocab_size) {
  if (const std::optional<std::string>& spec = f.tokenizer) {
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
    const CliFlags& f, int vocab_size, std::unique_ptr<Tokenizer>& tokenizer) {
  const int given =
      f.prompt.has_value() + f.prompt_file.has_value() + f.tokens.has_value();
  if (given != 1) {
    return absl::InvalidArgumentError(
        "give exactly one of --prompt, --prompt-file or --tokens");
  }
  if (f.tokens) {
    absl::StatusOr<std::vector<int32_t>> parsed =
        common::ParseIdList(*f.tokens, "--tokens");
    if (parsed.ok() && parsed->empty()) {
      return absl::InvalidArgumentError("--tokens is empty");
    }
    return parsed;
  }
  std::string text;
  if (f.prompt) {
    text = *f.prompt;
  } else {
    absl::StatusOr<std::string> bytes = ReadFile(*f.prompt_file);
    if (!bytes.ok()) return bytes.status();
    text = *std::move(bytes);
  }
  if (tokenizer == nullptr) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer(f, vocab_size);
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

absl::StatusOr<StateIo> ReadStateIo(const CliFlags& f) {
  StateIo io;
  io.in = f.state_in;
  io.out = f.state_out;
  io.ignore_fingerprint = f.ignore_fingerprint;
  if (io.ignore_fingerprint && !io.in) {
    return UsageError("--ignore-fingerprint applies only with --state-in");
  }
  io.allow_unhealthy = f.allow_unhealthy_state;
  if (io.allow_unhealthy && !io.in) {
    return UsageError("--allow-unhealthy-state applies only with --state-in");
  }
  if (const std::optional<std::string>& d = f.state_dtype) {
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
      engine::LoadStateFile(*io.in, engine.model(), opts);
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

absl::Status RunEval(const CliFlags& f) {
  absl::StatusOr<StateIo> io = ReadStateIo(f);
  if (!io.ok()) return io.status();
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(f);
  if (!engine.ok()) return engine.status();
  std::unique_ptr<Tokenizer> tokenizer;
  absl::StatusOr<std::vector<int32_t>> ids =
      ReadInput(f, (*engine)->config().vocab_size, tokenizer);
  if (!ids.ok()) return ids.status();
  absl::StatusOr<engine::State> state = StartState(**engine, *io);
  if (!state.ok()) return state.status();
  absl::StatusOr<engine::Logits> logits = (*engine)->Forward(*ids, *state);
  if (!logits.ok()) return logits.status();
  const bool as_json = f.json;
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

absl::StatusOr<engine::SamplingParams> ReadSampling(const CliFlags& f) {
  engine::SamplingParams p = f.sampling;
  if (f.seed) {
    p.seed = *f.seed;
  } else {
    std::random_device rd;
    p.seed = (static_cast<uint64_t>(rd()) << 32) ^ rd();
  }
  if (absl::Status s = engine::ValidateSamplingParams(p); !s.ok()) return s;
  return p;
}

absl::Status RunGenerate(const CliFlags& f) {
  absl::StatusOr<StateIo> io = ReadStateIo(f);
  if (!io.ok()) return io.status();
  const int64_t max_tokens = f.max_tokens;
  absl::StatusOr<engine::SamplingParams> params = ReadSampling(f);
  if (!params.ok()) return params.status();
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(f);
  if (!engine.ok()) return engine.status();
  const int vocab = (*engine)->config().vocab_size;
  std::unique_ptr<Tokenizer> tokenizer;
  absl::StatusOr<std::vector<int32_t>> ids = ReadInput(f, vocab, tokenizer);
  if (!ids.ok()) return ids.status();
  if (tokenizer == nullptr) {
    absl::StatusOr<std::unique_ptr<Tokenizer>> t = LoadTokenizer(f, vocab);
    if (!t.ok()) return t.status();
    tokenizer = *std::move(t);
  }
  absl::StatusOr<engine::Sampler> sampler =
      engine::Sampler::Create(*params, vocab);
  if (!sampler.ok()) return sampler.status();

  const bool as_json = f.json;
  absl::StatusOr<engine::State> start = StartState(**engine, *io);
  if (!start.ok()) return start.status();
  engine::State state = *std::move(start);
  absl::StatusOr<engine::Logits> logits = (*engine)->Forward(*ids, state);
  if (!logits.ok()) return logits.status();
  engine::StreamDecoder decoder(*tokenizer);
  std::vector<int32_t> generated;
  std::string text;
  const std::optional<int32_t> eos = tokenizer->eos_token();
  for (int64_t i = 0; i < max_tokens; ++i) {
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
    if (i + 1 < max_tokens || io->out) {
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

absl::Status RunTokenize(const CliFlags& f) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(f, 0);
  if (!tok.ok()) return tok.status();
  std::string text;
  if (f.text) {
    text = *f.text;
  } else if (f.prompt) {
    text = *f.prompt;
  } else if (f.prompt_file) {
    absl::StatusOr<std::string> bytes = ReadFile(*f.prompt_file);
    if (!bytes.ok()) return bytes.status();
    text = *std::move(bytes);
  } else {
    return absl::InvalidArgumentError("--text is required");
  }
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
  if (!ids.ok()) return ids.status();
  if (f.json) {
    std::cout << JsonDump(json{{"ids", *ids}}) << "\n";
  } else {
    for (size_t i = 0; i < ids->size(); ++i)
      std::cout << (i ? " " : "") << (*ids)[i];
    std::cout << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunDetokenize(const CliFlags& f) {
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok = LoadTokenizer(f, 0);
  if (!tok.ok()) return tok.status();
  absl::StatusOr<std::vector<int32_t>> ids =
      common::ParseIdList(*f.tokens, "--tokens");
  if (!ids.ok()) return ids.status();
  absl::StatusOr<std::string> text = (*tok)->Decode(*ids);
  if (!text.ok()) return text.status();
  if (f.json) {
    std::cout << JsonDump(json{{"text", *text}}) << "\n";
  } else {
    std::fwrite(text->data(), 1, text->size(), stdout);
    std::cout << "\n";
  }
  return absl::OkStatus();
}

absl::Status RunInfo(const CliFlags& f) {
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(f);
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
  if (f.json) {
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
absl::Status RunStateSize(const CliFlags& f) {
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(f);
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
  if (f.json) {
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

absl::Status RunQuantize(const CliFlags& f) {
  std::string model = f.engine.model_path;
  if (model.empty()) {
    absl::StatusOr<std::string> demo = common::DefaultModelPath();
    if (!demo.ok()) return demo.status();
    model = *demo;
  }
  absl::StatusOr<engine::QuantizeReport> r =
      engine::QuantizeCheckpoint(model, f.out, f.quantize_dtype);
  if (!r.ok()) return r.status();
  if (f.json) {
    std::cout << JsonDump(json{{"architecture", r->architecture},
                               {"dtype", r->dtype},
                               {"fingerprint", r->fingerprint},
                               {"tensors", r->tensors},
                               {"matrices", r->matrices},
                               {"params_converted", r->params_converted},
                               {"params_total", r->params_total},
                               {"bytes_in", r->bytes_in},
                               {"bytes_out", r->bytes_out},
                               {"out", f.out}})
              << "\n";
    return absl::OkStatus();
  }
  std::printf(
      "%s: %s, %lld matrices (%.1f%% of %lld parameters) as %s; %s -> %s "
      "(%.2fx); fingerprint %s kept\n",
      f.out.c_str(), r->architecture.c_str(),
      static_cast<long long>(r->matrices),
      r->params_total > 0 ? 100.0 * r->params_converted / r->params_total : 0,
      static_cast<long long>(r->params_total), r->dtype.c_str(),
      HumanBytes(static_cast<int64_t>(r->bytes_in)).c_str(),
      HumanBytes(static_cast<int64_t>(r->bytes_out)).c_str(),
      r->bytes_out > 0 ? static_cast<double>(r->bytes_in) / r->bytes_out : 0,
      r->fingerprint.c_str());
  return absl::OkStatus();
}

absl::Status RunBitsPerByte(const CliFlags& f) {
  std::vector<std::string> texts;
  if (f.jsonl) {
    if (f.prompt || f.prompt_file || f.tokens) {
      return UsageError("bpb: give --jsonl or one input, not both");
    }
    absl::StatusOr<std::vector<std::string>> t =
        ReadJsonlTexts(*f.jsonl, f.max_texts);
    if (!t.ok()) return t.status();
    texts = *std::move(t);
  } else if (f.prompt) {
    texts.push_back(*f.prompt);
  } else if (f.prompt_file) {
    absl::StatusOr<std::string> bytes = ReadFile(*f.prompt_file);
    if (!bytes.ok()) return bytes.status();
    texts.push_back(*std::move(bytes));
  } else {
    return UsageError("bpb: give --jsonl FILE, --prompt or --prompt-file");
  }
  absl::StatusOr<std::unique_ptr<RwkvEngine>> engine = LoadEngine(f);
  if (!engine.ok()) return engine.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tok =
      LoadTokenizer(f, (*engine)->config().vocab_size);
  if (!tok.ok()) return tok.status();
  absl::StatusOr<BitsPerByte> r = MeasureBitsPerByte(**engine, **tok, texts);
  if (!r.ok()) return r.status();
  if (r->bytes_scored == 0) {
    return absl::InvalidArgumentError("bpb: no text has two tokens to score");
  }
  if (f.json) {
    std::cout << JsonDump(json{{"bits_per_byte", r->bits_per_byte()},
                               {"bits", r->bits},
                               {"bytes", r->bytes_scored},
                               {"tokens", r->tokens_scored},
                               {"texts", r->texts},
                               {"dtype", (*engine)->dtype()}})
              << "\n";
    return absl::OkStatus();
  }
  std::printf(
      "%.5f bits per byte (%lld tokens, %lld bytes scored in %lld texts; "
      "dtype %s)\n",
      r->bits_per_byte(), static_cast<long long>(r->tokens_scored),
      static_cast<long long>(r->bytes_scored), static_cast<long long>(r->texts),
      (*engine)->dtype().c_str());
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

void AddModelFlags(CLI::App* cmd, CliFlags* f) {
  cmd->add_option("--model", f->engine.model_path,
                  "RWKV checkpoint; none: $RWKV_MODEL, else the demo model "
                  "models/demo/rwkv4-demo.pth")
      ->type_name("M");
  cmd->add_option("--threads", f->engine.num_threads, "0 = all cores")
      ->transform(common::IntIn(0, 1024))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--device", f->engine.device, "cpu | cuda[:N]")
      ->capture_default_str();
  cmd->add_option("--dtype", f->engine.dtype,
                  "auto: int8 for a quantized file, else fp32; CPU bf16/int8: "
                  "the large matrices; fp16: CUDA only")
      ->check(common::OneOf({"auto", "fp32", "bf16", "int8", "fp16"}))
      ->capture_default_str()
      ->type_name("auto|fp32|bf16|int8|fp16");
}

void AddTokenizerFlag(CLI::App* cmd, CliFlags* f) {
  cmd->add_option("--tokenizer", f->tokenizer,
                  "'bytes', an RWKV World vocab .txt, or a tokenizer.json; "
                  "none: inferred from the vocab size when unambiguous "
                  "(256: bytes)")
      ->type_name("T");
}

void AddInputFlags(CLI::App* cmd, CliFlags* f) {
  cmd->add_option("--prompt", f->prompt, "the input text")->type_name("TEXT");
  cmd->add_option("--prompt-file", f->prompt_file,
                  "the input: the file's bytes as they are")
      ->type_name("FILE");
  cmd->add_option("--tokens", f->tokens, "the input as token ids")
      ->type_name("ID,ID,...");
}

void AddStateIoFlags(CLI::App* cmd, CliFlags* f) {
  cmd->add_option("--state-in", f->state_in,
                  "continue from this saved state (checked against the "
                  "model's fingerprint)")
      ->type_name("FILE");
  cmd->add_flag("--ignore-fingerprint", f->ignore_fingerprint,
                "accept a --state-in of another model of the same shape");
  cmd->add_flag("--allow-unhealthy-state", f->allow_unhealthy_state,
                "accept a --state-in outside the health bounds (README "
                "\"State health\")");
  cmd->add_option("--state-out", f->state_out,
                  "save the state after the run (generate: after the prompt "
                  "and every printed token)")
      ->type_name("FILE");
  cmd->add_option("--state-dtype", f->state_dtype,
                  "stored dtype of --state-out: fp32 (default), fp16 or "
                  "bf16")
      ->type_name("D");
}

void AddSamplingFlags(CLI::App* cmd, CliFlags* f) {
  engine::SamplingParams& p = f->sampling;
  cmd->add_option("--max-tokens", f->max_tokens, "tokens to generate")
      ->transform(common::IntIn(0, 10'000'000))
      ->required()
      ->type_name("N");
  cmd->add_option("--temperature", p.temperature, "0 = greedy")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--top-p", p.top_p, "nucleus mass")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("P");
  cmd->add_option("--top-k", p.top_k, "0 = off")
      ->transform(common::IntIn(0, 1 << 30))
      ->capture_default_str()
      ->type_name("K");
  cmd->add_option("--presence-penalty", p.presence_penalty,
                  "subtracted once from the logit of every generated token")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("A");
  cmd->add_option("--frequency-penalty", p.frequency_penalty,
                  "times the token's (decayed) count, subtracted from its "
                  "logit")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("B");
  cmd->add_option("--penalty-decay", p.penalty_decay,
                  "counts are multiplied by this after each token, in (0, 1]")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("D");
  cmd->add_option("--seed", f->seed,
                  "none: a random seed (printed with --json)")
      ->transform(common::Uint64())
      ->type_name("S");
}

void AddJsonFlag(CLI::App* cmd, CliFlags* f) {
  cmd->add_flag("--json", f->json, "one JSON object instead of text");
}

// The commands other than `state`, with what runs each.
struct Command {
  CLI::App* app;
  absl::Status (*run)(const CliFlags&);
};

std::vector<Command> AddCommands(CLI::App& app, CliFlags* f) {
  std::vector<Command> commands;
  CLI::App* eval = app.add_subcommand(
      "eval", "the top next tokens (JSON: \"tokens\", \"logits\")");
  AddModelFlags(eval, f);
  AddTokenizerFlag(eval, f);
  AddInputFlags(eval, f);
  AddStateIoFlags(eval, f);
  AddJsonFlag(eval, f);
  commands.push_back({eval, &RunEval});

  CLI::App* generate = app.add_subcommand(
      "generate",
      "streamed text (JSON: \"tokens\", \"text\", \"prompt_tokens\", "
      "\"seed\"); stops at the tokenizer's end-of-text token");
  AddModelFlags(generate, f);
  AddTokenizerFlag(generate, f);
  AddInputFlags(generate, f);
  AddStateIoFlags(generate, f);
  AddSamplingFlags(generate, f);
  AddJsonFlag(generate, f);
  commands.push_back({generate, &RunGenerate});

  CLI::App* tokenize =
      app.add_subcommand("tokenize", "the token ids (JSON: \"ids\")");
  AddTokenizerFlag(tokenize, f);
  tokenize->get_option("--tokenizer")->required();
  tokenize->add_option("--text", f->text, "the text")->type_name("TEXT");
  tokenize->add_option("--prompt", f->prompt, "same as --text")
      ->type_name("TEXT");
  tokenize->add_option("--prompt-file", f->prompt_file, "the file's bytes")
      ->type_name("FILE");
  AddJsonFlag(tokenize, f);
  commands.push_back({tokenize, &RunTokenize});

  CLI::App* detokenize =
      app.add_subcommand("detokenize", "the text (JSON: \"text\")");
  AddTokenizerFlag(detokenize, f);
  detokenize->get_option("--tokenizer")->required();
  detokenize->add_option("--tokens", f->tokens, "the ids")
      ->required()
      ->type_name("ID,ID,...");
  AddJsonFlag(detokenize, f);
  commands.push_back({detokenize, &RunDetokenize});

  CLI::App* info = app.add_subcommand(
      "info", "architecture, dims, vocab, parameters, state bytes");
  AddModelFlags(info, f);
  AddJsonFlag(info, f);
  commands.push_back({info, &RunInfo});

  CLI::App* state_size = app.add_subcommand(
      "state-size", "state bytes next to a transformer's KV cache");
  AddModelFlags(state_size, f);
  AddJsonFlag(state_size, f);
  commands.push_back({state_size, &RunStateSize});

  CLI::App* quantize = app.add_subcommand(
      "quantize",
      "writes the model with its large matrices in int8 (weight-only, a "
      "scale per 128 inputs) or bf16 as a .safetensors the engine loads "
      "directly");
  quantize
      ->add_option("--model", f->engine.model_path,
                   "RWKV checkpoint; none: $RWKV_MODEL, else the demo model")
      ->type_name("M");
  quantize->add_option("--out", f->out, "the .safetensors to write")
      ->required()
      ->type_name("FILE");
  quantize->add_option("--dtype", f->quantize_dtype, "matrix dtype")
      ->check(common::OneOf({"int8", "bf16"}))
      ->capture_default_str()
      ->type_name("int8|bf16");
  AddJsonFlag(quantize, f);
  commands.push_back({quantize, &RunQuantize});

  CLI::App* bpb = app.add_subcommand(
      "bpb",
      "bits per byte: each text from a fresh state, every token after the "
      "first charged -log2 p(token | the tokens before it)");
  AddModelFlags(bpb, f);
  AddTokenizerFlag(bpb, f);
  bpb->add_option("--jsonl", f->jsonl,
                  "texts: the \"text\" of each line of this JSONL file")
      ->type_name("FILE");
  bpb->add_option("--max-texts", f->max_texts, "0 = all of --jsonl's texts")
      ->transform(common::IntIn(0, 1 << 30))
      ->capture_default_str()
      ->type_name("N");
  bpb->add_option("--prompt", f->prompt, "one text")->type_name("TEXT");
  bpb->add_option("--prompt-file", f->prompt_file, "one text: the file's bytes")
      ->type_name("FILE");
  AddJsonFlag(bpb, f);
  commands.push_back({bpb, &RunBitsPerByte});
  return commands;
}

int Main(int argc, char** argv) {
  CliFlags flags;
  StateFlags state_flags;
  CLI::App app("Runs RWKV models and tokenizers from the command line.",
               "rwkv-cli");
  app.footer(
      "Run 'rwkv-cli <command> --help' for a command's flags. Exit status: 0 "
      "ok, 1 an error (also a flag value out of range), 2 a command-line "
      "mistake.");
  app.get_formatter()->column_width(34);
  const std::vector<Command> commands = AddCommands(app, &flags);
  const CLI::App* state = AddStateCommands(app, &state_flags);
  // No require_subcommand: CLI11 would then report a missing command before
  // an unknown one ("rwkv-cli frob"); the end of Main reports it.
  // `rwkv-cli help` and `rwkv-cli state help` as before CLI11.
  std::vector<const char*> args(argv, argv + argc);
  if (args.size() >= 2 && std::string(args.back()) == "help" &&
      (args.size() == 2 ||
       (args.size() == 3 && std::string(args[1]) == "state"))) {
    args.back() = "--help";
  }
  common::CliExitCodes codes;
  codes.bad_value = 1;  // "errors exit 1, command-line mistakes 2"
  if (std::optional<int> exit = common::HandleCommandLine(
          app, static_cast<int>(args.size()), args.data(), codes)) {
    return *exit;
  }
  if (state->parsed()) {
    return Finish(RunStateCommand(*state, state_flags),
                  "rwkv-cli state --help");
  }
  for (const Command& c : commands) {
    if (c.app->parsed()) return Finish(c.run(flags));
  }
  return Finish(
      UsageError("missing command (eval, generate, tokenize, detokenize, info, "
                 "state-size, quantize, bpb, state)"));
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
