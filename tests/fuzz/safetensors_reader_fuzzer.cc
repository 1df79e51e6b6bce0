// libFuzzer target: a .safetensors file (header length, JSON header, data)
// read as Checkpoint does, within the parse budget; every tensor's bytes are
// read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/checkpoint.h"
#include "tests/fuzz/fuzz_budget_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file(reinterpret_cast<const char*>(data), size);
  rwkv::fuzz::BudgetCheck check(size);
  absl::StatusOr<rwkv::engine::Checkpoint> ckpt =
      rwkv::engine::Checkpoint::FromBytes(std::move(file), "fuzz.safetensors");
  if (!ckpt.ok()) return 0;
  uint8_t sink = 0;
  for (const rwkv::engine::CheckpointTensor& t : ckpt->tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
  }
  volatile uint8_t keep = sink;
  (void)keep;
  return 0;
}
