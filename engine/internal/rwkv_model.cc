#include "engine/internal/rwkv_model.h"

#include <vector>

namespace rwkv::engine::internal {
namespace {

at::Tensor Int32Tokens(const at::Tensor& tokens) {
  TORCH_CHECK(tokens.dim() == 2, "tokens must be [B, T], got ", tokens.sizes());
  return tokens.to(at::kCPU, at::kInt).contiguous();
}

void CheckFp32Cpu(const at::Tensor& t, const char* what) {
  TORCH_CHECK(
      t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() >= 1,
      what, ": the fused CPU forward needs fp32 CPU state tensors");
}

}  // namespace

at::Tensor RwkvModel::ForwardStackedFused(
    const at::Tensor& tokens, std::vector<at::Tensor>& state) const {
  const at::Tensor tok = Int32Tokens(tokens);
  const int64_t B = tok.size(0), T = tok.size(1);
  const size_t n = state.size();
  std::vector<at::Tensor> work(n);
  std::vector<float*> rows(static_cast<size_t>(B) * n);
  std::vector<int64_t> strides(n);
  for (size_t j = 0; j < n; ++j) {
    CheckFp32Cpu(state[j], "Forward");
    TORCH_CHECK(state[j].dim() >= 2 && state[j].size(1) == B,
                "Forward: state component ", j, " has shape ", state[j].sizes(),
                " for ", B, " rows");
    work[j] = state[j].contiguous();
    strides[j] = work[j].stride(0);
    for (int64_t b = 0; b < B; ++b) {
      rows[b * n + j] = work[j].data_ptr<float>() + b * work[j].stride(1);
    }
  }
  at::Tensor logits = at::empty({B, config().vocab_size}, at::kFloat);
  ForwardCpu(tok.data_ptr<int32_t>(), B, T,
             CpuStateRows{rows.data(), strides.data()},
             logits.data_ptr<float>());
  for (size_t j = 0; j < n; ++j) {
    if (!work[j].is_same(state[j])) state[j].copy_(work[j]);
  }
  return logits;
}

at::Tensor RwkvModel::ForwardRowsFused(
    const at::Tensor& tokens,
    const std::vector<std::vector<at::Tensor>*>& rows) const {
  CheckRows(tokens, rows);
  const at::Tensor tok = Int32Tokens(tokens);
  const int64_t B = tok.size(0), T = tok.size(1);
  const size_t n = rows.front()->size();
  std::vector<float*> ptrs(static_cast<size_t>(B) * n);
  std::vector<int64_t> strides(n);
  const int64_t L = config().n_layer;
  for (int64_t b = 0; b < B; ++b) {
    std::vector<at::Tensor>& row = *rows[b];
    TORCH_CHECK(row.size() == n, "ForwardRows: row ", b, " has ", row.size(),
                " state tensors, row 0 has ", n);
    for (size_t j = 0; j < n; ++j) {
      CheckFp32Cpu(row[j], "ForwardRows");
      TORCH_CHECK(row[j].size(0) == L, "ForwardRows: row ", b, " component ", j,
                  " has shape ", row[j].sizes());
      if (!row[j].is_contiguous()) row[j] = row[j].contiguous();
      const int64_t stride = row[j].numel() / L;
      TORCH_CHECK(b == 0 || stride == strides[j], "ForwardRows: row ", b,
                  " component ", j, " has shape ", row[j].sizes());
      strides[j] = stride;
      ptrs[b * n + j] = row[j].data_ptr<float>();
    }
  }
  at::Tensor logits = at::empty({B, config().vocab_size}, at::kFloat);
  ForwardCpu(tok.data_ptr<int32_t>(), B, T,
             CpuStateRows{ptrs.data(), strides.data()},
             logits.data_ptr<float>());
  return logits;
}

}  // namespace rwkv::engine::internal
