/* test_kv_cache.c — the paged KV cache's element types and prefix caching
 * (runtime/kv_cache.c), without a model: sequences are advanced by hand as
 * the engine would (reserve, then n_tokens += n), so what is checked is
 * the bookkeeping: which blocks attach shares, reference counts, free and
 * cached counts, the order of eviction, and that a hash collision never
 * shares a block. The last test runs thousands of random operations
 * against a small reference implementation (linear scans, no hashing) and
 * compares every count and every block after each one.
 *
 * The engine with a real step over shared blocks is in test_runtime.c; the
 * kernels' f16 and q8_0 encodings in test_kernels.c. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "llmc/runtime.h"

/* A cache of n_blocks blocks of block_size tokens and no layers: the
 * bookkeeping without the memory. */
static llmc_kv_cache_t *make_cache(int32_t n_blocks, int32_t block_size) {
  llmc_kv_cache_t *cache = NULL;
  CHECK_OK(llmc_kv_cache_create(0, 32, n_blocks, block_size, LLMC_KV_F16, &cache));
  return cache;
}

/* Gives seq n more tokens, tokens[seq->n_tokens ..] already in the caller's
 * array, as a step would, and publishes it. */
static void advance(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq, const int32_t *tokens, int32_t n) {
  CHECK_OK(llmc_kv_seq_reserve(cache, seq, n));
  seq->n_tokens += n;
  llmc_kv_seq_publish(cache, seq, tokens);
}

/* used + free == blocks, and the counts match what the caller expects. */
static void check_counts(const llmc_kv_cache_t *cache, int32_t used, int32_t cached, int line) {
  if (cache->n_used != used || cache->n_cached != cached ||
      cache->n_used + cache->n_free != cache->n_blocks) {
    fprintf(stderr,
            "test_kv_cache.c:%d: used %d free %d cached %d of %d blocks, expected used %d "
            "cached %d\n",
            line, cache->n_used, cache->n_free, cache->n_cached, cache->n_blocks, used, cached);
    check_failures++;
  }
}

/* ---- element types ------------------------------------------------------------ */

static void test_dtypes(void) {
  llmc_kv_dtype_t t = 0;
  CHECK_OK(llmc_kv_dtype_parse("f16", &t));
  CHECK_EQ_INT(t, LLMC_KV_F16);
  CHECK_OK(llmc_kv_dtype_parse("q8_0", &t));
  CHECK_EQ_INT(t, LLMC_KV_Q8_0);
  CHECK_OK(llmc_kv_dtype_parse("f32", &t));
  CHECK_EQ_INT(t, LLMC_KV_F32);
  CHECK_ERROR(llmc_kv_dtype_parse("bf16", &t), INVALID_ARGUMENT, "\"bf16\"");
  CHECK_ERROR(llmc_kv_dtype_parse("F16", &t), INVALID_ARGUMENT, "f16, f32 or q8_0");
  CHECK_EQ_STR(llmc_kv_dtype_name(LLMC_KV_Q8_0), "q8_0");
  CHECK(llmc_kv_dtype_name(0) == NULL && llmc_kv_dtype_name(LLMC_KV_DTYPE_END) == NULL);

  /* 2 layers, kv_dim 64, 16 tokens: K and V of 32 slots per layer. */
  CHECK_EQ_INT(llmc_kv_cache_block_bytes(2, 64, 16, LLMC_KV_F32), 2 * 2 * 16 * 64 * 4);
  CHECK_EQ_INT(llmc_kv_cache_block_bytes(2, 64, 0, LLMC_KV_F16), 2 * 2 * 16 * 64 * 2);
  CHECK_EQ_INT(llmc_kv_cache_block_bytes(2, 64, 16, LLMC_KV_Q8_0), 2 * 2 * 16 * (64 + 4));
  CHECK_EQ_INT(llmc_kv_cache_block_bytes(2, 64, 16, 0), 0);

  const llmc_kv_dtype_t types[] = {LLMC_KV_F32, LLMC_KV_F16, LLMC_KV_Q8_0};
  for (int i = 0; i < 3; i++) {
    llmc_kv_cache_t *cache = NULL;
    CHECK_OK(llmc_kv_cache_create(3, 96, 5, 8, types[i], &cache));
    if (!cache) continue;
    CHECK_EQ_INT(cache->data_bytes, 5 * llmc_kv_cache_block_bytes(3, 96, 8, types[i]));
    llmc_kv_cache_view_t view = llmc_kv_cache_view(cache);
    CHECK_EQ_INT(view.dtype, types[i]);
    cache->data[cache->data_bytes - 1] = 1; /* all of it is mapped */
    llmc_kv_cache_destroy(cache);
  }
  llmc_kv_cache_t *cache = NULL;
  CHECK_ERROR(llmc_kv_cache_create(2, 40, 4, 16, LLMC_KV_Q8_0, &cache), INVALID_ARGUMENT,
              "multiple of 32; this model's is 40");
  CHECK(cache == NULL);
}

/* ---- prefix caching, case by case ---------------------------------------------- */

static void test_attach_publish(void) {
  llmc_kv_cache_t *cache = make_cache(16, 4);
  if (!cache) return;
  int32_t a[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  llmc_kv_seq_t sa = {0};
  advance(cache, &sa, a, 10); /* blocks 0 and 1 full, block 2 half */
  CHECK_EQ_INT(sa.n_published, 2);
  check_counts(cache, 3, 0, __LINE__);

  /* The same prompt shares the two full blocks: 8 tokens, not 9. */
  llmc_kv_seq_t sb = {0};
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sb, a, 9), 8);
  CHECK_EQ_INT(sb.n_tokens, 8);
  CHECK_EQ_INT(sb.n_blocks, 2);
  CHECK(sb.blocks[0] == sa.blocks[0] && sb.blocks[1] == sa.blocks[1]);
  CHECK_EQ_INT(cache->ref_counts[sa.blocks[0]], 2);
  CHECK_EQ_INT(cache->ref_counts[sa.blocks[1]], 2);
  CHECK_EQ_INT(cache->ref_counts[sa.blocks[2]], 1);
  check_counts(cache, 3, 0, __LINE__);
  /* The partial third block is never shared, even for the whole prompt. */
  llmc_kv_seq_t sc = {0};
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, a, 10), 8);
  llmc_kv_seq_deinit(cache, &sc);
  /* Fewer tokens than a block: nothing. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, a, 3), 0);
  CHECK(sc.n_blocks == 0 && sc.n_tokens == 0);
  /* b goes on from its shared blocks with tokens of its own; its third
   * block is its own, and once full, published. */
  int32_t b[12] = {1, 2, 3, 4, 5, 6, 7, 8, 99, 98, 97, 96};
  advance(cache, &sb, b, 4);
  CHECK(sb.blocks[2] != sa.blocks[2]);
  CHECK_EQ_INT(sb.n_published, 3);
  check_counts(cache, 4, 0, __LINE__);

  /* Once a's third block is full and published, all 12 tokens match it. */
  advance(cache, &sa, a, 2);
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, a, 12), 12);
  CHECK(sc.blocks[2] == sa.blocks[2]);
  llmc_kv_seq_deinit(cache, &sc);
  /* b's prompt finds b's own third block. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, b, 12), 12);
  CHECK(sc.blocks[2] == sb.blocks[2]);
  llmc_kv_seq_deinit(cache, &sc);
  /* A diverging second block: only the first is shared. */
  int32_t c[8] = {1, 2, 3, 4, 5, 6, 7, 0};
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, c, 8), 4);
  llmc_kv_seq_deinit(cache, &sc);
  /* A block's tokens at another position are another block: a's second
   * block as a first block matches nothing. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, a + 4, 8), 0);

  /* Everything released: all free, the 4 published blocks cached. */
  llmc_kv_seq_deinit(cache, &sa);
  llmc_kv_seq_deinit(cache, &sb);
  check_counts(cache, 0, 4, __LINE__);
  /* A cached free block attached is in use again. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, b, 12), 12);
  check_counts(cache, 3, 1, __LINE__);
  CHECK_EQ_INT(cache->ref_counts[sc.blocks[0]], 1);
  llmc_kv_seq_deinit(cache, &sc);
  check_counts(cache, 0, 4, __LINE__);

  /* Off: registrations dropped, nothing shared or published. */
  llmc_kv_cache_set_prefix_caching(cache, false);
  check_counts(cache, 0, 0, __LINE__);
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &sc, a, 12), 0);
  advance(cache, &sc, a, 12);
  CHECK_EQ_INT(sc.n_published, 0);
  llmc_kv_seq_deinit(cache, &sc);
  check_counts(cache, 0, 0, __LINE__);
  llmc_kv_cache_set_prefix_caching(cache, true);
  advance(cache, &sc, a, 12);
  llmc_kv_seq_deinit(cache, &sc);
  check_counts(cache, 0, 3, __LINE__);
  llmc_kv_cache_destroy(cache);
}

/* Every block in one hash bucket, every key equal: lookups must tell
 * blocks apart by their tokens and parents alone. */
static uint64_t colliding_hash(uint64_t parent_key, const int32_t *tokens, int32_t n) {
  (void)parent_key, (void)tokens, (void)n;
  return 42;
}

static void test_collisions(void) {
  llmc_kv_cache_t *cache = make_cache(8, 2);
  if (!cache) return;
  cache->block_hash = colliding_hash;
  int32_t a[6] = {1, 2, 3, 4, 5, 6}, b[6] = {1, 2, 9, 9, 5, 6}, c[4] = {3, 4, 5, 6};
  llmc_kv_seq_t sa = {0}, sb = {0}, s = {0};
  advance(cache, &sa, a, 6);
  advance(cache, &sb, b, 6); /* shares nothing (not attached): 1 2 is its own block */
  CHECK_EQ_INT(sb.n_published, 3);
  /* b's first block equals a's: the first registration stays, and b's
   * later blocks hang off a's first block. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &s, b, 6), 6);
  CHECK(s.blocks[0] == sa.blocks[0] && s.blocks[1] == sb.blocks[1] && s.blocks[2] == sb.blocks[2]);
  llmc_kv_seq_deinit(cache, &s);
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &s, a, 6), 6);
  CHECK(s.blocks[1] == sa.blocks[1] && s.blocks[2] == sa.blocks[2]);
  llmc_kv_seq_deinit(cache, &s);
  /* Same key, same parent, other tokens: 1 2 | 3 4 | 7 8 shares two. */
  int32_t d[6] = {1, 2, 3, 4, 7, 8};
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &s, d, 6), 4);
  llmc_kv_seq_deinit(cache, &s);
  /* Same key, same tokens, other parent: a's second block first. */
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &s, c, 4), 0);
  /* 5 6 after 1 2 | 9 9 is b's block, after 1 2 | 3 4 a's. */
  CHECK(sa.blocks[2] != sb.blocks[2]);
  llmc_kv_seq_deinit(cache, &sa);
  llmc_kv_seq_deinit(cache, &sb);
  check_counts(cache, 0, 5, __LINE__); /* b's first block was never registered */
  llmc_kv_cache_destroy(cache);
}

/* Allocation takes never-registered blocks first, then cached ones in the
 * order they were freed; an evicted block's children match nothing. */
static void test_eviction_order(void) {
  llmc_kv_cache_t *cache = make_cache(6, 2);
  if (!cache) return;
  int32_t a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, zeros[12] = {0};
  llmc_kv_seq_t sa = {0}, sb = {0}, s = {0};
  advance(cache, &sa, a, 4);
  advance(cache, &sb, b, 4);
  int32_t a0 = sa.blocks[0], a1 = sa.blocks[1], b0 = sb.blocks[0], b1 = sb.blocks[1];
  llmc_kv_seq_deinit(cache, &sa); /* freed a1, then a0 */
  llmc_kv_seq_deinit(cache, &sb); /* then b1, b0 */
  check_counts(cache, 0, 4, __LINE__);
  /* Two plain blocks first: nothing evicted. */
  CHECK_OK(llmc_kv_seq_reserve(cache, &s, 4));
  CHECK(s.blocks[0] != a0 && s.blocks[0] != a1 && s.blocks[0] != b0 && s.blocks[0] != b1);
  CHECK(s.blocks[1] != a0 && s.blocks[1] != a1 && s.blocks[1] != b0 && s.blocks[1] != b1);
  check_counts(cache, 2, 4, __LINE__);
  /* Then a1, the least recently freed. */
  CHECK_OK(llmc_kv_seq_reserve(cache, &s, 6));
  CHECK_EQ_INT(s.blocks[2], a1);
  check_counts(cache, 3, 3, __LINE__);
  llmc_kv_seq_t t = {0};
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &t, a, 4), 2); /* a0 is left */
  CHECK_EQ_INT(t.blocks[0], a0);
  llmc_kv_seq_deinit(cache, &t); /* a0 is now the most recently freed */
  /* b1, then b0, then a0. */
  CHECK_OK(llmc_kv_seq_reserve(cache, &s, 8));
  CHECK_EQ_INT(s.blocks[3], b1);
  CHECK_OK(llmc_kv_seq_reserve(cache, &s, 10));
  CHECK_EQ_INT(s.blocks[4], b0);
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &t, b, 4), 0);
  CHECK_OK(llmc_kv_seq_reserve(cache, &s, 12));
  CHECK_EQ_INT(s.blocks[5], a0);
  check_counts(cache, 6, 0, __LINE__);
  CHECK_ERROR(llmc_kv_seq_reserve(cache, &t, 1), OUT_OF_MEMORY, "exhausted");
  /* s's six blocks of equal tokens are six registrations (each has another
   * parent); released, every block is free and cached. */
  s.n_tokens = 12;
  llmc_kv_seq_publish(cache, &s, zeros);
  llmc_kv_seq_deinit(cache, &s);
  check_counts(cache, 0, 6, __LINE__);
  CHECK_EQ_INT(llmc_kv_seq_attach_prefix(cache, &t, zeros, 12), 12);
  llmc_kv_seq_deinit(cache, &t);
  for (int32_t i = 0; i < cache->n_blocks; i++) CHECK_EQ_INT(cache->ref_counts[i], 0);
  llmc_kv_cache_destroy(cache);
}

/* ---- random operations against a reference ------------------------------------------ */

enum {
  R_BLOCKS = 12,
  R_BS = 2,
  R_SEQS = 5,
  R_MAX_TOKENS = 16,
  R_STEPS = 20000,
};

/* The reference: every rule of runtime.h spelled out with linear scans. */
typedef struct {
  int ref;             /* holders */
  int64_t id;          /* registration, 0 = none */
  int64_t parent;      /* registration of the block before */
  int32_t tokens[R_BS];
  int64_t freed_at;    /* when its holders went to 0 (orders the cached free blocks) */
} ref_block;

typedef struct {
  ref_block blocks[R_BLOCKS];
  int64_t last_id, clock;
  bool on;
} ref_cache;

typedef struct {
  llmc_kv_seq_t seq;             /* the real one */
  int32_t tokens[R_MAX_TOKENS];  /* seq.n_tokens of them are in the cache */
  int32_t n_published;           /* the reference's own view of seq */
  int64_t parent;                /* registration equal to block n_published - 1 */
  bool active;
} ref_seq;

static uint64_t rng = 0x243f6a8885a308d3ull;
static uint32_t next_rand(uint32_t n) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (uint32_t)(rng % n);
}

/* The registered block with this parent and tokens, or -1. */
static int ref_find(const ref_cache *r, int64_t parent, const int32_t *tokens) {
  for (int b = 0; b < R_BLOCKS; b++)
    if (r->blocks[b].id && r->blocks[b].parent == parent &&
        memcmp(r->blocks[b].tokens, tokens, sizeof r->blocks[b].tokens) == 0)
      return b;
  return -1;
}

/* The real cache took `block` for a new holder: it must have been free in
 * the reference, plain if any block was plain, else the cached block freed
 * longest ago; it loses its registration. */
static void ref_take(ref_cache *r, int block, int line) {
  ref_block *rb = &r->blocks[block];
  int plain = 0, oldest = -1;
  for (int b = 0; b < R_BLOCKS; b++) {
    if (r->blocks[b].ref) continue;
    if (!r->blocks[b].id) plain++;
    else if (oldest < 0 || r->blocks[b].freed_at < r->blocks[oldest].freed_at) oldest = b;
  }
  if (rb->ref != 0 || (plain > 0 && rb->id) || (plain == 0 && block != oldest)) {
    fprintf(stderr,
            "test_kv_cache.c:%d: took block %d (ref %d, %s); %d plain free, oldest cached %d\n",
            line, block, rb->ref, rb->id ? "cached" : "plain", plain, oldest);
    check_failures++;
  }
  rb->ref = 1;
  rb->id = 0;
}

/* Ends s's request in the real cache and in the reference. */
static void release_seq(llmc_kv_cache_t *cache, ref_cache *r, ref_seq *s) {
  for (int32_t i = s->seq.n_blocks - 1; i >= 0; i--) { /* as the cache: the last first */
    ref_block *rb = &r->blocks[s->seq.blocks[i]];
    if (--rb->ref == 0) rb->freed_at = ++r->clock;
  }
  llmc_kv_seq_deinit(cache, &s->seq);
  s->n_published = 0;
  s->parent = 0;
  s->active = false;
}

/* publish, as the reference sees it. */
static void ref_publish(ref_cache *r, ref_seq *s) {
  if (!r->on) return;
  for (; s->n_published < s->seq.n_tokens / R_BS; s->n_published++) {
    const int32_t *t = s->tokens + s->n_published * R_BS;
    int b = ref_find(r, s->parent, t);
    if (b < 0) {
      b = s->seq.blocks[s->n_published];
      r->blocks[b].id = ++r->last_id;
      r->blocks[b].parent = s->parent;
      memcpy(r->blocks[b].tokens, t, sizeof r->blocks[b].tokens);
    }
    s->parent = r->blocks[b].id;
  }
}

/* Compares every count and reference count of cache with r. */
static bool ref_compare(const llmc_kv_cache_t *cache, const ref_cache *r, int step) {
  int used = 0, cached = 0, bad = 0;
  for (int b = 0; b < R_BLOCKS; b++) {
    used += r->blocks[b].ref > 0;
    cached += r->blocks[b].ref == 0 && r->blocks[b].id;
    bad += cache->ref_counts[b] != r->blocks[b].ref;
  }
  if (bad || cache->n_used != used || cache->n_cached != cached ||
      cache->n_free != R_BLOCKS - used) {
    fprintf(stderr, "step %d: used %d/%d cached %d/%d free %d, %d reference counts differ\n", step,
            cache->n_used, used, cache->n_cached, cached, cache->n_free, bad);
    check_failures++;
    return false;
  }
  return true;
}

/* Random sequences over an alphabet of three tokens, so that prompts share
 * prefixes often: attach, grow (prefill and decode, running out of blocks
 * now and then), publish, release, and once in a while prefix caching off
 * and on again. */
static void test_random_operations(void) {
  llmc_kv_cache_t *cache = make_cache(R_BLOCKS, R_BS);
  if (!cache) return;
  ref_cache r = {.on = true};
  ref_seq seqs[R_SEQS];
  memset(seqs, 0, sizeof seqs);
  int64_t attached = 0, allocations = 0;
  for (int step = 0; step < R_STEPS && check_failures < 5; step++) {
    ref_seq *s = &seqs[next_rand(R_SEQS)];
    uint32_t op = next_rand(100);
    if (op < 2) { /* prefix caching off, and on again */
      llmc_kv_cache_set_prefix_caching(cache, false);
      for (int b = 0; b < R_BLOCKS; b++) r.blocks[b].id = 0;
      r.on = false;
      if (op == 0) {
        llmc_kv_cache_set_prefix_caching(cache, true);
        r.on = true;
      }
    } else if (op < 4 && !r.on) {
      llmc_kv_cache_set_prefix_caching(cache, true);
      r.on = true;
    } else if (!s->active) { /* a new request: attach, then prefill */
      int32_t n = 1 + (int32_t)next_rand(R_MAX_TOKENS - 4);
      for (int32_t i = 0; i < n; i++) s->tokens[i] = (int32_t)next_rand(3);
      /* Predict attach from the reference. */
      int want[R_MAX_TOKENS / R_BS], n_want = 0;
      int64_t parent = 0;
      for (int32_t i = 0; r.on && i < (n - 1) / R_BS; i++) {
        int b = ref_find(&r, parent, s->tokens + i * R_BS);
        if (b < 0) break;
        want[n_want++] = b;
        parent = r.blocks[b].id;
      }
      int32_t got = llmc_kv_seq_attach_prefix(cache, &s->seq, s->tokens, n - 1);
      CHECK_EQ_INT(got, n_want * R_BS);
      for (int i = 0; i < n_want && i < s->seq.n_blocks; i++) {
        CHECK_EQ_INT(s->seq.blocks[i], want[i]);
        r.blocks[want[i]].ref++;
      }
      attached += n_want;
      s->n_published = n_want;
      s->parent = parent;
      s->active = true;
      int32_t before = s->seq.n_blocks;
      llmc_status_t st = llmc_kv_seq_reserve(cache, &s->seq, n - s->seq.n_tokens);
      if (st) { /* all or nothing: give up the request */
        CHECK_EQ_INT(s->seq.n_blocks, before);
        llmc_status_free(st);
        release_seq(cache, &r, s);
      } else {
        for (int32_t i = before; i < s->seq.n_blocks; i++, allocations++)
          ref_take(&r, s->seq.blocks[i], __LINE__);
        s->seq.n_tokens = n;
        llmc_kv_seq_publish(cache, &s->seq, s->tokens);
        ref_publish(&r, s);
      }
    } else if (op < 70 && s->seq.n_tokens < R_MAX_TOKENS) { /* decode one token */
      s->tokens[s->seq.n_tokens] = (int32_t)next_rand(3);
      int32_t before = s->seq.n_blocks;
      llmc_status_t st = llmc_kv_seq_reserve(cache, &s->seq, 1);
      if (st) {
        llmc_status_free(st);
      } else {
        for (int32_t i = before; i < s->seq.n_blocks; i++, allocations++)
          ref_take(&r, s->seq.blocks[i], __LINE__);
        s->seq.n_tokens++;
        llmc_kv_seq_publish(cache, &s->seq, s->tokens);
        ref_publish(&r, s);
      }
    } else { /* the request ends */
      release_seq(cache, &r, s);
    }
    if (!ref_compare(cache, &r, step)) break;
  }
  printf("random operations: %lld blocks attached, %lld allocations checked\n", (long long)attached,
         (long long)allocations);
  CHECK(attached > 1000);
  for (int i = 0; i < R_SEQS; i++)
    if (seqs[i].active) release_seq(cache, &r, &seqs[i]);
  ref_compare(cache, &r, R_STEPS);
  check_counts(cache, 0, cache->n_cached, __LINE__);
  llmc_kv_cache_destroy(cache);
}

int main(void) {
  test_dtypes();
  test_attach_publish();
  test_collisions();
  test_eviction_order();
  test_random_operations();
  return check_report("test_kv_cache");
}
