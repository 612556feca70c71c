/* kernels_quant.h — CPU kernels that compute with block-quantized weights
 * (ggml's q8_0, q4_0, q4_K and q6_K; runtime/formats/quant.h and
 * docs/quantization.md describe the blocks) and with f16 and bf16 weights
 * (row-major halves, read as blocks of 16 with no factors).
 *
 * Compiled to bitcode and linked with the kernels of kernels.h, with the
 * same calling convention: each call does the share `task` of `n_tasks`,
 * activations are f32 [rows, cols] row-major, and a linear weight is
 * [N out, K in] — here N rows of K / block_elems blocks each, exactly as a
 * GGUF file stores the tensor. A weight row is dequantised block by block
 * into registers and the dot product is summed in f32 in kernels.h's order
 * (element k into lane k % 16, increasing k, one fixed tree over the
 * lanes), so results are batch invariant and equal, up to rounding, to
 * llmc_k_matmul on the dequantised weights.
 *
 * K (and an embedding's D) must be a multiple of the type's block: 32 for
 * q8_0 and q4_0, 256 for q4_K and q6_K, 16 for f16 and bf16. The kernels
 * do not check it; the compiler does (llmc_quant_check_row, and for halves
 * the weight plan) before it picks a kernel.
 */
#ifndef LLMC_TARGETS_CPU_KERNELS_QUANT_H
#define LLMC_TARGETS_CPU_KERNELS_QUANT_H

#include <stdint.h>

/* out = x · wᵀ (+ bias) (+ residual), as llmc_k_matmul, with w quantized:
 * x [T, K], w N rows of K / block_elems blocks (2N rows, N gate rows then
 * N up rows, with glu != LLMC_ACT_NONE, and then out[t, j] =
 * act(x_t · w_j) * (x_t · w_{N+j}), bias and residual NULL), bias [N] or
 * NULL, residual [T, N] or NULL (may be out), out [T, N]. Tasks split the
 * N output columns, never K. */
void llmc_k_matmul_q8_0(const float *x, const void *w, const float *bias, const float *residual,
                        float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                        int32_t n_tasks);
void llmc_k_matmul_q4_0(const float *x, const void *w, const float *bias, const float *residual,
                        float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                        int32_t n_tasks);
void llmc_k_matmul_q4_K(const float *x, const void *w, const float *bias, const float *residual,
                        float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                        int32_t n_tasks);
void llmc_k_matmul_q6_K(const float *x, const void *w, const float *bias, const float *residual,
                        float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                        int32_t n_tasks);
void llmc_k_matmul_f16(const float *x, const void *w, const float *bias, const float *residual,
                       float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                       int32_t n_tasks);
void llmc_k_matmul_bf16(const float *x, const void *w, const float *bias, const float *residual,
                        float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                        int32_t n_tasks);

/* out[t, :] = dequantised table[tokens[t], :] * scale, as llmc_k_embed:
 * table V rows of D / block_elems blocks, out [T, D]. Tokens outside
 * [0, V) give a zero row. Tasks split rows. */
void llmc_k_embed_q8_0(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                       int32_t V, float scale, int32_t task, int32_t n_tasks);
void llmc_k_embed_q4_0(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                       int32_t V, float scale, int32_t task, int32_t n_tasks);
void llmc_k_embed_q4_K(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                       int32_t V, float scale, int32_t task, int32_t n_tasks);
void llmc_k_embed_q6_K(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                       int32_t V, float scale, int32_t task, int32_t n_tasks);
void llmc_k_embed_f16(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                      int32_t V, float scale, int32_t task, int32_t n_tasks);
void llmc_k_embed_bf16(const void *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                       int32_t V, float scale, int32_t task, int32_t n_tasks);

#endif /* LLMC_TARGETS_CPU_KERNELS_QUANT_H */
