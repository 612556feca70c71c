/* test_tokenizer.c — the tokenizer API beyond the reference ids that
 * tests/e2e/check_tokenizers.py checks through `llmc tokenize`:
 *   - every tokenizer in tests/data/tokenizers loads, and decoding gives
 *     back tricky texts (scripts, emoji, whitespace runs, digits, code,
 *     invalid UTF-8, NUL) byte for byte;
 *   - the streaming decoder never splits a UTF-8 character and adds up
 *     to decode()'s text;
 *   - special tokens: parsed or not, added (BOS) or not, skipped when
 *     decoding, lstrip / rstrip / single_word;
 *   - broken tokenizer.json and GGUF inputs are errors, never crashes;
 *   - loading from a model's "tokenizer" spec;
 *   - a GGUF of only the keys the tokenizer reads (what a model.so embeds)
 *     tokenizes as the file it came from. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "formats/gguf.h"
#include "formats/gguf_write.h"
#include "support/file.h"
#include "tokenizer.h"

/* Fails the test (and frees st) if st is an error. */
static bool ok(llmc_status_t st, const char *what) {
  if (!st) return true;
  fprintf(stderr, "%s: unexpected error: %s\n", what, llmc_status_message(st));
  llmc_status_free(st);
  check_failures++;
  return false;
}

#define DATA "tests/data/tokenizers/"

/* Every tokenizer file the tests have, and whether its decoder removes a
 * space it added in front (SentencePiece style). */
static const char *const sources[] = {
    DATA "llama.cpp/ggml-vocab-gpt-2.gguf",     DATA "llama.cpp/ggml-vocab-llama-spm.gguf",
    DATA "llama.cpp/ggml-vocab-phi-3.gguf",     DATA "llama.cpp/ggml-vocab-falcon.gguf",
    DATA "llama.cpp/ggml-vocab-starcoder.gguf", DATA "llama.cpp/ggml-vocab-deepseek-coder.gguf",
    DATA "hf-json/llama2/tokenizer.json",       DATA "hf-json/phi-3/tokenizer.json",
    DATA "hf-json/phi-2/tokenizer.json",        DATA "hf-json/falcon-tokenizer/tokenizer.json",
    DATA "trained/bytelevel_llama3.json",       DATA "trained/sp_llama2.json",
};

typedef struct {
  const char *text;
  size_t len; /* 0: strlen */
} text_t;

static const text_t tricky[] = {
    {"Hello world", 0},
    {" Hello  world ", 0},
    {"   leading spaces", 0},
    {"trailing spaces   ", 0},
    {"\t\ttabs\tand\nnewlines\n\n\n", 0},
    {"\r\n", 0},
    {"na\xc3\xafve caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9", 0},
    {"\xce\x95\xce\xbb\xce\xbb\xce\xb7\xce\xbd\xce\xb9\xce\xba\xce\xac "
     "\xd0\x9f\xd1\x80\xd0\xb8\xd0\xb2\xd0\xb5\xd1\x82",
     0},
    {"\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e\xe3\x81\xae \xe4\xb8\xad\xe6\x96\x87 "
     "\xed\x95\x9c\xea\xb5\xad\xec\x96\xb4",
     0},
    {"\xd8\xa7\xd9\x84\xd8\xb9\xd8\xb1\xd8\xa8\xd9\x8a\xd8\xa9 "
     "\xe1\x9e\x80\xe1\x9e\xb6\xe1\x9e\x93\xe1\x9f\x8b",
     0},
    {"emoji \xf0\x9f\xa6\x99\xf0\x9f\xa6\x99 \xf0\x9f\x98\x80\xf0\x9f\x91\x8d\xf0\x9f\x8f\xbd "
     "\xf0\x9f\x98\xb6\xe2\x80\x8d\xf0\x9f\x8c\xab\xef\xb8\x8f",
     0},
    {"3.14159 1234567890 \xd9\xa1\xd9\xa2\xd9\xa3 33333333", 0},
    {"def f(x):\n    return x**2  # comment\n", 0},
    {"if (a[i] != b->c) { return -1; } // ''' \"\"\" ```", 0},
    {"\xef\xbc\xa6\xef\xbc\xb5\xef\xbc\xac\xef\xbc\xac width zero\xe2\x80\x8bwidth", 0},
    {"I'm can't we'll they've 'RE you sure?", 0},
    {"                                   many spaces", 0},
    {"", 0},
    {" ", 0},
    {"\n", 0},
    {"a", 0},
    /* not UTF-8: a stray continuation byte, a truncated character, a
       surrogate, a code point past U+10FFFF, NUL */
    {"a\xff\xfe b \x80x", 0},
    {"cut \xe2\x82", 0},
    {"\xc3", 0},
    {"s\xed\xa0\x80 \xf4\x90\x80\x80", 0},
    {"nul\0byte", 8},
};

static size_t text_len(const text_t *t) { return t->len ? t->len : strlen(t->text); }

/* Whether s[0, n) is valid UTF-8 (written out here, independent of the
 * tokenizer's own helper). */
static bool valid_utf8(const char *s, size_t n) {
  const unsigned char *u = (const unsigned char *)s;
  for (size_t i = 0; i < n;) {
    unsigned c = u[i];
    size_t len = c < 0x80                 ? 1
                 : c >= 0xC2 && c <= 0xDF ? 2
                 : c >= 0xE0 && c <= 0xEF ? 3
                 : c >= 0xF0 && c <= 0xF4 ? 4
                                          : 0;
    if (!len || i + len > n) return false;
    unsigned cp = len == 1 ? c : len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len; k++) {
      if ((u[i + k] & 0xC0) != 0x80) return false;
      cp = cp << 6 | (u[i + k] & 0x3F);
    }
    if ((len == 3 && (cp < 0x800 || (cp >= 0xD800 && cp <= 0xDFFF))) ||
        (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)))
      return false;
    i += len;
  }
  return true;
}

/* Whether every byte has a token: its GPT-2 stand-in or <0xNN>. Only
 * then can text that is not UTF-8 come back from decoding unchanged. */
static bool has_all_bytes(const llmc_tokenizer_t *tok) {
  for (int b = 0; b < 256; b++) {
    int cp = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || b >= 174 ? b
             : b <= 32                                                   ? 256 + b
             : b <= 160                                                  ? 256 + 33 + b - 127
                                                                         : 256 + 67;
    char stand_in[2] = {(char)cp, 0}, name[8];
    size_t len = 1;
    if (cp >= 0x80) {
      stand_in[0] = (char)(0xC0 | cp >> 6);
      stand_in[1] = (char)(0x80 | (cp & 0x3F));
      len = 2;
    }
    snprintf(name, sizeof name, "<0x%02X>", b);
    if (llmc_tokenizer_token_find(tok, stand_in, len) < 0 &&
        llmc_tokenizer_token_find(tok, name, 6) < 0)
      return false;
  }
  return true;
}

/* decode(encode(text)) == text, and the stream's pieces are whole
 * characters adding up to the decoded text. Text that is not UTF-8 must
 * come back only when every byte has a token of its own (bytes_ok):
 * byte-level vocabularies trained on UTF-8 often lack 0xC0, 0xF5..0xFF,
 * and Hugging Face and llama.cpp drop such bytes too. */
static void check_round_trip(const llmc_tokenizer_t *tok, const char *source, const text_t *t,
                             bool bytes_ok) {
  size_t len = text_len(t);
  if (!bytes_ok && !valid_utf8(t->text, len)) return;
  int32_t *ids = NULL;
  size_t n = 0;
  if (!ok(llmc_tokenizer_encode(tok, t->text, len, 0, &ids, &n), source)) return;
  char *back = NULL;
  size_t back_len = 0;
  if (ok(llmc_tokenizer_decode(tok, ids, n, 0, &back, &back_len), source)) {
    if (back_len != len || memcmp(back, t->text, len) != 0) {
      fprintf(stderr, "%s: round trip of \"%.*s\" gave \"%s\" (%zu ids)\n", source, (int)len,
              t->text, back, n);
      check_failures++;
    }
  }

  llmc_tokenizer_stream_t s;
  llmc_tokenizer_stream_init(&s, tok, 0);
  char *streamed = malloc(4 * len + 8);
  size_t streamed_len = 0;
  for (size_t i = 0; i <= n && streamed; i++) {
    const char *piece;
    size_t piece_len;
    llmc_status_t st = i < n ? llmc_tokenizer_stream_push(&s, ids[i], &piece, &piece_len)
                             : llmc_tokenizer_stream_finish(&s, &piece, &piece_len);
    if (!ok(st, source)) break;
    if (!valid_utf8(piece, piece_len)) {
      fprintf(stderr, "%s: \"%.*s\": stream piece %zu is not whole UTF-8\n", source, (int)len,
              t->text, i);
      check_failures++;
    }
    memcpy(streamed + streamed_len, piece, piece_len);
    streamed_len += piece_len;
  }
  /* For valid text the stream is exactly the decoded text. */
  if (streamed && valid_utf8(t->text, len) &&
      (streamed_len != len || memcmp(streamed, t->text, len) != 0)) {
    fprintf(stderr, "%s: stream of \"%.*s\" gave \"%.*s\"\n", source, (int)len, t->text,
            (int)streamed_len, streamed);
    check_failures++;
  }
  llmc_tokenizer_stream_deinit(&s);
  free(streamed);
  free(back);
  free(ids);
}

static void test_round_trips(void) {
  for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
    llmc_tokenizer_t *tok = NULL;
    if (!ok(llmc_tokenizer_load_file(sources[i], &tok), sources[i])) continue;
    CHECK(llmc_tokenizer_vocab_size(tok) > 1000);
    /* DeepSeek-coder's vocabulary has user-defined tokens "õ", "ÿ", ...
       (GGUF type 4): text "ÿ" is that token and decodes to "ÿ", so a raw
       byte 0xFF, whose stand-in is "ÿ" too, cannot come back. */
    bool bytes_ok = has_all_bytes(tok) && !strstr(sources[i], "deepseek");
    for (size_t k = 0; k < sizeof tricky / sizeof tricky[0]; k++)
      check_round_trip(tok, sources[i], &tricky[k], bytes_ok);
    llmc_tokenizer_destroy(tok);
  }
}

/* The ids of text under flags, compared with want[0, n_want). */
static void check_ids(const llmc_tokenizer_t *tok, const char *text, uint32_t flags,
                      const int32_t *want, size_t n_want, int line) {
  int32_t *ids = NULL;
  size_t n = 0;
  if (!ok(llmc_tokenizer_encode(tok, text, strlen(text), flags, &ids, &n), text)) return;
  bool same = n == n_want && (n == 0 || memcmp(ids, want, n * sizeof *ids) == 0);
  if (!same) {
    fprintf(stderr, "%s:%d: \"%s\" (flags %u) gave [", __FILE__, line, text, flags);
    for (size_t i = 0; i < n; i++) fprintf(stderr, "%s%d", i ? ", " : "", ids[i]);
    fprintf(stderr, "], expected [");
    for (size_t i = 0; i < n_want; i++) fprintf(stderr, "%s%d", i ? ", " : "", want[i]);
    fprintf(stderr, "]\n");
    check_failures++;
  }
  free(ids);
}

#define CHECK_IDS(tok, text, flags, ...)                                          \
  do {                                                                            \
    const int32_t want_[] = {__VA_ARGS__};                                        \
    check_ids(tok, text, flags, want_, sizeof want_ / sizeof want_[0], __LINE__); \
  } while (0)

/* decode(ids) under flags == want. */
static void check_decode(const llmc_tokenizer_t *tok, const int32_t *ids, size_t n, uint32_t flags,
                         const char *want, int line) {
  char *text = NULL;
  size_t len = 0;
  if (!ok(llmc_tokenizer_decode(tok, ids, n, flags, &text, &len), want)) return;
  if (len != strlen(want) || memcmp(text, want, len) != 0) {
    fprintf(stderr, "%s:%d: decoded \"%s\", expected \"%s\"\n", __FILE__, line, text, want);
    check_failures++;
  }
  free(text);
}

/* Decoding the ids of hf-json/reference.json gives the text Hugging Face's
 * decode gave (skip_special_tokens false). */
static void test_hf_decode(void) {
  char *json = NULL;
  size_t len = 0;
  if (!ok(llmc_file_read_all(DATA "hf-json/reference.json", &json, &len), "reference.json")) return;
  cJSON *ref = cJSON_ParseWithLength(json, len);
  free(json);
  CHECK(ref != NULL);
  const cJSON *set;
  cJSON_ArrayForEach(set, ref) {
    if (set->string[0] == '_') continue;
    char path[256];
    snprintf(path, sizeof path, DATA "hf-json/%s/tokenizer.json", set->string);
    llmc_tokenizer_t *tok = NULL;
    if (!ok(llmc_tokenizer_load_file(path, &tok), path)) continue;
    const cJSON *e;
    cJSON_ArrayForEach(e, set) {
      const cJSON *ids = cJSON_GetObjectItemCaseSensitive(e, "ids"), *id;
      const cJSON *decoded = cJSON_GetObjectItemCaseSensitive(e, "decoded");
      int32_t v[512];
      size_t n = 0;
      cJSON_ArrayForEach(id, ids) if (n < 512) v[n++] = (int32_t)id->valuedouble;
      check_decode(tok, v, n, 0, decoded->valuestring, __LINE__);
    }
    llmc_tokenizer_destroy(tok);
  }
  cJSON_Delete(ref);
}

static void test_special_tokens(void) {
  llmc_tokenizer_t *spm = NULL, *l3 = NULL, *hf = NULL;
  if (ok(llmc_tokenizer_load_file(DATA "llama.cpp/ggml-vocab-llama-spm.gguf", &spm), "llama-spm")) {
    CHECK(llmc_tokenizer_bos_id(spm) == 1 && llmc_tokenizer_eos_id(spm) == 2);
    CHECK_IDS(spm, "Hello world", 0, 15043, 3186);
    CHECK_IDS(spm, "Hello world", LLMC_TOKENIZE_ADD_SPECIAL, 1, 15043, 3186);
    /* "<s>" in the text: BOS only when special tokens are parsed; the
       text after a special token gets the dummy-prefix space again. */
    CHECK_IDS(spm, "<s>Hello", LLMC_TOKENIZE_PARSE_SPECIAL, 1, 15043);
    CHECK_IDS(spm, "<s>Hello", 0, 529, 29879, 29958, 10994);
    const int32_t ids[] = {1, 15043, 3186, 2};
    check_decode(spm, ids, 4, 0, "<s> Hello world</s>", __LINE__);
    check_decode(spm, ids, 4, LLMC_DETOKENIZE_SKIP_SPECIAL, "Hello world", __LINE__);
    CHECK(llmc_tokenizer_token_is_special(spm, 1) && !llmc_tokenizer_token_is_special(spm, 15043));
    size_t len;
    const char *text = llmc_tokenizer_token_text(spm, 15043, &len);
    CHECK(text && len == 8 && memcmp(text, "\xe2\x96\x81Hello", 8) == 0);
    CHECK(llmc_tokenizer_token_find(spm, "\xe2\x96\x81Hello", 8) == 15043);
    CHECK(llmc_tokenizer_token_text(spm, -1, &len) == NULL &&
          llmc_tokenizer_token_text(spm, 32000, &len) == NULL);
    /* Invalid UTF-8 falls back to byte tokens <0xNN> (id = byte + 3). */
    CHECK_IDS(spm, "\xff", 0, 29871, 0xff + 3);
    char *out = NULL;
    size_t out_len = 0;
    const int32_t bad[] = {15043, 32000};
    llmc_status_t st = llmc_tokenizer_decode(spm, bad, 2, 0, &out, &out_len);
    CHECK(st && llmc_status_code(st) == LLMC_STATUS_INVALID_ARGUMENT);
    llmc_status_free(st);
  }
  if (ok(llmc_tokenizer_load_file(DATA "trained/bytelevel_llama3.json", &l3), "bytelevel_llama3")) {
    CHECK_IDS(l3, "<|eot_id|>Hello world", LLMC_TOKENIZE_PARSE_SPECIAL, 2, 42, 349, 301, 334, 266,
              1616);
    /* No post-processor: nothing to add. */
    CHECK_IDS(l3, "Hello world", LLMC_TOKENIZE_ADD_SPECIAL, 42, 349, 301, 334, 266, 1616);
    int32_t *ids = NULL;
    size_t n = 0;
    if (ok(llmc_tokenizer_encode(l3, "<|eot_id|>", 10, 0, &ids, &n), "l3")) {
      CHECK(n > 1);
      for (size_t i = 0; i < n; i++) CHECK(ids[i] != 2);
    }
    free(ids);
    /* Byte-level: invalid UTF-8 becomes the tokens of its bytes. */
    if (ok(llmc_tokenizer_encode(l3, "\xff", 1, 0, &ids, &n), "l3")) CHECK(n == 1);
    free(ids);
  }
  if (ok(llmc_tokenizer_load_file(DATA "hf-json/llama2/tokenizer.json", &hf), "llama2 json")) {
    /* TemplateProcessing "single": <s> $A */
    CHECK_IDS(hf, "Hello world", LLMC_TOKENIZE_ADD_SPECIAL, 1, 15043, 3186);
    CHECK(llmc_tokenizer_bos_id(hf) == 1);
  }
  llmc_tokenizer_destroy(spm);
  llmc_tokenizer_destroy(l3);
  llmc_tokenizer_destroy(hf);
}

/* A character-level BPE with one added token, to see lstrip, rstrip and
 * single_word at work. */
static void test_added_token_options(void) {
  static const char *const variants[] = {"", "\"lstrip\": true, \"rstrip\": true,",
                                         "\"single_word\": true,"};
  for (int v = 0; v < 3; v++) {
    char json[1024];
    snprintf(json, sizeof json,
             "{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \" \": 2, \"ab\": 3, "
             "\"<x>\": 4},"
             " \"merges\": [\"a b\"]},"
             " \"added_tokens\": [{\"id\": 4, \"content\": \"<x>\", %s \"special\": true}]}",
             variants[v]);
    llmc_tokenizer_t *tok = NULL;
    if (!ok(llmc_tokenizer_parse_hf_json(json, strlen(json), "added.json", &tok), "added.json"))
      continue;
    uint32_t f = LLMC_TOKENIZE_PARSE_SPECIAL;
    CHECK_IDS(tok, "ab", f, 3);
    if (v == 0) CHECK_IDS(tok, "a <x> b", f, 0, 2, 4, 2, 1);
    if (v == 1) CHECK_IDS(tok, "a <x>  b", f, 0, 4, 1);
    if (v == 2) {
      CHECK_IDS(tok, "a <x> b", f, 0, 2, 4, 2, 1);
      /* Inside a word: plain text; "<", "x", ">" have no tokens and the
         model sees "ab". */
      CHECK_IDS(tok, "a<x>b", f, 3);
    }
    llmc_tokenizer_destroy(tok);
  }
}

static void test_stream_holds_partial_characters(void) {
  llmc_tokenizer_t *tok = NULL;
  if (!ok(llmc_tokenizer_load_file(DATA "llama.cpp/ggml-vocab-llama-spm.gguf", &tok), "llama-spm"))
    return;
  /* "🦙" = F0 9F A6 99 as four byte tokens (<0xNN> is id NN + 3). */
  const int32_t llama[] = {0xF0 + 3, 0x9F + 3, 0xA6 + 3, 0x99 + 3};
  llmc_tokenizer_stream_t s;
  llmc_tokenizer_stream_init(&s, tok, 0);
  const char *p;
  size_t n;
  for (int i = 0; i < 3; i++) {
    CHECK(ok(llmc_tokenizer_stream_push(&s, llama[i], &p, &n), "push"));
    CHECK(n == 0);
  }
  CHECK(ok(llmc_tokenizer_stream_push(&s, llama[3], &p, &n), "push"));
  CHECK(n == 4 && memcmp(p, "\xf0\x9f\xa6\x99", 4) == 0);
  /* An incomplete character at the end comes out as U+FFFD on finish; a
     byte that cannot start one comes out at once. */
  CHECK(ok(llmc_tokenizer_stream_push(&s, 0xE2 + 3, &p, &n), "push"));
  CHECK(n == 0);
  CHECK(ok(llmc_tokenizer_stream_push(&s, 0x41 + 3, &p, &n), "push"));
  CHECK(n == 4 && memcmp(p,
                         "\xef\xbf\xbd"
                         "A",
                         4) == 0);
  CHECK(ok(llmc_tokenizer_stream_push(&s, 0xE2 + 3, &p, &n), "push"));
  CHECK(ok(llmc_tokenizer_stream_finish(&s, &p, &n), "finish"));
  CHECK(n == 3 && memcmp(p, "\xef\xbf\xbd", 3) == 0);
  /* After finish the stream starts over: the leading space goes again. */
  CHECK(ok(llmc_tokenizer_stream_push(&s, 15043, &p, &n), "push"));
  CHECK(n == 5 && memcmp(p, "Hello", 5) == 0);
  CHECK(ok(llmc_tokenizer_stream_push(&s, 3186, &p, &n), "push"));
  CHECK(n == 6 && memcmp(p, " world", 6) == 0);
  llmc_status_t st = llmc_tokenizer_stream_push(&s, -5, &p, &n);
  CHECK(st && llmc_status_code(st) == LLMC_STATUS_INVALID_ARGUMENT);
  llmc_status_free(st);
  llmc_tokenizer_stream_deinit(&s);
  llmc_tokenizer_destroy(tok);
}

/* ---- broken inputs ----------------------------------------------------- */

/* Loading json must fail with code, the message containing needle. */
static void check_bad_json(const char *json, llmc_status_code_t code, const char *needle,
                           int line) {
  llmc_tokenizer_t *tok = NULL;
  llmc_status_t st = llmc_tokenizer_parse_hf_json(json, strlen(json), "bad.json", &tok);
  if (!st) {
    fprintf(stderr, "%s:%d: loaded, expected an error containing \"%s\"\n", __FILE__, line, needle);
    check_failures++;
    llmc_tokenizer_destroy(tok);
    return;
  }
  if (llmc_status_code(st) != code || !strstr(llmc_status_message(st), needle)) {
    fprintf(stderr, "%s:%d: error (code %d) \"%s\", expected code %d containing \"%s\"\n", __FILE__,
            line, (int)llmc_status_code(st), llmc_status_message(st), (int)code, needle);
    check_failures++;
  }
  CHECK(tok == NULL);
  llmc_status_free(st);
}

#define BAD_JSON(json, code, needle) check_bad_json(json, LLMC_STATUS_##code, needle, __LINE__)
#define VOCAB_AB "\"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}"

static void test_bad_json(void) {
  BAD_JSON("not json", INVALID_ARGUMENT, "not valid JSON");
  BAD_JSON("[1, 2]", INVALID_ARGUMENT, "not a JSON object");
  BAD_JSON("{}", INVALID_ARGUMENT, "no \"model\"");
  BAD_JSON("{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}", UNIMPLEMENTED, "WordPiece");
  BAD_JSON("{\"model\": {\"vocab\": [\"a\"]}}", INVALID_ARGUMENT, "model.vocab is not an object");
  BAD_JSON("{\"model\": {\"vocab\": {}}}", INVALID_ARGUMENT, "empty");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": -1}}}", INVALID_ARGUMENT, "not an id");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 1e12}}}", INVALID_ARGUMENT, "not an id");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 16000000}}}", INVALID_ARGUMENT, "too sparse");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 0.5}}}", INVALID_ARGUMENT, "not an id");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": \"0\"}}}", INVALID_ARGUMENT, "not an id");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 0}}}", INVALID_ARGUMENT, "given twice");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 0, \"a\": 1}}}", INVALID_ARGUMENT, "duplicate token");
  BAD_JSON("{\"model\": {\"vocab\": {\"\xff\": 0}}}", INVALID_ARGUMENT, "not valid UTF-8");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"merges\": [\"a c\"]}}", INVALID_ARGUMENT,
           "not two vocabulary tokens");
  BAD_JSON("{\"model\": {\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}",
           INVALID_ARGUMENT, "not two vocabulary tokens");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"merges\": [[\"a\", \"c\"]]}}", INVALID_ARGUMENT,
           "not in the vocabulary");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"merges\": [5]}}", INVALID_ARGUMENT, "model.merges[0]");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"merges\": {}}}", INVALID_ARGUMENT, "not an array");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"unk_token\": \"zz\"}}", INVALID_ARGUMENT, "unk_token");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"byte_fallback\": \"yes\"}}", INVALID_ARGUMENT,
           "not a boolean");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"dropout\": 0.1}}", UNIMPLEMENTED, "dropout");
  BAD_JSON("{\"model\": {" VOCAB_AB ", \"continuing_subword_prefix\": \"##\"}}", UNIMPLEMENTED,
           "continuing");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"added_tokens\": [{\"id\": 0, \"content\": \"b\"}]}",
           INVALID_ARGUMENT, "which the vocabulary gives");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"added_tokens\": [{\"id\": 5, \"content\": \"a\"}]}",
           INVALID_ARGUMENT, "duplicate token");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"added_tokens\": [{\"content\": \"x\"}]}",
           INVALID_ARGUMENT, "without an id");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"added_tokens\": [{\"id\": 3, \"content\": \"\"}]}",
           INVALID_ARGUMENT, "empty");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"added_tokens\": {}}", INVALID_ARGUMENT,
           "added_tokens is not an array");
  BAD_JSON("{\"model\": {" VOCAB_AB
           "}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"(\"},"
           " \"behavior\": \"Isolated\"}}",
           INVALID_ARGUMENT, "missing closing parenthesis");
  BAD_JSON("{\"model\": {" VOCAB_AB
           "}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": \"a\"},"
           " \"behavior\": \"Sideways\"}}",
           INVALID_ARGUMENT, "Sideways");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": 5}}",
           INVALID_ARGUMENT, "pattern");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"pre_tokenizer\": {\"type\": \"Foo\"}}", UNIMPLEMENTED,
           "Foo");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"pre_tokenizer\": {\"kind\": \"Split\"}}",
           INVALID_ARGUMENT, "no \"type\"");
  BAD_JSON("{\"model\": {" VOCAB_AB "}, \"normalizer\": {\"type\": \"BertNormalizer\"}}",
           UNIMPLEMENTED, "BertNormalizer");
  BAD_JSON("{\"model\": {" VOCAB_AB
           "}, \"normalizer\": {\"type\": \"Sequence\", \"normalizers\": 3}}",
           INVALID_ARGUMENT, "normalizers is not an array");
  BAD_JSON("{\"model\": {" VOCAB_AB
           "}, \"decoder\": {\"type\": \"Strip\", \"content\": \" \", \"start\": 2,"
           " \"stop\": 0}}",
           UNIMPLEMENTED, "Strip");
  BAD_JSON("{\"model\": {" VOCAB_AB
           "}, \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\":"
           " [{\"SpecialToken\": {\"id\": \"<s>\"}}], \"special_tokens\": {}}}",
           INVALID_ARGUMENT, "has no ids");
  BAD_JSON(
      "{\"model\": {" VOCAB_AB
      "}, \"post_processor\": {\"type\": \"TemplateProcessing\", \"single\":"
      " [{\"SpecialToken\": {\"id\": \"<s>\"}}], \"special_tokens\": {\"<s>\": {\"ids\": [99]}}}}",
      INVALID_ARGUMENT, "outside the vocabulary");

  /* Every prefix of a real file is an error, not a crash; so are files
     with bytes overwritten (they may also load: what matters is that
     nothing breaks). */
  char *data = NULL;
  size_t len = 0;
  if (!ok(llmc_file_read_all(DATA "trained/sp_llama2.json", &data, &len), "sp_llama2.json")) return;
  for (size_t cut = 0; cut < len; cut += len / 37 + 1) {
    llmc_tokenizer_t *tok = NULL;
    llmc_status_t st = llmc_tokenizer_parse_hf_json(data, cut, "cut.json", &tok);
    CHECK(st != NULL && tok == NULL);
    llmc_status_free(st);
  }
  uint32_t seed = 12345;
  for (int round = 0; round < 40; round++) {
    char *copy = malloc(len);
    memcpy(copy, data, len);
    for (int k = 0; k < 8; k++) {
      seed = seed * 1664525u + 1013904223u;
      copy[(seed >> 8) % len] = (char)(seed >> 24);
    }
    llmc_tokenizer_t *tok = NULL;
    llmc_status_t st = llmc_tokenizer_parse_hf_json(copy, len, "mutated.json", &tok);
    if (!st) {
      int32_t *ids = NULL;
      size_t n = 0;
      llmc_status_free(llmc_tokenizer_encode(tok, "Hello, mutated world", 20,
                                             LLMC_TOKENIZE_PARSE_SPECIAL, &ids, &n));
      free(ids);
    }
    llmc_status_free(st);
    llmc_tokenizer_destroy(tok);
    free(copy);
  }
  free(data);
}

/* ---- GGUF ------------------------------------------------------------- */

/* A GGUF file under construction in memory (version 3, no tensors). */
typedef struct {
  unsigned char kv[1 << 14];
  size_t n;
  uint64_t n_kv;
} gguf_writer_t;

static void put(gguf_writer_t *w, const void *p, size_t n) {
  memcpy(w->kv + w->n, p, n);
  w->n += n;
}
static void put_u32(gguf_writer_t *w, uint32_t v) { put(w, &v, 4); }
static void put_u64(gguf_writer_t *w, uint64_t v) { put(w, &v, 8); }
static void put_str(gguf_writer_t *w, const char *s) {
  put_u64(w, strlen(s));
  put(w, s, strlen(s));
}
static void kv_str(gguf_writer_t *w, const char *key, const char *value) {
  put_str(w, key);
  put_u32(w, 8); /* string */
  put_str(w, value);
  w->n_kv++;
}
static void kv_strs(gguf_writer_t *w, const char *key, const char *const *values, uint64_t n) {
  put_str(w, key);
  put_u32(w, 9); /* array */
  put_u32(w, 8);
  put_u64(w, n);
  for (uint64_t i = 0; i < n; i++) put_str(w, values[i]);
  w->n_kv++;
}
static void kv_i32s(gguf_writer_t *w, const char *key, const int32_t *values, uint64_t n) {
  put_str(w, key);
  put_u32(w, 9);
  put_u32(w, 5); /* int32 */
  put_u64(w, n);
  put(w, values, 4 * n);
  w->n_kv++;
}

/* Parses the file w describes and builds its tokenizer. */
static llmc_status_t gguf_tokenizer(const gguf_writer_t *w, llmc_tokenizer_t **out) {
  static unsigned char file[sizeof w->kv + 64];
  size_t n = 0;
  memcpy(file, "GGUF", 4);
  uint32_t version = 3;
  uint64_t n_tensors = 0;
  memcpy(file + 4, &version, 4);
  memcpy(file + 8, &n_tensors, 8);
  memcpy(file + 16, &w->n_kv, 8);
  memcpy(file + 24, w->kv, w->n);
  n = 24 + w->n;
  while (n % 32) file[n++] = 0;
  llmc_gguf_t *g = NULL;
  *out = NULL;
  LLMC_PROPAGATE(llmc_gguf_parse(file, n, "t.gguf", &g));
  llmc_status_t st = llmc_tokenizer_from_gguf(g, out);
  llmc_gguf_close(g);
  return st;
}

static void check_bad_gguf(const gguf_writer_t *w, llmc_status_code_t code, const char *needle,
                           int line) {
  llmc_tokenizer_t *tok = NULL;
  llmc_status_t st = gguf_tokenizer(w, &tok);
  if (!st || llmc_status_code(st) != code || !strstr(llmc_status_message(st), needle)) {
    fprintf(stderr, "%s:%d: got \"%s\", expected code %d containing \"%s\"\n", __FILE__, line,
            st ? llmc_status_message(st) : "success", (int)code, needle);
    check_failures++;
  }
  llmc_status_free(st);
  llmc_tokenizer_destroy(tok);
}

#define BAD_GGUF(w, code, needle) check_bad_gguf(w, LLMC_STATUS_##code, needle, __LINE__)

static void test_gguf(void) {
  /* "a", "b", "ab", "Ġ", "Ġa" (octal escapes: "\xa0a" would be one escape) */
  static const char *const toks[] = {"a", "b", "ab", "\304\240", "\304\240a"};
  static const char *const merges[] = {"a b", "\304\240 a"};
  gguf_writer_t w = {0};
  kv_str(&w, "tokenizer.ggml.model", "gpt2");
  kv_str(&w, "tokenizer.ggml.pre", "gpt-2");
  kv_strs(&w, "tokenizer.ggml.tokens", toks, 5);
  kv_strs(&w, "tokenizer.ggml.merges", merges, 2);
  llmc_tokenizer_t *tok = NULL;
  if (ok(gguf_tokenizer(&w, &tok), "tiny gguf")) {
    CHECK_IDS(tok, "ab a", 0, 2, 4);
    CHECK_IDS(tok, "ba", 0, 1, 0);
    llmc_tokenizer_destroy(tok);
  }

  /* Every pre-tokenizer family compiles and splits. */
  static const char *const families[] = {"default",     "gpt-2", "llama-bpe",   "dbrx",
                                         "qwen2",       "falcon", "starcoder",  "deepseek-coder",
                                         "deepseek-v3", "bloom",  "viking",     "tekken",
                                         "gpt-4o"};
  for (size_t i = 0; i < sizeof families / sizeof families[0]; i++) {
    gguf_writer_t f = {0};
    kv_str(&f, "tokenizer.ggml.model", "gpt2");
    kv_str(&f, "tokenizer.ggml.pre", families[i]);
    kv_strs(&f, "tokenizer.ggml.tokens", toks, 5);
    kv_strs(&f, "tokenizer.ggml.merges", merges, 2);
    if (ok(gguf_tokenizer(&f, &tok), families[i])) {
      CHECK_IDS(tok, "ab", 0, 2);
      int32_t *ids = NULL;
      size_t n = 0;
      const char *text = "Hello, 123 w\xc3\xb6rld!\n  \xe4\xb8\xad";
      ok(llmc_tokenizer_encode(tok, text, strlen(text), 0, &ids, &n), families[i]);
      free(ids);
      llmc_tokenizer_destroy(tok);
    }
  }

  gguf_writer_t none = {0};
  kv_strs(&none, "tokenizer.ggml.tokens", toks, 5);
  BAD_GGUF(&none, INVALID_ARGUMENT, "tokenizer.ggml.model is missing");

  gguf_writer_t bert = {0};
  kv_str(&bert, "tokenizer.ggml.model", "bert");
  BAD_GGUF(&bert, UNIMPLEMENTED, "bert");

  gguf_writer_t no_tokens = {0};
  kv_str(&no_tokens, "tokenizer.ggml.model", "llama");
  BAD_GGUF(&no_tokens, INVALID_ARGUMENT, "tokens is missing");

  gguf_writer_t wrong_type = {0};
  kv_str(&wrong_type, "tokenizer.ggml.model", "llama");
  kv_str(&wrong_type, "tokenizer.ggml.tokens", "a");
  BAD_GGUF(&wrong_type, INVALID_ARGUMENT, "not an array of strings");

  static const char *const dup[] = {"a", "b", "a"};
  gguf_writer_t duplicate = {0};
  kv_str(&duplicate, "tokenizer.ggml.model", "llama");
  kv_strs(&duplicate, "tokenizer.ggml.tokens", dup, 3);
  BAD_GGUF(&duplicate, INVALID_ARGUMENT, "duplicate token");

  static const char *const not_utf8[] = {"a", "\xc3("};
  gguf_writer_t bad_text = {0};
  kv_str(&bad_text, "tokenizer.ggml.model", "llama");
  kv_strs(&bad_text, "tokenizer.ggml.tokens", not_utf8, 2);
  BAD_GGUF(&bad_text, INVALID_ARGUMENT, "not valid UTF-8");

  static const int32_t types[] = {1, 1};
  gguf_writer_t short_types = {0};
  kv_str(&short_types, "tokenizer.ggml.model", "llama");
  kv_strs(&short_types, "tokenizer.ggml.tokens", toks, 5);
  kv_i32s(&short_types, "tokenizer.ggml.token_type", types, 2);
  BAD_GGUF(&short_types, INVALID_ARGUMENT, "has 2 entries for 5 tokens");

  static const char *const bad_merges[] = {"a c"};
  gguf_writer_t unknown_merge = {0};
  kv_str(&unknown_merge, "tokenizer.ggml.model", "gpt2");
  kv_strs(&unknown_merge, "tokenizer.ggml.tokens", toks, 5);
  kv_strs(&unknown_merge, "tokenizer.ggml.merges", bad_merges, 1);
  BAD_GGUF(&unknown_merge, INVALID_ARGUMENT, "not two vocabulary tokens");

  gguf_writer_t no_merges = {0};
  kv_str(&no_merges, "tokenizer.ggml.model", "gpt2");
  kv_strs(&no_merges, "tokenizer.ggml.tokens", toks, 5);
  BAD_GGUF(&no_merges, INVALID_ARGUMENT, "merges is missing");

  gguf_writer_t unknown_pre = {0};
  kv_str(&unknown_pre, "tokenizer.ggml.model", "gpt2");
  kv_str(&unknown_pre, "tokenizer.ggml.pre", "no-such-family");
  kv_strs(&unknown_pre, "tokenizer.ggml.tokens", toks, 5);
  kv_strs(&unknown_pre, "tokenizer.ggml.merges", merges, 2);
  BAD_GGUF(&unknown_pre, UNIMPLEMENTED, "no-such-family");
}

static void test_spec(void) {
  cJSON *spec = cJSON_Parse("{\"file\": \"bytelevel_llama3.json\"}");
  llmc_tokenizer_t *tok = NULL;
  if (ok(llmc_tokenizer_load_from_spec(spec, DATA "trained", &tok), "spec file"))
    CHECK_IDS(tok, "Hello world", 0, 42, 349, 301, 334, 266, 1616);
  llmc_tokenizer_destroy(tok);
  cJSON_Delete(spec);

  spec = cJSON_Parse("{\"gguf\": \"" DATA "llama.cpp/ggml-vocab-gpt-2.gguf\"}");
  if (ok(llmc_tokenizer_load_from_spec(spec, NULL, &tok), "spec gguf"))
    CHECK_IDS(tok, "Hello world", 0, 15496, 995);
  llmc_tokenizer_destroy(tok);
  cJSON_Delete(spec);

  llmc_status_t st = llmc_tokenizer_load_from_spec(NULL, NULL, &tok);
  CHECK(st && llmc_status_code(st) == LLMC_STATUS_NOT_FOUND && !tok);
  llmc_status_free(st);
  spec = cJSON_Parse("{\"vocab\": \"x\"}");
  st = llmc_tokenizer_load_from_spec(spec, NULL, &tok);
  CHECK(st && llmc_status_code(st) == LLMC_STATUS_INVALID_ARGUMENT && !tok);
  llmc_status_free(st);
  cJSON_Delete(spec);
  spec = cJSON_Parse("{\"file\": \"no-such-tokenizer.json\"}");
  st = llmc_tokenizer_load_from_spec(spec, "/nonexistent", &tok);
  CHECK(st && strstr(llmc_status_message(st), "/nonexistent/no-such-tokenizer.json"));
  llmc_status_free(st);
  cJSON_Delete(spec);
}

/* want and got give the same ids for text[0, len). */
static void check_same_ids(const llmc_tokenizer_t *want, const llmc_tokenizer_t *got,
                           const char *text, size_t len, const char *source) {
  int32_t *a = NULL, *b = NULL;
  size_t na = 0, nb = 0;
  uint32_t flags = LLMC_TOKENIZE_ADD_SPECIAL | LLMC_TOKENIZE_PARSE_SPECIAL;
  if (ok(llmc_tokenizer_encode(want, text, len, flags, &a, &na), source) &&
      ok(llmc_tokenizer_encode(got, text, len, flags, &b, &nb), source))
    CHECK_MSG(na == nb && (na == 0 || memcmp(a, b, na * sizeof *a) == 0),
              "%s: \"%.*s\" tokenizes differently from the tokenizer's keys alone", source,
              (int)len, text);
  free(a);
  free(b);
}

/* The keys of each GGUF that llmc_tokenizer_gguf_reads_key accepts,
 * written as a GGUF of their own, give the same ids as the file on every
 * tricky text and around added tokens (where Phi-3's general.name gives
 * them rstrip). */
static void test_gguf_tokenizer_keys(void) {
  static const char *const added[] = {"<|user|> Hi <|end|>\n<|assistant|> x", "<s> a </s> b"};
  CHECK(llmc_tokenizer_gguf_reads_key((llmc_gguf_str_t){"tokenizer.ggml.tokens", 21}));
  CHECK(llmc_tokenizer_gguf_reads_key((llmc_gguf_str_t){"general.name", 12}));
  CHECK(!llmc_tokenizer_gguf_reads_key((llmc_gguf_str_t){"tokenizer.chat_template", 23}));
  CHECK(!llmc_tokenizer_gguf_reads_key((llmc_gguf_str_t){"general.architecture", 20}));
  CHECK(!llmc_tokenizer_gguf_reads_key((llmc_gguf_str_t){"tokenizer.ggml.", 15}));
  for (size_t i = 0; i < sizeof sources / sizeof sources[0]; i++) {
    llmc_gguf_t *file = NULL, *part = NULL;
    if (!strstr(sources[i], ".gguf") || !ok(llmc_gguf_open(sources[i], &file), sources[i]))
      continue;
    llmc_gguf_writer_t *w = NULL;
    llmc_status_t st = llmc_gguf_writer_create_memory(&w);
    for (uint64_t k = 0; k < file->n_kv && !st; k++)
      if (llmc_tokenizer_gguf_reads_key(file->kv[k].key))
        st = llmc_gguf_writer_copy_kv(w, &file->kv[k]);
    if (!st) st = llmc_gguf_writer_finish(w);
    uint8_t *bytes = NULL;
    uint64_t n_bytes = 0;
    if (!st) st = llmc_gguf_writer_take_memory(w, &bytes, &n_bytes);
    if (!st) { /* the bytes are the caller's now: a second take is a bug */
      uint8_t *again = NULL;
      uint64_t n_again = 0;
      llmc_status_t twice = llmc_gguf_writer_take_memory(w, &again, &n_again);
      CHECK(llmc_status_code(twice) == LLMC_STATUS_INTERNAL && !again && !n_again);
      llmc_status_free(twice);
    }
    llmc_gguf_writer_destroy(w);
    llmc_tokenizer_t *want = NULL, *got = NULL;
    if (ok(st, sources[i]) &&
        ok(llmc_gguf_parse(bytes, n_bytes, "tokenizer keys", &part), sources[i]) &&
        ok(llmc_tokenizer_from_gguf(file, &want), sources[i]) &&
        ok(llmc_tokenizer_from_gguf(part, &got), sources[i])) {
      CHECK_EQ_INT(part->n_tensors, 0);
      CHECK(part->n_kv > 0 && part->n_kv < file->n_kv);
      for (size_t t = 0; t < sizeof tricky / sizeof tricky[0]; t++)
        check_same_ids(want, got, tricky[t].text, text_len(&tricky[t]), sources[i]);
      for (size_t t = 0; t < sizeof added / sizeof added[0]; t++)
        check_same_ids(want, got, added[t], strlen(added[t]), sources[i]);
    }
    llmc_tokenizer_destroy(want);
    llmc_tokenizer_destroy(got);
    llmc_gguf_close(part);
    free(bytes);
    llmc_gguf_close(file);
  }
}

int main(void) {
  test_round_trips();
  test_special_tokens();
  test_hf_decode();
  test_added_token_options();
  test_stream_holds_partial_characters();
  test_bad_json();
  test_gguf();
  test_spec();
  test_gguf_tokenizer_keys();
  return check_report("test_tokenizer");
}
