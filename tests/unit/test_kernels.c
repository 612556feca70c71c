/* test_kernels.c — the CPU kernel library against references it did not produce.
 *
 * kernels.c is compiled natively into this program (tests/CMakeLists.txt).
 * Each kernel is compared with a naive double-precision reference written
 * here, over shapes that include odd sizes (K % 16 != 0, a single token, a
 * ragged batch); the scalar math (expf, tanh, sin/cos) is measured against
 * libm; and batch invariance is checked bit for bit: a row's result must not
 * depend on T, on the other rows of the batch or on how the work is split
 * into tasks.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/quant.h"
#include "kernels.h"

/* e^x as kernels.c computes it (exported there for this test only). */
float llmc_k_expf(float x);

/* Deterministic uniform floats in [-1, 1). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}
static float *rnd_array(int64_t n) {
  float *a = malloc((size_t)n * sizeof *a);
  for (int64_t i = 0; i < n; i++)
    a[i] = rnd();
  return a;
}

/* got [n] against ref [n] within tol * (1 + |ref|); reports the first miss. */
static void check_close(const char *what, const float *got, const double *ref, int64_t n,
                        double tol) {
  for (int64_t i = 0; i < n; i++) {
    if (!(fabs(got[i] - ref[i]) <= tol * (1.0 + fabs(ref[i])))) {
      fprintf(stderr, "FAIL %s [%lld]: got %.9g, want %.9g\n", what, (long long)i, got[i], ref[i]);
      check_failures++;
      return;
    }
  }
}

static double silu_ref(double x) { return x / (1.0 + exp(-x)); }
static double gelu_ref(double x) {
  return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}
static double act_ref(int32_t act, double x) {
  return act == LLMC_ACT_SILU ? silu_ref(x) : act == LLMC_ACT_GELU_TANH ? gelu_ref(x) : x;
}

/* ---- scalar math ---------------------------------------------------------- */

static void test_expf(void) {
  double worst = 0;
  float worst_x = 0;
  for (float x = -87.0f; x <= 88.0f; x += 1.0e-4f * (1.0f + fabsf(x))) {
    double want = exp((double)x), err = fabs(llmc_k_expf(x) - want) / want;
    if (err > worst) {
      worst = err;
      worst_x = x;
    }
  }
  printf("expf: max relative error %.3g (at %g) over [-87, 88]\n", worst, worst_x);
  CHECK_MSG(worst < 2e-7, "expf relative error < 2e-7");
  CHECK_MSG(llmc_k_expf(-200.0f) == 0.0f, "expf(-200) == 0");
  CHECK_MSG(llmc_k_expf(-INFINITY) == 0.0f, "expf(-inf) == 0");
  CHECK_MSG(isinf(llmc_k_expf(100.0f)), "expf(100) == inf");
  CHECK_MSG(isfinite(llmc_k_expf(88.7f)), "expf(88.7) finite");
  CHECK_MSG(isnan(llmc_k_expf(NAN)), "expf(nan) is nan");
  CHECK_MSG(llmc_k_expf(0.0f) == 1.0f, "expf(0) == 1");
}

/* tanh through the softcap op with cap 1, which computes 1 * tanh(x / 1) exactly. */
static void test_tanh(void) {
  enum { N = 400001 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  for (int i = 0; i < N; i++)
    x[i] = -20.0f + 40.0f * (float)i / (N - 1);
  llmc_k_unary(x, y, N, LLMC_UNARY_SOFTCAP, 1.0f, 0, 1);
  double worst_abs = 0, worst_rel = 0;
  for (int i = 0; i < N; i++) {
    double want = tanh((double)x[i]), err = fabs(y[i] - want);
    worst_abs = err > worst_abs ? err : worst_abs;
    if (want != 0)
      worst_rel = err / fabs(want) > worst_rel ? err / fabs(want) : worst_rel;
  }
  printf("tanh: max absolute error %.3g, relative %.3g over [-20, 20]\n", worst_abs, worst_rel);
  CHECK_MSG(worst_rel < 3e-7, "tanh relative error < 3e-7");
  free(x);
  free(y);
}

/* sin and cos through rope on unit vectors: (1, 0) rotated by a is exactly
 * (cos a, sin a). Position 1 makes the angle inv_freq[i] itself. */
static void test_sincos(void) {
  enum { HALF = 128, ROWS = 4000 };
  float *x = calloc((size_t)ROWS * 2 * HALF, sizeof *x), *y = malloc(ROWS * 2 * HALF * sizeof *y);
  int32_t *pos = malloc(ROWS * sizeof *pos);
  for (int t = 0; t < ROWS; t++) {
    pos[t] = 1;
    for (int i = 0; i < HALF; i++)
      x[t * 2 * HALF + i] = 1.0f;
  }
  double worst = 0, worst_big = 0;
  float *angles = malloc(HALF * sizeof *angles);
  for (int range = 0; range < 2; range++) { /* |a| < 100, then |a| < 1e5 */
    double limit = range ? 1e5 : 100.0;
    for (int t = 0; t < ROWS; t++) { /* one rope call per row: each has its own angles */
      for (int i = 0; i < HALF; i++)
        angles[i] = (float)(limit * rnd());
      llmc_k_rope(x + t * 2 * HALF, pos + t, angles, y + t * 2 * HALF, 1, 1, 2 * HALF, 2 * HALF, 0, 0,
                  1);
      for (int i = 0; i < HALF; i++) {
        double c = fabs(y[t * 2 * HALF + i] - cos((double)angles[i]));
        double s = fabs(y[t * 2 * HALF + HALF + i] - sin((double)angles[i]));
        double *w = range ? &worst_big : &worst;
        *w = c > *w ? c : *w;
        *w = s > *w ? s : *w;
      }
    }
  }
  printf("sincos: max absolute error %.3g for |a| < 100, %.3g for |a| < 1e5\n", worst, worst_big);
  CHECK_MSG(worst < 2e-7 && worst_big < 2e-7, "sin/cos absolute error < 2e-7");
  free(x);
  free(y);
  free(pos);
  free(angles);
}

/* ---- row-local kernels ------------------------------------------------------ */

static void test_embed(void) {
  enum { V = 10, D = 7, T = 5 };
  float *table = rnd_array(V * D), out[T * D];
  int32_t tokens[T] = {3, -1, 9, 10, 0};
  double ref[T * D];
  for (int t = 0; t < T; t++)
    for (int d = 0; d < D; d++)
      ref[t * D + d] = tokens[t] >= 0 && tokens[t] < V ? table[tokens[t] * D + d] * 0.5 : 0.0;
  for (int task = 0; task < 2; task++)
    llmc_k_embed(table, tokens, out, T, D, V, 0.5f, task, 2);
  check_close("embed", out, ref, T * D, 1e-7);
  free(table);
}

static void test_rms_norm(void) {
  static const int32_t shapes[][3] = {{5, 129, 129}, {3, 64, 16}, {1, 4096, 4096}}; /* T, D, G */
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int32_t T = shapes[s][0], D = shapes[s][1], G = shapes[s][2];
    float *x = rnd_array((int64_t)T * D), *w = rnd_array(G), *out = malloc((size_t)T * D * 4);
    double *ref = malloc((size_t)T * D * sizeof *ref);
    for (int t = 0; t < T; t++) {
      for (int g = 0; g < D; g += G) {
        double ss = 0;
        for (int i = 0; i < G; i++)
          ss += (double)x[t * D + g + i] * x[t * D + g + i];
        double inv = 1.0 / sqrt(ss / G + 1e-6);
        for (int i = 0; i < G; i++)
          ref[t * D + g + i] = x[t * D + g + i] * inv * w[i];
      }
    }
    for (int task = 0; task < 3; task++)
      llmc_k_rms_norm(x, w, out, T, D, G, 1e-6f, task, 3);
    check_close("rms_norm", out, ref, (int64_t)T * D, 1e-5);
    llmc_k_rms_norm(x, w, x, T, D, G, 1e-6f, 0, 1); /* in place */
    CHECK_BITS("rms_norm in place", x, out, (int64_t)T * D);
    free(x);
    free(w);
    free(out);
    free(ref);
  }
}

/* The double reference of llmc_k_matmul. */
static void matmul_ref(const float *x, const float *w, const float *bias, const float *residual,
                       double *out, int T, int K, int N, int glu) {
  for (int t = 0; t < T; t++) {
    for (int j = 0; j < N; j++) {
      double d = 0, u = 0;
      for (int k = 0; k < K; k++) {
        d += (double)x[t * K + k] * w[(int64_t)j * K + k];
        if (glu)
          u += (double)x[t * K + k] * w[(int64_t)(N + j) * K + k];
      }
      if (glu)
        d = act_ref(glu, d) * u;
      if (bias)
        d += bias[j];
      if (residual)
        d += residual[t * N + j];
      out[t * N + j] = d;
    }
  }
}

static void run_matmul(const float *x, const float *w, const float *bias, const float *residual,
                       float *out, int T, int K, int N, int glu, int n_tasks) {
  for (int task = n_tasks - 1; task >= 0; task--)
    llmc_k_matmul(x, w, bias, residual, out, T, K, N, glu, task, n_tasks);
}

static void test_matmul(void) {
  static const int32_t shapes[][3] = {/* T, K, N */
                                      {1, 129, 7}, {5, 129, 7},  {7, 64, 33},    {9, 16, 5},
                                      {4, 3, 9},   {6, 200, 70}, {2, 1000, 600}, {9, 1000, 45}};
  for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
    int32_t T = shapes[s][0], K = shapes[s][1], N = shapes[s][2];
    for (int variant = 0; variant < 4; variant++) { /* plain, bias+residual, silu glu, gelu glu */
      int glu = variant == 2 ? LLMC_ACT_SILU : variant == 3 ? LLMC_ACT_GELU_TANH : LLMC_ACT_NONE;
      int64_t rows = glu ? 2 * N : N;
      float *x = rnd_array((int64_t)T * K), *w = rnd_array(rows * K);
      for (int64_t i = 0; i < rows * K; i++) /* as initialised weights: outputs of order 1 */
        w[i] /= sqrtf((float)K);
      float *bias = variant == 1 ? rnd_array(N) : NULL;
      float *residual = variant == 1 ? rnd_array((int64_t)T * N) : NULL;
      float *out = malloc((size_t)T * N * 4), *alone = malloc((size_t)N * 4);
      double *ref = malloc((size_t)T * N * sizeof *ref);
      matmul_ref(x, w, bias, residual, ref, T, K, N, glu);
      run_matmul(x, w, bias, residual, out, T, K, N, glu, 3);
      char what[96];
      snprintf(what, sizeof what, "matmul T=%d K=%d N=%d variant %d", T, K, N, variant);
      check_close(what, out, ref, (int64_t)T * N, 1e-5);
      /* Batch invariance: each row alone, and the batch without its first row,
       * under other task splits, give the same bits. */
      for (int t = 0; t < T; t++) {
        run_matmul(x + t * K, w, bias, residual ? residual + t * N : NULL, alone, 1, K, N, glu,
                   1 + t % 4);
        snprintf(what, sizeof what, "matmul invariance T=%d K=%d N=%d variant %d row %d", T, K, N,
                 variant, t);
        CHECK_BITS(what, alone, out + t * N, N);
      }
      if (T > 1) {
        float *rest = malloc((size_t)(T - 1) * N * 4);
        run_matmul(x + K, w, bias, residual ? residual + N : NULL, rest, T - 1, K, N, glu, 2);
        snprintf(what, sizeof what, "matmul invariance T=%d-1 K=%d N=%d variant %d", T, K, N,
                 variant);
        CHECK_BITS(what, rest, out + N, (int64_t)(T - 1) * N);
        free(rest);
      }
      if (residual) { /* residual may be the output itself */
        run_matmul(x, w, bias, residual, residual, T, K, N, glu, 2);
        CHECK_BITS("matmul residual in place", residual, out, (int64_t)T * N);
      }
      free(x);
      free(w);
      free(bias);
      free(residual);
      free(out);
      free(alone);
      free(ref);
    }
  }
}

static void test_elementwise(void) {
  enum { T = 5, N = 13 };
  float *a = rnd_array(T * N), *b = rnd_array(T * N), out[T * N];
  double ref[T * N];
  for (int bcast = 0; bcast < 2; bcast++) {
    for (int op = LLMC_BINARY_ADD; op <= LLMC_BINARY_MUL; op++) {
      for (int i = 0; i < T * N; i++) {
        double bv = b[bcast ? i % N : i];
        ref[i] = op == LLMC_BINARY_ADD ? a[i] + bv : a[i] * bv;
      }
      for (int task = 0; task < 2; task++)
        llmc_k_binary(a, b, out, T, N, bcast ? 1 : T, op, task, 2);
      check_close(op == LLMC_BINARY_ADD ? "binary add" : "binary mul", out, ref, T * N, 1e-7);
    }
  }
  for (int op = LLMC_UNARY_ADD_SCALAR; op <= LLMC_UNARY_GELU_TANH; op++) {
    float *x = rnd_array(T * N);
    for (int i = 0; i < T * N; i++) {
      x[i] *= 12.0f; /* reach the tails of tanh and exp */
      double v = x[i];
      ref[i] = op == LLMC_UNARY_ADD_SCALAR   ? v + 2.5
               : op == LLMC_UNARY_MUL_SCALAR ? v * 2.5
               : op == LLMC_UNARY_SOFTCAP    ? 2.5 * tanh(v / 2.5)
               : op == LLMC_UNARY_SILU       ? silu_ref(v)
                                             : gelu_ref(v);
    }
    for (int task = 0; task < 3; task++)
      llmc_k_unary(x, out, T * N, op, 2.5f, task, 3);
    char what[32];
    snprintf(what, sizeof what, "unary op %d", op);
    check_close(what, out, ref, T * N, 1e-6);
    free(x);
  }
  for (int act = LLMC_ACT_NONE; act <= LLMC_ACT_GELU_TANH; act++) {
    for (int i = 0; i < T * N; i++)
      ref[i] = act_ref(act, 8.0 * a[i]) * b[i];
    float *gate = malloc(T * N * sizeof *gate);
    for (int i = 0; i < T * N; i++)
      gate[i] = 8.0f * a[i];
    for (int task = 0; task < 2; task++)
      llmc_k_glu(gate, b, out, T * N, act, task, 2);
    check_close("glu", out, ref, T * N, 1e-6);
    free(gate);
  }
  for (int task = 0; task < 2; task++)
    llmc_k_slice(a, out, T, N, 3, 10, task, 2);
  for (int t = 0; t < T; t++)
    for (int c = 0; c < 7; c++)
      ref[t * 7 + c] = a[t * N + 3 + c];
  check_close("slice", out, ref, T * 7, 0);
  free(a);
  free(b);
}

static void test_rope(void) {
  enum { T = 5, H = 3, HD = 20 };
  static const int32_t rot_dims[] = {HD, 8}; /* full, then partial rotary */
  int32_t pos[T] = {0, 1, 17, 4095, 131071};
  for (int interleaved = 0; interleaved < 2; interleaved++) {
    for (size_t r = 0; r < sizeof rot_dims / sizeof rot_dims[0]; r++) {
      int32_t rot = rot_dims[r], half = rot / 2;
      float inv_freq[HD / 2];
      for (int i = 0; i < half; i++)
        inv_freq[i] = (float)pow(500000.0, -2.0 * i / rot);
      float *x = rnd_array(T * H * HD), out[T * H * HD];
      double ref[T * H * HD];
      for (int t = 0; t < T; t++) {
        for (int h = 0; h < H; h++) {
          const float *xh = x + (t * H + h) * HD;
          double *oh = ref + (t * H + h) * HD;
          for (int i = 0; i < half; i++) {
            /* the pair: (i, i + half) rotate-half, (2i, 2i + 1) interleaved */
            int a_i = interleaved ? 2 * i : i, b_i = interleaved ? 2 * i + 1 : i + half;
            double a = (double)((float)pos[t] * inv_freq[i]); /* HF: the angle in float32 */
            oh[a_i] = xh[a_i] * cos(a) - xh[b_i] * sin(a);
            oh[b_i] = xh[b_i] * cos(a) + xh[a_i] * sin(a);
          }
          for (int i = rot; i < HD; i++)
            oh[i] = xh[i];
        }
      }
      for (int task = 0; task < 2; task++)
        llmc_k_rope(x, pos, inv_freq, out, T, H, HD, rot, interleaved, task, 2);
      check_close(interleaved ? "rope interleaved" : "rope", out, ref, T * H * HD, 1e-6);
      llmc_k_rope(x, pos, inv_freq, x, T, H, HD, rot, interleaved, 0, 1); /* in place */
      CHECK_BITS("rope in place", x, out, T * H * HD);
      free(x);
    }
  }
}

/* ---- paged KV cache and attention -------------------------------------------- */

enum {
  A_LAYERS = 2,
  A_BLOCKS = 24,
  A_BS = 4, /* block size */
  A_HEADS = 16,
  A_KVH = 8,
  A_HD = 20,            /* head_dim: not a multiple of 16, and heads straddle q8_0's groups */
  A_KVD = A_KVH * A_HD, /* 160 = 5 groups of 32 */
  A_QD = A_HEADS * A_HD,
  A_SEQS = 3,
  A_MAXB = 20,    /* max blocks per sequence */
  A_MAX_LEN = 80, /* max tokens per sequence */
};

/* binary16 as the compiler implements it (libgcc's soft-float on x86-64):
 * rounding done independently of llmc/numerics.h. */
__extension__ typedef _Float16 f16_t;

static float round_f16(float x) { return (float)(f16_t)x; }

/* out [n] = x [n] (n a multiple of 32) as a q8_0 cache holds it, written
 * from ggml's description (d = amax / 127, q = roundf(x * (1 / d)), stored
 * d in f16) with libm's roundf and the compiler's f16. */
static void round_q8_0(const float *x, float *out, int n) {
  for (int g = 0; g < n; g += 32) {
    float amax = 0.0f;
    for (int j = 0; j < 32; j++)
      amax = fabsf(x[g + j]) > amax ? fabsf(x[g + j]) : amax;
    float d = amax / 127.0f, id = d != 0.0f ? 1.0f / d : 0.0f, d16 = round_f16(d);
    for (int j = 0; j < 32; j++) /* q is an int8: -0.3 rounds to 0, not -0 */
      out[g + j] = (float)(int)roundf(x[g + j] * id) * d16;
  }
}

/* Three sequences and their whole history: sequence s has len[s] tokens in
 * the cache after the step, of which the last n_new[s] are the step's rows. */
typedef struct attn_case {
  int32_t dtype; /* the cache's llmc_kv_dtype_t */
  int32_t len[A_SEQS], n_new[A_SEQS];
  int32_t table[A_SEQS][A_MAXB];  /* physical blocks, scattered */
  float *k[A_SEQS], *v[A_SEQS];   /* [len, kv_dim] stored in layer 1 (the one tested) */
  float *kr[A_SEQS], *vr[A_SEQS]; /* [len, kv_dim] k, v rounded to dtype by this test */
  float *q[A_SEQS];               /* [n_new, q_dim] */
  uint8_t *cache;                 /* [layers, 2, blocks, block size] slots of dtype */
} attn_case;

/* The arrays a step points into: room for every sequence of a case. */
typedef struct step_arrays {
  int32_t positions[64], slots[64], seq_start[A_SEQS + 1], seq_len[A_SEQS];
  int32_t table[A_SEQS * A_MAXB];
  float q[64 * A_QD];
} step_arrays;

/* A step of the new rows of sequences seqs [n] of c, in that order, over
 * the cache at `cache` of type dtype; its arrays live in a. */
static llmc_step_t make_step(const attn_case *c, uint8_t *cache, int32_t dtype, const int *seqs,
                             int n, step_arrays *a) {
  int32_t T = 0;
  for (int i = 0; i < n; i++) {
    int s = seqs[i];
    a->seq_start[i] = T;
    a->seq_len[i] = c->len[s];
    memcpy(a->table + i * A_MAXB, c->table[s], sizeof c->table[s]);
    for (int j = 0; j < c->n_new[s]; j++, T++) {
      int32_t p = c->len[s] - c->n_new[s] + j;
      a->positions[T] = p;
      a->slots[T] = c->table[s][p / A_BS] * A_BS + p % A_BS;
      memcpy(a->q + T * A_QD, c->q[s] + j * A_QD, A_QD * sizeof(float));
    }
  }
  a->seq_start[n] = T;
  llmc_step_t step = {0};
  step.batch.n_tokens = T;
  step.batch.n_seqs = n;
  step.batch.positions = a->positions;
  step.batch.slots = a->slots;
  step.batch.seq_start = a->seq_start;
  step.batch.seq_len = a->seq_len;
  step.batch.block_table = a->table;
  step.batch.max_blocks = A_MAXB;
  step.kv.data = cache;
  step.kv.n_blocks = A_BLOCKS;
  step.kv.block_size = A_BS;
  step.kv.dtype = dtype;
  return step;
}

/* A cache of type dtype, every byte 0xff (a NaN in f32 and f16, and NaN
 * scales in q8_0: reading a slot never written shows up), with each
 * sequence's history k (v if kv) in layer 1 through kv_store: one step per
 * sequence with all its positions as rows. */
static uint8_t *fill_cache(const attn_case *c, int32_t dtype, float *const *k, float *const *v) {
  size_t bytes = (size_t)A_LAYERS * 2 * A_BLOCKS * A_BS * (size_t)llmc_kv_slot_bytes(dtype, A_KVD);
  uint8_t *cache = malloc(bytes);
  memset(cache, 0xff, bytes);
  for (int s = 0; s < A_SEQS; s++) {
    int32_t slots[A_MAX_LEN]; /* [len] */
    for (int p = 0; p < c->len[s]; p++)
      slots[p] = c->table[s][p / A_BS] * A_BS + p % A_BS;
    llmc_step_t step = {0};
    step.batch.n_tokens = c->len[s];
    step.batch.slots = slots;
    step.kv.data = cache;
    step.kv.n_blocks = A_BLOCKS;
    step.kv.block_size = A_BS;
    step.kv.dtype = dtype;
    for (int task = 0; task < 2; task++)
      llmc_k_kv_store(&step, k[s], v[s], 1, A_KVD, task, 2);
  }
  return cache;
}

static void attn_case_init(attn_case *c, int32_t dtype) {
  /* Sequence 0 spans several chunks of the online softmax; its 9 new rows
   * and sequence 2's 5 make more than one tile. */
  static const int32_t len[A_SEQS] = {75, 7, 5}, n_new[A_SEQS] = {9, 1, 5};
  int next = 0; /* blocks handed out in a scrambled order, so no table is contiguous */
  memset(c, 0, sizeof *c);
  c->dtype = dtype;
  for (int s = 0; s < A_SEQS; s++) {
    c->len[s] = len[s];
    c->n_new[s] = n_new[s];
    for (int b = 0; b < (len[s] + A_BS - 1) / A_BS; b++, next++)
      c->table[s][b] = (next * 7 + 3) % A_BLOCKS;
    c->k[s] = rnd_array(len[s] * A_KVD);
    c->v[s] = rnd_array(len[s] * A_KVD);
    c->q[s] = rnd_array(n_new[s] * A_QD);
    for (int i = 0; i < n_new[s] * A_QD; i++)
      c->q[s][i] *= 3.0f; /* peakier softmax */
    for (int i = A_KVD; i < 2 * A_KVD; i++) /* position 1: f16 subnormals, tiny q8_0 scales */
      c->v[s][i] *= 1e-5f;
    c->kr[s] = malloc((size_t)len[s] * A_KVD * sizeof(float));
    c->vr[s] = malloc((size_t)len[s] * A_KVD * sizeof(float));
    for (int p = 0; p < len[s]; p++) {
      for (int kv = 0; kv < 2; kv++) {
        const float *x = (kv ? c->v[s] : c->k[s]) + p * A_KVD;
        float *r = (kv ? c->vr[s] : c->kr[s]) + p * A_KVD;
        if (dtype == LLMC_KV_Q8_0)
          round_q8_0(x, r, A_KVD);
        for (int d = 0; d < A_KVD && dtype != LLMC_KV_Q8_0; d++)
          r[d] = dtype == LLMC_KV_F16 ? round_f16(x[d]) : x[d];
      }
    }
  }
  c->cache = fill_cache(c, dtype, c->k, c->v);
}

static void attn_case_free(attn_case *c) {
  for (int s = 0; s < A_SEQS; s++) {
    free(c->k[s]);
    free(c->v[s]);
    free(c->kr[s]);
    free(c->vr[s]);
    free(c->q[s]);
  }
  free(c->cache);
}

/* The layout of abi.h, checked slot by slot against the history: f32 as
 * stored, f16 as this test rounds it, q8_0 byte for byte as
 * runtime/formats/quant.c quantizes a row (ggml's quantize_row_q8_0_ref,
 * checked against ggml's own output in test_quant) and, decoded, as this
 * test rounds it. */
static void test_kv_layout(const attn_case *c) {
  int64_t slot_bytes = llmc_kv_slot_bytes(c->dtype, A_KVD);
  for (int s = 0; s < A_SEQS; s++) {
    for (int p = 0; p < c->len[s]; p++) {
      int64_t block = c->table[s][p / A_BS], off = p % A_BS;
      for (int kv = 0; kv < 2; kv++) {
        const float *src = (kv ? c->v[s] : c->k[s]) + p * A_KVD;
        const float *want = (kv ? c->vr[s] : c->kr[s]) + p * A_KVD;
        const uint8_t *slot =
            c->cache + (((1 * 2 + kv) * A_BLOCKS + block) * A_BS + off) * slot_bytes;
        float got[A_KVD];
        if (c->dtype == LLMC_KV_F32) {
          memcpy(got, slot, sizeof got);
        } else if (c->dtype == LLMC_KV_F16) {
          for (int d = 0; d < A_KVD; d++) {
            f16_t h;
            memcpy(&h, slot + 2 * d, sizeof h);
            got[d] = (float)h;
          }
        } else {
          uint8_t ggml[A_KVD / 32 * 34]; /* blocks of [f16 d][int8 q[32]] */
          CHECK_OK(llmc_quant_quantize_row(LLMC_GGML_Q8_0, src, ggml, A_KVD));
          for (int g = 0; g < A_KVD / 32; g++) {
            CHECK(memcmp(slot + 32 * g, ggml + 34 * g + 2, 32) == 0);
            CHECK(memcmp(slot + A_KVD + 2 * g, ggml + 34 * g, 2) == 0);
            f16_t scale;
            memcpy(&scale, slot + A_KVD + 2 * g, sizeof scale);
            for (int j = 0; j < 32; j++)
              got[32 * g + j] = (float)(int8_t)slot[32 * g + j] * (float)scale;
          }
        }
        CHECK_BITS("kv_store layout", got, want, A_KVD);
      }
    }
  }
}

/* The double reference of one step's attention over sequences seqs [n],
 * reading the history as the cache holds it (kr, vr). */
static void attention_ref(const attn_case *c, const int *seqs, int n, float scale, float softcap,
                          int window, double *out) {
  int row = 0;
  for (int i = 0; i < n; i++) {
    int s = seqs[i];
    for (int j = 0; j < c->n_new[s]; j++, row++) {
      int p = c->len[s] - c->n_new[s] + j, lo = window && p - window + 1 > 0 ? p - window + 1 : 0;
      for (int h = 0; h < A_HEADS; h++) {
        const float *q = c->q[s] + j * A_QD + h * A_HD;
        int kvh = h / (A_HEADS / A_KVH);
        double score[A_MAX_LEN], max = -INFINITY, sum = 0;
        for (int t = lo; t <= p; t++) {
          double d = 0;
          for (int e = 0; e < A_HD; e++)
            d += (double)q[e] * c->kr[s][t * A_KVD + kvh * A_HD + e];
          d *= scale;
          if (softcap > 0)
            d = softcap * tanh(d / softcap);
          score[t] = d;
          max = d > max ? d : max;
        }
        for (int t = lo; t <= p; t++)
          sum += exp(score[t] - max);
        for (int e = 0; e < A_HD; e++) {
          double acc = 0;
          for (int t = lo; t <= p; t++)
            acc += exp(score[t] - max) / sum * c->vr[s][t * A_KVD + kvh * A_HD + e];
          out[row * A_QD + h * A_HD + e] = acc;
        }
      }
    }
  }
}

static void run_attention(llmc_step_t *step, const float *q, float *out, float scale, float softcap,
                          int window, int n_tasks) {
  for (int task = 0; task < n_tasks; task++)
    llmc_k_attention(step, q, out, 1, A_HEADS, A_KVH, A_HD, A_KVD, scale, softcap, window, task,
                     n_tasks);
}

static void test_attention(int32_t dtype) {
  attn_case c;
  attn_case_init(&c, dtype);
  test_kv_layout(&c);
  /* The rounded history in an f32 cache: decoding is exact, so attention
   * over c's cache must give these bits. */
  uint8_t *rounded = fill_cache(&c, LLMC_KV_F32, c.kr, c.vr);
  static const int all[A_SEQS] = {0, 1, 2};
  static const struct {
    float softcap;
    int window;
  } variants[] = {{0, 0}, {0, 3}, {5.0f, 0}, {2.0f, 6}, {0, 40}};
  float scale = 1.0f / sqrtf((float)A_HD);
  for (size_t v = 0; v < sizeof variants / sizeof variants[0]; v++) {
    step_arrays a, ar;
    llmc_step_t step = make_step(&c, c.cache, dtype, all, A_SEQS, &a);
    llmc_step_t step_rounded = make_step(&c, rounded, LLMC_KV_F32, all, A_SEQS, &ar);
    int32_t T = step.batch.n_tokens;
    float *out = malloc((size_t)T * A_QD * sizeof *out);
    float *out_rounded = malloc((size_t)T * A_QD * sizeof *out_rounded);
    double *ref = malloc((size_t)T * A_QD * sizeof *ref);
    attention_ref(&c, all, A_SEQS, scale, variants[v].softcap, variants[v].window, ref);
    run_attention(&step, a.q, out, scale, variants[v].softcap, variants[v].window, 5);
    run_attention(&step_rounded, ar.q, out_rounded, scale, variants[v].softcap, variants[v].window,
                  3);
    char what[96];
    snprintf(what, sizeof what, "attention kv %d softcap %g window %d", dtype, variants[v].softcap,
             variants[v].window);
    check_close(what, out, ref, (int64_t)T * A_QD, 1e-5);
    CHECK_BITS(what, out, out_rounded, (int64_t)T * A_QD);
    /* Batch invariance: each sequence alone, as its own step with one task. */
    for (int s = 0; s < A_SEQS; s++) {
      step_arrays sa;
      llmc_step_t alone = make_step(&c, c.cache, dtype, &s, 1, &sa);
      float *out_alone = malloc((size_t)c.n_new[s] * A_QD * sizeof *out_alone);
      run_attention(&alone, sa.q, out_alone, scale, variants[v].softcap, variants[v].window, 1);
      snprintf(what, sizeof what, "attention invariance kv %d seq %d variant %zu", dtype, s, v);
      CHECK_BITS(what, out_alone, out + a.seq_start[s] * A_QD, (int64_t)c.n_new[s] * A_QD);
      free(out_alone);
    }
    free(out);
    free(out_rounded);
    free(ref);
  }
  free(rounded);
  attn_case_free(&c);
}

static void test_outputs(void) {
  enum { T = 6, C = 9, L = 3 };
  float *x = rnd_array(T * C), sel[L * C], logits[L * C];
  int32_t rows[L] = {0, 2, 5};
  double ref[L * C];
  llmc_step_t step = {0};
  step.batch.n_logits = L;
  step.batch.logit_rows = rows;
  step.batch.logits = logits;
  for (int task = 0; task < 2; task++)
    llmc_k_select_rows(&step, x, sel, C, task, 2);
  for (int l = 0; l < L; l++)
    for (int c = 0; c < C; c++)
      ref[l * C + c] = x[rows[l] * C + c];
  check_close("select_rows", sel, ref, L * C, 0);
  for (int task = 0; task < 2; task++)
    llmc_k_output(&step, sel, C, task, 2);
  CHECK_BITS("output", logits, sel, L * C);
  free(x);
}

/* ---- mixture of experts -------------------------------------------------------- */

static void moe_ref(const float *x, const float *router, const float *gate_up, const float *down,
                    double *out, int T, int D, int F, int E, int top_k, int act) {
  for (int t = 0; t < T; t++) {
    const float *xt = x + t * D;
    double p[16], max = -INFINITY, chosen_sum = 0; /* p unnormalised: renormalising cancels it */
    int chosen[16] = {0};
    for (int e = 0; e < E; e++) {
      p[e] = 0;
      for (int d = 0; d < D; d++)
        p[e] += (double)router[e * D + d] * xt[d];
      max = p[e] > max ? p[e] : max;
    }
    for (int e = 0; e < E; e++)
      p[e] = exp(p[e] - max);
    for (int k = 0; k < top_k; k++) {
      int best = -1;
      for (int e = 0; e < E; e++)
        if (!chosen[e] && (best < 0 || p[e] > p[best]))
          best = e;
      chosen[best] = 1;
      chosen_sum += p[best];
    }
    for (int d = 0; d < D; d++)
      out[t * D + d] = 0;
    for (int e = 0; e < E; e++) {
      if (!chosen[e])
        continue;
      double hidden[64];
      for (int f = 0; f < F; f++) {
        double g = 0, u = 0;
        for (int d = 0; d < D; d++) {
          g += (double)gate_up[((int64_t)e * 2 * F + f) * D + d] * xt[d];
          u += (double)gate_up[((int64_t)e * 2 * F + F + f) * D + d] * xt[d];
        }
        hidden[f] = act_ref(act, g) * u;
      }
      for (int d = 0; d < D; d++) {
        double y = 0;
        for (int f = 0; f < F; f++)
          y += (double)down[((int64_t)e * D + d) * F + f] * hidden[f];
        out[t * D + d] += y * p[e] / chosen_sum;
      }
    }
  }
}

static void test_moe(void) {
  enum { T = 5, D = 24, F = 19, E = 6 };
  float *x = rnd_array(T * D), *router = rnd_array(E * D), *gate_up = rnd_array(E * 2 * F * D);
  float *down = rnd_array(E * D * F), out[T * D], alone[D];
  for (int i = 0; i < E * D; i++)
    router[i] *= 4.0f;        /* decisive routing, far from ties in float */
  for (int d = 0; d < D; d++) /* experts 1 and 4 tie, on top for token 0 */
    router[1 * D + d] = router[4 * D + d] = 8.0f * x[d];
  double ref[T * D];
  for (int act = LLMC_ACT_SILU; act <= LLMC_ACT_GELU_TANH; act++) {
    for (int top_k = 1; top_k <= 3; top_k++) {
      moe_ref(x, router, gate_up, down, ref, T, D, F, E, top_k, act);
      for (int task = 0; task < 2; task++)
        llmc_k_moe(x, router, gate_up, down, out, T, D, F, E, top_k, act, task, 2);
      char what[48];
      snprintf(what, sizeof what, "moe act %d top_k %d", act, top_k);
      check_close(what, out, ref, T * D, 1e-5);
      for (int t = 0; t < T; t++) {
        llmc_k_moe(x + t * D, router, gate_up, down, alone, 1, D, F, E, top_k, act, 0, 1);
        CHECK_BITS("moe invariance", alone, out + t * D, D);
      }
    }
  }
  free(x);
  free(router);
  free(gate_up);
  free(down);
}

int main(void) {
  setvbuf(stdout, NULL, _IONBF, 0); /* keep reports and failures in order */
  test_expf();
  test_tanh();
  test_sincos();
  test_embed();
  test_rms_norm();
  test_matmul();
  test_elementwise();
  test_rope();
  test_attention(LLMC_KV_F32);
  test_attention(LLMC_KV_F16);
  test_attention(LLMC_KV_Q8_0);
  test_outputs();
  test_moe();
  return check_report("test_kernels");
}
