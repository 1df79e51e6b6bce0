// Fused CPU forward passes of RWKV-4 and RWKV-7 for inference (torch-free):
// every small op of a layer (layer norms, token-shift mixes, activations,
// the WKV recurrence, residuals) runs over preallocated buffers, split over
// the same OpenMP team as the matrix products, inside one parallel region
// per call (a barrier between dependent phases instead of a fork/join per
// op). Weights are fp32 vectors plus PackedLinear matrices in any
// WeightFormat; activations and the recurrent state are fp32.
//
// One implementation serves the entry points: single step (B=1, T=1),
// sequence mode (B=1, T=n), the batched step (B=n, T=1) and segments (n
// sequences of different lengths laid end to end, at most
// kCpuSegmentsMaxRows rows in all: one team chunk). Rows are cut
// into chunks: up to 128 rows run in the team with the native (batch
// invariant) kernels; fp32 prompts longer than 128 tokens run in chunks of
// up to 512 with oneDNN's GEMM between parallel regions. So single step,
// batched step, sequence mode of up to 128 tokens and segments give
// bit-identical results on one machine; longer prompts may differ in the
// last bits.
//
// Instruction sets: an AVX-512 build of the element-wise code and a portable
// one, picked at run time (CpuHasAvx512()). Thread-compatible: concurrent
// calls are fine (each thread has its own scratch buffers); the weights are
// only read.
#ifndef RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_H_
#define RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_H_

#include <cstdint>
#include <vector>

#include "engine/internal/cpu_linear.h"

namespace rwkv::engine::internal {

// Where each sequence's state lies: component j of row b, layer i starts at
// rows[b * n_components + j] + i * layer_stride[j] (contiguous within a
// layer). Updated in place.
struct CpuStateRows {
  float* const* rows = nullptr;
  const int64_t* layer_stride = nullptr;
};

struct Rwkv4CpuLayer {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  const float *time_decay, *time_first;  // -exp(decay), first; [C]
  const float *mix_k, *mix_v, *mix_r, *ffn_mix_k, *ffn_mix_r;
  const PackedLinear *key, *value, *receptance, *output;
  const PackedLinear *ffn_key, *ffn_receptance, *ffn_value;
};

struct Rwkv4CpuWeights {
  int64_t n_embd = 0, ffn_dim = 0, vocab = 0;
  const float* emb = nullptr;  // [V, C] fp32, ln0 folded in
  std::vector<Rwkv4CpuLayer> layers;
  const float *ln_out_w = nullptr, *ln_out_b = nullptr;
  const PackedLinear* head = nullptr;
};

// RWKV-4 state components (schema order): att_aa, att_ab, att_pp,
// att_x_prev, ffn_x_prev, each [n_layer, C].
// tokens: [B, T] row-major, each in [0, vocab). logits: [B, V], the logits
// after each row's last token (nullptr: not computed).
void Rwkv4CpuForward(const Rwkv4CpuWeights& w, const int32_t* tokens, int64_t B,
                     int64_t T, const CpuStateRows& state, float* logits);

struct Rwkv7CpuLayer {
  const float *ln1_w, *ln1_b, *ln2_w, *ln2_b;
  const float* att_mix;       // [6, C]: x_r, x_w, x_k, x_v, x_a, x_g
  const float *w0, *a0, *v0;  // v0 null in layer 0
  const float *k_k, *k_a, *r_k, *ln_x_w, *ln_x_b, *ffn_mix_k;
  const PackedLinear *receptance, *key, *value, *output;
  const PackedLinear *w1, *w2, *a1, *a2, *v1, *v2, *g1, *g2;  // v1/v2 null in
                                                              // layer 0
  const PackedLinear *ffn_key, *ffn_value;
};

struct Rwkv7CpuWeights {
  int64_t n_embd = 0, ffn_dim = 0, vocab = 0, n_head = 0, head_size = 0;
  const float* emb = nullptr;  // [V, C] fp32, ln0 folded in
  std::vector<Rwkv7CpuLayer> layers;
  const float *ln_out_w = nullptr, *ln_out_b = nullptr;
  const PackedLinear* head = nullptr;
};

// RWKV-7 state components: att_x_prev [L, C], att_kv [L, H, N, N],
// ffn_x_prev [L, C]. Otherwise as Rwkv4CpuForward.
void Rwkv7CpuForward(const Rwkv7CpuWeights& w, const int32_t* tokens, int64_t B,
                     int64_t T, const CpuStateRows& state, float* logits);

// Most rows (tokens in all) of one segments call: the native team chunk.
inline constexpr int64_t kCpuSegmentsMaxRows = 128;

// Segments: n sequences, sequence j feeding the next lengths[j] >= 1 of
// `tokens` into state row j (so its token shift starts from its state's
// x_prev and its recurrence runs along its own rows); logits [n, V] after
// each sequence's last token. All rows run in one parallel region (one pass
// over the weights), each row bit-identical to the same tokens fed alone.
// REQUIRES: sum of lengths <= kCpuSegmentsMaxRows.
void Rwkv4CpuForwardSegments(const Rwkv4CpuWeights& w, const int32_t* tokens,
                             const int32_t* lengths, int64_t n,
                             const CpuStateRows& state, float* logits);
void Rwkv7CpuForwardSegments(const Rwkv7CpuWeights& w, const int32_t* tokens,
                             const int32_t* lengths, int64_t n,
                             const CpuStateRows& state, float* logits);

// The per-thread scratch the fused passes use: at least `floats` floats,
// 64-byte aligned, kept for the thread's next call (released and
// reallocated when a call needs more; never more than the largest chunk
// needs).
float* CpuForwardScratch(size_t floats);

}  // namespace rwkv::engine::internal

#endif  // RWKV_ENGINE_INTERNAL_RWKV_CPU_FORWARD_H_
