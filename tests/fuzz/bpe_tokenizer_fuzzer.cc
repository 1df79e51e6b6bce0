// libFuzzer target: a tokenizer.json loaded by BpeTokenizer within the
// parse budget; a tokenizer that loads must encode text (the input's own
// valid UTF-8 prefix and a fixed sample) and decode it back.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/bpe_tokenizer.h"
#include "engine/utf8.h"
#include "tests/fuzz/fuzz_budget_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view json(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<std::unique_ptr<rwkv::engine::BpeTokenizer>> tok;
  {
    rwkv::fuzz::BudgetCheck check(size);
    tok = rwkv::engine::BpeTokenizer::FromJson(json, "fuzz.json");
  }
  if (!tok.ok()) return 0;
  for (std::string_view text :
       {json.substr(0,
                    rwkv::engine::ValidUtf8PrefixLength(json.substr(0, 256))),
        std::string_view(
            "Hello, world! \xC3\xA9t\xC3\xA9 <|endoftext|> 123")}) {
    absl::StatusOr<std::vector<int32_t>> ids = (*tok)->Encode(text);
    if (!ids.ok()) std::abort();
    if (!(*tok)->Decode(*ids).ok()) std::abort();
  }
  return 0;
}
