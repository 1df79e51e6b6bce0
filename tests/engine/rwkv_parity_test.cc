// Parity of the RWKV-4 engine with ChatRWKV's reference outputs for the tiny
// real checkpoints in ../shared/models (skipped when that folder is absent):
// logits within 1e-4 (fp32), greedy continuations identical, the state after
// the prompt equal to the reference state, .pth == .safetensors, and fp16 /
// bf16 copies of the weights within a stated tolerance. The models run on
// $RWKV_TEST_DEVICE (CPU by default; tests/testing/test_device.h), except the
// CPU bf16 compute case.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "engine/checkpoint.h"
#include "engine/checkpoint_writer.h"
#include "engine/rwkv_engine.h"
#include "tests/testing/engine_test_util.h"
#include "tests/testing/reference_outputs.h"
#include "tests/testing/shared_data.h"
#include "tests/testing/test_device.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::Ints;
using ::rwkv::testing::MaxAbsDiffJson;
using ::rwkv::testing::Refs;
using ::rwkv::testing::TestDevice;
using ::rwkv::testing::ToBf16;
using ::rwkv::testing::ToFp16;

using json = nlohmann::json;

std::unique_ptr<RwkvEngine> Load(const std::string& path) {
  EngineOptions opts;
  opts.model_path = path;
  opts.device = TestDevice();
  opts.num_threads = 1;
  auto engine = RwkvEngine::Create(opts);
  EXPECT_TRUE(engine.ok()) << engine.status();
  return engine.ok() ? *std::move(engine) : nullptr;
}

class Rwkv4ParityTest : public ::testing::TestWithParam<std::string> {};

TEST_P(Rwkv4ParityTest, LogitsGreedyAndStateMatchReference) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  const json& model = Refs()["models"][GetParam()];
  RWKV_REQUIRE_SHARED(path, "models/" + model["file"].get<std::string>());
  auto engine = Load(path);
  ASSERT_NE(engine, nullptr);
  EXPECT_EQ(engine->config().n_layer, model["dims"]["n_layer"].get<int>());
  EXPECT_EQ(engine->config().n_embd, model["dims"]["n_embd"].get<int>());
  EXPECT_EQ(engine->config().vocab_size, 256);
  for (const auto& [case_name, c] : model["cases"].items()) {
    SCOPED_TRACE(case_name);
    State state = engine->NewState();
    auto logits = engine->Forward(Ints(c["prompt_tokens"]), state);
    ASSERT_TRUE(logits.ok()) << logits.status();
    const float diff = MaxAbsDiffJson(logits->Row(0), c["logits"]);
    std::printf("[ measured ] %s on %s, case %s: max |delta logit| = %.3g\n",
                GetParam().c_str(), TestDevice().c_str(), case_name.c_str(),
                diff);
    EXPECT_LT(diff, 1e-4f);

    // State after the prompt: ChatRWKV's flat list, per layer
    // [att_xx, aa, bb, pp, ffn_xx].
    const int L = engine->config().n_layer;
    const char* names[] = {"att_x_prev", "att_aa", "att_ab", "att_pp",
                           "ffn_x_prev"};
    for (int j = 0; j < 5; ++j) {
      auto values = state.ComponentValues(names[j]);
      ASSERT_TRUE(values.ok());
      const int C = engine->config().n_embd;
      for (int l = 0; l < L; ++l) {
        const json& ref = c["state"][5 * l + j];
        float m = 0;
        for (int i = 0; i < C; ++i) {
          const float want = ref[i].get<float>();
          const float got = (*values)[l * C + i];
          // att_pp is an exponent: compare relatively.
          m = std::max(m,
                       std::abs(got - want) / std::max(1.0f, std::abs(want)));
        }
        EXPECT_LT(m, 1e-4f) << names[j] << " layer " << l;
      }
    }

    // Greedy continuation, one token per step; stop comparing where the
    // reference's top-2 margin is within our tolerance.
    const std::vector<int32_t> want = Ints(c["greedy_tokens"]);
    const json& margins = c["greedy_margins"];
    for (size_t i = 0; i < want.size(); ++i) {
      if (margins[i].get<float>() < 2e-4f) break;
      const int32_t tok = logits->ArgMax(0);
      ASSERT_EQ(tok, want[i]) << "greedy step " << i;
      logits = engine->Forward({tok}, state);
      ASSERT_TRUE(logits.ok());
    }
  }
}

TEST_P(Rwkv4ParityTest, SafetensorsEqualsPth) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  const json& model = Refs()["models"][GetParam()];
  RWKV_REQUIRE_SHARED(pth, "models/" + model["file"].get<std::string>());
  RWKV_REQUIRE_SHARED(st, "models/" + model["safetensors"].get<std::string>());
  auto a = Load(pth), b = Load(st);
  ASSERT_TRUE(a && b);
  const std::vector<int32_t> prompt =
      Ints(model["cases"]["hello"]["prompt_tokens"]);
  State sa = a->NewState(), sb = b->NewState();
  auto la = a->Forward(prompt, sa), lb = b->Forward(prompt, sb);
  ASSERT_TRUE(la.ok() && lb.ok());
  EXPECT_EQ(la->values(), lb->values());  // same fp32 weights: bit identical
}

INSTANTIATE_TEST_SUITE_P(SharedModels, Rwkv4ParityTest,
                         ::testing::Values("tiny-rwkv4-660K",
                                           "synthetic-rwkv4-public"));

// Writes a copy of `src` with every tensor stored as `dtype`.
std::string ConvertCheckpoint(const std::string& src, DType dtype,
                              const std::string& out_name) {
  auto ckpt = Checkpoint::Open(src);
  EXPECT_TRUE(ckpt.ok()) << ckpt.status();
  std::vector<std::vector<uint16_t>> buffers;
  std::vector<TensorToWrite> out;
  buffers.reserve(ckpt->tensors().size());
  for (const CheckpointTensor& t : ckpt->tensors()) {
    std::vector<uint16_t> b(t.numel());
    const float* f = reinterpret_cast<const float*>(t.data);
    for (int64_t i = 0; i < t.numel(); ++i) {
      b[i] = dtype == DType::kBFloat16 ? ToBf16(f[i]) : ToFp16(f[i]);
    }
    buffers.push_back(std::move(b));
    out.push_back(TensorToWrite{t.name, dtype, t.shape, buffers.back().data(),
                                buffers.back().size() * 2});
  }
  auto bytes = SerializeSafetensors(out, {});
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  const std::string path =
      (std::filesystem::temp_directory_path() / out_name).string();
  EXPECT_TRUE(WriteFileAtomically(path, *bytes).ok());
  return path;
}

// Half-precision weights are widened to fp32 at load. Measured max |delta
// logit| on the hello prompt (synthetic model): fp16 ~2e-3, bf16 ~2e-2;
// asserted bounds leave ~3x headroom.
TEST(Rwkv4HalfWeightsTest, Fp16AndBf16CheckpointsStayClose) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_DEVICE(TestDevice());
  RWKV_REQUIRE_SHARED(pth, "models/synthetic-rwkv4-public.pth");
  const json& c = Refs()["models"]["synthetic-rwkv4-public"]["cases"]["hello"];
  for (auto [dtype, tol] : {std::pair{DType::kFloat16, 1e-2f},
                            std::pair{DType::kBFloat16, 8e-2f}}) {
    SCOPED_TRACE(std::string(DTypeName(dtype)));
    const std::string path =
        ConvertCheckpoint(pth, dtype,
                          std::string("rwkv-half-") +
                              std::string(DTypeName(dtype)) + ".safetensors");
    auto engine = Load(path);
    ASSERT_NE(engine, nullptr);
    State s = engine->NewState();
    auto logits = engine->Forward(Ints(c["prompt_tokens"]), s);
    ASSERT_TRUE(logits.ok());
    const float diff = MaxAbsDiffJson(logits->Row(0), c["logits"]);
    std::printf("[ measured ] %s weights: max |delta logit| = %.3g\n",
                std::string(DTypeName(dtype)).c_str(), diff);
    EXPECT_LT(diff, tol);
    EXPECT_EQ(logits->ArgMax(0), c["top5"][0].get<int>());
    std::filesystem::remove(path);
  }
}

// Computing in bf16 on CPU (dtype option) stays close to fp32.
TEST(Rwkv4HalfWeightsTest, Bf16ComputeOnCpu) {
  RWKV_REQUIRE_SHARED(refs_path, "models/refs-public.json");
  RWKV_REQUIRE_SHARED(pth, "models/synthetic-rwkv4-public.pth");
  const json& c = Refs()["models"]["synthetic-rwkv4-public"]["cases"]["hello"];
  EngineOptions opts;
  opts.model_path = pth;
  opts.num_threads = 1;
  opts.dtype = "bf16";
  auto engine = RwkvEngine::Create(opts);
  ASSERT_TRUE(engine.ok()) << engine.status();
  State s = (*engine)->NewState();
  auto logits = (*engine)->Forward(Ints(c["prompt_tokens"]), s);
  ASSERT_TRUE(logits.ok()) << logits.status();
  const float diff = MaxAbsDiffJson(logits->Row(0), c["logits"]);
  std::printf("[ measured ] bf16 compute: max |delta logit| = %.3g\n", diff);
  EXPECT_LT(diff, 0.5f);
}

}  // namespace
}  // namespace rwkv::engine
