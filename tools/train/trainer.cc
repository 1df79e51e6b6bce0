#include "tools/train/trainer.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "engine/checkpoint_writer.h"
#include "nlohmann/json.hpp"

namespace rwkv::train {
namespace {

uint64_t Mix(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return absl::NotFoundError(absl::StrCat(path, ": cannot open"));
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::string FormatDuration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) {
    return absl::StrFormat("%dh%02dm", t / 3600, (t / 60) % 60);
  }
  return absl::StrFormat("%dm%02ds", t / 60, t % 60);
}

struct CsvRow {
  int64_t step;
  double loss, bpb, lr, elapsed;
};

std::vector<CsvRow> ReadCsv(const std::string& path, int64_t max_step) {
  std::vector<CsvRow> rows;
  std::ifstream f(path);
  std::string line;
  while (std::getline(f, line)) {
    CsvRow r;
    if (std::sscanf(line.c_str(), "%ld,%lf,%lf,%lf,%lf", &r.step, &r.loss,
                    &r.bpb, &r.lr, &r.elapsed) == 5 &&
        r.step <= max_step) {
      rows.push_back(r);
    }
  }
  return rows;
}

absl::Status WriteCurves(const std::vector<CsvRow>& rows,
                         const std::string& csv, const std::string& svg) {
  std::string out = "step,loss,bits_per_byte,lr,elapsed_s\n";
  std::vector<std::pair<int64_t, double>> pts;
  for (const CsvRow& r : rows) {
    out += absl::StrFormat("%d,%.5f,%.5f,%.6g,%.1f\n", r.step, r.loss, r.bpb,
                           r.lr, r.elapsed);
    pts.emplace_back(r.step, r.bpb);
  }
  absl::Status st = engine::WriteFileAtomically(csv, out);
  if (!st.ok()) return st;
  return engine::WriteFileAtomically(
      svg, LossSvg(pts, "rwkv-train: training loss (bits per byte)"));
}

}  // namespace

absl::StatusOr<std::vector<std::string>> LoadCorpus(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) return text.status();
  std::vector<std::string> docs;
  const bool jsonl =
      path.size() > 6 && (path.substr(path.size() - 6) == ".jsonl" ||
                          path.substr(path.size() - 5) == ".json");
  if (!jsonl) {
    if (text->empty()) return absl::InvalidArgumentError(path + ": empty");
    docs.push_back(std::move(*text));
    return docs;
  }
  std::istringstream in(*text);
  std::string line;
  int64_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (line.empty()) continue;
    nlohmann::json j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("text") ||
        !j["text"].is_string()) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", n, ": expected a JSON object with a \"text\" string"));
    }
    std::string t = j["text"].get<std::string>();
    if (!t.empty()) docs.push_back(std::move(t));
  }
  if (docs.empty()) return absl::InvalidArgumentError(path + ": no documents");
  return docs;
}

std::vector<std::vector<int64_t>> SampleBatch(
    const std::vector<std::string>& docs, int batch, int ctx, uint64_t seed,
    int64_t step) {
  std::vector<std::vector<int64_t>> rows(batch);
  uint64_t h = Mix(Mix(seed) ^ static_cast<uint64_t>(step));
  for (int b = 0; b < batch; ++b) {
    std::vector<int64_t>& r = rows[b];
    r.reserve(ctx + 1);
    if (docs.size() == 1) {  // plain text: a random window
      const std::string& d = docs[0];
      h = Mix(h);
      const size_t span =
          d.size() > static_cast<size_t>(ctx + 1) ? d.size() - (ctx + 1) : 1;
      size_t pos = h % span;
      while (static_cast<int>(r.size()) < ctx + 1) {
        r.push_back(static_cast<uint8_t>(d[pos % d.size()]));
        ++pos;
      }
      continue;
    }
    while (static_cast<int>(r.size()) < ctx + 1) {
      h = Mix(h);
      const std::string& d = docs[h % docs.size()];
      for (char c : d) {
        if (static_cast<int>(r.size()) == ctx + 1) break;
        r.push_back(static_cast<uint8_t>(c));
      }
    }
  }
  return rows;
}

absl::Status PlotCsv(const std::string& csv, const std::string& svg) {
  std::vector<CsvRow> rows = ReadCsv(csv, INT64_MAX);
  if (rows.empty()) return absl::InvalidArgumentError(csv + ": no rows");
  std::vector<std::pair<int64_t, double>> pts;
  for (const CsvRow& r : rows) pts.emplace_back(r.step, r.bpb);
  return engine::WriteFileAtomically(
      svg, LossSvg(pts, "rwkv-train: training loss (bits per byte)"));
}

double LearningRate(const TrainOptions& o, int64_t step) {
  if (step < o.warmup) {
    return o.lr * static_cast<double>(step + 1) / o.warmup;
  }
  const double span = std::max<int64_t>(1, o.steps - o.warmup);
  const double p = std::min(1.0, (step - o.warmup) / span);
  return o.lr_final + 0.5 * (o.lr - o.lr_final) * (1 + std::cos(M_PI * p));
}

std::string LossSvg(const std::vector<std::pair<int64_t, double>>& points,
                    const std::string& title) {
  const double W = 720, H = 420, L = 70, R = 20, T = 40, B = 50;
  double xmax = 1, ymin = 0, ymax = 1;
  if (!points.empty()) {
    xmax = std::max<double>(1, points.back().first);
    ymax = 0;
    for (const auto& p : points) ymax = std::max(ymax, p.second);
    ymax = std::ceil(ymax * 2) / 2;
    if (ymax <= 0) ymax = 1;
  }
  auto X = [&](double x) { return L + (W - L - R) * x / xmax; };
  auto Y = [&](double y) {
    return T + (H - T - B) * (1 - (y - ymin) / (ymax - ymin));
  };
  std::string s = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%g\" height=\"%g\" "
      "viewBox=\"0 0 %g %g\" font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%%\" height=\"100%%\" fill=\"white\"/>\n"
      "<text x=\"%g\" y=\"24\" text-anchor=\"middle\" font-size=\"15\">%s"
      "</text>\n",
      W, H, W, H, W / 2, title);
  // Grid and axis labels.
  for (int i = 0; i <= 5; ++i) {
    const double yv = ymin + (ymax - ymin) * i / 5;
    s += absl::StrFormat(
        "<line x1=\"%g\" y1=\"%.1f\" x2=\"%g\" y2=\"%.1f\" stroke=\"#ddd\"/>"
        "<text x=\"%g\" y=\"%.1f\" text-anchor=\"end\">%.2f</text>\n",
        L, Y(yv), W - R, Y(yv), L - 6, Y(yv) + 4, yv);
    const double xv = xmax * i / 5;
    s += absl::StrFormat(
        "<line x1=\"%.1f\" y1=\"%g\" x2=\"%.1f\" y2=\"%g\" stroke=\"#ddd\"/>"
        "<text x=\"%.1f\" y=\"%g\" text-anchor=\"middle\">%d</text>\n",
        X(xv), T, X(xv), H - B, X(xv), H - B + 16, static_cast<int64_t>(xv));
  }
  s += absl::StrFormat(
      "<rect x=\"%g\" y=\"%g\" width=\"%g\" height=\"%g\" fill=\"none\" "
      "stroke=\"#333\"/>\n"
      "<text x=\"%g\" y=\"%g\" text-anchor=\"middle\">step</text>\n"
      "<text x=\"16\" y=\"%g\" text-anchor=\"middle\" "
      "transform=\"rotate(-90 16 %g)\">bits per byte</text>\n",
      L, T, W - L - R, H - T - B, (L + W - R) / 2, H - 12, (T + H - B) / 2,
      (T + H - B) / 2);
  if (!points.empty()) {
    s += "<polyline fill=\"none\" stroke=\"#1f77b4\" stroke-width=\"1.5\" "
         "points=\"";
    for (const auto& p : points) {
      s += absl::StrFormat("%.1f,%.1f ", X(p.first), Y(p.second));
    }
    s += "\"/>\n";
  }
  s += "</svg>\n";
  return s;
}

absl::StatusOr<TrainResult> Train(const TrainOptions& o) {
  if (o.out.empty()) return absl::InvalidArgumentError("--out is required");
  absl::StatusOr<std::vector<std::string>> docs = LoadCorpus(o.data);
  if (!docs.ok()) return docs.status();
  const std::string csv = o.csv.empty() ? o.out + ".csv" : o.csv;
  const std::string svg = o.svg.empty() ? o.out + ".svg" : o.svg;
  const std::string optim_path = o.out + ".optim";
  const std::string json_path = o.out + ".json";

  int64_t start = 0;
  double elapsed_before = 0;
  std::optional<Rwkv4TrainModel> model;
  if (o.resume) {
    absl::StatusOr<std::string> js = ReadFile(json_path);
    if (!js.ok()) return js.status();
    nlohmann::json j = nlohmann::json::parse(*js, nullptr, false);
    if (j.is_discarded() || !j.contains("step")) {
      return absl::DataLossError(json_path + ": not a training checkpoint");
    }
    start = j["step"].get<int64_t>();
    elapsed_before = j.value("elapsed_s", 0.0);
    absl::StatusOr<Rwkv4TrainModel> m = Rwkv4TrainModel::Load(o.out);
    if (!m.ok()) return m.status();
    model.emplace(std::move(*m));
  } else if (!o.init.empty()) {
    absl::StatusOr<Rwkv4TrainModel> m = Rwkv4TrainModel::Load(o.init);
    if (!m.ok()) return m.status();
    model.emplace(std::move(*m));
  } else {
    model.emplace(o.shape, o.seed);
  }
  const int64_t V = model->shape().vocab_size;

  torch::optim::AdamW opt(model->parameters(),
                          torch::optim::AdamWOptions(o.lr)
                              .betas({0.9, 0.99})
                              .eps(1e-8)
                              .weight_decay(o.weight_decay));
  if (o.resume) {
    try {
      torch::load(opt, optim_path);
    } catch (const std::exception& e) {
      return absl::DataLossError(absl::StrCat(
          optim_path, ": cannot load optimizer state: ", e.what()));
    }
  }
  std::vector<CsvRow> rows =
      o.resume ? ReadCsv(csv, start) : std::vector<CsvRow>{};

  auto save = [&](int64_t step, double elapsed, bool final) -> absl::Status {
    absl::Status st = model->Save(o.out, final && o.fp16);
    if (!st.ok()) return st;
    try {
      torch::save(opt, optim_path + ".tmp");
    } catch (const std::exception& e) {
      return absl::InternalError(absl::StrCat(optim_path, ": ", e.what()));
    }
    if (std::rename((optim_path + ".tmp").c_str(), optim_path.c_str()) != 0) {
      return absl::InternalError(optim_path + ": rename failed");
    }
    nlohmann::json j = {{"step", step},
                        {"steps", o.steps},
                        {"seed", o.seed},
                        {"elapsed_s", elapsed},
                        {"n_layer", model->shape().n_layer},
                        {"n_embd", model->shape().n_embd},
                        {"vocab_size", V},
                        {"ctx", o.ctx},
                        {"batch", o.batch},
                        {"lr", o.lr},
                        {"lr_final", o.lr_final},
                        {"warmup", o.warmup},
                        {"data", o.data}};
    st = engine::WriteFileAtomically(json_path, j.dump(2) + "\n");
    if (!st.ok()) return st;
    return WriteCurves(rows, csv, svg);
  };

  TrainResult result;
  const auto t0 = std::chrono::steady_clock::now();
  auto now_s = [&] {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0)
        .count();
  };
  double window_loss = 0;
  int window_n = 0;
  double ema_step_s = 0;
  double last_t = 0;
  for (int64_t step = start; step < o.steps; ++step) {
    const double lr = LearningRate(o, step);
    for (auto& g : opt.param_groups()) {
      static_cast<torch::optim::AdamWOptions&>(g.options()).lr(lr);
    }
    std::vector<std::vector<int64_t>> rowsb =
        SampleBatch(*docs, o.batch, o.ctx, o.seed, step);
    torch::Tensor data = torch::empty({o.batch, o.ctx + 1}, torch::kLong);
    for (int b = 0; b < o.batch; ++b) {
      std::memcpy(data[b].data_ptr<int64_t>(), rowsb[b].data(),
                  sizeof(int64_t) * (o.ctx + 1));
    }
    torch::Tensor x = data.narrow(1, 0, o.ctx);
    torch::Tensor y = data.narrow(1, 1, o.ctx);
    opt.zero_grad();
    torch::Tensor logits = model->Forward(x);
    torch::Tensor loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, V}), y.reshape({-1}));
    loss.backward();
    if (o.grad_clip > 0) {
      torch::nn::utils::clip_grad_norm_(model->parameters(), o.grad_clip);
    }
    opt.step();
    const double lv = loss.item<double>();
    if (!std::isfinite(lv)) {
      return absl::InternalError(
          absl::StrCat("loss is ", lv, " at step ", step));
    }
    result.step_losses.push_back(lv);
    window_loss += lv;
    ++window_n;
    const double t = now_s();
    const double dt = t - last_t;
    last_t = t;
    // An EMA that ignores pauses (SIGSTOP) longer than 10x the typical step.
    if (ema_step_s == 0) {
      ema_step_s = dt;
    } else if (dt < 10 * ema_step_s) {
      ema_step_s = 0.95 * ema_step_s + 0.05 * dt;
    }
    const int64_t done = step + 1;
    if (done % o.log_every == 0 || done == o.steps) {
      const double ml = window_loss / window_n;
      rows.push_back({done, ml, ml / std::log(2.0), lr, elapsed_before + t});
      result.last_loss = ml;
      window_loss = 0;
      window_n = 0;
    }
    if (o.progress) {
      const double frac = static_cast<double>(done) / o.steps;
      const int width = 24;
      const int filled = static_cast<int>(frac * width);
      std::string bar(filled, '#');
      bar.resize(width, '.');
      const double shown = rows.empty() ? lv : rows.back().loss;
      std::fprintf(stderr,
                   "\r[%s] %ld/%ld loss %.4f bpb %.3f lr %.2e %.2f step/s "
                   "ETA %s   ",
                   bar.c_str(), done, o.steps, shown, shown / std::log(2.0), lr,
                   ema_step_s > 0 ? 1.0 / ema_step_s : 0.0,
                   FormatDuration(ema_step_s * (o.steps - done)).c_str());
      std::fflush(stderr);
    }
    const bool stop = o.stop_after > 0 && done >= o.stop_after;
    if (done % o.save_every == 0 || done == o.steps || stop) {
      absl::Status st = save(done, elapsed_before + now_s(), done == o.steps);
      if (!st.ok()) return st;
      if (o.on_checkpoint) {
        if (o.progress) std::fprintf(stderr, "\n");
        o.on_checkpoint(done, o.out);
      }
    }
    if (stop) {
      result.steps_done = done - start;
      result.seconds = now_s();
      if (o.progress) std::fprintf(stderr, "\n");
      return result;
    }
  }
  if (o.progress) std::fprintf(stderr, "\n");
  result.steps_done = o.steps - start;
  result.seconds = now_s();
  return result;
}

}  // namespace rwkv::train
