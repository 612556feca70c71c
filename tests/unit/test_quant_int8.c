/* test_quant_int8.c — the integer matmul kernels (targets/cpu/
 * kernels_int8.c, compiled natively here), their AVX512-VNNI, AVX2 and
 * AVX-VNNI builds, for q8_0, q4_0, q4_K and q6_K against a scalar version of the
 * arithmetic kernels_int8.h specifies, bit for bit; that version against the f32 matmul over the dequantized
 * weights, within the activations' quantization error; the activation
 * quantizers against ggml's reference quantizers (llmc_q8_0_quantize,
 * llmc_q8_K_quantize); and llmc_quant_group_rows's layout and errors.
 * Each build is checked where this CPU can run it; with neither, the test
 * is skipped (exit 77). */
#include <stdlib.h>

#include "check.h"
#include "formats/quant.h"
#include "kernels.h"
#include "kernels_int8.h"
#include "llmc/numerics.h"

enum { SKIPPED = 77 };

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static float gauss(void) { /* sum of 4 uniforms, about N(0, 1/3) */
  float s = 0;
  for (int i = 0; i < 4; i++) {
    rng_state ^= rng_state << 13, rng_state ^= rng_state >> 7, rng_state ^= rng_state << 17;
    s += (float)(rng_state >> 40) / (float)(1 << 24) - 0.5f;
  }
  return s;
}

/* The code of status s, which is freed. */
static llmc_status_code_t code_of(llmc_status_t s) {
  llmc_status_code_t c = llmc_status_code(s);
  llmc_status_free(s);
  return c;
}

static void *alloc64(size_t n) { return aligned_alloc(64, (n + 63) / 64 * 64); }

static bool is_k(llmc_ggml_type_t type) { return type == LLMC_GGML_Q4_K || type == LLMC_GGML_Q6_K; }

static float f16_at(const uint8_t *p) {
  uint16_t h;
  memcpy(&h, p, 2);
  return llmc_f16_to_f32(h);
}

/* q4_K sub-block j's six-bit scale (min = 0) or min (min = 1), from the
 * 12 packed bytes q, as ggml's get_scale_min_k4. */
static int q4_k_factor(const uint8_t *q, int j, int min) {
  if (j < 4) return q[j + 4 * min] & 63;
  return min ? (q[j + 4] >> 4) | (q[j] >> 6) << 4 : (q[j + 4] & 0x0f) | (q[j - 4] >> 6) << 4;
}

/* The level of element e of a ggml-layout block (offsets removed: q4_0
 * minus 8, q6_K minus 32; q4_K's nibble as it is). */
static int level_at(llmc_ggml_type_t type, const uint8_t *blk, int e) {
  switch (type) {
  case LLMC_GGML_Q8_0: return (int8_t)blk[2 + e];
  case LLMC_GGML_Q4_0: return (e < 16 ? blk[2 + e] & 0x0f : blk[2 + e - 16] >> 4) - 8;
  case LLMC_GGML_Q4_K: {
    uint8_t q = blk[16 + 32 * (e / 64) + e % 32];
    return e % 64 < 32 ? q & 0x0f : q >> 4;
  }
  default: { /* q6_K: ql and qh as ggml's dequantize_row_q6_K reads them */
    int half = e / 128, run = e % 128 / 32, l = e % 32;
    int low = blk[64 * half + 32 * (run & 1) + l] >> 4 * (run >> 1) & 0x0f;
    int top = blk[128 + 32 * half + l] >> 2 * run & 3;
    return (low | top << 4) - 32;
  }
  }
}

/* x_t · w_j as kernels_int8.h defines it, from ggml-layout weight row w
 * and token row x (quantized here by llmc_q8_0_quantize or
 * llmc_q8_K_quantize). */
static float dot_ref(llmc_ggml_type_t type, const uint8_t *w, const float *x, int64_t K) {
  const int be = is_k(type) ? 256 : 32;
  const int64_t bb = llmc_quant_block_bytes(type);
  float acc = 0;
  for (int64_t b = 0; b < K / be; b++) {
    const uint8_t *blk = w + b * bb;
    int8_t q[256];
    float dx = is_k(type) ? llmc_q8_K_quantize(x + b * be, q) : llmc_f16_to_f32(llmc_q8_0_quantize(x + b * be, q));
    int32_t isum = 0, msum = 0;
    for (int e = 0; e < be; e++) {
      int factor = type == LLMC_GGML_Q4_K   ? q4_k_factor(blk + 4, e / 32, 0)
                   : type == LLMC_GGML_Q6_K ? (int8_t)blk[192 + e / 16]
                                            : 1;
      isum += factor * level_at(type, blk, e) * q[e];
      if (type == LLMC_GGML_Q4_K) msum += q4_k_factor(blk + 4, e / 32, 1) * q[e];
    }
    float dw = f16_at(blk + (type == LLMC_GGML_Q6_K ? 208 : 0));
    acc = fmaf((float)isum, dw * dx, acc);
    if (type == LLMC_GGML_Q4_K) acc = fmaf(-(float)msum, f16_at(blk + 2) * dx, acc);
  }
  return acc;
}

/* Random weights [rows, K] of type in ggml's layout, and as f32. */
static uint8_t *random_rows(llmc_ggml_type_t type, int64_t rows, int64_t K, float *f32) {
  int64_t rb = llmc_quant_row_bytes(type, K);
  uint8_t *w = malloc((size_t)(rows * rb));
  float *row = malloc((size_t)K * sizeof *row);
  for (int64_t r = 0; r < rows; r++) {
    for (int64_t k = 0; k < K; k++) row[k] = gauss() * (1 + (float)(r % 5));
    CHECK(llmc_quant_quantize_row(type, row, w + r * rb, K) == LLMC_OK);
    CHECK(llmc_quant_dequantize_row(type, w + r * rb, f32 + r * K, K) == LLMC_OK);
  }
  free(row);
  return w;
}

static void test_quantize_activations_q8_K(void) {
  enum { T = 3, K = 512 };
  float x[T * K];
  for (int i = 0; i < T * K; i++) x[i] = gauss() * (float)(i % 5);
  for (int k = 256; k < K; k++) x[k] = 0; /* an all-zero block: scale 0 */
  x[2 * K + 7] = -40; /* the largest magnitude negative: scale negative */
  int64_t stride = llmc_act_q8_K_row_bytes(K);
  uint8_t *xq = alloc64((size_t)(T * stride));
  for (int task = 0; task < 2; task++) llmc_k_quantize_act_q8_K(x, xq, T, K, task, 2);
  for (int t = 0; t < T; t++)
    for (int b = 0; b < K / 256; b++) {
      int8_t q[256];
      float d = llmc_q8_K_quantize(x + t * K + b * 256, q), got_d;
      const uint8_t *row = xq + t * stride;
      memcpy(&got_d, row + K + 4 * b, 4);
      CHECK(memcmp(row + b * 256, q, 256) == 0);
      CHECK_EQ_NUM(got_d, d);
      for (int s = 0; s < 16; s++) {
        int32_t got_sum, sum = 0;
        memcpy(&got_sum, row + K + 4 * (K / 256) + 4 * (16 * b + s), 4);
        for (int e = 0; e < 16; e++) sum += q[16 * s + e];
        CHECK_EQ_INT(got_sum, sum);
      }
    }
  float d;
  memcpy(&d, xq + 2 * stride + K, 4);
  CHECK_MSG(d > 0.31f && d < 0.32f, "scale of a block whose extreme is -40: %g, want 40/127", d);
  free(xq);
}

static void test_quantize_activations(void) {
  enum { T = 5, K = 96 };
  float x[T * K];
  for (int i = 0; i < T * K; i++) x[i] = gauss() * (float)(i % 7);
  for (int k = 0; k < K; k++) x[2 * K + k] = 0; /* an all-zero row: scale 0 */
  x[K + 3] = 1e6f;
  int64_t stride = llmc_act_q8_row_bytes(K);
  uint8_t *xq = alloc64((size_t)(T * stride));
  for (int task = 0; task < 3; task++) llmc_k_quantize_act_q8(x, xq, T, K, task, 3);
  for (int t = 0; t < T; t++)
    for (int b = 0; b < K / 32; b++) {
      int8_t q[32];
      float d = llmc_f16_to_f32(llmc_q8_0_quantize(x + t * K + b * 32, q));
      const uint8_t *row = xq + t * stride;
      float got_d;
      int32_t got_sum, sum = 0;
      memcpy(&got_d, row + K + 4 * b, 4);
      memcpy(&got_sum, row + K + 4 * (K / 32) + 4 * b, 4);
      for (int e = 0; e < 32; e++) sum += q[e];
      CHECK(memcmp(row + b * 32, q, 32) == 0);
      CHECK_EQ_NUM(got_d, d);
      CHECK_EQ_INT(got_sum, sum);
    }
  free(xq);
}

static void test_group_rows(void) {
  enum { N = 32, K = 64 };
  float f[N * K];
  uint8_t *w8 = random_rows(LLMC_GGML_Q8_0, N, K, f), *w4 = random_rows(LLMC_GGML_Q4_0, N, K, f);
  uint8_t g8[N * K / 32 * 34], g4[N * K / 32 * 18];
  CHECK(llmc_quant_group_rows(LLMC_GGML_Q8_0, w8, g8, N, K) == LLMC_OK);
  CHECK(llmc_quant_group_rows(LLMC_GGML_Q4_0, w4, g4, N, K) == LLMC_OK);
  /* Row 21 (group 1, lane 5), block 1: its scale, and column 32 + 4*2 + 1
   * (quad 2, byte 1); for q4_0 column 32 + 16 + 4*3 + 2 is the high nibble
   * of quad 3, byte 2. */
  const uint8_t *b8 = g8 + 1 * (K / 32) * 544 + 1 * 544, *b4 = g4 + 1 * (K / 32) * 288 + 1 * 288;
  CHECK(memcmp(b8 + 2 * 5, w8 + 21 * 68 + 34, 2) == 0);
  CHECK_EQ_INT(b8[32 + 64 * 2 + 4 * 5 + 1], level_at(LLMC_GGML_Q8_0, w8 + 21 * 68 + 34, 9) + 128);
  CHECK(memcmp(b4 + 2 * 5, w4 + 21 * 36 + 18, 2) == 0);
  CHECK_EQ_INT((b4[32 + 64 * 3 + 4 * 5 + 2] >> 4) - 8, level_at(LLMC_GGML_Q4_0, w4 + 21 * 36 + 18, 16 + 14));
  CHECK_EQ_INT(llmc_quant_grouped_bytes(LLMC_GGML_Q8_0, N, K), sizeof g8);
  CHECK_EQ_INT(llmc_quant_grouped_bytes(LLMC_GGML_Q4_K, 32, 512), 2 * 2 * 2368);
  CHECK_EQ_INT(llmc_quant_grouped_bytes(LLMC_GGML_Q6_K, 16, 256), 16 * 210);
  CHECK_EQ_INT(code_of(llmc_quant_group_rows(LLMC_GGML_Q8_0, w8, g8, 24, K)), LLMC_STATUS_INVALID_ARGUMENT);
  CHECK_EQ_INT(code_of(llmc_quant_group_rows(LLMC_GGML_F16, w8, g8, 16, 32)), LLMC_STATUS_INVALID_ARGUMENT);
  CHECK_EQ_INT(code_of(llmc_quant_group_rows(LLMC_GGML_Q8_0, w8, g8, 16, 48)), LLMC_STATUS_INVALID_ARGUMENT);
  CHECK_EQ_INT(code_of(llmc_quant_group_rows(LLMC_GGML_Q6_K, w8, g8, 16, 64)), LLMC_STATUS_INVALID_ARGUMENT);
  free(w8);
  free(w4);
}

typedef void matmul_r16_fn(const void *xq, const void *w, const float *bias, const float *residual, float *out,
                           int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task, int32_t n_tasks);

/* Every bit of the kernel's output against dot_ref, for token counts that
 * exercise both the 4-token blocks and single tokens, and task splits that
 * cut tiles; the reference against the f32 matmul on dequantized weights. */
static const char *isa_name = ""; /* the build test_matmul is checking */

static void test_matmul(matmul_r16_fn *const *kernels, llmc_ggml_type_t type, int64_t K, int64_t N, int32_t glu, bool bias_residual) {
  static const int32_t token_counts[] = {1, 3, 4, 9};
  int64_t rows = glu ? 2 * N : N, rb = llmc_quant_row_bytes(type, K);
  float *wf = malloc((size_t)(rows * K) * sizeof *wf);
  uint8_t *w = random_rows(type, rows, K, wf), *grouped = alloc64((size_t)llmc_quant_grouped_bytes(type, rows, K));
  CHECK(llmc_quant_group_rows(type, w, grouped, rows, K) == LLMC_OK);
  enum { T_MAX = 9 };
  float *x = malloc(sizeof(float) * T_MAX * K), *bias = malloc(sizeof(float) * N);
  float *res = malloc(sizeof(float) * T_MAX * N), *want = malloc(sizeof(float) * T_MAX * N);
  float *out = malloc(sizeof(float) * T_MAX * N), *f32_out = malloc(sizeof(float) * T_MAX * N);
  for (int64_t i = 0; i < T_MAX * K; i++) x[i] = gauss();
  for (int64_t i = 0; i < N; i++) bias[i] = gauss();
  for (int64_t i = 0; i < T_MAX * N; i++) res[i] = gauss();
  const float *b = bias_residual ? bias : NULL, *r = bias_residual ? res : NULL;
  for (int t = 0; t < T_MAX; t++) { /* want [T_MAX, N] */
    float gate[256], up[256];
    for (int64_t j = 0; j < N; j++) {
      gate[j] = dot_ref(type, w + j * rb, x + t * K, K);
      if (glu) up[j] = dot_ref(type, w + (N + j) * rb, x + t * K, K);
      else want[t * N + j] = gate[j] + (b ? b[j] : 0) + (r ? r[t * N + j] : 0);
    }
    if (glu) llmc_k_glu(gate, up, want + t * N, N, glu, 0, 1);
  }
  llmc_k_matmul(x, wf, b, r, f32_out, T_MAX, (int32_t)K, (int32_t)N, glu, 0, 1);
  double err = 0, norm = 0;
  for (int64_t i = 0; i < T_MAX * N; i++) {
    err += (want[i] - f32_out[i]) * (double)(want[i] - f32_out[i]);
    norm += f32_out[i] * (double)f32_out[i];
  }
  /* 8-bit activations: rounding to steps of max|x| / 127 adds noise of
   * variance step^2 / 12, relative to these inputs' variance of 1/3 about
   * 2.2e-5 with a scale per 32 values (q8_0) and 4e-5 per 256 (q8_K),
   * which a dot product keeps; glu multiplies two noisy dot products
   * through the activation's slope, up to about 4x that. Measured: 2.2e-5
   * to 4.4e-5, and 5.8e-5 to 1.5e-4 under glu. */
  double bound = (is_k(type) ? 1e-4 : 5e-5) * (glu ? 4 : 1);
  CHECK_MSG(err <= bound * norm, "reference vs f32 matmul: relative squared error %g", err / norm);
  uint8_t *xq = alloc64((size_t)(T_MAX * (is_k(type) ? llmc_act_q8_K_row_bytes(K) : llmc_act_q8_row_bytes(K))));
  int t = type == LLMC_GGML_Q8_0 ? 0 : type == LLMC_GGML_Q4_0 ? 1 : type == LLMC_GGML_Q4_K ? 2 : 3;
  matmul_r16_fn *kernel = kernels[t];
  for (size_t c = 0; c < sizeof token_counts / sizeof *token_counts; c++) {
    int32_t T = token_counts[c];
    (is_k(type) ? llmc_k_quantize_act_q8_K : llmc_k_quantize_act_q8)(x, xq, T, (int32_t)K, 0, 1);
    for (int32_t n_tasks = 1; n_tasks <= 3; n_tasks += 2) {
      memset(out, 0xff, sizeof(float) * T * N);
      for (int32_t task = 0; task < n_tasks; task++)
        kernel(xq, grouped, b, r, out, T, (int32_t)K, (int32_t)N, glu, task, n_tasks);
      int bad = 0;
      for (int64_t i = 0; i < T * N; i++) bad += memcmp(&out[i], &want[i], 4) != 0;
      CHECK_MSG(bad == 0, "%s: type %d K %lld N %lld glu %d T %d tasks %d: %d of %lld outputs differ", isa_name,
                (int)type, (long long)K, (long long)N, glu, T, n_tasks, bad, (long long)(T * N));
    }
  }
  free(wf), free(w), free(grouped), free(x), free(bias), free(res), free(want), free(out), free(f32_out);
  free(xq);
}

/* Every type and shape through one build's four kernels [q8_0, q4_0,
 * q4_K, q6_K]. */
static void test_build(const char *name, matmul_r16_fn *const *kernels) {
  isa_name = name;
  static const llmc_ggml_type_t types[] = {LLMC_GGML_Q8_0, LLMC_GGML_Q4_0, LLMC_GGML_Q4_K, LLMC_GGML_Q6_K};
  for (int i = 0; i < 4; i++) {
    int64_t k = is_k(types[i]) ? 256 : 32; /* the block */
    test_matmul(kernels, types[i], 2 * k, 16, LLMC_ACT_NONE, false);
    test_matmul(kernels, types[i], 3 * k, 80, LLMC_ACT_NONE, true); /* 5 groups: tiles and task splits cut unevenly */
    test_matmul(kernels, types[i], 256, 48, LLMC_ACT_SILU, false);  /* gate/up pairs */
    test_matmul(kernels, types[i], 4 * k, 32, LLMC_ACT_GELU_TANH, false);
  }
}

int main(void) {
  static matmul_r16_fn *const vnni[] = {llmc_k_matmul_q8_0_r16_vnni, llmc_k_matmul_q4_0_r16_vnni,
                                        llmc_k_matmul_q4_K_r16_vnni, llmc_k_matmul_q6_K_r16_vnni};
  static matmul_r16_fn *const avx2[] = {llmc_k_matmul_q8_0_r16_avx2, llmc_k_matmul_q4_0_r16_avx2,
                                        llmc_k_matmul_q4_K_r16_avx2, llmc_k_matmul_q6_K_r16_avx2};
  static matmul_r16_fn *const avxvnni[] = {llmc_k_matmul_q8_0_r16_avxvnni, llmc_k_matmul_q4_0_r16_avxvnni,
                                           llmc_k_matmul_q4_K_r16_avxvnni, llmc_k_matmul_q6_K_r16_avxvnni};
  test_group_rows();
  test_quantize_activations();
  test_quantize_activations_q8_K();
  bool has_vnni = __builtin_cpu_supports("avx512vnni"), has_avx2 = __builtin_cpu_supports("avx2") &&
                                                                    __builtin_cpu_supports("fma") &&
                                                                    __builtin_cpu_supports("f16c");
  if (has_vnni) test_build("vnni", vnni);
  else fprintf(stderr, "test_quant_int8: this CPU has no AVX512-VNNI; the VNNI build is not checked\n");
  if (has_avx2) test_build("avx2", avx2);
  else fprintf(stderr, "test_quant_int8: this CPU has no AVX2; the AVX2 build is not checked\n");
  if (has_avx2 && __builtin_cpu_supports("avxvnni")) test_build("avxvnni", avxvnni);
  else fprintf(stderr, "test_quant_int8: this CPU has no AVX-VNNI; the AVX-VNNI build is not checked\n");
  if (!has_vnni && !has_avx2 && !check_failures) return SKIPPED;
  return check_report("test_quant_int8");
}
