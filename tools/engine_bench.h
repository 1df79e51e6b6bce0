// The measurements of rwkv-bench: speed of the RWKV engine for each weight
// dtype, on random weights of a real model's shape and, when given, on a
// checkpoint file of the same shape, next to the limits of this machine
// measured in the same run (memory read bandwidth, fp32 GEMM peak). Every
// target is a ratio of figures from this run (the host's bandwidth varies
// by 2x between days). All engines are loaded first and single-stream
// decode is measured in interleaved rounds, so that a shared machine's load
// changes hit every dtype and source alike. Prints a text report as it goes
// and returns every figure as one JSON object.
#ifndef RWKV_TOOLS_ENGINE_BENCH_H_
#define RWKV_TOOLS_ENGINE_BENCH_H_

#include <nlohmann/json.hpp>
#include <ostream>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/rwkv_engine.h"

namespace rwkv::tools {

struct EngineBenchOptions {
  // Random model shape (rwkv-bench --arch/--shape); ignored for the shape
  // when `model` is set (the random model then takes the file's dims).
  engine::RandomModelSpec spec;
  std::string shape_name;  // for the report ("169m", ...)
  // A checkpoint, measured next to random weights of its shape.
  std::string model;
  // Weight dtypes to measure, in order ("fp32", "bf16", "int8").
  std::vector<std::string> dtypes = {"fp32", "bf16", "int8"};
  int threads = 0;
  int prompt_tokens = 512;
  int decode_tokens = 64;
  std::vector<int> batches = {1, 8, 32, 64};
  bool serial_prefill = true;
};

absl::StatusOr<nlohmann::json> RunEngineBench(const EngineBenchOptions& o,
                                              std::ostream& out);

}  // namespace rwkv::tools

#endif  // RWKV_TOOLS_ENGINE_BENCH_H_
