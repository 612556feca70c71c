/* kernels_int8.c — q8_0, q4_0, q4_K and q6_K matmuls as integer dot
 * products over 8-bit activations; the contracts and the numerics are in
 * kernels_int8.h, the weight layout in llmc/row_groups.h.
 *
 * Built like kernels.c (clang-19, freestanding bitcode). The matmul is
 * written once (kernels_int8_body.h) against a small SIMD layer and built
 * three times from here: for AVX512-VNNI (16 lanes in one register,
 * VPDPBUSD), for AVX2 (two 8-lane registers, VPMADDUBSW then VPMADDWD) and
 * for AVX-VNNI (two 8-lane registers, the 256-bit VPDPBUSD). The code
 * generator picks the set the target CPU has (llmc_codegen_int8_isa); its
 * CPU settings then replace these functions' target attributes.
 *
 * The dot products multiply unsigned bytes by signed bytes. The
 * activations are the signed operand, one 4-byte quad broadcast to all
 * lanes; the weights are the unsigned one: q8_0 levels are stored plus 128,
 * q6_K's are 0..63 (their -32 not applied), nibbles are 0..15 as they are.
 * An offset comes back out exactly: sum((q + 128) * x) = sum(q * x) +
 * 128 * sum(x), and sum(x) is computed once per block (per sub-block of 16
 * for q8_K) when the activations are quantized. The K types' sub-block
 * scales multiply the int32 sub-block sums (VPMULLD), still exactly.
 * VPMADDUBSW saturates its 16-bit pair sums: levels up to 63 times
 * activations up to 127 stay below that, but q8_0's stored levels (up to
 * 255) would not, so the AVX2 layer takes q8_0 as signed levels times
 * signed activations (VPSIGNB, as llama.cpp does) and leaves no offset.
 *
 * How a matmul runs. Tasks split the column groups (16 columns each); a
 * task walks its groups in tiles of TILE_GROUPS, whose weights stay in L2
 * while every token passes them. TOKEN_BLOCK tokens at a time share each
 * weight load (W_BLOCK weight groups: column groups, or a gate/up pair
 * under glu); the last tokens (all of them when decoding) go one at a
 * time over W_ONE groups. Each lane keeps one column's f32 accumulator, so
 * how tokens and groups are blocked never changes a result.
 */
#include "kernels_int8.h"

#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_common.h"

/* The weight types, as these kernels number them. */
enum { Q8_0, Q4_0, Q4_K, Q6_K };

enum {
  HALVES_BYTES = LLMC_ROW_GROUP * 2, /* 16 f16 values: a group block's d (or dmin) */
  TILE_GROUPS = 4,                   /* column groups per tile (64 columns) */
  MAX_ACC = 16,                      /* accumulators of one tile call: weight groups x tokens */
  Q4_K_SUB = 32,                     /* columns per q4_K sub-block */
  Q6_K_SUB = 16,                     /* columns per q6_K sub-block, and per q8_K level sum */
};

/* q4_K and q6_K, with q8_K activations, rather than q8_0 and q4_0. */
INLINE int k_type(int type) { return type == Q4_K || type == Q6_K; }

/* Columns per block, and the bytes of one block of a group of 16 rows. */
INLINE int64_t block_elems(int type) { return k_type(type) ? LLMC_Q8_K_BLOCK : LLMC_Q8_0_GROUP; }

INLINE int64_t group_block_bytes(int type) {
  return type == Q8_0   ? LLMC_RG_Q8_0_BYTES
         : type == Q4_0 ? LLMC_RG_Q4_0_BYTES
         : type == Q4_K ? LLMC_RG_Q4_K_BYTES
                        : LLMC_RG_Q6_K_BYTES;
}

/* ---- activations ------------------------------------------------------------ */

/* The parts of quantized activation row t (llmc_act_q8_row_bytes, or
 * with kq llmc_act_q8_K_row_bytes). */
typedef struct act_row {
  const int8_t *q;    /* [K] levels */
  const float *d;     /* [K / block] scales */
  const int32_t *sum; /* [K / sum block] level sums */
} act_row;

INLINE act_row act_row_at(const void *xq, int64_t K, int kq, int64_t t) {
  int64_t stride = kq ? llmc_act_q8_K_row_bytes(K) : llmc_act_q8_row_bytes(K);
  int64_t blocks = K / (kq ? LLMC_Q8_K_BLOCK : LLMC_Q8_0_GROUP);
  const uint8_t *row = (const uint8_t *)xq + t * stride;
  return (act_row){(const int8_t *)row, (const float *)(row + K), (const int32_t *)(row + K + 4 * blocks)};
}

/* The rows [t0, t1) of x [T, K] quantized into xq, as q8_K rows with kq. */
INLINE void quantize_act(const float *x, void *xq, int32_t T, int32_t K, int kq, int32_t task,
                         int32_t n_tasks) {
  int64_t t0, t1, be = kq ? LLMC_Q8_K_BLOCK : LLMC_Q8_0_GROUP, se = kq ? Q6_K_SUB : LLMC_Q8_0_GROUP;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) {
    act_row r = act_row_at(xq, K, kq, t);
    int8_t *q = (int8_t *)r.q;
    float *d = (float *)r.d;
    int32_t *sum = (int32_t *)r.sum;
    for (int64_t b = 0; b < K / be; b++) {
      const float *xb = x + t * K + b * be;
      d[b] = kq ? llmc_q8_K_quantize(xb, q + b * be) : llmc_f16_to_f32(llmc_q8_0_quantize(xb, q + b * be));
    }
    for (int64_t s = 0; s < K / se; s++) {
      int32_t total = 0;
      for (int64_t e = 0; e < se; e++)
        total += q[s * se + e];
      sum[s] = total;
    }
  }
}

void llmc_k_quantize_act_q8(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                            int32_t n_tasks) {
  quantize_act(x, xq, T, K, 0, task, n_tasks);
}

void llmc_k_quantize_act_q8_K(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                              int32_t n_tasks) {
  quantize_act(x, xq, T, K, 1, task, n_tasks);
}

/* ---- matmul ------------------------------------------------------------------- */

/* What one matmul call computes, shared by the tiles it is cut into. */
typedef struct imatmul_args {
  const void *xq;        /* [T] quantized rows */
  const uint8_t *w;      /* N / 16 groups (2N / 16 under glu) of group_bytes */
  const float *bias;     /* [N] or NULL */
  const float *residual; /* [T, N] or NULL; may be out */
  float *out;            /* [T, N] */
  int64_t K, N, group_bytes;
  int32_t glu; /* LLMC_ACT_*: NONE for a plain matmul */
  int32_t type;
} imatmul_args;

INLINE imatmul_args imatmul_args_of(int type, const void *xq, const void *w, const float *bias,
                                    const float *residual, float *out, int64_t K, int64_t N, int32_t glu) {
  return (imatmul_args){xq, w, bias, residual, out, K, N, K / block_elems(type) * group_block_bytes(type),
                        glu, type};
}

#define SIMD_CAT(a, b) a##_##b
#define SIMD_NAME(isa, name) SIMD_CAT(isa, name)
#define SIMD(name) SIMD_NAME(ISA, name)
#define ISA_EXPORT_CAT(name, isa) name##_r16_##isa
#define ISA_EXPORT_NAME(name, isa) ISA_EXPORT_CAT(name, isa)
#define ISA_EXPORT(name) ISA_EXPORT_NAME(name, ISA)

/* ---- the AVX512-VNNI layer: one 512-bit register per 16 lanes ---------------- */

#define ISA vnni
#define ISA_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c,fma")))

typedef __m512i vnni_vi;
typedef __m512 vnni_vf;
enum { vnni_TOKEN_BLOCK = 4, vnni_W_BLOCK = 2, vnni_W_ONE = 4, vnni_Q8_0_OFFSET = 128 };

INLINE ISA_TARGET vnni_vi vnni_vi_set1(int32_t v) { return _mm512_set1_epi32(v); }
INLINE ISA_TARGET vnni_vi vnni_vi_load(const uint8_t *p) { return _mm512_loadu_si512(p); }
INLINE ISA_TARGET vnni_vi vnni_vi_add(vnni_vi a, vnni_vi b) { return _mm512_add_epi32(a, b); }
INLINE ISA_TARGET vnni_vi vnni_vi_sub(vnni_vi a, vnni_vi b) { return _mm512_sub_epi32(a, b); }
INLINE ISA_TARGET vnni_vi vnni_vi_mullo(vnni_vi a, vnni_vi b) { return _mm512_mullo_epi32(a, b); }
/* The 16 lanes' byte factors at p (a sub-block's scales or mins). */
INLINE ISA_TARGET vnni_vi vnni_vi_factors(const uint8_t *p, int is_signed) {
  __m128i b = _mm_loadu_si128((const __m128i *)p);
  return is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}
/* The low (high = 0) or high nibbles of each byte of v. */
INLINE ISA_TARGET vnni_vi vnni_nibbles(vnni_vi v, int high) {
  return _mm512_and_si512(high ? _mm512_srli_epi16(v, 4) : v, _mm512_set1_epi8(0x0f));
}
/* q6_K levels: the low (high = 0) or high nibbles of low, with bits
 * shift .. shift+1 of top above them. */
INLINE ISA_TARGET vnni_vi vnni_six_bits(vnni_vi low, int high, vnni_vi top, int shift) {
  top = _mm512_and_si512(_mm512_srli_epi16(top, shift), _mm512_set1_epi8(3));
  return _mm512_or_si512(vnni_nibbles(low, high), _mm512_slli_epi16(top, 4));
}
INLINE ISA_TARGET vnni_vi vnni_dot4(vnni_vi acc, vnni_vi w, vnni_vi x) { return _mm512_dpbusd_epi32(acc, w, x); }
INLINE ISA_TARGET vnni_vi vnni_dot4_q8(vnni_vi acc, vnni_vi w, vnni_vi x) { return _mm512_dpbusd_epi32(acc, w, x); }
INLINE ISA_TARGET vnni_vf vnni_vf_set1(float v) { return _mm512_set1_ps(v); }
INLINE ISA_TARGET vnni_vf vnni_vf_from_vi(vnni_vi v) { return _mm512_cvtepi32_ps(v); }
INLINE ISA_TARGET vnni_vf vnni_vf_mul(vnni_vf a, vnni_vf b) { return _mm512_mul_ps(a, b); }
/* a * b + c and c - a * b, each rounded once. */
INLINE ISA_TARGET vnni_vf vnni_vf_fmadd(vnni_vf a, vnni_vf b, vnni_vf c) { return _mm512_fmadd_ps(a, b, c); }
INLINE ISA_TARGET vnni_vf vnni_vf_fnmadd(vnni_vf a, vnni_vf b, vnni_vf c) { return _mm512_fnmadd_ps(a, b, c); }
/* The 16 lanes' f16 values at p (a group block's d or dmin) as f32. */
INLINE ISA_TARGET vnni_vf vnni_vf_halves(const uint8_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
INLINE ISA_TARGET void vnni_vf_store(float *p, vnni_vf v) { _mm512_storeu_ps(p, v); }

#include "kernels_int8_body.h"
#undef ISA
#undef ISA_TARGET

/* ---- the AVX2 layer: two 256-bit registers per 16 lanes (rows 0-7, 8-15) ------ */

#define ISA avx2
#define ISA_TARGET __attribute__((target("avx2,f16c,fma")))

typedef struct { __m256i lo, hi; } avx2_vi;
typedef struct { __m256 lo, hi; } avx2_vf;
enum { avx2_TOKEN_BLOCK = 2, avx2_W_BLOCK = 2, avx2_W_ONE = 2, avx2_Q8_0_OFFSET = 0 };

INLINE ISA_TARGET avx2_vi avx2_vi_set1(int32_t v) {
  __m256i h = _mm256_set1_epi32(v);
  return (avx2_vi){h, h};
}
INLINE ISA_TARGET avx2_vi avx2_vi_load(const uint8_t *p) {
  return (avx2_vi){_mm256_loadu_si256((const __m256i *)p), _mm256_loadu_si256((const __m256i *)(p + 32))};
}
INLINE ISA_TARGET avx2_vi avx2_vi_add(avx2_vi a, avx2_vi b) {
  return (avx2_vi){_mm256_add_epi32(a.lo, b.lo), _mm256_add_epi32(a.hi, b.hi)};
}
INLINE ISA_TARGET avx2_vi avx2_vi_sub(avx2_vi a, avx2_vi b) {
  return (avx2_vi){_mm256_sub_epi32(a.lo, b.lo), _mm256_sub_epi32(a.hi, b.hi)};
}
INLINE ISA_TARGET avx2_vi avx2_vi_mullo(avx2_vi a, avx2_vi b) {
  return (avx2_vi){_mm256_mullo_epi32(a.lo, b.lo), _mm256_mullo_epi32(a.hi, b.hi)};
}
INLINE ISA_TARGET avx2_vi avx2_vi_factors(const uint8_t *p, int is_signed) {
  __m128i lo = _mm_loadl_epi64((const __m128i *)p), hi = _mm_loadl_epi64((const __m128i *)(p + 8));
  if (is_signed)
    return (avx2_vi){_mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(hi)};
  return (avx2_vi){_mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(hi)};
}
INLINE ISA_TARGET __m256i avx2_nibbles_half(__m256i v, int high) {
  return _mm256_and_si256(high ? _mm256_srli_epi16(v, 4) : v, _mm256_set1_epi8(0x0f));
}
INLINE ISA_TARGET avx2_vi avx2_nibbles(avx2_vi v, int high) {
  return (avx2_vi){avx2_nibbles_half(v.lo, high), avx2_nibbles_half(v.hi, high)};
}
INLINE ISA_TARGET __m256i avx2_six_bits_half(__m256i low, int high, __m256i top, int shift) {
  top = _mm256_and_si256(_mm256_srli_epi16(top, shift), _mm256_set1_epi8(3));
  return _mm256_or_si256(avx2_nibbles_half(low, high), _mm256_slli_epi16(top, 4));
}
INLINE ISA_TARGET avx2_vi avx2_six_bits(avx2_vi low, int high, avx2_vi top, int shift) {
  return (avx2_vi){avx2_six_bits_half(low.lo, high, top.lo, shift), avx2_six_bits_half(low.hi, high, top.hi, shift)};
}
/* acc + the 4-byte dot products of u (unsigned, at most 63) and x
 * (signed): pairs of products summed to 16 bits (at most 2 * 63 * 127,
 * no saturation), then pairs of those to 32. */
INLINE ISA_TARGET __m256i avx2_dot4_half(__m256i acc, __m256i u, __m256i x) {
  __m256i pairs = _mm256_maddubs_epi16(u, x);
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
INLINE ISA_TARGET avx2_vi avx2_dot4(avx2_vi acc, avx2_vi w, avx2_vi x) {
  return (avx2_vi){avx2_dot4_half(acc.lo, w.lo, x.lo), avx2_dot4_half(acc.hi, w.hi, x.hi)};
}
/* q8_0: w holds levels plus 128. As signed levels s, |s| times x with s's
 * sign keeps each pair sum within 16 bits (2 * 128 * 127), and the lane
 * gets sum(s * x) itself: no offset (avx2_Q8_0_OFFSET = 0). */
INLINE ISA_TARGET __m256i avx2_dot4_q8_half(__m256i acc, __m256i w, __m256i x) {
  __m256i s = _mm256_xor_si256(w, _mm256_set1_epi8((char)0x80));
  return avx2_dot4_half(acc, _mm256_abs_epi8(s), _mm256_sign_epi8(x, s));
}
INLINE ISA_TARGET avx2_vi avx2_dot4_q8(avx2_vi acc, avx2_vi w, avx2_vi x) {
  return (avx2_vi){avx2_dot4_q8_half(acc.lo, w.lo, x.lo), avx2_dot4_q8_half(acc.hi, w.hi, x.hi)};
}
INLINE ISA_TARGET avx2_vf avx2_vf_set1(float v) {
  __m256 h = _mm256_set1_ps(v);
  return (avx2_vf){h, h};
}
INLINE ISA_TARGET avx2_vf avx2_vf_from_vi(avx2_vi v) {
  return (avx2_vf){_mm256_cvtepi32_ps(v.lo), _mm256_cvtepi32_ps(v.hi)};
}
INLINE ISA_TARGET avx2_vf avx2_vf_mul(avx2_vf a, avx2_vf b) {
  return (avx2_vf){_mm256_mul_ps(a.lo, b.lo), _mm256_mul_ps(a.hi, b.hi)};
}
INLINE ISA_TARGET avx2_vf avx2_vf_fmadd(avx2_vf a, avx2_vf b, avx2_vf c) {
  return (avx2_vf){_mm256_fmadd_ps(a.lo, b.lo, c.lo), _mm256_fmadd_ps(a.hi, b.hi, c.hi)};
}
INLINE ISA_TARGET avx2_vf avx2_vf_fnmadd(avx2_vf a, avx2_vf b, avx2_vf c) {
  return (avx2_vf){_mm256_fnmadd_ps(a.lo, b.lo, c.lo), _mm256_fnmadd_ps(a.hi, b.hi, c.hi)};
}
INLINE ISA_TARGET avx2_vf avx2_vf_halves(const uint8_t *p) {
  return (avx2_vf){_mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)),
                   _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(p + 16)))};
}
INLINE ISA_TARGET void avx2_vf_store(float *p, avx2_vf v) {
  _mm256_storeu_ps(p, v.lo);
  _mm256_storeu_ps(p + 8, v.hi);
}

#include "kernels_int8_body.h"
#undef ISA
#undef ISA_TARGET

/* ---- the AVX-VNNI layer: the AVX2 one, with VEX VPDPBUSD ---------------------- */

/* Alder Lake and later client CPUs (and Zen 5) have the 256-bit VPDPBUSD
 * without AVX-512: the AVX2 layer's registers and operations, one
 * instruction per dot product, and q8_0 with its stored offset as in the
 * VNNI layer. */
#define ISA avxvnni
#define ISA_TARGET __attribute__((target("avx2,f16c,fma,avxvnni")))

typedef avx2_vi avxvnni_vi;
typedef avx2_vf avxvnni_vf;
enum { avxvnni_TOKEN_BLOCK = 2, avxvnni_W_BLOCK = 2, avxvnni_W_ONE = 2, avxvnni_Q8_0_OFFSET = 128 };
#define avxvnni_vi_set1 avx2_vi_set1
#define avxvnni_vi_load avx2_vi_load
#define avxvnni_vi_add avx2_vi_add
#define avxvnni_vi_sub avx2_vi_sub
#define avxvnni_vi_mullo avx2_vi_mullo
#define avxvnni_vi_factors avx2_vi_factors
#define avxvnni_nibbles avx2_nibbles
#define avxvnni_six_bits avx2_six_bits
#define avxvnni_vf_set1 avx2_vf_set1
#define avxvnni_vf_from_vi avx2_vf_from_vi
#define avxvnni_vf_mul avx2_vf_mul
#define avxvnni_vf_fmadd avx2_vf_fmadd
#define avxvnni_vf_fnmadd avx2_vf_fnmadd
#define avxvnni_vf_halves avx2_vf_halves
#define avxvnni_vf_store avx2_vf_store

INLINE ISA_TARGET avxvnni_vi avxvnni_dot4(avxvnni_vi acc, avxvnni_vi w, avxvnni_vi x) {
  return (avxvnni_vi){_mm256_dpbusd_avx_epi32(acc.lo, w.lo, x.lo), _mm256_dpbusd_avx_epi32(acc.hi, w.hi, x.hi)};
}
#define avxvnni_dot4_q8 avxvnni_dot4

#include "kernels_int8_body.h"
#undef ISA
#undef ISA_TARGET
