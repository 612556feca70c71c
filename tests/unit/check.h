/* check.h — the assertions every unit test (tests/unit/test_*.c) uses.
 *
 * A unit test is one program: it runs all its checks, a failed check prints
 * file:line, the expression and both values to stderr and adds one to
 * check_failures, and the run goes on, so that one run shows every broken
 * expectation. main ends with `return check_report("test_name");`.
 *
 * Each test is a single translation unit, so the counter is a static here
 * and the helpers are static inline (a test that does not use one is not
 * warned about it). A test's own helpers that check in their own way (a
 * tolerance per element, an import with two needles) print their report
 * and add to check_failures themselves. */
#ifndef LLMC_TESTS_UNIT_CHECK_H
#define LLMC_TESTS_UNIT_CHECK_H

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "support/status.h"

/* Checks failed so far in this program. */
static int check_failures;

/* cond holds. */
#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      check_failures++;                                                        \
    }                                                                          \
  } while (0)

/* cond holds; on failure the printf-style message after it says what was
 * expected and what came instead. */
#define CHECK_MSG(cond, ...)                                                     \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "%s:%d: CHECK failed: %s\n  ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                                              \
      fputc('\n', stderr);                                                       \
      check_failures++;                                                          \
    }                                                                            \
  } while (0)

/* a == b as integers (both converted to long long). */
#define CHECK_EQ_INT(a, b) \
  check_eq_int_at(__FILE__, __LINE__, #a, #b, (long long)(a), (long long)(b))

/* a == b exactly, as doubles. */
#define CHECK_EQ_NUM(a, b) check_eq_num_at(__FILE__, __LINE__, #a, #b, (a), (b))

/* |a - b| <= rel * |b| (NaN fails). */
#define CHECK_NEAR(a, b, rel) check_near_at(__FILE__, __LINE__, #a, (a), (b), (rel))

/* Two NUL-terminated strings are equal; NULL on either side fails. */
#define CHECK_EQ_STR(a, b) check_eq_str_at(__FILE__, __LINE__, #a, (a), (b))

/* got [n] and want [n] are the same floats bit for bit; `what` names the
 * arrays in the report of the first difference. */
#define CHECK_BITS(what, got, want, n) check_bits_at(__FILE__, __LINE__, (what), (got), (want), (n))

/* The work of the macros above: each checks, reports at file:line with
 * both values, and counts a failure. */
static inline void check_eq_int_at(const char *file, int line, const char *a_text,
                                   const char *b_text, long long a, long long b) {
  if (a == b) return;
  fprintf(stderr, "%s:%d: %s == %lld, expected %s == %lld\n", file, line, a_text, a, b_text, b);
  check_failures++;
}

static inline void check_eq_num_at(const char *file, int line, const char *a_text,
                                   const char *b_text, double a, double b) {
  if (a == b) return;
  fprintf(stderr, "%s:%d: %s == %.9g, expected %s == %.9g\n", file, line, a_text, a, b_text, b);
  check_failures++;
}

static inline void check_near_at(const char *file, int line, const char *a_text, double a,
                                 double b, double rel) {
  if (fabs(a - b) <= rel * fabs(b)) return;
  fprintf(stderr, "%s:%d: %s == %.9g, expected %.9g (rel %g)\n", file, line, a_text, a, b, rel);
  check_failures++;
}

static inline void check_eq_str_at(const char *file, int line, const char *a_text, const char *a,
                                   const char *b) {
  if (a && b && strcmp(a, b) == 0) return;
  fprintf(stderr, "%s:%d: %s == \"%s\", expected \"%s\"\n", file, line, a_text,
          a ? a : "(null)", b ? b : "(null)");
  check_failures++;
}

static inline void check_bits_at(const char *file, int line, const char *what, const float *got,
                                 const float *want, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    if (memcmp(&got[i], &want[i], sizeof(float)) != 0) {
      fprintf(stderr, "%s:%d: %s [%lld]: got %.9g, want %.9g (bits differ)\n", file, line, what,
              (long long)i, got[i], want[i]);
      check_failures++;
      return;
    }
  }
}

/* CHECK_OK's work: st must be OK; frees st; true when it was. */
static inline bool check_ok_at(const char *file, int line, const char *what, llmc_status_t st) {
  if (!st) return true;
  fprintf(stderr, "%s:%d: %s failed: %s\n", file, line, what, llmc_status_message(st));
  check_failures++;
  llmc_status_free(st);
  return false;
}

/* The status expression succeeds (it is freed if not); an expression that
 * is true when it did. */
#define CHECK_OK(expr) check_ok_at(__FILE__, __LINE__, #expr, (expr))

/* CHECK_ERROR's work: st must be an error of `code` whose message contains
 * needle; `what` names the operation in the report. Frees st. */
static inline void check_error_at(const char *file, int line, const char *what, llmc_status_t st,
                                  llmc_status_code_t code, const char *needle) {
  if (!st) {
    fprintf(stderr, "%s:%d: %s succeeded, expected an error (code %d) with \"%s\"\n", file, line,
            what, (int)code, needle);
    check_failures++;
    return;
  }
  if (llmc_status_code(st) != code || !strstr(llmc_status_message(st), needle)) {
    fprintf(stderr, "%s:%d: %s: got code %d \"%s\", expected code %d with \"%s\"\n", file, line,
            what, (int)llmc_status_code(st), llmc_status_message(st), (int)code, needle);
    check_failures++;
  }
  llmc_status_free(st);
}

/* The status expression fails with LLMC_STATUS_<CODE> and a message that
 * contains needle; frees the status. */
#define CHECK_ERROR(expr, CODE, needle) \
  check_error_at(__FILE__, __LINE__, #expr, (expr), LLMC_STATUS_##CODE, (needle))

/* main's exit status: 0 when every check passed, else 1 after a count of
 * the failures on stderr. `name` is the test's name. */
static inline int check_report(const char *name) {
  if (check_failures) {
    fprintf(stderr, "%s: %d check(s) failed\n", name, check_failures);
    return 1;
  }
  printf("%s: all passed\n", name);
  return 0;
}

#endif
