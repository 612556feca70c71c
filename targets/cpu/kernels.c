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
  ATTN_TILE = 8,   /* (row, query head) pairs that share each decoded chunk of f16 or q8_0 */
  MAX_HEAD_DIM = 256,
  MAX_EXPERTS = 256,
  MATMUL_KC = 256, /* K chunk of a matmul tile: a multiple of LANES */
};

/* ---- scalar math (no libm) ---------------------------------------------- */

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
  int32_t ni = (int32_t)(llmc_float_bits(t) - llmc_float_bits(round_magic)); /* n as an integer */
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
  float s1 = llmc_bits_float((uint32_t)(n1 + 127) << 23);
  float s2 = llmc_bits_float((uint32_t)(n2 + 127) << 23);
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

/* The cache's element type (abi.h) is the runtime's choice, not the
 * model's, so it comes with the step. kv_store branches on it once per
 * call and attention once per tile of queries; each branch runs a body
 * specialised for its type (the dtype argument of the INLINE helpers below
 * is always a constant). Values are decoded to f32 exactly and every sum
 * is the f32 code's, so a row's result depends on the stored values alone. */

/* Bytes of K (or V) of one layer: n_blocks * block_size slots. */
INLINE int64_t kv_layer_bytes(const llmc_kv_cache_view_t *kv, int64_t slot_bytes) {
  return (int64_t)kv->n_blocks * kv->block_size * slot_bytes;
}

/* The slot at dst = x [kv_dim], encoded as abi.h says. Loops rather than
 * memcpy: the kernels call no libc. */
INLINE void kv_encode(int32_t dtype, const float *x, uint8_t *dst, int64_t kv_dim) {
  if (dtype == LLMC_KV_F32) {
    float *o = (float *)dst; /* [kv_dim] */
    for (int64_t d = 0; d < kv_dim; d++)
      o[d] = x[d];
  } else if (dtype == LLMC_KV_F16) {
    for (int64_t d = 0; d < kv_dim; d++) {
      uint16_t h = llmc_f32_to_f16(x[d]);
      __builtin_memcpy(dst + 2 * d, &h, sizeof h);
    }
  } else { /* q8_0: kv_dim int8 values, then one f16 scale per group of 32 */
    for (int64_t g = 0; g < kv_dim / LLMC_Q8_0_GROUP; g++) {
      uint16_t scale = llmc_q8_0_quantize(x + g * LLMC_Q8_0_GROUP,
                                          (int8_t *)dst + g * LLMC_Q8_0_GROUP);
      __builtin_memcpy(dst + kv_dim + 2 * g, &scale, sizeof scale);
    }
  }
}

INLINE void kv_store(int32_t dtype, const llmc_step_t *step, const float *k, const float *v,
                     int32_t layer, int32_t kv_dim, int32_t task, int32_t n_tasks) {
  int64_t slot_bytes = llmc_kv_slot_bytes(dtype, kv_dim), t0, t1;
  int64_t layer_bytes = kv_layer_bytes(&step->kv, slot_bytes);
  /* Slot s = block * block_size + offset lands at s * slot_bytes past the
   * base of the layer's K (and V) in the layout of abi.h. */
  uint8_t *k_cache = step->kv.data + 2 * layer * layer_bytes;
  uint8_t *v_cache = k_cache + layer_bytes;
  task_range(step->batch.n_tokens, task, n_tasks, &t0, &t1);
  for (int64_t t = t0; t < t1; t++) { /* rows of k, v [T, kv_dim] */
    int64_t slot = step->batch.slots[t];
    kv_encode(dtype, k + t * kv_dim, k_cache + slot * slot_bytes, kv_dim);
    kv_encode(dtype, v + t * kv_dim, v_cache + slot * slot_bytes, kv_dim);
  }
}

void llmc_k_kv_store(const llmc_step_t *step, const float *k, const float *v, int32_t layer,
                     int32_t kv_dim, int32_t task, int32_t n_tasks) {
  switch (step->kv.dtype) {
  case LLMC_KV_F16:
    kv_store(LLMC_KV_F16, step, k, v, layer, kv_dim, task, n_tasks);
    break;
  case LLMC_KV_Q8_0:
    kv_store(LLMC_KV_Q8_0, step, k, v, layer, kv_dim, task, n_tasks);
    break;
  default: /* LLMC_KV_F32; the runtime hands out no other type */
    kv_store(LLMC_KV_F32, step, k, v, layer, kv_dim, task, n_tasks);
    break;
  }
}

/* One (sequence, kv head)'s view of the cache for attention. */
typedef struct attn_seq {
  const uint8_t *k, *v; /* the layer's keys/values: slot s at s * slot_bytes */
  const int32_t *table; /* [max_blocks] the sequence's physical blocks */
  int64_t slot_bytes;   /* bytes per slot */
  int64_t kv_dim;       /* elements per slot */
  int64_t head_off;     /* the kv head's first element in a slot */
  int32_t block_size;
  int32_t head_dim;
  float scale, softcap; /* softcap 0 = none */
  int32_t window;       /* 0 = none */
} attn_seq;

/* One query row and head: what it attends to, and its online softmax. */
typedef struct attn_query {
  const float *q;          /* [head_dim] */
  float *out;              /* [head_dim] */
  int32_t lo, p;           /* the cache positions it attends to: [lo, p] */
  float max, sum;          /* the running maximum score and sum of e^(score - max) */
  float acc[MAX_HEAD_DIM]; /* [head_dim] sum of e^(score - max) * v */
} attn_query;

/* The first cache position a query at position p attends to. */
INLINE int32_t attn_lo(const attn_seq *a, int32_t p) {
  return a->window > 0 && p - a->window + 1 > 0 ? p - a->window + 1 : 0;
}

/* The query of the row at position p, state empty. */
INLINE void attn_query_init(const attn_seq *a, attn_query *aq, const float *q, int32_t p,
                            float *out) {
  aq->q = q;
  aq->out = out;
  aq->p = p;
  aq->lo = attn_lo(a, p);
  aq->max = -__builtin_inff();
  aq->sum = 0.0f;
  for (int32_t d = 0; d < a->head_dim; d++)
    aq->acc[d] = 0.0f;
}

/* One step of the online softmax: the n <= ATTN_CHUNK positions whose keys
 * and values ([head_dim] f32 each) are k[i] and v[i]: their scores, one
 * rescale of the sum and accumulator to the new maximum, then the weighted
 * values. Every cache type goes through here, so they differ only in the
 * values read. */
INLINE void attend_chunk(const attn_seq *a, attn_query *aq, const float *const *k,
                         const float *const *v, int32_t n) {
  float score[ATTN_CHUNK]; /* [n] */
  float chunk_max = -__builtin_inff();
  for (int32_t i = 0; i < n; i++) {
    float s;
    dot_rows(aq->q, 0, 1, k[i], a->head_dim, &s);
    s *= a->scale;
    if (a->softcap > 0.0f)
      s = a->softcap * k_tanhf(s / a->softcap);
    score[i] = s;
    chunk_max = s > chunk_max ? s : chunk_max;
  }
  float new_max = chunk_max > aq->max ? chunk_max : aq->max;
  float rescale = k_expf(aq->max - new_max); /* 0 for the first chunk (max = -inf) */
  aq->sum *= rescale;
  for (int32_t d = 0; d < a->head_dim; d++)
    aq->acc[d] *= rescale;
  for (int32_t i = 0; i < n; i++) {
    float e = k_expf(score[i] - new_max);
    aq->sum += e;
    for (int32_t d = 0; d < a->head_dim; d++)
      aq->acc[d] += e * v[i][d];
  }
  aq->max = new_max;
}

INLINE void attn_query_finish(const attn_seq *a, attn_query *aq) {
  float inv_sum = 1.0f / aq->sum;
  for (int32_t d = 0; d < a->head_dim; d++)
    aq->out[d] = aq->acc[d] * inv_sum;
}

/* Byte offset of position pos's slot in the sequence's K (or V). */
INLINE int64_t attn_slot_at(const attn_seq *a, int32_t pos) {
  return ((int64_t)a->table[pos / a->block_size] * a->block_size + pos % a->block_size) *
         a->slot_bytes;
}

/* The kv head's [head_dim] elements of the slot at p (a key or a value),
 * of type dtype (f16 or q8_0), decoded exactly into out [head_dim]. */
INLINE void kv_decode_head(int32_t dtype, const attn_seq *a, const uint8_t *p, float *out) {
  int64_t n = a->head_dim;
  if (dtype == LLMC_KV_F16) {
    const uint8_t *h = p + 2 * a->head_off; /* [head_dim] halves */
    int64_t d = 0;
    for (; d + LANES <= n; d += LANES) {
      v16f x;
      load_f16x16(h + 2 * d, &x);
      __builtin_memcpy(out + d, &x, sizeof x);
    }
    for (; d < n; d++) /* head_dim % 16 tail */
      out[d] = load_f16(h + 2 * d);
    return;
  }
  const int8_t *q = (const int8_t *)p + a->head_off; /* [head_dim] */
  for (int64_t d = 0; d < n;) { /* the head's share of each group of 32, one scale each */
    int64_t g = (a->head_off + d) / LLMC_Q8_0_GROUP;
    int64_t end = (g + 1) * LLMC_Q8_0_GROUP - a->head_off;
    end = end < n ? end : n;
    float scale = load_f16(p + a->kv_dim + 2 * g);
    for (; d < end; d++)
      out[d] = (float)q[d] * scale;
  }
}

/* out [head_dim] of each of n <= ATTN_TILE queries (rows and heads
 * sharing one kv head, their lo less than ATTN_TILE apart) = softmax over
 * its cache positions [lo, p] of (q · k) v, in chunks of ATTN_CHUNK
 * positions from its lo. The queries go in step, so that what they share
 * is read once: round r takes every query's chunk r (together less than
 * ATTN_CHUNK + ATTN_TILE positions), finds each position's key and value
 * once — in place for f32, decoded for f16 and q8_0, where decoding costs
 * more than the arithmetic it feeds — and then each query does its chunk.
 * A query's arithmetic never depends on the others: the tile changes no
 * bit of any result. */
INLINE void attend_tile_as(int32_t dtype, const attn_seq *a, attn_query *qs, int32_t n) {
  enum { SPAN = ATTN_CHUNK + ATTN_TILE };
  float kbuf[SPAN][MAX_HEAD_DIM], vbuf[SPAN][MAX_HEAD_DIM]; /* decoded keys, values (not f32) */
  const float *krow[SPAN], *vrow[SPAN]; /* [end - first] each position's, as f32 */
  for (int32_t r0 = 0;; r0 += ATTN_CHUNK) { /* round: chunk [lo + r0, ...) of each query */
    int32_t first = 0, end = -1;            /* the positions of the round */
    for (int32_t j = 0; j < n; j++) {
      int32_t c0 = qs[j].lo + r0;
      int32_t c1 = qs[j].p + 1 - c0 < ATTN_CHUNK ? qs[j].p + 1 : c0 + ATTN_CHUNK;
      if (c0 > qs[j].p)
        continue;
      first = end < 0 || c0 < first ? c0 : first;
      end = c1 > end ? c1 : end;
    }
    if (end < 0)
      break;
    for (int32_t pos = first; pos < end; pos++) {
      int64_t at = attn_slot_at(a, pos);
      if (dtype == LLMC_KV_F32) {
        krow[pos - first] = (const float *)(a->k + at) + a->head_off;
        vrow[pos - first] = (const float *)(a->v + at) + a->head_off;
      } else {
        kv_decode_head(dtype, a, a->k + at, kbuf[pos - first]);
        kv_decode_head(dtype, a, a->v + at, vbuf[pos - first]);
        krow[pos - first] = kbuf[pos - first];
        vrow[pos - first] = vbuf[pos - first];
      }
    }
    for (int32_t j = 0; j < n; j++) {
      int32_t c0 = qs[j].lo + r0;
      if (c0 <= qs[j].p)
        attend_chunk(a, &qs[j], krow + (c0 - first), vrow + (c0 - first),
                     qs[j].p + 1 - c0 < ATTN_CHUNK ? qs[j].p + 1 - c0 : ATTN_CHUNK);
    }
  }
  for (int32_t j = 0; j < n; j++)
    attn_query_finish(a, &qs[j]);
}

/* attend_tile_as for the cache's type: one branch per tile. */
static void attend_tile(int32_t dtype, const attn_seq *a, attn_query *qs, int32_t n) {
  switch (dtype) {
  case LLMC_KV_F16:
    attend_tile_as(LLMC_KV_F16, a, qs, n);
    break;
  case LLMC_KV_Q8_0:
    attend_tile_as(LLMC_KV_Q8_0, a, qs, n);
    break;
  default: /* LLMC_KV_F32 */
    attend_tile_as(LLMC_KV_F32, a, qs, n);
    break;
  }
}

/* Query heads [h0, h0 + nh) (nh <= ATTN_TILE) of sequence s, which share
 * the kv head of a: s's rows in tiles of up to ATTN_TILE / nh rows whose
 * lo lie less than ATTN_TILE apart. q, out [T, row]. */
static void attend_heads(const llmc_step_t *step, const attn_seq *a, const float *q, float *out,
                         int64_t s, int64_t h0, int32_t nh, int64_t row) {
  const llmc_batch_t *batch = &step->batch;
  attn_query qs[ATTN_TILE];
  int32_t n = 0, lo_min = 0, lo_max = 0; /* queries in qs, the range of their lo */
  for (int64_t t = batch->seq_start[s]; t < batch->seq_start[s + 1]; t++) { /* s's rows */
    int32_t p = batch->positions[t], lo = attn_lo(a, p);
    int32_t new_min = n > 0 && lo_min < lo ? lo_min : lo;
    int32_t new_max = n > 0 && lo_max > lo ? lo_max : lo;
    if (n > 0 && (n + nh > ATTN_TILE || new_max - new_min >= ATTN_TILE)) {
      attend_tile(step->kv.dtype, a, qs, n);
      n = 0;
      new_min = new_max = lo;
    }
    lo_min = new_min;
    lo_max = new_max;
    for (int64_t h = h0; h < h0 + nh; h++, n++)
      attn_query_init(a, &qs[n], q + t * row + h * a->head_dim, p, out + t * row + h * a->head_dim);
  }
  if (n > 0)
    attend_tile(step->kv.dtype, a, qs, n);
}

void llmc_k_attention(const llmc_step_t *step, const float *q, float *out, int32_t layer,
                      int32_t heads, int32_t kv_heads, int32_t head_dim, int32_t kv_dim,
                      float scale, float softcap, int32_t window, int32_t task, int32_t n_tasks) {
  const llmc_batch_t *batch = &step->batch;
  int64_t slot_bytes = llmc_kv_slot_bytes(step->kv.dtype, kv_dim);
  int64_t layer_bytes = kv_layer_bytes(&step->kv, slot_bytes), row = (int64_t)heads * head_dim;
  const uint8_t *k_cache = step->kv.data + 2 * layer * layer_bytes;
  int32_t group = heads / kv_heads; /* query heads per kv head */
  int64_t i0, i1;
  task_range((int64_t)batch->n_seqs * heads, task, n_tasks, &i0, &i1);
  for (int64_t i = i0; i < i1;) { /* (sequence, head) pairs */
    int64_t s = i / heads, h = i % heads;
    /* This task's heads of s that share h's kv head, ATTN_TILE at most. */
    int64_t h1 = (h / group + 1) * group;
    h1 = h1 - h > ATTN_TILE ? h + ATTN_TILE : h1;
    h1 = s * heads + h1 > i1 ? i1 - s * heads : h1;
    attn_seq a = {
        .k = k_cache,
        .v = k_cache + layer_bytes,
        .table = batch->block_table + s * batch->max_blocks,
        .slot_bytes = slot_bytes,
        .kv_dim = kv_dim,
        .head_off = (h / group) * head_dim,
        .block_size = step->kv.block_size,
        .head_dim = head_dim,
        .scale = scale,
        .softcap = softcap,
        .window = window,
    };
    attend_heads(step, &a, q, out, s, h, (int32_t)(h1 - h), row);
    i = s * heads + h1;
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
