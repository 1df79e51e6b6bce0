// make_fuzz_seeds OUT_DIR: writes the seed corpus of every fuzz target of
// tests/fuzz into OUT_DIR/<target>/ (small valid files of each format, and
// small instances of issue 15's hostile shapes), deterministically. The
// committed corpus, tests/fuzz/corpus/, is this program's output; the test
// fuzz_seeds_up_to_date checks that they agree. Regenerate with
//   build/bin/make_fuzz_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "engine/checkpoint_writer.h"
#include "engine/pickle_writer.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "engine/zip_reader.h"
#include "engine/zip_writer.h"
#include "tests/testing/hostile_files.h"

namespace {

using rwkv::engine::DType;
using rwkv::engine::PickleWriter;
using rwkv::engine::ScalarToWrite;
using rwkv::engine::TensorToWrite;

std::filesystem::path g_out;

void Write(const std::string& target, const std::string& name,
           const std::string& bytes) {
  const std::filesystem::path dir = g_out / target;
  std::filesystem::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

std::string Unwrap(const std::string& zip_bytes, const std::string& record) {
  absl::StatusOr<rwkv::engine::ZipReader> zip = rwkv::engine::ZipReader::Parse(
      {reinterpret_cast<const uint8_t*>(zip_bytes.data()), zip_bytes.size()},
      "seed");
  const rwkv::engine::ZipReader::Entry* e = zip->Find(record);
  absl::StatusOr<absl::Span<const uint8_t>> b = zip->Read(*e, true);
  return std::string(reinterpret_cast<const char*>(b->data()), b->size());
}

const std::vector<float>& Floats() {
  static const std::vector<float> v = {0.5f,  -1.0f, 2.0f,  0.25f, 1.5f, -3.0f,
                                       0.0f,  4.0f,  -0.5f, 1.0f,  2.5f, -2.0f,
                                       0.75f, 3.0f,  -1.5f, 0.125f};
  return v;
}

std::vector<TensorToWrite> Tensors() {
  const std::vector<float>& f = Floats();
  return {{"blocks.0.att.key.weight", DType::kFloat32, {4, 4}, f.data(), 64},
          {"emb.weight", DType::kFloat32, {3}, f.data(), 12}};
}

void ZipSeeds() {
  Write(
      "zip_reader", "small.pth",
      *rwkv::engine::SerializePth(Tensors(), {{"format", std::string("pt")}}));
  std::string zip64;
  rwkv::engine::ZipWriter::Options o;
  o.zip64_threshold = 0;
  rwkv::engine::ZipWriter w(&zip64, o);
  (void)w.Add("archive/data.pkl", "\x80\x02}q\x00.");
  (void)w.Add("archive/data/0", std::string(16, 'x'));
  (void)w.Finish();
  Write("zip_reader", "zip64.pth", zip64);
  std::string empty;
  rwkv::engine::ZipWriter e(&empty);
  (void)e.Finish();
  Write("zip_reader", "empty.zip", empty);
}

// Pickles over the storages the pth fuzzer's archive provides: "0" (16
// floats) and "1" (3 floats).
void PickleSeeds() {
  const std::string small = *rwkv::engine::SerializePth(
      Tensors(), {{"n_layer", int64_t{2}}, {"lr", 0.5}, {"ok", true}});
  std::map<std::string, std::string> pickles;
  pickles["state_dict.pkl"] = Unwrap(small, "archive/data.pkl");
  {
    PickleWriter p;  // nested dicts, a list, a strided and a broadcast view
    p.EmptyDict();
    p.Mark();
    p.String("blocks");
    p.EmptyDict();
    p.Mark();
    p.String("0");
    p.Tensor("FloatStorage", "0", 16, 0, {4, 4}, {1, 4});
    p.String("1");
    p.Tensor("FloatStorage", "1", 3, 0, {2, 3}, {0, 1});
    p.SetItems();
    p.String("list");
    p.EmptyList();
    p.Mark();
    p.Int(7);
    p.String("x");
    p.None();
    p.Appends();
    p.SetItems();
    pickles["nested.pkl"] = p.Finish();
  }
  {
    PickleWriter p;  // collections.OrderedDict() with a half tensor
    p.Global("collections", "OrderedDict");
    p.BeginTuple(0);
    p.EndTuple(0);
    p.Reduce();
    p.Mark();
    p.String("h");
    p.Tensor("HalfStorage", "1", 6, 1, {2}, {1});
    p.SetItems();
    pickles["ordered_dict.pkl"] = p.Finish();
  }
  pickles["nested_keys.pkl"] = Unwrap(
      rwkv::testing::NestedSharedKeysPth({8, 3, 4, 0}), "archive/data.pkl");
  pickles["dict_copies.pkl"] =
      Unwrap(rwkv::testing::DictCopyBombPth(4, 3), "archive/data.pkl");
  pickles["many_objects.pkl"] =
      Unwrap(rwkv::testing::ValueCountBombPth(16), "archive/data.pkl");
  for (const auto& [name, bytes] : pickles) {
    Write("pickle_reader", name, bytes);
    Write("pth_reader", name, bytes);
  }
}

void SafetensorsSeeds() {
  Write("safetensors_reader", "small.safetensors",
        *rwkv::engine::SerializeSafetensors(Tensors(),
                                            {{"format", std::string("pt")}}));
  const std::string header =
      R"({"a":{"dtype":"F16","shape":[3],"data_offsets":[0,6]},)"
      R"("b":{"dtype":"F32","shape":[1,2],"data_offsets":[6,14],"x":[{}]}})";
  std::string misaligned(8, '\0');
  for (int i = 0; i < 8; ++i) {
    misaligned[i] = static_cast<char>(uint64_t{header.size()} >> (8 * i));
  }
  Write("safetensors_reader", "misaligned.safetensors",
        misaligned + header + std::string(14, '\x01'));
  Write("safetensors_reader", "header_bomb.safetensors",
        rwkv::testing::SafetensorsHeaderBomb(200));
}

void StateSeeds() {
  rwkv::engine::RandomModelSpec spec;  // the state fuzzer's model
  spec.n_layer = 2;
  spec.n_embd = 16;
  spec.vocab_size = 64;
  spec.seed = 5;
  rwkv::engine::EngineOptions options;
  options.num_threads = 1;
  auto engine = *rwkv::engine::RwkvEngine::CreateRandom(spec, options);
  rwkv::engine::State state = engine->NewState();
  const std::vector<int32_t> tokens = {1, 2, 3};
  (void)engine->Forward(tokens, state);
  using rwkv::engine::StateDtype;
  Write("state_file", "fp32.pt",
        *rwkv::engine::SerializeState(state, StateDtype::kFloat32));
  Write("state_file", "fp16.pt",
        *rwkv::engine::SerializeState(state, StateDtype::kFloat16));
  Write("state_file", "bf16.pt",
        *rwkv::engine::SerializeState(state, StateDtype::kBFloat16));
  // The same components as a .safetensors file without metadata.
  std::vector<std::vector<float>> values;
  std::vector<TensorToWrite> tensors;
  for (const std::string& name : state.ComponentNames()) {
    values.push_back(*state.ComponentValues(name));
  }
  const std::vector<std::string> names = state.ComponentNames();
  for (size_t i = 0; i < names.size(); ++i) {
    tensors.push_back({names[i],
                       DType::kFloat32,
                       {2, 16},
                       values[i].data(),
                       values[i].size() * sizeof(float)});
  }
  Write("state_file", "plain.safetensors",
        *rwkv::engine::SerializeSafetensors(tensors));
  values[3].assign(32, 3e38f);  // att_x_prev out of range: unhealthy
  tensors[3].data = values[3].data();
  Write("state_file", "unhealthy.pt", *rwkv::engine::SerializePth(tensors));
}

void TokenizerSeeds() {
  Write("bpe_tokenizer", "tiny.json", rwkv::testing::BpeTokenizerJson(300, 2));
  std::string rich = rwkv::testing::BpeTokenizerJson(256, 0);
  rich.replace(rich.find(R"("normalizer":null)"), 17,
               R"("normalizer":{"type":"NFC"})");
  rich.replace(rich.find(R"("merges":["a b"])"), 16, R"("merges":[["a","b"]])");
  rich.insert(1, R"("added_tokens":[{"id":257,"content":"<|endoftext|>",)"
                 R"("special":true,"normalized":false},{"id":258,)"
                 R"("content":"ab","single_word":true}],)");
  Write("bpe_tokenizer", "added_tokens.json", rich);
  std::string world = rwkv::testing::WorldVocabWithId(300);
  world += "301 '\\u00e9t\\xe9' 5\n302 b'\\xc3\\xa9\\x00' 3\n303 \"it's\" 4\n";
  Write("world_tokenizer", "small.txt", world);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: make_fuzz_seeds OUT_DIR\n";
    return 2;
  }
  g_out = argv[1];
  ZipSeeds();
  PickleSeeds();
  SafetensorsSeeds();
  StateSeeds();
  TokenizerSeeds();
  return 0;
}
