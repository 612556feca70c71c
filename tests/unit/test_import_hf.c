/* test_import_hf.c — the Hugging Face importer.
 *
 * 1. Every checkpoint in tests/data/hf imports into a well-formed graph (ops
 *    from ir/ops.def with the right argument counts, ids unique and distinct
 *    from tensor names, every argument defined before use, every tensor
 *    used), with facts checked per model: tensor counts, offsets, the
 *    llama3 RoPE table against a hand computation, Gemma's embedding scale.
 * 2. Architectures without a reference checkpoint here (qwen3, phi3, gemma2,
 *    mixtral in both expert layouts) import from small synthetic checkpoints
 *    written to /tmp, checking the graph details each one adds.
 * 3. The hand-written examples/tiny-llama/model.json is well-formed and
 *    names the right bytes of the checkpoint it draws on.
 * 4. Broken folders (copies of tests/data/hf/llama with one thing wrong)
 *    fail with messages that name the file and the key or tensor. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "model_doc.h"
#include "compiler/import_hf.h"
#include "formats/safetensors.h"

static char tmp[] = "/tmp/llmc_test_import_hf_XXXXXX";

/* ---- reading the document ---- */

/* The rules of docs/model-json.md (model_doc.h), and what Hugging Face
 * import adds: the weight files are listed, and every tensor not given
 * inline lies past the safetensors header (offset > 0). */
static void check_wellformed(const cJSON *doc, const char *what) {
  int before = check_failures;
  check_model_doc(doc, what);
  CHECK(cJSON_IsArray(item(doc, "weight_files")) &&
        cJSON_GetArraySize(item(doc, "weight_files")) > 0);
  const cJSON *t;
  cJSON_ArrayForEach(t, item(doc, "tensors")) CHECK(item(t, "data") || num(t, "offset") > 0);
  if (check_failures != before) fprintf(stderr, "  (in the document of %s)\n", what);
}

/* Imports folder (paths relative to base); NULL and a report on failure. */
static cJSON *import_ok(int line, const char *folder, const char *base) {
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import_hf(folder, base, &doc);
  if (s) {
    fprintf(stderr, "%s:%d: importing %s: %s\n", __FILE__, line, folder, llmc_status_message(s));
    check_failures++;
    llmc_status_free(s);
    return NULL;
  }
  check_wellformed(doc, folder);
  return doc;
}
#define IMPORT_OK(folder, base) import_ok(__LINE__, folder, base)

static void expect_error(int line, const char *folder, llmc_status_code_t code, const char *want1,
                         const char *want2) {
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import_hf(folder, folder, &doc);
  const char *msg = llmc_status_message(s);
  if (!s || llmc_status_code(s) != code || !strstr(msg, want1) || (want2 && !strstr(msg, want2))) {
    fprintf(stderr, "%s:%d: got code %d \"%s\", expected code %d with \"%s\" and \"%s\"\n",
            __FILE__, line, llmc_status_code(s), msg, code, want1, want2 ? want2 : "");
    check_failures++;
  }
  CHECK(doc == NULL);
  llmc_status_free(s);
  cJSON_Delete(doc);
}
#define EXPECT_ERROR(folder, code, w1, w2) \
  expect_error(__LINE__, folder, LLMC_STATUS_##code, w1, w2)

/* ---- writing folders ---- */

static char *read_all(const char *path, size_t *out_n) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) n = 0;
  buf[n] = '\0';
  fclose(f);
  *out_n = (size_t)n;
  return buf;
}

static void write_all(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  fwrite(data, 1, n, f);
  fclose(f);
}

/* A fresh folder tmp/name; returns its path (static buffer). */
static const char *make_dir(const char *name) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  mkdir(path, 0755);
  return path;
}

static void write_file(const char *folder, const char *name, const char *text) {
  char path[512];
  snprintf(path, sizeof path, "%s/%s", folder, name);
  write_all(path, text, strlen(text));
}

static void write_json(const char *folder, const char *name, const cJSON *j) {
  char *text = cJSON_Print(j);
  write_file(folder, name, text);
  free(text);
}

/* Writes a safetensors file from a header object and its data section. */
static void write_safetensors(const char *path, const cJSON *header, const void *data, size_t n) {
  char *h = cJSON_PrintUnformatted(header);
  uint64_t len = strlen(h);
  unsigned char len_bytes[8];
  for (int i = 0; i < 8; i++) len_bytes[i] = (unsigned char)(len >> (8 * i));
  FILE *f = fopen(path, "wb");
  fwrite(len_bytes, 1, 8, f);
  fwrite(h, 1, len, f);
  fwrite(data, 1, n, f);
  fclose(f);
  free(h);
}

/* The llama reference checkpoint's config and header, to edit. */
static cJSON *llama_config(void) {
  size_t n;
  char *text = read_all("tests/data/hf/llama/config.json", &n);
  cJSON *c = cJSON_Parse(text);
  free(text);
  return c;
}

/* Copies tests/data/hf/llama to tmp/name with config and safetensors header
 * replaced by the given ones (NULL: unchanged). */
static const char *llama_variant(const char *name, const cJSON *config, cJSON *header) {
  const char *folder = make_dir(name);
  cJSON *c = config ? NULL : llama_config();
  write_json(folder, "config.json", config ? config : c);
  cJSON_Delete(c);
  size_t n;
  char *st = read_all("tests/data/hf/llama/model.safetensors", &n);
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--) len = len << 8 | (unsigned char)st[i];
  char path[512];
  snprintf(path, sizeof path, "%s/model.safetensors", folder);
  if (header) {
    write_safetensors(path, header, st + 8 + len, n - 8 - len);
  } else {
    write_all(path, st, n);
  }
  free(st);
  return folder;
}

static cJSON *llama_header(void) {
  size_t n;
  char *st = read_all("tests/data/hf/llama/model.safetensors", &n);
  uint64_t len = 0;
  for (int i = 7; i >= 0; i--) len = len << 8 | (unsigned char)st[i];
  cJSON *h = cJSON_ParseWithLength(st + 8, len);
  free(st);
  return h;
}

/* Synthetic checkpoints: F32 tensors of zeros, laid out back to back. */
typedef struct {
  cJSON *header;
  size_t bytes;
} ckpt_t;

static void add_tensor(ckpt_t *c, int rank, const int64_t *shape, const char *fmt, ...) {
  char name[160];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(name, sizeof name, fmt, ap);
  va_end(ap);
  size_t numel = 1;
  cJSON *t = cJSON_AddObjectToObject(c->header, name);
  cJSON_AddStringToObject(t, "dtype", "F32");
  cJSON *s = cJSON_AddArrayToObject(t, "shape");
  for (int d = 0; d < rank; d++) {
    cJSON_AddItemToArray(s, cJSON_CreateNumber((double)shape[d]));
    numel *= (size_t)shape[d];
  }
  cJSON *o = cJSON_AddArrayToObject(t, "data_offsets");
  cJSON_AddItemToArray(o, cJSON_CreateNumber((double)c->bytes));
  c->bytes += numel * 4;
  cJSON_AddItemToArray(o, cJSON_CreateNumber((double)c->bytes));
}
#define T1(c, a, ...) add_tensor(c, 1, (const int64_t[]){a}, __VA_ARGS__)
#define T2(c, a, b, ...) add_tensor(c, 2, (const int64_t[]){a, b}, __VA_ARGS__)
#define T3(c, a, b, d, ...) add_tensor(c, 3, (const int64_t[]){a, b, d}, __VA_ARGS__)

/* Sizes of every synthetic model. */
enum { V = 64, D = 16, H = 2, KV = 1, HD = 8, F = 24 };

static const char *write_ckpt(const char *name, ckpt_t *c, const char *config) {
  const char *folder = make_dir(name);
  write_file(folder, "config.json", config);
  char path[512];
  snprintf(path, sizeof path, "%s/model.safetensors", folder);
  void *zeros = calloc(1, c->bytes);
  write_safetensors(path, c->header, zeros, c->bytes);
  free(zeros);
  cJSON_Delete(c->header);
  c->header = NULL;
  return folder;
}

/* Separate q/k/v/o projections of layer l. */
static void attn_tensors(ckpt_t *c, int l) {
  T2(c, H * HD, D, "model.layers.%d.self_attn.q_proj.weight", l);
  T2(c, KV * HD, D, "model.layers.%d.self_attn.k_proj.weight", l);
  T2(c, KV * HD, D, "model.layers.%d.self_attn.v_proj.weight", l);
  T2(c, D, H * HD, "model.layers.%d.self_attn.o_proj.weight", l);
}

static void mlp_tensors(ckpt_t *c, int l) {
  T2(c, F, D, "model.layers.%d.mlp.gate_proj.weight", l);
  T2(c, F, D, "model.layers.%d.mlp.up_proj.weight", l);
  T2(c, D, F, "model.layers.%d.mlp.down_proj.weight", l);
}

/* A config.json with the synthetic sizes plus `extra` keys. */
static const char *config(const char *cls, int layers, const char *extra) {
  static char text[2048];
  snprintf(text, sizeof text,
           "{\"architectures\": [\"%s\"], \"vocab_size\": %d, \"hidden_size\": %d,"
           " \"num_hidden_layers\": %d, \"num_attention_heads\": %d, \"num_key_value_heads\": %d,"
           " \"head_dim\": %d, \"intermediate_size\": %d, \"max_position_embeddings\": 128,"
           " \"rms_norm_eps\": 1e-6, \"rope_theta\": 10000.0, \"bos_token_id\": 1,"
           " \"eos_token_id\": [2, 3]%s%s}",
           cls, V, D, layers, H, KV, HD, F, *extra ? ", " : "", extra);
  return text;
}

/* ---- tests on the reference checkpoints ---- */

static void test_reference_folders(void) {
  static const struct {
    const char *arch;
    int n_tensors; /* checkpoint tensors the graph uses + rope.inv_freq */
  } cases[] = {{"llama", 31}, {"llama_plain", 31}, {"mistral", 31}, {"qwen2", 39}, {"gemma", 30}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char folder[128];
    snprintf(folder, sizeof folder, "tests/data/hf/%s", cases[i].arch);
    cJSON *doc = IMPORT_OK(folder, folder);
    if (!doc) continue;
    const char *arch = strcmp(cases[i].arch, "llama_plain") ? cases[i].arch : "llama";
    CHECK_EQ_STR(str(doc, "architecture"), arch);
    CHECK_EQ_NUM(cJSON_GetArraySize(item(doc, "tensors")), cases[i].n_tensors);
    CHECK(cJSON_GetArraySize(item(doc, "graph")) > 0);
    CHECK_EQ_STR(str(cJSON_GetArrayItem(item(doc, "weight_files"), 0), "path"),
                 "model.safetensors");
    CHECK(cJSON_IsNull(item(doc, "tokenizer")));
    const cJSON *cfg = item(doc, "config");
    CHECK_EQ_NUM(num(cfg, "vocab_size"), 512);
    CHECK_EQ_NUM(num(cfg, "n_layers"), 3);
    CHECK_EQ_NUM(num(cfg, "max_context"), 512);
    CHECK_EQ_NUM(num(cfg, "eos_token_id"), 2);
    CHECK(cJSON_IsObject(item(cfg, "hf_config")));
    cJSON_Delete(doc);
  }
}

static void test_llama(void) {
  cJSON *doc = IMPORT_OK("tests/data/hf/llama", "tests/data/hf/llama");
  if (!doc) return;
  /* lm_head.weight is the first tensor after the 3152-byte header. */
  CHECK_EQ_NUM(num(tensor(doc, "lm_head.weight"), "offset"), 8 + 3152);
  CHECK_EQ_STR(arg(node(doc, "logits"), 1), "lm_head.weight");
  CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "layer"), 2);
  CHECK_NEAR(attr(node(doc, "l0.attn"), "scale"), 1 / sqrt(32.0), 1e-12);
  CHECK_EQ_NUM(attr(node(doc, "l0.k_rope"), "heads"), 2);
  CHECK_EQ_NUM(num(item(doc, "config"), "rope_theta"), 500000);

  /* Llama 3.1 RoPE (theta 5e5, head_dim 32, factor 8, low 1, high 4,
   * original context 64): wavelengths under 16 are kept, over 64 divided by
   * 8, in between interpolated. Index 1 is kept, 2 interpolated, 3 divided. */
  const cJSON *data = item(tensor(doc, "rope.inv_freq"), "data");
  CHECK_EQ_NUM(cJSON_GetArraySize(data), 16);
  double f1 = pow(500000.0, -2.0 / 32), f2 = pow(500000.0, -4.0 / 32),
         f3 = pow(500000.0, -6.0 / 32);
  CHECK(2 * M_PI / f1 < 16 && 2 * M_PI / f2 > 16 && 2 * M_PI / f2 < 64 && 2 * M_PI / f3 > 64);
  double smooth = (64 / (2 * M_PI / f2) - 1) / (4 - 1);
  CHECK_NEAR(cJSON_GetArrayItem(data, 0)->valuedouble, 1.0, 1e-7);
  CHECK_NEAR(cJSON_GetArrayItem(data, 1)->valuedouble, f1, 1e-6);
  CHECK_NEAR(cJSON_GetArrayItem(data, 2)->valuedouble, (1 - smooth) * f2 / 8 + smooth * f2, 1e-6);
  CHECK_NEAR(cJSON_GetArrayItem(data, 3)->valuedouble, f3 / 8, 1e-6);
  cJSON_Delete(doc);

  doc = IMPORT_OK("tests/data/hf/llama_plain", NULL);
  if (!doc) return;
  data = item(tensor(doc, "rope.inv_freq"), "data");
  CHECK_NEAR(cJSON_GetArrayItem(data, 5)->valuedouble, pow(10000.0, -10.0 / 32), 1e-6);
  const char *path = str(cJSON_GetArrayItem(item(doc, "weight_files"), 0), "path");
  CHECK(path && path[0] == '/' && strstr(path, "tests/data/hf/llama_plain/model.safetensors"));
  cJSON_Delete(doc);
}

static void test_gemma_qwen2_mistral(void) {
  cJSON *doc = IMPORT_OK("tests/data/hf/gemma", "tests/data/hf/gemma");
  if (doc) {
    CHECK_EQ_NUM(attr(node(doc, "embed"), "scale"), sqrtf(128.0f));
    CHECK_EQ_NUM(count_op(doc, "add_scalar"), 2 * 3 + 1);
    CHECK_EQ_NUM(attr(node(doc, "l0.attn_norm.w"), "value"), 1);
    CHECK_EQ_STR(arg(node(doc, "l0.attn_norm"), 1), "l0.attn_norm.w");
    CHECK_EQ_STR(str(item(node(doc, "l1.glu"), "attrs"), "act"), "gelu_tanh");
    CHECK_EQ_NUM(cJSON_GetArraySize(item(tensor(doc, "rope.inv_freq"), "data")), 48 / 2);
    CHECK_EQ_STR(arg(node(doc, "logits"), 1), "model.embed_tokens.weight");
    CHECK_NEAR(attr(node(doc, "l0.attn"), "scale"), 1 / sqrt(48.0), 1e-12);
    cJSON_Delete(doc);
  }
  doc = IMPORT_OK("tests/data/hf/qwen2", "tests/data/hf/qwen2");
  if (doc) {
    CHECK_EQ_STR(arg(node(doc, "l0.q_b"), 0), "l0.q");
    CHECK_EQ_STR(arg(node(doc, "l0.q_b"), 1), "model.layers.0.self_attn.q_proj.bias");
    CHECK_EQ_STR(arg(node(doc, "l2.kv"), 1), "l2.v_b");
    CHECK(node(doc, "l0.o_b") == NULL);
    CHECK_EQ_STR(arg(node(doc, "logits"), 1), "model.embed_tokens.weight");
    cJSON_Delete(doc);
  }
  doc = IMPORT_OK("tests/data/hf/mistral", "tests/data/hf/mistral");
  if (doc) {
    CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), 0);
    CHECK_EQ_NUM(num(item(doc, "config"), "rope_theta"), 1e6);
    cJSON_Delete(doc);
  }
}

/* ---- synthetic architectures ---- */

static void test_qwen3(void) {
  ckpt_t c = {cJSON_CreateObject(), 0};
  T2(&c, V, D, "model.embed_tokens.weight");
  for (int l = 0; l < 2; l++) {
    T1(&c, D, "model.layers.%d.input_layernorm.weight", l);
    attn_tensors(&c, l);
    T1(&c, HD, "model.layers.%d.self_attn.q_norm.weight", l);
    T1(&c, HD, "model.layers.%d.self_attn.k_norm.weight", l);
    T1(&c, D, "model.layers.%d.post_attention_layernorm.weight", l);
    mlp_tensors(&c, l);
  }
  T1(&c, D, "model.norm.weight");
  const char *folder = write_ckpt("qwen3", &c,
                                  config("Qwen3ForCausalLM", 2,
                                         "\"tie_word_embeddings\": true, \"sliding_window\": 4,"
                                         " \"use_sliding_window\": false"));
  cJSON *doc = IMPORT_OK(folder, folder);
  if (!doc) return;
  CHECK_EQ_STR(str(doc, "architecture"), "qwen3");
  CHECK_EQ_NUM(count_op(doc, "rms_norm"), 2 * 4 + 1);
  CHECK_EQ_STR(arg(node(doc, "l1.q_norm"), 0), "l1.q");
  CHECK_EQ_STR(arg(node(doc, "l1.q_norm"), 1), "model.layers.1.self_attn.q_norm.weight");
  CHECK_EQ_STR(arg(node(doc, "l1.q_rope"), 0), "l1.q_norm");
  CHECK_EQ_STR(arg(node(doc, "l1.k_rope"), 0), "l1.k_norm");
  CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), 0);
  CHECK_EQ_NUM(cJSON_GetArraySize(item(item(doc, "config"), "eos_token_id")), 2);
  cJSON_Delete(doc);
}

static void phi3_tensors(ckpt_t *c, int layers) {
  T2(c, V, D, "model.embed_tokens.weight");
  for (int l = 0; l < layers; l++) {
    T1(c, D, "model.layers.%d.input_layernorm.weight", l);
    T2(c, (H + 2 * KV) * HD, D, "model.layers.%d.self_attn.qkv_proj.weight", l);
    T2(c, D, H * HD, "model.layers.%d.self_attn.o_proj.weight", l);
    T1(c, D, "model.layers.%d.post_attention_layernorm.weight", l);
    T2(c, 2 * F, D, "model.layers.%d.mlp.gate_up_proj.weight", l);
    T2(c, D, F, "model.layers.%d.mlp.down_proj.weight", l);
  }
  T1(c, D, "model.norm.weight");
  T2(c, V, D, "lm_head.weight");
}

static void test_phi3(void) {
  ckpt_t c = {cJSON_CreateObject(), 0};
  phi3_tensors(&c, 2);
  const char *folder =
      write_ckpt("phi3", &c,
                 config("Phi3ForCausalLM", 2,
                        "\"partial_rotary_factor\": 0.5, \"sliding_window\": 47,"
                        " \"rope_scaling\": null, \"tie_word_embeddings\": false"));
  cJSON *doc = IMPORT_OK(folder, folder);
  if (doc) {
    CHECK_EQ_STR(arg(node(doc, "l0.q"), 0), "l0.qkv");
    CHECK_EQ_NUM(attr(node(doc, "l0.k"), "begin"), H * HD);
    CHECK_EQ_NUM(attr(node(doc, "l0.k"), "end"), (H + KV) * HD);
    CHECK_EQ_NUM(attr(node(doc, "l0.v"), "end"), (H + 2 * KV) * HD);
    CHECK_EQ_NUM(attr(node(doc, "l1.gate"), "end"), F);
    CHECK_EQ_NUM(attr(node(doc, "l1.up"), "begin"), F);
    CHECK_EQ_NUM(attr(node(doc, "l1.up"), "end"), 2 * F);
    CHECK_EQ_NUM(count_op(doc, "slice"), 2 * 5);
    CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), 47);
    /* rot_dim = head_dim * 0.5 = 4: two frequencies, theta^0 and theta^-1/2. */
    const cJSON *data = item(tensor(doc, "rope.inv_freq"), "data");
    CHECK_EQ_NUM(cJSON_GetArraySize(data), 2);
    CHECK_NEAR(cJSON_GetArrayItem(data, 1)->valuedouble, 0.01, 1e-6);
    CHECK_EQ_STR(arg(node(doc, "logits"), 1), "lm_head.weight");
    cJSON_Delete(doc);
  }
  c = (ckpt_t){cJSON_CreateObject(), 0};
  phi3_tensors(&c, 1);
  folder = write_ckpt("phi3_longrope", &c,
                      config("Phi3ForCausalLM", 1,
                             "\"rope_scaling\": {\"type\": \"longrope\", \"short_factor\": [1],"
                             " \"long_factor\": [1]}"));
  EXPECT_ERROR(folder, UNIMPLEMENTED, "unsupported rope_type \"longrope\"", "config.json");
}

static void test_gemma2(void) {
  for (int with_types = 0; with_types < 2; with_types++) {
    ckpt_t c = {cJSON_CreateObject(), 0};
    T2(&c, V, D, "model.embed_tokens.weight");
    for (int l = 0; l < 3; l++) {
      T1(&c, D, "model.layers.%d.input_layernorm.weight", l);
      attn_tensors(&c, l);
      T1(&c, D, "model.layers.%d.post_attention_layernorm.weight", l);
      T1(&c, D, "model.layers.%d.pre_feedforward_layernorm.weight", l);
      mlp_tensors(&c, l);
      T1(&c, D, "model.layers.%d.post_feedforward_layernorm.weight", l);
    }
    T1(&c, D, "model.norm.weight");
    const char *common =
        "\"hidden_activation\": \"gelu_pytorch_tanh\", \"query_pre_attn_scalar\": 32,"
        " \"attn_logit_softcapping\": 50.0, \"final_logit_softcapping\": 30.0,"
        " \"sliding_window\": 4";
    char extra[512];
    snprintf(extra, sizeof extra, "%s%s", common,
             with_types ? ", \"layer_types\": [\"full_attention\", \"sliding_attention\","
                          " \"sliding_attention\"]"
                        : "");
    const char *folder = write_ckpt(with_types ? "gemma2_types" : "gemma2", &c,
                                    config("Gemma2ForCausalLM", 3, extra));
    cJSON *doc = IMPORT_OK(folder, folder);
    if (!doc) continue;
    CHECK_EQ_STR(str(doc, "architecture"), "gemma2");
    CHECK_EQ_NUM(count_op(doc, "rms_norm"), 3 * 4 + 1);
    CHECK_EQ_NUM(count_op(doc, "add_scalar"), 3 * 4 + 1);
    CHECK_EQ_STR(arg(node(doc, "l0.attn_post_norm"), 0), "l0.o");
    CHECK_EQ_STR(arg(node(doc, "l0.attn_res"), 1), "l0.attn_post_norm");
    CHECK_EQ_STR(arg(node(doc, "l0.ffn_norm.w"), 0),
                 "model.layers.0.pre_feedforward_layernorm.weight");
    CHECK_EQ_STR(arg(node(doc, "l0.ffn_post_norm"), 0), "l0.down");
    CHECK_EQ_STR(arg(node(doc, "l0.ffn_res"), 1), "l0.ffn_post_norm");
    CHECK_EQ_NUM(attr(node(doc, "embed"), "scale"), sqrtf(16.0f));
    CHECK_NEAR(attr(node(doc, "l0.attn"), "scale"), 1 / sqrt(32.0), 1e-12);
    CHECK_EQ_NUM(attr(node(doc, "l0.attn"), "softcap"), 50);
    CHECK_EQ_NUM(attr(node(doc, "l0.attn"), "window"), with_types ? 0 : 4);
    CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), with_types ? 4 : 0);
    CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "window"), 4);
    CHECK_EQ_STR(arg(node(doc, "logits_capped"), 0), "logits");
    CHECK_EQ_NUM(attr(node(doc, "logits_capped"), "cap"), 30);
    CHECK_EQ_STR(arg(node(doc, "logits_sel"), 0), "logits_capped");
    cJSON_Delete(doc);
  }
}

/* Mixtral, E experts: the classic per-expert layout or transformers-5's
 * fused one. */
static const char *mixtral(const char *name, int E, bool fused) {
  ckpt_t c = {cJSON_CreateObject(), 0};
  T2(&c, V, D, "model.embed_tokens.weight");
  for (int l = 0; l < 2; l++) {
    T1(&c, D, "model.layers.%d.input_layernorm.weight", l);
    attn_tensors(&c, l);
    T1(&c, D, "model.layers.%d.post_attention_layernorm.weight", l);
    if (fused) {
      T2(&c, E, D, "model.layers.%d.mlp.gate.weight", l);
      T3(&c, E, 2 * F, D, "model.layers.%d.mlp.experts.gate_up_proj", l);
      T3(&c, E, D, F, "model.layers.%d.mlp.experts.down_proj", l);
      continue;
    }
    T2(&c, E, D, "model.layers.%d.block_sparse_moe.gate.weight", l);
    for (int e = 0; e < E; e++) {
      T2(&c, F, D, "model.layers.%d.block_sparse_moe.experts.%d.w1.weight", l, e);
      T2(&c, D, F, "model.layers.%d.block_sparse_moe.experts.%d.w2.weight", l, e);
      T2(&c, F, D, "model.layers.%d.block_sparse_moe.experts.%d.w3.weight", l, e);
    }
  }
  T1(&c, D, "model.norm.weight");
  T2(&c, V, D, "lm_head.weight");
  char extra[128];
  snprintf(extra, sizeof extra, "\"num_local_experts\": %d, \"num_experts_per_tok\": 2", E);
  return write_ckpt(name, &c, config("MixtralForCausalLM", 2, extra));
}

static void test_mixtral(void) {
  /* 9 experts: gate_up has 18 pieces, more than one concat takes. */
  const char *folder = mixtral("mixtral", 9, false);
  cJSON *doc = IMPORT_OK(folder, folder);
  if (doc) {
    const cJSON *moe = node(doc, "l1.moe");
    CHECK_EQ_STR(arg(moe, 0), "l1.ffn_norm");
    CHECK_EQ_STR(arg(moe, 1), "model.layers.1.block_sparse_moe.gate.weight");
    CHECK_EQ_STR(arg(moe, 2), "l1.experts_gate_up");
    CHECK_EQ_STR(arg(moe, 3), "l1.experts_down");
    CHECK_EQ_NUM(attr(moe, "top_k"), 2);
    CHECK_EQ_STR(str(item(moe, "attrs"), "act"), "silu");
    const cJSON *root = node(doc, "l1.experts_gate_up");
    CHECK_EQ_NUM(cJSON_GetArraySize(item(root, "args")), 2);
    CHECK_EQ_STR(arg(root, 0), "l1.experts_gate_up.0.0");
    CHECK_EQ_STR(arg(root, 1), "l1.experts_gate_up.0.1");
    const cJSON *first = node(doc, "l1.experts_gate_up.0.0");
    CHECK_EQ_NUM(cJSON_GetArraySize(item(first, "args")), 16);
    CHECK_EQ_STR(arg(first, 0), "model.layers.1.block_sparse_moe.experts.0.w1.weight");
    CHECK_EQ_STR(arg(first, 1), "model.layers.1.block_sparse_moe.experts.0.w3.weight");
    CHECK_EQ_STR(arg(first, 2), "model.layers.1.block_sparse_moe.experts.1.w1.weight");
    CHECK_EQ_STR(arg(node(doc, "l1.experts_gate_up.0.1"), 1),
                 "model.layers.1.block_sparse_moe.experts.8.w3.weight");
    const cJSON *down = node(doc, "l1.experts_down");
    CHECK_EQ_NUM(cJSON_GetArraySize(item(down, "args")), 9);
    CHECK_EQ_STR(arg(down, 8), "model.layers.1.block_sparse_moe.experts.8.w2.weight");
    CHECK_EQ_NUM(num(item(doc, "config"), "n_experts"), 9);
    cJSON_Delete(doc);
  }
  folder = mixtral("mixtral_fused", 4, true);
  doc = IMPORT_OK(folder, folder);
  if (doc) {
    const cJSON *moe = node(doc, "l0.moe");
    CHECK_EQ_STR(arg(moe, 1), "model.layers.0.mlp.gate.weight");
    CHECK_EQ_STR(arg(moe, 2), "model.layers.0.mlp.experts.gate_up_proj");
    CHECK_EQ_STR(arg(moe, 3), "model.layers.0.mlp.experts.down_proj");
    const cJSON *shape = item(tensor(doc, "model.layers.0.mlp.experts.gate_up_proj"), "shape");
    CHECK_EQ_NUM(cJSON_GetArraySize(shape), 2);
    CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, 4 * 2 * F);
    CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, D);
    shape = item(tensor(doc, "model.layers.0.mlp.experts.down_proj"), "shape");
    CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, 4 * D);
    CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, F);
    CHECK_EQ_NUM(count_op(doc, "concat"), 0);
    cJSON_Delete(doc);
  }
}

/* ---- config schemas ---- */

static void test_rope_schemas(void) {
  cJSON *ref = IMPORT_OK("tests/data/hf/llama", NULL);
  if (!ref) return;
  /* The llama3 table from the older schema: top-level rope_theta and a
   * rope_scaling object. */
  cJSON *c = llama_config();
  cJSON *p = cJSON_DetachItemFromObject(c, "rope_parameters");
  cJSON_AddItemToObject(c, "rope_theta", cJSON_DetachItemFromObject(p, "rope_theta"));
  cJSON_AddItemToObject(c, "rope_scaling", p);
  const char *folder = llama_variant("old_llama3", c, NULL);
  cJSON_Delete(c);
  cJSON *doc = IMPORT_OK(folder, folder);
  if (doc) {
    CHECK(cJSON_Compare(item(tensor(doc, "rope.inv_freq"), "data"),
                        item(tensor(ref, "rope.inv_freq"), "data"), true));
    CHECK_EQ_NUM(num(item(doc, "config"), "rope_theta"), 500000);
    cJSON_Delete(doc);
  }
  /* Linear scaling, old "type" key. */
  c = llama_config();
  cJSON_DeleteItemFromObject(c, "rope_parameters");
  cJSON_AddNumberToObject(c, "rope_theta", 10000);
  cJSON_AddItemToObject(c, "rope_scaling", cJSON_Parse("{\"type\": \"linear\", \"factor\": 4.0}"));
  folder = llama_variant("old_linear", c, NULL);
  cJSON_Delete(c);
  doc = IMPORT_OK(folder, folder);
  if (doc) {
    const cJSON *data = item(tensor(doc, "rope.inv_freq"), "data");
    CHECK_NEAR(cJSON_GetArrayItem(data, 0)->valuedouble, 0.25, 1e-7);
    CHECK_NEAR(cJSON_GetArrayItem(data, 4)->valuedouble, pow(10000.0, -8.0 / 32) / 4, 1e-6);
    cJSON_Delete(doc);
  }
  cJSON_Delete(ref);
}

/* ---- the hand-written example ---- */

static void test_example(void) {
  static const char *const names[][2] = {
      {"tok_embd", "model.embed_tokens.weight"},
      {"attn_norm", "model.layers.0.input_layernorm.weight"},
      {"wq", "model.layers.0.self_attn.q_proj.weight"},
      {"wk", "model.layers.0.self_attn.k_proj.weight"},
      {"wv", "model.layers.0.self_attn.v_proj.weight"},
      {"wo", "model.layers.0.self_attn.o_proj.weight"},
      {"ffn_norm", "model.layers.0.post_attention_layernorm.weight"},
      {"w_gate", "model.layers.0.mlp.gate_proj.weight"},
      {"w_up", "model.layers.0.mlp.up_proj.weight"},
      {"w_down", "model.layers.0.mlp.down_proj.weight"},
      {"out_norm", "model.norm.weight"},
      {"lm_head", "lm_head.weight"},
  };
  size_t n;
  char *text = read_all("examples/tiny-llama/model.json", &n);
  cJSON *doc = text ? cJSON_Parse(text) : NULL;
  free(text);
  CHECK(doc != NULL);
  if (!doc) return;
  check_wellformed(doc, "examples/tiny-llama/model.json");
  CHECK_EQ_NUM(cJSON_GetArraySize(item(doc, "tensors")), 13);
  char path[256];
  snprintf(path, sizeof path, "examples/tiny-llama/%s",
           str(cJSON_GetArrayItem(item(doc, "weight_files"), 0), "path"));
  llmc_safetensors_t *st = NULL;
  llmc_status_t s = llmc_safetensors_open(path, &st);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  for (size_t i = 0; st && i < sizeof names / sizeof names[0]; i++) {
    const cJSON *t = tensor(doc, names[i][0]);
    const llmc_safetensors_tensor_t *ref = llmc_safetensors_find(st, names[i][1]);
    CHECK(t && ref);
    if (!t || !ref) continue;
    CHECK_EQ_NUM(num(t, "offset"), (double)ref->offset);
    CHECK_EQ_STR(str(t, "dtype"), ref->dtype);
    const cJSON *shape = item(t, "shape");
    CHECK_EQ_NUM(cJSON_GetArraySize(shape), ref->rank);
    for (int d = 0; d < ref->rank; d++)
      CHECK_EQ_NUM(cJSON_GetArrayItem(shape, d)->valuedouble, (double)ref->shape[d]);
  }
  llmc_safetensors_destroy(st);
  /* Its RoPE table is the importer's, to float precision. */
  cJSON *imported = IMPORT_OK("tests/data/hf/llama_plain", NULL);
  const cJSON *mine = item(tensor(doc, "rope_freqs"), "data");
  const cJSON *theirs = imported ? item(tensor(imported, "rope.inv_freq"), "data") : NULL;
  CHECK_EQ_NUM(cJSON_GetArraySize(mine), cJSON_GetArraySize(theirs));
  for (int i = 0; theirs && i < cJSON_GetArraySize(theirs); i++)
    CHECK_EQ_NUM((float)cJSON_GetArrayItem(mine, i)->valuedouble,
                 (float)cJSON_GetArrayItem(theirs, i)->valuedouble);
  cJSON_Delete(imported);
  cJSON_Delete(doc);
}

/* ---- errors ---- */

static void test_errors(void) {
  const char *folder = make_dir("no_config");
  EXPECT_ERROR(folder, IO, "no_config/config.json", NULL);

  folder = llama_variant("bad_json", NULL, NULL);
  write_file(folder, "config.json", "{\n  \"hidden_size\": 128,\n  oops\n}\n");
  EXPECT_ERROR(folder, INVALID_ARGUMENT, "bad_json/config.json:3:", "not valid JSON");

  cJSON *c = llama_config();
  cJSON_DeleteItemFromObject(c, "hidden_size");
  folder = llama_variant("no_hidden", c, NULL);
  EXPECT_ERROR(folder, INVALID_ARGUMENT, "config.json: missing required key \"hidden_size\"", NULL);
  cJSON_Delete(c);

  c = llama_config();
  cJSON_ReplaceItemInObject(c, "architectures", cJSON_Parse("[\"FooForCausalLM\"]"));
  folder = llama_variant("foo_arch", c, NULL);
  EXPECT_ERROR(folder, UNIMPLEMENTED, "unsupported architecture \"FooForCausalLM\"",
               "LlamaForCausalLM, MistralForCausalLM");
  cJSON_Delete(c);

  c = llama_config();
  cJSON_ReplaceItemInObject(c, "hidden_act", cJSON_CreateString("relu"));
  folder = llama_variant("relu", c, NULL);
  EXPECT_ERROR(folder, UNIMPLEMENTED, "activation \"relu\"", NULL);
  cJSON_Delete(c);

  c = llama_config();
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(c, "rope_parameters"), "rope_type",
                            cJSON_CreateString("yarn"));
  folder = llama_variant("yarn", c, NULL);
  EXPECT_ERROR(folder, UNIMPLEMENTED, "unsupported rope_type \"yarn\"", "config.json");
  cJSON_Delete(c);

  cJSON *h = llama_header();
  cJSON_DeleteItemFromObject(h, "model.layers.1.mlp.up_proj.weight");
  folder = llama_variant("missing_tensor", NULL, h);
  EXPECT_ERROR(folder, NOT_FOUND, "tensor model.layers.1.mlp.up_proj.weight is missing",
               "missing_tensor/model.safetensors");
  cJSON_Delete(h);

  h = llama_header();
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "model.layers.0.self_attn.q_proj.weight"),
                            "shape", cJSON_Parse("[64, 256]"));
  folder = llama_variant("wrong_shape", NULL, h);
  EXPECT_ERROR(folder, INVALID_ARGUMENT, "tensor model.layers.0.self_attn.q_proj.weight",
               "has shape [64,256], expected [128,128]");
  cJSON_Delete(h);

  h = llama_header();
  cJSON_ReplaceItemInObject(cJSON_GetObjectItem(h, "model.norm.weight"), "dtype",
                            cJSON_CreateString("I32"));
  folder = llama_variant("int_norm", NULL, h);
  EXPECT_ERROR(folder, UNIMPLEMENTED, "tensor model.norm.weight has dtype I32", NULL);
  cJSON_Delete(h);

  folder = llama_variant("truncated", NULL, NULL);
  char path[512];
  snprintf(path, sizeof path, "%s/model.safetensors", folder);
  CHECK(truncate(path, 1000000) == 0);
  EXPECT_ERROR(folder, INVALID_ARGUMENT, "truncated/model.safetensors", "truncated");
}

/* ---- writing ---- */

static void test_write(void) {
  const char *folder = make_dir("out");
  cJSON *doc = IMPORT_OK("tests/data/hf/llama", folder);
  if (!doc) return;
  /* Relative to the output folder, the path still names the checkpoint. */
  const char *rel = str(cJSON_GetArrayItem(item(doc, "weight_files"), 0), "path");
  char joined[512];
  snprintf(joined, sizeof joined, "%s/%s", folder, rel ? rel : "");
  char *a = realpath(joined, NULL), *b = realpath("tests/data/hf/llama/model.safetensors", NULL);
  CHECK(rel && rel[0] != '/' && a && b && strcmp(a, b) == 0);
  free(a);
  free(b);

  char path[512];
  snprintf(path, sizeof path, "%s/model.json", folder);
  llmc_status_t s = llmc_import_write(doc, path);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  size_t n;
  char *text = read_all(path, &n);
  cJSON *back = text ? cJSON_Parse(text) : NULL;
  CHECK(back && cJSON_Compare(doc, back, true));
  free(text);
  cJSON_Delete(back);
  snprintf(path, sizeof path, "%s/model.json.tmp", folder);
  CHECK(access(path, F_OK) != 0);

  snprintf(path, sizeof path, "%s/no/such/dir/model.json", tmp);
  s = llmc_import_write(doc, path);
  CHECK(llmc_status_code(s) == LLMC_STATUS_IO && strstr(llmc_status_message(s), "model.json.tmp"));
  llmc_status_free(s);
  CHECK(access(path, F_OK) != 0);
  cJSON_Delete(doc);
}

int main(void) {
  if (!mkdtemp(tmp)) return 1;
  test_reference_folders();
  test_llama();
  test_gemma_qwen2_mistral();
  test_qwen3();
  test_phi3();
  test_gemma2();
  test_mixtral();
  test_rope_schemas();
  test_example();
  test_errors();
  test_write();
  char cmd[sizeof tmp + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return check_report("test_import_hf");
}
