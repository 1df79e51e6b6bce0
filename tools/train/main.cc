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
// "The demo model" for the commands that produced models/demo/.
#include <torch/torch.h>

#include <cstdio>
#include <string>

#include "absl/strings/str_cat.h"
#include "engine/checkpoint_writer.h"
#include "engine/rwkv_engine.h"
#include "tools/cli_args.h"
#include "tools/train/chat_eval.h"
#include "tools/train/corpus.h"
#include "tools/train/state_tuner.h"
#include "tools/train/trainer.h"

namespace rwkv::train {
namespace {

using tools::CliArgs;

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "rwkv-train: %s\n", std::string(s.message()).c_str());
  return 1;
}

int Usage() {
  std::fprintf(
      stderr,
      "usage: rwkv-train <command> [flags]\n"
      "  corpus      --out D.jsonl [--seed S] [--dialogues N] [--style arr]\n"
      "              [--arr-percent P]\n"
      "  train       --data D --out M.pth [--n-layer L] [--n-embd C] [--ctx "
      "T]\n"
      "              [--batch B] [--steps N] [--lr X] [--lr-final X] "
      "[--warmup N]\n"
      "              [--seed S] [--save-every N] [--stop-after N] [--resume]\n"
      "              [--init W.pth] [--fp16] [--csv F] [--svg F]\n"
      "              [--eval-every-save] [--threads N]\n"
      "  eval-memory --model M [--count N] [--threads N]\n"
      "  plot        --csv F [--svg G]   (re-plot a loss CSV)\n"
      "  state-tune  --model M --data D --out S [--steps N] [--lr X] [--seed "
      "S]\n"
      "              [--eval-data H] [--threads N]\n");
  return 2;
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

int CorpusMain(int argc, char** argv) {
  CliArgs args({"out", "seed", "dialogues", "style", "arr-percent"}, {});
  absl::Status s = args.Parse(argc, argv, 2);
  if (!s.ok()) return Fail(s);
  std::optional<std::string> out = args.Get("out");
  if (!out) return Usage();
  absl::StatusOr<int64_t> seed = args.GetInt("seed", 1);
  absl::StatusOr<int64_t> n = args.GetInt("dialogues", 20000);
  if (!seed.ok()) return Fail(seed.status());
  if (!n.ok()) return Fail(n.status());
  if (*n < 1 || *n > 10'000'000) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--dialogues must be in [1, 10000000], got ", *n)));
  }
  absl::StatusOr<int64_t> arr = args.GetInt("arr-percent", 0);
  if (!arr.ok()) return Fail(arr.status());
  if (*arr < 0 || *arr > 100) {
    return Fail(absl::InvalidArgumentError(
        absl::StrCat("--arr-percent must be in [0, 100], got ", *arr)));
  }
  CorpusOptions co;
  co.arr_percent = static_cast<int>(*arr);
  co.seed = *seed;
  co.num_dialogues = *n;
  const std::string style = args.GetOr("style", "");
  if (!style.empty() && style != "arr") {
    return Fail(absl::InvalidArgumentError("--style must be 'arr'"));
  }
  if (!style.empty() && co.arr_percent > 0) {
    return Fail(absl::InvalidArgumentError(
        "--arr-percent mixes styles into the base corpus; --style arr writes "
        "only styled dialogues: give one of them"));
  }
  s = engine::WriteFileAtomically(
      *out, DialoguesToJsonl(style.empty() ? GenerateDialogues(co)
                                           : StyledDialogues(*seed, *n)));
  if (!s.ok()) return Fail(s);
  std::fprintf(stderr, "wrote %ld dialogues to %s\n", *n, out->c_str());
  return 0;
}

int TrainMain(int argc, char** argv) {
  CliArgs args({"data",   "out",   "init",       "n-layer",      "n-embd",
                "ctx",    "batch", "steps",      "lr",           "lr-final",
                "warmup", "seed",  "save-every", "log-every",    "stop-after",
                "csv",    "svg",   "threads",    "weight-decay", "grad-clip"},
               {"resume", "fp16", "eval-every-save", "no-progress"});
  absl::Status s = args.Parse(argc, argv, 2);
  if (!s.ok()) return Fail(s);
  TrainOptions o;
  o.data = args.GetOr("data", "");
  o.out = args.GetOr("out", "");
  o.init = args.GetOr("init", "");
  o.csv = args.GetOr("csv", "");
  o.svg = args.GetOr("svg", "");
  o.resume = args.Has("resume");
  o.fp16 = args.Has("fp16");
  o.progress = !args.Has("no-progress");
  if (o.data.empty() || o.out.empty()) return Usage();
  struct IntFlag {
    const char* name;
    int64_t def;
    int64_t* dst;
  };
  int64_t nl, ne, ctx, batch, seed, threads;
  IntFlag ints[] = {{"n-layer", 4, &nl},
                    {"n-embd", 128, &ne},
                    {"ctx", 256, &ctx},
                    {"batch", 8, &batch},
                    {"steps", 1000, &o.steps},
                    {"warmup", 50, &o.warmup},
                    {"seed", 1, &seed},
                    {"save-every", 100, &o.save_every},
                    {"log-every", 10, &o.log_every},
                    {"stop-after", 0, &o.stop_after},
                    {"threads", 1, &threads}};
  for (IntFlag& f : ints) {
    absl::StatusOr<int64_t> v = args.GetInt(f.name, f.def);
    if (!v.ok()) return Fail(v.status());
    *f.dst = *v;
  }
  struct DblFlag {
    const char* name;
    double def;
    double* dst;
  };
  DblFlag dbls[] = {{"lr", 1e-3, &o.lr},
                    {"lr-final", 1e-4, &o.lr_final},
                    {"weight-decay", 0.0, &o.weight_decay},
                    {"grad-clip", 1.0, &o.grad_clip}};
  for (DblFlag& f : dbls) {
    absl::StatusOr<double> v = args.GetDouble(f.name, f.def);
    if (!v.ok()) return Fail(v.status());
    *f.dst = *v;
  }
  o.shape.n_layer = nl;
  o.shape.n_embd = ne;
  o.ctx = ctx;
  o.batch = batch;
  o.seed = seed;
  SetThreads(threads);
  if (args.Has("eval-every-save")) {
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
               o.ctx, o.batch, o.steps, static_cast<int>(threads));
  absl::StatusOr<TrainResult> r = Train(o);
  if (!r.ok()) return Fail(r.status());
  std::fprintf(stderr,
               "done: %ld steps in %.1f s, last loss %.4f (%.3f bits per "
               "byte); weights in %s\n",
               r->steps_done, r->seconds, r->last_loss,
               r->last_loss / std::log(2.0), o.out.c_str());
  return 0;
}

int PlotMain(int argc, char** argv) {
  CliArgs args({"csv", "svg"}, {});
  absl::Status s = args.Parse(argc, argv, 2);
  if (!s.ok()) return Fail(s);
  std::optional<std::string> csv = args.Get("csv");
  if (!csv) return Usage();
  s = PlotCsv(*csv, args.GetOr("svg", *csv + ".svg"));
  return s.ok() ? 0 : Fail(s);
}

int EvalMemoryMain(int argc, char** argv) {
  CliArgs args({"model", "count", "threads"}, {});
  absl::Status s = args.Parse(argc, argv, 2);
  if (!s.ok()) return Fail(s);
  std::optional<std::string> model = args.Get("model");
  if (!model) return Usage();
  absl::StatusOr<int64_t> count = args.GetInt("count", 50);
  absl::StatusOr<int64_t> threads = args.GetInt("threads", 1);
  if (!count.ok()) return Fail(count.status());
  if (!threads.ok()) return Fail(threads.status());
  SetThreads(*threads);
  s = EvalModel(*model, *count, true);
  return s.ok() ? 0 : Fail(s);
}

}  // namespace
}  // namespace rwkv::train

int main(int argc, char** argv) {
  using namespace rwkv::train;
  if (argc < 2) return Usage();
  const std::string cmd = argv[1];
  if (cmd == "corpus") return CorpusMain(argc, argv);
  if (cmd == "train") return TrainMain(argc, argv);
  if (cmd == "eval-memory") return EvalMemoryMain(argc, argv);
  if (cmd == "plot") return PlotMain(argc, argv);
  if (cmd == "state-tune") return StateTuneMain(argc, argv);
  return Usage();
}
