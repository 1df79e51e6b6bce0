#include "tests/testing/fake_engine.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <utility>

#include "engine/internal/state_impl.h"
#include "engine/logits.h"

namespace rwkv::testing {
namespace {

using engine::internal::StateAccess;
using engine::internal::StateImpl;

constexpr int kEmbd = 4;
constexpr uint32_t kModulus = 9973;  // exact in fp32, and a healthy x_prev

class FakeModel final : public engine::Model {
 public:
  FakeModel(int vocab_size, const std::string& fingerprint) {
    config_.arch = engine::Architecture::kRwkv4;
    config_.n_layer = 1;
    config_.n_embd = kEmbd;
    config_.vocab_size = vocab_size;
    config_.ffn_dim = 4 * kEmbd;
    config_.n_params = 0;
    config_.state_bytes_fp32 = 5 * kEmbd * sizeof(float);
    config_.fingerprint = fingerprint;
  }
  const engine::ModelConfig& config() const override { return config_; }
  engine::State NewState() const override {
    auto impl = std::make_unique<StateImpl>();
    impl->arch = engine::Architecture::kRwkv4;
    impl->model_fingerprint = config_.fingerprint;
    impl->names = {"att_aa", "att_ab", "att_pp", "att_x_prev", "ffn_x_prev"};
    for (const std::string& name : impl->names) {
      impl->tensors.push_back(name == "att_pp" ? at::full({1, kEmbd}, -1e30f)
                                               : at::zeros({1, kEmbd}));
    }
    return StateAccess::Make(std::move(impl));
  }

 private:
  engine::ModelConfig config_;
};

void SetHash(engine::State& state, uint32_t hash) {
  StateAccess::Get(state)->tensors[3].index_put_({0, 0},
                                                 static_cast<float>(hash));
}

// ffn_x_prev[0][0] beyond the health bound: the model's numbers overflow.
bool IsOutOfRange(const engine::State& state) {
  const float v =
      StateAccess::Get(state)->tensors[4].index({0, 0}).item<float>();
  return !std::isfinite(v) || std::abs(v) > 1e4f;
}

}  // namespace

engine::State FakeEngine::OutOfRangeState() const {
  engine::State state = model_->NewState();
  StateAccess::Get(state)->tensors[4].index_put_({0, 0}, 3e38f);
  return state;
}

FakeEngine::FakeEngine(int vocab_size, const std::string& fingerprint)
    : vocab_size_(vocab_size),
      model_(std::make_shared<FakeModel>(vocab_size, fingerprint)) {}

engine::State FakeEngine::ForeignState(const std::string& fingerprint) {
  engine::State state = FakeModel(256, fingerprint).NewState();
  StateAccess::Get(state)->model_fingerprint = fingerprint;
  return state;
}

uint32_t FakeEngine::Hash(uint32_t start, absl::Span<const int32_t> tokens) {
  uint32_t h = start;
  for (int32_t t : tokens) {
    h = (h * 31 + static_cast<uint32_t>(t) + 1) % kModulus;
  }
  return h;
}

uint32_t FakeEngine::HashOf(const engine::State& state) {
  return static_cast<uint32_t>(
      StateAccess::Get(state)->tensors[3].index({0, 0}).item<float>());
}

void FakeEngine::set_before_call(std::function<void()> hook) {
  absl::MutexLock lock(&mu_);
  before_call_ = std::move(hook);
}

std::vector<FakeEngine::Call> FakeEngine::calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

int64_t FakeEngine::tokens_fed() const {
  absl::MutexLock lock(&mu_);
  int64_t n = 0;
  for (const Call& c : calls_) n += static_cast<int64_t>(c.tokens);
  return n;
}

void FakeEngine::FailCall(int index) {
  absl::MutexLock lock(&mu_);
  fail_calls_.push_back(index);
}

absl::Status FakeEngine::BeginCall(Call call) {
  std::function<void()> hook;
  int index = 0;
  {
    absl::MutexLock lock(&mu_);
    index = static_cast<int>(calls_.size());
    calls_.push_back(call);
    hook = before_call_;
  }
  if (hook) hook();
  absl::MutexLock lock(&mu_);
  if (std::find(fail_calls_.begin(), fail_calls_.end(), index) !=
      fail_calls_.end()) {
    return absl::InternalError("injected engine failure");
  }
  return absl::OkStatus();
}

absl::StatusOr<engine::Logits> FakeEngine::Forward(
    absl::Span<const int32_t> tokens, engine::State& state) {
  if (absl::Status s = BeginCall({false, 1, tokens.size()}); !s.ok()) return s;
  if (IsOutOfRange(state)) {
    return engine::NonFiniteLogitsError(
        0, 0, std::numeric_limits<float>::quiet_NaN());
  }
  const uint32_t h = Hash(HashOf(state), tokens);
  SetHash(state, h);
  StateAccess::Get(state)->token_count += static_cast<int64_t>(tokens.size());
  std::vector<float> logits(vocab_size_, 0.0f);
  logits[GreedyAfter(h)] = 10.0f;
  return engine::Logits(1, vocab_size_, std::move(logits));
}

absl::StatusOr<engine::Logits> FakeEngine::ForwardBatch(
    absl::Span<const int32_t> tokens, absl::Span<engine::State* const> states) {
  if (absl::Status s = BeginCall({true, states.size(), tokens.size()});
      !s.ok()) {
    return s;
  }
  std::vector<float> logits(states.size() * vocab_size_, 0.0f);
  for (size_t i = 0; i < states.size(); ++i) {
    const uint32_t h = Hash(HashOf(*states[i]), tokens.subspan(i, 1));
    SetHash(*states[i], h);
    StateAccess::Get(*states[i])->token_count += 1;
    if (IsOutOfRange(*states[i])) {
      std::fill_n(logits.begin() + i * vocab_size_, vocab_size_,
                  std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    logits[i * vocab_size_ + GreedyAfter(h)] = 10.0f;
  }
  return engine::Logits(static_cast<int>(states.size()), vocab_size_,
                        std::move(logits));
}

absl::StatusOr<engine::Logits> FakeEngine::ForwardSegments(
    absl::Span<const int32_t> tokens, absl::Span<const int32_t> lengths,
    absl::Span<engine::State* const> states) {
  if (absl::Status s = CheckSegments(tokens, lengths, states); !s.ok()) {
    return s;
  }
  Call call{false, states.size(), tokens.size(), true};
  if (absl::Status s = BeginCall(call); !s.ok()) return s;
  std::vector<float> logits(states.size() * vocab_size_, 0.0f);
  size_t pos = 0;
  for (size_t i = 0; i < states.size(); ++i) {
    const size_t n = static_cast<size_t>(lengths[i]);
    const uint32_t h = Hash(HashOf(*states[i]), tokens.subspan(pos, n));
    pos += n;
    SetHash(*states[i], h);
    StateAccess::Get(*states[i])->token_count += static_cast<int64_t>(n);
    if (IsOutOfRange(*states[i])) {
      std::fill_n(logits.begin() + i * vocab_size_, vocab_size_,
                  std::numeric_limits<float>::quiet_NaN());
      continue;
    }
    logits[i * vocab_size_ + GreedyAfter(h)] = 10.0f;
  }
  return engine::Logits(static_cast<int>(states.size()), vocab_size_,
                        std::move(logits));
}

}  // namespace rwkv::testing
