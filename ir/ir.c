/* ir.c — building and editing IR modules: nodes, attributes, the weight
 * table, use counts, dead-code removal and compaction. See ir.h for the
 * data model. Arrays grow by doubling inside the module's arena; old copies
 * are simply abandoned there (modules are short-lived and small next to the
 * weights they describe). */
#include "ir.h"

#include <stdlib.h>
#include <string.h>

llmc_ir_module_t *llmc_ir_module_create(void) {
  llmc_arena_t *arena = llmc_arena_create();
  if (!arena) return NULL;
  llmc_ir_module_t *m = llmc_arena_alloc(arena, sizeof *m);
  m->arena = arena;
  m->cap_nodes = 64;
  m->nodes = llmc_arena_alloc(arena, m->cap_nodes * sizeof *m->nodes);
  m->n_nodes = 1; /* nodes[0] is the reserved "none" value */
  m->nodes[0].shape.rank = -1;
  m->nodes[0].region = -1;
  m->cap_weights = 64;
  m->weights = llmc_arena_alloc(arena, m->cap_weights * sizeof *m->weights);
  return m;
}

void llmc_ir_module_destroy(llmc_ir_module_t *m) {
  if (m) llmc_arena_destroy(m->arena);
}

static void grow_nodes(llmc_ir_module_t *m) {
  if (m->n_nodes < m->cap_nodes) return;
  llmc_ir_node_t *bigger = llmc_arena_alloc(m->arena, 2 * m->cap_nodes * sizeof *bigger);
  memcpy(bigger, m->nodes, m->n_nodes * sizeof *bigger);
  m->nodes = bigger;
  m->cap_nodes *= 2;
}

static void init_node(llmc_ir_node_t *n, llmc_ir_op_t op, int n_args, const llmc_ir_value_t *args) {
  memset(n, 0, sizeof *n);
  n->op = op;
  n->shape.rank = -1;
  n->region = -1;
  n->n_args = n_args;
  if (n_args) memcpy(n->args, args, (size_t)n_args * sizeof *args);
}

llmc_ir_value_t llmc_ir_add_node(llmc_ir_module_t *m, llmc_ir_op_t op, int n_args,
                                 const llmc_ir_value_t *args) {
  grow_nodes(m);
  init_node(&m->nodes[m->n_nodes], op, n_args, args);
  return m->n_nodes++;
}

llmc_ir_value_t llmc_ir_insert_node(llmc_ir_module_t *m, llmc_ir_value_t before, llmc_ir_op_t op,
                                    int n_args, const llmc_ir_value_t *args) {
  grow_nodes(m);
  memmove(&m->nodes[before + 1], &m->nodes[before], (m->n_nodes - before) * sizeof *m->nodes);
  m->n_nodes++;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    if (i == before) continue;
    llmc_ir_node_t *n = &m->nodes[i];
    for (int a = 0; a < n->n_args; a++)
      if (n->args[a] >= before) n->args[a]++;
  }
  init_node(&m->nodes[before], op, n_args, args);
  return before;
}

void llmc_ir_replace_uses(llmc_ir_module_t *m, llmc_ir_value_t from, llmc_ir_value_t to) {
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    llmc_ir_node_t *n = &m->nodes[i];
    if (i == to) continue; /* the replacement may itself use `from` */
    for (int a = 0; a < n->n_args; a++)
      if (n->args[a] == from) n->args[a] = to;
  }
}

int llmc_ir_use_count(const llmc_ir_module_t *m, llmc_ir_value_t v) {
  int count = 0;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    const llmc_ir_node_t *n = &m->nodes[i];
    if (n->dead) continue;
    for (int a = 0; a < n->n_args; a++) count += n->args[a] == v;
  }
  return count;
}

void llmc_ir_remove_dead(llmc_ir_module_t *m) {
  /* Mark from the side-effecting nodes through their arguments. Passes
   * append nodes out of order, so this walks the graph (an explicit stack)
   * rather than sweeping the array once. */
  bool *live = calloc(m->n_nodes, sizeof *live);
  uint32_t *stack = malloc(m->n_nodes * sizeof *stack);
  if (!live || !stack) {
    fprintf(stderr, "llmc: out of memory in dead-code removal\n");
    abort();
  }
  uint32_t top = 0;
  for (uint32_t i = 1; i < m->n_nodes; i++)
    if (!m->nodes[i].dead && (llmc_ir_op_flags(m->nodes[i].op) & LLMC_OPF_SIDEEFFECT)) {
      live[i] = true;
      stack[top++] = i;
    }
  while (top) {
    const llmc_ir_node_t *n = &m->nodes[stack[--top]];
    for (int a = 0; a < n->n_args; a++)
      if (!live[n->args[a]]) {
        live[n->args[a]] = true;
        stack[top++] = n->args[a];
      }
  }
  for (uint32_t i = 1; i < m->n_nodes; i++)
    if (!live[i]) m->nodes[i].dead = true;
  free(live);
  free(stack);
}

void llmc_ir_compact(llmc_ir_module_t *m) {
  uint32_t *new_index = calloc(m->n_nodes, sizeof *new_index);
  if (!new_index) return;
  uint32_t out = 1;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    if (m->nodes[i].dead) continue;
    new_index[i] = out;
    m->nodes[out++] = m->nodes[i];
  }
  m->n_nodes = out;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    llmc_ir_node_t *n = &m->nodes[i];
    for (int a = 0; a < n->n_args; a++) n->args[a] = new_index[n->args[a]];
  }
  free(new_index);
}

/* ---- attributes ---- */

static llmc_ir_attr_t *attr_slot(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key) {
  llmc_ir_node_t *n = &m->nodes[v];
  for (int i = 0; i < n->n_attrs; i++)
    if (!strcmp(n->attrs[i].key, key)) return &n->attrs[i];
  if (n->n_attrs == LLMC_IR_MAX_ATTRS) {
    fprintf(stderr, "llmc: internal error: node %u has more than %d attributes\n", v,
            LLMC_IR_MAX_ATTRS);
    abort();
  }
  llmc_ir_attr_t *a = &n->attrs[n->n_attrs++];
  a->key = llmc_arena_strdup(m->arena, key);
  return a;
}

void llmc_ir_set_int(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, int64_t x) {
  llmc_ir_attr_t *a = attr_slot(m, v, key);
  a->kind = LLMC_ATTR_INT;
  a->i = x;
  a->f = (double)x;
}

void llmc_ir_set_float(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, double x) {
  llmc_ir_attr_t *a = attr_slot(m, v, key);
  a->kind = LLMC_ATTR_FLOAT;
  a->f = x;
  a->i = (int64_t)x;
}

void llmc_ir_set_string(llmc_ir_module_t *m, llmc_ir_value_t v, const char *key, const char *s) {
  llmc_ir_attr_t *a = attr_slot(m, v, key);
  a->kind = LLMC_ATTR_STRING;
  a->s = llmc_arena_strdup(m->arena, s);
}

const llmc_ir_attr_t *llmc_ir_attr(const llmc_ir_node_t *n, const char *key) {
  for (int i = 0; i < n->n_attrs; i++)
    if (!strcmp(n->attrs[i].key, key)) return &n->attrs[i];
  return NULL;
}

int64_t llmc_ir_get_int(const llmc_ir_node_t *n, const char *key, int64_t dflt) {
  const llmc_ir_attr_t *a = llmc_ir_attr(n, key);
  return a && a->kind != LLMC_ATTR_STRING ? a->i : dflt;
}

double llmc_ir_get_float(const llmc_ir_node_t *n, const char *key, double dflt) {
  const llmc_ir_attr_t *a = llmc_ir_attr(n, key);
  return a && a->kind != LLMC_ATTR_STRING ? a->f : dflt;
}

const char *llmc_ir_get_string(const llmc_ir_node_t *n, const char *key, const char *dflt) {
  const llmc_ir_attr_t *a = llmc_ir_attr(n, key);
  return a && a->kind == LLMC_ATTR_STRING ? a->s : dflt;
}

/* ---- weights ---- */

uint32_t llmc_ir_add_weight(llmc_ir_module_t *m, const char *name, llmc_dtype_t dtype,
                            llmc_ir_shape_t shape) {
  if (m->n_weights == m->cap_weights) {
    llmc_ir_weight_t *bigger = llmc_arena_alloc(m->arena, 2 * m->cap_weights * sizeof *bigger);
    memcpy(bigger, m->weights, m->n_weights * sizeof *bigger);
    m->weights = bigger;
    m->cap_weights *= 2;
  }
  llmc_ir_weight_t *w = &m->weights[m->n_weights];
  memset(w, 0, sizeof *w);
  w->name = llmc_arena_strdup(m->arena, name);
  w->dtype = dtype;
  w->shape = shape;
  return m->n_weights++;
}

int64_t llmc_ir_find_weight(const llmc_ir_module_t *m, const char *name) {
  for (uint32_t i = 0; i < m->n_weights; i++)
    if (!strcmp(m->weights[i].name, name)) return i;
  return -1;
}

/* Depth-first placement: a node is emitted after all its arguments. */
static void place(const llmc_ir_module_t *m, uint32_t v, uint8_t *state, uint32_t *order,
                  uint32_t *n_order) {
  if (state[v]) return; /* 1 = in progress (cannot happen in a DAG), 2 = placed */
  state[v] = 1;
  const llmc_ir_node_t *n = &m->nodes[v];
  for (int a = 0; a < n->n_args; a++) place(m, n->args[a], state, order, n_order);
  state[v] = 2;
  order[(*n_order)++] = v;
}

void llmc_ir_toposort(llmc_ir_module_t *m) {
  uint8_t *state = calloc(m->n_nodes, 1);
  uint32_t *order = calloc(m->n_nodes, sizeof *order);
  uint32_t *new_index = calloc(m->n_nodes, sizeof *new_index);
  llmc_ir_node_t *copy = malloc(m->n_nodes * sizeof *copy);
  if (!state || !order || !new_index || !copy) {
    fprintf(stderr, "llmc: out of memory sorting IR\n");
    abort();
  }
  uint32_t n_order = 0;
  state[0] = 2;
  for (uint32_t i = 1; i < m->n_nodes; i++)
    if (!m->nodes[i].dead) place(m, i, state, order, &n_order);
  memcpy(copy, m->nodes, m->n_nodes * sizeof *copy);
  for (uint32_t i = 0; i < n_order; i++) {
    new_index[order[i]] = i + 1;
    m->nodes[i + 1] = copy[order[i]];
  }
  m->n_nodes = n_order + 1;
  for (uint32_t i = 1; i < m->n_nodes; i++) {
    llmc_ir_node_t *n = &m->nodes[i];
    for (int a = 0; a < n->n_args; a++) n->args[a] = new_index[n->args[a]];
  }
  free(state);
  free(order);
  free(new_index);
  free(copy);
}
