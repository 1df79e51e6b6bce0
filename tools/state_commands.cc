#include "tools/state_commands.h"

#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/cli_validators.h"
#include "engine/state.h"
#include "engine/state_file.h"
#include "engine/state_inspect.h"
#include "engine/state_ops.h"

namespace rwkv::tools {

constexpr char kUsagePayloadUrl[] = "rwkv-cli/usage";

absl::Status UsageError(const std::string& message) {
  absl::Status s = absl::InvalidArgumentError(message);
  s.SetPayload(kUsagePayloadUrl, absl::Cord("1"));
  return s;
}

bool IsUsageError(const absl::Status& status) {
  return status.GetPayload(kUsagePayloadUrl).has_value();
}

std::string WriteError(const std::string& path, const absl::Status& status) {
  std::string msg(status.message());
  if (absl::StrContains(msg, path)) return msg;
  return absl::StrCat("cannot write state file ", path, ": ", msg);
}

std::string HumanBytes(int64_t bytes) {
  const double b = static_cast<double>(bytes);
  if (bytes < 1024) return absl::StrCat(bytes, " B");
  if (b < 1024.0 * 1024) return absl::StrFormat("%.1f KiB", b / 1024);
  if (b < 1024.0 * 1024 * 1024) {
    return absl::StrFormat("%.1f MiB", b / (1024.0 * 1024));
  }
  return absl::StrFormat("%.2f GiB", b / (1024.0 * 1024 * 1024));
}

namespace {

using engine::State;
using engine::StateDtype;
using engine::StateFileInfo;
using json = nlohmann::json;

std::string JsonDump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string ShortDtypeName(StateDtype d) {
  switch (d) {
    case StateDtype::kFloat32:
      return "fp32";
    case StateDtype::kFloat16:
      return "fp16";
    case StateDtype::kBFloat16:
      return "bf16";
  }
  return "fp32";
}

int64_t DtypeSize(StateDtype d) { return d == StateDtype::kFloat32 ? 4 : 2; }

// Bytes of the state's tensors when stored as `dtype`.
absl::StatusOr<int64_t> TensorBytes(const State& state, StateDtype dtype) {
  int64_t numel = 0;
  for (const std::string& name : state.ComponentNames()) {
    absl::StatusOr<std::vector<int64_t>> shape = state.ComponentShape(name);
    if (!shape.ok()) return shape.status();
    int64_t n = 1;
    for (int64_t d : *shape) n *= d;
    numel += n;
  }
  return numel * DtypeSize(dtype);
}

absl::StatusOr<int64_t> FileSize(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  return static_cast<int64_t>(in.tellg());
}

struct Loaded {
  State state;
  StateFileInfo info;
};

absl::StatusOr<Loaded> Load(const std::string& path) {
  Loaded out;
  absl::StatusOr<State> s = engine::LoadStateFileStandalone(path, &out.info);
  if (!s.ok()) return s.status();
  out.state = *std::move(s);
  return out;
}

absl::StatusOr<StateDtype> OutputDtype(const std::string& name,
                                       const std::string& flag) {
  absl::StatusOr<StateDtype> d = engine::ParseStateDtype(name);
  if (!d.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("--", flag, ": ", std::string(d.status().message())));
  }
  return d;
}

absl::Status Save(const std::string& path, const State& state,
                  StateDtype dtype) {
  absl::Status s = engine::SaveStateFile(path, state, dtype);
  if (!s.ok()) {
    return absl::Status(s.code(), WriteError(path, s));
  }
  std::printf("wrote %s: %lld tokens, %s, %lld bytes\n", path.c_str(),
              static_cast<long long>(state.token_count()),
              ShortDtypeName(dtype).c_str(),
              static_cast<long long>(FileSize(path).value_or(-1)));
  return absl::OkStatus();
}

json NumberOrNull(double v) {
  if (std::isfinite(v)) return json(v);
  return json(nullptr);
}

absl::Status RunInspect(const StateFlags& f) {
  const std::string& path = f.files[0];
  absl::StatusOr<Loaded> loaded = Load(path);
  if (!loaded.ok()) return loaded.status();
  absl::StatusOr<engine::StateReport> report =
      engine::InspectState(loaded->state);
  if (!report.ok()) return report.status();
  const engine::StateReport& r = *report;
  const StateFileInfo& info = loaded->info;
  if (!f.json) {
    std::printf("%s: state file format %d, stored as %s\n", path.c_str(),
                info.format_version, ShortDtypeName(info.dtype).c_str());
    const std::string text = engine::FormatStateReport(r);
    std::fwrite(text.data(), 1, text.size(), stdout);
    return absl::OkStatus();
  }
  json out;
  out["file"] = path;
  out["format_version"] = info.format_version;
  out["file_dtype"] = ShortDtypeName(info.dtype);
  out["architecture"] = std::string(engine::ArchitectureName(r.arch));
  out["model_fingerprint"] = r.model_fingerprint;
  out["token_count"] = r.token_count;
  out["bytes"] = r.bytes;
  out["finite"] = r.finite;
  out["healthy"] = r.healthy;
  out["problems"] = r.problems;
  json components = json::array();
  for (const engine::ComponentReport& c : r.components) {
    json jc;
    jc["name"] = c.name;
    jc["shape"] = c.shape;
    jc["mean_abs"] = NumberOrNull(c.mean_abs);
    jc["max_abs"] = NumberOrNull(c.max_abs);
    json layers = json::array();
    for (const engine::LayerStats& s : c.layers) {
      json jl;
      jl["mean_abs"] = NumberOrNull(s.mean_abs);
      jl["max_abs"] = NumberOrNull(s.max_abs);
      // NaN: not an accumulator (omitted); -inf (all zero) becomes null.
      if (!std::isnan(s.max_log10_true)) {
        jl["max_log10_true"] = NumberOrNull(s.max_log10_true);
      }
      // RWKV-7 att_kv: the norm of each head's matrix.
      if (!s.head_norms.empty()) {
        json norms = json::array();
        for (double n : s.head_norms) norms.push_back(NumberOrNull(n));
        jl["head_norms"] = std::move(norms);
      }
      layers.push_back(std::move(jl));
    }
    jc["layers"] = std::move(layers);
    components.push_back(std::move(jc));
  }
  out["components"] = std::move(components);
  std::cout << JsonDump(out) << "\n";
  return absl::OkStatus();
}

absl::Status RunBlend(const StateFlags& f) {
  absl::StatusOr<StateDtype> dtype = OutputDtype(f.state_dtype, "state-dtype");
  if (!dtype.ok()) return dtype.status();
  absl::StatusOr<Loaded> a = Load(f.files[0]);
  if (!a.ok()) return a.status();
  absl::StatusOr<Loaded> b = Load(f.files[1]);
  if (!b.ok()) return b.status();
  absl::StatusOr<State> blended =
      engine::BlendStates(a->state, b->state, f.alpha);
  if (!blended.ok()) return blended.status();
  return Save(f.out, *blended, *dtype);
}

absl::Status RunDecay(const StateFlags& f) {
  absl::StatusOr<StateDtype> dtype = OutputDtype(f.state_dtype, "state-dtype");
  if (!dtype.ok()) return dtype.status();
  absl::StatusOr<Loaded> in = Load(f.files[0]);
  if (!in.ok()) return in.status();
  absl::StatusOr<State> decayed = engine::DecayState(in->state, f.factor);
  if (!decayed.ok()) return decayed.status();
  return Save(f.out, *decayed, *dtype);
}

absl::Status RunDistance(const StateFlags& f) {
  absl::StatusOr<Loaded> a = Load(f.files[0]);
  if (!a.ok()) return a.status();
  absl::StatusOr<Loaded> b = Load(f.files[1]);
  if (!b.ok()) return b.status();
  absl::StatusOr<engine::StateDistance> d =
      engine::DistanceBetween(a->state, b->state);
  if (!d.ok()) return d.status();
  if (f.json) {
    json out;
    json comps = json::object();
    for (const auto& [name, v] : d->components) comps[name] = NumberOrNull(v);
    out["components"] = std::move(comps);
    out["total"] = NumberOrNull(d->total);
    std::cout << JsonDump(out) << "\n";
    return absl::OkStatus();
  }
  for (const auto& [name, v] : d->components) {
    std::printf("%-11s %.6g\n", name.c_str(), v);
  }
  std::printf("%-11s %.6g\n", "total", d->total);
  return absl::OkStatus();
}

// FILE minus a trailing .pt/.pth and a .fp32/.fp16/.bf16 tag, plus
// ".<dtype>.pt".
std::string DefaultConvertPath(const std::string& in, StateDtype dtype) {
  std::string stem = in;
  for (const char* ext : {".pt", ".pth"}) {
    if (absl::EndsWith(stem, ext) && stem.size() > std::string(ext).size()) {
      stem.resize(stem.size() - std::string(ext).size());
      break;
    }
  }
  for (const char* tag : {".fp32", ".fp16", ".bf16"}) {
    if (absl::EndsWith(stem, tag) && stem.size() > std::string(tag).size()) {
      stem.resize(stem.size() - std::string(tag).size());
      break;
    }
  }
  return absl::StrCat(stem, ".", ShortDtypeName(dtype), ".pt");
}

absl::Status RunConvert(const StateFlags& f) {
  absl::StatusOr<StateDtype> dtype = OutputDtype(f.dtype, "dtype");
  if (!dtype.ok()) return dtype.status();
  const std::string& path = f.files[0];
  absl::StatusOr<Loaded> in = Load(path);
  if (!in.ok()) return in.status();
  const std::string out =
      f.out.empty() ? DefaultConvertPath(path, *dtype) : f.out;
  absl::StatusOr<int64_t> file_before = FileSize(path);
  absl::StatusOr<int64_t> tensors_before =
      TensorBytes(in->state, in->info.dtype);
  absl::StatusOr<int64_t> tensors_after = TensorBytes(in->state, *dtype);
  if (!tensors_before.ok()) return tensors_before.status();
  if (!tensors_after.ok()) return tensors_after.status();
  absl::Status s = engine::SaveStateFile(out, in->state, *dtype);
  if (!s.ok()) {
    return absl::Status(s.code(), WriteError(out, s));
  }
  absl::StatusOr<int64_t> file_after = FileSize(out);
  if (f.json) {
    json j;
    j["out"] = out;
    j["dtype_before"] = ShortDtypeName(in->info.dtype);
    j["dtype_after"] = ShortDtypeName(*dtype);
    j["token_count"] = in->state.token_count();
    j["tensor_bytes_before"] = *tensors_before;
    j["tensor_bytes_after"] = *tensors_after;
    j["file_bytes_before"] = file_before.value_or(-1);
    j["file_bytes_after"] = file_after.value_or(-1);
    std::cout << JsonDump(j) << "\n";
    return absl::OkStatus();
  }
  std::printf("wrote %s: %lld tokens, %s -> %s\n", out.c_str(),
              static_cast<long long>(in->state.token_count()),
              ShortDtypeName(in->info.dtype).c_str(),
              ShortDtypeName(*dtype).c_str());
  std::printf("  tensors %lld -> %lld bytes\n  file    %lld -> %lld bytes\n",
              static_cast<long long>(*tensors_before),
              static_cast<long long>(*tensors_after),
              static_cast<long long>(file_before.value_or(-1)),
              static_cast<long long>(file_after.value_or(-1)));
  return absl::OkStatus();
}

// One state command: its name, FILE arguments and what runs it.
struct Subcommand {
  const char* name;
  size_t files;
  const char* file_names;
  const char* help;
  absl::Status (*run)(const StateFlags&);
};

const std::vector<Subcommand>& Subcommands() {
  static const std::vector<Subcommand>* const kSubs =
      new std::vector<Subcommand>{
          {"inspect", 1, "FILE", "statistics per component and layer, health",
           &RunInspect},
          {"blend", 2, "A B", "writes alpha*A + (1-alpha)*B", &RunBlend},
          {"decay", 1, "FILE", "writes the state with accumulators * factor",
           &RunDecay},
          {"distance", 2, "A B", "L2 distance per component and in total",
           &RunDistance},
          {"convert", 1, "FILE", "the state re-stored in another dtype",
           &RunConvert},
      };
  return *kSubs;
}

void AddJson(CLI::App* cmd, StateFlags* f) {
  cmd->add_flag("--json", f->json, "one JSON object");
}

void AddStateDtype(CLI::App* cmd, StateFlags* f) {
  cmd->add_option("--state-dtype", f->state_dtype,
                  "stored dtype of the output: fp32, fp16 or bf16")
      ->capture_default_str()
      ->type_name("D");
}

void AddOut(CLI::App* cmd, StateFlags* f, const char* help) {
  cmd->add_option("--out", f->out, help)->type_name("F");
}

}  // namespace

CLI::App* AddStateCommands(CLI::App& app, StateFlags* f) {
  CLI::App* state = app.add_subcommand(
      "state",
      "model-free commands over saved state files; outputs keep the input's "
      "model fingerprint and token count (blend: the alpha-weighted count)");
  for (const Subcommand& sub : Subcommands()) {
    CLI::App* cmd = state->add_subcommand(sub.name, sub.help);
    // Any number here; RunStateCommand checks the count with a message
    // that names the command's arguments.
    cmd->add_option("files", f->files, sub.file_names)
        ->type_name(sub.file_names);
    const std::string name = sub.name;
    if (name == "inspect" || name == "distance") AddJson(cmd, f);
    if (name == "blend") {
      cmd->add_option("--alpha", f->alpha, "weight of A")
          ->check(common::NumberIn(0, 1))
          ->required()
          ->type_name("X");
    }
    if (name == "decay") {
      cmd->add_option("--factor", f->factor, "scale of the accumulators")
          ->check(common::NumberAboveUpTo(0, 1))
          ->required()
          ->type_name("X");
    }
    if (name == "blend" || name == "decay") {
      AddOut(cmd, f, "output state file");
      cmd->get_option("--out")->required();
      AddStateDtype(cmd, f);
    }
    if (name == "convert") {
      cmd->add_option("--dtype", f->dtype, "fp32, fp16 or bf16")
          ->required()
          ->type_name("D");
      AddOut(cmd, f,
             "output file; none: FILE with a .fp16.pt / .bf16.pt / .fp32.pt "
             "suffix");
      AddJson(cmd, f);
    }
  }
  // No require_subcommand: CLI11 would then report a missing command before
  // an unknown one ("state frobnicate"); RunStateCommand reports it.
  return state;
}

absl::Status RunStateCommand(const CLI::App& state, const StateFlags& flags) {
  for (const Subcommand& sub : Subcommands()) {
    if (!state.got_subcommand(sub.name)) continue;
    if (flags.files.size() != sub.files) {
      return UsageError(absl::StrCat(
          "state ", sub.name, " takes ", sub.file_names, " (", sub.files,
          " file", sub.files == 1 ? "" : "s", "), got ", flags.files.size()));
    }
    return sub.run(flags);
  }
  return UsageError(
      "state: missing command (inspect, blend, decay, distance, convert)");
}

}  // namespace rwkv::tools
