/* import_gguf.c — GGUF file -> model.json document (see import_gguf.h).
 *
 * The graph is the one import_hf.c writes for a Llama checkpoint (same ops,
 * same node ids), over llama.cpp's tensor names:
 *
 *   token_embd.weight                  [V, D]   (ggml dims [D, V], reversed)
 *   blk.N.attn_norm.weight             [D]
 *   blk.N.attn_q / attn_k / attn_v     [H*hd, D], [KV*hd, D], [KV*hd, D]
 *   blk.N.attn_output.weight           [D, H*hd]
 *   blk.N.ffn_norm.weight              [D]
 *   blk.N.ffn_gate / ffn_up            [F, D]
 *   blk.N.ffn_down.weight              [D, F]
 *   output_norm.weight                 [D]
 *   output.weight                      [V, D]   (absent: tied to token_embd)
 *   rope_freqs.weight                  [hd/2]   (optional: Llama 3.1 RoPE factors)
 *
 * Hyper-parameters come from the "llama." metadata keys and are written to
 * "config" under import_hf.c's normalised names. The RoPE table is
 * computed here (inline tensor "rope.inv_freq") from the float32 table
 * import_hf.c starts from too (import_common.h), then divided by the linear
 * scaling factor or by rope_freqs.weight, which is how llama.cpp applies
 * either. llama.cpp's Q and K rows are in its interleaved RoPE order, so the
 * rope nodes get interleaved=1 and the weights are used as they are
 * (docs/gguf.md). */
#include "import_gguf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"
#include "import_common.h"

/* Propagates a status unchanged: leaf errors already name the file and the
 * key or tensor. */
#define TRY(expr) LLMC_PROPAGATE(expr)

#define REQUIRED INT64_MIN /* meta_int default: the key must be present */

/* The GGUF architectures this importer writes graphs for. */
static const char *const supported_archs[] = {"llama"};

typedef struct {
  const char *path;
  llmc_gguf_t *g;
  const char *arch;       /* general.architecture, the prefix of hyper-parameter keys */
  cJSON *tensors, *graph; /* the document's arrays, attached when it is complete */
  char key[128];          /* scratch: a metadata key (arch_key) */
  char name[96];          /* scratch: a tensor name (lname) */
  char id[96];            /* scratch: a node id (lid) */

  llmc_import_hparams_t hp; /* dense: n_experts and top_k are 0 */
  const char *inv_freq;     /* name of the RoPE table tensor */
} importer_t;

/* ---- metadata ---- */

/* "<arch>.<suffix>" in the key scratch buffer. */
static const char *arch_key(importer_t *im, const char *suffix) {
  snprintf(im->key, sizeof im->key, "%s.%s", im->arch, suffix);
  return im->key;
}

/* A positive integer key (at most LLMC_IMPORT_MAX_CONFIG_INT); dflt when absent
 * (REQUIRED: an error). */
static llmc_status_t meta_int(const importer_t *im, const char *key, int64_t dflt, int64_t *out) {
  if (!llmc_gguf_find(im->g, key)) {
    if (dflt == REQUIRED)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required key \"%s\"", im->path, key);
    *out = dflt;
    return LLMC_OK;
  }
  if (!llmc_gguf_get_int(im->g, key, out) || *out < 1 || *out > LLMC_IMPORT_MAX_CONFIG_INT)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"%s\" must be a positive integer up to %d", im->path,
                      key, LLMC_IMPORT_MAX_CONFIG_INT);
  return LLMC_OK;
}

/* The shortest decimal that reads back as the same float32: GGUF stores
 * hyper-parameters such as 1e-5 as float32, and config should say 1e-05,
 * not 9.9999997473787516e-06 (the value computed with is the same). */
static double float32_decimal(double v) {
  float f = (float)v;
  char buf[32];
  for (int digits = 1; digits <= 9; digits++) {
    snprintf(buf, sizeof buf, "%.*g", digits, (double)f);
    if (strtof(buf, NULL) == f) return strtod(buf, NULL);
  }
  return v;
}

/* A positive finite number key; dflt when absent (NAN: an error). */
static llmc_status_t meta_num(const importer_t *im, const char *key, double dflt, double *out) {
  const llmc_gguf_kv_t *kv = llmc_gguf_find(im->g, key);
  if (!kv) {
    if (isnan(dflt))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required key \"%s\"", im->path, key);
    *out = dflt;
    return LLMC_OK;
  }
  if (!llmc_gguf_get_float(im->g, key, out) || !isfinite(*out) || !(*out > 0))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"%s\" must be a positive number", im->path, key);
  if (kv->type == LLMC_GGUF_FLOAT32) *out = float32_decimal(*out);
  return LLMC_OK;
}

/* A string key as a NUL-terminated copy (malloc'ed), or NULL when absent
 * or not a string. */
static char *meta_str(const importer_t *im, const char *key) {
  llmc_gguf_str_t s;
  if (!llmc_gguf_get_string(im->g, key, &s)) return NULL;
  char *z = malloc(s.len + 1);
  if (!z) llmc_import_out_of_memory();
  memcpy(z, s.data, s.len);
  z[s.len] = '\0';
  return z;
}

static llmc_status_t find_arch(importer_t *im) {
  char *arch = meta_str(im, "general.architecture");
  if (!arch)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required string key \"general.architecture\"",
                      im->path);
  for (size_t i = 0; i < sizeof supported_archs / sizeof supported_archs[0]; i++) {
    if (strcmp(arch, supported_archs[i]) == 0) {
      im->arch = supported_archs[i];
      free(arch);
      return LLMC_OK;
    }
  }
  char supported[256] = "";
  for (size_t i = 0; i < sizeof supported_archs / sizeof supported_archs[0]; i++) {
    strcat(supported, i ? ", " : "");
    strcat(supported, supported_archs[i]);
  }
  llmc_status_t s = LLMC_ERROR(UNIMPLEMENTED,
                               "%s: unsupported GGUF architecture \"%.64s\" (supported: %s)",
                               im->path, arch, supported);
  free(arch);
  return s;
}

static llmc_status_t read_hparams(importer_t *im) {
  const llmc_gguf_tensor_t *embd = llmc_gguf_find_tensor(im->g, "token_embd.weight");
  if (!embd)
    return LLMC_ERROR(NOT_FOUND, "%s: tensor token_embd.weight is missing (the %s graph needs it)",
                      im->path, im->arch);
  if (embd->n_dims != 2 || embd->dims[1] > LLMC_IMPORT_MAX_CONFIG_INT)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor token_embd.weight must be 2-D with at most %d rows (the "
                      "vocabulary)",
                      im->path, LLMC_IMPORT_MAX_CONFIG_INT);
  TRY(meta_int(im, arch_key(im, "embedding_length"), REQUIRED, &im->hp.hidden));
  TRY(meta_int(im, arch_key(im, "vocab_size"), (int64_t)embd->dims[1], &im->hp.vocab));
  TRY(meta_int(im, arch_key(im, "block_count"), REQUIRED, &im->hp.n_layers));
  TRY(meta_int(im, arch_key(im, "attention.head_count"), REQUIRED, &im->hp.heads));
  TRY(meta_int(im, arch_key(im, "attention.head_count_kv"), im->hp.heads, &im->hp.kv_heads));
  TRY(meta_int(im, arch_key(im, "feed_forward_length"), REQUIRED, &im->hp.ffn));
  TRY(meta_int(im, arch_key(im, "context_length"), REQUIRED, &im->hp.max_ctx));
  TRY(meta_num(im, arch_key(im, "attention.layer_norm_rms_epsilon"), NAN, &im->hp.eps));
  int64_t experts = 0; /* dense models have no key, or 0 */
  if (llmc_gguf_get_int(im->g, arch_key(im, "expert_count"), &experts) && experts > 0)
    return LLMC_ERROR(UNIMPLEMENTED, "%s: %s: mixture-of-experts GGUF models are not supported yet",
                      im->path, arch_key(im, "expert_count"));
  if (im->hp.heads % im->hp.kv_heads)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: attention.head_count (%lld) is not a multiple of attention.head_count_kv "
                      "(%lld)",
                      im->path, (long long)im->hp.heads, (long long)im->hp.kv_heads);
  if (im->hp.hidden % im->hp.heads && !llmc_gguf_find(im->g, arch_key(im, "attention.key_length")))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: embedding_length (%lld) is not a multiple of attention.head_count "
                      "(%lld) and there is no attention.key_length",
                      im->path, (long long)im->hp.hidden, (long long)im->hp.heads);
  TRY(meta_int(im, arch_key(im, "attention.key_length"), im->hp.hidden / im->hp.heads,
               &im->hp.head_dim));
  int64_t v_dim, rot;
  TRY(meta_int(im, arch_key(im, "attention.value_length"), im->hp.head_dim, &v_dim));
  TRY(meta_int(im, arch_key(im, "rope.dimension_count"), im->hp.head_dim, &rot));
  if (v_dim != im->hp.head_dim || rot != im->hp.head_dim || im->hp.head_dim % 2)
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: key_length %lld, value_length %lld and rope.dimension_count %lld: llmc "
                      "reads llama models whose RoPE covers the whole (even) head",
                      im->path, (long long)im->hp.head_dim, (long long)v_dim, (long long)rot);
  return LLMC_OK;
}

/* ---- tensors ---- */

/* The llmc dtype of a ggml type, or NULL when llmc does not compute with it. */
static const char *dtype_of(uint32_t ggml_type) {
  switch (ggml_type) {
  case LLMC_GGML_F32: return "f32";
  case LLMC_GGML_F16: return "f16";
  case LLMC_GGML_BF16: return "bf16";
  case LLMC_GGML_Q8_0: return "q8_0";
  case LLMC_GGML_Q4_0: return "q4_0";
  case LLMC_GGML_Q4_K: return "q4_K";
  case LLMC_GGML_Q6_K: return "q6_K";
  default: return NULL;
  }
}

/* Adds GGUF tensor `name` to the document's tensor list after checking it
 * exists with shape expect[rank] (outermost first, i.e. its ggml dims
 * reversed) and a type llmc computes with. *out is the entry. */
static llmc_status_t use_tensor(importer_t *im, const char *name, int rank, const int64_t *expect,
                                cJSON **out) {
  const llmc_gguf_tensor_t *t = llmc_gguf_find_tensor(im->g, name);
  if (!t)
    return LLMC_ERROR(NOT_FOUND, "%s: tensor %s is missing (the %s graph needs it)", im->path,
                      name, im->arch);
  int64_t got[4];
  for (uint32_t d = 0; d < t->n_dims; d++) got[d] = (int64_t)t->dims[t->n_dims - 1 - d];
  bool same = (int)t->n_dims == rank;
  for (int d = 0; d < rank && same; d++) same = got[d] == expect[d];
  if (!same) {
    char want[96], have[96];
    llmc_import_shape_format(want, sizeof want, rank, expect);
    llmc_import_shape_format(have, sizeof have, (int)t->n_dims, got);
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor %s has shape %s (ggml dims reversed), expected %s from the "
                      "metadata",
                      im->path, name, have, want);
  }
  const char *dtype = dtype_of(t->type);
  if (!dtype) {
    const char *type_name = llmc_ggml_type_name(t->type);
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: tensor %s has ggml type %s (llmc reads f32, f16, bf16, q8_0, q4_0, "
                      "q4_K, q6_K)",
                      im->path, name, type_name ? type_name : "unknown");
  }
  cJSON *e = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(e, "name", name));
  llmc_import_must(cJSON_AddStringToObject(e, "dtype", dtype));
  cJSON *shape = llmc_import_must(cJSON_AddArrayToObject(e, "shape"));
  for (int d = 0; d < rank; d++)
    cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)expect[d])));
  llmc_import_must(cJSON_AddNumberToObject(e, "file", 0));
  llmc_import_must(cJSON_AddNumberToObject(e, "offset", (double)t->offset));
  cJSON_AddItemToArray(im->tensors, e);
  *out = e;
  return LLMC_OK;
}

static const char *name_of(const cJSON *entry) {
  return cJSON_GetObjectItemCaseSensitive(entry, "name")->valuestring;
}

/* A matrix [rows, cols], or a vector [rows] when cols is 0. */
static llmc_status_t weight(importer_t *im, const char *name, int64_t rows, int64_t cols,
                            const char **out) {
  cJSON *e;
  TRY(use_tensor(im, name, cols ? 2 : 1, (const int64_t[]){rows, cols}, &e));
  *out = name_of(e);
  return LLMC_OK;
}

/* "blk.<layer>.<what>.weight" in the name scratch buffer. */
static const char *lname(importer_t *im, int layer, const char *what) {
  snprintf(im->name, sizeof im->name, "blk.%d.%s.weight", layer, what);
  return im->name;
}

/* ---- RoPE ---- */

/* The RoPE inverse frequencies as the inline tensor "rope.inv_freq":
 * base^(-2i/hd) in import_hf.c's float32 steps (llmc_import_rope_inv_freq),
 * divided by the linear scaling factor or by rope_freqs.weight when the file
 * has either. */
static llmc_status_t rope_table(importer_t *im) {
  TRY(meta_num(im, arch_key(im, "rope.freq_base"), 10000.0, &im->hp.rope_theta));
  double linear = 1.0;
  char *type = meta_str(im, arch_key(im, "rope.scaling.type"));
  llmc_status_t s = LLMC_OK;
  if (type && strcmp(type, "linear") == 0)
    s = meta_num(im, arch_key(im, "rope.scaling.factor"), NAN, &linear);
  else if (type && strcmp(type, "none") != 0)
    s = LLMC_ERROR(UNIMPLEMENTED, "%s: %s \"%.32s\" is not supported (none, linear)", im->path,
                   arch_key(im, "rope.scaling.type"), type);
  else if (!type) /* older files: rope.scale_linear */
    s = meta_num(im, arch_key(im, "rope.scale_linear"), 1.0, &linear);
  free(type);
  TRY(s);

  const int64_t rot = im->hp.head_dim, n = rot / 2;
  const uint8_t *factors = NULL; /* [n] float32, little-endian like the host */
  const llmc_gguf_tensor_t *ft = llmc_gguf_find_tensor(im->g, "rope_freqs.weight");
  if (ft) {
    if (ft->type != LLMC_GGML_F32 || ft->n_dims != 1 || ft->dims[0] != (uint64_t)n)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor rope_freqs.weight must be f32 [%lld]",
                        im->path, (long long)n);
    TRY(llmc_gguf_tensor_data(im->g, ft, &factors));
  }
  float *inv = malloc(sizeof *inv * (size_t)n);
  if (!inv) llmc_import_out_of_memory();
  llmc_import_rope_inv_freq(im->hp.rope_theta, rot, inv);
  for (int64_t i = 0; i < n; i++) {
    inv[i] /= (float)linear;
    if (factors) {
      float f;
      memcpy(&f, factors + 4 * i, sizeof f);
      if (!(f > 0) || !isfinite(f)) {
        free(inv);
        return LLMC_ERROR(INVALID_ARGUMENT, "%s: rope_freqs.weight[%lld] = %g is not positive",
                          im->path, (long long)i, (double)f);
      }
      inv[i] /= f;
    }
  }
  im->inv_freq = llmc_import_rope_tensor_add(im->tensors, inv, n);
  free(inv);
  return LLMC_OK;
}

/* ---- graph nodes ---- */

/* "l<layer>.<what>" in the id scratch buffer. */
static const char *lid(importer_t *im, int layer, const char *what) {
  snprintf(im->id, sizeof im->id, "l%d.%s", layer, what);
  return im->id;
}

/* Appends a node to the graph (llmc_import_node_add) and returns its id (a
 * copy the document owns); *out_node, unless NULL, is the node. */
static const char *emit(importer_t *im, const char *id, const char *op, int n_args,
                        const char *const *args, cJSON **out_node) {
  cJSON *n = llmc_import_node_add(im->graph, id, op, n_args, args);
  if (out_node) *out_node = n;
  return llmc_import_node_id(n);
}

static const char *op2(importer_t *im, const char *id, const char *op, const char *a,
                       const char *b) {
  return emit(im, id, op, 2, (const char *[]){a, b}, NULL);
}

/* rms_norm(x, w) {eps} with w the vector `wname` of n values. */
static llmc_status_t rms_norm(importer_t *im, const char *id, const char *x, const char *wname,
                              int64_t n, const char **out) {
  const char *w;
  cJSON *node;
  TRY(weight(im, wname, n, 0, &w));
  *out = emit(im, id, "rms_norm", 2, (const char *[]){x, w}, &node);
  llmc_import_attr_num(node, "eps", im->hp.eps);
  return LLMC_OK;
}

/* x · W^T with W = blk.<layer>.<what>.weight [n_out, n_in], as node
 * "l<layer>.<node>". */
static llmc_status_t linear(importer_t *im, int layer, const char *node, const char *what,
                            const char *x, int64_t n_out, int64_t n_in, const char **out) {
  const char *w;
  TRY(weight(im, lname(im, layer, what), n_out, n_in, &w));
  *out = op2(im, lid(im, layer, node), "matmul", x, w);
  return LLMC_OK;
}

/* ---- one decoder layer ---- */

static llmc_status_t attention_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, hd = im->hp.head_dim, H = im->hp.heads, KV = im->hp.kv_heads;
  const char *q, *k, *v;
  cJSON *n;
  TRY(linear(im, layer, "q", "attn_q", h, H * hd, D, &q));
  TRY(linear(im, layer, "k", "attn_k", h, KV * hd, D, &k));
  TRY(linear(im, layer, "v", "attn_v", h, KV * hd, D, &v));
  q = emit(im, lid(im, layer, "q_rope"), "rope", 3, (const char *[]){q, "positions", im->inv_freq},
           &n);
  llmc_import_attr_num(n, "heads", (double)H);
  llmc_import_attr_num(n, "head_dim", (double)hd);
  llmc_import_attr_num(n, "interleaved", 1);
  k = emit(im, lid(im, layer, "k_rope"), "rope", 3, (const char *[]){k, "positions", im->inv_freq},
           &n);
  llmc_import_attr_num(n, "heads", (double)KV);
  llmc_import_attr_num(n, "head_dim", (double)hd);
  llmc_import_attr_num(n, "interleaved", 1);
  const char *kv = emit(im, lid(im, layer, "kv"), "kv_store", 2, (const char *[]){k, v}, &n);
  llmc_import_attr_num(n, "layer", layer);
  const char *a = emit(im, lid(im, layer, "attn"), "attention", 2, (const char *[]){q, kv}, &n);
  llmc_import_attr_num(n, "layer", layer);
  llmc_import_attr_num(n, "heads", (double)H);
  llmc_import_attr_num(n, "kv_heads", (double)KV);
  llmc_import_attr_num(n, "head_dim", (double)hd);
  llmc_import_attr_num(n, "scale", 1.0 / sqrt((double)hd));
  llmc_import_attr_num(n, "softcap", 0);
  llmc_import_attr_num(n, "window", 0);
  return linear(im, layer, "o", "attn_output", a, D, H * hd, out);
}

static llmc_status_t mlp_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, F = im->hp.ffn;
  const char *g, *u;
  cJSON *n;
  TRY(linear(im, layer, "gate", "ffn_gate", h, F, D, &g));
  TRY(linear(im, layer, "up", "ffn_up", h, F, D, &u));
  const char *m = emit(im, lid(im, layer, "glu"), "glu", 2, (const char *[]){g, u}, &n);
  llmc_import_attr_str(n, "act", "silu");
  return linear(im, layer, "down", "ffn_down", m, D, F, out);
}

/* One decoder layer; *x is the residual stream, in and out. */
static llmc_status_t decoder_layer(importer_t *im, int layer, const char **x) {
  const char *h, *o, *d;
  TRY(rms_norm(im, lid(im, layer, "attn_norm"), *x, lname(im, layer, "attn_norm"), im->hp.hidden,
               &h));
  TRY(attention_block(im, layer, h, &o));
  *x = op2(im, lid(im, layer, "attn_res"), "add", *x, o);
  TRY(rms_norm(im, lid(im, layer, "ffn_norm"), *x, lname(im, layer, "ffn_norm"), im->hp.hidden,
               &h));
  TRY(mlp_block(im, layer, h, &d));
  *x = op2(im, lid(im, layer, "ffn_res"), "add", *x, d);
  return LLMC_OK;
}

/* ---- the whole model ---- */

static llmc_status_t build_graph(importer_t *im) {
  const char *embed, *x, *head;
  TRY(weight(im, "token_embd.weight", im->hp.vocab, im->hp.hidden, &embed));
  emit(im, "tokens", "tokens", 0, NULL, NULL);
  emit(im, "positions", "positions", 0, NULL, NULL);
  x = emit(im, "embed", "embed", 2, (const char *[]){embed, "tokens"}, NULL);
  for (int layer = 0; layer < im->hp.n_layers; layer++) TRY(decoder_layer(im, layer, &x));
  TRY(rms_norm(im, "final_norm", x, "output_norm.weight", im->hp.hidden, &x));
  if (llmc_gguf_find_tensor(im->g, "output.weight"))
    TRY(weight(im, "output.weight", im->hp.vocab, im->hp.hidden, &head));
  else
    head = embed; /* llama.cpp: no output.weight means tied embeddings */
  x = op2(im, "logits", "matmul", x, head);
  x = emit(im, "logits_sel", "select_rows", 1, (const char *[]){x}, NULL);
  emit(im, "out", "output", 1, (const char *[]){x}, NULL);
  return LLMC_OK;
}

/* A token id key as a JSON number, or null when absent. */
static cJSON *token_id(const importer_t *im, const char *key) {
  int64_t v;
  if (!llmc_gguf_get_int(im->g, key, &v)) return llmc_import_must(cJSON_CreateNull());
  return llmc_import_must(cJSON_CreateNumber((double)v));
}

static llmc_status_t build_config(importer_t *im, cJSON *doc) {
  const llmc_gguf_kv_t *tokens = llmc_gguf_find(im->g, "tokenizer.ggml.tokens");
  if (tokens && (uint64_t)im->hp.vocab != tokens->n)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: the vocabulary has %lld entries but tokenizer.ggml.tokens lists %llu",
                      im->path, (long long)im->hp.vocab, (unsigned long long)tokens->n);
  cJSON *c = llmc_import_config_add(doc, &im->hp);
  cJSON_AddItemToObject(c, "bos_token_id", token_id(im, "tokenizer.ggml.bos_token_id"));
  cJSON_AddItemToObject(c, "eos_token_id", token_id(im, "tokenizer.ggml.eos_token_id"));
  char *tmpl = meta_str(im, "tokenizer.chat_template");
  if (tmpl) llmc_import_must(cJSON_AddStringToObject(c, "chat_template", tmpl));
  free(tmpl);
  return LLMC_OK;
}

/* weight_files (the GGUF file itself) and tokenizer (the same file). */
static llmc_status_t build_files(importer_t *im, cJSON *doc, const char *path_base) {
  char *base = path_base ? realpath(path_base, NULL) : NULL;
  char *rel = llmc_import_relative_path(base, im->path);
  int err = errno;
  free(base);
  if (!rel) return LLMC_ERROR(IO, "%s: %s", im->path, strerror(err));
  cJSON *tok = llmc_import_must(cJSON_AddObjectToObject(doc, "tokenizer"));
  llmc_import_must(cJSON_AddStringToObject(tok, "gguf", rel));
  cJSON *file = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(file, "path", rel));
  llmc_import_must(cJSON_AddStringToObject(file, "format", "gguf"));
  cJSON_AddItemToArray(llmc_import_must(cJSON_AddArrayToObject(doc, "weight_files")), file);
  free(rel);
  return LLMC_OK;
}

static llmc_status_t import(importer_t *im, const char *path_base, cJSON *doc) {
  TRY(llmc_gguf_open(im->path, &im->g));
  TRY(find_arch(im));
  TRY(read_hparams(im));
  llmc_import_doc_begin(doc, im->arch, &im->tensors, &im->graph);
  TRY(rope_table(im));
  TRY(build_config(im, doc));
  TRY(build_files(im, doc, path_base));
  return build_graph(im);
}

llmc_status_t llmc_import_gguf(const char *path, const char *path_base, cJSON **out_doc) {
  importer_t im = {.path = path};
  cJSON *doc = llmc_import_must(cJSON_CreateObject());
  llmc_status_t s = import(&im, path_base, doc);
  llmc_gguf_close(im.g);
  return llmc_import_doc_finish(s, doc, im.tensors, im.graph, out_doc);
}
