/* test_gguf.c — the GGUF reader (runtime/formats/gguf.h).
 *
 * 1. The real files in tests/data: stories260K.gguf and
 *    llama-2-tiny-random.gguf (values checked against their provenance and
 *    against offsets computed by hand from the tensor table), and every
 *    vocabulary-only GGUF of tests/data/tokenizers/llama.cpp.
 * 2. A small GGUF built here byte by byte (every metadata type, a string
 *    array, two tensors), then corrupted one field at a time: each variant
 *    must fail with a message naming what is wrong, never crash. Every
 *    prefix of it and of stories260K's header must fail too.
 * 3. Files that are not GGUF files at all, through llmc_gguf_open. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/gguf.h"

#define CHECK_STR(s, want) check_str(__LINE__, #s, (s), (want))

static void check_str(int line, const char *what, llmc_gguf_str_t s, const char *want) {
  if (s.len != strlen(want) || memcmp(s.data, want, s.len) != 0) {
    fprintf(stderr, "%s:%d: %s == \"%.*s\", expected \"%s\"\n", __FILE__, line, what, (int)s.len,
            s.data ? s.data : "", want);
    check_failures++;
  }
}

static llmc_gguf_t *open_ok(const char *path) {
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_open(path, &g);
  if (s) {
    fprintf(stderr, "%s: unexpected error: %s\n", path, llmc_status_message(s));
    llmc_status_free(s);
    check_failures++;
  }
  return g;
}

static int64_t get_int(const llmc_gguf_t *g, const char *key) {
  int64_t v = -1;
  CHECK(llmc_gguf_get_int(g, key, &v));
  return v;
}

/* ---- 1. real files ---- */

static void test_stories260k(void) {
  llmc_gguf_t *g = open_ok("tests/data/models/stories260K.gguf");
  if (!g) return;
  CHECK_EQ_INT(g->version, 3);
  CHECK_EQ_INT(g->size, 1185376);
  CHECK_EQ_INT(g->n_kv, 19);
  CHECK_EQ_INT(g->n_tensors, 48);
  CHECK_EQ_INT(g->alignment, 32);
  /* The tensor table ends at byte 14152; the data starts at the next
   * multiple of 32. */
  CHECK_EQ_INT(g->data_offset, 14176);

  llmc_gguf_str_t s;
  CHECK(llmc_gguf_get_string(g, "general.architecture", &s));
  CHECK_STR(s, "llama");
  CHECK(llmc_gguf_get_string(g, "tokenizer.ggml.model", &s));
  CHECK_STR(s, "llama");
  /* llama2.c's stories260K: dim 64, 5 layers, 8 heads, 4 KV heads,
   * hidden_dim 172, max_seq_len 512 (converted with context 2048). */
  CHECK_EQ_INT(get_int(g, "llama.context_length"), 2048);
  CHECK_EQ_INT(get_int(g, "llama.embedding_length"), 64);
  CHECK_EQ_INT(get_int(g, "llama.block_count"), 5);
  CHECK_EQ_INT(get_int(g, "llama.attention.head_count"), 8);
  CHECK_EQ_INT(get_int(g, "llama.attention.head_count_kv"), 4);
  CHECK_EQ_INT(get_int(g, "llama.feed_forward_length"), 172);
  CHECK_EQ_INT(get_int(g, "llama.rope.dimension_count"), 8);
  CHECK_EQ_INT(get_int(g, "tokenizer.ggml.bos_token_id"), 1);
  CHECK_EQ_INT(get_int(g, "tokenizer.ggml.eos_token_id"), 2);
  CHECK_EQ_INT(get_int(g, "tokenizer.ggml.padding_token_id"), 4294967295);
  double eps = 0;
  CHECK(llmc_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps));
  CHECK(eps == (double)1e-5f);

  /* Wrong-typed and absent keys. */
  int64_t i;
  double f;
  bool b;
  CHECK(!llmc_gguf_get_int(g, "general.architecture", &i));
  CHECK(!llmc_gguf_get_float(g, "llama.block_count", &f));
  CHECK(!llmc_gguf_get_string(g, "llama.block_count", &s));
  CHECK(!llmc_gguf_get_bool(g, "llama.block_count", &b));
  CHECK(!llmc_gguf_get_int(g, "no.such.key", &i));
  CHECK(!llmc_gguf_find(g, "llama"));

  const llmc_gguf_kv_t *tokens = llmc_gguf_find(g, "tokenizer.ggml.tokens");
  CHECK(tokens && tokens->type == LLMC_GGUF_ARRAY && tokens->elem_type == LLMC_GGUF_STRING);
  if (tokens) {
    CHECK_EQ_INT(tokens->n, 512);
    CHECK_STR(llmc_gguf_array_string(tokens, 0), "<unk>");
    CHECK_STR(llmc_gguf_array_string(tokens, 1), "<s>");
    CHECK_STR(llmc_gguf_array_string(tokens, 2), "</s>");
    CHECK_STR(llmc_gguf_array_string(tokens, 3), "<0x00>");
    CHECK_STR(llmc_gguf_array_string(tokens, 512), ""); /* out of range */
    CHECK_EQ_INT(llmc_gguf_array_int(tokens, 0), 0);    /* not numeric */
  }
  const llmc_gguf_kv_t *types = llmc_gguf_find(g, "tokenizer.ggml.token_type");
  CHECK(types && types->elem_type == LLMC_GGUF_INT32 && types->n == 512);
  if (types) {
    CHECK_EQ_INT(llmc_gguf_array_int(types, 0), 2); /* unknown */
    CHECK_EQ_INT(llmc_gguf_array_int(types, 1), 3); /* control */
    CHECK_EQ_INT(llmc_gguf_array_int(types, 3), 6); /* byte */
    CHECK(llmc_gguf_array_float(types, 1) == 3.0);
    CHECK_EQ_INT(llmc_gguf_array_int(types, 99999), 0);
  }
  const llmc_gguf_kv_t *scores = llmc_gguf_find(g, "tokenizer.ggml.scores");
  CHECK(scores && scores->elem_type == LLMC_GGUF_FLOAT32 && scores->n == 512);

  /* Every tensor is f32 and back to back (each size a multiple of 32). */
  uint64_t next = g->data_offset;
  for (uint64_t t = 0; t < g->n_tensors; t++) {
    const llmc_gguf_tensor_t *ti = &g->tensors[t];
    uint64_t numel = 1;
    for (uint32_t d = 0; d < ti->n_dims; d++) numel *= ti->dims[d];
    CHECK_EQ_INT(ti->type, LLMC_GGML_F32);
    CHECK_EQ_INT(ti->offset, next);
    CHECK_EQ_INT(ti->nbytes, numel * 4);
    next = ti->offset + ti->nbytes;
  }
  CHECK_EQ_INT(next, g->size);

  const llmc_gguf_tensor_t *t = llmc_gguf_find_tensor(g, "token_embd.weight");
  CHECK(t && t->n_dims == 2 && t->dims[0] == 64 && t->dims[1] == 512);
  t = llmc_gguf_find_tensor(g, "blk.0.ffn_down.weight");
  CHECK(t && t->n_dims == 2 && t->dims[0] == 172 && t->dims[1] == 64);
  CHECK(t && t->offset == 14176 + 355840); /* its relative offset in the table */
  t = llmc_gguf_find_tensor(g, "output_norm.weight");
  CHECK(t && t->n_dims == 1 && t->dims[0] == 64 && t->offset == 14176 + 131072);
  if (t) {
    /* The data pointer is the mapping at the offset; the norm weights of a
     * trained model are finite and not all zero. */
    const uint8_t *data = NULL;
    CHECK(!llmc_gguf_tensor_data(g, t, &data));
    CHECK(data == g->map + t->offset);
    float w[64];
    memcpy(w, data, sizeof w);
    int nonzero = 0;
    for (int k = 0; k < 64; k++) nonzero += isfinite(w[k]) && w[k] != 0;
    CHECK_EQ_INT(nonzero, 64);
  }
  CHECK(!llmc_gguf_find_tensor(g, "blk.5.attn_q.weight"));
  llmc_gguf_close(g);
}

static void test_tiny_random(void) {
  llmc_gguf_t *g = open_ok("tests/data/models/llama-2-tiny-random.gguf");
  if (!g) return;
  CHECK_EQ_INT(g->n_tensors, 12);
  CHECK_EQ_INT(g->n_kv, 18);
  CHECK_EQ_INT(g->data_offset, 724416); /* the table ends at 724398 */
  llmc_gguf_str_t s;
  CHECK(llmc_gguf_get_string(g, "general.name", &s));
  CHECK_STR(s, "LLaMA v2");
  CHECK_EQ_INT(get_int(g, "general.file_type"), 1); /* mostly f16 */
  CHECK_EQ_INT(get_int(g, "llama.embedding_length"), 8);
  const llmc_gguf_kv_t *tokens = llmc_gguf_find(g, "tokenizer.ggml.tokens");
  CHECK(tokens && tokens->n == 32000);
  if (tokens) {
    CHECK_STR(llmc_gguf_array_string(tokens, 29871), "\xe2\x96\x81"); /* "▁" */
    CHECK_STR(llmc_gguf_array_string(tokens, 31999), "\xe7\xbb\x99"); /* "给" */
  }
  const llmc_gguf_tensor_t *t = llmc_gguf_find_tensor(g, "token_embd.weight");
  CHECK(t && t->type == LLMC_GGML_F16 && t->dims[0] == 8 && t->dims[1] == 32000);
  CHECK(t && t->nbytes == 512000 && t->offset == 724416);
  t = llmc_gguf_find_tensor(g, "blk.0.ffn_down.weight");
  CHECK(t && t->type == LLMC_GGML_F16 && t->dims[0] == 32 && t->dims[1] == 8);
  CHECK(t && t->offset == 724416 + 513536);
  t = llmc_gguf_find_tensor(g, "blk.0.attn_norm.weight");
  CHECK(t && t->type == LLMC_GGML_F32 && t->nbytes == 32);
  llmc_gguf_close(g);
}

static void test_vocab_files(void) {
  static const struct {
    const char *file, *arch, *model;
    uint64_t n_tokens;
  } files[] = {
      {"deepseek-coder", "llama", "gpt2", 32256}, {"falcon", "falcon", "gpt2", 65024},
      {"gpt-2", "gpt2", "gpt2", 50257},           {"llama-spm", "llama", "llama", 32000},
      {"phi-3", "phi3", "llama", 32064},          {"starcoder", "starcoder2", "gpt2", 49152},
  };
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
    char path[128];
    snprintf(path, sizeof path, "tests/data/tokenizers/llama.cpp/ggml-vocab-%s.gguf", files[i].file);
    llmc_gguf_t *g = open_ok(path);
    if (!g) continue;
    llmc_gguf_str_t s = {0};
    CHECK_EQ_INT(g->n_tensors, 0);
    CHECK(llmc_gguf_get_string(g, "general.architecture", &s));
    CHECK_STR(s, files[i].arch);
    CHECK(llmc_gguf_get_string(g, "tokenizer.ggml.model", &s));
    CHECK_STR(s, files[i].model);
    const llmc_gguf_kv_t *tokens = llmc_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(tokens && tokens->n == files[i].n_tokens);
    CHECK(g->data_offset <= g->size);
    llmc_gguf_close(g);
  }
  llmc_gguf_t *g = open_ok("tests/data/tokenizers/llama.cpp/ggml-vocab-gpt-2.gguf");
  if (g) {
    const llmc_gguf_kv_t *merges = llmc_gguf_find(g, "tokenizer.ggml.merges");
    CHECK(merges && merges->n == 50000);
    if (merges) CHECK_STR(llmc_gguf_array_string(merges, 0), "\xc4\xa0 t"); /* "Ġ t" */
    llmc_gguf_close(g);
  }
  g = open_ok("tests/data/tokenizers/llama.cpp/ggml-vocab-deepseek-coder.gguf");
  if (g) {
    bool add_bos = false, add_eos = true;
    double base = 0, factor = 0;
    CHECK(llmc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos) && add_bos);
    CHECK(llmc_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos) && !add_eos);
    CHECK(llmc_gguf_get_float(g, "llama.rope.freq_base", &base) && base == 100000.0);
    CHECK(llmc_gguf_get_float(g, "llama.rope.scaling.factor", &factor) && factor == 4.0);
    llmc_gguf_close(g);
  }
  g = open_ok("tests/data/tokenizers/llama.cpp/ggml-vocab-phi-3.gguf");
  if (g) {
    llmc_gguf_str_t tmpl = {0};
    CHECK(llmc_gguf_get_string(g, "tokenizer.chat_template", &tmpl));
    CHECK(tmpl.len > 100 && memcmp(tmpl.data, "{{ bos_token }}", 15) == 0);
    llmc_gguf_close(g);
  }
}

/* ---- 2. a GGUF built here, and broken copies of it ---- */

typedef struct {
  uint8_t data[4096];
  size_t len;
} buf_t;

static size_t put(buf_t *b, uint64_t v, int n) {
  size_t at = b->len;
  for (int i = 0; i < n; i++) b->data[b->len++] = (uint8_t)(v >> (8 * i));
  return at;
}

static size_t put_str(buf_t *b, const char *s) {
  size_t at = put(b, strlen(s), 8);
  memcpy(b->data + b->len, s, strlen(s));
  b->len += strlen(s);
  return at;
}

/* Where the fields the corruptions patch are. */
typedef struct {
  size_t version, n_tensors, n_kv;
  size_t arch_key_len, arch_type, arch_len;
  size_t align_value;
  size_t bool_value;
  size_t tokens_elem_type, tokens_n, token1_len;
  size_t scores_key;                                /* the key's length field */
  size_t t0_name_len, t0_n_dims, t0_dim0, t0_dim1, t0_type, t0_offset;
  size_t t1_name, t1_dim0, t1_type, t1_offset;
} layout_t;

static const float payload[8] = {1, 2, 3, 4, 5, 6, 7, 8};

/* A valid GGUF v3 file: metadata of every scalar type, a string array,
 * a float array, general.alignment 32, and two tensors: "a" f32 [4, 2] at
 * 0 and "b" q8_0 [32] at 32. */
static void build(buf_t *b, layout_t *at) {
  memset(b, 0, sizeof *b);
  memcpy(b->data, "GGUF", 4);
  b->len = 4;
  at->version = put(b, 3, 4);
  at->n_tensors = put(b, 2, 8);
  at->n_kv = put(b, 16, 8);
  at->arch_key_len = put_str(b, "general.architecture");
  at->arch_type = put(b, LLMC_GGUF_STRING, 4);
  at->arch_len = put_str(b, "llama");
  put_str(b, "general.alignment"), put(b, LLMC_GGUF_UINT32, 4);
  at->align_value = put(b, 32, 4);
  static const struct {
    const char *key;
    llmc_gguf_type_t type;
    uint64_t bits;
    int size;
  } scalars[] = {
      {"t.u8", LLMC_GGUF_UINT8, 200, 1},
      {"t.i8", LLMC_GGUF_INT8, 0x80, 1}, /* -128 */
      {"t.u16", LLMC_GGUF_UINT16, 60000, 2},
      {"t.i16", LLMC_GGUF_INT16, 0xfffe, 2}, /* -2 */
      {"t.u32", LLMC_GGUF_UINT32, 4000000000u, 4},
      {"t.i32", LLMC_GGUF_INT32, 0xffffffffu, 4}, /* -1 */
      {"t.f32", LLMC_GGUF_FLOAT32, 0x3fc00000u, 4}, /* 1.5 */
      {"t.u64", LLMC_GGUF_UINT64, UINT64_MAX, 8},
      {"t.i64", LLMC_GGUF_INT64, (uint64_t)INT64_MIN, 8},
      {"t.f64", LLMC_GGUF_FLOAT64, 0xc004000000000000u, 8}, /* -2.5 */
  };
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    put_str(b, scalars[i].key);
    put(b, scalars[i].type, 4);
    put(b, scalars[i].bits, scalars[i].size);
  }
  put_str(b, "t.bool"), put(b, LLMC_GGUF_BOOL, 4);
  at->bool_value = put(b, 1, 1);
  put_str(b, "t.empty"), put(b, LLMC_GGUF_STRING, 4), put_str(b, "");
  put_str(b, "tokenizer.ggml.tokens"), put(b, LLMC_GGUF_ARRAY, 4);
  at->tokens_elem_type = put(b, LLMC_GGUF_STRING, 4);
  at->tokens_n = put(b, 3, 8);
  put_str(b, "<unk>");
  at->token1_len = put_str(b, "h\xc3\xa9");
  put_str(b, "");
  at->scores_key = put_str(b, "tokenizer.ggml.scores");
  put(b, LLMC_GGUF_ARRAY, 4), put(b, LLMC_GGUF_FLOAT32, 4), put(b, 3, 8);
  put(b, 0xbf800000u, 4), put(b, 0x40490fdbu, 4), put(b, 0x7fc00000u, 4); /* -1, pi, NaN */

  at->t0_name_len = put_str(b, "a");
  at->t0_n_dims = put(b, 2, 4);
  at->t0_dim0 = put(b, 4, 8);
  at->t0_dim1 = put(b, 2, 8);
  at->t0_type = put(b, LLMC_GGML_F32, 4);
  at->t0_offset = put(b, 0, 8);
  at->t1_name = put_str(b, "b");
  put(b, 1, 4);
  at->t1_dim0 = put(b, 32, 8);
  at->t1_type = put(b, LLMC_GGML_Q8_0, 4);
  at->t1_offset = put(b, 32, 8);
  while (b->len % 32) put(b, 0, 1);
  memcpy(b->data + b->len, payload, sizeof payload);
  b->len += 32;
  memset(b->data + b->len, 0x11, 34); /* one q8_0 block */
  b->len += 34;
}

static void patch(buf_t *b, size_t at, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b->data[at + i] = (uint8_t)(v >> (8 * i));
}

static void test_built(void) {
  buf_t b;
  layout_t at;
  build(&b, &at);
  CHECK(b.len < 1024);
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_parse(b.data, b.len, "built.gguf", &g);
  if (s) {
    fprintf(stderr, "built.gguf: %s\n", llmc_status_message(s));
    llmc_status_free(s);
    check_failures++;
    return;
  }
  CHECK(!g->owns_map && g->map == b.data);
  CHECK_EQ_INT(g->n_kv, 16);
  int64_t i = 0;
  double f = 0;
  bool flag = false;
  llmc_gguf_str_t str;
  CHECK(llmc_gguf_get_int(g, "t.u8", &i) && i == 200);
  CHECK(llmc_gguf_get_int(g, "t.i8", &i) && i == -128);
  CHECK(llmc_gguf_get_int(g, "t.u16", &i) && i == 60000);
  CHECK(llmc_gguf_get_int(g, "t.i16", &i) && i == -2);
  CHECK(llmc_gguf_get_int(g, "t.u32", &i) && i == 4000000000);
  CHECK(llmc_gguf_get_int(g, "t.i32", &i) && i == -1);
  CHECK(llmc_gguf_get_int(g, "t.i64", &i) && i == INT64_MIN);
  CHECK(!llmc_gguf_get_int(g, "t.u64", &i)); /* past INT64_MAX */
  CHECK(!llmc_gguf_get_int(g, "t.f32", &i));
  CHECK(llmc_gguf_get_float(g, "t.f32", &f) && f == 1.5);
  CHECK(llmc_gguf_get_float(g, "t.f64", &f) && f == -2.5);
  CHECK(!llmc_gguf_get_float(g, "t.i32", &f));
  CHECK(llmc_gguf_get_bool(g, "t.bool", &flag) && flag);
  CHECK(llmc_gguf_get_string(g, "t.empty", &str) && str.len == 0);
  const llmc_gguf_kv_t *tokens = llmc_gguf_find(g, "tokenizer.ggml.tokens");
  CHECK(tokens && tokens->n == 3);
  if (tokens) {
    CHECK_STR(llmc_gguf_array_string(tokens, 0), "<unk>");
    CHECK_STR(llmc_gguf_array_string(tokens, 1), "h\xc3\xa9");
    CHECK_STR(llmc_gguf_array_string(tokens, 2), "");
  }
  const llmc_gguf_kv_t *scores = llmc_gguf_find(g, "tokenizer.ggml.scores");
  CHECK(scores && scores->n == 3);
  if (scores) {
    CHECK(llmc_gguf_array_float(scores, 0) == -1.0);
    CHECK(fabs(llmc_gguf_array_float(scores, 1) - M_PI) < 1e-6);
    CHECK_EQ_INT(llmc_gguf_array_int(scores, 0), -1);
    CHECK_EQ_INT(llmc_gguf_array_int(scores, 1), 3);
    CHECK_EQ_INT(llmc_gguf_array_int(scores, 2), 0); /* NaN */
    CHECK_STR(llmc_gguf_array_string(scores, 0), "");
  }
  CHECK_EQ_INT(g->data_offset, (at.t1_offset + 8 + 31) / 32 * 32);
  const llmc_gguf_tensor_t *t = llmc_gguf_find_tensor(g, "a");
  CHECK(t && t->offset == g->data_offset && t->nbytes == 32);
  if (t) {
    const uint8_t *data = NULL;
    CHECK(!llmc_gguf_tensor_data(g, t, &data));
    CHECK(data && memcmp(data, payload, sizeof payload) == 0);
  }
  t = llmc_gguf_find_tensor(g, "b");
  CHECK(t && t->offset == g->data_offset + 32 && t->nbytes == 34);
  CHECK_EQ_INT(g->data_offset + 66, b.len);
  llmc_gguf_close(g);

  /* Version 2 files read the same way. */
  patch(&b, at.version, 2, 4);
  s = llmc_gguf_parse(b.data, b.len, "v2.gguf", &g);
  CHECK(!s);
  if (!s) llmc_gguf_close(g);
  llmc_status_free(s);

  /* A tensor of a type the reader does not know opens (nbytes 0); asking
   * for its data is the error. */
  build(&b, &at);
  patch(&b, at.t0_type, 4, 4); /* the removed q4_2 */
  s = llmc_gguf_parse(b.data, b.len, "unknown_type.gguf", &g);
  CHECK(!s);
  llmc_status_free(s);
  if (!s) {
    const llmc_gguf_tensor_t *a = llmc_gguf_find_tensor(g, "a");
    const uint8_t *data = b.data;
    CHECK(a && a->nbytes == 0 && a->type == 4);
    s = a ? llmc_gguf_tensor_data(g, a, &data) : NULL;
    CHECK(s && llmc_status_code(s) == LLMC_STATUS_UNIMPLEMENTED && data == NULL);
    CHECK(s && strstr(llmc_status_message(s), "tensor a has ggml type 4"));
    llmc_status_free(s);
    llmc_gguf_close(g);
  }
}

/* Parsing must fail with `code` and a message containing want. */
static void expect_error(int line, const buf_t *b, llmc_status_code_t code, const char *want) {
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_parse(b->data, b->len, "bad.gguf", &g);
  const char *msg = llmc_status_message(s);
  if (!s || llmc_status_code(s) != code || !strstr(msg, want) || strncmp(msg, "bad.gguf: ", 10)) {
    fprintf(stderr, "%s:%d: got code %d \"%s\", expected code %d with \"%s\"\n", __FILE__, line,
            llmc_status_code(s), msg, code, want);
    check_failures++;
  }
  CHECK(!g);
  llmc_gguf_close(g);
  llmc_status_free(s);
}

/* A fresh copy of the built file with n bytes at `field` set to v, which
 * must fail as described. */
#define CORRUPT(field, v, n, code, want)                  \
  do {                                                    \
    build(&b, &at);                                       \
    patch(&b, at.field, (uint64_t)(v), n);                \
    expect_error(__LINE__, &b, LLMC_STATUS_##code, want); \
  } while (0)

static void test_corrupt(void) {
  buf_t b;
  layout_t at;
  const uint64_t huge = (uint64_t)1 << 63;

  build(&b, &at);
  b.data[0] = 'g';
  expect_error(__LINE__, &b, LLMC_STATUS_INVALID_ARGUMENT, "not a GGUF file");
  CORRUPT(version, 1, 4, UNIMPLEMENTED, "unsupported GGUF version 1");
  CORRUPT(version, 4, 4, UNIMPLEMENTED, "unsupported GGUF version 4");
  CORRUPT(version, 0, 4, UNIMPLEMENTED, "unsupported GGUF version 0");
  CORRUPT(version, 0x03000000, 4, UNIMPLEMENTED, "big-endian");

  /* Counts no file of this size could hold: refused before allocating. */
  CORRUPT(n_kv, huge, 8, INVALID_ARGUMENT, "metadata pairs cannot fit");
  CORRUPT(n_kv, UINT64_MAX, 8, INVALID_ARGUMENT, "metadata pairs cannot fit");
  CORRUPT(n_tensors, huge, 8, INVALID_ARGUMENT, "tensors cannot fit");
  CORRUPT(tokens_n, huge, 8, INVALID_ARGUMENT, "strings does not fit");
  CORRUPT(tokens_n, 20, 8, INVALID_ARGUMENT, "runs past the end of the file");
  CORRUPT(n_kv, 17, 8, INVALID_ARGUMENT, "runs past the end of the file");
  CORRUPT(n_tensors, 3, 8, INVALID_ARGUMENT, "tensor 2");

  /* Lengths past the end of the file. */
  CORRUPT(arch_key_len, huge, 8, INVALID_ARGUMENT, "key (9223372036854775808 bytes");
  CORRUPT(arch_len, b.len, 8, INVALID_ARGUMENT, "key general.architecture: string value");
  CORRUPT(token1_len, UINT64_MAX, 8, INVALID_ARGUMENT, "tokenizer.ggml.tokens: element 1");
  CORRUPT(t0_name_len, huge + 5, 8, INVALID_ARGUMENT, "tensor 0: name");
  CORRUPT(arch_key_len, 0, 8, INVALID_ARGUMENT, "key of 0 bytes");
  CORRUPT(t0_name_len, 0, 8, INVALID_ARGUMENT, "name of 0 bytes");

  /* Types. */
  CORRUPT(arch_type, LLMC_GGUF_TYPE_COUNT, 4, INVALID_ARGUMENT,
          "key general.architecture: unknown value type 13");
  CORRUPT(arch_type, 0xffffffffu, 4, INVALID_ARGUMENT, "unknown value type 4294967295");
  CORRUPT(tokens_elem_type, 99, 4, INVALID_ARGUMENT,
          "key tokenizer.ggml.tokens: unknown array element type 99");
  CORRUPT(tokens_elem_type, LLMC_GGUF_ARRAY, 4, UNIMPLEMENTED, "arrays of arrays");
  CORRUPT(bool_value, 2, 1, INVALID_ARGUMENT, "key t.bool: boolean value 2");

  /* Names. */
  build(&b, &at);
  memcpy(b.data + at.scores_key + 8, "tokenizer.ggml.tokens", 21); /* same length */
  expect_error(__LINE__, &b, LLMC_STATUS_INVALID_ARGUMENT, "key tokenizer.ggml.tokens appears twice");
  CORRUPT(t1_name + 8, 'a', 1, INVALID_ARGUMENT, "tensor a appears twice");

  /* Alignment. */
  CORRUPT(align_value, 24, 4, INVALID_ARGUMENT, "general.alignment must be a nonzero power of two");
  CORRUPT(align_value, 0, 4, INVALID_ARGUMENT, "general.alignment");
  CORRUPT(align_value - 4, LLMC_GGUF_FLOAT32, 4, INVALID_ARGUMENT, "general.alignment");

  /* Tensor shapes and types. */
  CORRUPT(t0_n_dims, 0, 4, INVALID_ARGUMENT, "tensor 0: a: 0 dims");
  CORRUPT(t0_n_dims, 5, 4, INVALID_ARGUMENT, "5 dims");
  CORRUPT(t0_dim0, 0, 8, INVALID_ARGUMENT, "dim 0 is 0");
  CORRUPT(t0_dim1, huge, 8, INVALID_ARGUMENT, "dim 1 is");
  build(&b, &at);
  patch(&b, at.t0_dim0, (uint64_t)1 << 32, 8);
  patch(&b, at.t0_dim1, (uint64_t)1 << 31, 8); /* 2^63 elements */
  expect_error(__LINE__, &b, LLMC_STATUS_INVALID_ARGUMENT, "dim 1 is 2147483648");
  patch(&b, at.t0_dim1, (uint64_t)1 << 30, 8); /* 2^62 elements, 2^64 bytes */
  expect_error(__LINE__, &b, LLMC_STATUS_INVALID_ARGUMENT, "do not fit in 2^64 bytes");
  CORRUPT(t1_dim0, 33, 8, INVALID_ARGUMENT, "tensor 1 (b): row of 33 elements is not a multiple of q8_0's block of 32");
  CORRUPT(t1_dim0, 64, 8, INVALID_ARGUMENT, "tensor 1 (b): data [");

  /* Offsets. */
  CORRUPT(t0_offset, 4, 8, INVALID_ARGUMENT, "offset 4 is not a multiple of the alignment 32");
  CORRUPT(t1_offset, 64, 8, INVALID_ARGUMENT, "tensor 1 (b): data [");
  CORRUPT(t1_offset, 1 << 20, 8, INVALID_ARGUMENT, "past the end of the file");
  CORRUPT(t1_offset, UINT64_MAX - 31, 8, INVALID_ARGUMENT, "past the end of the file");
  build(&b, &at);
  patch(&b, at.t1_type, 4, 4); /* an unknown type still needs its offset inside the file */
  patch(&b, at.t1_offset, 1 << 20, 8);
  expect_error(__LINE__, &b, LLMC_STATUS_INVALID_ARGUMENT, "past the end of the file");

  /* Every proper prefix of the file fails (the last tensor ends at EOF). */
  build(&b, &at);
  const size_t full = b.len;
  for (size_t n = 0; n < full; n++) {
    llmc_gguf_t *g = NULL;
    llmc_status_t s = llmc_gguf_parse(b.data, n, "prefix.gguf", &g);
    if (!s || llmc_status_code(s) != LLMC_STATUS_INVALID_ARGUMENT) {
      fprintf(stderr, "%s:%d: a prefix of %zu bytes gave \"%s\"\n", __FILE__, __LINE__, n,
              llmc_status_message(s));
      check_failures++;
    }
    llmc_gguf_close(g);
    llmc_status_free(s);
  }
}

/* Prefixes of a real file, as copies on the heap so that ASan sees reads
 * past their end. */
static void test_truncated_real(void) {
  FILE *f = fopen("tests/data/models/stories260K.gguf", "rb");
  CHECK(f);
  if (!f) return;
  static uint8_t whole[16384];
  size_t n = fread(whole, 1, sizeof whole, f);
  fclose(f);
  CHECK_EQ_INT(n, sizeof whole);
  for (size_t len = 0; len < n; len += len < 14200 ? 1 : 97) {
    uint8_t *copy = malloc(len ? len : 1);
    memcpy(copy, whole, len);
    llmc_gguf_t *g = NULL;
    llmc_status_t s = llmc_gguf_parse(copy, len, "stories260K.gguf", &g);
    if (!s || !strstr(llmc_status_message(s), "stories260K.gguf: ")) {
      fprintf(stderr, "%s:%d: a prefix of %zu bytes gave \"%s\"\n", __FILE__, __LINE__, len,
              llmc_status_message(s));
      check_failures++;
    }
    llmc_gguf_close(g);
    llmc_status_free(s);
    free(copy);
  }
}

/* ---- 3. not GGUF files ---- */

static void expect_open_error(int line, const char *path, llmc_status_code_t code, const char *want) {
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_open(path, &g);
  const char *msg = llmc_status_message(s);
  if (!s || llmc_status_code(s) != code || !strstr(msg, want)) {
    fprintf(stderr, "%s:%d: %s: got code %d \"%s\", expected code %d with \"%s\"\n", __FILE__, line,
            path, llmc_status_code(s), msg, code, want);
    check_failures++;
  }
  CHECK(!g);
  llmc_status_free(s);
}

static void test_open_errors(void) {
  char dir[] = "/tmp/llmc_test_gguf_XXXXXX";
  CHECK(mkdtemp(dir));
  char path[128];
  snprintf(path, sizeof path, "%s/empty.gguf", dir);
  fclose(fopen(path, "wb"));
  expect_open_error(__LINE__, path, LLMC_STATUS_INVALID_ARGUMENT, "empty file");
  unlink(path);
  snprintf(path, sizeof path, "%s/missing.gguf", dir);
  expect_open_error(__LINE__, path, LLMC_STATUS_NOT_FOUND, "missing.gguf: no such file");
  expect_open_error(__LINE__, dir, LLMC_STATUS_IO, "not a regular file");
  expect_open_error(__LINE__, "tests/data/models/README.md", LLMC_STATUS_INVALID_ARGUMENT,
                    "README.md: not a GGUF file");
  rmdir(dir);
}

int main(void) {
  test_stories260k();
  test_tiny_random();
  test_vocab_files();
  test_built();
  test_corrupt();
  test_truncated_real();
  test_open_errors();
  return check_report("test_gguf");
}
