/* kernels_vnni.c — q8_0, q4_0, q4_K and q6_K matmuls as VPDPBUSD integer
 * dot products over 8-bit activations; the contracts and the numerics are
 * in kernels_vnni.h, the weight layout in llmc/row_groups.h.
 *
 * Built like kernels.c (clang-19, freestanding bitcode), every function
 * marked for AVX512-VNNI. The code generator calls these kernels only when
 * the CPU it compiles for has that extension (llmc_codegen_has_vnni);
 * then its CPU settings replace these attributes anyway.
 *
 * VPDPBUSD multiplies unsigned bytes by signed bytes. The activations are
 * the signed operand, one 4-byte quad broadcast to all 16 lanes; the
 * weights are the unsigned one: q8_0 levels are stored plus 128, q6_K's
 * are 0..63 (their -32 not applied), nibbles are 0..15 as they are. An
 * offset comes back out exactly: sum((q + 128) * x) = sum(q * x) +
 * 128 * sum(x), and sum(x) is computed once per block (per sub-block of 16
 * for q8_K) when the activations are quantized. The K types' sub-block
 * scales multiply the int32 sub-block sums (VPMULLD), still exactly.
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
enum { Q8_0, Q4_0, Q4_K, Q6_K };

enum {
  HALVES_BYTES = LLMC_ROW_GROUP * 2, /* 16 f16 values: a group block's d (or dmin) */
  TILE_GROUPS = 4,                   /* column groups per tile (64 columns) */
  TOKEN_BLOCK = 4,                   /* tokens that share each weight load */
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

/* The 4 levels of x at q as one int32, broadcast to every lane. */
INLINE VNNI __m512i broadcast_quad(const int8_t *q) {
  int32_t v;
  __builtin_memcpy(&v, q, sizeof v);
  return _mm512_set1_epi32(v);
}

/* The 16 lanes' f16 values at p (a group block's d or dmin) as f32. */
INLINE VNNI __m512 load_halves(const uint8_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}

/* The 16 lanes' byte factors at p (a sub-block's scales or mins) as int32. */
INLINE VNNI __m512i load_factors(const uint8_t *p, int is_signed) {
  __m128i b = _mm_loadu_si128((const __m128i *)p);
  return is_signed ? _mm512_cvtepi8_epi32(b) : _mm512_cvtepu8_epi32(b);
}

/* Nibbles of v: the low ones (high = 0) or the high ones, as bytes. */
INLINE VNNI __m512i nibbles(__m512i v, int high) {
  const __m512i mask = _mm512_set1_epi8(0x0f);
  return _mm512_and_si512(high ? _mm512_srli_epi16(v, 4) : v, mask);
}

/* sub[i * R + r] += the dot products of the level vectors w[i] with the
 * activation quad at x[r].q + k, for every group i < W and token r < R. */
INLINE VNNI void dot_quads(const __m512i *w, int W, const act_row *x, int R, int64_t k, __m512i *sub) {
  for (int r = 0; r < R; r++) {
    __m512i xv = broadcast_quad(x[r].q + k);
    for (int i = 0; i < W; i++)
      sub[i * R + r] = _mm512_dpbusd_epi32(sub[i * R + r], w[i], xv);
  }
}

/* acc[i * R + r] += the dot products of weight group wg[i] (i < W) with
 * token x[r] (r < R) over all K columns, block by block as kernels_vnni.h
 * says. W and R are constants where this is inlined, and
 * W * R <= MAX_ACC, so the accumulators live in registers. */
INLINE VNNI void dot_groups(int type, const uint8_t *const *wg, int W, const act_row *x, int R,
                            int64_t K, __m512 *acc) {
  const int64_t be = block_elems(type), bb = group_block_bytes(type);
  for (int64_t b = 0; b < K / be; b++) {
    const uint8_t *g[MAX_ACC]; /* [W] this block of each group */
    for (int i = 0; i < W; i++)
      g[i] = wg[i] + b * bb;
    int64_t k0 = b * be; /* first column of the block */
    __m512i isum[MAX_ACC]; /* [W * R] */
    for (int i = 0; i < W * R; i++)
      isum[i] = _mm512_setzero_si512();
    if (type == Q8_0 || type == Q4_0) {
      for (int j = 0; j < (type == Q8_0 ? 8 : 4); j++) {
        __m512i w[MAX_ACC], hi[MAX_ACC]; /* [W] */
        for (int i = 0; i < W; i++) {
          __m512i raw = _mm512_loadu_si512(g[i] + HALVES_BYTES + 64 * j);
          w[i] = type == Q8_0 ? raw : nibbles(raw, 0);
          if (type == Q4_0)
            hi[i] = nibbles(raw, 1);
        }
        dot_quads(w, W, x, R, k0 + 4 * j, isum);
        if (type == Q4_0)
          dot_quads(hi, W, x, R, k0 + 16 + 4 * j, isum);
      }
    } else if (type == Q4_K) {
      for (int j = 0; j < LLMC_Q8_K_BLOCK / Q4_K_SUB; j++) { /* sub-blocks: pair j / 2, nibble j % 2 */
        __m512i sub[MAX_ACC];
        for (int i = 0; i < W * R; i++)
          sub[i] = _mm512_setzero_si512();
        for (int q = 0; q < 8; q++) {
          __m512i w[MAX_ACC];
          for (int i = 0; i < W; i++)
            w[i] = nibbles(_mm512_loadu_si512(g[i] + 2 * HALVES_BYTES + 256 + 512 * (j / 2) + 64 * q), j % 2);
          dot_quads(w, W, x, R, k0 + Q4_K_SUB * j + 4 * q, sub);
        }
        for (int i = 0; i < W; i++) {
          __m512i scale = load_factors(g[i] + 2 * HALVES_BYTES + 16 * j, 0);
          for (int r = 0; r < R; r++)
            isum[i * R + r] = _mm512_add_epi32(isum[i * R + r], _mm512_mullo_epi32(sub[i * R + r], scale));
        }
      }
    } else {
      for (int p = 0; p < LLMC_Q8_K_BLOCK / 32; p++) /* pairs of sub-blocks of 16 */
        for (int h = 0; h < 2; h++) {                 /* sub-block s = 2p + h */
          int64_t s = 2 * p + h;
          const int64_t at = HALVES_BYTES + 256 + 384 * p; /* the pair's 6 vectors */
          __m512i sub[MAX_ACC];
          for (int i = 0; i < W * R; i++)
            sub[i] = _mm512_setzero_si512();
          for (int k = 0; k < 4; k++) {
            __m512i w[MAX_ACC];
            for (int i = 0; i < W; i++) {
              __m512i low = nibbles(_mm512_loadu_si512(g[i] + at + 64 * k), h);
              __m512i top = _mm512_loadu_si512(g[i] + at + 256 + 64 * h);
              top = _mm512_and_si512(_mm512_srli_epi16(top, 2 * k), _mm512_set1_epi8(3));
              w[i] = _mm512_or_si512(low, _mm512_slli_epi16(top, 4));
            }
            dot_quads(w, W, x, R, k0 + Q6_K_SUB * s + 4 * k, sub);
          }
          for (int r = 0; r < R; r++) {
            /* The levels' offset 32 times the sub-block's activation sum. */
            __m512i offset = _mm512_set1_epi32(32 * x[r].sum[b * (LLMC_Q8_K_BLOCK / Q6_K_SUB) + s]);
            for (int i = 0; i < W; i++) {
              __m512i scale = load_factors(g[i] + HALVES_BYTES + 16 * s, 1);
              __m512i dot = _mm512_sub_epi32(sub[i * R + r], offset);
              isum[i * R + r] = _mm512_add_epi32(isum[i * R + r], _mm512_mullo_epi32(dot, scale));
            }
          }
        }
    }
    for (int r = 0; r < R; r++) {
      __m512 dx = _mm512_set1_ps(x[r].d[b]);
      /* q8_0 and q4_0: the weights' offset (128 or 8) times the block's
       * activation sum. */
      __m512i offset = _mm512_set1_epi32(k_type(type) ? 0 : x[r].sum[b] * (type == Q8_0 ? 128 : 8));
      for (int i = 0; i < W; i++) {
        __m512 isum_f = _mm512_cvtepi32_ps(_mm512_sub_epi32(isum[i * R + r], offset));
        acc[i * R + r] = _mm512_fmadd_ps(isum_f, _mm512_mul_ps(load_halves(g[i]), dx), acc[i * R + r]);
        if (type == Q4_K) {
          __m512i msum = _mm512_setzero_si512();
          for (int j = 0; j < LLMC_Q8_K_BLOCK / Q4_K_SUB; j++) {
            const int32_t *xs = x[r].sum + b * (LLMC_Q8_K_BLOCK / Q6_K_SUB) + 2 * j; /* [2] */
            __m512i mins = load_factors(g[i] + 2 * HALVES_BYTES + 128 + 16 * j, 0);
            msum = _mm512_add_epi32(msum, _mm512_mullo_epi32(mins, _mm512_set1_epi32(xs[0] + xs[1])));
          }
          __m512 dmin_dx = _mm512_mul_ps(load_halves(g[i] + HALVES_BYTES), dx);
          acc[i * R + r] = _mm512_fnmadd_ps(_mm512_cvtepi32_ps(msum), dmin_dx, acc[i * R + r]);
        }
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
    x[r] = act_row_at(m->xq, m->K, k_type(m->type), t + r);
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
  vmatmul_args m = {xq, w, bias, residual, out, K, N, K / block_elems(type) * group_block_bytes(type), glu, type};
  if (glu != LLMC_ACT_NONE)
    matmul_tiles_r16(&m, 1, T, task, n_tasks);
  else
    matmul_tiles_r16(&m, 0, T, task, n_tasks);
}

#define DEFINE_MATMUL(name, TYPE)                                                             \
  VNNI void llmc_k_matmul_##name##_r16(const void *xq, const void *w, const float *bias,       \
                                       const float *residual, float *out, int32_t T, int32_t K, \
                                       int32_t N, int32_t glu, int32_t task, int32_t n_tasks) { \
    matmul(TYPE, xq, w, bias, residual, out, T, K, N, glu, task, n_tasks);                     \
  }
DEFINE_MATMUL(q8_0, Q8_0)
DEFINE_MATMUL(q4_0, Q4_0)
DEFINE_MATMUL(q4_K, Q4_K)
DEFINE_MATMUL(q6_K, Q6_K)
#undef DEFINE_MATMUL
