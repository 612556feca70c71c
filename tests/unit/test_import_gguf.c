/* test_import_gguf.c — the GGUF importer (compiler/import_gguf.h).
 *
 * 1. stories260K.gguf (f32) and llama-2-tiny-random.gguf (f16 matrices, f32
 *    norms) import into well-formed documents (ops from ir/ops.def with the
 *    right argument counts, ids unique, every argument defined before use,
 *    every tensor used). Each document is checked against the GGUF file
 *    read independently through formats/gguf.h: config values, every tensor
 *    entry (name, dtype, shape = ggml dims reversed, offset = the tensor's
 *    absolute offset), the rope.inv_freq table against theta^(-2i/rot)
 *    computed here, the tokenizer and weight file paths, and the rope nodes
 *    (heads, head_dim, interleaved = 1: llama.cpp stores Q/K rows in
 *    interleaved-pair order and the importer uses them as stored).
 * 2. Each document goes through llmc_model_json_to_ir, shape inference and
 *    the verifier; the output node reads [L, vocab].
 * 3. Small GGUF files written here, laid out as llama.cpp's converter
 *    writes each architecture: a 2-layer llama with tied embeddings; qwen2,
 *    qwen3, phi3, gemma and gemma2 files import into their family's graph
 *    (biases, q/k norms, fused projections and slices, windows, softcaps,
 *    Gemma's stored 1 + w norms, Gemma 2's query scale rule, partial RoPE,
 *    halves-order RoPE); a llama with 9 experts imports into a moe node
 *    over per-expert views of the stacked tensors. Copies with one thing
 *    wrong fail, and so do broken real files: an unsupported architecture,
 *    a missing tensor or key, a wrong shape, RoPE or experts llmc cannot
 *    run, truncated files, a vocabulary-only file. Every error is a status
 *    whose message names the file and the key or tensor.
 * 4. stories260K.gguf compiled to a model.so carries its tokenizer (a
 *    small GGUF in the weights section) and tokenizes as the file does;
 *    copies whose metadata points the tokenizer outside the section, cuts
 *    it short or garbles the reference are refused with an error naming
 *    the .so, never a crash. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "model_doc.h"
#include "compiler/compile.h"
#include "compiler/import_gguf.h"
#include "compiler/model_json.h"
#include "formats/gguf.h"
#include "llmc/runtime.h"
#include "passes/pass.h"
#include "support/file.h"
#include "tokenizer.h"

static char tmp[] = "/tmp/llmc_test_import_gguf_XXXXXX";

/* ---- reading the document ---- */

/* The rules of docs/model-json.md (model_doc.h), and what GGUF import adds:
 * the architecture, every tensor in the one GGUF file (file 0), and two
 * rope nodes (Q and K) per layer. */
static void check_wellformed(const cJSON *doc, const char *arch, const char *what) {
  int before = check_failures;
  check_model_doc(doc, what);
  CHECK_EQ_STR(str(doc, "architecture"), arch);
  const cJSON *t;
  cJSON_ArrayForEach(t, item(doc, "tensors")) CHECK(item(t, "data") || num(t, "file") == 0);
  CHECK_EQ_NUM(count_op(doc, "rope"), 2 * num(item(doc, "config"), "n_layers"));
  if (check_failures != before) fprintf(stderr, "  (in the document of %s)\n", what);
}

static cJSON *import_ok(int line, const char *path, const char *base, const char *arch) {
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import_gguf(path, base, &doc);
  if (s) {
    fprintf(stderr, "%s:%d: importing %s: %s\n", __FILE__, line, path, llmc_status_message(s));
    check_failures++;
    llmc_status_free(s);
    return NULL;
  }
  CHECK(doc != NULL);
  if (doc) check_wellformed(doc, arch, path);
  return doc;
}
#define IMPORT_ARCH_OK(path, base, arch) import_ok(__LINE__, path, base, arch)
#define IMPORT_OK(path, base) IMPORT_ARCH_OK(path, base, "llama")

/* The import must fail with `code` and a message naming the file (`path`
 * as given) and containing want1 and want2 (when not NULL). */
static void expect_error(int line, const char *path, llmc_status_code_t code, const char *want1,
                         const char *want2) {
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import_gguf(path, NULL, &doc);
  const char *msg = llmc_status_message(s);
  if (!s || llmc_status_code(s) != code || !strstr(msg, path) || !strstr(msg, want1) ||
      (want2 && !strstr(msg, want2))) {
    fprintf(stderr, "%s:%d: got code %d \"%s\", expected code %d naming %s with \"%s\" and \"%s\"\n",
            __FILE__, line, llmc_status_code(s), msg, code, path, want1, want2 ? want2 : "");
    check_failures++;
  }
  CHECK(doc == NULL);
  llmc_status_free(s);
  cJSON_Delete(doc);
}
#define EXPECT_ERROR(path, code, w1, w2) expect_error(__LINE__, path, LLMC_STATUS_##code, w1, w2)

/* ---- checks against the GGUF file ---- */

static int64_t gguf_int(const llmc_gguf_t *g, const char *key, int64_t dflt) {
  int64_t v = dflt;
  if (llmc_gguf_find(g, key)) CHECK(llmc_gguf_get_int(g, key, &v));
  return v;
}

static const char *ggml_dtype(uint32_t type) {
  switch (type) {
  case LLMC_GGML_F32: return "f32";
  case LLMC_GGML_F16: return "f16";
  default: return "?";
  }
}

/* Rope nodes: heads H (q) or KV (k), the head size, interleaved = 1. */
static void check_rope_nodes(const cJSON *doc, int64_t H, int64_t KV, int64_t hd, int64_t layers) {
  const cJSON *n;
  int seen = 0;
  cJSON_ArrayForEach(n, item(doc, "graph")) {
    if (!str(n, "op") || strcmp(str(n, "op"), "rope") != 0) continue;
    seen++;
    const char *id = str(n, "id");
    bool is_q = id && strstr(id, ".q_rope"), is_k = id && strstr(id, ".k_rope");
    CHECK(is_q || is_k);
    CHECK(cJSON_IsNumber(item(item(n, "attrs"), "heads")));
    CHECK(cJSON_IsNumber(item(item(n, "attrs"), "head_dim")));
    CHECK_EQ_NUM(attr(n, "heads"), (double)(is_q ? H : KV));
    CHECK_EQ_NUM(attr(n, "head_dim"), (double)hd);
    CHECK_EQ_NUM(attr(n, "interleaved"), 1);
    CHECK_EQ_STR(arg(n, 1), "positions");
    CHECK_EQ_STR(arg(n, 2), "rope.inv_freq");
  }
  CHECK_EQ_NUM(seen, 2 * layers);
  /* Q and K reach the rope nodes straight from their projections of the
   * stored weights: no permutation node, no rewritten tensor. */
  for (int64_t l = 0; l < layers; l++) {
    char id[32], w[64];
    snprintf(id, sizeof id, "l%lld.q_rope", (long long)l);
    n = node(doc, id);
    snprintf(id, sizeof id, "l%lld.q", (long long)l);
    CHECK(n && arg(n, 0) && strcmp(arg(n, 0), id) == 0);
    snprintf(w, sizeof w, "blk.%lld.attn_q.weight", (long long)l);
    CHECK(node(doc, id) && arg(node(doc, id), 1) && strcmp(arg(node(doc, id), 1), w) == 0);
    snprintf(id, sizeof id, "l%lld.k_rope", (long long)l);
    n = node(doc, id);
    snprintf(id, sizeof id, "l%lld.k", (long long)l);
    CHECK(n && arg(n, 0) && strcmp(arg(n, 0), id) == 0);
    snprintf(w, sizeof w, "blk.%lld.attn_k.weight", (long long)l);
    CHECK(node(doc, id) && arg(node(doc, id), 1) && strcmp(arg(node(doc, id), 1), w) == 0);
  }
}

/* theta^(-2i/rot), in float, for i < rot/2 (rot = the head size). */
static void check_inv_freq(const cJSON *doc, double theta, int64_t rot) {
  const cJSON *t = tensor(doc, "rope.inv_freq");
  CHECK(t != NULL);
  if (!t) return;
  CHECK_EQ_STR(str(t, "dtype"), "f32");
  CHECK_EQ_NUM(cJSON_GetArraySize(item(t, "shape")), 1);
  CHECK_EQ_NUM(cJSON_GetArrayItem(item(t, "shape"), 0)->valuedouble, (double)(rot / 2));
  const cJSON *data = item(t, "data");
  CHECK_EQ_NUM(cJSON_GetArraySize(data), (double)(rot / 2));
  CHECK(item(t, "file") == NULL && item(t, "offset") == NULL);
  for (int64_t i = 0; i < rot / 2 && i < cJSON_GetArraySize(data); i++) {
    float want = powf((float)theta, -(float)(2 * i) / (float)rot);
    CHECK_NEAR(cJSON_GetArrayItem(data, (int)i)->valuedouble, want, 1e-6);
  }
  CHECK_EQ_NUM(cJSON_GetArrayItem(data, 0)->valuedouble, 1.0);
}

/* "tokenizer": {"gguf": P} and "weight_files": [{"path": P, "format":
 * "gguf"}], P naming `path` relative to base (absolute when base is NULL). */
static void check_paths(const cJSON *doc, const char *path, const char *base) {
  const cJSON *tok = item(doc, "tokenizer");
  CHECK(cJSON_IsObject(tok) && cJSON_GetArraySize(tok) == 1);
  const char *p = str(tok, "gguf");
  CHECK(p != NULL);
  const cJSON *files = item(doc, "weight_files");
  CHECK(cJSON_IsArray(files) && cJSON_GetArraySize(files) == 1);
  const cJSON *f = cJSON_GetArrayItem(files, 0);
  CHECK_EQ_STR(str(f, "format"), "gguf");
  CHECK_EQ_STR(str(f, "path"), p);
  if (!p) return;
  char joined[1024];
  if (base) {
    CHECK(p[0] != '/');
    snprintf(joined, sizeof joined, "%s/%s", base, p);
  } else {
    CHECK(p[0] == '/');
    snprintf(joined, sizeof joined, "%s", p);
  }
  char *a = realpath(joined, NULL), *b = realpath(path, NULL);
  CHECK(a && b && strcmp(a, b) == 0);
  if (!base) CHECK_EQ_STR(p, b);
  free(a);
  free(b);
}

/* model.json -> IR -> shape inference -> verifier; the output reads
 * [L, vocab]; rope rotates pairs for `llama` only; file tensors become file
 * weights at the same offsets. */
static void check_ir(const cJSON *doc, const char *base, const char *what) {
  const bool interleaved = strcmp(str(doc, "architecture"), "llama") == 0;
  llmc_ir_module_t *m = NULL;
  llmc_status_t s = llmc_model_json_to_ir(doc, what, base, &m);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  if (!m) return;
  s = llmc_pass_shape_infer(m);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  s = llmc_ir_verify(m);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);

  const int64_t vocab = (int64_t)num(item(doc, "config"), "vocab_size");
  int outputs = 0, ropes = 0;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    const llmc_ir_node_t *n = &m->nodes[i];
    if (n->dead) continue;
    if (n->op == LLMC_OP_ROPE) {
      ropes++;
      CHECK_EQ_NUM(llmc_ir_get_int(n, "interleaved", 0), interleaved);
    }
    if (n->op != LLMC_OP_OUTPUT) continue;
    outputs++;
    CHECK(n->n_args == 1 && n->args[0] > 0 && n->args[0] < m->n_nodes);
    if (n->n_args != 1 || !n->args[0] || n->args[0] >= m->n_nodes) continue;
    const llmc_ir_node_t *in = &m->nodes[n->args[0]];
    CHECK_EQ_NUM(in->dtype, LLMC_DTYPE_F32);
    CHECK_EQ_NUM(in->shape.rank, 2);
    CHECK_EQ_NUM(in->shape.dims[0], LLMC_DIM_L);
    CHECK_EQ_NUM(in->shape.dims[1], (double)vocab);
  }
  CHECK_EQ_NUM(outputs, 1);
  CHECK_EQ_NUM(ropes, 2 * num(item(doc, "config"), "n_layers"));

  const cJSON *t;
  cJSON_ArrayForEach(t, item(doc, "tensors")) {
    int64_t w = llmc_ir_find_weight(m, str(t, "name"));
    CHECK(w >= 0);
    if (w < 0) continue;
    const llmc_ir_weight_t *wt = &m->weights[w];
    CHECK_EQ_STR(llmc_dtype_name(wt->dtype), str(t, "dtype"));
    if (item(t, "data")) {
      CHECK(wt->kind == LLMC_WEIGHT_DATA);
    } else {
      CHECK(wt->kind == LLMC_WEIGHT_FILE);
      CHECK_EQ_NUM((double)wt->offset, num(t, "offset"));
    }
  }
  llmc_ir_module_destroy(m);
}

typedef struct {
  const char *path;
  int64_t vocab, hidden, layers, heads, kv_heads, head_dim, ffn, ctx;
  uint64_t n_tensors; /* in the GGUF file */
  uint32_t matrix_type, vector_type;
} model_t;

static void check_model(const model_t *want, const char *base) {
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_open(want->path, &g);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  if (!g) return;
  cJSON *doc = IMPORT_OK(want->path, base);
  if (!doc) {
    llmc_gguf_close(g);
    return;
  }
  int before = check_failures;

  /* Config, against the metadata read here and against known values. */
  const cJSON *c = item(doc, "config");
  const llmc_gguf_tensor_t *embd = llmc_gguf_find_tensor(g, "token_embd.weight");
  CHECK(embd != NULL);
  const llmc_gguf_kv_t *tokens = llmc_gguf_find(g, "tokenizer.ggml.tokens");
  CHECK(tokens != NULL);
  int64_t vocab = gguf_int(g, "llama.vocab_size", embd ? (int64_t)embd->dims[1] : -1);
  int64_t hidden = gguf_int(g, "llama.embedding_length", -1);
  int64_t heads = gguf_int(g, "llama.attention.head_count", -1);
  int64_t kv_heads = gguf_int(g, "llama.attention.head_count_kv", heads);
  int64_t head_dim = gguf_int(g, "llama.attention.key_length", hidden / heads);
  int64_t layers = gguf_int(g, "llama.block_count", -1);
  CHECK_EQ_NUM(num(c, "vocab_size"), (double)vocab);
  CHECK_EQ_NUM(num(c, "vocab_size"), tokens ? (double)tokens->n : -1);
  CHECK_EQ_NUM(num(c, "vocab_size"), (double)want->vocab);
  CHECK_EQ_NUM(num(c, "hidden_size"), (double)hidden);
  CHECK_EQ_NUM(num(c, "hidden_size"), (double)want->hidden);
  CHECK_EQ_NUM(num(c, "n_layers"), (double)layers);
  CHECK_EQ_NUM(num(c, "n_layers"), (double)want->layers);
  CHECK_EQ_NUM(num(c, "n_heads"), (double)heads);
  CHECK_EQ_NUM(num(c, "n_heads"), (double)want->heads);
  CHECK_EQ_NUM(num(c, "n_kv_heads"), (double)kv_heads);
  CHECK_EQ_NUM(num(c, "n_kv_heads"), (double)want->kv_heads);
  CHECK_EQ_NUM(num(c, "head_dim"), (double)head_dim);
  CHECK_EQ_NUM(num(c, "head_dim"), (double)gguf_int(g, "llama.rope.dimension_count", head_dim));
  CHECK_EQ_NUM(num(c, "head_dim"), (double)want->head_dim);
  CHECK_EQ_NUM(num(c, "intermediate_size"), (double)gguf_int(g, "llama.feed_forward_length", -1));
  CHECK_EQ_NUM(num(c, "intermediate_size"), (double)want->ffn);
  CHECK_EQ_NUM(num(c, "max_context"), (double)gguf_int(g, "llama.context_length", -1));
  CHECK_EQ_NUM(num(c, "max_context"), (double)want->ctx);
  double eps = NAN, theta = 10000.0;
  CHECK(llmc_gguf_get_float(g, "llama.attention.layer_norm_rms_epsilon", &eps));
  CHECK_EQ_NUM((float)num(c, "rms_norm_eps"), (float)eps);
  CHECK_EQ_NUM(num(c, "rms_norm_eps"), 1e-5); /* float32 1e-5, written as its shortest decimal */
  if (llmc_gguf_find(g, "llama.rope.freq_base"))
    CHECK(llmc_gguf_get_float(g, "llama.rope.freq_base", &theta));
  CHECK_EQ_NUM((float)num(c, "rope_theta"), (float)theta);
  CHECK_EQ_NUM(num(c, "bos_token_id"), (double)gguf_int(g, "tokenizer.ggml.bos_token_id", -1));
  CHECK_EQ_NUM(num(c, "eos_token_id"), (double)gguf_int(g, "tokenizer.ggml.eos_token_id", -1));
  CHECK_EQ_NUM(num(c, "bos_token_id"), 1);
  CHECK_EQ_NUM(num(c, "eos_token_id"), 2);

  /* Tensors: every GGUF tensor, plus the RoPE table. */
  CHECK_EQ_NUM(g->n_tensors, (double)want->n_tensors);
  CHECK_EQ_NUM(cJSON_GetArraySize(item(doc, "tensors")), (double)(g->n_tensors + 1));
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    const llmc_gguf_tensor_t *gt = &g->tensors[i];
    char name[80];
    snprintf(name, sizeof name, "%.*s", (int)gt->name.len, gt->name.data);
    const cJSON *t = tensor(doc, name);
    if (!t) fprintf(stderr, "%s: no tensor entry for %s\n", want->path, name);
    CHECK(t != NULL);
    if (!t) continue;
    CHECK_EQ_NUM(gt->type, gt->n_dims == 2 ? want->matrix_type : want->vector_type);
    CHECK_EQ_STR(str(t, "dtype"), ggml_dtype(gt->type));
    const cJSON *shape = item(t, "shape");
    CHECK_EQ_NUM(cJSON_GetArraySize(shape), gt->n_dims);
    for (uint32_t d = 0; d < gt->n_dims && d < (uint32_t)cJSON_GetArraySize(shape); d++)
      CHECK_EQ_NUM(cJSON_GetArrayItem(shape, (int)d)->valuedouble,
                   (double)gt->dims[gt->n_dims - 1 - d]);
    CHECK_EQ_NUM(num(t, "file"), 0);
    CHECK_EQ_NUM(num(t, "offset"), (double)gt->offset);
    CHECK(gt->offset >= g->data_offset);
  }
  /* A few shapes spelled out ([outermost, innermost]). */
  const cJSON *shape = item(tensor(doc, "token_embd.weight"), "shape");
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, (double)want->vocab);
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, (double)want->hidden);
  shape = item(tensor(doc, "blk.0.attn_k.weight"), "shape");
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, (double)(want->kv_heads * want->head_dim));
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, (double)want->hidden);
  shape = item(tensor(doc, "blk.0.ffn_down.weight"), "shape");
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, (double)want->hidden);
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, (double)want->ffn);

  check_inv_freq(doc, theta, head_dim);
  check_paths(doc, want->path, base);
  check_rope_nodes(doc, heads, kv_heads, head_dim, layers);
  /* Both files have an LM head of their own. */
  CHECK_EQ_STR(arg(node(doc, "logits"), 1), "output.weight");
  CHECK_EQ_STR(arg(node(doc, "out"), 0), "logits_sel");
  check_ir(doc, base, want->path);
  if (check_failures != before) fprintf(stderr, "  (checking %s)\n", want->path);
  cJSON_Delete(doc);
  llmc_gguf_close(g);
}

static void test_real_files(void) {
  const model_t stories = {
      .path = "tests/data/models/stories260K.gguf",
      .vocab = 512, .hidden = 64, .layers = 5, .heads = 8, .kv_heads = 4, .head_dim = 8,
      .ffn = 172, .ctx = 2048, .n_tensors = 48,
      .matrix_type = LLMC_GGML_F32, .vector_type = LLMC_GGML_F32,
  };
  const model_t tiny = {
      .path = "tests/data/models/llama-2-tiny-random.gguf",
      .vocab = 32000, .hidden = 8, .layers = 1, .heads = 2, .kv_heads = 2, .head_dim = 4,
      .ffn = 32, .ctx = 4096, .n_tensors = 12,
      .matrix_type = LLMC_GGML_F16, .vector_type = LLMC_GGML_F32,
  };
  /* Paths absolute (no base), relative to the file's own folder, and
   * relative to an unrelated folder. */
  check_model(&stories, NULL);
  check_model(&stories, "tests/data/models");
  check_model(&tiny, "tests/data");
  check_model(&tiny, tmp);

  cJSON *doc = IMPORT_OK("tests/data/models/stories260K.gguf", "tests/data/models");
  if (doc) {
    CHECK_EQ_STR(str(item(doc, "tokenizer"), "gguf"), "stories260K.gguf");
    cJSON_Delete(doc);
  }
}

/* ---- GGUF files written here ---- */

enum { KV_STR, KV_U32, KV_F32 };

typedef struct {
  char key[64];
  int type;
  char s[32];
  uint32_t u;
  float f;
} kv_t;

typedef struct {
  char name[64];
  uint32_t n_dims;
  uint64_t dims[4]; /* ggml order: dims[0] innermost */
  uint32_t type;    /* LLMC_GGML_F32 or LLMC_GGML_F16 */
} tdesc_t;

typedef struct {
  kv_t kv[32];
  int n_kv;
  tdesc_t t[512]; /* a 46-layer model of section 3 */
  int n_t;
} spec_t;

static kv_t *add_kv(spec_t *sp, const char *key, int type) {
  kv_t *kv = &sp->kv[sp->n_kv++];
  memset(kv, 0, sizeof *kv);
  snprintf(kv->key, sizeof kv->key, "%s", key);
  kv->type = type;
  return kv;
}

static void kv_str(spec_t *sp, const char *key, const char *v) {
  snprintf(add_kv(sp, key, KV_STR)->s, sizeof sp->kv[0].s, "%s", v);
}
static void kv_u32(spec_t *sp, const char *key, uint32_t v) { add_kv(sp, key, KV_U32)->u = v; }
static void kv_f32(spec_t *sp, const char *key, float v) { add_kv(sp, key, KV_F32)->f = v; }

static void add_t(spec_t *sp, const char *name, uint32_t type, uint64_t inner, uint64_t outer) {
  tdesc_t *t = &sp->t[sp->n_t++];
  memset(t, 0, sizeof *t);
  snprintf(t->name, sizeof t->name, "%s", name);
  t->type = type;
  t->dims[0] = inner;
  t->dims[1] = outer;
  t->n_dims = outer ? 2 : 1;
}

static bool drop_kv(spec_t *sp, const char *key) {
  for (int i = 0; i < sp->n_kv; i++)
    if (strcmp(sp->kv[i].key, key) == 0) {
      memmove(&sp->kv[i], &sp->kv[i + 1], (size_t)(sp->n_kv - i - 1) * sizeof sp->kv[0]);
      sp->n_kv--;
      return true;
    }
  return false;
}

static tdesc_t *find_t(spec_t *sp, const char *name) {
  for (int i = 0; i < sp->n_t; i++)
    if (strcmp(sp->t[i].name, name) == 0) return &sp->t[i];
  return NULL;
}

static bool drop_t(spec_t *sp, const char *name) {
  tdesc_t *t = find_t(sp, name);
  if (!t) return false;
  memmove(t, t + 1, (size_t)(sp->t + sp->n_t - t - 1) * sizeof *t);
  sp->n_t--;
  return true;
}

/* The tiny model of section 3, laid out as llama.cpp's converter writes GGUF
 * architecture `arch` (any other name gets llama's layout), its keys under
 * `arch`: D 8, 2 heads of head_dim (key_length and value_length written
 * when that is not D/H = 4), 1 KV head, FFN 16, vocabulary 16, `layers`
 * layers, context 64, RoPE base 500000, eps 1e-6, no output.weight (tied
 * embeddings); matrices f16, norms and biases f32. qwen2 adds q/k/v
 * biases, qwen3 per-head attn_q_norm/attn_k_norm, phi3 fuses attn_qkv and
 * ffn_up = [gate; up] and has a sliding window of S_WINDOW, gemma2 adds
 * post_attention_norm and post_ffw_norm. */
enum { S_D = 8, S_H = 2, S_KV = 1, S_HD = 4, S_F = 16, S_V = 16, S_LAYERS = 2, S_CTX = 64 };
enum { S_WINDOW = 5 };

/* "<arch>.<suffix>" (a static buffer: the spec copies keys). */
static const char *arch_key(const char *arch, const char *suffix) {
  static char key[64];
  snprintf(key, sizeof key, "%s.%s", arch, suffix);
  return key;
}

/* Adds tensor blk.<layer>.<what>.<param>: [inner] (outer 0) or [outer, inner]. */
static void add_lt(spec_t *sp, int layer, const char *what, const char *param, uint32_t type,
                   uint64_t inner, uint64_t outer) {
  char name[64];
  snprintf(name, sizeof name, "blk.%d.%s.%s", layer, what, param);
  add_t(sp, name, type, inner, outer);
}

static void tiny_model(spec_t *sp, const char *arch, int layers, int head_dim) {
  const bool qwen2 = !strcmp(arch, "qwen2"), qwen3 = !strcmp(arch, "qwen3");
  const bool phi3 = !strcmp(arch, "phi3"), gemma2 = !strcmp(arch, "gemma2");
  const uint64_t q = (uint64_t)(S_H * head_dim), kv = (uint64_t)(S_KV * head_dim);
  enum { F16 = LLMC_GGML_F16, F32 = LLMC_GGML_F32 };
  memset(sp, 0, sizeof *sp);
  kv_str(sp, "general.architecture", arch);
  kv_str(sp, "general.name", "tiny");
  kv_u32(sp, arch_key(arch, "context_length"), S_CTX);
  kv_u32(sp, arch_key(arch, "embedding_length"), S_D);
  kv_u32(sp, arch_key(arch, "block_count"), (uint32_t)layers);
  kv_u32(sp, arch_key(arch, "feed_forward_length"), S_F);
  kv_u32(sp, arch_key(arch, "attention.head_count"), S_H);
  kv_u32(sp, arch_key(arch, "attention.head_count_kv"), S_KV);
  if (head_dim != S_D / S_H) {
    kv_u32(sp, arch_key(arch, "attention.key_length"), (uint32_t)head_dim);
    kv_u32(sp, arch_key(arch, "attention.value_length"), (uint32_t)head_dim);
  }
  kv_u32(sp, arch_key(arch, "rope.dimension_count"), (uint32_t)head_dim);
  kv_f32(sp, arch_key(arch, "rope.freq_base"), 500000.0f);
  kv_f32(sp, arch_key(arch, "attention.layer_norm_rms_epsilon"), 1e-6f);
  if (phi3) kv_u32(sp, arch_key(arch, "attention.sliding_window"), S_WINDOW);
  kv_u32(sp, "tokenizer.ggml.bos_token_id", 3);
  kv_u32(sp, "tokenizer.ggml.eos_token_id", 7);
  add_t(sp, "token_embd.weight", F16, S_D, S_V);
  add_t(sp, "output_norm.weight", F32, S_D, 0);
  for (int l = 0; l < layers; l++) {
    add_lt(sp, l, "attn_norm", "weight", F32, S_D, 0);
    if (phi3) {
      add_lt(sp, l, "attn_qkv", "weight", F16, S_D, q + 2 * kv);
    } else {
      add_lt(sp, l, "attn_q", "weight", F16, S_D, q);
      add_lt(sp, l, "attn_k", "weight", F16, S_D, kv);
      add_lt(sp, l, "attn_v", "weight", F16, S_D, kv);
    }
    if (qwen2) {
      add_lt(sp, l, "attn_q", "bias", F32, q, 0);
      add_lt(sp, l, "attn_k", "bias", F32, kv, 0);
      add_lt(sp, l, "attn_v", "bias", F32, kv, 0);
    }
    if (qwen3) {
      add_lt(sp, l, "attn_q_norm", "weight", F32, (uint64_t)head_dim, 0);
      add_lt(sp, l, "attn_k_norm", "weight", F32, (uint64_t)head_dim, 0);
    }
    add_lt(sp, l, "attn_output", "weight", F16, q, S_D);
    if (gemma2) add_lt(sp, l, "post_attention_norm", "weight", F32, S_D, 0);
    add_lt(sp, l, "ffn_norm", "weight", F32, S_D, 0);
    if (phi3) {
      add_lt(sp, l, "ffn_up", "weight", F16, S_D, 2 * S_F);
    } else {
      add_lt(sp, l, "ffn_gate", "weight", F16, S_D, S_F);
      add_lt(sp, l, "ffn_up", "weight", F16, S_D, S_F);
    }
    add_lt(sp, l, "ffn_down", "weight", F16, S_F, S_D);
    if (gemma2) add_lt(sp, l, "post_ffw_norm", "weight", F32, S_D, 0);
  }
}

static void tiny_llama(spec_t *sp, const char *arch) { tiny_model(sp, arch, S_LAYERS, S_HD); }

/* tiny_llama("llama") as a mixture of `experts` experts, `used` per token,
 * as llama.cpp's converter writes Mixtral: the dense MLP of every layer
 * replaced by ffn_gate_inp (f32 [E, D]) and the stacked experts
 * ffn_gate_exps, ffn_up_exps (f16 [E, F, D]) and ffn_down_exps ([E, D, F]). */
static void tiny_moe(spec_t *sp, int experts, int used) {
  tiny_llama(sp, "llama");
  kv_u32(sp, "llama.expert_count", (uint32_t)experts);
  kv_u32(sp, "llama.expert_used_count", (uint32_t)used);
  for (int l = 0; l < S_LAYERS; l++) {
    static const char *const dense[] = {"ffn_gate", "ffn_up", "ffn_down"};
    for (size_t i = 0; i < sizeof dense / sizeof dense[0]; i++) {
      char name[64];
      snprintf(name, sizeof name, "blk.%d.%s.weight", l, dense[i]);
      CHECK(drop_t(sp, name));
    }
    add_lt(sp, l, "ffn_gate_inp", "weight", LLMC_GGML_F32, S_D, (uint64_t)experts);
    static const struct {
      const char *what;
      uint64_t inner, middle;
    } stacks[] = {
        {"ffn_gate_exps", S_D, S_F}, {"ffn_up_exps", S_D, S_F}, {"ffn_down_exps", S_F, S_D}};
    for (size_t i = 0; i < sizeof stacks / sizeof stacks[0]; i++) {
      add_lt(sp, l, stacks[i].what, "weight", LLMC_GGML_F16, stacks[i].inner, stacks[i].middle);
      tdesc_t *t = &sp->t[sp->n_t - 1];
      t->n_dims = 3;
      t->dims[2] = (uint64_t)experts;
    }
  }
}

typedef struct {
  uint8_t *data;
  size_t len, cap;
} buf_t;

static void put_bytes(buf_t *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->data = realloc(b->data, b->cap);
    if (!b->data) abort();
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void put(buf_t *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) {
    uint8_t byte = (uint8_t)(v >> (8 * i));
    put_bytes(b, &byte, 1);
  }
}

static void put_str(buf_t *b, const char *s) {
  put(b, strlen(s), 8);
  put_bytes(b, s, strlen(s));
}

static uint64_t tensor_bytes(const tdesc_t *t) {
  uint64_t n = 1;
  for (uint32_t d = 0; d < t->n_dims; d++) n *= t->dims[d];
  return n * (t->type == LLMC_GGML_F16 ? 2 : 4);
}

/* Writes sp as a GGUF v3 file at tmp/name (alignment 32; tensor data: small
 * nonzero values) and returns its path (static buffer). */
static const char *write_gguf(const char *name, const spec_t *sp) {
  static char path[256];
  snprintf(path, sizeof path, "%s/%s", tmp, name);
  buf_t b = {0};
  put_bytes(&b, "GGUF", 4);
  put(&b, 3, 4);
  put(&b, (uint64_t)sp->n_t, 8);
  put(&b, (uint64_t)sp->n_kv, 8);
  for (int i = 0; i < sp->n_kv; i++) {
    const kv_t *kv = &sp->kv[i];
    put_str(&b, kv->key);
    switch (kv->type) {
    case KV_STR: put(&b, LLMC_GGUF_STRING, 4), put_str(&b, kv->s); break;
    case KV_U32: put(&b, LLMC_GGUF_UINT32, 4), put(&b, kv->u, 4); break;
    default: {
      uint32_t bits;
      memcpy(&bits, &kv->f, 4);
      put(&b, LLMC_GGUF_FLOAT32, 4), put(&b, bits, 4);
    }
    }
  }
  uint64_t offset = 0;
  for (int i = 0; i < sp->n_t; i++) {
    const tdesc_t *t = &sp->t[i];
    put_str(&b, t->name);
    put(&b, t->n_dims, 4);
    for (uint32_t d = 0; d < t->n_dims; d++) put(&b, t->dims[d], 8);
    put(&b, t->type, 4);
    put(&b, offset, 8);
    offset += (tensor_bytes(t) + 31) / 32 * 32;
  }
  while (b.len % 32) put(&b, 0, 1);
  for (int i = 0; i < sp->n_t; i++) {
    const tdesc_t *t = &sp->t[i];
    uint64_t n = tensor_bytes(t), elem = t->type == LLMC_GGML_F16 ? 2 : 4;
    for (uint64_t e = 0; e < n / elem; e++) {
      if (elem == 2) {
        put(&b, 0x2e66, 2); /* f16 0.1 */
      } else {
        float one = 1.0f;
        uint32_t bits;
        memcpy(&bits, &one, 4);
        put(&b, bits, 4);
      }
    }
    while (b.len % 32) put(&b, 0, 1);
  }
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (f) {
    CHECK(fwrite(b.data, 1, b.len, f) == b.len);
    fclose(f);
  }
  free(b.data);
  return path;
}

/* The file written here imports: tied embeddings, RoPE base and token ids
 * from its metadata, f16 and f32 tensors. */
static void test_written(void) {
  spec_t sp;
  tiny_llama(&sp, "llama");
  const char *path = write_gguf("tiny.gguf", &sp);
  cJSON *doc = IMPORT_OK(path, tmp);
  if (!doc) return;
  const cJSON *c = item(doc, "config");
  CHECK_EQ_NUM(num(c, "vocab_size"), S_V);
  CHECK_EQ_NUM(num(c, "hidden_size"), S_D);
  CHECK_EQ_NUM(num(c, "n_layers"), S_LAYERS);
  CHECK_EQ_NUM(num(c, "n_heads"), S_H);
  CHECK_EQ_NUM(num(c, "n_kv_heads"), S_KV);
  CHECK_EQ_NUM(num(c, "head_dim"), S_HD);
  CHECK_EQ_NUM(num(c, "intermediate_size"), S_F);
  CHECK_EQ_NUM(num(c, "max_context"), S_CTX);
  CHECK_EQ_NUM(num(c, "rms_norm_eps"), 1e-6);
  CHECK_EQ_NUM(num(c, "rope_theta"), 500000);
  CHECK_EQ_NUM(num(c, "bos_token_id"), 3);
  CHECK_EQ_NUM(num(c, "eos_token_id"), 7);
  CHECK_EQ_STR(str(item(doc, "tokenizer"), "gguf"), "tiny.gguf");
  CHECK_EQ_NUM(cJSON_GetArraySize(item(doc, "tensors")), sp.n_t + 1);
  CHECK(tensor(doc, "output.weight") == NULL);
  CHECK_EQ_STR(arg(node(doc, "logits"), 1), "token_embd.weight"); /* tied */
  CHECK_EQ_STR(str(tensor(doc, "blk.1.attn_v.weight"), "dtype"), "f16");
  CHECK_EQ_STR(str(tensor(doc, "blk.1.ffn_norm.weight"), "dtype"), "f32");
  const cJSON *shape = item(tensor(doc, "blk.1.attn_output.weight"), "shape");
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 0)->valuedouble, S_D);
  CHECK_EQ_NUM(cJSON_GetArrayItem(shape, 1)->valuedouble, S_H * S_HD);
  check_inv_freq(doc, 500000.0, S_HD);
  check_rope_nodes(doc, S_H, S_KV, S_HD, S_LAYERS);
  check_ir(doc, tmp, path);
  cJSON_Delete(doc);
}

/* Node `id`'s argument i is `want`. */
static void check_arg(int line, const cJSON *doc, const char *id, int i, const char *want) {
  const cJSON *n = node(doc, id);
  const char *got = n ? arg(n, i) : NULL;
  if (!got || strcmp(got, want) != 0) {
    fprintf(stderr, "%s:%d: node %s argument %d is %s, expected %s\n", __FILE__, line, id, i,
            n ? (got ? got : "(none)") : "(no such node)", want);
    check_failures++;
  }
}
#define CHECK_ARG(doc, id, i, want) check_arg(__LINE__, doc, id, i, want)

/* Tensor `name`'s shape is [rows] (cols 0) or [rows, cols]. */
static void check_shape(int line, const cJSON *doc, const char *name, double rows, double cols) {
  const cJSON *shape = item(tensor(doc, name), "shape");
  int rank = cJSON_GetArraySize(shape);
  if (rank != (cols ? 2 : 1) || cJSON_GetArrayItem(shape, 0)->valuedouble != rows ||
      (cols && cJSON_GetArrayItem(shape, 1)->valuedouble != cols)) {
    fprintf(stderr, "%s:%d: tensor %s: shape of rank %d, expected [%g%s%g]\n", __FILE__, line, name,
            rank, rows, cols ? ", " : "", cols ? cols : 0.0);
    check_failures++;
  }
}
#define CHECK_SHAPE(doc, name, rows, cols) check_shape(__LINE__, doc, name, rows, cols)

/* Writes the spec, imports it as architecture `arch` and checks its IR;
 * NULL (a failed check) if it does not import. */
static cJSON *import_spec(int line, const spec_t *sp, const char *file, const char *arch) {
  const char *path = write_gguf(file, sp);
  cJSON *doc = import_ok(line, path, tmp, arch);
  if (doc) check_ir(doc, tmp, path);
  return doc;
}
#define IMPORT_SPEC(sp, file, arch) import_spec(__LINE__, sp, file, arch)

/* Each architecture's file imports into its family's graph: what sets the
 * family apart is in the nodes, and RoPE rotates halves (no interleaved
 * attribute) for all but llama. */
static void test_archs(void) {
  spec_t sp;
  static const char *const names[] = {"qwen2", "qwen3", "phi3", "gemma", "gemma2"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    char file[32];
    snprintf(file, sizeof file, "%s.gguf", names[i]);
    tiny_model(&sp, names[i], S_LAYERS, S_HD);
    cJSON *doc = IMPORT_SPEC(&sp, file, names[i]);
    if (!doc) continue;
    int before = check_failures;
    CHECK(item(item(node(doc, "l0.q_rope"), "attrs"), "interleaved") == NULL);
    CHECK(item(item(node(doc, "l1.k_rope"), "attrs"), "interleaved") == NULL);
    CHECK_EQ_NUM(attr(node(doc, "l0.attn"), "scale"), 0.5); /* 1/sqrt(head_dim 4) */
    CHECK_EQ_NUM(count_op(doc, "add_scalar"), 0); /* Gemma's norms hold 1 + w already */
    CHECK_ARG(doc, "logits", 1, "token_embd.weight");
    const bool gemma = !strncmp(names[i], "gemma", 5);
    CHECK_EQ_STR(str(item(node(doc, "l1.glu"), "attrs"), "act"), gemma ? "gelu_tanh" : "silu");
    if (gemma)
      CHECK_EQ_NUM(attr(node(doc, "embed"), "scale"), (double)sqrtf(S_D));
    else
      CHECK(item(item(node(doc, "embed"), "attrs"), "scale") == NULL);
    if (i == 0) { /* qwen2: q/k/v biases, none on the output projection */
      CHECK_ARG(doc, "l1.k_b", 0, "l1.k");
      CHECK_ARG(doc, "l1.k_b", 1, "blk.1.attn_k.bias");
      CHECK_ARG(doc, "l0.q_rope", 0, "l0.q_b");
      CHECK_SHAPE(doc, "blk.0.attn_q.bias", S_H * S_HD, 0);
      CHECK(node(doc, "l0.o_b") == NULL);
    } else {
      CHECK(node(doc, "l0.q_b") == NULL);
    }
    if (i == 1) { /* qwen3: per-head q/k norms before RoPE */
      CHECK_ARG(doc, "l1.q_norm", 1, "blk.1.attn_q_norm.weight");
      CHECK_ARG(doc, "l1.k_norm", 0, "l1.k");
      CHECK_ARG(doc, "l1.k_rope", 0, "l1.k_norm");
      CHECK_SHAPE(doc, "blk.0.attn_k_norm.weight", S_HD, 0);
    }
    if (i == 2) { /* phi3: fused projections, a window on every layer */
      CHECK_ARG(doc, "l0.qkv", 1, "blk.0.attn_qkv.weight");
      CHECK_SHAPE(doc, "blk.0.attn_qkv.weight", (S_H + 2 * S_KV) * S_HD, S_D);
      CHECK_EQ_NUM(attr(node(doc, "l0.k"), "begin"), S_H * S_HD);
      CHECK_EQ_NUM(attr(node(doc, "l0.v"), "end"), (S_H + 2 * S_KV) * S_HD);
      CHECK_ARG(doc, "l1.gate_up", 1, "blk.1.ffn_up.weight");
      CHECK_SHAPE(doc, "blk.1.ffn_up.weight", 2 * S_F, S_D);
      CHECK_EQ_NUM(attr(node(doc, "l1.up"), "begin"), S_F);
      CHECK_EQ_NUM(attr(node(doc, "l0.attn"), "window"), S_WINDOW);
      CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), S_WINDOW);
    } else {
      CHECK_EQ_NUM(attr(node(doc, "l0.attn"), "window"), i == 4 ? 4096 : 0);
    }
    if (i == 3) CHECK_ARG(doc, "l0.attn_norm", 1, "blk.0.attn_norm.weight");
    if (i == 4) { /* gemma2: sandwich norms, softcaps and windows by default */
      CHECK_ARG(doc, "l0.attn_post_norm", 1, "blk.0.post_attention_norm.weight");
      CHECK_ARG(doc, "l0.attn_res", 1, "l0.attn_post_norm");
      CHECK_ARG(doc, "l1.ffn_post_norm", 1, "blk.1.post_ffw_norm.weight");
      CHECK_ARG(doc, "l1.ffn_res", 1, "l1.ffn_post_norm");
      CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "softcap"), 50);
      CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), 0);
      CHECK_EQ_NUM(attr(node(doc, "logits_capped"), "cap"), 30);
      CHECK_ARG(doc, "logits_sel", 0, "logits_capped");
    } else {
      CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "softcap"), 0);
      CHECK(node(doc, "logits_capped") == NULL);
    }
    if (check_failures != before) fprintf(stderr, "  (in the document of %s)\n", names[i]);
    cJSON_Delete(doc);
  }

  /* gemma2 with its keys; queries scaled by 1/sqrt(head size), or by
   * 1/sqrt(D/H) in a model of 46 blocks (llama.cpp's 27B rule). */
  static const struct {
    int layers;
    double scale;
  } gemma2[] = {{26, 0.35355339059327373}, {46, 0.5}};
  for (size_t i = 0; i < sizeof gemma2 / sizeof gemma2[0]; i++) {
    tiny_model(&sp, "gemma2", gemma2[i].layers, 2 * S_HD);
    kv_f32(&sp, "gemma2.attn_logit_softcapping", 3.0f);
    kv_f32(&sp, "gemma2.final_logit_softcapping", 5.0f);
    kv_u32(&sp, "gemma2.attention.sliding_window", 6);
    cJSON *doc = IMPORT_SPEC(&sp, "gemma2_keys.gguf", "gemma2");
    if (!doc) continue;
    CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "scale"), gemma2[i].scale);
    CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "head_dim"), 2 * S_HD);
    CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "softcap"), 3);
    CHECK_EQ_NUM(attr(node(doc, "l2.attn"), "window"), 6);
    CHECK_EQ_NUM(attr(node(doc, "l3.attn"), "window"), 0);
    CHECK_EQ_NUM(attr(node(doc, "logits_capped"), "cap"), 5);
    cJSON_Delete(doc);
  }

  /* phi3: a window of 0 is none (Phi-4); partial rotary embeddings. */
  tiny_model(&sp, "phi3", S_LAYERS, S_HD);
  CHECK(drop_kv(&sp, "phi3.attention.sliding_window"));
  kv_u32(&sp, "phi3.attention.sliding_window", 0);
  CHECK(drop_kv(&sp, "phi3.rope.dimension_count"));
  kv_u32(&sp, "phi3.rope.dimension_count", S_HD / 2);
  cJSON *doc = IMPORT_SPEC(&sp, "phi3_partial.gguf", "phi3");
  if (doc) {
    CHECK_EQ_NUM(attr(node(doc, "l1.attn"), "window"), 0);
    CHECK_SHAPE(doc, "rope.inv_freq", S_HD / 4, 0);
    check_inv_freq(doc, 500000.0, S_HD / 2);
    cJSON_Delete(doc);
  }

  /* llama: biases are used where the file has them. */
  tiny_llama(&sp, "llama");
  add_t(&sp, "blk.0.attn_q.bias", LLMC_GGML_F32, S_H * S_HD, 0);
  add_t(&sp, "blk.1.ffn_down.bias", LLMC_GGML_F32, S_D, 0);
  doc = IMPORT_SPEC(&sp, "llama_bias.gguf", "llama");
  if (doc) {
    CHECK_ARG(doc, "l0.q_b", 1, "blk.0.attn_q.bias");
    CHECK_ARG(doc, "l0.q_rope", 0, "l0.q_b");
    CHECK(node(doc, "l1.q_b") == NULL);
    CHECK_ARG(doc, "l1.down_b", 1, "blk.1.ffn_down.bias");
    CHECK_ARG(doc, "l1.ffn_res", 1, "l1.down_b");
    cJSON_Delete(doc);
  }
}

/* Mixtral as llama.cpp writes it: 9 experts (more than one concat takes),
 * 2 per token. The moe node reads the router, a concat tree of per-expert
 * row ranges of the stacked gate and up tensors (gate rows of expert 0, its
 * up rows, expert 1's, ...) declared at their offsets in the file, and the
 * stacked down tensor declared 2-D. */
static void test_moe(void) {
  enum { E = 9 };
  spec_t sp;
  tiny_moe(&sp, E, 2);
  const char *path = write_gguf("moe.gguf", &sp);
  cJSON *doc = IMPORT_SPEC(&sp, "moe.gguf", "llama");
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_open(path, &g);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  llmc_status_free(s);
  if (!doc || !g) {
    cJSON_Delete(doc);
    llmc_gguf_close(g);
    return;
  }
  const cJSON *c = item(doc, "config");
  CHECK_EQ_NUM(num(c, "n_experts"), E);
  CHECK_EQ_NUM(num(c, "n_experts_per_tok"), 2);
  CHECK_ARG(doc, "l1.moe", 0, "l1.ffn_norm");
  CHECK_ARG(doc, "l1.moe", 1, "blk.1.ffn_gate_inp.weight");
  CHECK_ARG(doc, "l1.moe", 2, "l1.experts_gate_up");
  CHECK_ARG(doc, "l1.moe", 3, "blk.1.ffn_down_exps.weight");
  CHECK_ARG(doc, "l1.ffn_res", 1, "l1.moe");
  CHECK_EQ_NUM(attr(node(doc, "l1.moe"), "top_k"), 2);
  CHECK_EQ_STR(str(item(node(doc, "l1.moe"), "attrs"), "act"), "silu");
  CHECK_SHAPE(doc, "blk.1.ffn_gate_inp.weight", E, S_D);
  CHECK_SHAPE(doc, "blk.1.ffn_down_exps.weight", E * S_D, S_F);
  CHECK_EQ_NUM(num(tensor(doc, "blk.1.ffn_down_exps.weight"), "offset"),
               (double)llmc_gguf_find_tensor(g, "blk.1.ffn_down_exps.weight")->offset);
  CHECK(tensor(doc, "blk.1.ffn_gate_exps.weight") == NULL);
  static const char *const stacks[] = {"ffn_gate_exps", "ffn_up_exps"};
  for (int e = 0; e < E; e++) {
    for (int which = 0; which < 2; which++) {
      char name[64], stack[64];
      snprintf(name, sizeof name, "blk.1.%s.%d", stacks[which], e);
      snprintf(stack, sizeof stack, "blk.1.%s.weight", stacks[which]);
      CHECK_SHAPE(doc, name, S_F, S_D);
      CHECK_EQ_STR(str(tensor(doc, name), "dtype"), "f16");
      CHECK_EQ_NUM(num(tensor(doc, name), "offset"),
                   (double)(llmc_gguf_find_tensor(g, stack)->offset + (uint64_t)e * S_F * S_D * 2));
      /* 18 parts: the first 16 in concat .0.0, the last two in .0.1. */
      CHECK_ARG(doc, e < 8 ? "l1.experts_gate_up.0.0" : "l1.experts_gate_up.0.1",
                (2 * e + which) % 16, name);
    }
  }
  CHECK_ARG(doc, "l1.experts_gate_up", 0, "l1.experts_gate_up.0.0");
  CHECK_ARG(doc, "l1.experts_gate_up", 1, "l1.experts_gate_up.0.1");
  cJSON_Delete(doc);
  llmc_gguf_close(g);
}

static void test_errors(void) {
  spec_t sp;
  char path[512];

  /* An architecture llmc has no graph for. */
  tiny_llama(&sp, "mamba");
  EXPECT_ERROR(write_gguf("mamba.gguf", &sp), UNIMPLEMENTED,
               "unsupported GGUF architecture \"mamba\"",
               "(supported: llama, qwen2, qwen3, phi3, gemma, gemma2)");

  /* What one family's graph needs: Qwen2's biases, Qwen3's q/k norms,
   * Phi-3's window key, Gemma 2's post-FFN norms. */
  tiny_llama(&sp, "qwen2");
  CHECK(drop_t(&sp, "blk.1.attn_k.bias"));
  EXPECT_ERROR(write_gguf("qwen2_no_bias.gguf", &sp), NOT_FOUND,
               "tensor blk.1.attn_k.bias is missing", "the qwen2 graph needs it");
  tiny_llama(&sp, "qwen3");
  CHECK(drop_t(&sp, "blk.0.attn_k_norm.weight"));
  EXPECT_ERROR(write_gguf("qwen3_no_norm.gguf", &sp), NOT_FOUND,
               "tensor blk.0.attn_k_norm.weight is missing", NULL);
  tiny_llama(&sp, "phi3");
  CHECK(drop_kv(&sp, "phi3.attention.sliding_window"));
  EXPECT_ERROR(write_gguf("phi3_no_window.gguf", &sp), INVALID_ARGUMENT,
               "missing required key \"phi3.attention.sliding_window\"", NULL);
  tiny_llama(&sp, "phi3");
  find_t(&sp, "blk.0.attn_qkv.weight")->dims[1] = S_H * S_HD;
  EXPECT_ERROR(write_gguf("phi3_qkv.gguf", &sp), INVALID_ARGUMENT, "tensor blk.0.attn_qkv.weight",
               "has shape [8,8] (ggml dims reversed), expected [16,8]");
  tiny_llama(&sp, "gemma2");
  CHECK(drop_t(&sp, "blk.1.post_ffw_norm.weight"));
  EXPECT_ERROR(write_gguf("gemma2_no_post.gguf", &sp), NOT_FOUND,
               "tensor blk.1.post_ffw_norm.weight is missing", NULL);
  tiny_llama(&sp, "gemma2");
  kv_f32(&sp, "gemma2.final_logit_softcapping", 0.0f);
  EXPECT_ERROR(write_gguf("gemma2_cap.gguf", &sp), INVALID_ARGUMENT,
               "\"gemma2.final_logit_softcapping\" must be a positive number", NULL);

  /* RoPE llmc cannot run: Phi-3's LongRoPE, part of a llama or qwen2 head
   * (llama.cpp refuses that too), an odd rotated size, heads whose keys and
   * values differ in size. */
  tiny_llama(&sp, "phi3");
  add_t(&sp, "rope_factors_long.weight", LLMC_GGML_F32, S_HD / 2, 0);
  EXPECT_ERROR(write_gguf("phi3_longrope.gguf", &sp), UNIMPLEMENTED,
               "tensor rope_factors_long.weight", "LongRoPE scaling is not supported");
  tiny_llama(&sp, "llama");
  CHECK(drop_kv(&sp, "llama.rope.dimension_count"));
  kv_u32(&sp, "llama.rope.dimension_count", S_HD / 2);
  EXPECT_ERROR(write_gguf("llama_partial.gguf", &sp), UNIMPLEMENTED,
               "llama.rope.dimension_count is 2 with heads of 4", "the whole head for llama");
  tiny_llama(&sp, "qwen2");
  CHECK(drop_kv(&sp, "qwen2.rope.dimension_count"));
  kv_u32(&sp, "qwen2.rope.dimension_count", S_HD / 2);
  EXPECT_ERROR(write_gguf("qwen2_partial.gguf", &sp), UNIMPLEMENTED,
               "qwen2.rope.dimension_count is 2 with heads of 4", "the whole head for qwen2");
  tiny_llama(&sp, "phi3");
  CHECK(drop_kv(&sp, "phi3.rope.dimension_count"));
  kv_u32(&sp, "phi3.rope.dimension_count", 3);
  EXPECT_ERROR(write_gguf("phi3_odd_rope.gguf", &sp), UNIMPLEMENTED,
               "phi3.rope.dimension_count is 3", "an even number of dims");
  tiny_llama(&sp, "gemma");
  kv_u32(&sp, "gemma.attention.value_length", 2 * S_HD);
  EXPECT_ERROR(write_gguf("gemma_v.gguf", &sp), UNIMPLEMENTED,
               "gemma.attention.value_length (8) differs from attention.key_length (4)", NULL);

  /* Experts: the count of experts used must be there and fit; only llama
   * has experts; the stacks must have the shape the keys imply. */
  tiny_moe(&sp, 4, 2);
  CHECK(drop_kv(&sp, "llama.expert_used_count"));
  EXPECT_ERROR(write_gguf("moe_no_used.gguf", &sp), INVALID_ARGUMENT,
               "missing required key \"llama.expert_used_count\"", NULL);
  tiny_moe(&sp, 4, 5);
  EXPECT_ERROR(write_gguf("moe_used.gguf", &sp), INVALID_ARGUMENT,
               "llama.expert_used_count (5) exceeds llama.expert_count (4)", NULL);
  tiny_llama(&sp, "qwen2");
  kv_u32(&sp, "qwen2.expert_count", 4);
  EXPECT_ERROR(write_gguf("qwen2_moe.gguf", &sp), UNIMPLEMENTED, "qwen2.expert_count is 4",
               "llama architecture only");
  tiny_moe(&sp, 4, 2);
  find_t(&sp, "blk.0.ffn_up_exps.weight")->dims[2] = 3;
  EXPECT_ERROR(write_gguf("moe_up.gguf", &sp), INVALID_ARGUMENT, "tensor blk.0.ffn_up_exps.weight",
               "has shape [3,16,8] (ggml dims reversed), expected [4,16,8]");

  /* A tensor the graph needs. */
  tiny_llama(&sp, "llama");
  CHECK(drop_t(&sp, "blk.1.ffn_up.weight"));
  EXPECT_ERROR(write_gguf("no_ffn_up.gguf", &sp), NOT_FOUND,
               "tensor blk.1.ffn_up.weight is missing", NULL);
  tiny_llama(&sp, "llama");
  CHECK(drop_t(&sp, "token_embd.weight"));
  EXPECT_ERROR(write_gguf("no_embd.gguf", &sp), NOT_FOUND, "tensor token_embd.weight is missing",
               NULL);

  /* Required metadata keys. */
  tiny_llama(&sp, "llama");
  CHECK(drop_kv(&sp, "llama.context_length"));
  EXPECT_ERROR(write_gguf("no_ctx.gguf", &sp), INVALID_ARGUMENT,
               "missing required key \"llama.context_length\"", NULL);
  tiny_llama(&sp, "llama");
  CHECK(drop_kv(&sp, "llama.attention.layer_norm_rms_epsilon"));
  EXPECT_ERROR(write_gguf("no_eps.gguf", &sp), INVALID_ARGUMENT,
               "missing required key \"llama.attention.layer_norm_rms_epsilon\"", NULL);
  tiny_llama(&sp, "llama");
  CHECK(drop_kv(&sp, "general.architecture"));
  EXPECT_ERROR(write_gguf("no_arch.gguf", &sp), INVALID_ARGUMENT, "general.architecture", NULL);

  /* A tensor whose dims disagree with the metadata. */
  tiny_llama(&sp, "llama");
  find_t(&sp, "blk.0.attn_k.weight")->dims[1] = S_H * S_HD;
  EXPECT_ERROR(write_gguf("wrong_k.gguf", &sp), INVALID_ARGUMENT, "tensor blk.0.attn_k.weight",
               "has shape [8,8] (ggml dims reversed), expected [4,8]");

  /* Truncated copies of stories260K.gguf: in the tensor data, and in the
   * metadata. */
  size_t n = 0;
  uint8_t *whole = NULL;
  FILE *f = fopen("tests/data/models/stories260K.gguf", "rb");
  CHECK(f != NULL);
  if (f) {
    whole = malloc(1185376);
    n = fread(whole, 1, 1185376, f);
    fclose(f);
  }
  CHECK_EQ_NUM(n, 1185376);
  if (n == 1185376) {
    snprintf(path, sizeof path, "%s/truncated.gguf", tmp);
    f = fopen(path, "wb");
    CHECK(f && fwrite(whole, 1, 600000, f) == 600000);
    if (f) fclose(f);
    EXPECT_ERROR(path, INVALID_ARGUMENT, "truncated.gguf: tensor", "past the end of the file");

    snprintf(path, sizeof path, "%s/truncated_header.gguf", tmp);
    f = fopen(path, "wb");
    CHECK(f && fwrite(whole, 1, 5000, f) == 5000);
    if (f) fclose(f);
    cJSON *doc = NULL;
    llmc_status_t s = llmc_import_gguf(path, NULL, &doc);
    const char *msg = llmc_status_message(s);
    if (llmc_status_code(s) != LLMC_STATUS_INVALID_ARGUMENT || !strstr(msg, path) ||
        !(strstr(msg, "past the end of the file") || strstr(msg, "does not fit"))) {
      fprintf(stderr, "%s:%d: got code %d \"%s\"\n", __FILE__, __LINE__, llmc_status_code(s), msg);
      check_failures++;
    }
    CHECK(doc == NULL);
    llmc_status_free(s);
  }
  free(whole);

  /* A vocabulary-only file: llama metadata, no tensors. */
  EXPECT_ERROR("tests/data/tokenizers/llama.cpp/ggml-vocab-llama-spm.gguf", NOT_FOUND,
               "tensor token_embd.weight is missing", NULL);

  /* Not a GGUF file, and no file. */
  EXPECT_ERROR("tests/data/models/README.md", INVALID_ARGUMENT, "not a GGUF file", NULL);
  snprintf(path, sizeof path, "%s/missing.gguf", tmp);
  EXPECT_ERROR(path, NOT_FOUND, "no such file", NULL);
}

/* ---- the tokenizer in a compiled model ---- */

/* Writes `so` (len bytes) to `path` with its one occurrence of `from`
 * replaced by `to`, padded with spaces to the same length: JSON ignores
 * them, and nothing else in the file moves. False (and a failed check) if
 * `from` is not there exactly once or `to` is longer. */
static bool write_patched(const char *so, size_t len, const char *path, const char *from,
                          const char *to) {
  size_t n = strlen(from);
  const char *at = NULL;
  int found = 0;
  for (const char *p = so; p + n <= so + len; p++) {
    if (memcmp(p, from, n) != 0) continue;
    found++;
    if (!at) at = p;
  }
  CHECK_MSG(found == 1 && strlen(to) <= n, "\"%s\" found %d times, replacement \"%s\"", from,
            found, to);
  if (found != 1 || strlen(to) > n) return false;
  char *copy = malloc(len);
  if (!copy) return false;
  memcpy(copy, so, len);
  memset(copy + (at - so), ' ', n);
  memcpy(copy + (at - so), to, strlen(to));
  FILE *f = fopen(path, "wb");
  bool written = f && fwrite(copy, 1, len, f) == len;
  if (f && fclose(f) != 0) written = false;
  free(copy);
  CHECK(written);
  return written;
}

/* The model at path loads, and its tokenizer is refused with
 * INVALID_ARGUMENT and a message that names path and contains want. */
static void expect_tokenizer_refused(int line, const char *path, const char *want) {
  llmc_model_t *model = NULL;
  llmc_tokenizer_t *tok = NULL;
  if (!CHECK_OK(llmc_model_load(path, NULL, &model))) return;
  llmc_status_t s = llmc_tokenizer_load_for_model(model, &tok);
  const char *msg = llmc_status_message(s);
  if (llmc_status_code(s) != LLMC_STATUS_INVALID_ARGUMENT || !strstr(msg, path) ||
      !strstr(msg, want)) {
    fprintf(stderr, "%s:%d: got code %d \"%s\", expected an error naming %s with \"%s\"\n",
            __FILE__, line, llmc_status_code(s), msg, path, want);
    check_failures++;
  }
  CHECK(tok == NULL);
  llmc_status_free(s);
  llmc_model_destroy(model);
}
#define EXPECT_REFUSED(path, want) expect_tokenizer_refused(__LINE__, path, want)

/* The ids of text, BOS included, under tok (NULL, and a failed check, on
 * error). */
static int32_t *encode(const llmc_tokenizer_t *tok, const char *text, size_t *n) {
  int32_t *ids = NULL;
  *n = 0;
  CHECK_OK(llmc_tokenizer_encode(tok, text, strlen(text), LLMC_TOKENIZE_ADD_SPECIAL, &ids, n));
  return ids;
}

static void test_compiled_tokenizer(void) {
  const char *gguf = "tests/data/models/stories260K.gguf", *text = "Once upon a time, Lily";
  char so[512];
  snprintf(so, sizeof so, "%s/stories.so", tmp);
  llmc_compile_options_t opts = {.source = gguf, .output = so};
  llmc_model_t *model = NULL;
  if (!CHECK_OK(llmc_compile(&opts)) || !CHECK_OK(llmc_model_load(so, NULL, &model))) return;
  const cJSON *spec = item(model->metadata, "tokenizer");
  double offset = num(spec, "offset"), bytes = num(spec, "bytes");
  CHECK_EQ_STR(str(spec, "embedded"), "gguf");
  CHECK(str(spec, "source") && strstr(str(spec, "source"), "stories260K.gguf"));
  CHECK(fmod(offset, 64) == 0 && bytes > 0 && offset + bytes <= (double)model->weights_bytes);
  if (!(bytes > 0 && offset + bytes <= (double)model->weights_bytes)) {
    llmc_model_destroy(model);
    return;
  }

  /* The embedded GGUF holds the tokenizer's keys and no tensors, and
   * tokenizes as the file does; the tokenizer outlives the model. */
  llmc_gguf_t *g = NULL;
  if (CHECK_OK(llmc_gguf_parse(model->weights + (uint64_t)offset, (uint64_t)bytes, "embedded", &g))) {
    CHECK_EQ_INT(g->n_tensors, 0);
    for (uint64_t i = 0; i < g->n_kv; i++)
      CHECK_MSG((g->kv[i].key.len > 15 && memcmp(g->kv[i].key.data, "tokenizer.ggml.", 15) == 0) ||
                    (g->kv[i].key.len == 12 && memcmp(g->kv[i].key.data, "general.name", 12) == 0),
                "embedded key %.*s", (int)g->kv[i].key.len, g->kv[i].key.data);
    llmc_gguf_close(g);
  }
  llmc_tokenizer_t *tok = NULL, *ref = NULL;
  CHECK_OK(llmc_tokenizer_load_for_model(model, &tok));
  llmc_model_destroy(model);
  if (tok && CHECK_OK(llmc_tokenizer_load_gguf(gguf, &ref))) {
    size_t n = 0, ref_n = 0;
    int32_t *ids = encode(tok, text, &n), *ref_ids = encode(ref, text, &ref_n);
    CHECK_EQ_INT(n, ref_n);
    CHECK(n == ref_n && n > 1 && memcmp(ids, ref_ids, n * sizeof *ids) == 0);
    free(ids);
    free(ref_ids);
  }
  llmc_tokenizer_destroy(tok);
  llmc_tokenizer_destroy(ref);

  /* Copies with the reference broken, each otherwise a valid model. */
  char *file = NULL;
  size_t len = 0;
  if (!CHECK_OK(llmc_file_read_all(so, &file, &len))) return;
  long long o = (long long)offset, b = (long long)bytes;
  char o_s[24], b_s[24], past_s[24], short_s[24], from[128], to[128], bad[512];
  snprintf(o_s, sizeof o_s, "%lld", o);
  snprintf(b_s, sizeof b_s, "%lld", b);
  snprintf(past_s, sizeof past_s, "%lld", o + 64); /* ends just past the section */
  snprintf(short_s, sizeof short_s, "%lld", b - 32); /* cut into the keys, not only the padding */
  const struct {
    const char *embedded, *offset, *bytes, *want;
  } cases[] = {
      {"gguf", o_s, "1e15", "outside the .llmc_weights section"},
      {"gguf", "1e15", b_s, "outside the .llmc_weights section"},
      {"gguf", past_s, b_s, "outside the .llmc_weights section"},
      {"gguf", o_s, short_s, "embedded GGUF tokenizer"},
      {"gguf", "-1", b_s, "\"offset\" must be an integer >= 0"},
      {"gguf", o_s, "0.5", "\"bytes\" one >= 1"},
      {"gguX", o_s, b_s, "\"embedded\" must be \"tokenizer.json\" or \"gguf\""},
  };
  snprintf(from, sizeof from, "\"embedded\":\"gguf\",\"offset\":%s,\"bytes\":%s", o_s, b_s);
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    snprintf(to, sizeof to, "\"embedded\":\"%s\",\"offset\":%s,\"bytes\":%s", cases[i].embedded,
             cases[i].offset, cases[i].bytes);
    snprintf(bad, sizeof bad, "%s/broken%zu.so", tmp, i);
    if (write_patched(file, len, bad, from, to)) EXPECT_REFUSED(bad, cases[i].want);
  }
  free(file);
}

int main(void) {
  if (!mkdtemp(tmp)) return 1;
  test_real_files();
  test_written();
  test_archs();
  test_moe();
  test_errors();
  test_compiled_tokenizer();
  char cmd[sizeof tmp + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", tmp);
  CHECK(system(cmd) == 0);
  return check_report("test_import_gguf");
}
