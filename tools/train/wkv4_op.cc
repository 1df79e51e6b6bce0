#include "tools/train/wkv4_op.h"

#include <cmath>
#include <vector>

namespace rwkv::train {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::tensor_list;

class Wkv4Function : public torch::autograd::Function<Wkv4Function> {
 public:
  static tensor_list forward(AutogradContext* ctx, torch::Tensor w,
                             torch::Tensor u, torch::Tensor k, torch::Tensor v,
                             torch::Tensor a0, torch::Tensor b0) {
    const int64_t B = k.size(0), T = k.size(1), C = k.size(2);
    torch::Tensor wd = w.to(torch::kDouble).contiguous();
    torch::Tensor ud = u.to(torch::kDouble).contiguous();
    torch::Tensor kd = k.to(torch::kDouble).contiguous();
    torch::Tensor vd = v.to(torch::kDouble).contiguous();
    torch::Tensor a = a0.to(torch::kDouble).contiguous().clone();
    torch::Tensor b = b0.to(torch::kDouble).contiguous().clone();
    torch::Tensor y = torch::empty({B, T, C}, kd.options());
    const double* pw = wd.data_ptr<double>();
    const double* pu = ud.data_ptr<double>();
    const double* pk = kd.data_ptr<double>();
    const double* pv = vd.data_ptr<double>();
    double* pa = a.data_ptr<double>();
    double* pb = b.data_ptr<double>();
    double* py = y.data_ptr<double>();
    std::vector<double> ew(C);
    for (int64_t c = 0; c < C; ++c) ew[c] = std::exp(pw[c]);
    for (int64_t bi = 0; bi < B; ++bi) {
      double* ra = pa + bi * C;
      double* rb = pb + bi * C;
      for (int64_t t = 0; t < T; ++t) {
        const int64_t o = (bi * T + t) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double ek = std::exp(pk[o + c]);
          const double euk = ek * std::exp(pu[c]);
          py[o + c] = (ra[c] + euk * pv[o + c]) / (rb[c] + euk);
          ra[c] = ew[c] * ra[c] + ek * pv[o + c];
          rb[c] = ew[c] * rb[c] + ek;
        }
      }
    }
    ctx->save_for_backward({wd, ud, kd, vd, a0.to(torch::kDouble).contiguous(),
                            b0.to(torch::kDouble).contiguous(), y});
    ctx->saved_data["k_dtype"] = static_cast<int64_t>(k.scalar_type());
    ctx->saved_data["w_dtype"] = static_cast<int64_t>(w.scalar_type());
    ctx->saved_data["a_dtype"] = static_cast<int64_t>(a0.scalar_type());
    ctx->mark_non_differentiable({a, b});
    return {y.to(k.scalar_type()), a, b};
  }

  static tensor_list backward(AutogradContext* ctx, tensor_list grads) {
    auto saved = ctx->get_saved_variables();
    const torch::Tensor& wd = saved[0];
    const torch::Tensor& ud = saved[1];
    const torch::Tensor& kd = saved[2];
    const torch::Tensor& vd = saved[3];
    const torch::Tensor& a0 = saved[4];
    const torch::Tensor& b0 = saved[5];
    const torch::Tensor& y = saved[6];
    const int64_t B = kd.size(0), T = kd.size(1), C = kd.size(2);
    torch::Tensor gy = grads[0].defined()
                           ? grads[0].to(torch::kDouble).contiguous()
                           : torch::zeros_like(y);
    torch::Tensor gw = torch::zeros({C}, wd.options());
    torch::Tensor gu = torch::zeros({C}, wd.options());
    torch::Tensor gk = torch::empty_like(kd);
    torch::Tensor gv = torch::empty_like(vd);
    torch::Tensor ga0 = torch::empty({B, C}, wd.options());
    torch::Tensor gb0 = torch::empty({B, C}, wd.options());
    const double* pw = wd.data_ptr<double>();
    const double* pu = ud.data_ptr<double>();
    const double* pk = kd.data_ptr<double>();
    const double* pv = vd.data_ptr<double>();
    const double* py = y.data_ptr<double>();
    const double* pgy = gy.data_ptr<double>();
    double* pgw = gw.data_ptr<double>();
    double* pgu = gu.data_ptr<double>();
    double* pgk = gk.data_ptr<double>();
    double* pgv = gv.data_ptr<double>();
    std::vector<double> ew(C), eu(C);
    for (int64_t c = 0; c < C; ++c) {
      ew[c] = std::exp(pw[c]);
      eu[c] = std::exp(pu[c]);
    }
    // States before each step: a_{t-1}, b_{t-1} for t = 0..T-1.
    std::vector<double> as(T * C), bs(T * C);
    std::vector<double> ga(C), gb(C);
    for (int64_t bi = 0; bi < B; ++bi) {
      const double* ra0 = a0.data_ptr<double>() + bi * C;
      const double* rb0 = b0.data_ptr<double>() + bi * C;
      for (int64_t c = 0; c < C; ++c) {
        as[c] = ra0[c];
        bs[c] = rb0[c];
      }
      for (int64_t t = 0; t + 1 < T; ++t) {
        const int64_t o = (bi * T + t) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double ek = std::exp(pk[o + c]);
          as[(t + 1) * C + c] = ew[c] * as[t * C + c] + ek * pv[o + c];
          bs[(t + 1) * C + c] = ew[c] * bs[t * C + c] + ek;
        }
      }
      // ga/gb: gradient of the loss w.r.t. a_t, b_t (the state after t).
      std::fill(ga.begin(), ga.end(), 0.0);
      std::fill(gb.begin(), gb.end(), 0.0);
      for (int64_t t = T - 1; t >= 0; --t) {
        const int64_t o = (bi * T + t) * C;
        for (int64_t c = 0; c < C; ++c) {
          const double ap = as[t * C + c], bp = bs[t * C + c];
          const double ek = std::exp(pk[o + c]);
          const double euk = ek * eu[c];
          const double d = bp + euk;
          const double g = pgy[o + c];
          const double yy = py[o + c];
          const double vv = pv[o + c];
          // Through the update a_t = e^w a_{t-1} + e^k v, b_t likewise.
          pgw[c] += ew[c] * (ga[c] * ap + gb[c] * bp);
          const double gyk = g * euk * (vv - yy) / d;
          pgk[o + c] = gyk + ek * (ga[c] * vv + gb[c]);
          pgv[o + c] = g * euk / d + ga[c] * ek;
          pgu[c] += gyk;
          // Into a_{t-1}, b_{t-1}.
          ga[c] = g / d + ew[c] * ga[c];
          gb[c] = -g * yy / d + ew[c] * gb[c];
        }
      }
      double* rga0 = ga0.data_ptr<double>() + bi * C;
      double* rgb0 = gb0.data_ptr<double>() + bi * C;
      for (int64_t c = 0; c < C; ++c) {
        rga0[c] = ga[c];
        rgb0[c] = gb[c];
      }
    }
    const auto kt =
        static_cast<torch::ScalarType>(ctx->saved_data["k_dtype"].toInt());
    const auto wt =
        static_cast<torch::ScalarType>(ctx->saved_data["w_dtype"].toInt());
    const auto at =
        static_cast<torch::ScalarType>(ctx->saved_data["a_dtype"].toInt());
    return {gw.to(wt), gu.to(wt), gk.to(kt), gv.to(kt), ga0.to(at), gb0.to(at)};
  }
};

}  // namespace

Wkv4Result Wkv4(const torch::Tensor& w, const torch::Tensor& u,
                const torch::Tensor& k, const torch::Tensor& v,
                const torch::Tensor& a0, const torch::Tensor& b0) {
  tensor_list out = Wkv4Function::apply(w, u, k, v, a0, b0);
  return Wkv4Result{out[0], out[1], out[2]};
}

}  // namespace rwkv::train
