// Training loop of rwkv-train: AdamW with linear warmup and cosine decay,
// batches of whole dialogues (each sequence starts from the zero state at a
// document start), a progress bar on stderr, a loss CSV and its SVG plot,
// and checkpoints that resume exactly.
//
// Files written for --out M.pth:
//   M.pth        the weights (BlinkDL RWKV-4 names; loadable by the engine)
//   M.pth.optim  the AdamW state (torch::save archive)
//   M.pth.json   step, options and shape, so --resume continues
//   --csv / --svg  the loss curve
// Batch contents depend only on (seed, step), so a resumed run produces the
// same steps as an uninterrupted one.
#ifndef RWKV_TOOLS_TRAIN_TRAINER_H_
#define RWKV_TOOLS_TRAIN_TRAINER_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "tools/train/rwkv4_train_model.h"

namespace rwkv::train {

// Documents of a corpus: JSONL ({"text": ...} per line) or plain text (one
// document).
absl::StatusOr<std::vector<std::string>> LoadCorpus(const std::string& path);

// Byte sequences of length ctx+1 for one step: each row starts at the
// beginning of a random document and continues with further random
// documents. Deterministic in (seed, step).
std::vector<std::vector<int64_t>> SampleBatch(
    const std::vector<std::string>& docs, int batch, int ctx, uint64_t seed,
    int64_t step);

struct TrainOptions {
  std::string data;
  std::string out;      // checkpoint path (.pth)
  std::string init;     // optional: start from these weights
  bool resume = false;  // continue from out (+ .optim, .json)
  ModelShape shape;
  int ctx = 256;
  int batch = 8;
  int64_t steps = 1000;
  // If > 0, stop (after checkpointing) once this step is reached; the
  // schedule still spans `steps` (for pausing and resuming later).
  int64_t stop_after = 0;
  double lr = 1e-3;
  double lr_final = 1e-4;
  int64_t warmup = 50;
  double weight_decay = 0.0;
  double grad_clip = 1.0;
  uint64_t seed = 1;
  int64_t save_every = 100;
  int64_t log_every = 10;  // CSV rows average this many steps
  std::string csv;         // default: out + ".csv"
  std::string svg;         // default: out + ".svg"
  bool progress = true;
  bool fp16 = false;  // store the final weights as fp16
  // Called after each checkpoint with (step, path); may print evaluations.
  std::function<void(int64_t, const std::string&)> on_checkpoint;
};

struct TrainResult {
  int64_t steps_done = 0;
  double last_loss = 0;  // mean over the last log window (nats/byte)
  double seconds = 0;
  std::vector<double> step_losses;  // this run's per-step losses
};

absl::StatusOr<TrainResult> Train(const TrainOptions& options);

// Learning rate at `step` of `total`.
double LearningRate(const TrainOptions& o, int64_t step);

// Rewrites the SVG plot of a loss CSV written by Train.
absl::Status PlotCsv(const std::string& csv, const std::string& svg);

// An SVG line plot of (step, bits per byte).
std::string LossSvg(const std::vector<std::pair<int64_t, double>>& points,
                    const std::string& title);

}  // namespace rwkv::train

#endif  // RWKV_TOOLS_TRAIN_TRAINER_H_
