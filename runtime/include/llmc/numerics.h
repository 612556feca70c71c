/* numerics.h — the scalar number formats that the runtime and compiled
 * models must encode identically: IEEE binary16 conversion, and ggml's q8_0
 * and q8_K quantizers for one block of 32 or 256 values.
 *
 * The runtime uses them for weights (GGUF f16, `llmc quantize`,
 * runtime/formats/quant.c); the CPU kernels use them inside every model.so
 * for the KV cache's f16 and q8_0 slots (abi.h), and so does a hand-written
 * model. A model.so links against nothing, so the code cannot live in the
 * runtime library: it is header-only and freestanding (no libc, no libm;
 * only __builtin functions that compile to instructions), and both sides
 * compile this one copy. Bit-exactness with ggml rests on it: the same float
 * operations in the same order as ggml's reference code, none fused (no
 * expression here has a product feeding a sum). */
#ifndef LLMC_NUMERICS_H
#define LLMC_NUMERICS_H

#include <stdint.h>

/* Elements per q8_0 group (ggml's QK8_0), and per q8_K block (QK_K). */
#define LLMC_Q8_0_GROUP 32
#define LLMC_Q8_K_BLOCK 256

static inline uint32_t llmc_float_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
}

static inline float llmc_bits_float(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

/* f as IEEE binary16 bits, rounded to nearest even; overflow gives +-inf,
 * a NaN gives the quiet NaN 0x7e00 with f's sign (as ggml's portable
 * conversion, which its reference quantizers use on x86-64). */
static inline uint16_t llmc_f32_to_f16(float f) {
  uint32_t x = llmc_float_bits(f), a = x & 0x7fffffffu;
  uint16_t sign = (uint16_t)((x >> 16) & 0x8000u);
  if (a > 0x7f800000u) /* NaN */
    return sign | 0x7e00u;
  if (a >= 0x477ff000u) /* 65520 and up round past 65504, the largest half */
    return sign | 0x7c00u;
  if (a >= 0x38800000u) { /* normal half (>= 2^-14): round the low 13 bits to even */
    uint32_t r = a + 0x0fffu + ((a >> 13) & 1u);
    return sign | (uint16_t)((r - 0x38000000u) >> 13); /* rebias 127 -> 15; a carry bumps e */
  }
  /* Subnormal half: the value in units of 2^-24, rounded to even. */
  uint32_t e = a >> 23;
  if (e < 102) /* below 2^-25: rounds to 0 */
    return sign;
  uint32_t m = (a & 0x7fffffu) | 0x800000u, shift = 126 - e; /* value = m * 2^-shift units */
  uint32_t q = m >> shift, rem = m & ((1u << shift) - 1), half = 1u << (shift - 1);
  if (rem > half || (rem == half && (q & 1u)))
    q++;
  return sign | (uint16_t)q;
}

/* The binary16 value h as f32 (exact; a NaN comes back quiet, as ggml's).
 * Selects rather than branches, so that loops over it vectorise. */
static inline float llmc_f16_to_f32(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000u) << 16, e = (h >> 10) & 0x1fu, m = h & 0x3ffu;
  uint32_t sub = llmc_float_bits((float)m * 0x1p-24f); /* zero or subnormal: m * 2^-24 */
  uint32_t bits = e == 0    ? sub
                  : e == 31 ? 0x7f800000u | m << 13 | (m ? 0x400000u : 0) /* inf, quiet NaN */
                            : (e + 112) << 23 | m << 13;
  return llmc_bits_float(bits | sign);
}

/* C's roundf (halves away from zero) without libm: LLVM's own lowering of
 * llvm.round, trunc(v + copysign(0.5 - 2^-25, v)); adding 0.5 itself would
 * round 0.49999997 up. |v| >= 2^23 (integers), infinities and NaN come
 * back as they are. */
static inline float llmc_roundf(float v) {
  if (!(__builtin_fabsf(v) < 8388608.0f))
    return v;
  float t = v + __builtin_copysignf(0.49999997f, v);
  return __builtin_copysignf((float)(int32_t)t, v); /* keeps -0 for -0.3 */
}

/* The int8 that x86-64 code gets from a float-to-int8 cast (cvttss2si, then
 * the low byte): truncation toward zero, and 0 for NaN or anything past
 * int32 (whose "integer indefinite" 0x80000000 has a zero low byte). */
static inline int llmc_trunc_to_int8(float v) {
  if (!(v > -2147483649.0f && v < 2147483648.0f))
    return 0;
  int low = (int)((uint32_t)(int32_t)v & 0xffu);
  return low > 127 ? low - 256 : low;
}

/* q [32] = x [32] quantized as ggml's quantize_row_q8_0_ref, bit for bit:
 * d = amax / 127, q = round(x * (1 / d)) (all 0 when amax is 0). Returns
 * the scale d as f16 bits; x is q * f16(d). */
static inline uint16_t llmc_q8_0_quantize(const float *x, int8_t *q) {
  float amax = 0.0f;
  for (int j = 0; j < LLMC_Q8_0_GROUP; j++) {
    float a = __builtin_fabsf(x[j]);
    amax = amax > a ? amax : a; /* ggml's MAX(amax, a): a NaN is kept only if last */
  }
  float d = amax / 127.0f;
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  for (int j = 0; j < LLMC_Q8_0_GROUP; j++)
    q[j] = (int8_t)llmc_trunc_to_int8(llmc_roundf(x[j] * id));
  return llmc_f32_to_f16(d);
}

/* ggml's nearest_int: round to nearest even by adding 1.5 * 2^23 and
 * reading the mantissa. Exact for |v| < 2^22; beyond that (and for inf and
 * NaN) it returns the same meaningless value ggml's does. */
static inline int llmc_nearest_int(float v) {
  uint32_t i = llmc_float_bits(v + 12582912.0f);
  return (int)(i & 0x007fffffu) - 0x00400000;
}

/* The first of x [n] with the largest magnitude (0 if all are 0 or NaN),
 * as ggml's K-quant quantizers find their scale: `if (|x| > amax)`. */
static inline float llmc_max_magnitude(const float *x, int n) {
  float max = 0.0f, amax = 0.0f;
  for (int j = 0; j < n; j++) {
    float ax = __builtin_fabsf(x[j]);
    if (ax > amax) {
      amax = ax;
      max = x[j];
    }
  }
  return max;
}

/* q [256] = x [256] quantized as ggml's quantize_row_q8_K_ref, bit for bit:
 * max = the value of largest magnitude (the first, on ties), scale
 * iscale = -127 / max, q = min(127, nearest_int(iscale * x)), and the
 * returned d = 1 / iscale (all 0 when max is 0). x is q * d. */
static inline float llmc_q8_K_quantize(const float *x, int8_t *q) {
  float max = llmc_max_magnitude(x, LLMC_Q8_K_BLOCK);
  if (max == 0.0f) {
    for (int j = 0; j < LLMC_Q8_K_BLOCK; j++)
      q[j] = 0;
    return 0.0f;
  }
  float iscale = -127.0f / max;
  for (int j = 0; j < LLMC_Q8_K_BLOCK; j++) {
    float v = iscale * x[j];
    int n = llmc_nearest_int(v);
    q[j] = (int8_t)(n < 127 ? n : 127);
  }
  return 1.0f / iscale;
}

#endif /* LLMC_NUMERICS_H */
