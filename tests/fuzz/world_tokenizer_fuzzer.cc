// libFuzzer target: an RWKV World vocabulary loaded by WorldTokenizer within
// the parse budget; a vocabulary that loads must round-trip any bytes
// (every single byte is a token of it).
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/world_tokenizer.h"
#include "tests/fuzz/fuzz_budget_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<rwkv::engine::WorldTokenizer>> tok;
  {
    rwkv::fuzz::BudgetCheck check(size);
    tok = rwkv::engine::WorldTokenizer::FromString(text, "fuzz.txt");
  }
  if (!tok.ok()) return 0;
  const std::string_view sample = text.substr(0, 300);
  absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(sample);
  if (!ids.ok()) std::abort();
  absl::StatusOr<std::string> back = (*tok)->Decode(*ids);
  if (!back.ok() || *back != sample) std::abort();
  return 0;
}
