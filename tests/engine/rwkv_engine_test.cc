// RwkvEngine on fixtures built here (no shared files needed): the three
// forward entry points agree, states are independent, and every bad
// checkpoint or call gives a clear error instead of a crash.
#include "engine/rwkv_engine.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/quantize_checkpoint.h"
#include "tests/testing/engine_test_util.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::MaxAbsDiff;
using ::rwkv::testing::RandomTokens;

using ::testing::HasSubstr;

EngineOptions OneThread() {
  EngineOptions o;
  o.num_threads = 1;
  return o;
}

std::unique_ptr<RwkvEngine> RandomEngine(uint64_t seed = 7) {
  RandomModelSpec spec;
  spec.n_layer = 3;
  spec.n_embd = 64;
  spec.vocab_size = 300;
  spec.ffn_dim = 160;
  spec.seed = seed;
  auto e = RwkvEngine::CreateRandom(spec, OneThread());
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

TEST(RwkvEngineTest, RandomModelConfig) {
  auto e = RandomEngine();
  const ModelConfig& c = e->config();
  EXPECT_EQ(c.arch, Architecture::kRwkv4);
  EXPECT_EQ(c.n_layer, 3);
  EXPECT_EQ(c.n_embd, 64);
  EXPECT_EQ(c.vocab_size, 300);
  EXPECT_EQ(c.ffn_dim, 160);
  EXPECT_EQ(c.state_bytes_fp32, 5 * 3 * 64 * 4);
  State s = e->NewState();
  EXPECT_EQ(s.SizeBytes(), c.state_bytes_fp32);
  EXPECT_EQ(s.token_count(), 0);
  auto pp = s.ComponentValues("att_pp");
  ASSERT_TRUE(pp.ok());
  EXPECT_FLOAT_EQ((*pp)[0], -1e30f);
}

TEST(RwkvEngineTest, SameSeedSameModelDifferentSeedDifferentModel) {
  auto a = RandomEngine(1), b = RandomEngine(1), c = RandomEngine(2);
  State sa = a->NewState(), sb = b->NewState(), sc = c->NewState();
  auto la = a->Forward({1, 2, 3}, sa), lb = b->Forward({1, 2, 3}, sb),
       lc = c->Forward({1, 2, 3}, sc);
  ASSERT_TRUE(la.ok() && lb.ok() && lc.ok());
  EXPECT_EQ(la->values(), lb->values());
  EXPECT_GT(MaxAbsDiff(la->Row(0), lc->Row(0)), 0.1f);
}

// Sequence mode == token-by-token single steps.
TEST(RwkvEngineTest, SequenceModeEqualsSingleSteps) {
  auto e = RandomEngine();
  const std::vector<int32_t> prompt = RandomTokens(57, 1, 300);
  State seq = e->NewState(), serial = e->NewState();
  auto l_seq = e->Forward(prompt, seq);
  ASSERT_TRUE(l_seq.ok());
  absl::StatusOr<Logits> l_serial;
  for (int32_t t : prompt) {
    l_serial = e->Forward({t}, serial);
    ASSERT_TRUE(l_serial.ok());
  }
  EXPECT_LT(MaxAbsDiff(l_seq->Row(0), l_serial->Row(0)), 1e-4f);
  EXPECT_EQ(seq.token_count(), 57);
  EXPECT_EQ(serial.token_count(), 57);
  for (const std::string& name : seq.ComponentNames()) {
    auto a = seq.ComponentValues(name), b = serial.ComponentValues(name);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_LT(MaxAbsDiff(*a, *b), 1e-4f) << name;
  }
  // Prompt A then B == A+B in one call.
  State split = e->NewState();
  ASSERT_TRUE(
      e->Forward(absl::MakeConstSpan(prompt).subspan(0, 20), split).ok());
  auto l_split = e->Forward(absl::MakeConstSpan(prompt).subspan(20), split);
  ASSERT_TRUE(l_split.ok());
  EXPECT_LT(MaxAbsDiff(l_seq->Row(0), l_split->Row(0)), 1e-4f);
}

// Batched step over states with different histories == each one alone.
TEST(RwkvEngineTest, BatchedStepEqualsSeparateSteps) {
  auto e = RandomEngine();
  constexpr int kBatch = 6;
  std::vector<State> batch, alone;
  std::vector<int32_t> next;
  for (int b = 0; b < kBatch; ++b) {
    State s = e->NewState();
    if (b > 0) {
      ASSERT_TRUE(e->Forward(RandomTokens(3 * b, b, 300), s).ok());
    }
    alone.push_back(s.Clone());
    batch.push_back(std::move(s));
    next.push_back(static_cast<int32_t>((b * 37) % 300));
  }
  std::vector<State*> ptrs;
  for (State& s : batch) ptrs.push_back(&s);
  for (int step = 0; step < 4; ++step) {
    auto lb = e->ForwardBatch(next, ptrs);
    ASSERT_TRUE(lb.ok()) << lb.status();
    ASSERT_EQ(lb->batch_size(), kBatch);
    for (int b = 0; b < kBatch; ++b) {
      auto la = e->Forward({next[b]}, alone[b]);
      ASSERT_TRUE(la.ok());
      EXPECT_LT(MaxAbsDiff(lb->Row(b), la->Row(0)), 1e-4f) << "row " << b;
      next[b] = la->ArgMax(0);
    }
  }
}

TEST(RwkvEngineTest, CloneIsIndependent) {
  auto e = RandomEngine();
  State a = e->NewState();
  ASSERT_TRUE(e->Forward({5, 6, 7}, a).ok());
  State b = a.Clone();
  auto before = b.ComponentValues("att_aa");
  ASSERT_TRUE(e->Forward({8, 9}, a).ok());
  EXPECT_EQ(*b.ComponentValues("att_aa"), *before);
  EXPECT_EQ(b.token_count(), 3);
  EXPECT_EQ(a.token_count(), 5);
}

TEST(RwkvEngineTest, BadCallsAreErrorsAndLeaveStateUnchanged) {
  auto e = RandomEngine();
  State s = e->NewState();
  ASSERT_TRUE(e->Forward({1, 2}, s).ok());
  auto before = s.ComponentValues("att_x_prev");

  auto r = e->Forward({}, s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  r = e->Forward({1, 300}, s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("token id 300"));
  r = e->Forward({-1}, s);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  State empty;
  r = e->Forward({1}, empty);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  RandomModelSpec other;
  other.n_embd = 32;
  auto e2 = RwkvEngine::CreateRandom(other, OneThread());
  ASSERT_TRUE(e2.ok());
  State foreign = (*e2)->NewState();
  r = e->Forward({1}, foreign);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  State* dup[] = {&s, &s};
  r = e->ForwardBatch({1, 2}, dup);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  State* one[] = {&s};
  r = e->ForwardBatch({1, 2}, one);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  State* mixed[] = {&s, &foreign};
  r = e->ForwardBatch({1, 2}, mixed);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);

  EXPECT_EQ(*s.ComponentValues("att_x_prev"), *before);
  EXPECT_EQ(s.token_count(), 2);
}

TEST(RwkvEngineTest, BadOptions) {
  EngineOptions o = OneThread();
  o.device = "tpu";
  EXPECT_EQ(RwkvEngine::CreateRandom({}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = OneThread();
  o.dtype = "int4";
  EXPECT_EQ(RwkvEngine::CreateRandom({}, o).status().code(),
            absl::StatusCode::kInvalidArgument);
  o = OneThread();
  o.dtype = "fp16";  // CPU: no fp16 matmul
  EXPECT_THAT(std::string(RwkvEngine::CreateRandom({}, o).status().message()),
              HasSubstr("fp16 needs a CUDA device"));
  o = OneThread();
  EXPECT_THAT(std::string(RwkvEngine::Create(o).status().message()),
              HasSubstr("no model file"));
}

// --- Checkpoint fixtures -----------------------------------------------------

struct FakeTensor {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
using TensorMap = std::map<std::string, FakeTensor>;

// A small RWKV-4 state dict with BlinkDL key names and random values.
TensorMap MakeRwkv4(int L, int C, int V, int F, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> n(0.0f, 0.3f);
  TensorMap m;
  auto add = [&](const std::string& name, std::vector<int64_t> shape) {
    int64_t numel = 1;
    for (int64_t d : shape) numel *= d;
    std::vector<float> v(numel);
    for (float& x : v) x = n(rng);
    m[name] = FakeTensor{std::move(shape), std::move(v)};
  };
  add("emb.weight", {V, C});
  add("blocks.0.ln0.weight", {C});
  add("blocks.0.ln0.bias", {C});
  for (int i = 0; i < L; ++i) {
    const std::string p = "blocks." + std::to_string(i) + ".";
    for (const char* k : {"ln1.weight", "ln1.bias", "ln2.weight", "ln2.bias",
                          "att.time_decay", "att.time_first"}) {
      add(p + k, {C});
    }
    for (const char* k : {"att.time_mix_k", "att.time_mix_v", "att.time_mix_r",
                          "ffn.time_mix_k", "ffn.time_mix_r"}) {
      add(p + k, {1, 1, C});
    }
    for (const char* k :
         {"att.key.weight", "att.value.weight", "att.receptance.weight",
          "att.output.weight", "ffn.receptance.weight"}) {
      add(p + k, {C, C});
    }
    add(p + "ffn.key.weight", {F, C});
    add(p + "ffn.value.weight", {C, F});
  }
  add("ln_out.weight", {C});
  add("ln_out.bias", {C});
  add("head.weight", {V, C});
  return m;
}

class CheckpointFixture : public ::testing::Test {
 protected:
  std::string Write(const TensorMap& m, const std::string& name, bool pth) {
    std::vector<TensorToWrite> tensors;
    for (const auto& [k, t] : m) {
      tensors.push_back(TensorToWrite{k, DType::kFloat32, t.shape,
                                      t.values.data(), t.values.size() * 4});
    }
    auto bytes =
        pth ? SerializePth(tensors) : SerializeSafetensors(tensors, {});
    EXPECT_TRUE(bytes.ok()) << bytes.status();
    return WriteRaw(*bytes, name);
  }
  std::string WriteRaw(const std::string& bytes, const std::string& name) {
    const std::string path = (dir_ / name).string();
    EXPECT_TRUE(WriteFileAtomically(path, bytes).ok());
    return path;
  }
  absl::StatusOr<std::unique_ptr<RwkvEngine>> Open(const std::string& path) {
    EngineOptions o = OneThread();
    o.model_path = path;
    return RwkvEngine::Create(o);
  }
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("rwkv_engine_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  std::filesystem::path dir_;
};

TEST_F(CheckpointFixture, PthAndSafetensorsLoadIdentically) {
  const TensorMap m = MakeRwkv4(2, 32, 256, 64, 3);
  auto a = Open(Write(m, "m.pth", true));
  auto b = Open(Write(m, "m.safetensors", false));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ((*a)->config().n_layer, 2);
  EXPECT_EQ((*a)->config().n_embd, 32);
  EXPECT_EQ((*a)->config().ffn_dim, 64);
  EXPECT_EQ((*a)->config().vocab_size, 256);
  EXPECT_EQ((*a)->config().n_params,
            2 * 256 * 32 + 4 * 32 +
                2 * (9 * 32 + 5 * 32 * 32 + 2 * 64 * 32 + 2 * 32));
  State sa = (*a)->NewState(), sb = (*b)->NewState();
  auto la = (*a)->Forward({1, 2, 3}, sa), lb = (*b)->Forward({1, 2, 3}, sb);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->values(), lb->values());
}

TEST_F(CheckpointFixture, MissingTensorIsNamed) {
  TensorMap m = MakeRwkv4(2, 32, 256, 64, 3);
  m.erase("blocks.1.att.value.weight");
  auto e = Open(Write(m, "m.safetensors", false));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(e.status().message()),
              HasSubstr("missing tensor 'blocks.1.att.value.weight'"));
}

TEST_F(CheckpointFixture, WrongShapeIsNamed) {
  TensorMap m = MakeRwkv4(2, 32, 256, 64, 3);
  m["blocks.1.ffn.value.weight"].shape = {64, 32};  // transposed
  auto e = Open(Write(m, "m.pth", true));
  EXPECT_THAT(
      std::string(e.status().message()),
      HasSubstr(
          "'blocks.1.ffn.value.weight' has shape [64, 32], expected [32, 64]"));
  m = MakeRwkv4(2, 32, 256, 64, 3);
  m["head.weight"] = FakeTensor{{100, 32}, std::vector<float>(3200, 0.1f)};
  e = Open(Write(m, "m2.pth", true));
  EXPECT_THAT(std::string(e.status().message()),
              HasSubstr("'head.weight' has shape"));
}

TEST_F(CheckpointFixture, NonFiniteWeightsAreRejected) {
  TensorMap m = MakeRwkv4(2, 32, 256, 64, 3);
  m["blocks.0.att.key.weight"].values[17] = std::nanf("");
  auto e = Open(Write(m, "m.safetensors", false));
  EXPECT_THAT(std::string(e.status().message()),
              HasSubstr("'blocks.0.att.key.weight' contains NaN"));
}

TEST_F(CheckpointFixture, MissingLayerAndUnknownKeys) {
  TensorMap m = MakeRwkv4(3, 16, 256, 32, 3);
  for (auto it = m.begin(); it != m.end();) {
    it = it->first.rfind("blocks.1.", 0) == 0 ? m.erase(it) : std::next(it);
  }
  EXPECT_THAT(std::string(Open(Write(m, "a.pth", true)).status().message()),
              HasSubstr("layer 1 is missing"));
  m = MakeRwkv4(1, 16, 256, 32, 3);
  m["blocks.0.att.gate.weight"] = FakeTensor{{16, 16}, std::vector<float>(256)};
  EXPECT_THAT(std::string(Open(Write(m, "b.pth", true)).status().message()),
              HasSubstr("unexpected tensor 'blocks.0.att.gate.weight'"));
}

TEST_F(CheckpointFixture, NotAnRwkvModel) {
  TensorMap m;
  m["conv1.weight"] = FakeTensor{{4, 4}, std::vector<float>(16)};
  EXPECT_THAT(
      std::string(Open(Write(m, "resnet.pth", true)).status().message()),
      HasSubstr("not an RWKV checkpoint"));
  TensorMap v5 = MakeRwkv4(1, 16, 256, 32, 3);
  v5.erase("blocks.0.att.time_first");
  v5["blocks.0.att.time_faaaa"] = FakeTensor{{2, 8}, std::vector<float>(16)};
  auto e = Open(Write(v5, "v5.pth", true));
  EXPECT_EQ(e.status().code(), absl::StatusCode::kUnimplemented);
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("RWKV-5/6"));
}

// --- Quantized checkpoints (rwkv-cli quantize) -------------------------------

// A .safetensors made from `src`'s tensors after `edit` changes the list.
std::string Rewrite(
    const Checkpoint& src,
    const std::function<void(std::vector<TensorToWrite>&)>& edit) {
  std::vector<TensorToWrite> t;
  for (const CheckpointTensor& c : src.tensors()) {
    t.push_back(TensorToWrite{c.name, c.dtype, c.shape, c.data, c.nbytes});
  }
  edit(t);
  auto bytes = SerializeSafetensors(t, {});
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return bytes.ok() ? *bytes : "";
}

TEST_F(CheckpointFixture, QuantizedFileRunsLikeInt8AtLoad) {
  const TensorMap m = MakeRwkv4(2, 64, 256, 160, 5);  // K = 160: 2 groups
  const std::string src = Write(m, "m.pth", true);
  const std::string q = (dir_ / "q.safetensors").string();
  auto report = QuantizeCheckpoint(src, q, "int8");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->architecture, "rwkv4");
  EXPECT_EQ(report->matrices, 2 * 7 + 1);
  EXPECT_EQ(report->tensors, static_cast<int64_t>(m.size()) + 15);
  auto ckpt = Checkpoint::Open(q);
  ASSERT_TRUE(ckpt.ok()) << ckpt.status();
  const CheckpointTensor* ffn_value = ckpt->Find("blocks.1.ffn.value.weight");
  const CheckpointTensor* scale = ckpt->Find("blocks.1.ffn.value.weight_scale");
  ASSERT_TRUE(ffn_value != nullptr && scale != nullptr);
  EXPECT_EQ(ffn_value->dtype, DType::kInt8);
  EXPECT_EQ(scale->dtype, DType::kFloat32);
  EXPECT_EQ(scale->shape, (std::vector<int64_t>{64, 2}));
  EXPECT_EQ(ckpt->Find("blocks.0.ln1.weight")->dtype, DType::kFloat32);

  EngineOptions o = OneThread();
  o.model_path = src;
  o.dtype = "int8";
  auto at_load = RwkvEngine::Create(o);
  auto file = Open(q);  // dtype "auto": int8
  ASSERT_TRUE(at_load.ok() && file.ok()) << file.status();
  EXPECT_EQ((*file)->dtype(), "int8");
  EXPECT_EQ((*file)->config().fingerprint, (*at_load)->config().fingerprint);
  o.dtype = "fp32";
  auto f32 = RwkvEngine::Create(o);
  ASSERT_TRUE(f32.ok());
  EXPECT_EQ((*f32)->config().fingerprint, (*file)->config().fingerprint);
  State a = (*at_load)->NewState(), b = (*file)->NewState(),
        c = (*f32)->NewState();
  const std::vector<int32_t> prompt = RandomTokens(20, 6, 256);
  auto la = (*at_load)->Forward(prompt, a);
  auto lb = (*file)->Forward(prompt, b);
  auto lc = (*f32)->Forward(prompt, c);
  ASSERT_TRUE(la.ok() && lb.ok() && lc.ok());
  EXPECT_EQ(la->values(), lb->values());
  const float d = MaxAbsDiff(la->Row(0), lc->Row(0));
  EXPECT_GT(d, 0.0f);
  EXPECT_LT(d, 0.05f);
  // The same file as fp32: dequantized weights, fp32 compute.
  o.model_path = q;
  o.dtype = "fp32";
  auto deq = RwkvEngine::Create(o);
  ASSERT_TRUE(deq.ok()) << deq.status();
  State e = (*deq)->NewState();
  auto le = (*deq)->Forward(prompt, e);
  ASSERT_TRUE(le.ok());
  EXPECT_LT(MaxAbsDiff(le->Row(0), la->Row(0)), 1e-4f);
}

TEST_F(CheckpointFixture, MalformedInt8TensorsAreNamed) {
  const TensorMap m = MakeRwkv4(1, 32, 256, 64, 7);
  const std::string src = Write(m, "m.safetensors", false);
  const std::string q = (dir_ / "q.safetensors").string();
  ASSERT_TRUE(QuantizeCheckpoint(src, q, "int8").ok());
  auto ckpt = Checkpoint::Open(q);
  ASSERT_TRUE(ckpt.ok());
  auto plain = Checkpoint::Open(src);
  ASSERT_TRUE(plain.ok());
  const std::string key = "blocks.0.att.key.weight";
  std::vector<float> bad_scales(32, 0.01f);
  std::vector<int8_t> ln_q(32, 1);
  std::vector<uint16_t> half(32, 0x3c00);
  struct Case {
    const Checkpoint* base;
    std::function<void(std::vector<TensorToWrite>&)> edit;
    std::string message;
  };
  auto find = [](std::vector<TensorToWrite>& t, const std::string& name) {
    for (TensorToWrite& x : t) {
      if (x.name == name) return &x;
    }
    ADD_FAILURE() << "no " << name;
    return &t.front();
  };
  const std::vector<Case> cases = {
      {&*ckpt,
       [&](auto& t) {
         t.erase(std::remove_if(t.begin(), t.end(),
                                [&](const TensorToWrite& x) {
                                  return x.name == key + "_scale";
                                }),
                 t.end());
       },
       "'blocks.0.att.key.weight' is int8 but its scales "
       "'blocks.0.att.key.weight_scale'"},
      {&*ckpt,
       [&](auto& t) {
         TensorToWrite* s = find(t, key + "_scale");
         s->shape = {16, 2};
       },
       "expected float32 [32, 1]"},
      {&*ckpt,
       [&](auto& t) {
         TensorToWrite* s = find(t, key + "_scale");
         s->dtype = DType::kFloat16;
         s->data = half.data();
         s->nbytes = 64;
       },
       "are float16 [32, 1], expected float32"},
      {&*ckpt,
       [&](auto& t) {
         bad_scales[3] = -1.0f;
         find(t, key + "_scale")->data = bad_scales.data();
       },
       "contain negative, NaN or infinite values"},
      {&*plain,
       [&](auto& t) {
         t.push_back(TensorToWrite{
             key + "_scale", DType::kFloat32, {32, 1}, bad_scales.data(), 128});
       },
       "holds int8 scales, but 'blocks.0.att.key.weight' is float32"},
      {&*plain,
       [&](auto& t) {
         TensorToWrite* ln = find(t, "blocks.0.ln1.weight");
         ln->dtype = DType::kInt8;
         ln->data = ln_q.data();
         ln->nbytes = 32;
       },
       "int8 only for the large matrices"},
      {&*plain,
       [&](auto& t) {
         t.push_back(TensorToWrite{"blocks.0.ln1.weight_scale",
                                   DType::kFloat32,
                                   {32, 1},
                                   bad_scales.data(),
                                   128});
       },
       "unexpected tensor 'blocks.0.ln1.weight_scale'"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string path =
        WriteRaw(Rewrite(*cases[i].base, cases[i].edit),
                 "bad" + std::to_string(i) + ".safetensors");
    for (const char* dtype : {"int8", "fp32"}) {
      EngineOptions o = OneThread();
      o.model_path = path;
      o.dtype = dtype;
      auto e = RwkvEngine::Create(o);
      ASSERT_FALSE(e.ok()) << "case " << i;
      EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(e.status().message()),
                  HasSubstr(cases[i].message))
          << "case " << i;
      EXPECT_THAT(std::string(e.status().message()), HasSubstr(path));
    }
  }
  // Quantizing needs an RWKV checkpoint, a known dtype and an output.
  EXPECT_FALSE(QuantizeCheckpoint(src, q + "2", "int4").ok());
  EXPECT_FALSE(QuantizeCheckpoint(src, "", "int8").ok());
  auto garbage =
      QuantizeCheckpoint(WriteRaw("junk", "junk.bin"), q + "3", "int8");
  ASSERT_FALSE(garbage.ok());
  EXPECT_THAT(std::string(garbage.status().message()), HasSubstr("junk.bin"));
}

TEST_F(CheckpointFixture, MissingTruncatedAndGarbageFiles) {
  auto e = Open((dir_ / "nope.pth").string());
  EXPECT_FALSE(e.ok());
  EXPECT_THAT(std::string(e.status().message()), HasSubstr("nope.pth"));
  const TensorMap m = MakeRwkv4(1, 16, 256, 32, 3);
  const std::string path = Write(m, "full.pth", true);
  std::string bytes;
  {
    std::ifstream in(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), {});
  }
  for (size_t cut :
       {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    auto t = Open(WriteRaw(bytes.substr(0, cut), "cut.pth"));
    EXPECT_FALSE(t.ok()) << "cut at " << cut;
    EXPECT_THAT(std::string(t.status().message()), HasSubstr("cut.pth"));
  }
  auto g = Open(WriteRaw("this is not a model at all", "garbage.bin"));
  EXPECT_FALSE(g.ok());
  EXPECT_THAT(std::string(g.status().message()), HasSubstr("garbage.bin"));
}

}  // namespace
}  // namespace rwkv::engine
