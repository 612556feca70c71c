/* weights.h — laying out and writing the weights of a compiled model.
 *
 * The plan decides which weight-table entries the generated code reads and
 * where each lives in the .llmc_weights section (offsets aligned to
 * LLMC_WEIGHTS_ALIGN). Writing materialises each entry in the kernels'
 * layout (f32 row-major for the current CPU kernels): file ranges are read
 * and converted from f16/bf16, derived entries (concat, add_scalar,
 * mul_scalar) are computed from their arguments, one tensor at a time. */
#ifndef LLMC_COMPILER_WEIGHTS_H
#define LLMC_COMPILER_WEIGHTS_H

#include <stdint.h>
#include <stdio.h>

#include "ir.h"

typedef struct {
  uint32_t n;          /* stored tensors */
  uint32_t *weight;    /* [n] weight-table index of each stored tensor */
  uint64_t *offset;    /* [n] byte offset in the section */
  uint64_t *bytes;     /* [n] byte size in the section */
  int64_t *slot;       /* [module n_weights] index into the arrays above, -1 if not stored */
  uint64_t total;      /* section size */
} llmc_weight_plan_t;

/* Plans storage for every weight a live `weight` node refers to. The plan's
 * arrays live in m's arena. */
llmc_status_t llmc_weight_plan_make(llmc_ir_module_t *m, llmc_weight_plan_t *out);

/* Writes the section's bytes (plan->total of them) to f, which is
 * positioned at the section's start. `progress` (may be NULL) is called
 * after each tensor with the bytes written so far. */
llmc_status_t llmc_weights_write(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, FILE *f,
                                 void (*progress)(uint64_t done, uint64_t total));

#endif
