/* pretokenize.c — the text operations that normalizers and pre-tokenizers
 * are made of (tokenizer_internal.h), and the UTF-8 helpers the
 * tokenizer shares.
 *
 * Every Hugging Face normalizer and pre-tokenizer llmc supports, and every
 * llama.cpp pre-tokenizer family, is a list of a few operations: Unicode
 * normalization (utf8proc), lowercase, strip, prepend, replace, split with
 * one of Hugging Face's five delimiter behaviours, and GPT-2's byte-level
 * map. Patterns are PCRE2 regexes compiled with UTF and UCP (\p{L}, \s
 * are Unicode-aware, as in the Oniguruma engine Hugging Face uses) and
 * with PCRE2_MATCH_INVALID_UTF, so text that is not valid UTF-8 is split
 * rather than refused: invalid bytes never match and end up in the text
 * between matches. Empty pieces are dropped, as Hugging Face drops them. */
#include <stdlib.h>
#include <string.h>
#include <utf8proc.h>

#include "tokenizer_internal.h"

/* GPT-2's bytes_to_unicode: printable Latin-1 bytes stand for themselves,
 * the other 68 take the code points from 256 up, in byte order. */
static int32_t byte_to_cp(uint8_t b) {
  if ((b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174) return b;
  if (b <= 32) return 256 + b;
  if (b <= 160) return 256 + 33 + (b - 127);
  return 256 + 33 + 34; /* 173, the soft hyphen */
}

size_t llmc_tok_byte_char(uint8_t b, char out[2]) {
  int32_t cp = byte_to_cp(b);
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  out[0] = (char)(0xC0 | (cp >> 6));
  out[1] = (char)(0x80 | (cp & 0x3F));
  return 2;
}

int llmc_tok_char_byte(int32_t cp) {
  if ((cp >= 33 && cp <= 126) || (cp >= 161 && cp <= 172) || (cp >= 174 && cp <= 255)) return cp;
  if (cp >= 256 && cp < 256 + 33) return cp - 256;
  if (cp >= 256 + 33 && cp < 256 + 33 + 34) return cp - 256 - 33 + 127;
  if (cp == 256 + 33 + 34) return 173;
  return -1;
}

/* Decodes one character; *cp = -1 for an invalid sequence and -2 for a
 * valid beginning cut off by the end of the text (length n then). */
static size_t utf8_decode(const uint8_t *s, size_t n, int32_t *cp) {
  uint8_t c = s[0];
  if (c < 0x80) {
    *cp = c;
    return 1;
  }
  size_t need;
  int32_t v;
  uint8_t lo = 0x80, hi = 0xBF; /* the range of the second byte */
  if (c >= 0xC2 && c <= 0xDF) {
    need = 1;
    v = c & 0x1F;
  } else if (c >= 0xE0 && c <= 0xEF) {
    need = 2;
    v = c & 0x0F;
    if (c == 0xE0) lo = 0xA0; /* overlong */
    if (c == 0xED) hi = 0x9F; /* surrogates */
  } else if (c >= 0xF0 && c <= 0xF4) {
    need = 3;
    v = c & 0x07;
    if (c == 0xF0) lo = 0x90; /* overlong */
    if (c == 0xF4) hi = 0x8F; /* past U+10FFFF */
  } else {
    *cp = -1;
    return 1;
  }
  for (size_t i = 1; i <= need; i++) {
    if (i >= n) {
      *cp = -2;
      return n;
    }
    uint8_t b = s[i];
    if (b < (i == 1 ? lo : 0x80) || b > (i == 1 ? hi : 0xBF)) {
      *cp = -1;
      return 1;
    }
    v = (v << 6) | (b & 0x3F);
  }
  *cp = v;
  return need + 1;
}

size_t llmc_tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp) {
  size_t len = utf8_decode(s, n, cp);
  if (*cp < 0) {
    *cp = -1;
    return 1;
  }
  return len;
}

bool llmc_tok_utf8_incomplete(const uint8_t *s, size_t n) {
  int32_t cp;
  utf8_decode(s, n, &cp);
  return cp == -2;
}

bool llmc_tok_utf8_valid(const char *s, size_t n) {
  const uint8_t *u = (const uint8_t *)s;
  for (size_t i = 0; i < n;) {
    int32_t cp;
    i += llmc_tok_utf8_next(u + i, n - i, &cp);
    if (cp < 0) return false;
  }
  return true;
}

bool llmc_tok_is_space(int32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F ||
         cp == 0x205F || cp == 0x3000;
}

bool llmc_tok_is_word(int32_t cp) {
  if (cp < 0) return false;
  utf8proc_category_t c = utf8proc_category(cp);
  return (c >= UTF8PROC_CATEGORY_LU && c <= UTF8PROC_CATEGORY_NL) || c == UTF8PROC_CATEGORY_PC;
}

/* ---- operations --------------------------------------------------------- */

llmc_tok_op_t *llmc_tok_ops_append(llmc_tok_ops_t *ops, llmc_tok_op_kind_t kind) {
  if (ops->n == ops->cap) {
    size_t cap = ops->cap ? ops->cap * 2 : 8;
    llmc_tok_op_t *v = realloc(ops->v, cap * sizeof *v);
    if (!v) return NULL;
    ops->v = v;
    ops->cap = cap;
  }
  llmc_tok_op_t *op = &ops->v[ops->n++];
  memset(op, 0, sizeof *op);
  op->kind = kind;
  return op;
}

llmc_status_t llmc_tok_op_set_pattern(llmc_tok_op_t *op, const char *pattern, size_t len,
                                      bool literal) {
  /* PCRE2_LITERAL refuses PCRE2_UCP (it has no use there). */
  uint32_t options = PCRE2_UTF | PCRE2_MATCH_INVALID_UTF | (literal ? PCRE2_LITERAL : PCRE2_UCP);
  int err = 0;
  PCRE2_SIZE at = 0;
  op->re = pcre2_compile((PCRE2_SPTR)pattern, len, options, &err, &at, NULL);
  if (!op->re) {
    PCRE2_UCHAR msg[256];
    pcre2_get_error_message(err, msg, sizeof msg);
    return LLMC_ERROR(INVALID_ARGUMENT, "pattern \"%.*s\": %s at offset %zu",
                      (int)(len > 200 ? 200 : len), pattern, (const char *)msg, (size_t)at);
  }
  /* JIT is an optimisation: where it is unavailable the interpreter runs. */
  pcre2_jit_compile(op->re, PCRE2_JIT_COMPLETE);
  return LLMC_OK;
}

llmc_status_t llmc_tok_op_set_text(llmc_tok_op_t *op, const char *text, size_t len) {
  op->text = malloc(len + 1);
  if (!op->text) return LLMC_ERROR(OUT_OF_MEMORY, "operation text of %zu bytes", len);
  memcpy(op->text, text, len);
  op->text[len] = 0;
  op->text_len = len;
  return LLMC_OK;
}

llmc_status_t llmc_tok_ops_add_split(llmc_tok_ops_t *ops, const char *pattern,
                                     llmc_tok_split_behavior_t behavior, bool invert) {
  llmc_tok_op_t *op = llmc_tok_ops_append(ops, LLMC_TOK_OP_SPLIT);
  if (!op) return LLMC_ERROR(OUT_OF_MEMORY, "pre-tokenizer");
  op->behavior = behavior;
  op->invert = invert;
  return llmc_tok_op_set_pattern(op, pattern, strlen(pattern), false);
}

/* The regex of Hugging Face's ByteLevel pre-tokenizer (GPT-2's). */
static const char gpt2_pattern[] =
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

llmc_status_t llmc_tok_ops_add_byte_level(llmc_tok_ops_t *ops, bool add_prefix_space,
                                          bool use_regex) {
  if (add_prefix_space) {
    llmc_tok_op_t *op = llmc_tok_ops_append(ops, LLMC_TOK_OP_PREPEND);
    if (!op) return LLMC_ERROR(OUT_OF_MEMORY, "pre-tokenizer");
    op->if_missing = true;
    LLMC_PROPAGATE(llmc_tok_op_set_text(op, " ", 1));
  }
  if (use_regex)
    LLMC_PROPAGATE(llmc_tok_ops_add_split(ops, gpt2_pattern, LLMC_TOK_SPLIT_ISOLATED, false));
  if (!llmc_tok_ops_append(ops, LLMC_TOK_OP_BYTE_LEVEL))
    return LLMC_ERROR(OUT_OF_MEMORY, "pre-tokenizer");
  return LLMC_OK;
}

void llmc_tok_ops_deinit(llmc_tok_ops_t *ops) {
  for (size_t i = 0; i < ops->n; i++) {
    pcre2_code_free(ops->v[i].re);
    free(ops->v[i].text);
  }
  free(ops->v);
  memset(ops, 0, sizeof *ops);
}

/* ---- piece lists -------------------------------------------------------- */

static llmc_status_t buf_reserve(llmc_tok_pieces_t *p, size_t more) {
  if (p->len + more <= p->cap) return LLMC_OK;
  if (more > SIZE_MAX / 4 - p->len) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer text");
  size_t cap = p->cap ? p->cap : 256;
  while (cap < p->len + more) cap *= 2;
  char *buf = realloc(p->buf, cap);
  if (!buf) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer text of %zu bytes", cap);
  p->buf = buf;
  p->cap = cap;
  return LLMC_OK;
}

static llmc_status_t buf_append(llmc_tok_pieces_t *p, const char *data, size_t len) {
  LLMC_PROPAGATE(buf_reserve(p, len));
  if (len) memcpy(p->buf + p->len, data, len);
  p->len += len;
  return LLMC_OK;
}

/* Makes p->buf[start, p->len) a piece (none if empty). */
static llmc_status_t span_close(llmc_tok_pieces_t *p, size_t start, bool origin) {
  if (p->len == start) return LLMC_OK;
  if (p->n == p->cap_spans) {
    size_t cap = p->cap_spans ? p->cap_spans * 2 : 64;
    llmc_tok_span_t *spans = realloc(p->spans, cap * sizeof *spans);
    if (!spans) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer pieces");
    p->spans = spans;
    p->cap_spans = cap;
  }
  p->spans[p->n++] = (llmc_tok_span_t){start, p->len - start, origin};
  return LLMC_OK;
}

llmc_status_t llmc_tok_pieces_push(llmc_tok_pieces_t *p, const char *data, size_t len,
                                   bool origin) {
  return llmc_tok_pieces_push_joined(p, NULL, 0, data, len, origin);
}

llmc_status_t llmc_tok_pieces_push_joined(llmc_tok_pieces_t *p, const char *head, size_t head_len,
                                          const char *data, size_t len, bool origin) {
  size_t start = p->len;
  LLMC_PROPAGATE(buf_append(p, head, head_len));
  LLMC_PROPAGATE(buf_append(p, data, len));
  return span_close(p, start, origin);
}

void llmc_tok_pieces_clear(llmc_tok_pieces_t *p) {
  p->len = 0;
  p->n = 0;
}

void llmc_tok_pieces_deinit(llmc_tok_pieces_t *p) {
  free(p->buf);
  free(p->spans);
  memset(p, 0, sizeof *p);
}

/* ---- matching ----------------------------------------------------------- */

/* A stretch of a piece: a match of the pattern or the text between. */
typedef struct {
  size_t start, end;
  bool match;
} stretch_t;

typedef struct {
  stretch_t *v;
  size_t n, cap;
} stretches_t;

static llmc_status_t stretch_push(stretches_t *s, size_t start, size_t end, bool match) {
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 32;
    stretch_t *v = realloc(s->v, cap * sizeof *v);
    if (!v) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer matches");
    s->v = v;
    s->cap = cap;
  }
  s->v[s->n++] = (stretch_t){start, end, match};
  return LLMC_OK;
}

/* Cuts s[0, n) into stretches at the non-empty matches of re, covering
 * all of it in order. */
static llmc_status_t find_stretches(const pcre2_code *re, const char *s, size_t n,
                                    stretches_t *out) {
  pcre2_match_data *md = pcre2_match_data_create(1, NULL);
  if (!md) return LLMC_ERROR(OUT_OF_MEMORY, "regex match data");
  llmc_status_t status = LLMC_OK;
  size_t pos = 0, gap = 0;
  while (pos <= n && !status) {
    int rc = pcre2_match(re, (PCRE2_SPTR)s, n, pos, 0, md, NULL);
    if (rc == PCRE2_ERROR_NOMATCH) break;
    if (rc < 0) {
      PCRE2_UCHAR msg[256];
      pcre2_get_error_message(rc, msg, sizeof msg);
      status = LLMC_ERROR(INVALID_ARGUMENT, "pre-tokenizer regex on a %zu-byte text: %s", n,
                          (const char *)msg);
      break;
    }
    const PCRE2_SIZE *ov = pcre2_get_ovector_pointer(md);
    size_t a = ov[0], b = ov[1];
    if (b > a) {
      if (a > gap) status = stretch_push(out, gap, a, false);
      if (!status) status = stretch_push(out, a, b, true);
      gap = pos = b;
    } else { /* an empty match: go on one character later */
      if (a >= n) break;
      int32_t cp;
      pos = a + llmc_tok_utf8_next((const uint8_t *)s + a, n - a, &cp);
    }
  }
  if (!status && gap < n) status = stretch_push(out, gap, n, false);
  pcre2_match_data_free(md);
  return status;
}

/* The split operation on one piece: stretches combined as op->behavior says. */
static llmc_status_t apply_split(const llmc_tok_op_t *op, const char *s, size_t n, bool origin,
                                 llmc_tok_pieces_t *out) {
  stretches_t st = {0};
  llmc_status_t status = find_stretches(op->re, s, n, &st);
  for (size_t i = 0; i < st.n && op->invert; i++) st.v[i].match = !st.v[i].match;

  /* Combine in place: kept[0, k) are the pieces (match means "drop"). */
  size_t k = 0;
  bool prev_match = false;
  switch (op->behavior) {
  case LLMC_TOK_SPLIT_REMOVED:
    for (size_t i = 0; i < st.n; i++)
      if (!st.v[i].match) st.v[k++] = st.v[i];
    break;
  case LLMC_TOK_SPLIT_ISOLATED: k = st.n; break;
  case LLMC_TOK_SPLIT_MERGED_WITH_PREVIOUS:
    for (size_t i = 0; i < st.n; i++) {
      if (st.v[i].match && !prev_match && k > 0)
        st.v[k - 1].end = st.v[i].end;
      else
        st.v[k++] = st.v[i];
      prev_match = st.v[i].match;
    }
    break;
  case LLMC_TOK_SPLIT_MERGED_WITH_NEXT: /* the same, walking backwards */
    for (size_t i = st.n; i-- > 0;) {
      stretch_t cur = st.v[i];
      if (cur.match && !prev_match && k > 0)
        st.v[st.n - k].start = cur.start;
      else
        st.v[st.n - ++k] = cur;
      prev_match = cur.match;
    }
    memmove(st.v, st.v + st.n - k, k * sizeof *st.v);
    break;
  case LLMC_TOK_SPLIT_CONTIGUOUS:
    for (size_t i = 0; i < st.n; i++) {
      if (st.v[i].match == prev_match && k > 0)
        st.v[k - 1].end = st.v[i].end;
      else
        st.v[k++] = st.v[i];
      prev_match = st.v[i].match;
    }
    break;
  case LLMC_TOK_SPLIT_BEHAVIOR_COUNT: break;
  }
  for (size_t i = 0; i < k && !status; i++)
    status = llmc_tok_pieces_push(out, s + st.v[i].start, st.v[i].end - st.v[i].start,
                                  origin && st.v[i].start == 0);
  free(st.v);
  return status;
}

/* Every match of op->re replaced by op->text. */
static llmc_status_t apply_replace(const llmc_tok_op_t *op, const char *s, size_t n, bool origin,
                                   llmc_tok_pieces_t *out) {
  stretches_t st = {0};
  llmc_status_t status = find_stretches(op->re, s, n, &st);
  size_t start = out->len;
  for (size_t i = 0; i < st.n && !status; i++) {
    if (st.v[i].match)
      status = buf_append(out, op->text, op->text_len);
    else
      status = buf_append(out, s + st.v[i].start, st.v[i].end - st.v[i].start);
  }
  free(st.v);
  if (!status) status = span_close(out, start, origin);
  return status;
}

/* NFC / NFD / NFKC / NFKD through utf8proc, one valid run at a time (bytes
 * that are not UTF-8 pass through unchanged). */
static llmc_status_t apply_unicode_form(llmc_tok_op_kind_t kind, const char *s, size_t n,
                                        bool origin, llmc_tok_pieces_t *out) {
  utf8proc_option_t options = UTF8PROC_STABLE;
  options |=
      (kind == LLMC_TOK_OP_NFC || kind == LLMC_TOK_OP_NFKC) ? UTF8PROC_COMPOSE : UTF8PROC_DECOMPOSE;
  if (kind == LLMC_TOK_OP_NFKC || kind == LLMC_TOK_OP_NFKD) options |= UTF8PROC_COMPAT;
  const uint8_t *u = (const uint8_t *)s;
  size_t start = out->len;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    int32_t cp = 0;
    while (j < n) {
      size_t len = llmc_tok_utf8_next(u + j, n - j, &cp);
      if (cp < 0) break;
      j += len;
    }
    if (j > i) {
      utf8proc_uint8_t *mapped = NULL;
      utf8proc_ssize_t m = utf8proc_map(u + i, (utf8proc_ssize_t)(j - i), &mapped, options);
      if (m < 0) {
        free(mapped);
        return LLMC_ERROR(INVALID_ARGUMENT, "normalizer: %s", utf8proc_errmsg(m));
      }
      llmc_status_t status = buf_append(out, (const char *)mapped, (size_t)m);
      free(mapped);
      LLMC_PROPAGATE(status);
    }
    if (j < n) { /* an invalid byte */
      LLMC_PROPAGATE(buf_append(out, s + j, 1));
      j++;
    }
    i = j;
  }
  return span_close(out, start, origin);
}

static llmc_status_t apply_lowercase(const char *s, size_t n, bool origin, llmc_tok_pieces_t *out) {
  const uint8_t *u = (const uint8_t *)s;
  size_t start = out->len;
  for (size_t i = 0; i < n;) {
    int32_t cp;
    size_t len = llmc_tok_utf8_next(u + i, n - i, &cp);
    if (cp < 0) {
      LLMC_PROPAGATE(buf_append(out, s + i, len));
    } else {
      utf8proc_uint8_t enc[4];
      utf8proc_ssize_t m = utf8proc_encode_char(utf8proc_tolower(cp), enc);
      LLMC_PROPAGATE(buf_append(out, (const char *)enc, (size_t)m));
    }
    i += len;
  }
  return span_close(out, start, origin);
}

static llmc_status_t apply_strip(const llmc_tok_op_t *op, const char *s, size_t n, bool origin,
                                 llmc_tok_pieces_t *out) {
  const uint8_t *u = (const uint8_t *)s;
  size_t a = 0, b = n;
  while (op->left && a < n) {
    int32_t cp;
    size_t len = llmc_tok_utf8_next(u + a, n - a, &cp);
    if (!llmc_tok_is_space(cp)) break;
    a += len;
  }
  if (op->right) { /* walk forwards, remembering where the trailing run starts */
    size_t run = b;
    for (size_t i = a; i < n;) {
      int32_t cp;
      size_t len = llmc_tok_utf8_next(u + i, n - i, &cp);
      if (!llmc_tok_is_space(cp))
        run = n;
      else if (run == n)
        run = i;
      i += len;
    }
    b = run < b ? run : b;
  }
  return llmc_tok_pieces_push(out, s + a, b - a, origin && a == 0);
}

static llmc_status_t apply_prepend(const llmc_tok_op_t *op, const char *s, size_t n, bool origin,
                                   llmc_tok_pieces_t *out) {
  bool skip = (op->first_only && !origin) ||
              (op->if_missing && n >= op->text_len && memcmp(s, op->text, op->text_len) == 0);
  size_t start = out->len;
  if (n && !skip) LLMC_PROPAGATE(buf_append(out, op->text, op->text_len));
  LLMC_PROPAGATE(buf_append(out, s, n));
  return span_close(out, start, origin);
}

static llmc_status_t apply_byte_level(const char *s, size_t n, bool origin,
                                      llmc_tok_pieces_t *out) {
  size_t start = out->len;
  LLMC_PROPAGATE(buf_reserve(out, 2 * n));
  for (size_t i = 0; i < n; i++) out->len += llmc_tok_byte_char((uint8_t)s[i], out->buf + out->len);
  return span_close(out, start, origin);
}

static llmc_status_t apply_op(const llmc_tok_op_t *op, const char *s, size_t n, bool origin,
                              llmc_tok_pieces_t *out) {
  switch (op->kind) {
  case LLMC_TOK_OP_NFC:
  case LLMC_TOK_OP_NFD:
  case LLMC_TOK_OP_NFKC:
  case LLMC_TOK_OP_NFKD: return apply_unicode_form(op->kind, s, n, origin, out);
  case LLMC_TOK_OP_LOWERCASE: return apply_lowercase(s, n, origin, out);
  case LLMC_TOK_OP_STRIP: return apply_strip(op, s, n, origin, out);
  case LLMC_TOK_OP_PREPEND: return apply_prepend(op, s, n, origin, out);
  case LLMC_TOK_OP_REPLACE: return apply_replace(op, s, n, origin, out);
  case LLMC_TOK_OP_SPLIT: return apply_split(op, s, n, origin, out);
  case LLMC_TOK_OP_BYTE_LEVEL: return apply_byte_level(s, n, origin, out);
  case LLMC_TOK_OP_KIND_COUNT: break;
  }
  return LLMC_ERROR(INTERNAL, "tokenizer operation %d", (int)op->kind);
}

llmc_status_t llmc_tok_ops_run(const llmc_tok_ops_t *ops, llmc_tok_pieces_t *p,
                               llmc_tok_pieces_t *scratch) {
  for (size_t i = 0; i < ops->n; i++) {
    llmc_tok_pieces_clear(scratch);
    for (size_t j = 0; j < p->n; j++) {
      const llmc_tok_span_t *sp = &p->spans[j];
      LLMC_PROPAGATE(apply_op(&ops->v[i], p->buf + sp->start, sp->len, sp->origin, scratch));
    }
    llmc_tok_pieces_t t = *p;
    *p = *scratch;
    *scratch = t;
  }
  return LLMC_OK;
}
