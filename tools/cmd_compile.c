/* cmd_compile.c — `llmc compile` and `llmc import`. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands.h"
#include "compile.h"
#include "import_hf.h"
#include "pass.h"
#include "support/file.h"

static void compile_usage(FILE *f) {
  fprintf(f,
          "usage: llmc compile SRC -o OUT.so [options]\n"
          "\n"
          "Compiles a model into a shared object that `llmc logits`, `llmc inspect` and\n"
          "`llmc invoke` load.\n"
          "\n"
          "  SRC                 a model.json (see docs/model-json.md) or a Hugging Face folder\n"
          "                      (config.json + *.safetensors)\n"
          "  -o OUT.so           the file to write (written whole or not at all)\n"
          "  --target T          code-generation target: x86_64 (default: this machine's)\n"
          "  --cpu C             LLVM CPU name, e.g. x86-64-v3, x86-64-v4, znver4, skylake-avx512\n"
          "                      (default: this machine's CPU and its exact features)\n"
          "  --dump-ir DIR       write the IR after every pass to DIR/NN-PASS.ir, and the\n"
          "                      optimised LLVM IR to DIR/99-llvm.ll\n"
          "  --print-after PASS  print the IR after PASS (or 'all') on stdout\n"
          "  -v, --verbose       report the time each phase took on stderr\n"
          "  -h, --help          show this help\n"
          "\n"
          "Passes, in order:\n");
  for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++) fprintf(f, "  %-18s %s\n", p->name, p->summary);
}

/* Takes the value of option argv[*i] (which needs one), or NULL. */
static const char *option_value(int argc, char **argv, int *i) {
  if (*i + 1 >= argc) {
    fprintf(stderr, "llmc: %s needs a value\n", argv[*i]);
    return NULL;
  }
  return argv[++*i];
}

int llmc_cmd_compile(int argc, char **argv) {
  llmc_compile_options_t opts = {0};
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char **dest = !strcmp(a, "-o")              ? &opts.output
                        : !strcmp(a, "--target")      ? &opts.target
                        : !strcmp(a, "--cpu")         ? &opts.cpu
                        : !strcmp(a, "--dump-ir")     ? &opts.dump_ir_dir
                        : !strcmp(a, "--print-after") ? &opts.print_after
                                                      : NULL;
    if (dest) {
      if (!(*dest = option_value(argc, argv, &i))) return 2;
    } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
      compile_usage(stdout);
      return 0;
    } else if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) {
      opts.verbose = true;
    } else if (a[0] == '-') {
      fprintf(stderr, "llmc compile: unknown option %s\n", a);
      compile_usage(stderr);
      return 2;
    } else if (!opts.source) {
      opts.source = a;
    } else {
      fprintf(stderr, "llmc compile: unexpected argument %s\n", a);
      return 2;
    }
  }
  if (!opts.source || !opts.output) {
    compile_usage(stderr);
    return 2;
  }
  llmc_status_t s = llmc_compile(&opts);
  return s ? llmc_status_report(s, stderr) : 0;
}

static void import_usage(FILE *f) {
  fprintf(f,
          "usage: llmc import SRC -o model.json\n"
          "\n"
          "Writes the graph description of a Hugging Face folder (config.json +\n"
          "*.safetensors) as model.json (docs/model-json.md). Weight files are referenced\n"
          "relative to the output's folder, not copied.\n");
}

int llmc_cmd_import(int argc, char **argv) {
  const char *source = NULL, *output = NULL;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "-o")) {
      if (!(output = option_value(argc, argv, &i))) return 2;
    } else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
      import_usage(stdout);
      return 0;
    } else if (argv[i][0] != '-' && !source) {
      source = argv[i];
    } else {
      fprintf(stderr, "llmc import: unexpected argument %s\n", argv[i]);
      return 2;
    }
  }
  if (!source || !output) {
    import_usage(stderr);
    return 2;
  }
  char *dir = llmc_path_dirname(output);
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import_hf(source, dir, &doc);
  free(dir);
  if (!s) s = llmc_import_write(doc, output);
  cJSON_Delete(doc);
  return s ? llmc_status_report(s, stderr) : 0;
}
