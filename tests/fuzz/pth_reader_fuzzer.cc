// libFuzzer target: a .pth checkpoint whose data.pkl is the input, wrapped
// in a valid torch.save zip with a few storage records (so mutations reach
// the pickle machine, the flattener and the tensor views rather than the
// zip framing, which zip_reader_fuzzer covers), read as Checkpoint does,
// within the parse budget; every tensor's bytes are read.
#include <cstddef>
#include <cstdint>
#include <string>

#include "engine/checkpoint.h"
#include "engine/zip_writer.h"
#include "tests/fuzz/fuzz_budget_check.h"

namespace {

std::string Archive(const uint8_t* data, size_t size) {
  std::string out;
  rwkv::engine::ZipWriter zip(&out);
  (void)zip.Add("archive/data.pkl",
                std::string_view(reinterpret_cast<const char*>(data), size));
  const std::string floats(64, '\x3f');
  (void)zip.Add("archive/data/0", floats);
  (void)zip.Add("archive/data/1", floats.substr(0, 12));
  (void)zip.Add("archive/version", "3\n");
  (void)zip.Finish();
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string file = Archive(data, size);
  rwkv::fuzz::BudgetCheck check(file.size());
  absl::StatusOr<rwkv::engine::Checkpoint> ckpt =
      rwkv::engine::Checkpoint::FromBytes(std::move(file), "fuzz.pth");
  if (!ckpt.ok()) return 0;
  uint8_t sink = 0;
  for (const rwkv::engine::CheckpointTensor& t : ckpt->tensors()) {
    for (size_t i = 0; i < t.nbytes; ++i) sink ^= t.data[i];
  }
  volatile uint8_t keep = sink;
  (void)keep;
  return 0;
}
