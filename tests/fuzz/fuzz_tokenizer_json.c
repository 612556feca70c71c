/* fuzz_tokenizer_json.c — libFuzzer target for the tokenizer.json loader
 * and everything a loaded tokenizer then does (runtime/tokenizer*.c,
 * runtime/pretokenize.c).
 *
 * Each input is parsed as a tokenizer.json. When it loads, a few fixed
 * texts and the input itself (as text: arbitrary bytes, invalid UTF-8
 * included) are encoded with and without special-token parsing, and the
 * ids are decoded at once and through the streaming decoder, whose pieces
 * must be valid UTF-8. Seeds in corpus/fuzz_tokenizer_json. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether s[0, n) is valid UTF-8 (enough of a check for the stream's promise). */
static int valid_utf8(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    size_t len = u[i] < 0x80             ? 1
                 : (u[i] & 0xE0) == 0xC0 ? 2
                 : (u[i] & 0xF0) == 0xE0 ? 3
                 : (u[i] & 0xF8) == 0xF0 ? 4
                                         : 0;
    if (!len || i + len > n) return 0;
    for (size_t k = 1; k < len; k++)
      if ((u[i + k] & 0xC0) != 0x80) return 0;
    i += len;
  }
  return 1;
}

static void exercise(const llmc_tokenizer_t *tok, const char *text, size_t len) {
  for (uint32_t flags = 0; flags < 4; flags++) {
    int32_t *ids = NULL;
    size_t n = 0;
    llmc_status_t st = llmc_tokenizer_encode(tok, text, len, flags, &ids, &n);
    if (st) {
      llmc_status_free(st);
      continue;
    }
    char *out = NULL;
    size_t out_len = 0;
    /* Every id encode gives is one decode accepts. */
    st = llmc_tokenizer_decode(tok, ids, n, flags & 1 ? LLMC_DETOKENIZE_SKIP_SPECIAL : 0, &out,
                               &out_len);
    if (st) abort();
    free(out);
    llmc_tokenizer_stream_t s;
    llmc_tokenizer_stream_init(&s, tok, 0);
    for (size_t i = 0; i <= n; i++) {
      const char *piece;
      size_t piece_len;
      st = i < n ? llmc_tokenizer_stream_push(&s, ids[i], &piece, &piece_len)
                 : llmc_tokenizer_stream_finish(&s, &piece, &piece_len);
      if (st || !valid_utf8(piece, piece_len)) abort();
    }
    llmc_tokenizer_stream_deinit(&s);
    free(ids);
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llmc_tokenizer_t *tok = NULL;
  llmc_status_t st = llmc_tokenizer_parse_hf_json((const char *)data, size, "fuzz.json", &tok);
  if (st) {
    llmc_status_free(st);
    return 0;
  }
  static const char *const texts[] = {"Hello world", "  a\tb\n\nc  ", "<s> <|x|> 123 4567",
                                      "\xf0\x9f\xa6\x99\xff\xc3"};
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++)
    exercise(tok, texts[i], strlen(texts[i]));
  exercise(tok, (const char *)data, size < 4096 ? size : 4096);
  llmc_tokenizer_destroy(tok);
  return 0;
}
