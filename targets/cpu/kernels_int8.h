/* kernels_int8.h — matmuls over q8_0, q4_0, q4_K and q6_K weights computed
 * as integer dot products with 8-bit activations, for x86-64 CPUs with
 * AVX512-VNNI (Cascade Lake, Ice Lake and later Intel server parts, Zen 4,
 * Zen 5; the kernels ending in _vnni), with AVX-VNNI (Alder Lake and later
 * client CPUs; _avxvnni) or with AVX2 (Haswell, Zen 1 and later; _avx2).
 * All give the same bits.
 *
 * This is how llama.cpp multiplies these types: the activations are
 * quantized (q8_0 for q8_0 and q4_0 weights, q8_K for q4_K and q6_K, with
 * ggml's reference quantizers), each block's dot product is an exact
 * integer, and only the per-block scaling is done in f32. A 512-bit
 * VPDPBUSD does 64 byte multiply-adds, where the kernels of kernels_quant.h
 * decode each weight to a float first; AVX2 needs two instructions
 * (VPMADDUBSW, VPMADDWD) per 32 of them.
 *
 * A matmul here is two kernel calls, with a barrier between them:
 *   llmc_k_quantize_act_q8(_K)   x [T, K] f32  ->  xq [T] rows of
 *                                llmc_act_q8(_K)_row_bytes(K) bytes;
 *   llmc_k_matmul_*_r16          xq and the weights -> out [T, N].
 * Weights are stored in groups of 16 rows (llmc/row_groups.h), so that
 * one 64-byte load holds four levels of each of 16 rows and each vector
 * lane accumulates one output column.
 *
 * Numerics. For weight row j and token t, over the blocks b in order
 * (32 columns for q8_0/q4_0, 256 for q4_K/q6_K), with dw, dmin the
 * weight's f16 factors and dx the activation block's scale as f32:
 *   q8_0, q4_0:  acc = fmaf((float)isum, dw * dx, acc), isum the exact dot
 *                product of the levels (q4_0's minus 8);
 *   q6_K:        the same, isum = sum over sub-blocks s of 16 of
 *                scale_s * (dot product of levels minus 32);
 *   q4_K:        acc = fmaf((float)isum, dw * dx, acc), then
 *                acc = fmaf(-(float)msum, dmin * dx, acc), isum = sum over
 *                sub-blocks j of 32 of scale_j * (dot product of nibbles),
 *                msum = sum of min_j * (sum of the activation levels of j);
 * then bias and residual are added, as in kernels.h. Each lane runs this
 * sequence on its own, so results do not depend on T, on the task split or
 * on which tokens share a step (batch invariance).
 * tests/unit/test_quant_int8.c checks every bit against a scalar version.
 */
#ifndef LLMC_TARGETS_CPU_KERNELS_INT8_H
#define LLMC_TARGETS_CPU_KERNELS_INT8_H

#include <stdint.h>

#include "llmc/row_groups.h"

/* Bytes of one quantized activation row of K elements: K int8 levels, then
 * one f32 scale per block, then one int32 level sum per sum block, padded
 * to 64 bytes. q8_0 rows (K a multiple of 32): blocks and sum blocks of 32.
 * q8_K rows (K a multiple of 256): blocks of 256, sum blocks of 16. */
static inline int64_t llmc_act_q8_row_bytes(int64_t K) { return (K + K / 32 * 8 + 63) / 64 * 64; }
static inline int64_t llmc_act_q8_K_row_bytes(int64_t K) {
  return (K + K / 256 * 4 + K / 16 * 4 + 63) / 64 * 64;
}

/* xq row t = x [T, K] row t quantized as ggml's quantize_row_q8_0_ref (the
 * scale kept as the f32 value of its f16) or quantize_row_q8_K_ref, with
 * the level sums. Tasks split rows. */
void llmc_k_quantize_act_q8(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                            int32_t n_tasks);
void llmc_k_quantize_act_q8_K(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                              int32_t n_tasks);

/* out = x · wᵀ (+ bias) (+ residual), as llmc_k_matmul (kernels.h), with
 * x given as xq (q8_0 rows for q8_0 and q4_0 weights, q8_K rows for q4_K
 * and q6_K) and w grouped by 16 rows: N rows (2N under glu, N gate rows
 * then N up rows), N a multiple of 16, K of the type's block. Tasks split
 * the N output columns in groups of 16, never K. */
void llmc_k_matmul_q8_0_r16_vnni(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_0_r16_vnni(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_K_r16_vnni(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q6_K_r16_vnni(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q8_0_r16_avx2(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_0_r16_avx2(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_K_r16_avx2(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q6_K_r16_avx2(const void *xq, const void *w, const float *bias,
                                 const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                 int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q8_0_r16_avxvnni(const void *xq, const void *w, const float *bias,
                                    const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                    int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_0_r16_avxvnni(const void *xq, const void *w, const float *bias,
                                    const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                    int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q4_K_r16_avxvnni(const void *xq, const void *w, const float *bias,
                                    const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                    int32_t glu, int32_t task, int32_t n_tasks);
void llmc_k_matmul_q6_K_r16_avxvnni(const void *xq, const void *w, const float *bias,
                                    const float *residual, float *out, int32_t T, int32_t K, int32_t N,
                                    int32_t glu, int32_t task, int32_t n_tasks);

#endif /* LLMC_TARGETS_CPU_KERNELS_INT8_H */
