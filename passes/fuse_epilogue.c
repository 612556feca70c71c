/* fuse_epilogue.c — pass "fuse-epilogue": elementwise work that follows a
 * matmul moves into the matmul's epilogue, where it is applied to each
 * output value while it is still in a register:
 *
 *   glu(slice(m, 0, F), slice(m, F, 2F))  ->  m {glu=act}        (SwiGLU / GeGLU)
 *   add(m, b[N])                          ->  m(x, w, b) {bias=1}
 *   add(slice_i(m), b_i) for every slice  ->  m(x, w, concat(b_i)) {bias=1}   (Q/K/V biases)
 *   add(r, m) or add(m, r), r [T, N]      ->  m(x, w, [b,] r) {residual=1}
 *
 * Each rewrite requires the intermediate values to have no other users, so
 * nothing else observes the value that disappears. */
#include "pass.h"

#include <string.h>

/* Collects the live users of v into out (at most max); returns the count. */
static int users_of(const llmc_ir_module_t *m, llmc_ir_value_t v, llmc_ir_value_t *out, int max) {
  int n = 0;
  for (llmc_ir_value_t u = 1; u < m->n_nodes; u++) {
    const llmc_ir_node_t *node = &m->nodes[u];
    if (node->dead) continue;
    for (int a = 0; a < node->n_args; a++)
      if (node->args[a] == v) {
        if (n < max) out[n] = u;
        n++;
        break;
      }
  }
  return n;
}

static bool is_matmul_without(const llmc_ir_module_t *m, llmc_ir_value_t v, const char *attr) {
  const llmc_ir_node_t *n = &m->nodes[v];
  return !n->dead && n->op == LLMC_OP_MATMUL && !llmc_ir_attr(n, attr);
}

static bool is_weight_vector(const llmc_ir_module_t *m, llmc_ir_value_t v, int64_t len) {
  const llmc_ir_node_t *n = &m->nodes[v];
  return n->op == LLMC_OP_WEIGHT && n->shape.rank == 1 && n->shape.dims[0] == len;
}

/* Replaces node `old` by `by` and marks it dead. */
static void forward(llmc_ir_module_t *m, llmc_ir_value_t old, llmc_ir_value_t by) {
  llmc_ir_replace_uses(m, old, by);
  m->nodes[old].dead = true;
}

static void append_arg(llmc_ir_module_t *m, llmc_ir_value_t v, llmc_ir_value_t arg, const char *flag) {
  llmc_ir_node_t *n = &m->nodes[v];
  n->args[n->n_args++] = arg;
  llmc_ir_set_int(m, v, flag, 1);
}

/* glu over the two halves of one matmul. */
static bool fuse_glu(llmc_ir_module_t *m, llmc_ir_value_t g) {
  const llmc_ir_node_t *n = &m->nodes[g];
  const llmc_ir_node_t *s0 = &m->nodes[n->args[0]], *s1 = &m->nodes[n->args[1]];
  if (s0->op != LLMC_OP_SLICE || s1->op != LLMC_OP_SLICE || s0->args[0] != s1->args[0]) return false;
  llmc_ir_value_t mm = s0->args[0];
  if (!is_matmul_without(m, mm, "glu") || m->nodes[mm].n_args != 2) return false;
  int64_t f = n->shape.dims[1], width = m->nodes[mm].shape.dims[1];
  if (width != 2 * f || llmc_ir_get_int(s0, "begin", -1) != 0 || llmc_ir_get_int(s1, "begin", -1) != f)
    return false;
  llmc_ir_value_t users[3];
  if (users_of(m, mm, users, 3) != 2 || llmc_ir_use_count(m, n->args[0]) != 1 ||
      llmc_ir_use_count(m, n->args[1]) != 1)
    return false;
  llmc_ir_set_string(m, mm, "glu", llmc_ir_get_string(n, "act", "silu"));
  m->nodes[mm].shape.dims[1] = f;
  m->nodes[n->args[0]].dead = m->nodes[n->args[1]].dead = true;
  forward(m, g, mm);
  return true;
}

/* add(m, b[N]) with m used only there. */
static bool fuse_bias(llmc_ir_module_t *m, llmc_ir_value_t add) {
  const llmc_ir_node_t *n = &m->nodes[add];
  llmc_ir_value_t mm = n->args[0], b = n->args[1];
  if (!is_matmul_without(m, mm, "bias") || llmc_ir_attr(&m->nodes[mm], "glu") ||
      llmc_ir_attr(&m->nodes[mm], "residual") || !is_weight_vector(m, b, m->nodes[mm].shape.dims[1]) ||
      llmc_ir_use_count(m, mm) != 1)
    return false;
  append_arg(m, mm, b, "bias");
  forward(m, add, mm);
  return true;
}

/* Every slice of m is followed by a bias add: one concatenated bias. */
static bool fuse_sliced_bias(llmc_ir_module_t *m, llmc_ir_value_t mm) {
  const llmc_ir_node_t *n = &m->nodes[mm];
  if (!is_matmul_without(m, mm, "bias") || n->n_args != 2 || n->n_attrs) return false;
  llmc_ir_value_t slices[LLMC_IR_MAX_ARGS], adds[LLMC_IR_MAX_ARGS];
  int count = users_of(m, mm, slices, LLMC_IR_MAX_ARGS);
  if (count < 2 || count > LLMC_IR_MAX_ARGS) return false;
  /* Order the slices by their first column; they must tile [0, N). */
  for (int i = 1; i < count; i++)
    for (int j = i; j > 0 && llmc_ir_get_int(&m->nodes[slices[j]], "begin", 0) <
                                 llmc_ir_get_int(&m->nodes[slices[j - 1]], "begin", 0); j--) {
      llmc_ir_value_t t = slices[j];
      slices[j] = slices[j - 1];
      slices[j - 1] = t;
    }
  int64_t col = 0;
  for (int i = 0; i < count; i++) {
    const llmc_ir_node_t *s = &m->nodes[slices[i]];
    if (s->op != LLMC_OP_SLICE || llmc_ir_get_int(s, "begin", -1) != col) return false;
    col = llmc_ir_get_int(s, "end", 0);
    if (users_of(m, slices[i], &adds[i], 1) != 1) return false;
    const llmc_ir_node_t *a = &m->nodes[adds[i]];
    if (a->op != LLMC_OP_ADD || a->args[0] != slices[i] ||
        !is_weight_vector(m, a->args[1], s->shape.dims[1]) ||
        m->nodes[a->args[1]].dtype != m->nodes[m->nodes[adds[0]].args[1]].dtype)
      return false;
  }
  if (col != n->shape.dims[1]) return false;
  const llmc_ir_node_t *b0 = &m->nodes[m->nodes[adds[0]].args[1]];
  llmc_ir_shape_t bshape = {.rank = 1, .dims = {col}};
  uint32_t w = llmc_ir_add_weight(m, llmc_arena_printf(m->arena, "%s.bias", n->name ? n->name : "fused"),
                                  b0->dtype, bshape);
  m->weights[w].kind = LLMC_WEIGHT_DERIVED;
  m->weights[w].op = LLMC_OP_CONCAT;
  m->weights[w].n_args = count;
  for (int i = 0; i < count; i++) {
    m->weights[w].args[i] = m->nodes[m->nodes[adds[i]].args[1]].weight;
  }
  llmc_ir_value_t bv = llmc_ir_add_node(m, LLMC_OP_WEIGHT, 0, NULL);
  m->nodes[bv].weight = w;
  m->nodes[bv].name = m->weights[w].name;
  m->nodes[bv].dtype = m->weights[w].dtype;
  m->nodes[bv].shape = bshape;
  append_arg(m, mm, bv, "bias");
  for (int i = 0; i < count; i++) forward(m, adds[i], slices[i]);
  return true;
}

/* add(r, m) / add(m, r) where m is used only there and r has m's shape. */
static bool fuse_residual(llmc_ir_module_t *m, llmc_ir_value_t add) {
  const llmc_ir_node_t *n = &m->nodes[add];
  for (int side = 0; side < 2; side++) {
    llmc_ir_value_t mm = n->args[side], r = n->args[1 - side];
    if (!is_matmul_without(m, mm, "residual") || llmc_ir_attr(&m->nodes[mm], "glu") ||
        llmc_ir_use_count(m, mm) != 1)
      continue;
    const llmc_ir_shape_t *rs = &m->nodes[r].shape, *ms = &m->nodes[mm].shape;
    if (rs->rank != 2 || rs->dims[0] != ms->dims[0] || rs->dims[1] != ms->dims[1]) continue;
    /* A matmul with a bias but no residual keeps its argument order:
     * x, w, bias, residual. */
    append_arg(m, mm, r, "residual");
    forward(m, add, mm);
    return true;
  }
  return false;
}

llmc_status_t llmc_pass_fuse_epilogue(llmc_ir_module_t *m) {
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++) {
    if (m->nodes[v].dead) continue;
    switch (m->nodes[v].op) {
    case LLMC_OP_GLU: fuse_glu(m, v); break;
    case LLMC_OP_MATMUL: fuse_sliced_bias(m, v); break;
    default: break;
    }
  }
  /* Biases before residuals, so a matmul gets both in argument order. */
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead && m->nodes[v].op == LLMC_OP_ADD) fuse_bias(m, v);
  for (llmc_ir_value_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead && m->nodes[v].op == LLMC_OP_ADD) fuse_residual(m, v);
  return LLMC_OK;
}
