// State uploads (issue 15): ParseState refuses a file larger than any state
// of the model can be before parsing it (the hostile files of the report
// cost nothing), refuses a finite but unhealthy state unless
// allow_unhealthy, and a forward whose logits are not finite is the
// distinct OutOfRange error (IsNonFiniteLogits) that leaves the state as it
// was; in a batch only that row is affected.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "engine/checkpoint_writer.h"
#include "engine/logits.h"
#include "engine/rwkv_engine.h"
#include "engine/state_file.h"
#include "engine/state_inspect.h"
#include "tests/testing/allocation_counter.h"
#include "tests/testing/engine_test_util.h"
#include "tests/testing/hostile_files.h"

namespace rwkv::engine {
namespace {

using ::rwkv::testing::MaxAbsDiff;
using ::rwkv::testing::ScopedAllocationMeter;
using ::testing::HasSubstr;

constexpr int kLayers = 3;
constexpr int kEmbd = 48;

std::unique_ptr<RwkvEngine> Rwkv4Engine() {
  RandomModelSpec spec;
  spec.n_layer = kLayers;
  spec.n_embd = kEmbd;
  spec.vocab_size = 256;
  spec.seed = 21;
  EngineOptions options;
  options.num_threads = 1;
  absl::StatusOr<std::unique_ptr<RwkvEngine>> e =
      RwkvEngine::CreateRandom(spec, options);
  EXPECT_TRUE(e.ok()) << e.status();
  return *std::move(e);
}

// An RWKV-4 state file for `engine` whose components all hold `value`
// except att_pp (fresh: -1e30) and att_ab (0).
std::string Rwkv4StateFile(const Engine& engine, float x_prev) {
  const size_t n = kLayers * kEmbd;
  static std::vector<float> zeros, pp, x;
  zeros.assign(n, 0.0f);
  pp.assign(n, -1e30f);
  x.assign(n, x_prev);
  auto t = [&](const char* name, const std::vector<float>& v) {
    return TensorToWrite{
        name, DType::kFloat32, {kLayers, kEmbd}, v.data(), n * sizeof(float)};
  };
  const std::vector<TensorToWrite> tensors = {
      t("att_aa", zeros), t("att_ab", zeros), t("att_pp", pp),
      t("att_x_prev", x), t("ffn_x_prev", x)};
  const std::vector<ScalarToWrite> meta = {
      {"rwkv_state_format", int64_t{1}},
      {"architecture", std::string("rwkv4")},
      {"model_fingerprint", engine.config().fingerprint},
      {"dtype", std::string("float32")},
      {"token_count", int64_t{5}},
  };
  absl::StatusOr<std::string> bytes = SerializePth(tensors, meta);
  EXPECT_TRUE(bytes.ok()) << bytes.status();
  return *bytes;
}

TEST(StateUploadTest, LimitFollowsTheModelsStateSize) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  const int64_t state_bytes = 5 * kLayers * kEmbd * 4;
  EXPECT_EQ(engine->config().state_bytes_fp32, state_bytes);
  EXPECT_EQ(MaxStateFileBytes(engine->config()),
            2 * state_bytes + (int64_t{64} << 10));
  // A real state file of the model is well inside it.
  absl::StatusOr<std::string> file =
      SerializeState(engine->NewState(), StateDtype::kFloat32);
  ASSERT_TRUE(file.ok()) << file.status();
  EXPECT_LT(static_cast<int64_t>(file->size()),
            MaxStateFileBytes(engine->config()));
  EXPECT_TRUE(ParseState(*file, "fresh.pt", engine->model()).ok());
}

TEST(StateUploadTest, HostileUploadsAreRefusedBeforeParsing) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  for (const testing::NestedKeysSpec& spec :
       {testing::SharedKeys2MBSpec(), testing::SharedKeys132KBSpec()}) {
    std::string bomb = testing::NestedSharedKeysPth(spec);
    const size_t size = bomb.size();
    ScopedAllocationMeter meter;
    const absl::Status status =
        ParseState(std::move(bomb), "upload", engine->model()).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(status.message()),
                HasSubstr("a state file of " + std::to_string(size) +
                          " bytes is larger than any state of this model can "
                          "be (at most 71296 bytes"));
    EXPECT_LT(meter.peak(), 16 << 10);  // the message; nothing was parsed
  }
  // Under an explicit limit the same check applies to any upload.
  LoadStateOptions small;
  small.max_file_bytes = 1000;
  const std::string fresh =
      *SerializeState(engine->NewState(), StateDtype::kFloat32);
  EXPECT_THAT(
      std::string(
          ParseState(fresh, "s", engine->model(), small).status().message()),
      HasSubstr("at most 1000 bytes"));
}

TEST(StateUploadTest, UnhealthyStateIsRefusedUnlessAllowed) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  // Issue 15: finite, but x_prev near the float limit.
  const std::string file = Rwkv4StateFile(*engine, 3e38f);
  const absl::Status refused =
      ParseState(file, "big.pt", engine->model()).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("big.pt: state is unhealthy: att_x_prev max |x| = "));
  EXPECT_THAT(std::string(refused.message()), HasSubstr("allow-unhealthy"));
  LoadStateOptions allow;
  allow.allow_unhealthy = true;
  EXPECT_TRUE(ParseState(file, "big.pt", engine->model(), allow).ok());
  // A state within the bounds loads as before.
  EXPECT_TRUE(
      ParseState(Rwkv4StateFile(*engine, 0.5f), "ok.pt", engine->model()).ok());
}

TEST(StateUploadTest, NonFiniteLogitsAreADistinctErrorAndChangeNoState) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  LoadStateOptions allow;
  allow.allow_unhealthy = true;
  absl::StatusOr<State> state = ParseState(Rwkv4StateFile(*engine, 3e38f),
                                           "big.pt", engine->model(), allow);
  ASSERT_TRUE(state.ok()) << state.status();
  const std::vector<float> before = *state->ComponentValues("att_x_prev");
  const int32_t token = 65;
  const absl::Status status = engine->Forward({&token, 1}, *state).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kOutOfRange) << status;
  EXPECT_TRUE(IsNonFiniteLogits(status)) << status;
  EXPECT_THAT(std::string(status.message()), HasSubstr("non-finite logits"));
  EXPECT_EQ(state->token_count(), 5);
  EXPECT_EQ(*state->ComponentValues("att_x_prev"), before);
  // Other failures are not mistaken for it.
  EXPECT_FALSE(IsNonFiniteLogits(absl::OutOfRangeError("non-finite logits")));
  EXPECT_FALSE(IsNonFiniteLogits(absl::InvalidArgumentError("x")));
}

TEST(StateUploadTest, InABatchOnlyTheOutOfRangeRowFails) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  LoadStateOptions allow;
  allow.allow_unhealthy = true;
  absl::StatusOr<State> bad = ParseState(Rwkv4StateFile(*engine, 3e38f),
                                         "big.pt", engine->model(), allow);
  absl::StatusOr<State> good =
      ParseState(Rwkv4StateFile(*engine, 0.5f), "ok.pt", engine->model());
  ASSERT_TRUE(bad.ok() && good.ok());
  State solo = good->Clone();
  const std::vector<int32_t> tokens = {65, 66};
  std::vector<State*> rows = {&*bad, &*good};
  absl::StatusOr<Logits> logits = engine->ForwardBatch(tokens, rows);
  ASSERT_TRUE(logits.ok()) << logits.status();
  EXPECT_TRUE(IsNonFiniteLogits(logits->CheckRowFinite(0)));
  EXPECT_TRUE(logits->CheckRowFinite(1).ok());
  const int32_t t = 66;
  absl::StatusOr<Logits> alone = engine->Forward({&t, 1}, solo);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_LT(MaxAbsDiff(logits->Row(1), alone->Row(0)), 1e-4f);
}

// ForwardSegments: a segment on an out-of-range state fails alone, in one
// pass (fused) and in separate calls (more than 128 tokens); the other
// segments get their solo logits.
TEST(StateUploadTest, InSegmentsOnlyTheOutOfRangeSegmentFails) {
  std::unique_ptr<RwkvEngine> engine = Rwkv4Engine();
  LoadStateOptions allow;
  allow.allow_unhealthy = true;
  for (const int long_len : {20, 130}) {
    absl::StatusOr<State> bad = ParseState(Rwkv4StateFile(*engine, 3e38f),
                                           "big.pt", engine->model(), allow);
    absl::StatusOr<State> good =
        ParseState(Rwkv4StateFile(*engine, 0.5f), "ok.pt", engine->model());
    ASSERT_TRUE(bad.ok() && good.ok());
    State other = engine->NewState();
    State solo_good = good->Clone(), solo_other = other.Clone();
    std::vector<int32_t> tokens = {65, 66, 67, 68};  // bad: 3, good: 1
    std::vector<int32_t> tail(long_len);
    for (int i = 0; i < long_len; ++i) tail[i] = (i * 7) % 256;
    tokens.insert(tokens.end(), tail.begin(), tail.end());
    const std::vector<int32_t> lengths = {3, 1, long_len};
    std::vector<State*> states = {&*bad, &*good, &other};
    absl::StatusOr<Logits> logits =
        engine->ForwardSegments(tokens, lengths, states);
    ASSERT_TRUE(logits.ok()) << logits.status();
    EXPECT_TRUE(IsNonFiniteLogits(logits->CheckRowFinite(0))) << long_len;
    EXPECT_TRUE(logits->CheckRowFinite(1).ok());
    EXPECT_TRUE(logits->CheckRowFinite(2).ok());
    const int32_t t = 68;
    absl::StatusOr<Logits> alone = engine->Forward({&t, 1}, solo_good);
    absl::StatusOr<Logits> alone2 = engine->Forward(tail, solo_other);
    ASSERT_TRUE(alone.ok() && alone2.ok());
    EXPECT_EQ(logits->Row(1)[0], alone->Row(0)[0]);
    EXPECT_LT(MaxAbsDiff(logits->Row(1), alone->Row(0)), 1e-6f);
    EXPECT_LT(MaxAbsDiff(logits->Row(2), alone2->Row(0)), 1e-6f);
    EXPECT_EQ(good->token_count(), solo_good.token_count());
    EXPECT_EQ(other.token_count(), long_len);
  }
}

}  // namespace
}  // namespace rwkv::engine
