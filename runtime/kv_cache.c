/* kv_cache.c — the paged KV cache: a fixed pool of blocks of block_size
 * tokens, handed to sequences one block at a time and shared between
 * sequences whose prompts begin with the same full blocks.
 *
 * The pool is one anonymous mapping laid out exactly as abi.h's
 * llmc_kv_cache_view_t says ([n_layers, 2, n_blocks, block_size] slots of
 * the cache's element type), so a step addresses any token's K or V from
 * its slot number alone. Pages of the mapping are only backed once
 * written, so a pool sized for the worst case costs what is used. Every
 * block has a reference count; a sequence is a growable table of block
 * indices, and reserving room for more tokens is all or nothing, so
 * running out of blocks is an error the scheduler can act on (wait,
 * pre-empt), never a crash or a half-grown table.
 *
 * Free blocks are of two kinds. Plain ones (never registered, or
 * unregistered) sit on a stack. Cached ones still carry a registration
 * (prefix caching, runtime.h) and sit on a doubly linked list in the
 * order they were freed, so that attach can take one out of the middle in
 * O(1) and allocation evicts the least recently freed. Allocation prefers
 * plain blocks: a cached block is a prompt prefix someone may ask for
 * again. Sequences release their blocks last first, so a prompt's tail
 * is evicted before its head, which is what the most requests share.
 *
 * Registrations live in a hash table chained through per-block arrays
 * (buckets >= blocks, so chains are short), keyed by the chain hash. A
 * lookup walks one chain and compares, for each block with the right
 * key, its parent registration and its tokens: the hash only finds
 * candidates, so a collision can never hand a sequence another prompt's
 * K/V. Parents are named by registration id, not block number: ids are
 * never reused, so a block whose parent has been evicted (and perhaps
 * refilled with other tokens) matches nothing. */
#include <assert.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "llmc/runtime.h"

/* Free lists and registrations; every array is [n_blocks] unless it says. */
struct llmc_kv_registry {
  int32_t *plain;        /* stack of free blocks without a registration */
  int32_t n_plain;       /* its height */
  int32_t *lru_prev;     /* the cached free blocks, least recently freed first; */
  int32_t *lru_next;     /* -1 ends the list both ways */
  int32_t lru_head, lru_tail;
  uint64_t *id;          /* registration of each block; 0 = none */
  uint64_t *key;         /* chain hash of a registered block */
  uint64_t *parent;      /* registration of the block before it; 0 for a first block */
  int32_t *tokens;       /* [n_blocks, block_size] a registered block's tokens */
  int32_t *chain;        /* next block in the same bucket, -1 at the end */
  int32_t *buckets;      /* [n_buckets] first block of each bucket, -1 if empty */
  uint64_t n_buckets;    /* a power of two >= n_blocks */
  uint64_t last_id;      /* the last registration id handed out */
};

/* ---- element types -------------------------------------------------------- */

static const char *const dtype_names[LLMC_KV_DTYPE_END] = {
    [LLMC_KV_F32] = "f32", [LLMC_KV_F16] = "f16", [LLMC_KV_Q8_0] = "q8_0"};

const char *llmc_kv_dtype_name(llmc_kv_dtype_t dtype) {
  return dtype > 0 && dtype < LLMC_KV_DTYPE_END ? dtype_names[dtype] : NULL;
}

llmc_status_t llmc_kv_dtype_parse(const char *text, llmc_kv_dtype_t *out) {
  for (int32_t t = 1; t < LLMC_KV_DTYPE_END; t++)
    if (strcmp(text, dtype_names[t]) == 0) {
      *out = (llmc_kv_dtype_t)t;
      return LLMC_OK;
    }
  return LLMC_ERROR(INVALID_ARGUMENT, "unknown KV cache type \"%s\" (expected f16, f32 or q8_0)",
                    text);
}

uint64_t llmc_kv_cache_block_bytes(int32_t n_layers, int32_t kv_dim, int32_t block_size,
                                   llmc_kv_dtype_t dtype) {
  if (block_size <= 0) block_size = LLMC_KV_DEFAULT_BLOCK_SIZE;
  if (n_layers < 0 || kv_dim < 0) return 0;
  return (uint64_t)n_layers * 2 * (uint64_t)block_size *
         (uint64_t)llmc_kv_slot_bytes(dtype, kv_dim);
}

/* ---- creation ------------------------------------------------------------- */

/* splitmix64's finaliser: every input bit reaches every output bit. */
static uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ull;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

/* The default llmc_kv_block_hash_fn: the parent's key, then each token,
 * folded through mix64. */
static uint64_t chain_hash(uint64_t parent_key, const int32_t *tokens, int32_t n) {
  uint64_t h = mix64(parent_key ^ 0x9e3779b97f4a7c15ull);
  for (int32_t i = 0; i < n; i++) h = mix64(h ^ (uint32_t)tokens[i]);
  return h;
}

static void registry_free(llmc_kv_registry_t *r) {
  if (!r) return;
  free(r->plain);
  free(r->lru_prev);
  free(r->lru_next);
  free(r->id);
  free(r->key);
  free(r->parent);
  free(r->tokens);
  free(r->chain);
  free(r->buckets);
  free(r);
}

/* Every block on the plain stack (low numbers handed out first), nothing
 * registered. NULL when memory runs out. */
static llmc_kv_registry_t *registry_create(int32_t n_blocks, int32_t block_size) {
  llmc_kv_registry_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  size_t n = (size_t)n_blocks;
  r->n_buckets = 1;
  while (r->n_buckets < n) r->n_buckets *= 2;
  r->plain = malloc(n * sizeof *r->plain);
  r->lru_prev = malloc(n * sizeof *r->lru_prev);
  r->lru_next = malloc(n * sizeof *r->lru_next);
  r->id = calloc(n, sizeof *r->id);
  r->key = calloc(n, sizeof *r->key);
  r->parent = calloc(n, sizeof *r->parent);
  r->tokens = malloc(n * (size_t)block_size * sizeof *r->tokens);
  r->chain = malloc(n * sizeof *r->chain);
  r->buckets = malloc(r->n_buckets * sizeof *r->buckets);
  if (!r->plain || !r->lru_prev || !r->lru_next || !r->id || !r->key || !r->parent ||
      !r->tokens || !r->chain || !r->buckets) {
    registry_free(r);
    return NULL;
  }
  /* Stack top is the end: hand out low block numbers first. */
  for (int32_t i = 0; i < n_blocks; i++) r->plain[i] = n_blocks - 1 - i;
  r->n_plain = n_blocks;
  r->lru_head = r->lru_tail = -1;
  for (uint64_t b = 0; b < r->n_buckets; b++) r->buckets[b] = -1;
  return r;
}

llmc_status_t llmc_kv_cache_create(int32_t n_layers, int32_t kv_dim, int32_t n_blocks,
                                   int32_t block_size, llmc_kv_dtype_t dtype,
                                   llmc_kv_cache_t **out_cache) {
  *out_cache = NULL;
  if (block_size <= 0) block_size = LLMC_KV_DEFAULT_BLOCK_SIZE;
  if (n_layers < 0 || kv_dim < 0 || n_blocks <= 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "KV cache of %d blocks for %d layers of dim %d", n_blocks,
                      n_layers, kv_dim);
  if (!llmc_kv_dtype_name(dtype))
    return LLMC_ERROR(INVALID_ARGUMENT, "KV cache of unknown element type %d", (int)dtype);
  if (dtype == LLMC_KV_Q8_0 && kv_dim % 32 != 0)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "a q8_0 KV cache needs kv_dim to be a multiple of 32; this model's is %d "
                      "(use f16 or f32)",
                      kv_dim);
  /* Slots (block * block_size + offset) are int32 in the batch. */
  if ((int64_t)n_blocks * block_size > INT32_MAX)
    return LLMC_ERROR(INVALID_ARGUMENT, "KV cache of %d blocks of %d tokens: too many slots",
                      n_blocks, block_size);
  uint64_t block_bytes = llmc_kv_cache_block_bytes(n_layers, kv_dim, block_size, dtype);
  if (block_bytes > 0 && (uint64_t)n_blocks > SIZE_MAX / block_bytes)
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache of %d blocks of %llu bytes", n_blocks,
                      (unsigned long long)block_bytes);

  llmc_kv_cache_t *cache = calloc(1, sizeof *cache);
  if (!cache) return LLMC_ERROR(OUT_OF_MEMORY, "KV cache");
  cache->n_layers = n_layers;
  cache->kv_dim = kv_dim;
  cache->n_blocks = n_blocks;
  cache->block_size = block_size;
  cache->dtype = dtype;
  cache->n_free = n_blocks;
  cache->prefix_caching = true;
  cache->block_hash = chain_hash;
  cache->ref_counts = calloc((size_t)n_blocks, sizeof *cache->ref_counts);
  cache->registry = registry_create(n_blocks, block_size);
  cache->data_bytes = (size_t)n_blocks * (size_t)block_bytes;
  if (cache->data_bytes > 0) {
    void *p =
        mmap(NULL, cache->data_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    cache->data = p == MAP_FAILED ? NULL : p;
  }
  if (!cache->ref_counts || !cache->registry || (cache->data_bytes > 0 && !cache->data)) {
    size_t bytes = cache->data_bytes;
    llmc_kv_cache_destroy(cache);
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache of %d blocks (%zu bytes)", n_blocks, bytes);
  }
  *out_cache = cache;
  return LLMC_OK;
}

void llmc_kv_cache_destroy(llmc_kv_cache_t *cache) {
  if (!cache) return;
  if (cache->data) munmap(cache->data, cache->data_bytes);
  free(cache->ref_counts);
  registry_free(cache->registry);
  free(cache);
}

llmc_kv_cache_view_t llmc_kv_cache_view(const llmc_kv_cache_t *cache) {
  return (llmc_kv_cache_view_t){.data = cache->data,
                                .n_blocks = cache->n_blocks,
                                .block_size = cache->block_size,
                                .dtype = cache->dtype};
}

/* ---- free lists and registrations ------------------------------------------ */

static void lru_append(llmc_kv_registry_t *r, int32_t block) {
  r->lru_prev[block] = r->lru_tail;
  r->lru_next[block] = -1;
  if (r->lru_tail >= 0)
    r->lru_next[r->lru_tail] = block;
  else
    r->lru_head = block;
  r->lru_tail = block;
}

static void lru_remove(llmc_kv_registry_t *r, int32_t block) {
  int32_t prev = r->lru_prev[block], next = r->lru_next[block];
  if (prev >= 0)
    r->lru_next[prev] = next;
  else
    r->lru_head = next;
  if (next >= 0)
    r->lru_prev[next] = prev;
  else
    r->lru_tail = prev;
}

/* The registered block with this key, parent registration and tokens
 * [block_size], or -1. */
static int32_t registry_find(const llmc_kv_cache_t *cache, uint64_t key, uint64_t parent,
                             const int32_t *tokens) {
  const llmc_kv_registry_t *r = cache->registry;
  size_t bytes = (size_t)cache->block_size * sizeof *tokens;
  for (int32_t b = r->buckets[key & (r->n_buckets - 1)]; b >= 0; b = r->chain[b])
    if (r->key[b] == key && r->parent[b] == parent &&
        memcmp(r->tokens + (size_t)b * (size_t)cache->block_size, tokens, bytes) == 0)
      return b;
  return -1;
}

static void registry_insert(llmc_kv_cache_t *cache, int32_t block, uint64_t key, uint64_t parent,
                            const int32_t *tokens) {
  llmc_kv_registry_t *r = cache->registry;
  assert(r->id[block] == 0);
  r->id[block] = ++r->last_id;
  r->key[block] = key;
  r->parent[block] = parent;
  memcpy(r->tokens + (size_t)block * (size_t)cache->block_size, tokens,
         (size_t)cache->block_size * sizeof *tokens);
  int32_t *head = &r->buckets[key & (r->n_buckets - 1)];
  r->chain[block] = *head;
  *head = block;
}

/* Drops block's registration (it has one). */
static void registry_remove(llmc_kv_cache_t *cache, int32_t block) {
  llmc_kv_registry_t *r = cache->registry;
  int32_t *link = &r->buckets[r->key[block] & (r->n_buckets - 1)];
  while (*link != block) link = &r->chain[*link];
  *link = r->chain[block];
  r->id[block] = 0;
}

/* Takes a free block (there must be one) with one reference: a plain one,
 * else the least recently freed cached one, unregistered. */
static int32_t take_free_block(llmc_kv_cache_t *cache) {
  llmc_kv_registry_t *r = cache->registry;
  assert(cache->n_free > 0);
  int32_t block;
  if (r->n_plain > 0) {
    block = r->plain[--r->n_plain];
  } else {
    block = r->lru_head;
    lru_remove(r, block);
    registry_remove(cache, block);
    cache->n_cached--;
  }
  assert(cache->ref_counts[block] == 0);
  cache->ref_counts[block] = 1;
  cache->n_free--;
  cache->n_used++;
  return block;
}

llmc_status_t llmc_kv_cache_block_alloc(llmc_kv_cache_t *cache, int32_t *out_block) {
  if (cache->n_free == 0)
    return LLMC_ERROR(OUT_OF_MEMORY, "KV cache exhausted: all %d blocks of %d tokens in use",
                      cache->n_blocks, cache->block_size);
  *out_block = take_free_block(cache);
  return LLMC_OK;
}

void llmc_kv_cache_block_retain(llmc_kv_cache_t *cache, int32_t block) {
  assert(block >= 0 && block < cache->n_blocks && cache->ref_counts[block] > 0);
  cache->ref_counts[block]++;
}

void llmc_kv_cache_block_release(llmc_kv_cache_t *cache, int32_t block) {
  llmc_kv_registry_t *r = cache->registry;
  assert(block >= 0 && block < cache->n_blocks && cache->ref_counts[block] > 0);
  if (--cache->ref_counts[block] > 0) return;
  cache->n_used--;
  cache->n_free++;
  if (r->id[block]) {
    lru_append(r, block);
    cache->n_cached++;
  } else {
    r->plain[r->n_plain++] = block;
  }
}

void llmc_kv_cache_set_prefix_caching(llmc_kv_cache_t *cache, bool on) {
  llmc_kv_registry_t *r = cache->registry;
  cache->prefix_caching = on;
  if (on) return;
  for (int32_t b = 0; b < cache->n_blocks; b++) {
    if (r->id[b] && cache->ref_counts[b] == 0) r->plain[r->n_plain++] = b;
    r->id[b] = 0;
  }
  for (uint64_t i = 0; i < r->n_buckets; i++) r->buckets[i] = -1;
  r->lru_head = r->lru_tail = -1;
  cache->n_cached = 0;
}

/* ---- sequences --------------------------------------------------------------- */

/* Blocks needed to hold n_tokens tokens. */
static int32_t blocks_for(const llmc_kv_cache_t *cache, int64_t n_tokens) {
  return (int32_t)((n_tokens + cache->block_size - 1) / cache->block_size);
}

/* Makes seq's table hold at least need entries. */
static llmc_status_t grow_table(llmc_kv_seq_t *seq, int32_t need) {
  if (need <= seq->capacity) return LLMC_OK;
  int32_t capacity = seq->capacity ? seq->capacity : 4;
  while (capacity < need) capacity = capacity > INT32_MAX / 2 ? need : capacity * 2;
  int32_t *blocks = realloc(seq->blocks, (size_t)capacity * sizeof *blocks);
  if (!blocks) return LLMC_ERROR(OUT_OF_MEMORY, "block table of %d blocks", capacity);
  seq->blocks = blocks;
  seq->capacity = capacity;
  return LLMC_OK;
}

/* Releases seq's blocks from index keep on, the last first. */
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
  LLMC_PROPAGATE(grow_table(seq, need));
  while (seq->n_blocks < need) seq->blocks[seq->n_blocks++] = take_free_block(cache);
  return LLMC_OK;
}

void llmc_kv_seq_trim(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq) {
  /* Published blocks are full, so below n_tokens: never released here. */
  assert(seq->n_published <= seq->n_tokens / cache->block_size);
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

int32_t llmc_kv_seq_attach_prefix(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq,
                                  const int32_t *tokens, int32_t n_tokens) {
  assert(seq->n_tokens == 0 && seq->n_blocks == 0);
  if (!cache->prefix_caching) return 0;
  llmc_kv_registry_t *r = cache->registry;
  int32_t bs = cache->block_size, full = n_tokens / bs;
  uint64_t key = 0, parent = 0; /* of the block before the next one: none yet */
  while (seq->n_blocks < full) {
    const int32_t *block_tokens = tokens + (size_t)seq->n_blocks * (size_t)bs;
    uint64_t next_key = cache->block_hash(key, block_tokens, bs);
    int32_t block = registry_find(cache, next_key, parent, block_tokens);
    if (block < 0) break;
    llmc_status_t st = grow_table(seq, seq->n_blocks + 1);
    if (st) { /* share what is in the table already */
      llmc_status_free(st);
      break;
    }
    if (cache->ref_counts[block]++ == 0) { /* cached free: in use again */
      lru_remove(r, block);
      cache->n_cached--;
      cache->n_free--;
      cache->n_used++;
    }
    seq->blocks[seq->n_blocks++] = block;
    key = next_key;
    parent = r->id[block];
  }
  seq->n_tokens = seq->n_blocks * bs;
  seq->n_published = seq->n_blocks;
  seq->publish_key = key;
  seq->publish_parent = parent;
  return seq->n_tokens;
}

void llmc_kv_seq_publish(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq, const int32_t *tokens) {
  if (!cache->prefix_caching) return;
  llmc_kv_registry_t *r = cache->registry;
  int32_t bs = cache->block_size, full = seq->n_tokens / bs;
  for (; seq->n_published < full; seq->n_published++) {
    const int32_t *block_tokens = tokens + (size_t)seq->n_published * (size_t)bs;
    uint64_t key = cache->block_hash(seq->publish_key, block_tokens, bs);
    int32_t block = registry_find(cache, key, seq->publish_parent, block_tokens);
    if (block < 0) { /* the first of its kind */
      block = seq->blocks[seq->n_published];
      registry_insert(cache, block, key, seq->publish_parent, block_tokens);
    }
    seq->publish_key = key;
    seq->publish_parent = r->id[block];
  }
}
