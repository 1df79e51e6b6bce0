// The state toolkit: save/load (torch-compatible files with model identity),
// fp16/bf16 storage, blend, decay, distance, inspect, fork, stack/split, and
// stability over a long stream. Hand-computed expectations use tiny states
// built from tensors written here.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "engine/state_inspect.h"
#include "engine/state_ops.h"
#include "tests/testing/engine_test_util.h"
#include "tests/testing/shared_data.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::MaxAbsDiff;
using ::rwkv::testing::RandomTokens;
using ::rwkv::testing::Values;

using ::testing::HasSubstr;

std::unique_ptr<RwkvEngine> RandomEngine(uint64_t seed = 11, int embd = 48) {
  RandomModelSpec spec;
  spec.n_layer = 3;
  spec.n_embd = embd;
  spec.vocab_size = 256;
  spec.seed = seed;
  EngineOptions o;
  o.num_threads = 1;
  auto e = RwkvEngine::CreateRandom(spec, o);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

// An RWKV-4 state file with L=1, C=n from explicit values.
struct Rwkv4Values {
  std::vector<float> aa, ab, pp, att_x, ffn_x;
};
std::string StateBytes(const Rwkv4Values& v,
                       const std::string& fingerprint = "fp",
                       int64_t tokens = 7) {
  const int64_t n = static_cast<int64_t>(v.aa.size());
  std::vector<TensorToWrite> t = {
      {"att_aa", DType::kFloat32, {1, n}, v.aa.data(), v.aa.size() * 4},
      {"att_ab", DType::kFloat32, {1, n}, v.ab.data(), v.ab.size() * 4},
      {"att_pp", DType::kFloat32, {1, n}, v.pp.data(), v.pp.size() * 4},
      {"att_x_prev",
       DType::kFloat32,
       {1, n},
       v.att_x.data(),
       v.att_x.size() * 4},
      {"ffn_x_prev",
       DType::kFloat32,
       {1, n},
       v.ffn_x.data(),
       v.ffn_x.size() * 4},
  };
  std::vector<ScalarToWrite> meta = {
      {"rwkv_state_format", int64_t{1}},
      {"architecture", std::string("rwkv4")},
      {"model_fingerprint", fingerprint},
      {"dtype", std::string("float32")},
      {"token_count", tokens},
  };
  auto bytes = SerializePth(t, meta);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return *bytes;
}
State MakeState(const Rwkv4Values& v, int64_t tokens = 7) {
  auto s = ParseStateStandalone(StateBytes(v, "fp", tokens), "test");
  EXPECT_TRUE(s.ok()) << s.status();
  return *std::move(s);
}

TEST(StateFileTest, Fp32RoundTripIsBitExact) {
  auto e = RandomEngine();
  State s = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(40, 1), s).ok());
  auto bytes = SerializeState(s, StateDtype::kFloat32);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto back = ParseState(*bytes, "mem", e->model());
  ASSERT_TRUE(back.ok()) << back.status();
  for (const std::string& name : s.ComponentNames()) {
    EXPECT_EQ(*s.ComponentValues(name), *back->ComponentValues(name)) << name;
  }
  EXPECT_EQ(back->token_count(), 40);
  // The file is a plain torch.save dict: names, metadata, shapes.
  auto ckpt = Checkpoint::FromBytes(*bytes, "mem");
  ASSERT_TRUE(ckpt.ok());
  EXPECT_EQ(ckpt->format(), "pth");
  EXPECT_EQ(ckpt->metadata().at("architecture"), "rwkv4");
  EXPECT_EQ(ckpt->metadata().at("token_count"), "40");
  EXPECT_EQ(ckpt->metadata().at("model_fingerprint"), e->config().fingerprint);
  EXPECT_EQ(ckpt->metadata().at("dtype"), "float32");
  ASSERT_NE(ckpt->Find("att_pp"), nullptr);
  EXPECT_EQ(ckpt->Find("att_pp")->shape, (std::vector<int64_t>{3, 48}));
}

TEST(StateFileTest, ContinuingFromSavedStateEqualsUninterruptedRun) {
  auto e = RandomEngine();
  const std::vector<int32_t> a = RandomTokens(30, 2), b = RandomTokens(25, 3);
  std::vector<int32_t> ab = a;
  ab.insert(ab.end(), b.begin(), b.end());
  State whole = e->NewState();
  auto l_whole = e->Forward(ab, whole);
  State first = e->NewState();
  ASSERT_TRUE(e->Forward(a, first).ok());
  auto bytes = SerializeState(first, StateDtype::kFloat32);
  ASSERT_TRUE(bytes.ok());
  auto loaded = ParseState(*bytes, "mem", e->model());
  ASSERT_TRUE(loaded.ok());
  auto l_cont = e->Forward(b, *loaded);
  ASSERT_TRUE(l_whole.ok() && l_cont.ok());
  EXPECT_LT(MaxAbsDiff(l_whole->Row(0), l_cont->Row(0)), 1e-5f);
  EXPECT_EQ(loaded->token_count(), 55);
}

// Half-precision storage: half the bytes, bounded error on what follows.
// Measured on this random model: fp16 2.1e-4, bf16 8.5e-4 max abs logit
// error 16 tokens later; asserted with >10x headroom.
TEST(StateFileTest, Fp16AndBf16StorageHalveBytesWithBoundedError) {
  auto e = RandomEngine();
  State s = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(64, 4), s).ok());
  State fresh = e->NewState();  // att_pp = -1e30 must survive fp16
  auto f32 = SerializeState(s, StateDtype::kFloat32);
  ASSERT_TRUE(f32.ok());
  const std::vector<int32_t> next = RandomTokens(16, 5);
  State ref = s.Clone();
  auto l_ref = e->Forward(next, ref);
  for (auto [dtype, tol] : {std::pair{StateDtype::kFloat16, 3e-3f},
                            std::pair{StateDtype::kBFloat16, 1e-2f}}) {
    SCOPED_TRACE(std::string(StateDtypeName(dtype)));
    auto half = SerializeState(s, dtype);
    ASSERT_TRUE(half.ok());
    auto ck32 = Checkpoint::FromBytes(*f32, "a"),
         ck16 = Checkpoint::FromBytes(*half, "b");
    ASSERT_TRUE(ck32.ok() && ck16.ok());
    EXPECT_EQ(ck16->Find("att_aa")->nbytes * 2, ck32->Find("att_aa")->nbytes);
    auto loaded = ParseState(*half, "half", e->model());
    ASSERT_TRUE(loaded.ok()) << loaded.status();
    auto l = e->Forward(next, *loaded);
    ASSERT_TRUE(l.ok() && l_ref.ok());
    const float err = MaxAbsDiff(l->Row(0), l_ref->Row(0));
    std::printf(
        "[ measured ] %s state storage: max |delta logit| after 16 tokens = "
        "%.3g\n",
        std::string(StateDtypeName(dtype)).c_str(), err);
    EXPECT_LT(err, tol);
    // A fresh state round-trips to an equivalent fresh state.
    auto fresh_bytes = SerializeState(fresh, dtype);
    ASSERT_TRUE(fresh_bytes.ok());
    auto fresh_back = ParseState(*fresh_bytes, "fresh", e->model());
    ASSERT_TRUE(fresh_back.ok()) << fresh_back.status();
    State f1 = fresh.Clone();
    auto la = e->Forward(next, f1), lb = e->Forward(next, *fresh_back);
    EXPECT_EQ(la->values(), lb->values());
  }
}

TEST(StateFileTest, PythonTorchSaveFixtureLoadsAndContinues) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_SHARED(model, "models/synthetic-rwkv4-public.pth");
  RWKV_REQUIRE_SHARED(fixture, "models/state-hello-synthetic-rwkv4.pt");
  const auto refs = nlohmann::json::parse(testing::ReadFileOrEmpty(refs_path));
  nlohmann::json fx;
  for (const auto& f : refs["state_fixtures"]) {
    if (f["model"] == "synthetic-rwkv4-public") fx = f;
  }
  ASSERT_FALSE(fx.is_null());
  EngineOptions o;
  o.model_path = model;
  o.num_threads = 1;
  auto e = RwkvEngine::Create(o);
  ASSERT_TRUE(e.ok());
  auto s = LoadStateFile(fixture, (*e)->model());
  ASSERT_TRUE(s.ok()) << s.status();
  // Same as feeding the prompt ourselves.
  State mine = (*e)->NewState();
  std::vector<int32_t> prompt = fx["prompt_tokens"].get<std::vector<int32_t>>();
  ASSERT_TRUE((*e)->Forward(prompt, mine).ok());
  EXPECT_LT(MaxAbsDiff(Values(*s, "att_aa"), Values(mine, "att_aa")), 1e-4f);
  auto logits =
      (*e)->Forward(fx["continuation_tokens"].get<std::vector<int32_t>>(), *s);
  ASSERT_TRUE(logits.ok());
  const std::vector<float> want = fx["logits"].get<std::vector<float>>();
  EXPECT_LT(MaxAbsDiff(logits->Row(0), want), 1e-4f);
  const auto greedy = fx["greedy_tokens"].get<std::vector<int32_t>>();
  const auto margins = fx["greedy_margins"].get<std::vector<float>>();
  for (size_t i = 0; i < greedy.size() && margins[i] > 2e-4f; ++i) {
    ASSERT_EQ(logits->ArgMax(0), greedy[i]) << "step " << i;
    logits = (*e)->Forward({greedy[i]}, *s);
    ASSERT_TRUE(logits.ok());
  }
}

class BadStateFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    engine_ = RandomEngine();
    State s = engine_->NewState();
    ASSERT_TRUE(engine_->Forward(RandomTokens(10, 6), s).ok());
    good_ = *SerializeState(s, StateDtype::kFloat32);
  }
  absl::Status Load(const std::string& bytes, LoadStateOptions o = {}) {
    return ParseState(bytes, "bad.pt", engine_->model(), o).status();
  }
  std::unique_ptr<RwkvEngine> engine_;
  std::string good_;
};

TEST_F(BadStateFileTest, TruncatedAndCorruptedFilesAreRejected) {
  for (size_t cut :
       {size_t{0}, size_t{5}, good_.size() / 3, good_.size() - 1}) {
    absl::Status s = Load(good_.substr(0, cut));
    EXPECT_FALSE(s.ok()) << cut;
    EXPECT_THAT(std::string(s.message()), HasSubstr("bad.pt"));
  }
  std::mt19937 rng(1);
  int rejected = 0;
  for (int i = 0; i < 300; ++i) {
    std::string b = good_;
    b[rng() % b.size()] ^= static_cast<char>(1 + rng() % 255);
    rejected += !Load(b).ok();  // must not crash; most flips are caught
  }
  EXPECT_GT(rejected, 0);
}

TEST_F(BadStateFileTest, WrongModelIsRejectedUnlessSkipped) {
  auto other = RandomEngine(/*seed=*/99);
  State s = other->NewState();
  ASSERT_TRUE(other->Forward({1, 2, 3}, s).ok());
  const std::string bytes = *SerializeState(s, StateDtype::kFloat32);
  absl::Status st = Load(bytes);
  EXPECT_EQ(st.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(st.message()), HasSubstr("not this model"));
  LoadStateOptions skip;
  skip.skip_fingerprint_check = true;
  EXPECT_TRUE(Load(bytes, skip).ok());
}

TEST_F(BadStateFileTest, WrongShapeMissingExtraNanNegative) {
  auto narrow = RandomEngine(11, /*embd=*/32);
  LoadStateOptions skip;
  skip.skip_fingerprint_check = true;
  absl::Status st =
      Load(*SerializeState(narrow->NewState(), StateDtype::kFloat32), skip);
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("has shape [3, 32] but this model needs [3, 48]"));

  Rwkv4Values v{{1, 2}, {1, 1}, {0, 0}, {0, 0}, {0, 0}};
  std::vector<TensorToWrite> t = {
      {"att_aa", DType::kFloat32, {1, 2}, v.aa.data(), 8},
      {"att_pp", DType::kFloat32, {1, 2}, v.pp.data(), 8},
  };
  st = ParseStateStandalone(*SerializePth(t), "missing.pt").status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("'att_ab' is missing"));
  t.push_back({"att_ab", DType::kFloat32, {1, 2}, v.ab.data(), 8});
  t.push_back({"att_x_prev", DType::kFloat32, {1, 2}, v.att_x.data(), 8});
  t.push_back({"ffn_x_prev", DType::kFloat32, {1, 2}, v.ffn_x.data(), 8});
  t.push_back({"bonus", DType::kFloat32, {1, 2}, v.ffn_x.data(), 8});
  st = ParseStateStandalone(*SerializePth(t), "extra.pt").status();
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("unexpected tensor 'bonus'"));

  Rwkv4Values nan = v;
  nan.att_x[1] = std::nanf("");
  st = ParseStateStandalone(StateBytes(nan), "nan.pt").status();
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("'att_x_prev' contains NaN"));
  Rwkv4Values neg = v;
  neg.ab[0] = -1;
  st = ParseStateStandalone(StateBytes(neg), "neg.pt").status();
  EXPECT_THAT(std::string(st.message()),
              HasSubstr("'att_ab' has negative values"));

  std::vector<int64_t> ids = {1, 2};
  std::vector<TensorToWrite> ints = {
      {"att_aa", DType::kInt64, {1, 2}, ids.data(), 16}};
  st = ParseStateStandalone(*SerializePth(ints), "int.pt").status();
  EXPECT_FALSE(st.ok());

  std::vector<ScalarToWrite> future = {{"rwkv_state_format", int64_t{99}}};
  st = ParseStateStandalone(*SerializePth(t, future), "future.pt").status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("newer than this build"));
  st = ParseStateStandalone("not a state", "junk.pt").status();
  EXPECT_THAT(std::string(st.message()), HasSubstr("junk.pt"));
}

// --- blend / decay / distance on hand-built states ---------------------------

double TrueValue(const State& s, const char* comp, int i) {
  return static_cast<double>(Values(s, comp)[i]) *
         std::exp(static_cast<double>(Values(s, "att_pp")[i]));
}

TEST(StateOpsTest, BlendWorksOnTrueAccumulators) {
  // Channel 0: equal exponents; 1: pp differs by 300 (true values 1e130
  // apart); 2: A fresh; 3: both fresh.
  Rwkv4Values a{{2, 3, 0, 0},
                {1, 2, 0, 0},
                {0, 0, -1e30f, -1e30f},
                {1, 1, 1, 1},
                {4, 4, 4, 4}};
  Rwkv4Values b{{4, 5, 6, 0},
                {2, 1, 3, 0},
                {1, 300, 2, -1e30f},
                {3, 3, 3, 3},
                {0, 0, 0, 0}};
  State A = MakeState(a, 10), B = MakeState(b, 20);
  const double alpha = 0.25;
  auto m = BlendStates(A, B, alpha);
  ASSERT_TRUE(m.ok()) << m.status();
  for (int i = 0; i < 3; ++i) {
    for (const char* comp : {"att_aa", "att_ab"}) {
      const double want =
          alpha * TrueValue(A, comp, i) + (1 - alpha) * TrueValue(B, comp, i);
      const double got = TrueValue(*m, comp, i);
      EXPECT_NEAR(got / want, 1.0, 1e-5) << comp << " channel " << i;
    }
  }
  EXPECT_LT(Values(*m, "att_pp")[3], -1e29f);  // still fresh
  EXPECT_EQ(Values(*m, "att_aa")[3], 0.0f);
  EXPECT_FLOAT_EQ(Values(*m, "att_x_prev")[0], 0.25f * 1 + 0.75f * 3);
  EXPECT_FLOAT_EQ(Values(*m, "ffn_x_prev")[0], 1.0f);
  EXPECT_EQ(m->token_count(), 18);  // round(0.25*10 + 0.75*20)

  // alpha = 1 gives A exactly, even where B's exponent is 300 larger.
  auto only_a = BlendStates(A, B, 1.0);
  ASSERT_TRUE(only_a.ok());
  for (int i = 0; i < 2; ++i) {
    EXPECT_NEAR(TrueValue(*only_a, "att_aa", i) / TrueValue(A, "att_aa", i),
                1.0, 1e-6);
  }
  auto d = DistanceBetween(*only_a, A);
  ASSERT_TRUE(d.ok());
  EXPECT_NEAR(d->total, 0.0, 1e-9);

  EXPECT_EQ(BlendStates(A, B, 1.5).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BlendStates(A, B, -0.1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(BlendStates(A, B, std::nan("")).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(StateOpsTest, BlendRejectsStatesOfDifferentModels) {
  auto e1 = RandomEngine(1), e2 = RandomEngine(2);
  auto r = BlendStates(e1->NewState(), e2->NewState(), 0.5);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("different models"));
}

TEST(StateOpsTest, DecayIsExactEvenForTinyFactors) {
  Rwkv4Values a{{2, -3}, {1, 2}, {5, -1e30f}, {1, 2}, {3, 4}};
  State A = MakeState(a);
  auto d = DecayState(A, 1e-30);
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(Values(*d, "att_aa"), Values(A, "att_aa"));  // no underflow
  EXPECT_NEAR(Values(*d, "att_pp")[0], 5 + std::log(1e-30), 1e-4);
  EXPECT_LT(Values(*d, "att_pp")[1], -1e29f);  // fresh stays fresh
  EXPECT_EQ(Values(*d, "att_x_prev"), Values(A, "att_x_prev"));
  EXPECT_NEAR(TrueValue(*d, "att_ab", 0) / TrueValue(A, "att_ab", 0), 1e-30,
              1e-35);
  auto one = DecayState(A, 1.0);
  EXPECT_NEAR(DistanceBetween(*one, A)->total, 0.0, 1e-12);
  EXPECT_FALSE(DecayState(A, 0.0).ok());
  EXPECT_FALSE(DecayState(A, 1.01).ok());
}

TEST(StateOpsTest, DistanceOfTrueValues) {
  Rwkv4Values a{{1, 0}, {1, 1}, {0, 0}, {0, 0}, {0, 0}};
  Rwkv4Values b{{1, 0}, {1, 1}, {std::log(2.0f), 0}, {3, 0}, {0, 4}};
  auto d = DistanceBetween(MakeState(a), MakeState(b));
  ASSERT_TRUE(d.ok());
  std::map<std::string, double> by(d->components.begin(), d->components.end());
  EXPECT_NEAR(by["att_num"], 1.0, 1e-6);  // |1*e^0 - 1*2|
  EXPECT_NEAR(by["att_den"], 1.0, 1e-6);
  EXPECT_NEAR(by["att_x_prev"], 3.0, 1e-6);
  EXPECT_NEAR(by["ffn_x_prev"], 4.0, 1e-6);
  EXPECT_NEAR(d->total, std::sqrt(1 + 1 + 9 + 16.0), 1e-6);
  // Huge exponents do not overflow before the result has to.
  Rwkv4Values c = a, e = a;
  c.pp = {80, 80};
  e.pp = {80, 80};
  e.aa = {2, 0};
  auto big = DistanceBetween(MakeState(c), MakeState(e));
  EXPECT_NEAR(std::log(big->total), 80.0, 1e-4);
}

TEST(StateOpsTest, InspectReportsStatsAndHealth) {
  auto e = RandomEngine();
  State s = e->NewState();
  auto fresh = InspectState(s);
  ASSERT_TRUE(fresh.ok());
  EXPECT_TRUE(fresh->healthy);
  ASSERT_TRUE(e->Forward(RandomTokens(20, 8), s).ok());
  auto r = InspectState(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->healthy) << FormatStateReport(*r);
  EXPECT_EQ(r->token_count, 20);
  EXPECT_EQ(r->components.size(), 5u);
  EXPECT_EQ(r->components[0].layers.size(), 3u);
  EXPECT_GT(r->components[3].max_abs, 0.0);
  EXPECT_FALSE(std::isnan(r->components[0].layers[0].max_log10_true));
  EXPECT_THAT(FormatStateReport(*r), HasSubstr("20 tokens"));

  Rwkv4Values bad{{1, 0}, {1, 1}, {0, 0}, {1e6f, 0}, {0, 0}};
  auto rb = InspectState(MakeState(bad));
  ASSERT_TRUE(rb.ok());
  EXPECT_FALSE(rb->healthy);
  EXPECT_THAT(rb->problems[0], HasSubstr("att_x_prev"));

  // Exponents: fp16's form of a fresh att_pp (-65504) weighs nothing and is
  // healthy; one above +1e4 is not.
  Rwkv4Values fp16_fresh{{0, 0}, {0, 0}, {-65504, -1e30f}, {0, 0}, {0, 0}};
  auto rf = InspectState(MakeState(fp16_fresh));
  ASSERT_TRUE(rf.ok());
  EXPECT_TRUE(rf->healthy) << FormatStateReport(*rf);
  Rwkv4Values hot{{1, 0}, {1, 1}, {2e4f, 0}, {0, 0}, {0, 0}};
  auto rh = InspectState(MakeState(hot));
  ASSERT_TRUE(rh.ok());
  EXPECT_FALSE(rh->healthy);
  EXPECT_THAT(rh->problems[0], HasSubstr("att_pp exponent above +10000"));
}

TEST(StateOpsTest, ForkIsIndependent) {
  auto e = RandomEngine();
  State s = e->NewState();
  ASSERT_TRUE(e->Forward(RandomTokens(3, 20), s).ok());
  State fork = ForkState(s);
  ASSERT_TRUE(e->Forward({5}, fork).ok());
  EXPECT_EQ(s.token_count(), 3);
  EXPECT_EQ(fork.token_count(), 4);
  EXPECT_NE(*s.ComponentValues("att_x_prev"),
            *fork.ComponentValues("att_x_prev"));
}

// 100,000 random tokens keep the state finite and healthy.
TEST(StateStabilityTest, HundredThousandTokenStream) {
  std::unique_ptr<RwkvEngine> e;
  const std::string tiny =
      testing::SharedFile("models/synthetic-rwkv4-public.pth");
  EngineOptions o;
  o.num_threads = 1;
  if (!tiny.empty()) {
    o.model_path = tiny;
    e = *RwkvEngine::Create(o);
  } else {
    e = RandomEngine();
  }
  State s = e->NewState();
  std::mt19937 rng(5);
  for (int chunk = 0; chunk < 100; ++chunk) {
    std::vector<int32_t> t(1000);
    for (int32_t& x : t) x = static_cast<int32_t>(rng() % 256);
    auto l = e->Forward(t, s);
    ASSERT_TRUE(l.ok());
    for (float v : l->values())
      ASSERT_TRUE(std::isfinite(v)) << "chunk " << chunk;
  }
  auto r = InspectState(s);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->finite);
  EXPECT_TRUE(r->healthy) << FormatStateReport(*r);
  EXPECT_EQ(s.token_count(), 100000);
}

}  // namespace
}  // namespace rwkv::engine
