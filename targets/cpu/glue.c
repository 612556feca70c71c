/* glue.c — accessors the generated code uses to read llmc_step_t.
 *
 * The code generator calls these instead of computing struct offsets
 * itself, so abi.h stays the only description of the step's layout; after
 * inlining they cost nothing. The one struct the code generator does lay
 * out itself is the llmc_abi record (targets/codegen.c, abi_record_type);
 * the assertions below fail the build if abi.h and that copy drift apart. */
#include <stddef.h>

#include "llmc/abi.h"

_Static_assert(sizeof(void *) == 8, "llmc targets are 64-bit");
_Static_assert(offsetof(llmc_abi_record_t, metadata_json) == 16, "update abi_record_type in codegen.c");
_Static_assert(offsetof(llmc_abi_record_t, vocab_size) == 32, "update abi_record_type in codegen.c");
_Static_assert(offsetof(llmc_abi_record_t, step) == 56, "update abi_record_type in codegen.c");
_Static_assert(sizeof(llmc_abi_record_t) == 64, "update abi_record_type in codegen.c");

/* Rows of an activation: which = 0 for T (tokens of the step), 1 for L
 * (rows whose logits are wanted). */
int32_t llmc_glue_rows(const llmc_step_t *step, int32_t which);
int32_t llmc_glue_rows(const llmc_step_t *step, int32_t which) {
  return which == 0 ? step->batch.n_tokens : step->batch.n_logits;
}

const uint8_t *llmc_glue_weights(const llmc_step_t *step);
const uint8_t *llmc_glue_weights(const llmc_step_t *step) { return step->weights; }

const int32_t *llmc_glue_tokens(const llmc_step_t *step);
const int32_t *llmc_glue_tokens(const llmc_step_t *step) { return step->batch.tokens; }

const int32_t *llmc_glue_positions(const llmc_step_t *step);
const int32_t *llmc_glue_positions(const llmc_step_t *step) { return step->batch.positions; }

/* Scratch buffers are planned per token: a buffer at per-token offset o
 * starts at scratch + o * token_capacity. */
uint8_t *llmc_glue_scratch(const llmc_step_t *step, int64_t per_token_offset);
uint8_t *llmc_glue_scratch(const llmc_step_t *step, int64_t per_token_offset) {
  return step->scratch + per_token_offset * (int64_t)step->token_capacity;
}

void llmc_glue_parallel_for(const llmc_step_t *step, llmc_task_fn fn, void *env);
void llmc_glue_parallel_for(const llmc_step_t *step, llmc_task_fn fn, void *env) {
  step->rt->parallel_for(step->rt->pool, fn, env, step->rt->n_threads);
}
