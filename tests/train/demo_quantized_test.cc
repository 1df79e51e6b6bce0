// The committed demo model (models/demo/rwkv4-demo.pth) with int8 and bf16
// weights against fp32: greedy replies to its test prompts (the 40 capital
// questions, the name-memory dialogues on 50 training names, the style
// state's prompts) are the same text, and bits per byte on held-out
// dialogues (`rwkv-train corpus --seed 99`, never trained on) is at most 1%
// worse. Also: `rwkv-cli quantize`'s file loads to exactly the model
// `--dtype int8` quantizes at load. Skips when the demo model is absent.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "engine/quantize_checkpoint.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "engine/tokenizer.h"
#include "tools/bits_per_byte.h"
#include "tools/train/chat_eval.h"
#include "tools/train/corpus.h"

namespace rwkv::train {
namespace {

namespace fs = std::filesystem;

std::string DemoPath() {
  return std::string(RWKV_SOURCE_DIR) + "/models/demo/rwkv4-demo.pth";
}

std::unique_ptr<engine::RwkvEngine> Load(const std::string& path,
                                         const std::string& dtype) {
  engine::EngineOptions o;
  o.model_path = path;
  o.dtype = dtype;
  o.num_threads = 1;
  auto e = engine::RwkvEngine::Create(o);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *std::move(e) : nullptr;
}

// Every test prompt's greedy reply, in order.
std::vector<std::string> Replies(engine::Engine& e) {
  std::vector<std::string> out;
  for (const CountryFact& f : CapitalFacts()) {
    engine::State s = e.NewState();
    auto r =
        ChatTurn(e, s, absl::StrCat("What is the capital of ", f.country, "?"));
    EXPECT_TRUE(r.ok()) << r.status();
    out.push_back(r.ok() ? *r : "");
  }
  for (size_t i = 0; i < 50 && i < TrainingNames().size(); ++i) {
    engine::State s = e.NewState();
    for (std::string q : {absl::StrCat("My name is ", TrainingNames()[i], "."),
                          std::string("What is my name?")}) {
      auto r = ChatTurn(e, s, q);
      EXPECT_TRUE(r.ok()) << r.status();
      out.push_back(r.ok() ? *r : "");
    }
  }
  const std::string arr =
      std::string(RWKV_SOURCE_DIR) + "/models/demo/arr-state.pth";
  if (fs::exists(arr)) {
    auto tuned = engine::LoadStateFile(arr, e.model());
    EXPECT_TRUE(tuned.ok()) << tuned.status();
    for (const char* q : {"What is the capital of France?", "How are you?",
                          "What is the capital of Egypt?", "Hello!"}) {
      engine::State s = tuned.ok() ? tuned->Clone() : e.NewState();
      auto r = ChatTurn(e, s, q);
      EXPECT_TRUE(r.ok()) << r.status();
      out.push_back(r.ok() ? *r : "");
    }
  }
  return out;
}

class DemoQuantizedTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(DemoPath())) {
      GTEST_SKIP() << "no demo model at " << DemoPath();
    }
  }
};

TEST_F(DemoQuantizedTest, GreedyRepliesToTheTestPromptsAreUnchanged) {
  auto f32 = Load(DemoPath(), "fp32");
  ASSERT_NE(f32, nullptr);
  const std::vector<std::string> want = Replies(*f32);
  ASSERT_GE(want.size(), 140u);
  for (const std::string dtype : {"int8", "bf16"}) {
    auto q = Load(DemoPath(), dtype);
    ASSERT_NE(q, nullptr);
    const std::vector<std::string> got = Replies(*q);
    ASSERT_EQ(got.size(), want.size());
    int same = 0;
    for (size_t i = 0; i < want.size(); ++i) {
      if (got[i] == want[i]) {
        ++same;
      } else {
        ADD_FAILURE() << dtype << " prompt " << i << ": fp32 '" << want[i]
                      << "' vs '" << got[i] << "'";
      }
    }
    std::printf("[ quality ] demo model %s: %d/%zu greedy replies identical\n",
                dtype.c_str(), same, want.size());
  }
}

TEST_F(DemoQuantizedTest, BitsPerByteOnHeldOutDialoguesWithinOnePercent) {
  CorpusOptions co;
  co.seed = 99;  // the training corpora use seed 1
  co.num_dialogues = 300;
  co.arr_percent = 25;
  const std::vector<std::string> texts = GenerateDialogues(co);
  auto tok = engine::Tokenizer::Load("bytes");
  ASSERT_TRUE(tok.ok());
  double bpb[3] = {0, 0, 0};
  const char* dtypes[3] = {"fp32", "int8", "bf16"};
  for (int i = 0; i < 3; ++i) {
    auto e = Load(DemoPath(), dtypes[i]);
    ASSERT_NE(e, nullptr);
    auto r = tools::MeasureBitsPerByte(*e, **tok, texts);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_GT(r->bytes_scored, 50000);
    bpb[i] = r->bits_per_byte();
    std::printf("[ quality ] demo model %s: %.5f bits per byte (%lld bytes)\n",
                dtypes[i], bpb[i], static_cast<long long>(r->bytes_scored));
  }
  EXPECT_GT(bpb[0], 0.01);
  EXPECT_LT(bpb[0], 0.5);
  EXPECT_LE(bpb[1], bpb[0] * 1.01) << "int8";
  EXPECT_LE(bpb[2], bpb[0] * 1.01) << "bf16";
}

// rwkv-cli quantize's file == --dtype int8 on the original, bit for bit, and
// keeps the original's fingerprint; a bf16 file == --dtype bf16.
TEST_F(DemoQuantizedTest, QuantizedFileLoadsToTheSameModel) {
  const std::string dir = ::testing::TempDir();
  for (const std::string dtype : {"int8", "bf16"}) {
    const std::string out =
        absl::StrCat(dir, "/demo-", dtype, "-", getpid(), ".safetensors");
    auto report = engine::QuantizeCheckpoint(DemoPath(), out, dtype);
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_EQ(report->matrices, 4 * 7 + 1);
    EXPECT_LT(report->bytes_out,
              report->bytes_in / (dtype == "int8" ? 3 : 1.8));
    auto at_load = Load(DemoPath(), dtype);
    auto from_file = Load(out, dtype);
    auto from_file_auto = Load(out, "auto");
    ASSERT_TRUE(at_load && from_file && from_file_auto);
    EXPECT_EQ(from_file->config().fingerprint, at_load->config().fingerprint);
    EXPECT_EQ(from_file->config().fingerprint, report->fingerprint);
    EXPECT_EQ(from_file_auto->dtype(), dtype == "int8" ? "int8" : "fp32");
    const std::string prompt = UserTurn("What is the capital of Peru?");
    std::vector<int32_t> toks(prompt.begin(), prompt.end());
    engine::State a = at_load->NewState(), b = from_file->NewState();
    auto la = at_load->Forward(toks, a);
    auto lb = from_file->Forward(toks, b);
    ASSERT_TRUE(la.ok() && lb.ok());
    EXPECT_EQ(la->values(), lb->values()) << dtype;
    // Quantizing a quantized file is refused.
    auto again = engine::QuantizeCheckpoint(out, out + ".2", "int8");
    if (dtype == "int8") {
      ASSERT_FALSE(again.ok());
      EXPECT_NE(again.status().message().find("already quantized"),
                std::string::npos)
          << again.status();
    }
    std::remove(out.c_str());
    std::remove((out + ".2").c_str());
  }
}

}  // namespace
}  // namespace rwkv::train
