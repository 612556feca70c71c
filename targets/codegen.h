/* codegen.h — lowering the partitioned IR to native code through LLVM. */
#ifndef LLMC_TARGETS_CODEGEN_H
#define LLMC_TARGETS_CODEGEN_H

#include <cjson/cJSON.h>

#include "ir.h"
#include "target.h"
#include "weights.h"

typedef struct {
  const llmc_target_t *target;
  const char *cpu;          /* LLVM CPU name; NULL = the host's (or the target's baseline) */
  const char *object_path;  /* the object file to write */
  const char *llvm_ir_path; /* if set, the optimised LLVM IR is written here too */
} llmc_codegen_options_t;

/* Generates the model's object file from module m (after the pass
 * pipeline). `meta` is the metadata document so far; codegen adds "target",
 * "kv" and "entry_points" and embeds the printed document in the llmc_abi
 * record. Weight offsets come from plan. */
llmc_status_t llmc_codegen(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, cJSON *meta,
                           const llmc_codegen_options_t *opts);

/* The integer matmul kernels (targets/cpu/kernels_int8.h) that the CPU
 * llmc_codegen compiles for under opts (the host's when opts->cpu is NULL)
 * can run: VNNI with AVX512-VNNI, else with AVX2, FMA and F16C: AVXVNNI
 * with AVX-VNNI, else AVX2; else none. Then the weight plan stores quantized matrices in groups of 16
 * rows for them. For a named CPU this is its known feature set;
 * opts->object_path is not used. */
typedef enum { LLMC_INT8_NONE, LLMC_INT8_AVX2, LLMC_INT8_AVXVNNI, LLMC_INT8_VNNI } llmc_int8_isa_t;
llmc_int8_isa_t llmc_codegen_int8_isa(const llmc_codegen_options_t *opts);

#endif
