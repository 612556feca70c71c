/* import_hf.c — Hugging Face folder -> model.json document (see import_hf.h).
 *
 * One forward pass, parameterised by a small table of architecture traits,
 * writes every supported family: Llama and Mistral are the base; Qwen2 adds
 * q/k/v biases, Qwen3 per-head q/k norms, Phi-3 fused qkv and gate_up
 * projections, Gemma (1 + w) norms and a scaled embedding, Gemma-2 extra
 * norms, softcaps and alternating sliding windows, Mixtral a mixture of
 * experts. docs/architectures.md describes each mapping; the HF modeling_*.py
 * files are the authority it follows.
 *
 * The document is built directly as cJSON. Node ids are short ("l3.q",
 * "l3.attn") and never look like checkpoint tensor names ("model.…",
 * "lm_head.weight") or the importer's own ("rope.inv_freq"). Strings handed
 * between helpers are either owned by the document or live in the
 * importer's two scratch buffers (one for tensor names, one for node ids),
 * whose contents the helpers copy before reusing them. What this file writes
 * exactly as import_gguf.c does (nodes, config, the RoPE base table, the
 * document's frame) comes from import_common.h. */
#include "import_hf.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "formats/safetensors.h"
#include "import_common.h"
#include "support/file.h"

/* Propagates a status unchanged: leaf errors already name the file and the
 * key or tensor, and another layer of context would only repeat them. */
#define TRY(expr) LLMC_PROPAGATE(expr)

#define REQUIRED INT64_MIN /* cfg_int default: the key must be present */

/* What distinguishes one supported family from Llama. */
typedef struct {
  const char *name;     /* model.json "architecture", and config.json "model_type" */
  const char *hf_class; /* config.json "architectures"[0] */
  bool qkv_bias;        /* q/k/v projections always carry biases (Qwen2) */
  bool qk_norm;         /* per-head RMSNorm of q and k before RoPE (Qwen3) */
  bool fused_proj;      /* one qkv_proj and one gate_up_proj (Phi-3) */
  bool gemma;           /* (1 + w) norms, sqrt(hidden) embedding scale, gelu_tanh default */
  bool sandwich;        /* Gemma-2: norms after attention and MLP, softcaps */
  bool moe;             /* block-sparse mixture of experts MLP (Mixtral) */
  bool qwen_window;     /* sliding window only with use_sliding_window (Qwen2/3) */
} arch_t;

static const arch_t archs[] = {
    {.name = "llama", .hf_class = "LlamaForCausalLM"},
    {.name = "mistral", .hf_class = "MistralForCausalLM"},
    {.name = "qwen2", .hf_class = "Qwen2ForCausalLM", .qkv_bias = true, .qwen_window = true},
    {.name = "qwen3", .hf_class = "Qwen3ForCausalLM", .qk_norm = true, .qwen_window = true},
    {.name = "phi3", .hf_class = "Phi3ForCausalLM", .fused_proj = true},
    {.name = "gemma", .hf_class = "GemmaForCausalLM", .gemma = true},
    {.name = "gemma2", .hf_class = "Gemma2ForCausalLM", .gemma = true, .sandwich = true},
    {.name = "mixtral", .hf_class = "MixtralForCausalLM", .moe = true},
};

typedef struct {
  const char *folder;
  char *config_path; /* folder/config.json */
  cJSON *cfg;        /* parsed config.json */
  const arch_t *arch;
  llmc_safetensors_t *st;
  cJSON *tensors, *graph; /* the document's arrays, attached when it is complete */
  char name[256];         /* scratch: a tensor name (lname) */
  char id[96];            /* scratch: a node id (lid) */

  llmc_import_hparams_t hp; /* n_experts and top_k: Mixtral only */
  bool attn_bias, mlp_bias; /* config attention_bias / mlp_bias */
  const char *act;          /* "silu" or "gelu_tanh" */
  const char *inv_freq;     /* name of the RoPE table tensor */
} importer_t;

/* ---- files ---- */

static char *path_join(const char *dir, const char *name) {
  size_t n = strlen(dir) + strlen(name) + 2;
  char *p = malloc(n);
  if (p) snprintf(p, n, "%s/%s", dir, name);
  return p;
}

static bool file_exists(const char *path) {
  struct stat sb;
  return stat(path, &sb) == 0 && S_ISREG(sb.st_mode);
}

/* Parses the JSON file at path into *out. Errors name the file and, for a
 * syntax error, the line and column. */
static llmc_status_t read_json(const char *path, cJSON **out) {
  char *text;
  size_t len;
  TRY(llmc_file_read_all(path, &text, &len));
  const char *end = NULL;
  cJSON *root = cJSON_ParseWithOpts(text, &end, false);
  if (!root) {
    int line = 1, col = 1;
    for (const char *p = text; end && p < end; p++, col++)
      if (*p == '\n') line++, col = 0;
    free(text);
    return LLMC_ERROR(INVALID_ARGUMENT, "%s:%d:%d: not valid JSON", path, line, col);
  }
  free(text);
  *out = root;
  return LLMC_OK;
}

/* ---- config.json ---- */

/* A positive integer key (at most LLMC_IMPORT_MAX_CONFIG_INT); dflt when absent or
 * null (REQUIRED: an error). */
static llmc_status_t cfg_int(const importer_t *im, const char *key, int64_t dflt, int64_t *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(im->cfg, key);
  if (!v || cJSON_IsNull(v)) {
    if (dflt == REQUIRED)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required key \"%s\"", im->config_path, key);
    *out = dflt;
    return LLMC_OK;
  }
  if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 ||
      v->valuedouble > LLMC_IMPORT_MAX_CONFIG_INT)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"%s\" must be a positive integer up to %d",
                      im->config_path, key, LLMC_IMPORT_MAX_CONFIG_INT);
  *out = (int64_t)v->valuedouble;
  return LLMC_OK;
}

/* A number key of obj (config.json or its RoPE object `where`); dflt when
 * absent or null (NAN: an error). */
static llmc_status_t cfg_num(const importer_t *im, const cJSON *obj, const char *where,
                             const char *key, double dflt, double *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!v || cJSON_IsNull(v)) {
    if (isnan(dflt))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: missing required key \"%s%s%s\"", im->config_path,
                        where, *where ? "." : "", key);
    *out = dflt;
    return LLMC_OK;
  }
  if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"%s%s%s\" must be a number", im->config_path, where,
                      *where ? "." : "", key);
  *out = v->valuedouble;
  return LLMC_OK;
}

static bool cfg_bool(const cJSON *obj, const char *key, bool dflt) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsBool(v) ? cJSON_IsTrue(v) : dflt;
}

static const char *cfg_str(const cJSON *obj, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* Picks the architecture from "architectures"[0], or "model_type" when a
 * config has no architectures list. */
static llmc_status_t find_arch(importer_t *im) {
  const cJSON *list = cJSON_GetObjectItemCaseSensitive(im->cfg, "architectures");
  const cJSON *first = cJSON_IsArray(list) ? cJSON_GetArrayItem(list, 0) : NULL;
  const char *cls = cJSON_IsString(first) ? first->valuestring : NULL;
  const char *type = cfg_str(im->cfg, "model_type");
  if (!cls && !type)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: missing required key \"architectures\" (or \"model_type\")",
                      im->config_path);
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
    if (cls ? strcmp(cls, archs[i].hf_class) == 0 : strcmp(type, archs[i].name) == 0) {
      im->arch = &archs[i];
      return LLMC_OK;
    }
  }
  char supported[512] = "";
  for (size_t i = 0; i < sizeof archs / sizeof archs[0]; i++) {
    strcat(supported, i ? ", " : "");
    strcat(supported, archs[i].hf_class);
  }
  return LLMC_ERROR(UNIMPLEMENTED, "%s: unsupported architecture \"%s\" (supported: %s)",
                    im->config_path, cls ? cls : type, supported);
}

/* The IR's act (of glu and moe) for the Hugging Face activation `hf`,
 * read from config key `key`. */
static llmc_status_t act_from(const importer_t *im, const char *key, const char *hf,
                              const char **out) {
  if (strcmp(hf, "silu") == 0 || strcmp(hf, "swish") == 0)
    *out = "silu";
  else if (strcmp(hf, "gelu_pytorch_tanh") == 0 || strcmp(hf, "gelu_new") == 0)
    *out = "gelu_tanh";
  else
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: \"%s\": activation \"%s\" is not supported (silu, gelu_pytorch_tanh)",
                      im->config_path, key, hf);
  return LLMC_OK;
}

static llmc_status_t read_hparams(importer_t *im) {
  TRY(cfg_int(im, "vocab_size", REQUIRED, &im->hp.vocab));
  TRY(cfg_int(im, "hidden_size", REQUIRED, &im->hp.hidden));
  TRY(cfg_int(im, "num_hidden_layers", REQUIRED, &im->hp.n_layers));
  TRY(cfg_int(im, "num_attention_heads", REQUIRED, &im->hp.heads));
  TRY(cfg_int(im, "num_key_value_heads", im->hp.heads, &im->hp.kv_heads));
  TRY(cfg_int(im, "intermediate_size", REQUIRED, &im->hp.ffn));
  TRY(cfg_int(im, "max_position_embeddings", REQUIRED, &im->hp.max_ctx));
  TRY(cfg_num(im, im->cfg, "", "rms_norm_eps", NAN, &im->hp.eps));
  if (!(im->hp.eps > 0))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"rms_norm_eps\" must be positive", im->config_path);
  if (im->hp.heads % im->hp.kv_heads)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: num_attention_heads (%lld) is not a multiple of num_key_value_heads "
                      "(%lld)",
                      im->config_path, (long long)im->hp.heads, (long long)im->hp.kv_heads);
  if (im->hp.hidden % im->hp.heads &&
      !cJSON_IsNumber(cJSON_GetObjectItemCaseSensitive(im->cfg, "head_dim")))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: hidden_size (%lld) is not a multiple of num_attention_heads (%lld) "
                      "and there is no \"head_dim\"",
                      im->config_path, (long long)im->hp.hidden, (long long)im->hp.heads);
  TRY(cfg_int(im, "head_dim", im->hp.hidden / im->hp.heads, &im->hp.head_dim));
  im->attn_bias = im->arch->qkv_bias || cfg_bool(im->cfg, "attention_bias", false);
  im->mlp_bias = cfg_bool(im->cfg, "mlp_bias", false);
  if (im->arch->moe) {
    TRY(cfg_int(im, "num_local_experts", REQUIRED, &im->hp.n_experts));
    TRY(cfg_int(im, "num_experts_per_tok", REQUIRED, &im->hp.top_k));
    if (im->hp.top_k > im->hp.n_experts)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: num_experts_per_tok %lld > num_local_experts %lld",
                        im->config_path, (long long)im->hp.top_k, (long long)im->hp.n_experts);
  }
  /* Gemma's default (HF's GemmaConfig) is the tanh GELU, whatever
   * hidden_act says; the others default to SiLU. */
  const char *key = im->arch->gemma ? "hidden_activation" : "hidden_act";
  const char *hf = cfg_str(im->cfg, key);
  if (!hf) hf = im->arch->gemma ? "gelu_pytorch_tanh" : "silu";
  return act_from(im, key, hf, &im->act);
}

/* ---- RoPE ---- */

/* Llama 3.1's frequency rule, in float32 step by step as HF computes it
 * (_compute_llama3_parameters; `c / t` on a tensor is reciprocal(t) * c). */
static float llama3_freq(float inv, float factor, float low, float high, float orig) {
  float wavelen = (1.0f / inv) * (float)(2.0 * M_PI);
  float low_wavelen = orig / low, high_wavelen = orig / high;
  if (wavelen < high_wavelen) return inv;
  if (wavelen > low_wavelen) return inv / factor;
  float smooth = ((1.0f / wavelen) * orig - low) / (high - low);
  return (1.0f - smooth) * inv / factor + smooth * inv;
}

/* Computes the RoPE inverse frequencies and adds them as the inline tensor
 * "rope.inv_freq". Reads transformers-5 "rope_parameters" or the older
 * top-level "rope_theta" + "rope_scaling". */
static llmc_status_t rope_table(importer_t *im) {
  const char *where = "rope_parameters";
  const cJSON *p = cJSON_GetObjectItemCaseSensitive(im->cfg, where);
  if (!cJSON_IsObject(p)) {
    where = "rope_scaling";
    p = cJSON_GetObjectItemCaseSensitive(im->cfg, where);
    if (!cJSON_IsObject(p)) p = NULL;
  }
  double theta, partial;
  TRY(cfg_num(im, im->cfg, "", "rope_theta", 10000.0, &theta));
  TRY(cfg_num(im, p, where, "rope_theta", theta, &theta));
  TRY(cfg_num(im, im->cfg, "", "partial_rotary_factor", 1.0, &partial));
  TRY(cfg_num(im, p, where, "partial_rotary_factor", partial, &partial));
  im->hp.rope_theta = theta;
  /* HF: int(head_dim * partial_rotary_factor). */
  int64_t rot = partial > 0 && partial <= 1 ? (int64_t)((double)im->hp.head_dim * partial) : 0;
  if (!(theta > 0) || rot < 2 || rot % 2)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: rope_theta %g with partial_rotary_factor %g and head_dim %lld give no "
                      "valid rotary dimension",
                      im->config_path, theta, partial, (long long)im->hp.head_dim);
  const char *type = p ? cfg_str(p, "rope_type") : NULL;
  if (p && !type) type = cfg_str(p, "type");
  if (!type) type = "default";

  /* The default table in HF's float32 steps, then rope_type's rescaling. */
  int64_t n = rot / 2;
  float *inv = malloc(sizeof *inv * (size_t)n);
  if (!inv) return LLMC_ERROR(OUT_OF_MEMORY, "rope table");
  llmc_import_rope_inv_freq(theta, rot, inv);
  llmc_status_t s = LLMC_OK;
  if (strcmp(type, "linear") == 0) {
    double factor;
    s = cfg_num(im, p, where, "factor", NAN, &factor);
    if (!s && !(factor > 0))
      s = LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.factor must be positive", im->config_path, where);
    for (int64_t i = 0; i < n && !s; i++) inv[i] /= (float)factor;
  } else if (strcmp(type, "llama3") == 0) {
    double factor, low, high, orig;
    s = cfg_num(im, p, where, "factor", NAN, &factor);
    if (!s) s = cfg_num(im, p, where, "low_freq_factor", NAN, &low);
    if (!s) s = cfg_num(im, p, where, "high_freq_factor", NAN, &high);
    if (!s) s = cfg_num(im, p, where, "original_max_position_embeddings", NAN, &orig);
    if (!s && !(factor > 0 && low > 0 && high > low && orig > 0))
      s = LLMC_ERROR(INVALID_ARGUMENT,
                     "%s: %s: llama3 needs factor > 0 and 0 < low_freq_factor < "
                     "high_freq_factor",
                     im->config_path, where);
    for (int64_t i = 0; i < n && !s; i++)
      inv[i] = llama3_freq(inv[i], (float)factor, (float)low, (float)high, (float)orig);
  } else if (strcmp(type, "default") != 0 && strcmp(type, "dynamic") != 0) {
    /* "dynamic" only rescales past max_position_embeddings, which is also
     * max_context: inside it, it is the default table. */
    s = LLMC_ERROR(UNIMPLEMENTED,
                   "%s: %s: unsupported rope_type \"%s\" (supported: default, linear, llama3, "
                   "dynamic)",
                   im->config_path, where, type);
  }
  if (s) {
    free(inv);
    return s;
  }
  im->inv_freq = llmc_import_rope_tensor_add(im->tensors, inv, n);
  free(inv);
  return LLMC_OK;
}

/* ---- tensors ---- */

/* Adds checkpoint tensor `name` to the document's tensor list after checking
 * it exists with shape expect[rank] and a dtype llmc reads. With flatten,
 * it is declared as 2-D [product of the leading dims, last dim] (the same
 * bytes). *out is the name as the document holds it. */
static llmc_status_t use_tensor(importer_t *im, const char *name, int rank, const int64_t *expect,
                                bool flatten, const char **out) {
  const llmc_safetensors_tensor_t *t = llmc_safetensors_find(im->st, name);
  if (!t)
    return LLMC_ERROR(NOT_FOUND, "%s: tensor %s is missing (the %s graph needs it)", im->st->source,
                      name, im->arch->name);
  bool same = t->rank == rank;
  for (int d = 0; d < rank && same; d++) same = t->shape[d] == expect[d];
  if (!same) {
    char want[96], got[96];
    llmc_import_shape_format(want, sizeof want, rank, expect);
    llmc_import_shape_format(got, sizeof got, t->rank, t->shape);
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s has shape %s, expected %s (from %s)",
                      im->st->files[t->file], name, got, want, im->config_path);
  }
  if (!t->dtype)
    return LLMC_ERROR(UNIMPLEMENTED, "%s: tensor %s has dtype %s (llmc reads F32, F16, BF16)",
                      im->st->files[t->file], name, t->st_dtype);
  cJSON *e = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(e, "name", name));
  llmc_import_must(cJSON_AddStringToObject(e, "dtype", t->dtype));
  cJSON *shape = llmc_import_must(cJSON_AddArrayToObject(e, "shape"));
  int64_t rows = 1;
  for (int d = 0; d < rank - 1; d++) rows *= expect[d];
  if (flatten) cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)rows)));
  for (int d = flatten ? rank - 1 : 0; d < rank; d++)
    cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)expect[d])));
  llmc_import_must(cJSON_AddNumberToObject(e, "file", t->file));
  llmc_import_must(cJSON_AddNumberToObject(e, "offset", (double)t->offset));
  cJSON_AddItemToArray(im->tensors, e);
  *out = cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring;
  return LLMC_OK;
}

/* A matrix [rows, cols], or a vector [rows] when cols is 0. */
static llmc_status_t weight(importer_t *im, const char *name, int64_t rows, int64_t cols,
                            const char **out) {
  const int64_t shape[2] = {rows, cols};
  return use_tensor(im, name, cols ? 2 : 1, shape, false, out);
}

/* "model.layers.<layer>.<module>.<param>" in the name scratch buffer. */
static const char *lname(importer_t *im, int layer, const char *module, const char *param) {
  snprintf(im->name, sizeof im->name, "model.layers.%d.%s.%s", layer, module, param);
  return im->name;
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

static cJSON *attr_str(cJSON *node, const char *key, const char *v) {
  return llmc_import_attr_str(node, key, v);
}

static const char *op1(importer_t *im, const char *id, const char *op, const char *a) {
  return id_of(emit(im, id, op, 1, (const char *[]){a}));
}

static const char *op2(importer_t *im, const char *id, const char *op, const char *a,
                       const char *b) {
  return id_of(emit(im, id, op, 2, (const char *[]){a, b}));
}

static const char *slice(importer_t *im, const char *id, const char *x, int64_t begin,
                         int64_t end) {
  cJSON *n = emit(im, id, "slice", 1, (const char *[]){x});
  return id_of(attr_num(attr_num(n, "begin", (double)begin), "end", (double)end));
}

/* rms_norm(x, w) {eps}, w the checkpoint vector `wname` of n values; for
 * Gemma the weight is used as (1 + w), an add_scalar the compiler folds. */
static llmc_status_t rms_norm(importer_t *im, const char *id, const char *x, const char *wname,
                              int64_t n, const char **out) {
  const char *w;
  TRY(weight(im, wname, n, 0, &w));
  if (im->arch->gemma) {
    char wid[100];
    snprintf(wid, sizeof wid, "%s.w", id);
    w = id_of(attr_num(emit(im, wid, "add_scalar", 1, (const char *[]){w}), "value", 1));
  }
  *out = id_of(attr_num(emit(im, id, "rms_norm", 2, (const char *[]){x, w}), "eps", im->hp.eps));
  return LLMC_OK;
}

/* x · W^T (+ bias) with W = <module>.weight [n_out, n_in] of layer `layer`,
 * as node "l<layer>.<what>" (the bias add: "l<layer>.<what>_b"). */
static llmc_status_t linear(importer_t *im, int layer, const char *what, const char *module,
                            const char *x, int64_t n_out, int64_t n_in, bool bias,
                            const char **out) {
  const char *w, *b;
  TRY(weight(im, lname(im, layer, module, "weight"), n_out, n_in, &w));
  const char *y = op2(im, lid(im, layer, what), "matmul", x, w);
  if (bias) {
    TRY(weight(im, lname(im, layer, module, "bias"), n_out, 0, &b));
    char id[96];
    snprintf(id, sizeof id, "l%d.%s_b", layer, what);
    y = op2(im, id, "add", y, b);
  }
  *out = y;
  return LLMC_OK;
}

/* ---- one decoder layer ---- */

/* The layer's attention window (0: none). HF's rules: config "layer_types"
 * when present; else Gemma-2 slides on even layers, Qwen from
 * max_window_layers on (and only with use_sliding_window), the rest on every
 * layer whenever sliding_window is set. */
static llmc_status_t layer_window(const importer_t *im, int layer, int64_t *out) {
  *out = 0;
  if (im->arch->qwen_window && !cfg_bool(im->cfg, "use_sliding_window", false)) return LLMC_OK;
  const cJSON *types = cJSON_GetObjectItemCaseSensitive(im->cfg, "layer_types");
  bool slides;
  if (cJSON_IsArray(types)) {
    const cJSON *t = cJSON_GetArrayItem(types, layer);
    if (cJSON_GetArraySize(types) != im->hp.n_layers || !cJSON_IsString(t))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: \"layer_types\" must list %lld strings",
                        im->config_path, (long long)im->hp.n_layers);
    slides = strcmp(t->valuestring, "sliding_attention") == 0;
  } else if (im->arch->sandwich) {
    slides = layer % 2 == 0;
  } else if (im->arch->qwen_window) {
    int64_t full_layers;
    TRY(cfg_int(im, "max_window_layers", 0, &full_layers));
    slides = layer >= full_layers;
  } else {
    slides = true;
  }
  if (slides) TRY(cfg_int(im, "sliding_window", 0, out));
  return LLMC_OK;
}

/* Self-attention of layer `layer` over the normalised input h. */
static llmc_status_t attention_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, hd = im->hp.head_dim, H = im->hp.heads, KV = im->hp.kv_heads;
  const char *q, *k, *v;
  if (im->arch->fused_proj) {
    const char *qkv;
    TRY(linear(im, layer, "qkv", "self_attn.qkv_proj", h, (H + 2 * KV) * hd, D, false, &qkv));
    q = slice(im, lid(im, layer, "q"), qkv, 0, H * hd);
    k = slice(im, lid(im, layer, "k"), qkv, H * hd, (H + KV) * hd);
    v = slice(im, lid(im, layer, "v"), qkv, (H + KV) * hd, (H + 2 * KV) * hd);
  } else {
    TRY(linear(im, layer, "q", "self_attn.q_proj", h, H * hd, D, im->attn_bias, &q));
    TRY(linear(im, layer, "k", "self_attn.k_proj", h, KV * hd, D, im->attn_bias, &k));
    TRY(linear(im, layer, "v", "self_attn.v_proj", h, KV * hd, D, im->attn_bias, &v));
  }
  if (im->arch->qk_norm) {
    TRY(rms_norm(im, lid(im, layer, "q_norm"), q, lname(im, layer, "self_attn.q_norm", "weight"),
                 hd, &q));
    TRY(rms_norm(im, lid(im, layer, "k_norm"), k, lname(im, layer, "self_attn.k_norm", "weight"),
                 hd, &k));
  }
  cJSON *n =
      emit(im, lid(im, layer, "q_rope"), "rope", 3, (const char *[]){q, "positions", im->inv_freq});
  q = id_of(attr_num(attr_num(n, "heads", (double)H), "head_dim", (double)hd));
  n = emit(im, lid(im, layer, "k_rope"), "rope", 3, (const char *[]){k, "positions", im->inv_freq});
  k = id_of(attr_num(attr_num(n, "heads", (double)KV), "head_dim", (double)hd));
  const char *kv = id_of(attr_num(
      emit(im, lid(im, layer, "kv"), "kv_store", 2, (const char *[]){k, v}), "layer", layer));

  double scale = 1.0 / sqrt((double)hd), softcap = 0;
  if (im->arch->sandwich) {
    double scalar;
    TRY(cfg_num(im, im->cfg, "", "query_pre_attn_scalar", 256.0, &scalar));
    TRY(cfg_num(im, im->cfg, "", "attn_logit_softcapping", 0.0, &softcap));
    if (!(scalar > 0) || softcap < 0)
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "%s: query_pre_attn_scalar must be positive and attn_logit_softcapping "
                        "not negative",
                        im->config_path);
    scale = 1.0 / sqrt(scalar);
  }
  int64_t window;
  TRY(layer_window(im, layer, &window));
  n = emit(im, lid(im, layer, "attn"), "attention", 2, (const char *[]){q, kv});
  attr_num(attr_num(attr_num(n, "layer", layer), "heads", (double)H), "kv_heads", (double)KV);
  attr_num(attr_num(attr_num(n, "head_dim", (double)hd), "scale", scale), "softcap", softcap);
  attr_num(n, "window", (double)window);
  bool o_bias = im->attn_bias && !im->arch->qkv_bias; /* Qwen2's o_proj has none */
  return linear(im, layer, "o", "self_attn.o_proj", id_of(n), D, H * hd, o_bias, out);
}

/* The dense gated MLP of layer `layer` over h. */
static llmc_status_t mlp_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, F = im->hp.ffn;
  const char *g, *u;
  if (im->arch->fused_proj) {
    const char *gu;
    TRY(linear(im, layer, "gate_up", "mlp.gate_up_proj", h, 2 * F, D, false, &gu));
    g = slice(im, lid(im, layer, "gate"), gu, 0, F);
    u = slice(im, lid(im, layer, "up"), gu, F, 2 * F);
  } else {
    TRY(linear(im, layer, "gate", "mlp.gate_proj", h, F, D, im->mlp_bias, &g));
    TRY(linear(im, layer, "up", "mlp.up_proj", h, F, D, im->mlp_bias, &u));
  }
  cJSON *n = emit(im, lid(im, layer, "glu"), "glu", 2, (const char *[]){g, u});
  const char *m = id_of(attr_str(n, "act", im->act));
  return linear(im, layer, "down", "mlp.down_proj", m, D, F, im->mlp_bias && !im->arch->fused_proj,
                out);
}

/* Mixtral's mixture of experts over h: one moe node. Reads the classic
 * per-expert layout (block_sparse_moe.experts.E.w1/w3/w2, concatenated by
 * concat nodes) or transformers-5's fused one (mlp.experts.gate_up_proj
 * [E, 2F, D] and down_proj [E, D, F], declared 2-D). */
static llmc_status_t moe_block(importer_t *im, int layer, const char *h, const char **out) {
  const int64_t D = im->hp.hidden, F = im->hp.ffn, E = im->hp.n_experts;
  const char *router, *gate_up = NULL, *down = NULL;
  bool fused = llmc_safetensors_find(im->st, lname(im, layer, "mlp.experts", "gate_up_proj"));
  const char *prefix = fused ? "mlp" : "block_sparse_moe";
  char module[96];
  snprintf(module, sizeof module, "%s.gate", prefix);
  TRY(weight(im, lname(im, layer, module, "weight"), E, D, &router));
  if (fused) {
    TRY(use_tensor(im, lname(im, layer, "mlp.experts", "gate_up_proj"), 3,
                   (const int64_t[]){E, 2 * F, D}, true, &gate_up));
    TRY(use_tensor(im, lname(im, layer, "mlp.experts", "down_proj"), 3, (const int64_t[]){E, D, F},
                   true, &down));
  } else {
    const char **items = malloc(sizeof *items * (size_t)(2 * E));
    if (!items) return LLMC_ERROR(OUT_OF_MEMORY, "layer %d experts", layer);
    llmc_status_t s = LLMC_OK;
    for (int e = 0; e < E && !s; e++) {
      snprintf(module, sizeof module, "block_sparse_moe.experts.%d", e);
      s = weight(im, lname(im, layer, module, "w1.weight"), F, D, &items[2 * e]);
      if (!s) s = weight(im, lname(im, layer, module, "w3.weight"), F, D, &items[2 * e + 1]);
    }
    if (!s) gate_up = llmc_import_concat_tree(im->graph, lid(im, layer, "experts_gate_up"), items, (int)(2 * E));
    for (int e = 0; e < E && !s; e++) {
      snprintf(module, sizeof module, "block_sparse_moe.experts.%d", e);
      s = weight(im, lname(im, layer, module, "w2.weight"), D, F, &items[e]);
    }
    if (!s) down = llmc_import_concat_tree(im->graph, lid(im, layer, "experts_down"), items, (int)E);
    free(items);
    TRY(s);
  }
  cJSON *n = emit(im, lid(im, layer, "moe"), "moe", 4, (const char *[]){h, router, gate_up, down});
  *out = id_of(attr_str(attr_num(n, "top_k", (double)im->hp.top_k), "act", im->act));
  return LLMC_OK;
}

/* One decoder layer; *x is the residual stream, in and out. */
static llmc_status_t decoder_layer(importer_t *im, int layer, const char **x) {
  const int64_t D = im->hp.hidden;
  const bool sandwich = im->arch->sandwich;
  const char *h, *o, *d;
  TRY(rms_norm(im, lid(im, layer, "attn_norm"), *x, lname(im, layer, "input_layernorm", "weight"),
               D, &h));
  TRY(attention_block(im, layer, h, &o));
  if (sandwich)
    TRY(rms_norm(im, lid(im, layer, "attn_post_norm"), o,
                 lname(im, layer, "post_attention_layernorm", "weight"), D, &o));
  *x = op2(im, lid(im, layer, "attn_res"), "add", *x, o);
  TRY(rms_norm(im, lid(im, layer, "ffn_norm"), *x,
               lname(im, layer, sandwich ? "pre_feedforward_layernorm" : "post_attention_layernorm",
                     "weight"),
               D, &h));
  TRY(im->arch->moe ? moe_block(im, layer, h, &d) : mlp_block(im, layer, h, &d));
  if (sandwich)
    TRY(rms_norm(im, lid(im, layer, "ffn_post_norm"), d,
                 lname(im, layer, "post_feedforward_layernorm", "weight"), D, &d));
  *x = op2(im, lid(im, layer, "ffn_res"), "add", *x, d);
  return LLMC_OK;
}

/* ---- the whole model ---- */

static llmc_status_t build_graph(importer_t *im) {
  const char *embed, *x, *head;
  TRY(weight(im, "model.embed_tokens.weight", im->hp.vocab, im->hp.hidden, &embed));
  emit(im, "tokens", "tokens", 0, NULL);
  emit(im, "positions", "positions", 0, NULL);
  cJSON *n = emit(im, "embed", "embed", 2, (const char *[]){embed, "tokens"});
  if (im->arch->gemma) /* HF: torch.tensor(hidden_size ** 0.5, dtype=float32) */
    attr_num(n, "scale", (float)sqrt((double)im->hp.hidden));
  x = id_of(n);
  for (int layer = 0; layer < im->hp.n_layers; layer++) TRY(decoder_layer(im, layer, &x));
  TRY(rms_norm(im, "final_norm", x, "model.norm.weight", im->hp.hidden, &x));

  /* Tied when config says so; when it is silent, when there is no lm_head. */
  const cJSON *tie = cJSON_GetObjectItemCaseSensitive(im->cfg, "tie_word_embeddings");
  bool tied =
      cJSON_IsBool(tie) ? cJSON_IsTrue(tie) : !llmc_safetensors_find(im->st, "lm_head.weight");
  if (tied)
    head = embed;
  else
    TRY(weight(im, "lm_head.weight", im->hp.vocab, im->hp.hidden, &head));
  x = op2(im, "logits", "matmul", x, head);
  double cap = 0;
  if (im->arch->sandwich) TRY(cfg_num(im, im->cfg, "", "final_logit_softcapping", 0.0, &cap));
  if (cap > 0)
    x = id_of(attr_num(emit(im, "logits_capped", "softcap", 1, (const char *[]){x}), "cap", cap));
  x = op1(im, "logits_sel", "select_rows", x);
  op1(im, "out", "output", x);
  return LLMC_OK;
}

/* bos/eos ids from config.json, else generation_config.json, else null. */
static cJSON *token_ids(const importer_t *im, const cJSON *gen, const char *key) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(im->cfg, key);
  if (!cJSON_IsNumber(v) && !cJSON_IsArray(v)) v = cJSON_GetObjectItemCaseSensitive(gen, key);
  if (!cJSON_IsNumber(v) && !cJSON_IsArray(v)) return llmc_import_must(cJSON_CreateNull());
  return llmc_import_must(cJSON_Duplicate(v, true));
}

/* The chat template: chat_template.jinja (newer checkpoints), else
 * tokenizer_config.json's "chat_template" (a string, or a list of named
 * templates of which "default" is used). Adds nothing when there is none. */
static llmc_status_t add_chat_template(const importer_t *im, cJSON *config) {
  char *path = path_join(im->folder, "chat_template.jinja");
  if (!path) return LLMC_ERROR(OUT_OF_MEMORY, "%s", im->folder);
  if (file_exists(path)) {
    char *text = NULL;
    size_t len = 0;
    llmc_status_t s = llmc_file_read_all(path, &text, &len);
    if (!s) llmc_import_must(cJSON_AddStringToObject(config, "chat_template", text));
    free(text);
    free(path);
    return s;
  }
  free(path);
  path = path_join(im->folder, "tokenizer_config.json");
  if (!path) return LLMC_ERROR(OUT_OF_MEMORY, "%s", im->folder);
  cJSON *tc = NULL;
  llmc_status_t s = file_exists(path) ? read_json(path, &tc) : LLMC_OK;
  free(path);
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(tc, "chat_template");
  for (const cJSON *e = cJSON_IsArray(t) ? t->child : NULL; e; e = e->next) /* [{"name", "template"}] */
    if (cJSON_IsString(cJSON_GetObjectItemCaseSensitive(e, "name")) &&
        !strcmp(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring, "default"))
      t = cJSON_GetObjectItemCaseSensitive(e, "template");
  if (!s && cJSON_IsString(t)) llmc_import_must(cJSON_AddStringToObject(config, "chat_template", t->valuestring));
  cJSON_Delete(tc);
  return s;
}

static llmc_status_t build_config(importer_t *im, cJSON *doc) {
  cJSON *gen = NULL;
  char *gen_path = path_join(im->folder, "generation_config.json");
  if (!gen_path) return LLMC_ERROR(OUT_OF_MEMORY, "%s", im->folder);
  llmc_status_t s = file_exists(gen_path) ? read_json(gen_path, &gen) : LLMC_OK;
  free(gen_path);
  TRY(s);
  cJSON *c = llmc_import_config_add(doc, &im->hp);
  cJSON_AddItemToObject(c, "bos_token_id", token_ids(im, gen, "bos_token_id"));
  cJSON_AddItemToObject(c, "eos_token_id", token_ids(im, gen, "eos_token_id"));
  cJSON_AddItemToObject(c, "hf_config", llmc_import_must(cJSON_Duplicate(im->cfg, true)));
  cJSON_Delete(gen);
  return add_chat_template(im, c);
}

/* weight_files (every file of the checkpoint) and tokenizer, with paths
 * relative to path_base. */
static llmc_status_t build_files(importer_t *im, cJSON *doc, const char *path_base) {
  char *base = path_base ? realpath(path_base, NULL) : NULL;
  char *tok = path_join(im->folder, "tokenizer.json");
  llmc_status_t s = tok ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "%s", im->folder);
  if (!s && file_exists(tok)) {
    char *rel = llmc_import_relative_path(base, tok);
    cJSON *t = llmc_import_must(cJSON_AddObjectToObject(doc, "tokenizer"));
    if (rel)
      llmc_import_must(cJSON_AddStringToObject(t, "file", rel));
    else
      s = LLMC_ERROR(IO, "%s: %s", tok, strerror(errno));
    free(rel);
  } else if (!s) {
    llmc_import_must(cJSON_AddNullToObject(doc, "tokenizer"));
  }
  cJSON *files = llmc_import_must(cJSON_AddArrayToObject(doc, "weight_files"));
  for (int f = 0; f < im->st->n_files && !s; f++) {
    char *rel = llmc_import_relative_path(base, im->st->files[f]);
    if (!rel) {
      s = LLMC_ERROR(IO, "%s: %s", im->st->files[f], strerror(errno));
      break;
    }
    cJSON *e = llmc_import_must(cJSON_CreateObject());
    llmc_import_must(cJSON_AddStringToObject(e, "path", rel));
    llmc_import_must(cJSON_AddStringToObject(e, "format", "safetensors"));
    cJSON_AddItemToArray(files, e);
    free(rel);
  }
  free(tok);
  free(base);
  return s;
}

static llmc_status_t import(importer_t *im, const char *path_base, cJSON *doc) {
  TRY(read_json(im->config_path, &im->cfg));
  if (!cJSON_IsObject(im->cfg))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: not a JSON object", im->config_path);
  TRY(find_arch(im));
  TRY(read_hparams(im));
  TRY(llmc_safetensors_open_folder(im->folder, &im->st));
  llmc_import_doc_begin(doc, im->arch->name, &im->tensors, &im->graph);
  TRY(rope_table(im));
  TRY(build_config(im, doc));
  TRY(build_files(im, doc, path_base));
  return build_graph(im);
}

llmc_status_t llmc_import_hf(const char *folder, const char *path_base, cJSON **out_doc) {
  importer_t im = {.folder = folder, .config_path = path_join(folder, "config.json")};
  cJSON *doc = cJSON_CreateObject();
  llmc_status_t s =
      im.config_path && doc ? import(&im, path_base, doc) : LLMC_ERROR(OUT_OF_MEMORY, "%s", folder);
  llmc_safetensors_destroy(im.st);
  cJSON_Delete(im.cfg);
  free(im.config_path);
  return llmc_import_doc_finish(s, doc, im.tensors, im.graph, out_doc);
}

llmc_status_t llmc_import_write(const cJSON *doc, const char *path) {
  char *text = cJSON_Print(doc);
  size_t n = strlen(path) + sizeof ".tmp";
  char *tmp = malloc(n);
  if (!text || !tmp) {
    free(text);
    free(tmp);
    return LLMC_ERROR(OUT_OF_MEMORY, "%s", path);
  }
  snprintf(tmp, n, "%s.tmp", path);
  llmc_status_t s = LLMC_OK;
  FILE *f = fopen(tmp, "w");
  if (!f) {
    s = LLMC_ERROR(IO, "%s: %s", tmp, strerror(errno));
  } else {
    bool ok = fputs(text, f) >= 0 && fputc('\n', f) != EOF;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
      s = LLMC_ERROR(IO, "%s: %s", ok ? path : tmp, strerror(errno));
      unlink(tmp);
    }
  }
  free(text);
  free(tmp);
  return s;
}
