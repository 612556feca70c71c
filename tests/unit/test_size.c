/* test_size.c — llmc_parse_size (runtime/support/size.c): units, fractions,
 * limits and refusals. */
#include "check.h"
#include "support/size.h"

static void expect_size(const char *text, uint64_t want, int line) {
  uint64_t got = 0;
  if (check_ok_at(__FILE__, line, text, llmc_parse_size(text, &got)) && got != want) {
    fprintf(stderr, "test_size.c:%d: \"%s\" is %llu bytes, expected %llu\n", line, text,
            (unsigned long long)got, (unsigned long long)want);
    check_failures++;
  }
}

static void expect_bad(const char *text, int line) {
  uint64_t got = 0;
  check_error_at(__FILE__, line, text, llmc_parse_size(text, &got), LLMC_STATUS_INVALID_ARGUMENT,
                 "is not a size");
}

int main(void) {
  expect_size("1048576", 1048576, __LINE__);
  expect_size("0", 0, __LINE__);
  expect_size("512MiB", 512ull << 20, __LINE__);
  expect_size("512mib", 512ull << 20, __LINE__);
  expect_size("2G", 2ull << 30, __LINE__);
  expect_size("2g", 2ull << 30, __LINE__);
  expect_size("2GB", 2000000000ull, __LINE__);
  expect_size("1.5GiB", 3ull << 29, __LINE__);
  expect_size("0.5k", 512, __LINE__);
  expect_size("100B", 100, __LINE__);
  expect_size("3TiB", 3ull << 40, __LINE__);
  expect_size("1.0000009K", 1024, __LINE__); /* digits past the sixth ignored */
  expect_size("1.5", 1, __LINE__);           /* a fractional byte rounds down */
  expect_size("9223372036854775808", 1ull << 63, __LINE__);
  expect_size("8388608TiB", 1ull << 63, __LINE__);
  expect_bad("", __LINE__);
  expect_bad("GiB", __LINE__);
  expect_bad("-1G", __LINE__);
  expect_bad(" 1G", __LINE__);
  expect_bad("1 G", __LINE__);
  expect_bad("1.2.3", __LINE__);
  expect_bad("2PB", __LINE__);
  expect_bad("1e9", __LINE__);
  expect_bad("9223372036854775809", __LINE__);
  expect_bad("8388609TiB", __LINE__);
  expect_bad("99999999999999999999999", __LINE__);
  return check_report("test_size");
}
