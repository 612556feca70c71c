/* runtime.h — the public API of libllmc_runtime: load a compiled model.so,
 * run its forward pass over a paged KV cache with a thread pool.
 *
 * The pieces, bottom up:
 *   llmc_model_t        a loaded model.so: ABI record checked, metadata
 *                       parsed, weights mapped (loader.c)
 *   llmc_thread_pool_t  the workers behind llmc_runtime_api_t.parallel_for
 *                       that generated code calls back into (thread_pool.c)
 *   llmc_kv_cache_t     a fixed pool of KV blocks with reference counts and
 *                       prefix caching, and
 *   llmc_kv_seq_t       one sequence's block table (kv_cache.c)
 *   llmc_engine_t       turns chunks of tokens of one or more sequences into
 *                       an llmc_step_t and calls the model (engine.c)
 *
 * Nothing here is thread-safe unless it says so: one thread drives an
 * engine; the pool's workers only ever run the model's tasks. Every
 * function that can fail returns an llmc_status_t (NULL = success) and
 * never aborts on bad input (a foreign .so, a truncated file, a token id
 * out of range). */
#ifndef LLMC_RUNTIME_H
#define LLMC_RUNTIME_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmc/abi.h"
#include "support/status.h"

/* ------------------------------------------------------------------------
 * Model loading (loader.c)
 * ---------------------------------------------------------------------- */


/* How the weights get into memory. */
typedef enum {
  LLMC_WEIGHTS_AUTO = 0, /* $LLMC_WEIGHTS if set, else COPY for >= 64 MiB, else MMAP */
  LLMC_WEIGHTS_MMAP,     /* map the section of the file read-only (shared page cache) */
  LLMC_WEIGHTS_COPY,     /* read it into anonymous memory advised for 2 MiB pages */
  LLMC_WEIGHTS_MODE_COUNT
} llmc_weights_mode_t;

typedef struct llmc_model_options {
  llmc_weights_mode_t weights_mode;
} llmc_model_options_t;

/* A loaded model.so. All fields are read-only for users. Owns the dlopen
 * handle, the parsed metadata and the weights mapping. */
typedef struct llmc_model {
  char *path;                       /* owned: the path it was loaded from */
  const llmc_abi_record_t *abi;     /* the checked `llmc_abi` record inside the image */
  cJSON *metadata;                  /* owned: abi->metadata_json, parsed (docs/model-so.md) */
  const uint8_t *weights;           /* [weights_bytes] the .llmc_weights section; NULL if empty */
  uint64_t weights_bytes;           /* == abi->weights_bytes */
  llmc_weights_mode_t weights_mode; /* MMAP or COPY: what was actually done */
  void *dl_handle;                  /* owned: from dlopen */
  void *weights_map;                /* owned: the mapping weights lives in */
  size_t weights_map_bytes;         /* its length (COPY rounds up to 2 MiB) */
} llmc_model_t;

/* Loads the model.so at `path`: validates its ELF headers and the weights
 * section, dlopens it, checks the ABI record (magic, version, record size)
 * before reading any other field, parses the metadata and maps the weights.
 * `options` may be NULL (all defaults). On success *out_model is owned by
 * the caller (llmc_model_destroy); on failure it is NULL and the error
 * names the file. */
llmc_status_t llmc_model_load(const char *path, const llmc_model_options_t *options,
                              llmc_model_t **out_model);

/* Unmaps the weights, dlcloses the image and frees the model. NULL is fine. */
void llmc_model_destroy(llmc_model_t *model);

/* The address of the exported symbol `name` in the model's image, or NULL
 * if it has none. */
void *llmc_model_symbol_lookup(const llmc_model_t *model, const char *name);

/* "mmap" / "copy" / "auto". */
const char *llmc_weights_mode_name(llmc_weights_mode_t mode);

/* ------------------------------------------------------------------------
 * Thread pool (thread_pool.c)
 * ---------------------------------------------------------------------- */

/* Opaque: owns its worker threads. */
typedef struct llmc_thread_pool llmc_thread_pool_t;

/* Creates a pool that runs tasks on n_threads threads: the thread calling
 * parallel_for plus n_threads - 1 workers. n_threads <= 0 means one per
 * online CPU. */
llmc_status_t llmc_thread_pool_create(int32_t n_threads, llmc_thread_pool_t **out_pool);

/* Stops and joins the workers and frees the pool. NULL is fine. Must not
 * be called while a parallel_for is running. */
void llmc_thread_pool_destroy(llmc_thread_pool_t *pool);

/* Runs fn(env, i, n_tasks) for every i in [0, n_tasks) on the pool's
 * threads, the caller's included, and returns when all have returned.
 * Matches llmc_runtime_api_t.parallel_for (pool is an llmc_thread_pool_t).
 * Calls on one pool must not overlap or nest. */
void llmc_thread_pool_parallel_for(void *pool, llmc_task_fn fn, void *env, int32_t n_tasks);

/* How many tasks can run at once (the n_threads it was created with). */
int32_t llmc_thread_pool_size(const llmc_thread_pool_t *pool);

/* The llmc_runtime_api_t that generated code uses to reach this pool. */
llmc_runtime_api_t llmc_thread_pool_api(llmc_thread_pool_t *pool);

/* ------------------------------------------------------------------------
 * Paged KV cache (kv_cache.c)
 * ---------------------------------------------------------------------- */

#define LLMC_KV_DEFAULT_BLOCK_SIZE 16

/* "f32", "f16", "q8_0"; NULL for anything else. */
const char *llmc_kv_dtype_name(llmc_kv_dtype_t dtype);

/* *out = the type named "f32", "f16" or "q8_0"; any other text is an
 * INVALID_ARGUMENT error that quotes it and lists the three. */
llmc_status_t llmc_kv_dtype_parse(const char *text, llmc_kv_dtype_t *out);

/* Bytes of KV data one block takes: K and V of block_size tokens (<= 0:
 * 16) in each of n_layers layers, n_layers * 2 * block_size *
 * llmc_kv_slot_bytes(dtype, kv_dim); 0 for an unknown dtype. A memory
 * budget (--kv-memory) divided by this is a block count. Bookkeeping adds
 * about 4 * block_size + 64 bytes per block. */
uint64_t llmc_kv_cache_block_bytes(int32_t n_layers, int32_t kv_dim, int32_t block_size,
                                   llmc_kv_dtype_t dtype);

/* The chain hash of prefix caching: the key of a block from the key of the
 * block before it (0 for the first) and its n tokens. */
typedef uint64_t (*llmc_kv_block_hash_fn)(uint64_t parent_key, const int32_t *tokens, int32_t n);

/* Opaque: the index of registered blocks (kv_cache.c). */
typedef struct llmc_kv_registry llmc_kv_registry_t;

/* A fixed pool of KV blocks. Fields are read-only for users unless they
 * say otherwise. Owns the block memory (one anonymous mapping) and the
 * bookkeeping.
 *
 * Prefix caching (as vLLM's): a sequence publishes its full blocks, each
 * registered under the chain hash of every token up to its end, with its
 * tokens and the registration of the block before it; a new sequence whose
 * prompt begins with the same full blocks attaches them instead of
 * computing them again. A lookup compares tokens and parent, never trusts
 * the hash alone. A block keeps its registration when its last holder
 * lets go ("cached free"): it counts as free, but allocation takes
 * never-registered free blocks first, then evicts cached ones least
 * recently freed first. Every operation is O(1) or O(tokens). */
typedef struct llmc_kv_cache {
  uint8_t *data;         /* owned: [n_layers, 2, n_blocks, block_size] slots, see abi.h */
  size_t data_bytes;     /* length of the mapping at data */
  int32_t n_layers;      /* from the abi record */
  int32_t kv_dim;        /* from the abi record */
  int32_t n_blocks;      /* blocks in the pool */
  int32_t block_size;    /* tokens per block */
  llmc_kv_dtype_t dtype; /* element type of the slots */
  int32_t *ref_counts;   /* owned: [n_blocks] holders of each block; 0 = free */
  int32_t n_used;        /* blocks with holders (ref_counts > 0) */
  int32_t n_free;        /* blocks without: n_blocks - n_used, the cached ones included */
  int32_t n_cached;      /* free blocks still registered (reusable by attach) */
  bool prefix_caching;   /* publish and attach work; llmc_kv_cache_set_prefix_caching */
  /* The chain hash. A test may replace it (to force collisions) before any
   * block is published. */
  llmc_kv_block_hash_fn block_hash;
  llmc_kv_registry_t *registry; /* owned: free lists and the index of registered blocks */
} llmc_kv_cache_t;

/* One sequence's view of the cache: its block table. A zero-initialised
 * llmc_kv_seq_t is a valid empty sequence. Owns `blocks` and one reference
 * to each block in it. */
typedef struct llmc_kv_seq {
  int32_t *blocks;  /* owned: [capacity] physical blocks in logical order; n_blocks used */
  int32_t n_blocks; /* blocks held */
  int32_t capacity; /* allocated length of blocks */
  int32_t n_tokens; /* tokens whose K/V are in the cache = position of the next token */
  /* Prefix caching: blocks [0, n_published) are registered or equal to a
   * registered block (attached, or published after an equal one). */
  int32_t n_published;
  uint64_t publish_key;    /* chain hash of block n_published - 1 (0 when none) */
  uint64_t publish_parent; /* registration of the block equal to block n_published - 1 (0: none) */
} llmc_kv_seq_t;

/* Creates a pool of n_blocks blocks of block_size tokens (<= 0: 16) of
 * type dtype for a model with n_layers layers of kv_dim elements per
 * token, all free, prefix caching on. q8_0 needs kv_dim % 32 == 0 (else
 * INVALID_ARGUMENT, as for an unknown dtype). */
llmc_status_t llmc_kv_cache_create(int32_t n_layers, int32_t kv_dim, int32_t n_blocks,
                                   int32_t block_size, llmc_kv_dtype_t dtype,
                                   llmc_kv_cache_t **out_cache);

/* Frees the pool; blocks still held by sequences are gone with it (their
 * llmc_kv_seq_t must not be used with this cache again). NULL is fine. */
void llmc_kv_cache_destroy(llmc_kv_cache_t *cache);

/* Turns prefix caching on or off. Off drops every registration (cached
 * free blocks become plain free blocks); attach then shares nothing and
 * publish registers nothing. */
void llmc_kv_cache_set_prefix_caching(llmc_kv_cache_t *cache, bool on);

/* The abi.h view of the cache that a step reads and writes. */
llmc_kv_cache_view_t llmc_kv_cache_view(const llmc_kv_cache_t *cache);

/* Takes a free block (never-registered first, else the least recently
 * freed cached block, whose registration is dropped); its reference count
 * becomes 1. Fails with OUT_OF_MEMORY when every block is in use. */
llmc_status_t llmc_kv_cache_block_alloc(llmc_kv_cache_t *cache, int32_t *out_block);

/* Adds a holder to a block in use (prefix sharing). */
void llmc_kv_cache_block_retain(llmc_kv_cache_t *cache, int32_t block);

/* Drops a holder; the block is free again when none are left (cached free
 * if it is registered). */
void llmc_kv_cache_block_release(llmc_kv_cache_t *cache, int32_t block);

/* Makes seq hold enough blocks for seq->n_tokens + n_new_tokens tokens.
 * All or nothing: when the pool runs out, seq is left as it was and the
 * error is OUT_OF_MEMORY. Does not change seq->n_tokens. */
llmc_status_t llmc_kv_seq_reserve(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq, int32_t n_new_tokens);

/* Releases the blocks seq holds beyond those its n_tokens need. */
void llmc_kv_seq_trim(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq);

/* Releases all of seq's blocks and frees its table; seq is empty again. */
void llmc_kv_seq_deinit(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq);

/* The cache slot (block * block_size + offset) of position pos of seq;
 * pos must lie in the blocks seq holds. */
int32_t llmc_kv_seq_slot(const llmc_kv_cache_t *cache, const llmc_kv_seq_t *seq, int32_t pos);

/* Prefix caching, step 1: seq must be empty (no tokens, no blocks).
 * Shares the longest run of registered full blocks whose tokens equal
 * tokens[0 .. k * block_size) with k * block_size <= n_tokens: takes a
 * reference to each (a cached free block is in use again), puts them in
 * seq's table and sets seq->n_tokens = k * block_size. Returns the number
 * of tokens reused: 0 when nothing matched, prefix caching is off, or the
 * table cannot grow. Shared blocks are full, so seq never writes them;
 * the caller passes at most n_prompt - 1 tokens, so that at least the
 * last prompt token is computed (its logits are needed). */
int32_t llmc_kv_seq_attach_prefix(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq,
                                  const int32_t *tokens, int32_t n_tokens);

/* Prefix caching, step 2: registers every full block of seq not yet
 * published, keyed by the chain hash of all tokens up to its end, so that
 * later sequences can attach it. tokens [seq->n_tokens]: every token whose
 * K/V seq holds (the K/V must be in the cache: call after the step). A
 * block equal to one already registered (two sequences computed the same
 * prompt) is not registered again: the first registration stays. Does
 * nothing when prefix caching is off. */
void llmc_kv_seq_publish(llmc_kv_cache_t *cache, llmc_kv_seq_t *seq, const int32_t *tokens);

/* ------------------------------------------------------------------------
 * Engine (engine.c)
 * ---------------------------------------------------------------------- */

#define LLMC_ENGINE_DEFAULT_TOKEN_CAPACITY 512
/* f32, not f16: f16 keys and values move the logits of the Hugging Face
 * test models by up to 6e-3 against transformers' (tolerance 2e-3; see
 * docs/design.md). Servers ask for f16 explicitly. */
#define LLMC_ENGINE_DEFAULT_KV_DTYPE LLMC_KV_F32

/* Zero in any field means its default. */
typedef struct llmc_engine_options {
  int32_t n_threads;        /* pool threads; default one per online CPU */
  int32_t token_capacity;   /* most tokens in one step; default 512 */
  int32_t kv_blocks;        /* KV pool size; default enough for one max_context sequence */
  int32_t kv_block_size;    /* tokens per KV block; default 16 */
  llmc_kv_dtype_t kv_dtype; /* KV element type; default LLMC_ENGINE_DEFAULT_KV_DTYPE */
} llmc_engine_options_t;

/* Opaque: owns a thread pool, a KV cache, the step's scratch memory and
 * the batch arrays; borrows the model, which must outlive it. */
typedef struct llmc_engine llmc_engine_t;

/* Which rows of a chunk want logits. */
typedef enum {
  LLMC_ENGINE_LOGITS_NONE = 0, /* none (a prompt chunk that is not the last) */
  LLMC_ENGINE_LOGITS_LAST,     /* the chunk's last token (decode, end of prompt) */
  LLMC_ENGINE_LOGITS_ALL,      /* every token (perplexity, llmc logits) */
  LLMC_ENGINE_LOGITS_COUNT
} llmc_engine_logits_t;

/* One sequence's share of a step: n_tokens tokens that continue seq at
 * position seq->n_tokens. */
typedef struct llmc_engine_chunk {
  llmc_kv_seq_t *seq;          /* borrowed; a sequence appears at most once per step */
  const int32_t *tokens;       /* [n_tokens] borrowed */
  int32_t n_tokens;            /* >= 1 */
  llmc_engine_logits_t logits; /* rows wanted */
} llmc_engine_chunk_t;

/* Creates an engine for model. options may be NULL. */
llmc_status_t llmc_engine_create(const llmc_model_t *model, const llmc_engine_options_t *options,
                                 llmc_engine_t **out_engine);

/* Frees the engine (not the model). Sequences made with its KV cache must
 * be deinitialised first. NULL is fine. */
void llmc_engine_destroy(llmc_engine_t *engine);

/* The engine's KV cache, for making and freeing sequences. */
llmc_kv_cache_t *llmc_engine_kv_cache(llmc_engine_t *engine);

/* Most tokens one step takes. */
int32_t llmc_engine_token_capacity(const llmc_engine_t *engine);

/* Threads the engine's pool runs steps on (the calling thread included). */
int32_t llmc_engine_n_threads(const llmc_engine_t *engine);

/* Logit rows the chunks ask for: the L of the [L, vocab] logits buffer. */
int32_t llmc_engine_logit_rows(const llmc_engine_chunk_t *chunks, int32_t n_chunks);

/* Validates the chunks (token ids < vocab, no more than token_capacity
 * tokens, positions < max_context, distinct sequences), reserves their KV
 * blocks (all or nothing) and fills *out_step for a call of any entry
 * point: chunk c's tokens are rows seq_start[c].., in order; logits rows
 * go to `logits` ([llmc_engine_logit_rows(...), vocab]; may be NULL when
 * no rows are wanted) in chunk order. The step's arrays belong to the
 * engine and stay valid until its next build. Does not advance the
 * sequences. */
llmc_status_t llmc_engine_step_build(llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                                     int32_t n_chunks, float *logits, llmc_step_t *out_step);

/* Builds a step from the chunks, runs the model's step function, and
 * advances every chunk's sequence by its tokens. On error no sequence has
 * advanced. */
llmc_status_t llmc_engine_step(llmc_engine_t *engine, const llmc_engine_chunk_t *chunks,
                               int32_t n_chunks, float *logits);

/* Feeds n_tokens tokens of one sequence, in steps of at most token_capacity
 * tokens, and writes the logits `which` asks for to logits ([n_tokens,
 * vocab] for ALL, [vocab] for LAST, unused for NONE). On error seq has
 * advanced by the steps that completed. */
llmc_status_t llmc_engine_feed(llmc_engine_t *engine, llmc_kv_seq_t *seq, const int32_t *tokens,
                               int32_t n_tokens, llmc_engine_logits_t which, float *logits);

#endif /* LLMC_RUNTIME_H */
