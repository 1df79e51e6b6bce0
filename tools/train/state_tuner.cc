#include "tools/train/state_tuner.h"

#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "engine/checkpoint_writer.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "tools/train/chat_eval.h"
#include "tools/train/corpus.h"
#include "tools/train/trainer.h"

namespace rwkv::train {
namespace {

struct Batch {
  torch::Tensor x, y, mask;  // [B, T] each; mask float
};

// Marks the target positions that are reply bytes: after "Assistant:" up to
// and including the "\n\n" that ends the reply.
std::vector<float> ReplyMask(const std::string& d) {
  std::vector<float> m(d.size(), 0.0f);
  const std::string tag = "Assistant:";
  size_t pos = 0;
  while ((pos = d.find(tag, pos)) != std::string::npos) {
    size_t start = pos + tag.size();
    size_t end = d.find("\n\n", start);
    end = end == std::string::npos ? d.size() : end + 2;
    for (size_t i = start; i < end; ++i) m[i] = 1.0f;
    pos = end;
  }
  return m;
}

Batch MakeBatch(const std::vector<const std::string*>& docs) {
  size_t T = 1;
  for (const std::string* d : docs) T = std::max(T, d->size() - 1);
  const int64_t B = docs.size();
  Batch b{torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong),
          torch::zeros({B, static_cast<int64_t>(T)}, torch::kLong),
          torch::zeros({B, static_cast<int64_t>(T)})};
  for (int64_t i = 0; i < B; ++i) {
    const std::string& d = *docs[i];
    std::vector<float> m = ReplyMask(d);
    auto x = b.x.accessor<int64_t, 2>();
    auto y = b.y.accessor<int64_t, 2>();
    auto mk = b.mask.accessor<float, 2>();
    for (size_t t = 0; t + 1 < d.size(); ++t) {
      x[i][t] = static_cast<uint8_t>(d[t]);
      y[i][t] = static_cast<uint8_t>(d[t + 1]);
      mk[i][t] = m[t + 1];
    }
  }
  return b;
}

TrainState Expand(const LearnedState& s, int64_t B) {
  auto e = [&](const torch::Tensor& t) {
    return t.unsqueeze(1).expand({t.size(0), B, t.size(1)});
  };
  return TrainState{e(s.a), e(s.b), e(s.x_att), e(s.x_ffn)};
}

// Sum of masked cross entropy and the mask count.
std::pair<torch::Tensor, double> MaskedLoss(const Rwkv4TrainModel& model,
                                            const Batch& b,
                                            const TrainState* st) {
  torch::Tensor logits = model.Forward(b.x, st);
  const int64_t V = logits.size(-1);
  torch::Tensor ce = torch::nn::functional::cross_entropy(
      logits.reshape({-1, V}), b.y.reshape({-1}),
      torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  torch::Tensor m = b.mask.reshape({-1});
  return {(ce * m).sum(), m.sum().item<double>()};
}

}  // namespace

double ReplyLoss(const Rwkv4TrainModel& model,
                 const std::vector<std::string>& docs,
                 const LearnedState* state) {
  torch::NoGradGuard ng;
  double total = 0, count = 0;
  for (size_t i = 0; i < docs.size(); i += 16) {
    std::vector<const std::string*> chunk;
    for (size_t j = i; j < docs.size() && j < i + 16; ++j) {
      chunk.push_back(&docs[j]);
    }
    Batch b = MakeBatch(chunk);
    TrainState st;
    if (state != nullptr) st = Expand(*state, chunk.size());
    auto [sum, n] = MaskedLoss(model, b, state ? &st : nullptr);
    total += sum.item<double>();
    count += n;
  }
  return count > 0 ? total / count : 0;
}

absl::StatusOr<LearnedState> TuneState(const Rwkv4TrainModel& model,
                                       const std::vector<std::string>& docs,
                                       const StateTuneOptions& o) {
  if (docs.empty()) return absl::InvalidArgumentError("no training dialogues");
  const int64_t L = model.shape().n_layer, C = model.shape().n_embd;
  // b = exp(log_b) (positive, learned on a log scale: the accumulators span
  // orders of magnitude), a = b * mean (mean: the value average the
  // denominator weighs). Starts near the zero state.
  torch::Tensor log_b = torch::full({L, C}, o.init_log_b).requires_grad_(true);
  torch::Tensor mean = torch::zeros({L, C}).requires_grad_(true);
  torch::Tensor xa = torch::zeros({L, C}).requires_grad_(true);
  torch::Tensor xf = torch::zeros({L, C}).requires_grad_(true);
  torch::optim::Adam opt({log_b, mean, xa, xf},
                         torch::optim::AdamOptions(o.lr));
  uint64_t h = o.seed * 0x9E3779B97F4A7C15ull + 7;
  for (int64_t step = 0; step < o.steps; ++step) {
    std::vector<const std::string*> chunk;
    for (int i = 0; i < o.batch; ++i) {
      h = h * 6364136223846793005ull + 1442695040888963407ull;
      chunk.push_back(&docs[(h >> 33) % docs.size()]);
    }
    Batch bt = MakeBatch(chunk);
    torch::Tensor b =
        torch::exp(o.max_log_b * torch::tanh(log_b / o.max_log_b));
    LearnedState ls{b * mean, b, xa, xf};
    TrainState st = Expand(ls, chunk.size());
    opt.zero_grad();
    auto [sum, n] = MaskedLoss(model, bt, &st);
    torch::Tensor loss = sum / std::max(1.0, n);
    loss.backward();
    opt.step();
    if (o.progress) {
      std::fprintf(stderr, "\rstate-tune step %ld/%ld reply loss %.4f   ",
                   step + 1, o.steps, loss.item<double>());
    }
  }
  if (o.progress) std::fprintf(stderr, "\n");
  torch::NoGradGuard ng;
  torch::Tensor b =
      torch::exp(o.max_log_b * torch::tanh(log_b / o.max_log_b)).detach();
  return LearnedState{b * mean.detach(), b, xa.detach().clone(),
                      xf.detach().clone()};
}

absl::StatusOr<std::string> SerializeLearnedState(
    const LearnedState& s, const std::string& model_fingerprint) {
  std::vector<torch::Tensor> keep = {
      s.a.contiguous(), s.b.contiguous(), torch::zeros_like(s.a),
      s.x_att.contiguous(), s.x_ffn.contiguous()};
  const char* names[] = {"att_aa", "att_ab", "att_pp", "att_x_prev",
                         "ffn_x_prev"};
  std::vector<engine::TensorToWrite> tw;
  for (int i = 0; i < 5; ++i) {
    keep[i] = keep[i].to(torch::kFloat).contiguous();
    tw.push_back(
        engine::TensorToWrite{names[i],
                              engine::DType::kFloat32,
                              {keep[i].size(0), keep[i].size(1)},
                              keep[i].data_ptr(),
                              static_cast<size_t>(keep[i].numel() * 4)});
  }
  std::vector<engine::ScalarToWrite> scalars = {
      {"rwkv_state_format", int64_t{engine::kStateFormatVersion}},
      {"architecture", std::string("rwkv4")},
      {"model_fingerprint", model_fingerprint},
      {"dtype", std::string("float32")},
      {"token_count", int64_t{0}},
      {"n_layer", int64_t{s.a.size(0)}},
  };
  return engine::SerializePth(tw, scalars);
}

std::vector<std::string> StyledDialogues(uint64_t seed, int count) {
  CorpusOptions co;
  co.seed = seed;
  co.num_dialogues = count * 8 + 16;
  std::vector<std::string> out;
  for (const std::string& d : GenerateDialogues(co)) {
    if (d.find("name") != std::string::npos) continue;  // facts/small talk
    std::string s = WithArrReplies(d);
    out.push_back(std::move(s));
    if (static_cast<int>(out.size()) == count) break;
  }
  return out;
}

absl::StatusOr<double> EngineReplyLoss(engine::Engine& eng,
                                       const engine::State& start,
                                       const std::vector<std::string>& docs) {
  double total = 0, count = 0;
  for (const std::string& d : docs) {
    std::vector<float> m = ReplyMask(d);
    engine::State st = start.Clone();
    for (size_t t = 0; t + 1 < d.size(); ++t) {
      const int32_t tok[] = {static_cast<uint8_t>(d[t])};
      absl::StatusOr<engine::Logits> l = eng.Forward(tok, st);
      if (!l.ok()) return l.status();
      if (m[t + 1] == 0) continue;
      absl::Span<const float> row = l->Row(0);
      double mx = row[0];
      for (float v : row) mx = std::max<double>(mx, v);
      double z = 0;
      for (float v : row) z += std::exp(v - mx);
      total += std::log(z) + mx - row[static_cast<uint8_t>(d[t + 1])];
      count += 1;
    }
  }
  return count > 0 ? total / count : 0;
}

}  // namespace rwkv::train
