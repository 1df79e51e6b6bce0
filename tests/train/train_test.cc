// rwkv-train: corpus determinism and format, the training module against the
// engine (logits, and a tuned state loaded through the state toolkit), a
// tiny training run, exact resume.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "tools/train/chat_eval.h"
#include "tools/train/corpus.h"
#include "tools/train/rwkv4_train_model.h"
#include "tools/train/state_tuner.h"
#include "tools/train/trainer.h"

namespace rwkv::train {
namespace {

namespace fs = std::filesystem;

std::string TempPath(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() /
                       ("rwkv_train_test_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  return (dir / name).string();
}

std::unique_ptr<engine::RwkvEngine> LoadEngine(const std::string& path) {
  engine::EngineOptions eo;
  eo.model_path = path;
  eo.num_threads = 1;
  auto e = engine::RwkvEngine::Create(eo);
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? std::move(*e) : nullptr;
}

// A small model with every parameter perturbed (the init zeroes several
// matrices, which would hide mistakes in their use).
Rwkv4TrainModel NoisyModel() {
  ModelShape shape;
  shape.n_layer = 2;
  shape.n_embd = 32;
  Rwkv4TrainModel m(shape, 5);
  torch::NoGradGuard ng;
  torch::manual_seed(6);
  for (const auto& [n, t] : m.named_parameters()) {
    const double scale = n.find("emb") != std::string::npos ? 1.0 : 0.2;
    t.add_(torch::randn_like(t) * scale);
  }
  return m;
}

TEST(CorpusTest, DeterministicForASeed) {
  CorpusOptions a{.seed = 7, .num_dialogues = 200};
  CorpusOptions b{.seed = 8, .num_dialogues = 200};
  EXPECT_EQ(GenerateDialogues(a), GenerateDialogues(a));
  EXPECT_NE(GenerateDialogues(a), GenerateDialogues(b));
}

TEST(CorpusTest, ArrPercentStylesWholeDialoguesOfTheSameCorpus) {
  const std::vector<std::string> plain =
      GenerateDialogues({.seed = 5, .num_dialogues = 400});
  const std::vector<std::string> mixed =
      GenerateDialogues({.seed = 5, .num_dialogues = 400, .arr_percent = 25});
  ASSERT_EQ(plain.size(), mixed.size());
  int styled = 0;
  for (size_t i = 0; i < plain.size(); ++i) {
    if (mixed[i] == plain[i]) continue;
    ++styled;
    // Same dialogue with " Arr!" closing every reply, and nothing else.
    EXPECT_EQ(absl::StrReplaceAll(mixed[i], {{" Arr!\n\n", "\n\n"}}), plain[i]);
    const std::vector<std::string> parts =
        absl::StrSplit(plain[i], "Assistant: ");
    const size_t replies = parts.size() - 1;
    size_t arrs = 0;
    for (size_t p = mixed[i].find(" Arr!\n\n"); p != std::string::npos;
         p = mixed[i].find(" Arr!\n\n", p + 1)) {
      ++arrs;
    }
    EXPECT_EQ(arrs, replies) << mixed[i];
  }
  EXPECT_GT(styled, 70);  // 25% of 400 = 100 expected
  EXPECT_LT(styled, 130);
}

TEST(CorpusTest, DialoguesFollowTheChatTemplate) {
  const std::regex turn("User: [^\\n]+\\n\\nAssistant: [^\\n]+\\n\\n");
  int memory = 0;
  for (const std::string& d :
       GenerateDialogues({.seed = 3, .num_dialogues = 300})) {
    EXPECT_TRUE(std::regex_match(
        d, std::regex("("
                      "User: [^\\n]+\\n\\nAssistant: [^\\n]+\\n\\n"
                      ")+")))
        << d;
    std::smatch m;
    if (std::regex_search(d, m, std::regex("Nice to meet you, ([^.]+)\\."))) {
      ++memory;
      const std::string name = m[1];
      EXPECT_NE(d.find("Your name is " + name + "."), std::string::npos) << d;
      EXPECT_NE(std::find(TrainingNames().begin(), TrainingNames().end(), name),
                TrainingNames().end());
    }
  }
  EXPECT_GT(memory, 100);
}

TEST(CorpusTest, HeldOutNamesNeverInTraining) {
  std::set<std::string> train(TrainingNames().begin(), TrainingNames().end());
  EXPECT_GE(train.size(), 300u);
  EXPECT_EQ(HeldOutNames().size(), 50u);
  for (const std::string& n : HeldOutNames())
    EXPECT_EQ(train.count(n), 0u) << n;
  std::string all;
  for (const std::string& d :
       GenerateDialogues({.seed = 1, .num_dialogues = 2000}))
    all += d;
  for (const std::string& n : HeldOutNames()) {
    EXPECT_EQ(all.find(" " + n + "."), std::string::npos) << n;
  }
}

TEST(TrainModelTest, LogitsMatchTheEngine) {
  Rwkv4TrainModel m = NoisyModel();
  const std::string path = TempPath("agree.pth");
  ASSERT_TRUE(m.Save(path, /*fp16=*/false).ok());
  auto eng = LoadEngine(path);
  ASSERT_NE(eng, nullptr);
  const std::string text = "User: My name is Alice.\n\nAssistant:";
  std::vector<int32_t> toks(text.begin(), text.end());
  torch::Tensor x =
      torch::empty({1, static_cast<int64_t>(toks.size())}, torch::kLong);
  for (size_t i = 0; i < toks.size(); ++i) x[0][i] = toks[i];
  torch::NoGradGuard ng;
  torch::Tensor ref = m.Forward(x);  // [1, T, V]
  // Token by token (single-step path) and all at once (sequence mode).
  engine::State s1 = eng->NewState();
  double max_diff = 0;
  for (size_t i = 0; i < toks.size(); ++i) {
    auto l = eng->Forward(absl::MakeConstSpan(&toks[i], 1), s1);
    ASSERT_TRUE(l.ok()) << l.status();
    for (int v = 0; v < 256; ++v) {
      max_diff = std::max<double>(
          max_diff, std::abs(l->Row(0)[v] - ref[0][i][v].item<float>()));
    }
  }
  engine::State s2 = eng->NewState();
  auto l = eng->Forward(toks, s2);
  ASSERT_TRUE(l.ok());
  for (int v = 0; v < 256; ++v) {
    max_diff = std::max<double>(
        max_diff,
        std::abs(l->Row(0)[v] - ref[0][toks.size() - 1][v].item<float>()));
  }
  EXPECT_LT(max_diff, 1e-4);
  EXPECT_GT(ref.abs().max().item<double>(), 0.1);  // not a trivial model
}

TEST(TrainModelTest, SaveLoadRoundTrip) {
  Rwkv4TrainModel m = NoisyModel();
  const std::string path = TempPath("roundtrip.pth");
  ASSERT_TRUE(m.Save(path, false).ok());
  auto back = Rwkv4TrainModel::Load(path);
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->named_parameters().size(), m.named_parameters().size());
  for (size_t i = 0; i < m.named_parameters().size(); ++i) {
    EXPECT_EQ(back->named_parameters()[i].first, m.named_parameters()[i].first);
    EXPECT_TRUE(torch::equal(back->named_parameters()[i].second,
                             m.named_parameters()[i].second));
  }
}

std::string WriteTinyCorpus() {
  const std::string path = TempPath("tiny.jsonl");
  std::ofstream(path) << DialoguesToJsonl(
      GenerateDialogues({.seed = 2, .num_dialogues = 200}));
  return path;
}

TrainOptions TinyOptions(const std::string& out) {
  TrainOptions o;
  o.data = WriteTinyCorpus();
  o.out = out;
  o.shape.n_layer = 1;
  o.shape.n_embd = 16;
  o.ctx = 32;
  o.batch = 2;
  o.steps = 30;
  o.lr = 1e-2;
  o.lr_final = 1e-3;
  o.warmup = 3;
  o.save_every = 1000;
  o.progress = false;
  return o;
}

TEST(TrainerTest, TinyRunReducesLoss) {
  TrainOptions o = TinyOptions(TempPath("tiny.pth"));
  auto r = Train(o);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->step_losses.size(), 30u);
  double first = 0, last = 0;
  for (int i = 0; i < 5; ++i) {
    first += r->step_losses[i];
    last += r->step_losses[25 + i];
  }
  EXPECT_LT(last, 0.8 * first);
  EXPECT_TRUE(fs::exists(o.out + ".csv"));
  std::ifstream svg(o.out + ".svg");
  std::string head(5, ' ');
  svg.read(head.data(), 4);
  EXPECT_EQ(head.substr(0, 4), "<svg");
}

TEST(TrainerTest, ResumeContinuesExactly) {
  TrainOptions straight = TinyOptions(TempPath("straight.pth"));
  straight.steps = 10;
  ASSERT_TRUE(Train(straight).ok());

  TrainOptions part = TinyOptions(TempPath("resumed.pth"));
  part.steps = 10;
  part.stop_after = 4;
  auto r1 = Train(part);
  ASSERT_TRUE(r1.ok()) << r1.status();
  EXPECT_EQ(r1->steps_done, 4);
  part.stop_after = 0;
  part.resume = true;
  auto r2 = Train(part);
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->steps_done, 6);

  auto a = Rwkv4TrainModel::Load(straight.out);
  auto b = Rwkv4TrainModel::Load(part.out);
  ASSERT_TRUE(a.ok() && b.ok());
  for (size_t i = 0; i < a->named_parameters().size(); ++i) {
    EXPECT_TRUE(torch::equal(a->named_parameters()[i].second,
                             b->named_parameters()[i].second))
        << a->named_parameters()[i].first;
  }
}

TEST(StateTuneTest, TunedStateLoadsAndMatchesTheEngine) {
  Rwkv4TrainModel m = NoisyModel();
  m.SetRequiresGrad(false);
  const std::string path = TempPath("st_model.pth");
  ASSERT_TRUE(m.Save(path, false).ok());
  auto eng = LoadEngine(path);
  ASSERT_NE(eng, nullptr);
  std::vector<std::string> docs = StyledDialogues(1, 8);
  ASSERT_EQ(docs.size(), 8u);
  EXPECT_NE(docs[0].find(" Arr!\n\n"), std::string::npos) << docs[0];
  StateTuneOptions o;
  o.steps = 3;
  o.batch = 2;
  o.progress = false;
  auto learned = TuneState(m, docs, o);
  ASSERT_TRUE(learned.ok());
  auto bytes = SerializeLearnedState(*learned, eng->config().fingerprint);
  ASSERT_TRUE(bytes.ok());
  auto state = engine::ParseState(*bytes, "tuned", eng->model());
  ASSERT_TRUE(state.ok()) << state.status();

  // The engine from the loaded state agrees with the training module.
  const std::string text = "User: Hi.\n\nAssistant:";
  std::vector<int32_t> toks(text.begin(), text.end());
  auto l = eng->Forward(toks, *state);
  ASSERT_TRUE(l.ok());
  torch::Tensor x =
      torch::empty({1, static_cast<int64_t>(toks.size())}, torch::kLong);
  for (size_t i = 0; i < toks.size(); ++i) x[0][i] = toks[i];
  torch::NoGradGuard ng;
  const LearnedState& s = *learned;
  TrainState ts{s.a.unsqueeze(1), s.b.unsqueeze(1), s.x_att.unsqueeze(1),
                s.x_ffn.unsqueeze(1)};
  torch::Tensor ref = m.Forward(x, &ts).select(1, toks.size() - 1)[0];
  double max_diff = 0;
  for (int v = 0; v < 256; ++v) {
    max_diff = std::max<double>(max_diff,
                                std::abs(l->Row(0)[v] - ref[v].item<float>()));
  }
  EXPECT_LT(max_diff, 1e-4);
}

// The acceptance check on the committed demo model: a state tuned on
// a few dialogues whose replies end in " Arr!" lowers the held-out reply loss
// of that style by at least 20% against the zero state.
TEST(StateTuneTest, DemoModelStyleStateLowersLossAndStylesReplies) {
  const std::string path =
      std::string(RWKV_SOURCE_DIR) + "/models/demo/rwkv4-demo.pth";
  if (!fs::exists(path)) GTEST_SKIP() << "no demo model at " << path;
  auto m = Rwkv4TrainModel::Load(path);
  ASSERT_TRUE(m.ok()) << m.status();
  m->SetRequiresGrad(false);
  std::vector<std::string> train = StyledDialogues(11, 32);
  std::vector<std::string> held = StyledDialogues(12, 32);
  StateTuneOptions o;
  o.steps = 40;
  o.batch = 4;
  o.lr = 0.1;
  o.max_log_b = 8;
  o.progress = false;
  auto learned = TuneState(*m, train, o);
  ASSERT_TRUE(learned.ok());
  const double zero = ReplyLoss(*m, held, nullptr);
  const double tuned = ReplyLoss(*m, held, &*learned);
  EXPECT_LT(tuned, 0.8 * zero) << "zero " << zero << " tuned " << tuned;

  // And the engine's greedy replies from the tuned state show the style,
  // where replies from the fresh state do not.
  auto eng = LoadEngine(path);
  ASSERT_NE(eng, nullptr);
  auto bytes = SerializeLearnedState(*learned, eng->config().fingerprint);
  ASSERT_TRUE(bytes.ok()) << bytes.status();
  auto state = engine::ParseState(*bytes, "tuned", eng->model());
  ASSERT_TRUE(state.ok()) << state.status();
  int styled = 0, fresh_styled = 0, n = 0;
  for (const char* q :
       {"What is the capital of France?", "How are you?",
        "What is the capital of Egypt?", "Hello!", "What is 1 plus 2?"}) {
    engine::State st = state->Clone();
    auto reply = ChatTurn(*eng, st, q);
    ASSERT_TRUE(reply.ok()) << reply.status();
    engine::State fresh = eng->NewState();
    auto plain = ChatTurn(*eng, fresh, q);
    ASSERT_TRUE(plain.ok()) << plain.status();
    ++n;
    styled += absl::EndsWith(*reply, " Arr!");
    fresh_styled += absl::EndsWith(*plain, " Arr!");
    std::printf("  %s -> tuned: %s | fresh: %s\n", q, reply->c_str(),
                plain->c_str());
  }
  EXPECT_EQ(styled, n);
  EXPECT_EQ(fresh_styled, 0);
}

}  // namespace
}  // namespace rwkv::train
