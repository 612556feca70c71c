/* jinja_builtins.c — what templates call: attribute and item access with the
 * sandbox's rules, jinja2's filters and tests, the Python str/dict methods
 * templates use, and the globals Hugging Face provides (range, namespace,
 * dict, raise_exception, strftime_now).
 *
 * Each builtin follows its jinja2 3.1 / Python 3 definition, undefined
 * values included (most filters see an undefined value as '' or as an empty
 * sequence; numeric ones raise). Filters that return generators in jinja2
 * (map, select, reject, selectattr, rejectattr, unique, reverse of a
 * sequence) return single-pass iterators here too, so that `|length` on one
 * fails and a second loop over one is empty, as in jinja2. Names jinja2
 * knows but llmc does not implement are rejected when the template is
 * parsed (filters, tests) or called (methods), never approximated. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "jinja.h"

static bool str_is(jinja_str_t s, const char *lit) {
  return s.len == strlen(lit) && memcmp(s.data, lit, s.len) == 0;
}

static bool in_list(jinja_str_t s, const char *const *names) {
  for (; *names; names++)
    if (str_is(s, *names)) return true;
  return false;
}

static jinja_value_t make_string(jinja_buf_t *b) { return jinja_string(jinja_buf_str(b)); }

/* "'dict object' has no attribute 'x'" and friends, as jinja2's Undefined says it. */
static jinja_value_t missing(jinja_eval_t *ev, jinja_value_t obj, jinja_value_t name) {
  jinja_buf_t b = {.heap = &ev->heap};
  const char *type = obj.kind == JV_NONE        ? "None"
                     : obj.kind == JV_NAMESPACE ? "jinja2.utils.Namespace object"
                     : obj.kind == JV_LOOP      ? "jinja2.runtime.LoopContext object"
                                                : NULL;
  bool by_name = name.kind == JV_STRING;
  if (by_name) jinja_buf_putc(&b, '\'');
  if (type)
    jinja_buf_puts(&b, type);
  else
    jinja_buf_printf(&b, "%s object", jinja_type_name(obj));
  jinja_buf_puts(&b, by_name ? "' has no attribute " : " has no element ");
  jinja_write_repr(ev, &b, name);
  jinja_buf_putc(&b, '\0');
  return jinja_undefined(b.data);
}

static jinja_value_t unsafe(jinja_eval_t *ev, jinja_value_t obj, jinja_str_t name) {
  jinja_buf_t b = {.heap = &ev->heap};
  jinja_buf_printf(&b, "access to attribute '%.*s' of '%s' object is unsafe.", (int)name.len,
                   name.data, jinja_type_name(obj));
  jinja_buf_putc(&b, '\0');
  return jinja_undefined(b.data);
}

static jinja_value_t bound(jinja_eval_t *ev, jinja_value_t self, jinja_str_t name) {
  jinja_method_t *m = jinja_alloc(&ev->heap, sizeof *m);
  m->self = self;
  m->name = name;
  return (jinja_value_t){.kind = JV_METHOD, .method = m};
}

/* ---- attributes and items ---- */

static const char *const str_methods[] = {
    "capitalize",   "casefold",    "center",    "count",      "encode",       "endswith",
    "expandtabs",   "find",        "format",    "format_map", "index",        "isalnum",
    "isalpha",      "isascii",     "isdecimal", "isdigit",    "isidentifier", "islower",
    "isnumeric",    "isprintable", "isspace",   "istitle",    "isupper",      "join",
    "ljust",        "lower",       "lstrip",    "maketrans",  "partition",    "removeprefix",
    "removesuffix", "replace",     "rfind",     "rindex",     "rjust",        "rpartition",
    "rsplit",       "rstrip",      "split",     "splitlines", "startswith",   "strip",
    "swapcase",     "title",       "translate", "upper",      "zfill",        NULL};
static const char *const dict_methods[] = {"copy", "fromkeys", "get", "items",
                                           "keys", "values",   NULL};
static const char *const dict_unsafe[] = {"clear", "pop", "popitem", "setdefault", "update", NULL};
static const char *const list_methods[] = {"copy", "count", "index", NULL};
static const char *const list_unsafe[] = {"append", "clear",   "extend", "insert", "pop",
                                          "remove", "reverse", "sort",   NULL};

/* LoopContext's attributes. */
static jinja_value_t loop_attr(jinja_eval_t *ev, jinja_value_t v, jinja_str_t name) {
  const jinja_loop_t *l = v.loop;
  size_t n = l->items->len, i = l->index0;
  if (str_is(name, "index")) return jinja_int((int64_t)i + 1);
  if (str_is(name, "index0")) return jinja_int((int64_t)i);
  if (str_is(name, "revindex")) return jinja_int((int64_t)(n - i));
  if (str_is(name, "revindex0")) return jinja_int((int64_t)(n - i - 1));
  if (str_is(name, "first")) return jinja_bool(i == 0);
  if (str_is(name, "last")) return jinja_bool(i + 1 == n);
  if (str_is(name, "length")) return jinja_int((int64_t)n);
  if (str_is(name, "depth")) return jinja_int(1);
  if (str_is(name, "depth0")) return jinja_int(0);
  if (str_is(name, "previtem"))
    return i > 0 ? l->items->items[i - 1] : jinja_undefined("there is no previous item");
  if (str_is(name, "nextitem"))
    return i + 1 < n ? l->items->items[i + 1] : jinja_undefined("there is no next item");
  if (str_is(name, "cycle") || str_is(name, "changed")) return bound(ev, v, name);
  return missing(ev, v, jinja_string(name));
}

jinja_value_t jinja_getattr(jinja_eval_t *ev, jinja_value_t obj, jinja_str_t name) {
  jinja_value_t v;
  switch (obj.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, obj);
  case JV_DICT:
    if (in_list(name, dict_methods)) return bound(ev, obj, name);
    if (in_list(name, dict_unsafe)) return unsafe(ev, obj, name);
    if (jinja_dict_get_str(obj.dict, name.data, name.len, &v)) return v;
    break;
  case JV_NAMESPACE:
    if (jinja_dict_get_str(obj.dict, name.data, name.len, &v)) return v;
    break;
  case JV_STRING:
    if (in_list(name, str_methods)) return bound(ev, obj, name);
    break;
  case JV_LIST:
  case JV_TUPLE:
    if (in_list(name, list_methods) && !(obj.kind == JV_TUPLE && str_is(name, "copy")))
      return bound(ev, obj, name);
    if (obj.kind == JV_LIST && in_list(name, list_unsafe)) return unsafe(ev, obj, name);
    break;
  case JV_LOOP: return loop_attr(ev, obj, name);
  default: break;
  }
  if (name.len && name.data[0] == '_') return unsafe(ev, obj, name);
  return missing(ev, obj, jinja_string(name));
}

static bool is_index(jinja_value_t v) { return v.kind == JV_INT || v.kind == JV_BOOL; }
static int64_t index_of(jinja_value_t v) { return v.kind == JV_INT ? v.i : v.b; }

/* Byte offsets of the code points of s (n + 1 entries, the last is s.len). */
static size_t *char_offsets(jinja_eval_t *ev, jinja_str_t s, size_t *out_n) {
  size_t n = jinja_utf8_count(s), k = 0;
  size_t *off = jinja_alloc(&ev->heap, (n + 1) * sizeof *off);
  for (size_t i = 0; i < s.len; k++) {
    size_t adv;
    off[k] = i;
    jinja_utf8_decode(s.data + i, s.len - i, &adv);
    i += adv;
  }
  off[n] = s.len;
  *out_n = n;
  return off;
}

jinja_value_t jinja_getitem(jinja_eval_t *ev, jinja_value_t obj, jinja_value_t key) {
  jinja_value_t v;
  switch (obj.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, obj);
  case JV_DICT:
    if (key.kind != JV_LIST && key.kind != JV_DICT && key.kind != JV_ITERATOR &&
        jinja_dict_get(ev, obj.dict, key, &v))
      return v;
    break;
  case JV_LIST:
  case JV_TUPLE:
    if (is_index(key) && !obj.list->view) {
      int64_t i = index_of(key), n = (int64_t)obj.list->len;
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.list->items[i];
      return missing(ev, obj, key);
    }
    break;
  case JV_STRING:
    if (is_index(key)) {
      size_t n, *off = char_offsets(ev, obj.s, &n);
      int64_t i = index_of(key);
      if (i < 0) i += (int64_t)n;
      if (i >= 0 && i < (int64_t)n)
        return jinja_string((jinja_str_t){obj.s.data + off[i], off[i + 1] - off[i]});
      return missing(ev, obj, key);
    }
    break;
  default: break;
  }
  if (key.kind == JV_STRING) return jinja_getattr(ev, obj, key.s);
  return missing(ev, obj, key);
}

/* Python's slice.indices(): clamps start/stop for a sequence of length n. */
static bool slice_bound(jinja_value_t v, int64_t n, int64_t step, bool is_start, int64_t *out) {
  int64_t lower = step < 0 ? -1 : 0, upper = step < 0 ? n - 1 : n;
  if (v.kind == JV_NONE) {
    *out = is_start ? (step < 0 ? upper : lower) : (step < 0 ? lower : upper);
    return true;
  }
  if (!is_index(v)) return false;
  int64_t i = index_of(v);
  if (i < 0) {
    i += n;
    if (i < lower) i = lower;
  } else if (i > upper) {
    i = upper;
  }
  *out = i;
  return true;
}

jinja_value_t jinja_slice(jinja_eval_t *ev, jinja_value_t obj, jinja_value_t start,
                          jinja_value_t stop, jinja_value_t step) {
  if (obj.kind == JV_UNDEFINED) jinja_undefined_fail(ev, obj);
  bool is_str = obj.kind == JV_STRING;
  if (!is_str && ((obj.kind != JV_LIST && obj.kind != JV_TUPLE) || obj.list->view))
    return jinja_undefined(NULL);
  if (step.kind != JV_NONE && !is_index(step)) return jinja_undefined(NULL);
  int64_t st = step.kind == JV_NONE ? 1 : index_of(step);
  if (st == 0) jinja_fail(ev, "slice step cannot be zero");
  size_t n;
  size_t *off = is_str ? char_offsets(ev, obj.s, &n) : NULL;
  if (!is_str) n = obj.list->len;
  int64_t lo, hi;
  if (!slice_bound(start, (int64_t)n, st, true, &lo) ||
      !slice_bound(stop, (int64_t)n, st, false, &hi))
    return jinja_undefined(NULL);
  jinja_buf_t b = {.heap = &ev->heap};
  jinja_value_t out = is_str ? jinja_none() : jinja_list_new(ev, obj.kind, 0);
  for (int64_t i = lo; st > 0 ? i < hi : i > hi; i += st) {
    if (is_str)
      jinja_buf_put(&b, obj.s.data + off[i], off[i + 1] - off[i]);
    else
      jinja_list_push(ev, out, obj.list->items[i]);
  }
  return is_str ? make_string(&b) : out;
}

/* ---- argument binding ---- */

/* Binds args to params (NULL-terminated) as Python binds a call: positional
 * first, then keywords. given[i] says whether params[i] was passed. */
static void bind(jinja_eval_t *ev, const char *what, const jinja_args_t *args,
                 const char *const *params, jinja_value_t *out, bool *given) {
  size_t np = 0;
  while (params[np]) np++;
  for (size_t i = 0; i < np; i++) {
    out[i] = jinja_undefined(NULL);
    given[i] = false;
  }
  if (args->n_pos > np)
    jinja_fail(ev, "%s takes at most %zu argument(s) (%zu given)", what, np, args->n_pos);
  for (size_t i = 0; i < args->n_pos; i++) {
    out[i] = args->values[i];
    given[i] = true;
  }
  for (size_t k = 0; k < args->n_kw; k++) {
    size_t i = 0;
    while (i < np && !str_is(args->names[k], params[i])) i++;
    if (i == np)
      jinja_fail(ev, "%s got an unexpected keyword argument '%.*s'", what, (int)args->names[k].len,
                 args->names[k].data);
    if (given[i]) jinja_fail(ev, "%s got multiple values for argument '%s'", what, params[i]);
    out[i] = args->values[args->n_pos + k];
    given[i] = true;
  }
}

static void no_args(jinja_eval_t *ev, const char *what, const jinja_args_t *args) {
  if (args->n_pos || args->n_kw) jinja_fail(ev, "%s takes no arguments", what);
}

static jinja_str_t want_str(jinja_eval_t *ev, const char *what, jinja_value_t v) {
  if (v.kind == JV_UNDEFINED) jinja_undefined_fail(ev, v);
  if (v.kind != JV_STRING)
    jinja_fail(ev, "%s: expected a string, got %s", what, jinja_type_name(v));
  return v.s;
}

static int64_t want_int(jinja_eval_t *ev, const char *what, jinja_value_t v) {
  if (v.kind == JV_UNDEFINED) jinja_undefined_fail(ev, v);
  if (!is_index(v)) jinja_fail(ev, "%s: expected an integer, got %s", what, jinja_type_name(v));
  return index_of(v);
}

/* ---- string helpers ---- */

static bool in_chars(uint32_t cp, const jinja_str_t *chars) {
  if (!chars) return jinja_is_space(cp);
  for (size_t i = 0; i < chars->len;) {
    size_t adv;
    if (jinja_utf8_decode(chars->data + i, chars->len - i, &adv) == cp) return true;
    i += adv;
  }
  return false;
}

/* str.strip/lstrip/rstrip(chars): chars NULL strips whitespace. */
static jinja_str_t strip(jinja_str_t s, const jinja_str_t *chars, bool left, bool right) {
  size_t start = 0, end = s.len;
  if (left)
    while (start < end) {
      size_t adv;
      if (!in_chars(jinja_utf8_decode(s.data + start, end - start, &adv), chars)) break;
      start += adv;
    }
  if (right) {
    size_t keep = start;
    for (size_t i = start; i < end;) {
      size_t adv;
      uint32_t cp = jinja_utf8_decode(s.data + i, end - i, &adv);
      i += adv;
      if (!in_chars(cp, chars)) keep = i;
    }
    end = keep;
  }
  return (jinja_str_t){s.data + start, end - start};
}

typedef enum { CASE_UPPER, CASE_LOWER, CASE_CAPITALIZE, CASE_TITLE, CASE_SWAP } case_op_t;

static bool is_cased(uint32_t cp) {
  return cp == 0xDF || jinja_to_lower(cp) != cp || jinja_to_upper(cp) != cp;
}

/* Appends cp uppercased; titlecase for the first letter of a word. 'ß' is
 * the one character whose uppercase is two ("SS", titlecase "Ss"). */
static void put_upper(jinja_buf_t *b, uint32_t cp, bool title) {
  if (cp == 0xDF)
    jinja_buf_puts(b, title ? "Ss" : "SS");
  else
    jinja_buf_put_cp(b, jinja_to_upper(cp));
}

static jinja_str_t change_case(jinja_eval_t *ev, jinja_str_t s, case_op_t op) {
  jinja_buf_t b = {.heap = &ev->heap};
  bool prev_cased = false;
  for (size_t i = 0, k = 0; i < s.len; k++) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    i += adv;
    bool upper;
    switch (op) {
    case CASE_UPPER: upper = true; break;
    case CASE_LOWER: upper = false; break;
    case CASE_CAPITALIZE: upper = k == 0; break;
    case CASE_TITLE:
      upper = !prev_cased;
      prev_cased = is_cased(cp);
      break;
    default: /* CASE_SWAP */ upper = jinja_to_lower(cp) == cp; break;
    }
    if (upper)
      put_upper(&b, cp, op == CASE_CAPITALIZE || op == CASE_TITLE);
    else
      jinja_buf_put_cp(&b, jinja_to_lower(cp));
  }
  return jinja_buf_str(&b);
}

static const char *find_sub(jinja_str_t hay, jinja_str_t needle, size_t from) {
  for (size_t i = from; i + needle.len <= hay.len; i++)
    if (!needle.len || memcmp(hay.data + i, needle.data, needle.len) == 0) return hay.data + i;
  return NULL;
}

static const char *rfind_sub(jinja_str_t hay, jinja_str_t needle) {
  if (needle.len > hay.len) return NULL;
  for (size_t i = hay.len - needle.len + 1; i-- > 0;)
    if (!needle.len || memcmp(hay.data + i, needle.data, needle.len) == 0) return hay.data + i;
  return NULL;
}

/* str.replace(old, new, count) with Python's rule for an empty `old`
 * (insert between every character). */
static jinja_str_t replace(jinja_eval_t *ev, jinja_str_t s, jinja_str_t old, jinja_str_t new_,
                           int64_t count) {
  jinja_buf_t b = {.heap = &ev->heap};
  size_t i = 0;
  int64_t done = 0;
  if (!old.len) {
    for (;;) {
      if (count < 0 || done < count) {
        jinja_buf_put(&b, new_.data, new_.len);
        done++;
      }
      if (i >= s.len) break;
      size_t adv;
      jinja_utf8_decode(s.data + i, s.len - i, &adv);
      jinja_buf_put(&b, s.data + i, adv);
      i += adv;
    }
    return jinja_buf_str(&b);
  }
  for (const char *hit; (count < 0 || done < count) && (hit = find_sub(s, old, i)); done++) {
    jinja_buf_put(&b, s.data + i, (size_t)(hit - s.data) - i);
    jinja_buf_put(&b, new_.data, new_.len);
    i = (size_t)(hit - s.data) + old.len;
  }
  jinja_buf_put(&b, s.data + i, s.len - i);
  return jinja_buf_str(&b);
}

/* The start of the code point that ends at s[end] (end > 0). */
static size_t prev_char(jinja_str_t s, size_t end) {
  size_t i = end - 1;
  while (i > 0 && end - i < 4 && ((unsigned char)s.data[i] & 0xC0) == 0x80) i--;
  return i;
}

static bool space_at(jinja_str_t s, size_t i) {
  size_t adv;
  return jinja_is_space(jinja_utf8_decode(s.data + i, s.len - i, &adv));
}

static void push_piece(jinja_eval_t *ev, jinja_value_t list, jinja_str_t s, size_t a, size_t z) {
  jinja_list_push(ev, list, jinja_string((jinja_str_t){s.data + a, z - a}));
}

/* str.split(sep, maxsplit) / str.rsplit: sep NULL splits on runs of
 * whitespace; after maxsplit splits the rest is one piece. */
static jinja_value_t split(jinja_eval_t *ev, jinja_str_t s, const jinja_str_t *sep, int64_t max,
                           bool from_right) {
  if (sep && !sep->len) jinja_fail(ev, "empty separator");
  jinja_value_t out = jinja_list_new(ev, JV_LIST, 0);
  int64_t splits = 0;
  if (!from_right) {
    size_t i = 0;
    if (sep) {
      for (const char *hit; (max < 0 || splits < max) && (hit = find_sub(s, *sep, i)); splits++) {
        push_piece(ev, out, s, i, (size_t)(hit - s.data));
        i = (size_t)(hit - s.data) + sep->len;
      }
      push_piece(ev, out, s, i, s.len);
      return out;
    }
    for (;; splits++) {
      for (size_t adv; i < s.len && jinja_is_space(jinja_utf8_decode(s.data + i, s.len - i, &adv));)
        i += adv;
      if (i >= s.len) break;
      if (max >= 0 && splits >= max) {
        push_piece(ev, out, s, i, s.len);
        break;
      }
      size_t j = i, adv;
      while (j < s.len && !jinja_is_space(jinja_utf8_decode(s.data + j, s.len - j, &adv))) j += adv;
      push_piece(ev, out, s, i, j);
      i = j;
    }
    return out;
  }
  size_t end = s.len;
  if (sep) {
    for (const char *hit;
         (max < 0 || splits < max) && (hit = rfind_sub((jinja_str_t){s.data, end}, *sep));
         splits++) {
      push_piece(ev, out, s, (size_t)(hit - s.data) + sep->len, end);
      end = (size_t)(hit - s.data);
    }
    push_piece(ev, out, s, 0, end);
  } else {
    for (;; splits++) {
      while (end > 0 && space_at(s, prev_char(s, end))) end = prev_char(s, end);
      if (end == 0) break;
      if (max >= 0 && splits >= max) {
        push_piece(ev, out, s, 0, end);
        break;
      }
      size_t j = end;
      while (j > 0 && !space_at(s, prev_char(s, j))) j = prev_char(s, j);
      push_piece(ev, out, s, j, end);
      end = j;
    }
  }
  jinja_value_t *items = out.list->items; /* collected right to left */
  for (size_t i = 0, n = out.list->len; i < n / 2; i++) {
    jinja_value_t t = items[i];
    items[i] = items[n - 1 - i];
    items[n - 1 - i] = t;
  }
  return out;
}

/* str.splitlines(keepends). */
static jinja_value_t splitlines(jinja_eval_t *ev, jinja_str_t s, bool keepends) {
  jinja_value_t out = jinja_list_new(ev, JV_LIST, 0);
  size_t start = 0;
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    if (!jinja_is_linebreak(cp)) {
      i += adv;
      continue;
    }
    size_t end = i + adv;
    if (cp == '\r' && end < s.len && s.data[end] == '\n') end++;
    jinja_list_push(ev, out,
                    jinja_string((jinja_str_t){s.data + start, (keepends ? end : i) - start}));
    start = i = end;
  }
  if (start < s.len)
    jinja_list_push(ev, out, jinja_string((jinja_str_t){s.data + start, s.len - start}));
  return out;
}

static bool starts_with(jinja_str_t s, jinja_str_t p) {
  return p.len <= s.len && memcmp(s.data, p.data, p.len) == 0;
}

static bool ends_with(jinja_str_t s, jinja_str_t p) {
  return p.len <= s.len && memcmp(s.data + s.len - p.len, p.data, p.len) == 0;
}

/* str.join(iterable): every item must be a string. */
static jinja_value_t join_strings(jinja_eval_t *ev, jinja_str_t sep, jinja_value_t seq) {
  const jinja_list_t *l = jinja_iterate(ev, seq);
  jinja_buf_t b = {.heap = &ev->heap};
  for (size_t i = 0; i < l->len; i++) {
    if (l->items[i].kind != JV_STRING)
      jinja_fail(ev, "sequence item %zu: expected str instance, %s found", i,
                 jinja_type_name(l->items[i]));
    if (i) jinja_buf_put(&b, sep.data, sep.len);
    jinja_buf_put(&b, l->items[i].s.data, l->items[i].s.len);
  }
  return make_string(&b);
}

/* str.format(*args, **kwargs): {} {0} {name} {{ }}, without format specs. */
static jinja_value_t str_format(jinja_eval_t *ev, jinja_str_t fmt, const jinja_args_t *args) {
  jinja_buf_t b = {.heap = &ev->heap};
  size_t auto_index = 0;
  for (size_t i = 0; i < fmt.len; i++) {
    char c = fmt.data[i];
    if ((c == '{' || c == '}') && i + 1 < fmt.len && fmt.data[i + 1] == c) {
      jinja_buf_putc(&b, c);
      i++;
      continue;
    }
    if (c == '}') jinja_fail(ev, "str.format: single '}' encountered in format string");
    if (c != '{') {
      jinja_buf_putc(&b, c);
      continue;
    }
    size_t end = i + 1;
    while (end < fmt.len && fmt.data[end] != '}') end++;
    if (end >= fmt.len) jinja_fail(ev, "str.format: single '{' encountered in format string");
    jinja_str_t field = {fmt.data + i + 1, end - i - 1};
    if (memchr(field.data, ':', field.len) || memchr(field.data, '!', field.len) ||
        memchr(field.data, '.', field.len) || memchr(field.data, '[', field.len))
      jinja_fail(ev, "str.format: format specs and conversions are not supported");
    jinja_value_t v = jinja_undefined(NULL);
    bool found = false;
    if (!field.len || jinja_is_digit((unsigned char)field.data[0])) {
      size_t idx = field.len ? (size_t)strtoul(field.data, NULL, 10) : auto_index++;
      if (idx < args->n_pos) {
        v = args->values[idx];
        found = true;
      }
    } else {
      for (size_t k = 0; k < args->n_kw && !found; k++)
        if (args->names[k].len == field.len &&
            memcmp(args->names[k].data, field.data, field.len) == 0) {
          v = args->values[args->n_pos + k];
          found = true;
        }
    }
    if (!found) jinja_fail(ev, "str.format: no argument for '{%.*s}'", (int)field.len, field.data);
    jinja_write_str(ev, &b, v);
    i = end;
  }
  return make_string(&b);
}

static jinja_value_t pad(jinja_eval_t *ev, jinja_str_t s, int64_t width, jinja_str_t fill,
                         int where /* -1 ljust, 0 center, 1 rjust */) {
  int64_t n = (int64_t)jinja_utf8_count(s), total = width - n;
  if (jinja_utf8_count(fill) != 1)
    jinja_fail(ev, "The fill character must be exactly one character long");
  if (width > (1 << 20)) jinja_fail(ev, "padding width too large");
  int64_t left = where < 0 ? 0 : where > 0 ? total : total / 2 + (total & width & 1);
  jinja_buf_t b = {.heap = &ev->heap};
  for (int64_t i = 0; i < left; i++) jinja_buf_put(&b, fill.data, fill.len);
  jinja_buf_put(&b, s.data, s.len);
  for (int64_t i = left; i < total; i++) jinja_buf_put(&b, fill.data, fill.len);
  return make_string(&b);
}

static bool all_chars(jinja_str_t s, bool (*pred)(uint32_t)) {
  if (!s.len) return false;
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    if (!pred(jinja_utf8_decode(s.data + i, s.len - i, &adv))) return false;
    i += adv;
  }
  return true;
}

static bool is_alnum(uint32_t cp) { return jinja_is_alpha(cp) || jinja_is_digit(cp); }

/* islower(): some cased character and no uppercase one (isupper the reverse). */
static bool has_case(jinja_str_t s, bool lower) {
  bool cased = false;
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    i += adv;
    if (!is_cased(cp)) continue;
    if ((lower ? jinja_to_lower(cp) : jinja_to_upper(cp)) != cp) return false;
    cased = true;
  }
  return cased;
}

static jinja_value_t partition(jinja_eval_t *ev, jinja_str_t s, jinja_str_t sep, bool right) {
  if (!sep.len) jinja_fail(ev, "empty separator");
  const char *hit = right ? rfind_sub(s, sep) : find_sub(s, sep, 0);
  jinja_value_t t = jinja_list_new(ev, JV_TUPLE, 3);
  jinja_str_t empty = {"", 0};
  if (!hit) {
    jinja_list_push(ev, t, jinja_string(right ? empty : s));
    jinja_list_push(ev, t, jinja_string(empty));
    jinja_list_push(ev, t, jinja_string(right ? s : empty));
    return t;
  }
  size_t at = (size_t)(hit - s.data);
  jinja_list_push(ev, t, jinja_string((jinja_str_t){s.data, at}));
  jinja_list_push(ev, t, jinja_string(sep));
  jinja_list_push(ev, t, jinja_string((jinja_str_t){hit + sep.len, s.len - at - sep.len}));
  return t;
}

/* prefix: a string or a tuple of strings. */
static bool affix_match(jinja_eval_t *ev, jinja_str_t s, jinja_value_t affix, bool prefix) {
  if (affix.kind == JV_TUPLE) {
    for (size_t i = 0; i < affix.list->len; i++)
      if (affix_match(ev, s, affix.list->items[i], prefix)) return true;
    return false;
  }
  jinja_str_t a = want_str(ev, prefix ? "startswith" : "endswith", affix);
  return prefix ? starts_with(s, a) : ends_with(s, a);
}

static jinja_value_t call_str_method(jinja_eval_t *ev, jinja_str_t s, jinja_str_t name,
                                     const jinja_args_t *args) {
  jinja_value_t a[3];
  bool g[3];
  const char *what = "str method";
  if (str_is(name, "strip") || str_is(name, "lstrip") || str_is(name, "rstrip")) {
    static const char *const p[] = {"chars", NULL};
    bind(ev, what, args, p, a, g);
    jinja_str_t chars;
    bool use_chars = g[0] && a[0].kind != JV_NONE;
    if (use_chars) chars = want_str(ev, "strip", a[0]);
    return jinja_string(
        strip(s, use_chars ? &chars : NULL, name.data[0] != 'r', name.data[0] != 'l'));
  }
  if (str_is(name, "split") || str_is(name, "rsplit")) {
    static const char *const p[] = {"sep", "maxsplit", NULL};
    bind(ev, what, args, p, a, g);
    jinja_str_t sep;
    bool use_sep = g[0] && a[0].kind != JV_NONE;
    if (use_sep) sep = want_str(ev, "split", a[0]);
    return split(ev, s, use_sep ? &sep : NULL, g[1] ? want_int(ev, "split", a[1]) : -1,
                 name.data[0] == 'r');
  }
  if (str_is(name, "splitlines")) {
    static const char *const p[] = {"keepends", NULL};
    bind(ev, what, args, p, a, g);
    return splitlines(ev, s, g[0] && jinja_truthy(a[0]));
  }
  if (str_is(name, "startswith") || str_is(name, "endswith")) {
    static const char *const p[] = {"prefix", NULL};
    bind(ev, what, args, p, a, g);
    if (!g[0]) jinja_fail(ev, "%.*s() takes at least 1 argument", (int)name.len, name.data);
    return jinja_bool(affix_match(ev, s, a[0], name.data[0] == 's'));
  }
  if (str_is(name, "upper") || str_is(name, "lower") || str_is(name, "title") ||
      str_is(name, "capitalize") || str_is(name, "swapcase") || str_is(name, "casefold")) {
    no_args(ev, what, args);
    case_op_t op = str_is(name, "upper")        ? CASE_UPPER
                   : str_is(name, "title")      ? CASE_TITLE
                   : str_is(name, "capitalize") ? CASE_CAPITALIZE
                   : str_is(name, "swapcase")   ? CASE_SWAP
                                                : CASE_LOWER;
    return jinja_string(change_case(ev, s, op));
  }
  if (str_is(name, "replace")) {
    static const char *const p[] = {"old", "new", "count", NULL};
    bind(ev, what, args, p, a, g);
    return jinja_string(replace(ev, s, want_str(ev, "replace", a[0]), want_str(ev, "replace", a[1]),
                                g[2] ? want_int(ev, "replace", a[2]) : -1));
  }
  if (str_is(name, "find") || str_is(name, "rfind") || str_is(name, "index") ||
      str_is(name, "rindex") || str_is(name, "count")) {
    static const char *const p[] = {"sub", NULL};
    bind(ev, what, args, p, a, g);
    jinja_str_t sub = want_str(ev, "find", a[0]);
    if (str_is(name, "count")) {
      if (!sub.len) return jinja_int((int64_t)jinja_utf8_count(s) + 1);
      int64_t n = 0;
      for (const char *hit = find_sub(s, sub, 0); hit;
           hit = find_sub(s, sub, (size_t)(hit - s.data) + sub.len))
        n++;
      return jinja_int(n);
    }
    const char *hit = name.data[0] == 'r' ? rfind_sub(s, sub) : find_sub(s, sub, 0);
    if (!hit && name.data[name.data[0] == 'r'] == 'i') jinja_fail(ev, "substring not found");
    return jinja_int(hit ? (int64_t)jinja_utf8_count((jinja_str_t){s.data, (size_t)(hit - s.data)})
                         : -1);
  }
  if (str_is(name, "join")) {
    static const char *const p[] = {"iterable", NULL};
    bind(ev, what, args, p, a, g);
    return join_strings(ev, s, a[0]);
  }
  if (str_is(name, "format")) return str_format(ev, s, args);
  if (str_is(name, "removeprefix") || str_is(name, "removesuffix")) {
    static const char *const p[] = {"affix", NULL};
    bind(ev, what, args, p, a, g);
    jinja_str_t x = want_str(ev, "removeprefix", a[0]);
    if (name.data[6] == 'p')
      return jinja_string(starts_with(s, x) ? (jinja_str_t){s.data + x.len, s.len - x.len} : s);
    return jinja_string(ends_with(s, x) ? (jinja_str_t){s.data, s.len - x.len} : s);
  }
  if (str_is(name, "partition") || str_is(name, "rpartition")) {
    static const char *const p[] = {"sep", NULL};
    bind(ev, what, args, p, a, g);
    return partition(ev, s, want_str(ev, "partition", a[0]), name.data[0] == 'r');
  }
  if (str_is(name, "ljust") || str_is(name, "rjust") || str_is(name, "center") ||
      str_is(name, "zfill")) {
    static const char *const p[] = {"width", "fillchar", NULL};
    bind(ev, what, args, p, a, g);
    int64_t width = want_int(ev, "ljust", a[0]);
    if (str_is(name, "zfill")) { /* zeros after any sign */
      if (g[1]) jinja_fail(ev, "zfill() takes exactly one argument");
      bool sign = s.len && (s.data[0] == '-' || s.data[0] == '+');
      jinja_value_t padded = pad(ev, (jinja_str_t){s.data + sign, s.len - sign}, width - sign,
                                 (jinja_str_t){"0", 1}, 1);
      if (!sign) return padded;
      jinja_buf_t b = {.heap = &ev->heap};
      jinja_buf_putc(&b, s.data[0]);
      jinja_buf_put(&b, padded.s.data, padded.s.len);
      return make_string(&b);
    }
    jinja_str_t fill = g[1] ? want_str(ev, "ljust", a[1]) : (jinja_str_t){" ", 1};
    return pad(ev, s, width, fill, name.data[0] == 'l' ? -1 : name.data[0] == 'r' ? 1 : 0);
  }
  static const struct {
    const char *name;
    bool (*pred)(uint32_t);
  } classes[] = {{"isdigit", jinja_is_digit},   {"isdecimal", jinja_is_digit},
                 {"isnumeric", jinja_is_digit}, {"isalpha", jinja_is_alpha},
                 {"isalnum", is_alnum},         {"isspace", jinja_is_space}};
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
    if (str_is(name, classes[i].name)) {
      no_args(ev, what, args);
      return jinja_bool(all_chars(s, classes[i].pred));
    }
  if (str_is(name, "islower") || str_is(name, "isupper")) {
    no_args(ev, what, args);
    return jinja_bool(has_case(s, name.data[2] == 'l'));
  }
  jinja_fail(ev, "str.%.*s() is not supported", (int)name.len, name.data);
}

static jinja_value_t items_of(jinja_eval_t *ev, const jinja_dict_t *d) {
  jinja_value_t out = jinja_list_new(ev, JV_LIST, d->len);
  for (size_t i = 0; i < d->len; i++) {
    jinja_value_t pair = jinja_list_new(ev, JV_TUPLE, 2);
    jinja_list_push(ev, pair, d->keys[i]);
    jinja_list_push(ev, pair, d->values[i]);
    jinja_list_push(ev, out, pair);
  }
  return out;
}

static jinja_value_t call_method(jinja_eval_t *ev, const jinja_method_t *m,
                                 const jinja_args_t *args) {
  jinja_value_t self = m->self, a[2];
  bool g[2];
  jinja_str_t name = m->name;
  if (self.kind == JV_STRING) return call_str_method(ev, self.s, name, args);
  if (self.kind == JV_DICT) {
    if (str_is(name, "items")) {
      no_args(ev, "dict.items", args);
      jinja_value_t out = items_of(ev, self.dict);
      out.list->view = JINJA_VIEW_ITEMS;
      return out;
    }
    if (str_is(name, "keys") || str_is(name, "values")) {
      no_args(ev, "dict.keys", args);
      jinja_value_t out = jinja_list_new(ev, JV_LIST, self.dict->len);
      for (size_t i = 0; i < self.dict->len; i++)
        jinja_list_push(ev, out, name.data[0] == 'k' ? self.dict->keys[i] : self.dict->values[i]);
      out.list->view = name.data[0] == 'k' ? JINJA_VIEW_KEYS : JINJA_VIEW_VALUES;
      return out;
    }
    if (str_is(name, "get")) {
      static const char *const p[] = {"key", "default", NULL};
      bind(ev, "dict.get", args, p, a, g);
      if (!g[0]) jinja_fail(ev, "dict.get expected at least 1 argument, got 0");
      jinja_value_t v;
      if (a[0].kind != JV_LIST && a[0].kind != JV_DICT && jinja_dict_get(ev, self.dict, a[0], &v))
        return v;
      return g[1] ? a[1] : jinja_none();
    }
  }
  if (self.kind == JV_LOOP && str_is(name, "cycle")) {
    if (!args->n_pos) jinja_fail(ev, "no items for cycling given");
    return args->values[self.loop->index0 % args->n_pos];
  }
  jinja_fail(ev, "%s.%.*s() is not supported", jinja_type_name(self), (int)name.len, name.data);
}

/* ---- global functions ---- */

static const char *const function_names[JF_FUNCTION_COUNT] = {
    [JF_RANGE] = "range",
    [JF_NAMESPACE] = "namespace",
    [JF_DICT] = "dict",
    [JF_RAISE_EXCEPTION] = "raise_exception",
    [JF_STRFTIME_NOW] = "strftime_now"};

int jinja_function_lookup(jinja_str_t name) {
  for (int i = 0; i < JF_FUNCTION_COUNT; i++)
    if (str_is(name, function_names[i])) return i;
  return -1;
}

const char *jinja_function_name(int id) { return function_names[id]; }

enum { MAX_RANGE = 100000 }; /* jinja2.sandbox.MAX_RANGE */

static jinja_value_t fn_range(jinja_eval_t *ev, const jinja_args_t *args) {
  if (args->n_kw) jinja_fail(ev, "range() takes no keyword arguments");
  if (args->n_pos < 1 || args->n_pos > 3)
    jinja_fail(ev, "range expected 1 to 3 arguments, got %zu", args->n_pos);
  int64_t v[3] = {0, 0, 1};
  for (size_t i = 0; i < args->n_pos; i++)
    v[args->n_pos == 1 ? 1 : i] = want_int(ev, "range", args->values[i]);
  if (v[2] == 0) jinja_fail(ev, "range() arg 3 must not be zero");
  double count = v[2] > 0 ? ceil(((double)v[1] - (double)v[0]) / (double)v[2])
                          : ceil(((double)v[0] - (double)v[1]) / -(double)v[2]);
  if (count > MAX_RANGE)
    jinja_fail(ev, "Range too big. The sandbox blocks ranges larger than MAX_RANGE (%d).",
               MAX_RANGE);
  jinja_value_t out = jinja_list_new(ev, JV_LIST, count > 0 ? (size_t)count : 0);
  for (int64_t i = v[0]; v[2] > 0 ? i < v[1] : i > v[1]; i += v[2])
    jinja_list_push(ev, out, jinja_int(i));
  return out;
}

/* namespace(...) and dict(...): an optional mapping, then keywords. */
static jinja_value_t fn_mapping(jinja_eval_t *ev, jinja_kind_t kind, const jinja_args_t *args) {
  jinja_value_t out = jinja_dict_new(ev, kind);
  if (args->n_pos > 1)
    jinja_fail(ev, "%s expected at most 1 positional argument",
               kind == JV_DICT ? "dict" : "namespace");
  if (args->n_pos) {
    jinja_value_t src = args->values[0];
    if (src.kind != JV_DICT && src.kind != JV_NAMESPACE)
      jinja_fail(ev, "%s: expected a mapping, got %s", kind == JV_DICT ? "dict" : "namespace",
                 jinja_type_name(src));
    for (size_t i = 0; i < src.dict->len; i++)
      jinja_dict_set(ev, out.dict, src.dict->keys[i], src.dict->values[i]);
  }
  for (size_t k = 0; k < args->n_kw; k++)
    jinja_dict_set(ev, out.dict, jinja_string(args->names[k]), args->values[args->n_pos + k]);
  return out;
}

static jinja_value_t call_function(jinja_eval_t *ev, int id, const jinja_args_t *args) {
  jinja_value_t a[1];
  bool g[1];
  switch (id) {
  case JF_RANGE: return fn_range(ev, args);
  case JF_NAMESPACE: return fn_mapping(ev, JV_NAMESPACE, args);
  case JF_DICT: return fn_mapping(ev, JV_DICT, args);
  case JF_RAISE_EXCEPTION: {
    static const char *const p[] = {"message", NULL};
    bind(ev, "raise_exception", args, p, a, g);
    if (!g[0]) jinja_fail(ev, "raise_exception() missing its message");
    jinja_str_t msg = jinja_to_str(ev, a[0]);
    ev->trap->status = LLMC_ERROR(INVALID_ARGUMENT, "%.*s", (int)msg.len, msg.data);
    ev->trap->raised = true;
    longjmp(ev->trap->jmp, 1);
  }
  default: { /* JF_STRFTIME_NOW */
    static const char *const p[] = {"format", NULL};
    bind(ev, "strftime_now", args, p, a, g);
    jinja_str_t fmt = want_str(ev, "strftime_now", a[0]);
    char cfmt[256], out[512];
    if (fmt.len >= sizeof cfmt || memchr(fmt.data, '\0', fmt.len))
      jinja_fail(ev, "strftime_now: format too long");
    memcpy(cfmt, fmt.data, fmt.len);
    cfmt[fmt.len] = '\0';
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    size_t n = strftime(out, sizeof out, cfmt, &tm);
    char *copy = jinja_alloc(&ev->heap, n + 1);
    memcpy(copy, out, n);
    return jinja_string((jinja_str_t){copy, n});
  }
  }
}

jinja_value_t jinja_call(jinja_eval_t *ev, jinja_value_t callee, const jinja_args_t *args) {
  switch (callee.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, callee);
  case JV_FUNCTION: return call_function(ev, callee.function, args);
  case JV_METHOD: return call_method(ev, callee.method, args);
  case JV_MACRO: return jinja_call_macro(ev, callee.macro, args);
  default: jinja_fail(ev, "'%s' object is not callable", jinja_type_name(callee));
  }
}

/* ---- tests ---- */

typedef bool (*test_fn)(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args);

/* The one argument of a comparison test. */
static jinja_value_t test_arg(jinja_eval_t *ev, const jinja_args_t *args) {
  if (args->n_pos + args->n_kw != 1) jinja_fail(ev, "this test takes exactly one argument");
  return args->values[0];
}

static bool t_defined(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  no_args(ev, "test 'defined'", a);
  return v.kind != JV_UNDEFINED;
}
static bool t_undefined(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return !t_defined(ev, v, a);
}
#define KIND_TEST(fn, cond)                                                  \
  static bool fn(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) { \
    no_args(ev, "this test", a);                                             \
    return cond;                                                             \
  }
KIND_TEST(t_none, v.kind == JV_NONE)
KIND_TEST(t_boolean, v.kind == JV_BOOL)
KIND_TEST(t_true, v.kind == JV_BOOL && v.b)
KIND_TEST(t_false, v.kind == JV_BOOL && !v.b)
KIND_TEST(t_integer, v.kind == JV_INT)
KIND_TEST(t_float, v.kind == JV_FLOAT)
KIND_TEST(t_number, v.kind == JV_INT || v.kind == JV_FLOAT || v.kind == JV_BOOL)
KIND_TEST(t_string, v.kind == JV_STRING)
KIND_TEST(t_mapping, v.kind == JV_DICT)
KIND_TEST(t_callable, v.kind == JV_MACRO || v.kind == JV_FUNCTION || v.kind == JV_METHOD ||
                          v.kind == JV_UNDEFINED) /* Undefined has a __call__ that raises */
KIND_TEST(t_iterable, v.kind == JV_STRING || v.kind == JV_LIST || v.kind == JV_TUPLE ||
                          v.kind == JV_DICT || v.kind == JV_ITERATOR || v.kind == JV_UNDEFINED ||
                          v.kind == JV_LOOP)
KIND_TEST(t_sequence, v.kind == JV_STRING || v.kind == JV_LIST || v.kind == JV_TUPLE ||
                          v.kind == JV_DICT || v.kind == JV_UNDEFINED)
KIND_TEST(t_lower, has_case(jinja_to_str(ev, v), true))
KIND_TEST(t_upper, has_case(jinja_to_str(ev, v), false))
#undef KIND_TEST

/* value % divisor == remainder, as jinja2's odd, even and divisibleby test it. */
static bool mod_is(jinja_eval_t *ev, jinja_value_t v, jinja_value_t divisor, int remainder) {
  return jinja_equal(jinja_binary_op(ev, JT_MOD, v, divisor), jinja_int(remainder));
}
static bool t_odd(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  no_args(ev, "test 'odd'", a);
  return mod_is(ev, v, jinja_int(2), 1);
}
static bool t_even(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  no_args(ev, "test 'even'", a);
  return mod_is(ev, v, jinja_int(2), 0);
}
static bool t_divisibleby(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return mod_is(ev, v, test_arg(ev, a), 0);
}
static bool t_eq(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return jinja_equal(v, test_arg(ev, a));
}
static bool t_ne(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return !jinja_equal(v, test_arg(ev, a));
}
static bool t_lt(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return jinja_compare(ev, v, test_arg(ev, a)) == -1;
}
static bool t_le(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  int c = jinja_compare(ev, v, test_arg(ev, a));
  return c == -1 || c == 0;
}
static bool t_gt(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return jinja_compare(ev, v, test_arg(ev, a)) == 1;
}
static bool t_ge(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  int c = jinja_compare(ev, v, test_arg(ev, a));
  return c == 1 || c == 0;
}
static bool t_in(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return jinja_contains(ev, test_arg(ev, a), v);
}
static bool t_sameas(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  jinja_value_t o = test_arg(ev, a);
  if (v.kind != o.kind) return false;
  if (v.kind == JV_NONE || v.kind == JV_BOOL || v.kind == JV_INT || v.kind == JV_UNDEFINED)
    return jinja_equal(v, o);
  if (v.kind == JV_STRING) return v.s.data == o.s.data && v.s.len == o.s.len;
  return v.kind != JV_FLOAT && v.list == o.list;
}
static bool t_filter(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  no_args(ev, "test 'filter'", a);
  return v.kind == JV_STRING && jinja_filter_lookup(v.s) >= 0;
}
static bool t_test(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  no_args(ev, "test 'test'", a);
  return v.kind == JV_STRING && jinja_test_lookup(v.s) >= 0;
}

static const struct {
  const char *name;
  test_fn fn;
} tests[] = {
    {"defined", t_defined},
    {"undefined", t_undefined},
    {"none", t_none},
    {"boolean", t_boolean},
    {"true", t_true},
    {"false", t_false},
    {"integer", t_integer},
    {"float", t_float},
    {"number", t_number},
    {"string", t_string},
    {"mapping", t_mapping},
    {"callable", t_callable},
    {"iterable", t_iterable},
    {"sequence", t_sequence},
    {"lower", t_lower},
    {"upper", t_upper},
    {"odd", t_odd},
    {"even", t_even},
    {"divisibleby", t_divisibleby},
    {"eq", t_eq},
    {"equalto", t_eq},
    {"==", t_eq},
    {"ne", t_ne},
    {"!=", t_ne},
    {"lt", t_lt},
    {"lessthan", t_lt},
    {"<", t_lt},
    {"le", t_le},
    {"<=", t_le},
    {"gt", t_gt},
    {"greaterthan", t_gt},
    {">", t_gt},
    {"ge", t_ge},
    {">=", t_ge},
    {"in", t_in},
    {"sameas", t_sameas},
    {"filter", t_filter},
    {"test", t_test},
};

int jinja_test_lookup(jinja_str_t name) {
  for (size_t i = 0; i < sizeof tests / sizeof tests[0]; i++)
    if (str_is(name, tests[i].name)) return (int)i;
  return -1;
}

bool jinja_apply_test(jinja_eval_t *ev, int id, jinja_value_t input, const jinja_args_t *args) {
  return tests[id].fn(ev, input, args);
}

/* ---- filters ---- */

typedef jinja_value_t (*filter_fn)(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args);

/* A string view of v as jinja2's soft_str sees it (undefined: ''). */
static jinja_str_t soft_str(jinja_eval_t *ev, jinja_value_t v) { return jinja_to_str(ev, v); }

static jinja_value_t iterator_of(jinja_value_t list) {
  list.kind = JV_ITERATOR;
  return list;
}

/* jinja2's make_attrgetter: "a.b.0" looked up part by part with getitem. */
static jinja_value_t get_path(jinja_eval_t *ev, jinja_value_t item, jinja_value_t path) {
  if (is_index(path)) return jinja_getitem(ev, item, path);
  jinja_str_t p = want_str(ev, "attribute", path);
  for (size_t i = 0; i <= p.len;) {
    size_t end = i;
    while (end < p.len && p.data[end] != '.') end++;
    jinja_str_t part = {p.data + i, end - i};
    bool digits = part.len > 0;
    for (size_t k = 0; k < part.len; k++) digits &= jinja_is_digit((unsigned char)part.data[k]);
    item = jinja_getitem(
        ev, item,
        digits && part.len < 18 ? jinja_int(strtoll(part.data, NULL, 10)) : jinja_string(part));
    i = end + 1;
  }
  return item;
}

static jinja_value_t f_default(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"default_value", "boolean", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "default", args, p, a, g);
  jinja_value_t fallback = g[0] ? a[0] : jinja_cstring("");
  if (v.kind == JV_UNDEFINED || (g[1] && jinja_truthy(a[1]) && !jinja_truthy(v))) return fallback;
  return v;
}

static jinja_value_t f_length(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "length", args);
  return jinja_int(jinja_length(ev, v));
}

static jinja_value_t f_trim(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"chars", NULL};
  jinja_value_t a[1];
  bool g[1];
  bind(ev, "trim", args, p, a, g);
  jinja_str_t chars;
  bool use = g[0] && a[0].kind != JV_NONE;
  if (use) chars = want_str(ev, "trim", a[0]);
  return jinja_string(strip(soft_str(ev, v), use ? &chars : NULL, true, true));
}

static jinja_value_t case_filter(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args,
                                 case_op_t op) {
  no_args(ev, "case filter", args);
  return jinja_string(change_case(ev, soft_str(ev, v), op));
}
static jinja_value_t f_upper(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return case_filter(ev, v, a, CASE_UPPER);
}
static jinja_value_t f_lower(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return case_filter(ev, v, a, CASE_LOWER);
}
static jinja_value_t f_capitalize(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return case_filter(ev, v, a, CASE_CAPITALIZE);
}

/* jinja2's title: each piece between runs of [-\s({[<] capitalized. */
static jinja_value_t f_title(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "title", args);
  jinja_str_t s = soft_str(ev, v);
  jinja_buf_t b = {.heap = &ev->heap};
  bool prev_sep = true, first = true;
  for (size_t i = 0; i < s.len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(s.data + i, s.len - i, &adv);
    i += adv;
    bool sep = jinja_is_space(cp) || cp == '-' || cp == '(' || cp == '{' || cp == '[' || cp == '<';
    first = sep != prev_sep || first;
    if (first)
      put_upper(&b, cp, false);
    else
      jinja_buf_put_cp(&b, jinja_to_lower(cp));
    prev_sep = sep;
    first = false;
  }
  return make_string(&b);
}

static jinja_value_t f_replace(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"old", "new", "count", NULL};
  jinja_value_t a[3];
  bool g[3];
  bind(ev, "replace", args, p, a, g);
  if (!g[0] || !g[1]) jinja_fail(ev, "replace needs old and new");
  return jinja_string(replace(ev, soft_str(ev, v), soft_str(ev, a[0]), soft_str(ev, a[1]),
                              g[2] && a[2].kind != JV_NONE ? want_int(ev, "replace", a[2]) : -1));
}

static jinja_value_t f_first(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "first", args);
  if (v.kind == JV_ITERATOR) {
    if (v.list->pos < v.list->len) return v.list->items[v.list->pos++];
  } else {
    const jinja_list_t *l = jinja_iterate(ev, v);
    if (l->len) return l->items[0];
  }
  return jinja_undefined("No first item, sequence was empty.");
}

static jinja_value_t f_last(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "last", args);
  if (v.kind == JV_ITERATOR) jinja_fail(ev, "'generator' object is not reversible");
  const jinja_list_t *l = jinja_iterate(ev, v);
  if (l->len) return l->items[l->len - 1];
  return jinja_undefined("No last item, sequence was empty.");
}

static jinja_value_t f_list(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "list", args);
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t out = jinja_list_new(ev, JV_LIST, l->len);
  for (size_t i = 0; i < l->len; i++) jinja_list_push(ev, out, l->items[i]);
  return out;
}

static jinja_value_t f_join(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"d", "attribute", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "join", args, p, a, g);
  jinja_str_t sep = g[0] ? soft_str(ev, a[0]) : (jinja_str_t){"", 0};
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_buf_t b = {.heap = &ev->heap};
  for (size_t i = 0; i < l->len; i++) {
    if (i) jinja_buf_put(&b, sep.data, sep.len);
    jinja_write_str(ev, &b,
                    g[1] && a[1].kind != JV_NONE ? get_path(ev, l->items[i], a[1]) : l->items[i]);
  }
  return make_string(&b);
}

static jinja_value_t f_string(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "string", args);
  return jinja_string(soft_str(ev, v));
}

/* Python's int(str) after strip(): an optional sign, digits in `base` with
 * single underscores between them (base 0: by prefix). */
static bool parse_int_text(jinja_str_t s, int64_t base, int64_t *out) {
  s = strip(s, NULL, true, true);
  size_t i = 0;
  bool neg = false;
  if (i < s.len && (s.data[i] == '+' || s.data[i] == '-')) neg = s.data[i++] == '-';
  if ((base == 16 || base == 8 || base == 2 || base == 0) && i + 1 < s.len && s.data[i] == '0') {
    char k = (char)(s.data[i + 1] | 32);
    int64_t b = k == 'x' ? 16 : k == 'o' ? 8 : k == 'b' ? 2 : 0;
    if (b && (base == 0 || base == b)) {
      base = b;
      i += 2;
      if (i < s.len && s.data[i] == '_') i++;
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36 || i >= s.len) return false;
  uint64_t v = 0;
  for (bool need_digit = true; i < s.len; i++) {
    char c = s.data[i];
    if (c == '_' && !need_digit) {
      need_digit = true;
      continue;
    }
    int d = c >= '0' && c <= '9'                 ? c - '0'
            : (c | 32) >= 'a' && (c | 32) <= 'z' ? (c | 32) - 'a' + 10
                                                 : 99;
    if (d >= base) return false;
    if (v > (UINT64_C(1) << 63) / (uint64_t)base) return false;
    v = v * (uint64_t)base + (uint64_t)d;
    need_digit = false;
    if (i + 1 == s.len && need_digit) return false;
  }
  if (s.data[s.len - 1] == '_' || v > (uint64_t)INT64_MAX + neg) return false;
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return true;
}

/* Python's float(str): strip, then a decimal literal, inf or nan. */
static bool parse_float_text(jinja_eval_t *ev, jinja_str_t s, double *out) {
  s = strip(s, NULL, true, true);
  if (!s.len || s.len > 400) return false;
  char tmp[401];
  size_t n = 0;
  for (size_t i = 0; i < s.len; i++) {
    char c = s.data[i];
    if (c == '_') {
      if (!i || i + 1 == s.len || !jinja_is_digit((unsigned char)s.data[i - 1]) ||
          !jinja_is_digit((unsigned char)s.data[i + 1]))
        return false;
      continue;
    }
    if (!(jinja_is_digit((unsigned char)c) || strchr("+-.eEinfatyINFATY", c)) || !c) return false;
    tmp[n++] = c;
  }
  tmp[n] = '\0';
  (void)ev;
  char *end;
  const char *t = tmp + (tmp[0] == '+' || tmp[0] == '-');
  bool word = (t[0] | 32) == 'i' || (t[0] | 32) == 'n';
  if (word) {
    char low[16] = "";
    for (size_t i = 0; t[i] && i < sizeof low - 1; i++) low[i] = (char)(t[i] | 32);
    if (strcmp(low, "inf") && strcmp(low, "infinity") && strcmp(low, "nan")) return false;
  } else if ((t[0] != '.' && !jinja_is_digit((unsigned char)t[0])) || strchr(t, 'x') ||
             strchr(t, 'X')) {
    return false;
  }
  *out = strtod(tmp, &end);
  return *end == '\0';
}

static jinja_value_t f_int(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"default", "base", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "int", args, p, a, g);
  jinja_value_t fallback = g[0] ? a[0] : jinja_int(0);
  int64_t base = g[1] ? want_int(ev, "int", a[1]) : 10, i;
  double d;
  switch (v.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, v);
  case JV_INT: return v;
  case JV_BOOL: return jinja_int(v.b);
  case JV_FLOAT:
    if (isnan(v.f) || isinf(v.f) || fabs(v.f) >= 9.2e18) return fallback;
    return jinja_int((int64_t)v.f);
  case JV_STRING:
    if (parse_int_text(v.s, base, &i)) return jinja_int(i);
    if (parse_float_text(ev, v.s, &d) && !isnan(d) && !isinf(d) && fabs(d) < 9.2e18)
      return jinja_int((int64_t)d);
    return fallback;
  default: return fallback;
  }
}

static jinja_value_t f_float(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"default", NULL};
  jinja_value_t a[1];
  bool g[1];
  bind(ev, "float", args, p, a, g);
  jinja_value_t fallback = g[0] ? a[0] : jinja_float(0);
  double d;
  switch (v.kind) {
  case JV_UNDEFINED: jinja_undefined_fail(ev, v);
  case JV_INT: return jinja_float((double)v.i);
  case JV_BOOL: return jinja_float(v.b);
  case JV_FLOAT: return v;
  case JV_STRING: return parse_float_text(ev, v.s, &d) ? jinja_float(d) : fallback;
  default: return fallback;
  }
}

static jinja_value_t f_abs(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "abs", args);
  if (v.kind == JV_INT) {
    if (v.i == INT64_MIN) jinja_fail(ev, "integer overflow (llmc's integers are 64-bit)");
    return jinja_int(v.i < 0 ? -v.i : v.i);
  }
  if (v.kind == JV_BOOL) return jinja_int(v.b);
  if (v.kind == JV_FLOAT) return jinja_float(fabs(v.f));
  jinja_fail(ev, "bad operand type for abs(): '%s'", jinja_type_name(v));
}

static jinja_value_t f_round(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"precision", "method", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "round", args, p, a, g);
  int64_t prec = g[0] ? want_int(ev, "round", a[0]) : 0;
  jinja_str_t method = g[1] ? want_str(ev, "round", a[1]) : (jinja_str_t){"common", 6};
  if (!str_is(method, "common") && !str_is(method, "ceil") && !str_is(method, "floor"))
    jinja_fail(ev, "method must be common, ceil or floor");
  if (v.kind == JV_UNDEFINED) jinja_undefined_fail(ev, v);
  if (v.kind != JV_INT && v.kind != JV_BOOL && v.kind != JV_FLOAT)
    jinja_fail(ev, "round: expected a number, got %s", jinja_type_name(v));
  if (prec < 0 || prec > 300)
    jinja_fail(ev, "round: precision %lld is not supported", (long long)prec);
  if (v.kind != JV_FLOAT && str_is(method, "common"))
    return jinja_int(v.kind == JV_INT ? v.i : v.b);
  double x = v.kind == JV_FLOAT ? v.f : (double)(v.kind == JV_INT ? v.i : v.b);
  if (str_is(method, "common")) {
    if (isnan(x) || isinf(x)) return jinja_float(x);
    char buf[400]; /* correctly rounded, ties to even on the exact value, as Python's round() */
    snprintf(buf, sizeof buf, "%.*f", (int)prec, x);
    return jinja_float(strtod(buf, NULL));
  }
  double scale = pow(10, (double)prec);
  return jinja_float((method.data[0] == 'c' ? ceil(x * scale) : floor(x * scale)) / scale);
}

static jinja_value_t f_items(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "items", args);
  if (v.kind == JV_UNDEFINED) return iterator_of(jinja_list_new(ev, JV_LIST, 0));
  if (v.kind != JV_DICT) jinja_fail(ev, "Can only get item pairs from a mapping.");
  return iterator_of(items_of(ev, v.dict));
}

/* A NUL-terminated copy of s for the JSON writer (which takes C strings). */
static const char *c_string(jinja_eval_t *ev, const char *what, jinja_str_t s) {
  if (memchr(s.data, '\0', s.len)) jinja_fail(ev, "%s: contains a NUL character", what);
  char *c = jinja_alloc(&ev->heap, s.len + 1);
  memcpy(c, s.data, s.len);
  return c;
}

/* n spaces (none if n <= 0), as Python's " " * n, NUL-terminated. */
static jinja_str_t spaces(jinja_eval_t *ev, int64_t n) {
  if (n > 1000) jinja_fail(ev, "indent %lld is too large", (long long)n);
  size_t len = n > 0 ? (size_t)n : 0;
  char *s = jinja_alloc(&ev->heap, len + 1);
  memset(s, ' ', len);
  return (jinja_str_t){s, len};
}

/* Hugging Face's tojson: json.dumps(x, ensure_ascii=False, indent=None,
 * separators=None, sort_keys=False), arguments in that order. */
static jinja_value_t f_tojson(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"ensure_ascii", "indent", "separators", "sort_keys", NULL};
  jinja_value_t a[4];
  bool g[4];
  bind(ev, "tojson", args, p, a, g);
  jinja_json_options_t opt = {.ensure_ascii = g[0] && jinja_truthy(a[0]),
                              .sort_keys = g[3] && jinja_truthy(a[3])};
  if (g[1] && a[1].kind != JV_NONE)
    opt.indent = a[1].kind == JV_STRING ? c_string(ev, "tojson indent", a[1].s)
                                        : spaces(ev, want_int(ev, "tojson indent", a[1])).data;
  opt.item_sep = opt.indent ? "," : ", ";
  opt.key_sep = ": ";
  if (g[2] && a[2].kind != JV_NONE) {
    jinja_value_t seps = a[2];
    if ((seps.kind != JV_LIST && seps.kind != JV_TUPLE) || seps.list->len != 2)
      jinja_fail(ev, "tojson: separators must be a pair of strings");
    opt.item_sep = c_string(ev, "tojson separators", want_str(ev, "tojson", seps.list->items[0]));
    opt.key_sep = c_string(ev, "tojson separators", want_str(ev, "tojson", seps.list->items[1]));
  }
  jinja_buf_t b = {.heap = &ev->heap};
  jinja_write_json(ev, &b, v, &opt);
  return make_string(&b);
}

static jinja_value_t f_indent(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"width", "first", "blank", NULL};
  jinja_value_t a[3];
  bool g[3];
  bind(ev, "indent", args, p, a, g);
  jinja_str_t ind =
      g[0] && a[0].kind == JV_STRING ? a[0].s : spaces(ev, g[0] ? want_int(ev, "indent", a[0]) : 4);
  if (v.kind == JV_UNDEFINED) jinja_undefined_fail(ev, v);
  if (v.kind != JV_STRING) /* jinja2 appends "\n" to it first */
    jinja_fail(ev, "unsupported operand type(s) for +=: '%s' and 'str'", jinja_type_name(v));
  bool first = g[1] && jinja_truthy(a[1]), blank = g[2] && jinja_truthy(a[2]);
  jinja_buf_t text = {.heap = &ev->heap};
  jinja_buf_put(&text, v.s.data, v.s.len);
  jinja_buf_putc(&text, '\n'); /* jinja2's quirk, for splitlines' sake */
  const jinja_list_t *lines = splitlines(ev, jinja_buf_str(&text), false).list;
  jinja_buf_t b = {.heap = &ev->heap};
  if (first) jinja_buf_put(&b, ind.data, ind.len);
  for (size_t i = 0; i < lines->len; i++) {
    jinja_str_t line = lines->items[i].s;
    if (i) {
      jinja_buf_putc(&b, '\n');
      if (blank || line.len) jinja_buf_put(&b, ind.data, ind.len);
    }
    jinja_buf_put(&b, line.data, line.len);
  }
  return make_string(&b);
}

static jinja_value_t f_safe(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "safe", args);
  return jinja_string(soft_str(ev, v));
}

static jinja_value_t f_escape(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "escape", args);
  jinja_str_t s = soft_str(ev, v);
  jinja_buf_t b = {.heap = &ev->heap};
  for (size_t i = 0; i < s.len; i++) {
    char c = s.data[i];
    const char *e = c == '&'    ? "&amp;"
                    : c == '<'  ? "&lt;"
                    : c == '>'  ? "&gt;"
                    : c == '"'  ? "&#34;"
                    : c == '\'' ? "&#39;"
                                : NULL;
    if (e)
      jinja_buf_puts(&b, e);
    else
      jinja_buf_putc(&b, c);
  }
  return make_string(&b);
}

static jinja_value_t f_format(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  if (args->n_pos && args->n_kw)
    jinja_fail(ev, "can't handle positional and keyword arguments at the same time");
  jinja_value_t packed;
  if (args->n_kw) {
    packed = jinja_dict_new(ev, JV_DICT);
    for (size_t k = 0; k < args->n_kw; k++)
      jinja_dict_set(ev, packed.dict, jinja_string(args->names[k]), args->values[k]);
  } else {
    packed = jinja_list_new(ev, JV_TUPLE, args->n_pos);
    for (size_t i = 0; i < args->n_pos; i++) jinja_list_push(ev, packed, args->values[i]);
  }
  return jinja_percent_format(ev, soft_str(ev, v), packed);
}

static jinja_value_t f_attr(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"name", NULL};
  jinja_value_t a[1];
  bool g[1];
  bind(ev, "attr", args, p, a, g);
  return jinja_getattr(ev, v, want_str(ev, "attr", a[0]));
}

/* select/reject/selectattr/rejectattr: keep the items whose (attribute)
 * passes the test (truthiness when no test is named). */
static jinja_value_t select_items(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args,
                                  bool by_attr, bool keep) {
  const jinja_list_t *l = jinja_iterate(ev, v);
  size_t first_arg = by_attr ? 1 : 0;
  if (args->n_pos < first_arg) jinja_fail(ev, "selectattr needs an attribute");
  int test = -1;
  if (args->n_pos > first_arg) {
    jinja_str_t name = want_str(ev, "select test", args->values[first_arg]);
    test = jinja_test_lookup(name);
    if (test < 0) jinja_fail(ev, "No test named '%.*s'", (int)name.len, name.data);
  }
  size_t skip = test >= 0 ? first_arg + 1 : first_arg;
  jinja_args_t rest = {args->values + skip, args->n_pos - skip, args->names, args->n_kw};
  jinja_value_t out = jinja_list_new(ev, JV_LIST, 0);
  for (size_t i = 0; i < l->len; i++) {
    jinja_value_t x = by_attr ? get_path(ev, l->items[i], args->values[0]) : l->items[i];
    bool pass = test >= 0 ? jinja_apply_test(ev, test, x, &rest) : jinja_truthy(x);
    if (pass == keep) jinja_list_push(ev, out, l->items[i]);
  }
  return iterator_of(out);
}
static jinja_value_t f_select(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return select_items(ev, v, a, false, true);
}
static jinja_value_t f_reject(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return select_items(ev, v, a, false, false);
}
static jinja_value_t f_selectattr(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return select_items(ev, v, a, true, true);
}
static jinja_value_t f_rejectattr(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return select_items(ev, v, a, true, false);
}

static jinja_value_t f_map(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t out = jinja_list_new(ev, JV_LIST, l->len);
  if (!args->n_pos) { /* map(attribute=..., default=...) */
    static const char *const p[] = {"attribute", "default", NULL};
    jinja_value_t a[2];
    bool g[2];
    bind(ev, "map", args, p, a, g);
    if (!g[0]) jinja_fail(ev, "map requires a filter argument");
    for (size_t i = 0; i < l->len; i++) {
      jinja_value_t x = get_path(ev, l->items[i], a[0]);
      jinja_list_push(ev, out, x.kind == JV_UNDEFINED && g[1] ? a[1] : x);
    }
    return iterator_of(out);
  }
  jinja_str_t name = want_str(ev, "map filter", args->values[0]);
  int id = jinja_filter_lookup(name);
  if (id < 0) jinja_fail(ev, "No filter named '%.*s'", (int)name.len, name.data);
  jinja_args_t rest = {args->values + 1, args->n_pos - 1, args->names, args->n_kw};
  for (size_t i = 0; i < l->len; i++)
    jinja_list_push(ev, out, jinja_apply_filter(ev, id, l->items[i], &rest));
  return iterator_of(out);
}

/* A sort/unique/min/max key: the item or its attribute, lowercased strings
 * unless case-sensitive. */
static jinja_value_t sort_key(jinja_eval_t *ev, jinja_value_t item, const jinja_value_t *attr,
                              bool case_sensitive) {
  jinja_value_t k = attr ? get_path(ev, item, *attr) : item;
  if (!case_sensitive && k.kind == JV_STRING) return jinja_string(change_case(ev, k.s, CASE_LOWER));
  return k;
}

/* Stable merge sort of items by keys (both n long), Python's `<` order. */
static void merge_sort(jinja_eval_t *ev, jinja_value_t *items, jinja_value_t *keys, size_t n,
                       bool reverse) {
  if (n < 2) return;
  size_t h = n / 2;
  merge_sort(ev, items, keys, h, reverse);
  merge_sort(ev, items + h, keys + h, n - h, reverse);
  jinja_value_t *ti = jinja_alloc(&ev->heap, n * sizeof *ti),
                *tk = jinja_alloc(&ev->heap, n * sizeof *tk);
  size_t i = 0, j = h, k = 0;
  while (i < h && j < n) {
    /* take from the right only when it sorts strictly first (stability) */
    bool right = reverse ? jinja_compare(ev, keys[i], keys[j]) == -1
                         : jinja_compare(ev, keys[j], keys[i]) == -1;
    size_t from = right ? j++ : i++;
    ti[k] = items[from];
    tk[k++] = keys[from];
  }
  for (; i < h; i++, k++) ti[k] = items[i], tk[k] = keys[i];
  for (; j < n; j++, k++) ti[k] = items[j], tk[k] = keys[j];
  memcpy(items, ti, n * sizeof *ti);
  memcpy(keys, tk, n * sizeof *tk);
}

static jinja_value_t f_sort(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"reverse", "case_sensitive", "attribute", NULL};
  jinja_value_t a[3];
  bool g[3];
  bind(ev, "sort", args, p, a, g);
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t out = jinja_list_new(ev, JV_LIST, l->len);
  jinja_value_t *keys = jinja_alloc(&ev->heap, (l->len + 1) * sizeof *keys);
  for (size_t i = 0; i < l->len; i++) {
    jinja_list_push(ev, out, l->items[i]);
    keys[i] = sort_key(ev, l->items[i], g[2] && a[2].kind != JV_NONE ? &a[2] : NULL,
                       g[1] && jinja_truthy(a[1]));
  }
  merge_sort(ev, out.list->items, keys, l->len, g[0] && jinja_truthy(a[0]));
  return out;
}

static jinja_value_t f_dictsort(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"case_sensitive", "by", "reverse", NULL};
  jinja_value_t a[3];
  bool g[3];
  bind(ev, "dictsort", args, p, a, g);
  if (v.kind == JV_UNDEFINED) jinja_undefined_fail(ev, v);
  if (v.kind != JV_DICT) jinja_fail(ev, "dictsort: expected a mapping, got %s", jinja_type_name(v));
  bool by_value = false;
  if (g[1]) {
    jinja_str_t by = want_str(ev, "dictsort", a[1]);
    if (!str_is(by, "key") && !str_is(by, "value"))
      jinja_fail(ev, "You can only sort by either \"key\" or \"value\"");
    by_value = str_is(by, "value");
  }
  jinja_value_t out = items_of(ev, v.dict);
  jinja_value_t *keys = jinja_alloc(&ev->heap, (v.dict->len + 1) * sizeof *keys);
  for (size_t i = 0; i < v.dict->len; i++)
    keys[i] = sort_key(ev, by_value ? v.dict->values[i] : v.dict->keys[i], NULL,
                       g[0] && jinja_truthy(a[0]));
  merge_sort(ev, out.list->items, keys, v.dict->len, g[2] && jinja_truthy(a[2]));
  return out;
}

static jinja_value_t f_unique(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"case_sensitive", "attribute", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "unique", args, p, a, g);
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t seen = jinja_dict_new(ev, JV_DICT), out = jinja_list_new(ev, JV_LIST, 0), unused;
  for (size_t i = 0; i < l->len; i++) {
    jinja_value_t k = sort_key(ev, l->items[i], g[1] && a[1].kind != JV_NONE ? &a[1] : NULL,
                               g[0] && jinja_truthy(a[0]));
    if (jinja_dict_get(ev, seen.dict, k, &unused)) continue;
    jinja_dict_set(ev, seen.dict, k, jinja_none());
    jinja_list_push(ev, out, l->items[i]);
  }
  return iterator_of(out);
}

static jinja_value_t min_max(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args,
                             bool want_max) {
  static const char *const p[] = {"case_sensitive", "attribute", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, want_max ? "max" : "min", args, p, a, g);
  const jinja_list_t *l = jinja_iterate(ev, v);
  if (!l->len) return jinja_undefined("No aggregated item, sequence was empty.");
  const jinja_value_t *attr = g[1] && a[1].kind != JV_NONE ? &a[1] : NULL;
  bool cs = g[0] && jinja_truthy(a[0]);
  size_t best = 0;
  jinja_value_t best_key = sort_key(ev, l->items[0], attr, cs);
  for (size_t i = 1; i < l->len; i++) {
    jinja_value_t k = sort_key(ev, l->items[i], attr, cs);
    if (jinja_compare(ev, k, best_key) == (want_max ? 1 : -1)) {
      best = i;
      best_key = k;
    }
  }
  return l->items[best];
}
static jinja_value_t f_min(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return min_max(ev, v, a, false);
}
static jinja_value_t f_max(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *a) {
  return min_max(ev, v, a, true);
}

static jinja_value_t f_sum(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  static const char *const p[] = {"attribute", "start", NULL};
  jinja_value_t a[2];
  bool g[2];
  bind(ev, "sum", args, p, a, g);
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t total = g[1] ? a[1] : jinja_int(0);
  for (size_t i = 0; i < l->len; i++)
    total = jinja_binary_op(
        ev, JT_ADD, total,
        g[0] && a[0].kind != JV_NONE ? get_path(ev, l->items[i], a[0]) : l->items[i]);
  return total;
}

static jinja_value_t f_reverse(jinja_eval_t *ev, jinja_value_t v, const jinja_args_t *args) {
  no_args(ev, "reverse", args);
  if (v.kind == JV_STRING || v.kind == JV_UNDEFINED) {
    jinja_str_t s = soft_str(ev, v);
    jinja_buf_t b = {.heap = &ev->heap};
    size_t n, *off = char_offsets(ev, s, &n);
    for (size_t i = n; i-- > 0;) jinja_buf_put(&b, s.data + off[i], off[i + 1] - off[i]);
    return make_string(&b);
  }
  bool materialized = v.kind == JV_ITERATOR; /* reversed() fails, list() then reverse() */
  const jinja_list_t *l = jinja_iterate(ev, v);
  jinja_value_t out = jinja_list_new(ev, JV_LIST, l->len);
  for (size_t i = l->len; i-- > 0;) jinja_list_push(ev, out, l->items[i]);
  return materialized ? out : iterator_of(out);
}

static const struct {
  const char *name;
  filter_fn fn;
} filters[] = {
    {"default", f_default},
    {"d", f_default},
    {"length", f_length},
    {"count", f_length},
    {"trim", f_trim},
    {"upper", f_upper},
    {"lower", f_lower},
    {"capitalize", f_capitalize},
    {"title", f_title},
    {"replace", f_replace},
    {"first", f_first},
    {"last", f_last},
    {"list", f_list},
    {"join", f_join},
    {"string", f_string},
    {"int", f_int},
    {"float", f_float},
    {"abs", f_abs},
    {"round", f_round},
    {"items", f_items},
    {"tojson", f_tojson},
    {"indent", f_indent},
    {"safe", f_safe},
    {"escape", f_escape},
    {"e", f_escape},
    {"format", f_format},
    {"attr", f_attr},
    {"select", f_select},
    {"reject", f_reject},
    {"selectattr", f_selectattr},
    {"rejectattr", f_rejectattr},
    {"map", f_map},
    {"sort", f_sort},
    {"dictsort", f_dictsort},
    {"unique", f_unique},
    {"min", f_min},
    {"max", f_max},
    {"sum", f_sum},
    {"reverse", f_reverse},
};

int jinja_filter_lookup(jinja_str_t name) {
  for (size_t i = 0; i < sizeof filters / sizeof filters[0]; i++)
    if (str_is(name, filters[i].name)) return (int)i;
  return -1;
}

jinja_value_t jinja_apply_filter(jinja_eval_t *ev, int id, jinja_value_t input,
                                 const jinja_args_t *args) {
  return filters[id].fn(ev, input, args);
}
