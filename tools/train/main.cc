// rwkv-train: trains byte-level RWKV-4 models on CPU with LibTorch autograd.
//
//   rwkv-train corpus --out D.jsonl [--seed S] [--dialogues N] [--style arr]
//                     [--arr-percent P]
//   rwkv-train train --data D --out M.pth [--n-layer L] [--n-embd C]
//                    [--ctx T] [--batch B] [--steps N] [--lr X]
//                    [--lr-final X] [--warmup N] [--seed S] [--save-every N]
//                    [--resume] [--init W.pth] [--fp16] [--csv F] [--svg F]
//                    [--eval-every-save] [--threads N]
//   rwkv-train eval-memory --model M [--count N] [--threads N]
//   rwkv-train plot --csv F [--svg G]
//   rwkv-train state-tune --model M --data D --out S [--steps N] [--lr X]
//                    [--seed S] [--eval-data H]
//
// See tools/train/trainer.h for the checkpoint files and the README section
// "The demo model" for the commands that produced models/demo/. Flags are
// CLI11 subcommand options bound to the library's option structs
// (CorpusOptions, TrainOptions, StateTuneOptions), whose member initializers
// are the defaults `rwkv-train <command> --help` shows.
#include <torch/torch.h>

#include <cstdio>
#include <limits>
#include <optional>
#include <string>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "common/cli_parse.h"
#include "common/cli_validators.h"
#include "engine/checkpoint_writer.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "tools/train/chat_eval.h"
#include "tools/train/corpus.h"
#include "tools/train/state_tuner.h"
#include "tools/train/trainer.h"

namespace rwkv::train {
namespace {

using common::IntIn;

constexpr int64_t kInt64Max = std::numeric_limits<int64_t>::max();

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "rwkv-train: %s\n", std::string(s.message()).c_str());
  return 1;
}

void SetThreads(int n) {
  torch::set_num_threads(n);
  torch::set_num_interop_threads(1);
}

void PrintEval(const char* what, const EvalResult& r, bool details) {
  std::printf("%-22s %3d/%3d = %5.1f%%\n", what, r.correct, r.total,
              100.0 * r.rate());
  if (details) {
    for (size_t i = 0; i < r.failures.size() && i < 8; ++i) {
      std::printf("    miss  %s\n", r.failures[i].c_str());
    }
  }
  std::fflush(stdout);
}

absl::Status EvalModel(const std::string& path, int count, bool details) {
  engine::EngineOptions eo;
  eo.model_path = path;
  eo.num_threads = torch::get_num_threads();
  absl::StatusOr<std::unique_ptr<engine::RwkvEngine>> eng =
      engine::RwkvEngine::Create(eo);
  if (!eng.ok()) return eng.status();
  std::vector<std::string> train_names(
      TrainingNames().begin(),
      TrainingNames().begin() +
          std::min<size_t>(count, TrainingNames().size()));
  std::vector<std::string> held(
      HeldOutNames().begin(),
      HeldOutNames().begin() + std::min<size_t>(count, HeldOutNames().size()));
  absl::StatusOr<EvalResult> a = EvalNameMemory(**eng, train_names);
  if (!a.ok()) return a.status();
  PrintEval("memory (train names)", *a, details);
  absl::StatusOr<EvalResult> b = EvalNameMemory(**eng, held);
  if (!b.ok()) return b.status();
  PrintEval("memory (held-out)", *b, details);
  absl::StatusOr<EvalResult> c = EvalCapitals(**eng);
  if (!c.ok()) return c.status();
  PrintEval("capitals", *c, details);
  return absl::OkStatus();
}

// `rwkv-train corpus`.
struct CorpusFlags {
  CorpusOptions corpus;
  std::string out;
  // "arr": only " Arr!"-style dialogues (StyledDialogues); empty: the base
  // corpus.
  std::string style;
};

CLI::App* AddCorpusCommand(CLI::App& app, CorpusFlags* f) {
  CLI::App* cmd =
      app.add_subcommand("corpus", "writes the synthetic dialogue corpus");
  cmd->add_option("--out", f->out, "output .jsonl")
      ->required()
      ->type_name("D.jsonl");
  cmd->add_option("--seed", f->corpus.seed, "")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("S");
  cmd->add_option("--dialogues", f->corpus.num_dialogues, "")
      ->transform(IntIn(1, 10'000'000))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--style", f->style,
                  "arr: every reply ends in \" Arr!\" (state-tuning data)")
      ->check(common::OneOf({"arr"}))
      ->type_name("arr");
  cmd->add_option("--arr-percent", f->corpus.arr_percent,
                  "percent of dialogues in the \" Arr!\" style (mixed "
                  "corpus)")
      ->transform(IntIn(0, 100))
      ->capture_default_str()
      ->type_name("P");
  return cmd;
}

int RunCorpus(const CorpusFlags& f) {
  if (!f.style.empty() && f.corpus.arr_percent > 0) {
    return Fail(absl::InvalidArgumentError(
        "--arr-percent mixes styles into the base corpus; --style arr writes "
        "only styled dialogues: give one of them"));
  }
  const int n = f.corpus.num_dialogues;
  absl::Status s = engine::WriteFileAtomically(
      f.out,
      DialoguesToJsonl(f.style.empty() ? GenerateDialogues(f.corpus)
                                       : StyledDialogues(f.corpus.seed, n)));
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "wrote %d dialogues to %s\n", n, f.out.c_str());
  return 0;
}

// `rwkv-train train`.
struct TrainFlags {
  TrainOptions train;
  // Compute threads (the run is deterministic for a seed with one).
  int threads = 1;
  bool eval_every_save = false;
  bool no_progress = false;
};

CLI::App* AddTrainCommand(CLI::App& app, TrainFlags* f) {
  TrainOptions& o = f->train;
  CLI::App* cmd = app.add_subcommand(
      "train", "trains a byte-level RWKV-4 model on a JSONL or text corpus");
  cmd->add_option("--data", o.data, "JSONL ({\"text\": ...} per line) or text")
      ->required()
      ->type_name("D");
  cmd->add_option("--out", o.out, "checkpoint (.pth; also .optim, .json)")
      ->required()
      ->type_name("M.pth");
  cmd->add_option("--init", o.init, "start from these weights")
      ->type_name("W.pth");
  cmd->add_flag("--resume", o.resume,
                "continue from --out (+ .optim, .json) exactly");
  cmd->add_option("--n-layer", o.shape.n_layer, "")
      ->transform(IntIn(1, 256))
      ->capture_default_str()
      ->type_name("L");
  cmd->add_option("--n-embd", o.shape.n_embd, "")
      ->transform(IntIn(1, 16384))
      ->capture_default_str()
      ->type_name("C");
  cmd->add_option("--ctx", o.ctx, "training sequence length")
      ->transform(IntIn(1, 1 << 20))
      ->capture_default_str()
      ->type_name("T");
  cmd->add_option("--batch", o.batch, "")
      ->transform(IntIn(1, 1 << 16))
      ->capture_default_str()
      ->type_name("B");
  cmd->add_option("--steps", o.steps, "length of the schedule")
      ->transform(IntIn(1, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--stop-after", o.stop_after,
                  "stop (after checkpointing) at this step; 0: at --steps")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--lr", o.lr, "peak learning rate")
      ->check(common::NumberAbove(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--lr-final", o.lr_final, "learning rate at the end")
      ->check(common::NumberAtLeast(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--warmup", o.warmup, "linear warm-up steps")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--weight-decay", o.weight_decay, "AdamW weight decay")
      ->check(common::NumberAtLeast(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--grad-clip", o.grad_clip, "gradient norm clip; 0: off")
      ->check(common::NumberAtLeast(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--seed", o.seed, "")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("S");
  cmd->add_option("--save-every", o.save_every, "checkpoint every N steps")
      ->transform(IntIn(1, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--log-every", o.log_every,
                  "CSV rows average this many steps")
      ->transform(IntIn(1, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--csv", o.csv, "loss CSV; none: --out + .csv")
      ->type_name("F");
  cmd->add_option("--svg", o.svg, "loss plot; none: --out + .svg")
      ->type_name("F");
  cmd->add_flag("--fp16", o.fp16, "store the final weights as fp16");
  cmd->add_flag("--eval-every-save", f->eval_every_save,
                "evaluate memory and capitals at every checkpoint");
  cmd->add_flag("--no-progress", f->no_progress, "no progress bar");
  cmd->add_option("--threads", f->threads, "")
      ->transform(IntIn(1, 1024))
      ->capture_default_str()
      ->type_name("N");
  return cmd;
}

int RunTrain(TrainFlags f) {
  TrainOptions& o = f.train;
  o.progress = !f.no_progress;
  SetThreads(f.threads);
  if (f.eval_every_save) {
    o.on_checkpoint = [](int64_t step, const std::string& path) {
      std::printf("step %ld:\n", step);
      absl::Status st = EvalModel(path, 20, false);
      if (!st.ok()) std::printf("  eval failed: %s\n", st.ToString().c_str());
    };
  }
  Rwkv4TrainModel probe(o.shape, 0);
  std::fprintf(stderr,
               "rwkv-train: RWKV-4 %d layers, n_embd %d, %.3fM parameters, "
               "ctx %d, batch %d, %ld steps, %d thread(s)\n",
               o.shape.n_layer, o.shape.n_embd, probe.num_parameters() / 1e6,
               o.ctx, o.batch, o.steps, f.threads);
  absl::StatusOr<TrainResult> r = Train(o);
  if (!r.ok()) return Fail(r.status());
  std::fprintf(stderr,
               "done: %ld steps in %.1f s, last loss %.4f (%.3f bits per "
               "byte); weights in %s\n",
               r->steps_done, r->seconds, r->last_loss,
               r->last_loss / std::log(2.0), o.out.c_str());
  return 0;
}

// `rwkv-train plot`.
struct PlotFlags {
  std::string csv;
  // Empty: csv + ".svg".
  std::string svg;
};

CLI::App* AddPlotCommand(CLI::App& app, PlotFlags* f) {
  CLI::App* cmd = app.add_subcommand("plot", "re-plots a loss CSV");
  cmd->add_option("--csv", f->csv, "")->required()->type_name("F");
  cmd->add_option("--svg", f->svg, "none: --csv + .svg")->type_name("G");
  return cmd;
}

int RunPlot(const PlotFlags& f) {
  absl::Status s = PlotCsv(f.csv, f.svg.empty() ? f.csv + ".svg" : f.svg);
  return s.ok() ? 0 : Fail(s);
}

// `rwkv-train eval-memory`.
struct EvalMemoryFlags {
  std::string model;
  // Names per set.
  int count = 50;
  int threads = 1;
};

CLI::App* AddEvalMemoryCommand(CLI::App& app, EvalMemoryFlags* f) {
  CLI::App* cmd = app.add_subcommand(
      "eval-memory", "name memory and capitals of a model, greedy");
  cmd->add_option("--model", f->model, "")->required()->type_name("M");
  cmd->add_option("--count", f->count, "names per set")
      ->transform(IntIn(1, 1 << 20))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--threads", f->threads, "")
      ->transform(IntIn(1, 1024))
      ->capture_default_str()
      ->type_name("N");
  return cmd;
}

int RunEvalMemory(const EvalMemoryFlags& f) {
  SetThreads(f.threads);
  absl::Status s = EvalModel(f.model, f.count, true);
  return s.ok() ? 0 : Fail(s);
}

// `rwkv-train state-tune`.
struct StateTuneFlags {
  StateTuneOptions tune;
  std::string model;
  std::string data;
  std::string out;
  // Held-out dialogues: print their reply loss from the zero and the tuned
  // state.
  std::string eval_data;
  int threads = 1;
  bool no_progress = false;
};

CLI::App* AddStateTuneCommand(CLI::App& app, StateTuneFlags* f) {
  StateTuneOptions& o = f->tune;
  CLI::App* cmd = app.add_subcommand(
      "state-tune",
      "learns an initial state with the weights frozen (state file format)");
  cmd->add_option("--model", f->model, "")->required()->type_name("M");
  cmd->add_option("--data", f->data, "training dialogues (JSONL)")
      ->required()
      ->type_name("D");
  cmd->add_option("--out", f->out, "state file")->required()->type_name("S");
  cmd->add_option("--eval-data", f->eval_data, "held-out dialogues")
      ->type_name("H");
  cmd->add_option("--steps", o.steps, "")
      ->transform(IntIn(1, kInt64Max))
      ->capture_default_str()
      ->type_name("N");
  cmd->add_option("--batch", o.batch, "")
      ->transform(IntIn(1, 1 << 16))
      ->capture_default_str()
      ->type_name("B");
  cmd->add_option("--lr", o.lr, "")
      ->check(common::NumberAbove(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--seed", o.seed, "")
      ->transform(IntIn(0, kInt64Max))
      ->capture_default_str()
      ->type_name("S");
  cmd->add_option("--init-log-b", o.init_log_b,
                  "starting log of the WKV denominator")
      ->check(common::FiniteNumber())
      ->capture_default_str()
      ->type_name("X");
  cmd->add_option("--max-log-b", o.max_log_b, "soft bound of log_b")
      ->check(common::NumberAbove(0))
      ->capture_default_str()
      ->type_name("X");
  cmd->add_flag("--no-progress", f->no_progress, "no progress bar");
  cmd->add_option("--threads", f->threads, "")
      ->transform(IntIn(1, 1024))
      ->capture_default_str()
      ->type_name("N");
  return cmd;
}

int RunStateTune(StateTuneFlags f) {
  auto fail = [](const absl::Status& st) {
    std::fprintf(stderr, "rwkv-train state-tune: %s\n",
                 std::string(st.message()).c_str());
    return 1;
  };
  StateTuneOptions& o = f.tune;
  o.progress = !f.no_progress;
  torch::set_num_threads(f.threads);

  absl::StatusOr<Rwkv4TrainModel> model = Rwkv4TrainModel::Load(f.model);
  if (!model.ok()) return fail(model.status());
  model->SetRequiresGrad(false);
  engine::EngineOptions eo;
  eo.model_path = f.model;
  eo.num_threads = f.threads;
  absl::StatusOr<std::unique_ptr<engine::RwkvEngine>> eng =
      engine::RwkvEngine::Create(eo);
  if (!eng.ok()) return fail(eng.status());
  absl::StatusOr<std::vector<std::string>> docs = LoadCorpus(f.data);
  if (!docs.ok()) return fail(docs.status());

  absl::StatusOr<LearnedState> learned = TuneState(*model, *docs, o);
  if (!learned.ok()) return fail(learned.status());
  absl::StatusOr<std::string> bytes =
      SerializeLearnedState(*learned, (*eng)->config().fingerprint);
  if (!bytes.ok()) return fail(bytes.status());
  // Round trip through the toolkit's loader before writing.
  absl::StatusOr<engine::State> state =
      engine::ParseState(*bytes, f.out, (*eng)->model());
  if (!state.ok()) return fail(state.status());
  absl::Status s = engine::WriteFileAtomically(f.out, *bytes);
  if (!s.ok()) return fail(s);
  std::printf("wrote state %s\n", f.out.c_str());

  if (!f.eval_data.empty()) {
    absl::StatusOr<std::vector<std::string>> held = LoadCorpus(f.eval_data);
    if (!held.ok()) return fail(held.status());
    const double zero = ReplyLoss(*model, *held, nullptr);
    const double tuned = ReplyLoss(*model, *held, &*learned);
    std::printf(
        "held-out reply loss: zero state %.4f, tuned state %.4f nats/byte "
        "(%.1f%% lower)\n",
        zero, tuned, 100.0 * (1 - tuned / zero));
    absl::StatusOr<double> ez =
        EngineReplyLoss(**eng, (*eng)->NewState(), *held);
    absl::StatusOr<double> et = EngineReplyLoss(**eng, *state, *held);
    if (!ez.ok()) return fail(ez.status());
    if (!et.ok()) return fail(et.status());
    std::printf(
        "held-out reply loss through the engine: zero state %.4f, tuned "
        "state %.4f nats/byte (%.1f%% lower)\n",
        *ez, *et, 100.0 * (1 - *et / *ez));
  }
  for (const char* q : {"What is the capital of France?", "How are you?",
                        "What is the capital of Japan?"}) {
    engine::State st = state->Clone();
    absl::StatusOr<std::string> r = ChatTurn(**eng, st, q);
    if (!r.ok()) return fail(r.status());
    std::printf("  User: %s\n  Assistant: %s\n", q, r->c_str());
  }
  return 0;
}

}  // namespace
}  // namespace rwkv::train

int main(int argc, char** argv) {
  using namespace rwkv::train;
  CorpusFlags corpus;
  TrainFlags train;
  PlotFlags plot;
  EvalMemoryFlags eval_memory;
  StateTuneFlags state_tune;
  CLI::App app("Trains byte-level RWKV-4 models on CPU with LibTorch.",
               "rwkv-train");
  app.footer("Run 'rwkv-train <command> --help' for a command's flags.");
  app.get_formatter()->column_width(34);
  const CLI::App* corpus_cmd = AddCorpusCommand(app, &corpus);
  const CLI::App* train_cmd = AddTrainCommand(app, &train);
  const CLI::App* eval_cmd = AddEvalMemoryCommand(app, &eval_memory);
  const CLI::App* plot_cmd = AddPlotCommand(app, &plot);
  const CLI::App* tune_cmd = AddStateTuneCommand(app, &state_tune);
  if (std::optional<int> exit =
          rwkv::common::HandleCommandLine(app, argc, argv)) {
    return *exit;
  }
  if (corpus_cmd->parsed()) return RunCorpus(corpus);
  if (train_cmd->parsed()) return RunTrain(train);
  if (eval_cmd->parsed()) return RunEvalMemory(eval_memory);
  if (plot_cmd->parsed()) return RunPlot(plot);
  if (tune_cmd->parsed()) return RunStateTune(state_tune);
  // Not require_subcommand(1): CLI11 would then report a missing command
  // before an unknown one.
  std::fprintf(stderr,
               "rwkv-train: missing command (corpus, train, eval-memory, "
               "plot, state-tune)\nRun 'rwkv-train --help' for the "
               "commands.\n");
  return 2;
}
