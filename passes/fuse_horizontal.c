/* fuse_horizontal.c — pass "fuse-horizontal": matmuls that read the same
 * activation with different weights (Q, K and V; gate and up) become one
 * matmul over the weights concatenated along N, followed by slices.
 *
 * One wide matmul streams the activation once and gives the kernel N large
 * enough to split across threads; the slices are usually absorbed later
 * (the glu epilogue consumes the gate/up pair, and attention's inputs are
 * cheap copies). Weights are concatenated lazily as a derived weight. */
#include "pass.h"

#include <string.h>

/* A matmul that can join a group: plain (no epilogue yet) and over a weight. */
static bool plain_weight_matmul(const llmc_ir_module_t *m, const llmc_ir_node_t *n) {
  return !n->dead && n->op == LLMC_OP_MATMUL && n->n_args == 2 && n->n_attrs == 0 &&
         m->nodes[n->args[1]].op == LLMC_OP_WEIGHT;
}

static const char *display_name(llmc_ir_module_t *m, llmc_ir_value_t v) {
  const char *name = m->nodes[v].name;
  return name ? name : llmc_arena_printf(m->arena, "%%%u", v);
}

static void fuse_group(llmc_ir_module_t *m, const llmc_ir_value_t *group, int n) {
  /* Copies, not pointers: adding nodes below may move the node array. */
  const llmc_ir_node_t w0 = m->nodes[m->nodes[group[0]].args[1]];
  /* Fused names read as "l0.q+l0.k+l0.v". */
  const char *name = display_name(m, group[0]);
  for (int i = 1; i < n; i++) name = llmc_arena_printf(m->arena, "%s+%s", name, display_name(m, group[i]));

  llmc_ir_shape_t wshape = w0.shape;
  wshape.dims[0] = 0;
  for (int i = 0; i < n; i++) wshape.dims[0] += m->nodes[m->nodes[group[i]].args[1]].shape.dims[0];
  uint32_t w = llmc_ir_add_weight(m, llmc_arena_printf(m->arena, "%s.weight", name), w0.dtype, wshape);
  m->weights[w].kind = LLMC_WEIGHT_DERIVED;
  m->weights[w].op = LLMC_OP_CONCAT;
  m->weights[w].n_args = n;
  for (int i = 0; i < n; i++) m->weights[w].args[i] = m->nodes[m->nodes[group[i]].args[1]].weight;

  llmc_ir_value_t wv = llmc_ir_add_node(m, LLMC_OP_WEIGHT, 0, NULL);
  m->nodes[wv].weight = w;
  m->nodes[wv].name = m->weights[w].name;
  m->nodes[wv].dtype = w0.dtype;
  m->nodes[wv].shape = wshape;

  llmc_ir_value_t args[2] = {m->nodes[group[0]].args[0], wv};
  llmc_ir_value_t fused = llmc_ir_add_node(m, LLMC_OP_MATMUL, 2, args);
  m->nodes[fused].name = name;
  m->nodes[fused].loc = m->nodes[group[0]].loc;
  m->nodes[fused].dtype = LLMC_DTYPE_F32;
  m->nodes[fused].shape = m->nodes[group[0]].shape;
  m->nodes[fused].shape.dims[1] = wshape.dims[0];

  int64_t begin = 0;
  for (int i = 0; i < n; i++) {
    llmc_ir_value_t old = group[i];
    int64_t cols = m->nodes[old].shape.dims[1];
    llmc_ir_value_t s = llmc_ir_add_node(m, LLMC_OP_SLICE, 1, &fused);
    llmc_ir_set_int(m, s, "begin", begin);
    llmc_ir_set_int(m, s, "end", begin + cols);
    m->nodes[s].name = m->nodes[old].name;
    m->nodes[s].loc = m->nodes[old].loc;
    m->nodes[s].dtype = LLMC_DTYPE_F32;
    m->nodes[s].shape = m->nodes[old].shape;
    llmc_ir_replace_uses(m, old, s);
    m->nodes[old].dead = true;
    begin += cols;
  }
}

llmc_status_t llmc_pass_fuse_horizontal(llmc_ir_module_t *m) {
  uint32_t n_before = m->n_nodes; /* nodes appended by fusion are not revisited */
  for (llmc_ir_value_t v = 1; v < n_before; v++) {
    const llmc_ir_node_t *n = &m->nodes[v];
    if (!plain_weight_matmul(m, n)) continue;
    const llmc_ir_node_t *w = &m->nodes[n->args[1]];
    llmc_ir_value_t group[LLMC_IR_MAX_ARGS] = {v};
    int count = 1;
    for (llmc_ir_value_t u = v + 1; u < n_before && count < LLMC_IR_MAX_ARGS; u++) {
      const llmc_ir_node_t *o = &m->nodes[u];
      if (!plain_weight_matmul(m, o) || o->args[0] != n->args[0]) continue;
      const llmc_ir_node_t *ow = &m->nodes[o->args[1]];
      if (ow->dtype == w->dtype && ow->shape.dims[1] == w->shape.dims[1]) group[count++] = u;
    }
    if (count > 1) fuse_group(m, group, count);
  }
  return LLMC_OK;
}
