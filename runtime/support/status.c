/* status.c — see status.h. */
#include "support/status.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

struct llmc_status_s {
  llmc_status_code_t code;
  char origin[96];
  char *message; /* malloc'ed; NULL only for the static OOM status */
};

static struct llmc_status_s oom_status = {LLMC_STATUS_OUT_OF_MEMORY, "status.c", NULL};

static char *vformat(const char *fmt, va_list ap) {
  va_list ap2;
  va_copy(ap2, ap);
  int n = vsnprintf(NULL, 0, fmt, ap2);
  va_end(ap2);
  if (n < 0) return NULL;
  char *buf = malloc((size_t)n + 1);
  if (buf) vsnprintf(buf, (size_t)n + 1, fmt, ap);
  return buf;
}

llmc_status_t llmc_status_make(llmc_status_code_t code, const char *file, int line, const char *fmt,
                               ...) {
  llmc_status_t s = calloc(1, sizeof *s);
  if (!s) return &oom_status;
  va_list ap;
  va_start(ap, fmt);
  s->message = vformat(fmt, ap);
  va_end(ap);
  if (!s->message) {
    free(s);
    return &oom_status;
  }
  s->code = code;
  const char *base = strrchr(file, '/');
  snprintf(s->origin, sizeof s->origin, "%s:%d", base ? base + 1 : file, line);
  return s;
}

llmc_status_t llmc_status_annotate(llmc_status_t s, const char *fmt, ...) {
  if (!s || s == &oom_status) return s;
  va_list ap;
  va_start(ap, fmt);
  char *ctx = vformat(fmt, ap);
  va_end(ap);
  if (!ctx) return s;
  if (ctx[0]) {
    size_t n = strlen(ctx) + 2 + strlen(s->message) + 1;
    char *joined = malloc(n);
    if (joined) {
      snprintf(joined, n, "%s: %s", ctx, s->message);
      free(s->message);
      s->message = joined;
    }
  }
  free(ctx);
  return s;
}

llmc_status_code_t llmc_status_code(llmc_status_t s) { return s ? s->code : LLMC_STATUS_OK; }

const char *llmc_status_message(llmc_status_t s) {
  if (!s) return "OK";
  return s->message ? s->message : "out of memory";
}

const char *llmc_status_origin(llmc_status_t s) { return s ? s->origin : ""; }

void llmc_status_free(llmc_status_t s) {
  if (!s || s == &oom_status) return;
  free(s->message);
  free(s);
}

int llmc_status_report(llmc_status_t s, FILE *f) {
  if (getenv("LLMC_DEBUG"))
    fprintf(f, "error: %s [%s]\n", llmc_status_message(s), llmc_status_origin(s));
  else
    fprintf(f, "error: %s\n", llmc_status_message(s));
  llmc_status_free(s);
  return 1;
}
