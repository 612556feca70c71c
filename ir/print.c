/* print.c — writes a module in the IR text form (grammar in docs/ir.md).
 *
 * The output is meant to be read by people and parsed back by
 * llmc_ir_parse: print → parse → print gives the same bytes. To keep that
 * exact, floats are written in the shortest form that reads back to the
 * same value (and always look like floats, "1.0" not "1"), strings and odd
 * names are quoted with JSON escapes, and nothing is printed that the parser
 * does not read back, except node numbering: %N is the node's index, and
 * dead nodes are skipped without renumbering (passes call llmc_ir_compact
 * before dumping, so dumps normally have no gaps).
 *
 * The printer never trusts the module: an out-of-range op, dtype, argument
 * or weight index prints as something visibly wrong (which the parser then
 * rejects) rather than crashing, so a broken module can still be dumped. */
#include <stdlib.h>
#include <string.h>

#include "ir.h"

/* Writes x as the shortest %g text that reads back as the same double (or
 * float, if single), except that numbers below 1e6 are never written with
 * an exponent ("30", not "3e+01"). Enough room: 32 bytes. */
static void format_number(char *buf, size_t size, double x, bool single) {
  int max_prec = single ? 9 : 17;
  for (int prec = 1; prec <= max_prec; prec++) {
    snprintf(buf, size, "%.*g", prec, x);
    if (single ? strtof(buf, NULL) == (float)x : strtod(buf, NULL) == x) break;
  }
  const char *e = strchr(buf, 'e');
  int exponent = e ? atoi(e + 1) : -1;
  if (exponent >= 0 && exponent < 6) snprintf(buf, size, "%.*g", exponent + 1, x);
}

static void print_string(FILE *out, const char *s) {
  fputc('"', out);
  for (const unsigned char *p = (const unsigned char *)(s ? s : ""); *p; p++) {
    switch (*p) {
    case '"': fputs("\\\"", out); break;
    case '\\': fputs("\\\\", out); break;
    case '\n': fputs("\\n", out); break;
    case '\t': fputs("\\t", out); break;
    case '\r': fputs("\\r", out); break;
    case '\b': fputs("\\b", out); break;
    case '\f': fputs("\\f", out); break;
    default:
      if (*p < 0x20 || *p == 0x7f)
        fprintf(out, "\\u%04x", *p);
      else
        fputc(*p, out);
    }
  }
  fputc('"', out);
}

/* A tensor name or attribute key: bare when it is a non-empty run of
 * [A-Za-z0-9_.-], quoted otherwise. */
static void print_word(FILE *out, const char *s) {
  bool bare = s && *s &&
              strspn(s,
                     "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                     "0123456789_.-") == strlen(s);
  if (bare)
    fputs(s, out);
  else
    print_string(out, s);
}

static void print_weight_ref(FILE *out, const llmc_ir_module_t *m, uint32_t w) {
  fputc('@', out);
  if (w < m->n_weights) {
    print_word(out, m->weights[w].name);
  } else {
    char bad[40];
    snprintf(bad, sizeof bad, "<bad weight %u>", w);
    print_string(out, bad);
  }
}

static void print_type(FILE *out, llmc_dtype_t dtype, const llmc_ir_shape_t *shape) {
  fputs(llmc_dtype_name(dtype), out);
  if (dtype == LLMC_DTYPE_NONE) return;
  char buf[128];
  llmc_shape_format(shape, buf, sizeof buf);
  fputs(buf, out);
}

/* A float attribute: shortest exact text, with ".0" added when it would
 * otherwise read as an integer. */
static void print_float(FILE *out, double x) {
  char buf[40];
  format_number(buf, sizeof buf - 2, x, false);
  if (!strpbrk(buf, ".eEin")) strcat(buf, ".0");
  fputs(buf, out);
}

static void print_attrs(FILE *out, const llmc_ir_attr_t *attrs, int n_attrs) {
  if (n_attrs <= 0) return;
  fputs(" {", out);
  for (int i = 0; i < n_attrs && i < LLMC_IR_MAX_ATTRS; i++) {
    const llmc_ir_attr_t *a = &attrs[i];
    if (i) fputs(", ", out);
    print_word(out, a->key);
    fputc('=', out);
    switch (a->kind) {
    case LLMC_ATTR_INT: fprintf(out, "%lld", (long long)a->i); break;
    case LLMC_ATTR_FLOAT: print_float(out, a->f); break;
    case LLMC_ATTR_STRING: print_string(out, a->s); break;
    }
  }
  fputc('}', out);
}

/* The meta JSON on one line: whitespace at either end dropped, line breaks
 * (which JSON only allows between tokens) turned into spaces. */
static void print_meta(FILE *out, const char *json) {
  size_t begin = strspn(json, " \t\r\n"), end = strlen(json);
  while (end > begin && strchr(" \t\r\n", json[end - 1])) end--;
  fputs("meta ", out);
  for (size_t i = begin; i < end; i++)
    fputc(json[i] == '\n' || json[i] == '\r' ? ' ' : json[i], out);
  fputc('\n', out);
}

static void print_weight(FILE *out, const llmc_ir_module_t *m, const llmc_ir_weight_t *w) {
  fputs("tensor ", out);
  print_weight_ref(out, m, (uint32_t)(w - m->weights));
  fputs(" : ", out);
  print_type(out, w->dtype, &w->shape);
  fputs(" = ", out);
  switch (w->kind) {
  case LLMC_WEIGHT_FILE:
    fputs("file ", out);
    print_string(out, w->file);
    fprintf(out, " offset %llu", (unsigned long long)w->offset);
    break;
  case LLMC_WEIGHT_DATA: {
    int64_t n = w->data ? llmc_shape_numel(&w->shape) : 0;
    fputs("data [", out);
    for (int64_t i = 0; i < n; i++) {
      char buf[32];
      format_number(buf, sizeof buf, w->data[i], true);
      fprintf(out, "%s%s", i ? ", " : "", buf);
    }
    fputc(']', out);
    break;
  }
  case LLMC_WEIGHT_DERIVED:
    fprintf(out, "%s(", llmc_ir_op_name(w->op));
    for (int i = 0; i < w->n_args && i < LLMC_IR_MAX_ARGS; i++) {
      if (i) fputs(", ", out);
      print_weight_ref(out, m, w->args[i]);
    }
    fputc(')', out);
    if (w->op == LLMC_OP_ADD_SCALAR || w->op == LLMC_OP_MUL_SCALAR) {
      fputs(" {value=", out);
      print_float(out, w->value);
      fputc('}', out);
    }
    break;
  }
  fputc('\n', out);
}

static void print_node(FILE *out, const llmc_ir_module_t *m, uint32_t v) {
  const llmc_ir_node_t *n = &m->nodes[v];
  fprintf(out, "%%%u = %s", v, llmc_ir_op_name(n->op));
  if (n->op == LLMC_OP_WEIGHT) {
    fputc(' ', out);
    print_weight_ref(out, m, n->weight);
  }
  for (int i = 0; i < n->n_args && i < LLMC_IR_MAX_ARGS; i++)
    fprintf(out, "%s%%%u", i ? ", " : " ", n->args[i]);
  print_attrs(out, n->attrs, n->n_attrs);
  fputs(" : ", out);
  print_type(out, n->dtype, &n->shape);
  if (n->region >= 0) fprintf(out, "  ; region %d", (int)n->region);
  fputc('\n', out);
}

/* Prints m in the text form: the module and meta lines (each only when
 * set), one tensor line per weight-table entry, one line per live node. */
void llmc_ir_print(const llmc_ir_module_t *m, FILE *out) {
  if (m->arch) {
    fputs("module ", out);
    print_string(out, m->arch);
    fputc('\n', out);
  }
  if (m->meta_json) print_meta(out, m->meta_json);
  for (uint32_t i = 0; i < m->n_weights; i++) print_weight(out, m, &m->weights[i]);
  for (uint32_t v = 1; v < m->n_nodes; v++)
    if (!m->nodes[v].dead) print_node(out, m, v);
}
