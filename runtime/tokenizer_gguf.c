/* tokenizer_gguf.c — the tokenizer of a GGUF file (tokenizer.ggml.*), as
 * llama.cpp reads it (src/llama-vocab.cpp).
 *
 * tokenizer.ggml.model "llama" is SentencePiece-style BPE over scores
 * (spaces become "▁", a space is put before text at the start and after
 * an added token when add_space_prefix is true, byte fallback <0xNN>);
 * "gpt2" is byte-level BPE over tokenizer.ggml.merges, pre-split as the
 * family named by tokenizer.ggml.pre does it. Token types map to
 * attributes: control and unknown tokens are special (parsed in text only
 * with PARSE_SPECIAL), user-defined tokens are always matched in text.
 *
 * The families' pre-tokenizers are the Hugging Face pre-tokenizers of the
 * models they name (llama.cpp's test references are Hugging Face's ids),
 * written as lists of regexes: each splits every piece, keeping matches
 * and the text between them; the byte-level map comes where the family's
 * ByteLevel step is (after the list if it has none). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* GGUF token types (llama.cpp's llama_token_type). */
enum { TYPE_NORMAL = 1, TYPE_UNKNOWN = 2, TYPE_CONTROL = 3, TYPE_USER_DEFINED = 4 };

/* In a family's step list: Hugging Face's ByteLevel with its regex (the
 * GPT-2 split, then the byte map). */
#define BYTE_LEVEL NULL

/* The regexes of the families' tokenizer.json files, one alternative
 * group per line. */
#define LLAMA3_RE                                 \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)"                  \
  "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}"    \
  "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+" \
  "|\\s+(?!\\S)|\\s+"
#define QWEN2_RE                                  \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)"                  \
  "|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}"         \
  "| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+" \
  "|\\s+(?!\\S)|\\s+"
#define TEKKEN_RE                                                                              \
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"  \
  "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
  "|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+"                                      \
  "|\\s+(?!\\S)|\\s+"
#define GPT4O_RE                                                                               \
  "[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]*[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]+"  \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                              \
  "|[^\\r\\n\\p{L}\\p{N}]?[\\p{Lu}\\p{Lt}\\p{Lm}\\p{Lo}\\p{M}]+[\\p{Ll}\\p{Lm}\\p{Lo}\\p{M}]*" \
  "(?i:'s|'t|'re|'ve|'m|'ll|'d)?"                                                              \
  "|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n/]*|\\s*[\\r\\n]+"                                 \
  "|\\s+(?!\\S)|\\s+"
#define DEEPSEEK3_RE                                                        \
  "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+"                   \
  "|[^\\r\\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\\r\\n]*" \
  "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"
/* Hugging Face's Punctuation (ASCII punctuation or Unicode P*), contiguous. */
#define PUNCT_RUN_RE "[\\p{P}\\x{21}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{60}\\x{7B}-\\x{7E}]+"
#define BLOOM_RE " ?[^(\\s|.,!?…。，、।۔،)]+"

typedef struct {
  const char *names;  /* the tokenizer.ggml.pre values, space-separated */
  bool ignore_merges; /* a word that is a vocabulary entry is one token */
  bool add_bos;       /* add_bos_token's default */
  int n_steps;
  const char *steps[5]; /* regexes; BYTE_LEVEL: the GPT-2 split and byte map */
} family_t;

static const family_t families[] = {
    /* names, ignore_merges, add_bos, steps */
    {"default", false, false, 4,
     {"[\\p{P}\\$\\+<=>\\^~\\|]+", BYTE_LEVEL, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"gpt-2 phi-2 mpt olmo jais jina-es jina-de jina-v1-en jina-v2-es jina-v2-de jina-v2-code "
     "roberta-bpe gigachat exaone4 a.x-4.0 mellum trillion granite-docling",
     false, false, 1, {BYTE_LEVEL}},
    {"llama3 llama-v3 llama-bpe falcon3 pixtral", true, true, 1, {LLAMA3_RE}},
    {"dbrx smaug-bpe chatglm-bpe glm4", false, false, 1, {LLAMA3_RE}},
    {"qwen2 deepseek-r1-qwen stablelm2 megrez", false, false, 1, {QWEN2_RE}},
    {"falcon", false, false, 4, {PUNCT_RUN_RE, BYTE_LEVEL, "\\p{N}+", "[0-9][0-9][0-9]"}},
    {"starcoder refact command-r smollm codeshell exaone minerva-7b mellum2", false, false, 2,
     {"\\p{N}", BYTE_LEVEL}},
    {"deepseek-coder", false, false, 5,
     {"[\\r\\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"}},
    {"deepseek-v3", false, false, 3, {"\\p{N}{1,3}", "[一-龥぀-ゟ゠-ヿ]+", DEEPSEEK3_RE}},
    {"poro-chat bloom gpt3-finnish", false, false, 1, {BLOOM_RE}},
    {"viking", false, false, 2, {BLOOM_RE, "\\p{N}"}},
    {"tekken", true, true, 1, {TEKKEN_RE}},
    {"gpt-4o llama4", false, false, 1, {GPT4O_RE}},
};

/* Whether `name` is one of the space-separated words of list. */
static bool name_in(const char *list, const char *name, size_t len) {
  for (const char *p = list; *p;) {
    size_t n = strcspn(p, " ");
    if (n == len && memcmp(p, name, len) == 0) return true;
    p += n + (p[n] == ' ');
  }
  return false;
}

/* An array key of the right shape, or NULL if absent; a key of another
 * type is an error. */
static llmc_status_t array_kv(const llmc_gguf_t *g, const char *name, const char *key, bool strings,
                              uint64_t min_n, const llmc_gguf_kv_t **out) {
  *out = llmc_gguf_find(g, key);
  if (!*out) return LLMC_OK;
  const llmc_gguf_kv_t *kv = *out;
  bool numeric = kv->elem_type != LLMC_GGUF_STRING && kv->elem_type != LLMC_GGUF_BOOL;
  if (kv->type != LLMC_GGUF_ARRAY || (strings ? kv->elem_type != LLMC_GGUF_STRING : !numeric))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s is not an array of %s", name, key,
                      strings ? "strings" : "numbers");
  if (kv->n < min_n)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s has %llu entries for %llu tokens", name, key,
                      (unsigned long long)kv->n, (unsigned long long)min_n);
  return LLMC_OK;
}

/* A token id key, or def if absent; out of range is -1. */
static int32_t id_key(const llmc_gguf_t *g, const char *key, int32_t def, int32_t n_vocab) {
  int64_t v = def;
  llmc_gguf_get_int(g, key, &v);
  return v >= 0 && v < n_vocab ? (int32_t)v : -1;
}

/* llama.cpp gives Phi-3's added tokens rstrip, as its tokenizer.json does. */
static bool is_phi3(const llmc_gguf_t *g) {
  llmc_gguf_str_t s;
  if (!llmc_gguf_get_string(g, "general.name", &s)) return false;
  char lower[64];
  size_t n = s.len < sizeof lower - 1 ? (size_t)s.len : sizeof lower - 1;
  for (size_t i = 0; i < n; i++) lower[i] = (char)tolower((unsigned char)s.data[i]);
  lower[n] = 0;
  return strstr(lower, "phi-3") || strstr(lower, "phi3");
}

static llmc_status_t load_tokens(llmc_tokenizer_t *tok, const llmc_gguf_t *g,
                                 const llmc_gguf_kv_t *tokens) {
  const char *name = tok->name;
  const llmc_gguf_kv_t *types, *scores;
  uint64_t n = tokens->n;
  LLMC_PROPAGATE(array_kv(g, name, "tokenizer.ggml.token_type", false, n, &types));
  LLMC_PROPAGATE(array_kv(g, name, "tokenizer.ggml.scores", false, n, &scores));
  bool phi3 = is_phi3(g);
  for (uint64_t i = 0; i < n; i++) {
    llmc_gguf_str_t s = llmc_gguf_array_string(tokens, i);
    int64_t type = types ? llmc_gguf_array_int(types, i) : TYPE_NORMAL;
    LLMC_PROPAGATE(llmc_tok_token_set(tok, (int32_t)i, s.data, (size_t)s.len, 0));
    if (tok->score) tok->score[i] = scores ? (float)llmc_gguf_array_float(scores, i) : 0.0f;
    bool special = type == TYPE_CONTROL || type == TYPE_UNKNOWN;
    if ((special || type == TYPE_USER_DEFINED) && s.len) {
      bool rstrip = phi3 && !((s.len == 5 && memcmp(s.data, "<unk>", 5) == 0) ||
                              (s.len == 3 && memcmp(s.data, "<s>", 3) == 0) ||
                              (s.len == 13 && memcmp(s.data, "<|endoftext|>", 13) == 0));
      LLMC_PROPAGATE(llmc_tok_added_add(tok, (int32_t)i, s.data, (size_t)s.len, special, false,
                                        false, rstrip, false));
    }
  }
  return LLMC_OK;
}

static llmc_status_t load_merges(llmc_tokenizer_t *tok, const llmc_gguf_t *g) {
  const llmc_gguf_kv_t *merges;
  LLMC_PROPAGATE(array_kv(g, tok->name, "tokenizer.ggml.merges", true, 0, &merges));
  if (!merges)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tokenizer.ggml.merges is missing", tok->name);
  LLMC_PROPAGATE(llmc_tok_merges_reserve(tok, (size_t)merges->n));
  for (uint64_t i = 0; i < merges->n; i++) {
    llmc_gguf_str_t s = llmc_gguf_array_string(merges, i);
    LLMC_PROPAGATE(llmc_tok_merge_add_line(tok, s.data, (size_t)s.len));
  }
  return LLMC_OK;
}

/* The pre-tokenizer of family `pre` (BPE models). */
static llmc_status_t load_family(llmc_tokenizer_t *tok, llmc_gguf_str_t pre, bool *add_bos) {
  const family_t *f = NULL;
  for (size_t i = 0; i < sizeof families / sizeof families[0] && !f; i++)
    if (name_in(families[i].names, pre.data, (size_t)pre.len)) f = &families[i];
  if (!f)
    return LLMC_ERROR(
        UNIMPLEMENTED,
        "%s: tokenizer.ggml.pre \"%.*s\" is not a pre-tokenizer llmc knows (docs/tokenizers.md)",
        tok->name, (int)(pre.len > 60 ? 60 : pre.len), pre.data);
  tok->ignore_merges = f->ignore_merges;
  *add_bos = f->add_bos;
  bool mapped = false;
  for (int i = 0; i < f->n_steps; i++) {
    if (f->steps[i] == BYTE_LEVEL) {
      LLMC_PROPAGATE(llmc_tok_ops_add_byte_level(&tok->pre, false, true));
      mapped = true;
    } else {
      LLMC_PROPAGATE(
          llmc_tok_ops_add_split(&tok->pre, f->steps[i], LLMC_TOK_SPLIT_ISOLATED, false));
    }
  }
  return mapped ? LLMC_OK : llmc_tok_ops_add_byte_level(&tok->pre, false, false);
}

/* Spaces to "▁" (with add_space_prefix's space first), as llama.cpp's
 * llama_escape_whitespace. */
static llmc_status_t load_spm_text(llmc_tokenizer_t *tok, const llmc_gguf_t *g) {
  bool prefix = true;
  llmc_gguf_get_bool(g, "tokenizer.ggml.add_space_prefix", &prefix);
  tok->spm_prefix = prefix;
  tok->strip_leading_space = prefix;
  llmc_tok_op_t *op = llmc_tok_ops_append(&tok->normalizer, LLMC_TOK_OP_REPLACE);
  if (!op) return LLMC_ERROR(OUT_OF_MEMORY, "%s: normalizer", tok->name);
  LLMC_PROPAGATE(llmc_tok_op_set_pattern(op, " ", 1, true));
  LLMC_PROPAGATE(llmc_tok_op_set_text(op, "\xE2\x96\x81", 3));
  LLMC_PROPAGATE(llmc_tok_dec_add(tok, LLMC_TOK_DEC_REPLACE, "\xE2\x96\x81", 3, " ", 1));
  return llmc_tok_dec_add(tok, LLMC_TOK_DEC_BYTE_FALLBACK, NULL, 0, NULL, 0);
}

static llmc_status_t build(llmc_tokenizer_t **out, const char *name, const llmc_gguf_t *g) {
  llmc_gguf_str_t model;
  if (!llmc_gguf_get_string(g, "tokenizer.ggml.model", &model))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: no tokenizer (tokenizer.ggml.model is missing)", name);
  bool spm = model.len == 5 && memcmp(model.data, "llama", 5) == 0;
  bool bpe = model.len == 4 && memcmp(model.data, "gpt2", 4) == 0;
  if (!spm && !bpe)
    return LLMC_ERROR(UNIMPLEMENTED,
                      "%s: tokenizer.ggml.model \"%.*s\" is not supported (llama and gpt2 are)",
                      name, (int)(model.len > 60 ? 60 : model.len), model.data);
  const llmc_gguf_kv_t *tokens;
  LLMC_PROPAGATE(array_kv(g, name, "tokenizer.ggml.tokens", true, 1, &tokens));
  if (!tokens) return LLMC_ERROR(INVALID_ARGUMENT, "%s: tokenizer.ggml.tokens is missing", name);
  if (tokens->n > LLMC_TOK_MAX_VOCAB)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %llu tokens (at most %d)", name,
                      (unsigned long long)tokens->n, LLMC_TOK_MAX_VOCAB);
  LLMC_PROPAGATE(llmc_tok_create(name, spm ? LLMC_TOK_MODEL_SPM : LLMC_TOK_MODEL_BPE,
                                 (int32_t)tokens->n, out));
  llmc_tokenizer_t *tok = *out;
  LLMC_PROPAGATE(load_tokens(tok, g, tokens));

  bool add_bos = spm, add_eos = false;
  if (spm) {
    tok->unk_id = id_key(g, "tokenizer.ggml.unknown_token_id", 0, tok->n_vocab);
    LLMC_PROPAGATE(load_spm_text(tok, g));
  } else {
    llmc_gguf_str_t pre = {"default", 7};
    llmc_gguf_get_string(g, "tokenizer.ggml.pre", &pre);
    LLMC_PROPAGATE(load_merges(tok, g));
    LLMC_PROPAGATE(load_family(tok, pre, &add_bos));
    LLMC_PROPAGATE(llmc_tok_dec_add(tok, LLMC_TOK_DEC_BYTE_LEVEL, NULL, 0, NULL, 0));
  }
  tok->bos_id = id_key(g, "tokenizer.ggml.bos_token_id", spm ? 1 : -1, tok->n_vocab);
  tok->eos_id = id_key(g, "tokenizer.ggml.eos_token_id", spm ? 2 : -1, tok->n_vocab);
  llmc_gguf_get_bool(g, "tokenizer.ggml.add_bos_token", &add_bos);
  llmc_gguf_get_bool(g, "tokenizer.ggml.add_eos_token", &add_eos);
  if (add_bos && tok->bos_id >= 0) tok->before[tok->n_before++] = tok->bos_id;
  if (add_eos && tok->eos_id >= 0) tok->after[tok->n_after++] = tok->eos_id;
  return llmc_tok_finish(tok);
}

llmc_status_t llmc_tokenizer_from_gguf(const llmc_gguf_t *g, llmc_tokenizer_t **out) {
  *out = NULL;
  llmc_tokenizer_t *tok = NULL;
  llmc_status_t status = build(&tok, g->path ? g->path : "gguf", g);
  if (status) {
    llmc_tokenizer_destroy(tok);
    return status;
  }
  *out = tok;
  return LLMC_OK;
}

llmc_status_t llmc_tokenizer_load_gguf(const char *path, llmc_tokenizer_t **out) {
  *out = NULL;
  llmc_gguf_t *g;
  LLMC_PROPAGATE(llmc_gguf_open(path, &g));
  llmc_status_t status = llmc_tokenizer_from_gguf(g, out);
  llmc_gguf_close(g);
  return status;
}

bool llmc_tokenizer_gguf_reads_key(llmc_gguf_str_t key) {
  static const char prefix[] = "tokenizer.ggml.", name[] = "general.name"; /* name: is_phi3 */
  return (key.len > sizeof prefix - 1 && memcmp(key.data, prefix, sizeof prefix - 1) == 0) ||
         (key.len == sizeof name - 1 && memcmp(key.data, name, sizeof name - 1) == 0);
}
