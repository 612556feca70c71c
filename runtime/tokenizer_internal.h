/* tokenizer_internal.h — what the tokenizer's files share: the tokenizer
 * record, the text operations that normalizers and pre-tokenizers are
 * made of, and the builder the two loaders fill in.
 *
 *   tokenizer.c        the record, vocabulary hash, added tokens, the encode
 *                      pipeline, decoding and the streaming decoder
 *   pretokenize.c      text operations (normalize, split, byte-level map)
 *                      and UTF-8 helpers
 *   tokenizer_bpe.c    the two merge models over one pre-token
 *   tokenizer_hf.c     tokenizer.json loader
 *   tokenizer_gguf.c   GGUF tokenizer.ggml.* loader and pre-tokenizer families
 *
 * The encode pipeline follows Hugging Face tokenizers: added tokens are
 * cut out of the raw text, each piece between them is normalized, cut
 * again at added tokens matched on normalized text, pre-tokenized into
 * words by a list of operations, and each word goes through the model.
 * llama.cpp's GGUF tokenizers are expressed in the same terms (its
 * regex lists become split operations). */
#ifndef LLMC_RUNTIME_TOKENIZER_INTERNAL_H
#define LLMC_RUNTIME_TOKENIZER_INTERNAL_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support/status.h"
#include "tokenizer.h"

/* Limits that keep a hostile file from asking for absurd allocations. */
#define LLMC_TOK_MAX_VOCAB (1 << 24)       /* ids are below this */
#define LLMC_TOK_MAX_TOKEN_BYTES (1 << 16) /* one vocabulary entry */
#define LLMC_TOK_MAX_AROUND 8              /* ids added before / after a text */
#define LLMC_TOK_MAX_DECODE_STEPS 8

/* Per-token attributes (llmc_tokenizer.attr). */
enum {
  /* the id has a vocabulary entry */
  LLMC_TOK_ATTR_ASSIGNED = 1u << 0,
  /* a control token: skipped by SKIP_SPECIAL, parsed in text only with PARSE_SPECIAL */
  LLMC_TOK_ATTR_SPECIAL = 1u << 1,
  /* matched in text before the model runs; decodes to its text as is */
  LLMC_TOK_ATTR_ADDED = 1u << 2,
};

/* ---- text operations (pretokenize.c) ---------------------------------- */

typedef enum {
  LLMC_TOK_OP_NFC, /* Unicode normalization forms, through utf8proc */
  LLMC_TOK_OP_NFD,
  LLMC_TOK_OP_NFKC,
  LLMC_TOK_OP_NFKD,
  LLMC_TOK_OP_LOWERCASE,  /* per code point */
  LLMC_TOK_OP_STRIP,      /* whitespace at the left and/or right end */
  LLMC_TOK_OP_PREPEND,    /* `text` before a non-empty piece */
  LLMC_TOK_OP_REPLACE,    /* every match of `re` by `text` */
  LLMC_TOK_OP_SPLIT,      /* the piece cut at matches of `re` as `behavior` says */
  LLMC_TOK_OP_BYTE_LEVEL, /* every byte to its GPT-2 printable stand-in */
  LLMC_TOK_OP_KIND_COUNT
} llmc_tok_op_kind_t;

/* What a split does with the matches (Hugging Face's SplitDelimiterBehavior). */
typedef enum {
  LLMC_TOK_SPLIT_REMOVED,              /* matches dropped */
  LLMC_TOK_SPLIT_ISOLATED,             /* matches and the text between them, each a piece */
  LLMC_TOK_SPLIT_MERGED_WITH_PREVIOUS, /* a match ends the piece before it */
  LLMC_TOK_SPLIT_MERGED_WITH_NEXT,     /* a match starts the piece after it */
  LLMC_TOK_SPLIT_CONTIGUOUS,           /* adjacent matches form one piece */
  LLMC_TOK_SPLIT_BEHAVIOR_COUNT
} llmc_tok_split_behavior_t;

typedef struct {
  llmc_tok_op_kind_t kind;
  pcre2_code *re; /* owned: REPLACE, SPLIT (UTF, UCP, invalid UTF allowed) */
  char *text;     /* owned: PREPEND, REPLACE */
  size_t text_len;
  llmc_tok_split_behavior_t behavior; /* SPLIT */
  bool invert;                        /* SPLIT: the text between matches is what matched */
  bool if_missing;                    /* PREPEND: only if the piece does not start with text */
  bool first_only;                    /* PREPEND: only to a piece at the start of the input */
  bool left, right;                   /* STRIP */
} llmc_tok_op_t;

typedef struct {
  llmc_tok_op_t *v; /* owned: [n] */
  size_t n, cap;
} llmc_tok_ops_t;

/* A list of pieces of text: spans into one buffer. */
typedef struct {
  size_t start, len;
  bool origin; /* the piece starts at offset 0 of the input text */
} llmc_tok_span_t;

typedef struct {
  char *buf; /* owned */
  size_t len, cap;
  llmc_tok_span_t *spans; /* owned: [n] */
  size_t n, cap_spans;
} llmc_tok_pieces_t;

/* Appends a new operation of `kind` (zeroed otherwise) to ops; NULL when
 * out of memory. */
llmc_tok_op_t *llmc_tok_ops_append(llmc_tok_ops_t *ops, llmc_tok_op_kind_t kind);
/* Compiles pattern[0, len) into op->re, as a regular expression or, if
 * literal, as a plain string. Errors say what PCRE2 found wrong and where. */
llmc_status_t llmc_tok_op_set_pattern(llmc_tok_op_t *op, const char *pattern, size_t len,
                                      bool literal);
/* Sets op->text to a copy of text[0, len). */
llmc_status_t llmc_tok_op_set_text(llmc_tok_op_t *op, const char *text, size_t len);
/* Appends the operations of Hugging Face's ByteLevel pre-tokenizer. */
llmc_status_t llmc_tok_ops_add_byte_level(llmc_tok_ops_t *ops, bool add_prefix_space,
                                          bool use_regex);
/* Appends a split on the regular expression `pattern` (NUL-terminated). */
llmc_status_t llmc_tok_ops_add_split(llmc_tok_ops_t *ops, const char *pattern,
                                     llmc_tok_split_behavior_t behavior, bool invert);
void llmc_tok_ops_deinit(llmc_tok_ops_t *ops);

/* Appends a piece (an empty one is dropped, as Hugging Face drops them). */
llmc_status_t llmc_tok_pieces_push(llmc_tok_pieces_t *p, const char *data, size_t len, bool origin);
/* Appends one piece made of head[0, head_len) then data[0, len). */
llmc_status_t llmc_tok_pieces_push_joined(llmc_tok_pieces_t *p, const char *head, size_t head_len,
                                          const char *data, size_t len, bool origin);
void llmc_tok_pieces_clear(llmc_tok_pieces_t *p);
void llmc_tok_pieces_deinit(llmc_tok_pieces_t *p);

/* Runs ops over every piece in turn, replacing p's pieces with the result;
 * scratch is a second list the function may use (its contents are lost). */
llmc_status_t llmc_tok_ops_run(const llmc_tok_ops_t *ops, llmc_tok_pieces_t *p,
                               llmc_tok_pieces_t *scratch);

/* The UTF-8 character at s[0, n) (n >= 1): returns its length and sets
 * *cp; an invalid or truncated sequence is one byte long with *cp = -1. */
size_t llmc_tok_utf8_next(const uint8_t *s, size_t n, int32_t *cp);
/* Whether s[0, n) (n >= 1) is the beginning of a valid UTF-8 character
 * that more bytes could complete. */
bool llmc_tok_utf8_incomplete(const uint8_t *s, size_t n);
/* Whether s[0, n) is valid UTF-8. */
bool llmc_tok_utf8_valid(const char *s, size_t n);
/* Unicode White_Space (Rust's char::is_whitespace, regex \s). */
bool llmc_tok_is_space(int32_t cp);
/* A word character as regex \w sees it (letters, marks, digits, connectors). */
bool llmc_tok_is_word(int32_t cp);
/* Writes GPT-2's printable stand-in for byte b (UTF-8, 1 or 2 bytes) to
 * out and returns its length. */
size_t llmc_tok_byte_char(uint8_t b, char out[2]);
/* The byte whose stand-in is code point cp, or -1. */
int llmc_tok_char_byte(int32_t cp);

/* ---- the tokenizer ----------------------------------------------------- */

typedef enum {
  LLMC_TOK_MODEL_BPE, /* merges by rank (Hugging Face BPE, GGUF "gpt2") */
  LLMC_TOK_MODEL_SPM, /* merges by token score (GGUF "llama", llama.cpp's llm_tokenizer_spm) */
  LLMC_TOK_MODEL_COUNT
} llmc_tok_model_t;

/* An added token as matched in text. */
typedef struct {
  char *text; /* owned: the content, or for the normalized set the normalized content */
  size_t len;
  int32_t id;
  bool special, lstrip, rstrip, single_word;
  bool normalized; /* matched on normalized text (in the normalized set) */
} llmc_tok_added_t;

/* Added tokens matched leftmost-longest, bucketed by first byte. */
typedef struct {
  llmc_tok_added_t *v; /* owned: [n], by first byte, longest first */
  size_t n;
  uint32_t first[257]; /* v[first[b], first[b + 1]) start with byte b */
} llmc_tok_added_set_t;

/* How one token's text becomes bytes when decoding (in order). */
typedef enum {
  LLMC_TOK_DEC_BYTE_LEVEL, /* stand-ins back to bytes (a token with another character stays as is)
                            */
  LLMC_TOK_DEC_REPLACE,    /* every `from` by `to` */
  LLMC_TOK_DEC_BYTE_FALLBACK, /* "<0xNN>" to the byte */
  LLMC_TOK_DEC_KIND_COUNT
} llmc_tok_dec_kind_t;

typedef struct {
  llmc_tok_dec_kind_t kind;
  char *from, *to; /* owned: REPLACE */
  size_t from_len, to_len;
} llmc_tok_dec_t;

/* A merge rule: left and right ids merge into result; lower rank first. */
typedef struct {
  uint64_t key; /* left << 32 | right */
  int32_t rank; /* -1: empty slot */
  int32_t result;
} llmc_tok_merge_t;

struct llmc_tokenizer {
  char *name; /* owned: the file, for messages */
  llmc_tok_model_t model;
  int32_t n_vocab;

  /* Vocabulary: the text of id is tok_blob[tok_off[id], + tok_len[id]). */
  char *tok_blob; /* owned */
  size_t tok_blob_len, tok_blob_cap;
  size_t *tok_off;   /* owned: [n_vocab] */
  uint32_t *tok_len; /* owned: [n_vocab] */
  uint8_t *attr;     /* owned: [n_vocab] LLMC_TOK_ATTR_* */
  float *score;      /* owned: [n_vocab] SPM merge scores; NULL for BPE */
  int32_t *map;      /* owned: [map_mask + 1] open-addressed text -> id; -1 empty */
  size_t map_mask;

  llmc_tok_merge_t *merges; /* owned: [merge_mask + 1] open-addressed (left, right) -> rule */
  size_t merge_mask;
  int32_t n_merges;

  bool byte_fallback; /* BPE: a character outside the vocabulary becomes <0xNN> tokens */
  bool fuse_unk;      /* BPE: consecutive unknown characters make one unk token */
  bool ignore_merges; /* BPE: a word that is itself in the vocabulary is one token (Llama 3) */
  bool spm_prefix; /* llama.cpp's add_space_prefix: " " before text at the start or after an added
                      token */
  int32_t unk_id, bos_id, eos_id;                                  /* -1 if none */
  int32_t before[LLMC_TOK_MAX_AROUND], after[LLMC_TOK_MAX_AROUND]; /* ADD_SPECIAL ids */
  int32_t n_before, n_after;

  llmc_tok_ops_t normalizer; /* one piece in, at most one out */
  llmc_tok_ops_t pre;        /* the pre-tokenizer */

  /* Added tokens as the loader declared them, then the two match sets. */
  llmc_tok_added_t *added; /* owned: [n_added] (text = content) */
  size_t n_added, cap_added;
  llmc_tok_added_set_t added_raw, added_norm;

  /* Decoding: the bytes of id are piece_blob[piece_off[id], + piece_len[id]). */
  llmc_tok_dec_t dec[LLMC_TOK_MAX_DECODE_STEPS];
  int n_dec;
  bool strip_leading_space; /* the decoder removes one space at the very start */
  char *piece_blob;         /* owned */
  size_t *piece_off;        /* owned: [n_vocab] */
  uint32_t *piece_len;      /* owned: [n_vocab] */
};

/* A growing list of ids. */
typedef struct {
  int32_t *v; /* owned */
  size_t n, cap;
} llmc_tok_ids_t;

llmc_status_t llmc_tok_ids_push(llmc_tok_ids_t *ids, int32_t id);

/* Builder, used by the loaders: create, set tokens (and merges, added
 * tokens, operations, decode steps, fields), then finish. On error the
 * loader destroys the half-built tokenizer. */
llmc_status_t llmc_tok_create(const char *name, llmc_tok_model_t model, int32_t n_vocab,
                              llmc_tokenizer_t **out);
/* Sets the vocabulary entry of id. Errors: id out of range or set twice,
 * text too long, invalid UTF-8, the same text under another id. */
llmc_status_t llmc_tok_token_set(llmc_tokenizer_t *tok, int32_t id, const char *text, size_t len,
                                 uint8_t attr);
/* Makes room for n merge rules. */
llmc_status_t llmc_tok_merges_reserve(llmc_tokenizer_t *tok, size_t n);
/* Adds the next merge rule (rank = rules so far): left + right, both and
 * their concatenation in the vocabulary (else an error naming them). A
 * pair seen before keeps its first rank. */
llmc_status_t llmc_tok_merge_add(llmc_tokenizer_t *tok, const char *left, size_t left_len,
                                 const char *right, size_t right_len);
/* Adds the next merge rule written as one line, "left right". Tokens may
 * hold spaces themselves: the first split at a space (not the first
 * byte) whose halves and their concatenation are all in the vocabulary is
 * the rule; none is an error. */
llmc_status_t llmc_tok_merge_add_line(llmc_tokenizer_t *tok, const char *line, size_t len);
/* Declares an added token: id's text must be content (it is set if the
 * id has none yet); its attribute gains ADDED (and SPECIAL). */
llmc_status_t llmc_tok_added_add(llmc_tokenizer_t *tok, int32_t id, const char *content, size_t len,
                                 bool special, bool normalized, bool lstrip, bool rstrip,
                                 bool single_word);
/* Appends a decode step (REPLACE takes from/to). */
llmc_status_t llmc_tok_dec_add(llmc_tokenizer_t *tok, llmc_tok_dec_kind_t kind, const char *from,
                               size_t from_len, const char *to, size_t to_len);
/* Builds the added-token sets and every token's decoded bytes. */
llmc_status_t llmc_tok_finish(llmc_tokenizer_t *tok);

/* Whether v is a JSON number that is an integer in [min, max] (then in
 * *out). Exact for integers up to 2^53, as JSON numbers are doubles. */
bool llmc_tok_json_int(const cJSON *v, int64_t min, int64_t max, int64_t *out);

/* Looks text up in the vocabulary (-1 if absent). */
int32_t llmc_tok_find(const llmc_tokenizer_t *tok, const char *text, size_t len);
/* The rule merging left and right, or NULL. */
const llmc_tok_merge_t *llmc_tok_merge_find(const llmc_tokenizer_t *tok, int32_t left,
                                            int32_t right);

/* Appends the ids of one pre-token (word[0, len)) under tok's model. */
llmc_status_t llmc_tok_model_encode(const llmc_tokenizer_t *tok, const char *word, size_t len,
                                    llmc_tok_ids_t *out);

#endif /* LLMC_RUNTIME_TOKENIZER_INTERNAL_H */
