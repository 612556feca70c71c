/* arena.h — a bump allocator for things that live and die together
 * (an IR module, one pass's scratch data, a parsed request).
 * Allocations are 16-byte aligned and zeroed; nothing is freed one by one. */
#ifndef LLMC_SUPPORT_ARENA_H
#define LLMC_SUPPORT_ARENA_H

#include <stddef.h>

typedef struct llmc_arena llmc_arena_t;

/* Creates an empty arena; NULL if out of memory. */
llmc_arena_t *llmc_arena_create(void);
/* Frees every allocation and the arena itself. NULL is fine. */
void llmc_arena_destroy(llmc_arena_t *a);
/* Zeroed memory of `size` bytes. Aborts on out-of-memory: the compiler has
 * no sensible way to go on, and the runtime never uses arenas on the
 * serving path. */
void *llmc_arena_alloc(llmc_arena_t *a, size_t size);
/* Copy of s (NULL stays NULL). */
char *llmc_arena_strdup(llmc_arena_t *a, const char *s);
/* printf into the arena. */
char *llmc_arena_printf(llmc_arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
