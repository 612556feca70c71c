/* kernels_common.h — the helpers kernels.c and kernels_quant.c share.
 *
 * Batch invariance, and the bitwise agreement of the quantized kernels with
 * the f32 ones, rest on both files doing some things the same way: summing
 * a dot product (element k in lane k % LANES of a 16-float vector, the lanes
 * added in the one tree reduce_lanes() draws), splitting work between tasks
 * (task_range()), cutting a matmul into tiles (matmul_tiles()), embedding an
 * unknown token (embed_known_token()), decoding halves (load_f16(),
 * load_f16x16(): f16 weights and the f16 and q8_0 KV cache). So those live
 * here, once, rather than in copies that could drift apart.
 *
 * Each .c file is compiled on its own, by clang-19 into freestanding
 * bitcode (no libc, no libm) and natively into the unit tests, so the
 * helpers are static inline functions in a header, always inlined. */
#ifndef LLMC_TARGETS_CPU_KERNELS_COMMON_H
#define LLMC_TARGETS_CPU_KERNELS_COMMON_H

#include <stdint.h>

#include "llmc/numerics.h"

/* Small helpers must disappear into their callers so that shapes become
 * constants there; their loops are written for a constant trip count. */
#define INLINE static inline __attribute__((always_inline))

enum {
  LANES = 16,         /* accumulator lanes of a dot product */
  ROW_BLOCK = 8,      /* tokens (or weight rows) that share each load of the other operand */
  MATMUL_TILE_N = 32, /* columns of a matmul tile: their weights stay in L2 */
};

typedef float v16f __attribute__((vector_size(64)));
typedef float v8f __attribute__((vector_size(32)));
typedef float v4f __attribute__((vector_size(16)));
typedef uint16_t v16u16 __attribute__((vector_size(32)));
typedef uint32_t v16u32 __attribute__((vector_size(64)));

/* [*begin, *end): the share `task` of `n_tasks` of n items. */
INLINE void task_range(int64_t n, int32_t task, int32_t n_tasks, int64_t *begin, int64_t *end) {
  *begin = n * task / n_tasks;
  *end = n * (task + 1) / n_tasks;
}

/* The 16 lanes of v summed in a fixed tree: lane l += lane l+8, then +4,
 * +2, +1 (each step one vector add at the half width). */
INLINE float reduce_lanes(const v16f *v) {
  v8f lo8, hi8;
  __builtin_memcpy(&lo8, v, sizeof lo8);
  __builtin_memcpy(&hi8, (const char *)v + sizeof lo8, sizeof hi8);
  v8f s8 = lo8 + hi8;
  v4f lo4, hi4;
  __builtin_memcpy(&lo4, &s8, sizeof lo4);
  __builtin_memcpy(&hi4, (const char *)&s8 + sizeof lo4, sizeof hi4);
  v4f s4 = lo4 + hi4;
  return (s4[0] + s4[2]) + (s4[1] + s4[3]);
}

/* Computes rows [t, t + nt) x columns [j0, j1) of the output of the matmul
 * m, for the one token count nt (ROW_BLOCK or 1) the function is made for. */
typedef void matmul_tile_fn(const void *m, int64_t t, int64_t j0, int64_t j1);

/* The order both matmuls (f32 and quantized) compute their [T, N] output
 * in: this task's share of the N columns in tiles of MATMUL_TILE_N, and in
 * each tile the tokens ROW_BLOCK at a time (block), then the T % ROW_BLOCK
 * last ones (all of them when decoding) one at a time (one). A tile's
 * weight rows stay in L2 while every token passes them, so the weights are
 * read from memory once even for long prompts. block and one are INLINE
 * functions: once this is inlined they are direct calls, inlined in turn
 * with their nt a constant. */
INLINE void matmul_tiles(const void *m, int64_t T, int64_t N, int32_t task, int32_t n_tasks,
                         matmul_tile_fn *block, matmul_tile_fn *one) {
  int64_t j0, j1;
  task_range(N, task, n_tasks, &j0, &j1);
  for (int64_t jt = j0; jt < j1; jt += MATMUL_TILE_N) { /* column tiles of [j0, j1) */
    int64_t je = j1 - jt < MATMUL_TILE_N ? j1 : jt + MATMUL_TILE_N;
    int64_t t = 0;
    for (; t + ROW_BLOCK <= T; t += ROW_BLOCK)
      block(m, t, jt, je);
    for (; t < T; t++)
      one(m, t, jt, je);
  }
}

/* Whether token id tok is in the vocabulary [0, V). When it is not, its
 * embedding row o [D] is zeroed here: an unknown token embeds as zeros. */
INLINE int embed_known_token(int32_t tok, int32_t V, float *o, int32_t D) {
  if (tok >= 0 && tok < V)
    return 1;
  for (int64_t d = 0; d < D; d++)
    o[d] = 0.0f;
  return 0;
}

/* The little-endian binary16 at p as f32 (exact; NaN made quiet). */
INLINE float load_f16(const uint8_t *p) {
  uint16_t h;
  __builtin_memcpy(&h, p, sizeof h);
  return llmc_f16_to_f32(h);
}

/* *out = the 16 little-endian binary16 values at p as f32: load_f16 lane
 * by lane in integer vector operations, which every x86-64 level has (a
 * half-to-float conversion would need F16C, or else a libgcc call the
 * model.so cannot make): the exponent rebiased by 112; a zero or subnormal
 * (exponent 0) taken as 2^-14 * (1 + m / 1024) less 2^-14, which is
 * m * 2^-24 exactly; infinities and NaNs given the all-ones exponent, NaNs
 * made quiet. */
INLINE void load_f16x16(const uint8_t *p, v16f *out) {
  v16u16 raw;
  __builtin_memcpy(&raw, p, sizeof raw);
  v16u32 h = __builtin_convertvector(raw, v16u32);
  v16u32 em = h & 0x7fffu; /* exponent and mantissa */
  v16u32 bits = (em << 13) + (112u << 23);
  v16u32 is_sub = (v16u32)(em < 0x400u), is_special = (v16u32)(em >= 0x7c00u);
  v16f sub = (v16f)(bits + (1u << 23)) - 0x1p-14f;
  bits = (bits & ~is_sub) | ((v16u32)sub & is_sub);
  bits |= (is_special & 0x7f800000u) | ((v16u32)(em > 0x7c00u) & 0x400000u);
  *out = (v16f)(bits | (h & 0x8000u) << 16);
}

#endif
