/* jinja_parse.c — tokens to an AST, by recursive descent over jinja2 3.1's
 * own grammar (jinja2/parser.py), function for function, so that precedence
 * quirks come out as jinja2's do: `-2 ** 2` is 4, `**` is left-associative,
 * filters bind tighter than unary minus's operand but looser than a call,
 * `is` tests bind tighter than `not` and comparisons.
 *
 *   expression := or ('if' or ('else' expression)?)*
 *   or := and ('or' and)*         and := not ('and' not)*
 *   not := 'not' not | compare    compare := math1 (cmp_op math1 | 'in' math1 | 'not' 'in' math1)*
 *   math1 := concat (('+'|'-') concat)*      concat := math2 ('~' math2)*
 *   math2 := pow (('*'|'/'|'//'|'%') pow)*   pow := unary ('**' unary)*
 *   unary := ('-'|'+') unary-without-filters | primary postfix* ; then filters/tests/calls
 *
 * Tags: if/elif/else, for/else (with `if` filter), set (names, tuples,
 * `ns.attr`, blocks), macro, print, filter blocks, break/continue
 * (jinja2.ext.loopcontrols, which Hugging Face enables) and generation
 * (Hugging Face's AssistantTracker). Any other tag, and any unknown filter or
 * test, is a syntax error at its line:column. Nesting is limited so that a
 * hostile template cannot exhaust the stack. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "jinja.h"

enum { MAX_DEPTH = 256 };

typedef struct {
  jinja_heap_t *h;
  const jinja_token_t *t;
  size_t n, i;
  int depth;      /* recursion, against MAX_DEPTH */
  int loop_depth; /* for loops around the current statement (break/continue) */
} parser_t;

static const jinja_token_t *cur(const parser_t *p) { return &p->t[p->i]; }

static const jinja_token_t *look(const parser_t *p) {
  return &p->t[p->i + 1 < p->n ? p->i + 1 : p->i];
}

static const jinja_token_t *advance(parser_t *p) {
  const jinja_token_t *t = cur(p);
  if (p->i + 1 < p->n) p->i++;
  return t;
}

static bool str_is(jinja_str_t s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.data, lit, s.len) == 0;
}

static bool is_name(const jinja_token_t *t, const char *name) {
  return t->kind == JT_NAME && str_is(t->text, name);
}

_Noreturn static void fail_at(parser_t *p, const jinja_token_t *t, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
_Noreturn static void fail_at(parser_t *p, const jinja_token_t *t, const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  jinja_throw(p->h->trap, t->line, t->col, "%s", msg);
}

/* "'foo'" for names, the kind's description otherwise. */
static const char *describe(parser_t *p, const jinja_token_t *t) {
  if (t->kind != JT_NAME) return jinja_token_name(t->kind);
  char *s = jinja_alloc(p->h, t->text.len + 3);
  s[0] = '\'';
  memcpy(s + 1, t->text.data, t->text.len);
  s[t->text.len + 1] = '\'';
  return s;
}

static const jinja_token_t *expect(parser_t *p, jinja_token_kind_t kind) {
  if (cur(p)->kind != kind)
    fail_at(p, cur(p), "expected %s, got %s", jinja_token_name(kind), describe(p, cur(p)));
  return advance(p);
}

static void expect_name(parser_t *p, const char *name) {
  if (!is_name(cur(p), name))
    fail_at(p, cur(p), "expected '%s', got %s", name, describe(p, cur(p)));
  advance(p);
}

static void enter(parser_t *p) {
  if (++p->depth > MAX_DEPTH) fail_at(p, cur(p), "template nested too deeply");
}

static jinja_node_t *node_at(parser_t *p, jinja_node_kind_t kind, const jinja_token_t *t) {
  jinja_node_t *n = jinja_alloc(p->h, sizeof *n);
  n->kind = kind;
  n->line = t->line;
  n->col = t->col;
  return n;
}

/* A growable array of node pointers or names while parsing. */
typedef struct {
  void **items;
  size_t n, cap;
} vec_t;

static void vec_push(parser_t *p, vec_t *v, void *item) {
  if (v->n == v->cap) {
    size_t cap = v->cap ? v->cap * 2 : 8;
    void **items = jinja_alloc(p->h, cap * sizeof *items);
    if (v->n) memcpy(items, v->items, v->n * sizeof *items);
    v->items = items;
    v->cap = cap;
  }
  v->items[v->n++] = item;
}

static jinja_str_t *names_of(parser_t *p, const vec_t *v) {
  jinja_str_t *names = jinja_alloc(p->h, (v->n ? v->n : 1) * sizeof *names);
  for (size_t i = 0; i < v->n; i++) names[i] = ((const jinja_token_t *)v->items[i])->text;
  return names;
}

static jinja_node_t *parse_expression(parser_t *p, bool with_condexpr);
static jinja_node_t *parse_unary(parser_t *p, bool with_filter);
static jinja_node_t *parse_postfix(parser_t *p, jinja_node_t *node);
static jinja_node_t *parse_primary(parser_t *p);

/* ---- expressions ---- */

/* (a, b, ...) after '(' has been consumed, up to and including ')'; sets the
 * call shape of n (positional args, then keywords). */
static void parse_call_args(parser_t *p, jinja_node_t *n) {
  vec_t args = {0}, kw_values = {0}, kw_names = {0};
  while (cur(p)->kind != JT_RPAREN) {
    if (args.n + kw_values.n) {
      expect(p, JT_COMMA);
      if (cur(p)->kind == JT_RPAREN) break; /* trailing comma */
    }
    if (cur(p)->kind == JT_MUL || cur(p)->kind == JT_POW)
      fail_at(p, cur(p), "%s-arguments in calls are not supported",
              cur(p)->kind == JT_MUL ? "*" : "**");
    if (cur(p)->kind == JT_NAME && look(p)->kind == JT_ASSIGN) {
      vec_push(p, &kw_names, (void *)advance(p));
      advance(p);
      vec_push(p, &kw_values, parse_expression(p, true));
    } else {
      if (kw_values.n) fail_at(p, cur(p), "positional argument follows keyword argument");
      vec_push(p, &args, parse_expression(p, true));
    }
  }
  expect(p, JT_RPAREN);
  n->n_args = args.n;
  n->n_items = args.n + kw_values.n;
  n->items = jinja_alloc(p->h, (n->n_items ? n->n_items : 1) * sizeof *n->items);
  if (args.n) memcpy(n->items, args.items, args.n * sizeof *n->items);
  if (kw_values.n) memcpy(n->items + args.n, kw_values.items, kw_values.n * sizeof *n->items);
  n->names = names_of(p, &kw_names);
  n->n_names = kw_names.n;
}

/* name(.name)* after '|' or 'is'. */
static jinja_str_t parse_dotted_name(parser_t *p) {
  const jinja_token_t *t = expect(p, JT_NAME);
  jinja_str_t name = t->text;
  while (cur(p)->kind == JT_DOT) {
    advance(p);
    const jinja_token_t *part = expect(p, JT_NAME);
    name.len = (size_t)(part->text.data + part->text.len - name.data);
  }
  return name;
}

/* '|' filters, starting at the pipe (or at the name when inline: {% filter f %}). */
static jinja_node_t *parse_filter(parser_t *p, jinja_node_t *operand, bool start_inline) {
  while (cur(p)->kind == JT_PIPE || start_inline) {
    if (!start_inline) advance(p);
    start_inline = false;
    const jinja_token_t *t = cur(p);
    jinja_node_t *n = node_at(p, JN_FILTER, t);
    n->name = parse_dotted_name(p);
    n->id = jinja_filter_lookup(n->name);
    if (n->id < 0)
      fail_at(p, t, "unknown or unsupported filter '%.*s'", (int)n->name.len, n->name.data);
    n->a = operand;
    if (cur(p)->kind == JT_LPAREN) {
      advance(p);
      parse_call_args(p, n);
    }
    operand = n;
  }
  return operand;
}

static jinja_node_t *parse_test(parser_t *p, jinja_node_t *operand) {
  const jinja_token_t *is = advance(p);
  jinja_node_t *n = node_at(p, JN_TEST, is);
  if (is_name(cur(p), "not")) {
    advance(p);
    n->op = 1;
  }
  const jinja_token_t *t = cur(p);
  n->name = parse_dotted_name(p);
  n->id = jinja_test_lookup(n->name);
  if (n->id < 0)
    fail_at(p, t, "unknown or unsupported test '%.*s'", (int)n->name.len, n->name.data);
  n->a = operand;
  const jinja_token_t *c = cur(p);
  if (c->kind == JT_LPAREN) {
    advance(p);
    parse_call_args(p, n);
  } else if ((c->kind == JT_NAME || c->kind == JT_STRING || c->kind == JT_INT ||
              c->kind == JT_FLOAT || c->kind == JT_LPAREN || c->kind == JT_LBRACKET ||
              c->kind == JT_LBRACE) &&
             !is_name(c, "else") && !is_name(c, "or") && !is_name(c, "and")) {
    if (is_name(c, "is")) fail_at(p, c, "You cannot chain multiple tests with is");
    /* one argument without parentheses: `x is divisibleby 3` */
    jinja_node_t *arg = parse_postfix(p, parse_primary(p));
    n->items = jinja_alloc(p->h, sizeof *n->items);
    n->items[0] = arg;
    n->n_items = n->n_args = 1;
  }
  return n;
}

/* (a, b) or (a,) or a: jinja2's parse_tuple. simplified: names/primaries only
 * (assignment targets). explicit_parens: '()' is an empty tuple. */
static jinja_node_t *parse_tuple(parser_t *p, bool with_condexpr, bool explicit_parens,
                                 const char *extra_end);

static jinja_node_t *parse_list(parser_t *p, jinja_node_kind_t kind, jinja_token_kind_t close,
                                const jinja_token_t *open) {
  jinja_node_t *n = node_at(p, kind, open);
  vec_t items = {0};
  while (cur(p)->kind != close) {
    if (items.n) expect(p, JT_COMMA);
    if (cur(p)->kind == close) break;
    vec_push(p, &items, parse_expression(p, true));
    if (kind == JN_DICT) {
      expect(p, JT_COLON);
      vec_push(p, &items, parse_expression(p, true));
    }
  }
  expect(p, close);
  n->items = (jinja_node_t **)items.items;
  n->n_items = items.n;
  return n;
}

static jinja_node_t *parse_primary(parser_t *p) {
  const jinja_token_t *t = cur(p);
  jinja_node_t *n;
  switch (t->kind) {
  case JT_NAME:
    advance(p);
    n = node_at(p, JN_CONST, t);
    if (is_name(t, "true") || is_name(t, "True") || is_name(t, "false") || is_name(t, "False")) {
      n->value = jinja_bool(is_name(t, "true") || is_name(t, "True"));
    } else if (is_name(t, "none") || is_name(t, "None")) {
      n->value = jinja_none();
    } else {
      n->kind = JN_NAME;
      n->name = t->text;
    }
    return n;
  case JT_STRING: { /* adjacent literals concatenate */
    advance(p);
    jinja_buf_t b = {.heap = p->h};
    jinja_buf_put(&b, t->text.data, t->text.len);
    while (cur(p)->kind == JT_STRING) {
      jinja_buf_put(&b, cur(p)->text.data, cur(p)->text.len);
      advance(p);
    }
    n = node_at(p, JN_CONST, t);
    n->value = jinja_string(jinja_buf_str(&b));
    return n;
  }
  case JT_INT:
  case JT_FLOAT:
    advance(p);
    n = node_at(p, JN_CONST, t);
    n->value = t->kind == JT_INT ? jinja_int(t->ival) : jinja_float(t->fval);
    return n;
  case JT_LPAREN:
    advance(p);
    n = parse_tuple(p, true, true, NULL);
    expect(p, JT_RPAREN);
    return n;
  case JT_LBRACKET: advance(p); return parse_list(p, JN_LIST, JT_RBRACKET, t);
  case JT_LBRACE: advance(p); return parse_list(p, JN_DICT, JT_RBRACE, t);
  default: fail_at(p, t, "unexpected %s", describe(p, t));
  }
}

/* One subscript inside [...]: an expression or a slice a:b:c. */
static jinja_node_t *parse_subscribed(parser_t *p, jinja_node_t *obj, const jinja_token_t *open) {
  jinja_node_t *start = NULL;
  if (cur(p)->kind != JT_COLON) {
    jinja_node_t *key = parse_expression(p, true);
    if (cur(p)->kind != JT_COLON) {
      jinja_node_t *n = node_at(p, JN_GETITEM, open);
      n->a = obj;
      n->b = key;
      return n;
    }
    start = key;
  }
  advance(p); /* ':' */
  jinja_node_t *n = node_at(p, JN_SLICE, open);
  n->a = obj;
  n->items = jinja_alloc(p->h, 3 * sizeof *n->items);
  n->n_items = 3;
  n->items[0] = start;
  if (cur(p)->kind != JT_COLON && cur(p)->kind != JT_RBRACKET && cur(p)->kind != JT_COMMA)
    n->items[1] = parse_expression(p, true);
  if (cur(p)->kind == JT_COLON) {
    advance(p);
    if (cur(p)->kind != JT_RBRACKET && cur(p)->kind != JT_COMMA)
      n->items[2] = parse_expression(p, true);
  }
  return n;
}

static jinja_node_t *parse_postfix(parser_t *p, jinja_node_t *node) {
  for (;;) {
    const jinja_token_t *t = cur(p);
    if (t->kind == JT_DOT) {
      advance(p);
      const jinja_token_t *attr = advance(p);
      if (attr->kind == JT_NAME) {
        jinja_node_t *n = node_at(p, JN_GETATTR, t);
        n->a = node;
        n->name = attr->text;
        node = n;
      } else if (attr->kind == JT_INT) { /* x.0 is x[0] */
        jinja_node_t *n = node_at(p, JN_GETITEM, t);
        n->a = node;
        n->b = node_at(p, JN_CONST, attr);
        n->b->value = jinja_int(attr->ival);
        node = n;
      } else {
        fail_at(p, attr, "expected name or number after '.', got %s", describe(p, attr));
      }
    } else if (t->kind == JT_LBRACKET) {
      advance(p);
      if (cur(p)->kind == JT_RBRACKET) fail_at(p, cur(p), "expected subscript expression");
      node = parse_subscribed(p, node, t);
      if (cur(p)->kind == JT_COMMA)
        fail_at(p, cur(p), "tuple subscripts (x[a, b]) are not supported");
      expect(p, JT_RBRACKET);
    } else if (t->kind == JT_LPAREN) {
      advance(p);
      jinja_node_t *n = node_at(p, JN_CALL, t);
      n->a = node;
      parse_call_args(p, n);
      node = n;
    } else {
      return node;
    }
  }
}

static jinja_node_t *parse_filter_expr(parser_t *p, jinja_node_t *node) {
  for (;;) {
    const jinja_token_t *t = cur(p);
    if (t->kind == JT_PIPE) {
      node = parse_filter(p, node, false);
    } else if (is_name(t, "is")) {
      node = parse_test(p, node);
    } else if (t->kind == JT_LPAREN) {
      advance(p);
      jinja_node_t *n = node_at(p, JN_CALL, t);
      n->a = node;
      parse_call_args(p, n);
      node = n;
    } else {
      return node;
    }
  }
}

static jinja_node_t *parse_unary(parser_t *p, bool with_filter) {
  enter(p);
  const jinja_token_t *t = cur(p);
  jinja_node_t *node;
  if (t->kind == JT_SUB || t->kind == JT_ADD) {
    advance(p);
    node = node_at(p, JN_UNARY, t);
    node->op = t->kind;
    node->a = parse_unary(p, false);
  } else {
    node = parse_primary(p);
  }
  node = parse_postfix(p, node);
  if (with_filter) node = parse_filter_expr(p, node);
  p->depth--;
  return node;
}

static jinja_node_t *binary(parser_t *p, const jinja_token_t *t, int op, jinja_node_t *a,
                            jinja_node_t *b) {
  jinja_node_t *n = node_at(p, JN_BINARY, t);
  n->op = op;
  n->a = a;
  n->b = b;
  return n;
}

static jinja_node_t *parse_pow(parser_t *p) {
  jinja_node_t *left = parse_unary(p, true);
  while (cur(p)->kind == JT_POW) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, JT_POW, left, parse_unary(p, true));
  }
  return left;
}

static jinja_node_t *parse_math2(parser_t *p) {
  jinja_node_t *left = parse_pow(p);
  for (jinja_token_kind_t k;
       (k = cur(p)->kind) == JT_MUL || k == JT_DIV || k == JT_FLOORDIV || k == JT_MOD;) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, k, left, parse_pow(p));
  }
  return left;
}

static jinja_node_t *parse_concat(parser_t *p) {
  jinja_node_t *left = parse_math2(p);
  while (cur(p)->kind == JT_TILDE) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, JT_TILDE, left, parse_math2(p));
  }
  return left;
}

static jinja_node_t *parse_math1(parser_t *p) {
  jinja_node_t *left = parse_concat(p);
  for (jinja_token_kind_t k; (k = cur(p)->kind) == JT_ADD || k == JT_SUB;) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, k, left, parse_concat(p));
  }
  return left;
}

static jinja_node_t *parse_compare(parser_t *p) {
  const jinja_token_t *start = cur(p);
  jinja_node_t *first = parse_math1(p);
  vec_t operands = {0};
  int ops[64];
  for (;;) {
    const jinja_token_t *t = cur(p);
    int op;
    if (t->kind == JT_EQ || t->kind == JT_NE || t->kind == JT_LT || t->kind == JT_LE ||
        t->kind == JT_GT || t->kind == JT_GE) {
      op = t->kind;
      advance(p);
    } else if (is_name(t, "in")) {
      op = JN_IN;
      advance(p);
    } else if (is_name(t, "not") && is_name(look(p), "in")) {
      op = JN_NOT_IN;
      advance(p);
      advance(p);
    } else {
      break;
    }
    if (operands.n == sizeof ops / sizeof ops[0]) fail_at(p, t, "too many chained comparisons");
    ops[operands.n] = op;
    vec_push(p, &operands, parse_math1(p));
  }
  if (!operands.n) return first;
  jinja_node_t *n = node_at(p, JN_COMPARE, start);
  n->a = first;
  n->items = (jinja_node_t **)operands.items;
  n->n_items = operands.n;
  n->ops = jinja_alloc(p->h, operands.n * sizeof *n->ops);
  memcpy(n->ops, ops, operands.n * sizeof *n->ops);
  return n;
}

static jinja_node_t *parse_not(parser_t *p) {
  if (!is_name(cur(p), "not")) return parse_compare(p);
  enter(p);
  const jinja_token_t *t = advance(p);
  jinja_node_t *n = node_at(p, JN_UNARY, t);
  n->op = JN_NOT;
  n->a = parse_not(p);
  p->depth--;
  return n;
}

static jinja_node_t *parse_and(parser_t *p) {
  jinja_node_t *left = parse_not(p);
  while (is_name(cur(p), "and")) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, JN_AND, left, parse_not(p));
  }
  return left;
}

static jinja_node_t *parse_or(parser_t *p) {
  jinja_node_t *left = parse_and(p);
  while (is_name(cur(p), "or")) {
    const jinja_token_t *t = advance(p);
    left = binary(p, t, JN_OR, left, parse_and(p));
  }
  return left;
}

static jinja_node_t *parse_expression(parser_t *p, bool with_condexpr) {
  enter(p);
  const jinja_token_t *start = cur(p);
  jinja_node_t *expr = parse_or(p);
  while (with_condexpr && is_name(cur(p), "if")) {
    advance(p);
    jinja_node_t *n = node_at(p, JN_COND, start);
    n->a = expr;
    n->b = parse_or(p);
    if (is_name(cur(p), "else")) {
      advance(p);
      n->c = parse_expression(p, true);
    }
    expr = n;
    start = cur(p);
  }
  p->depth--;
  return expr;
}

static bool is_tuple_end(const parser_t *p, const char *extra_end) {
  jinja_token_kind_t k = cur(p)->kind;
  return k == JT_VAR_END || k == JT_BLOCK_END || k == JT_RPAREN ||
         (extra_end && is_name(cur(p), extra_end));
}

static jinja_node_t *parse_tuple(parser_t *p, bool with_condexpr, bool explicit_parens,
                                 const char *extra_end) {
  const jinja_token_t *start = cur(p);
  vec_t items = {0};
  bool is_tuple = false;
  for (;;) {
    if (items.n) expect(p, JT_COMMA);
    if (is_tuple_end(p, extra_end)) break;
    vec_push(p, &items, parse_expression(p, with_condexpr));
    if (cur(p)->kind != JT_COMMA) break;
    is_tuple = true;
  }
  if (!is_tuple) {
    if (items.n) return items.items[0];
    if (!explicit_parens) fail_at(p, cur(p), "expected an expression, got %s", describe(p, cur(p)));
  }
  jinja_node_t *n = node_at(p, JN_TUPLE, start);
  n->items = (jinja_node_t **)items.items;
  n->n_items = items.n;
  return n;
}

/* ---- statements ---- */

static void parse_body(parser_t *p, const char *const *end_tags, jinja_node_t ***out_body,
                       size_t *out_n, const jinja_token_t *opened);

/* Assignment targets: `a` or `a, b` (for loops and set). */
static jinja_str_t *parse_targets(parser_t *p, size_t *out_n, const char *extra_end) {
  vec_t names = {0};
  for (;;) {
    if (names.n) expect(p, JT_COMMA);
    if (names.n && (is_tuple_end(p, extra_end) || cur(p)->kind == JT_ASSIGN)) break;
    const jinja_token_t *t = cur(p);
    if (t->kind != JT_NAME || is_name(t, "true") || is_name(t, "false") || is_name(t, "none") ||
        is_name(t, "True") || is_name(t, "False") || is_name(t, "None"))
      fail_at(p, t, "can't assign to %s", describe(p, t));
    vec_push(p, &names, (void *)advance(p));
    if (cur(p)->kind != JT_COMMA) break;
  }
  *out_n = names.n;
  return names_of(p, &names);
}

/* The rest of a tag after its header: optional ':' then '%}'. */
static void end_of_tag(parser_t *p) {
  if (cur(p)->kind == JT_COLON) advance(p);
  expect(p, JT_BLOCK_END);
}

/* if/elif/else: each elif is an if node alone in the else branch of the
 * previous one (built iteratively: chains can be long). */
static jinja_node_t *parse_if(parser_t *p, const jinja_token_t *tag) {
  static const char *const ends[] = {"elif", "else", "endif", NULL};
  static const char *const endif[] = {"endif", NULL};
  jinja_node_t *root = NULL, *last = NULL;
  for (const jinja_token_t *t = tag;;) {
    jinja_node_t *n = node_at(p, JN_IF, t);
    n->a = parse_tuple(p, false, false, NULL);
    end_of_tag(p);
    parse_body(p, ends, &n->body, &n->n_body, tag);
    if (last) {
      last->body2 = jinja_alloc(p->h, sizeof *last->body2);
      last->body2[0] = n;
      last->n_body2 = 1;
    } else {
      root = n;
    }
    last = n;
    t = advance(p);
    if (is_name(t, "elif")) continue;
    if (is_name(t, "else")) {
      end_of_tag(p);
      parse_body(p, endif, &n->body2, &n->n_body2, tag);
      advance(p);
    }
    return root;
  }
}

static jinja_node_t *parse_for(parser_t *p, const jinja_token_t *tag) {
  static const char *const ends[] = {"endfor", "else", NULL};
  static const char *const endfor[] = {"endfor", NULL};
  jinja_node_t *n = node_at(p, JN_FOR, tag);
  n->names = parse_targets(p, &n->n_names, "in");
  expect_name(p, "in");
  n->a = parse_tuple(p, false, false, "recursive");
  if (is_name(cur(p), "if")) {
    advance(p);
    n->b = parse_expression(p, true);
  }
  if (is_name(cur(p), "recursive")) fail_at(p, cur(p), "recursive loops are not supported");
  end_of_tag(p);
  p->loop_depth++;
  parse_body(p, ends, &n->body, &n->n_body, tag);
  p->loop_depth--;
  if (is_name(advance(p), "else")) {
    end_of_tag(p);
    parse_body(p, endfor, &n->body2, &n->n_body2, tag);
    advance(p);
  }
  return n;
}

static jinja_node_t *parse_set(parser_t *p, const jinja_token_t *tag) {
  static const char *const endset[] = {"endset", NULL};
  if (cur(p)->kind == JT_NAME && look(p)->kind == JT_DOT) { /* set ns.attr = value */
    jinja_node_t *n = node_at(p, JN_SET_ATTR, tag);
    n->name = advance(p)->text;
    advance(p);
    n->text = expect(p, JT_NAME)->text;
    expect(p, JT_ASSIGN);
    n->a = parse_tuple(p, true, false, NULL);
    return n;
  }
  jinja_node_t *n = node_at(p, JN_SET, tag);
  n->names = parse_targets(p, &n->n_names, NULL);
  if (cur(p)->kind == JT_ASSIGN) {
    advance(p);
    n->a = parse_tuple(p, true, false, NULL);
    return n;
  }
  if (n->n_names != 1) fail_at(p, tag, "a block set assigns one name");
  n->kind = JN_SET_BLOCK;
  n->name = n->names[0];
  n->b = cur(p)->kind == JT_PIPE ? parse_filter(p, NULL, false) : NULL;
  end_of_tag(p);
  int loops = p->loop_depth;
  p->loop_depth = 0; /* the body is a function of its own in jinja2 */
  parse_body(p, endset, &n->body, &n->n_body, tag);
  p->loop_depth = loops;
  advance(p);
  return n;
}

static jinja_node_t *parse_macro(parser_t *p, const jinja_token_t *tag) {
  static const char *const endmacro[] = {"endmacro", NULL};
  jinja_node_t *n = node_at(p, JN_MACRO, tag);
  n->name = expect(p, JT_NAME)->text;
  expect(p, JT_LPAREN);
  vec_t params = {0}, defaults = {0};
  while (cur(p)->kind != JT_RPAREN) {
    if (params.n) expect(p, JT_COMMA);
    const jinja_token_t *t = expect(p, JT_NAME);
    vec_push(p, &params, (void *)t);
    if (cur(p)->kind == JT_ASSIGN) {
      advance(p);
      vec_push(p, &defaults, parse_expression(p, true));
    } else if (defaults.n) {
      fail_at(p, t, "non-default argument follows default argument");
    }
  }
  advance(p);
  end_of_tag(p);
  n->names = names_of(p, &params);
  n->n_names = params.n;
  n->items = (jinja_node_t **)defaults.items;
  n->n_items = defaults.n;
  int loops = p->loop_depth;
  p->loop_depth = 0;
  parse_body(p, endmacro, &n->body, &n->n_body, tag);
  p->loop_depth = loops;
  advance(p);
  return n;
}

/* {% filter f %}...{% endfilter %}, and Hugging Face's {% generation %}
 * (a scope that renders its body as it is: n->b stays NULL). */
static jinja_node_t *parse_scoped_block(parser_t *p, const jinja_token_t *tag, bool is_filter) {
  static const char *const endfilter[] = {"endfilter", NULL};
  static const char *const endgeneration[] = {"endgeneration", NULL};
  jinja_node_t *n = node_at(p, JN_FILTER_BLOCK, tag);
  if (is_filter) n->b = parse_filter(p, NULL, true);
  end_of_tag(p);
  int loops = p->loop_depth;
  p->loop_depth = 0;
  parse_body(p, is_filter ? endfilter : endgeneration, &n->body, &n->n_body, tag);
  p->loop_depth = loops;
  advance(p);
  return n;
}

/* One tag after '{%': the statement, with its closing '%}' left to the caller. */
static jinja_node_t *parse_statement(parser_t *p) {
  const jinja_token_t *tag = cur(p);
  if (tag->kind != JT_NAME) fail_at(p, tag, "tag name expected, got %s", describe(p, tag));
  enter(p);
  advance(p);
  jinja_node_t *n;
  if (is_name(tag, "if")) {
    n = parse_if(p, tag);
  } else if (is_name(tag, "for")) {
    n = parse_for(p, tag);
  } else if (is_name(tag, "set")) {
    n = parse_set(p, tag);
  } else if (is_name(tag, "macro")) {
    n = parse_macro(p, tag);
  } else if (is_name(tag, "print")) {
    n = node_at(p, JN_OUTPUT, tag);
    n->a = parse_tuple(p, true, false, NULL);
  } else if (is_name(tag, "filter") || is_name(tag, "generation")) {
    n = parse_scoped_block(p, tag, is_name(tag, "filter"));
  } else if (is_name(tag, "break") || is_name(tag, "continue")) {
    if (!p->loop_depth)
      fail_at(p, tag, "'%.*s' outside of a for loop", (int)tag->text.len, tag->text.data);
    n = node_at(p, is_name(tag, "break") ? JN_BREAK : JN_CONTINUE, tag);
  } else {
    fail_at(p, tag, "unknown or unsupported tag %s", describe(p, tag));
  }
  p->depth--;
  return n;
}

static bool is_end_tag(const jinja_token_t *t, const char *const *end_tags) {
  for (; end_tags && *end_tags; end_tags++)
    if (is_name(t, *end_tags)) return true;
  return false;
}

/* Statements up to (not including) one of end_tags, which is left as the
 * current token right after its '{%'. end_tags NULL: up to the end. */
static void parse_body(parser_t *p, const char *const *end_tags, jinja_node_t ***out_body,
                       size_t *out_n, const jinja_token_t *opened) {
  vec_t body = {0};
  for (;;) {
    const jinja_token_t *t = cur(p);
    if (t->kind == JT_EOF) {
      if (!end_tags) break;
      char want[128] = "";
      for (const char *const *e = end_tags; *e; e++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s'%s'",
                 e == end_tags ? "" : " or ", *e);
      char msg[256];
      snprintf(msg, sizeof msg,
               "unexpected end of template: the '%.*s' tag opened at %d:%d needs %s",
               (int)opened->text.len, opened->text.data, opened->line, opened->col, want);
      jinja_throw(p->h->trap, t->line, t->col, "%s", msg);
    }
    advance(p);
    if (t->kind == JT_TEXT) {
      jinja_node_t *n = node_at(p, JN_TEXT, t);
      n->text = t->text;
      vec_push(p, &body, n);
    } else if (t->kind == JT_VAR_BEGIN) {
      jinja_node_t *n = node_at(p, JN_OUTPUT, t);
      n->a = parse_tuple(p, true, false, NULL);
      expect(p, JT_VAR_END);
      vec_push(p, &body, n);
    } else if (t->kind == JT_BLOCK_BEGIN) {
      if (is_end_tag(cur(p), end_tags)) break;
      vec_push(p, &body, parse_statement(p));
      expect(p, JT_BLOCK_END);
    } else {
      fail_at(p, t, "unexpected %s", describe(p, t));
    }
  }
  *out_body = (jinja_node_t **)body.items;
  *out_n = body.n;
}

void jinja_parse(jinja_heap_t *h, const char *src, size_t len, jinja_node_t ***out_body,
                 size_t *out_count) {
  parser_t p = {.h = h};
  jinja_lex(h, src, len, (jinja_token_t **)&p.t, &p.n);
  parse_body(&p, NULL, out_body, out_count, NULL);
}
