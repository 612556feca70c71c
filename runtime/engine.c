/* engine.c — runs a loaded model over the paged KV cache: turns chunks of
 * tokens, each continuing one sequence, into the llmc_batch_t / llmc_step_t
 * of abi.h and calls the model's step function.
 *
 * A step is built from any number of chunks of distinct sequences (their
 * rows stacked in chunk order), so the scheduler's continuous batching
 * (decode tokens of many sequences plus a prefill chunk) and the
 * one-sequence paths (llmc logits, perplexity) share one code path:
 * llmc_engine_feed is a loop of one-chunk steps. Everything a chunk could
 * get wrong (a token id past the vocabulary, a position past max_context,
 * too many tokens, an exhausted KV pool) is checked before the model runs,
 * because generated code trusts its inputs. */
#include <stdlib.h>
#include <string.h>

#include "llmc/runtime.h"

/* Owns the pool, the KV cache, the scratch memory and the batch arrays;
 * borrows the model. */
struct llmc_engine {
  const llmc_model_t *model; /* borrowed */
  llmc_thread_pool_t *pool;  /* owned */
  llmc_runtime_api_t rt;     /* the pool as generated code sees it */
  llmc_kv_cache_t *kv;       /* owned */
  uint8_t *scratch;          /* owned: abi->scratch_bytes(token_capacity) bytes, 64-aligned */
  int32_t token_capacity;    /* most tokens in one step */
  int32_t *arrays;           /* owned: the allocation the six arrays below live in */
  int32_t *tokens;           /* [token_capacity] */
  int32_t *positions;        /* [token_capacity] */
  int32_t *slots;            /* [token_capacity] */
  int32_t *logit_rows;       /* [token_capacity] */
  int32_t *seq_start;        /* [token_capacity + 1] */
  int32_t *seq_len;          /* [token_capacity] */
  int32_t *block_table;      /* owned: [block_table_cap] holding [S, max_blocks] of the step */
  size_t block_table_cap;
};

/* Blocks that hold n_tokens tokens. */
static int32_t blocks_for(const llmc_kv_cache_t *kv, int64_t n_tokens) {
  return (int32_t)((n_tokens + kv->block_size - 1) / kv->block_size);
}

/* Logit rows one chunk asks for. */
static int32_t chunk_logit_rows(const llmc_engine_chunk_t *chunk) {
  switch (chunk->logits) {
  case LLMC_ENGINE_LOGITS_LAST: return 1;
  case LLMC_ENGINE_LOGITS_ALL: return chunk->n_tokens;
  case LLMC_ENGINE_LOGITS_NONE:
  case LLMC_ENGINE_LOGITS_COUNT: break;
  }
  return 0;
}

int32_t llmc_engine_logit_rows(const llmc_engine_chunk_t *chunks, int32_t n_chunks) {
  int32_t rows = 0;
  for (int32_t c = 0; c < n_chunks; c++) rows += chunk_logit_rows(&chunks[c]);
  return rows;
}

llmc_status_t llmc_engine_create(const llmc_model_t *model, const llmc_engine_options_t *options,
                                 llmc_engine_t **out_engine) {
  *out_engine = NULL;
  const llmc_abi_record_t *abi = model->abi;
  llmc_engine_options_t opt = options ? *options : (llmc_engine_options_t){0};
  if (opt.token_capacity <= 0) opt.token_capacity = LLMC_ENGINE_DEFAULT_TOKEN_CAPACITY;
  if (opt.kv_block_size <= 0) opt.kv_block_size = LLMC_KV_DEFAULT_BLOCK_SIZE;
  if (opt.kv_dtype == 0) opt.kv_dtype = LLMC_ENGINE_DEFAULT_KV_DTYPE;
  if (opt.kv_blocks <= 0)
    opt.kv_blocks =
        (int32_t)(((int64_t)abi->max_context + opt.kv_block_size - 1) / opt.kv_block_size);
  if (opt.token_capacity > (1 << 24))
    return LLMC_ERROR(INVALID_ARGUMENT, "token capacity %d is too large", opt.token_capacity);

  llmc_engine_t *engine = calloc(1, sizeof *engine);
  if (!engine) return LLMC_ERROR(OUT_OF_MEMORY, "engine");
  engine->model = model;
  engine->token_capacity = opt.token_capacity;
  llmc_status_t st = llmc_thread_pool_create(opt.n_threads, &engine->pool);
  if (!st) {
    engine->rt = llmc_thread_pool_api(engine->pool);
    st = llmc_kv_cache_create(abi->n_layers, abi->kv_dim, opt.kv_blocks, opt.kv_block_size,
                              opt.kv_dtype, &engine->kv);
  }
  if (!st) {
    uint64_t bytes = abi->scratch_bytes(opt.token_capacity);
    if (bytes <= SIZE_MAX - 64) {
      size_t rounded = bytes ? (size_t)((bytes + 63) & ~(uint64_t)63) : 64;
      engine->scratch = aligned_alloc(64, rounded);
    }
    if (!engine->scratch)
      st = LLMC_ERROR(OUT_OF_MEMORY, "%llu bytes of scratch for %d tokens",
                      (unsigned long long)bytes, opt.token_capacity);
  }
  if (!st) {
    size_t n = (size_t)opt.token_capacity;
    engine->arrays = malloc((6 * n + 1) * sizeof *engine->arrays);
    if (!engine->arrays)
      st = LLMC_ERROR(OUT_OF_MEMORY, "batch arrays for %d tokens", (int)n);
    else {
      engine->tokens = engine->arrays;
      engine->positions = engine->tokens + n;
      engine->slots = engine->positions + n;
      engine->logit_rows = engine->slots + n;
      engine->seq_len = engine->logit_rows + n;
      engine->seq_start = engine->seq_len + n; /* [n + 1] */
    }
  }
  if (st) {
    llmc_engine_destroy(engine);
    return llmc_status_annotate(st, "creating an engine for %s", model->path);
  }
  *out_engine = engine;
  return LLMC_OK;
}

void llmc_engine_destroy(llmc_engine_t *engine) {
  if (!engine) return;
  llmc_thread_pool_destroy(engine->pool);
  llmc_kv_cache_destroy(engine->kv);
  free(engine->scratch);
  free(engine->arrays);
  free(engine->block_table);
  free(engine);
}

llmc_kv_cache_t *llmc_engine_kv_cache(llmc_engine_t *engine) { return engine->kv; }

int32_t llmc_engine_token_capacity(const llmc_engine_t *engine) { return engine->token_capacity; }

int32_t llmc_engine_n_threads(const llmc_engine_t *engine) { return llmc_thread_pool_size(engine->pool); }

/* Everything about the chunks that can be checked without touching them. */
static llmc_status_t check_chunks(const llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                                  int32_t n_chunks, const float *logits) {
  const llmc_abi_record_t *abi = engine->model->abi;
  if (n_chunks < 1 || !chunks) return LLMC_ERROR(INVALID_ARGUMENT, "a step needs a chunk");
  int64_t total = 0;
  for (int32_t c = 0; c < n_chunks; c++) {
    const llmc_engine_chunk_t *ch = &chunks[c];
    if (!ch->seq || !ch->tokens || ch->n_tokens < 1)
      return LLMC_ERROR(INVALID_ARGUMENT, "chunk %d: no sequence or no tokens", c);
    if ((unsigned)ch->logits >= LLMC_ENGINE_LOGITS_COUNT)
      return LLMC_ERROR(INVALID_ARGUMENT, "chunk %d: bad logits mode %d", c, (int)ch->logits);
    total += ch->n_tokens;
    if (total > engine->token_capacity)
      return LLMC_ERROR(INVALID_ARGUMENT, "a step of %lld+ tokens exceeds the token capacity %d",
                        (long long)total, engine->token_capacity);
    if ((int64_t)ch->seq->n_tokens + ch->n_tokens > abi->max_context)
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "chunk %d: %d tokens after %d would exceed the model's max_context %d", c,
                        ch->n_tokens, ch->seq->n_tokens, abi->max_context);
    for (int32_t j = 0; j < ch->n_tokens; j++)
      if (ch->tokens[j] < 0 || ch->tokens[j] >= abi->vocab_size)
        return LLMC_ERROR(INVALID_ARGUMENT, "chunk %d: token %d is id %d, outside [0, %d)", c, j,
                          ch->tokens[j], abi->vocab_size);
    for (int32_t d = 0; d < c; d++)
      if (chunks[d].seq == ch->seq)
        return LLMC_ERROR(INVALID_ARGUMENT, "chunks %d and %d continue the same sequence", d, c);
  }
  if (!logits && llmc_engine_logit_rows(chunks, n_chunks) > 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "logits wanted but no buffer given");
  return LLMC_OK;
}

/* Makes room in block_table for [n_chunks, max_blocks]. */
static llmc_status_t grow_block_table(llmc_engine_t *engine, size_t entries) {
  if (entries <= engine->block_table_cap) return LLMC_OK;
  int32_t *table = realloc(engine->block_table, entries * sizeof *table);
  if (!table) return LLMC_ERROR(OUT_OF_MEMORY, "block table of %zu entries", entries);
  engine->block_table = table;
  engine->block_table_cap = entries;
  return LLMC_OK;
}

/* Reserves KV blocks for every chunk, or for none. */
static llmc_status_t reserve_chunks(llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                                    int32_t n_chunks) {
  for (int32_t c = 0; c < n_chunks; c++) {
    llmc_status_t st = llmc_kv_seq_reserve(engine->kv, chunks[c].seq, chunks[c].n_tokens);
    if (st) {
      for (int32_t d = 0; d < c; d++) llmc_kv_seq_trim(engine->kv, chunks[d].seq);
      return llmc_status_annotate(st, "chunk %d", c);
    }
  }
  return LLMC_OK;
}

llmc_status_t llmc_engine_step_build(llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                                     int32_t n_chunks, float *logits, llmc_step_t *out_step) {
  llmc_status_t st = check_chunks(engine, chunks, n_chunks, logits);
  if (st) return st;
  llmc_kv_cache_t *kv = engine->kv;
  int32_t max_blocks = 1;
  for (int32_t c = 0; c < n_chunks; c++) {
    int32_t need = blocks_for(kv, (int64_t)chunks[c].seq->n_tokens + chunks[c].n_tokens);
    if (need > max_blocks) max_blocks = need;
  }
  if ((st = grow_block_table(engine, (size_t)n_chunks * (size_t)max_blocks))) return st;
  if ((st = reserve_chunks(engine, chunks, n_chunks))) return st;

  int32_t row = 0, n_logits = 0;
  for (int32_t c = 0; c < n_chunks; c++) {
    const llmc_engine_chunk_t *ch = &chunks[c];
    const llmc_kv_seq_t *seq = ch->seq;
    engine->seq_start[c] = row;
    for (int32_t j = 0; j < ch->n_tokens; j++, row++) {
      int32_t pos = seq->n_tokens + j;
      engine->tokens[row] = ch->tokens[j];
      engine->positions[row] = pos;
      engine->slots[row] = llmc_kv_seq_slot(kv, seq, pos);
      if (ch->logits == LLMC_ENGINE_LOGITS_ALL) engine->logit_rows[n_logits++] = row;
    }
    if (ch->logits == LLMC_ENGINE_LOGITS_LAST) engine->logit_rows[n_logits++] = row - 1;
    engine->seq_len[c] = seq->n_tokens + ch->n_tokens;
    int32_t *table_row = engine->block_table + (size_t)c * (size_t)max_blocks;
    int32_t used = blocks_for(kv, engine->seq_len[c]);
    memcpy(table_row, seq->blocks, (size_t)used * sizeof *table_row);
    for (int32_t b = used; b < max_blocks; b++) table_row[b] = -1; /* no block */
  }
  engine->seq_start[n_chunks] = row;

  *out_step = (llmc_step_t){
      .batch =
          {
              .n_tokens = row,
              .n_seqs = n_chunks,
              .tokens = engine->tokens,
              .positions = engine->positions,
              .slots = engine->slots,
              .seq_start = engine->seq_start,
              .seq_len = engine->seq_len,
              .block_table = engine->block_table,
              .max_blocks = max_blocks,
              .n_logits = n_logits,
              .logit_rows = engine->logit_rows,
              .logits = logits,
          },
      .kv = llmc_kv_cache_view(kv),
      .weights = engine->model->weights,
      .scratch = engine->scratch,
      .token_capacity = engine->token_capacity,
      .rt = &engine->rt,
  };
  return LLMC_OK;
}

llmc_status_t llmc_engine_step(llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                               int32_t n_chunks, float *logits) {
  llmc_step_t step;
  llmc_status_t st = llmc_engine_step_build(engine, chunks, n_chunks, logits, &step);
  if (st) return st;
  engine->model->abi->step(&step);
  for (int32_t c = 0; c < n_chunks; c++) chunks[c].seq->n_tokens += chunks[c].n_tokens;
  return LLMC_OK;
}

llmc_status_t llmc_engine_feed(llmc_engine_t *engine, llmc_kv_seq_t *seq, const int32_t *tokens,
                               int32_t n_tokens, llmc_engine_logits_t which, float *logits) {
  if (n_tokens < 1) return LLMC_ERROR(INVALID_ARGUMENT, "nothing to feed");
  size_t vocab = (size_t)engine->model->abi->vocab_size;
  for (int32_t done = 0; done < n_tokens;) {
    int32_t n = n_tokens - done;
    if (n > engine->token_capacity) n = engine->token_capacity;
    llmc_engine_chunk_t chunk = {.seq = seq, .tokens = tokens + done, .n_tokens = n};
    float *out = NULL;
    if (which == LLMC_ENGINE_LOGITS_ALL) {
      chunk.logits = LLMC_ENGINE_LOGITS_ALL;
      out = logits ? logits + (size_t)done * vocab : NULL;
    } else if (which == LLMC_ENGINE_LOGITS_LAST && done + n == n_tokens) {
      chunk.logits = LLMC_ENGINE_LOGITS_LAST;
      out = logits;
    }
    LLMC_RETURN_IF_ERROR(llmc_engine_step(engine, &chunk, 1, out), "tokens %d..%d", done,
                         done + n - 1);
    done += n;
  }
  return LLMC_OK;
}
