/* size.h — byte counts written by people: "512MiB", "2G", "1.5GiB",
 * "1048576" (the values of --kv-memory and the like). */
#ifndef LLMC_SUPPORT_SIZE_H
#define LLMC_SUPPORT_SIZE_H

#include <stdint.h>

#include "support/status.h"

/* *out_bytes = the size `text` names: a decimal number (a fraction is
 * allowed: "1.5GiB") and an optional unit, case-insensitive: none or B for
 * bytes; K, M, G, T, or KiB, MiB, GiB, TiB for powers of 1024 (as most
 * tools mean "2G"); KB, MB, GB, TB for powers of 1000. Digits past the
 * sixth after the point are ignored, and a fractional byte count is
 * rounded down. Anything else (no digits, an unknown unit, a
 * negative number, more than 2^63 bytes) is an INVALID_ARGUMENT error that
 * quotes the text. */
llmc_status_t llmc_parse_size(const char *text, uint64_t *out_bytes);

#endif
