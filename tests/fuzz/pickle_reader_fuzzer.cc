// libFuzzer target: the pickle machine on arbitrary bytes, within the parse
// budget; a parsed graph is walked (shared and cyclic references included,
// with a visit limit) to read every object.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/pickle_reader.h"
#include "tests/fuzz/fuzz_budget_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  absl::StatusOr<std::unique_ptr<rwkv::engine::PickleReader>> pickle;
  {
    rwkv::fuzz::BudgetCheck check(size);  // the parse, not the walk below
    pickle = rwkv::engine::PickleReader::Parse({data, size}, "fuzz.pkl");
  }
  if (!pickle.ok()) return 0;
  std::vector<const rwkv::engine::PickleValue*> todo = {&(*pickle)->root()};
  size_t visits = 0;
  uint64_t sink = 0;
  while (!todo.empty() && ++visits < 100000) {
    const rwkv::engine::PickleValue* v = todo.back();
    todo.pop_back();
    sink +=
        v->str.size() + v->dims.size() + static_cast<uint64_t>(v->int_value);
    for (const rwkv::engine::PickleValue* item : v->items) todo.push_back(item);
  }
  volatile uint64_t keep = sink;
  (void)keep;
  return 0;
}
