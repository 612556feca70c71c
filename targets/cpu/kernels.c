/* kernels.c — the CPU kernel library; kernels.h states every contract.
 *
 * The file is built twice: by clang-19 into LLVM bitcode that the compiler
 * links into each model module (freestanding: no libc, no libm, so the
 * scalar math below is our own), and natively into tests/unit/test_kernels.c,
 * which checks it against libm and double-precision references.
 *
 * Batch invariance. Every dot product and sum of squares goes through
 * dot_rows(), whose order of summation depends on the length K alone:
 * element k is accumulated into lane k % 16 of a 16-lane accumulator in
 * increasing k (the K % 16 tail zero-padded into one last block), and the 16
 * lanes are combined in one fixed tree. Attention's online softmax walks its
 * positions in chunks fixed by the query's position. So a row gives the same
 * bits whatever T is, however the work is split into tasks, and whichever
 * blocking the matmul picks.
 *
 * Vector width. The bitcode is built for generic x86-64 and only later
 * specialised for the model's CPU, so loops the bitcode's own -O2 vectorises
 * stay SSE-wide. The dot products therefore use GNU vector types of 16
 * floats: LLVM's backend splits each into 4 SSE, 2 AVX or 1 AVX-512
 * register(s) for whatever CPU the model is compiled for.
 */
#include "kernels.h"

#include <stdint.h>

#include "kernels_common.h"

enum {
  ATTN_CHUNK = 32, /* cache positions scored per softmax rescale */
  MAX_HEAD_DIM = 256,
  MAX_EXPERTS = 256,
  MATMUL_KC = 256, /* K chunk of a matmul tile: a multiple of LANES */
};

/* ---- scalar math (no libm) ---------------------------------------------- */

INLINE uint32_t float_bits(float f) {
  uint32_t u;
  __builtin_memcpy(&u, &f, sizeof u);
  return u;
}

INLINE float bits_float(uint32_t u) {
  float f;
  __builtin_memcpy(&f, &u, sizeof f);
  return f;
}

/* e^x, relative error below 2e-7 over the whole finite range (measured in
 * the test). x = n ln2 + r with |r| <= ln2/2; e^r by the Cephes polynomial;
 * 2^n applied as two factors 2^(n/2) and 2^(n - n/2) so that both stay
 * normal: results overflow to +inf past 88.72 and go gradually to 0 below
 * -87.3 exactly as the true function does. Branch-free so loops vectorise. */
INLINE float k_expf(float x) {
  const float round_magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
  x = x < -104.0f ? -104.0f : x;         /* e^-104 rounds to 0; NaN passes both */
  x = x > 89.0f ? 89.0f : x;             /* e^89 overflows to +inf */
  float t = x * 1.44269504088896341f + round_magic;
  float n = t - round_magic;
  int32_t ni = (int32_t)(float_bits(t) - float_bits(round_magic)); /* n as an integer */
  /* ln2 = 0.693359375 - 2.12194440e-4 (+ tiny): n * 0.693359375 is exact. */
  float r = x - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float r2 = r * r;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r2 + r + 1.0f;
  int32_t n1 = ni / 2, n2 = ni - n1; /* both in [-75, 64] */
  float s1 = bits_float((uint32_t)(n1 + 127) << 23), s2 = bits_float((uint32_t)(n2 + 127) << 23);
  return p * s1 * s2;
}

/* tanh x. Below |x| = 0.625 an odd polynomial (Cephes), where the form via
 * e^-2|x| would cancel; above, (1 - e)/(1 + e) with e = e^-2|x| <= 0.29, which
 * is stable and tends to 1 for large |x|. */
INLINE float k_tanhf(float x) {
  float ax = __builtin_fabsf(x);
  float z = x * x;
  float p = -5.70498872745e-3f;
  p = p * z + 2.06390887954e-2f;
  p = p * z - 5.37397155531e-2f;
  p = p * z + 1.33314422036e-1f;
  p = p * z - 3.33332819422e-1f;
  float small = p * z * x + x;
  float e = k_expf(-2.0f * ax);
  float large = __builtin_copysignf((1.0f - e) / (1.0f + e), x);
  return ax < 0.625f ? small : large;
}

INLINE float k_silu(float x) { return x / (1.0f + k_expf(-x)); }

INLINE float k_gelu_tanh(float x) {
  const float sqrt_2_over_pi = 0.7978845608028654f;
  return 0.5f * x * (1.0f + k_tanhf(sqrt_2_over_pi * (x + 0.044715f * x * x * x)));
}

/* act(x) for an LLMC_ACT_*; NONE is the identity. */
INLINE float k_act(int32_t act, float x) {
  return act == LLMC_ACT_SILU ? k_silu(x) : act == LLMC_ACT_GELU_TANH ? k_gelu_tanh(x) : x;
}

/* sin and cos of a float angle, each within 1e-7 of the truth for |a| up to
 * ~1e9 (HF computes the angle in float32 and we take it as given). Computed
 * in double: a = k pi/2 + r with pi/2 in two parts (fdlibm's 33-bit head
 * and its tail; k * head is exact for |k| < 2^20 and off by ulp(a) * 2^-29
 * beyond), then Taylor series to degree 13/14 on |r| <= pi/4 (truncation
 * below 1e-13), and the quadrant k mod 4 picks and signs them. */
INLINE void k_sincosf(float a, float *out_sin, float *out_cos) {
  const double round_magic = 6755399441055744.0; /* 1.5 * 2^52 */
  const double pio2_hi = 1.57079632673412561417e+00, pio2_lo = 6.07710050650619224932e-11;
  double x = a;
  double kr = x * 0.63661977236758134308 + round_magic;
  double k = kr - round_magic;
  uint64_t kbits;
  __builtin_memcpy(&kbits, &kr, sizeof kbits);
  uint32_t quadrant = (uint32_t)kbits & 3u; /* k mod 4, also for negative k */
  double r = (x - k * pio2_hi) - k * pio2_lo;
  double z = r * r;
  double s = 1.0 / 6227020800.0; /* 1/13! */
  s = s * z - 1.0 / 39916800.0;
  s = s * z + 1.0 / 362880.0;
  s = s * z - 1.0 / 5040.0;
  s = s * z + 1.0 / 120.0;
  s = s * z - 1.0 / 6.0;
  s = s * z * r + r;
  double c = -1.0 / 87178291200.0; /* -1/14! */
  c = c * z + 1.0 / 479001600.0;
  c = c * z - 1.0 / 3628800.0;
  c = c * z + 1.0 / 40320.0;
  c = c * z - 1.0 / 720.0;
  c = c * z + 1.0 / 24.0;
  c = c * z - 0.5;
  c = c * z + 1.0;
  double sin_a = quadrant & 1u ? c : s, cos_a = quadrant & 1u ? s : c;
  *out_sin = (float)(quadrant & 2u ? -sin_a : sin_a);
  *out_cos = (float)((quadrant + 1u) & 2u ? -cos_a : cos_a);
}

/* e^x, exported only so that tests/unit/test_kernels.c can measure k_expf
 * against libm; it is no kernel, hence not in kernels.h. */
float llmc_k_expf(float x);
float llmc_k_expf(float x) { return k_expf(x); }

/* ---- dot products -------------------------------------------------------- */

/* v [16] <- p[0..n), zero-padded: the last, partial block of a dot product. */
INLINE void load_tail(const float *p, int64_t n, v16f *v) {
  float lanes[LANES] = {0};
  for (int64_t l = 0; l < n; l++) /* n < LANES */
    lanes[l] = p[l];
  __builtin_memcpy(v, lanes, sizeof lanes);
}

/* acc[r] += a_r[k0, k1) * b[k0, k1) lane by lane, for r < rows (a constant,
 * 1 or ROW_BLOCK), where a_r = a + r * lda; the rows share each load of b.
 * Lane l takes the products of k = l mod 16 in increasing k; k0 is a
 * multiple of 16 and only the last range of a dot product may end off one.
 * Cutting [0, K) into ranges therefore changes nothing in the result, and
 * a_r · b has the bits of b · a_r (products commute exactly). */
INLINE void dot_accumulate(const float *a, int64_t lda, int rows, const float *b, int64_t k0,
                           int64_t k1, v16f *acc) {
  int64_t k = k0;
  for (; k + LANES <= k1; k += LANES) { /* full blocks of 16 */
    v16f bv;
    __builtin_memcpy(&bv, b + k, sizeof bv);
    for (int r = 0; r < rows; r++) {
      v16f av;
      __builtin_memcpy(&av, a + r * lda + k, sizeof av);
      acc[r] += av * bv;
    }
  }
  if (k < k1) { /* the K % 16 tail as one zero-padded block */
    v16f bv;
    load_tail(b + k, k1 - k, &bv);
    for (int r = 0; r < rows; r++) {
      v16f av;
      load_tail(a + r * lda + k, k1 - k, &av);
      acc[r] += av * bv;
    }
  }
}

/* out[r] = a_r · b for r < rows (1 or ROW_BLOCK), a_r = a + r * lda and b
 * of K elements: the one order of summation every kernel uses. */
INLINE void dot_rows(const float *a, int64_t lda, int rows, const float *b, int64_t K, float *out) {
  v16f acc[ROW_BLOCK]; /* [rows] */
  for (int r = 0; r < rows; r++)
    acc[r] = (v16f){0};
  dot_accumulate(a, lda, rows, b, 0, K, acc);
  for (int r = 0; r < rows; r++)
    out[r] = reduce_lanes(&acc[r]);
}

/* out[i] = rows_i · v for i < n <= ROW_BLOCK; rows [n, K], v [K]. */
INLINE void dot_row_block(const float *rows, int64_t n, const float *v, int64_t K, float *out) {
  if (n == ROW_BLOCK) {
    dot_rows(rows, K, ROW_BLOCK, v, K, out);
    return;
  }
  for (int64_t i = 0; i < n; i++)
    dot_rows(rows + i * K, K, 1, v, K, out + i);
}

/* ---- row-local kernels --------------------------------------------------- */

void llmc_k_embed(const float *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                  int32_t V, float scale, int32_t task, int32_t n_tasks) {
  int64_t t0, t1;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of out [T, D] */
    float *o = out + t * D;
    if (!embed_known_token(tokens[t], V, o, D))
      continue;
    const float *row = table + (int64_t)tokens[t] * D; /* [D] */
    for (int64_t d = 0; d < D; d++)
      o[d] = row[d] * scale;
  }
}

void llmc_k_rms_norm(const float *x, const float *w, float *out, int32_t T, int32_t D, int32_t G,
                     float eps, int32_t task, int32_t n_tasks) {
  int64_t t0, t1;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) {    /* rows of x, out [T, D] */
    for (int64_t g = 0; g < D; g += G) { /* runs of G values */
      const float *xg = x + t * D + g;   /* [G] */
      float *og = out + t * D + g;       /* [G], may be xg */
      float sum_sq;
      dot_rows(xg, 0, 1, xg, G, &sum_sq);
      /* As Hugging Face: x * rsqrt(mean(x^2) + eps), then * w. */
      float inv_rms = 1.0f / __builtin_sqrtf(sum_sq / (float)G + eps);
      for (int64_t i = 0; i < G; i++)
        og[i] = xg[i] * inv_rms * w[i];
    }
  }
}

/* What one matmul call computes, shared by the tiles it is cut into. */
typedef struct matmul_args {
  const float *x;        /* [T, K] */
  const float *w;        /* [N, K], or [2N, K] gate then up rows under glu */
  const float *bias;     /* [N] or NULL */
  const float *residual; /* [T, N] or NULL; may be out */
  float *out;            /* [T, N] */
  int64_t K, N;
  int32_t glu; /* LLMC_ACT_*: NONE for a plain matmul */
} matmul_args;

/* out rows [t, t+nt) x columns [j0, j1), nt a constant (ROW_BLOCK or 1),
 * j1 - j0 <= MATMUL_TILE_N. With ROW_BLOCK tokens, each weight row is read
 * once for all of them, and K is walked in chunks of MATMUL_KC so that the
 * tokens' chunk stays in L1 across the tile's columns (the lane partial sums
 * wait in acc between chunks). With one token (decode), ROW_BLOCK weight
 * rows stream against it whole. */
INLINE void matmul_tile(const matmul_args *m, int64_t t, int nt, int64_t j0, int64_t j1) {
  v16f acc[2][MATMUL_TILE_N * ROW_BLOCK]; /* [plain or gate, up][column][token] */
  int halves = m->glu ? 2 : 1;
  int64_t nj = j1 - j0, K = m->K;
  const float *xt = m->x + t * K; /* [nt, K] */
  for (int h = 0; h < halves; h++)
    for (int64_t i = 0; i < nj * nt; i++)
      acc[h][i] = (v16f){0};
  int64_t chunk = nt == ROW_BLOCK ? MATMUL_KC : K;
  for (int64_t k0 = 0; k0 < K; k0 += chunk) {
    int64_t k1 = K - k0 < chunk ? K : k0 + chunk;
    for (int h = 0; h < halves; h++) {
      const float *w = m->w + (h * m->N + j0) * K; /* [nj, K] */
      int64_t j = 0;
      if (nt == ROW_BLOCK) {
        for (; j < nj; j++)
          dot_accumulate(xt, K, ROW_BLOCK, w + j * K, k0, k1, &acc[h][j * ROW_BLOCK]);
      } else {
        for (; j + ROW_BLOCK <= nj; j += ROW_BLOCK)
          dot_accumulate(w + j * K, K, ROW_BLOCK, xt, k0, k1, &acc[h][j]);
        for (; j < nj; j++)
          dot_accumulate(w + j * K, K, 1, xt, k0, k1, &acc[h][j]);
      }
    }
  }
  for (int64_t j = 0; j < nj; j++) {
    for (int a = 0; a < nt; a++) {
      int64_t o = (t + a) * m->N + j0 + j;
      float v = reduce_lanes(&acc[0][j * nt + a]);
      if (m->glu) {
        v = k_act(m->glu, v) * reduce_lanes(&acc[1][j * nt + a]);
      } else {
        if (m->bias)
          v += m->bias[j0 + j];
        if (m->residual)
          v += m->residual[o];
      }
      m->out[o] = v;
    }
  }
}

/* matmul_tile for ROW_BLOCK tokens and for one, as matmul_tiles takes them. */
INLINE void matmul_tile_block(const void *m, int64_t t, int64_t j0, int64_t j1) {
  matmul_tile(m, t, ROW_BLOCK, j0, j1);
}

INLINE void matmul_tile_one(const void *m, int64_t t, int64_t j0, int64_t j1) {
  matmul_tile(m, t, 1, j0, j1);
}

void llmc_k_matmul(const float *x, const float *w, const float *bias, const float *residual,
                   float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                   int32_t n_tasks) {
  matmul_args m = {x, w, bias, residual, out, K, N, glu};
  matmul_tiles(&m, T, N, task, n_tasks, matmul_tile_block, matmul_tile_one);
}

void llmc_k_binary(const float *a, const float *b, float *out, int32_t T, int32_t N, int32_t b_rows,
                   int32_t op, int32_t task, int32_t n_tasks) {
  int64_t t0, t1;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of a, out [T, N] */
    const float *ar = a + t * N;
    const float *br = b + (b_rows == 1 ? 0 : t * N); /* [N] */
    float *o = out + t * N;
    for (int64_t i = 0; i < N; i++)
      o[i] = op == LLMC_BINARY_MUL ? ar[i] * br[i] : ar[i] + br[i];
  }
}

/* One LLMC_UNARY_* op on x with scalar `value`. */
INLINE float unary_op(int32_t op, float value, float x) {
  switch (op) {
  case LLMC_UNARY_ADD_SCALAR:
    return x + value;
  case LLMC_UNARY_MUL_SCALAR:
    return x * value;
  case LLMC_UNARY_SOFTCAP:
    return value * k_tanhf(x / value);
  case LLMC_UNARY_SILU:
    return k_silu(x);
  default:
    return k_gelu_tanh(x); /* LLMC_UNARY_GELU_TANH */
  }
}

void llmc_k_unary(const float *x, float *out, int64_t n, int32_t op, float value, int32_t task,
                  int32_t n_tasks) {
  int64_t i0, i1;
  task_range(n, task, n_tasks, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) /* x, out [n] */
    out[i] = unary_op(op, value, x[i]);
}

void llmc_k_glu(const float *gate, const float *up, float *out, int64_t n, int32_t act,
                int32_t task, int32_t n_tasks) {
  int64_t i0, i1;
  task_range(n, task, n_tasks, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) /* gate, up, out [n] */
    out[i] = k_act(act, gate[i]) * up[i];
}

void llmc_k_slice(const float *x, float *out, int32_t R, int32_t C, int32_t begin, int32_t end,
                  int32_t task, int32_t n_tasks) {
  int64_t r0, r1, width = end - begin;
  task_range(R, task, n_tasks, &r0, &r1);
  for (int64_t r = r0; r < r1; r++) /* rows of x [R, C] and out [R, width] */
    for (int64_t c = 0; c < width; c++)
      out[r * width + c] = x[r * C + begin + c];
}

void llmc_k_rope(const float *x, const int32_t *positions, const float *inv_freq, float *out,
                 int32_t T, int32_t heads, int32_t head_dim, int32_t rot_dim, int32_t interleaved,
                 int32_t task, int32_t n_tasks) {
  int64_t t0, t1, row = (int64_t)heads * head_dim;
  int32_t half = rot_dim / 2;
  /* Element i of a pair is at i*first_step, its partner second_off after it. */
  int32_t first_step = interleaved ? 2 : 1, second_off = interleaved ? 1 : half;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of x, out [T, heads * head_dim] */
    /* One angle per frequency, shared by all heads; as Hugging Face, the
     * angle is the float32 product and its cos/sin are taken accurately. */
    float cos_a[MAX_HEAD_DIM / 2], sin_a[MAX_HEAD_DIM / 2]; /* [half] */
    float pos = (float)positions[t];
    for (int32_t i = 0; i < half; i++)
      k_sincosf(pos * inv_freq[i], &sin_a[i], &cos_a[i]);
    for (int64_t h = 0; h < heads; h++) {
      const float *xh = x + t * row + h * head_dim; /* [head_dim] */
      float *oh = out + t * row + h * head_dim;     /* [head_dim], may be xh */
      for (int32_t i = 0; i < half; i++) {
        int32_t a = i * first_step, b = a + second_off;
        float x1 = xh[a], x2 = xh[b];
        oh[a] = x1 * cos_a[i] - x2 * sin_a[i];
        oh[b] = x2 * cos_a[i] + x1 * sin_a[i];
      }
      for (int32_t i = rot_dim; i < head_dim; i++)
        oh[i] = xh[i];
    }
  }
}

/* ---- the paged KV cache --------------------------------------------------- */

/* Floats of K (or V) of one layer: n_blocks * block_size slots of kv_dim. */
INLINE int64_t kv_layer_floats(const llmc_kv_cache_view_t *kv, int32_t kv_dim) {
  return (int64_t)kv->n_blocks * kv->block_size * kv_dim;
}

void llmc_k_kv_store(const llmc_step_t *step, const float *k, const float *v, int32_t layer,
                     int32_t kv_dim, int32_t task, int32_t n_tasks) {
  int64_t t0, t1, layer_floats = kv_layer_floats(&step->kv, kv_dim);
  /* Slot s = block * block_size + offset lands at s * kv_dim past the base
   * of the layer's K (and V) in the layout of abi.h. */
  float *k_cache = step->kv.data + 2 * layer * layer_floats;
  float *v_cache = k_cache + layer_floats;
  task_range(step->batch.n_tokens, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of k, v [T, kv_dim] */
    int64_t slot = step->batch.slots[t];
    for (int64_t d = 0; d < kv_dim; d++) {
      k_cache[slot * kv_dim + d] = k[t * kv_dim + d];
      v_cache[slot * kv_dim + d] = v[t * kv_dim + d];
    }
  }
}

/* One (sequence, kv head)'s view of the cache for attention. */
typedef struct attn_seq {
  const float *k, *v;   /* the layer's keys/values, offset to the kv head: slot s at s * kv_dim */
  const int32_t *table; /* [max_blocks] the sequence's physical blocks */
  int64_t kv_dim;       /* floats per slot */
  int32_t block_size;
  int32_t head_dim;
  float scale, softcap; /* softcap 0 = none */
  int32_t window;       /* 0 = none */
} attn_seq;

/* out [head_dim] = softmax over cache positions [lo, p] of (q · k) v, with
 * q [head_dim]. Online softmax over chunks of ATTN_CHUNK positions starting
 * at lo: scores of a chunk, one rescale of the running sum and accumulator
 * to the new maximum, then the chunk's weighted values. */
static void attend_row(const attn_seq *a, const float *q, int32_t p, float *out) {
  int32_t lo = a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
  float acc[MAX_HEAD_DIM]; /* [head_dim] sum of e^(score - max) * v */
  for (int32_t d = 0; d < a->head_dim; d++)
    acc[d] = 0.0f;
  float max = -__builtin_inff(), sum = 0.0f;
  for (int32_t c0 = lo; c0 <= p; c0 += ATTN_CHUNK) { /* chunks [c0, c1) of [lo, p] */
    int32_t n = p + 1 - c0 < ATTN_CHUNK ? p + 1 - c0 : ATTN_CHUNK;
    int64_t at[ATTN_CHUNK];  /* [n] float offset of each position's slot */
    float score[ATTN_CHUNK]; /* [n] */
    float chunk_max = -__builtin_inff();
    int32_t block = c0 / a->block_size, offset = c0 % a->block_size;
    for (int32_t i = 0; i < n; i++) {
      at[i] = ((int64_t)a->table[block] * a->block_size + offset) * a->kv_dim;
      float s;
      dot_rows(q, 0, 1, a->k + at[i], a->head_dim, &s);
      s *= a->scale;
      if (a->softcap > 0.0f)
        s = a->softcap * k_tanhf(s / a->softcap);
      score[i] = s;
      chunk_max = s > chunk_max ? s : chunk_max;
      if (++offset == a->block_size) {
        offset = 0;
        block++;
      }
    }
    float new_max = chunk_max > max ? chunk_max : max;
    float rescale = k_expf(max - new_max); /* 0 for the first chunk (max = -inf) */
    sum *= rescale;
    for (int32_t d = 0; d < a->head_dim; d++)
      acc[d] *= rescale;
    for (int32_t i = 0; i < n; i++) {
      float e = k_expf(score[i] - new_max);
      const float *vrow = a->v + at[i]; /* [head_dim] */
      sum += e;
      for (int32_t d = 0; d < a->head_dim; d++)
        acc[d] += e * vrow[d];
    }
    max = new_max;
  }
  float inv_sum = 1.0f / sum;
  for (int32_t d = 0; d < a->head_dim; d++)
    out[d] = acc[d] * inv_sum;
}

void llmc_k_attention(const llmc_step_t *step, const float *q, float *out, int32_t layer,
                      int32_t heads, int32_t kv_heads, int32_t head_dim, int32_t kv_dim,
                      float scale, float softcap, int32_t window, int32_t task, int32_t n_tasks) {
  const llmc_batch_t *batch = &step->batch;
  int64_t layer_floats = kv_layer_floats(&step->kv, kv_dim), row = (int64_t)heads * head_dim;
  const float *k_cache = step->kv.data + 2 * layer * layer_floats;
  int32_t group = heads / kv_heads; /* query heads per kv head */
  int64_t i0, i1;
  task_range((int64_t)batch->n_seqs * heads, task, n_tasks, &i0, &i1);
  for (int64_t i = i0; i < i1; i++) { /* (sequence, head) pairs */
    int64_t s = i / heads, h = i % heads;
    int64_t kv_off = (h / group) * head_dim;
    attn_seq a = {
        .k = k_cache + kv_off,
        .v = k_cache + layer_floats + kv_off,
        .table = batch->block_table + s * batch->max_blocks,
        .kv_dim = kv_dim,
        .block_size = step->kv.block_size,
        .head_dim = head_dim,
        .scale = scale,
        .softcap = softcap,
        .window = window,
    };
    for (int64_t t = batch->seq_start[s]; t < batch->seq_start[s + 1]; t++) /* s's rows of q, out */
      attend_row(&a, q + t * row + h * head_dim, batch->positions[t], out + t * row + h * head_dim);
  }
}

/* ---- outputs --------------------------------------------------------------- */

void llmc_k_select_rows(const llmc_step_t *step, const float *x, float *out, int32_t C,
                        int32_t task, int32_t n_tasks) {
  int64_t l0, l1;
  task_range(step->batch.n_logits, task, n_tasks, &l0, &l1);
  for (int64_t l = l0; l < l1; l++) { /* rows of out [L, C] */
    const float *src = x + (int64_t)step->batch.logit_rows[l] * C;
    for (int64_t c = 0; c < C; c++)
      out[l * C + c] = src[c];
  }
}

void llmc_k_output(const llmc_step_t *step, const float *x, int32_t V, int32_t task,
                   int32_t n_tasks) {
  int64_t l0, l1;
  task_range(step->batch.n_logits, task, n_tasks, &l0, &l1);
  for (int64_t i = l0 * V; i < l1 * V; i++) /* rows [l0, l1) of x, logits [L, V] */
    step->batch.logits[i] = x[i];
}

/* ---- mixture of experts ---------------------------------------------------- */

/* The experts token x [D] goes to, and their weights: chosen[e] != 0 for the
 * top_k of p = softmax(router · x) (ties to the lower index), weight[e] =
 * p_e / sum of the chosen p. router [E, D]. */
static void moe_route(const float *x, const float *router, int32_t D, int32_t E, int32_t top_k,
                      uint8_t *chosen, float *weight) {
  float p[MAX_EXPERTS]; /* [E] */
  for (int32_t e = 0; e < E; e += ROW_BLOCK)
    dot_row_block(router + (int64_t)e * D, E - e < ROW_BLOCK ? E - e : ROW_BLOCK, x, D, p + e);
  float max = p[0], sum = 0.0f;
  for (int32_t e = 1; e < E; e++)
    max = p[e] > max ? p[e] : max;
  for (int32_t e = 0; e < E; e++) {
    p[e] = k_expf(p[e] - max);
    sum += p[e];
  }
  for (int32_t e = 0; e < E; e++) {
    p[e] /= sum;
    chosen[e] = 0;
  }
  float chosen_sum = 0.0f;
  for (int32_t k = 0; k < top_k; k++) { /* chosen in descending p */
    int32_t best = -1;
    for (int32_t e = 0; e < E; e++)
      if (!chosen[e] && (best < 0 || p[e] > p[best]))
        best = e;
    chosen[best] = 1;
    chosen_sum += p[best];
  }
  for (int32_t e = 0; e < E; e++)
    weight[e] = p[e] / chosen_sum;
}

void llmc_k_moe(const float *x, const float *router, const float *gate_up, const float *down,
                float *out, int32_t T, int32_t D, int32_t F, int32_t E, int32_t top_k, int32_t act,
                int32_t task, int32_t n_tasks) {
  int64_t t0, t1;
  task_range(T, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of x, out [T, D] */
    const float *xt = x + t * D;
    float *ot = out + t * D;
    uint8_t chosen[MAX_EXPERTS]; /* [E] */
    float weight[MAX_EXPERTS];   /* [E] */
    moe_route(xt, router, D, E, top_k, chosen, weight);
    for (int32_t d = 0; d < D; d++)
      ot[d] = 0.0f;
    for (int32_t e = 0; e < E; e++) { /* chosen experts, in index order as Hugging Face */
      if (!chosen[e])
        continue;
      const float *gate = gate_up + (int64_t)e * 2 * F * D; /* [F, D] */
      const float *up = gate + (int64_t)F * D;              /* [F, D] */
      const float *dn = down + (int64_t)e * D * F;          /* [D, F] */
      float hidden[F];                                      /* act(gate · x) * (up · x) */
      for (int32_t f = 0; f < F; f += ROW_BLOCK) {
        int32_t n = F - f < ROW_BLOCK ? F - f : ROW_BLOCK;
        float g[ROW_BLOCK], u[ROW_BLOCK];
        dot_row_block(gate + (int64_t)f * D, n, xt, D, g);
        dot_row_block(up + (int64_t)f * D, n, xt, D, u);
        for (int32_t i = 0; i < n; i++)
          hidden[f + i] = k_act(act, g[i]) * u[i];
      }
      for (int32_t d = 0; d < D; d += ROW_BLOCK) {
        int32_t n = D - d < ROW_BLOCK ? D - d : ROW_BLOCK;
        float y[ROW_BLOCK];
        dot_row_block(dn + (int64_t)d * F, n, hidden, F, y);
        for (int32_t i = 0; i < n; i++)
          ot[d + i] += y[i] * weight[e];
      }
    }
  }
}
