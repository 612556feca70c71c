/* file.c — see file.h. */
#include "support/file.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

llmc_status_t llmc_file_read_stream(FILE *f, const char *name, char **out_data, size_t *out_len) {
  *out_data = NULL;
  *out_len = 0;
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  while (buf) {
    len += fread(buf + len, 1, cap - len - 1, f);
    if (len < cap - 1) break;
    char *bigger = realloc(buf, cap * 2);
    if (!bigger) {
      free(buf);
      buf = NULL;
      break;
    }
    buf = bigger;
    cap *= 2;
  }
  if (!buf) return LLMC_ERROR(OUT_OF_MEMORY, "reading %s", name);
  if (ferror(f)) {
    free(buf);
    return LLMC_ERROR(IO, "error reading %s", name);
  }
  buf[len] = 0;
  *out_data = buf;
  *out_len = len;
  return LLMC_OK;
}

llmc_status_t llmc_file_read_all(const char *path, char **out_data, size_t *out_len) {
  *out_data = NULL;
  *out_len = 0;
  FILE *f = fopen(path, "rb");
  if (!f) return LLMC_ERROR(IO, "cannot open %s: %s", path, strerror(errno));
  llmc_status_t s = llmc_file_read_stream(f, path, out_data, out_len);
  fclose(f);
  return s;
}

char *llmc_path_dirname(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash) return strdup(".");
  if (slash == path) return strdup("/");
  size_t n = (size_t)(slash - path);
  char *d = malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = 0;
  }
  return d;
}
