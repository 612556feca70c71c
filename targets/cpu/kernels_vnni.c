/* kernels_vnni.c — q8_0 and q4_0 matmuls as VPDPBUSD integer dot products
 * over 8-bit activations; the contracts and the numerics are in
 * kernels_vnni.h, the weight layout in runtime/formats/quant.h
 * (llmc_quant_group_rows).
 *
 * Built like kernels.c (clang-19, freestanding bitcode), every function
 * marked for AVX512-VNNI. The code generator calls these kernels only when
 * the CPU it compiles for has that extension (llmc_codegen_has_vnni);
 * then its CPU settings replace these attributes anyway.
 *
 * VPDPBUSD multiplies unsigned bytes by signed bytes. The activations are
 * the signed operand, one 4-byte quad broadcast to all 16 lanes; the
 * weights are the unsigned one: q8_0 levels are stored plus 128, q4_0
 * nibbles are 0..15 as they are. The offset comes back out exactly per
 * block: sum((q + 128) * x) = sum(q * x) + 128 * sum(x), and sum(x) is
 * computed once per block when the activations are quantized.
 *
 * How a matmul runs. Tasks split the column groups (16 columns each); a
 * task walks its groups in tiles of TILE_GROUPS, whose weights stay in L2
 * while every token passes them. Four tokens at a time share each weight
 * load (two column groups, or one gate/up pair under glu); the last
 * T % 4 tokens (all of them when decoding) go one at a time over four
 * groups. Each lane keeps one column's f32 accumulator, so how tokens and
 * groups are blocked never changes a result.
 */
#include "kernels_vnni.h"

#include <immintrin.h>
#include <stdint.h>

#include "kernels.h"
#include "kernels_common.h"

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,f16c")))

/* The weight types, as these kernels number them. */
enum { Q8_0, Q4_0 };

enum {
  SCALES_BYTES = LLMC_ROW_GROUP * 2, /* a group block's 16 f16 scales */
  TILE_GROUPS = 4,                   /* column groups per tile (64 columns) */
  TOKEN_BLOCK = 4,                   /* tokens that share each weight load */
  MAX_ACC = 16,                      /* accumulators of one tile call: weight groups x tokens */
};

/* Bytes of one block of 32 columns of a group of 16 rows: the scales,
 * then 16 rows x 32 levels (q8_0, one byte each) or nibbles (q4_0). */
INLINE int64_t group_block_bytes(int type) {
  return SCALES_BYTES + LLMC_ROW_GROUP * (type == Q8_0 ? 32 : 16);
}

/* ---- activations ------------------------------------------------------------ */

/* The parts of quantized activation row t (llmc_act_q8_row_bytes). */
typedef struct act_row {
  const int8_t *q;     /* [K] levels */
  const float *d;      /* [K / 32] scales */
  const int32_t *sum;  /* [K / 32] sums of each block's levels */
} act_row;

INLINE act_row act_row_at(const void *xq, int64_t K, int64_t t) {
  const uint8_t *row = (const uint8_t *)xq + t * llmc_act_q8_row_bytes(K);
  int64_t blocks = K / LLMC_ACT_Q8_BLOCK;
  return (act_row){(const int8_t *)row, (const float *)(row + K), (const int32_t *)(row + K + 4 * blocks)};
}

void llmc_k_quantize_act_q8(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                            int32_t n_tasks) {
  int64_t t0, t1, blocks = K / LLMC_ACT_Q8_BLOCK;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of x [T, K] */
    act_row r = act_row_at(xq, K, t);
    int8_t *q = (int8_t *)r.q;
    float *d = (float *)r.d;
    int32_t *sum = (int32_t *)r.sum;
    for (int64_t b = 0; b < blocks; b++) {
      int8_t *qb = q + b * LLMC_ACT_Q8_BLOCK; /* [32] */
      d[b] = llmc_f16_to_f32(llmc_q8_0_quantize(x + t * K + b * LLMC_ACT_Q8_BLOCK, qb));
      int32_t s = 0;
      for (int e = 0; e < LLMC_ACT_Q8_BLOCK; e++)
        s += qb[e];
      sum[b] = s;
    }
  }
}

/* ---- matmul ------------------------------------------------------------------- */

/* The 4 levels of x at q as one int32, broadcast to every lane. */
INLINE VNNI __m512i broadcast_quad(const int8_t *q) {
  int32_t v;
  __builtin_memcpy(&v, q, sizeof v);
  return _mm512_set1_epi32(v);
}

/* acc[i * R + r] += the dot products of weight group wg[i] (i < W) with
 * token x[r] (r < R) over all K columns, block by block as kernels_vnni.h
 * says. W and R are constants where this is inlined, and
 * W * R <= MAX_ACC, so the accumulators live in registers. */
INLINE VNNI void dot_groups(int type, const uint8_t *const *wg, int W, const act_row *x, int R,
                            int64_t K, __m512 *acc) {
  const int64_t blocks = K / LLMC_ACT_Q8_BLOCK, bb = group_block_bytes(type);
  const __m512i low_nibbles = _mm512_set1_epi8(0x0f);
  for (int64_t b = 0; b < blocks; b++) {
    __m512 dw[MAX_ACC];   /* [W] the 16 rows' scales */
    __m512i isum[MAX_ACC]; /* [W * R] */
    for (int i = 0; i < W; i++)
      dw[i] = _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(wg[i] + b * bb)));
    for (int i = 0; i < W * R; i++)
      isum[i] = _mm512_setzero_si512();
    int64_t k = b * LLMC_ACT_Q8_BLOCK; /* first column of the block */
    if (type == Q8_0) {
      for (int j = 0; j < 8; j++) { /* quads: columns k + 4j ... k + 4j + 3 */
        __m512i w[MAX_ACC];
        for (int i = 0; i < W; i++)
          w[i] = _mm512_loadu_si512(wg[i] + b * bb + SCALES_BYTES + 64 * j);
        for (int r = 0; r < R; r++) {
          __m512i xv = broadcast_quad(x[r].q + k + 4 * j);
          for (int i = 0; i < W; i++)
            isum[i * R + r] = _mm512_dpbusd_epi32(isum[i * R + r], w[i], xv);
        }
      }
    } else {
      for (int j = 0; j < 4; j++) { /* low nibbles: quad j; high nibbles: quad j + 4 */
        __m512i lo[MAX_ACC], hi[MAX_ACC];
        for (int i = 0; i < W; i++) {
          __m512i raw = _mm512_loadu_si512(wg[i] + b * bb + SCALES_BYTES + 64 * j);
          lo[i] = _mm512_and_si512(raw, low_nibbles);
          hi[i] = _mm512_and_si512(_mm512_srli_epi16(raw, 4), low_nibbles);
        }
        for (int r = 0; r < R; r++) {
          __m512i xlo = broadcast_quad(x[r].q + k + 4 * j);
          __m512i xhi = broadcast_quad(x[r].q + k + 16 + 4 * j);
          for (int i = 0; i < W; i++) {
            isum[i * R + r] = _mm512_dpbusd_epi32(isum[i * R + r], lo[i], xlo);
            isum[i * R + r] = _mm512_dpbusd_epi32(isum[i * R + r], hi[i], xhi);
          }
        }
      }
    }
    for (int r = 0; r < R; r++) {
      /* The weights' offset (128 or 8) times the block's activation sum. */
      __m512i offset = _mm512_set1_epi32(x[r].sum[b] * (type == Q8_0 ? 128 : 8));
      __m512 dx = _mm512_set1_ps(x[r].d[b]);
      for (int i = 0; i < W; i++) {
        __m512 isum_f = _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[i * R + r], offset));
        acc[i * R + r] = _mm512_fmadd_ps(isum_f, _mm512_mul_ps(dw[i], dx), acc[i * R + r]);
      }
    }
  }
}

/* What one matmul call computes, shared by the tiles it is cut into. */
typedef struct vmatmul_args {
  const void *xq;        /* [T] quantized rows */
  const uint8_t *w;      /* N / 16 groups (2N / 16 under glu) of group_bytes */
  const float *bias;     /* [N] or NULL */
  const float *residual; /* [T, N] or NULL; may be out */
  float *out;            /* [T, N] */
  int64_t K, N, group_bytes;
  int32_t glu; /* LLMC_ACT_*: NONE for a plain matmul */
  int32_t type;
} vmatmul_args;

/* out rows [t, t + R) x the columns of groups [g, g + nc): R, nc and
 * gated (m->glu != LLMC_ACT_NONE) are constants where this is inlined.
 * Under glu each group brings its gate and its up rows, so 2 * nc weight
 * groups are read. */
INLINE VNNI void matmul_tile(const vmatmul_args *m, int gated, int64_t t, int R, int64_t g, int nc) {
  int W = gated ? 2 * nc : nc;
  const uint8_t *wg[MAX_ACC]; /* [W]: the nc groups, then under glu their up groups */
  for (int c = 0; c < nc; c++) {
    wg[c] = m->w + (g + c) * m->group_bytes;
    if (gated)
      wg[nc + c] = m->w + (m->N / LLMC_ROW_GROUP + g + c) * m->group_bytes;
  }
  act_row x[TOKEN_BLOCK]; /* [R] */
  for (int r = 0; r < R; r++)
    x[r] = act_row_at(m->xq, m->K, t + r);
  __m512 acc[MAX_ACC]; /* [W * R] */
  for (int i = 0; i < W * R; i++)
    acc[i] = _mm512_setzero_ps();
  dot_groups(m->type, wg, W, x, R, m->K, acc);
  for (int r = 0; r < R; r++)
    for (int c = 0; c < nc; c++) {
      int64_t j0 = (g + c) * LLMC_ROW_GROUP; /* first column */
      float *o = m->out + (t + r) * m->N + j0; /* [16] */
      float v[LLMC_ROW_GROUP];
      _mm512_storeu_ps(v, acc[c * R + r]);
      if (gated) {
        float up[LLMC_ROW_GROUP];
        _mm512_storeu_ps(up, acc[(nc + c) * R + r]);
        llmc_k_glu(v, up, o, LLMC_ROW_GROUP, m->glu, 0, 1);
        continue;
      }
      for (int l = 0; l < LLMC_ROW_GROUP; l++) {
        float s = v[l];
        if (m->bias)
          s += m->bias[j0 + l];
        if (m->residual)
          s += m->residual[(t + r) * m->N + j0 + l];
        o[l] = s;
      }
    }
}

/* The tiles of this task's share of m, gated a constant (as in
 * matmul_tile). */
INLINE VNNI void matmul_tiles_r16(const vmatmul_args *m, int gated, int64_t T, int32_t task,
                                  int32_t n_tasks) {
  /* Column groups per tile call: two (one gate/up pair) for a block of
   * tokens, four (two pairs) for a single token. */
  const int nc_block = gated ? 1 : 2, nc_one = gated ? 2 : 4;
  int64_t g0, g1;
  task_range(m->N / LLMC_ROW_GROUP, task, n_tasks, &g0, &g1);
  for (int64_t gt = g0; gt < g1; gt += TILE_GROUPS) {
    int64_t ge = g1 - gt < TILE_GROUPS ? g1 : gt + TILE_GROUPS, t = 0;
    for (; t + TOKEN_BLOCK <= T; t += TOKEN_BLOCK) {
      int64_t g = gt;
      for (; g + nc_block <= ge; g += nc_block)
        matmul_tile(m, gated, t, TOKEN_BLOCK, g, nc_block);
      for (; g < ge; g++)
        matmul_tile(m, gated, t, TOKEN_BLOCK, g, 1);
    }
    for (; t < T; t++) {
      int64_t g = gt;
      for (; g + nc_one <= ge; g += nc_one)
        matmul_tile(m, gated, t, 1, g, nc_one);
      for (; g < ge; g++)
        matmul_tile(m, gated, t, 1, g, 1);
    }
  }
}

INLINE VNNI void matmul(int type, const void *xq, const void *w, const float *bias,
                        const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                        int32_t glu, int32_t task, int32_t n_tasks) {
  int64_t blocks = K / LLMC_ACT_Q8_BLOCK;
  vmatmul_args m = {xq, w, bias, residual, out, K, N, blocks * group_block_bytes(type), glu, type};
  if (glu != LLMC_ACT_NONE)
    matmul_tiles_r16(&m, 1, T, task, n_tasks);
  else
    matmul_tiles_r16(&m, 0, T, task, n_tasks);
}

VNNI void llmc_k_matmul_q8_0_r16(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K,
                                 int32_t N, int32_t glu, int32_t task, int32_t n_tasks) {
  matmul(Q8_0, xq, w, bias, residual, out, T, K, N, glu, task, n_tasks);
}

VNNI void llmc_k_matmul_q4_0_r16(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K,
                                 int32_t N, int32_t glu, int32_t task, int32_t n_tasks) {
  matmul(Q4_0, xq, w, bias, residual, out, T, K, N, glu, task, n_tasks);
}
