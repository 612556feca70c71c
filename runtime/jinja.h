/* jinja.h — the Jinja2 interpreter behind chat templates (internal).
 *
 * Chat templates are Jinja2 programs, and a prompt that differs from the one
 * Hugging Face's apply_chat_template renders by a single byte changes what the
 * model sees. So this is not "a template engine": it is jinja2 3.1 under
 * Hugging Face's settings (trim_blocks, lstrip_blocks, no trailing newline,
 * ImmutableSandboxedEnvironment, loopcontrols, raise_exception, its tojson),
 * re-implemented construct by construct, with Python's semantics for the
 * values (str(), repr(), json.dumps, slicing, truthiness, comparisons).
 * Whatever it does not implement is an error naming the construct and its
 * line:column, never a guess.
 *
 * The pipeline, one file each:
 *   jinja_text.c     UTF-8, Python's whitespace and case tables, float repr,
 *                    string buffers, the budgeted allocator, error unwinding
 *   jinja_lex.c      template text -> tokens (whitespace control lives here)
 *   jinja_parse.c    tokens -> AST (jinja2's grammar, precedence for precedence)
 *   jinja_value.c    the value type: Python's str/repr/json/==/</truthiness
 *   jinja_builtins.c filters, tests, str/dict methods, global functions
 *   jinja_eval.c     the tree-walking evaluator: scopes, loops, macros, calls
 *
 * Errors unwind with longjmp to the entry point that set the trap (as Lua
 * does): nearly every step of a tree walk can fail, and threading a status
 * through each of them would bury the semantics. Everything allocated before
 * the jump lives in an arena that the entry point frees, so nothing leaks.
 * The public boundary (chat_template.h) speaks llmc_status_t. */
#ifndef LLMC_JINJA_H
#define LLMC_JINJA_H

#include <cjson/cJSON.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support/arena.h"
#include "support/status.h"

/* ---- errors and memory (jinja_text.c) ---- */

/* Where errors unwind to. `status` holds the error after the jump; `raised`
 * is true when it came from the template's raise_exception(). */
typedef struct {
  jmp_buf jmp;
  llmc_status_t status;
  bool raised;
} jinja_trap_t;

/* Builds "LINE:COL: message" (just "message" when line is 0) into
 * trap->status and jumps to the trap. */
_Noreturn void jinja_throw(jinja_trap_t *trap, int line, int col, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* An arena with a byte budget: templates are programs, and a program can ask
 * for unbounded memory ('x' * 10**9, quadratic string building). Going over
 * the budget throws instead of exhausting the process. */
typedef struct {
  llmc_arena_t *arena;
  size_t used, limit; /* bytes handed out so far; the most allowed */
  jinja_trap_t *trap;
} jinja_heap_t;

/* Zeroed memory from the heap; throws when the budget is spent. */
void *jinja_alloc(jinja_heap_t *h, size_t size);

/* ---- text (jinja_text.c) ---- */

/* A run of UTF-8 bytes, not NUL-terminated, owned by an arena. */
typedef struct {
  const char *data;
  size_t len;
} jinja_str_t;

/* A growable byte buffer in a heap (output, string building). */
typedef struct {
  jinja_heap_t *heap;
  char *data;
  size_t len, cap;
} jinja_buf_t;

void jinja_buf_put(jinja_buf_t *b, const char *data, size_t len);
void jinja_buf_puts(jinja_buf_t *b, const char *s);
void jinja_buf_putc(jinja_buf_t *b, char c);
/* Appends code point cp as UTF-8. */
void jinja_buf_put_cp(jinja_buf_t *b, uint32_t cp);
void jinja_buf_printf(jinja_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The buffer's bytes as a string (the buffer may go on growing elsewhere). */
jinja_str_t jinja_buf_str(const jinja_buf_t *b);

/* Decodes the code point at s[0..len) (len >= 1) and stores its byte length
 * in *adv. A byte that does not start valid UTF-8 decodes as one unit,
 * 0xDC00 + byte (Python's surrogateescape), so nothing is ever lost. */
uint32_t jinja_utf8_decode(const char *s, size_t len, size_t *adv);
/* Code points in s. */
size_t jinja_utf8_count(jinja_str_t s);
/* Python's str.isspace(). */
bool jinja_is_space(uint32_t cp);
/* Python's str.splitlines() boundaries (\n \r \v \f \x1c-\x1e \x85 \u2028 \u2029). */
bool jinja_is_linebreak(uint32_t cp);
/* Case mapping and classes for ASCII, Latin-1, Latin Extended-A, Greek and
 * Cyrillic; other scripts are treated as uncased (docs/chat-templates.md). */
uint32_t jinja_to_upper(uint32_t cp);
uint32_t jinja_to_lower(uint32_t cp);
bool jinja_is_alpha(uint32_t cp);
bool jinja_is_digit(uint32_t cp);

/* Python's repr(float) ("1.0", "0.1", "1e+16", "inf", "nan") into buf. */
void jinja_format_float(double v, char buf[32]);

/* ---- tokens (jinja_lex.c) ---- */

typedef enum {
  JT_EOF,
  JT_TEXT,        /* template data between tags, whitespace control applied */
  JT_VAR_BEGIN,   /* {{ */
  JT_VAR_END,     /* }} */
  JT_BLOCK_BEGIN, /* {% */
  JT_BLOCK_END,   /* %} */
  JT_NAME,        /* identifier (keywords too: the parser tells them apart) */
  JT_STRING,      /* string literal, escapes decoded */
  JT_INT,
  JT_FLOAT,
  JT_ADD,
  JT_SUB,
  JT_MUL,
  JT_DIV,
  JT_FLOORDIV,
  JT_MOD,
  JT_POW,
  JT_TILDE,
  JT_LBRACKET,
  JT_RBRACKET,
  JT_LPAREN,
  JT_RPAREN,
  JT_LBRACE,
  JT_RBRACE,
  JT_EQ,
  JT_NE,
  JT_GT,
  JT_GE,
  JT_LT,
  JT_LE,
  JT_ASSIGN,
  JT_DOT,
  JT_COLON,
  JT_PIPE,
  JT_COMMA,
  JT_SEMICOLON,
  JT_COUNT
} jinja_token_kind_t;

typedef struct {
  jinja_token_kind_t kind;
  int line, col;    /* 1-based; col counts code points */
  jinja_str_t text; /* TEXT, NAME, STRING: the (decoded) text */
  int64_t ival;     /* INT */
  double fval;      /* FLOAT */
} jinja_token_t;

/* Tokenizes a whole template (newlines normalized, one trailing newline
 * dropped, as jinja2 does) into *out_tokens, ending with JT_EOF. Throws on
 * lexical errors. */
void jinja_lex(jinja_heap_t *h, const char *src, size_t len, jinja_token_t **out_tokens,
               size_t *out_count);

/* A short description of a token kind for messages ("'}}'", "end of template"). */
const char *jinja_token_name(jinja_token_kind_t kind);

/* ---- values (jinja_value.c) ---- */

typedef enum {
  JV_UNDEFINED, /* a missing variable/attribute: '' when printed, falsy */
  JV_NONE,
  JV_BOOL,
  JV_INT, /* Python int, limited to 64 bits (overflow is an error) */
  JV_FLOAT,
  JV_STRING,
  JV_LIST,
  JV_TUPLE,     /* shares the list payload */
  JV_ITERATOR,  /* a generator (map, select, reverse...): single pass */
  JV_DICT,      /* insertion-ordered */
  JV_NAMESPACE, /* namespace(): a dict whose attributes `set ns.x` may change */
  JV_LOOP,      /* the `loop` variable of a for loop */
  JV_MACRO,
  JV_FUNCTION, /* a global function: range, namespace, raise_exception... */
  JV_METHOD,   /* a bound method ('abc'.upper, loop.cycle) not yet called */
  JV_KIND_COUNT
} jinja_kind_t;

typedef struct jinja_list jinja_list_t;
typedef struct jinja_dict jinja_dict_t;
typedef struct jinja_loop jinja_loop_t;
typedef struct jinja_macro jinja_macro_t;
typedef struct jinja_method jinja_method_t;

typedef struct {
  jinja_kind_t kind;
  union {
    bool b;
    int64_t i;
    double f;
    jinja_str_t s;
    jinja_list_t *list; /* LIST, TUPLE, ITERATOR */
    jinja_dict_t *dict; /* DICT, NAMESPACE */
    jinja_loop_t *loop;
    jinja_macro_t *macro;
    jinja_method_t *method;
    int function;     /* FUNCTION: a jinja_function_t */
    const char *hint; /* UNDEFINED: the error to raise if it is used, or NULL */
  };
} jinja_value_t;

/* Dict views (d.items(), d.keys(), d.values()) are lists that print, and
 * refuse indexing and JSON, as Python's dict_items etc. do.
 *
 * Lists and dicts record how deeply lists, tuples and dicts nest inside
 * them (namespaces, the only mutable values, count as flat: ==, ordering
 * and hashing treat them by identity), so that the recursive operations
 * are bounded; building past JINJA_MAX_NESTING is an error. */
enum { JINJA_MAX_NESTING = 1024 };
typedef enum { JINJA_VIEW_NONE, JINJA_VIEW_ITEMS, JINJA_VIEW_KEYS, JINJA_VIEW_VALUES } jinja_view_t;

struct jinja_list {
  jinja_value_t *items;
  size_t len, cap;
  size_t pos;        /* ITERATOR: items already consumed */
  jinja_view_t view; /* LIST: a dict view, or NONE */
  uint32_t depth;    /* nesting: 1 + the deepest item's */
};

struct jinja_dict {
  jinja_value_t *keys, *values;
  size_t len, cap;
  uint32_t *index;  /* open-addressed hash of entry + 1 (0: empty), once len > 8 */
  size_t index_cap; /* a power of two, or 0 */
  uint32_t depth;   /* nesting: 1 + the deepest key's or value's */
};

struct jinja_loop {
  const jinja_list_t *items; /* what is iterated (after the loop's `if`) */
  size_t index0;
};

struct jinja_macro {
  const struct jinja_node *node; /* JN_MACRO */
  struct jinja_scope *scope;     /* where it was defined: what its body sees */
};

struct jinja_method {
  jinja_value_t self;
  jinja_str_t name;
};

/* ---- AST (jinja_parse.c) ---- */

typedef enum {
  /* statements */
  JN_TEXT,         /* text: literal data */
  JN_OUTPUT,       /* a: the expression of {{ }} (or {% print %}) */
  JN_IF,           /* a: test, body: then, body2: else (elif chains nest in body2) */
  JN_FOR,          /* names: targets, a: iterable, b: filter (`if`) or NULL, body, body2: else */
  JN_SET,          /* names: targets, a: value */
  JN_SET_ATTR,     /* name: namespace variable, text: attribute, a: value */
  JN_SET_BLOCK,    /* name: target, body: captured, b: filter chain or NULL */
  JN_FILTER_BLOCK, /* body: rendered, b: filter chain */
  JN_MACRO,        /* name, names: parameters, items: defaults (last n_items params), body */
  JN_BREAK,
  JN_CONTINUE,
  /* expressions */
  JN_CONST,   /* value: none, bool, int, float or string */
  JN_NAME,    /* name */
  JN_LIST,    /* items */
  JN_TUPLE,   /* items */
  JN_DICT,    /* items: key, value, key, value... */
  JN_GETATTR, /* a: object, name: attribute */
  JN_GETITEM, /* a: object, b: key */
  JN_SLICE,   /* a: object, items[0..2]: start, stop, step (each may be NULL) */
  JN_CALL,    /* a: callee, items: positional args, names + items after them: keywords */
  JN_FILTER,  /* a: operand (NULL: a block's output), name, id: jinja_filter_t, args like CALL */
  JN_TEST,    /* a: operand, name, id: jinja_test_t, op: negated, args like CALL */
  JN_UNARY,   /* op: JT_SUB / JT_ADD, or JN_NOT; a */
  JN_BINARY,  /* op: JT_ADD ... JT_TILDE, or JN_AND / JN_OR; a, b */
  JN_COMPARE, /* a: first operand, items: further operands, ops: their operators */
  JN_COND,    /* a: value if true, b: test, c: value if false (NULL: undefined) */
  JN_KIND_COUNT
} jinja_node_kind_t;

/* Operators beyond the token kinds, for JN_UNARY / JN_BINARY / JN_COMPARE. */
enum { JN_NOT = JT_COUNT, JN_AND, JN_OR, JN_IN, JN_NOT_IN };

typedef struct jinja_node jinja_node_t;
struct jinja_node {
  jinja_node_kind_t kind;
  int line, col;
  int op; /* operator, or negation for tests */
  int id; /* filter or test id */
  jinja_str_t name, text;
  jinja_value_t value; /* CONST */
  jinja_node_t *a, *b, *c;
  jinja_node_t **items; /* list items, args, statement operands */
  size_t n_items;
  size_t n_args;      /* CALL/FILTER/TEST: positional args in items[0..n_args) */
  jinja_str_t *names; /* targets, parameters, keyword names (n_items - n_args) */
  size_t n_names;
  int *ops;                     /* COMPARE: one per item */
  jinja_node_t **body, **body2; /* statement lists */
  size_t n_body, n_body2;
};

/* Parses a whole template into its top-level statement list. Throws on
 * syntax errors (and on tags, filters and tests that are not supported). */
void jinja_parse(jinja_heap_t *h, const char *src, size_t len, jinja_node_t ***out_body,
                 size_t *out_count);

/* ---- builtins (jinja_builtins.c) ---- */

/* Filter and test ids are resolved at parse time (jinja2 rejects unknown
 * ones when it compiles the template); -1: no such one. */
int jinja_filter_lookup(jinja_str_t name);
int jinja_test_lookup(jinja_str_t name);

typedef enum {
  JF_RANGE,
  JF_NAMESPACE,
  JF_DICT,
  JF_RAISE_EXCEPTION,
  JF_STRFTIME_NOW,
  JF_FUNCTION_COUNT
} jinja_function_t;

/* The global function called `name`, or -1. */
int jinja_function_lookup(jinja_str_t name);
const char *jinja_function_name(int id);

/* ---- evaluation (jinja_eval.c) ---- */

typedef struct jinja_scope jinja_scope_t;

/* Arguments of a call: positional values, then keyword names and values. */
typedef struct {
  jinja_value_t *values;
  size_t n_pos;
  const jinja_str_t *names; /* n_kw names for values[n_pos..n_pos + n_kw) */
  size_t n_kw;
} jinja_args_t;

/* One render. `at` is the node being evaluated: errors point there. */
typedef struct {
  jinja_heap_t heap;
  jinja_trap_t *trap;
  const jinja_node_t *at;
  jinja_scope_t *scope;  /* innermost */
  jinja_dict_t *globals; /* the context's variables */
  jinja_buf_t *out;
  int flow;       /* 0, or JN_BREAK / JN_CONTINUE on their way to the loop */
  uint64_t steps; /* nodes evaluated, against a limit */
  int depth;      /* macro calls in progress */
} jinja_eval_t;

/* Throws an evaluation error at ev->at. */
_Noreturn void jinja_fail(jinja_eval_t *ev, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Renders a parsed template with `globals` as its variables, appending to
 * ev->out. Throws on errors. */
void jinja_render(jinja_eval_t *ev, jinja_node_t **body, size_t n);

/* Calls a macro value with args; returns its output. */
jinja_value_t jinja_call_macro(jinja_eval_t *ev, jinja_macro_t *m, const jinja_args_t *args);

/* ---- value operations (jinja_value.c) ---- */

jinja_value_t jinja_none(void);
jinja_value_t jinja_bool(bool b);
jinja_value_t jinja_int(int64_t i);
jinja_value_t jinja_float(double f);
jinja_value_t jinja_string(jinja_str_t s);
jinja_value_t jinja_cstring(const char *s);
/* An undefined value; hint is the error message if it is used (NULL: none). */
jinja_value_t jinja_undefined(const char *hint);
/* Throws the undefined value's error. */
_Noreturn void jinja_undefined_fail(jinja_eval_t *ev, jinja_value_t v);

jinja_value_t jinja_list_new(jinja_eval_t *ev, jinja_kind_t kind, size_t cap);
void jinja_list_push(jinja_eval_t *ev, jinja_value_t list, jinja_value_t item);
jinja_value_t jinja_dict_new(jinja_eval_t *ev, jinja_kind_t kind);
/* dict[key] into *out; false if absent. Unhashable keys throw. */
bool jinja_dict_get(jinja_eval_t *ev, const jinja_dict_t *d, jinja_value_t key, jinja_value_t *out);
/* dict[key] = value (an existing key keeps its place). */
void jinja_dict_set(jinja_eval_t *ev, jinja_dict_t *d, jinja_value_t key, jinja_value_t value);
bool jinja_dict_get_str(const jinja_dict_t *d, const char *key, size_t len, jinja_value_t *out);

/* The items an iteration visits (list items, dict keys, characters...);
 * iterators are consumed. Undefined iterates as empty; others throw. */
jinja_list_t *jinja_iterate(jinja_eval_t *ev, jinja_value_t v);
/* len(v), or a throw like Python's TypeError. */
int64_t jinja_length(jinja_eval_t *ev, jinja_value_t v);

bool jinja_truthy(jinja_value_t v);
/* Python's ==. */
bool jinja_equal(jinja_value_t a, jinja_value_t b);
/* Python's <, <=, >, >= as -1/0/1 ordering; throws for unorderable types. */
int jinja_compare(jinja_eval_t *ev, jinja_value_t a, jinja_value_t b);
/* Python's `a in b`. */
bool jinja_contains(jinja_eval_t *ev, jinja_value_t container, jinja_value_t item);

/* Python's str(v) appended to b (undefined: nothing). Throws for values
 * whose str() names a memory address (functions, generators). */
void jinja_write_str(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v);
/* Python's repr(v) appended to b. */
void jinja_write_repr(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v);
/* str(v) as a string value (strings are returned as they are). */
jinja_str_t jinja_to_str(jinja_eval_t *ev, jinja_value_t v);

/* json.dumps options, as Hugging Face's tojson takes them. */
typedef struct {
  const char *indent; /* NULL: one line */
  const char *item_sep, *key_sep;
  bool ensure_ascii, sort_keys;
} jinja_json_options_t;
void jinja_write_json(jinja_eval_t *ev, jinja_buf_t *b, jinja_value_t v,
                      const jinja_json_options_t *opt);

/* Python's type name ("str", "dict", "NoneType"...) for messages. */
const char *jinja_type_name(jinja_value_t v);

/* Python's binary arithmetic for JT_ADD..JT_TILDE (and str % args);
 * throws where Python raises. */
jinja_value_t jinja_binary_op(jinja_eval_t *ev, int op, jinja_value_t a, jinja_value_t b);
/* Python's `fmt % args` (args: a tuple, a dict for %(key)s, or one value). */
jinja_value_t jinja_percent_format(jinja_eval_t *ev, jinja_str_t fmt, jinja_value_t args);
/* The numbers of a JSON text in document order, read as Python's json
 * module reads them: a float if written with '.', 'e' or 'E', else an
 * exact int (cJSON keeps only a double, which loses both distinctions). */
typedef struct {
  bool is_float;
  bool too_big; /* an int beyond 64 bits */
  int64_t i;
} jinja_json_number_t;

typedef struct {
  jinja_json_number_t *items;
  size_t n, next; /* next: the one the conversion reads next */
} jinja_json_numbers_t;

/* Scans the numbers of a JSON text (which cJSON has already accepted). */
jinja_json_numbers_t jinja_scan_json_numbers(jinja_heap_t *h, const char *text, size_t len);

/* A JSON value as a template value. numbers: the scan of the text j was
 * parsed from (consumed in order), or NULL: then numbers without a fraction
 * become ints. */
jinja_value_t jinja_from_cjson(jinja_eval_t *ev, const cJSON *j, jinja_json_numbers_t *numbers);

/* ---- attribute, item and builtin dispatch (jinja_builtins.c) ---- */

/* jinja2's getattr (obj.name) and getitem (obj[key]) with the sandbox's
 * rules; missing things are undefined values. */
jinja_value_t jinja_getattr(jinja_eval_t *ev, jinja_value_t obj, jinja_str_t name);
jinja_value_t jinja_getitem(jinja_eval_t *ev, jinja_value_t obj, jinja_value_t key);
/* obj[start:stop:step]; absent bounds are JV_NONE. */
jinja_value_t jinja_slice(jinja_eval_t *ev, jinja_value_t obj, jinja_value_t start,
                          jinja_value_t stop, jinja_value_t step);
/* Calls a callable value (function, method, macro). */
jinja_value_t jinja_call(jinja_eval_t *ev, jinja_value_t callee, const jinja_args_t *args);
jinja_value_t jinja_apply_filter(jinja_eval_t *ev, int id, jinja_value_t input,
                                 const jinja_args_t *args);
bool jinja_apply_test(jinja_eval_t *ev, int id, jinja_value_t input, const jinja_args_t *args);

#endif /* LLMC_JINJA_H */
