/* tokenizer.c — the tokenizer record and everything that is not a loader
 * or a merge model: the vocabulary hash, added tokens, the encode
 * pipeline (tokenizer_internal.h describes it), decoding and the
 * streaming decoder.
 *
 * Added tokens are matched leftmost-longest (Hugging Face's Aho-Corasick
 * with LeftmostLongest), with its single_word, lstrip and rstrip rules.
 * Decoding never runs a decoder at decode time: the bytes of every token
 * are computed once, at load, from the decoder steps the file describes;
 * added tokens decode to their text as written, as llama.cpp does. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "support/file.h"
#include "support/hex.h"
#include "tokenizer_internal.h"

/* ---- small helpers ----------------------------------------------------- */

llmc_status_t llmc_tok_ids_push(llmc_tok_ids_t *ids, int32_t id) {
  if (ids->n == ids->cap) {
    size_t cap = ids->cap ? ids->cap * 2 : 64;
    int32_t *v = realloc(ids->v, cap * sizeof *v);
    if (!v) return LLMC_ERROR(OUT_OF_MEMORY, "token ids");
    ids->v = v;
    ids->cap = cap;
  }
  ids->v[ids->n++] = id;
  return LLMC_OK;
}

/* FNV-1a. */
static uint64_t hash_bytes(const char *s, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; i++) h = (h ^ (uint8_t)s[i]) * 1099511628211ull;
  return h;
}

/* A finalizer that spreads pairs of ids over the table (splitmix64's). */
static uint64_t hash_pair(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The smallest power of two >= 2 n (at least 16), as a mask. */
static size_t table_mask(size_t n) {
  size_t cap = 16;
  while (cap < 2 * n) cap *= 2;
  return cap - 1;
}

/* A printable excerpt of a token for messages. */
static int excerpt_len(size_t len) { return len > 60 ? 60 : (int)len; }

/* ---- building ---------------------------------------------------------- */

llmc_status_t llmc_tok_create(const char *name, llmc_tok_model_t model, int32_t n_vocab,
                              llmc_tokenizer_t **out) {
  *out = NULL;
  if (n_vocab <= 0 || n_vocab > LLMC_TOK_MAX_VOCAB)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: vocabulary of %d tokens (expected 1 to %d)", name,
                      n_vocab, LLMC_TOK_MAX_VOCAB);
  llmc_tokenizer_t *tok = calloc(1, sizeof *tok);
  if (!tok) return LLMC_ERROR(OUT_OF_MEMORY, "%s: tokenizer", name);
  size_t n = (size_t)n_vocab;
  tok->name = strdup(name);
  tok->model = model;
  tok->n_vocab = n_vocab;
  tok->unk_id = tok->bos_id = tok->eos_id = -1;
  tok->tok_off = calloc(n, sizeof *tok->tok_off);
  tok->tok_len = calloc(n, sizeof *tok->tok_len);
  tok->attr = calloc(n, sizeof *tok->attr);
  tok->map_mask = table_mask(n);
  tok->map = malloc((tok->map_mask + 1) * sizeof *tok->map);
  if (model == LLMC_TOK_MODEL_SPM) tok->score = calloc(n, sizeof *tok->score);
  if (!tok->name || !tok->tok_off || !tok->tok_len || !tok->attr || !tok->map ||
      (model == LLMC_TOK_MODEL_SPM && !tok->score)) {
    llmc_tokenizer_destroy(tok);
    return LLMC_ERROR(OUT_OF_MEMORY, "%s: vocabulary of %d tokens", name, n_vocab);
  }
  memset(tok->map, 0xff, (tok->map_mask + 1) * sizeof *tok->map);
  *out = tok;
  return LLMC_OK;
}

int32_t llmc_tok_find(const llmc_tokenizer_t *tok, const char *text, size_t len) {
  for (size_t i = hash_bytes(text, len) & tok->map_mask;; i = (i + 1) & tok->map_mask) {
    int32_t id = tok->map[i];
    if (id < 0) return -1;
    if (tok->tok_len[id] == len && memcmp(tok->tok_blob + tok->tok_off[id], text, len) == 0)
      return id;
  }
}

llmc_status_t llmc_tok_token_set(llmc_tokenizer_t *tok, int32_t id, const char *text, size_t len,
                                 uint8_t attr) {
  if (id < 0 || id >= tok->n_vocab)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: token id %d outside the vocabulary [0, %d)", tok->name,
                      id, tok->n_vocab);
  if (tok->attr[id] & LLMC_TOK_ATTR_ASSIGNED)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: token id %d given twice", tok->name, id);
  if (len > LLMC_TOK_MAX_TOKEN_BYTES)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: token %d is %zu bytes long (at most %d)", tok->name,
                      id, len, LLMC_TOK_MAX_TOKEN_BYTES);
  if (!llmc_tok_utf8_valid(text, len))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: token %d is not valid UTF-8", tok->name, id);
  int32_t other = len ? llmc_tok_find(tok, text, len) : -1;
  if (other >= 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: duplicate token \"%.*s\" (ids %d and %d)", tok->name,
                      excerpt_len(len), text, other, id);
  if (tok->tok_blob_len + len > tok->tok_blob_cap) {
    size_t cap = tok->tok_blob_cap ? tok->tok_blob_cap : 1 << 16;
    while (cap < tok->tok_blob_len + len) cap *= 2;
    char *blob = realloc(tok->tok_blob, cap);
    if (!blob) return LLMC_ERROR(OUT_OF_MEMORY, "%s: vocabulary text", tok->name);
    tok->tok_blob = blob;
    tok->tok_blob_cap = cap;
  }
  if (len) memcpy(tok->tok_blob + tok->tok_blob_len, text, len);
  tok->tok_off[id] = tok->tok_blob_len;
  tok->tok_len[id] = (uint32_t)len;
  tok->tok_blob_len += len;
  tok->attr[id] = attr | LLMC_TOK_ATTR_ASSIGNED;
  if (len) { /* an empty entry can never be matched */
    size_t i = hash_bytes(text, len) & tok->map_mask;
    while (tok->map[i] >= 0) i = (i + 1) & tok->map_mask;
    tok->map[i] = id;
  }
  return LLMC_OK;
}

llmc_status_t llmc_tok_merges_reserve(llmc_tokenizer_t *tok, size_t n) {
  if (n > LLMC_TOK_MAX_VOCAB)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %zu merges (at most %d)", tok->name, n,
                      LLMC_TOK_MAX_VOCAB);
  free(tok->merges);
  tok->merge_mask = table_mask(n);
  tok->merges = malloc((tok->merge_mask + 1) * sizeof *tok->merges);
  if (!tok->merges) return LLMC_ERROR(OUT_OF_MEMORY, "%s: %zu merges", tok->name, n);
  for (size_t i = 0; i <= tok->merge_mask; i++) tok->merges[i].rank = -1;
  tok->n_merges = 0;
  return LLMC_OK;
}

/* The slot of (left, right): the rule, or the empty slot where it goes. */
static llmc_tok_merge_t *merge_slot(const llmc_tokenizer_t *tok, int32_t left, int32_t right) {
  uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
  for (size_t i = hash_pair(key) & tok->merge_mask;; i = (i + 1) & tok->merge_mask) {
    llmc_tok_merge_t *m = &tok->merges[i];
    if (m->rank < 0 || m->key == key) return m;
  }
}

const llmc_tok_merge_t *llmc_tok_merge_find(const llmc_tokenizer_t *tok, int32_t left,
                                            int32_t right) {
  if (!tok->merges) return NULL;
  const llmc_tok_merge_t *m = merge_slot(tok, left, right);
  return m->rank < 0 ? NULL : m;
}

llmc_status_t llmc_tok_merge_add(llmc_tokenizer_t *tok, const char *left, size_t left_len,
                                 const char *right, size_t right_len) {
  int32_t rank = tok->n_merges;
  if (!tok->merges || (size_t)rank >= (tok->merge_mask + 1) / 2)
    return LLMC_ERROR(INTERNAL, "%s: merge table not reserved", tok->name);
  int32_t a = llmc_tok_find(tok, left, left_len), b = llmc_tok_find(tok, right, right_len);
  if (a < 0 || b < 0)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: merge %d (\"%.*s\" \"%.*s\"): \"%.*s\" is not in the vocabulary",
                      tok->name, rank, excerpt_len(left_len), left, excerpt_len(right_len), right,
                      a < 0 ? excerpt_len(left_len) : excerpt_len(right_len), a < 0 ? left : right);
  size_t len = left_len + right_len;
  char *joined = malloc(len ? len : 1);
  if (!joined) return LLMC_ERROR(OUT_OF_MEMORY, "%s: merges", tok->name);
  memcpy(joined, left, left_len);
  memcpy(joined + left_len, right, right_len);
  int32_t result = llmc_tok_find(tok, joined, len);
  free(joined);
  if (result < 0)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: merge %d (\"%.*s\" \"%.*s\"): the merged token is not in the vocabulary",
                      tok->name, rank, excerpt_len(left_len), left, excerpt_len(right_len), right);
  llmc_tok_merge_t *m = merge_slot(tok, a, b);
  if (m->rank < 0) *m = (llmc_tok_merge_t){(uint64_t)(uint32_t)a << 32 | (uint32_t)b, rank, result};
  tok->n_merges++;
  return LLMC_OK;
}

llmc_status_t llmc_tok_merge_add_line(llmc_tokenizer_t *tok, const char *line, size_t len) {
  for (size_t p = 1; p + 1 < len; p++) {
    if (line[p] != ' ' || llmc_tok_find(tok, line, p) < 0 ||
        llmc_tok_find(tok, line + p + 1, len - p - 1) < 0)
      continue;
    char *joined = malloc(len - 1);
    if (!joined) return LLMC_ERROR(OUT_OF_MEMORY, "%s: merges", tok->name);
    memcpy(joined, line, p);
    memcpy(joined + p, line + p + 1, len - p - 1);
    bool known = llmc_tok_find(tok, joined, len - 1) >= 0;
    free(joined);
    if (known) return llmc_tok_merge_add(tok, line, p, line + p + 1, len - p - 1);
  }
  return LLMC_ERROR(
      INVALID_ARGUMENT,
      "%s: merge %d (\"%.*s\") is not two vocabulary tokens whose concatenation is one", tok->name,
      tok->n_merges, excerpt_len(len), line);
}

llmc_status_t llmc_tok_added_add(llmc_tokenizer_t *tok, int32_t id, const char *content, size_t len,
                                 bool special, bool normalized, bool lstrip, bool rstrip,
                                 bool single_word) {
  if (len == 0) return LLMC_ERROR(INVALID_ARGUMENT, "%s: added token %d is empty", tok->name, id);
  uint8_t attr = LLMC_TOK_ATTR_ADDED | (special ? LLMC_TOK_ATTR_SPECIAL : 0);
  if (id >= 0 && id < tok->n_vocab && (tok->attr[id] & LLMC_TOK_ATTR_ASSIGNED)) {
    if (tok->tok_len[id] != len || memcmp(tok->tok_blob + tok->tok_off[id], content, len) != 0)
      return LLMC_ERROR(
          INVALID_ARGUMENT,
          "%s: added token \"%.*s\" has id %d, which the vocabulary gives to \"%.*s\"", tok->name,
          excerpt_len(len), content, id, excerpt_len(tok->tok_len[id]),
          tok->tok_blob + tok->tok_off[id]);
    tok->attr[id] |= attr;
  } else {
    LLMC_PROPAGATE(llmc_tok_token_set(tok, id, content, len, attr));
  }
  if (tok->n_added == tok->cap_added) {
    size_t cap = tok->cap_added ? tok->cap_added * 2 : 16;
    llmc_tok_added_t *v = realloc(tok->added, cap * sizeof *v);
    if (!v) return LLMC_ERROR(OUT_OF_MEMORY, "%s: added tokens", tok->name);
    tok->added = v;
    tok->cap_added = cap;
  }
  char *text = malloc(len);
  if (!text) return LLMC_ERROR(OUT_OF_MEMORY, "%s: added tokens", tok->name);
  memcpy(text, content, len);
  tok->added[tok->n_added++] =
      (llmc_tok_added_t){text, len, id, special, lstrip, rstrip, single_word, normalized};
  return LLMC_OK;
}

llmc_status_t llmc_tok_dec_add(llmc_tokenizer_t *tok, llmc_tok_dec_kind_t kind, const char *from,
                               size_t from_len, const char *to, size_t to_len) {
  if (tok->n_dec == LLMC_TOK_MAX_DECODE_STEPS)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: more than %d decoder steps", tok->name,
                      LLMC_TOK_MAX_DECODE_STEPS);
  llmc_tok_dec_t *d = &tok->dec[tok->n_dec++];
  *d = (llmc_tok_dec_t){.kind = kind};
  if (kind != LLMC_TOK_DEC_REPLACE) return LLMC_OK;
  if (from_len == 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: decoder replaces an empty string", tok->name);
  d->from = malloc(from_len);
  d->to = malloc(to_len ? to_len : 1);
  if (!d->from || !d->to) return LLMC_ERROR(OUT_OF_MEMORY, "%s: decoder", tok->name);
  memcpy(d->from, from, from_len);
  if (to_len) memcpy(d->to, to, to_len);
  d->from_len = from_len;
  d->to_len = to_len;
  return LLMC_OK;
}

/* Orders a set's entries by first byte, longest first. */
static int added_cmp(const void *pa, const void *pb) {
  const llmc_tok_added_t *a = pa, *b = pb;
  uint8_t fa = (uint8_t)a->text[0], fb = (uint8_t)b->text[0];
  if (fa != fb) return fa < fb ? -1 : 1;
  if (a->len != b->len) return a->len > b->len ? -1 : 1;
  return a->id < b->id ? -1 : a->id > b->id;
}

/* Builds one match set from the declared added tokens whose `normalized`
 * is as asked; normalized ones are matched in their normalized form. */
static llmc_status_t added_set_build(llmc_tokenizer_t *tok, bool normalized,
                                     llmc_tok_added_set_t *set) {
  set->v = calloc(tok->n_added ? tok->n_added : 1, sizeof *set->v);
  if (!set->v) return LLMC_ERROR(OUT_OF_MEMORY, "%s: added tokens", tok->name);
  llmc_tok_pieces_t p = {0}, scratch = {0};
  llmc_status_t status = LLMC_OK;
  for (size_t i = 0; i < tok->n_added && !status; i++) {
    if (tok->added[i].normalized != normalized) continue;
    llmc_tok_added_t a = tok->added[i];
    const char *text = a.text;
    size_t len = a.len;
    if (normalized) {
      llmc_tok_pieces_clear(&p);
      status = llmc_tok_pieces_push(&p, a.text, a.len, true);
      if (!status) status = llmc_tok_ops_run(&tok->normalizer, &p, &scratch);
      if (status || p.n == 0) continue;
      text = p.buf + p.spans[0].start;
      len = p.spans[0].len;
    }
    a.text = malloc(len);
    if (!a.text) {
      status = LLMC_ERROR(OUT_OF_MEMORY, "%s: added tokens", tok->name);
      break;
    }
    memcpy(a.text, text, len);
    a.len = len;
    set->v[set->n++] = a;
  }
  llmc_tok_pieces_deinit(&p);
  llmc_tok_pieces_deinit(&scratch);
  LLMC_PROPAGATE(status);
  qsort(set->v, set->n, sizeof *set->v, added_cmp);
  size_t j = 0;
  for (int b = 0; b < 256; b++) {
    set->first[b] = (uint32_t)j;
    while (j < set->n && (uint8_t)set->v[j].text[0] == b) j++;
  }
  set->first[256] = (uint32_t)j;
  return LLMC_OK;
}

/* A growing byte string. */
typedef struct {
  char *v;
  size_t n, cap;
} bytes_t;

static bool bytes_append(bytes_t *b, const char *data, size_t n) {
  if (b->n + n > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n) cap *= 2;
    char *v = realloc(b->v, cap);
    if (!v) return false;
    b->v = v;
    b->cap = cap;
  }
  if (n) memcpy(b->v + b->n, data, n);
  b->n += n;
  return true;
}

/* One decoder step over a token's text t[0, n), into out. */
static bool decode_step(const llmc_tok_dec_t *d, const char *t, size_t n, bytes_t *out) {
  switch (d->kind) {
  case LLMC_TOK_DEC_BYTE_LEVEL: /* all characters stand-ins: their bytes; else the text as is */
    for (size_t i = 0; i < n;) {
      int32_t cp;
      i += llmc_tok_utf8_next((const uint8_t *)t + i, n - i, &cp);
      int byte = llmc_tok_char_byte(cp);
      char c = (char)byte;
      if (byte < 0) {
        out->n = 0;
        return bytes_append(out, t, n);
      }
      if (!bytes_append(out, &c, 1)) return false;
    }
    return true;
  case LLMC_TOK_DEC_REPLACE: {
    size_t start = 0;
    for (size_t i = 0; i + d->from_len <= n;) {
      if (memcmp(t + i, d->from, d->from_len) != 0) {
        i++;
        continue;
      }
      if (!bytes_append(out, t + start, i - start) || !bytes_append(out, d->to, d->to_len))
        return false;
      i += d->from_len;
      start = i;
    }
    return bytes_append(out, t + start, n - start);
  }
  case LLMC_TOK_DEC_BYTE_FALLBACK: {
    /* "<0xNN>": t is not NUL-terminated, so the digits are read by hand. */
    int hi = n == 6 ? llmc_hex_digit(t[3]) : -1, lo = n == 6 ? llmc_hex_digit(t[4]) : -1;
    if (n == 6 && memcmp(t, "<0x", 3) == 0 && hi >= 0 && lo >= 0 && t[5] == '>') {
      char c = (char)(hi * 16 + lo);
      return bytes_append(out, &c, 1);
    }
    return bytes_append(out, t, n);
  }
  case LLMC_TOK_DEC_KIND_COUNT: break;
  }
  return false;
}

/* Computes the decoded bytes of every token: added tokens their text,
 * the others their text through the decoder steps. */
static llmc_status_t build_pieces(llmc_tokenizer_t *tok) {
  size_t n = (size_t)tok->n_vocab;
  tok->piece_off = calloc(n, sizeof *tok->piece_off);
  tok->piece_len = calloc(n, sizeof *tok->piece_len);
  bytes_t out = {0}, cur = {0}, next = {0};
  bool ok = tok->piece_off && tok->piece_len;
  for (size_t id = 0; id < n && ok; id++) {
    if (!(tok->attr[id] & LLMC_TOK_ATTR_ASSIGNED)) continue;
    cur.n = 0;
    ok = bytes_append(&cur, tok->tok_blob + tok->tok_off[id], tok->tok_len[id]);
    for (int s = 0; s < tok->n_dec && ok && !(tok->attr[id] & LLMC_TOK_ATTR_ADDED); s++) {
      next.n = 0;
      ok = decode_step(&tok->dec[s], cur.v, cur.n, &next);
      bytes_t t = cur;
      cur = next;
      next = t;
    }
    tok->piece_off[id] = out.n;
    tok->piece_len[id] = (uint32_t)cur.n;
    ok = ok && bytes_append(&out, cur.v, cur.n);
  }
  tok->piece_blob = out.v;
  free(cur.v);
  free(next.v);
  return ok ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "%s: decoder", tok->name);
}

llmc_status_t llmc_tok_finish(llmc_tokenizer_t *tok) {
  LLMC_PROPAGATE(added_set_build(tok, false, &tok->added_raw));
  LLMC_PROPAGATE(added_set_build(tok, true, &tok->added_norm));
  return build_pieces(tok);
}

static void added_set_deinit(llmc_tok_added_set_t *set) {
  for (size_t i = 0; i < set->n; i++) free(set->v[i].text);
  free(set->v);
}

void llmc_tokenizer_destroy(llmc_tokenizer_t *tok) {
  if (!tok) return;
  free(tok->name);
  free(tok->tok_blob);
  free(tok->tok_off);
  free(tok->tok_len);
  free(tok->attr);
  free(tok->score);
  free(tok->map);
  free(tok->merges);
  llmc_tok_ops_deinit(&tok->normalizer);
  llmc_tok_ops_deinit(&tok->pre);
  for (size_t i = 0; i < tok->n_added; i++) free(tok->added[i].text);
  free(tok->added);
  added_set_deinit(&tok->added_raw);
  added_set_deinit(&tok->added_norm);
  for (int i = 0; i < tok->n_dec; i++) {
    free(tok->dec[i].from);
    free(tok->dec[i].to);
  }
  free(tok->piece_blob);
  free(tok->piece_off);
  free(tok->piece_len);
  free(tok);
}

/* ---- loading ----------------------------------------------------------- */

llmc_status_t llmc_tokenizer_load_file(const char *path, llmc_tokenizer_t **out) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    if (errno == ENOENT) return LLMC_ERROR(NOT_FOUND, "%s: no such file", path);
    return LLMC_ERROR(IO, "cannot open %s: %s", path, strerror(errno));
  }
  char magic[4] = {0};
  size_t got = fread(magic, 1, sizeof magic, f);
  fclose(f);
  if (got == 4 && memcmp(magic, "GGUF", 4) == 0) return llmc_tokenizer_load_gguf(path, out);
  return llmc_tokenizer_load_hf_json(path, out);
}

llmc_status_t llmc_tokenizer_load_from_spec(const cJSON *spec, const char *base_dir,
                                            llmc_tokenizer_t **out) {
  *out = NULL;
  if (!spec || cJSON_IsNull(spec)) return LLMC_ERROR(NOT_FOUND, "the model has no tokenizer");
  const cJSON *file = cJSON_GetObjectItemCaseSensitive(spec, "file");
  const cJSON *gguf = cJSON_GetObjectItemCaseSensitive(spec, "gguf");
  const cJSON *which = cJSON_IsString(file) ? file : gguf;
  if (!cJSON_IsObject(spec) || !cJSON_IsString(which) || !which->valuestring[0])
    return LLMC_ERROR(
        INVALID_ARGUMENT,
        "tokenizer: expected {\"file\": \"tokenizer.json\"} or {\"gguf\": \"model.gguf\"}");
  const char *rel = which->valuestring;
  size_t need = (base_dir ? strlen(base_dir) : 0) + strlen(rel) + 2;
  char *path = malloc(need);
  if (!path) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer path");
  if (rel[0] == '/' || !base_dir || !base_dir[0])
    snprintf(path, need, "%s", rel);
  else
    snprintf(path, need, "%s/%s", base_dir, rel);
  llmc_status_t status =
      which == file ? llmc_tokenizer_load_hf_json(path, out) : llmc_tokenizer_load_gguf(path, out);
  free(path);
  return status;
}

/* ---- queries ----------------------------------------------------------- */

int32_t llmc_tokenizer_vocab_size(const llmc_tokenizer_t *tok) { return tok->n_vocab; }
int32_t llmc_tokenizer_bos_id(const llmc_tokenizer_t *tok) { return tok->bos_id; }
int32_t llmc_tokenizer_eos_id(const llmc_tokenizer_t *tok) { return tok->eos_id; }

int32_t llmc_tokenizer_token_find(const llmc_tokenizer_t *tok, const char *text, size_t len) {
  return len ? llmc_tok_find(tok, text, len) : -1;
}

const char *llmc_tokenizer_token_text(const llmc_tokenizer_t *tok, int32_t id, size_t *out_len) {
  *out_len = 0;
  if (id < 0 || id >= tok->n_vocab || !(tok->attr[id] & LLMC_TOK_ATTR_ASSIGNED)) return NULL;
  *out_len = tok->tok_len[id];
  return tok->tok_blob + tok->tok_off[id];
}

bool llmc_tokenizer_token_is_special(const llmc_tokenizer_t *tok, int32_t id) {
  return id >= 0 && id < tok->n_vocab && (tok->attr[id] & LLMC_TOK_ATTR_SPECIAL);
}

/* ---- encoding ---------------------------------------------------------- */

/* The character that ends at s[end) (end > 0): its start, and *cp. */
static size_t char_before(const char *s, size_t end, int32_t *cp) {
  size_t start = end - 1;
  while (start > 0 && end - start < 4 && ((uint8_t)s[start] & 0xC0) == 0x80) start--;
  size_t len = llmc_tok_utf8_next((const uint8_t *)s + start, end - start, cp);
  if (start + len != end) { /* not one character: the last byte alone */
    *cp = -1;
    return end - 1;
  }
  return start;
}

/* The next match of set in s[0, n) starting at or after `from`, as
 * Hugging Face's AddedVocabulary::find_matches finds it: leftmost-longest,
 * single_word matches only between non-word characters, lstrip / rstrip
 * absorbing whitespace (not before `floor`, the previous match's end). */
static bool added_next(const llmc_tok_added_set_t *set, const char *s, size_t n, size_t from,
                       size_t floor, bool parse_special, size_t *m_start, size_t *m_end,
                       int32_t *id) {
  if (set->n == 0) return false;
  for (size_t i = from; i < n;) {
    uint8_t b = (uint8_t)s[i];
    const llmc_tok_added_t *hit = NULL;
    for (uint32_t k = set->first[b]; k < set->first[b + 1] && !hit; k++) {
      const llmc_tok_added_t *a = &set->v[k];
      if ((!a->special || parse_special) && a->len <= n - i && memcmp(s + i, a->text, a->len) == 0)
        hit = a;
    }
    if (!hit) {
      i++;
      continue;
    }
    size_t start = i, end = i + hit->len;
    if (hit->single_word) {
      int32_t before = -1, after = -1;
      if (start > 0) char_before(s, start, &before);
      if (end < n) llmc_tok_utf8_next((const uint8_t *)s + end, n - end, &after);
      if (llmc_tok_is_word(before) || llmc_tok_is_word(after)) {
        i = end; /* the matcher goes on after the discarded match */
        continue;
      }
    }
    while (hit->lstrip && start > floor) {
      int32_t cp;
      size_t prev = char_before(s, start, &cp);
      if (!llmc_tok_is_space(cp) || prev < floor) break;
      start = prev;
    }
    while (hit->rstrip && end < n) {
      int32_t cp;
      size_t len = llmc_tok_utf8_next((const uint8_t *)s + end, n - end, &cp);
      if (!llmc_tok_is_space(cp)) break;
      end += len;
    }
    *m_start = start;
    *m_end = end;
    *id = hit->id;
    return true;
  }
  return false;
}

typedef struct {
  const llmc_tokenizer_t *tok;
  bool parse_special;
  bool prev_added; /* llama.cpp's is_prev_special: at the start or after an added token */
  llmc_tok_ids_t ids;
  llmc_tok_pieces_t norm, words, scratch;
} encoder_t;

/* Pre-tokenizes s[0, n) and runs the model on every word. */
static llmc_status_t encode_words(encoder_t *e, const char *s, size_t n, bool origin) {
  llmc_tok_pieces_clear(&e->words);
  LLMC_PROPAGATE(llmc_tok_pieces_push(&e->words, s, n, origin));
  LLMC_PROPAGATE(llmc_tok_ops_run(&e->tok->pre, &e->words, &e->scratch));
  for (size_t i = 0; i < e->words.n; i++) {
    const llmc_tok_span_t *w = &e->words.spans[i];
    LLMC_PROPAGATE(llmc_tok_model_encode(e->tok, e->words.buf + w->start, w->len, &e->ids));
  }
  return LLMC_OK;
}

/* A stretch of raw text between added tokens: normalized, cut at added
 * tokens matched on normalized text, pre-tokenized, modelled. */
static llmc_status_t encode_text(encoder_t *e, const char *s, size_t n, bool origin) {
  if (n == 0) return LLMC_OK;
  const llmc_tokenizer_t *tok = e->tok;
  llmc_tok_pieces_clear(&e->norm);
  bool prefix = tok->spm_prefix && e->prev_added;
  LLMC_PROPAGATE(llmc_tok_pieces_push_joined(&e->norm, " ", prefix ? 1 : 0, s, n, origin));
  e->prev_added = false;
  LLMC_PROPAGATE(llmc_tok_ops_run(&tok->normalizer, &e->norm, &e->scratch));
  if (e->norm.n == 0) return LLMC_OK;
  const char *t = e->norm.buf + e->norm.spans[0].start;
  size_t tn = e->norm.spans[0].len, pos = 0, ms, me;
  int32_t id;
  while (added_next(&tok->added_norm, t, tn, pos, pos, e->parse_special, &ms, &me, &id)) {
    LLMC_PROPAGATE(encode_words(e, t + pos, ms - pos, origin && pos == 0));
    LLMC_PROPAGATE(llmc_tok_ids_push(&e->ids, id));
    pos = me;
  }
  return encode_words(e, t + pos, tn - pos, origin && pos == 0);
}

llmc_status_t llmc_tokenizer_encode(const llmc_tokenizer_t *tok, const char *text, size_t len,
                                    uint32_t flags, int32_t **out_ids, size_t *out_n) {
  *out_ids = NULL;
  *out_n = 0;
  encoder_t e = {
      .tok = tok, .parse_special = (flags & LLMC_TOKENIZE_PARSE_SPECIAL) != 0, .prev_added = true};
  bool add = (flags & LLMC_TOKENIZE_ADD_SPECIAL) != 0;
  llmc_status_t status = LLMC_OK;
  for (int32_t i = 0; add && i < tok->n_before && !status; i++)
    status = llmc_tok_ids_push(&e.ids, tok->before[i]);
  size_t pos = 0, ms, me;
  int32_t id;
  while (!status &&
         added_next(&tok->added_raw, text, len, pos, pos, e.parse_special, &ms, &me, &id)) {
    status = encode_text(&e, text + pos, ms - pos, pos == 0);
    if (!status) status = llmc_tok_ids_push(&e.ids, id);
    e.prev_added = true;
    pos = me;
  }
  if (!status) status = encode_text(&e, text + pos, len - pos, pos == 0);
  for (int32_t i = 0; add && i < tok->n_after && !status; i++)
    status = llmc_tok_ids_push(&e.ids, tok->after[i]);
  llmc_tok_pieces_deinit(&e.norm);
  llmc_tok_pieces_deinit(&e.words);
  llmc_tok_pieces_deinit(&e.scratch);
  if (status) {
    free(e.ids.v);
    return llmc_status_annotate(status, "%s: tokenizing", tok->name);
  }
  *out_ids = e.ids.v;
  *out_n = e.ids.n;
  return LLMC_OK;
}

/* ---- decoding ---------------------------------------------------------- */

/* The decoded bytes of id (none when the flags leave it out), or an
 * error for an id out of range. */
static llmc_status_t piece_of(const llmc_tokenizer_t *tok, int32_t id, uint32_t flags,
                              const char **p, size_t *n) {
  *p = "";
  *n = 0;
  if (id < 0 || id >= tok->n_vocab)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: token id %d outside the vocabulary [0, %d)", tok->name,
                      id, tok->n_vocab);
  *p = tok->piece_blob ? tok->piece_blob + tok->piece_off[id] : "";
  *n = tok->piece_len[id];
  if ((flags & LLMC_DETOKENIZE_SKIP_SPECIAL) && (tok->attr[id] & LLMC_TOK_ATTR_SPECIAL)) *n = 0;
  return LLMC_OK;
}

llmc_status_t llmc_tokenizer_decode(const llmc_tokenizer_t *tok, const int32_t *ids, size_t n,
                                    uint32_t flags, char **out_text, size_t *out_len) {
  *out_text = NULL;
  *out_len = 0;
  size_t total = 1;
  for (size_t i = 0; i < n; i++) {
    const char *p;
    size_t len;
    LLMC_PROPAGATE(piece_of(tok, ids[i], flags, &p, &len));
    total += len;
  }
  char *text = malloc(total);
  if (!text) return LLMC_ERROR(OUT_OF_MEMORY, "%s: decoding %zu tokens", tok->name, n);
  size_t len = 0;
  bool started = false; /* the first non-empty piece lost its leading space if it had to */
  for (size_t i = 0; i < n; i++) {
    const char *p;
    size_t k;
    piece_of(tok, ids[i], flags, &p, &k);
    if (!started && k) {
      started = true;
      if (tok->strip_leading_space && p[0] == ' ') {
        p++;
        k--;
      }
    }
    memcpy(text + len, p, k);
    len += k;
  }
  text[len] = 0;
  *out_text = text;
  *out_len = len;
  return LLMC_OK;
}

void llmc_tokenizer_stream_init(llmc_tokenizer_stream_t *s, const llmc_tokenizer_t *tok,
                                uint32_t flags) {
  memset(s, 0, sizeof *s);
  s->tok = tok;
  s->flags = flags;
}

static const char replacement_char[3] = {'\xEF', '\xBF', '\xBD'}; /* U+FFFD */

/* Emits the held bytes followed by p[0, n) into s->out: every complete
 * character as is, every impossible byte as U+FFFD, an incomplete
 * character at the end held back (or, if final, as U+FFFD). */
static llmc_status_t stream_emit(llmc_tokenizer_stream_t *s, const char *p, size_t n, bool final,
                                 size_t *out_len) {
  size_t total = s->n_held + n;
  size_t need = 3 * total + 1;
  if (need > s->out_cap) {
    char *out = realloc(s->out, need);
    if (!out) return LLMC_ERROR(OUT_OF_MEMORY, "detokenizer");
    s->out = out;
    s->out_cap = need;
  }
  /* Work on held + p without copying p: index into one or the other. */
  uint8_t window[4];
  size_t len = 0, i = 0;
  while (i < total) {
    size_t w = 0;
    for (; w < 4 && i + w < total; w++)
      window[w] = i + w < s->n_held ? s->held[i + w] : (uint8_t)p[i + w - s->n_held];
    int32_t cp;
    size_t clen = llmc_tok_utf8_next(window, w, &cp);
    if (cp >= 0) {
      memcpy(s->out + len, window, clen);
      len += clen;
      i += clen;
    } else if (!final && llmc_tok_utf8_incomplete(window, w) && i + w == total) {
      break; /* the start of a character the next token may complete */
    } else {
      memcpy(s->out + len, replacement_char, 3);
      len += 3;
      i += final && llmc_tok_utf8_incomplete(window, w) && i + w == total ? w : 1;
    }
  }
  uint8_t rest[4];
  size_t n_rest = total - i;
  for (size_t k = 0; k < n_rest; k++)
    rest[k] = i + k < s->n_held ? s->held[i + k] : (uint8_t)p[i + k - s->n_held];
  memcpy(s->held, rest, n_rest);
  s->n_held = n_rest;
  *out_len = len;
  return LLMC_OK;
}

llmc_status_t llmc_tokenizer_stream_push(llmc_tokenizer_stream_t *s, int32_t id,
                                         const char **out_text, size_t *out_len) {
  *out_text = "";
  *out_len = 0;
  const char *p;
  size_t n;
  LLMC_PROPAGATE(piece_of(s->tok, id, s->flags, &p, &n));
  if (!s->started && n) {
    s->started = true;
    if (s->tok->strip_leading_space && p[0] == ' ') {
      p++;
      n--;
    }
  }
  LLMC_PROPAGATE(stream_emit(s, p, n, false, out_len));
  *out_text = s->out ? s->out : "";
  return LLMC_OK;
}

llmc_status_t llmc_tokenizer_stream_finish(llmc_tokenizer_stream_t *s, const char **out_text,
                                           size_t *out_len) {
  LLMC_PROPAGATE(stream_emit(s, "", 0, true, out_len));
  *out_text = s->out ? s->out : "";
  s->started = false;
  return LLMC_OK;
}

void llmc_tokenizer_stream_deinit(llmc_tokenizer_stream_t *s) {
  free(s->out);
  memset(s, 0, sizeof *s);
}

/* The largest integer a JSON number (a double) holds exactly. */
#define JSON_MAX_EXACT_INT ((int64_t)1 << 53)

/* Loads the tokenizer embedded in a model.so: spec is its metadata's
 * {"embedded": "tokenizer.json" | "gguf", "offset": N, "bytes": M}, and
 * section[0, section_bytes) its weights section. The range is checked
 * before anything is read, so a corrupt or hostile model is an error,
 * never a read outside the mapping; the bytes are then parsed with every
 * check a file gets. */
static llmc_status_t load_embedded(const cJSON *spec, const uint8_t *section,
                                   uint64_t section_bytes, llmc_tokenizer_t **out) {
  const cJSON *kind = cJSON_GetObjectItemCaseSensitive(spec, "embedded");
  bool json = cJSON_IsString(kind) && strcmp(kind->valuestring, "tokenizer.json") == 0;
  bool gguf = cJSON_IsString(kind) && strcmp(kind->valuestring, "gguf") == 0;
  if (!json && !gguf)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "tokenizer: \"embedded\" must be \"tokenizer.json\" or \"gguf\"");
  int64_t offset, bytes;
  if (!llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(spec, "offset"), 0, JSON_MAX_EXACT_INT,
                         &offset) ||
      !llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(spec, "bytes"), 1, JSON_MAX_EXACT_INT,
                         &bytes))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "tokenizer: \"offset\" must be an integer >= 0 and \"bytes\" one >= 1");
  if ((uint64_t)offset > section_bytes || (uint64_t)bytes > section_bytes - (uint64_t)offset)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "tokenizer: bytes [%lld, %lld) are outside the %s section (%llu bytes): "
                      "the model is corrupt",
                      (long long)offset, (long long)(offset + bytes), LLMC_WEIGHTS_SECTION,
                      (unsigned long long)section_bytes);
  return llmc_tokenizer_parse_embedded(kind->valuestring, section + offset, (uint64_t)bytes, out);
}

llmc_status_t llmc_tokenizer_parse_embedded(const char *kind, const uint8_t *data, uint64_t bytes,
                                            llmc_tokenizer_t **out) {
  if (strcmp(kind, "gguf") != 0)
    return llmc_tokenizer_parse_hf_json((const char *)data, (size_t)bytes, "embedded tokenizer.json", out);
  llmc_gguf_t *g = NULL;
  LLMC_PROPAGATE(llmc_gguf_parse(data, bytes, "embedded GGUF tokenizer", &g));
  llmc_status_t st = llmc_tokenizer_from_gguf(g, out);
  llmc_gguf_close(g);
  return st;
}

llmc_status_t llmc_tokenizer_load_for_model(const llmc_model_t *model, llmc_tokenizer_t **out) {
  *out = NULL;
  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(model->metadata, "tokenizer");
  llmc_status_t st;
  if (cJSON_IsObject(spec) && cJSON_GetObjectItemCaseSensitive(spec, "embedded")) {
    st = load_embedded(spec, model->weights, model->weights_bytes, out);
  } else {
    /* Compiled before tokenizers were embedded: a path, relative to the .so. */
    char *dir = llmc_path_dirname(model->path);
    if (!dir) return LLMC_ERROR(OUT_OF_MEMORY, "%s", model->path);
    st = llmc_tokenizer_load_from_spec(spec, dir, out);
    free(dir);
  }
  return llmc_status_annotate(st, "%s", model->path);
}
