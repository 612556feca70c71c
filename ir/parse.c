/* parse.c — reads the IR text form (docs/ir.md) back into a module.
 *
 * A hand-written recursive-descent parser over characters: the grammar is
 * line-based and small enough that a separate lexer would only add code.
 * Every reader skips blanks, remembers where its token starts (for error
 * messages) and returns false after recording the first error; parsing
 * stops there and the message names file:line:col (line and column are
 * computed only when an error happens). Nothing is built until a line has
 * been read completely, so a failed parse leaves no half-made node behind,
 * and no input, however broken, makes the parser read out of bounds or
 * allocate more than the text's size warrants.
 *
 * %N numbers are mapped to fresh node indices as nodes are defined, so the
 * input may have gaps (a dump of an uncompacted module) and a value must be
 * defined before it is used. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ir.h"
#include "support/hex.h"

#define WORD_MAX 128 /* longest keyword, op, dtype, dim or number */

/* %N → node index; open addressing, key 0 means empty (%0 is not a value). */
typedef struct {
  uint32_t *keys, *vals;
  uint32_t cap, n;
} value_map_t;

typedef struct {
  const char *text, *filename;
  const char *p;   /* next character */
  const char *tok; /* start of the token being read, for messages */
  llmc_ir_module_t *m;
  value_map_t values;
  llmc_status_t err;
} parser_t;

/* One attribute as read, before the node that owns it exists. */
typedef struct {
  char *key;
  llmc_ir_attr_kind_t kind;
  int64_t i;
  double f;
  char *s;
} parsed_attr_t;

static bool fail(parser_t *ps, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Records an error at ps->tok (the first error wins) and returns false. */
static bool fail(parser_t *ps, const char *fmt, ...) {
  if (ps->err) return false;
  int line = 1;
  const char *line_start = ps->text;
  for (const char *q = ps->text; q < ps->tok; q++)
    if (*q == '\n') line++, line_start = q + 1;
  char msg[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  ps->err = LLMC_ERROR(INVALID_ARGUMENT, "%s:%d:%d: %s", ps->filename, line,
                       (int)(ps->tok - line_start) + 1, msg);
  return false;
}

/* ---- the %N map ---- */

static uint32_t *map_slot(const value_map_t *vm, uint32_t key) {
  uint32_t i = (key * 2654435761u) & (vm->cap - 1);
  while (vm->keys[i] && vm->keys[i] != key) i = (i + 1) & (vm->cap - 1);
  return &vm->keys[i];
}

/* Index that %key was mapped to, or 0. */
static uint32_t map_get(const value_map_t *vm, uint32_t key) {
  if (!vm->cap) return 0;
  uint32_t *k = map_slot(vm, key);
  return *k ? vm->vals[k - vm->keys] : 0;
}

static void map_insert(value_map_t *vm, uint32_t key, uint32_t val) {
  uint32_t *k = map_slot(vm, key);
  *k = key;
  vm->vals[k - vm->keys] = val;
}

/* Maps %key to val (key not yet present), growing the table at half full. */
static bool map_put(parser_t *ps, uint32_t key, uint32_t val) {
  value_map_t *vm = &ps->values;
  if (2 * (vm->n + 1) > vm->cap) {
    uint32_t cap = vm->cap ? 2 * vm->cap : 64;
    value_map_t bigger = {calloc(cap, sizeof(uint32_t)), calloc(cap, sizeof(uint32_t)), cap, vm->n};
    if (!bigger.keys || !bigger.vals) {
      free(bigger.keys);
      free(bigger.vals);
      ps->err = LLMC_ERROR(OUT_OF_MEMORY, "%s: out of memory", ps->filename);
      return false;
    }
    for (uint32_t i = 0; i < vm->cap; i++)
      if (vm->keys[i]) map_insert(&bigger, vm->keys[i], vm->vals[i]);
    free(vm->keys);
    free(vm->vals);
    *vm = bigger;
  }
  map_insert(vm, key, val);
  vm->n++;
  return true;
}

/* ---- characters and tokens ---- */

static bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '.' || c == '-';
}

/* Words also hold numbers such as 1e+30. */
static bool is_word_char(char c) { return is_name_char(c) || c == '+'; }

static void skip_blanks(parser_t *ps) {
  while (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\r') ps->p++;
  ps->tok = ps->p;
}

/* Consumes c if it comes next. */
static bool accept(parser_t *ps, char c) {
  skip_blanks(ps);
  if (*ps->p != c) return false;
  ps->p++;
  return true;
}

static bool expect(parser_t *ps, char c, const char *context) {
  if (accept(ps, c)) return true;
  return fail(ps, "expected '%c' %s", c, context);
}

/* Reads a run of word characters into buf; `what` names it in messages. */
static bool read_word(parser_t *ps, char buf[WORD_MAX], const char *what) {
  skip_blanks(ps);
  size_t n = 0;
  while (is_word_char(ps->p[n])) n++;
  if (!n) return fail(ps, "expected %s", what);
  if (n >= WORD_MAX) return fail(ps, "%s too long", what);
  memcpy(buf, ps->p, n);
  buf[n] = '\0';
  ps->p += n;
  return true;
}

/* Reads `keyword`, which must come next. */
static bool expect_keyword(parser_t *ps, const char *keyword) {
  char word[WORD_MAX];
  if (!read_word(ps, word, keyword)) return false;
  if (strcmp(word, keyword)) return fail(ps, "expected '%s', got '%s'", keyword, word);
  return true;
}

/* Reads the 4 hex digits of a \u escape at ps->p. */
static bool read_hex4(parser_t *ps, uint32_t *out) {
  *out = 0;
  for (int i = 0; i < 4; i++) {
    int d = llmc_hex_digit(ps->p[i]);
    if (d < 0) return fail(ps, "bad \\u escape");
    *out = *out << 4 | (uint32_t)d;
  }
  ps->p += 4;
  return true;
}

static char *put_utf8(char *o, uint32_t c) {
  if (c < 0x80) {
    *o++ = (char)c;
  } else if (c < 0x800) {
    *o++ = (char)(0xc0 | c >> 6);
    *o++ = (char)(0x80 | (c & 0x3f));
  } else if (c < 0x10000) {
    *o++ = (char)(0xe0 | c >> 12);
    *o++ = (char)(0x80 | (c >> 6 & 0x3f));
    *o++ = (char)(0x80 | (c & 0x3f));
  } else {
    *o++ = (char)(0xf0 | c >> 18);
    *o++ = (char)(0x80 | (c >> 12 & 0x3f));
    *o++ = (char)(0x80 | (c >> 6 & 0x3f));
    *o++ = (char)(0x80 | (c & 0x3f));
  }
  return o;
}

/* Decodes one escape after the backslash at ps->p into o; returns the new
 * end of o, or NULL on error. A \u escape never takes more bytes than its
 * text, so the output fits in a buffer as long as the quoted string. */
static char *read_escape(parser_t *ps, char *o) {
  ps->tok = ps->p++;
  char c = *ps->p++;
  switch (c) {
  case '"':
  case '\\':
  case '/': *o++ = c; return o;
  case 'n': *o++ = '\n'; return o;
  case 't': *o++ = '\t'; return o;
  case 'r': *o++ = '\r'; return o;
  case 'b': *o++ = '\b'; return o;
  case 'f': *o++ = '\f'; return o;
  case 'u': break;
  default: fail(ps, "bad escape in string"); return NULL;
  }
  uint32_t cp;
  if (!read_hex4(ps, &cp)) return NULL;
  if (cp >= 0xd800 && cp < 0xdc00) { /* a high surrogate: the low half must follow */
    uint32_t lo = 0;
    if (ps->p[0] == '\\' && ps->p[1] == 'u') {
      ps->p += 2;
      if (!read_hex4(ps, &lo)) return NULL;
    }
    if (lo < 0xdc00 || lo >= 0xe000) {
      fail(ps, "unpaired surrogate in string");
      return NULL;
    }
    cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
  } else if (cp >= 0xdc00 && cp < 0xe000) {
    fail(ps, "unpaired surrogate in string");
    return NULL;
  } else if (!cp) {
    fail(ps, "\\u0000 is not allowed in strings");
    return NULL;
  }
  return put_utf8(o, cp);
}

/* Reads a double-quoted string with JSON escapes into the module's arena. */
static bool read_string(parser_t *ps, char **out) {
  skip_blanks(ps);
  const char *start = ps->p;
  if (*ps->p != '"') return fail(ps, "expected a string");
  size_t len = 1;
  while (start[len] && start[len] != '"' && start[len] != '\n')
    len += start[len] == '\\' && start[len + 1] && start[len + 1] != '\n' ? 2 : 1;
  if (start[len] != '"') return fail(ps, "unterminated string");
  char *o = *out = llmc_arena_alloc(ps->m->arena, len);
  ps->p++;
  while (*ps->p != '"') {
    if (*ps->p == '\\') {
      if (!(o = read_escape(ps, o))) return false;
    } else {
      *o++ = *ps->p++;
    }
  }
  ps->p++;
  *o = '\0';
  return true;
}

/* A tensor name or attribute key: a bare run of name characters or a
 * quoted string. */
static bool read_key(parser_t *ps, char **out, const char *what) {
  skip_blanks(ps);
  if (*ps->p == '"') return read_string(ps, out);
  size_t n = 0;
  while (is_name_char(ps->p[n])) n++;
  if (!n) return fail(ps, "expected %s", what);
  *out = llmc_arena_alloc(ps->m->arena, n + 1);
  memcpy(*out, ps->p, n);
  ps->p += n;
  return true;
}

/* Reads @name and looks it up in the weight table. */
static bool read_weight_ref(parser_t *ps, uint32_t *out) {
  char *name;
  if (!expect(ps, '@', "before a tensor name")) return false;
  const char *at = ps->tok;
  if (!read_key(ps, &name, "a tensor name")) return false;
  int64_t w = llmc_ir_find_weight(ps->m, name);
  ps->tok = at;
  if (w < 0) return fail(ps, "unknown tensor @%s", name);
  *out = (uint32_t)w;
  return true;
}

/* Reads a decimal integer in [lo, hi]. */
static bool read_int(parser_t *ps, int64_t lo, int64_t hi, int64_t *out, const char *what) {
  char word[WORD_MAX], *end;
  if (!read_word(ps, word, what)) return false;
  errno = 0;
  long long x = strtoll(word, &end, 10);
  if (*end || !(word[0] == '-' || (word[0] >= '0' && word[0] <= '9')))
    return fail(ps, "expected %s, got '%s'", what, word);
  if (errno == ERANGE || x < lo || x > hi) return fail(ps, "%s out of range: %s", what, word);
  *out = x;
  return true;
}

/* Reads an attribute value: a string, an integer, or a float (a number
 * with '.', an exponent, inf or nan). */
static bool read_attr_value(parser_t *ps, parsed_attr_t *a) {
  skip_blanks(ps);
  if (*ps->p == '"') {
    a->kind = LLMC_ATTR_STRING;
    return read_string(ps, &a->s);
  }
  const char *start = ps->p;
  char word[WORD_MAX], *end;
  if (!read_word(ps, word, "an attribute value")) return false;
  if (!strpbrk(word, ".eEiInN")) {
    ps->p = start;
    a->kind = LLMC_ATTR_INT;
    return read_int(ps, INT64_MIN, INT64_MAX, &a->i, "an integer");
  }
  a->kind = LLMC_ATTR_FLOAT;
  a->f = strtod(word, &end);
  if (*end || end == word) return fail(ps, "bad number '%s'", word);
  return true;
}

/* Reads "{key=value, ...}" if it comes next. */
static bool read_attrs(parser_t *ps, parsed_attr_t *attrs, int *n_attrs) {
  *n_attrs = 0;
  if (!accept(ps, '{')) return true;
  if (accept(ps, '}')) return true;
  do {
    parsed_attr_t *a = &attrs[*n_attrs];
    if (!read_key(ps, &a->key, "an attribute name")) return false;
    for (int i = 0; i < *n_attrs; i++)
      if (!strcmp(attrs[i].key, a->key)) return fail(ps, "attribute '%s' given twice", a->key);
    if (*n_attrs == LLMC_IR_MAX_ATTRS)
      return fail(ps, "more than %d attributes", LLMC_IR_MAX_ATTRS);
    if (!expect(ps, '=', "after the attribute name") || !read_attr_value(ps, a)) return false;
    ++*n_attrs;
  } while (accept(ps, ','));
  return expect(ps, '}', "to close the attributes");
}

/* Reads "dtype[dims]", "dtype?" or "dtype" (unknown shape); "none" has no
 * shape. */
static bool read_type(parser_t *ps, llmc_dtype_t *dtype, llmc_ir_shape_t *shape) {
  char word[WORD_MAX];
  shape->rank = -1;
  if (!read_word(ps, word, "a dtype")) return false;
  *dtype = llmc_dtype_from_name(word);
  if (*dtype == LLMC_DTYPE_COUNT) return fail(ps, "unknown dtype '%s'", word);
  if (*dtype == LLMC_DTYPE_NONE || accept(ps, '?') || !accept(ps, '[')) return true;
  shape->rank = 0;
  if (accept(ps, ']')) return true;
  do {
    skip_blanks(ps);
    if (shape->rank == LLMC_IR_MAX_DIMS) return fail(ps, "more than %d dims", LLMC_IR_MAX_DIMS);
    int64_t *d = &shape->dims[shape->rank++];
    if (*ps->p == 'T' || *ps->p == 'L') {
      *d = *ps->p == 'T' ? LLMC_DIM_T : LLMC_DIM_L;
      ps->p++;
    } else if (!read_int(ps, 1, INT32_MAX, d, "a dim (T, L or a positive integer)")) {
      return false;
    }
  } while (accept(ps, ','));
  return expect(ps, ']', "to close the shape");
}

/* Ends a line: blanks, an optional comment, then a newline or the end of
 * the text. On a node line (region != NULL) a comment "; region R" sets
 * the node's region. */
static bool end_line(parser_t *ps, int32_t *region) {
  if (accept(ps, ';')) {
    skip_blanks(ps);
    if (region && !strncmp(ps->p, "region", 6) && (ps->p[6] == ' ' || ps->p[6] == '\t')) {
      int64_t r;
      ps->p += 6;
      if (!read_int(ps, 0, INT32_MAX, &r, "a region number")) return false;
      *region = (int32_t)r;
      skip_blanks(ps);
    } else {
      while (*ps->p && *ps->p != '\n') ps->p++;
    }
  }
  skip_blanks(ps);
  if (*ps->p == '\n')
    ps->p++;
  else if (*ps->p >= 0x20 && *ps->p < 0x7f)
    return fail(ps, "unexpected '%c'", *ps->p);
  else if (*ps->p)
    return fail(ps, "unexpected byte 0x%02x", (unsigned char)*ps->p);
  return true;
}

/* Fails unless n arguments suit op (ops.def's min and max). */
static bool check_arity(parser_t *ps, llmc_ir_op_t op, int n) {
  int lo = llmc_ir_op_min_args(op), hi = llmc_ir_op_max_args(op);
  if (n >= lo && n <= hi) return true;
  if (lo == hi)
    return fail(ps, "%s takes %d argument%s, got %d", llmc_ir_op_name(op), lo, lo == 1 ? "" : "s",
                n);
  return fail(ps, "%s takes %d to %d arguments, got %d", llmc_ir_op_name(op), lo, hi, n);
}

/* ---- lines ---- */

/* module "arch" */
static bool parse_module_line(parser_t *ps) {
  char *arch;
  if (ps->m->arch) return fail(ps, "second module line");
  if (!read_string(ps, &arch) || !end_line(ps, NULL)) return false;
  ps->m->arch = arch;
  return true;
}

/* meta JSON — the JSON runs to the end of the line; no comment allowed. */
static bool parse_meta_line(parser_t *ps) {
  if (ps->m->meta_json) return fail(ps, "second meta line");
  skip_blanks(ps);
  size_t n = strcspn(ps->p, "\n");
  while (n && strchr(" \t\r", ps->p[n - 1])) n--;
  const char *end = NULL;
  cJSON *json = cJSON_ParseWithLengthOpts(ps->p, n, &end, false);
  bool ok = json && end == ps->p + n;
  cJSON_Delete(json);
  if (!ok) {
    ps->tok = end && end >= ps->p && end <= ps->p + n ? end : ps->p;
    return fail(ps, "meta: invalid JSON");
  }
  char *copy = llmc_arena_alloc(ps->m->arena, n + 1);
  memcpy(copy, ps->p, n);
  ps->m->meta_json = copy;
  ps->p += n;
  return end_line(ps, NULL);
}

/* "data [v, ...]": exactly numel f32 values. */
static bool parse_data(parser_t *ps, llmc_ir_weight_t *w) {
  int64_t numel = llmc_shape_numel(&w->shape);
  if (numel < 0) return fail(ps, "a data tensor needs a constant shape");
  if (!expect(ps, '[', "before the data values")) return false;
  /* numel values take at least 2*numel-1 bytes: checking that first keeps
   * a huge shape in a short text from allocating anything. */
  if (strnlen(ps->p, (size_t)numel * 2) < (size_t)numel * 2 - 1)
    return fail(ps, "fewer values than the shape's %lld", (long long)numel);
  w->data = llmc_arena_alloc(ps->m->arena, (size_t)numel * sizeof(float));
  int64_t n = 0;
  do {
    char word[WORD_MAX], *end;
    if (!read_word(ps, word, "a number")) return false;
    if (n == numel) return fail(ps, "more values than the shape's %lld", (long long)numel);
    w->data[n++] = strtof(word, &end);
    if (*end) return fail(ps, "bad number '%s'", word);
  } while (accept(ps, ','));
  if (!expect(ps, ']', "after the data values")) return false;
  if (n != numel)
    return fail(ps, "%lld values for a shape of %lld", (long long)n, (long long)numel);
  return true;
}

/* "op(@a, @b, ...) [{value=x}]": a tensor derived from earlier tensors. */
static bool parse_derived(parser_t *ps, llmc_ir_weight_t *w, const char *op_name) {
  w->op = llmc_ir_op_from_name(op_name);
  bool scalar = w->op == LLMC_OP_ADD_SCALAR || w->op == LLMC_OP_MUL_SCALAR;
  if (!scalar && w->op != LLMC_OP_CONCAT)
    return fail(ps, "expected file, data, concat, add_scalar or mul_scalar, got '%s'", op_name);
  if (!expect(ps, '(', "after the op")) return false;
  do {
    if (w->n_args == LLMC_IR_MAX_ARGS) return fail(ps, "more than %d arguments", LLMC_IR_MAX_ARGS);
    if (!read_weight_ref(ps, &w->args[w->n_args++])) return false;
  } while (accept(ps, ','));
  if (!expect(ps, ')', "after the arguments") || !check_arity(ps, w->op, w->n_args)) return false;
  parsed_attr_t attrs[LLMC_IR_MAX_ATTRS];
  int n_attrs;
  if (!read_attrs(ps, attrs, &n_attrs)) return false;
  bool has_value =
      n_attrs == 1 && !strcmp(attrs[0].key, "value") && attrs[0].kind != LLMC_ATTR_STRING;
  if (scalar != has_value || n_attrs > 1)
    return fail(ps, scalar ? "%s needs {value=number} and nothing else" : "%s takes no attributes",
                op_name);
  if (scalar) w->value = attrs[0].kind == LLMC_ATTR_INT ? (double)attrs[0].i : attrs[0].f;
  return true;
}

/* tensor @name : type = file "path" offset N | data [...] | op(@a, ...) */
static bool parse_tensor_line(parser_t *ps) {
  char *name, word[WORD_MAX];
  llmc_ir_weight_t w = {.kind = LLMC_WEIGHT_FILE};
  if (!expect(ps, '@', "before the tensor name")) return false;
  const char *at = ps->tok;
  if (!read_key(ps, &name, "a tensor name")) return false;
  if (llmc_ir_find_weight(ps->m, name) >= 0) {
    ps->tok = at;
    return fail(ps, "tensor @%s defined twice", name);
  }
  if (!expect(ps, ':', "after the tensor name") || !read_type(ps, &w.dtype, &w.shape) ||
      !expect(ps, '=', "after the tensor type") || !read_word(ps, word, "the tensor's source"))
    return false;
  if (!strcmp(word, "file")) {
    char *file;
    int64_t offset;
    if (!read_string(ps, &file) || !expect_keyword(ps, "offset") ||
        !read_int(ps, 0, INT64_MAX, &offset, "an offset"))
      return false;
    w.file = file;
    w.offset = (uint64_t)offset;
  } else if (!strcmp(word, "data")) {
    w.kind = LLMC_WEIGHT_DATA;
    if (!parse_data(ps, &w)) return false;
  } else {
    w.kind = LLMC_WEIGHT_DERIVED;
    if (!parse_derived(ps, &w, word)) return false;
  }
  if (!end_line(ps, NULL)) return false;
  uint32_t i = llmc_ir_add_weight(ps->m, name, w.dtype, w.shape);
  w.name = ps->m->weights[i].name;
  ps->m->weights[i] = w;
  return true;
}

/* Reads %N; a use (define=false) must name a defined value. */
static bool read_value(parser_t *ps, bool define, uint32_t *number, uint32_t *index) {
  int64_t x;
  if (!expect(ps, '%', define ? "at the start of a node" : "before an argument")) return false;
  const char *at = ps->tok;
  if (!read_int(ps, 1, UINT32_MAX, &x, "a value number")) return false;
  ps->tok = at;
  *number = (uint32_t)x;
  *index = map_get(&ps->values, *number);
  if (define && *index) return fail(ps, "%%%u defined twice", *number);
  if (!define && !*index) return fail(ps, "undefined value %%%u", *number);
  return true;
}

/* %N = op [@tensor | %a, %b, ...] [{attrs}] [: type] [; region R] */
static bool parse_node_line(parser_t *ps) {
  uint32_t number, index, weight = 0;
  llmc_ir_value_t args[LLMC_IR_MAX_ARGS];
  parsed_attr_t attrs[LLMC_IR_MAX_ATTRS];
  int n_args = 0, n_attrs = 0;
  char word[WORD_MAX];
  llmc_dtype_t dtype = LLMC_DTYPE_NONE;
  llmc_ir_shape_t shape = {.rank = -1};
  int32_t region = -1;

  if (!read_value(ps, true, &number, &index) || !expect(ps, '=', "after the value")) return false;
  if (!read_word(ps, word, "an op")) return false;
  const char *op_at = ps->tok;
  llmc_ir_op_t op = llmc_ir_op_from_name(word);
  if (op == LLMC_OP_COUNT) return fail(ps, "unknown op '%s'", word);
  if (op == LLMC_OP_WEIGHT) {
    if (!read_weight_ref(ps, &weight)) return false;
  } else {
    skip_blanks(ps);
    if (*ps->p == '@') return fail(ps, "only weight takes a tensor: use %%N = weight @name");
    if (*ps->p == '%') {
      do {
        uint32_t arg_number;
        if (n_args == LLMC_IR_MAX_ARGS) return fail(ps, "more than %d arguments", LLMC_IR_MAX_ARGS);
        if (!read_value(ps, false, &arg_number, &args[n_args++])) return false;
      } while (accept(ps, ','));
    }
  }
  ps->tok = op_at;
  if (!check_arity(ps, op, n_args) || !read_attrs(ps, attrs, &n_attrs)) return false;
  if (accept(ps, ':') && !read_type(ps, &dtype, &shape)) return false;
  if (!end_line(ps, &region)) return false;

  llmc_ir_module_t *m = ps->m;
  llmc_ir_value_t v = llmc_ir_add_node(m, op, n_args, args);
  if (!map_put(ps, number, v)) return false;
  llmc_ir_node_t *n = &m->nodes[v];
  n->dtype = dtype;
  n->shape = shape;
  n->weight = weight;
  n->region = region;
  if (region >= m->n_regions) m->n_regions = region + 1;
  for (int i = 0; i < n_attrs; i++) {
    const parsed_attr_t *a = &attrs[i];
    switch (a->kind) {
    case LLMC_ATTR_INT: llmc_ir_set_int(m, v, a->key, a->i); break;
    case LLMC_ATTR_FLOAT: llmc_ir_set_float(m, v, a->key, a->f); break;
    case LLMC_ATTR_STRING: llmc_ir_set_string(m, v, a->key, a->s); break;
    }
  }
  return true;
}

static bool parse_line(parser_t *ps) {
  char word[WORD_MAX];
  skip_blanks(ps);
  if (*ps->p == '%') return parse_node_line(ps);
  if (*ps->p == ';' || *ps->p == '\n') return end_line(ps, NULL);
  if (!read_word(ps, word, "module, meta, tensor or a %N node")) return false;
  if (!strcmp(word, "module")) return parse_module_line(ps);
  if (!strcmp(word, "meta")) return parse_meta_line(ps);
  if (!strcmp(word, "tensor")) return parse_tensor_line(ps);
  return fail(ps, "expected module, meta, tensor or a %%N node, got '%s'", word);
}

/* Parses `text` (NUL-terminated) into a new module. On success returns the
 * module and sets *out_status to OK; on the first error returns NULL with
 * *out_status = "FILENAME:LINE:COL: message" (filename NULL reads as
 * "<input>"). out_status may be NULL to drop the message. */
llmc_ir_module_t *llmc_ir_parse(const char *text, const char *filename, llmc_status_t *out_status) {
  parser_t ps = {.text = text, .p = text, .tok = text, .filename = filename ? filename : "<input>"};
  ps.m = llmc_ir_module_create();
  if (!ps.m) ps.err = LLMC_ERROR(OUT_OF_MEMORY, "%s: out of memory", ps.filename);
  while (!ps.err && *ps.p) parse_line(&ps);
  free(ps.values.keys);
  free(ps.values.vals);
  if (ps.err) {
    llmc_ir_module_destroy(ps.m);
    ps.m = NULL;
  }
  if (out_status)
    *out_status = ps.err;
  else
    llmc_status_free(ps.err);
  return ps.m;
}
