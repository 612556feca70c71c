/* kernels_quant.c — matmul and embedding over quantized and half-precision
 * (f16, bf16) weights; the contracts are in kernels_quant.h, the block
 * layouts in runtime/formats/quant.c. A half row is taken as blocks of 16
 * elements with no factors, so it runs through the same loops.
 *
 * Built like kernels.c: by clang-19 into freestanding bitcode (no libc, no
 * libm; halves are decoded by bit manipulation, kernels_common.h) that is
 * linked with kernels.c's, and natively into tests/unit/test_quant.c.
 *
 * How a matmul runs. A weight row is read block by block (32 or 256
 * elements): the block's factors (d, or q4_K's d * scale and dmin * min
 * per sub-block) first, then each group of 16 weights is decoded into a
 * 16-float vector, with exactly the values llmc_quant_dequantize_row gives
 * (each product and difference is its own statement, so clang fuses none of
 * them into an FMA), and multiplied into the 16-lane accumulators of the
 * tokens that share it. With four tokens or more (prefill) each decoded
 * group serves ROW_BLOCK tokens and K is walked in chunks so that the
 * tokens' slice of x stays in L1 across a tile of columns; with fewer
 * (decode) ROW_BLOCK weight rows are decoded side by side against one
 * token, for four independent accumulators. Reading 4.5 to 8.5 bits per
 * weight instead of 32 is the gain: f32 decode is bound by memory
 * bandwidth. docs/quantization.md has measurements.
 *
 * Batch invariance. Element k of a dot product goes to lane k % 16 in
 * increasing k, and the lanes are summed in the fixed tree of reduce_lanes
 * (kernels_common.h, shared with kernels.c), so a token's result does not
 * depend on T, on which rows it shares decoded groups with, or on the task
 * split. The glu epilogue calls kernels.c's llmc_k_glu, so activations are
 * computed once, by the same code.
 */
#include "kernels_quant.h"

#include <stdint.h>

#include "kernels.h"
#include "kernels_common.h"

enum {
  MATMUL_KC = 256, /* K chunk of a prefill tile: a multiple of every block */
  MAX_BLOCK = 256, /* elements of the largest block */
  MAX_GROUPS = MAX_BLOCK / LANES,
};

/* The stored types, as the kernels number them. */
enum { Q8_0, Q4_0, Q4_K, Q6_K, F16, BF16 };

typedef int8_t v16i8 __attribute__((vector_size(16)));
typedef uint8_t v16u8 __attribute__((vector_size(16)));

/* ---- block decoding -------------------------------------------------------- */

INLINE int is_half(int type) { return type == F16 || type == BF16; }

INLINE int64_t block_elems(int type) {
  return is_half(type) ? LANES : type == Q8_0 || type == Q4_0 ? 32 : 256;
}

INLINE int64_t block_bytes(int type) {
  return is_half(type) ? 2 * LANES
         : type == Q8_0 ? 34
         : type == Q4_0 ? 18
         : type == Q4_K ? 144
                        : 210;
}

/* *out = the 16 little-endian halves at p as f32: f16 as load_f16x16
 * (kernels_common.h), bf16 as the upper half of an f32. */
INLINE void load_half16(int type, const uint8_t *p, v16f *out) {
  if (type == F16) {
    load_f16x16(p, out);
    return;
  }
  v16u16 raw;
  __builtin_memcpy(&raw, p, sizeof raw);
  *out = (v16f)(__builtin_convertvector(raw, v16u32) << 16);
}

/* The per-group factors of one block: element e of group g (elements
 * [16g, 16g + 16)) is level_e * scale[g] - min[g] (min only in q4_K). */
typedef struct block_scales {
  float scale[MAX_GROUPS], min[MAX_GROUPS];
} block_scales;

/* q4_K sub-block j's six-bit scale and min from the 12 packed bytes q. */
INLINE void q4_k_scale_min(const uint8_t *q, int j, float *sc, float *m) {
  int s = j < 4 ? q[j] & 63 : (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
  int n = j < 4 ? q[j + 4] & 63 : (q[j + 4] >> 4) | (q[j] >> 6) << 4;
  *sc = (float)s;
  *m = (float)n;
}

/* s = the factors of the block at b: q8_0 and q4_0 d; q4_K d * scale and
 * dmin * min per sub-block of 32 (two groups); q6_K d * scale per
 * sub-block of 16 (one group). */
INLINE void load_scales(int type, const uint8_t *b, block_scales *s) {
  if (is_half(type)) {
    s->scale[0] = 1.0f; /* unused: halves have no factors */
  } else if (type == Q8_0 || type == Q4_0) {
    s->scale[0] = s->scale[1] = load_f16(b);
  } else if (type == Q4_K) {
    float d = load_f16(b), dmin = load_f16(b + 2);
    for (int j = 0; j < 8; j++) {
      float sc, m;
      q4_k_scale_min(b + 4, j, &sc, &m);
      s->scale[2 * j] = s->scale[2 * j + 1] = d * sc;
      s->min[2 * j] = s->min[2 * j + 1] = dmin * m;
    }
  } else {
    float d = load_f16(b + 208);
    for (int g = 0; g < 16; g++)
      s->scale[g] = d * (float)(int8_t)b[192 + g];
  }
}

/* The 16 levels of group g of the block at b, as stored (q4_0 and q6_K
 * offset by 8 and 32 already removed):
 *   q8_0: the int8 q[16g ...];
 *   q4_0: the low (g = 0) or high (g = 1) nibbles of qs, minus 8;
 *   q4_K: 32 bytes of qs per pair of sub-blocks, low nibbles for the even
 *         sub-block, high for the odd one;
 *   q6_K: in each half of 128, runs r = 0..3 of 32 take their low 4 bits
 *         from the low (r < 2) or high nibbles of ql[32 (r % 2) ...] and
 *         their top 2 bits from bits 2r of qh, minus 32. */
INLINE v16i8 group_levels(int type, const uint8_t *b, int64_t g) {
  v16u8 q;
  if (type == Q8_0) {
    __builtin_memcpy(&q, b + 2 + LANES * g, sizeof q);
    return (v16i8)q;
  }
  if (type == Q4_0) {
    __builtin_memcpy(&q, b + 2, sizeof q);
    return (v16i8)(g ? q >> 4 : q & 0x0f) - 8;
  }
  if (type == Q4_K) {
    int64_t j = g / 2; /* sub-block */
    __builtin_memcpy(&q, b + 16 + 32 * (j / 2) + LANES * (g % 2), sizeof q);
    return (v16i8)(j % 2 ? q >> 4 : q & 0x0f);
  }
  int64_t half = g / 8, run = g % 8 / 2, h = g % 2;
  v16u8 hi;
  __builtin_memcpy(&q, b + 64 * half + 32 * (run % 2) + LANES * h, sizeof q);
  __builtin_memcpy(&hi, b + 128 + 32 * half + LANES * h, sizeof hi);
  q = run < 2 ? q & 0x0f : q >> 4;
  hi = (hi >> (2 * run)) & 3;
  return (v16i8)(q | hi << 4) - 32;
}

/* *out = group g of the block at b with factors s, dequantised exactly as
 * llmc_quant_dequantize_row does: the product and q4_K's difference are
 * separate statements, so clang fuses neither into an FMA. */
INLINE void decode_group(int type, const uint8_t *b, const block_scales *s, int64_t g, v16f *out) {
  if (is_half(type)) {
    load_half16(type, b + 2 * LANES * g, out);
    return;
  }
  *out = __builtin_convertvector(group_levels(type, b, g), v16f) * s->scale[g];
  if (type == Q4_K)
    *out -= s->min[g];
}

/* ---- matmul ---------------------------------------------------------------- */

/* Full unrolling of a loop, where the compiler optimises at all (gcc warns
 * that it ignores the annotation at -O0). */
#if defined(__OPTIMIZE__)
#define UNROLL_16 _Pragma("GCC unroll 16")
#else
#define UNROLL_16
#endif

/* acc[i * nt + r] += w_i[k] * x_r[k] lane by lane over the elements k of
 * blocks [b0, b1), for the weight rows w_i = w + i * row_bytes (i < nr)
 * and the tokens x_r = x + r * K (r < nt); nr and nt are constants, one of
 * them 1 and the other 1 or ROW_BLOCK. Each group of 16 weights is decoded
 * into registers just before its multiply-adds. */
INLINE void dot_blocks(int type, const uint8_t *w, int64_t row_bytes, int nr, const float *x,
                       int64_t K, int nt, int64_t b0, int64_t b1, v16f *acc) {
  int64_t elems = block_elems(type), bytes = block_bytes(type);
  for (int64_t blk = b0; blk < b1; blk++) {
    block_scales s[ROW_BLOCK]; /* [nr] */
    for (int i = 0; i < nr; i++)
      load_scales(type, w + i * row_bytes + blk * bytes, &s[i]);
    UNROLL_16 /* constant g: each group's offsets and shifts fold */
    for (int64_t g = 0; g < elems / LANES; g++) {
      v16f wv[ROW_BLOCK]; /* [nr] */
      for (int i = 0; i < nr; i++)
        decode_group(type, w + i * row_bytes + blk * bytes, &s[i], g, &wv[i]);
      int64_t k = blk * elems + g * LANES;
      for (int r = 0; r < nt; r++) {
        v16f xv;
        __builtin_memcpy(&xv, x + r * K + k, sizeof xv);
        for (int i = 0; i < nr; i++)
          acc[i * nt + r] += xv * wv[i];
      }
    }
  }
}

/* What one matmul call computes, shared by the tiles it is cut into. */
typedef struct qmatmul_args {
  const float *x;        /* [T, K] */
  const uint8_t *w;      /* N rows (2N under glu) of row_bytes */
  const float *bias;     /* [N] or NULL */
  const float *residual; /* [T, N] or NULL; may be out */
  float *out;            /* [T, N] */
  int64_t K, N, row_bytes;
  int32_t glu;  /* LLMC_ACT_*: NONE for a plain matmul */
  int32_t type; /* Q8_0 ... BF16 */
} qmatmul_args;

/* out rows [t, t+nt) x columns [j0, j1), nt a constant (ROW_BLOCK or 1),
 * j1 - j0 <= MATMUL_TILE_N: kernels.c's matmul_tile over quantized rows. */
INLINE void matmul_tile(int type, const qmatmul_args *m, int64_t t, int nt, int64_t j0,
                        int64_t j1) {
  v16f acc[2][MATMUL_TILE_N * ROW_BLOCK]; /* [plain or gate, up][column][token] */
  int halves = m->glu ? 2 : 1;
  int64_t nj = j1 - j0, K = m->K, rb = m->row_bytes, blocks = K / block_elems(type);
  const float *xt = m->x + t * K; /* [nt, K] */
  for (int h = 0; h < halves; h++)
    for (int64_t i = 0; i < nj * nt; i++)
      acc[h][i] = (v16f){0};
  int64_t chunk = nt == ROW_BLOCK ? MATMUL_KC / block_elems(type) : blocks; /* in blocks */
  for (int64_t b0 = 0; b0 < blocks; b0 += chunk) {
    int64_t b1 = blocks - b0 < chunk ? blocks : b0 + chunk;
    for (int h = 0; h < halves; h++) {
      const uint8_t *w = m->w + (h * m->N + j0) * rb; /* [nj] rows */
      int64_t j = 0;
      if (nt == ROW_BLOCK) {
        for (; j < nj; j++)
          dot_blocks(type, w + j * rb, rb, 1, xt, K, ROW_BLOCK, b0, b1, &acc[h][j * ROW_BLOCK]);
      } else {
        for (; j + ROW_BLOCK <= nj; j += ROW_BLOCK)
          dot_blocks(type, w + j * rb, rb, ROW_BLOCK, xt, K, 1, b0, b1, &acc[h][j]);
        for (; j < nj; j++)
          dot_blocks(type, w + j * rb, rb, 1, xt, K, 1, b0, b1, &acc[h][j]);
      }
    }
  }
  for (int a = 0; a < nt; a++) { /* tokens t + a */
    float *o = m->out + (t + a) * m->N + j0; /* [nj] */
    if (m->glu) {
      float gate[MATMUL_TILE_N], up[MATMUL_TILE_N]; /* [nj] */
      for (int64_t j = 0; j < nj; j++) {
        gate[j] = reduce_lanes(&acc[0][j * nt + a]);
        up[j] = reduce_lanes(&acc[1][j * nt + a]);
      }
      llmc_k_glu(gate, up, o, nj, m->glu, 0, 1);
      continue;
    }
    for (int64_t j = 0; j < nj; j++) {
      float v = reduce_lanes(&acc[0][j * nt + a]);
      if (m->bias)
        v += m->bias[j0 + j];
      if (m->residual)
        v += m->residual[(t + a) * m->N + j0 + j];
      o[j] = v;
    }
  }
}

/* matmul_tile for ROW_BLOCK tokens and for one, as matmul_tiles takes them. */
INLINE void matmul_tile_block(const void *m, int64_t t, int64_t j0, int64_t j1) {
  matmul_tile(((const qmatmul_args *)m)->type, m, t, ROW_BLOCK, j0, j1);
}

INLINE void matmul_tile_one(const void *m, int64_t t, int64_t j0, int64_t j1) {
  matmul_tile(((const qmatmul_args *)m)->type, m, t, 1, j0, j1);
}

INLINE void matmul(int type, const float *x, const void *w, const float *bias,
                   const float *residual, float *out, int32_t T, int32_t K, int32_t N, int32_t glu,
                   int32_t task, int32_t n_tasks) {
  int64_t row_bytes = K / block_elems(type) * block_bytes(type);
  qmatmul_args m = {x, w, bias, residual, out, K, N, row_bytes, glu, type};
  matmul_tiles(&m, T, N, task, n_tasks, matmul_tile_block, matmul_tile_one);
}

/* ---- embedding ------------------------------------------------------------- */

INLINE void embed(int type, const void *table, const int32_t *tokens, float *out, int32_t T,
                  int32_t D, int32_t V, float scale, int32_t task, int32_t n_tasks) {
  int64_t elems = block_elems(type), bytes = block_bytes(type), t0, t1;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of out [T, D] */
    float *o = out + t * D;
    if (!embed_known_token(tokens[t], V, o, D))
      continue;
    const uint8_t *row = (const uint8_t *)table + (int64_t)tokens[t] * (D / elems) * bytes;
    for (int64_t blk = 0; blk < D / elems; blk++) {
      block_scales s;
      load_scales(type, row + blk * bytes, &s);
      for (int64_t g = 0; g < elems / LANES; g++) {
        v16f v;
        decode_group(type, row + blk * bytes, &s, g, &v);
        v *= scale;
        __builtin_memcpy(o + blk * elems + g * LANES, &v, sizeof v);
      }
    }
  }
}

/* ---- the exported kernels, one pair per type --------------------------------- */

#define QUANT_TYPES(X)                                                                       \
  X(q8_0, Q8_0) X(q4_0, Q4_0) X(q4_K, Q4_K) X(q6_K, Q6_K) X(f16, F16) X(bf16, BF16)

#define DEFINE_KERNELS(name, TYPE)                                                              \
  void llmc_k_matmul_##name(const float *x, const void *w, const float *bias,                    \
                            const float *residual, float *out, int32_t T, int32_t K, int32_t N,  \
                            int32_t glu, int32_t task, int32_t n_tasks) {                        \
    matmul(TYPE, x, w, bias, residual, out, T, K, N, glu, task, n_tasks);                        \
  }                                                                                              \
  void llmc_k_embed_##name(const void *table, const int32_t *tokens, float *out, int32_t T,      \
                           int32_t D, int32_t V, float scale, int32_t task, int32_t n_tasks) {   \
    embed(TYPE, table, tokens, out, T, D, V, scale, task, n_tasks);                              \
  }
QUANT_TYPES(DEFINE_KERNELS)
#undef DEFINE_KERNELS
