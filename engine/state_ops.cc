#include "engine/state_ops.h"

#include <ATen/ATen.h>
#include <ATen/core/grad_mode.h>

#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/internal/state_impl.h"
#include "engine/internal/torch_status.h"

namespace rwkv::engine {
namespace {

using internal::StateAccess;
using internal::StateImpl;

constexpr double kFreshPp = -1e29;  // at or below: a fresh channel

int Index(const StateImpl& s, const char* name) {
  for (size_t i = 0; i < s.names.size(); ++i) {
    if (s.names[i] == name) return static_cast<int>(i);
  }
  return -1;
}

absl::Status CheckSingle(const State& s, const char* what) {
  const StateImpl* impl = StateAccess::Get(s);
  if (impl == nullptr)
    return absl::InvalidArgumentError(absl::StrCat(what, ": empty state"));
  return absl::OkStatus();
}

absl::Status CheckCompatible(const StateImpl& a, const StateImpl& b) {
  if (a.arch != b.arch || a.names != b.names) {
    return absl::InvalidArgumentError("states have different architectures");
  }
  if (!a.model_fingerprint.empty() && !b.model_fingerprint.empty() &&
      a.model_fingerprint != b.model_fingerprint) {
    return absl::InvalidArgumentError(
        absl::StrCat("states belong to different models (", a.model_fingerprint,
                     " vs ", b.model_fingerprint, ")"));
  }
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    if (!a.tensors[i].sizes().equals(b.tensors[i].sizes())) {
      return absl::InvalidArgumentError(
          absl::StrCat("states have different shapes for '", a.names[i], "'"));
    }
  }
  return absl::OkStatus();
}

std::unique_ptr<StateImpl> EmptyLike(const StateImpl& s) {
  auto out = std::make_unique<StateImpl>();
  out->arch = s.arch;
  out->names = s.names;
  out->token_count = s.token_count;
  out->model_fingerprint = s.model_fingerprint;
  return out;
}

}  // namespace

State ForkState(const State& state) { return state.Clone(); }

absl::StatusOr<State> BlendStates(const State& a, const State& b,
                                  double alpha) {
  if (!(alpha >= 0.0 && alpha <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("blend alpha must be in [0, 1], got ", alpha));
  }
  if (absl::Status s = CheckSingle(a, "blend"); !s.ok()) return s;
  if (absl::Status s = CheckSingle(b, "blend"); !s.ok()) return s;
  const StateImpl& A = *StateAccess::Get(a);
  const StateImpl& B = *StateAccess::Get(b);
  if (absl::Status s = CheckCompatible(A, B); !s.ok()) return s;
  return internal::CatchTorch("blend", [&]() -> absl::StatusOr<State> {
    at::NoGradGuard no_grad;
    auto out = EmptyLike(A);
    out->token_count =
        std::llround(alpha * static_cast<double>(A.token_count) +
                     (1 - alpha) * static_cast<double>(B.token_count));
    out->tensors.resize(A.tensors.size());
    const int iaa = Index(A, "att_aa"), iab = Index(A, "att_ab"),
              ipp = Index(A, "att_pp");
    for (size_t i = 0; i < A.tensors.size(); ++i) {
      if (static_cast<int>(i) == iaa || static_cast<int>(i) == iab ||
          static_cast<int>(i) == ipp) {
        continue;
      }
      out->tensors[i] = alpha * A.tensors[i] + (1 - alpha) * B.tensors[i];
    }
    if (ipp >= 0) {
      // Term i = w_i * x_i * exp(pp_i) = x_i * exp(pp_i + log w_i): take the
      // common exponent over the terms that have weight, so a zero-weight
      // side can never push the other one into underflow.
      const at::Tensor& ppa = A.tensors[ipp];
      const at::Tensor& ppb = B.tensors[ipp];
      at::Tensor la =
          alpha > 0 ? ppa + std::log(alpha) : at::full_like(ppa, -INFINITY);
      at::Tensor lb =
          alpha < 1 ? ppb + std::log1p(-alpha) : at::full_like(ppb, -INFINITY);
      at::Tensor p = at::maximum(la, lb);
      at::Tensor ea = at::exp(la - p), eb = at::exp(lb - p);
      out->tensors[iaa] = A.tensors[iaa] * ea + B.tensors[iaa] * eb;
      out->tensors[iab] = A.tensors[iab] * ea + B.tensors[iab] * eb;
      // Fresh channels on both sides stay fresh.
      out->tensors[ipp] = at::where(p <= kFreshPp, at::full_like(p, -1e30), p);
    }
    return StateAccess::Make(std::move(out));
  });
}

absl::StatusOr<State> DecayState(const State& state, double factor) {
  if (!(factor > 0.0 && factor <= 1.0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("decay factor must be in (0, 1], got ", factor));
  }
  if (absl::Status s = CheckSingle(state, "decay"); !s.ok()) return s;
  const StateImpl& S = *StateAccess::Get(state);
  return internal::CatchTorch("decay", [&]() -> absl::StatusOr<State> {
    at::NoGradGuard no_grad;
    auto out = EmptyLike(S);
    for (const at::Tensor& t : S.tensors) out->tensors.push_back(t.clone());
    const int ipp = Index(S, "att_pp"), ikv = Index(S, "att_kv");
    if (ipp >= 0) {
      at::Tensor& pp = out->tensors[ipp];
      pp = at::where(pp <= kFreshPp, pp, pp + std::log(factor));
    }
    if (ikv >= 0) out->tensors[ikv].mul_(factor);
    return StateAccess::Make(std::move(out));
  });
}

absl::StatusOr<StateDistance> DistanceBetween(const State& a, const State& b) {
  if (absl::Status s = CheckSingle(a, "distance"); !s.ok()) return s;
  if (absl::Status s = CheckSingle(b, "distance"); !s.ok()) return s;
  const StateImpl& A = *StateAccess::Get(a);
  const StateImpl& B = *StateAccess::Get(b);
  if (absl::Status s = CheckCompatible(A, B); !s.ok()) return s;
  return internal::CatchTorch(
      "distance", [&]() -> absl::StatusOr<StateDistance> {
        at::NoGradGuard no_grad;
        StateDistance d;
        double total_sq = 0;
        const int ipp = Index(A, "att_pp");
        for (size_t i = 0; i < A.tensors.size(); ++i) {
          const std::string& name = A.names[i];
          if (static_cast<int>(i) == ipp) continue;
          at::Tensor x = A.tensors[i].to(at::kDouble),
                     y = B.tensors[i].to(at::kDouble);
          double dist;
          std::string label = name;
          if (ipp >= 0 && (name == "att_aa" || name == "att_ab")) {
            // |xA e^ppA - xB e^ppB| = e^m |xA e^(ppA-m) - xB e^(ppB-m)|, then
            // the sum of squares is scaled by the largest m so nothing
            // overflows before it has to.
            at::Tensor pa = A.tensors[ipp].to(at::kDouble),
                       pb = B.tensors[ipp].to(at::kDouble);
            at::Tensor m = at::maximum(pa, pb);
            at::Tensor r = x * at::exp(pa - m) - y * at::exp(pb - m);
            const double M = m.max().item<double>();
            const double s = (at::exp(m - M) * r).pow(2).sum().item<double>();
            dist = std::exp(M) * std::sqrt(s);
            if (M <= kFreshPp) dist = 0;
            label = name == "att_aa" ? "att_num" : "att_den";
          } else {
            dist = (x - y).pow(2).sum().sqrt().item<double>();
          }
          d.components.emplace_back(label, dist);
          total_sq += dist * dist;
        }
        d.total = std::sqrt(total_sq);
        return d;
      });
}

}  // namespace rwkv::engine
