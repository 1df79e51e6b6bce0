// The parsers of untrusted bytes against hostile files (issue 15): each
// bomb of the report, rebuilt by tests/testing/hostile_files, is refused (or
// read) while the parser's peak allocation stays within its ParseBudget,
// 4 x the input + 4 MiB, measured by the counting operator new of
// tests/testing/allocation_counter; nothing is left allocated afterwards;
// real files parse within the same budget; and an allocation failure at any
// point of a parse becomes ResourceExhausted, never an exception or a leak.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "engine/bpe_tokenizer.h"
#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/parse_budget.h"
#include "engine/pickle_reader.h"
#include "engine/world_tokenizer.h"
#include "engine/zip_reader.h"
#include "tests/testing/allocation_counter.h"
#include "tests/testing/hostile_files.h"
#include "tests/testing/shared_data.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::ScopedAllocationMeter;
using ::testing::HasSubstr;

// What a parse may allocate that its budget does not track: error messages,
// the Status and StatusOr around the result, the MappedFile holding the
// input.
constexpr int64_t kUntrackedBytes = 64 << 10;

int64_t Limit(size_t input_bytes) {
  return static_cast<int64_t>(ParseBudget::ForInput(input_bytes).limit()) +
         kUntrackedBytes;
}

absl::Span<const uint8_t> Bytes(const std::string& s) {
  return absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(s.data()),
                             s.size());
}

// Parses `file` as a checkpoint (as ParseState does) and returns the status;
// *peak gets the most bytes held meanwhile, *kept what is still held once
// the result is gone.
absl::Status ParseCheckpoint(std::string file, int64_t* peak, int64_t* kept) {
  ScopedAllocationMeter meter;
  absl::Status status;
  {
    absl::StatusOr<Checkpoint> ckpt =
        Checkpoint::FromBytes(std::move(file), "upload.pt");
    status = ckpt.status();
  }
  *peak = meter.peak();
  *kept = meter.live();
  return status;
}

void ExpectRefusedWithinBudget(const std::string& name, std::string file,
                               uint64_t unbounded_bytes) {
  const size_t size = file.size();
  int64_t peak = 0, kept = 0;
  const absl::Status status = ParseCheckpoint(std::move(file), &peak, &kept);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << name;
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("needs more memory than is allowed"))
      << name;
  EXPECT_LE(peak, Limit(size)) << name;
  EXPECT_LE(kept, 0) << name;
  std::printf(
      "[ figures  ] %s: %zu-byte file, an unbounded parser builds %.3g "
      "bytes; refused at a peak of %lld bytes (budget %lld)\n",
      name.c_str(), size, static_cast<double>(unbounded_bytes),
      static_cast<long long>(peak),
      static_cast<long long>(Limit(size) - kUntrackedBytes));
}

TEST(HostileInputTest, NestedDictsSharingLongKeysTwoMegabytes) {
  const testing::NestedKeysSpec spec = testing::SharedKeys2MBSpec();
  std::string file = testing::NestedSharedKeysPth(spec);
  EXPECT_GT(file.size(), 1900000u);
  EXPECT_LT(file.size(), 2100000u);
  EXPECT_GT(testing::NestedKeysNameBytes(spec), uint64_t{17'000'000'000});
  ExpectRefusedWithinBudget("2 MB nested keys", std::move(file),
                            testing::NestedKeysNameBytes(spec));
}

TEST(HostileInputTest, NestedDictsSharingLongKeys132Kilobytes) {
  const testing::NestedKeysSpec spec = testing::SharedKeys132KBSpec();
  std::string file = testing::NestedSharedKeysPth(spec);
  EXPECT_GT(file.size(), 125000u);
  EXPECT_LT(file.size(), 140000u);
  EXPECT_GT(testing::NestedKeysNameBytes(spec), uint64_t{1'300'000'000});
  ExpectRefusedWithinBudget("132 KB nested keys", std::move(file),
                            testing::NestedKeysNameBytes(spec));
}

TEST(HostileInputTest, NestedKeysWithinTheBudgetAreRead) {
  // The same shape, small enough to fit: every name is built and kept.
  const testing::NestedKeysSpec spec{100, 3, 50, 0};
  int64_t peak = 0, kept = 0;
  std::string file = testing::NestedSharedKeysPth(spec);
  const size_t size = file.size();
  ScopedAllocationMeter meter;
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(std::move(file), "small.pt");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  peak = meter.peak();
  EXPECT_LE(peak, Limit(size));
  ASSERT_EQ(ckpt->metadata().size(), 50u);
  const std::string key(100, 'k');
  EXPECT_EQ(ckpt->metadata().at("49." + key + "." + key + "." + key), "1");
  (void)kept;
}

TEST(HostileInputTest, ManyPickleObjects) {
  // 2 bytes per object; each cost ~110 bytes under the old 16M-object cap.
  const size_t values = 2000000;
  ExpectRefusedWithinBudget("2M pickle objects",
                            testing::ValueCountBombPth(values),
                            uint64_t{values} * 110);
}

TEST(HostileInputTest, OrderedDictCopies) {
  // 48 OrderedDict calls on one list of 200,000 pairs: 2 x 8 bytes per pair
  // per call (154 MB) from a ~0.6 MB file.
  const size_t pairs = 200000, copies = 48;
  ExpectRefusedWithinBudget("OrderedDict copies",
                            testing::DictCopyBombPth(pairs, copies),
                            uint64_t{pairs} * copies * 16);
}

TEST(HostileInputTest, PickleReaderAloneKeepsItsBudget) {
  // The pickle of the copy bomb, straight into the pickle machine.
  const std::string pth = testing::DictCopyBombPth(200000, 48);
  absl::StatusOr<ZipReader> zip = ZipReader::Parse(Bytes(pth), "bomb.pth");
  ASSERT_TRUE(zip.ok()) << zip.status();
  const ZipReader::Entry* entry = zip->Find("archive/data.pkl");
  ASSERT_NE(entry, nullptr);
  absl::StatusOr<absl::Span<const uint8_t>> pkl = zip->Read(*entry, true);
  ASSERT_TRUE(pkl.ok()) << pkl.status();
  ScopedAllocationMeter meter;
  absl::Status status =
      PickleReader::Parse(*pkl, "bomb.pth: archive/data.pkl").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()),
              HasSubstr("an OrderedDict's copy needs more memory"));
  EXPECT_LE(meter.peak(), Limit(pkl->size()));
}

TEST(HostileInputTest, SafetensorsHeaderOfEmptyObjectsIsReadWithoutATree) {
  // Issue 15: a 60 MB safetensors upload reached 1.2 GB as a JSON tree. The
  // streaming reader keeps only the one tensor; what remains is the JSON
  // lexer's buffer, which holds a run of brackets whole (charged up front).
  // A tenth of the size under the sanitizers, whose lexing is ~10x slower.
  const size_t header =
      testing::kSanitizerBuild ? size_t{6} << 20 : size_t{60} << 20;
  std::string file = testing::SafetensorsHeaderBomb(header);
  const size_t size = file.size();
  ScopedAllocationMeter meter;
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(std::move(file), "bomb.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 1u);
  EXPECT_EQ(ckpt->tensors()[0].name, "t");
  EXPECT_LE(meter.peak(), Limit(size));
  std::printf(
      "[ figures  ] %zu-byte safetensors header of {}: peak %lld bytes (a "
      "JSON tree: ~%.3g)\n",
      header, static_cast<long long>(meter.peak()), header / 3 * 80.0);
}

TEST(HostileInputTest, SafetensorsMetadataBeyondTheBudgetIsRefused) {
  // Many tiny __metadata__ entries: ~12 bytes of file, ~150 bytes of map.
  std::string header = R"({"__metadata__":{)";
  for (int i = 0; i < 200000; ++i) {
    header += (i == 0 ? "\"" : ",\"") + std::to_string(i) + "\":\"\"";
  }
  header += "}}";
  std::string file(8, '\0');
  for (int i = 0; i < 8; ++i) {
    file[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  }
  file += header;
  ExpectRefusedWithinBudget("safetensors metadata", std::move(file),
                            uint64_t{200000} * 150);
}

TEST(HostileInputTest, WorldVocabularyWithAHugeIdIsRefused) {
  const std::string vocab = testing::WorldVocabWithId(4000000);
  ScopedAllocationMeter meter;
  absl::Status status = WorldTokenizer::FromString(vocab, "vocab.txt").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(
      std::string(status.message()),
      HasSubstr("the id table for ids up to 4000000 needs more memory"));
  EXPECT_LE(meter.peak(), Limit(vocab.size()));
}

TEST(HostileInputTest, TokenizerJsonWithAHugeIdIsRefused) {
  const std::string json = testing::BpeTokenizerJson(4000000, 0);
  ScopedAllocationMeter meter;
  absl::Status status = BpeTokenizer::FromJson(json, "tokenizer.json").status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(status.message()), HasSubstr("needs more memory"));
  EXPECT_LE(meter.peak(), Limit(json.size()));
}

TEST(HostileInputTest, TokenizerJsonPaddingIsSkippedWithoutATree) {
  // 1M empty objects under an unused key: ~80 MB as a JSON tree; skipped,
  // they cost only the lexer's run buffer.
  const std::string json = testing::BpeTokenizerJson(256, 1000000);
  ScopedAllocationMeter meter;
  absl::StatusOr<std::unique_ptr<BpeTokenizer>> tok =
      BpeTokenizer::FromJson(json, "tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ((*tok)->vocab_size(), 257);
  EXPECT_LE(meter.peak(), Limit(json.size()));
  EXPECT_LT(meter.peak(), 4 * static_cast<int64_t>(json.size()));
}

// --- The budget's own accounting -------------------------------------------

TEST(ParseBudgetTest, LimitAndMessage) {
  const ParseBudget b = ParseBudget::ForInput(1000);
  EXPECT_EQ(b.limit(), 4000u + (4u << 20));
  EXPECT_EQ(ParseBudget::ForInput(~uint64_t{0}).limit(), ~uint64_t{0});
  EXPECT_EQ(std::string(b.Exceeded("x.pt: the names").message()),
            "x.pt: the names needs more memory than is allowed for an input "
            "of 1000 bytes (4198304 bytes: 4 x its size + 4 MiB); refused (a "
            "hostile or corrupt file?)");
  ParseBudget small(100, 10);
  EXPECT_TRUE(small.TryCharge(60));
  EXPECT_FALSE(small.TryCharge(41));
  EXPECT_EQ(small.used(), 60u);
  small.Refund(60);
  EXPECT_TRUE(small.TryCharge(100));
  EXPECT_EQ(small.peak(), 100u);
}

// What the parsers charge for their containers covers what those containers
// really allocate, at every moment (the counting operator new measures it).
TEST(ParseBudgetTest, ChargesCoverRealAllocations) {
  ParseBudget budget(uint64_t{1} << 30, 0);
  ScopedAllocationMeter meter;
  {
    std::vector<int64_t> v;
    absl::flat_hash_map<uint64_t, uint32_t> table;
    absl::flat_hash_map<std::string, int32_t> names;
    for (int i = 0; i < 20000; ++i) {
      ASSERT_TRUE(budget.Reserve(&v, 1));
      v.push_back(i);
      ASSERT_TRUE(budget.ReserveTable(&table, 1));
      table[static_cast<uint64_t>(i) * 7919] = i;
      ASSERT_TRUE(budget.ReserveTable(&names, 1));
      std::string key = "a long enough key to live on the heap " +
                        std::to_string(i);
      ASSERT_TRUE(budget.TryCharge(ParseBudget::StringBytes(key.size())));
      names.emplace(std::move(key), i);
      ASSERT_LE(meter.live(), static_cast<int64_t>(budget.used()));
    }
    EXPECT_LE(meter.peak(), static_cast<int64_t>(budget.peak()));
    // Not wildly over either: within 2x of the truth.
    EXPECT_GT(2 * meter.peak(), static_cast<int64_t>(budget.peak()));
  }
}

// --- Real files parse within the same budget ---------------------------

TEST(HostileInputTest, RealFilesFitTheirBudget) {
  const std::vector<std::string> files = {
      "models/tiny-rwkv4-660K.pth", "models/tiny-rwkv7-834K.pth",
      "models/tiny-rwkv7-834K.safetensors", "models/state-hello-tiny-rwkv7.pt",
      "models/state-hello-synthetic-rwkv4.pt"};
  int read = 0;
  for (const std::string& name : files) {
    const std::string path = testing::SharedFile(name);
    if (path.empty()) continue;
    std::string bytes = testing::ReadFileOrEmpty(path);
    const size_t size = bytes.size();
    ScopedAllocationMeter meter;
    absl::StatusOr<Checkpoint> ckpt =
        Checkpoint::FromBytes(std::move(bytes), name);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    EXPECT_LE(meter.peak(), Limit(size)) << name;
    ++read;
  }
  for (const std::string name : {"tokenizers/20B_tokenizer.json",
                                 "tokenizers/rwkv_vocab_v20230424.txt"}) {
    const std::string path = testing::SharedFile(name);
    if (path.empty()) continue;
    const std::string text = testing::ReadFileOrEmpty(path);
    ScopedAllocationMeter meter;
    if (name.find(".json") != std::string::npos) {
      ASSERT_TRUE(BpeTokenizer::FromJson(text, name).ok());
    } else {
      ASSERT_TRUE(WorldTokenizer::FromString(text, name).ok());
    }
    EXPECT_LE(meter.peak(), Limit(text.size())) << name;
    std::printf("[ figures  ] %s: %zu bytes, peak %lld bytes (%.2f x)\n",
                name.c_str(), text.size(), static_cast<long long>(meter.peak()),
                static_cast<double>(meter.peak()) / text.size());
    ++read;
  }
  if (read == 0) GTEST_SKIP() << "../shared (real checkpoints) not present";
}

TEST(HostileInputTest, ThousandTinyTensorsFitTheBudget) {
  // A legitimate file at the edge of the budget: 1001 one-float tensors.
  std::vector<float> values(1001);
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < 1001; ++i) {
    values[i] = static_cast<float>(i);
    tensors.push_back({"t" + std::to_string(i),
                       DType::kFloat32,
                       {1},
                       &values[i],
                       sizeof(float)});
  }
  absl::StatusOr<std::string> pth = SerializePth(tensors);
  ASSERT_TRUE(pth.ok()) << pth.status();
  const size_t size = pth->size();
  ScopedAllocationMeter meter;
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(*std::move(pth), "many.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->tensors().size(), 1001u);
  EXPECT_LE(meter.peak(), Limit(size));
}

// --- Allocation failures ---------------------------------------------------

// Runs parse(copy of input) with allocations failing past `limit` extra
// bytes, for limits from 0 up to the first that succeeds: every failure must
// be ResourceExhausted ("out of memory", naming `source` unless even that
// message could not be allocated) and free all it built.
template <typename Parse>
void ExpectAllocationFailuresAreStatuses(const std::string& source,
                                         const std::string& input,
                                         Parse parse) {
  ASSERT_TRUE(parse(input).ok()) << source;  // and its statics exist
  int failures = 0;
  bool succeeded = false;
  for (int64_t limit = 0; limit < (int64_t{64} << 20) && !succeeded;
       limit = limit * 5 / 4 + 64) {
    absl::Status status;
    int64_t kept;
    std::string copy = input;
    {
      ScopedAllocationMeter meter(limit);
      status = parse(std::move(copy));
      kept = meter.live();
    }
    if (status.ok()) {
      succeeded = true;
      continue;
    }
    ++failures;
    EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted)
        << source << " at " << limit << ": " << status;
    EXPECT_THAT(std::string(status.message()), HasSubstr("out of memory"));
    if (limit >= 4096) {
      EXPECT_THAT(std::string(status.message()), HasSubstr(source));
    }
    EXPECT_LE(kept, 0) << source << " at " << limit;
  }
  EXPECT_TRUE(succeeded) << source;
  EXPECT_GT(failures, 3) << source;
}

TEST(HostileInputTest, AllocationFailuresBecomeResourceExhausted) {
  std::vector<float> w(64, 0.5f);
  std::vector<TensorToWrite> tensors = {
      {"blocks.0.att.key.weight", DType::kFloat32, {8, 8}, w.data(), 256},
      {"emb.weight", DType::kFloat32, {4, 16}, w.data(), 256}};
  const std::string pth =
      *SerializePth(tensors, {{"format", std::string("pt")}});
  const std::string st =
      *SerializeSafetensors(tensors, {{"format", std::string("pt")}});
  ExpectAllocationFailuresAreStatuses("model.pth", pth, [](std::string b) {
    return Checkpoint::FromBytes(std::move(b), "model.pth").status();
  });
  ExpectAllocationFailuresAreStatuses(
      "model.safetensors", st, [](std::string b) {
        return Checkpoint::FromBytes(std::move(b), "model.safetensors")
            .status();
      });
  std::string vocab;
  for (int b = 0; b < 256; ++b) {
    char line[32];
    std::snprintf(line, sizeof(line), "%d b'\\x%02x' 1\n", b + 1, b);
    vocab += line;
  }
  vocab += "300 'hello' 5\n";
  ExpectAllocationFailuresAreStatuses("vocab.txt", vocab, [](std::string b) {
    return WorldTokenizer::FromString(b, "vocab.txt").status();
  });
  ExpectAllocationFailuresAreStatuses(
      "tokenizer.json", testing::BpeTokenizerJson(300, 3), [](std::string b) {
        return BpeTokenizer::FromJson(b, "tokenizer.json").status();
      });
}

}  // namespace
}  // namespace rwkv::engine
