/* cli.h — argument and file helpers shared by the llmc subcommands.
 *
 * Header-only (static inline) because the tool's source list is fixed in
 * CMakeLists.txt and these are a handful of small functions; every
 * subcommand parses flags with getopt_long and reports problems the same
 * way through them. */
#ifndef LLMC_TOOLS_CLI_H
#define LLMC_TOOLS_CLI_H

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/status.h"

/* Parses a decimal integer in [min, max] given for `flag`. */
static inline llmc_status_t llmc_cli_parse_int(const char *flag, const char *text, long min,
                                               long max, int32_t *out) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno || end == text || *end || v < min || v > max)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s %s: expected an integer in [%ld, %ld]", flag, text, min,
                      max);
  *out = (int32_t)v;
  return LLMC_OK;
}

/* Parses "1,5,7" into a malloc'ed array (*out_tokens, owned by the caller)
 * of *out_n >= 1 non-negative ids. */
static inline llmc_status_t llmc_cli_parse_tokens(const char *text, int32_t **out_tokens,
                                                  int32_t *out_n) {
  *out_tokens = NULL;
  *out_n = 0;
  size_t n = 1;
  for (const char *p = text; *p; p++) n += *p == ',';
  if (n > INT32_MAX) return LLMC_ERROR(INVALID_ARGUMENT, "--tokens: too many tokens");
  int32_t *tokens = malloc(n * sizeof *tokens);
  if (!tokens) return LLMC_ERROR(OUT_OF_MEMORY, "--tokens: %zu tokens", n);
  const char *p = text;
  for (size_t i = 0; i < n; i++) {
    char *end = NULL;
    errno = 0;
    long v = strtol(p, &end, 10);
    if (errno || end == p || v < 0 || v > INT32_MAX || (*end != ',' && *end != '\0')) {
      free(tokens);
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "--tokens %s: token %zu is not a non-negative integer (expected 1,5,7,...)",
                        text, i);
    }
    tokens[i] = (int32_t)v;
    p = end + (*end == ',');
  }
  *out_tokens = tokens;
  *out_n = (int32_t)n;
  return LLMC_OK;
}

/* Writes bytes bytes of data to path (created or truncated). */
static inline llmc_status_t llmc_cli_write_file(const char *path, const void *data, size_t bytes) {
  FILE *f = fopen(path, "wb");
  if (!f) return LLMC_ERROR(IO, "cannot create %s: %s", path, strerror(errno));
  int ok = fwrite(data, 1, bytes, f) == bytes;
  ok &= fclose(f) == 0;
  if (!ok) return LLMC_ERROR(IO, "error writing %s", path);
  return LLMC_OK;
}

/* Prints "llmc COMMAND: MESSAGE" and the usage line (the first line of
 * usage) on stderr; returns the exit status for bad usage, 2. */
static inline int llmc_cli_usage_error(const char *command, const char *usage, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline int llmc_cli_usage_error(const char *command, const char *usage, const char *fmt,
                                       ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "llmc %s: ", command);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  size_t first_line = strcspn(usage, "\n");
  fprintf(stderr, "\n%.*s\n(llmc %s --help tells more)\n", (int)first_line, usage, command);
  return 2;
}

/* The usage error for what getopt_long just returned: ':' (an option
 * without its value) or '?' (an unknown option). optstring must start
 * with ':' so that getopt itself prints nothing. */
static inline int llmc_cli_bad_option(const char *command, const char *usage, int opt,
                                      char **argv) {
  const char *arg = optind > 0 ? argv[optind - 1] : "?";
  if (opt == ':') return llmc_cli_usage_error(command, usage, "option %s needs a value", arg);
  if (optopt) return llmc_cli_usage_error(command, usage, "unknown option -%c", optopt);
  return llmc_cli_usage_error(command, usage, "unknown option %s", arg);
}

#endif /* LLMC_TOOLS_CLI_H */
