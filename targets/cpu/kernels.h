/* kernels.h — the CPU kernel library.
 *
 * These functions are compiled by clang-19 to LLVM bitcode when llmc is
 * built, embedded in the llmc binary and linked into every model module,
 * where the generated code calls them with constant shapes and weight
 * addresses. Where LLVM inlines a call, it becomes a kernel specialised
 * for its shapes (known trip counts, constant strides); the large kernels
 * mostly stay calls (docs/design.md).
 *
 * Calling convention: every kernel does the share `task` of `n_tasks` of its
 * work, so the generated code can hand it to the runtime's parallel_for.
 * How work is split never changes what a row computes: a row's dot products
 * and reductions are always summed in the same order, whatever T is and
 * however many tasks there are (batch invariance; see docs/design.md).
 *
 * Activations are f32, row-major, [rows, cols] contiguous. Weights follow
 * Hugging Face: a linear weight is [N out, K in], row-major.
 * The kernels use no libc: the .so they end up in links against nothing.
 */
#ifndef LLMC_TARGETS_CPU_KERNELS_H
#define LLMC_TARGETS_CPU_KERNELS_H

#include <stdint.h>

#include "llmc/abi.h"

/* Activation functions, as used by attributes act="silu" / "gelu_tanh". */
enum { LLMC_ACT_NONE = 0, LLMC_ACT_SILU = 1, LLMC_ACT_GELU_TANH = 2 };
/* Elementwise ops of llmc_k_unary. */
enum {
  LLMC_UNARY_ADD_SCALAR = 0,
  LLMC_UNARY_MUL_SCALAR = 1,
  LLMC_UNARY_SOFTCAP = 2, /* value * tanh(x / value) */
  LLMC_UNARY_SILU = 3,
  LLMC_UNARY_GELU_TANH = 4,
};
/* Elementwise ops of llmc_k_binary. */
enum { LLMC_BINARY_ADD = 0, LLMC_BINARY_MUL = 1 };

/* out[t, :] = table[tokens[t], :] * scale.  table [V, D], out [T, D].
 * Tokens outside [0, V) give a zero row. Tasks split rows. */
void llmc_k_embed(const float *table, const int32_t *tokens, float *out, int32_t T, int32_t D,
                  int32_t V, float scale, int32_t task, int32_t n_tasks);

/* RMSNorm over each run of G values: x [T, D] (D a multiple of G), w [G],
 * out [T, D]: out = x / sqrt(mean(x^2) + eps) * w. Tasks split rows. */
void llmc_k_rms_norm(const float *x, const float *w, float *out, int32_t T, int32_t D, int32_t G,
                     float eps, int32_t task, int32_t n_tasks);

/* out = x · wᵀ (+ bias) (+ residual).  x [T, K], w [N, K], bias [N] or
 * NULL, residual [T, N] or NULL, out [T, N]. With glu != LLMC_ACT_NONE, w
 * is [2N, K] (N gate rows, then N up rows) and out[t, j] =
 * act(x_t · w_j) * (x_t · w_{N+j}) (bias and residual must be NULL).
 * Tasks split the N output columns, never K. */
void llmc_k_matmul(const float *x, const float *w, const float *bias, const float *residual,
                   float *out, int32_t T, int32_t K, int32_t N, int32_t glu, int32_t task,
                   int32_t n_tasks);

/* out = a (op) b over [T, N]; b is [T, N] (b_rows = T) or a row [N]
 * broadcast over T (b_rows = 1). Tasks split rows. */
void llmc_k_binary(const float *a, const float *b, float *out, int32_t T, int32_t N,
                   int32_t b_rows, int32_t op, int32_t task, int32_t n_tasks);

/* out[i] = op(x[i]) for i < n, with `value` the scalar of add/mul/softcap. */
void llmc_k_unary(const float *x, float *out, int64_t n, int32_t op, float value, int32_t task,
                  int32_t n_tasks);

/* out[i] = act(gate[i]) * up[i] for i < n. */
void llmc_k_glu(const float *gate, const float *up, float *out, int64_t n, int32_t act,
                int32_t task, int32_t n_tasks);

/* out [R, end-begin] = x[:, begin:end] of x [R, C]. Tasks split rows. */
void llmc_k_slice(const float *x, float *out, int32_t R, int32_t C, int32_t begin, int32_t end,
                  int32_t task, int32_t n_tasks);

/* Rotary embedding on each of `heads` heads of x [T, heads*head_dim]: for
 * i < rot_dim/2, with a = pos * inv_freq[i], the pair (x_i, x_{i+rot_dim/2})
 * (rotate-half: GPT-NeoX, Hugging Face) or, with interleaved != 0, the pair
 * (x_{2i}, x_{2i+1}) (GPT-J: llama.cpp's layout for GGUF llama files) is
 * rotated by a. Dims past rot_dim are copied. out may equal x. Tasks split
 * rows. */
void llmc_k_rope(const float *x, const int32_t *positions, const float *inv_freq, float *out,
                 int32_t T, int32_t heads, int32_t head_dim, int32_t rot_dim, int32_t interleaved,
                 int32_t task, int32_t n_tasks);

/* Writes k [T, kv_dim] and v [T, kv_dim] of each token into its cache slot
 * (step->batch.slots) in `layer`, encoded in the cache's type
 * (step->kv.dtype: f32, f16, or q8_0 with kv_dim % 32 == 0; abi.h). Tasks
 * split rows. */
void llmc_k_kv_store(const llmc_step_t *step, const float *k, const float *v, int32_t layer,
                     int32_t kv_dim, int32_t task, int32_t n_tasks);

/* Causal attention over the paged cache. q, out [T, heads*head_dim]. Row t
 * of sequence s at position p attends to cache positions [lo, p] of s, with
 * lo = window ? max(0, p - window + 1) : 0; query head h reads kv head
 * h / (heads / kv_heads). scores = q·k * scale, then softcap*tanh(s/softcap)
 * when softcap > 0, softmax, weighted sum of v. Keys and values of any
 * cache type are decoded to f32 exactly and everything is computed in f32,
 * in the same order for every type. Tasks enumerate (sequence, head) pairs;
 * online softmax keeps it free of scratch memory. */
void llmc_k_attention(const llmc_step_t *step, const float *q, float *out, int32_t layer,
                      int32_t heads, int32_t kv_heads, int32_t head_dim, int32_t kv_dim,
                      float scale, float softcap, int32_t window, int32_t task, int32_t n_tasks);

/* out [L, C] = rows step->batch.logit_rows of x [T, C]. Tasks split rows. */
void llmc_k_select_rows(const llmc_step_t *step, const float *x, float *out, int32_t C,
                        int32_t task, int32_t n_tasks);

/* step->batch.logits [L, V] = x [L, V]. Tasks split rows. */
void llmc_k_output(const llmc_step_t *step, const float *x, int32_t V, int32_t task,
                   int32_t n_tasks);

/* Mixture of experts (Mixtral): x [T, D], router [E, D], gate_up [E*2F, D]
 * (expert e: F gate rows then F up rows), down [E*D, F], out [T, D]. Per token: p = softmax(router · x), the top_k
 * experts by p (ties: lower index), weights p_e / sum of the chosen p, and
 * out = sum_e w_e * down_e · (act(gate_e · x) * (up_e · x)). Tasks split
 * tokens. */
void llmc_k_moe(const float *x, const float *router, const float *gate_up, const float *down,
                float *out, int32_t T, int32_t D, int32_t F, int32_t E, int32_t top_k, int32_t act,
                int32_t task, int32_t n_tasks);

#endif /* LLMC_TARGETS_CPU_KERNELS_H */
