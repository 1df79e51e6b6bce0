// The Wkv4 autograd op: forward against the engine's recurrence written in
// torch ops, gradients against central finite differences (double).
#include "tools/train/wkv4_op.h"

#include <gtest/gtest.h>

namespace rwkv::train {
namespace {

// The reference recurrence (no rescaling needed at these magnitudes).
torch::Tensor Reference(const torch::Tensor& w, const torch::Tensor& u,
                        const torch::Tensor& k, const torch::Tensor& v,
                        torch::Tensor a, torch::Tensor b) {
  std::vector<torch::Tensor> ys;
  for (int64_t t = 0; t < k.size(1); ++t) {
    torch::Tensor kt = k.select(1, t), vt = v.select(1, t);
    torch::Tensor e = torch::exp(u + kt);
    ys.push_back((a + e * vt) / (b + e));
    a = torch::exp(w) * a + torch::exp(kt) * vt;
    b = torch::exp(w) * b + torch::exp(kt);
  }
  return torch::stack(ys, 1);
}

struct Inputs {
  torch::Tensor w, u, k, v, a0, b0;
};

Inputs MakeInputs(int64_t B, int64_t T, int64_t C, torch::ScalarType dt) {
  torch::manual_seed(3);
  auto o = torch::TensorOptions().dtype(dt);
  return Inputs{
      -torch::exp(torch::randn({C}, o)), torch::randn({C}, o) * 0.5,
      torch::randn({B, T, C}, o),        torch::randn({B, T, C}, o),
      torch::randn({B, C}, o),           torch::rand({B, C}, o) + 0.5};
}

TEST(Wkv4OpTest, ForwardMatchesReference) {
  Inputs in = MakeInputs(2, 7, 5, torch::kDouble);
  Wkv4Result r = Wkv4(in.w, in.u, in.k, in.v, in.a0, in.b0);
  torch::Tensor ref = Reference(in.w, in.u, in.k, in.v, in.a0, in.b0);
  EXPECT_LT((r.y - ref).abs().max().item<double>(), 1e-12);
}

TEST(Wkv4OpTest, FloatInputsGiveFloatOutput) {
  Inputs in = MakeInputs(1, 3, 4, torch::kFloat);
  Wkv4Result r = Wkv4(in.w, in.u, in.k, in.v, in.a0, in.b0);
  EXPECT_EQ(r.y.scalar_type(), torch::kFloat);
  EXPECT_EQ(r.a_final.sizes(), (std::vector<int64_t>{1, 4}));
}

TEST(Wkv4OpTest, GradientsMatchFiniteDifferences) {
  Inputs in = MakeInputs(2, 6, 3, torch::kDouble);
  std::vector<torch::Tensor*> xs = {&in.w, &in.u, &in.k, &in.v, &in.a0, &in.b0};
  for (torch::Tensor* x : xs) x->requires_grad_(true);
  torch::manual_seed(4);
  torch::Tensor proj = torch::randn({2, 6, 3}, torch::kDouble);
  auto f = [&]() {
    return (Wkv4(in.w, in.u, in.k, in.v, in.a0, in.b0).y * proj).sum();
  };
  f().backward();
  const double eps = 1e-6;
  for (size_t i = 0; i < xs.size(); ++i) {
    torch::Tensor x = *xs[i];
    torch::Tensor g = x.grad().clone();
    torch::Tensor flat = x.detach().view({-1});
    for (int64_t j = 0; j < flat.numel(); ++j) {
      torch::NoGradGuard ng;
      const double orig = flat[j].item<double>();
      flat[j] = orig + eps;
      const double fp = f().item<double>();
      flat[j] = orig - eps;
      const double fm = f().item<double>();
      flat[j] = orig;
      const double num = (fp - fm) / (2 * eps);
      EXPECT_NEAR(g.view({-1})[j].item<double>(), num,
                  1e-6 * std::max(1.0, std::abs(num)))
          << "input " << i << " element " << j;
    }
  }
}

}  // namespace
}  // namespace rwkv::train
