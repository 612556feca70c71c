/* arena.c — see arena.h. Chunks of at least 64 KiB, chained. */
#include "support/arena.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct chunk {
  struct chunk *next;
  size_t used, size;
  _Alignas(16) unsigned char data[];
} chunk_t;

struct llmc_arena {
  chunk_t *head;
};

llmc_arena_t *llmc_arena_create(void) { return calloc(1, sizeof(llmc_arena_t)); }

void llmc_arena_destroy(llmc_arena_t *a) {
  if (!a) return;
  for (chunk_t *c = a->head, *next; c; c = next) {
    next = c->next;
    free(c);
  }
  free(a);
}

void *llmc_arena_alloc(llmc_arena_t *a, size_t size) {
  size = (size + 15) & ~(size_t)15;
  chunk_t *c = a->head;
  if (!c || c->size - c->used < size) {
    size_t cap = size > 65536 ? size : 65536;
    c = malloc(sizeof(chunk_t) + cap);
    if (!c) {
      fprintf(stderr, "llmc: out of memory (arena, %zu bytes)\n", size);
      abort();
    }
    c->size = cap;
    c->used = 0;
    c->next = a->head;
    a->head = c;
  }
  void *p = c->data + c->used;
  c->used += size;
  memset(p, 0, size);
  return p;
}

char *llmc_arena_strdup(llmc_arena_t *a, const char *s) {
  if (!s) return NULL;
  size_t n = strlen(s) + 1;
  return memcpy(llmc_arena_alloc(a, n), s, n);
}

char *llmc_arena_printf(llmc_arena_t *a, const char *fmt, ...) {
  va_list ap, ap2;
  va_start(ap, fmt);
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  char *buf = llmc_arena_alloc(a, (size_t)(n < 0 ? 0 : n) + 1);
  vsnprintf(buf, (size_t)n + 1, fmt, ap2);
  va_end(ap2);
  return buf;
}
