// Tests for rwkv_checkpoint: reading .pth (torch.save zip + pickle) and
// .safetensors files without LibTorch, the writers, and hostile input.
#include "engine/checkpoint.h"

#include <unistd.h>

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "engine/checkpoint_writer.h"
#include "engine/pickle_writer.h"
#include "engine/zip_reader.h"
#include "engine/zip_writer.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/testing/shared_data.h"

namespace rwkv::engine {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;
using namespace std::string_literals;

// ---------------------------------------------------------------------------
// Helpers

std::string FloatBytes(const std::vector<float>& v) {
  return std::string(reinterpret_cast<const char*>(v.data()),
                     v.size() * sizeof(float));
}

std::vector<float> Floats(const CheckpointTensor& t) {
  std::vector<float> v(t.nbytes / sizeof(float));
  std::memcpy(v.data(), t.data, v.size() * sizeof(float));
  return v;
}

std::string Bytes(const CheckpointTensor& t) {
  return std::string(reinterpret_cast<const char*>(t.data), t.nbytes);
}

std::string HexDecode(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

// A zip of (name, bytes) records written like torch.save's.
std::string MakeZip(
    const std::vector<std::pair<std::string, std::string>>& records,
    ZipWriter::Options options = {}) {
  std::string out;
  ZipWriter zip(&out, options);
  for (const auto& [name, bytes] : records)
    EXPECT_TRUE(zip.Add(name, bytes).ok());
  EXPECT_TRUE(zip.Finish().ok());
  return out;
}

// A torch.save-style archive around a hand-made pickle and storages.
std::string MakePth(
    const std::string& pickle,
    const std::vector<std::pair<std::string, std::string>>& storages = {}) {
  std::vector<std::pair<std::string, std::string>> records = {
      {"archive/data.pkl", pickle}};
  for (const auto& [key, bytes] : storages) {
    records.emplace_back("archive/data/" + key, bytes);
  }
  records.emplace_back("archive/version", "3\n");
  return MakeZip(records);
}

TensorToWrite Tensor(const std::string& name, DType dtype,
                     std::vector<int64_t> shape, const std::string& bytes) {
  return TensorToWrite{name, dtype, std::move(shape), bytes.data(),
                       bytes.size()};
}

// A small .pth with two float tensors and a scalar entry.
std::string SmallPth() {
  static const std::string a =
      FloatBytes({1.5f, -2.25f, 3.0f, 0.5f, 8.0f, -1.0f});
  static const std::string b = FloatBytes({0.25f, 0.125f, 7.0f, 9.5f});
  const std::vector<TensorToWrite> tensors = {
      Tensor("a", DType::kFloat32, {2, 3}, a),
      Tensor("b", DType::kFloat32, {4}, b)};
  const std::vector<ScalarToWrite> scalars = {{"note", std::string("hi")}};
  absl::StatusOr<std::string> pth = SerializePth(tensors, scalars);
  EXPECT_TRUE(pth.ok()) << pth.status();
  return pth.ok() ? *pth : "";
}

std::string SmallSafetensors() {
  static const std::string a =
      FloatBytes({1.5f, -2.25f, 3.0f, 0.5f, 8.0f, -1.0f});
  static const std::string b = FloatBytes({0.25f, 0.125f, 7.0f, 9.5f});
  const std::vector<TensorToWrite> tensors = {
      Tensor("a", DType::kFloat32, {2, 3}, a),
      Tensor("b", DType::kFloat32, {4}, b)};
  absl::StatusOr<std::string> st =
      SerializeSafetensors(tensors, {{"arch", "4"}});
  EXPECT_TRUE(st.ok()) << st.status();
  return st.ok() ? *st : "";
}

uint64_t Le64At(const std::string& s, size_t pos) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t{static_cast<uint8_t>(s[pos + i])} << (8 * i);
  return v;
}
void SetLe(std::string* s, size_t pos, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) (*s)[pos + i] = static_cast<char>(v >> (8 * i));
}

// Offset of the central directory header of the entry `name` in a zip.
size_t CentralHeader(const std::string& zip, const std::string& name) {
  size_t pos = 0;
  while ((pos = zip.find(std::string("PK\x01\x02", 4), pos)) !=
         std::string::npos) {
    const size_t len = static_cast<uint8_t>(zip[pos + 28]) |
                       (static_cast<uint8_t>(zip[pos + 29]) << 8);
    if (zip.compare(pos + 46, len, name) == 0 && len == name.size()) return pos;
    ++pos;
  }
  ADD_FAILURE() << "no central header for " << name;
  return 0;
}

std::string TempPath(const std::string& leaf) {
  return (std::filesystem::temp_directory_path() /
          ("ckpt_test_" + std::to_string(::getpid()) + "_" + leaf))
      .string();
}

// ---------------------------------------------------------------------------

TEST(DTypeTest, NamesAndSizes) {
  const std::pair<DType, std::pair<const char*, size_t>> cases[] = {
      {DType::kFloat32, {"float32", 4}},   {DType::kFloat16, {"float16", 2}},
      {DType::kBFloat16, {"bfloat16", 2}}, {DType::kFloat64, {"float64", 8}},
      {DType::kInt64, {"int64", 8}},       {DType::kInt32, {"int32", 4}},
      {DType::kInt16, {"int16", 2}},       {DType::kInt8, {"int8", 1}},
      {DType::kUInt8, {"uint8", 1}},       {DType::kBool, {"bool", 1}}};
  for (const auto& [dtype, expected] : cases) {
    EXPECT_EQ(DTypeName(dtype), expected.first);
    EXPECT_EQ(DTypeSize(dtype), expected.second);
  }
  EXPECT_EQ(DTypeName(static_cast<DType>(99)), "unknown");
  EXPECT_EQ(DTypeSize(static_cast<DType>(99)), 0u);
}

// ---------------------------------------------------------------------------
// The shared reference models: .pth and .safetensors hold the same tensors.

struct ModelCase {
  const char* stem;
  size_t tensors;
  int64_t parameters;
  const char* arch;
};

TEST(SharedModelsTest, PthAndSafetensorsAgree) {
  const ModelCase cases[] = {
      {"tiny-rwkv4-660K", 78, 661504, "4"},
      {"synthetic-rwkv4-public", 78, 661504, "4"},
      {"tiny-rwkv5v2-730K", 1 + 12 * 22 + 5, 731904, "5.2"},
      {"tiny-rwkv7-834K", 1 + 12 * 30 + 2 + 11 * 3 + 3, 829888, "7"},
  };
  for (const ModelCase& c : cases) {
    SCOPED_TRACE(c.stem);
    RWKV_REQUIRE_SHARED(pth_path, std::string("models/") + c.stem + ".pth");
    RWKV_REQUIRE_SHARED(st_path,
                        std::string("models/") + c.stem + ".safetensors");
    absl::StatusOr<Checkpoint> pth = Checkpoint::Open(pth_path);
    ASSERT_TRUE(pth.ok()) << pth.status();
    absl::StatusOr<Checkpoint> st = Checkpoint::Open(st_path);
    ASSERT_TRUE(st.ok()) << st.status();
    EXPECT_EQ(pth->format(), "pth");
    EXPECT_EQ(st->format(), "safetensors");
    EXPECT_EQ(pth->source(), pth_path);
    ASSERT_EQ(pth->tensors().size(), c.tensors);
    ASSERT_EQ(st->tensors().size(), c.tensors);
    EXPECT_TRUE(pth->metadata().empty());
    ASSERT_EQ(st->metadata().count("arch"), 1u);
    EXPECT_EQ(st->metadata().at("arch"), c.arch);
    int64_t parameters = 0;
    for (size_t i = 0; i < c.tensors; ++i) {
      const CheckpointTensor& a = pth->tensors()[i];
      const CheckpointTensor& b = st->tensors()[i];
      SCOPED_TRACE(a.name);
      EXPECT_EQ(a.name, b.name);  // same file order
      EXPECT_EQ(a.dtype, DType::kFloat32);
      EXPECT_EQ(b.dtype, DType::kFloat32);
      EXPECT_EQ(a.shape, b.shape);
      ASSERT_EQ(a.nbytes, b.nbytes);
      EXPECT_EQ(a.nbytes, static_cast<size_t>(a.numel()) * 4);
      EXPECT_EQ(std::memcmp(a.data, b.data, a.nbytes), 0);
      EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % 4, 0u);
      EXPECT_EQ(pth->Find(a.name), &a);
      parameters += a.numel();
    }
    EXPECT_EQ(parameters, c.parameters);
    EXPECT_EQ(pth->Find("no.such.tensor"), nullptr);
  }
}

TEST(SharedModelsTest, ShapesAsInReadme) {
  RWKV_REQUIRE_SHARED(v4, "models/tiny-rwkv4-660K.pth");
  RWKV_REQUIRE_SHARED(v7, "models/tiny-rwkv7-834K.safetensors");
  absl::StatusOr<Checkpoint> c4 = Checkpoint::Open(v4);
  ASSERT_TRUE(c4.ok()) << c4.status();
  const std::map<std::string, std::vector<int64_t>> v4_shapes = {
      {"emb.weight", {256, 128}},
      {"blocks.0.ln1.weight", {128}},
      {"blocks.3.att.time_decay", {128}},
      {"blocks.2.att.time_mix_k", {1, 1, 128}},
      {"blocks.1.ffn.key.weight", {256, 128}},
      {"blocks.1.ffn.value.weight", {128, 256}},
      {"blocks.0.ln0.bias", {128}},
      {"head.weight", {256, 128}}};
  for (const auto& [name, shape] : v4_shapes) {
    const CheckpointTensor* t = c4->Find(name);
    ASSERT_NE(t, nullptr) << name;
    EXPECT_EQ(t->shape, shape) << name;
  }
  EXPECT_EQ(c4->tensors().front().name, "emb.weight");
  EXPECT_EQ(c4->tensors().back().name, "head.weight");

  absl::StatusOr<Checkpoint> c7 = Checkpoint::Open(v7);
  ASSERT_TRUE(c7.ok()) << c7.status();
  EXPECT_EQ(c7->Find("blocks.0.att.v0"), nullptr);
  ASSERT_NE(c7->Find("blocks.1.att.v0"), nullptr);
  EXPECT_EQ(c7->Find("blocks.11.att.r_k")->shape,
            (std::vector<int64_t>{1, 64}));
  EXPECT_EQ(c7->Find("blocks.5.att.w1")->shape, (std::vector<int64_t>{64, 32}));
  EXPECT_EQ(c7->metadata().at("n_layer"), "12");
}

TEST(SharedModelsTest, VerifyChecksums) {
  RWKV_REQUIRE_SHARED(path, "models/tiny-rwkv5v2-730K.pth");
  Checkpoint::Options options;
  options.verify_checksums = true;
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(path, options);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->tensors().size(), 270u);
}

// ---------------------------------------------------------------------------
// State fixtures written by Python's torch.save.

TEST(StateFixtureTest, PythonRwkv4State) {
  RWKV_REQUIRE_SHARED(path, "models/state-hello-synthetic-rwkv4.pt");
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const std::vector<std::string> keys = {"att_aa", "att_ab", "att_pp",
                                         "att_x_prev", "ffn_x_prev"};
  ASSERT_EQ(ckpt->tensors().size(), keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const CheckpointTensor& t = ckpt->tensors()[i];
    EXPECT_EQ(t.name, keys[i]);
    EXPECT_EQ(t.dtype, DType::kFloat32);
    EXPECT_EQ(t.shape, (std::vector<int64_t>{4, 128}));
  }
  for (float v : Floats(*ckpt->Find("att_pp"))) {
    EXPECT_TRUE(std::isfinite(v));
    EXPECT_GT(v, -1e20f);  // not the fresh-state -1e30 after a prompt
  }

  // Values: the 'hello' case's state in refs-public.json (6 digits), ChatRWKV
  // order [att_xx, att_aa, att_bb, att_pp, ffn_xx] per layer.
  std::ifstream in(refs_path);
  const nlohmann::json refs = nlohmann::json::parse(in);
  const auto& state =
      refs["models"]["synthetic-rwkv4-public"]["cases"]["hello"]["state"];
  ASSERT_EQ(state.size(), 20u);
  const std::pair<const char*, int> mapping[] = {{"att_x_prev", 0},
                                                 {"att_aa", 1},
                                                 {"att_ab", 2},
                                                 {"att_pp", 3},
                                                 {"ffn_x_prev", 4}};
  for (const auto& [key, j] : mapping) {
    const std::vector<float> v = Floats(*ckpt->Find(key));
    for (int layer = 0; layer < 4; ++layer) {
      const auto& ref = state[5 * layer + j];
      ASSERT_EQ(ref.size(), 128u);
      for (int c = 0; c < 128; ++c) {
        const double r = ref[c].get<double>();
        EXPECT_NEAR(v[layer * 128 + c], r, 1e-5 * std::max(1.0, std::fabs(r)))
            << key << "[" << layer << "][" << c << "]";
      }
    }
  }
}

TEST(StateFixtureTest, PythonRwkv7State) {
  RWKV_REQUIRE_SHARED(path, "models/state-hello-tiny-rwkv7.pt");
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 3u);
  EXPECT_EQ(ckpt->tensors()[0].name, "att_x_prev");
  EXPECT_EQ(ckpt->tensors()[1].name, "att_kv");
  EXPECT_EQ(ckpt->tensors()[2].name, "ffn_x_prev");
  EXPECT_EQ(ckpt->Find("att_kv")->shape, (std::vector<int64_t>{12, 1, 64, 64}));
  EXPECT_EQ(ckpt->Find("att_x_prev")->shape, (std::vector<int64_t>{12, 64}));
  for (float v : Floats(*ckpt->Find("att_kv"))) ASSERT_TRUE(std::isfinite(v));
}

// SerializePth writes exactly what Python's torch.save (1.13) wrote.
TEST(StateFixtureTest, SerializePthReproducesTorchSaveBytes) {
  for (const char* stem :
       {"state-hello-synthetic-rwkv4", "state-hello-tiny-rwkv7"}) {
    SCOPED_TRACE(stem);
    RWKV_REQUIRE_SHARED(path, std::string("models/") + stem + ".pt");
    absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(path);
    ASSERT_TRUE(ckpt.ok()) << ckpt.status();
    std::vector<TensorToWrite> tensors;
    for (const CheckpointTensor& t : ckpt->tensors()) {
      tensors.push_back({t.name, t.dtype, t.shape, t.data, t.nbytes});
    }
    absl::StatusOr<std::string> bytes = SerializePth(tensors, {}, stem);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    const std::string original = ::rwkv::testing::ReadFileOrEmpty(path);
    ASSERT_EQ(bytes->size(), original.size());
    EXPECT_TRUE(*bytes == original);
  }
}

// ---------------------------------------------------------------------------
// What LibTorch's torch::pickle_save writes: a dict {"a": ones(2,3),
// "b": zeros(4)} (the bytes of such a file, written by LibTorch 1.13).

const char kLibTorchPickleSaveHex[] =
    "504b0304000008080000000000000000000000000000000000000e001400617263686976"
    "652f646174612f30464210005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a0000803f0000803f"
    "0000803f0000803f0000803f0000803f504b07082512dd291800000018000000504b0304"
    "000008080000000000000000000000000000000000000e002c00617263686976652f6461"
    "74612f31464228005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a00000000000000000000000000000000504b0708554bbbec"
    "1000000010000000504b0304000008080000000000000000000000000000000000001000"
    "3200617263686976652f646174612e706b6c46422e005a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a80026374"
    "6f7263682e6a69742e5f7069636b6c650a726573746f72655f747970655f7461670a7100"
    "7d28580100000061710163746f7263682e5f7574696c730a5f72656275696c645f74656e"
    "736f725f76320a71022828580700000073746f72616765710363746f7263680a466c6f61"
    "7453746f726167650a71045801000000307105580300000063707571064b06745171074b"
    "00284b024b0374284b034b01748963636f6c6c656374696f6e730a4f7264657265644469"
    "63740a71082952745258010000006271096802282868036804580100000031710a68064b"
    "047451710b4b00284b0474284b017489680829527452755811000000446963745b737472"
    "2c2054656e736f725d710c8652710d2e504b07081b9b12d21001000010010000504b0304"
    "000008080000000000000000000000000000000000000f003300617263686976652f7665"
    "7273696f6e46422f005a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a"
    "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a330a504b0708d19e6755020000000200"
    "0000504b01020000000008080000000000002512dd2918000000180000000e0000000000"
    "000000000000000000000000617263686976652f646174612f30504b0102000000000808"
    "000000000000554bbbec10000000100000000e0000000000000000000000000068000000"
    "617263686976652f646174612f31504b01020000000008080000000000001b9b12d21001"
    "0000100100001000000000000000000000000000e0000000617263686976652f64617461"
    "2e706b6c504b0102000000000808000000000000d19e675502000000020000000f000000"
    "0000000000000000000060020000617263686976652f76657273696f6e504b06062c0000"
    "00000000001e032d00000000000000000004000000000000000400000000000000f30000"
    "0000000000d202000000000000504b060700000000c50300000000000001000000504b05"
    "060000000004000400f3000000d20200000000";

TEST(LibTorchTest, PickleSaveDict) {
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(HexDecode(kLibTorchPickleSaveHex), "out.pt");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->format(), "pth");
  ASSERT_EQ(ckpt->tensors().size(), 2u);
  const CheckpointTensor& a = ckpt->tensors()[0];
  const CheckpointTensor& b = ckpt->tensors()[1];
  EXPECT_EQ(a.name, "a");
  EXPECT_EQ(a.shape, (std::vector<int64_t>{2, 3}));
  EXPECT_EQ(Floats(a), std::vector<float>(6, 1.0f));
  EXPECT_EQ(b.name, "b");
  EXPECT_EQ(b.shape, (std::vector<int64_t>{4}));
  EXPECT_EQ(Floats(b), std::vector<float>(4, 0.0f));
  EXPECT_TRUE(ckpt->metadata().empty());
}

// The same structure built here: restore_type_tag around the dict, storage
// records before data.pkl, a Dict[str, Tensor] type tag.
TEST(LibTorchTest, RestoreTypeTagAndRecordOrder) {
  PickleWriter p;
  p.Global("torch.jit._pickle", "restore_type_tag");
  p.EmptyDict();
  p.Mark();
  p.String("w");
  p.Tensor("HalfStorage", "0", 2, 0, {2}, {1});
  p.SetItems();
  p.String("Dict[str, Tensor]");
  p.EndTuple(2);
  p.Reduce();
  const std::string half = std::string("\x00\x3c\x00\xc0", 4);  // 1.0, -2.0
  const std::string zip = MakeZip({{"archive/data/0", half},
                                   {"archive/data.pkl", p.Finish()},
                                   {"archive/version", "2\n"}});
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(zip, "lt.pt");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 1u);
  EXPECT_EQ(ckpt->tensors()[0].dtype, DType::kFloat16);
  EXPECT_EQ(Bytes(ckpt->tensors()[0]), half);
}

// ---------------------------------------------------------------------------
// Round trips.

struct DTypeSample {
  DType dtype;
  std::string bytes;  // 6 elements
};

std::vector<DTypeSample> AllDTypeSamples() {
  std::mt19937 rng(7);
  std::vector<DTypeSample> out;
  for (DType d : {DType::kFloat32, DType::kFloat16, DType::kBFloat16,
                  DType::kFloat64, DType::kInt64, DType::kInt32, DType::kInt16,
                  DType::kInt8, DType::kUInt8, DType::kBool}) {
    std::string bytes(6 * DTypeSize(d), '\0');
    for (char& c : bytes) c = static_cast<char>(rng());
    if (d == DType::kBool) {
      for (char& c : bytes) c = static_cast<char>(c & 1);
    }
    out.push_back({d, bytes});
  }
  return out;
}

TEST(PthRoundTripTest, AllDTypesBitExact) {
  const std::vector<DTypeSample> samples = AllDTypeSamples();
  std::vector<TensorToWrite> tensors;
  for (const DTypeSample& s : samples) {
    tensors.push_back(
        Tensor(std::string(DTypeName(s.dtype)), s.dtype, {2, 3}, s.bytes));
  }
  const std::string scalar_bytes = FloatBytes({42.5f});
  tensors.push_back(Tensor("scalar", DType::kFloat32, {}, scalar_bytes));
  tensors.push_back(Tensor("empty", DType::kFloat16, {0, 5}, ""));
  absl::StatusOr<std::string> pth = SerializePth(tensors);
  ASSERT_TRUE(pth.ok()) << pth.status();
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(*pth, "rt.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const CheckpointTensor& t = ckpt->tensors()[i];
    SCOPED_TRACE(t.name);
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_EQ(Bytes(t), std::string(static_cast<const char*>(tensors[i].data),
                                    tensors[i].nbytes));
    EXPECT_NE(t.data, nullptr);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype), 0u);
  }
  EXPECT_EQ(ckpt->Find("scalar")->numel(), 1);
  EXPECT_EQ(ckpt->Find("empty")->numel(), 0);
  EXPECT_EQ(ckpt->Find("empty")->nbytes, 0u);
}

TEST(PthRoundTripTest, ScalarEntries) {
  const std::string w = FloatBytes({1, 2});
  const std::vector<TensorToWrite> tensors = {
      Tensor("w", DType::kFloat32, {2}, w)};
  const std::vector<ScalarToWrite> scalars = {
      {"arch", std::string("rwkv4")},
      {"n_layer", int64_t{4}},
      {"big", int64_t{1} << 40},
      {"neg", int64_t{-7}},
      {"min", std::numeric_limits<int64_t>::min()},
      {"i16", int64_t{40000}},
      {"i32", int64_t{-100000}},
      {"half", 0.5},
      {"tiny", 1e-05},
      {"one", 1.0},
      {"tenth", 0.1},
      {"e16", 1e16},
      {"e15", 1e15},
      {"small", 1.5e-07},
      {"milli", 0.0001},
      {"neg_float", -2.5},
      {"inf", std::numeric_limits<double>::infinity()},
      {"yes", true},
      {"no", false},
      {"utf8", std::string("h\xc3\xa9llo")},
  };
  absl::StatusOr<std::string> pth = SerializePth(tensors, scalars);
  ASSERT_TRUE(pth.ok()) << pth.status();
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(*pth, "s.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 1u);
  const std::map<std::string, std::string> expected = {
      {"arch", "rwkv4"},
      {"n_layer", "4"},
      {"big", "1099511627776"},
      {"neg", "-7"},
      {"min", "-9223372036854775808"},
      {"i16", "40000"},
      {"i32", "-100000"},
      {"half", "0.5"},
      {"tiny", "1e-05"},
      {"one", "1.0"},
      {"tenth", "0.1"},
      {"e16", "1e+16"},
      {"e15", "1000000000000000.0"},
      {"small", "1.5e-07"},
      {"milli", "0.0001"},
      {"neg_float", "-2.5"},
      {"inf", "inf"},
      {"yes", "True"},
      {"no", "False"},
      {"utf8", "h\xc3\xa9llo"}};
  EXPECT_EQ(ckpt->metadata(), expected);
}

// More than 1000 entries (several SETITEMS batches) and more than 256 memo
// entries (LONG_BINPUT / LONG_BINGET).
TEST(PthRoundTripTest, ManyEntries) {
  std::vector<std::string> data;
  std::vector<TensorToWrite> tensors;
  for (int i = 0; i < 1001; ++i)
    data.push_back(FloatBytes({static_cast<float>(i)}));
  for (int i = 0; i < 1001; ++i) {
    tensors.push_back(
        Tensor("t" + std::to_string(i), DType::kFloat32, {1}, data[i]));
  }
  absl::StatusOr<std::string> pth = SerializePth(tensors);
  ASSERT_TRUE(pth.ok()) << pth.status();
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(*pth, "many.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 1001u);
  for (int i = 0; i < 1001; ++i) {
    ASSERT_EQ(ckpt->tensors()[i].name, "t" + std::to_string(i));
    ASSERT_EQ(Floats(ckpt->tensors()[i])[0], static_cast<float>(i));
  }
}

// The same archive with ZIP64 fields everywhere (as torch writes for files
// and records over 4 GiB).
TEST(PthRoundTripTest, Zip64Records) {
  const std::string small = SmallPth();
  absl::StatusOr<ZipReader> zip = ZipReader::Parse(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(small.data()),
                          small.size()),
      "small.pth");
  ASSERT_TRUE(zip.ok()) << zip.status();
  std::vector<std::pair<std::string, std::string>> records;
  for (const ZipReader::Entry& e : zip->entries()) {
    absl::StatusOr<absl::Span<const uint8_t>> b = zip->Read(e, true);
    ASSERT_TRUE(b.ok()) << b.status();
    records.emplace_back(
        e.name,
        std::string(reinterpret_cast<const char*>(b->data()), b->size()));
  }
  ZipWriter::Options options;
  options.zip64_threshold = 0;
  const std::string z64 = MakeZip(records, options);
  EXPECT_NE(z64, small);
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(z64, "z64.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  absl::StatusOr<Checkpoint> ref = Checkpoint::FromBytes(small, "small.pth");
  ASSERT_TRUE(ref.ok()) << ref.status();
  ASSERT_EQ(ckpt->tensors().size(), 2u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(Bytes(ckpt->tensors()[i]), Bytes(ref->tensors()[i]));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(ckpt->tensors()[i].data) % 64,
              reinterpret_cast<uintptr_t>(ckpt->tensors()[i].data) % 64);
  }
  EXPECT_EQ(ckpt->metadata().at("note"), "hi");
}

TEST(PthRoundTripTest, RecordDataIs64ByteAligned) {
  const std::string pth = SmallPth();
  absl::StatusOr<ZipReader> zip = ZipReader::Parse(
      absl::MakeConstSpan(reinterpret_cast<const uint8_t*>(pth.data()),
                          pth.size()),
      "small.pth");
  ASSERT_TRUE(zip.ok()) << zip.status();
  std::vector<std::string> names;
  for (const ZipReader::Entry& e : zip->entries()) {
    names.push_back(e.name);
    absl::StatusOr<absl::Span<const uint8_t>> b = zip->Read(e, true);
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ((b->data() - reinterpret_cast<const uint8_t*>(pth.data())) % 64,
              0)
        << e.name;
  }
  EXPECT_EQ(names,
            (std::vector<std::string>{"archive/data.pkl", "archive/data/0",
                                      "archive/data/1", "archive/version"}));
}

TEST(PthRoundTripTest, WriteFileAtomicallyThenOpen) {
  const std::string path = TempPath("state.pth");
  ASSERT_TRUE(WriteFileAtomically(path, "old contents").ok());
  const std::string pth = SmallPth();
  ASSERT_TRUE(WriteFileAtomically(path, pth).ok());
  EXPECT_EQ(::rwkv::testing::ReadFileOrEmpty(path), pth);
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::Open(path);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(Floats(ckpt->tensors()[1]),
            (std::vector<float>{0.25f, 0.125f, 7.0f, 9.5f}));
  // No temporary files left behind.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(
           std::filesystem::path(path).parent_path())) {
    if (e.path().filename().string().rfind(
            std::filesystem::path(path).filename().string(), 0) == 0)
      ++files;
  }
  EXPECT_EQ(files, 1);
  std::filesystem::remove(path);

  const absl::Status missing_dir =
      WriteFileAtomically("/nonexistent-dir-xyz/f.pth", "x");
  EXPECT_EQ(missing_dir.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(missing_dir.message()),
              StartsWith("/nonexistent-dir-xyz/f.pth: "));
}

TEST(SafetensorsRoundTripTest, BitExactWithMetadata) {
  const std::vector<DTypeSample> samples = AllDTypeSamples();
  std::vector<TensorToWrite> tensors;
  for (const DTypeSample& s : samples) {
    tensors.push_back(Tensor("x." + std::string(DTypeName(s.dtype)), s.dtype,
                             {3, 2}, s.bytes));
  }
  tensors.push_back(Tensor("empty", DType::kFloat32, {0}, ""));
  const std::map<std::string, std::string> metadata = {
      {"arch", "7"}, {"note", "a \"quoted\" value"}};
  absl::StatusOr<std::string> st = SerializeSafetensors(tensors, metadata);
  ASSERT_TRUE(st.ok()) << st.status();
  EXPECT_EQ(Le64At(*st, 0) % 8, 0u);
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(*st, "rt.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_EQ(ckpt->format(), "safetensors");
  EXPECT_EQ(ckpt->metadata(), metadata);
  ASSERT_EQ(ckpt->tensors().size(), tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const CheckpointTensor& t = ckpt->tensors()[i];
    EXPECT_EQ(t.name, tensors[i].name);
    EXPECT_EQ(t.dtype, tensors[i].dtype);
    EXPECT_EQ(t.shape, tensors[i].shape);
    EXPECT_EQ(Bytes(t), std::string(static_cast<const char*>(tensors[i].data),
                                    tensors[i].nbytes));
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.data) % DTypeSize(t.dtype), 0u);
  }
}

TEST(SafetensorsTest, MisalignedDataIsCopied) {
  // Header of odd length: the data section starts at an odd offset.
  const std::string header =
      R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} )";
  ASSERT_EQ(header.size() % 2, 1u);
  std::string file(8, '\0');
  SetLe(&file, 0, header.size(), 8);
  file += header + FloatBytes({3.5f, -1.0f});
  absl::StatusOr<Checkpoint> ckpt =
      Checkpoint::FromBytes(file, "odd.safetensors");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const CheckpointTensor& w = ckpt->tensors()[0];
  EXPECT_EQ(reinterpret_cast<uintptr_t>(w.data) % 4, 0u);
  EXPECT_EQ(Floats(w), (std::vector<float>{3.5f, -1.0f}));
  EXPECT_TRUE(ckpt->metadata().empty());
}

// ---------------------------------------------------------------------------
// Views, shared storages, nesting.

TEST(PthViewsTest, StridedOffsetAndSharedStorages) {
  std::vector<float> s0(12);
  for (int i = 0; i < 12; ++i) s0[i] = static_cast<float>(i);
  PickleWriter p;
  p.EmptyDict();
  p.Mark();
  p.String("full");
  p.Tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.String("row1");
  p.Tensor("FloatStorage", "0", 12, 4, {4}, {1});
  p.String("col2");
  p.Tensor("FloatStorage", "0", 12, 2, {3}, {4});
  p.String("transposed");
  p.Tensor("FloatStorage", "0", 12, 0, {4, 3}, {1, 4});
  p.String("permuted");
  p.Tensor("FloatStorage", "0", 12, 0, {2, 2, 3}, {1, 2, 4});
  p.String("expanded");
  p.Tensor("FloatStorage", "1", 3, 0, {2, 3}, {0, 1});
  p.String("element");
  p.Tensor("FloatStorage", "0", 12, 5, {}, {});
  p.String("empty");
  p.Tensor("FloatStorage", "0", 12, 0, {0, 4}, {4, 1});
  p.String("tied");
  p.Tensor("FloatStorage", "0", 12, 0, {3, 4}, {4, 1});
  p.String("half_t");
  p.Tensor("HalfStorage", "2", 4, 0, {2, 2}, {1, 2});
  p.String("unit_dims");  // size-1 dims with arbitrary strides: contiguous
  p.Tensor("FloatStorage", "0", 12, 8, {1, 4, 1}, {99, 1, 7});
  p.SetItems();
  const std::string half =
      std::string("\x00\x3c\x00\x40\x00\x42\x00\x44", 8);  // 1 2 3 4
  const std::string pth = MakePth(
      p.Finish(),
      {{"0", FloatBytes(s0)}, {"1", FloatBytes({7, 8, 9})}, {"2", half}});
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(pth, "views.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const CheckpointTensor* full = ckpt->Find("full");
  ASSERT_NE(full, nullptr);
  EXPECT_EQ(Floats(*full), s0);
  EXPECT_EQ(ckpt->Find("row1")->data, full->data + 16);  // points into the file
  EXPECT_EQ(Floats(*ckpt->Find("row1")), (std::vector<float>{4, 5, 6, 7}));
  EXPECT_EQ(Floats(*ckpt->Find("col2")), (std::vector<float>{2, 6, 10}));
  EXPECT_EQ(Floats(*ckpt->Find("transposed")),
            (std::vector<float>{0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11}));
  EXPECT_EQ(Floats(*ckpt->Find("permuted")),
            (std::vector<float>{0, 4, 8, 2, 6, 10, 1, 5, 9, 3, 7, 11}));
  EXPECT_EQ(Floats(*ckpt->Find("expanded")),
            (std::vector<float>{7, 8, 9, 7, 8, 9}));
  EXPECT_EQ(ckpt->Find("element")->shape, std::vector<int64_t>{});
  EXPECT_EQ(Floats(*ckpt->Find("element")), (std::vector<float>{5}));
  EXPECT_EQ(ckpt->Find("empty")->nbytes, 0u);
  EXPECT_NE(ckpt->Find("empty")->data, nullptr);
  EXPECT_EQ(ckpt->Find("tied")->data, full->data);
  EXPECT_EQ(Bytes(*ckpt->Find("half_t")),
            std::string("\x00\x3c\x00\x42\x00\x40\x00\x44", 8));
  EXPECT_EQ(ckpt->Find("unit_dims")->data, full->data + 32);
  EXPECT_EQ(ckpt->Find("unit_dims")->shape, (std::vector<int64_t>{1, 4, 1}));
}

TEST(PthViewsTest, NestedContainersAndScalarsFlattened) {
  PickleWriter p;
  p.EmptyDict();
  p.Mark();
  p.String("model");
  p.EmptyDict();
  p.Mark();
  p.String("a");
  p.Tensor("FloatStorage", "0", 1, 0, {1}, {1});
  p.String("b");
  p.EmptyDict();
  p.String("c");
  p.Tensor("FloatStorage", "1", 1, 0, {1}, {1});
  p.SetItem();
  p.SetItems();
  p.String("list");
  p.EmptyList();
  p.Mark();
  p.Tensor("FloatStorage", "0", 1, 0, {1}, {1});
  p.Tensor("FloatStorage", "1", 1, 0, {1}, {1});
  p.Appends();
  p.String("epoch");
  p.Int(3);
  p.String("lr");
  p.Float(0.001);
  p.String("none");
  p.None();
  p.String("flag");
  p.Bool(true);
  p.String("version");
  p.SharedString("x");
  p.SetItems();
  const std::string pth =
      MakePth(p.Finish(), {{"0", FloatBytes({1})}, {"1", FloatBytes({2})}});
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(pth, "nested.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<std::string> names;
  for (const CheckpointTensor& t : ckpt->tensors()) names.push_back(t.name);
  EXPECT_EQ(names, (std::vector<std::string>{"model.a", "model.b.c", "list.0",
                                             "list.1"}));
  EXPECT_EQ(Floats(*ckpt->Find("model.b.c")), std::vector<float>{2});
  const std::map<std::string, std::string> expected = {{"epoch", "3"},
                                                       {"lr", "0.001"},
                                                       {"none", "None"},
                                                       {"flag", "True"},
                                                       {"version", "x"}};
  EXPECT_EQ(ckpt->metadata(), expected);
}

// What torch.save(model.state_dict()) writes: an OrderedDict with a
// _metadata attribute (BUILD), and nn.Parameter entries.
TEST(PthViewsTest, OrderedDictWithMetadataAndParameters) {
  PickleWriter p;
  p.Global("collections", "OrderedDict");
  p.EndTuple(0);
  p.Reduce();
  p.Mark();
  p.String("weight");
  p.Global("torch._utils", "_rebuild_parameter");
  p.BeginTuple(3);
  p.Tensor("BFloat16Storage", "0", 2, 0, {2}, {1});
  p.Bool(true);
  p.Global("collections", "OrderedDict");
  p.EndTuple(0);
  p.Reduce();
  p.EndTuple(3);
  p.Reduce();
  p.String("bias");
  p.Tensor("FloatStorage", "1", 1, 0, {1}, {1});
  p.SetItems();
  // state: {'_metadata': OrderedDict([('', {'version': 1})])}
  p.EmptyDict();
  p.String("_metadata");
  p.Global("collections", "OrderedDict");
  p.EndTuple(0);
  p.Reduce();
  p.String("");
  p.EmptyDict();
  p.String("version");
  p.Int(1);
  p.SetItem();
  p.SetItem();
  p.SetItem();
  p.Build();
  const std::string bf16 = std::string("\x80\x3f\x00\xc0", 4);
  const std::string pth =
      MakePth(p.Finish(), {{"0", bf16}, {"1", FloatBytes({0.5f})}});
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(pth, "sd.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  ASSERT_EQ(ckpt->tensors().size(), 2u);
  EXPECT_EQ(ckpt->tensors()[0].name, "weight");
  EXPECT_EQ(ckpt->tensors()[0].dtype, DType::kBFloat16);
  EXPECT_EQ(Bytes(ckpt->tensors()[0]), bf16);
  EXPECT_EQ(ckpt->tensors()[1].name, "bias");
  EXPECT_TRUE(ckpt->metadata().empty());
}

TEST(CheckpointTest, MoveKeepsDataValidAndConcurrentReads) {
  absl::StatusOr<Checkpoint> opened =
      Checkpoint::FromBytes(SmallPth(), "m.pth");
  ASSERT_TRUE(opened.ok()) << opened.status();
  const uint8_t* data = opened->Find("a")->data;
  Checkpoint moved = *std::move(opened);
  Checkpoint again = std::move(moved);
  ASSERT_NE(again.Find("a"), nullptr);
  EXPECT_EQ(again.Find("a")->data, data);
  EXPECT_EQ(Floats(*again.Find("a")),
            (std::vector<float>{1.5f, -2.25f, 3.0f, 0.5f, 8.0f, -1.0f}));
  std::vector<std::thread> threads;
  std::atomic<int> found{0};
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int k = 0; k < 1000; ++k) {
        if (again.Find("b") != nullptr && again.Find("zz") == nullptr) ++found;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(found.load(), 4000);
}

// ---------------------------------------------------------------------------
// Errors.

TEST(ErrorsTest, MissingEmptyDirectoryAndUnrecognized) {
  absl::StatusOr<Checkpoint> missing = Checkpoint::Open("/no/such/model.pth");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(std::string(missing.status().message()),
            "/no/such/model.pth: no such file or directory");

  const std::string empty_path = TempPath("empty.pth");
  { std::ofstream(empty_path, std::ios::binary); }
  absl::StatusOr<Checkpoint> empty = Checkpoint::Open(empty_path);
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(empty.status().message()),
            empty_path + ": file is empty");
  std::filesystem::remove(empty_path);

  const std::string dir = std::filesystem::temp_directory_path().string();
  absl::StatusOr<Checkpoint> d = Checkpoint::Open(dir);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(d.status().message()),
            dir + ": is a directory, not a checkpoint file");

  absl::StatusOr<Checkpoint> text =
      Checkpoint::FromBytes("hello world", "notes.txt");
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      std::string(text.status().message()),
      "notes.txt: unrecognized checkpoint format (expected a torch.save zip "
      "archive (.pth/.pt) or a .safetensors file)");

  absl::StatusOr<Checkpoint> legacy =
      Checkpoint::FromBytes(std::string("\x80\x02\x8a\x0a"
                                        "legacy-magic.",
                                        16),
                            "old.pth");
  EXPECT_EQ(legacy.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      std::string(legacy.status().message()),
      "old.pth: legacy (pre-1.6, non-zip) torch.save format is not supported; "
      "re-save it with a current torch.save");
}

TEST(ErrorsTest, EveryPrefixOfSmallPth) {
  const std::string pth = SmallPth();
  ASSERT_GT(pth.size(), 900u);
  for (size_t len = 0; len < pth.size(); ++len) {
    absl::StatusOr<Checkpoint> c =
        Checkpoint::FromBytes(pth.substr(0, len), "p.pth");
    ASSERT_FALSE(c.ok()) << len;
    if (len == 0) {
      EXPECT_EQ(std::string(c.status().message()), "p.pth: file is empty");
    } else if (len < 4) {
      EXPECT_THAT(std::string(c.status().message()),
                  StartsWith("p.pth: unrecognized checkpoint format"));
    } else {
      EXPECT_EQ(c.status().code(), absl::StatusCode::kDataLoss) << len;
      EXPECT_EQ(
          std::string(c.status().message()),
          "p.pth: zip end of central directory not found (truncated file?)")
          << len;
    }
  }
  EXPECT_TRUE(Checkpoint::FromBytes(pth, "p.pth").ok());
}

TEST(ErrorsTest, EveryPrefixOfSmallSafetensors) {
  const std::string st = SmallSafetensors();
  const uint64_t header = Le64At(st, 0);
  for (size_t len = 0; len < st.size(); ++len) {
    absl::StatusOr<Checkpoint> c =
        Checkpoint::FromBytes(st.substr(0, len), "s.safetensors");
    ASSERT_FALSE(c.ok()) << len;
    const std::string msg(c.status().message());
    if (len == 0) {
      EXPECT_EQ(msg, "s.safetensors: file is empty");
    } else if (len < 9) {
      EXPECT_THAT(msg,
                  StartsWith("s.safetensors: unrecognized checkpoint format"));
    } else if (len < 8 + header) {
      EXPECT_EQ(msg, "s.safetensors: safetensors header length " +
                         std::to_string(header) + " exceeds the file size " +
                         std::to_string(len) + " (truncated file?)");
    } else {
      const size_t data = len - 8 - header;
      EXPECT_EQ(
          msg,
          data < 24
              ? "s.safetensors: tensor 'a': data_offsets [0, 24] run past the "
                "end "
                "of the data section (" +
                    std::to_string(data) + " bytes; truncated file?)"
              : "s.safetensors: tensor 'b': data_offsets [24, 40] run past the "
                "end of the data section (" +
                    std::to_string(data) + " bytes; truncated file?)");
    }
  }
}

TEST(ErrorsTest, SampledPrefixesOfRealFiles) {
  for (const char* name :
       {"models/tiny-rwkv4-660K.pth", "models/tiny-rwkv4-660K.safetensors",
        "models/state-hello-tiny-rwkv7.pt"}) {
    SCOPED_TRACE(name);
    RWKV_REQUIRE_SHARED(path, name);
    const std::string bytes = ::rwkv::testing::ReadFileOrEmpty(path);
    std::mt19937_64 rng(11);
    std::vector<size_t> lengths = {1,
                                   8,
                                   9,
                                   22,
                                   100,
                                   bytes.size() / 2,
                                   bytes.size() - 1,
                                   bytes.size() - 22,
                                   bytes.size() - 23};
    for (int i = 0; i < 40; ++i) lengths.push_back(rng() % bytes.size());
    for (size_t len : lengths) {
      absl::StatusOr<Checkpoint> c =
          Checkpoint::FromBytes(bytes.substr(0, len), "real");
      ASSERT_FALSE(c.ok()) << len;
      EXPECT_THAT(std::string(c.status().message()), StartsWith("real: "))
          << len;
    }
    // A hole in the middle of the file (the tail intact).
    std::string holed =
        bytes.substr(0, bytes.size() / 3) + bytes.substr(bytes.size() / 2);
    EXPECT_FALSE(Checkpoint::FromBytes(holed, "holed").ok());
  }
}

// Random damage anywhere in a small .pth: an error or a (possibly different)
// checkpoint, never a crash or a hang.
TEST(ErrorsTest, RandomByteFlipsPth) {
  const std::string pth = SmallPth();
  std::mt19937_64 rng(1234);
  int ok = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string m = pth;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k)
      m[rng() % m.size()] = static_cast<char>(rng());
    absl::StatusOr<Checkpoint> c = Checkpoint::FromBytes(m, "fuzz.pth");
    if (c.ok()) {
      ++ok;
      for (const CheckpointTensor& t : c->tensors()) {
        ASSERT_NE(t.data, nullptr);
        volatile uint8_t sink = 0;
        for (size_t b = 0; b < t.nbytes; ++b) sink ^= t.data[b];
      }
    } else {
      EXPECT_THAT(std::string(c.status().message()), StartsWith("fuzz.pth: "));
    }
  }
  EXPECT_GT(ok, 0);  // damage to tensor data goes unnoticed without CRC checks
}

// Damage to the pickle itself, re-zipped with a valid CRC so that the pickle
// machine runs on it.
TEST(ErrorsTest, RandomPickleMutations) {
  PickleWriter p;
  p.Global("collections", "OrderedDict");
  p.EndTuple(0);
  p.Reduce();
  p.Mark();
  p.String("w");
  p.Tensor("FloatStorage", "0", 6, 0, {2, 3}, {3, 1});
  p.String("v");
  p.Tensor("FloatStorage", "0", 6, 1, {2, 2}, {1, 3});
  p.String("meta");
  p.EmptyDict();
  p.Mark();
  p.String("n");
  p.Int(70000);
  p.String("f");
  p.Float(0.25);
  p.String("l");
  p.EmptyList();
  p.Mark();
  p.Int(-3);
  p.Bool(false);
  p.None();
  p.Appends();
  p.SetItems();
  p.SetItems();
  const std::string pickle = p.Finish();
  const std::string storage = FloatBytes({1, 2, 3, 4, 5, 6});
  ASSERT_TRUE(
      Checkpoint::FromBytes(MakePth(pickle, {{"0", storage}}), "x").ok());
  std::mt19937_64 rng(99);
  int ok = 0;
  for (int i = 0; i < 4000; ++i) {
    std::string m = pickle;
    const int kind = static_cast<int>(rng() % 4);
    if (kind == 0) {
      m[rng() % m.size()] = static_cast<char>(rng());
    } else if (kind == 1) {
      m[rng() % m.size()] ^= static_cast<char>(1 << (rng() % 8));
      m[rng() % m.size()] = static_cast<char>(rng());
    } else if (kind == 2) {
      m.erase(rng() % m.size(), 1 + rng() % 8);
    } else {
      m.insert(rng() % m.size(), 1, static_cast<char>(rng()));
    }
    absl::StatusOr<Checkpoint> c =
        Checkpoint::FromBytes(MakePth(m, {{"0", storage}}), "pk.pth");
    if (c.ok()) {
      ++ok;
      for (const CheckpointTensor& t : c->tensors()) {
        volatile uint8_t sink = 0;
        for (size_t b = 0; b < t.nbytes; ++b) sink ^= t.data[b];
      }
    } else {
      EXPECT_THAT(std::string(c.status().message()), StartsWith("pk.pth: "));
    }
  }
  EXPECT_GT(ok, 0);
}

TEST(ErrorsTest, RandomByteFlipsSafetensors) {
  const std::string st = SmallSafetensors();
  const size_t header_end = 8 + Le64At(st, 0);
  std::mt19937_64 rng(4321);
  for (int i = 0; i < 3000; ++i) {
    std::string m = st;
    const int flips = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < flips; ++k) {
      // Mostly the header (where the structure is).
      const size_t pos =
          (rng() % 4 != 0) ? rng() % header_end : rng() % m.size();
      m[pos] = static_cast<char>(i % 2 ? rng()
                                       : "0123456789[]{}\",:-eE."[rng() % 21]);
    }
    absl::StatusOr<Checkpoint> c = Checkpoint::FromBytes(m, "fuzz.safetensors");
    if (c.ok()) {
      for (const CheckpointTensor& t : c->tensors()) {
        volatile uint8_t sink = 0;
        for (size_t b = 0; b < t.nbytes; ++b) sink ^= t.data[b];
      }
    } else {
      EXPECT_THAT(std::string(c.status().message()),
                  StartsWith("fuzz.safetensors: "));
    }
  }
}

std::string Safetensors(const std::string& header, size_t data_bytes) {
  std::string file(8, '\0');
  SetLe(&file, 0, header.size(), 8);
  return file + header + std::string(data_bytes, '\0');
}

TEST(ErrorsTest, SafetensorsLyingHeaders) {
  struct Case {
    std::string file;
    absl::StatusCode code;
    std::string message;
  };
  std::string huge_len = SmallSafetensors();
  SetLe(&huge_len, 0, uint64_t{1} << 62, 8);
  std::string long_len = SmallSafetensors();
  SetLe(&long_len, 0, long_len.size(), 8);
  const auto loss = absl::StatusCode::kDataLoss;
  const std::vector<Case> cases = {
      {huge_len, loss,
       "t.safetensors: safetensors header length 4611686018427387904 is "
       "implausible "
       "(over 100 MB; corrupt file?)"},
      {long_len, loss,
       "t.safetensors: safetensors header length " +
           std::to_string(long_len.size()) + " exceeds the file size " +
           std::to_string(long_len.size()) + " (truncated file?)"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]})",
                   8),
       loss,
       "t.safetensors: safetensors header is not valid JSON (corrupt file?)"},
      {Safetensors(
           "{\"a\":" + std::string(100, '[') + std::string(100, ']') + "}", 0),
       loss, "t.safetensors: safetensors header nests deeper than 64 levels"},
      {Safetensors(
           R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,800]}})", 8),
       loss,
       "t.safetensors: tensor 'w': data_offsets [0, 800] run past the end of "
       "the data "
       "section (8 bytes; truncated file?)"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}})",
                   8),
       loss,
       "t.safetensors: tensor 'w': data_offsets [8, 0] end before they begin"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})",
                   8),
       loss,
       "t.safetensors: tensor 'w': data_offsets [0, 8] hold 8 bytes but shape "
       "[3] float32 "
       "needs 12"},
      {Safetensors(
           R"({"w":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})",
           8),
       loss,
       "t.safetensors: tensor 'w': shape [4611686018427387904, 4] is too "
       "large"},
      {Safetensors(
           R"({"w":{"dtype":"F32","shape":[4611686018427387904],"data_offsets":[0,8]}})",
           8),
       loss,
       "t.safetensors: tensor 'w': shape [4611686018427387904] is too large"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})",
                   8),
       loss,
       "t.safetensors: tensor 'w': shape has an element that is not a "
       "non-negative integer"},
      {Safetensors(
           R"({"w":{"dtype":"F32","shape":[2.0],"data_offsets":[0,8]}})", 8),
       loss,
       "t.safetensors: tensor 'w': shape has an element that is not a "
       "non-negative integer"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[-1,8]}})",
                   8),
       loss,
       "t.safetensors: tensor 'w': 'data_offsets' must be non-negative "
       "integers"},
      {Safetensors(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0]}})",
                   8),
       loss,
       "t.safetensors: tensor 'w': 'data_offsets' must be an array of two "
       "integers"},
      {Safetensors(R"({"w":{"shape":[2],"data_offsets":[0,8]}})", 8), loss,
       "t.safetensors: tensor 'w': missing or non-string 'dtype'"},
      {Safetensors(R"({"w":{"dtype":"F32","data_offsets":[0,8]}})", 8), loss,
       "t.safetensors: tensor 'w': missing or non-array 'shape'"},
      {Safetensors(R"({"w":[1]})", 8), loss,
       "t.safetensors: tensor 'w': header entry is not an object"},
      {Safetensors(R"({"__metadata__":{"a":1}})", 0), loss,
       "t.safetensors: __metadata__ entry 'a' is not a string"},
      {Safetensors(R"({"__metadata__":[]})", 0), loss,
       "t.safetensors: __metadata__ is not an object"},
      {Safetensors(
           R"({"w":{"dtype":"F8_E4M3","shape":[2],"data_offsets":[0,2]}})", 2),
       absl::StatusCode::kInvalidArgument,
       "t.safetensors: tensor 'w' has unsupported dtype 'F8_E4M3' (supported: "
       "F32, F16, "
       "BF16, F64, I64, I32, I16, I8, U8, BOOL)"},
  };
  for (const Case& c : cases) {
    absl::StatusOr<Checkpoint> ckpt =
        Checkpoint::FromBytes(c.file, "t.safetensors");
    ASSERT_FALSE(ckpt.ok()) << c.message;
    EXPECT_EQ(ckpt.status().code(), c.code) << c.message;
    EXPECT_EQ(std::string(ckpt.status().message()), c.message);
  }
  // A valid empty file and zero-size tensors are fine.
  EXPECT_TRUE(
      Checkpoint::FromBytes(Safetensors("{}", 0), "e.safetensors").ok());
  EXPECT_TRUE(
      Checkpoint::FromBytes(
          Safetensors(
              R"({"z":{"dtype":"BOOL","shape":[0,3],"data_offsets":[0,0]}})",
              0),
          "z.safetensors")
          .ok());
}

TEST(ErrorsTest, ZipLyingRecords) {
  const std::string pth = SmallPth();
  const size_t z64 = pth.size() - 22 - 20 - 56;  // zip64 end record
  ASSERT_EQ(pth.compare(z64, 4, "PK\x06\x06"), 0);
  const auto loss = absl::StatusCode::kDataLoss;
  struct Case {
    std::string file;
    absl::StatusCode code;
    std::string message;
  };
  std::vector<Case> cases;
  {
    std::string m = pth;
    SetLe(&m, z64 + 48, uint64_t{1} << 48, 8);
    cases.push_back({m, loss,
                     "z.pth: zip central directory (offset 281474976710656, " +
                         std::to_string(Le64At(pth, z64 + 40)) +
                         " bytes) lies outside the file (truncated file?)"});
  }
  {
    std::string m = pth;
    SetLe(&m, z64 + 32, uint64_t{1} << 40, 8);
    cases.push_back(
        {m, loss,
         "z.pth: zip central directory claims 1099511627776 entries but "
         "its size allows at most " +
             std::to_string(Le64At(pth, z64 + 40) / 46) + " (corrupt file?)"});
  }
  {
    std::string m = pth;
    SetLe(&m, pth.size() - 22 - 20 + 8, 12345, 8);  // locator -> nowhere
    cases.push_back(
        {m, loss,
         "z.pth: zip64 end of central directory record not found at "
         "offset 12345 (corrupt file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/0");
    SetLe(&m, h + 20, 0x7FFFFFFF, 4);
    SetLe(&m, h + 24, 0x7FFFFFFF, 4);
    cases.push_back(
        {m, loss,
         "z.pth: zip entry 'archive/data/0' extends past the end of the "
         "file (truncated file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/1");
    SetLe(&m, h + 42, 0x7FFFFFF0, 4);
    cases.push_back(
        {m, loss,
         "z.pth: zip entry 'archive/data/1' starts past the file's records "
         "(corrupt file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/1");
    SetLe(&m, h + 42, 64, 4);  // points into data.pkl's bytes
    cases.push_back({m, loss,
                     "z.pth: zip local header of 'archive/data/1' not found at "
                     "offset 64 (corrupt file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/1");
    SetLe(&m, h + 20, 3, 4);
    cases.push_back(
        {m, loss,
         "z.pth: zip stored entry 'archive/data/1' has compressed size 3 "
         "!= size 16 (corrupt file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data.pkl");
    SetLe(&m, h + 10, 8, 2);
    cases.push_back({m, absl::StatusCode::kInvalidArgument,
                     "z.pth: zip entry 'archive/data.pkl' is compressed "
                     "(method 8, deflate); "
                     "checkpoints must store their records uncompressed, as "
                     "torch.save does "
                     "(was the file re-zipped?)"});
  }
  {
    std::string m = pth;
    m[64 + 20] ^= 1;  // inside data.pkl (its data starts at 64)
    cases.push_back(
        {m, loss,
         "z.pth: zip entry 'archive/data.pkl' fails its CRC32 check "
         "(corrupt file?)"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/0");
    m[h + 46 + 13] = '1';  // rename data/0 -> data/1: a duplicate
    cases.push_back(
        {m, loss, "z.pth: zip archive has a duplicate entry 'archive/data/1'"});
  }
  {
    std::string m = pth;
    const size_t h = CentralHeader(m, "archive/data/0");
    m[h + 46 + 13] = '7';  // rename data/0 -> data/7: storage '0' missing
    cases.push_back(
        {m, loss,
         "z.pth: tensor 'a': storage record 'archive/data/0' is missing"});
  }
  for (const Case& c : cases) {
    absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(c.file, "z.pth");
    ASSERT_FALSE(ckpt.ok()) << c.message;
    EXPECT_EQ(ckpt.status().code(), c.code) << c.message;
    EXPECT_EQ(std::string(ckpt.status().message()), c.message);
  }

  // Damaged tensor data: found only with verify_checksums.
  std::string m = pth;
  const size_t b_data = m.find(FloatBytes({0.25f, 0.125f, 7.0f, 9.5f}));
  ASSERT_NE(b_data, std::string::npos);
  m[b_data + 1] ^= 0x40;
  EXPECT_TRUE(Checkpoint::FromBytes(m, "z.pth").ok());
  Checkpoint::Options verify;
  verify.verify_checksums = true;
  absl::StatusOr<Checkpoint> checked =
      Checkpoint::FromBytes(m, "z.pth", verify);
  ASSERT_FALSE(checked.ok());
  EXPECT_EQ(std::string(checked.status().message()),
            "z.pth: zip entry 'archive/data/1' fails its CRC32 check (corrupt "
            "file?)");
}

TEST(ErrorsTest, PickleErrors) {
  struct Case {
    std::string pickle;
    std::vector<std::pair<std::string, std::string>> storages;
    absl::StatusCode code;
    std::string message;
  };
  const auto invalid = absl::StatusCode::kInvalidArgument;
  const auto loss = absl::StatusCode::kDataLoss;
  const std::string prefix = "e.pth: archive/data.pkl: pickle offset ";
  const std::string f12 = FloatBytes(std::vector<float>(12, 1.0f));
  std::vector<Case> cases;
  {
    PickleWriter p;
    p.Global("os", "system");
    p.String("ls");
    p.EndTuple(1);
    p.Reduce();
    cases.push_back(
        {p.Finish(),
         {},
         invalid,
         prefix +
             "2: global 'os.system' is not allowed (only torch tensor/storage "
             "rebuild functions and collections.OrderedDict are; nothing was "
             "executed)"});
  }
  {
    PickleWriter p;
    p.EmptyDict();
    p.String("w");
    p.Tensor("ComplexFloatStorage", "0", 1, 0, {1}, {1});
    p.SetItem();
    cases.push_back(
        {p.Finish(),
         {{"0", f12}},
         invalid,
         prefix +
             "64: unsupported tensor storage type 'torch.ComplexFloatStorage' "
             "(supported: float32, float16, bfloat16, float64, int64, int32, "
             "int16, int8, uint8, bool)"});
  }
  {
    PickleWriter p;
    p.Global("torch.storage", "_load_from_bytes");
    cases.push_back(
        {p.Finish(),
         {},
         invalid,
         prefix +
             "2: storage pickled inline (torch.storage._load_from_bytes, the "
             "legacy torch.save format) is not supported; re-save the file "
             "with torch.save in the default zip format"});
  }
  cases.push_back({"\x80\x02}q\x00h\x05."s,
                   {},
                   loss,
                   prefix + "5: memo index 5 is not defined"});
  cases.push_back({"\x80\x02s.", {}, loss, prefix + "2: stack underflow"});
  cases.push_back({"\x80\x02}q\x00"s,
                   {},
                   loss,
                   prefix + "5: truncated data (no STOP opcode)"});
  cases.push_back(
      {"\x80\x02X\xff\xff\x00\x00"
       "ab."s,
       {},
       loss,
       prefix + "2: truncated data (65535 bytes needed, 3 left)"});
  cases.push_back({"\x80\x02\xff.",
                   {},
                   invalid,
                   prefix + "2: unsupported pickle opcode 0xff"});
  cases.push_back(
      {"\x80\x07}.", {}, invalid, prefix + "0: unsupported pickle protocol 7"});
  cases.push_back({"\x80\x02K\x01.",
                   {},
                   invalid,
                   "e.pth: the pickled object is a int, not a dict of tensors "
                   "(state_dict)"});
  {
    PickleWriter p;  // persistent id of the wrong form
    p.EmptyDict();
    p.String("w");
    p.String("storage");
    p.EndTuple(1);
    p.BinPersId();
    p.SetItem();
    cases.push_back(
        {p.Finish(),
         {},
         invalid,
         prefix + "30: unsupported persistent id (expected ('storage', storage "
                  "type, key, location, numel))"});
  }
  {
    PickleWriter p;  // view reaching past the storage
    p.EmptyDict();
    p.String("w");
    p.Tensor("FloatStorage", "0", 12, 10, {2, 2}, {2, 1});
    p.SetItem();
    cases.push_back({p.Finish(),
                     {{"0", f12}},
                     loss,
                     "e.pth: tensor 'w': shape [2, 2], stride [2, 1], offset "
                     "10 reaches past "
                     "the end of its storage (12 elements)"});
  }
  {
    PickleWriter p;  // stride overflow
    p.EmptyDict();
    p.String("w");
    p.Tensor("FloatStorage", "0", 12, 0, {3, 2}, {int64_t{1} << 62, 1});
    p.SetItem();
    cases.push_back(
        {p.Finish(),
         {{"0", f12}},
         loss,
         "e.pth: tensor 'w': shape [3, 2], stride [4611686018427387904, 1], "
         "offset 0 reaches past the end of its storage (12 elements)"});
  }
  {
    PickleWriter p;  // storage claims more than its record holds
    p.EmptyDict();
    p.String("w");
    p.Tensor("DoubleStorage", "0", 12, 0, {12}, {1});
    p.SetItem();
    cases.push_back({p.Finish(),
                     {{"0", f12}},
                     loss,
                     "e.pth: tensor 'w': storage '0' should hold 12 float64 "
                     "elements but its "
                     "record has 48 bytes"});
  }
  {
    PickleWriter p;  // numel overflow
    p.EmptyDict();
    p.String("w");
    p.Tensor("FloatStorage", "0", 12, 0, {int64_t{1} << 40, int64_t{1} << 40},
             {0, 0});
    p.SetItem();
    cases.push_back(
        {p.Finish(),
         {{"0", f12}},
         loss,
         "e.pth: tensor 'w': invalid shape [1099511627776, 1099511627776]"});
  }
  {
    PickleWriter p;  // a broadcast view far larger than the file
    p.EmptyDict();
    p.String("w");
    p.Tensor("FloatStorage", "0", 12, 0, {int64_t{1} << 40}, {0});
    p.SetItem();
    const std::string pickle = p.Finish();
    const size_t size = MakePth(pickle, {{"0", f12}}).size();
    cases.push_back({pickle,
                     {{"0", f12}},
                     invalid,
                     "e.pth: tensor 'w' is a strided view of 4398046511104 "
                     "bytes, too large "
                     "to copy for a file of " +
                         std::to_string(size) + " bytes"});
  }
  {
    PickleWriter p;  // nesting
    p.EmptyDict();
    for (int i = 0; i < 40; ++i) {
      p.String("k");
      p.EmptyDict();
    }
    for (int i = 0; i < 40; ++i) p.SetItem();
    cases.push_back({p.Finish(),
                     {},
                     invalid,
                     "e.pth: containers nested deeper than 32 levels"});
  }
  {
    // A list that contains itself.
    cases.push_back(
        {"\x80\x02]q\x00h\x00"
         "a."s,
         {},
         invalid,
         "e.pth: containers nested deeper than 32 levels"});
  }
  {
    // A DAG that doubles at each level: 2^30 paths from 60 objects.
    std::string pickle = "\x80\x02]q\x00"s;
    for (int i = 1; i <= 30; ++i) {
      pickle += "]q";
      pickle += static_cast<char>(i);
      pickle += "(h";
      pickle += static_cast<char>(i - 1);
      pickle += "h";
      pickle += static_cast<char>(i - 1);
      pickle += "e0";  // APPENDS, then pop (the list stays in the memo)
    }
    pickle += "h\x1e.";
    cases.push_back(
        {pickle,
         {},
         invalid,
         "e.pth: the pickled object graph is too large (shared or cyclic "
         "references?)"});
  }
  {
    PickleWriter p;
    p.EmptyDict();
    p.Mark();
    p.String("w");
    p.Tensor("FloatStorage", "0", 1, 0, {1}, {1});
    p.String("w");
    p.Tensor("FloatStorage", "0", 1, 0, {1}, {1});
    p.SetItems();
    cases.push_back({p.Finish(),
                     {{"0", f12}},
                     invalid,
                     "e.pth: duplicate tensor name 'w'"});
  }
  for (const Case& c : cases) {
    absl::StatusOr<Checkpoint> ckpt =
        Checkpoint::FromBytes(MakePth(c.pickle, c.storages), "e.pth");
    ASSERT_FALSE(ckpt.ok()) << c.message;
    EXPECT_EQ(ckpt.status().code(), c.code) << c.message;
    EXPECT_EQ(std::string(ckpt.status().message()), c.message);
  }
}

TEST(ErrorsTest, ArchiveLayout) {
  const std::string pkl = "\x80\x02}q\x00."s;
  absl::StatusOr<Checkpoint> no_pkl =
      Checkpoint::FromBytes(MakeZip({{"archive/other.txt", "x"}}), "a.zip");
  EXPECT_EQ(no_pkl.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(std::string(no_pkl.status().message()),
            "a.zip: zip archive without a data.pkl record (not a torch.save "
            "checkpoint)");
  absl::StatusOr<Checkpoint> two = Checkpoint::FromBytes(
      MakeZip({{"a/data.pkl", pkl}, {"b/data.pkl", pkl}}), "two.pth");
  EXPECT_EQ(
      std::string(two.status().message()),
      "two.pth: the zip archive holds several data.pkl records ('a/data.pkl', "
      "'b/data.pkl')");
  absl::StatusOr<Checkpoint> jit = Checkpoint::FromBytes(
      MakeZip({{"m/data.pkl", pkl}, {"m/constants.pkl", pkl}}), "m.pt");
  EXPECT_EQ(std::string(jit.status().message()),
            "m.pt: this is a TorchScript archive (torch.jit.save), not "
            "supported; save the "
            "model's state_dict() with torch.save");
  absl::StatusOr<Checkpoint> big_endian = Checkpoint::FromBytes(
      MakeZip({{"m/data.pkl", pkl}, {"m/byteorder", "big"}}), "be.pth");
  EXPECT_EQ(std::string(big_endian.status().message()),
            "be.pth: byte order 'big' is not supported (only little-endian)");
  absl::StatusOr<Checkpoint> little = Checkpoint::FromBytes(
      MakeZip({{"any-name/data.pkl", pkl}, {"any-name/byteorder", "little"}}),
      "le.pth");
  ASSERT_TRUE(little.ok()) << little.status();
  EXPECT_TRUE(little->tensors().empty());
  // An empty zip archive (only the end record).
  absl::StatusOr<Checkpoint> empty_zip =
      Checkpoint::FromBytes(MakeZip({}), "empty.zip");
  EXPECT_EQ(std::string(empty_zip.status().message()),
            "empty.zip: zip archive without a data.pkl record (not a "
            "torch.save checkpoint)");
}

TEST(WriterErrorsTest, InvalidTensors) {
  const std::string four = FloatBytes({1});
  const std::vector<TensorToWrite> dup = {
      Tensor("a", DType::kFloat32, {1}, four),
      Tensor("a", DType::kFloat32, {1}, four)};
  EXPECT_EQ(std::string(SerializePth(dup).status().message()),
            "duplicate name 'a'");
  EXPECT_EQ(std::string(SerializeSafetensors(dup).status().message()),
            "duplicate name 'a'");
  const std::vector<TensorToWrite> mismatch = {
      Tensor("m", DType::kFloat16, {3}, four)};
  EXPECT_EQ(std::string(SerializePth(mismatch).status().message()),
            "tensor 'm': shape [3] float16 needs 6 bytes, got 4");
  EXPECT_EQ(SerializeSafetensors(mismatch).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<TensorToWrite> null_data = {
      {"n", DType::kFloat32, {1}, nullptr, 4}};
  EXPECT_EQ(std::string(SerializePth(null_data).status().message()),
            "tensor 'n': null data");
  const std::vector<TensorToWrite> negative = {
      {"neg", DType::kFloat32, {-1}, nullptr, 0}};
  EXPECT_EQ(std::string(SerializePth(negative).status().message()),
            "tensor 'neg': invalid shape [-1]");
  const std::vector<TensorToWrite> meta = {
      Tensor("__metadata__", DType::kFloat32, {1}, four)};
  EXPECT_EQ(std::string(SerializeSafetensors(meta).status().message()),
            "'__metadata__' cannot be a tensor name");
  const std::vector<TensorToWrite> bad_utf8 = {
      Tensor("\xff", DType::kFloat32, {1}, four)};
  EXPECT_EQ(SerializeSafetensors(bad_utf8).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<TensorToWrite> ok = {
      Tensor("a", DType::kFloat32, {1}, four)};
  const std::vector<ScalarToWrite> clash = {{"a", int64_t{1}}};
  EXPECT_EQ(std::string(SerializePth(ok, clash).status().message()),
            "duplicate name 'a'");
  EXPECT_EQ(std::string(SerializePth(ok, {}, "a/b").status().message()),
            "invalid archive name 'a/b'");
  // An empty dict is a valid checkpoint.
  absl::StatusOr<std::string> empty = SerializePth({});
  ASSERT_TRUE(empty.ok());
  absl::StatusOr<Checkpoint> ckpt = Checkpoint::FromBytes(*empty, "empty.pth");
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  EXPECT_TRUE(ckpt->tensors().empty());
}

}  // namespace
}  // namespace rwkv::engine
