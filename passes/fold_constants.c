/* fold_constants.c — pass "fold-constants": ops whose arguments are all
 * weights (Gemma's `1 + w` norm weights, a scaled table, the concatenated
 * expert weights of a mixture-of-experts layer) become weights themselves.
 *
 * The result is a derived weight-table entry (op + argument weights) that is
 * materialised only when the .so is written, so folding costs no memory at
 * compile time. The node turns into a `weight` node in place: its users
 * need no rewiring. */
#include "pass.h"

static bool foldable(const llmc_ir_module_t *m, const llmc_ir_node_t *n) {
  if (n->op != LLMC_OP_ADD_SCALAR && n->op != LLMC_OP_MUL_SCALAR && n->op != LLMC_OP_CONCAT)
    return false;
  for (int a = 0; a < n->n_args; a++)
    if (m->nodes[n->args[a]].op != LLMC_OP_WEIGHT) return false;
  return true;
}

llmc_status_t llmc_pass_fold_constants(llmc_ir_module_t *m) {
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) {
    llmc_ir_node_t *n = &m->nodes[v];
    if (n->dead || !foldable(m, n)) continue;
    const char *name = n->name ? n->name : llmc_arena_printf(m->arena, "folded.%u", v);
    uint32_t w = llmc_ir_add_weight(m, name, n->dtype, n->shape);
    llmc_ir_weight_t *wt = &m->weights[w];
    wt->kind = LLMC_WEIGHT_DERIVED;
    wt->op = n->op;
    wt->value = llmc_ir_get_float(n, "value", 0);
    wt->n_args = n->n_args;
    for (int a = 0; a < n->n_args; a++) wt->args[a] = m->nodes[n->args[a]].weight;
    n->op = LLMC_OP_WEIGHT;
    n->weight = w;
    n->name = wt->name;
    n->n_args = 0;
    n->n_attrs = 0;
  }
  return LLMC_OK;
}
