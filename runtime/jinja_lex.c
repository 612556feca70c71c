/* jinja_lex.c — template text to tokens, following jinja2 3.1's lexer rule by
 * rule (jinja2/lexer.py), because whitespace control is decided here and is
 * where a re-implementation most easily drifts by a byte:
 *
 *   - the source's \r\n and \r become \n and one trailing newline is dropped
 *     (keep_trailing_newline=False);
 *   - `{%-`, `{{-`, `{#-` strip all whitespace before the tag; `-%}`, `-}}`,
 *     `-#}` strip all whitespace after it;
 *   - trim_blocks: `%}` and `#}` swallow one newline right after them
 *     (`+%}` / `+#}` keep it);
 *   - lstrip_blocks: spaces and tabs between the start of a line and `{%` or
 *     `{#` are dropped (`{%+` keeps them); never before `{{`. "Start of a
 *     line" includes the start of the template and the position right after
 *     a tag whose end consumed a newline;
 *   - inside a tag, `}}` / `%}` end it only when no bracket is open;
 *   - string literals decode as Python's unicode-escape, as jinja2 does.
 *
 * Comments and `{% raw %}` blocks are resolved here: the parser never sees
 * them. */
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

typedef struct {
  jinja_heap_t *h;
  const char *src; /* normalized source */
  size_t len, pos;
  bool line_starting; /* the last token ended with a newline (or none yet) */
  /* the location cursor: positions are asked for in increasing order */
  size_t loc_pos, loc_line_start;
  int loc_line;
  jinja_token_t *toks;
  size_t n, cap;
} lexer_t;

static void locate(lexer_t *lx, size_t pos, int *line, int *col) {
  for (; lx->loc_pos < pos; lx->loc_pos++)
    if (lx->src[lx->loc_pos] == '\n') {
      lx->loc_line++;
      lx->loc_line_start = lx->loc_pos + 1;
    }
  *line = lx->loc_line;
  *col = 1 + (int)jinja_utf8_count(
                 (jinja_str_t){lx->src + lx->loc_line_start, pos - lx->loc_line_start});
}

_Noreturn static void lex_fail(lexer_t *lx, size_t pos, const char *msg, const char *arg) {
  int line, col;
  locate(lx, pos, &line, &col);
  jinja_throw(lx->h->trap, line, col, "%s%s", msg, arg);
}

static jinja_token_t *emit(lexer_t *lx, jinja_token_kind_t kind, size_t pos) {
  if (lx->n == lx->cap) {
    size_t cap = lx->cap ? lx->cap * 2 : 256;
    jinja_token_t *toks = jinja_alloc(lx->h, cap * sizeof *toks);
    if (lx->n) memcpy(toks, lx->toks, lx->n * sizeof *toks);
    lx->toks = toks;
    lx->cap = cap;
  }
  jinja_token_t *t = &lx->toks[lx->n++];
  memset(t, 0, sizeof *t);
  t->kind = kind;
  locate(lx, pos, &t->line, &t->col);
  return t;
}

static bool at(const lexer_t *lx, size_t pos, const char *s) {
  size_t n = strlen(s);
  return pos <= lx->len && lx->len - pos >= n && memcmp(lx->src + pos, s, n) == 0;
}

/* The end of the run of (Unicode) whitespace starting at pos. */
static size_t skip_space(const lexer_t *lx, size_t pos) {
  while (pos < lx->len) {
    size_t adv;
    if (!jinja_is_space(jinja_utf8_decode(lx->src + pos, lx->len - pos, &adv))) break;
    pos += adv;
  }
  return pos;
}

/* Length of text[0..len) without its trailing (Unicode) whitespace. */
static size_t rstrip_len(const char *text, size_t len) {
  size_t keep = 0;
  for (size_t i = 0; i < len;) {
    size_t adv;
    uint32_t cp = jinja_utf8_decode(text + i, len - i, &adv);
    i += adv;
    if (!jinja_is_space(cp)) keep = i;
  }
  return keep;
}

/* Emits the data before a tag with the tag's whitespace control applied.
 * sign: '-', '+' or 0; lstrip: the tag is a block, comment or raw tag. */
static void emit_text(lexer_t *lx, size_t start, size_t end, char sign, bool lstrip) {
  size_t len = end - start;
  const char *text = lx->src + start;
  if (sign == '-') {
    len = rstrip_len(text, len);
  } else if (sign != '+' && lstrip) {
    size_t l_pos = len;
    while (l_pos > 0 && text[l_pos - 1] != '\n') l_pos--;
    if ((l_pos > 0 || lx->line_starting) && l_pos < len &&
        rstrip_len(text + l_pos, len - l_pos) == 0)
      len = l_pos;
  }
  if (len) emit(lx, JT_TEXT, start)->text = (jinja_str_t){text, len};
}

/* Sets line_starting from the last byte of a match ending at end. */
static void matched_until(lexer_t *lx, size_t end) {
  lx->line_starting = end > 0 && lx->src[end - 1] == '\n';
  lx->pos = end;
}

/* ---- literals ---- */

/* `(\d+_)*\d+` from pos: digit runs joined by single underscores. */
static size_t scan_digits(const lexer_t *lx, size_t pos) {
  size_t p = pos;
  while (p < lx->len && jinja_is_digit((unsigned char)lx->src[p])) p++;
  if (p == pos) return pos;
  while (p + 1 < lx->len && lx->src[p] == '_' && jinja_is_digit((unsigned char)lx->src[p + 1])) {
    p++;
    while (p < lx->len && jinja_is_digit((unsigned char)lx->src[p])) p++;
  }
  return p;
}

/* A float literal at pos (jinja2's float_re); returns its end or pos. */
static size_t scan_float(const lexer_t *lx, size_t pos) {
  if (pos > 0 && lx->src[pos - 1] == '.') return pos;
  size_t p = scan_digits(lx, pos);
  if (p == pos) return pos;
  bool is_float = false;
  if (p < lx->len && lx->src[p] == '.') {
    size_t q = scan_digits(lx, p + 1);
    if (q > p + 1) {
      p = q;
      is_float = true;
    }
  }
  if (p < lx->len && (lx->src[p] | 32) == 'e') {
    size_t q = p + 1;
    if (q < lx->len && (lx->src[q] == '+' || lx->src[q] == '-')) q++;
    size_t r = scan_digits(lx, q);
    if (r > q) {
      p = r;
      is_float = true;
    }
  }
  return is_float ? p : pos;
}

static int digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c |= 32;
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : 99;
}

/* Digits in `base` from start, single underscores allowed between them
 * (and before the first when lead_underscore), into *out; returns the end,
 * start itself when there are none. */
static size_t scan_based(lexer_t *lx, size_t start, int base, bool lead_underscore,
                         int64_t *out) {
  const char *s = lx->src;
  uint64_t v = 0;
  size_t p = start;
  for (;;) {
    size_t q = p;
    if (q < lx->len && s[q] == '_' && (lead_underscore || q > start)) q++;
    if (q >= lx->len || digit_value(s[q]) >= base) break;
    if (v > (UINT64_C(0x7FFFFFFFFFFFFFFF) - (uint64_t)digit_value(s[q])) / (uint64_t)base)
      lex_fail(lx, start, "integer literal too large (llmc's integers are 64-bit)", "");
    v = v * (uint64_t)base + (uint64_t)digit_value(s[q]);
    p = q + 1;
  }
  *out = (int64_t)v;
  return p;
}

/* An integer literal at pos (jinja2's integer_re: 0b.., 0o.., 0x..,
 * decimal, or zeros) into *out; returns its end, or pos if there is none. */
static size_t scan_int(lexer_t *lx, size_t pos, int64_t *out) {
  const char *s = lx->src;
  if (s[pos] == '0' && pos + 1 < lx->len) {
    char k = (char)(s[pos + 1] | 32);
    int base = k == 'b' ? 2 : k == 'o' ? 8 : k == 'x' ? 16 : 0;
    size_t end = base ? scan_based(lx, pos + 2, base, true, out) : 0;
    if (end > pos + 2) return end;
  }
  if (s[pos] == '0') { /* 0(_?0)* */
    size_t p = pos + 1;
    while (p < lx->len && (s[p] == '0' || (s[p] == '_' && p + 1 < lx->len && s[p + 1] == '0')))
      p += s[p] == '_' ? 2 : 1;
    *out = 0;
    return p;
  }
  return s[pos] >= '1' && s[pos] <= '9' ? scan_based(lx, pos, 10, false, out) : pos;
}

static bool hex_value(const char *s, size_t n, uint32_t *out) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; i++) {
    int d = digit_value(s[i]);
    if (d > 15) return false;
    v = v << 4 | (uint32_t)d;
  }
  *out = v;
  return true;
}

/* Decodes a string literal body as Python's unicode-escape codec does after
 * jinja2's .encode("ascii", "backslashreplace"). */
static jinja_str_t decode_string(lexer_t *lx, size_t start, size_t end) {
  jinja_buf_t b = {.heap = lx->h};
  const char *s = lx->src;
  for (size_t i = start; i < end;) {
    if (s[i] != '\\') {
      size_t j = i;
      while (j < end && s[j] != '\\') j++;
      jinja_buf_put(&b, s + i, j - i);
      i = j;
      continue;
    }
    char c = s[i + 1];
    i += 2;
    static const char simple_from[] = "\\'\"abfnrtv", simple_to[] = "\\'\"\a\b\f\n\r\t\v";
    const char *k = c ? strchr(simple_from, c) : NULL;
    if (c == '\n') continue; /* backslash-newline: a line continuation */
    if (k) {
      jinja_buf_putc(&b, simple_to[k - simple_from]);
    } else if (c >= '0' && c <= '7') {
      uint32_t v = (uint32_t)(c - '0');
      for (int n = 0; n < 2 && i < end && s[i] >= '0' && s[i] <= '7'; n++, i++)
        v = v * 8 + (uint32_t)(s[i] - '0');
      jinja_buf_put_cp(&b, v);
    } else if (c == 'x' || c == 'u' || c == 'U') {
      size_t n = c == 'x' ? 2 : c == 'u' ? 4 : 8;
      uint32_t v;
      if (end - i < n || !hex_value(s + i, n, &v))
        lex_fail(lx, i - 2, "string literal: truncated \\",
                 c == 'x'   ? "xXX escape"
                 : c == 'u' ? "uXXXX escape"
                            : "UXXXXXXXX escape");
      if (v > 0x10FFFF) lex_fail(lx, i - 2, "string literal: illegal Unicode character", "");
      if (v >= 0xD800 && v <= 0xDFFF)
        lex_fail(lx, i - 2, "string literal: surrogate escapes are not supported", "");
      jinja_buf_put_cp(&b, v);
      i += n;
    } else if (c == 'N') {
      lex_fail(lx, i - 2, "string literal: \\N{...} escapes are not supported", "");
    } else if ((unsigned char)c >= 0x80) {
      /* backslashreplace turned the character into an escape whose own
       * backslash the preceding one then escaped: "\é" reads as "\xe9" */
      size_t adv;
      uint32_t cp = jinja_utf8_decode(s + i - 1, end - (i - 1), &adv);
      i += adv - 1;
      if (cp >= 0xDC80 && cp <= 0xDCFF) cp -= 0xDC00; /* a raw byte */
      jinja_buf_printf(&b, cp < 0x100 ? "\\x%02x" : cp < 0x10000 ? "\\u%04x" : "\\U%08x", cp);
    } else {
      jinja_buf_putc(&b, '\\');
      jinja_buf_putc(&b, c);
    }
  }
  return jinja_buf_str(&b);
}

/* ---- tags ---- */

typedef struct {
  const char *text;
  jinja_token_kind_t kind;
} op_t;

/* Longest first, as jinja2 sorts its operator regex. */
static const op_t operators[] = {
    {"//", JT_FLOORDIV}, {"**", JT_POW},   {"==", JT_EQ},      {"!=", JT_NE},      {">=", JT_GE},
    {"<=", JT_LE},       {"+", JT_ADD},    {"-", JT_SUB},      {"/", JT_DIV},      {"*", JT_MUL},
    {"%", JT_MOD},       {"~", JT_TILDE},  {"[", JT_LBRACKET}, {"]", JT_RBRACKET}, {"(", JT_LPAREN},
    {")", JT_RPAREN},    {"{", JT_LBRACE}, {"}", JT_RBRACE},   {">", JT_GT},       {"<", JT_LT},
    {"=", JT_ASSIGN},    {".", JT_DOT},    {":", JT_COLON},    {"|", JT_PIPE},     {",", JT_COMMA},
    {";", JT_SEMICOLON},
};

/* Tries the end of a tag at pos (only called with no bracket open). */
static bool lex_tag_end(lexer_t *lx, bool block) {
  size_t p = lx->pos, end;
  if (block && at(lx, p, "+%}")) {
    end = p + 3;
  } else if (at(lx, p, block ? "-%}" : "-}}")) {
    end = skip_space(lx, p + 3);
  } else if (at(lx, p, block ? "%}" : "}}")) {
    end = p + 2;
    if (block && end < lx->len && lx->src[end] == '\n') end++; /* trim_blocks */
  } else {
    return false;
  }
  emit(lx, block ? JT_BLOCK_END : JT_VAR_END, p);
  matched_until(lx, end);
  return true;
}

/* Lexes the inside of a {% %} or {{ }} tag, its end included. */
static void lex_tag(lexer_t *lx, bool block) {
  char stack[256]; /* closing brackets expected */
  size_t depth = 0;
  for (;;) {
    size_t p = lx->pos;
    if (p >= lx->len) return; /* the parser reports the missing end */
    if (depth == 0 && lex_tag_end(lx, block)) return;
    const char *s = lx->src;
    size_t q = skip_space(lx, p);
    if (q > p) {
      lx->pos = q;
      continue;
    }
    unsigned char c = (unsigned char)s[p];
    int64_t ival;
    if ((q = scan_float(lx, p)) > p) {
      char tmp[128];
      size_t n = 0;
      for (size_t i = p; i < q && n + 1 < sizeof tmp; i++)
        if (s[i] != '_') tmp[n++] = s[i];
      tmp[n] = '\0';
      emit(lx, JT_FLOAT, p)->fval = strtod(tmp, NULL);
    } else if ((q = scan_int(lx, p, &ival)) > p) {
      emit(lx, JT_INT, p)->ival = ival;
    } else if (c == '_' || ((c | 32) >= 'a' && (c | 32) <= 'z')) {
      q = p + 1;
      while (q < lx->len && (s[q] == '_' || ((s[q] | 32) >= 'a' && (s[q] | 32) <= 'z') ||
                             jinja_is_digit((unsigned char)s[q])))
        q++;
      emit(lx, JT_NAME, p)->text = (jinja_str_t){s + p, q - p};
    } else if (c == '\'' || c == '"') {
      q = p + 1;
      while (q < lx->len && s[q] != (char)c) q += s[q] == '\\' && q + 1 < lx->len ? 2 : 1;
      if (q >= lx->len) lex_fail(lx, p, "unterminated string literal", "");
      jinja_token_t *t = emit(lx, JT_STRING, p);
      t->text = decode_string(lx, p + 1, q);
      q++;
    } else {
      const op_t *op = NULL;
      for (size_t i = 0; i < sizeof operators / sizeof operators[0] && !op; i++)
        if (at(lx, p, operators[i].text)) op = &operators[i];
      if (!op) {
        size_t adv;
        jinja_utf8_decode(s + p, lx->len - p, &adv);
        char ch[8] = {0};
        memcpy(ch, s + p, adv);
        lex_fail(lx, p, "unexpected character in tag: ", ch);
      }
      char o = op->text[0];
      if (!op->text[1] && (o == '(' || o == '[' || o == '{')) {
        if (depth == sizeof stack) lex_fail(lx, p, "brackets nested too deeply", "");
        stack[depth++] = o == '(' ? ')' : o == '[' ? ']' : '}';
      } else if (!op->text[1] && (o == ')' || o == ']' || o == '}')) {
        if (depth == 0) lex_fail(lx, p, "unexpected ", op->text);
        if (stack[--depth] != o) {
          char msg[32];
          snprintf(msg, sizeof msg, "'%c', expected '%c'", o, stack[depth]);
          lex_fail(lx, p, "unexpected ", msg);
        }
      }
      emit(lx, op->kind, p);
      q = p + strlen(op->text);
    }
    lx->pos = q;
  }
}

/* A comment from after its opener: `+#}`, `-#}` + whitespace, or `#}` + one newline. */
static void lex_comment(lexer_t *lx, size_t start) {
  for (size_t p = lx->pos; p < lx->len; p++) {
    size_t end = 0;
    if (at(lx, p, "+#}")) {
      end = p + 3;
    } else if (at(lx, p, "-#}")) {
      end = skip_space(lx, p + 3);
    } else if (at(lx, p, "#}")) {
      end = p + 2 + (p + 2 < lx->len && lx->src[p + 2] == '\n');
    }
    if (end) {
      matched_until(lx, end);
      return;
    }
  }
  lex_fail(lx, start, "missing end of comment tag", "");
}

/* `{% raw %}` at pos (with its whitespace sign) → the end of the opening tag, or 0. */
static size_t match_raw_begin(const lexer_t *lx, size_t pos) {
  size_t p = pos + 2;
  if (p < lx->len && (lx->src[p] == '-' || lx->src[p] == '+')) p++;
  p = skip_space(lx, p);
  if (!at(lx, p, "raw")) return 0;
  p = skip_space(lx, p + 3);
  if (at(lx, p, "-%}")) return skip_space(lx, p + 3);
  return at(lx, p, "%}") ? p + 2 : 0;
}

/* The body of a raw block from lx->pos up to `{% endraw %}`, emitted as text. */
static void lex_raw(lexer_t *lx, size_t start) {
  for (size_t p = lx->pos; p + 1 < lx->len; p++) {
    if (!at(lx, p, "{%")) continue;
    size_t q = p + 2;
    char sign = q < lx->len && (lx->src[q] == '-' || lx->src[q] == '+') ? lx->src[q++] : 0;
    q = skip_space(lx, q);
    if (!at(lx, q, "endraw")) continue;
    q = skip_space(lx, q + 6);
    size_t end = 0;
    if (at(lx, q, "+%}"))
      end = q + 3;
    else if (at(lx, q, "-%}"))
      end = skip_space(lx, q + 3);
    else if (at(lx, q, "%}"))
      end = q + 2 + (q + 2 < lx->len && lx->src[q + 2] == '\n');
    if (!end) continue;
    emit_text(lx, lx->pos, p, sign, true);
    matched_until(lx, end);
    return;
  }
  lex_fail(lx, start, "missing end of raw directive", "");
}

/* newline_re.split(source) + "\n".join, and the trailing newline dropped. */
static void normalize(lexer_t *lx, const char *src, size_t len) {
  char *out = jinja_alloc(lx->h, len + 1);
  size_t n = 0;
  for (size_t i = 0; i < len; i++) {
    if (src[i] == '\r') {
      out[n++] = '\n';
      if (i + 1 < len && src[i + 1] == '\n') i++;
    } else {
      out[n++] = src[i];
    }
  }
  if (n > 0 && out[n - 1] == '\n') n--;
  lx->src = out;
  lx->len = n;
}

void jinja_lex(jinja_heap_t *h, const char *src, size_t len, jinja_token_t **out_tokens,
               size_t *out_count) {
  lexer_t lx = {.h = h, .line_starting = true, .loc_line = 1};
  normalize(&lx, src, len);
  while (lx.pos < lx.len) {
    size_t tag = lx.pos;
    while (tag + 1 < lx.len &&
           !(lx.src[tag] == '{' &&
             (lx.src[tag + 1] == '{' || lx.src[tag + 1] == '%' || lx.src[tag + 1] == '#')))
      tag++;
    if (tag + 1 >= lx.len) { /* no more tags: the rest is data */
      emit(&lx, JT_TEXT, lx.pos)->text = (jinja_str_t){lx.src + lx.pos, lx.len - lx.pos};
      break;
    }
    char kind = lx.src[tag + 1];
    char sign = tag + 2 < lx.len && (lx.src[tag + 2] == '-' || lx.src[tag + 2] == '+')
                    ? lx.src[tag + 2]
                    : 0;
    size_t raw_end = kind == '%' ? match_raw_begin(&lx, tag) : 0;
    emit_text(&lx, lx.pos, tag, sign, kind != '{');
    lx.pos = tag + 2 + (sign != 0);
    lx.line_starting = false;
    if (raw_end) {
      matched_until(&lx, raw_end);
      lex_raw(&lx, tag);
    } else if (kind == '#') {
      lex_comment(&lx, tag);
    } else {
      emit(&lx, kind == '%' ? JT_BLOCK_BEGIN : JT_VAR_BEGIN, tag);
      lex_tag(&lx, kind == '%');
    }
  }
  emit(&lx, JT_EOF, lx.len);
  *out_tokens = lx.toks;
  *out_count = lx.n;
}

const char *jinja_token_name(jinja_token_kind_t kind) {
  static const char *const names[JT_COUNT] = {
      [JT_EOF] = "end of template",
      [JT_TEXT] = "template data",
      [JT_VAR_BEGIN] = "'{{'",
      [JT_VAR_END] = "'}}'",
      [JT_BLOCK_BEGIN] = "'{%'",
      [JT_BLOCK_END] = "'%}'",
      [JT_NAME] = "name",
      [JT_STRING] = "string",
      [JT_INT] = "integer",
      [JT_FLOAT] = "float",
      [JT_ADD] = "'+'",
      [JT_SUB] = "'-'",
      [JT_MUL] = "'*'",
      [JT_DIV] = "'/'",
      [JT_FLOORDIV] = "'//'",
      [JT_MOD] = "'%'",
      [JT_POW] = "'**'",
      [JT_TILDE] = "'~'",
      [JT_LBRACKET] = "'['",
      [JT_RBRACKET] = "']'",
      [JT_LPAREN] = "'('",
      [JT_RPAREN] = "')'",
      [JT_LBRACE] = "'{'",
      [JT_RBRACE] = "'}'",
      [JT_EQ] = "'=='",
      [JT_NE] = "'!='",
      [JT_GT] = "'>'",
      [JT_GE] = "'>='",
      [JT_LT] = "'<'",
      [JT_LE] = "'<='",
      [JT_ASSIGN] = "'='",
      [JT_DOT] = "'.'",
      [JT_COLON] = "':'",
      [JT_PIPE] = "'|'",
      [JT_COMMA] = "','",
      [JT_SEMICOLON] = "';'",
  };
  return kind >= 0 && kind < JT_COUNT && names[kind] ? names[kind] : "token";
}
