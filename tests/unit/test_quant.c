/* test_quant.c — quantized weights: the formats of runtime/formats/quant.c
 * and the kernels of targets/cpu/kernels_quant.c.
 *
 * ggml cannot be linked here, so quant.c is checked against (1) bytes
 * worked out by hand, (2) golden bytes that ggml's own reference
 * quantizers produced for fixed pseudo-random rows (a throwaway program
 * linked against ggml; the same check ran bit-exact on 22,400 rows of 14
 * distributions, see docs/quantization.md), (3) the f16 rounding rules and
 * (4) error bounds of dequantize(quantize(x)) on random rows and on the
 * real f32 tensors of tests/data/models/stories260K.gguf.
 *
 * kernels_quant.c and kernels.c are compiled natively into this program
 * (tests/CMakeLists.txt). A quantized kernel must give the very bits of
 * kernels.c's f32 kernel run on the dequantised weights (same values, same
 * order of summation), and match a double-precision reference; results
 * must not depend on T or on the task split.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/gguf.h"
#include "formats/quant.h"
#include "kernels.h"
#include "kernels_quant.h"

/* Deterministic uniform floats in [-1, 1) (the generator of test_kernels.c). */
static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static float rnd(void) {
  rng_state = rng_state * 6364136223846793005ull + 1442695040888963407ull;
  return (float)((rng_state >> 40) * (1.0 / 8388608.0) - 1.0);
}

typedef void (*matmul_fn)(const float *, const void *, const float *, const float *, float *,
                          int32_t, int32_t, int32_t, int32_t, int32_t, int32_t);
typedef void (*embed_fn)(const void *, const int32_t *, float *, int32_t, int32_t, int32_t, float,
                         int32_t, int32_t);

/* The four types, their kernels, and the largest relative RMS error
 * (error RMS / value RMS over a row) of a round trip: about 1.5x the worst
 * measured on the rows of test_round_trip and the stories260K tensors
 * (0.0062, 0.096, 0.079, 0.020). */
static const struct {
  llmc_ggml_type_t type;
  const char *name;
  matmul_fn matmul;
  embed_fn embed;
  double max_rel_rms;
} types[] = {
    {LLMC_GGML_Q8_0, "q8_0", llmc_k_matmul_q8_0, llmc_k_embed_q8_0, 0.0095},
    {LLMC_GGML_Q4_0, "q4_0", llmc_k_matmul_q4_0, llmc_k_embed_q4_0, 0.14},
    {LLMC_GGML_Q4_K, "q4_K", llmc_k_matmul_q4_K, llmc_k_embed_q4_K, 0.12},
    {LLMC_GGML_Q6_K, "q6_K", llmc_k_matmul_q6_K, llmc_k_embed_q6_K, 0.03},
};
enum { N_TYPES = sizeof types / sizeof types[0] };

/* A standard normal value (Box-Muller on rnd()). */
static float gauss(void) {
  double u = (rnd() + 1.0) / 2.0 + 1e-12, v = rnd();
  return (float)(sqrt(-2.0 * log(u)) * cos(M_PI * v));
}

/* act(x) in double for LLMC_ACT_SILU or LLMC_ACT_GELU_TANH. */
static double act_ref(int32_t act, double x) {
  if (act == LLMC_ACT_SILU)
    return x / (1.0 + exp(-x));
  return 0.5 * x * (1.0 + tanh(sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

/* ---- formats ------------------------------------------------------------------ */

static void test_sizes_and_checks(void) {
  static const int64_t elems[] = {32, 32, 256, 256}, bytes[] = {34, 18, 144, 210};
  for (int t = 0; t < N_TYPES; t++) {
    CHECK_MSG(llmc_quant_block_elems(types[t].type) == elems[t], "block elems");
    CHECK_MSG(llmc_quant_block_bytes(types[t].type) == bytes[t], "block bytes");
    CHECK_MSG(llmc_quant_row_bytes(types[t].type, 3 * elems[t]) == 3 * bytes[t], "row bytes");
    CHECK_MSG(llmc_quant_row_bytes(types[t].type, elems[t] + 1) == 0, "row bytes of a ragged row");
    CHECK_MSG(llmc_quant_check_row(types[t].type, 2 * elems[t]) == LLMC_OK,
              "a whole row is accepted");
  }
  CHECK_MSG(llmc_quant_block_elems(LLMC_GGML_F32) == 0, "f32 is not a quantized type");
  /* K not a multiple of the block: the caller (the compiler) is told why. */
  llmc_status_t s = llmc_quant_check_row(LLMC_GGML_Q4_K, 100);
  CHECK_MSG(llmc_status_code(s) == LLMC_STATUS_INVALID_ARGUMENT, "q4_K rows of 100 are refused");
  CHECK_MSG(strstr(llmc_status_message(s), "q4_K's block of 256") != NULL,
            "the message names the type and the block");
  llmc_status_free(s);
  s = llmc_quant_check_row(LLMC_GGML_F16, 64);
  CHECK_MSG(llmc_status_code(s) == LLMC_STATUS_INVALID_ARGUMENT, "f16 is refused");
  llmc_status_free(s);
  float x[64] = {0};
  uint8_t q[68];
  s = llmc_quant_quantize_row(LLMC_GGML_Q8_0, x, q, 48);
  CHECK_MSG(s != LLMC_OK, "quantizing 48 q8_0 elements is refused");
  llmc_status_free(s);
  s = llmc_quant_dequantize_row(LLMC_GGML_Q8_0, q, x, 0);
  CHECK_MSG(s != LLMC_OK, "dequantizing 0 elements is refused");
  llmc_status_free(s);
}

static void test_f16(void) {
  static const struct {
    float f;
    uint16_t h;
  } cases[] = {
      {1.0f, 0x3c00},           {-2.0f, 0xc000},         {0.0f, 0x0000},
      {-0.0f, 0x8000},          {65504.0f, 0x7bff},      {65519.996f, 0x7bff},
      {65520.0f, 0x7c00},       {1e9f, 0x7c00},          {-INFINITY, 0xfc00},
      {1.0f + 0x1p-11f, 0x3c00}, /* a tie: to even */    {1.0f + 0x3p-11f, 0x3c02},
      {1.0f + 0x1p-11f + 0x1p-20f, 0x3c01},              {0x1p-14f, 0x0400},
      {0x1p-24f, 0x0001},       {0x1p-25f, 0x0000}, /* tie between 0 and 2^-24 */
      {0x3p-26f, 0x0001},       {0x3p-25f, 0x0002}, /* tie: to even */
      {0x1.ff8p-15f, 0x03ff}, /* the largest subnormal */
      {0x1.ffcp-15f, 0x0400}, /* halfway above it: up to the smallest normal (even) */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    uint16_t h = llmc_quant_f32_to_f16(cases[i].f);
    if (h != cases[i].h) {
      fprintf(stderr, "FAIL f32_to_f16(%a) = %04x, want %04x\n", cases[i].f, h, cases[i].h);
      check_failures++;
    }
  }
  CHECK_MSG((llmc_quant_f32_to_f16(NAN) & 0x7fff) == 0x7e00, "NaN becomes the quiet NaN");
  for (uint32_t h = 0; h < 0x10000; h++) { /* every non-NaN half survives a round trip */
    if ((h & 0x7c00) == 0x7c00 && (h & 0x3ff))
      continue;
    float f = llmc_quant_f16_to_f32((uint16_t)h);
    if (llmc_quant_f32_to_f16(f) != h) {
      fprintf(stderr, "FAIL f16 %04x -> %a -> %04x\n", h, f, llmc_quant_f32_to_f16(f));
      check_failures++;
      return;
    }
  }
  CHECK_MSG(llmc_quant_f16_to_f32(0x0003) == 0x3p-24f, "f16 subnormal value");
  CHECK_MSG(llmc_quant_f16_to_f32(0xc2a0) == -3.3125f, "f16 normal value");
}

/* Rows whose bytes can be worked out by hand. */
static void test_hand_rows(void) {
  /* q8_0: amax 127 makes d = 1 (f16 0x3c00) and q = roundf(x), halves away
   * from zero: x = -8, -7.5, ..., 7 then 127. */
  float x[32];
  uint8_t want[34] = {0x00, 0x3c}, got[34];
  for (int j = 0; j < 31; j++) {
    x[j] = (float)(j - 16) * 0.5f;
    int q = j < 16 ? -((16 - j + 1) / 2) : (j - 16 + 1) / 2;
    want[2 + j] = (uint8_t)q;
  }
  x[31] = 127.0f;
  want[33] = 127;
  CHECK_MSG(llmc_quant_quantize_row(LLMC_GGML_Q8_0, x, got, 32) == LLMC_OK, "q8_0 quantize");
  CHECK_MSG(memcmp(got, want, sizeof want) == 0, "q8_0 hand row");
  float back[32];
  llmc_quant_dequantize_row(LLMC_GGML_Q8_0, got, back, 32);
  CHECK_MSG(back[1] == -8.0f && back[17] == 1.0f && back[31] == 127.0f, "q8_0 hand row back");

  /* q4_0: the first extreme value is -8, so d = -8 / -8 = 1 and the nibble
   * is x + 8: x_j = j - 8 (low nibble j), x_{16+j} = 7 - j (high nibble 15 - j). */
  for (int j = 0; j < 16; j++) {
    x[j] = (float)(j - 8);
    x[16 + j] = (float)(7 - j);
    want[2 + j] = (uint8_t)(j | (15 - j) << 4);
  }
  CHECK_MSG(llmc_quant_quantize_row(LLMC_GGML_Q4_0, x, got, 32) == LLMC_OK, "q4_0 quantize");
  CHECK_MSG(memcmp(got, want, 18) == 0, "q4_0 hand row");
  llmc_quant_dequantize_row(LLMC_GGML_Q4_0, got, back, 32);
  CHECK_BITS("q4_0 hand row back", back, x, 32);

  /* An all-zero row is all-zero bytes (q6_K's zero levels are stored as 0,
   * not as 32), but in q4_0: d = 0 / -8 is -0 (f16 0x8000) and 0 is nibble 8. */
  float zero[256] = {0};
  for (int t = 0; t < N_TYPES; t++) {
    uint8_t q[210], none[210] = {0};
    memset(q, 0xee, sizeof q);
    if (types[t].type == LLMC_GGML_Q4_0) {
      none[1] = 0x80;
      memset(none + 2, 0x88, 16);
    }
    llmc_quant_quantize_row(types[t].type, zero, q, llmc_quant_block_elems(types[t].type));
    CHECK_MSG(memcmp(q, none, (size_t)llmc_quant_block_bytes(types[t].type)) == 0, "all-zero row");
  }
}

/* Golden rows: row `variant` of n elements, as the program that made the bytes
 * below computed it (uniform; skewed and positive-heavy; small values
 * with outliers every 16). */
static void golden_row(int variant, float *x, int n) {
  rng_state = 0x9e3779b97f4a7c15ull + (uint64_t)variant;
  for (int i = 0; i < n; i++) {
    float u = rnd();
    x[i] = variant == 0   ? u
           : variant == 1 ? u * u * u * 8.0f + 0.25f
           : i % 16 == 3  ? 40.0f * u
                          : 0.01f * u;
  }
}

/* Produced by ggml's reference quantizers (quantize_row_q8_0_ref,
 * quantize_row_q4_0_ref, quantize_row_q4_K_ref, quantize_row_q6_K_ref of
 * llama.cpp commit c392e509, libggml-base built -O3 for x86-64) from
 * golden_row(variant, x, n), n = 64 for q8_0 and q4_0, 256 for the K types. */
static const struct {
  llmc_ggml_type_t type;
  int variant;
  const char *hex;
} golden[] = {
    {LLMC_GGML_Q8_0, 0,
     "761fa72e3841b2e37f88fce77bd8c92321b3185a7d7ebe0ffb60fe7f1360e72e"
     "558caa1fd5a85b2a2bb6daca28814f26551006cd0738e51cee6451671f146875"
     "97980ee0"},
    {LLMC_GGML_Q8_0, 1,
     "902b04b0140f07ff041a2fdaa9049732661a04040215041edbf903fb7f04fb68"
     "2209c52b81040de1193639041f06053c420652020404a948c24df9b00400e404"
     "02560407"},
    {LLMC_GGML_Q8_0, 2,
     "04300000007f0000000000000000000000000000001c00000000000000000000"
     "00001c3200000054000000000000000000000000000000810000000000000000"
     "00000000"},
    {LLMC_GGML_Q4_0, 0,
     "67af7e250504cd7a802f880a702bab5636fd9b2f85c26eab7be3d6f5ab90fdfa"
     "1d199865"},
    {LLMC_GGML_Q4_0, 1,
     "81bb888d87778868a886858a0e888f156276b53b808839d64adb8c388a88688c"
     "8cd88d88"},
    {LLMC_GGML_Q4_0, 2,
     "f9bf8888886088888888888888888888888810428888880d8888888888888888"
     "88888888"},
    {LLMC_GGML_Q4_K, 0,
     "4d180024f9f9fdfff9fafdffd9cc9ffd522adbaba3365f40a706dfa5d49a8943"
     "89bd6f9f63e8d7eda79fe9fd161a8d60a7bd125aa75bf13f980d0759a4d04e6c"
     "6ba9bc0f537b3eb4a8e094becf2d75ba4b45b81e784b51d2c09c888474bfff98"
     "5b005b5fb502c7c3029168d0ae3cb20768cbf70a47a67a815592dd214679de8a"
     "bbc8a162a703a45021cb75801611f419"},
    {LLMC_GGML_Q4_K, 1,
     "fd23ee2ffbf7f9feb2befff6f6e789df0792a878b7d7d798ba9491d7e09afd98"
     "979737e857e9843697967f9796fd9997457a7ba979786c107a897d7984de8942"
     "8b0f89f9777948897679798c7f6979787cbf79757727977087962877477187c7"
     "477e7b78f7578f47b876787767046c67d58869a8897c78f78888e07380988a08"
     "8849eaf488f3788798a67489b9a88f39"},
    {LLMC_GGML_Q4_K, 2,
     "7f2deb380d9fd02900e7e11112f3ef09909090fe909090909090909090909090"
     "909090039090909090909090909090903f3f3f003f3f3f3f3f3f3f3f3f3f3f3f"
     "3f3f3fe13f3f3f3f3f3f3f3f3f3f3f3fd4d4d40ad4d4d4d4d4d4d4d4d4d4d4d4"
     "d4d4d4e0d4d4d4d4d4d4d4d4d4d4d4d4070707ee070707070707070707070707"
     "07070740070707070707070707070707"},
    {LLMC_GGML_Q6_K, 0,
     "068582603327c11dd186228aedd748e32a9ae111102c31f8f1f1fb5806959b3d"
     "751aa7ab5b8d16229af0d4ba56a4e2738eb1f71945e5dae4a8db64e13c7c0c09"
     "9dd5f14be11d2287803f518e3f6e1e422b636bba34073d1c58167f01d97059bb"
     "ae30c21bf0bdea074b795c8c02e27029c61096a58e119242a125cb276a3fed52"
     "6741fd996b9234c75ac2ec9a6e398987559488047b5102a096f4a180ce0da4db"
     "5acdd61f1aaa58b060b6c6346857c396b6e08647a9109d4c00f8558c1b03d821"
     "898a76918485807d727b8a7c84767e7d1a0c"},
    {LLMC_GGML_Q6_K, 1,
     "31586615f2e0d1083e14f511f03f0f684f3fe0eb8fe929f2ffd1f02f01f6f84e"
     "f111f308363dce013841311f50f16400d192b11aea0ccdc312e0f6d2f13ff123"
     "4b1047073f021fdb0f051def0f369f11fec3701dff31f03ffc73fccfcffc0dce"
     "def76e6e0017331ef9f5893fed9ff8f0f9ff6f1f10082adcb07e1fff225ad232"
     "12a86ae69a9a6a0aaaa9a8aa8cfaaf4a59c9521d619da652a95a54594a9c59a9"
     "1460a566a9bea51765660d85496765e259941535913a94695566a555595e48d9"
     "5f8d795276a45980949bb4936d9885903018"},
    {LLMC_GGML_Q6_K, 2,
     "0000000000000000000000000000000000000001000000000000000000000000"
     "0000000100000000000000000000000000000000000000000000000000000000"
     "0000001100000000000000000000000000000002000000000000000000000000"
     "0000000000000000000000000000000000000000000000000000000000000000"
     "aaaaaa00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00aaaaaaaaaaaaaaaaaaaaaaaa"
     "aaaaaa00aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa00aaaaaaaaaaaaaaaaaaaaaaaa"
     "cbf4ca50433f2781fc037ff2807edbf7d920"},
};

static void test_golden(void) {
  for (size_t i = 0; i < sizeof golden / sizeof golden[0]; i++) {
    llmc_ggml_type_t type = golden[i].type;
    int n = llmc_quant_block_elems(type) == 32 ? 64 : 256;
    int64_t bytes = llmc_quant_row_bytes(type, n);
    float x[256];
    uint8_t got[256], want[256];
    golden_row(golden[i].variant, x, n);
    CHECK_MSG((int64_t)strlen(golden[i].hex) == 2 * bytes, "golden hex length");
    for (int64_t b = 0; b < bytes; b++)
      sscanf(golden[i].hex + 2 * b, "%2hhx", &want[b]);
    llmc_quant_quantize_row(type, x, got, n);
    for (int64_t b = 0; b < bytes; b++) {
      if (got[b] != want[b]) {
        fprintf(stderr, "FAIL golden %s row %d: byte %lld is %02x, ggml wrote %02x\n",
                llmc_ggml_type_name(type), golden[i].variant, (long long)b, got[b], want[b]);
        check_failures++;
        break;
      }
    }
  }
}

/* RMS of (x - dequantize(quantize(x))) over RMS of x, for n values. */
static double round_trip_rel_rms(llmc_ggml_type_t type, const float *x, int64_t n) {
  uint8_t *q = malloc((size_t)llmc_quant_row_bytes(type, n));
  float *y = malloc((size_t)n * sizeof *y);
  llmc_quant_quantize_row(type, x, q, n);
  llmc_quant_dequantize_row(type, q, y, n);
  double err = 0, sum = 0;
  for (int64_t i = 0; i < n; i++) {
    err += ((double)x[i] - y[i]) * ((double)x[i] - y[i]);
    sum += (double)x[i] * x[i];
  }
  free(q);
  free(y);
  return sum > 0 ? sqrt(err / sum) : sqrt(err);
}

/* Round trips of random rows: q8_0 and q4_0 within their hard per-element
 * bounds (half a step, or a whole step at q4_0's clamped end, plus up to
 * 127 or 8 times the f16 rounding error of d: half an ulp, relative 2^-11,
 * or absolute 2^-25 for a subnormal d), every type within its RMS bound. */
static void test_round_trip(void) {
  enum { N = 4096 };
  float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
  uint8_t *q = malloc(N * 2);
  for (int dist = 0; dist < 3; dist++) { /* gaussian, gaussian * 1e-3, negative-only */
    for (int i = 0; i < N; i++) {
      float g = gauss();
      x[i] = dist == 0 ? g : dist == 1 ? g * 1e-3f : -fabsf(g);
    }
    for (int t = 0; t < N_TYPES; t++) {
      llmc_ggml_type_t type = types[t].type;
      llmc_quant_quantize_row(type, x, q, N);
      llmc_quant_dequantize_row(type, q, y, N);
      if (type == LLMC_GGML_Q8_0 || type == LLMC_GGML_Q4_0) {
        for (int b = 0; b < N; b += 32) {
          float amax = 0;
          for (int j = 0; j < 32; j++)
            amax = fmaxf(amax, fabsf(x[b + j]));
          double d = type == LLMC_GGML_Q8_0 ? amax / 127.0 : amax / 8.0;
          double d_err = fmax(d * 0x1p-11, 0x1p-25);
          double bound = 1.0001 * (type == LLMC_GGML_Q8_0 ? 0.5 * d + 127 * d_err : d + 8 * d_err);
          for (int j = 0; j < 32; j++) {
            if (fabs((double)x[b + j] - y[b + j]) > bound) {
              fprintf(stderr, "FAIL %s round trip [%d]: %g -> %g, bound %g\n", types[t].name, b + j,
                      x[b + j], y[b + j], bound);
              check_failures++;
              b = N;
              break;
            }
          }
        }
      }
      double rel = round_trip_rel_rms(type, x, N);
      printf("%s round trip, distribution %d: relative RMS error %.4f\n", types[t].name, dist, rel);
      CHECK_MSG(rel <= types[t].max_rel_rms, "round-trip RMS error");
    }
  }
  free(x);
  free(y);
  free(q);
}

/* Round trips of the real f32 tensors of stories260K, each taken as one run
 * of elements (its rows of 64 or 172 are not whole K blocks). */
static void test_real_tensors(void) {
  llmc_gguf_t *g;
  llmc_status_t s = llmc_gguf_open("tests/data/models/stories260K.gguf", &g);
  if (s) {
    fprintf(stderr, "FAIL opening stories260K: %s\n", llmc_status_message(s));
    llmc_status_free(s);
    check_failures++;
    return;
  }
  int used = 0;
  double worst[N_TYPES] = {0};
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    const llmc_gguf_tensor_t *t = &g->tensors[i];
    int64_t n = (int64_t)(t->nbytes / 4) / 256 * 256;
    const uint8_t *data;
    if (t->type != LLMC_GGML_F32 || n == 0 || llmc_gguf_tensor_data(g, t, &data))
      continue;
    float *x = malloc((size_t)n * sizeof *x);
    memcpy(x, data, (size_t)n * sizeof *x);
    for (int k = 0; k < N_TYPES; k++) {
      double rel = round_trip_rel_rms(types[k].type, x, n);
      worst[k] = rel > worst[k] ? rel : worst[k];
    }
    free(x);
    used++;
  }
  llmc_gguf_close(g);
  printf("stories260K: %d f32 tensors; worst relative RMS error q8_0 %.4f q4_0 %.4f q4_K %.4f "
         "q6_K %.4f\n", used, worst[0], worst[1], worst[2], worst[3]);
  CHECK_MSG(used > 10, "stories260K has f32 tensors");
  for (int k = 0; k < N_TYPES; k++)
    CHECK_MSG(worst[k] <= types[k].max_rel_rms, "stories260K round-trip RMS error");
}

/* ---- kernels -------------------------------------------------------------------- */

/* n rows of K random Gaussian values, quantized to `type` (returned) and
 * dequantised into *out_f32 [n, K]. */
static uint8_t *random_weights(llmc_ggml_type_t type, int64_t n, int64_t K, float **out_f32) {
  int64_t rb = llmc_quant_row_bytes(type, K);
  uint8_t *q = malloc((size_t)(n * rb));
  float *row = malloc((size_t)K * sizeof *row), *f = malloc((size_t)(n * K) * sizeof *f);
  for (int64_t r = 0; r < n; r++) {
    for (int64_t k = 0; k < K; k++)
      row[k] = gauss() * 0.1f;
    llmc_quant_quantize_row(type, row, q + r * rb, K);
    llmc_quant_dequantize_row(type, q + r * rb, f + r * K, K);
  }
  free(row);
  *out_f32 = f;
  return q;
}

static float *rnd_array(int64_t n) {
  float *a = malloc((size_t)n * sizeof *a);
  for (int64_t i = 0; i < n; i++)
    a[i] = rnd();
  return a;
}

/* For each type and shape, every epilogue: the quantized kernel against
 * kernels.c's llmc_k_matmul on the dequantised weights (bit for bit) and
 * against a double reference; T = 7 against T = 1 row by row; 3 tasks
 * against 1. */
static void test_matmul(void) {
  static const int32_t shapes[][2] = {{256, 37}, {512, 40}, {768, 5}}; /* K, N */
  enum { T = 7 };
  for (int t = 0; t < N_TYPES; t++) {
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int32_t K = shapes[s][0], N = shapes[s][1];
      for (int mode = 0; mode < 4; mode++) { /* plain, bias + residual, glu silu, glu gelu */
        int32_t glu = mode == 2 ? LLMC_ACT_SILU : mode == 3 ? LLMC_ACT_GELU_TANH : LLMC_ACT_NONE;
        int64_t rows = glu ? 2 * N : N;
        float *wf, *x = rnd_array((int64_t)T * K), *bias = mode == 1 ? rnd_array(N) : NULL;
        float *res = mode == 1 ? rnd_array((int64_t)T * N) : NULL;
        uint8_t *wq = random_weights(types[t].type, rows, K, &wf);
        float *want = malloc((size_t)T * N * sizeof *want);
        float *got = malloc((size_t)T * N * sizeof *got);
        char what[96];
        llmc_k_matmul(x, wf, bias, res, want, T, K, N, glu, 0, 1);
        for (int task = 0; task < 3; task++)
          types[t].matmul(x, wq, bias, res, got, T, K, N, glu, task, 3);
        snprintf(what, sizeof what, "%s matmul K=%d N=%d mode %d vs f32 kernel", types[t].name, K,
                 N, mode);
        CHECK_BITS(what, got, want, (int64_t)T * N);
        double worst = 0; /* against double precision, relative to sum |x w| */
        for (int64_t r = 0; r < T; r++) {
          for (int64_t j = 0; j < N; j++) {
            double dot[2] = {0, 0}, mag = 0;
            for (int h = 0; h < (glu ? 2 : 1); h++)
              for (int64_t k = 0; k < K; k++) {
                dot[h] += (double)x[r * K + k] * wf[(h * N + j) * K + k];
                mag += fabs((double)x[r * K + k] * wf[(h * N + j) * K + k]);
              }
            double ref = glu ? act_ref(glu, dot[0]) * dot[1] : dot[0];
            if (mode == 1)
              ref += bias[j] + res[r * N + j];
            double err = fabs(got[r * N + j] - ref) / (mag * (glu ? 1 + fabs(dot[1]) : 1) + 1e-30);
            worst = err > worst ? err : worst;
          }
        }
        snprintf(what, sizeof what, "%s matmul K=%d N=%d mode %d vs double (%.2g)", types[t].name,
                 K, N, mode, worst);
        CHECK_MSG(worst < 1e-5, "%s", what);
        float *one = malloc((size_t)N * sizeof *one); /* T = 1, row by row */
        for (int r = 0; r < T; r++) {
          types[t].matmul(x + r * K, wq, bias, res ? res + r * N : NULL, one, 1, K, N, glu, 0, 1);
          snprintf(what, sizeof what, "%s matmul K=%d mode %d: T=1 row %d vs T=7", types[t].name,
                   K, mode, r);
          CHECK_BITS(what, one, got + r * N, N);
        }
        if (mode == 1) { /* the residual may be the output */
          memcpy(one, res, (size_t)N * sizeof *one);
          types[t].matmul(x, wq, bias, one, one, 1, K, N, glu, 0, 1);
          CHECK_BITS("matmul with residual = out", one, got, N);
        }
        free(one);
        free(x);
        free(bias);
        free(res);
        free(wq);
        free(wf);
        free(want);
        free(got);
      }
    }
  }
}

static void test_embed(void) {
  enum { V = 9, D = 512, T = 6 };
  int32_t tokens[T] = {3, -1, 8, 9, 0, 3};
  for (int t = 0; t < N_TYPES; t++) {
    float *tf, want[T * D], got[T * D];
    uint8_t *tq = random_weights(types[t].type, V, D, &tf);
    llmc_k_embed(tf, tokens, want, T, D, V, 1.5f, 0, 1);
    for (int task = 0; task < 4; task++)
      types[t].embed(tq, tokens, got, T, D, V, 1.5f, task, 4);
    char what[64];
    snprintf(what, sizeof what, "%s embed vs f32 embed", types[t].name);
    CHECK_BITS(what, got, want, T * D);
    free(tq);
    free(tf);
  }
}

/* ---- f16 and bf16 kernels ------------------------------------------------------ */

/* A half's f32 value: f16 by the runtime's decoder, bf16 as the top of an
 * f32. The kernels must agree with these bit for bit. */
static float half_to_f32(int bf16, uint16_t h) {
  if (!bf16)
    return llmc_quant_f16_to_f32(h);
  uint32_t bits = (uint32_t)h << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* n random Gaussian halves (f16 rounded, bf16 truncated), with every 13th a
 * small (f16 subnormal) value and every 29th a zero, decoded into f[n]. */
static uint16_t *random_halves(int bf16, int64_t n, float *f) {
  uint16_t *h = malloc((size_t)n * sizeof *h);
  for (int64_t i = 0; i < n; i++) {
    float v = gauss() * 0.1f;
    if (i % 13 == 0)
      v *= 0x1p-16f;
    if (i % 29 == 0)
      v = i % 2 ? -0.0f : 0.0f;
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    h[i] = bf16 ? (uint16_t)(bits >> 16) : llmc_quant_f32_to_f16(v);
    f[i] = half_to_f32(bf16, h[i]);
  }
  return h;
}

/* For f16 and bf16: every half value through the embedding; matmuls of
 * each epilogue against llmc_k_matmul on the decoded weights, bit for bit,
 * with 3 tasks against 1, and T = 1 row by row against T = 7. */
static void test_half_kernels(void) {
  static const int32_t shapes[][2] = {{16, 5}, {64, 37}, {272, 40}}; /* K, N */
  enum { T = 7, V = 4096, D = 16 };
  for (int bf16 = 0; bf16 < 2; bf16++) {
    const char *name = bf16 ? "bf16" : "f16";
    void (*matmul)(const float *, const void *, const float *, const float *, float *, int32_t,
                   int32_t, int32_t, int32_t, int32_t, int32_t) =
        bf16 ? llmc_k_matmul_bf16 : llmc_k_matmul_f16;
    void (*embed)(const void *, const int32_t *, float *, int32_t, int32_t, int32_t, float,
                  int32_t, int32_t) = bf16 ? llmc_k_embed_bf16 : llmc_k_embed_f16;
    char what[96];
    /* Every one of the 65536 halves, row r holding r * 16 ... r * 16 + 15. */
    uint16_t *all = malloc(V * D * sizeof *all);
    float *all_f = malloc(V * D * sizeof *all_f), *want = malloc(V * D * sizeof *want);
    float *got = malloc(V * D * sizeof *got);
    int32_t *tokens = malloc(V * sizeof *tokens);
    for (int32_t i = 0; i < V * D; i++) {
      all[i] = (uint16_t)i;
      all_f[i] = half_to_f32(bf16, all[i]);
    }
    for (int32_t t = 0; t < V; t++)
      tokens[t] = V - 1 - t;
    tokens[5] = -1; /* unknown: zeros */
    llmc_k_embed(all_f, tokens, want, V, D, V, 1.0f, 0, 1);
    for (int task = 0; task < 3; task++)
      embed(all, tokens, got, V, D, V, 1.0f, task, 3);
    snprintf(what, sizeof what, "%s embed of every value vs f32 embed", name);
    CHECK_BITS(what, got, want, V * D);
    llmc_k_embed(all_f, tokens, want, 9, D, V, 1.5f, 0, 1);
    embed(all, tokens, got, 9, D, V, 1.5f, 0, 1);
    snprintf(what, sizeof what, "%s embed scaled vs f32 embed", name);
    CHECK_BITS(what, got, want, 9 * D);
    free(all);
    free(all_f);
    free(want);
    free(got);
    free(tokens);
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
      int32_t K = shapes[s][0], N = shapes[s][1];
      for (int mode = 0; mode < 3; mode++) { /* plain, bias + residual, glu silu */
        int32_t glu = mode == 2 ? LLMC_ACT_SILU : LLMC_ACT_NONE;
        int64_t rows = glu ? 2 * N : N;
        float *wf = malloc((size_t)(rows * K) * sizeof *wf);
        uint16_t *wh = random_halves(bf16, rows * K, wf);
        float *x = rnd_array((int64_t)T * K), *bias = mode == 1 ? rnd_array(N) : NULL;
        float *res = mode == 1 ? rnd_array((int64_t)T * N) : NULL;
        float *mwant = malloc((size_t)T * N * sizeof *mwant);
        float *mgot = malloc((size_t)T * N * sizeof *mgot), *one = malloc((size_t)N * sizeof *one);
        llmc_k_matmul(x, wf, bias, res, mwant, T, K, N, glu, 0, 1);
        for (int task = 0; task < 3; task++)
          matmul(x, wh, bias, res, mgot, T, K, N, glu, task, 3);
        snprintf(what, sizeof what, "%s matmul K=%d N=%d mode %d vs f32 kernel", name, K, N, mode);
        CHECK_BITS(what, mgot, mwant, (int64_t)T * N);
        for (int r = 0; r < T; r++) {
          matmul(x + r * K, wh, bias, res ? res + r * N : NULL, one, 1, K, N, glu, 0, 1);
          snprintf(what, sizeof what, "%s matmul K=%d mode %d: T=1 row %d vs T=7", name, K, mode, r);
          CHECK_BITS(what, one, mgot + r * N, N);
        }
        free(wf);
        free(wh);
        free(x);
        free(bias);
        free(res);
        free(mwant);
        free(mgot);
        free(one);
      }
    }
  }
}

int main(void) {
  test_sizes_and_checks();
  test_f16();
  test_hand_rows();
  test_golden();
  test_round_trip();
  test_real_tensors();
  test_matmul();
  test_embed();
  test_half_kernels();
  return check_report("test_quant");
}
