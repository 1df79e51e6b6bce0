#include "engine/state_inspect.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "engine/internal/state_impl.h"
#include "engine/internal/torch_status.h"

namespace rwkv::engine {
namespace {

using internal::StateAccess;
using internal::StateImpl;

void AddProblem(StateReport& r, std::string p) {
  r.healthy = false;
  if (r.problems.size() < 20) r.problems.push_back(std::move(p));
}

}  // namespace

absl::StatusOr<StateReport> InspectState(const State& state) {
  const StateImpl* impl = StateAccess::Get(state);
  if (impl == nullptr)
    return absl::InvalidArgumentError("inspect: empty state");
  return internal::CatchTorch("inspect", [&]() -> absl::StatusOr<StateReport> {
    at::NoGradGuard no_grad;
    StateReport r;
    r.arch = impl->arch;
    r.model_fingerprint = impl->model_fingerprint;
    r.token_count = impl->token_count;
    r.bytes = state.SizeBytes();
    int ipp = -1, iab = -1, iaa = -1;
    for (size_t i = 0; i < impl->names.size(); ++i) {
      if (impl->names[i] == "att_pp") ipp = static_cast<int>(i);
      if (impl->names[i] == "att_ab") iab = static_cast<int>(i);
      if (impl->names[i] == "att_aa") iaa = static_cast<int>(i);
    }
    at::Tensor pp =
        ipp >= 0 ? impl->tensors[ipp].to(at::kCPU, at::kDouble) : at::Tensor();
    for (size_t i = 0; i < impl->tensors.size(); ++i) {
      const std::string& name = impl->names[i];
      at::Tensor t = impl->tensors[i].to(at::kCPU, at::kDouble);
      ComponentReport c;
      c.name = name;
      c.shape.assign(t.sizes().begin(), t.sizes().end());
      at::Tensor a = t.abs();
      c.mean_abs = a.mean().item<double>();
      c.max_abs = a.max().item<double>();
      const bool accumulator =
          ipp >= 0 && (name == "att_aa" || name == "att_ab");
      const int64_t L = t.size(0);
      for (int64_t l = 0; l < L; ++l) {
        at::Tensor al = a.select(0, l);
        LayerStats s;
        s.mean_abs = al.mean().item<double>();
        s.max_abs = al.max().item<double>();
        if (accumulator) {
          at::Tensor pl = pp.select(0, l);
          at::Tensor mask = (al > 0) & (pl > -1e29);
          if (mask.any().item<bool>()) {
            at::Tensor lg = at::log10(al.masked_select(mask)) +
                            pl.masked_select(mask) / std::log(10.0);
            s.max_log10_true = lg.max().item<double>();
          } else {
            s.max_log10_true = -std::numeric_limits<double>::infinity();
          }
        } else {
          s.max_log10_true = std::numeric_limits<double>::quiet_NaN();
        }
        if (name == "att_kv" && t.dim() == 4) {
          at::Tensor norms = t.select(0, l).flatten(1).norm(2, {1});
          for (int64_t h = 0; h < norms.size(0); ++h) {
            s.head_norms.push_back(norms[h].item<double>());
          }
        }
        c.layers.push_back(s);
      }
      if (!at::isfinite(t).all().item<bool>()) {
        r.finite = false;
        AddProblem(r, absl::StrCat(name, " holds NaN or infinite values"));
      } else if (name == "att_pp") {
        // Exponents below -kHealthMaxExponent weigh nothing (exp underflows
        // to 0), like a fresh state's -1e30 or its fp16 form -65504.
        if (t.max().item<double>() > kHealthMaxExponent) {
          AddProblem(
              r, absl::StrCat("att_pp exponent above +", kHealthMaxExponent));
        }
      } else if (name == "att_kv") {
        if (c.max_abs > kHealthMaxKv) {
          AddProblem(r, absl::StrCat("att_kv max |x| = ", c.max_abs, " > ",
                                     kHealthMaxKv));
        }
      } else if (name == "att_x_prev" || name == "ffn_x_prev") {
        if (c.max_abs > kHealthMaxActivation) {
          AddProblem(r, absl::StrCat(name, " max |x| = ", c.max_abs, " > ",
                                     kHealthMaxActivation));
        }
      }
      r.components.push_back(std::move(c));
    }
    if (iab >= 0 && iaa >= 0 && r.finite) {
      at::Tensor ab = impl->tensors[iab].to(at::kCPU, at::kDouble);
      at::Tensor aa = impl->tensors[iaa].to(at::kCPU, at::kDouble);
      if ((ab < 0).any().item<bool>())
        AddProblem(r, "att_ab has negative values");
      if ((aa.abs() > kHealthMaxMeanRatio * ab + 1e-30).any().item<bool>()) {
        AddProblem(r, absl::StrCat("|att_aa| exceeds ", kHealthMaxMeanRatio,
                                   " x att_ab (WKV mean out of range)"));
      }
    }
    return r;
  });
}

absl::Status CheckStateHealth(const State& state) {
  absl::StatusOr<StateReport> report = InspectState(state);
  if (!report.ok()) return report.status();
  if (report->healthy) return absl::OkStatus();
  constexpr size_t kShown = 3;
  std::vector<std::string> shown(
      report->problems.begin(),
      report->problems.begin() + std::min(kShown, report->problems.size()));
  return absl::InvalidArgumentError(
      absl::StrCat("state is unhealthy: ", absl::StrJoin(shown, "; "),
                   report->problems.size() > kShown ? "; ..." : "",
                   " (bounds: README \"State health\")"));
}

std::string FormatStateReport(const StateReport& r) {
  std::string out = absl::StrFormat(
      "architecture %s, %d tokens, %d bytes, model %s\nhealth: %s\n",
      std::string(ArchitectureName(r.arch)), r.token_count, r.bytes,
      r.model_fingerprint.empty() ? "(unknown)" : r.model_fingerprint,
      r.healthy ? "healthy"
                : absl::StrCat("UNHEALTHY: ", absl::StrJoin(r.problems, "; ")));
  for (const ComponentReport& c : r.components) {
    absl::StrAppendFormat(&out, "%-11s [%s]  mean|x| %.4g  max|x| %.4g\n",
                          c.name, absl::StrJoin(c.shape, ", "), c.mean_abs,
                          c.max_abs);
    for (size_t l = 0; l < c.layers.size(); ++l) {
      const LayerStats& s = c.layers[l];
      absl::StrAppendFormat(&out, "  layer %3d  mean|x| %-10.4g max|x| %-10.4g",
                            l, s.mean_abs, s.max_abs);
      if (!std::isnan(s.max_log10_true)) {
        absl::StrAppendFormat(&out, " max log10|true| %.3g", s.max_log10_true);
      }
      if (!s.head_norms.empty()) {
        out += " head |S|";
        for (double n : s.head_norms) absl::StrAppendFormat(&out, " %.4g", n);
      }
      out += "\n";
    }
  }
  return out;
}

}  // namespace rwkv::engine
