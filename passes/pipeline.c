/* pipeline.c — the default pass pipeline and the manager that runs it.
 * The order matters: folding first makes weights visible as plain weight
 * nodes to the fusion passes; horizontal fusion before epilogue fusion lets
 * the epilogue pass see one matmul whose slices feed a glu; pruning logits
 * after fusion moves row selection through the fused nodes; partitioning
 * last sees the final node list. */
#include "pass.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

const llmc_pass_t llmc_default_pipeline[] = {
    {"shape-infer", "infer every node's dtype and shape, and verify the graph",
     llmc_pass_shape_infer},
    {"fold-constants", "evaluate ops over weights at compile time (e.g. Gemma's 1 + w)",
     llmc_pass_fold_constants},
    {"fuse-horizontal", "merge matmuls that share an input (Q/K/V, gate/up) into one",
     llmc_pass_fuse_horizontal},
    {"fuse-epilogue", "fold bias, residual add and SiLU/GeLU-mul into the producing matmul",
     llmc_pass_fuse_epilogue},
    {"prune-logits", "compute the final rows only for the tokens whose logits are wanted",
     llmc_pass_prune_logits},
    {"partition", "split the graph into batchful and batchless (attention) regions",
     llmc_pass_partition},
    {NULL, NULL, NULL},
};

const llmc_pass_t *llmc_pass_find(const char *name) {
  for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++)
    if (!strcmp(p->name, name)) return p;
  return NULL;
}

static llmc_status_t dump(const llmc_ir_module_t *m, const char *dir, int index, const char *name) {
  char path[4096];
  snprintf(path, sizeof path, "%s/%02d-%s.ir", dir, index, name);
  FILE *f = fopen(path, "w");
  if (!f) return LLMC_ERROR(IO, "cannot write %s: %s", path, strerror(errno));
  llmc_ir_print(m, f);
  if (fclose(f) != 0) return LLMC_ERROR(IO, "cannot write %s: %s", path, strerror(errno));
  return LLMC_OK;
}

/* Runs pass p as the index-th of the pipeline, then cleans up, verifies
 * and dumps/prints as asked. */
static llmc_status_t run_one(llmc_ir_module_t *m, const llmc_pass_t *p, int index,
                             const llmc_pipeline_options_t *opts) {
  FILE *out = opts->print_to ? opts->print_to : stdout;
  LLMC_RETURN_IF_ERROR(p->run(m), "pass %s", p->name);
  llmc_ir_remove_dead(m);
  llmc_ir_toposort(m);
  LLMC_RETURN_IF_ERROR(llmc_ir_verify(m), "IR invalid after pass %s (an llmc bug)", p->name);
  if (opts->dump_dir) LLMC_RETURN_IF_ERROR(dump(m, opts->dump_dir, index, p->name), "--dump-ir");
  if (opts->print_after && (!strcmp(opts->print_after, p->name) || !strcmp(opts->print_after, "all"))) {
    fprintf(out, "; IR after %s\n", p->name);
    llmc_ir_print(m, out);
  }
  return LLMC_OK;
}

llmc_status_t llmc_pipeline_run(llmc_ir_module_t *m, const llmc_pipeline_options_t *opts) {
  if (opts->dump_dir) {
    if (mkdir(opts->dump_dir, 0777) != 0 && errno != EEXIST)
      return LLMC_ERROR(IO, "cannot create %s: %s", opts->dump_dir, strerror(errno));
    LLMC_RETURN_IF_ERROR(dump(m, opts->dump_dir, 0, "input"), "--dump-ir");
  }
  if (!opts->passes) {
    int index = 1;
    for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++) LLMC_PROPAGATE(run_one(m, p, index++, opts));
    return LLMC_OK;
  }
  int index = 1;
  for (const char *at = opts->passes; *at;) {
    size_t len = strcspn(at, ",");
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(len < sizeof name ? len : sizeof name - 1), at);
    const llmc_pass_t *p = llmc_pass_find(name);
    if (!p) return LLMC_ERROR(INVALID_ARGUMENT, "unknown pass \"%s\"", name);
    LLMC_PROPAGATE(run_one(m, p, index++, opts));
    at += len + (at[len] == ',');
  }
  return LLMC_OK;
}
