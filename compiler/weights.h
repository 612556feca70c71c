/* weights.h — laying out and writing the weights of a compiled model.
 *
 * The plan decides which weight-table entries the generated code reads, in
 * which dtype each is stored (the layout the kernels take: f32, f16 or bf16
 * row-major, or one of ggml's block-quantized row layouts), and where each
 * lives in the .llmc_weights section (offsets aligned to
 * LLMC_WEIGHTS_ALIGN). Writing materialises each entry, one tensor at a
 * time: file ranges are read (copied as they are when they stay in their
 * type; otherwise widened to f32), derived entries (concat, add_scalar,
 * mul_scalar) computed from their arguments, and rows quantized where the
 * plan says so. The model's tokenizer, when it has one, follows the
 * tensors in the same section (docs/model-so.md). */
#ifndef LLMC_COMPILER_WEIGHTS_H
#define LLMC_COMPILER_WEIGHTS_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"

typedef struct {
  uint32_t n;           /* stored tensors */
  uint32_t *weight;     /* [n] weight-table index of each stored tensor */
  llmc_dtype_t *dtype;  /* [n] the dtype it is stored in */
  uint64_t *offset;     /* [n] byte offset in the section */
  uint64_t *bytes;      /* [n] byte size in the section */
  bool *kept_f32;       /* [n] a matrix the requested quantization could not take (rows not whole blocks) */
  bool *grouped;        /* [n] quantized rows stored in groups of 16 (llmc_quant_group_rows) */
  int64_t *slot;        /* [module n_weights] index into the arrays above, -1 if not stored */
  const uint8_t *tokenizer;  /* [tokenizer_bytes] the embedded tokenizer (not owned), or NULL */
  uint64_t tokenizer_bytes;  /* it starts where the last tensor's padding ends */
  uint64_t total;       /* section size */
} llmc_weight_plan_t;

/* Plans storage for every weight a live `weight` node refers to. Matrices
 * that a matmul or embed reads keep a quantized source type, and without
 * quant an f16 or bf16 one whose rows are whole blocks of 16 and whose
 * bytes can be copied (file ranges and concatenations of them); with quant
 * (LLMC_DTYPE_Q8_0, _Q4_0, _Q4_K or _Q6_K; LLMC_DTYPE_NONE for none) f32,
 * f16 and bf16 matrices whose rows are whole blocks are quantized to it
 * (the others stay f32, as llama.cpp's quantizer falls back). Everything
 * else is stored as f32. With group_rows (the target has the kernels of
 * targets/cpu/kernels_int8.h), quantized matrices that only matmuls read,
 * as their weight, are stored in groups of 16 rows, when their rows
 * (and under glu each half of them) are whole groups. The plan's arrays
 * live in m's arena. */
llmc_status_t llmc_weight_plan_make(llmc_ir_module_t *m, llmc_dtype_t quant, bool group_rows,
                                    llmc_weight_plan_t *out);

/* Places the tokenizer's bytes (bytes of them at data, which must stay
 * valid until llmc_weights_write) after the tensors, at an offset aligned
 * to LLMC_WEIGHTS_ALIGN, and returns that offset. At most once per plan. */
uint64_t llmc_weight_plan_add_tokenizer(llmc_weight_plan_t *plan, const uint8_t *data, uint64_t bytes);

/* The dtype weight-table entry w is stored in, or LLMC_DTYPE_NONE if the
 * plan does not store it. */
llmc_dtype_t llmc_weight_plan_dtype(const llmc_weight_plan_t *plan, uint32_t w);

/* Whether weight-table entry w is stored in groups of 16 rows. */
bool llmc_weight_plan_grouped(const llmc_weight_plan_t *plan, uint32_t w);

/* Writes the section's bytes (plan->total of them: the tensors, then the
 * tokenizer) to f, which is positioned at the section's start. `progress`
 * (may be NULL) is called after each tensor and after the tokenizer with
 * the bytes written so far. */
llmc_status_t llmc_weights_write(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, FILE *f,
                                 void (*progress)(uint64_t done, uint64_t total));

#endif
