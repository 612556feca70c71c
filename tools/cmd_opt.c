/* cmd_opt.c — `llmc opt`: runs passes over a model and prints the IR.
 *
 * The IR-level tests (tests/ir/) use it the way LLVM's tests use `opt`: a
 * hand-written .ir input, one or more passes, and FileCheck over the output. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "commands.h"
#include "compile.h"
#include "pass.h"

static const char usage[] =
    "usage: llmc opt SRC [--passes P1,P2,...] [--print-after PASS|all] [--dump-ir DIR]\n"
    "\n"
    "Reads SRC (a .ir file, a model.json or a Hugging Face folder), runs the default\n"
    "pass pipeline or the passes listed with --passes, and prints the resulting IR\n"
    "on stdout. `llmc compile --help` lists the passes.\n";

int llmc_cmd_opt(int argc, char **argv) {
  static const struct option long_options[] = {
      {"passes", required_argument, NULL, 'p'}, {"print-after", required_argument, NULL, 'P'},
      {"dump-ir", required_argument, NULL, 'D'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  llmc_pipeline_options_t opts = {0};
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'p': opts.passes = optarg; break;
    case 'P': opts.print_after = optarg; break;
    case 'D': opts.dump_dir = optarg; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("opt", usage, opt, argv);
    }
  }
  if (optind != argc - 1) return llmc_cli_usage_error("opt", usage, "expected one SRC, got %d", argc - optind);
  llmc_ir_module_t *m = NULL;
  llmc_status_t s = llmc_compile_load(argv[optind], &m);
  if (!s) s = llmc_pipeline_run(m, &opts);
  if (!s) llmc_ir_print(m, stdout);
  llmc_ir_module_destroy(m);
  return s ? llmc_status_report(s, stderr) : 0;
}
