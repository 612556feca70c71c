/* prune_logits.c — pass "prune-logits": only the rows whose logits are
 * wanted go through the final norm and the LM head.
 *
 * The importer writes select_rows right before the output. This pass moves
 * it up through row-local ops (norm, matmul, glu, adds...) as long as the
 * op's result has no other user: select(f(x, y)) = f(select(x), select(y)).
 * In a decode step only one row in T survives, and for the last layer the
 * MLP block runs for those rows alone too; the LM head, the largest matmul
 * of a small model, runs L times instead of T times. It stops at attention
 * (not row-local) and at values other nodes still need in full. */
#include "pass.h"

static bool is_activation(const llmc_ir_node_t *n) {
  return n->op != LLMC_OP_WEIGHT && n->shape.rank == 2 && n->shape.dims[0] == LLMC_DIM_T;
}

/* A live select_rows of x, or 0. */
static llmc_ir_value_t existing_select(const llmc_ir_module_t *m, llmc_ir_value_t x) {
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead && m->nodes[v].op == LLMC_OP_SELECT_ROWS && m->nodes[v].args[0] == x) return v;
  return 0;
}

/* Can select_rows move above node a? */
static bool can_push(const llmc_ir_module_t *m, llmc_ir_value_t a) {
  const llmc_ir_node_t *n = &m->nodes[a];
  if (!(llmc_ir_op_flags(n->op) & LLMC_OPF_ROWLOCAL) || !is_activation(n) || llmc_ir_use_count(m, a) != 1)
    return false;
  for (int i = 0; i < n->n_args; i++) {
    const llmc_ir_node_t *x = &m->nodes[n->args[i]];
    bool per_token = x->op != LLMC_OP_WEIGHT && x->shape.rank >= 1 && x->shape.dims[0] == LLMC_DIM_T;
    if (per_token && !(is_activation(x) && x->dtype == LLMC_DTYPE_F32)) return false;
  }
  return true;
}

llmc_status_t llmc_pass_prune_logits(llmc_ir_module_t *m) {
  llmc_ir_value_t work[4 * LLMC_IR_MAX_ARGS];
  int n_work = 0;
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead && m->nodes[v].op == LLMC_OP_SELECT_ROWS && n_work < (int)(sizeof work / sizeof *work))
      work[n_work++] = v;
  while (n_work) {
    llmc_ir_value_t s = work[--n_work];
    llmc_ir_value_t a = m->nodes[s].args[0];
    if (!can_push(m, a)) continue;
    int n_args = m->nodes[a].n_args;
    for (int i = 0; i < n_args; i++) {
      llmc_ir_value_t x = m->nodes[a].args[i];
      if (!is_activation(&m->nodes[x])) continue;
      llmc_ir_value_t sel = existing_select(m, x); /* one selection per value */
      if (!sel) {
        sel = llmc_ir_add_node(m, LLMC_OP_SELECT_ROWS, 1, &x);
        m->nodes[sel].dtype = LLMC_DTYPE_F32;
        m->nodes[sel].shape = m->nodes[x].shape;
        m->nodes[sel].shape.dims[0] = LLMC_DIM_L;
        if (n_work < (int)(sizeof work / sizeof *work)) work[n_work++] = sel;
      }
      m->nodes[a].args[i] = sel;
    }
    m->nodes[a].shape.dims[0] = LLMC_DIM_L;
    llmc_ir_replace_uses(m, s, a);
    m->nodes[s].dead = true;
  }
  return LLMC_OK;
}
