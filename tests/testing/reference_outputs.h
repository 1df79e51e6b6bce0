// The reference implementation's outputs for the shared tiny models
// (../shared/models/refs-public.json: logits, greedy continuations, states),
// and helpers to compare against its JSON arrays. Refs() is empty (null)
// without the shared folder; tests that use it skip first.
#ifndef RWKV_TESTS_TESTING_REFERENCE_OUTPUTS_H_
#define RWKV_TESTS_TESTING_REFERENCE_OUTPUTS_H_

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "absl/types/span.h"
#include "tests/testing/shared_data.h"

namespace rwkv::testing {

inline const nlohmann::json& Refs() {
  static const nlohmann::json* refs = [] {
    const std::string path = SharedFile("models/refs-public.json");
    return new nlohmann::json(
        path.empty() ? nlohmann::json()
                     : nlohmann::json::parse(ReadFileOrEmpty(path)));
  }();
  return *refs;
}

// Max |a[i] - b[i]| against a JSON array of numbers; sizes must match.
inline float MaxAbsDiffJson(absl::Span<const float> a,
                            const nlohmann::json& b) {
  EXPECT_EQ(a.size(), b.size());
  float m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    m = std::max(m, std::abs(a[i] - b[i].get<float>()));
  }
  return m;
}

inline std::vector<int32_t> Ints(const nlohmann::json& j) {
  std::vector<int32_t> v;
  for (const auto& x : j) v.push_back(x.get<int32_t>());
  return v;
}

}  // namespace rwkv::testing

#endif  // RWKV_TESTS_TESTING_REFERENCE_OUTPUTS_H_
