/* shape_infer.c — pass "shape-infer": gives every node its dtype and shape.
 *
 * Shapes flow forward from the graph inputs (tokens, positions: [T]) and the
 * weight table. Only what is needed to compute a result shape is checked
 * here (ranks); the full consistency checks (inner dimensions, attribute
 * values) are the verifier's, which this pass runs at the end so that a
 * model.json with a wrong shape is reported as bad input, with its location. */
#include "pass.h"

#include <string.h>

static llmc_ir_shape_t shape2(int64_t d0, int64_t d1) {
  llmc_ir_shape_t s = {.rank = 2};
  s.dims[0] = d0;
  s.dims[1] = d1;
  return s;
}

static llmc_status_t bad_rank(const llmc_ir_module_t *m, llmc_ir_value_t v, int arg, int want) {
  const llmc_ir_node_t *n = &m->nodes[v];
  char buf[64];
  llmc_shape_format(&m->nodes[n->args[arg]].shape, buf, sizeof buf);
  return LLMC_ERROR(INVALID_ARGUMENT, "%s%s%%%u (%s) %s: argument %d has shape %s, expected rank %d",
                    n->loc ? n->loc : "", n->loc ? ": " : "", v, n->name ? n->name : "",
                    llmc_ir_op_name(n->op), arg, buf, want);
}

/* Requires argument `arg` of node v to have rank `rank`. */
#define NEED_RANK(arg, r)                                       \
  do {                                                          \
    if (m->nodes[n->args[arg]].shape.rank != (r)) return bad_rank(m, v, arg, r); \
  } while (0)

static llmc_status_t infer(llmc_ir_module_t *m, llmc_ir_value_t v) {
  llmc_ir_node_t *n = &m->nodes[v];
  const llmc_ir_node_t *a0 = n->n_args > 0 ? &m->nodes[n->args[0]] : NULL;
  n->dtype = LLMC_DTYPE_F32;
  switch (n->op) {
  case LLMC_OP_TOKENS:
  case LLMC_OP_POSITIONS:
    n->dtype = LLMC_DTYPE_I32;
    n->shape = (llmc_ir_shape_t){.rank = 1, .dims = {LLMC_DIM_T}};
    break;
  case LLMC_OP_WEIGHT:
    n->dtype = m->weights[n->weight].dtype;
    n->shape = m->weights[n->weight].shape;
    break;
  case LLMC_OP_EMBED:
    NEED_RANK(0, 2);
    NEED_RANK(1, 1);
    n->shape = shape2(m->nodes[n->args[1]].shape.dims[0], a0->shape.dims[1]);
    break;
  case LLMC_OP_MATMUL: {
    NEED_RANK(0, 2);
    NEED_RANK(1, 2);
    int64_t rows = m->nodes[n->args[1]].shape.dims[0];
    if (llmc_ir_get_string(n, "glu", NULL)) rows /= 2;
    n->shape = shape2(a0->shape.dims[0], rows);
    break;
  }
  case LLMC_OP_SLICE:
    NEED_RANK(0, 2);
    n->shape = shape2(a0->shape.dims[0], llmc_ir_get_int(n, "end", 0) - llmc_ir_get_int(n, "begin", 0));
    break;
  case LLMC_OP_CONCAT: {
    n->dtype = a0->dtype;
    n->shape = a0->shape;
    for (int i = 1; i < n->n_args; i++) n->shape.dims[0] += m->nodes[n->args[i]].shape.dims[0];
    break;
  }
  case LLMC_OP_RMS_NORM:
  case LLMC_OP_ADD:
  case LLMC_OP_MUL:
  case LLMC_OP_ADD_SCALAR:
  case LLMC_OP_MUL_SCALAR:
  case LLMC_OP_GLU:
  case LLMC_OP_SOFTCAP:
  case LLMC_OP_ROPE:
  case LLMC_OP_MOE:
  case LLMC_OP_ATTENTION:
    n->shape = a0->shape;
    /* Arithmetic over weights alone stays in the weights' dtype (it is
     * folded at compile time); everything computed at run time is f32. */
    if (a0->op == LLMC_OP_WEIGHT && (n->op == LLMC_OP_ADD_SCALAR || n->op == LLMC_OP_MUL_SCALAR))
      n->dtype = a0->dtype;
    break;
  case LLMC_OP_SELECT_ROWS:
    NEED_RANK(0, 2);
    n->shape = shape2(LLMC_DIM_L, a0->shape.dims[1]);
    break;
  case LLMC_OP_KV_STORE:
  case LLMC_OP_OUTPUT:
    n->dtype = LLMC_DTYPE_NONE;
    n->shape = (llmc_ir_shape_t){.rank = 0};
    break;
  case LLMC_OP_COUNT:
    return LLMC_ERROR(INTERNAL, "node %%%u has no op", v);
  }
  return LLMC_OK;
}

llmc_status_t llmc_pass_shape_infer(llmc_ir_module_t *m) {
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead) LLMC_PROPAGATE(infer(m, v));
  int outputs = 0;
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) outputs += m->nodes[v].op == LLMC_OP_OUTPUT;
  if (outputs != 1)
    return LLMC_ERROR(INVALID_ARGUMENT, "the graph must have exactly one output node, it has %d",
                      outputs);
  return llmc_ir_verify(m);
}
