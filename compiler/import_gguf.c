/* import_gguf.c — GGUF file -> model.json document (see import_gguf.h).
 *
 * The graph is the one import_hf.c writes for the same family (same ops,
 * same node ids), over llama.cpp's tensor names. What a family's GGUF file
 * holds is what llama.cpp's convert_hf_to_gguf.py writes for it and what
 * llama.cpp's loader and graph builder (src/llama-model.cpp, src/llama.cpp)
 * read from it; docs/gguf.md has the tables. The per-family differences are
 * one row of `archs` each:
 *
 *   token_embd.weight                  [V, D]   (ggml dims [D, V], reversed)
 *   blk.N.attn_norm.weight             [D]
 *   blk.N.attn_q / attn_k / attn_v     [H*hd, D], [KV*hd, D], [KV*hd, D]  (+ .bias)
 *     or blk.N.attn_qkv                [(H+2KV)*hd, D]                    (phi3)
 *   blk.N.attn_q_norm / attn_k_norm    [hd]                               (qwen3)
 *   blk.N.attn_output.weight           [D, H*hd]
 *   blk.N.post_attention_norm.weight   [D]                                (gemma2)
 *   blk.N.ffn_norm.weight              [D]
 *   blk.N.ffn_gate / ffn_up            [F, D]
 *     or blk.N.ffn_up = [gate; up]     [2F, D]                            (phi3)
 *     or blk.N.ffn_gate_inp [E, D], ffn_{gate,up}_exps [E, F, D]          (llama MoE)
 *   blk.N.ffn_down.weight              [D, F]   (ffn_down_exps [E, D, F])
 *   blk.N.post_ffw_norm.weight         [D]                                (gemma2)
 *   output_norm.weight                 [D]
 *   output.weight                      [V, D]   (absent: tied to token_embd)
 *   rope_freqs.weight                  [rot/2]  (optional: Llama 3.1 RoPE factors)
 *
 * Hyper-parameters come from the "<arch>." metadata keys and are written to
 * "config" under import_hf.c's normalised names. The RoPE table is computed
 * here (inline tensor "rope.inv_freq") from the float32 table import_hf.c
 * starts from too (import_common.h), then divided by the linear scaling
 * factor or by rope_freqs.weight, which is how llama.cpp applies either.
 * llama.cpp's `llama` Q and K rows are in its interleaved RoPE order, so
 * those rope nodes get interleaved=1 and the weights are used as they are
 * (docs/gguf.md); every other family here rotates halves, as Hugging Face
 * does, and its converter leaves the rows alone. */
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

/* Which layers attend through a sliding window, and where its size comes
 * from (llama.cpp's per-architecture rule). */
typedef enum {
  WINDOW_NONE, /* no layer: llama.cpp ignores any window for these families */
  WINDOW_ALL,  /* every layer, <arch>.attention.sliding_window required; 0 = none (Phi-4) */
  WINDOW_EVEN, /* even layers, <arch>.attention.sliding_window, default 4096 (Gemma 2) */
} window_rule_t;

/* What distinguishes one GGUF architecture from llama.cpp's `llama`. */
typedef struct {
  const char *name; /* general.architecture, the prefix of its keys, model.json "architecture" */
  bool interleaved; /* llama.cpp's LLAMA_ROPE_TYPE_NORM: Q/K rows in pair order (else NEOX) */
  bool qkv_bias;    /* attn_q/k/v.bias required (Qwen2); other biases are used when present */
  bool qk_norm;     /* attn_q_norm / attn_k_norm per head before RoPE (Qwen3) */
  bool fused;       /* attn_qkv, and ffn_up holding [gate; up] (Phi-3) */
  bool gemma;       /* embedding * sqrt(D), GELU-tanh MLP; norms stored as 1 + w already */
  bool sandwich;    /* post-attention and post-FFN norms, attention and final softcaps */
  bool experts;     /* <arch>.expert_count > 0 allowed: ffn_*_exps (Mixtral as `llama`) */
  bool whole_rope;  /* rope.dimension_count must be key_length (llama.cpp's graph asserts it) */
  window_rule_t window;
} arch_t;

/* The architectures this importer writes graphs for. */
static const arch_t archs[] = {
    {.name = "llama", .interleaved = true, .experts = true, .whole_rope = true},
    {.name = "qwen2", .qkv_bias = true, .whole_rope = true},
    {.name = "qwen3", .qk_norm = true, .whole_rope = true},
    {.name = "phi3", .fused = true, .window = WINDOW_ALL},
    {.name = "gemma", .gemma = true},
    {.name = "gemma2", .gemma = true, .sandwich = true, .window = WINDOW_EVEN},
};

/* llama.cpp's Gemma 2 default window, for files without the key. */
enum { GEMMA2_DEFAULT_WINDOW = 4096 };

/* llama.cpp scales Gemma 2's queries by 1/sqrt(embedding_length /
 * head_count) for its 27B type, which it recognises by this block count,
 * and by 1/sqrt(key_length) otherwise: GGUF files carry no
 * query_pre_attn_scalar (27B's is 4608/32 = 144, 2B's and 9B's the head
 * size 256). */
enum { GEMMA2_27B_BLOCKS = 46 };

typedef struct {
  const char *path;
  llmc_gguf_t *g;
  const arch_t *arch;
  cJSON *tensors, *graph; /* the document's arrays, attached when it is complete */
  char key[128];          /* scratch: a metadata key (arch_key) */
  char name[96];          /* scratch: a tensor name (lname) */
  char id[96];            /* scratch: a node id (lid) */

  llmc_import_hparams_t hp;
  int64_t rot;                /* rotated dims per head (rope.dimension_count), even, <= head_dim */
  double attn_scale;          /* the attention's score scale */
  double attn_cap, final_cap; /* softcaps, 0 = none */
  int64_t window;             /* sliding window of the layers arch->window picks (0 = none) */
  const char *inv_freq;       /* name of the RoPE table tensor */
} importer_t;

/* ---- metadata ---- */

/* "<arch>.<suffix>" in the key scratch buffer. */
static const char *arch_key(importer_t *im, const char *suffix) {
  snprintf(im->key, sizeof im->key, "%s.%s", im->arch->name, suffix);
  return im->key;
}

/* An integer key from min (0 or 1) up to LLMC_IMPORT_MAX_CONFIG_INT; dflt
 * when absent (REQUIRED: an error). */
static llmc_status_t meta_int(const importer_t *im, const char *key, int64_t min, int64_t dflt,
                              int64_t *out) {
  if (!llmc_gguf_find(im->g, key)) {
    if (dflt == REQUIRED)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required key \"%s\"", im->path, key);
    *out = dflt;
    return LLMC_OK;
  }
  if (!llmc_gguf_get_int(im->g, key, out) || *out < min || *out > LLMC_IMPORT_MAX_CONFIG_INT)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"%s\" must be a %s integer up to %d", im->path, key,
                      min ? "positive" : "non-negative", LLMC_IMPORT_MAX_CONFIG_INT);
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

/* Picks the row of `archs` that general.architecture names; an error
 * listing the supported ones when there is none. */
static llmc_status_t find_arch(importer_t *im) {
  char *arch = meta_str(im, "general.architecture");
  if (!arch)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required string key \"general.architecture\"",
                      im->path);
  char supported[256] = "";
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
    if (strcmp(arch, archs[i].name) == 0) {
      im->arch = &archs[i];
      free(arch);
      return LLMC_OK;
    }
    strcat(supported, i ? ", " : "");
    strcat(supported, archs[i].name);
  }
  llmc_status_t s =
      LLMC_ERROR(UNIMPLEMENTED, "%s: unsupported GGUF architecture \"%.64s\" (supported: %s)",
                 im->path, arch, supported);
  free(arch);
  return s;
}

/* The mixture-of-experts keys: none (or expert_count 0) for a dense model;
 * else expert_used_count from 1 to expert_count, for a family that has
 * experts in llama.cpp. */
static llmc_status_t read_experts(importer_t *im) {
  TRY(meta_int(im, arch_key(im, "expert_count"), 0, 0, &im->hp.n_experts));
  if (!im->hp.n_experts) return LLMC_OK;
  if (!im->arch->experts)
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: %s is %lld: llmc reads mixture-of-experts GGUF files of the llama "
                      "architecture only",
                      im->path, im->key, (long long)im->hp.n_experts);
  TRY(meta_int(im, arch_key(im, "expert_used_count"), 1, REQUIRED, &im->hp.top_k));
  if (im->hp.top_k > im->hp.n_experts)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s (%lld) exceeds %s.expert_count (%lld)", im->path,
                      im->key, (long long)im->hp.top_k, im->arch->name,
                      (long long)im->hp.n_experts);
  return LLMC_OK;
}

/* Head sizes and the rotated part of each head: key_length (default D/H),
 * value_length equal to it, rope.dimension_count (default key_length) even
 * and within the head — the whole head for the families whose llama.cpp
 * graph requires that. */
static llmc_status_t read_head(importer_t *im) {
  if (im->hp.hidden % im->hp.heads && !llmc_gguf_find(im->g, arch_key(im, "attention.key_length")))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: embedding_length (%lld) is not a multiple of attention.head_count "
                      "(%lld) and there is no %s",
                      im->path, (long long)im->hp.hidden, (long long)im->hp.heads, im->key);
  TRY(meta_int(im, arch_key(im, "attention.key_length"), 1, im->hp.hidden / im->hp.heads,
               &im->hp.head_dim));
  int64_t v_dim;
  TRY(meta_int(im, arch_key(im, "attention.value_length"), 1, im->hp.head_dim, &v_dim));
  if (v_dim != im->hp.head_dim)
    return LLMC_ERROR(UNIMPLEMENTED, "%s: %s (%lld) differs from attention.key_length (%lld)",
                      im->path, im->key, (long long)v_dim, (long long)im->hp.head_dim);
  TRY(meta_int(im, arch_key(im, "rope.dimension_count"), 1, im->hp.head_dim, &im->rot));
  if (im->rot % 2 || im->rot > im->hp.head_dim ||
      (im->arch->whole_rope && im->rot != im->hp.head_dim))
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: %s is %lld with heads of %lld: llmc rotates an even number of dims "
                      "within the head, the whole head for %s",
                      im->path, im->key, (long long)im->rot, (long long)im->hp.head_dim,
                      im->arch->name);
  return LLMC_OK;
}

/* The attention's scale, softcaps and window, by the family's rule. */
static llmc_status_t read_attention(importer_t *im) {
  im->attn_scale = 1.0 / sqrt((double)im->hp.head_dim);
  if (im->arch->sandwich) {
    if (im->hp.n_layers == GEMMA2_27B_BLOCKS)
      im->attn_scale = 1.0 / sqrt((double)(im->hp.hidden / im->hp.heads));
    TRY(meta_num(im, arch_key(im, "attn_logit_softcapping"), 50.0, &im->attn_cap));
    TRY(meta_num(im, arch_key(im, "final_logit_softcapping"), 30.0, &im->final_cap));
  }
  switch (im->arch->window) {
  case WINDOW_NONE: break;
  case WINDOW_ALL:
    return meta_int(im, arch_key(im, "attention.sliding_window"), 0, REQUIRED, &im->window);
  case WINDOW_EVEN:
    return meta_int(im, arch_key(im, "attention.sliding_window"), 1, GEMMA2_DEFAULT_WINDOW,
                    &im->window);
  }
  return LLMC_OK;
}

/* Every hyper-parameter into im (hp, rot, the attention's rule), each
 * checked against its bounds and the others; errors name the key. */
static llmc_status_t read_hparams(importer_t *im) {
  const llmc_gguf_tensor_t *embd = llmc_gguf_find_tensor(im->g, "token_embd.weight");
  if (!embd)
    return LLMC_ERROR(NOT_FOUND, "%s: tensor token_embd.weight is missing (the %s graph needs it)",
                      im->path, im->arch->name);
  if (embd->n_dims != 2 || embd->dims[1] > LLMC_IMPORT_MAX_CONFIG_INT)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor token_embd.weight must be 2-D with at most %d rows (the "
                      "vocabulary)",
                      im->path, LLMC_IMPORT_MAX_CONFIG_INT);
  TRY(meta_int(im, arch_key(im, "embedding_length"), 1, REQUIRED, &im->hp.hidden));
  TRY(meta_int(im, arch_key(im, "vocab_size"), 1, (int64_t)embd->dims[1], &im->hp.vocab));
  TRY(meta_int(im, arch_key(im, "block_count"), 1, REQUIRED, &im->hp.n_layers));
  TRY(meta_int(im, arch_key(im, "attention.head_count"), 1, REQUIRED, &im->hp.heads));
  TRY(meta_int(im, arch_key(im, "attention.head_count_kv"), 1, im->hp.heads, &im->hp.kv_heads));
  TRY(meta_int(im, arch_key(im, "feed_forward_length"), 1, REQUIRED, &im->hp.ffn));
  TRY(meta_int(im, arch_key(im, "context_length"), 1, REQUIRED, &im->hp.max_ctx));
  TRY(meta_num(im, arch_key(im, "attention.layer_norm_rms_epsilon"), NAN, &im->hp.eps));
  TRY(read_experts(im));
  if (im->hp.heads % im->hp.kv_heads)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: attention.head_count (%lld) is not a multiple of "
                      "attention.head_count_kv (%lld)",
                      im->path, (long long)im->hp.heads, (long long)im->hp.kv_heads);
  TRY(read_head(im));
  return read_attention(im);
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

/* GGUF tensor `name` in *out, after checking it exists with shape
 * expect[rank] (outermost first, i.e. its ggml dims reversed) and a type
 * llmc computes with. */
static llmc_status_t find_tensor(importer_t *im, const char *name, int rank, const int64_t *expect,
                                 const llmc_gguf_tensor_t **out) {
  const llmc_gguf_tensor_t *t = llmc_gguf_find_tensor(im->g, name);
  if (!t)
    return LLMC_ERROR(NOT_FOUND, "%s: tensor %s is missing (the %s graph needs it)", im->path, name,
                      im->arch->name);
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
  if (!dtype_of(t->type)) {
    const char *type_name = llmc_ggml_type_name(t->type);
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: tensor %s has ggml type %s (llmc reads f32, f16, bf16, q8_0, q4_0, "
                      "q4_K, q6_K)",
                      im->path, name, type_name ? type_name : "unknown");
  }
  *out = t;
  return LLMC_OK;
}

/* Adds the tensor entry `name`: shape [rows] (cols 0) or [rows, cols] of
 * t's type, its bytes at `offset` in the file. Returns the name as the
 * document holds it. */
static const char *add_entry(importer_t *im, const char *name, const llmc_gguf_tensor_t *t,
                             int64_t rows, int64_t cols, uint64_t offset) {
  cJSON *e = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(e, "name", name));
  llmc_import_must(cJSON_AddStringToObject(e, "dtype", dtype_of(t->type)));
  cJSON *shape = llmc_import_must(cJSON_AddArrayToObject(e, "shape"));
  cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)rows)));
  if (cols) cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)cols)));
  llmc_import_must(cJSON_AddNumberToObject(e, "file", 0));
  llmc_import_must(cJSON_AddNumberToObject(e, "offset", (double)offset));
  cJSON_AddItemToArray(im->tensors, e);
  return cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
}

/* A matrix [rows, cols], or a vector [rows] when cols is 0. */
static llmc_status_t weight(importer_t *im, const char *name, int64_t rows, int64_t cols,
                            const char **out) {
  const llmc_gguf_tensor_t *t;
  TRY(find_tensor(im, name, cols ? 2 : 1, (const int64_t[]){rows, cols}, &t));
  *out = add_entry(im, name, t, rows, cols, t->offset);
  return LLMC_OK;
}

/* "blk.<layer>.<what>.<param>" in the name scratch buffer. */
static const char *lname(importer_t *im, int layer, const char *what, const char *param) {
  snprintf(im->name, sizeof im->name, "blk.%d.%s.%s", layer, what, param);
  return im->name;
}

/* ---- RoPE ---- */

/* The RoPE inverse frequencies as the inline tensor "rope.inv_freq":
 * base^(-2i/rot) in import_hf.c's float32 steps (llmc_import_rope_inv_freq),
 * divided by the linear scaling factor or by rope_freqs.weight when the file
 * has either. Phi-3's LongRoPE factors (the 128k models) are refused. */
static llmc_status_t rope_table(importer_t *im) {
  static const char *const longrope[] = {"rope_factors_long.weight", "rope_factors_short.weight"};
  for (size_t i = 0; i < sizeof longrope / sizeof longrope[0]; i++)
    if (llmc_gguf_find_tensor(im->g, longrope[i]))
      return LLMC_ERROR(UNIMPLEMENTED, "%s: tensor %s: LongRoPE scaling is not supported", im->path,
                        longrope[i]);
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

  const int64_t n = im->rot / 2;
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
  llmc_import_rope_inv_freq(im->hp.rope_theta, im->rot, inv);
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

/* Appends a node to the graph (llmc_import_node_add) and returns it. */
static cJSON *emit(importer_t *im, const char *id, const char *op, int n_args,
                   const char *const *args) {
  return llmc_import_node_add(im->graph, id, op, n_args, args);
}

/* Short names for import_common.h's node helpers, which the graph code
 * below nests: id_of(attr_num(emit(...), "eps", eps)). */
static const char *id_of(const cJSON *node) { return llmc_import_node_id(node); }

static cJSON *attr_num(cJSON *node, const char *key, double v) {
  return llmc_import_attr_num(node, key, v);
}

/* Node `id` = op(a) (op1) or op(a, b) (op2); returns its id. */
static const char *op1(importer_t *im, const char *id, const char *op, const char *a) {
  return id_of(emit(im, id, op, 1, (const char *[]){a}));
}

static const char *op2(importer_t *im, const char *id, const char *op, const char *a,
                       const char *b) {
  return id_of(emit(im, id, op, 2, (const char *[]){a, b}));
}

/* Node `id` = columns [begin, end) of x; returns its id. */
static const char *slice(importer_t *im, const char *id, const char *x, int64_t begin,
                         int64_t end) {
  cJSON *n = emit(im, id, "slice", 1, (const char *[]){x});
  return id_of(attr_num(attr_num(n, "begin", (double)begin), "end", (double)end));
}

/* rms_norm(x, w) {eps} with w the vector `wname` of n values. Gemma's
 * weights are used as stored: llama.cpp's converter has added the 1. */
static llmc_status_t rms_norm(importer_t *im, const char *id, const char *x, const char *wname,
                              int64_t n, const char **out) {
  const char *w;
  TRY(weight(im, wname, n, 0, &w));
  *out = id_of(attr_num(emit(im, id, "rms_norm", 2, (const char *[]){x, w}), "eps", im->hp.eps));
  return LLMC_OK;
}

/* x · W^T (+ bias) with W = blk.<layer>.<what>.weight [n_out, n_in], as
 * node "l<layer>.<node>" (the bias add: "l<layer>.<node>_b"). The bias
 * blk.<layer>.<what>.bias [n_out] is used when the file has it, and must be
 * there when bias_required. */
static llmc_status_t linear(importer_t *im, int layer, const char *node, const char *what,
                            const char *x, int64_t n_out, int64_t n_in, bool bias_required,
                            const char **out) {
  const char *w, *b;
  TRY(weight(im, lname(im, layer, what, "weight"), n_out, n_in, &w));
  const char *y = op2(im, lid(im, layer, node), "matmul", x, w);
  if (bias_required || llmc_gguf_find_tensor(im->g, lname(im, layer, what, "bias"))) {
    TRY(weight(im, lname(im, layer, what, "bias"), n_out, 0, &b));
    char id[96];
    snprintf(id, sizeof id, "l%d.%s_b", layer, node);
    y = op2(im, id, "add", y, b);
  }
  *out = y;
  return LLMC_OK;
}

/* rope(x) {heads, head_dim} as node "l<layer>.<node>", interleaved for the
 * families whose converter permuted the Q/K rows into pair order. */
static const char *rope(importer_t *im, int layer, const char *node, const char *x, int64_t heads) {
  cJSON *n =
      emit(im, lid(im, layer, node), "rope", 3, (const char *[]){x, "positions", im->inv_freq});
  attr_num(attr_num(n, "heads", (double)heads), "head_dim", (double)im->hp.head_dim);
  if (im->arch->interleaved) attr_num(n, "interleaved", 1);
  return id_of(n);
}

/* ---- one decoder layer ---- */

/* Self-attention of layer `layer` over the normalised input h. */
static llmc_status_t attention_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, hd = im->hp.head_dim, H = im->hp.heads, KV = im->hp.kv_heads;
  const char *q, *k, *v;
  if (im->arch->fused) {
    const char *qkv;
    TRY(linear(im, layer, "qkv", "attn_qkv", h, (H + 2 * KV) * hd, D, false, &qkv));
    q = slice(im, lid(im, layer, "q"), qkv, 0, H * hd);
    k = slice(im, lid(im, layer, "k"), qkv, H * hd, (H + KV) * hd);
    v = slice(im, lid(im, layer, "v"), qkv, (H + KV) * hd, (H + 2 * KV) * hd);
  } else {
    const bool bias = im->arch->qkv_bias;
    TRY(linear(im, layer, "q", "attn_q", h, H * hd, D, bias, &q));
    TRY(linear(im, layer, "k", "attn_k", h, KV * hd, D, bias, &k));
    TRY(linear(im, layer, "v", "attn_v", h, KV * hd, D, bias, &v));
  }
  if (im->arch->qk_norm) {
    TRY(rms_norm(im, lid(im, layer, "q_norm"), q, lname(im, layer, "attn_q_norm", "weight"), hd,
                 &q));
    TRY(rms_norm(im, lid(im, layer, "k_norm"), k, lname(im, layer, "attn_k_norm", "weight"), hd,
                 &k));
  }
  q = rope(im, layer, "q_rope", q, H);
  k = rope(im, layer, "k_rope", k, KV);
  const char *kv =
      id_of(attr_num(emit(im, lid(im, layer, "kv"), "kv_store", 2, (const char *[]){k, v}), "layer",
                     layer));
  bool slides =
      im->arch->window == WINDOW_ALL || (im->arch->window == WINDOW_EVEN && layer % 2 == 0);
  cJSON *n = emit(im, lid(im, layer, "attn"), "attention", 2, (const char *[]){q, kv});
  attr_num(attr_num(attr_num(n, "layer", layer), "heads", (double)H), "kv_heads", (double)KV);
  attr_num(attr_num(n, "head_dim", (double)hd), "scale", im->attn_scale);
  attr_num(attr_num(n, "softcap", im->attn_cap), "window", slides ? (double)im->window : 0);
  return linear(im, layer, "o", "attn_output", id_of(n), D, H * hd, false, out);
}

/* The dense gated MLP of layer `layer` over h. */
static llmc_status_t mlp_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, F = im->hp.ffn;
  const char *g, *u;
  if (im->arch->fused) {
    const char *gu;
    TRY(linear(im, layer, "gate_up", "ffn_up", h, 2 * F, D, false, &gu));
    g = slice(im, lid(im, layer, "gate"), gu, 0, F);
    u = slice(im, lid(im, layer, "up"), gu, F, 2 * F);
  } else {
    TRY(linear(im, layer, "gate", "ffn_gate", h, F, D, false, &g));
    TRY(linear(im, layer, "up", "ffn_up", h, F, D, false, &u));
  }
  cJSON *n = emit(im, lid(im, layer, "glu"), "glu", 2, (const char *[]){g, u});
  const char *m = id_of(llmc_import_attr_str(n, "act", im->arch->gemma ? "gelu_tanh" : "silu"));
  return linear(im, layer, "down", "ffn_down", m, D, F, false, out);
}

/* The mixture of experts of layer `layer` over h: one moe node. llama.cpp
 * stacks the experts (ffn_gate_exps, ffn_up_exps [E, F, D], ffn_down_exps
 * [E, D, F]); moe wants expert e's gate rows, then its up rows, then the
 * next expert's, so gate_up is a concat of per-expert row ranges of the two
 * stacks, each declared as a tensor of its own at its offset in the file
 * ("blk.N.ffn_gate_exps.E"); down is the stack as it is, declared 2-D. */
static llmc_status_t moe_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, F = im->hp.ffn, E = im->hp.n_experts;
  const char *router, *down;
  const llmc_gguf_tensor_t *gate, *up, *downs;
  TRY(weight(im, lname(im, layer, "ffn_gate_inp", "weight"), E, D, &router));
  TRY(find_tensor(im, lname(im, layer, "ffn_gate_exps", "weight"), 3, (const int64_t[]){E, F, D},
                  &gate));
  TRY(find_tensor(im, lname(im, layer, "ffn_up_exps", "weight"), 3, (const int64_t[]){E, F, D},
                  &up));
  TRY(find_tensor(im, lname(im, layer, "ffn_down_exps", "weight"), 3, (const int64_t[]){E, D, F},
                  &downs));
  down = add_entry(im, lname(im, layer, "ffn_down_exps", "weight"), downs, E * D, F, downs->offset);
  const char **items = malloc(sizeof *items * (size_t)(2 * E));
  if (!items) llmc_import_out_of_memory();
  for (int e = 0; e < E; e++) {
    char name[96];
    /* Rows are whole blocks, so expert e's rows start e/E of the way in. */
    snprintf(name, sizeof name, "blk.%d.ffn_gate_exps.%d", layer, e);
    items[2 * e] =
        add_entry(im, name, gate, F, D, gate->offset + gate->nbytes / (uint64_t)E * (uint64_t)e);
    snprintf(name, sizeof name, "blk.%d.ffn_up_exps.%d", layer, e);
    items[2 * e + 1] =
        add_entry(im, name, up, F, D, up->offset + up->nbytes / (uint64_t)E * (uint64_t)e);
  }
  const char *gate_up =
      llmc_import_concat_tree(im->graph, lid(im, layer, "experts_gate_up"), items, (int)(2 * E));
  free(items);
  cJSON *n = emit(im, lid(im, layer, "moe"), "moe", 4, (const char *[]){h, router, gate_up, down});
  *out = id_of(llmc_import_attr_str(attr_num(n, "top_k", (double)im->hp.top_k), "act", "silu"));
  return LLMC_OK;
}

/* One decoder layer; *x is the residual stream, in and out. */
static llmc_status_t decoder_layer(importer_t *im, int layer, const char **x) {
  const int64_t D = im->hp.hidden;
  const bool sandwich = im->arch->sandwich;
  const char *h, *o, *d;
  TRY(rms_norm(im, lid(im, layer, "attn_norm"), *x, lname(im, layer, "attn_norm", "weight"), D,
               &h));
  TRY(attention_block(im, layer, h, &o));
  if (sandwich)
    TRY(rms_norm(im, lid(im, layer, "attn_post_norm"), o,
                 lname(im, layer, "post_attention_norm", "weight"), D, &o));
  *x = op2(im, lid(im, layer, "attn_res"), "add", *x, o);
  TRY(rms_norm(im, lid(im, layer, "ffn_norm"), *x, lname(im, layer, "ffn_norm", "weight"), D, &h));
  TRY(im->hp.n_experts ? moe_block(im, layer, h, &d) : mlp_block(im, layer, h, &d));
  if (sandwich)
    TRY(rms_norm(im, lid(im, layer, "ffn_post_norm"), d,
                 lname(im, layer, "post_ffw_norm", "weight"), D, &d));
  *x = op2(im, lid(im, layer, "ffn_res"), "add", *x, d);
  return LLMC_OK;
}

/* ---- the whole model ---- */

/* The graph: embedding, the decoder layers, final norm, LM head (and
 * Gemma 2's final softcap), the selected rows as output. */
static llmc_status_t build_graph(importer_t *im) {
  const char *embed, *x, *head;
  TRY(weight(im, "token_embd.weight", im->hp.vocab, im->hp.hidden, &embed));
  emit(im, "tokens", "tokens", 0, NULL);
  emit(im, "positions", "positions", 0, NULL);
  cJSON *n = emit(im, "embed", "embed", 2, (const char *[]){embed, "tokens"});
  if (im->arch->gemma) /* llama.cpp: ggml_scale(inpL, sqrtf(n_embd)), HF's float32 too */
    attr_num(n, "scale", (float)sqrt((double)im->hp.hidden));
  x = id_of(n);
  for (int layer = 0; layer < im->hp.n_layers; layer++) TRY(decoder_layer(im, layer, &x));
  TRY(rms_norm(im, "final_norm", x, "output_norm.weight", im->hp.hidden, &x));
  if (llmc_gguf_find_tensor(im->g, "output.weight"))
    TRY(weight(im, "output.weight", im->hp.vocab, im->hp.hidden, &head));
  else
    head = embed; /* llama.cpp: no output.weight means tied embeddings */
  x = op2(im, "logits", "matmul", x, head);
  if (im->final_cap > 0)
    x = id_of(attr_num(emit(im, "logits_capped", "softcap", 1, (const char *[]){x}), "cap",
                       im->final_cap));
  x = op1(im, "logits_sel", "select_rows", x);
  op1(im, "out", "output", x);
  return LLMC_OK;
}

/* A token id key as a JSON number, or null when absent. */
static cJSON *token_id(const importer_t *im, const char *key) {
  int64_t v;
  if (!llmc_gguf_get_int(im->g, key, &v)) return llmc_import_must(cJSON_CreateNull());
  return llmc_import_must(cJSON_CreateNumber((double)v));
}

/* "config": the hyper-parameters under model.json's names, token ids and
 * chat template; the vocabulary must match the tokenizer's. */
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

/* Fills doc from the file im->path names (llmc_import_gguf's steps). */
static llmc_status_t import(importer_t *im, const char *path_base, cJSON *doc) {
  TRY(llmc_gguf_open(im->path, &im->g));
  TRY(find_arch(im));
  TRY(read_hparams(im));
  llmc_import_doc_begin(doc, im->arch->name, &im->tensors, &im->graph);
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
