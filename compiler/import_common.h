/* import_common.h — what the importers (import_hf.c, import_gguf.c) share.
 *
 * Both turn a checkpoint into the same model.json document: the same config
 * keys under the same normalised names, the same graph nodes, the same RoPE
 * table computed in the same float32 steps, weight files named by paths
 * relative to the document's folder. What differs is where the tensors and
 * hyper-parameters come from (safetensors + config.json, or GGUF), so that
 * stays in each importer, and the pieces that must not drift apart live here,
 * once: if the two importers computed the RoPE table or wrote a node each in
 * its own way, a GGUF and a safetensors copy of one model would no longer
 * compile to the same graph.
 *
 * Allocation failure aborts (llmc_import_must), the compiler's policy (see
 * support/arena.h). */
#ifndef LLMC_COMPILER_IMPORT_COMMON_H
#define LLMC_COMPILER_IMPORT_COMMON_H

#include <stddef.h>
#include <stdint.h>

#include <cjson/cJSON.h>

#include "support/status.h"

/* Bounds every size read from a checkpoint so that products of three fit in
 * int64. */
#define LLMC_IMPORT_MAX_CONFIG_INT (1 << 26)

/* The hyper-parameters every importer writes to model.json "config", under
 * these names (docs/model-json.md). */
typedef struct {
  int64_t vocab;     /* vocab_size */
  int64_t hidden;    /* hidden_size: D, the residual stream's width */
  int64_t n_layers;  /* n_layers */
  int64_t heads;     /* n_heads: query heads */
  int64_t kv_heads;  /* n_kv_heads: key/value heads, dividing heads */
  int64_t head_dim;  /* head_dim */
  int64_t ffn;       /* intermediate_size: F, the MLP's (or each expert's) width */
  int64_t n_experts; /* n_experts: 0 for a dense model */
  int64_t top_k;     /* n_experts_per_tok: experts each token is routed to */
  int64_t max_ctx;   /* max_context: positions */
  double eps;        /* rms_norm_eps */
  double rope_theta; /* rope_theta: the RoPE base */
} llmc_import_hparams_t;

/* Starts the model.json document doc: its "format", "version" and
 * "architecture", and the empty arrays *out_tensors and *out_graph, which
 * the importer fills and llmc_import_doc_finish attaches last (model.json
 * lists them after "config", "tokenizer" and "weight_files"). */
void llmc_import_doc_begin(cJSON *doc, const char *architecture, cJSON **out_tensors,
                           cJSON **out_graph);

/* Ends an import whose status is s. On success attaches tensors and graph
 * to doc, hands doc to *out_doc and returns LLMC_OK; on failure frees doc,
 * tensors and graph (any of them may be NULL), sets *out_doc to NULL and
 * returns s. */
llmc_status_t llmc_import_doc_finish(llmc_status_t s, cJSON *doc, cJSON *tensors, cJSON *graph,
                                     cJSON **out_doc);

/* Reports that memory ran out while building model.json, and aborts. */
_Noreturn void llmc_import_out_of_memory(void);

/* Returns j; aborts through llmc_import_out_of_memory when j is NULL (a
 * cJSON constructor that failed to allocate). */
cJSON *llmc_import_must(cJSON *j);

/* The path of `target` relative to the directory base_real (a realpath), or
 * target's absolute path when base_real is NULL. malloc'ed; NULL (errno
 * set by realpath) if target cannot be resolved, or when out of memory. */
char *llmc_import_relative_path(const char *base_real, const char *target);

/* Writes "[a,b,...]" of shape[0..rank) into buf[size], truncated to fit
 * (the message it goes into names the tensor anyway). */
void llmc_import_shape_format(char *buf, size_t size, int rank, const int64_t *shape);

/* Appends {"id", "op", "args"} (no "args" when n_args is 0) to the array
 * graph and returns the node, so the caller can add attributes. id, op and
 * args[0..n_args) are copied. */
cJSON *llmc_import_node_add(cJSON *graph, const char *id, const char *op, int n_args,
                            const char *const *args);

/* Most arguments one concat node takes (ir/ops.def). */
#define LLMC_IMPORT_MAX_CONCAT_ARGS 16

/* Appends concat nodes joining items[0..n) (tensor names or node ids, in
 * order, n >= 1) along dim 0 and returns the id of the root, node `id`
 * (owned by the document). A list longer than LLMC_IMPORT_MAX_CONCAT_ARGS
 * becomes a tree whose inner nodes are "<id>.<level>.<j>". items is
 * overwritten. */
const char *llmc_import_concat_tree(cJSON *graph, const char *id, const char **items, int n);

/* The id of a node made by llmc_import_node_add, owned by the node. */
const char *llmc_import_node_id(const cJSON *node);

/* Adds the numeric attribute key = v to node (creating its "attrs" object
 * with the first) and returns node, so that calls can nest. */
cJSON *llmc_import_attr_num(cJSON *node, const char *key, double v);

/* Adds the string attribute key = v (copied) to node; returns node. */
cJSON *llmc_import_attr_str(cJSON *node, const char *key, const char *v);

/* out[0..rot/2) = the RoPE inverse frequencies base^(-2i/rot), in Hugging
 * Face's float32 steps (1 / base ** (arange(0, rot, 2).float() / rot)). Both
 * importers start from this table and only then apply their scaling, so the
 * two agree to the bit. rot is even and positive. */
void llmc_import_rope_inv_freq(double base, int64_t rot, float *out);

/* Appends the inline f32 tensor "rope.inv_freq" [n] holding inv_freq[0..n)
 * to the array tensors and returns its name, owned by the document. */
const char *llmc_import_rope_tensor_add(cJSON *tensors, const float *inv_freq, int64_t n);

/* Adds the object "config" to doc with hp's values under model.json's names
 * (n_experts and n_experts_per_tok only when hp->n_experts is not 0) and
 * returns it, for the importer to add what it knows besides (token ids,
 * the source's own config). */
cJSON *llmc_import_config_add(cJSON *doc, const llmc_import_hparams_t *hp);

#endif
