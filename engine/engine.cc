#include "engine/engine.h"

#include <algorithm>
#include <cstddef>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace rwkv::engine {

absl::Status Engine::CheckSegments(absl::Span<const int32_t> tokens,
                                   absl::Span<const int32_t> lengths,
                                   absl::Span<State* const> states) const {
  if (lengths.size() != states.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ForwardSegments: ", lengths.size(), " lengths for ",
                     states.size(), " states"));
  }
  if (lengths.empty()) {
    return absl::InvalidArgumentError("ForwardSegments: no segments");
  }
  size_t total = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    if (lengths[i] < 1) {
      return absl::InvalidArgumentError(
          absl::StrCat("ForwardSegments: segment ", i, " has length ",
                       lengths[i], " (each needs at least one token)"));
    }
    total += static_cast<size_t>(lengths[i]);
  }
  if (total != tokens.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("ForwardSegments: the lengths add up to ", total,
                     " tokens, ", tokens.size(), " were given"));
  }
  const int vocab = config().vocab_size;
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] < 0 || tokens[i] >= vocab) {
      return absl::InvalidArgumentError(
          absl::StrCat("token id ", tokens[i], " at position ", i,
                       " is outside the vocabulary [0, ", vocab, ")"));
    }
  }
  for (size_t i = 0; i < states.size(); ++i) {
    if (states[i] == nullptr) {
      return absl::InvalidArgumentError(
          absl::StrCat("ForwardSegments: segment ", i, " has a null state"));
    }
    for (size_t j = 0; j < i; ++j) {
      if (states[j] == states[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "ForwardSegments: segments ", j, " and ", i, " share one state"));
      }
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Logits> Engine::ForwardSegments(
    absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
    absl::Span<State* const> states) {
  if (absl::Status s = CheckSegments(tokens, lengths, states); !s.ok()) {
    return s;
  }
  return ForwardSegmentsSeparately(tokens, lengths, states);
}

absl::StatusOr<Logits> Engine::ForwardSegmentsSeparately(
    absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
    absl::Span<State* const> states) {
  const size_t n = lengths.size();
  const int vocab = config().vocab_size;
  std::vector<float> out(n * static_cast<size_t>(vocab));
  auto fail = [&](const absl::Status& s) -> absl::Status {
    for (State* st : states) *st = State();
    return absl::Status(s.code(), absl::StrCat(s.message(),
                                               " (the call's states were "
                                               "cleared)"));
  };
  // The one-token segments in one batched step.
  std::vector<size_t> singles;
  std::vector<int32_t> single_tokens;
  std::vector<State*> single_states;
  std::vector<size_t> offset(n);
  size_t pos = 0;
  for (size_t i = 0; i < n; ++i) {
    offset[i] = pos;
    pos += static_cast<size_t>(lengths[i]);
    if (lengths[i] == 1) {
      singles.push_back(i);
      single_tokens.push_back(tokens[offset[i]]);
      single_states.push_back(states[i]);
    }
  }
  if (!singles.empty()) {
    absl::StatusOr<Logits> batch =
        ForwardBatch(single_tokens, absl::MakeConstSpan(single_states));
    if (!batch.ok()) return fail(batch.status());
    for (size_t r = 0; r < singles.size(); ++r) {
      absl::Span<const float> row = batch->Row(static_cast<int>(r));
      std::copy(row.begin(), row.end(), out.begin() + singles[r] * vocab);
    }
  }
  for (size_t i = 0; i < n; ++i) {
    if (lengths[i] == 1) continue;
    absl::StatusOr<Logits> one = Forward(
        tokens.subspan(offset[i], static_cast<size_t>(lengths[i])), *states[i]);
    if (!one.ok()) {
      if (!IsNonFiniteLogits(one.status())) return fail(one.status());
      // Forward left the state as it was; the row says it failed.
      std::fill_n(out.begin() + i * vocab, vocab,
                  std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    absl::Span<const float> row = one->Row(0);
    std::copy(row.begin(), row.end(), out.begin() + i * vocab);
  }
  return Logits(static_cast<int>(n), vocab, std::move(out));
}

}  // namespace rwkv::engine
