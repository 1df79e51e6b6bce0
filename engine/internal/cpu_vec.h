// Vector types for the fused CPU model code (rwkv_cpu_forward.h): VecAvx512
// (16 fp32 lanes, masked tails) and VecScalar (1 lane), with the same
// operations, so that one template body serves both instruction sets. Every
// operation is lane-wise except ReduceAdd, whose order is fixed; so an
// element's result does not depend on where a loop starts or ends (thread
// splits, batch sizes). exp/sigmoid/tanh: AVX-512 uses a Cephes-style
// polynomial (about 1 ulp for exp); the scalar type calls libm.
//
// Included only by the translation units that instantiate the model code for
// one instruction set (rwkv_cpu_avx512.cc, rwkv_cpu_generic.cc), inside their
// own namespace, after every standard header.
#ifndef RWKV_ENGINE_INTERNAL_CPU_VEC_H_
#define RWKV_ENGINE_INTERNAL_CPU_VEC_H_

struct VecScalar {
  static constexpr int kLanes = 1;
  float v;

  static VecScalar Load(const float* p) { return {*p}; }
  static VecScalar LoadN(const float* p, int64_t) { return {*p}; }
  void Store(float* p) const { *p = v; }
  void StoreN(float* p, int64_t) const { *p = v; }
  static VecScalar Set(float x) { return {x}; }
  static VecScalar Zero() { return {0.0f}; }
  // v with lanes n.. set to 0.
  static VecScalar KeepFirst(VecScalar v, int64_t) { return v; }

  friend VecScalar operator+(VecScalar a, VecScalar b) { return {a.v + b.v}; }
  friend VecScalar operator-(VecScalar a, VecScalar b) { return {a.v - b.v}; }
  friend VecScalar operator*(VecScalar a, VecScalar b) { return {a.v * b.v}; }
  friend VecScalar operator/(VecScalar a, VecScalar b) { return {a.v / b.v}; }
  // a * b + c.
  static VecScalar Fma(VecScalar a, VecScalar b, VecScalar c) {
    return {a.v * b.v + c.v};
  }
  // NaN in a propagates.
  static VecScalar Max(VecScalar a, VecScalar b) {
    return {a.v != a.v ? a.v : (a.v > b.v ? a.v : b.v)};
  }
  static VecScalar Exp(VecScalar a) { return {std::exp(a.v)}; }
  static VecScalar Sigmoid(VecScalar a) {
    return {1.0f / (1.0f + std::exp(-a.v))};
  }
  static VecScalar Tanh(VecScalar a) { return {std::tanh(a.v)}; }
  static float ReduceAdd(VecScalar a) { return a.v; }
};

#if defined(__AVX512F__)
struct VecAvx512 {
  static constexpr int kLanes = 16;
  __m512 v;

  static __mmask16 Mask(int64_t n) {
    return n >= 16 ? static_cast<__mmask16>(0xffff)
                   : static_cast<__mmask16>((1u << n) - 1u);
  }
  static VecAvx512 Load(const float* p) { return {_mm512_loadu_ps(p)}; }
  // The first n (< 16) lanes; the rest 0.
  static VecAvx512 LoadN(const float* p, int64_t n) {
    return {_mm512_maskz_loadu_ps(Mask(n), p)};
  }
  void Store(float* p) const { _mm512_storeu_ps(p, v); }
  void StoreN(float* p, int64_t n) const {
    _mm512_mask_storeu_ps(p, Mask(n), v);
  }
  static VecAvx512 Set(float x) { return {_mm512_set1_ps(x)}; }
  static VecAvx512 Zero() { return {_mm512_setzero_ps()}; }
  static VecAvx512 KeepFirst(VecAvx512 v, int64_t n) {
    return {_mm512_maskz_mov_ps(Mask(n), v.v)};
  }

  friend VecAvx512 operator+(VecAvx512 a, VecAvx512 b) {
    return {_mm512_add_ps(a.v, b.v)};
  }
  friend VecAvx512 operator-(VecAvx512 a, VecAvx512 b) {
    return {_mm512_sub_ps(a.v, b.v)};
  }
  friend VecAvx512 operator*(VecAvx512 a, VecAvx512 b) {
    return {_mm512_mul_ps(a.v, b.v)};
  }
  friend VecAvx512 operator/(VecAvx512 a, VecAvx512 b) {
    return {_mm512_div_ps(a.v, b.v)};
  }
  static VecAvx512 Fma(VecAvx512 a, VecAvx512 b, VecAvx512 c) {
    return {_mm512_fmadd_ps(a.v, b.v, c.v)};
  }
  // MAXPS returns its second operand when either is NaN: NaN in a
  // propagates.
  static VecAvx512 Max(VecAvx512 a, VecAvx512 b) {
    return {_mm512_max_ps(b.v, a.v)};
  }
  // exp(x): x = n ln2 + r, |r| <= ln2 / 2, e^r by a degree-6 polynomial,
  // times 2^n by scalef (which also yields 0 below -104 and inf above 88.8).
  static VecAvx512 Exp(VecAvx512 a) {
    __m512 x = _mm512_max_ps(_mm512_set1_ps(-104.0f), a.v);  // NaN stays
    x = _mm512_min_ps(_mm512_set1_ps(88.8f), x);
    const __m512 n = _mm512_roundscale_ps(
        _mm512_mul_ps(x, _mm512_set1_ps(1.44269504088896341f)),
        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(n, _mm512_set1_ps(0.693359375f), x);
    r = _mm512_fnmadd_ps(n, _mm512_set1_ps(-2.12194440e-4f), r);
    __m512 p = _mm512_set1_ps(1.9875691500e-4f);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.3981999507e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
    p = _mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r);
    p = _mm512_add_ps(p, _mm512_set1_ps(1.0f));
    return {_mm512_scalef_ps(p, n)};
  }
  static VecAvx512 Sigmoid(VecAvx512 a) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 e = Exp({_mm512_sub_ps(_mm512_setzero_ps(), a.v)}).v;
    return {_mm512_div_ps(one, _mm512_add_ps(one, e))};
  }
  // tanh(x) = sign(x) (1 - 2 / (e^{2|x|} + 1)).
  static VecAvx512 Tanh(VecAvx512 a) {
    const __m512 one = _mm512_set1_ps(1.0f);
    const __m512 ax = _mm512_abs_ps(a.v);
    const __m512 e = Exp({_mm512_add_ps(ax, ax)}).v;
    const __m512 t = _mm512_sub_ps(
        one, _mm512_div_ps(_mm512_set1_ps(2.0f), _mm512_add_ps(e, one)));
    // Copy the sign of x (NaN: t is NaN already).
    const __m512i sign = _mm512_and_si512(_mm512_castps_si512(a.v),
                                          _mm512_set1_epi32(INT32_MIN));
    return {_mm512_castsi512_ps(_mm512_or_si512(_mm512_castps_si512(t), sign))};
  }
  static float ReduceAdd(VecAvx512 a) { return _mm512_reduce_add_ps(a.v); }
};
#endif  // __AVX512F__

#endif  // RWKV_ENGINE_INTERNAL_CPU_VEC_H_
