/* jinja_value.c — the value type of the Jinja2 interpreter with Python's
 * semantics: str() and repr() (what {{ }} prints), json.dumps (what tojson
 * prints), ==, ordering, `in`, truthiness, len(), iteration, arithmetic and
 * %-formatting, and the conversion of a cJSON context into values.
 *
 * Where Python raises (TypeError, ZeroDivisionError, jinja2's UndefinedError)
 * these throw with Python's message, at the node being evaluated. Python's
 * unbounded ints are 64-bit here; overflowing one is an error, never a wrap. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

jinja_value_t jinja_none(void) { return (jinja_value_t){.kind = JV_NONE}; }
jinja_value_t jinja_bool(bool b) { return (jinja_value_t){.kind = JV_BOOL, .b = b}; }
jinja_value_t jinja_int(int64_t i) { return (jinja_value_t){.kind = JV_INT, .i = i}; }
jinja_value_t jinja_float(double f) { return (jinja_value_t){.kind = JV_FLOAT, .f = f}; }
jinja_value_t jinja_string(jinja_str_t s) { return (jinja_value_t){.kind = JV_STRING, .s = s}; }
jinja_value_t jinja_cstring(const char *s) { return jinja_string((jinja_str_t){s, strlen(s)}); }
jinja_value_t jinja_undefined(const char *hint) {
  return (jinja_value_t){.kind = JV_UNDEFINED, .hint = hint};
}

_Noreturn void jinja_undefined_fail(jinja_eval_t *ev, jinja_value_t v) {
  jinja_fail(ev, "%s", v.hint ? v.hint : "undefined value");
}

const char *jinja_type_name(jinja_value_t v) {
  static const char *const views[] = {"list", "dict_items", "dict_keys", "dict_values"};
  if (v.kind == JV_LIST) return views[v.list->view];
  static const char *const names[JV_KIND_COUNT] = {
      [JV_UNDEFINED] = "Undefined", [JV_NONE] = "NoneType",
      [JV_BOOL] = "bool",           [JV_INT] = "int",
      [JV_FLOAT] = "float",         [JV_STRING] = "str",
      [JV_LIST] = "list",           [JV_TUPLE] = "tuple",
      [JV_ITERATOR] = "generator",  [JV_DICT] = "dict",
      [JV_NAMESPACE] = "Namespace", [JV_LOOP] = "LoopContext",
      [JV_MACRO] = "Macro",         [JV_FUNCTION] = "function",
      [JV_METHOD] = "method",
  };
  return names[v.kind];
}

/* ---- lists and dicts ---- */

jinja_value_t jinja_list_new(jinja_eval_t *ev, jinja_kind_t kind, size_t cap) {
  jinja_list_t *l = jinja_alloc(&ev->heap, sizeof *l);
  if (cap) {
    if (cap > SIZE_MAX / sizeof(jinja_value_t)) jinja_fail(ev, "list too long");
    l->items = jinja_alloc(&ev->heap, cap * sizeof *l->items);
    l->cap = cap;
  }
  return (jinja_value_t){.kind = kind, .list = l};
}

/* How deeply lists, tuples and dicts nest in v (see jinja.h). */
static uint32_t nesting(jinja_value_t v) {
  if (v.kind == JV_LIST || v.kind == JV_TUPLE || v.kind == JV_ITERATOR) return v.list->depth;
  return v.kind == JV_DICT ? v.dict->depth : 0;
}

/* Raises *depth to hold item, failing past the limit. */
static void nest(jinja_eval_t *ev, uint32_t *depth, jinja_value_t item) {
  uint32_t d = nesting(item) + 1;
  if (d > JINJA_MAX_NESTING)
    jinja_fail(ev, "values nested more than %d levels deep", JINJA_MAX_NESTING);
  if (d > *depth) *depth = d;
}

void jinja_list_push(jinja_eval_t *ev, jinja_value_t list, jinja_value_t item) {
  jinja_list_t *l = list.list;
  nest(ev, &l->depth, item);
  if (l->len == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 4;
    jinja_value_t *items = jinja_alloc(&ev->heap, cap * sizeof *items);
    if (l->len) memcpy(items, l->items, l->len * sizeof *items);
    l->items = items;
    l->cap = cap;
  }
  l->items[l->len++] = item;
}

jinja_value_t jinja_dict_new(jinja_eval_t *ev, jinja_kind_t kind) {
  return (jinja_value_t){.kind = kind, .dict = jinja_alloc(&ev->heap, sizeof(jinja_dict_t))};
}

static bool is_number(jinja_value_t v) {
  return v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_FLOAT;
}

static double as_double(jinja_value_t v) {
  return v.kind == JV_FLOAT ? v.f : v.kind == JV_INT ? (double)v.i : v.b;
}

static int64_t as_int(jinja_value_t v) { return v.kind == JV_INT ? v.i : v.b; }

static void check_hashable(jinja_eval_t *ev, jinja_value_t key) {
  if (key.kind == JV_LIST || key.kind == JV_DICT || key.kind == JV_ITERATOR)
    jinja_fail(ev, "unhashable type: '%s'", jinja_type_name(key));
  if (key.kind == JV_TUPLE)
    for (size_t i = 0; i < key.list->len; i++) check_hashable(ev, key.list->items[i]);
}

/* A hash consistent with jinja_equal for hashable values (1, 1.0 and True
 * hash alike, as in Python). */
static uint64_t hash_value(jinja_value_t v) {
  uint64_t h;
  switch (v.kind) {
  case JV_STRING:
    h = 1469598103934665603u;
    for (size_t i = 0; i < v.s.len; i++) h = (h ^ (unsigned char)v.s.data[i]) * 1099511628211u;
    return h;
  case JV_BOOL:
  case JV_INT: h = (uint64_t)as_int(v); break;
  case JV_FLOAT:
    if (v.f == floor(v.f) && fabs(v.f) < 9.2e18) {
      h = (uint64_t)(int64_t)v.f;
    } else {
      memcpy(&h, &v.f, sizeof h);
    }
    break;
  case JV_TUPLE:
    h = 0x345678;
    for (size_t i = 0; i < v.list->len; i++) h = (h ^ hash_value(v.list->items[i])) * 1000003;
    break;
  case JV_NONE:
  case JV_UNDEFINED: return 0x9E3779B97F4A7C15u * (uint64_t)(v.kind + 1);
  default: h = (uint64_t)(uintptr_t)v.list;
  }
  h ^= h >> 33;
  h *= 0xFF51AFD7ED558CCDu;
  return h ^ (h >> 33);
}

/* The value stored under key, or NULL. */
static const jinja_value_t *dict_find(const jinja_dict_t *d, jinja_value_t key) {
  if (d->index) {
    size_t mask = d->index_cap - 1;
    for (size_t s = hash_value(key) & mask; d->index[s]; s = (s + 1) & mask)
      if (jinja_equal(d->keys[d->index[s] - 1], key)) return &d->values[d->index[s] - 1];
    return NULL;
  }
  for (size_t i = 0; i < d->len; i++)
    if (jinja_equal(d->keys[i], key)) return &d->values[i];
  return NULL;
}

bool jinja_dict_get(jinja_eval_t *ev, const jinja_dict_t *d, jinja_value_t key,
                    jinja_value_t *out) {
  check_hashable(ev, key);
  const jinja_value_t *v = dict_find(d, key);
  if (v) *out = *v;
  return v != NULL;
}

bool jinja_dict_get_str(const jinja_dict_t *d, const char *key, size_t len, jinja_value_t *out) {
  const jinja_value_t *v = dict_find(d, jinja_string((jinja_str_t){key, len}));
  if (v) *out = *v;
  return v != NULL;
}

static void index_insert(jinja_dict_t *d, size_t entry) {
  size_t mask = d->index_cap - 1, s = hash_value(d->keys[entry]) & mask;
  while (d->index[s]) s = (s + 1) & mask;
  d->index[s] = (uint32_t)entry + 1;
}

void jinja_dict_set(jinja_eval_t *ev, jinja_dict_t *d, jinja_value_t key, jinja_value_t value) {
  check_hashable(ev, key);
  nest(ev, &d->depth, key);
  nest(ev, &d->depth, value);
  jinja_value_t *existing = (jinja_value_t *)dict_find(d, key);
  if (existing) {
    *existing = value;
    return;
  }
  if (d->len >= UINT32_MAX - 1) jinja_fail(ev, "dict too large");
  if (d->len == d->cap) {
    size_t cap = d->cap ? d->cap * 2 : 4;
    jinja_value_t *keys = jinja_alloc(&ev->heap, cap * sizeof *keys);
    jinja_value_t *values = jinja_alloc(&ev->heap, cap * sizeof *values);
    if (d->len) {
      memcpy(keys, d->keys, d->len * sizeof *keys);
      memcpy(values, d->values, d->len * sizeof *values);
    }
    d->keys = keys;
    d->values = values;
    d->cap = cap;
  }
  d->keys[d->len] = key;
  d->values[d->len++] = value;
  if (d->len <= 8) return;
  if (d->len * 2 > d->index_cap) { /* (re)build the index at twice the entries */
    d->index_cap = d->index_cap ? d->index_cap * 2 : 32;
    d->index = jinja_alloc(&ev->heap, d->index_cap * sizeof *d->index);
    for (size_t i = 0; i < d->len; i++) index_insert(d, i);
  } else {
    index_insert(d, d->len - 1);
  }
}

/* ---- iteration, length, truth ---- */

/* The characters of s, each a string. */
static jinja_list_t *chars_of(jinja_eval_t *ev, jinja_str_t s) {
  jinja_value_t l = jinja_list_new(ev, JV_LIST, s.len);
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    jinja_utf8_decode(s.data + i, s.len - i, &adv);
    jinja_list_push(ev, l, jinja_string((jinja_str_t){s.data + i, adv}));
    i += adv;
  }
  return l.list;
}

jinja_list_t *jinja_iterate(jinja_eval_t *ev, jinja_value_t v) {
  jinja_list_t *l;
  switch (v.kind) {
  case JV_LIST:
  case JV_TUPLE: return v.list;
  case JV_ITERATOR: /* what is left of it; it is used up */
    l = jinja_alloc(&ev->heap, sizeof *l);
    if (v.list->pos < v.list->len) l->items = v.list->items + v.list->pos;
    l->len = l->cap = v.list->len - v.list->pos;
    v.list->pos = v.list->len;
    return l;
  case JV_DICT:
    l = jinja_alloc(&ev->heap, sizeof *l);
    l->items = v.dict->keys;
    l->len = l->cap = v.dict->len;
    return l;
  case JV_STRING: return chars_of(ev, v.s);
  case JV_UNDEFINED: return jinja_alloc(&ev->heap, sizeof *l);
  default: jinja_fail(ev, "'%s' object is not iterable", jinja_type_name(v));
  }
}

int64_t jinja_length(jinja_eval_t *ev, jinja_value_t v) {
  switch (v.kind) {
  case JV_STRING: return (int64_t)jinja_utf8_count(v.s);
  case JV_LIST:
  case JV_TUPLE: return (int64_t)v.list->len;
  case JV_DICT: return (int64_t)v.dict->len;
  case JV_LOOP: return (int64_t)v.loop->items->len;
  case JV_UNDEFINED: return 0;
  default: jinja_fail(ev, "object of type '%s' has no len()", jinja_type_name(v));
  }
}

bool jinja_truthy(jinja_value_t v) {
  switch (v.kind) {
  case JV_UNDEFINED:
  case JV_NONE: return false;
  case JV_BOOL: return v.b;
  case JV_INT: return v.i != 0;
  case JV_FLOAT: return v.f != 0;
  case JV_STRING: return v.s.len != 0;
  case JV_LIST:
  case JV_TUPLE: return v.list->len != 0;
  case JV_DICT: return v.dict->len != 0;
  case JV_LOOP: return v.loop->items->len != 0;
  default: return true;
  }
}

/* ---- comparison ---- */

static bool str_eq(jinja_str_t a, jinja_str_t b) {
  return a.len == b.len && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}

bool jinja_equal(jinja_value_t a, jinja_value_t b) {
  if (is_number(a) && is_number(b)) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) return as_int(a) == as_int(b);
    return as_double(a) == as_double(b);
  }
  if (a.kind != b.kind) return false;
  switch (a.kind) {
  case JV_UNDEFINED:
  case JV_NONE: return true;
  case JV_STRING: return str_eq(a.s, b.s);
  case JV_LIST:
  case JV_TUPLE:
    if (a.list->len != b.list->len) return false;
    for (size_t i = 0; i < a.list->len; i++)
      if (!jinja_equal(a.list->items[i], b.list->items[i])) return false;
    return true;
  case JV_DICT:
    if (a.dict->len != b.dict->len) return false;
    for (size_t i = 0; i < a.dict->len; i++) {
      const jinja_value_t *other = dict_find(b.dict, a.dict->keys[i]);
      if (!other || !jinja_equal(a.dict->values[i], *other)) return false;
    }
    return true;
  case JV_FUNCTION: return a.function == b.function;
  default: /* identity */ return a.list == b.list;
  }
}

static int cmp_str(jinja_str_t a, jinja_str_t b) {
  size_t n = a.len < b.len ? a.len : b.len;
  int c = n ? memcmp(a.data, b.data, n) : 0; /* UTF-8 byte order is code point order */
  if (c) return c < 0 ? -1 : 1;
  return a.len < b.len ? -1 : a.len > b.len;
}

int jinja_compare(jinja_eval_t *ev, jinja_value_t a, jinja_value_t b) {
  if (a.kind == JV_UNDEFINED) jinja_undefined_fail(ev, a);
  if (b.kind == JV_UNDEFINED) jinja_undefined_fail(ev, b);
  if (is_number(a) && is_number(b)) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT)
      return as_int(a) < as_int(b) ? -1 : as_int(a) > as_int(b);
    double x = as_double(a), y = as_double(b);
    return x < y ? -1 : x > y ? 1 : x == y ? 0 : 2;
  }
  if (a.kind == JV_STRING && b.kind == JV_STRING) return cmp_str(a.s, b.s);
  if (a.kind == b.kind && (a.kind == JV_LIST || a.kind == JV_TUPLE)) {
    for (size_t i = 0; i < a.list->len && i < b.list->len; i++)
      if (!jinja_equal(a.list->items[i], b.list->items[i]))
        return jinja_compare(ev, a.list->items[i], b.list->items[i]);
    return a.list->len < b.list->len ? -1 : a.list->len > b.list->len;
  }
  jinja_fail(ev, "'<' not supported between instances of '%s' and '%s'", jinja_type_name(a),
             jinja_type_name(b));
}

static bool str_contains(jinja_str_t hay, jinja_str_t needle) {
  if (needle.len == 0) return true;
  for (size_t i = 0; i + needle.len <= hay.len; i++)
    if (memcmp(hay.data + i, needle.data, needle.len) == 0) return true;
  return false;
}

bool jinja_contains(jinja_eval_t *ev, jinja_value_t container, jinja_value_t item) {
  jinja_value_t unused;
  switch (container.kind) {
  case JV_STRING:
    if (item.kind != JV_STRING)
      jinja_fail(ev, "'in <string>' requires string as left operand, not %s",
                 jinja_type_name(item));
    return str_contains(container.s, item.s);
  case JV_LIST:
  case JV_TUPLE:
    for (size_t i = 0; i < container.list->len; i++)
      if (jinja_equal(container.list->items[i], item)) return true;
    return false;
  case JV_ITERATOR: /* consumed up to the match, as a generator is */
    while (container.list->pos < container.list->len)
      if (jinja_equal(container.list->items[container.list->pos++], item)) return true;
    return false;
  case JV_DICT: return jinja_dict_get(ev, container.dict, item, &unused);
  case JV_UNDEFINED: return false;
  default: jinja_fail(ev, "argument of type '%s' is not iterable", jinja_type_name(container));
  }
}

/* ---- str() and repr() ---- */

/* Python's str.isprintable(), approximated without the Unicode database:
 * controls, separators other than ' ', format characters, private use. */
static bool is_printable(uint32_t cp) {
  if (cp < 0x20 || (cp >= 0x7F && cp <= 0xA0) || cp == 0xAD) return false;
  return !(cp == 0x61C || cp == 0x1680 || cp == 0x180E || (cp >= 0x2000 && cp <= 0x200F) ||
           (cp >= 0x2028 && cp <= 0x202F) || (cp >= 0x205F && cp <= 0x206F) || cp == 0x3000 ||
           (cp >= 0xD800 && cp <= 0xDFFF) || (cp >= 0xE000 && cp <= 0xF8FF) || cp == 0xFEFF ||
           (cp >= 0xFFF9 && cp <= 0xFFFB) || cp >= 0xF0000);
}

static void write_repr_str(jinja_buf_t *b, jinja_str_t s) {
  char quote = str_contains(s, (jinja_str_t){"'", 1}) && !str_contains(s, (jinja_str_t){"\"", 1})
                   ? '"'
                   : '\'';
  jinja_buf_putc(b, quote);
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    if (cp == (uint32_t)quote || cp == '\\') {
      jinja_buf_putc(b, '\\');
      jinja_buf_putc(b, (char)cp);
    } else if (cp == '\t' || cp == '\n' || cp == '\r') {
      jinja_buf_putc(b, '\\');
      jinja_buf_putc(b, cp == '\t' ? 't' : cp == '\n' ? 'n' : 'r');
    } else if (is_printable(cp)) {
      jinja_buf_put(b, s.data + i, adv);
    } else {
      jinja_buf_printf(b, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
    }
    i += adv;
  }
  jinja_buf_putc(b, quote);
}

static void write_value(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v, bool repr, int depth);

static void write_items(jinja_eval_t *ev, jinja_buf_t *b, const jinja_list_t *l, int depth) {
  for (size_t i = 0; i < l->len; i++) {
    if (i) jinja_buf_puts(b, ", ");
    write_value(ev, b, l->items[i], true, depth);
  }
}

static void write_dict(jinja_eval_t *ev, jinja_buf_t *b, const jinja_dict_t *d, int depth) {
  jinja_buf_putc(b, '{');
  for (size_t i = 0; i < d->len; i++) {
    if (i) jinja_buf_puts(b, ", ");
    write_value(ev, b, d->keys[i], true, depth);
    jinja_buf_puts(b, ": ");
    write_value(ev, b, d->values[i], true, depth);
  }
  jinja_buf_putc(b, '}');
}

/* str() or repr() of v; depth bounds the recursion, which namespaces
 * (mutable, so possibly containing themselves) could make endless. */
static void write_value(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v, bool repr, int depth) {
  char num[32];
  if (depth > JINJA_MAX_NESTING)
    jinja_fail(ev, "value nested more than %d levels deep (or containing itself)",
               JINJA_MAX_NESTING);
  switch (v.kind) {
  case JV_UNDEFINED:
    if (repr) jinja_buf_puts(b, "Undefined");
    return;
  case JV_NONE: jinja_buf_puts(b, "None"); return;
  case JV_BOOL: jinja_buf_puts(b, v.b ? "True" : "False"); return;
  case JV_INT: jinja_buf_printf(b, "%lld", (long long)v.i); return;
  case JV_FLOAT:
    jinja_format_float(v.f, num);
    jinja_buf_puts(b, num);
    return;
  case JV_STRING:
    if (repr)
      write_repr_str(b, v.s);
    else
      jinja_buf_put(b, v.s.data, v.s.len);
    return;
  case JV_LIST:
    if (v.list->view) jinja_buf_printf(b, "%s(", jinja_type_name(v));
    jinja_buf_putc(b, '[');
    write_items(ev, b, v.list, depth + 1);
    jinja_buf_puts(b, v.list->view ? "])" : "]");
    return;
  case JV_TUPLE:
    jinja_buf_putc(b, '(');
    write_items(ev, b, v.list, depth + 1);
    jinja_buf_puts(b, v.list->len == 1 ? ",)" : ")");
    return;
  case JV_DICT: write_dict(ev, b, v.dict, depth + 1); return;
  case JV_NAMESPACE:
    jinja_buf_puts(b, "<Namespace ");
    write_dict(ev, b, v.dict, depth + 1);
    jinja_buf_putc(b, '>');
    return;
  case JV_LOOP:
    jinja_buf_printf(b, "<LoopContext %zu/%zu>", v.loop->index0 + 1, v.loop->items->len);
    return;
  case JV_MACRO:
    jinja_buf_puts(b, "<Macro ");
    write_repr_str(b, v.macro->node->name);
    jinja_buf_putc(b, '>');
    return;
  case JV_FUNCTION: /* classes print without an address */
    if (v.function == JF_NAMESPACE || v.function == JF_DICT) {
      jinja_buf_puts(b,
                     v.function == JF_DICT ? "<class 'dict'>" : "<class 'jinja2.utils.Namespace'>");
      return;
    }
    jinja_fail(ev, "cannot convert the function %s to a string (Python prints its address)",
               jinja_function_name(v.function));
  default: /* Python prints these with a memory address */
    jinja_fail(ev, "cannot convert a %s to a string (Python prints its address)",
               jinja_type_name(v));
  }
}

void jinja_write_str(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v) {
  write_value(ev, b, v, false, 0);
}

void jinja_write_repr(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v) {
  write_value(ev, b, v, true, 0);
}

jinja_str_t jinja_to_str(jinja_eval_t *ev, jinja_value_t v) {
  if (v.kind == JV_STRING) return v.s;
  jinja_buf_t b = {.heap = &ev->heap};
  write_value(ev, &b, v, false, 0);
  return jinja_buf_str(&b);
}

/* ---- json.dumps ---- */

static void write_json_str(jinja_buf_t *b, jinja_str_t s, bool ensure_ascii) {
  jinja_buf_putc(b, '"');
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    const char *esc = cp == '"'    ? "\\\""
                      : cp == '\\' ? "\\\\"
                      : cp == '\n' ? "\\n"
                      : cp == '\r' ? "\\r"
                      : cp == '\t' ? "\\t"
                      : cp == '\b' ? "\\b"
                      : cp == '\f' ? "\\f"
                                   : NULL;
    if (esc) {
      jinja_buf_puts(b, esc);
    } else if (cp < 0x20 || (ensure_ascii && cp >= 0x7F)) {
      if (cp >= 0x10000) {
        uint32_t v = cp - 0x10000;
        jinja_buf_printf(b, "\\u%04x\\u%04x", 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF));
      } else {
        jinja_buf_printf(b, "\\u%04x", cp);
      }
    } else {
      jinja_buf_put(b, s.data + i, adv);
    }
    i += adv;
  }
  jinja_buf_putc(b, '"');
}

static void json_newline(jinja_buf_t *b, const jinja_json_options_t *opt, int level) {
  if (!opt->indent) return;
  jinja_buf_putc(b, '\n');
  for (int i = 0; i < level; i++) jinja_buf_puts(b, opt->indent);
}

/* A dict key as json.dumps converts it to a string. */
static jinja_str_t json_key(jinja_eval_t *ev, jinja_value_t k) {
  switch (k.kind) {
  case JV_STRING: return k.s;
  case JV_BOOL: return (jinja_str_t){k.b ? "true" : "false", k.b ? 4u : 5u};
  case JV_NONE: return (jinja_str_t){"null", 4};
  case JV_INT:
  case JV_FLOAT: return jinja_to_str(ev, k);
  default: jinja_fail(ev, "keys must be str, int, float, bool or None, not %s", jinja_type_name(k));
  }
}

static void write_json(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v,
                       const jinja_json_options_t *opt, int level) {
  char num[32];
  if (level > JINJA_MAX_NESTING) jinja_fail(ev, "tojson: value nested too deeply");
  switch (v.kind) {
  case JV_NONE: jinja_buf_puts(b, "null"); return;
  case JV_BOOL: jinja_buf_puts(b, v.b ? "true" : "false"); return;
  case JV_INT: jinja_buf_printf(b, "%lld", (long long)v.i); return;
  case JV_FLOAT:
    if (isnan(v.f) || isinf(v.f)) {
      jinja_buf_puts(b, isnan(v.f) ? "NaN" : v.f > 0 ? "Infinity" : "-Infinity");
    } else {
      jinja_format_float(v.f, num);
      jinja_buf_puts(b, num);
    }
    return;
  case JV_STRING: write_json_str(b, v.s, opt->ensure_ascii); return;
  case JV_LIST:
  case JV_TUPLE:
    if (v.list->view) break;
    if (!v.list->len) {
      jinja_buf_puts(b, "[]");
      return;
    }
    jinja_buf_putc(b, '[');
    for (size_t i = 0; i < v.list->len; i++) {
      if (i) jinja_buf_puts(b, opt->item_sep);
      json_newline(b, opt, level + 1);
      write_json(ev, b, v.list->items[i], opt, level + 1);
    }
    json_newline(b, opt, level);
    jinja_buf_putc(b, ']');
    return;
  case JV_DICT: {
    const jinja_dict_t *d = v.dict;
    if (!d->len) {
      jinja_buf_puts(b, "{}");
      return;
    }
    size_t *order = jinja_alloc(&ev->heap, d->len * sizeof *order);
    for (size_t i = 0; i < d->len; i++) order[i] = i;
    if (opt->sort_keys) /* insertion sort: stable, and dicts in templates are small */
      for (size_t i = 1; i < d->len; i++)
        for (size_t j = i;
             j > 0 && jinja_compare(ev, d->keys[order[j - 1]], d->keys[order[j]]) == 1; j--) {
          size_t t = order[j];
          order[j] = order[j - 1];
          order[j - 1] = t;
        }
    jinja_buf_putc(b, '{');
    for (size_t i = 0; i < d->len; i++) {
      if (i) jinja_buf_puts(b, opt->item_sep);
      json_newline(b, opt, level + 1);
      write_json_str(b, json_key(ev, d->keys[order[i]]), opt->ensure_ascii);
      jinja_buf_puts(b, opt->key_sep);
      write_json(ev, b, d->values[order[i]], opt, level + 1);
    }
    json_newline(b, opt, level);
    jinja_buf_putc(b, '}');
    return;
  }
  default: break;
  }
  jinja_fail(ev, "Object of type %s is not JSON serializable", jinja_type_name(v));
}

void jinja_write_json(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v,
                      const jinja_json_options_t *opt) {
  write_json(ev, b, v, opt, 0);
}

/* ---- arithmetic ---- */

static const char *op_symbol(int op) {
  switch (op) {
  case JT_ADD: return "+";
  case JT_SUB: return "-";
  case JT_MUL: return "*";
  case JT_DIV: return "/";
  case JT_FLOORDIV: return "//";
  case JT_MOD: return "%";
  default: return "**";
  }
}

_Noreturn static void overflow(jinja_eval_t *ev) {
  jinja_fail(ev, "integer overflow (llmc's integers are 64-bit)");
}

/* Python's float divmod (floor division and a modulo with the divisor's sign). */
static void float_divmod(double x, double y, double *div_out, double *mod_out) {
  double mod = fmod(x, y), div = (x - mod) / y;
  if (mod != 0) {
    if ((y < 0) != (mod < 0)) {
      mod += y;
      div -= 1.0;
    }
  } else {
    mod = copysign(0.0, y);
  }
  double floordiv;
  if (div != 0) {
    floordiv = floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = copysign(0.0, x / y);
  }
  *div_out = floordiv;
  *mod_out = mod;
}

static jinja_value_t repeat(jinja_eval_t *ev, jinja_value_t seq, int64_t times) {
  size_t n = times > 0 ? (size_t)times : 0;
  if (seq.kind == JV_STRING) {
    if (n && seq.s.len > (SIZE_MAX >> 2) / n) jinja_fail(ev, "string repetition too large");
    jinja_buf_t b = {.heap = &ev->heap};
    for (size_t i = 0; i < n; i++) jinja_buf_put(&b, seq.s.data, seq.s.len);
    return jinja_string(jinja_buf_str(&b));
  }
  if (n && seq.list->len > (SIZE_MAX >> 6) / n) jinja_fail(ev, "list repetition too large");
  jinja_value_t out = jinja_list_new(ev, seq.kind, seq.list->len * n);
  for (size_t i = 0; i < n; i++)
    for (size_t j = 0; j < seq.list->len; j++) jinja_list_push(ev, out, seq.list->items[j]);
  return out;
}

static jinja_value_t concat_lists(jinja_eval_t *ev, jinja_value_t a, jinja_value_t b) {
  jinja_value_t out = jinja_list_new(ev, a.kind, a.list->len + b.list->len);
  for (size_t i = 0; i < a.list->len; i++) jinja_list_push(ev, out, a.list->items[i]);
  for (size_t i = 0; i < b.list->len; i++) jinja_list_push(ev, out, b.list->items[i]);
  return out;
}

static jinja_value_t int_pow(jinja_eval_t *ev, int64_t base, int64_t exp) {
  if (exp < 0) {
    if (base == 0) jinja_fail(ev, "0.0 cannot be raised to a negative power");
    return jinja_float(pow((double)base, (double)exp));
  }
  int64_t r = 1;
  for (; exp; exp >>= 1) {
    if ((exp & 1) && __builtin_mul_overflow(r, base, &r)) overflow(ev);
    if (exp > 1 && __builtin_mul_overflow(base, base, &base)) overflow(ev);
  }
  return jinja_int(r);
}

jinja_value_t jinja_binary_op(jinja_eval_t *ev, int op, jinja_value_t a, jinja_value_t b) {
  if (op == JT_TILDE) {
    jinja_buf_t buf = {.heap = &ev->heap};
    jinja_write_str(ev, &buf, a);
    jinja_write_str(ev, &buf, b);
    return jinja_string(jinja_buf_str(&buf));
  }
  if (a.kind == JV_UNDEFINED) jinja_undefined_fail(ev, a);
  if (b.kind == JV_UNDEFINED) jinja_undefined_fail(ev, b);
  if (is_number(a) && is_number(b)) {
    if (a.kind != JV_FLOAT && b.kind != JV_FLOAT) {
      int64_t x = as_int(a), y = as_int(b), r;
      switch (op) {
      case JT_ADD:
        if (__builtin_add_overflow(x, y, &r)) overflow(ev);
        return jinja_int(r);
      case JT_SUB:
        if (__builtin_sub_overflow(x, y, &r)) overflow(ev);
        return jinja_int(r);
      case JT_MUL:
        if (__builtin_mul_overflow(x, y, &r)) overflow(ev);
        return jinja_int(r);
      case JT_POW: return int_pow(ev, x, y);
      case JT_DIV:
        if (y == 0) jinja_fail(ev, "division by zero");
        return jinja_float((double)x / (double)y);
      default: /* // and %: floor semantics */
        if (y == 0) jinja_fail(ev, "integer division or modulo by zero");
        if (x == INT64_MIN && y == -1) overflow(ev);
        int64_t q = x / y, m = x % y;
        if (m != 0 && ((m < 0) != (y < 0))) {
          q--;
          m += y;
        }
        return jinja_int(op == JT_FLOORDIV ? q : m);
      }
    }
    double x = as_double(a), y = as_double(b), div, mod;
    switch (op) {
    case JT_ADD: return jinja_float(x + y);
    case JT_SUB: return jinja_float(x - y);
    case JT_MUL: return jinja_float(x * y);
    case JT_POW:
      if (x == 0 && y < 0) jinja_fail(ev, "0.0 cannot be raised to a negative power");
      if (x < 0 && y != floor(y)) jinja_fail(ev, "negative number raised to a fractional power");
      return jinja_float(pow(x, y));
    case JT_DIV:
      if (y == 0) jinja_fail(ev, "float division by zero");
      return jinja_float(x / y);
    default:
      if (y == 0) jinja_fail(ev, "float floor division or modulo by zero");
      float_divmod(x, y, &div, &mod);
      return jinja_float(op == JT_FLOORDIV ? div : mod);
    }
  }
  if (op == JT_ADD && a.kind == b.kind && a.kind == JV_STRING) {
    jinja_buf_t buf = {.heap = &ev->heap};
    jinja_buf_put(&buf, a.s.data, a.s.len);
    jinja_buf_put(&buf, b.s.data, b.s.len);
    return jinja_string(jinja_buf_str(&buf));
  }
  if (op == JT_ADD && a.kind == b.kind && (a.kind == JV_LIST || a.kind == JV_TUPLE))
    return concat_lists(ev, a, b);
  bool a_seq = a.kind == JV_STRING || a.kind == JV_LIST || a.kind == JV_TUPLE;
  bool b_seq = b.kind == JV_STRING || b.kind == JV_LIST || b.kind == JV_TUPLE;
  if (op == JT_MUL && a_seq && (b.kind == JV_INT || b.kind == JV_BOOL))
    return repeat(ev, a, as_int(b));
  if (op == JT_MUL && b_seq && (a.kind == JV_INT || a.kind == JV_BOOL))
    return repeat(ev, b, as_int(a));
  if (op == JT_MOD && a.kind == JV_STRING) return jinja_percent_format(ev, a.s, b);
  if (op == JT_ADD && a.kind == JV_STRING)
    jinja_fail(ev, "can only concatenate str (not \"%s\") to str", jinja_type_name(b));
  jinja_fail(ev, "unsupported operand type(s) for %s: '%s' and '%s'", op_symbol(op),
             jinja_type_name(a), jinja_type_name(b));
}

/* ---- %-formatting ---- */

/* Pads s (n code points) to width: on the left unless left-aligned. */
static void put_padded(jinja_buf_t *b, jinja_str_t s, long width, bool left, char fill) {
  long pad = width - (long)jinja_utf8_count(s);
  for (long i = 0; !left && i < pad; i++) jinja_buf_putc(b, fill);
  jinja_buf_put(b, s.data, s.len);
  for (long i = 0; left && i < pad; i++) jinja_buf_putc(b, ' ');
}

jinja_value_t jinja_percent_format(jinja_eval_t *ev, jinja_str_t fmt, jinja_value_t args) {
  const jinja_list_t *pos = args.kind == JV_TUPLE ? args.list : NULL;
  size_t next = 0;
  jinja_buf_t b = {.heap = &ev->heap};
  for (size_t i = 0; i < fmt.len; i++) {
    char c = fmt.data[i];
    if (c != '%') {
      jinja_buf_putc(&b, c);
      continue;
    }
    if (++i >= fmt.len) jinja_fail(ev, "incomplete format");
    jinja_value_t arg;
    if (fmt.data[i] == '%') {
      jinja_buf_putc(&b, '%');
      continue;
    }
    if (fmt.data[i] == '(') { /* %(key)s */
      size_t end = i + 1;
      while (end < fmt.len && fmt.data[end] != ')') end++;
      if (end >= fmt.len) jinja_fail(ev, "incomplete format key");
      if (args.kind != JV_DICT) jinja_fail(ev, "format requires a mapping");
      if (!jinja_dict_get_str(args.dict, fmt.data + i + 1, end - i - 1, &arg))
        jinja_fail(ev, "format: key '%.*s' not found", (int)(end - i - 1), fmt.data + i + 1);
      i = end + 1;
    } else if (pos) {
      if (next >= pos->len) jinja_fail(ev, "not enough arguments for format string");
      arg = pos->items[next++];
    } else {
      if (next++) jinja_fail(ev, "not enough arguments for format string");
      arg = args;
    }
    char flags[8] = "";
    size_t nf = 0;
    while (i < fmt.len && strchr("-+ #0", fmt.data[i]) && fmt.data[i] && nf < 5)
      flags[nf++] = fmt.data[i++];
    long width = 0, prec = -1;
    while (i < fmt.len && jinja_is_digit((unsigned char)fmt.data[i]) && width < 1000)
      width = width * 10 + (fmt.data[i++] - '0');
    if (i < fmt.len && fmt.data[i] == '.') {
      prec = 0;
      for (i++; i < fmt.len && jinja_is_digit((unsigned char)fmt.data[i]) && prec < 1000; i++)
        prec = prec * 10 + (fmt.data[i] - '0');
    }
    if (width > 400 || prec > 400) jinja_fail(ev, "format width or precision too large");
    if (i >= fmt.len) jinja_fail(ev, "incomplete format");
    char conv = fmt.data[i];
    bool left = strchr(flags, '-') != NULL;
    if (conv == 's' || conv == 'r') {
      jinja_buf_t s = {.heap = &ev->heap};
      if (conv == 's')
        jinja_write_str(ev, &s, arg);
      else
        jinja_write_repr(ev, &s, arg);
      jinja_str_t text = jinja_buf_str(&s);
      if (prec >= 0) { /* at most prec code points */
        size_t k = 0;
        for (long n = 0; k < text.len && n < prec; n++) {
          size_t adv;
          jinja_utf8_decode(text.data + k, text.len - k, &adv);
          k += adv;
        }
        text.len = k;
      }
      put_padded(&b, text, width, left, ' ');
    } else if (strchr("diouxXeEfFgG", conv) && conv) {
      if (arg.kind == JV_UNDEFINED) jinja_undefined_fail(ev, arg);
      if (!is_number(arg))
        jinja_fail(ev, "%%%c format: a real number is required, not %s", conv,
                   jinja_type_name(arg));
      char spec[40], out[512];
      if (strchr("diouxX", conv)) {
        double d = as_double(arg);
        if (arg.kind == JV_FLOAT && (isnan(d) || isinf(d) || fabs(d) >= 9.2e18))
          jinja_fail(ev, "%%%c format: cannot convert %g to an integer", conv, d);
        long long v = arg.kind == JV_FLOAT ? (long long)d : (long long)as_int(arg);
        char k = conv == 'i' || conv == 'u' ? 'd' : conv;
        if (prec >= 0)
          snprintf(spec, sizeof spec, "%%%s%ld.%ldll%c", flags, width, prec, k);
        else
          snprintf(spec, sizeof spec, "%%%s%ldll%c", flags, width, k);
        snprintf(out, sizeof out, spec, v);
      } else {
        snprintf(spec, sizeof spec, "%%%s%ld.%ld%c", flags, width, prec < 0 ? 6 : prec, conv);
        snprintf(out, sizeof out, spec, as_double(arg));
      }
      jinja_buf_puts(&b, out);
    } else {
      jinja_fail(ev, "unsupported format character '%c'", conv);
    }
  }
  if (pos ? next < pos->len : next == 0 && args.kind != JV_DICT)
    jinja_fail(ev, "not all arguments converted during string formatting");
  return jinja_string(jinja_buf_str(&b));
}

/* ---- the context ---- */

jinja_json_numbers_t jinja_scan_json_numbers(jinja_heap_t *h, const char *text, size_t len) {
  jinja_json_numbers_t out = {0};
  size_t cap = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (c == '"') { /* skip the string, escapes included */
      for (i++; i < len && text[i] != '"'; i++) i += text[i] == '\\';
      continue;
    }
    if (c != '-' && !jinja_is_digit((unsigned char)c)) continue;
    if (out.n == cap) {
      cap = cap ? cap * 2 : 64;
      jinja_json_number_t *items = jinja_alloc(h, cap * sizeof *items);
      if (out.n) memcpy(items, out.items, out.n * sizeof *items);
      out.items = items;
    }
    jinja_json_number_t *num = &out.items[out.n++];
    bool neg = c == '-';
    uint64_t v = 0;
    size_t j = i + neg;
    for (; j < len && jinja_is_digit((unsigned char)text[j]); j++) {
      if (v > (UINT64_MAX - 9) / 10) num->too_big = true;
      v = v * 10 + (uint64_t)(text[j] - '0');
    }
    num->is_float = j < len && (text[j] == '.' || text[j] == 'e' || text[j] == 'E');
    while (j < len && (jinja_is_digit((unsigned char)text[j]) || strchr(".eE+-", text[j]))) j++;
    num->too_big |= v > (uint64_t)INT64_MAX + neg;
    num->i = neg ? (int64_t)(0 - v) : (int64_t)v;
    i = j - 1;
  }
  return out;
}

jinja_value_t jinja_from_cjson(jinja_eval_t *ev, const cJSON *j, jinja_json_numbers_t *numbers) {
  if (cJSON_IsNull(j)) return jinja_none();
  if (cJSON_IsBool(j)) return jinja_bool(cJSON_IsTrue(j));
  if (cJSON_IsNumber(j)) {
    double d = j->valuedouble;
    if (numbers && numbers->next < numbers->n) {
      const jinja_json_number_t *num = &numbers->items[numbers->next++];
      if (num->is_float) return jinja_float(d);
      if (num->too_big) jinja_fail(ev, "context: integer %.17g beyond 64 bits", d);
      return jinja_int(num->i);
    }
    if (d == floor(d) && fabs(d) < 9.2e18) return jinja_int((int64_t)d);
    return jinja_float(d);
  }
  if (cJSON_IsString(j)) return jinja_cstring(j->valuestring);
  if (cJSON_IsArray(j)) {
    jinja_value_t l = jinja_list_new(ev, JV_LIST, (size_t)cJSON_GetArraySize(j));
    for (const cJSON *c = j->child; c; c = c->next)
      jinja_list_push(ev, l, jinja_from_cjson(ev, c, numbers));
    return l;
  }
  if (cJSON_IsObject(j)) {
    jinja_value_t d = jinja_dict_new(ev, JV_DICT);
    for (const cJSON *c = j->child; c; c = c->next)
      jinja_dict_set(ev, d.dict, jinja_cstring(c->string ? c->string : ""),
                     jinja_from_cjson(ev, c, numbers));
    return d;
  }
  jinja_fail(ev, "context: unsupported JSON value");
}
