/* cmd_opt.c — `llmc opt`: runs passes over a model and prints the IR.
 *
 * The IR-level tests (tests/ir/) use it the way LLVM's tests use `opt`: a
 * hand-written .ir input, one or more passes, and FileCheck over the output. */
#include <stdio.h>
#include <string.h>

#include "commands.h"
#include "compile.h"
#include "pass.h"

static void usage(FILE *f) {
  fprintf(f,
          "usage: llmc opt SRC [--passes P1,P2,...] [--print-after PASS|all] [--dump-ir DIR]\n"
          "\n"
          "Reads SRC (a .ir file, a model.json or a Hugging Face folder), runs the default\n"
          "pass pipeline or the passes listed with --passes, and prints the resulting IR\n"
          "on stdout. Passes: ");
  for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++) fprintf(f, "%s%s", p->name, p[1].name ? ", " : "\n");
}

int llmc_cmd_opt(int argc, char **argv) {
  const char *source = NULL;
  llmc_pipeline_options_t opts = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dest = !strcmp(a, "--passes")        ? &opts.passes
                        : !strcmp(a, "--print-after") ? &opts.print_after
                        : !strcmp(a, "--dump-ir")     ? &opts.dump_dir
                                                      : NULL;
    if (dest) {
      if (i + 1 >= argc) {
        fprintf(stderr, "llmc opt: %s needs a value\n", a);
        return 2;
      }
      *dest = argv[++i];
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      usage(stdout);
      return 0;
    } else if (a[0] != '-' && !source) {
      source = a;
    } else {
      fprintf(stderr, "llmc opt: unexpected argument %s\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (!source) {
    usage(stderr);
    return 2;
  }
  llmc_ir_module_t *m = NULL;
  llmc_status_t s = llmc_compile_load(source, &m);
  if (!s) s = llmc_pipeline_run(m, &opts);
  if (!s) llmc_ir_print(m, stdout);
  llmc_ir_module_destroy(m);
  return s ? llmc_status_report(s, stderr) : 0;
}
