/* jinja_text.c — the text primitives under the Jinja2 interpreter: error
 * unwinding, the budgeted allocator, growable buffers, UTF-8, the parts of
 * Python's Unicode tables that templates reach (whitespace, line breaks,
 * case), and Python's repr() of floats.
 *
 * Strings are UTF-8 bytes throughout; Python counts and indexes code points,
 * so everything that measures or cuts a string goes through
 * jinja_utf8_decode. Case mapping covers the scripts with simple one-to-one
 * mappings that sit in the first 0x500 code points; beyond them characters
 * are uncased (docs/chat-templates.md lists this among the known gaps). */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jinja.h"

_Noreturn void jinja_throw(jinja_trap_t *trap, int line, int col, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (line > 0)
    trap->status = LLMC_ERROR(INVALID_ARGUMENT, "%d:%d: %s", line, col, msg);
  else
    trap->status = LLMC_ERROR(INVALID_ARGUMENT, "%s", msg);
  longjmp(trap->jmp, 1);
}

void *jinja_alloc(jinja_heap_t *h, size_t size) {
  if (size > h->limit - h->used)
    jinja_throw(h->trap, 0, 0, "the template needs more than %zu MiB of memory", h->limit >> 20);
  h->used += size;
  return llmc_arena_alloc(h->arena, size);
}

/* ---- buffers ---- */

static void buf_reserve(jinja_buf_t *b, size_t extra) {
  if (b->cap - b->len > extra) return;
  size_t cap = b->cap ? b->cap : 64;
  while (cap - b->len <= extra) {
    if (cap > SIZE_MAX / 2) jinja_throw(b->heap->trap, 0, 0, "string too long");
    cap *= 2;
  }
  char *data = jinja_alloc(b->heap, cap);
  if (b->len) memcpy(data, b->data, b->len);
  b->data = data;
  b->cap = cap;
}

void jinja_buf_put(jinja_buf_t *b, const char *data, size_t len) {
  if (!len) return;
  buf_reserve(b, len);
  memcpy(b->data + b->len, data, len);
  b->len += len;
}

void jinja_buf_puts(jinja_buf_t *b, const char *s) { jinja_buf_put(b, s, strlen(s)); }

void jinja_buf_putc(jinja_buf_t *b, char c) { jinja_buf_put(b, &c, 1); }

void jinja_buf_put_cp(jinja_buf_t *b, uint32_t cp) {
  char u[4];
  size_t n;
  if (cp >= 0xDC80 && cp <= 0xDCFF) { /* an undecodable byte, given back as it was */
    u[0] = (char)(cp - 0xDC00);
    n = 1;
  } else if (cp < 0x80) {
    u[0] = (char)cp;
    n = 1;
  } else if (cp < 0x800) {
    u[0] = (char)(0xC0 | cp >> 6);
    u[1] = (char)(0x80 | (cp & 0x3F));
    n = 2;
  } else if (cp < 0x10000) {
    u[0] = (char)(0xE0 | cp >> 12);
    u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
    u[2] = (char)(0x80 | (cp & 0x3F));
    n = 3;
  } else {
    u[0] = (char)(0xF0 | cp >> 18);
    u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    u[3] = (char)(0x80 | (cp & 0x3F));
    n = 4;
  }
  jinja_buf_put(b, u, n);
}

void jinja_buf_printf(jinja_buf_t *b, const char *fmt, ...) {
  char tmp[128];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  jinja_buf_put(b, tmp, n < 0 ? 0 : (size_t)n < sizeof tmp ? (size_t)n : sizeof tmp - 1);
}

jinja_str_t jinja_buf_str(const jinja_buf_t *b) {
  return (jinja_str_t){b->data ? b->data : "", b->len};
}

/* ---- UTF-8 ---- */

uint32_t jinja_utf8_decode(const char *s, size_t len, size_t *adv) {
  const unsigned char *u = (const unsigned char *)s;
  uint32_t c = u[0];
  size_t n = c < 0x80                ? 1
             : c >= 0xC2 && c < 0xE0 ? 2
             : c >= 0xE0 && c < 0xF0 ? 3
             : c >= 0xF0 && c < 0xF5 ? 4
                                     : 0;
  if (n == 1) {
    *adv = 1;
    return c;
  }
  if (n == 0 || n > len) goto invalid;
  uint32_t cp = c & (0xFF >> (n + 1));
  for (size_t i = 1; i < n; i++) {
    if ((u[i] & 0xC0) != 0x80) goto invalid;
    cp = cp << 6 | (u[i] & 0x3F);
  }
  /* overlong forms, surrogates and values past U+10FFFF are not UTF-8 */
  if ((n == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
      (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
    goto invalid;
  *adv = n;
  return cp;
invalid:
  *adv = 1;
  return 0xDC00 + c;
}

size_t jinja_utf8_count(jinja_str_t s) {
  size_t n = 0;
  for (size_t i = 0, adv; i < s.len; i += adv, n++) jinja_utf8_decode(s.data + i, s.len - i, &adv);
  return n;
}

bool jinja_is_space(uint32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x20) || cp == 0x85 || cp == 0xA0 ||
         cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 ||
         cp == 0x202F || cp == 0x205F || cp == 0x3000;
}

bool jinja_is_linebreak(uint32_t cp) {
  return (cp >= 0x0A && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1E) || cp == 0x85 || cp == 0x2028 ||
         cp == 0x2029;
}

/* Case pairs as ranges: code points lo..hi map to cp + delta, every `stride`
 * code points (stride 2: alternating upper/lower pairs). */
typedef struct {
  uint32_t lo, hi;
  int32_t delta;
  uint32_t stride;
} case_range_t;

static const case_range_t upper_to_lower[] = {
    {0x41, 0x5A, 32, 1},     {0xC0, 0xD6, 32, 1},   {0xD8, 0xDE, 32, 1},   {0x100, 0x12E, 1, 2},
    {0x132, 0x136, 1, 2},    {0x139, 0x147, 1, 2},  {0x14A, 0x176, 1, 2},  {0x179, 0x17D, 1, 2},
    {0x391, 0x3A1, 32, 1},   {0x3A3, 0x3AB, 32, 1}, {0x386, 0x386, 38, 1}, {0x388, 0x38A, 37, 1},
    {0x38C, 0x38C, 64, 1},   {0x38E, 0x38F, 63, 1}, {0x400, 0x40F, 80, 1}, {0x410, 0x42F, 32, 1},
    {0x460, 0x480, 1, 2},    {0x48A, 0x4BE, 1, 2},  {0x4C1, 0x4CD, 1, 2},  {0x4D0, 0x52E, 1, 2},
    {0x178, 0x178, -121, 1},
};

uint32_t jinja_to_lower(uint32_t cp) {
  for (size_t i = 0; i < sizeof upper_to_lower / sizeof upper_to_lower[0]; i++) {
    const case_range_t *r = &upper_to_lower[i];
    if (cp >= r->lo && cp <= r->hi && (cp - r->lo) % r->stride == 0)
      return (uint32_t)((int32_t)cp + r->delta);
  }
  return cp;
}

uint32_t jinja_to_upper(uint32_t cp) {
  if (cp == 0xB5) return 0x39C;  /* micro sign */
  if (cp == 0x3C2) return 0x3A3; /* final sigma */
  for (size_t i = 0; i < sizeof upper_to_lower / sizeof upper_to_lower[0]; i++) {
    const case_range_t *r = &upper_to_lower[i];
    uint32_t lo = (uint32_t)((int32_t)r->lo + r->delta), hi = (uint32_t)((int32_t)r->hi + r->delta);
    if (cp >= lo && cp <= hi && (cp - lo) % r->stride == 0)
      return (uint32_t)((int32_t)cp - r->delta);
  }
  return cp;
}

bool jinja_is_alpha(uint32_t cp) {
  if (cp < 0x80) return (cp | 32) >= 'a' && (cp | 32) <= 'z';
  return cp == 0xAA || cp == 0xB5 || cp == 0xBA || cp == 0xDF || jinja_to_lower(cp) != cp ||
         jinja_to_upper(cp) != cp;
}

bool jinja_is_digit(uint32_t cp) { return cp >= '0' && cp <= '9'; }

/* ---- floats ---- */

void jinja_format_float(double v, char buf[32]) {
  if (isnan(v)) {
    strcpy(buf, "nan");
    return;
  }
  if (isinf(v)) {
    strcpy(buf, v < 0 ? "-inf" : "inf");
    return;
  }
  /* the shortest digits that read back as v, as repr() chooses them */
  char sci[40];
  for (int prec = 1; prec <= 17; prec++) {
    snprintf(sci, sizeof sci, "%.*e", prec - 1, v);
    if (strtod(sci, NULL) == v) break;
  }
  char digits[24];
  size_t nd = 0;
  const char *p = sci;
  bool neg = *p == '-';
  if (neg) p++;
  for (; *p && *p != 'e'; p++)
    if (*p != '.') digits[nd++] = *p;
  int exp = atoi(p + 1);
  while (nd > 1 && digits[nd - 1] == '0') nd--;
  char *o = buf;
  if (neg) *o++ = '-';
  if (exp >= -4 && exp < 16) {
    if (exp < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = -1; i > exp; i--) *o++ = '0';
      memcpy(o, digits, nd);
      o += nd;
    } else {
      for (int i = 0; i <= exp; i++) *o++ = (size_t)i < nd ? digits[i] : '0';
      *o++ = '.';
      if ((size_t)exp + 1 < nd) {
        memcpy(o, digits + exp + 1, nd - (size_t)exp - 1);
        o += nd - (size_t)exp - 1;
      } else {
        *o++ = '0';
      }
    }
    *o = '\0';
  } else {
    *o++ = digits[0];
    if (nd > 1) {
      *o++ = '.';
      memcpy(o, digits + 1, nd - 1);
      o += nd - 1;
    }
    int e = exp < 0 ? -exp : exp; /* at most 3 digits for a double */
    *o++ = 'e';
    *o++ = exp < 0 ? '-' : '+';
    if (e >= 100) *o++ = (char)('0' + e / 100);
    *o++ = (char)('0' + e / 10 % 10);
    *o++ = (char)('0' + e % 10);
    *o = '\0';
  }
}
