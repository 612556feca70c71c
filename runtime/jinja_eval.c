/* jinja_eval.c — the tree-walking evaluator: statements, expressions, scopes,
 * loops and macros.
 *
 * Scopes follow jinja2's rules, which are not Python's: every iteration of a
 * for loop, a for loop's else branch, a macro call and the body of a block
 * set / filter / generation block get a fresh scope whose parent is the
 * scope around them, so a `set` inside them is gone when they end (the
 * reason namespace() exists); `if` makes no scope. Names resolve through the
 * scopes, then the context's variables, then the global functions; a name
 * found nowhere is undefined, which prints as '' but fails when its
 * attributes are read, as jinja2's default Undefined does.
 *
 * Work is bounded: a count of evaluated nodes and the heap's byte budget
 * stop runaway templates with an error, and macro recursion is limited. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jinja.h"

enum {
  MAX_STEPS = 10 * 1000 * 1000, /* nodes evaluated per render */
  MAX_CALL_DEPTH = 100,         /* nested macro calls */
};

struct jinja_scope {
  jinja_scope_t *parent;
  jinja_dict_t vars;
};

_Noreturn void jinja_fail(jinja_eval_t *ev, const char *fmt, ...) {
  char msg[768];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jinja_throw(ev->trap, ev->at ? ev->at->line : 0, ev->at ? ev->at->col : 0, "%s", msg);
}

static void step(jinja_eval_t *ev, const jinja_node_t *n) {
  ev->at = n;
  if (++ev->steps > MAX_STEPS) jinja_fail(ev, "the template ran for more than %d steps", MAX_STEPS);
}

static jinja_scope_t *push_scope(jinja_eval_t *ev) {
  jinja_scope_t *s = jinja_alloc(&ev->heap, sizeof *s);
  s->parent = ev->scope;
  ev->scope = s;
  return s;
}

static void assign(jinja_eval_t *ev, jinja_str_t name, jinja_value_t v) {
  jinja_dict_set(ev, &ev->scope->vars, jinja_string(name), v);
}

static jinja_value_t lookup(jinja_eval_t *ev, jinja_str_t name) {
  jinja_value_t v;
  for (const jinja_scope_t *s = ev->scope; s; s = s->parent)
    if (jinja_dict_get_str(&s->vars, name.data, name.len, &v)) return v;
  if (jinja_dict_get_str(ev->globals, name.data, name.len, &v)) return v;
  int fn = jinja_function_lookup(name);
  if (fn >= 0) return (jinja_value_t){.kind = JV_FUNCTION, .function = fn};
  char *hint = jinja_alloc(&ev->heap, name.len + 20);
  snprintf(hint, name.len + 20, "'%.*s' is undefined", (int)name.len, name.data);
  return jinja_undefined(hint);
}

/* ---- expressions ---- */

static jinja_value_t eval(jinja_eval_t *ev, const jinja_node_t *n);

/* The arguments of a call, filter or test node, evaluated. */
static jinja_args_t eval_args(jinja_eval_t *ev, const jinja_node_t *n) {
  jinja_args_t args = {.n_pos = n->n_args, .names = n->names, .n_kw = n->n_names};
  args.values = jinja_alloc(&ev->heap, (n->n_items ? n->n_items : 1) * sizeof *args.values);
  for (size_t i = 0; i < n->n_items; i++) args.values[i] = eval(ev, n->items[i]);
  ev->at = n;
  return args;
}

static jinja_value_t apply_filter_node(jinja_eval_t *ev, const jinja_node_t *n,
                                       jinja_value_t input) {
  jinja_args_t args = eval_args(ev, n);
  return jinja_apply_filter(ev, n->id, input, &args);
}

/* A block's filter chain (innermost operand NULL: the block's output). */
static jinja_value_t apply_filter_chain(jinja_eval_t *ev, const jinja_node_t *n,
                                        jinja_value_t input) {
  if (!n) return input;
  return apply_filter_node(ev, n, apply_filter_chain(ev, n->a, input));
}

static jinja_value_t negate(jinja_eval_t *ev, int op, jinja_value_t v) {
  switch (v.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, v);
  case JV_BOOL: return jinja_int(op == JT_SUB ? -(int64_t)v.b : v.b);
  case JV_INT:
    if (op == JT_SUB && v.i == INT64_MIN)
      jinja_fail(ev, "integer overflow (llmc's integers are 64-bit)");
    return jinja_int(op == JT_SUB ? -v.i : v.i);
  case JV_FLOAT: return jinja_float(op == JT_SUB ? -v.f : v.f);
  default:
    jinja_fail(ev, "bad operand type for unary %s: '%s'", op == JT_SUB ? "-" : "+",
               jinja_type_name(v));
  }
}

static bool compare_op(jinja_eval_t *ev, int op, jinja_value_t a, jinja_value_t b) {
  int c;
  switch (op) {
  case JT_EQ: return jinja_equal(a, b);
  case JT_NE: return !jinja_equal(a, b);
  case JN_IN: return jinja_contains(ev, b, a);
  case JN_NOT_IN: return !jinja_contains(ev, b, a);
  default:
    c = jinja_compare(ev, a, b); /* 2: unordered (NaN) */
    return op == JT_LT   ? c == -1
           : op == JT_LE ? c == -1 || c == 0
           : op == JT_GT ? c == 1
                         : c == 1 || c == 0;
  }
}

static jinja_value_t eval_call(jinja_eval_t *ev, const jinja_node_t *n) {
  jinja_value_t callee;
  if (n->a->kind == JN_GETATTR) { /* obj.method(...): resolve on the object */
    jinja_value_t obj = eval(ev, n->a->a);
    ev->at = n->a;
    callee = jinja_getattr(ev, obj, n->a->name);
  } else {
    callee = eval(ev, n->a);
  }
  jinja_args_t args = eval_args(ev, n);
  return jinja_call(ev, callee, &args);
}

static jinja_value_t eval(jinja_eval_t *ev, const jinja_node_t *n) {
  step(ev, n);
  jinja_value_t v, w;
  switch (n->kind) {
  case JN_CONST: return n->value;
  case JN_NAME: return lookup(ev, n->name);
  case JN_LIST:
  case JN_TUPLE:
    v = jinja_list_new(ev, n->kind == JN_LIST ? JV_LIST : JV_TUPLE, n->n_items);
    for (size_t i = 0; i < n->n_items; i++) jinja_list_push(ev, v, eval(ev, n->items[i]));
    return v;
  case JN_DICT:
    v = jinja_dict_new(ev, JV_DICT);
    for (size_t i = 0; i + 1 < n->n_items; i += 2) {
      jinja_value_t key = eval(ev, n->items[i]);
      w = eval(ev, n->items[i + 1]);
      ev->at = n;
      jinja_dict_set(ev, v.dict, key, w);
    }
    return v;
  case JN_GETATTR:
    v = eval(ev, n->a);
    ev->at = n;
    return jinja_getattr(ev, v, n->name);
  case JN_GETITEM:
    v = eval(ev, n->a);
    w = eval(ev, n->b);
    ev->at = n;
    return jinja_getitem(ev, v, w);
  case JN_SLICE: {
    jinja_value_t bounds[3];
    v = eval(ev, n->a);
    for (int i = 0; i < 3; i++) bounds[i] = n->items[i] ? eval(ev, n->items[i]) : jinja_none();
    ev->at = n;
    return jinja_slice(ev, v, bounds[0], bounds[1], bounds[2]);
  }
  case JN_CALL: return eval_call(ev, n);
  case JN_FILTER: return apply_filter_node(ev, n, eval(ev, n->a));
  case JN_TEST: {
    v = eval(ev, n->a);
    jinja_args_t args = eval_args(ev, n);
    return jinja_bool(jinja_apply_test(ev, n->id, v, &args) != (n->op != 0));
  }
  case JN_UNARY:
    v = eval(ev, n->a);
    ev->at = n;
    return n->op == JN_NOT ? jinja_bool(!jinja_truthy(v)) : negate(ev, n->op, v);
  case JN_BINARY:
    v = eval(ev, n->a);
    if (n->op == JN_AND) return jinja_truthy(v) ? eval(ev, n->b) : v;
    if (n->op == JN_OR) return jinja_truthy(v) ? v : eval(ev, n->b);
    w = eval(ev, n->b);
    ev->at = n;
    return jinja_binary_op(ev, n->op, v, w);
  case JN_COMPARE:
    v = eval(ev, n->a);
    for (size_t i = 0; i < n->n_items; i++) {
      w = eval(ev, n->items[i]);
      ev->at = n;
      if (!compare_op(ev, n->ops[i], v, w)) return jinja_bool(false);
      v = w;
    }
    return jinja_bool(true);
  case JN_COND:
    if (jinja_truthy(eval(ev, n->b))) return eval(ev, n->a);
    if (n->c) return eval(ev, n->c);
    char *hint = jinja_alloc(&ev->heap, 128);
    snprintf(
        hint, 128,
        "the inline if-expression on line %d evaluated to false and no else section was defined.",
        n->line);
    return jinja_undefined(hint);
  default: jinja_fail(ev, "internal error: statement node in an expression");
  }
}

/* ---- statements ---- */

static void exec_body(jinja_eval_t *ev, jinja_node_t *const *body, size_t n);

/* Renders body in a scope of its own into a fresh buffer; returns the text. */
static jinja_str_t capture(jinja_eval_t *ev, jinja_node_t *const *body, size_t n) {
  jinja_buf_t buf = {.heap = &ev->heap}, *saved_out = ev->out;
  jinja_scope_t *saved_scope = ev->scope;
  push_scope(ev);
  ev->out = &buf;
  exec_body(ev, body, n);
  ev->out = saved_out;
  ev->scope = saved_scope;
  return jinja_buf_str(&buf);
}

/* Binds a for loop's targets (or a set's) to value, unpacking for several. */
static void bind_targets(jinja_eval_t *ev, const jinja_str_t *names, size_t n,
                         jinja_value_t value) {
  if (n == 1) {
    assign(ev, names[0], value);
    return;
  }
  const jinja_list_t *parts = jinja_iterate(ev, value);
  if (parts->len != n)
    jinja_fail(ev, "%s values to unpack (expected %zu, got %zu)",
               parts->len > n ? "too many" : "not enough", n, parts->len);
  for (size_t i = 0; i < n; i++) assign(ev, names[i], parts->items[i]);
}

static void exec_for(jinja_eval_t *ev, const jinja_node_t *n) {
  jinja_value_t iterable = eval(ev, n->a);
  ev->at = n;
  jinja_list_t *items = jinja_iterate(ev, iterable);
  jinja_scope_t *outer = ev->scope;
  if (n->b) { /* the loop's `if`: filter first, so loop.length counts what is kept */
    jinja_value_t kept = jinja_list_new(ev, JV_LIST, 0);
    for (size_t i = 0; i < items->len; i++) {
      push_scope(ev);
      bind_targets(ev, n->names, n->n_names, items->items[i]);
      bool keep = jinja_truthy(eval(ev, n->b));
      ev->scope = outer;
      if (keep) jinja_list_push(ev, kept, items->items[i]);
    }
    items = kept.list;
  }
  if (!items->len) {
    push_scope(ev);
    exec_body(ev, n->body2, n->n_body2);
    ev->scope = outer;
    return;
  }
  for (size_t i = 0; i < items->len; i++) {
    step(ev, n);
    push_scope(ev);
    jinja_loop_t *loop = jinja_alloc(&ev->heap, sizeof *loop);
    loop->items = items;
    loop->index0 = i;
    assign(ev, (jinja_str_t){"loop", 4}, (jinja_value_t){.kind = JV_LOOP, .loop = loop});
    bind_targets(ev, n->names, n->n_names, items->items[i]);
    exec_body(ev, n->body, n->n_body);
    ev->scope = outer;
    int flow = ev->flow;
    ev->flow = 0;
    if (flow == JN_BREAK) break;
  }
}

static void exec(jinja_eval_t *ev, const jinja_node_t *n) {
  step(ev, n);
  jinja_value_t v;
  switch (n->kind) {
  case JN_TEXT: jinja_buf_put(ev->out, n->text.data, n->text.len); return;
  case JN_OUTPUT:
    v = eval(ev, n->a);
    ev->at = n->a;
    jinja_write_str(ev, ev->out, v);
    return;
  case JN_IF:
    for (;;) { /* an elif chain is an if alone in the else branch: walk it, don't recurse */
      if (jinja_truthy(eval(ev, n->a))) {
        exec_body(ev, n->body, n->n_body);
        return;
      }
      if (n->n_body2 != 1 || n->body2[0]->kind != JN_IF) break;
      n = n->body2[0];
      step(ev, n);
    }
    exec_body(ev, n->body2, n->n_body2);
    return;
  case JN_FOR: exec_for(ev, n); return;
  case JN_SET:
    v = eval(ev, n->a);
    ev->at = n;
    bind_targets(ev, n->names, n->n_names, v);
    return;
  case JN_SET_ATTR: {
    jinja_value_t ns = lookup(ev, n->name);
    ev->at = n;
    if (ns.kind != JV_NAMESPACE) jinja_fail(ev, "cannot assign attribute on non-namespace object");
    v = eval(ev, n->a);
    jinja_dict_set(ev, ns.dict, jinja_string(n->text), v);
    return;
  }
  case JN_SET_BLOCK:
    v = jinja_string(capture(ev, n->body, n->n_body));
    assign(ev, n->name, apply_filter_chain(ev, n->b, v));
    return;
  case JN_FILTER_BLOCK:
    v = apply_filter_chain(ev, n->b, jinja_string(capture(ev, n->body, n->n_body)));
    jinja_write_str(ev, ev->out, v);
    return;
  case JN_MACRO: {
    jinja_macro_t *m = jinja_alloc(&ev->heap, sizeof *m);
    m->node = n;
    m->scope = ev->scope;
    assign(ev, n->name, (jinja_value_t){.kind = JV_MACRO, .macro = m});
    return;
  }
  case JN_BREAK:
  case JN_CONTINUE: ev->flow = n->kind; return;
  default: jinja_fail(ev, "internal error: expression node as a statement");
  }
}

static void exec_body(jinja_eval_t *ev, jinja_node_t *const *body, size_t n) {
  for (size_t i = 0; i < n && !ev->flow; i++) exec(ev, body[i]);
}

jinja_value_t jinja_call_macro(jinja_eval_t *ev, jinja_macro_t *m, const jinja_args_t *args) {
  const jinja_node_t *def = m->node, *call_site = ev->at;
  size_t np = def->n_names, n_defaults = def->n_items;
  if (args->n_pos > np)
    jinja_fail(ev, "macro '%.*s' takes not more than %zu argument(s)", (int)def->name.len,
               def->name.data, np);
  for (size_t k = 0; k < args->n_kw; k++) {
    size_t i = 0;
    while (i < np && !(def->names[i].len == args->names[k].len &&
                       memcmp(def->names[i].data, args->names[k].data, def->names[i].len) == 0))
      i++;
    if (i == np)
      jinja_fail(ev, "macro '%.*s' takes no keyword argument '%.*s'", (int)def->name.len,
                 def->name.data, (int)args->names[k].len, args->names[k].data);
    if (i < args->n_pos)
      jinja_fail(ev, "macro '%.*s' got multiple values for argument '%.*s'", (int)def->name.len,
                 def->name.data, (int)args->names[k].len, args->names[k].data);
  }
  if (++ev->depth > MAX_CALL_DEPTH) jinja_fail(ev, "macro calls nested too deeply");
  jinja_buf_t buf = {.heap = &ev->heap}, *saved_out = ev->out;
  jinja_scope_t *saved_scope = ev->scope;
  ev->scope = m->scope;
  push_scope(ev);
  for (size_t i = 0; i < np; i++) { /* bound in order: a default may use earlier parameters */
    jinja_value_t v = jinja_none();
    bool given = i < args->n_pos;
    if (given) v = args->values[i];
    for (size_t k = 0; k < args->n_kw && !given; k++)
      if (def->names[i].len == args->names[k].len &&
          memcmp(def->names[i].data, args->names[k].data, def->names[i].len) == 0) {
        v = args->values[args->n_pos + k];
        given = true;
      }
    if (!given && i >= np - n_defaults) {
      v = eval(ev, def->items[i - (np - n_defaults)]);
    } else if (!given) {
      char *hint = jinja_alloc(&ev->heap, def->names[i].len + 20);
      snprintf(hint, def->names[i].len + 20, "'%.*s' is undefined", (int)def->names[i].len,
               def->names[i].data);
      v = jinja_undefined(hint);
    }
    assign(ev, def->names[i], v);
  }
  ev->out = &buf;
  exec_body(ev, def->body, def->n_body);
  ev->out = saved_out;
  ev->scope = saved_scope;
  ev->at = call_site;
  ev->depth--;
  return jinja_string(jinja_buf_str(&buf));
}

void jinja_render(jinja_eval_t *ev, jinja_node_t **body, size_t n) {
  push_scope(ev);
  exec_body(ev, body, n);
}
