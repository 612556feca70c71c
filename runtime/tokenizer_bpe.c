/* tokenizer_bpe.c — the two merge models, over one pre-token ("word").
 *
 * Both start from the word's characters and repeatedly merge the best
 * adjacent pair until none can merge; they differ in what "best" is:
 *   BPE  the pair with the lowest merge rank (Hugging Face's BPE model,
 *        llama.cpp's llm_tokenizer_bpe); a character outside the
 *        vocabulary becomes byte-fallback tokens <0xNN> or the unknown
 *        token before merging, as Hugging Face does;
 *   SPM  the pair whose concatenation is the vocabulary entry with the
 *        highest score (llama.cpp's llm_tokenizer_spm, SentencePiece's
 *        BPE); a symbol left outside the vocabulary becomes byte tokens.
 * Ties go to the leftmost pair in both. The candidates live in a binary
 * heap; a candidate whose symbols changed since it was pushed is skipped
 * when it surfaces (its recorded size no longer matches). A word of n
 * bytes costs O(n log n). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer_internal.h"

/* A symbol: the bytes word[start, start + len), token id (-1: none yet),
 * linked to its neighbours; len 0 once merged into its left neighbour. */
typedef struct {
  uint32_t start, len;
  int32_t id;
  int32_t prev, next;
} sym_t;

/* A pair that may merge: symbol `left` and its right neighbour, which
 * together were `size` bytes when pushed; lower prio merges first. */
typedef struct {
  double prio;
  int32_t left;
  uint32_t size;
  int32_t result;
} cand_t;

typedef struct {
  const llmc_tokenizer_t *tok;
  const char *word;
  sym_t *syms;
  int32_t n_syms, cap_syms;
  cand_t *heap;
  size_t n_heap, cap_heap;
} merger_t;

static bool cand_before(const cand_t *a, const cand_t *b) {
  return a->prio < b->prio || (a->prio == b->prio && a->left < b->left);
}

static llmc_status_t heap_push(merger_t *m, cand_t c) {
  if (m->n_heap == m->cap_heap) {
    size_t cap = m->cap_heap ? m->cap_heap * 2 : 64;
    cand_t *h = realloc(m->heap, cap * sizeof *h);
    if (!h) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer merge queue");
    m->heap = h;
    m->cap_heap = cap;
  }
  size_t i = m->n_heap++;
  while (i > 0) {
    size_t parent = (i - 1) / 2;
    if (!cand_before(&c, &m->heap[parent])) break;
    m->heap[i] = m->heap[parent];
    i = parent;
  }
  m->heap[i] = c;
  return LLMC_OK;
}

static cand_t heap_pop(merger_t *m) {
  cand_t top = m->heap[0], last = m->heap[--m->n_heap];
  size_t i = 0, n = m->n_heap;
  for (;;) {
    size_t child = 2 * i + 1;
    if (child >= n) break;
    if (child + 1 < n && cand_before(&m->heap[child + 1], &m->heap[child])) child++;
    if (!cand_before(&m->heap[child], &last)) break;
    m->heap[i] = m->heap[child];
    i = child;
  }
  if (n) m->heap[i] = last;
  return top;
}

static llmc_status_t sym_push(merger_t *m, uint32_t start, uint32_t len, int32_t id) {
  if (m->n_syms == m->cap_syms) {
    int32_t cap = m->cap_syms ? m->cap_syms * 2 : 32;
    sym_t *s = realloc(m->syms, (size_t)cap * sizeof *s);
    if (!s) return LLMC_ERROR(OUT_OF_MEMORY, "tokenizer symbols");
    m->syms = s;
    m->cap_syms = cap;
  }
  int32_t i = m->n_syms++;
  m->syms[i] = (sym_t){start, len, id, i - 1, -1};
  if (i > 0) m->syms[i - 1].next = i;
  return LLMC_OK;
}

/* Pushes the pair (left, left's next) if the model can merge it. */
static llmc_status_t try_pair(merger_t *m, int32_t left) {
  if (left < 0) return LLMC_OK;
  int32_t right = m->syms[left].next;
  if (right < 0) return LLMC_OK;
  const sym_t *a = &m->syms[left], *b = &m->syms[right];
  const llmc_tokenizer_t *tok = m->tok;
  cand_t c = {0, left, a->len + b->len, -1};
  if (tok->model == LLMC_TOK_MODEL_BPE) {
    if (a->id < 0 || b->id < 0) return LLMC_OK;
    const llmc_tok_merge_t *rule = llmc_tok_merge_find(tok, a->id, b->id);
    if (!rule) return LLMC_OK;
    c.prio = rule->rank;
    c.result = rule->result;
  } else {
    c.result = llmc_tok_find(tok, m->word + a->start, c.size);
    if (c.result < 0) return LLMC_OK;
    c.prio = -(double)tok->score[c.result];
  }
  return heap_push(m, c);
}

static llmc_status_t merge_all(merger_t *m) {
  for (int32_t i = 0; i + 1 < m->n_syms; i++) LLMC_PROPAGATE(try_pair(m, i));
  while (m->n_heap) {
    cand_t c = heap_pop(m);
    sym_t *a = &m->syms[c.left];
    if (a->len == 0 || a->next < 0) continue;
    sym_t *b = &m->syms[a->next];
    if (a->len + b->len != c.size) continue; /* stale: a neighbour changed */
    a->len += b->len;
    a->id = c.result;
    b->len = 0;
    a->next = b->next;
    if (b->next >= 0) m->syms[b->next].prev = c.left;
    LLMC_PROPAGATE(try_pair(m, a->prev));
    LLMC_PROPAGATE(try_pair(m, c.left));
  }
  return LLMC_OK;
}

/* The byte-fallback token of byte b: <0xNN>, else the byte itself as a
 * vocabulary entry (llama.cpp's byte_to_token), else -1. */
static int32_t byte_token(const llmc_tokenizer_t *tok, uint8_t b) {
  char name[8];
  snprintf(name, sizeof name, "<0x%02X>", b);
  int32_t id = llmc_tok_find(tok, name, 6);
  if (id < 0 && tok->model == LLMC_TOK_MODEL_SPM) id = llmc_tok_find(tok, (const char *)&b, 1);
  return id;
}

/* The initial symbols of a BPE word, one per character, with Hugging
 * Face's handling of characters outside the vocabulary. */
static llmc_status_t bpe_symbols(merger_t *m, size_t len) {
  const llmc_tokenizer_t *tok = m->tok;
  const uint8_t *u = (const uint8_t *)m->word;
  uint32_t unk_start = 0, unk_len = 0; /* a pending (fused) unknown stretch */
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t n = llmc_tok_utf8_next(u + i, len - i, &cp);
    int32_t id = llmc_tok_find(tok, m->word + i, n);
    bool bytes_ok = id < 0 && tok->byte_fallback;
    for (size_t j = 0; j < n && bytes_ok; j++) bytes_ok = byte_token(tok, u[i + j]) >= 0;
    if (id >= 0 || bytes_ok) {
      if (unk_len) LLMC_PROPAGATE(sym_push(m, unk_start, unk_len, tok->unk_id));
      unk_len = 0;
      if (id >= 0)
        LLMC_PROPAGATE(sym_push(m, (uint32_t)i, (uint32_t)n, id));
      else
        for (size_t j = 0; j < n; j++)
          LLMC_PROPAGATE(sym_push(m, (uint32_t)(i + j), 1, byte_token(tok, u[i + j])));
    } else if (tok->unk_id >= 0) {
      if (unk_len && tok->fuse_unk) {
        unk_len += (uint32_t)n;
      } else {
        if (unk_len) LLMC_PROPAGATE(sym_push(m, unk_start, unk_len, tok->unk_id));
        unk_start = (uint32_t)i;
        unk_len = (uint32_t)n;
      }
    } /* else: no way to spell it; Hugging Face drops it too */
    i += n;
  }
  if (unk_len) LLMC_PROPAGATE(sym_push(m, unk_start, unk_len, tok->unk_id));
  return LLMC_OK;
}

/* The initial symbols of an SPM word: its characters, looked up. */
static llmc_status_t spm_symbols(merger_t *m, size_t len) {
  const uint8_t *u = (const uint8_t *)m->word;
  for (size_t i = 0; i < len;) {
    int32_t cp;
    size_t n = llmc_tok_utf8_next(u + i, len - i, &cp);
    LLMC_PROPAGATE(sym_push(m, (uint32_t)i, (uint32_t)n, llmc_tok_find(m->tok, m->word + i, n)));
    i += n;
  }
  return LLMC_OK;
}

/* Appends the final symbols' ids; an SPM symbol outside the vocabulary
 * becomes its bytes' tokens (or the unknown token). */
static llmc_status_t emit(const merger_t *m, llmc_tok_ids_t *out) {
  for (int32_t i = 0; i >= 0 && i < m->n_syms; i = m->syms[i].next) {
    const sym_t *s = &m->syms[i];
    if (s->id >= 0) {
      LLMC_PROPAGATE(llmc_tok_ids_push(out, s->id));
      continue;
    }
    for (uint32_t j = 0; j < s->len; j++) {
      int32_t id = byte_token(m->tok, (uint8_t)m->word[s->start + j]);
      if (id < 0) id = m->tok->unk_id;
      if (id >= 0) LLMC_PROPAGATE(llmc_tok_ids_push(out, id));
    }
  }
  return LLMC_OK;
}

llmc_status_t llmc_tok_model_encode(const llmc_tokenizer_t *tok, const char *word, size_t len,
                                    llmc_tok_ids_t *out) {
  if (len == 0) return LLMC_OK;
  if (len > INT32_MAX / 2)
    return LLMC_ERROR(INVALID_ARGUMENT, "a %zu-byte word is too long to tokenize", len);
  if (tok->model == LLMC_TOK_MODEL_BPE && tok->ignore_merges) {
    int32_t id = llmc_tok_find(tok, word, len);
    if (id >= 0) return llmc_tok_ids_push(out, id);
  }
  merger_t m = {.tok = tok, .word = word};
  llmc_status_t status =
      tok->model == LLMC_TOK_MODEL_BPE ? bpe_symbols(&m, len) : spm_symbols(&m, len);
  if (!status) status = merge_all(&m);
  if (!status) status = emit(&m, out);
  free(m.syms);
  free(m.heap);
  return status;
}
