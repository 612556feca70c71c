/* pass.h — the pass manager and the registry of passes.
 *
 * A pass is a function over a module. The default pipeline is one ordered
 * array (pipeline.c); the manager runs it, cleans up after each pass
 * (dead-code removal, topological order), runs the verifier, and dumps the
 * IR after any pass on request: `--dump-ir DIR` writes DIR/NN-NAME.ir after
 * every pass, `--print-after NAME` prints the IR after that pass. */
#ifndef LLMC_PASSES_PASS_H
#define LLMC_PASSES_PASS_H

#include <stdio.h>

#include "ir.h"

typedef struct {
  const char *name;    /* as used by --print-after, e.g. "fuse-horizontal" */
  const char *summary; /* one line for --help */
  llmc_status_t (*run)(llmc_ir_module_t *m);
} llmc_pass_t;

typedef struct {
  const char *dump_dir;    /* write the IR after every pass here, or NULL */
  const char *print_after; /* print the IR after this pass (or "all"), or NULL */
  const char *passes;      /* comma-separated pass names to run instead of the default pipeline, or NULL */
  FILE *print_to;          /* where --print-after goes (stdout if NULL) */
} llmc_pipeline_options_t;

/* The default pipeline, terminated by an entry whose name is NULL. */
extern const llmc_pass_t llmc_default_pipeline[];

/* Looks a pass up by name in the default pipeline; NULL if unknown. */
const llmc_pass_t *llmc_pass_find(const char *name);

/* Runs the default pipeline (or opts->passes) on m. The IR before any pass
 * is dumped as 00-input.ir. Errors name the pass that failed. */
llmc_status_t llmc_pipeline_run(llmc_ir_module_t *m, const llmc_pipeline_options_t *opts);

/* The passes (one file each). */
llmc_status_t llmc_pass_shape_infer(llmc_ir_module_t *m);     /* shape_infer.c */
llmc_status_t llmc_pass_fold_constants(llmc_ir_module_t *m);  /* fold_constants.c */
llmc_status_t llmc_pass_fuse_horizontal(llmc_ir_module_t *m); /* fuse_horizontal.c */
llmc_status_t llmc_pass_fuse_epilogue(llmc_ir_module_t *m);   /* fuse_epilogue.c */
llmc_status_t llmc_pass_prune_logits(llmc_ir_module_t *m);    /* prune_logits.c */
llmc_status_t llmc_pass_partition(llmc_ir_module_t *m);       /* partition.c */

#endif
