// libFuzzer target: ZipReader::Parse on arbitrary bytes, then every entry's
// Read (CRC checked), within the parse budget.
#include <cstddef>
#include <cstdint>

#include "engine/zip_reader.h"
#include "tests/fuzz/fuzz_budget_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  rwkv::fuzz::BudgetCheck check(size);
  absl::StatusOr<rwkv::engine::ZipReader> zip =
      rwkv::engine::ZipReader::Parse({data, size}, "fuzz.zip");
  if (!zip.ok()) return 0;
  for (const rwkv::engine::ZipReader::Entry& e : zip->entries()) {
    absl::StatusOr<absl::Span<const uint8_t>> bytes =
        zip->Read(e, /*verify_crc=*/true);
    if (bytes.ok() && !bytes->empty()) {
      volatile uint8_t sink = (*bytes)[0] ^ (*bytes)[bytes->size() - 1];
      (void)sink;
    }
  }
  return 0;
}
