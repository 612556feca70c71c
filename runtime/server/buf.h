/* buf.h — a growable byte buffer, for request bodies and the server-sent
 * events waiting to be written. Header-only: three small functions used by
 * two files of the server. */
#ifndef LLMC_SERVER_BUF_H
#define LLMC_SERVER_BUF_H

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* Owns data; always NUL-terminated after len bytes once anything was
 * appended. A zero-initialised buffer is empty and valid. */
typedef struct llmc_buf {
  char *data;
  size_t len, cap;
} llmc_buf_t;

/* Appends n bytes; false (buffer unchanged) when memory runs out. */
static inline bool llmc_buf_append(llmc_buf_t *b, const void *data, size_t n) {
  if (n > (size_t)-1 / 2 - b->len - 1) return false;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1) cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) return false;
    b->data = p;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, data, n);
  b->len += n;
  b->data[b->len] = 0;
  return true;
}

/* Appends a NUL-terminated string. */
static inline bool llmc_buf_append_str(llmc_buf_t *b, const char *s) {
  return llmc_buf_append(b, s, strlen(s));
}

/* Frees the data; the buffer is empty again. */
static inline void llmc_buf_deinit(llmc_buf_t *b) {
  free(b->data);
  *b = (llmc_buf_t){0};
}

#endif /* LLMC_SERVER_BUF_H */
