/* hex.h — hexadecimal digits, for the parsers that read escapes and byte
 * tokens (the IR text form's \u escapes, SentencePiece's <0xNN> tokens). */
#ifndef LLMC_SUPPORT_HEX_H
#define LLMC_SUPPORT_HEX_H

/* The value of hex digit c, or -1 if c is not one. */
static inline int llmc_hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

#endif
