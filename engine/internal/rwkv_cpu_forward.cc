#include "engine/internal/rwkv_cpu_forward.h"

#include <cstdlib>
#include <memory>
#include <new>
#include <utility>

namespace rwkv::engine::internal {

// The two builds of the fused code (rwkv_cpu_forward_avx512.cc,
// rwkv_cpu_forward_generic.cc).
namespace avx512 {
void Rwkv4Forward(const Rwkv4CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits);
void Rwkv7Forward(const Rwkv7CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits);
void Rwkv4Segments(const Rwkv4CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits);
void Rwkv7Segments(const Rwkv7CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits);
}  // namespace avx512
namespace generic {
void Rwkv4Forward(const Rwkv4CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits);
void Rwkv7Forward(const Rwkv7CpuWeights& w, const int32_t* tokens, int64_t B,
                  int64_t T, const CpuStateRows& state, float* logits);
void Rwkv4Segments(const Rwkv4CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits);
void Rwkv7Segments(const Rwkv7CpuWeights& w, const int32_t* tokens,
                   const int32_t* lengths, int64_t n, const CpuStateRows& state,
                   float* logits);
}  // namespace generic

namespace {

// Calls the AVX-512 build of a function where the CPU has AVX-512, else the
// portable build.
template <typename Fn, typename... Args>
void OnThisCpu(Fn* avx512_fn, Fn* generic_fn, Args&&... args) {
  (CpuHasAvx512() ? avx512_fn : generic_fn)(std::forward<Args>(args)...);
}

}  // namespace

void Rwkv4CpuForward(const Rwkv4CpuWeights& w, const int32_t* tokens, int64_t B,
                     int64_t T, const CpuStateRows& state, float* logits) {
  OnThisCpu(&avx512::Rwkv4Forward, &generic::Rwkv4Forward, w, tokens, B, T,
            state, logits);
}

void Rwkv7CpuForward(const Rwkv7CpuWeights& w, const int32_t* tokens, int64_t B,
                     int64_t T, const CpuStateRows& state, float* logits) {
  OnThisCpu(&avx512::Rwkv7Forward, &generic::Rwkv7Forward, w, tokens, B, T,
            state, logits);
}

void Rwkv4CpuForwardSegments(const Rwkv4CpuWeights& w, const int32_t* tokens,
                             const int32_t* lengths, int64_t n,
                             const CpuStateRows& state, float* logits) {
  OnThisCpu(&avx512::Rwkv4Segments, &generic::Rwkv4Segments, w, tokens, lengths,
            n, state, logits);
}

void Rwkv7CpuForwardSegments(const Rwkv7CpuWeights& w, const int32_t* tokens,
                             const int32_t* lengths, int64_t n,
                             const CpuStateRows& state, float* logits) {
  OnThisCpu(&avx512::Rwkv7Segments, &generic::Rwkv7Segments, w, tokens, lengths,
            n, state, logits);
}

float* CpuForwardScratch(size_t floats) {
  struct Free {
    void operator()(float* p) const { std::free(p); }
  };
  thread_local std::unique_ptr<float, Free> buf;
  thread_local size_t capacity = 0;
  if (floats > capacity) {
    buf.reset();
    capacity = 0;
    const size_t bytes = (floats * sizeof(float) + 63) / 64 * 64;
    buf.reset(static_cast<float*>(std::aligned_alloc(64, bytes)));
    if (buf == nullptr) throw std::bad_alloc();
    capacity = floats;
  }
  return buf.get();
}

}  // namespace rwkv::engine::internal
