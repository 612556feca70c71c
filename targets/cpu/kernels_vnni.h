/* kernels_vnni.h — matmuls over q8_0 and q4_0 weights computed as integer
 * dot products with 8-bit activations, for x86-64 CPUs with AVX512-VNNI
 * (Cascade Lake, Ice Lake and later Intel server parts, Zen 4, Zen 5).
 *
 * This is how llama.cpp multiplies these types: the activations are
 * quantized to q8_0 (blocks of 32, ggml's quantize_row_q8_0_ref), each
 * block's dot product is an exact int32, and only the per-block scaling is
 * done in f32. A 512-bit VPDPBUSD does 64 byte multiply-adds, where the
 * f32 kernels of kernels_quant.h decode each weight to a float first.
 *
 * A matmul here is two kernel calls, with a barrier between them:
 *   llmc_k_quantize_act_q8   x [T, K] f32  ->  xq [T] rows of
 *                            llmc_act_q8_row_bytes(K) bytes;
 *   llmc_k_matmul_*_r16      xq and the weights -> out [T, N].
 *
 * Weights are stored in groups of 16 rows (llmc_quant_group_rows,
 * runtime/formats/quant.h): per block of 32 columns, the 16 rows' f16
 * scales, then their levels interleaved four bytes at a time, so that one
 * 64-byte load holds 4 consecutive levels of each of 16 rows and each
 * vector lane accumulates one output column.
 *
 * Numerics. For weight row j and token t the result is
 *   acc = 0; for each block b in order:
 *     acc = fmaf((float)isum_b, dw_b * dx_b, acc)
 * where isum_b is the exact integer dot product of the block's levels (q4_0
 * levels minus 8) and dw_b, dx_b are the f16 scales of weight and
 * activation as f32; then bias and residual are added, as in kernels.h.
 * Each lane runs this sequence on its own, so results do not depend on T,
 * on the task split or on which tokens share a step (batch invariance).
 * tests/unit/test_quant_vnni.c checks every bit against a scalar version.
 */
#ifndef LLMC_TARGETS_CPU_KERNELS_VNNI_H
#define LLMC_TARGETS_CPU_KERNELS_VNNI_H

#include <stdint.h>

enum {
  LLMC_ACT_Q8_BLOCK = 32, /* activation elements per scale */
  LLMC_ROW_GROUP = 16,    /* weight rows stored together */
};

/* Bytes of one quantized activation row of K elements (K a multiple of
 * 32): K int8 levels, then K/32 f32 scales, then K/32 int32 level sums,
 * padded to 64 bytes. */
static inline int64_t llmc_act_q8_row_bytes(int64_t K) {
  int64_t blocks = K / LLMC_ACT_Q8_BLOCK;
  return (K + blocks * 8 + 63) / 64 * 64;
}

/* xq row t = x [T, K] row t quantized as ggml's quantize_row_q8_0_ref (the
 * scale kept as the f32 value of its f16), with the sum of each block's
 * levels. Tasks split rows. */
void llmc_k_quantize_act_q8(const float *x, void *xq, int32_t T, int32_t K, int32_t task,
                            int32_t n_tasks);

/* out = x · wᵀ (+ bias) (+ residual), as llmc_k_matmul (kernels.h), with
 * x given as xq (llmc_k_quantize_act_q8) and w grouped by 16 rows: N rows
 * (2N under glu, N gate rows then N up rows), N a multiple of 16, K of 32.
 * Tasks split the N output columns in groups of 16, never K. */
void llmc_k_matmul_q8_0_r16(const void *xq, const void *w, const float *bias, const float *residual,
                            float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                            int32_t n_tasks);
void llmc_k_matmul_q4_0_r16(const void *xq, const void *w, const float *bias, const float *residual,
                            float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                            int32_t n_tasks);

#endif /* LLMC_TARGETS_CPU_KERNELS_VNNI_H */
