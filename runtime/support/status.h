/* status.h — error values that carry a code, a message and where they
 * started, and gain context as they are returned up the stack (IREE's
 * iree_status_t, in small).
 *
 * A status is a pointer: NULL means success, anything else is an error the
 * receiver owns and must either return (usually after annotating it) or free
 * with llmc_status_free. Messages read outermost context first:
 *   "compiling m.json: tensor blk.0.attn_q.weight: file truncated" */
#ifndef LLMC_SUPPORT_STATUS_H
#define LLMC_SUPPORT_STATUS_H

#include <stdio.h>

typedef enum {
  LLMC_STATUS_OK = 0,
  LLMC_STATUS_INVALID_ARGUMENT, /* bad input: a file, a flag, a request */
  LLMC_STATUS_NOT_FOUND,
  LLMC_STATUS_IO,               /* the operating system said no */
  LLMC_STATUS_OUT_OF_MEMORY,
  LLMC_STATUS_UNIMPLEMENTED,
  LLMC_STATUS_ABI_MISMATCH,     /* a model.so built for another runtime */
  LLMC_STATUS_INTERNAL,         /* a bug in llmc */
  LLMC_STATUS_CODE_COUNT
} llmc_status_code_t;

typedef struct llmc_status_s *llmc_status_t;

#define LLMC_OK ((llmc_status_t)0)

/* Makes an error status with a printf-style message. Never returns NULL
 * (on allocation failure a static out-of-memory status is returned). */
llmc_status_t llmc_status_make(llmc_status_code_t code, const char *file, int line, const char *fmt,
                               ...) __attribute__((format(printf, 4, 5)));
#define LLMC_ERROR(code, ...) llmc_status_make(LLMC_STATUS_##code, __FILE__, __LINE__, __VA_ARGS__)

/* Prefixes "context: " to s's message and returns s (NULL stays NULL). */
llmc_status_t llmc_status_annotate(llmc_status_t s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns expr's error, as it is, from the calling function. */
#define LLMC_PROPAGATE(expr)                 \
  do {                                       \
    llmc_status_t status_ = (expr);          \
    if (status_) return status_;             \
  } while (0)

/* Returns (annotated) from the calling function if expr fails. */
#define LLMC_RETURN_IF_ERROR(expr, ...)                       \
  do {                                                        \
    llmc_status_t status_ = (expr);                           \
    if (status_) return llmc_status_annotate(status_, __VA_ARGS__); \
  } while (0)

llmc_status_code_t llmc_status_code(llmc_status_t s);
/* The message with all context; "OK" for NULL. Owned by s. */
const char *llmc_status_message(llmc_status_t s);
/* "file.c:123" where the error was made. Owned by s. */
const char *llmc_status_origin(llmc_status_t s);
void llmc_status_free(llmc_status_t s);
/* Prints "error: MESSAGE" to f (origin too when LLMC_DEBUG is set), frees s,
 * and returns the process exit status for it (1). */
int llmc_status_report(llmc_status_t s, FILE *f);

#endif
