/* types.c — names, argument counts and flags of ops; names and block sizes
 * of element types; shape helpers.
 *
 * The op table is built from ops.def with the X-macro, so adding an op
 * there is all it takes for it to have a name, arity and flags here. The
 * dtype table follows GGUF's block layouts so that quantized weights can be
 * mapped from a .gguf file byte for byte. */
#include <inttypes.h>
#include <string.h>

#include "ir.h"

/* ops.def writes flags as bare names. */
#define ROWLOCAL LLMC_OPF_ROWLOCAL
#define BATCHLESS LLMC_OPF_BATCHLESS
#define SIDEEFFECT LLMC_OPF_SIDEEFFECT

static const struct {
  const char *name;
  int min_args, max_args;
  int flags;
} op_table[] = {
#define OP(e, name, amin, amax, flags) [LLMC_OP_##e] = {name, amin, amax, flags},
#include "ops.def"
#undef OP
};

#undef ROWLOCAL
#undef BATCHLESS
#undef SIDEEFFECT

_Static_assert(sizeof op_table / sizeof op_table[0] == LLMC_OP_COUNT, "op table out of sync");

static const struct {
  const char *name;
  int block_elems; /* elements per block (1 for plain types) */
  int block_bytes; /* bytes per block */
} dtype_table[] = {
    [LLMC_DTYPE_NONE] = {"none", 1, 0},     [LLMC_DTYPE_F32] = {"f32", 1, 4},
    [LLMC_DTYPE_F16] = {"f16", 1, 2},       [LLMC_DTYPE_BF16] = {"bf16", 1, 2},
    [LLMC_DTYPE_Q8_0] = {"q8_0", 32, 34},   [LLMC_DTYPE_Q4_0] = {"q4_0", 32, 18},
    [LLMC_DTYPE_Q4_K] = {"q4_K", 256, 144}, [LLMC_DTYPE_Q6_K] = {"q6_K", 256, 210},
    [LLMC_DTYPE_I32] = {"i32", 1, 4},
};

_Static_assert(sizeof dtype_table / sizeof dtype_table[0] == LLMC_DTYPE_COUNT,
               "dtype table out of sync");

static bool op_valid(llmc_ir_op_t op) { return (unsigned)op < LLMC_OP_COUNT; }
static bool dtype_valid(llmc_dtype_t t) { return (unsigned)t < LLMC_DTYPE_COUNT; }

/* The op's text name; "<bad op>" for a value outside the enum, so that
 * printing a corrupted module never crashes. */
const char *llmc_ir_op_name(llmc_ir_op_t op) {
  return op_valid(op) ? op_table[op].name : "<bad op>";
}

/* LLMC_OPF_* bits of the op; 0 for a value outside the enum. */
int llmc_ir_op_flags(llmc_ir_op_t op) { return op_valid(op) ? op_table[op].flags : 0; }

/* Fewest arguments the op takes (ops.def); 0 for a value outside the enum. */
int llmc_ir_op_min_args(llmc_ir_op_t op) { return op_valid(op) ? op_table[op].min_args : 0; }

/* Most arguments the op takes (ops.def); 0 for a value outside the enum. */
int llmc_ir_op_max_args(llmc_ir_op_t op) { return op_valid(op) ? op_table[op].max_args : 0; }

/* Op by its exact text name; LLMC_OP_COUNT if there is none. */
llmc_ir_op_t llmc_ir_op_from_name(const char *name) {
  for (int op = 0; op < LLMC_OP_COUNT; op++)
    if (!strcmp(op_table[op].name, name)) return (llmc_ir_op_t)op;
  return LLMC_OP_COUNT;
}

/* The dtype's text name; "<bad dtype>" for a value outside the enum. */
const char *llmc_dtype_name(llmc_dtype_t t) {
  return dtype_valid(t) ? dtype_table[t].name : "<bad dtype>";
}

/* Dtype by its exact (case-sensitive) name; LLMC_DTYPE_COUNT if none. */
llmc_dtype_t llmc_dtype_from_name(const char *name) {
  for (int t = 0; t < LLMC_DTYPE_COUNT; t++)
    if (!strcmp(dtype_table[t].name, name)) return (llmc_dtype_t)t;
  return LLMC_DTYPE_COUNT;
}

/* Elements per block; 1 for plain types and for invalid values. */
int llmc_dtype_block_elems(llmc_dtype_t t) {
  return dtype_valid(t) ? dtype_table[t].block_elems : 1;
}

/* Bytes per block; 0 for none and for invalid values. */
int llmc_dtype_block_bytes(llmc_dtype_t t) {
  return dtype_valid(t) ? dtype_table[t].block_bytes : 0;
}

/* Bytes of n elements of type t; a partial last block counts as whole. */
uint64_t llmc_dtype_nbytes(llmc_dtype_t t, uint64_t n) {
  uint64_t elems = (uint64_t)llmc_dtype_block_elems(t);
  return (n + elems - 1) / elems * (uint64_t)llmc_dtype_block_bytes(t);
}

/* Product of the dims of a constant shape (1 for rank 0). -1 if the rank is
 * unknown, a dim is symbolic or not positive, or the product overflows. */
int64_t llmc_shape_numel(const llmc_ir_shape_t *s) {
  if (s->rank < 0 || s->rank > LLMC_IR_MAX_DIMS) return -1;
  int64_t n = 1;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->dims[i];
    if (d <= 0 || n > INT64_MAX / d) return -1;
    n *= d;
  }
  return n;
}

/* Writes the shape as "[T,128]" ("[]" for rank 0, "?" for an unknown rank),
 * truncated to fit buf. Dims that are neither positive nor T/L are written
 * as numbers so that a broken shape still shows what it holds. */
void llmc_shape_format(const llmc_ir_shape_t *s, char *buf, size_t size) {
  if (!size) return;
  if (s->rank < 0) {
    snprintf(buf, size, "?");
    return;
  }
  size_t used = 0;
  buf[0] = '\0';
  int rank = s->rank < LLMC_IR_MAX_DIMS ? s->rank : LLMC_IR_MAX_DIMS;
  for (int i = 0; i <= rank && used < size; i++) {
    const char *sep = i == 0 ? "[" : ",";
    int n;
    if (i == rank)
      n = snprintf(buf + used, size - used, "%s]", i == 0 ? "[" : "");
    else if (s->dims[i] == LLMC_DIM_T)
      n = snprintf(buf + used, size - used, "%sT", sep);
    else if (s->dims[i] == LLMC_DIM_L)
      n = snprintf(buf + used, size - used, "%sL", sep);
    else
      n = snprintf(buf + used, size - used, "%s%" PRId64, sep, s->dims[i]);
    if (n < 0) return;
    used += (size_t)n;
  }
}
