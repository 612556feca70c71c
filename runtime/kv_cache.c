/* kv_cache.c — the paged KV cache: a fixed pool of blocks of block_size
 * tokens, handed to sequences one block at a time.
 *
 * The pool is one anonymous mapping laid out exactly as abi.h's
 * llmc_kv_cache_view_t says ([n_layers, 2, n_blocks, block_size, kv_dim]
 * floats), so a step addresses any token's K or V from its slot number
 * alone. Pages of the mapping are only backed once written, so a pool
 * sized for the worst case costs what is used. Free blocks sit on a
 * stack (O(1) alloc and release); every block has a reference count so
 * that sequences with a common prefix can share blocks later. A sequence
 * is a growable table of block indices; reserving room for more tokens is
 * all or nothing, so running out of blocks is an error the scheduler can
 * act on (wait, pre-empt), never a crash or a half-grown table. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "llmc/runtime.h"

llmc_status_t llmc_kv_cache_create(int32_t n_layers, int32_t kv_dim, int32_t n_blocks,
                                   int32_t block_size, llmc_kv_cache_t **out_cache) {
  *out_cache = NULL;
  if (block_size <= 0) block_size = LLMC_KV_DEFAULT_BLOCK_SIZE;
  if (n_layers < 0 || kv_dim < 0 || n_blocks <= 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "KV cache of %d blocks for %d layers of dim %d", n_blocks,
                      n_layers, kv_dim);
  /* Slots (block * block_size + offset) are int32 in the batch. */
  if ((int64_t)n_blocks * block_size > INT32_MAX)
    return LLMC_ERROR(INVALID_ARGUMENT, "KV cache of %d blocks of %d tokens: too many slots",
                      n_blocks, block_size);
  uint64_t floats =
      (uint64_t)n_layers * 2 * (uint64_t)n_blocks * (uint64_t)block_size * (uint64_t)kv_dim;
  if (floats > SIZE_MAX / sizeof(float))
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache of %llu floats", (unsigned long long)floats);

  llmc_kv_cache_t *cache = calloc(1, sizeof *cache);
  if (!cache) return LLMC_ERROR(OUT_OF_MEMORY, "KV cache");
  cache->n_layers = n_layers;
  cache->kv_dim = kv_dim;
  cache->n_blocks = n_blocks;
  cache->block_size = block_size;
  cache->ref_counts = calloc((size_t)n_blocks, sizeof *cache->ref_counts);
  cache->free_blocks = malloc((size_t)n_blocks * sizeof *cache->free_blocks);
  cache->data_bytes = (size_t)floats * sizeof(float);
  if (cache->data_bytes > 0) {
    void *p =
        mmap(NULL, cache->data_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cache->data = p == MAP_FAILED ? NULL : p;
  }
  if (!cache->ref_counts || !cache->free_blocks || (cache->data_bytes > 0 && !cache->data)) {
    size_t bytes = cache->data_bytes;
    llmc_kv_cache_destroy(cache);
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache of %d blocks (%zu bytes)", n_blocks, bytes);
  }
  /* Stack top is the end: hand out low block numbers first. */
  for (int32_t i = 0; i < n_blocks; i++) cache->free_blocks[i] = n_blocks - 1 - i;
  cache->n_free = n_blocks;
  *out_cache = cache;
  return LLMC_OK;
}

void llmc_kv_cache_destroy(llmc_kv_cache_t *cache) {
  if (!cache) return;
  if (cache->data) munmap(cache->data, cache->data_bytes);
  free(cache->ref_counts);
  free(cache->free_blocks);
  free(cache);
}

llmc_kv_cache_view_t llmc_kv_cache_view(const llmc_kv_cache_t *cache) {
  return (llmc_kv_cache_view_t){
      .data = cache->data, .n_blocks = cache->n_blocks, .block_size = cache->block_size};
}

/* Takes the top free block (there must be one) with one reference. */
static int32_t pop_free_block(llmc_kv_cache_t *cache) {
  assert(cache->n_free > 0);
  int32_t block = cache->free_blocks[--cache->n_free];
  assert(cache->ref_counts[block] == 0);
  cache->ref_counts[block] = 1;
  return block;
}

llmc_status_t llmc_kv_cache_block_alloc(llmc_kv_cache_t *cache, int32_t *out_block) {
  if (cache->n_free == 0)
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache exhausted: all %d blocks of %d tokens in use",
                      cache->n_blocks, cache->block_size);
  *out_block = pop_free_block(cache);
  return LLMC_OK;
}

void llmc_kv_cache_block_retain(llmc_kv_cache_t *cache, int32_t block) {
  assert(block >= 0 && block < cache->n_blocks && cache->ref_counts[block] > 0);
  cache->ref_counts[block]++;
}

void llmc_kv_cache_block_release(llmc_kv_cache_t *cache, int32_t block) {
  assert(block >= 0 && block < cache->n_blocks && cache->ref_counts[block] > 0);
  if (--cache->ref_counts[block] == 0) cache->free_blocks[cache->n_free++] = block;
}

/* Blocks needed to hold n_tokens tokens. */
static int32_t blocks_for(const llmc_kv_cache_t *cache, int64_t n_tokens) {
  return (int32_t)((n_tokens + cache->block_size - 1) / cache->block_size);
}

/* Releases seq's blocks from index keep on. */
static void release_from(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq, int32_t keep) {
  while (seq->n_blocks > keep) llmc_kv_cache_block_release(cache, seq->blocks[--seq->n_blocks]);
}

llmc_status_t llmc_kv_seq_reserve(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq,
                                  int32_t n_new_tokens) {
  int64_t total = (int64_t)seq->n_tokens + (n_new_tokens > 0 ? n_new_tokens : 0);
  if (total > (int64_t)cache->n_blocks * cache->block_size)
    return LLMC_ERROR(OUT_OF_MEMORY, "%lld tokens do not fit a KV cache of %d blocks of %d tokens",
                      (long long)total, cache->n_blocks, cache->block_size);
  int32_t need = blocks_for(cache, total);
  if (need <= seq->n_blocks) return LLMC_OK;
  if (need - seq->n_blocks > cache->n_free)
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache exhausted: %d more blocks wanted, %d of %d free",
                      need - seq->n_blocks, cache->n_free, cache->n_blocks);
  if (need > seq->capacity) {
    int32_t capacity = seq->capacity ? seq->capacity : 4;
    while (capacity < need) capacity = capacity > INT32_MAX / 2 ? need : capacity * 2;
    int32_t *blocks = realloc(seq->blocks, (size_t)capacity * sizeof *blocks);
    if (!blocks) return LLMC_ERROR(OUT_OF_MEMORY, "block table of %d blocks", capacity);
    seq->blocks = blocks;
    seq->capacity = capacity;
  }
  while (seq->n_blocks < need) seq->blocks[seq->n_blocks++] = pop_free_block(cache);
  return LLMC_OK;
}

void llmc_kv_seq_trim(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq) {
  release_from(cache, seq, blocks_for(cache, seq->n_tokens));
}

void llmc_kv_seq_deinit(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq) {
  release_from(cache, seq, 0);
  free(seq->blocks);
  memset(seq, 0, sizeof *seq);
}

int32_t llmc_kv_seq_slot(const llmc_kv_cache_t *cache, const llmc_kv_seq_t *seq, int32_t pos) {
  assert(pos >= 0 && pos / cache->block_size < seq->n_blocks);
  return seq->blocks[pos / cache->block_size] * cache->block_size + pos % cache->block_size;
}
