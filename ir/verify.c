/* verify.c — the IR verifier: the invariants every pass must leave true.
 *
 * Three layers, each trusting the one before: the weight table (names,
 * types, sources, derived tensors referring to earlier entries); each live
 * node's structure (op, argument count and SSA order, dtype and shape
 * well-formed, region and weight in range) and attributes (presence and
 * kind, per the table below); then, per op, the relations between the
 * shapes of its arguments and its result, checked as far as shapes are
 * known (rank -1 means "not inferred yet" and is never an error by
 * itself). The first violation is returned, naming the node as
 *   "model.json:/graph/12: %12 (l3.q) matmul: inner dims 128 vs 64".
 * Every constant dimension is at most 2^31-1 (the parser's limit), which
 * keeps the products below free of overflow. */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "ir.h"

#define DIM_MAX INT32_MAX

/* ---- attribute table ---- */

typedef enum { ATTR_INT, ATTR_NUM, ATTR_STR } attr_type_t;

typedef struct {
  const char *key;
  attr_type_t type;
  bool required;
  int64_t lo, hi; /* ATTR_INT: allowed range */
} attr_spec_t;

#define MAX_SPECS 7
#define COUNT_MAX 65536 /* heads, head_dim, experts... */

/* Attributes each op reads (ops.def); ops may carry others too. */
static const attr_spec_t attr_specs[LLMC_OP_COUNT][MAX_SPECS] = {
    [LLMC_OP_EMBED] = {{"scale", ATTR_NUM, false, 0, 0}},
    [LLMC_OP_RMS_NORM] = {{"eps", ATTR_NUM, true, 0, 0}},
    [LLMC_OP_MATMUL] = {{"bias", ATTR_INT, false, 0, 1},
                        {"residual", ATTR_INT, false, 0, 1},
                        {"glu", ATTR_STR, false, 0, 0}},
    [LLMC_OP_ADD_SCALAR] = {{"value", ATTR_NUM, true, 0, 0}},
    [LLMC_OP_MUL_SCALAR] = {{"value", ATTR_NUM, true, 0, 0}},
    [LLMC_OP_GLU] = {{"act", ATTR_STR, true, 0, 0}},
    [LLMC_OP_SOFTCAP] = {{"cap", ATTR_NUM, true, 0, 0}},
    [LLMC_OP_SLICE] = {{"begin", ATTR_INT, true, 0, DIM_MAX}, {"end", ATTR_INT, true, 1, DIM_MAX}},
    [LLMC_OP_ROPE] = {{"heads", ATTR_INT, true, 1, COUNT_MAX},
                      {"head_dim", ATTR_INT, true, 1, COUNT_MAX},
                      {"interleaved", ATTR_INT, false, 0, 1}},
    [LLMC_OP_MOE] = {{"top_k", ATTR_INT, true, 1, COUNT_MAX}, {"act", ATTR_STR, true, 0, 0}},
    [LLMC_OP_KV_STORE] = {{"layer", ATTR_INT, true, 0, COUNT_MAX}},
    [LLMC_OP_ATTENTION] = {{"layer", ATTR_INT, true, 0, COUNT_MAX},
                           {"heads", ATTR_INT, true, 1, COUNT_MAX},
                           {"kv_heads", ATTR_INT, true, 1, COUNT_MAX},
                           {"head_dim", ATTR_INT, true, 1, COUNT_MAX},
                           {"scale", ATTR_NUM, true, 0, 0},
                           {"softcap", ATTR_NUM, false, 0, 0},
                           {"window", ATTR_INT, false, 0, DIM_MAX}},
};

/* ---- messages ---- */

typedef struct {
  const llmc_ir_module_t *m;
  uint32_t v;
  const llmc_ir_node_t *n;
} check_t;

static llmc_status_t node_error(const check_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* "LOC: %V (NAME) OP: message" — loc and name only when the node has them. */
static llmc_status_t node_error(const check_t *c, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const llmc_ir_node_t *n = c->n;
  return LLMC_ERROR(INVALID_ARGUMENT, "%s%s%%%u%s%s%s %s: %s", n->loc ? n->loc : "",
                    n->loc ? ": " : "", c->v, n->name ? " (" : "", n->name ? n->name : "",
                    n->name ? ")" : "", llmc_ir_op_name(n->op), msg);
}

#define REQUIRE(cond, ...)                          \
  do {                                              \
    if (!(cond)) return node_error(c, __VA_ARGS__); \
  } while (0)

/* Text of a shape or a single dim, for messages. */
typedef struct {
  char s[64];
} text_t;

static text_t shape_text(const llmc_ir_shape_t *s) {
  text_t t;
  llmc_shape_format(s, t.s, sizeof t.s);
  return t;
}

static text_t dim_text(int64_t d) {
  llmc_ir_shape_t s = {.rank = 1, .dims = {d}};
  text_t t = shape_text(&s);
  size_t n = strlen(t.s);
  memmove(t.s, t.s + 1, n - 2); /* drop the brackets */
  t.s[n - 2] = '\0';
  return t;
}

/* ---- shapes ---- */

static bool shape_valid(const llmc_ir_shape_t *s, bool symbolic_ok) {
  if (s->rank < -1 || s->rank > LLMC_IR_MAX_DIMS) return false;
  for (int i = 0; i < s->rank; i++) {
    int64_t d = s->dims[i];
    if (!(d >= 1 && d <= DIM_MAX) && !(symbolic_ok && (d == LLMC_DIM_T || d == LLMC_DIM_L)))
      return false;
  }
  return true;
}

static bool shape_eq(const llmc_ir_shape_t *a, const llmc_ir_shape_t *b) {
  if (a->rank != b->rank) return false;
  for (int i = 0; i < a->rank; i++)
    if (a->dims[i] != b->dims[i]) return false;
  return true;
}

static bool known(const llmc_ir_node_t *n) { return n->shape.rank >= 0; }
static int64_t rows(const llmc_ir_node_t *n) { return n->shape.dims[0]; }
static int64_t cols(const llmc_ir_node_t *n) { return n->shape.dims[1]; }
static bool is_matrix(const llmc_ir_node_t *n) { return n->shape.rank == 2; }

static llmc_ir_shape_t matrix(int64_t r, int64_t c) { return (llmc_ir_shape_t){2, {r, c}}; }

static bool act_valid(const char *act) {
  return act && (!strcmp(act, "silu") || !strcmp(act, "gelu_tanh"));
}

/* ---- the weight table ---- */

static bool derived_op(llmc_ir_op_t op) {
  return op == LLMC_OP_CONCAT || op == LLMC_OP_ADD_SCALAR || op == LLMC_OP_MUL_SCALAR;
}

static llmc_status_t weight_error(const llmc_ir_weight_t *w, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static llmc_status_t weight_error(const llmc_ir_weight_t *w, const char *fmt, ...) {
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  return LLMC_ERROR(INVALID_ARGUMENT, "tensor @%s: %s", w->name ? w->name : "(null)", msg);
}

/* A concat's parts: same dtype, rank and trailing dims; rows add up. */
static llmc_status_t check_weight_concat(const llmc_ir_module_t *m, const llmc_ir_weight_t *w) {
  if (w->shape.rank < 1) return weight_error(w, "concat of rank-0 tensors");
  int64_t total = 0;
  for (int a = 0; a < w->n_args; a++) {
    const llmc_ir_weight_t *p = &m->weights[w->args[a]];
    llmc_ir_shape_t tail = p->shape;
    tail.dims[0] = w->shape.dims[0];
    if (p->dtype != w->dtype || !shape_eq(&tail, &w->shape))
      return weight_error(w, "concat part @%s is %s%s, not %s[*,...] like the result", p->name,
                          llmc_dtype_name(p->dtype), shape_text(&p->shape).s,
                          llmc_dtype_name(w->dtype));
    total += p->shape.dims[0];
  }
  if (total != w->shape.dims[0])
    return weight_error(w, "concat parts have %" PRId64 " rows, the result %" PRId64, total,
                        w->shape.dims[0]);
  return LLMC_OK;
}

static llmc_status_t check_weight(const llmc_ir_module_t *m, uint32_t i) {
  const llmc_ir_weight_t *w = &m->weights[i];
  if (!w->name || !w->name[0]) return LLMC_ERROR(INVALID_ARGUMENT, "tensor %u has no name", i);
  if (llmc_ir_find_weight(m, w->name) != i) return weight_error(w, "defined twice");
  if ((unsigned)w->dtype >= LLMC_DTYPE_COUNT || w->dtype == LLMC_DTYPE_NONE)
    return weight_error(w, "bad dtype %s", llmc_dtype_name(w->dtype));
  if (w->shape.rank < 0 || !shape_valid(&w->shape, false))
    return weight_error(w, "shape %s is not constant", shape_text(&w->shape).s);
  int block = llmc_dtype_block_elems(w->dtype);
  int64_t inner = w->shape.rank ? w->shape.dims[w->shape.rank - 1] : 1;
  if (inner % block)
    return weight_error(w, "%s rows need a multiple of %d values, got %" PRId64,
                        llmc_dtype_name(w->dtype), block, inner);
  switch (w->kind) {
  case LLMC_WEIGHT_FILE:
    if (!w->file) return weight_error(w, "no file");
    return LLMC_OK;
  case LLMC_WEIGHT_DATA:
    if (w->dtype != LLMC_DTYPE_F32) return weight_error(w, "inline data must be f32");
    if (!w->data) return weight_error(w, "no data");
    return LLMC_OK;
  case LLMC_WEIGHT_DERIVED:
    if (!derived_op(w->op))
      return weight_error(w, "%s cannot derive a tensor", llmc_ir_op_name(w->op));
    if (w->n_args < llmc_ir_op_min_args(w->op) || w->n_args > llmc_ir_op_max_args(w->op))
      return weight_error(w, "%s of %d tensors", llmc_ir_op_name(w->op), w->n_args);
    for (int a = 0; a < w->n_args; a++)
      if (w->args[a] >= i)
        return weight_error(w, "derived from tensor %u, not defined before it", w->args[a]);
    if (w->op == LLMC_OP_CONCAT) return check_weight_concat(m, w);
    if (!shape_eq(&m->weights[w->args[0]].shape, &w->shape))
      return weight_error(w, "shape %s differs from @%s's %s", shape_text(&w->shape).s,
                          m->weights[w->args[0]].name, shape_text(&m->weights[w->args[0]].shape).s);
    return LLMC_OK;
  }
  return weight_error(w, "bad kind %d", (int)w->kind);
}

/* ---- nodes: structure and attributes ---- */

static llmc_status_t check_structure(const check_t *c) {
  const llmc_ir_module_t *m = c->m;
  const llmc_ir_node_t *n = c->n;
  REQUIRE((unsigned)n->op < LLMC_OP_COUNT, "op %d is out of range", (int)n->op);
  int lo = llmc_ir_op_min_args(n->op), hi = llmc_ir_op_max_args(n->op);
  REQUIRE(n->n_args >= lo && n->n_args <= hi, "takes %d to %d arguments, has %d", lo, hi,
          n->n_args);
  for (int a = 0; a < n->n_args; a++) {
    llmc_ir_value_t x = n->args[a];
    REQUIRE(x != 0, "argument %d is missing", a + 1);
    REQUIRE(x < c->v, "argument %d is %%%u, which is not defined before it", a + 1, x);
    REQUIRE(!m->nodes[x].dead, "argument %d is %%%u, which is dead", a + 1, x);
  }
  REQUIRE((unsigned)n->dtype < LLMC_DTYPE_COUNT, "dtype %d is out of range", (int)n->dtype);
  REQUIRE(shape_valid(&n->shape, true), "bad shape %s", shape_text(&n->shape).s);
  REQUIRE(n->region == -1 || (n->region >= 0 && n->region < m->n_regions),
          "region %d, but the module has %d", (int)n->region, (int)m->n_regions);
  REQUIRE(n->op != LLMC_OP_WEIGHT || n->weight < m->n_weights,
          "tensor %u is not in the weight table", n->weight);
  REQUIRE(n->n_attrs >= 0 && n->n_attrs <= LLMC_IR_MAX_ATTRS, "%d attributes", n->n_attrs);
  return LLMC_OK;
}

static llmc_status_t check_attrs(const check_t *c) {
  static const char *type_names[] = {"an integer", "a number", "a string"};
  const llmc_ir_node_t *n = c->n;
  for (int i = 0; i < n->n_attrs; i++) {
    const llmc_ir_attr_t *a = &n->attrs[i];
    REQUIRE(a->key, "attribute %d has no name", i + 1);
    REQUIRE((unsigned)a->kind <= LLMC_ATTR_STRING, "attribute %s has bad kind %d", a->key,
            (int)a->kind);
    REQUIRE(a->kind != LLMC_ATTR_STRING || a->s, "attribute %s has no string", a->key);
  }
  for (const attr_spec_t *s = attr_specs[n->op]; s < attr_specs[n->op] + MAX_SPECS && s->key; s++) {
    const llmc_ir_attr_t *a = llmc_ir_attr(n, s->key);
    REQUIRE(a || !s->required, "needs attribute %s", s->key);
    if (!a) continue;
    bool ok = s->type == ATTR_STR   ? a->kind == LLMC_ATTR_STRING
              : s->type == ATTR_INT ? a->kind == LLMC_ATTR_INT
                                    : a->kind != LLMC_ATTR_STRING;
    REQUIRE(ok, "attribute %s must be %s", s->key, type_names[s->type]);
    REQUIRE(s->type != ATTR_INT || (a->i >= s->lo && a->i <= s->hi),
            "attribute %s=%" PRId64 " is outside [%" PRId64 ", %" PRId64 "]", s->key, a->i, s->lo,
            s->hi);
  }
  return LLMC_OK;
}

/* ---- nodes: per-op shape rules ---- */

/* What the result should be, as far as the arguments tell: dtype
 * LLMC_DTYPE_COUNT and rank -1 mean "no constraint"; has_result false for
 * ops that only write state. */
typedef struct {
  bool has_result;
  llmc_dtype_t dtype;
  llmc_ir_shape_t shape;
} want_t;

/* The result has the type of argument i (when that is known). */
static void same_as(want_t *want, const llmc_ir_node_t *x) {
  if (!known(x)) return;
  want->dtype = x->dtype;
  want->shape = x->shape;
}

static llmc_status_t check_matmul(const check_t *c, want_t *want) {
  const llmc_ir_node_t *n = c->n, *nodes = c->m->nodes;
  const llmc_ir_node_t *x = &nodes[n->args[0]], *w = &nodes[n->args[1]];
  int64_t bias = llmc_ir_get_int(n, "bias", 0), residual = llmc_ir_get_int(n, "residual", 0);
  const char *glu = llmc_ir_get_string(n, "glu", NULL);
  REQUIRE(n->n_args == 2 + bias + residual, "%d arguments, but bias=%" PRId64 " residual=%" PRId64,
          n->n_args, bias, residual);
  REQUIRE(!llmc_ir_attr(n, "glu") || act_valid(glu), "glu must be \"silu\" or \"gelu_tanh\"");
  REQUIRE(!known(x) || is_matrix(x), "x must be a matrix, is %s", shape_text(&x->shape).s);
  REQUIRE(!known(w) || is_matrix(w), "weight must be a matrix, is %s", shape_text(&w->shape).s);
  if (!known(x) || !known(w)) return LLMC_OK;
  REQUIRE(cols(x) == cols(w), "inner dims %s vs %s", dim_text(cols(x)).s, dim_text(cols(w)).s);
  int64_t out = rows(w);
  if (glu) {
    REQUIRE(out > 0 && out % 2 == 0, "glu needs an even number of weight rows, has %s",
            dim_text(out).s);
    out /= 2;
  }
  want->dtype = x->dtype;
  want->shape = matrix(rows(x), out);
  if (bias) {
    const llmc_ir_node_t *b = &nodes[n->args[2]];
    REQUIRE(!known(b) || (b->shape.rank == 1 && b->shape.dims[0] == rows(w)),
            "bias is %s, expected [%s]", shape_text(&b->shape).s, dim_text(rows(w)).s);
  }
  if (residual) {
    const llmc_ir_node_t *r = &nodes[n->args[2 + bias]];
    REQUIRE(!known(r) || shape_eq(&r->shape, &want->shape), "residual is %s, expected %s",
            shape_text(&r->shape).s, shape_text(&want->shape).s);
  }
  return LLMC_OK;
}

/* (x[T,D], router[E,D], gate_up[E*2F,D], down[E*D,F]) */
static llmc_status_t check_moe(const check_t *c, want_t *want) {
  const llmc_ir_node_t *n = c->n, *nodes = c->m->nodes;
  const llmc_ir_node_t *x = &nodes[n->args[0]], *router = &nodes[n->args[1]],
                       *gate_up = &nodes[n->args[2]], *down = &nodes[n->args[3]];
  REQUIRE(act_valid(llmc_ir_get_string(n, "act", NULL)), "act must be \"silu\" or \"gelu_tanh\"");
  same_as(want, x);
  if (!known(x) || !known(router) || !known(gate_up) || !known(down)) return LLMC_OK;
  REQUIRE(is_matrix(x) && is_matrix(router) && is_matrix(gate_up) && is_matrix(down),
          "arguments must be matrices");
  int64_t d = cols(x), e = rows(router);
  REQUIRE(cols(router) == d && cols(gate_up) == d, "router %s and gate_up %s do not match x %s",
          shape_text(&router->shape).s, shape_text(&gate_up->shape).s, shape_text(&x->shape).s);
  REQUIRE(e > 0 && rows(gate_up) % (2 * e) == 0,
          "gate_up has %s rows, not a multiple of 2*%s experts", dim_text(rows(gate_up)).s,
          dim_text(e).s);
  llmc_ir_shape_t want_down = matrix(e * d, rows(gate_up) / (2 * e));
  REQUIRE(shape_eq(&down->shape, &want_down), "down is %s, expected %s", shape_text(&down->shape).s,
          shape_text(&want_down).s);
  REQUIRE(llmc_ir_get_int(n, "top_k", 0) <= e, "top_k %" PRId64 " of %" PRId64 " experts",
          llmc_ir_get_int(n, "top_k", 0), e);
  return LLMC_OK;
}

static llmc_status_t check_attention(const check_t *c, want_t *want) {
  const llmc_ir_node_t *n = c->n, *nodes = c->m->nodes;
  const llmc_ir_node_t *q = &nodes[n->args[0]], *kv = &nodes[n->args[1]];
  int64_t heads = llmc_ir_get_int(n, "heads", 0), kv_heads = llmc_ir_get_int(n, "kv_heads", 0),
          head_dim = llmc_ir_get_int(n, "head_dim", 0), layer = llmc_ir_get_int(n, "layer", 0);
  REQUIRE(kv->op == LLMC_OP_KV_STORE, "second argument %%%u is %s, not kv_store", n->args[1],
          llmc_ir_op_name(kv->op));
  REQUIRE(llmc_ir_get_int(kv, "layer", -1) == layer,
          "layer %" PRId64 " reads kv_store of layer %" PRId64, layer,
          llmc_ir_get_int(kv, "layer", -1));
  REQUIRE(heads % kv_heads == 0, "heads %" PRId64 " is not a multiple of kv_heads %" PRId64, heads,
          kv_heads);
  REQUIRE(!known(q) || (is_matrix(q) && cols(q) == heads * head_dim),
          "q is %s, expected [T,%" PRId64 "] (heads*head_dim)", shape_text(&q->shape).s,
          heads * head_dim);
  const llmc_ir_node_t *k = &nodes[kv->args[0]];
  REQUIRE(!known(k) || (is_matrix(k) && cols(k) == kv_heads * head_dim),
          "keys are %s, expected [T,%" PRId64 "] (kv_heads*head_dim)", shape_text(&k->shape).s,
          kv_heads * head_dim);
  REQUIRE(!known(q) || !known(k) || rows(q) == rows(k), "q has %s rows, the keys %s",
          dim_text(rows(q)).s, dim_text(rows(k)).s);
  same_as(want, q);
  return LLMC_OK;
}

static llmc_status_t check_op(const check_t *c, want_t *want) {
  const llmc_ir_node_t *n = c->n, *nodes = c->m->nodes;
  const llmc_ir_node_t *x = n->n_args ? &nodes[n->args[0]] : NULL;
  const llmc_ir_node_t *y = n->n_args > 1 ? &nodes[n->args[1]] : NULL;
  switch (n->op) {
  case LLMC_OP_TOKENS:
  case LLMC_OP_POSITIONS:
    want->dtype = LLMC_DTYPE_I32;
    want->shape = (llmc_ir_shape_t){1, {LLMC_DIM_T}};
    return LLMC_OK;
  case LLMC_OP_WEIGHT:
    want->dtype = c->m->weights[n->weight].dtype;
    want->shape = c->m->weights[n->weight].shape;
    return LLMC_OK;
  case LLMC_OP_EMBED:
    REQUIRE(!known(x) || is_matrix(x), "table must be a matrix, is %s", shape_text(&x->shape).s);
    REQUIRE(!known(y) || (y->dtype == LLMC_DTYPE_I32 && y->shape.rank == 1),
            "token ids must be i32[T], are %s%s", llmc_dtype_name(y->dtype),
            shape_text(&y->shape).s);
    want->dtype = LLMC_DTYPE_F32;
    if (known(x) && known(y)) want->shape = matrix(rows(y), cols(x));
    return LLMC_OK;
  case LLMC_OP_RMS_NORM:
    REQUIRE(!known(y) || y->shape.rank == 1, "weight must be a vector, is %s",
            shape_text(&y->shape).s);
    REQUIRE(!known(x) || is_matrix(x), "x must be a matrix, is %s", shape_text(&x->shape).s);
    REQUIRE(!known(x) || !known(y) || (cols(x) > 0 && cols(x) % y->shape.dims[0] == 0),
            "row of %s is not a multiple of the weight's %s", dim_text(cols(x)).s,
            dim_text(y->shape.dims[0]).s);
    same_as(want, x);
    return LLMC_OK;
  case LLMC_OP_MATMUL: return check_matmul(c, want);
  case LLMC_OP_ADD:
  case LLMC_OP_MUL:
    REQUIRE(!known(x) || !known(y) || shape_eq(&x->shape, &y->shape) ||
                (x->shape.rank >= 1 && y->shape.rank == 1 &&
                 y->shape.dims[0] == x->shape.dims[x->shape.rank - 1]),
            "shapes %s and %s do not broadcast", shape_text(&x->shape).s, shape_text(&y->shape).s);
    same_as(want, x);
    return LLMC_OK;
  case LLMC_OP_GLU:
    REQUIRE(act_valid(llmc_ir_get_string(n, "act", NULL)), "act must be \"silu\" or \"gelu_tanh\"");
    REQUIRE(!known(x) || !known(y) || shape_eq(&x->shape, &y->shape), "gate %s and up %s differ",
            shape_text(&x->shape).s, shape_text(&y->shape).s);
    same_as(want, x);
    return LLMC_OK;
  case LLMC_OP_ADD_SCALAR:
  case LLMC_OP_MUL_SCALAR:
  case LLMC_OP_SOFTCAP: same_as(want, x); return LLMC_OK;
  case LLMC_OP_SLICE: {
    int64_t begin = llmc_ir_get_int(n, "begin", 0), end = llmc_ir_get_int(n, "end", 0);
    REQUIRE(begin < end, "empty slice [%" PRId64 ", %" PRId64 ")", begin, end);
    if (!known(x)) return LLMC_OK;
    REQUIRE(is_matrix(x) && end <= cols(x), "slice [%" PRId64 ", %" PRId64 ") of %s", begin, end,
            shape_text(&x->shape).s);
    want->dtype = x->dtype;
    want->shape = matrix(rows(x), end - begin);
    return LLMC_OK;
  }
  case LLMC_OP_CONCAT: {
    int64_t total = 0;
    for (int a = 0; a < n->n_args; a++) {
      const llmc_ir_node_t *p = &nodes[n->args[a]];
      if (!known(p)) return LLMC_OK;
      REQUIRE(is_matrix(p) && rows(p) > 0 && cols(p) == cols(x) && p->dtype == x->dtype,
              "part %d is %s%s, expected %s[N,%s]", a + 1, llmc_dtype_name(p->dtype),
              shape_text(&p->shape).s, llmc_dtype_name(x->dtype), dim_text(cols(x)).s);
      total += rows(p);
    }
    want->dtype = x->dtype;
    want->shape = matrix(total, cols(x));
    return LLMC_OK;
  }
  case LLMC_OP_ROPE: {
    const llmc_ir_node_t *freq = &nodes[n->args[2]];
    int64_t heads = llmc_ir_get_int(n, "heads", 0), head_dim = llmc_ir_get_int(n, "head_dim", 0);
    REQUIRE(!known(x) || (is_matrix(x) && cols(x) == heads * head_dim),
            "x is %s, but heads*head_dim = %" PRId64, shape_text(&x->shape).s, heads * head_dim);
    REQUIRE(!known(y) || (y->dtype == LLMC_DTYPE_I32 && y->shape.rank == 1),
            "positions must be i32[T], are %s%s", llmc_dtype_name(y->dtype),
            shape_text(&y->shape).s);
    REQUIRE(!known(x) || !known(y) || rows(x) == rows(y), "x has %s rows, positions %s",
            dim_text(rows(x)).s, dim_text(rows(y)).s);
    REQUIRE(!known(freq) || (freq->shape.rank == 1 && 2 * freq->shape.dims[0] <= head_dim),
            "inv_freq %s rotates more than head_dim %" PRId64, shape_text(&freq->shape).s,
            head_dim);
    same_as(want, x);
    return LLMC_OK;
  }
  case LLMC_OP_MOE: return check_moe(c, want);
  case LLMC_OP_KV_STORE:
    want->has_result = false;
    REQUIRE(!known(x) || is_matrix(x), "keys must be a matrix, are %s", shape_text(&x->shape).s);
    REQUIRE(!known(x) || !known(y) || shape_eq(&x->shape, &y->shape),
            "keys %s and values %s differ", shape_text(&x->shape).s, shape_text(&y->shape).s);
    return LLMC_OK;
  case LLMC_OP_ATTENTION: return check_attention(c, want);
  case LLMC_OP_SELECT_ROWS:
    REQUIRE(!known(x) || is_matrix(x), "x must be a matrix, is %s", shape_text(&x->shape).s);
    if (known(x)) {
      want->dtype = x->dtype;
      want->shape = matrix(LLMC_DIM_L, cols(x));
    }
    return LLMC_OK;
  case LLMC_OP_OUTPUT:
    want->has_result = false;
    REQUIRE(!known(x) || is_matrix(x), "logits must be a matrix, are %s", shape_text(&x->shape).s);
    return LLMC_OK;
  case LLMC_OP_COUNT: break;
  }
  return node_error(c, "no shape rule");
}

static llmc_status_t check_node(const check_t *c) {
  llmc_status_t s;
  if ((s = check_structure(c)) || (s = check_attrs(c))) return s;
  want_t want = {true, LLMC_DTYPE_COUNT, {.rank = -1}};
  if ((s = check_op(c, &want))) return s;
  const llmc_ir_node_t *n = c->n;
  if (!want.has_result) {
    REQUIRE(n->dtype == LLMC_DTYPE_NONE, "has no result, but is typed %s",
            llmc_dtype_name(n->dtype));
    return LLMC_OK;
  }
  if (!known(n)) return LLMC_OK;
  REQUIRE(n->dtype != LLMC_DTYPE_NONE, "has a shape %s but no dtype", shape_text(&n->shape).s);
  REQUIRE(want.dtype == LLMC_DTYPE_COUNT || n->dtype == want.dtype, "result is %s, expected %s",
          llmc_dtype_name(n->dtype), llmc_dtype_name(want.dtype));
  REQUIRE(want.shape.rank < 0 || shape_eq(&n->shape, &want.shape), "result is %s, expected %s",
          shape_text(&n->shape).s, shape_text(&want.shape).s);
  return LLMC_OK;
}

/* Checks the weight table, then every live node in order (see the file
 * comment); returns the first violation, or OK. Dead nodes are skipped but
 * may not be used by live ones. */
llmc_status_t llmc_ir_verify(const llmc_ir_module_t *m) {
  llmc_status_t s;
  for (uint32_t i = 0; i < m->n_weights; i++)
    if ((s = check_weight(m, i))) return s;
  for (uint32_t v = 1; v < m->n_nodes; v++) {
    check_t c = {m, v, &m->nodes[v]};
    if (!c.n->dead && (s = check_node(&c))) return s;
  }
  return LLMC_OK;
}
