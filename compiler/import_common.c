/* import_common.c — the pieces of model.json that import_hf.c and
 * import_gguf.c write alike (see import_common.h for why they live here). */
#include "import_common.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

_Noreturn void llmc_import_out_of_memory(void) {
  fprintf(stderr, "llmc: out of memory (building model.json)\n");
  abort();
}

cJSON *llmc_import_must(cJSON *j) {
  if (!j) llmc_import_out_of_memory();
  return j;
}

/* ---- the document ---- */

void llmc_import_doc_begin(cJSON *doc, const char *architecture, cJSON **out_tensors,
                           cJSON **out_graph) {
  llmc_import_must(cJSON_AddStringToObject(doc, "format", "llmc-model"));
  llmc_import_must(cJSON_AddNumberToObject(doc, "version", 1));
  llmc_import_must(cJSON_AddStringToObject(doc, "architecture", architecture));
  *out_tensors = llmc_import_must(cJSON_CreateArray());
  *out_graph = llmc_import_must(cJSON_CreateArray());
}

llmc_status_t llmc_import_doc_finish(llmc_status_t s, cJSON *doc, cJSON *tensors, cJSON *graph,
                                     cJSON **out_doc) {
  *out_doc = NULL;
  if (s) {
    cJSON_Delete(tensors);
    cJSON_Delete(graph);
    cJSON_Delete(doc);
    return s;
  }
  cJSON_AddItemToObject(doc, "tensors", tensors);
  cJSON_AddItemToObject(doc, "graph", graph);
  *out_doc = doc;
  return LLMC_OK;
}

/* ---- paths and messages ---- */

char *llmc_import_relative_path(const char *base_real, const char *target) {
  char *t = realpath(target, NULL);
  if (!t || !base_real) return t;
  size_t nb = strlen(base_real);
  size_t common = 0; /* length of the shared directory prefix, with its '/' */
  size_t i = 0;
  for (; i < nb && base_real[i] == t[i]; i++)
    if (t[i] == '/') common = i + 1;
  if (i == nb && t[i] == '/') common = i + 1;
  int ups = nb > common; /* the last component of base has no trailing '/' */
  for (size_t j = common; j < nb; j++) ups += base_real[j] == '/';
  size_t n = (size_t)ups * 3 + strlen(t + common) + 1;
  char *rel = malloc(n);
  if (rel) {
    rel[0] = '\0';
    for (int u = 0; u < ups; u++) strcat(rel, "../");
    strcat(rel, t + common);
  }
  free(t);
  return rel;
}

void llmc_import_shape_format(char *buf, size_t size, int rank, const int64_t *shape) {
  size_t n = (size_t)snprintf(buf, size, "[");
  for (int d = 0; d < rank && n < size; d++)
    n += (size_t)snprintf(buf + n, size - n, "%s%lld", d ? "," : "", (long long)shape[d]);
  if (n < size) snprintf(buf + n, size - n, "]");
}

/* ---- graph nodes ---- */

cJSON *llmc_import_node_add(cJSON *graph, const char *id, const char *op, int n_args,
                            const char *const *args) {
  cJSON *n = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(n, "id", id));
  llmc_import_must(cJSON_AddStringToObject(n, "op", op));
  if (n_args)
    cJSON_AddItemToObject(n, "args", llmc_import_must(cJSON_CreateStringArray(args, n_args)));
  cJSON_AddItemToArray(graph, n);
  return n;
}

const char *llmc_import_node_id(const cJSON *node) {
  return cJSON_GetObjectItemCaseSensitive(node, "id")->valuestring;
}

const char *llmc_import_concat_tree(cJSON *graph, const char *id, const char **items, int n) {
  for (int level = 0; n > LLMC_IMPORT_MAX_CONCAT_ARGS; level++) {
    int m = 0;
    for (int j = 0; j < n; j += LLMC_IMPORT_MAX_CONCAT_ARGS) {
      char part[128];
      snprintf(part, sizeof part, "%s.%d.%d", id, level, m);
      int c = n - j < LLMC_IMPORT_MAX_CONCAT_ARGS ? n - j : LLMC_IMPORT_MAX_CONCAT_ARGS;
      items[m++] = llmc_import_node_id(llmc_import_node_add(graph, part, "concat", c, items + j));
    }
    n = m;
  }
  return llmc_import_node_id(llmc_import_node_add(graph, id, "concat", n, items));
}

/* node's "attrs" object, added if it has none yet. */
static cJSON *attrs_of(cJSON *node) {
  cJSON *a = cJSON_GetObjectItemCaseSensitive(node, "attrs");
  return a ? a : llmc_import_must(cJSON_AddObjectToObject(node, "attrs"));
}

cJSON *llmc_import_attr_num(cJSON *node, const char *key, double v) {
  llmc_import_must(cJSON_AddNumberToObject(attrs_of(node), key, v));
  return node;
}

cJSON *llmc_import_attr_str(cJSON *node, const char *key, const char *v) {
  llmc_import_must(cJSON_AddStringToObject(attrs_of(node), key, v));
  return node;
}

/* ---- RoPE ---- */

void llmc_import_rope_inv_freq(double base, int64_t rot, float *out) {
  for (int64_t i = 0; i < rot / 2; i++) {
    float e = (float)(2 * i) / (float)rot;
    out[i] = 1.0f / (float)pow((double)(float)base, (double)e);
  }
}

const char *llmc_import_rope_tensor_add(cJSON *tensors, const float *inv_freq, int64_t n) {
  cJSON *t = llmc_import_must(cJSON_CreateObject());
  llmc_import_must(cJSON_AddStringToObject(t, "name", "rope.inv_freq"));
  llmc_import_must(cJSON_AddStringToObject(t, "dtype", "f32"));
  cJSON *shape = llmc_import_must(cJSON_AddArrayToObject(t, "shape"));
  cJSON_AddItemToArray(shape, llmc_import_must(cJSON_CreateNumber((double)n)));
  cJSON *data = llmc_import_must(cJSON_AddArrayToObject(t, "data"));
  for (int64_t i = 0; i < n; i++)
    cJSON_AddItemToArray(data, llmc_import_must(cJSON_CreateNumber(inv_freq[i])));
  cJSON_AddItemToArray(tensors, t);
  return cJSON_GetObjectItemCaseSensitive(t, "name")->valuestring;
}

/* ---- config ---- */

cJSON *llmc_import_config_add(cJSON *doc, const llmc_import_hparams_t *hp) {
  cJSON *c = llmc_import_must(cJSON_AddObjectToObject(doc, "config"));
  llmc_import_must(cJSON_AddNumberToObject(c, "vocab_size", (double)hp->vocab));
  llmc_import_must(cJSON_AddNumberToObject(c, "hidden_size", (double)hp->hidden));
  llmc_import_must(cJSON_AddNumberToObject(c, "n_layers", (double)hp->n_layers));
  llmc_import_must(cJSON_AddNumberToObject(c, "n_heads", (double)hp->heads));
  llmc_import_must(cJSON_AddNumberToObject(c, "n_kv_heads", (double)hp->kv_heads));
  llmc_import_must(cJSON_AddNumberToObject(c, "head_dim", (double)hp->head_dim));
  llmc_import_must(cJSON_AddNumberToObject(c, "intermediate_size", (double)hp->ffn));
  if (hp->n_experts) {
    llmc_import_must(cJSON_AddNumberToObject(c, "n_experts", (double)hp->n_experts));
    llmc_import_must(cJSON_AddNumberToObject(c, "n_experts_per_tok", (double)hp->top_k));
  }
  llmc_import_must(cJSON_AddNumberToObject(c, "max_context", (double)hp->max_ctx));
  llmc_import_must(cJSON_AddNumberToObject(c, "rms_norm_eps", hp->eps));
  llmc_import_must(cJSON_AddNumberToObject(c, "rope_theta", hp->rope_theta));
  return c;
}
