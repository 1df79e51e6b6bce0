// RWKV-7 (x070) in the engine: parity with ChatRWKV's reference outputs for
// ../shared/models/tiny-rwkv7-834K (skipped when that folder is absent):
// logits within 1e-4, greedy continuations identical, the state after the
// prompt equal to the reference state, continuing from the Python-saved state
// fixture, .pth == .safetensors, fp16/bf16 weight files; and, on random
// multi-head models (no shared data needed): single step vs sequence vs
// batched agreement, the state toolkit on the RWKV-7 schema, the prefix cache,
// and clear errors for malformed RWKV-7 checkpoints. The parity and mode
// cases run on $RWKV_TEST_DEVICE (CPU by default; tests/testing/
// test_device.h); the state toolkit cases and the CPU bf16 case on the CPU.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/prefix_cache.h"
#include "engine/prefix_forward.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "engine/state_inspect.h"
#include "engine/state_ops.h"
#include "tests/testing/engine_test_util.h"
#include "tests/testing/reference_outputs.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/test_device.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::Ints;
using ::rwkv::testing::MaxAbsDiff;
using ::rwkv::testing::MaxAbsDiffJson;
using ::rwkv::testing::RandomTokens;
using ::rwkv::testing::Refs;
using ::rwkv::testing::TestDevice;
using ::rwkv::testing::ToBf16;
using ::rwkv::testing::ToFp16;
using ::rwkv::testing::Values;

using json = nlohmann::json;
using ::testing::HasSubstr;

constexpr const char* kModel = "tiny-rwkv7-834K";

std::unique_ptr<RwkvEngine> Load(const std::string& path,
                                 const std::string& dtype = "fp32") {
  EngineOptions opts;
  opts.model_path = path;
  opts.device = TestDevice();
  opts.num_threads = 1;
  opts.dtype = dtype;
  auto engine = RwkvEngine::Create(opts);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

std::unique_ptr<RwkvEngine> RandomV7(uint64_t seed = 5, int embd = 64,
                                     int head_size = 16, int layers = 3,
                                     const std::string& device = "cpu") {
  RandomModelSpec spec;
  spec.arch = Architecture::kRwkv7;
  spec.n_layer = layers;
  spec.n_embd = embd;
  spec.head_size = head_size;
  spec.vocab_size = 256;
  spec.seed = seed;
  EngineOptions o;
  o.device = device;
  o.num_threads = 1;
  auto e = RwkvEngine::CreateRandom(spec, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

// Flattens a nested JSON array of numbers.
void Flatten(const json& j, std::vector<float>& out) {
  if (j.is_array()) {
    for (const auto& x : j) Flatten(x, out);
  } else {
    out.push_back(j.get<float>());
  }
}

// Greedy decoding from `logits`/`state`, compared with the reference where
// its top-2 margin is above our tolerance.
void ExpectGreedy(RwkvEngine& engine, State& state, Logits logits,
                  const json& want_tokens, const json& margins) {
  const std::vector<int32_t> want = Ints(want_tokens);
  for (size_t i = 0; i < want.size(); ++i) {
    if (margins[i].get<float>() < 2e-4f) break;
    const int32_t tok = logits.ArgMax(0);
    ASSERT_EQ(tok, want[i]) << "greedy step " << i;
    auto next = engine.Forward({tok}, state);
    ASSERT_TRUE(next.ok()) << next.status();
    logits = *std::move(next);
  }
}

TEST(Rwkv7ParityTest, LogitsGreedyAndStateMatchReference) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  const json& model = Refs()["models"][kModel];
  RWKV_REQUIRE_SHARED(path, "models/" + model["file"].get<std::string>());
  auto engine = Load(path);
  ASSERT_NE(engine, nullptr);
  const ModelConfig& c = engine->config();
  EXPECT_EQ(c.arch, Architecture::kRwkv7);
  EXPECT_EQ(c.n_layer, model["dims"]["n_layer"].get<int>());
  EXPECT_EQ(c.n_embd, model["dims"]["n_embd"].get<int>());
  EXPECT_EQ(c.n_head, model["dims"]["n_head"].get<int>());
  EXPECT_EQ(c.head_size, model["dims"]["head_size"].get<int>());
  EXPECT_EQ(c.ffn_dim, model["dims"]["ffn_dim"].get<int>());
  EXPECT_EQ(c.vocab_size, 256);
  EXPECT_EQ(c.n_params, 829888);
  EXPECT_EQ(c.state_bytes_fp32,
            4 * (2 * c.n_layer * c.n_embd +
                 c.n_layer * c.n_head * c.head_size * c.head_size));
  for (const auto& [case_name, cs] : model["cases"].items()) {
    SCOPED_TRACE(case_name);
    State state = engine->NewState();
    auto logits = engine->Forward(Ints(cs["prompt_tokens"]), state);
    ASSERT_TRUE(logits.ok()) << logits.status();
    const float diff = MaxAbsDiffJson(logits->Row(0), cs["logits"]);
    std::printf("[ measured ] %s on %s, case %s: max |delta logit| = %.3g\n",
                kModel, TestDevice().c_str(), case_name.c_str(), diff);
    EXPECT_LT(diff, 1e-4f);

    // State after the prompt: ChatRWKV's flat list, per layer
    // [att_x_prev, att_kv (H, N, N: [value, key]), ffn_x_prev].
    const char* names[] = {"att_x_prev", "att_kv", "ffn_x_prev"};
    for (int j = 0; j < 3; ++j) {
      const std::vector<float> got = Values(state, names[j]);
      const size_t per_layer = got.size() / c.n_layer;
      for (int l = 0; l < c.n_layer; ++l) {
        std::vector<float> want;
        Flatten(cs["state"][3 * l + j], want);
        ASSERT_EQ(want.size(), per_layer) << names[j];
        float m = 0;
        for (size_t i = 0; i < per_layer; ++i) {
          m = std::max(m, std::abs(got[l * per_layer + i] - want[i]) /
                              std::max(1.0f, std::abs(want[i])));
        }
        EXPECT_LT(m, 1e-4f) << names[j] << " layer " << l;
      }
    }
    ExpectGreedy(*engine, state, *std::move(logits), cs["greedy_tokens"],
                 cs["greedy_margins"]);
  }
}

TEST(Rwkv7ParityTest, ContinuesFromPythonStateFixture) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  const json* fixture = nullptr;
  for (const auto& f : Refs()["state_fixtures"]) {
    if (f["model"] == kModel) fixture = &f;
  }
  ASSERT_NE(fixture, nullptr);
  RWKV_REQUIRE_SHARED(state_path,
                      "models/" + (*fixture)["file"].get<std::string>());
  RWKV_REQUIRE_SHARED(path, "models/tiny-rwkv7-834K.pth");
  auto engine = Load(path);
  ASSERT_NE(engine, nullptr);
  StateFileInfo info;
  auto standalone = LoadStateFileStandalone(state_path, &info);
  ASSERT_TRUE(standalone.ok()) << standalone.status();
  EXPECT_EQ(info.arch, Architecture::kRwkv7);
  EXPECT_EQ(info.format_version, 0);
  auto state = LoadStateFile(state_path, engine->model());
  ASSERT_TRUE(state.ok()) << state.status();
  // The fixture holds the state after the hello prompt: the same as ours.
  State ours = engine->NewState();
  ASSERT_TRUE(engine->Forward(Ints((*fixture)["prompt_tokens"]), ours).ok());
  auto dist = DistanceBetween(*state, ours);
  ASSERT_TRUE(dist.ok()) << dist.status();
  EXPECT_LT(dist->total, 1e-3);

  auto logits =
      engine->Forward(Ints((*fixture)["continuation_tokens"]), *state);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const float diff = MaxAbsDiffJson(logits->Row(0), (*fixture)["logits"]);
  std::printf(
      "[ measured ] state fixture continuation: max |delta logit| = "
      "%.3g\n",
      diff);
  EXPECT_LT(diff, 1e-4f);
  ExpectGreedy(*engine, *state, *std::move(logits), (*fixture)["greedy_tokens"],
               (*fixture)["greedy_margins"]);
}

TEST(Rwkv7ParityTest, SafetensorsEqualsPth) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  const json& model = Refs()["models"][kModel];
  RWKV_REQUIRE_SHARED(pth, "models/" + model["file"].get<std::string>());
  RWKV_REQUIRE_SHARED(st, "models/" + model["safetensors"].get<std::string>());
  auto a = Load(pth), b = Load(st);
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->config().fingerprint, b->config().fingerprint);
  const std::vector<int32_t> prompt =
      Ints(model["cases"]["hello"]["prompt_tokens"]);
  State sa = a->NewState(), sb = b->NewState();
  auto la = a->Forward(prompt, sa), lb = b->Forward(prompt, sb);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->values(), lb->values());  // same fp32 weights: bit identical
}

// Prompts the reference has not seen: sequence mode vs one token at a time
// vs the batched step, on the tiny model (1 head of 64) and on a random model
// with 4 heads of 16.
void ExpectModesAgree(RwkvEngine& e, float tol) {
  const std::vector<int32_t> prompt = RandomTokens(40, 3);
  State seq = e.NewState();
  auto l_seq = e.Forward(prompt, seq);
  ASSERT_TRUE(l_seq.ok()) << l_seq.status();
  State one = e.NewState();
  absl::StatusOr<Logits> l_one;
  for (int32_t t : prompt) {
    l_one = e.Forward({t}, one);
    ASSERT_TRUE(l_one.ok()) << l_one.status();
  }
  EXPECT_LT(MaxAbsDiff(l_seq->Row(0), l_one->Row(0)), tol);
  for (const char* name : {"att_x_prev", "att_kv", "ffn_x_prev"}) {
    EXPECT_LT(MaxAbsDiff(Values(seq, name), Values(one, name)), tol) << name;
  }
  // Batched: three different histories, then one token each.
  std::vector<State> states;
  std::vector<State> singles;
  for (int b = 0; b < 3; ++b) {
    State s = e.NewState();
    ASSERT_TRUE(e.Forward(RandomTokens(5 + 7 * b, 10 + b), s).ok());
    singles.push_back(s.Clone());
    states.push_back(std::move(s));
  }
  std::vector<State*> ptrs = {&states[0], &states[1], &states[2]};
  const std::vector<int32_t> toks = {7, 100, 255};
  auto batched = e.ForwardBatch(toks, ptrs);
  ASSERT_TRUE(batched.ok()) << batched.status();
  for (int b = 0; b < 3; ++b) {
    auto single = e.Forward({toks[b]}, singles[b]);
    ASSERT_TRUE(single.ok());
    EXPECT_LT(MaxAbsDiff(batched->Row(b), single->Row(0)), tol) << "row " << b;
    for (const char* name : {"att_x_prev", "att_kv", "ffn_x_prev"}) {
      EXPECT_LT(MaxAbsDiff(Values(states[b], name), Values(singles[b], name)),
                tol)
          << "row " << b << " " << name;
    }
    EXPECT_EQ(states[b].token_count(), singles[b].token_count());
  }
}

TEST(Rwkv7ModesTest, SingleSequenceAndBatchedAgreeOnTinyModel) {
  RWKV_REQUIRE_SHARED(path, "models/tiny-rwkv7-834K.safetensors");
  RWKV_REQUIRE_DEVICE(TestDevice());
  auto e = Load(path);
  ASSERT_NE(e, nullptr);
  ExpectModesAgree(*e, 1e-4f);
}

TEST(Rwkv7ModesTest, SingleSequenceAndBatchedAgreeOnRandomMultiHead) {
  RWKV_REQUIRE_DEVICE(TestDevice());
  auto e = RandomV7(5, 64, 16, 3, TestDevice());
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->config().n_head, 4);
  EXPECT_EQ(e->config().head_size, 16);
  ExpectModesAgree(*e, 1e-4f);
}

TEST(Rwkv7ModesTest, RandomModelIsDeterministicAndStaysFinite) {
  auto a = RandomV7(9), b = RandomV7(9), c = RandomV7(10);
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(a->config().fingerprint, b->config().fingerprint);
  EXPECT_NE(a->config().fingerprint, c->config().fingerprint);
  State s = a->NewState();
  const std::vector<int32_t> toks = RandomTokens(600, 77);
  auto l = a->Forward(toks, s);
  ASSERT_TRUE(l.ok()) << l.status();
  for (float x : l->values()) ASSERT_TRUE(std::isfinite(x));
  auto report = InspectState(s);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->healthy) << FormatStateReport(*report);
  // Random logits carry signal: not all equal.
  const auto v = l->Row(0);
  EXPECT_GT(*std::max_element(v.begin(), v.end()) -
                *std::min_element(v.begin(), v.end()),
            1.0f);
}

TEST(Rwkv7ModesTest, Bf16ComputeOnCpuStaysClose) {
  RandomModelSpec spec;
  spec.arch = Architecture::kRwkv7;
  spec.n_layer = 2;
  spec.n_embd = 64;
  spec.head_size = 32;
  spec.seed = 4;
  EngineOptions o;
  o.num_threads = 1;
  auto f32 = RwkvEngine::CreateRandom(spec, o);
  o.dtype = "bf16";
  auto bf16 = RwkvEngine::CreateRandom(spec, o);
  ASSERT_TRUE(f32.ok() && bf16.ok()) << bf16.status();
  const std::vector<int32_t> prompt = RandomTokens(12, 8);
  State a = (*f32)->NewState(), b = (*bf16)->NewState();
  auto la = (*f32)->Forward(prompt, a), lb = (*bf16)->Forward(prompt, b);
  ASSERT_TRUE(la.ok() && lb.ok()) << lb.status();
  const float diff = MaxAbsDiff(la->Row(0), lb->Row(0));
  std::printf("[ measured ] RWKV-7 bf16 compute: max |delta logit| = %.3g\n",
              diff);
  EXPECT_LT(diff, 0.5f);
}

// The tensors of a checkpoint as fp32 values, editable.
struct Tensor32 {
  std::vector<int64_t> shape;
  std::vector<float> values;
};
using TensorList = std::vector<std::pair<std::string, Tensor32>>;

TensorList ReadAll(const std::string& path) {
  TensorList out;
  auto ckpt = Checkpoint::Open(path);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  if (!ckpt.ok()) return out;
  for (const CheckpointTensor& t : ckpt->tensors()) {
    const float* f = reinterpret_cast<const float*>(t.data);
    out.push_back(
        {t.name, Tensor32{t.shape, std::vector<float>(f, f + t.numel())}});
  }
  return out;
}

// Writes `tensors` as a .safetensors (or .pth) file stored as `dtype`.
std::string WriteModel(const TensorList& tensors, DType dtype,
                       const std::string& name, bool pth = false) {
  std::vector<std::vector<uint16_t>> half;
  std::vector<TensorToWrite> out;
  half.reserve(tensors.size());
  for (const auto& [n, t] : tensors) {
    if (dtype == DType::kFloat32) {
      out.push_back(TensorToWrite{n, dtype, t.shape, t.values.data(),
                                  t.values.size() * 4});
      continue;
    }
    std::vector<uint16_t> b(t.values.size());
    for (size_t i = 0; i < b.size(); ++i) {
      b[i] =
          dtype == DType::kBFloat16 ? ToBf16(t.values[i]) : ToFp16(t.values[i]);
    }
    half.push_back(std::move(b));
    out.push_back(TensorToWrite{n, dtype, t.shape, half.back().data(),
                                half.back().size() * 2});
  }
  auto bytes = pth ? SerializePth(out, {}) : SerializeSafetensors(out, {});
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  const std::string path =
      (std::filesystem::temp_directory_path() / name).string();
  EXPECT_TRUE(WriteFileAtomically(path, *bytes).ok());
  return path;
}

// Half-precision weights are widened to fp32 at load; the state stays fp32.
// The tiny model's weights are all exactly representable in bf16 (and so in
// fp16), so both copies are lossless and must match the reference as fp32
// does: this checks reading, widening and the fp32 state path.
TEST(Rwkv7HalfWeightsTest, Fp16AndBf16CheckpointsLoadAndStayClose) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  RWKV_REQUIRE_SHARED(st, "models/tiny-rwkv7-834K.safetensors");
  const json& c = Refs()["models"][kModel]["cases"]["hello"];
  const TensorList tensors = ReadAll(st);
  for (auto [dtype, tol] :
       {std::pair{DType::kFloat16, 2e-2f}, std::pair{DType::kBFloat16, 0.2f}}) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    const std::string path = WriteModel(
        tensors, dtype,
        "rwkv7-half-" + std::string(DTypeName(dtype)) + ".safetensors");
    auto engine = Load(path);
    ASSERT_NE(engine, nullptr);
    State s = engine->NewState();
    auto logits = engine->Forward(Ints(c["prompt_tokens"]), s);
    ASSERT_TRUE(logits.ok());
    const float diff = MaxAbsDiffJson(logits->Row(0), c["logits"]);
    std::printf("[ measured ] RWKV-7 %s weights: max |delta logit| = %.3g\n",
                std::string(DTypeName(dtype)).c_str(), diff);
    EXPECT_LT(diff, 1e-4f);
    EXPECT_EQ(logits->ArgMax(0), c["top5"][0].get<int>());
    std::filesystem::remove(path);
  }
}

// --- The state toolkit on the RWKV-7 schema -------------------------------

TEST(Rwkv7StateTest, SchemaShapesAndBytes) {
  auto e = RandomV7();
  ASSERT_NE(e, nullptr);
  State s = e->NewState();
  EXPECT_EQ(s.ComponentNames(),
            (std::vector<std::string>{"att_x_prev", "att_kv", "ffn_x_prev"}));
  EXPECT_EQ(*s.ComponentShape("att_kv"), (std::vector<int64_t>{3, 4, 16, 16}));
  EXPECT_EQ(*s.ComponentShape("att_x_prev"), (std::vector<int64_t>{3, 64}));
  EXPECT_EQ(s.SizeBytes(), e->config().state_bytes_fp32);
}

TEST(Rwkv7StateTest, SaveLoadRoundTripsInEveryDtype) {
  auto e = RandomV7();
  ASSERT_NE(e, nullptr);
  State s = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(30, 1), s).ok());
  const std::vector<int32_t> next = RandomTokens(8, 2);
  State ref = s.Clone();
  auto want = e->Forward(next, ref);
  ASSERT_TRUE(want.ok());
  for (auto [dtype, tol] : {std::pair{StateDtype::kFloat32, 0.0f},
                            std::pair{StateDtype::kFloat16, 5e-2f},
                            std::pair{StateDtype::kBFloat16, 0.2f}}) {
    SCOPED_TRACE(std::string(StateDtypeName(dtype)));
    auto bytes = SerializeState(s, dtype);
    ASSERT_TRUE(bytes.ok()) << bytes.status();
    StateFileInfo info;
    auto standalone = ParseStateStandalone(*bytes, "s.pt", &info);
    ASSERT_TRUE(standalone.ok()) << standalone.status();
    EXPECT_EQ(info.arch, Architecture::kRwkv7);
    EXPECT_EQ(info.model_fingerprint, e->config().fingerprint);
    EXPECT_EQ(info.token_count, 30);
    auto loaded = ParseState(*std::move(bytes), "s.pt", e->model());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto got = e->Forward(next, *loaded);
    ASSERT_TRUE(got.ok());
    const float diff = MaxAbsDiff(got->Row(0), want->Row(0));
    if (dtype == StateDtype::kFloat32) {
      EXPECT_EQ(diff, 0.0f);
    } else {
      std::printf(
          "[ measured ] RWKV-7 state stored as %s: max |delta logit| "
          "after 8 tokens = %.3g\n",
          std::string(StateDtypeName(dtype)).c_str(), diff);
      EXPECT_LT(diff, tol);
    }
  }
  // A v7 state cannot be loaded into a v4 model, nor into another v7 shape.
  RandomModelSpec v4;
  v4.n_embd = 64;
  v4.n_layer = 3;
  EngineOptions o;
  o.num_threads = 1;
  auto e4 = RwkvEngine::CreateRandom(v4, o);
  ASSERT_TRUE(e4.ok());
  auto bytes = SerializeState(s, StateDtype::kFloat32);
  auto wrong = ParseState(*bytes, "s.pt", (*e4)->model());
  EXPECT_THAT(std::string(wrong.status().message()),
              HasSubstr("state is for rwkv7 but the model is rwkv4"));
  auto other = RandomV7(5, 64, 32);
  LoadStateOptions skip;
  skip.skip_fingerprint_check = true;
  auto misshapen = ParseState(*bytes, "s.pt", other->model(), skip);
  EXPECT_THAT(std::string(misshapen.status().message()),
              HasSubstr("'att_kv' has shape [3, 4, 16, 16]"));
  // Feeding a v4 state to a v7 engine is refused.
  State s4 = (*e4)->NewState();
  EXPECT_FALSE(e->Forward({1}, s4).ok());
}

TEST(Rwkv7StateTest, BlendDecayDistanceAreLinearOnAllComponents) {
  auto e = RandomV7();
  ASSERT_NE(e, nullptr);
  State a = e->NewState(), b = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(20, 4), a).ok());
  ASSERT_TRUE(e->Forward(RandomTokens(10, 5), b).ok());
  auto m = BlendStates(a, b, 0.25);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->token_count(), 13);  // round(0.25*20 + 0.75*10) = 12.5 -> 13
  for (const char* name : {"att_x_prev", "att_kv", "ffn_x_prev"}) {
    const auto va = Values(a, name), vb = Values(b, name),
               vm = Values(*m, name);
    float err = 0;
    for (size_t i = 0; i < vm.size(); ++i) {
      err = std::max(err, std::abs(vm[i] - (0.25f * va[i] + 0.75f * vb[i])));
    }
    EXPECT_LT(err, 1e-5f) << name;
  }
  auto one = BlendStates(a, b, 1.0);
  ASSERT_TRUE(one.ok());
  EXPECT_EQ(Values(*one, "att_kv"), Values(a, "att_kv"));

  auto d = DecayState(a, 0.5);
  ASSERT_TRUE(d.ok()) << d.status();
  const auto kv = Values(a, "att_kv"), kvd = Values(*d, "att_kv");
  for (size_t i = 0; i < kv.size(); i += 97) EXPECT_EQ(kvd[i], 0.5f * kv[i]);
  EXPECT_EQ(Values(*d, "att_x_prev"), Values(a, "att_x_prev"));
  EXPECT_FALSE(DecayState(a, 0.0).ok());

  auto dist = DistanceBetween(a, b);
  ASSERT_TRUE(dist.ok()) << dist.status();
  ASSERT_EQ(dist->components.size(), 3u);
  EXPECT_EQ(dist->components[1].first, "att_kv");
  double sq = 0;
  const auto kb = Values(b, "att_kv");
  for (size_t i = 0; i < kv.size(); ++i) {
    sq += double(kv[i] - kb[i]) * double(kv[i] - kb[i]);
  }
  EXPECT_NEAR(dist->components[1].second, std::sqrt(sq), 1e-3);
  auto self = DistanceBetween(a, a);
  ASSERT_TRUE(self.ok());
  EXPECT_EQ(self->total, 0.0);
}

TEST(Rwkv7StateTest, ForkAndInspect) {
  auto e = RandomV7();
  ASSERT_NE(e, nullptr);
  State a = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(12, 6), a).ok());
  State f = ForkState(a);
  ASSERT_TRUE(e->Forward({3}, f).ok());
  EXPECT_EQ(a.token_count(), 12);
  EXPECT_NE(Values(a, "att_kv"), Values(f, "att_kv"));

  auto report = InspectState(a);
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_EQ(report->arch, Architecture::kRwkv7);
  EXPECT_TRUE(report->healthy);
  const ComponentReport* kvr = nullptr;
  for (const auto& c : report->components) {
    if (c.name == "att_kv") kvr = &c;
  }
  ASSERT_NE(kvr, nullptr);
  ASSERT_EQ(kvr->layers.size(), 3u);
  // Per-head Frobenius norms, 4 heads per layer.
  const auto v = Values(a, "att_kv");
  for (int l = 0; l < 3; ++l) {
    ASSERT_EQ(kvr->layers[l].head_norms.size(), 4u);
    for (int h = 0; h < 4; ++h) {
      double sq = 0;
      for (int i = 0; i < 256; ++i) {
        const double x = v[(l * 4 + h) * 256 + i];
        sq += x * x;
      }
      EXPECT_NEAR(kvr->layers[l].head_norms[h], std::sqrt(sq), 1e-4);
    }
  }
  EXPECT_THAT(FormatStateReport(*report), HasSubstr("head |S|"));
}

TEST(Rwkv7StateTest, PrefixCacheReusesV7States) {
  auto e = RandomV7();
  ASSERT_NE(e, nullptr);
  PrefixCache cache;
  const std::vector<int32_t> prompt = RandomTokens(24, 7);
  int64_t reused = -1;
  auto first = ForwardWithPrefixCache(*e, cache, prompt, &reused, 16);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(reused, 0);
  std::vector<int32_t> longer = prompt;
  longer.push_back(42);
  auto second = ForwardWithPrefixCache(*e, cache, longer, &reused);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(reused, 24);
  State direct = e->NewState();
  auto want = e->Forward(longer, direct);
  ASSERT_TRUE(want.ok());
  EXPECT_LT(MaxAbsDiff(second->second.Row(0), want->Row(0)), 1e-4f);
  EXPECT_LT(
      MaxAbsDiff(Values(second->first, "att_kv"), Values(direct, "att_kv")),
      1e-4f);
}

// --- Malformed RWKV-7 checkpoints -------------------------------------------

class Rwkv7MalformedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string st =
        testing::SharedFile("models/tiny-rwkv7-834K.safetensors");
    if (st.empty()) GTEST_SKIP() << "shared test material not found";
    tensors_ = ReadAll(st);
  }
  std::string Error(const TensorList& t, const std::string& name) {
    const std::string path = WriteModel(t, DType::kFloat32, name, true);
    EngineOptions o;
    o.model_path = path;
    o.num_threads = 1;
    auto e = RwkvEngine::Create(o);
    std::filesystem::remove(path);
    EXPECT_FALSE(e.ok());
    return e.ok() ? "" : std::string(e.status().message());
  }
  TensorList Without(const std::string& name) const {
    TensorList t;
    for (const auto& x : tensors_) {
      if (x.first != name) t.push_back(x);
    }
    return t;
  }
  Tensor32& Get(TensorList& t, const std::string& name) {
    for (auto& x : t) {
      if (x.first == name) return x.second;
    }
    ADD_FAILURE() << name;
    return t.front().second;
  }
  TensorList tensors_;
};

TEST_F(Rwkv7MalformedTest, PthCopyLoadsAndMatches) {
  RWKV_REQUIRE_DEVICE(TestDevice());
  const std::string path =
      WriteModel(tensors_, DType::kFloat32, "rwkv7-copy.pth", true);
  auto e = Load(path);
  ASSERT_NE(e, nullptr);
  EXPECT_EQ(e->config().arch, Architecture::kRwkv7);
  std::filesystem::remove(path);
}

TEST_F(Rwkv7MalformedTest, ErrorsNameTheFileAndTensor) {
  EXPECT_THAT(Error(Without("blocks.3.att.w1"), "no-w1.pth"),
              HasSubstr("no-w1.pth: missing tensor 'blocks.3.att.w1'"));
  EXPECT_THAT(Error(Without("blocks.5.att.v2"), "no-v2.pth"),
              HasSubstr("missing tensor 'blocks.5.att.v2'"));
  EXPECT_THAT(Error(Without("blocks.0.att.r_k"), "no-rk.pth"),
              HasSubstr("missing tensor 'blocks.0.att.r_k'"));
  EXPECT_THAT(Error(Without("blocks.2.att.ln_x.weight"), "no-lnx.pth"),
              HasSubstr("missing tensor 'blocks.2.att.ln_x.weight'"));

  TensorList t = tensors_;
  Get(t, "blocks.0.att.r_k").shape = {2, 16};
  Get(t, "blocks.0.att.r_k").values.resize(32);
  EXPECT_THAT(Error(t, "rk.pth"),
              HasSubstr("'blocks.0.att.r_k' has shape [2, 16], expected "
                        "[n_head, head_size]"));
  t = tensors_;
  Get(t, "blocks.1.att.w2").shape = {64, 32};  // transposed
  EXPECT_THAT(Error(t, "w2.pth"),
              HasSubstr("'blocks.1.att.w2' has shape [64, 32], expected "
                        "[rank, 64]"));
  t = tensors_;
  Get(t, "blocks.4.att.k_k").values[3] = std::nanf("");
  EXPECT_THAT(Error(t, "nan.pth"),
              HasSubstr("'blocks.4.att.k_k' contains NaN"));
  t = tensors_;
  t.push_back(
      {"blocks.0.att.time_first", Tensor32{{64}, std::vector<float>(64)}});
  EXPECT_THAT(Error(t, "mixed.pth"), HasSubstr("mixes RWKV-4 tensors"));
  t = tensors_;
  t.push_back({"blocks.0.att.bonus", Tensor32{{64}, std::vector<float>(64)}});
  EXPECT_THAT(
      Error(t, "extra.pth"),
      HasSubstr("unexpected tensor 'blocks.0.att.bonus' for an RWKV-7"));
  t.clear();
  for (const auto& x : tensors_) {
    if (x.first.rfind("blocks.7.", 0) != 0) t.push_back(x);
  }
  EXPECT_THAT(Error(t, "gap.pth"), HasSubstr("layer 7 is missing"));
}

TEST_F(Rwkv7MalformedTest, Layer0ValueResidualWeightsAreOptional) {
  RWKV_REQUIRE_DEVICE(TestDevice());
  // Some exports carry blocks.0.att.v0/v1/v2 (unused): they load too.
  TensorList t = tensors_;
  t.push_back({"blocks.0.att.v0", Get(t, "blocks.1.att.v0")});
  t.push_back({"blocks.0.att.v1", Get(t, "blocks.1.att.v1")});
  t.push_back({"blocks.0.att.v2", Get(t, "blocks.1.att.v2")});
  const std::string path = WriteModel(t, DType::kFloat32, "v0.pth", true);
  auto e = Load(path);
  ASSERT_NE(e, nullptr);
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace rwkv::engine
