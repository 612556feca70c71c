/* size.c — see size.h. The number is read digit by digit into an integer
 * and a fraction of at most 6 digits, so that whole byte counts are exact
 * at any size (a double would lose bytes past 2^53), no locale decides
 * what the decimal point is, and fraction * unit (< 10^6 * 2^40) fits in
 * 64 bits. */
#include "support/size.h"

#include <strings.h>

enum { MAX_FRACTION_DIGITS = 6 };

static const struct {
  const char *name; /* compared ignoring case */
  uint64_t bytes;
} units[] = {
    {"", 1},
    {"b", 1},
    {"k", 1ull << 10},
    {"kib", 1ull << 10},
    {"kb", 1000ull},
    {"m", 1ull << 20},
    {"mib", 1ull << 20},
    {"mb", 1000000ull},
    {"g", 1ull << 30},
    {"gib", 1ull << 30},
    {"gb", 1000000000ull},
    {"t", 1ull << 40},
    {"tib", 1ull << 40},
    {"tb", 1000000000000ull},
};

llmc_status_t llmc_parse_size(const char *text, uint64_t *out_bytes) {
  const uint64_t limit = 1ull << 63;
  const char *p = text;
  uint64_t whole = 0, frac = 0, frac_scale = 1; /* the number is whole + frac / frac_scale */
  int digits = 0;
  for (; *p >= '0' && *p <= '9'; p++, digits++) {
    uint64_t d = (uint64_t)(*p - '0');
    if (whole > (limit - d) / 10) goto bad;
    whole = whole * 10 + d;
  }
  if (*p == '.') {
    for (int n = 0; *++p >= '0' && *p <= '9'; n++, digits++)
      if (n < MAX_FRACTION_DIGITS) {
        frac = frac * 10 + (uint64_t)(*p - '0');
        frac_scale *= 10;
      }
  }
  if (digits == 0) goto bad;
  for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
    if (strcasecmp(p, units[u].name) != 0) continue;
    uint64_t unit = units[u].bytes;
    if (whole > limit / unit) goto bad;
    uint64_t bytes = whole * unit + frac * unit / frac_scale;
    if (bytes > limit) goto bad;
    *out_bytes = bytes;
    return LLMC_OK;
  }
bad:
  return LLMC_ERROR(INVALID_ARGUMENT,
                    "\"%s\" is not a size: expected a number and a unit, as 512MiB, 2G, 1.5GiB or "
                    "1048576 (at most 2^63 bytes)",
                    text);
}
