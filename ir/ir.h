/* ir.h — the llmc intermediate representation.
 *
 * A module is an SSA graph of tensor operations stored in one flat array of
 * nodes; a value is the 32-bit index of the node that defines it (QBE's and
 * ggml's habit: small handles instead of pointers, so passes can rebuild the
 * array cheaply). Node 0 is reserved and means "no value". Nodes are never
 * freed one by one: everything a module allocates lives in its arena.
 *
 * Beside the graph, a module owns a weight table. A weight is data that is
 * known at compile time: a range of a file (safetensors / GGUF), a small
 * inline array (e.g. RoPE frequencies computed by the importer), or a
 * derived tensor (an op over other weights, e.g. Q/K/V concatenated by the
 * horizontal-fusion pass or Gemma's 1 + w folded by fold-constants). Derived
 * weights are only materialised when the .so is written, so folding never
 * holds a second copy of a large model in memory.
 *
 * Text form (one line per node, printed by llmc_ir_print, parsed back by
 * llmc_ir_parse):
 *
 *   module "llama"
 *   meta {"vocab_size":512,...}
 *   tensor @tok_embd : f32[512,128] = file "m.safetensors" offset 262144
 *   tensor @rope_freq : f32[16] = data [1, 0.5, ...]
 *   tensor @qkv.0 : f32[256,128] = concat(@q.0, @k.0, @v.0)
 *   tensor @norm.0 : f32[128] = add_scalar(@w.0) {value=1}
 *   %1 = tokens : i32[T]
 *   %2 = weight @tok_embd : f32[512,128]
 *   %3 = embed %2, %1 {scale=1} : f32[T,128]     ; batchful 0
 */
#ifndef LLMC_IR_H
#define LLMC_IR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "support/arena.h"
#include "support/status.h"

/* Operations: see ops.def for each op's arguments, shapes and attributes. */
typedef enum {
#define OP(e, name, amin, amax, flags) LLMC_OP_##e,
#include "ops.def"
#undef OP
  LLMC_OP_COUNT
} llmc_ir_op_t;

enum {
  LLMC_OPF_ROWLOCAL = 1 << 0,   /* row t of the result depends on row t of its inputs only */
  LLMC_OPF_BATCHLESS = 1 << 1,  /* reads per-sequence state (attention) */
  LLMC_OPF_SIDEEFFECT = 1 << 2, /* writes state beyond its result; never dead */
};

/* Element types. The block-quantized types use GGUF's block layouts. */
typedef enum {
  LLMC_DTYPE_NONE, /* no data: the result of kv_store / output */
  LLMC_DTYPE_F32,
  LLMC_DTYPE_F16,
  LLMC_DTYPE_BF16,
  LLMC_DTYPE_Q8_0,
  LLMC_DTYPE_Q4_0,
  LLMC_DTYPE_Q4_K,
  LLMC_DTYPE_Q6_K,
  LLMC_DTYPE_I32,
  LLMC_DTYPE_COUNT
} llmc_dtype_t;

/* Symbolic dimensions; every other dimension is a positive constant. */
#define LLMC_DIM_T (-1) /* tokens of this step, across all sequences */
#define LLMC_DIM_L (-2) /* rows whose logits are wanted */

#define LLMC_IR_MAX_DIMS 4
#define LLMC_IR_MAX_ARGS 16
#define LLMC_IR_MAX_ATTRS 12

typedef uint32_t llmc_ir_value_t; /* index into module->nodes; 0 = none */

typedef struct {
  int rank;
  int64_t dims[LLMC_IR_MAX_DIMS]; /* LLMC_DIM_T / LLMC_DIM_L or > 0 */
} llmc_ir_shape_t;

typedef enum { LLMC_ATTR_INT, LLMC_ATTR_FLOAT, LLMC_ATTR_STRING } llmc_ir_attr_kind_t;

typedef struct {
  const char *key; /* arena-owned */
  llmc_ir_attr_kind_t kind;
  int64_t i;
  double f;
  const char *s; /* arena-owned, for LLMC_ATTR_STRING */
} llmc_ir_attr_t;

typedef struct {
  llmc_ir_op_t op;
  llmc_dtype_t dtype;
  llmc_ir_shape_t shape;
  int n_args;
  llmc_ir_value_t args[LLMC_IR_MAX_ARGS];
  int n_attrs;
  llmc_ir_attr_t attrs[LLMC_IR_MAX_ATTRS];
  uint32_t weight;  /* LLMC_OP_WEIGHT: index into module->weights */
  int32_t region;   /* set by the partition pass: -1 until then */
  bool dead;        /* removed by a pass; compacted by llmc_ir_compact */
  const char *name; /* optional: the model.json id, for messages and dumps */
  const char *loc;  /* where the node came from, e.g. "model.json:/graph/12" */
} llmc_ir_node_t;

typedef enum {
  LLMC_WEIGHT_FILE,    /* bytes at [offset, offset+nbytes) of file, in dtype */
  LLMC_WEIGHT_DATA,    /* inline f32 values (small tables) */
  LLMC_WEIGHT_DERIVED, /* op (concat/add_scalar/mul_scalar) over other weights */
} llmc_weight_kind_t;

typedef struct {
  const char *name;
  llmc_dtype_t dtype;
  llmc_ir_shape_t shape;
  llmc_weight_kind_t kind;
  const char *file; /* FILE: path (absolute, or relative to the cwd) */
  uint64_t offset;  /* FILE: byte offset of the first element */
  float *data;      /* DATA: element count values */
  llmc_ir_op_t op;  /* DERIVED */
  int n_args;       /* DERIVED */
  uint32_t args[LLMC_IR_MAX_ARGS]; /* DERIVED: weight-table indices */
  double value;     /* DERIVED add_scalar/mul_scalar */
} llmc_ir_weight_t;

/* Regions made by the partition pass. */
typedef enum { LLMC_REGION_BATCHFUL, LLMC_REGION_BATCHLESS } llmc_region_kind_t;

typedef struct {
  llmc_arena_t *arena;
  const char *arch;      /* e.g. "llama" */
  const char *meta_json; /* hyper-parameters etc., carried into the .so metadata */
  llmc_ir_node_t *nodes; /* [n_nodes]; nodes[0] is the reserved "none" */
  uint32_t n_nodes, cap_nodes;
  llmc_ir_weight_t *weights; /* [n_weights] */
  uint32_t n_weights, cap_weights;
  int32_t n_regions; /* set by the partition pass */
} llmc_ir_module_t;

/* ---- module, nodes, weights (ir.c) ---- */

/* Creates an empty module that owns a fresh arena. */
llmc_ir_module_t *llmc_ir_module_create(void);
/* Frees the module and everything in its arena. NULL is fine. */
void llmc_ir_module_destroy(llmc_ir_module_t *m);

/* Appends a node and returns its value. Shape and dtype start unknown
 * (rank -1, LLMC_DTYPE_NONE) until shape inference. args are copied. */
llmc_ir_value_t llmc_ir_add_node(llmc_ir_module_t *m, llmc_ir_op_t op, int n_args,
                                 const llmc_ir_value_t *args);
/* Inserts a node before position `before` (shifting later nodes, and
 * renumbering every argument that points at them). Returns its value. */
llmc_ir_value_t llmc_ir_insert_node(llmc_ir_module_t *m, llmc_ir_value_t before, llmc_ir_op_t op,
                                    int n_args, const llmc_ir_value_t *args);
/* Replaces every use of `from` by `to`. */
void llmc_ir_replace_uses(llmc_ir_module_t *m, llmc_ir_value_t from, llmc_ir_value_t to);
/* Number of live nodes that use v as an argument. */
int llmc_ir_use_count(const llmc_ir_module_t *m, llmc_ir_value_t v);
/* Drops nodes marked dead and renumbers the rest (args follow). */
void llmc_ir_compact(llmc_ir_module_t *m);
/* Marks nodes dead that no side-effecting node depends on. */
void llmc_ir_remove_dead(llmc_ir_module_t *m);
/* Reorders the live nodes so that every argument precedes its users,
 * keeping the existing order wherever it is already valid (passes append
 * new nodes at the end and call this). Drops dead nodes like compact. */
void llmc_ir_toposort(llmc_ir_module_t *m);

/* Attributes: set replaces an existing key. get returns `dflt` if absent. */
void llmc_ir_set_int(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, int64_t x);
void llmc_ir_set_float(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, double x);
void llmc_ir_set_string(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, const char *s);
const llmc_ir_attr_t *llmc_ir_attr(const llmc_ir_node_t *n, const char *key);
int64_t llmc_ir_get_int(const llmc_ir_node_t *n, const char *key, int64_t dflt);
double llmc_ir_get_float(const llmc_ir_node_t *n, const char *key, double dflt);
const char *llmc_ir_get_string(const llmc_ir_node_t *n, const char *key, const char *dflt);

/* Adds a weight-table entry (name copied) and returns its index. */
uint32_t llmc_ir_add_weight(llmc_ir_module_t *m, const char *name, llmc_dtype_t dtype,
                            llmc_ir_shape_t shape);
/* Index of the weight called name, or -1. */
int64_t llmc_ir_find_weight(const llmc_ir_module_t *m, const char *name);

/* ---- names and sizes (types.c) ---- */

const char *llmc_ir_op_name(llmc_ir_op_t op);
int llmc_ir_op_flags(llmc_ir_op_t op);
int llmc_ir_op_min_args(llmc_ir_op_t op);
int llmc_ir_op_max_args(llmc_ir_op_t op);
/* Op by text name; returns LLMC_OP_COUNT if unknown. */
llmc_ir_op_t llmc_ir_op_from_name(const char *name);
const char *llmc_dtype_name(llmc_dtype_t t);
/* Dtype by name ("f32", "q4_K", ...); LLMC_DTYPE_COUNT if unknown. */
llmc_dtype_t llmc_dtype_from_name(const char *name);
/* Elements per block and bytes per block (1 and the element size for
 * plain types). */
int llmc_dtype_block_elems(llmc_dtype_t t);
int llmc_dtype_block_bytes(llmc_dtype_t t);
/* Bytes of a tensor of n elements (n must be a multiple of the block). */
uint64_t llmc_dtype_nbytes(llmc_dtype_t t, uint64_t n);
/* Product of a constant shape's dims; -1 if any dim is symbolic. */
int64_t llmc_shape_numel(const llmc_ir_shape_t *s);
/* Writes "[T,128]" into buf. */
void llmc_shape_format(const llmc_ir_shape_t *s, char *buf, size_t size);

/* ---- text form (print.c, parse.c) ---- */

/* Prints the module in the text form described above. */
void llmc_ir_print(const llmc_ir_module_t *m, FILE *out);
/* Parses the text form into a new module. On error returns NULL and a
 * status naming the line and column. */
llmc_ir_module_t *llmc_ir_parse(const char *text, const char *filename, llmc_status_t *out_status);

/* ---- verifier (verify.c) ---- */

/* Checks SSA order (args defined before use), arg counts, attribute
 * presence, dtype/shape consistency of every node whose shape is known,
 * and weight-table references. Returns OK or an error naming the node. */
llmc_status_t llmc_ir_verify(const llmc_ir_module_t *m);

#endif /* LLMC_IR_H */
