/* abi.h — the contract between a compiled model.so and the runtime.
 *
 * This header is shared by three parties: the runtime (which loads a .so and
 * fills llmc_step_t), the kernel library (compiled to bitcode and linked into
 * every model), and the code generator (which emits the llmc_abi record and
 * the entry points). It is plain C with fixed-width types only, so that its
 * layout is the same for every target, and one inline function
 * (llmc_kv_slot_bytes), so that all three size the KV cache's slots alike.
 *
 * A model.so exports exactly one symbol the runtime needs: `llmc_abi`, an
 * llmc_abi_record_t. The runtime reads its magic and version before it
 * touches anything else; a mismatch is an error, never a crash. Any change
 * to a struct below bumps LLMC_ABI_VERSION.
 *
 * The weights are not in any loaded segment: they live in the ELF section
 * ".llmc_weights" (no SHF_ALLOC), which the runtime maps itself and passes
 * to every entry point as step->weights. Offsets into it are baked into the
 * code as constants.
 */
#ifndef LLMC_ABI_H
#define LLMC_ABI_H

#include <stdint.h>

#define LLMC_ABI_MAGIC 0x434d4c4cu /* "LLMC" little-endian */
#define LLMC_ABI_VERSION 2u
#define LLMC_WEIGHTS_SECTION ".llmc_weights"
#define LLMC_WEIGHTS_ALIGN 64 /* every tensor starts on this boundary */
#define LLMC_WEIGHTS_FILE_ALIGN 65536u /* file offset of the section, so it can be mmap'ed */
#define LLMC_ABI_SYMBOL "llmc_abi"

/* A unit of parallel work: runs task `task` of `n_tasks`. */
typedef void (*llmc_task_fn)(void *env, int32_t task, int32_t n_tasks);

/* Services the runtime offers to generated code. */
typedef struct llmc_runtime_api {
  /* Runs fn(env, i, n_tasks) for every i in [0, n_tasks), spread over the
   * pool's threads, and returns when all have finished. */
  void (*parallel_for)(void *pool, llmc_task_fn fn, void *env, int32_t n_tasks);
  void *pool;
  int32_t n_threads; /* how many tasks can run at once */
} llmc_runtime_api_t;

/* One engine step: T tokens drawn from S sequences. The tokens of a
 * sequence are contiguous rows and in position order. */
typedef struct llmc_batch {
  int32_t n_tokens;           /* T */
  int32_t n_seqs;             /* S */
  const int32_t *tokens;      /* [T] token ids */
  const int32_t *positions;   /* [T] position of each token in its sequence */
  const int32_t *slots;       /* [T] KV slot of each token: block * block_size + offset */
  const int32_t *seq_start;   /* [S+1] sequence s owns rows [seq_start[s], seq_start[s+1]) */
  const int32_t *seq_len;     /* [S] tokens of s in the cache after this step */
  const int32_t *block_table; /* [S, max_blocks] physical block of each logical block */
  int32_t max_blocks;         /* row stride of block_table */
  int32_t n_logits;           /* L: rows whose logits are wanted */
  const int32_t *logit_rows;  /* [L] row indices into the step, ascending */
  float *logits;              /* [L, vocab] written by the step */
} llmc_batch_t;

/* Element types of the KV cache. Nonzero, so that 0 can mean "the
 * default" in options (llmc_engine_options_t.kv_dtype). */
typedef enum llmc_kv_dtype {
  LLMC_KV_F32 = 1,
  LLMC_KV_F16 = 2,
  LLMC_KV_Q8_0 = 3,
  LLMC_KV_DTYPE_END /* one past the last */
} llmc_kv_dtype_t;

/* Bytes of one slot (the K, or the V, of one token in one layer: kv_dim
 * elements) of a cache of type dtype; 0 for an unknown dtype. */
static inline int64_t llmc_kv_slot_bytes(int32_t dtype, int64_t kv_dim) {
  return dtype == LLMC_KV_F32    ? 4 * kv_dim
         : dtype == LLMC_KV_F16  ? 2 * kv_dim
         : dtype == LLMC_KV_Q8_0 ? kv_dim + 2 * (kv_dim / 32)
                                 : 0;
}

/* Paged KV cache, owned by the runtime. The key (kv = 0) or value (kv = 1)
 * of cache slot s = block * block_size + offset in layer l is the slot of
 * llmc_kv_slot_bytes(dtype, kv_dim) bytes at byte
 *   (((l * 2 + kv) * n_blocks + block) * block_size + offset) * slot_bytes
 * of data, with kv_dim = kv_heads * head_dim from the abi record; element d
 * of a slot belongs to kv head d / head_dim. Inside a slot, element d is:
 *   LLMC_KV_F32   the float at byte 4d.
 *   LLMC_KV_F16   the little-endian IEEE binary16 at byte 2d, rounded to
 *                 nearest even from the f32 value (llmc_f32_to_f16 of
 *                 llmc/numerics.h; overflow gives inf).
 *   LLMC_KV_Q8_0  q[d] * scale[d / 32]: the int8 q[d] at byte d, and the
 *                 little-endian binary16 scale of its group of 32 at byte
 *                 kv_dim + 2 (d / 32). All the values come first, so one
 *                 head's values are contiguous. A group is quantized as
 *                 ggml's quantize_row_q8_0_ref (llmc_q8_0_quantize): scale
 *                 = amax / 127, q = round(x * (1 / scale)) half away from
 *                 zero, the scale stored as f16. Needs kv_dim % 32 == 0.
 * A step decodes what it reads to f32 exactly (q times the f16 scale is one
 * f32 multiplication) and computes in f32; the type changes what is stored,
 * never the order of any sum. */
typedef struct llmc_kv_cache_view {
  uint8_t *data;
  int32_t n_blocks;
  int32_t block_size; /* tokens per block */
  int32_t dtype;      /* an llmc_kv_dtype_t */
  int32_t reserved;   /* 0 */
} llmc_kv_cache_view_t;

/* Everything an entry point reads and writes. */
typedef struct llmc_step {
  llmc_batch_t batch;
  llmc_kv_cache_view_t kv;
  const uint8_t *weights;        /* base of the .llmc_weights section */
  uint8_t *scratch;              /* >= llmc_abi.scratch_bytes(token_capacity) bytes, 64-aligned */
  int32_t token_capacity;        /* T <= token_capacity */
  const llmc_runtime_api_t *rt;
} llmc_step_t;

/* The record a model.so exports as `llmc_abi`. */
typedef struct llmc_abi_record {
  uint32_t magic;       /* LLMC_ABI_MAGIC */
  uint32_t abi_version; /* LLMC_ABI_VERSION */
  uint32_t record_size; /* sizeof(llmc_abi_record_t) at compile time */
  uint32_t reserved;
  const char *metadata_json;  /* NUL-terminated; see docs/model-so.md */
  uint64_t weights_bytes;     /* size of the .llmc_weights section */
  int32_t vocab_size;
  int32_t n_layers;           /* layers with a KV cache */
  int32_t kv_dim;             /* kv_heads * head_dim */
  int32_t max_context;        /* positions the model supports */
  /* Scratch bytes a step of up to token_capacity tokens needs. */
  uint64_t (*scratch_bytes)(int32_t token_capacity);
  /* Runs one step: writes the KV cache for the step's tokens and the
   * logits of the rows in batch.logit_rows. */
  void (*step)(llmc_step_t *step);
} llmc_abi_record_t;

#endif /* LLMC_ABI_H */
