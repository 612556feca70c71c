/* quant.c — see quant.h. Block layouts (byte offsets within one block):
 *
 *   q8_0 (32 elements, 34 bytes):  [0] f16 d  [2] int8 q[32]      x = d * q
 *   q4_0 (32 elements, 18 bytes):  [0] f16 d  [2] u8 qs[16]       x = d * (nibble - 8);
 *        element j is the low nibble of qs[j], element j + 16 its high nibble
 *   q4_K (256 elements, 144 bytes): [0] f16 d  [2] f16 dmin  [4] u8 scales[12]  [16] u8 qs[128]
 *        8 sub-blocks of 32, each with a 6-bit scale s and min m packed in
 *        scales (see pack_scale_min); x = d*s * nibble - dmin*m. Each 32 bytes
 *        of qs hold two sub-blocks: the low nibbles, then the high nibbles.
 *   q6_K (256 elements, 210 bytes): [0] u8 ql[128]  [128] u8 qh[64]  [192] int8 scales[16]
 *        [208] f16 d
 *        16 sub-blocks of 16; x = d * scale * (q - 32), q = 4 low bits from ql
 *        and 2 high bits from qh (see q6_k_index).
 *
 * Bit-exactness with ggml. Every float operation of ggml's reference
 * quantizers is repeated here in the same order with the same operand
 * types (an int converted to float where ggml's expression converts it),
 * and scales go through the same f16 rounding. No operation may be fused:
 * gcc in ISO C mode (how llmc is built) never contracts a * b + c, and the
 * pragma below tells clang the same. Where ggml's C relies on x86-64
 * behaviour (float to int8 conversion of NaN, int to int8 truncation), the
 * same results are produced here with defined C.
 */
#include "formats/quant.h"

#include <math.h>
#include <string.h>

#include "llmc/numerics.h"
#include "llmc/row_groups.h"

#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

enum {
  QK_SMALL = 32, /* elements per q8_0 / q4_0 block */
  QK_K = 256,    /* elements per q4_K / q6_K super-block */
  Q4_K_SUB = 32, /* elements per q4_K sub-block */
  Q6_K_SUB = 16, /* elements per q6_K sub-block */
};

/* ---- scalar helpers ------------------------------------------------------ */

/* The f16 conversions and q8_0's quantizer are llmc/numerics.h's, which the
 * KV cache kernels compile too. */
uint16_t llmc_quant_f32_to_f16(float f) { return llmc_f32_to_f16(f); }

float llmc_quant_f16_to_f32(uint16_t h) { return llmc_f16_to_f32(h); }

static float load_f16(const uint8_t *p) {
  return llmc_quant_f16_to_f32((uint16_t)(p[0] | p[1] << 8));
}

static void store_f16(uint8_t *p, float f) {
  uint16_t h = llmc_quant_f32_to_f16(f);
  p[0] = (uint8_t)h;
  p[1] = (uint8_t)(h >> 8);
}

static int nearest_int(float v) { return llmc_nearest_int(v); }

/* The int8 value of an int, modulo 256 (as ggml's int-to-int8 stores). */
static int wrap_int8(int v) {
  int low = (int)((unsigned)v & 0xffu);
  return low > 127 ? low - 256 : low;
}

static int clamp_int(int v, int lo, int hi) { return v < lo ? lo : v > hi ? hi : v; }

/* ---- q8_0 ------------------------------------------------------------------ */

static void quantize_q8_0(const float *x, uint8_t *blk) {
  uint16_t d = llmc_q8_0_quantize(x, (int8_t *)(blk + 2));
  blk[0] = (uint8_t)d;
  blk[1] = (uint8_t)(d >> 8);
}

static void dequantize_q8_0(const uint8_t *blk, float *y) {
  float d = load_f16(blk);
  for (int j = 0; j < QK_SMALL; j++)
    y[j] = (float)(int8_t)blk[2 + j] * d;
}

/* ---- q4_0 ------------------------------------------------------------------ */

static void quantize_q4_0(const float *x, uint8_t *blk) {
  float max = llmc_max_magnitude(x, QK_SMALL); /* with its sign */
  float d = max / -8.0f; /* the extreme value maps to -8 */
  float id = d != 0.0f ? 1.0f / d : 0.0f;
  store_f16(blk, d);
  for (int j = 0; j < QK_SMALL / 2; j++) {
    int lo = llmc_trunc_to_int8(x[j] * id + 8.5f);
    int hi = llmc_trunc_to_int8(x[j + QK_SMALL / 2] * id + 8.5f);
    lo = lo < 15 ? lo : 15;
    hi = hi < 15 ? hi : 15;
    blk[2 + j] = (uint8_t)((unsigned)lo | (unsigned)hi << 4);
  }
}

static void dequantize_q4_0(const uint8_t *blk, float *y) {
  float d = load_f16(blk);
  for (int j = 0; j < QK_SMALL / 2; j++) {
    y[j] = (float)((blk[2 + j] & 0x0f) - 8) * d;
    y[j + QK_SMALL / 2] = (float)((blk[2 + j] >> 4) - 8) * d;
  }
}

/* ---- q4_K ------------------------------------------------------------------ */

/* ggml's make_qkx2_quants for one sub-block of 32 with nmax 15, weights w,
 * rmin -1, rdelta 0.1, 20 steps, squared error: levels L [32] in 0..15 and
 * (return) scale and (*out_min) min such that x ~ scale * L - min, found by
 * trying 21 scales around (max - min) / 15 and refitting scale and min by
 * weighted least squares for each. */
static float fit_scale_min(const float *x, const float *w, uint8_t *L, float *out_min) {
  enum { N = Q4_K_SUB, NMAX = 15, NSTEP = 20 };
  const float rmin = -1.0f, rdelta = 0.1f;
  float min = x[0], max = x[0], sum_w = w[0], sum_x = sum_w * x[0];
  for (int i = 1; i < N; i++) {
    if (x[i] < min) min = x[i];
    if (x[i] > max) max = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (min > 0) min = 0;
  if (max == min) {
    memset(L, 0, N);
    *out_min = -min;
    return 0.0f;
  }
  float iscale = (float)NMAX / (max - min), scale = 1.0f / iscale, best_err = 0.0f;
  for (int i = 0; i < N; i++) {
    L[i] = (uint8_t)clamp_int(nearest_int(iscale * (x[i] - min)), 0, NMAX);
    float diff = scale * (float)L[i] + min - x[i];
    diff = diff * diff;
    best_err += w[i] * diff;
  }
  for (int step = 0; step <= NSTEP; step++) {
    iscale = (rmin + rdelta * (float)step + (float)NMAX) / (max - min);
    uint8_t trial[N];
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < N; i++) {
      int l = clamp_int(nearest_int(iscale * (x[i] - min)), 0, NMAX);
      trial[i] = (uint8_t)l;
      sum_l += w[i] * (float)l;
      sum_l2 += w[i] * (float)l * (float)l;
      sum_xl += w[i] * (float)l * x[i];
    }
    float det = sum_w * sum_l2 - sum_l * sum_l;
    if (!(det > 0))
      continue;
    float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
    float this_min = (sum_l2 * sum_x - sum_l * sum_xl) / det;
    if (this_min > 0) {
      this_min = 0;
      this_scale = sum_xl / sum_l2;
    }
    float err = 0;
    for (int i = 0; i < N; i++) {
      float diff = this_scale * (float)trial[i] + this_min - x[i];
      diff = diff * diff;
      err += w[i] * diff;
    }
    if (err < best_err) {
      memcpy(L, trial, N);
      best_err = err;
      scale = this_scale;
      min = this_min;
    }
  }
  *out_min = -min;
  return scale;
}

/* The 12 scale bytes of q4_K from 8 six-bit scales sc and mins m: bytes
 * 0-3 hold sc[0..3] and bytes 4-7 m[0..3] in their low 6 bits; sub-blocks
 * 4-7 keep their low 4 bits in bytes 8-11 (sc low nibble, m high nibble)
 * and their top 2 bits in the top bits of bytes 0-3 (sc) and 4-7 (m). */
static void pack_scale_min(const uint8_t *sc, const uint8_t *m, uint8_t *out) {
  for (int j = 0; j < 4; j++) {
    out[j] = (uint8_t)(sc[j] | (sc[j + 4] >> 4) << 6);
    out[j + 4] = (uint8_t)(m[j] | (m[j + 4] >> 4) << 6);
    out[j + 8] = (uint8_t)((sc[j + 4] & 0x0f) | (m[j + 4] & 0x0f) << 4);
  }
}

/* Sub-block j's six-bit scale and min from the 12 packed bytes q. */
static void unpack_scale_min(const uint8_t *q, int j, uint8_t *sc, uint8_t *m) {
  if (j < 4) {
    *sc = q[j] & 63;
    *m = q[j + 4] & 63;
  } else {
    *sc = (uint8_t)((q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4);
    *m = (uint8_t)((q[j + 4] >> 4) | (q[j] >> 6) << 4);
  }
}

static void quantize_q4_K(const float *x, uint8_t *blk) {
  enum { SUBS = QK_K / Q4_K_SUB };
  uint8_t L[QK_K];
  float scales[SUBS], mins[SUBS], max_scale = 0, max_min = 0;
  for (int j = 0; j < SUBS; j++) {
    const float *xs = x + Q4_K_SUB * j;
    float sum_x2 = 0, w[Q4_K_SUB];
    for (int l = 0; l < Q4_K_SUB; l++)
      sum_x2 += xs[l] * xs[l];
    float av_x = sqrtf(sum_x2 / (float)Q4_K_SUB);
    for (int l = 0; l < Q4_K_SUB; l++)
      w[l] = av_x + fabsf(xs[l]);
    scales[j] = fit_scale_min(xs, w, L + Q4_K_SUB * j, &mins[j]);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }
  float inv_scale = max_scale > 0 ? 63.0f / max_scale : 0.0f;
  float inv_min = max_min > 0 ? 63.0f / max_min : 0.0f;
  uint8_t ls[SUBS], lm[SUBS];
  for (int j = 0; j < SUBS; j++) {
    uint8_t s = (uint8_t)nearest_int(inv_scale * scales[j]);
    uint8_t m = (uint8_t)nearest_int(inv_min * mins[j]);
    ls[j] = s < 63 ? s : 63;
    lm[j] = m < 63 ? m : 63;
  }
  store_f16(blk, max_scale / 63.0f);
  store_f16(blk + 2, max_min / 63.0f);
  pack_scale_min(ls, lm, blk + 4);
  /* Requantize each sub-block with the scale and min as they were stored. */
  for (int j = 0; j < SUBS; j++) {
    float d = load_f16(blk) * (float)ls[j];
    if (d == 0.0f) /* keep the levels found above */
      continue;
    float dm = load_f16(blk + 2) * (float)lm[j];
    for (int i = 0; i < Q4_K_SUB; i++)
      L[Q4_K_SUB * j + i] = (uint8_t)clamp_int(nearest_int((x[Q4_K_SUB * j + i] + dm) / d), 0, 15);
  }
  uint8_t *qs = blk + 16;
  for (int j = 0; j < QK_K; j += 2 * Q4_K_SUB) /* sub-blocks 2c (low) and 2c + 1 (high nibbles) */
    for (int l = 0; l < Q4_K_SUB; l++)
      *qs++ = (uint8_t)(L[j + l] | L[j + l + Q4_K_SUB] << 4);
}

static void dequantize_q4_K(const uint8_t *blk, float *y) {
  float d = load_f16(blk), dmin = load_f16(blk + 2);
  const uint8_t *qs = blk + 16;
  for (int j = 0; j < QK_K / Q4_K_SUB; j += 2) { /* sub-blocks j, j + 1 share 32 bytes of qs */
    uint8_t sc, m;
    unpack_scale_min(blk + 4, j, &sc, &m);
    float d1 = d * (float)sc, m1 = dmin * (float)m;
    unpack_scale_min(blk + 4, j + 1, &sc, &m);
    float d2 = d * (float)sc, m2 = dmin * (float)m;
    for (int l = 0; l < Q4_K_SUB; l++)
      *y++ = d1 * (float)(qs[l] & 0x0f) - m1;
    for (int l = 0; l < Q4_K_SUB; l++)
      *y++ = d2 * (float)(qs[l] >> 4) - m2;
    qs += Q4_K_SUB;
  }
}

/* ---- q6_K ------------------------------------------------------------------ */

/* ggml's make_qx_quants for one sub-block of 16 with nmax 32, weights x^2
 * (rmse_type 1): levels L [16] in 0..63 (stored + 32) and (return) the
 * scale such that x ~ scale * (L - 32), the best of 19 trial scales around
 * max / -32 by weighted least squares. */
static float fit_scale_symmetric(const float *x, int8_t *L) {
  enum { N = Q6_K_SUB, NMAX = 32 };
  float max = llmc_max_magnitude(x, N);
  if (fabsf(max) < 1e-15f) { /* all zero */
    memset(L, 0, N);
    return 0.0f;
  }
  float iscale = -(float)NMAX / max, sumlx = 0, suml2 = 0;
  for (int i = 0; i < N; i++) {
    int l = clamp_int(nearest_int(iscale * x[i]), -NMAX, NMAX - 1);
    L[i] = (int8_t)(l + NMAX);
    float w = x[i] * x[i];
    sumlx += w * x[i] * (float)l;
    suml2 += w * (float)l * (float)l;
  }
  float scale = suml2 != 0.0f ? sumlx / suml2 : 0.0f, best = scale * sumlx;
  for (int is = -9; is <= 9; is++) {
    if (is == 0)
      continue;
    iscale = -((float)NMAX + 0.1f * (float)is) / max;
    sumlx = suml2 = 0;
    for (int i = 0; i < N; i++) {
      int l = clamp_int(nearest_int(iscale * x[i]), -NMAX, NMAX - 1);
      float w = x[i] * x[i];
      sumlx += w * x[i] * (float)l;
      suml2 += w * (float)l * (float)l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < N; i++)
        L[i] = (int8_t)(NMAX + clamp_int(nearest_int(iscale * x[i]), -NMAX, NMAX - 1));
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

/* Where element e (< 256) of a q6_K block keeps its bits: the byte of ql
 * and its nibble (shift 0 or 4), the byte of qh and its 2-bit field. In each
 * half of 128 elements, 32 bytes of qh hold the top bits of four runs of 32
 * (fields 0-3), and 64 bytes of ql their low bits: runs 0 and 1 in the low
 * nibbles of ql[0..31] and ql[32..63], runs 2 and 3 in the high nibbles. */
static void q6_k_index(int e, int *ql, int *ql_shift, int *qh, int *qh_shift) {
  int half = e / 128, run = e % 128 / 32, l = e % 32;
  *ql = 64 * half + 32 * (run & 1) + l;
  *ql_shift = 4 * (run >> 1);
  *qh = 128 + 32 * half + l;
  *qh_shift = 2 * run;
}

static void quantize_q6_K(const float *x, uint8_t *blk) {
  enum { SUBS = QK_K / Q6_K_SUB };
  int8_t L[QK_K];
  float scales[SUBS], max_scale = 0, max_abs_scale = 0;
  for (int ib = 0; ib < SUBS; ib++) {
    scales[ib] = fit_scale_symmetric(x + Q6_K_SUB * ib, L + Q6_K_SUB * ib);
    if (fabsf(scales[ib]) > max_abs_scale) {
      max_abs_scale = fabsf(scales[ib]);
      max_scale = scales[ib];
    }
  }
  memset(blk, 0, 210);
  if (max_abs_scale < 1e-15f) /* all zero: an all-zero block */
    return;
  int8_t *sc = (int8_t *)(blk + 192);
  float iscale = -128.0f / max_scale;
  store_f16(blk + 208, 1.0f / iscale);
  for (int ib = 0; ib < SUBS; ib++) {
    int s = nearest_int(iscale * scales[ib]);
    sc[ib] = (int8_t)wrap_int8(s < 127 ? s : 127);
  }
  /* Requantize each sub-block with its scale as stored. */
  for (int j = 0; j < SUBS; j++) {
    float d = load_f16(blk + 208) * (float)sc[j];
    if (d == 0.0f) /* keep the levels found above */
      continue;
    for (int i = 0; i < Q6_K_SUB; i++)
      L[Q6_K_SUB * j + i] =
          (int8_t)(clamp_int(nearest_int(x[Q6_K_SUB * j + i] / d), -32, 31) + 32);
  }
  for (int e = 0; e < QK_K; e++) {
    int ql, ql_shift, qh, qh_shift;
    q6_k_index(e, &ql, &ql_shift, &qh, &qh_shift);
    blk[ql] |= (uint8_t)((L[e] & 0x0f) << ql_shift);
    blk[qh] |= (uint8_t)((L[e] >> 4) << qh_shift);
  }
}

static void dequantize_q6_K(const uint8_t *blk, float *y) {
  float d = load_f16(blk + 208);
  const int8_t *sc = (const int8_t *)(blk + 192);
  for (int e = 0; e < QK_K; e++) {
    int ql, ql_shift, qh, qh_shift;
    q6_k_index(e, &ql, &ql_shift, &qh, &qh_shift);
    int q = ((blk[ql] >> ql_shift) & 0x0f) | ((blk[qh] >> qh_shift) & 3) << 4;
    y[e] = d * (float)sc[e / Q6_K_SUB] * (float)(q - 32);
  }
}

/* ---- the table ---------------------------------------------------------------- */

typedef struct {
  llmc_ggml_type_t type;
  const char *name;
  int64_t block_elems, block_bytes;
  void (*quantize)(const float *x, uint8_t *blk);    /* one block: x [block_elems] */
  void (*dequantize)(const uint8_t *blk, float *y); /* one block: y [block_elems] */
} quant_format_t;

static const quant_format_t formats[] = {
    {LLMC_GGML_Q8_0, "q8_0", QK_SMALL, 34, quantize_q8_0, dequantize_q8_0},
    {LLMC_GGML_Q4_0, "q4_0", QK_SMALL, 18, quantize_q4_0, dequantize_q4_0},
    {LLMC_GGML_Q4_K, "q4_K", QK_K, 144, quantize_q4_K, dequantize_q4_K},
    {LLMC_GGML_Q6_K, "q6_K", QK_K, 210, quantize_q6_K, dequantize_q6_K},
};

static const quant_format_t *format_of(llmc_ggml_type_t type) {
  for (size_t i = 0; i < sizeof formats / sizeof formats[0]; i++)
    if (formats[i].type == type)
      return &formats[i];
  return NULL;
}

int64_t llmc_quant_block_elems(llmc_ggml_type_t type) {
  const quant_format_t *f = format_of(type);
  return f ? f->block_elems : 0;
}

int64_t llmc_quant_block_bytes(llmc_ggml_type_t type) {
  const quant_format_t *f = format_of(type);
  return f ? f->block_bytes : 0;
}

llmc_status_t llmc_quant_check_row(llmc_ggml_type_t type, int64_t n) {
  const quant_format_t *f = format_of(type);
  if (!f)
    return LLMC_ERROR(INVALID_ARGUMENT, "type %u is not a quantized type llmc computes with (q8_0, "
                      "q4_0, q4_K, q6_K)", (unsigned)type);
  if (n <= 0 || n % f->block_elems)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "rows of %lld elements are not a multiple of %s's block of %lld",
                      (long long)n, f->name, (long long)f->block_elems);
  return LLMC_OK;
}

int64_t llmc_quant_row_bytes(llmc_ggml_type_t type, int64_t n) {
  const quant_format_t *f = format_of(type);
  if (!f || n <= 0 || n % f->block_elems)
    return 0;
  return n / f->block_elems * f->block_bytes;
}

llmc_status_t llmc_quant_quantize_row(llmc_ggml_type_t type, const float *src, void *dst,
                                      int64_t n) {
  LLMC_PROPAGATE(llmc_quant_check_row(type, n));
  const quant_format_t *f = format_of(type);
  uint8_t *out = dst;
  for (int64_t b = 0; b < n / f->block_elems; b++)
    f->quantize(src + b * f->block_elems, out + b * f->block_bytes);
  return LLMC_OK;
}

llmc_status_t llmc_quant_dequantize_row(llmc_ggml_type_t type, const void *src, float *dst,
                                        int64_t n) {
  LLMC_PROPAGATE(llmc_quant_check_row(type, n));
  const quant_format_t *f = format_of(type);
  const uint8_t *in = src;
  for (int64_t b = 0; b < n / f->block_elems; b++)
    f->dequantize(in + b * f->block_bytes, dst + b * f->block_elems);
  return LLMC_OK;
}

/* ---- rows in groups of 16 (llmc/row_groups.h) ------------------------------ */

/* u [block elems] = the unsigned levels of the block at blk (row_groups.h). */
static void block_levels(llmc_ggml_type_t type, const uint8_t *blk, uint8_t *u) {
  if (type == LLMC_GGML_Q8_0) {
    for (int e = 0; e < QK_SMALL; e++) u[e] = (uint8_t)(blk[2 + e] ^ 0x80); /* int8 + 128 */
  } else if (type == LLMC_GGML_Q4_0) {
    for (int e = 0; e < QK_SMALL; e++) u[e] = e < 16 ? blk[2 + e] & 0x0f : blk[2 + e - 16] >> 4;
  } else if (type == LLMC_GGML_Q4_K) {
    for (int e = 0; e < QK_K; e++) {
      uint8_t q = blk[16 + 32 * (e / 64) + e % 32];
      u[e] = e % 64 < 32 ? q & 0x0f : q >> 4;
    }
  } else {
    for (int e = 0; e < QK_K; e++) {
      int ql, ql_shift, qh, qh_shift;
      q6_k_index(e, &ql, &ql_shift, &qh, &qh_shift);
      u[e] = (uint8_t)((blk[ql] >> ql_shift & 0x0f) | (blk[qh] >> qh_shift & 3) << 4);
    }
  }
}

static int64_t group_block_bytes(llmc_ggml_type_t type) {
  switch (type) {
  case LLMC_GGML_Q8_0: return LLMC_RG_Q8_0_BYTES;
  case LLMC_GGML_Q4_0: return LLMC_RG_Q4_0_BYTES;
  case LLMC_GGML_Q4_K: return LLMC_RG_Q4_K_BYTES;
  case LLMC_GGML_Q6_K: return LLMC_RG_Q6_K_BYTES;
  default: return 0;
  }
}

/* Writes one block of a group: blk[r] is row r's block in ggml's layout. */
static void group_block(llmc_ggml_type_t type, const uint8_t *const *blk, uint8_t *out) {
  enum { G = LLMC_ROW_GROUP };
  uint8_t u[G][QK_K]; /* levels of each row */
  for (int r = 0; r < G; r++) block_levels(type, blk[r], u[r]);
  /* Header: f16 d (and dmin), then q4_K's and q6_K's sub-block factors. */
  int d_at = type == LLMC_GGML_Q6_K ? 208 : 0;
  for (int r = 0; r < G; r++, out += 2) memcpy(out, blk[r] + d_at, 2);
  if (type == LLMC_GGML_Q4_K) {
    for (int r = 0; r < G; r++, out += 2) memcpy(out, blk[r] + 2, 2);
    for (int minimum = 0; minimum < 2; minimum++)
      for (int j = 0; j < 8; j++)
        for (int r = 0; r < G; r++) {
          uint8_t sc, m;
          unpack_scale_min(blk[r] + 4, j, &sc, &m);
          *out++ = minimum ? m : sc;
        }
  }
  if (type == LLMC_GGML_Q6_K)
    for (int sub = 0; sub < 16; sub++)
      for (int r = 0; r < G; r++) *out++ = blk[r][192 + sub];
  /* Level vectors: vector v's byte 4r + c for each row r and c < 4. */
  int vectors = type == LLMC_GGML_Q8_0 ? 8 : type == LLMC_GGML_Q4_0 ? 4 : type == LLMC_GGML_Q4_K ? 32 : 48;
  for (int v = 0; v < vectors; v++)
    for (int r = 0; r < G; r++)
      for (int c = 0; c < 4; c++) {
        const uint8_t *x = u[r];
        uint8_t byte;
        if (type == LLMC_GGML_Q8_0) {
          byte = x[4 * v + c];
        } else if (type == LLMC_GGML_Q4_0) {
          byte = (uint8_t)(x[4 * v + c] | x[16 + 4 * v + c] << 4);
        } else if (type == LLMC_GGML_Q4_K) {
          int p = v / 8, q = v % 8;
          byte = (uint8_t)(x[64 * p + 4 * q + c] | x[64 * p + 32 + 4 * q + c] << 4);
        } else {
          int p = v / 6, k = v % 6; /* 4 low-bit vectors, then 2 high-bit ones */
          const uint8_t *pair = x + 32 * p;
          if (k < 4) {
            byte = (uint8_t)((pair[4 * k + c] & 0x0f) | (pair[16 + 4 * k + c] & 0x0f) << 4);
          } else {
            byte = 0;
            for (int i = 0; i < 4; i++) byte |= (uint8_t)((pair[16 * (k - 4) + 4 * i + c] >> 4) << (2 * i));
          }
        }
        *out++ = byte;
      }
}

int64_t llmc_quant_grouped_bytes(llmc_ggml_type_t type, int64_t n_rows, int64_t n) {
  int64_t elems = llmc_quant_block_elems(type);
  return elems ? n_rows / LLMC_ROW_GROUP * (n / elems) * group_block_bytes(type) : 0;
}

llmc_status_t llmc_quant_group_rows(llmc_ggml_type_t type, const void *src, void *dst, int64_t n_rows,
                                    int64_t n) {
  LLMC_PROPAGATE(llmc_quant_check_row(type, n));
  if (n_rows % LLMC_ROW_GROUP != 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "%lld rows are not whole groups of %d", (long long)n_rows, LLMC_ROW_GROUP);
  const int64_t bb = llmc_quant_block_bytes(type), blocks = n / llmc_quant_block_elems(type);
  const int64_t row_bytes = blocks * bb;
  uint8_t *out = dst;
  for (int64_t g = 0; g < n_rows / LLMC_ROW_GROUP; g++)
    for (int64_t b = 0; b < blocks; b++, out += group_block_bytes(type)) {
      const uint8_t *blk[LLMC_ROW_GROUP];
      for (int r = 0; r < LLMC_ROW_GROUP; r++)
        blk[r] = (const uint8_t *)src + (g * LLMC_ROW_GROUP + r) * row_bytes + b * bb;
      group_block(type, blk, out);
    }
  return LLMC_OK;
}
