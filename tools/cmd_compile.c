/* cmd_compile.c — `llmc compile` and `llmc import`. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "compile.h"
#include "import_hf.h"
#include "pass.h"
#include "support/file.h"

static const char compile_usage[] =
    "usage: llmc compile SRC -o OUT.so [options]\n"
    "\n"
    "Compiles a model into a shared object that `llmc logits`, `llmc bench`,\n"
    "`llmc inspect` and `llmc invoke` load.\n"
    "\n"
    "  SRC                 a model.json (see docs/model-json.md), a Hugging Face folder\n"
    "                      (config.json + *.safetensors) or a GGUF file (docs/gguf.md)\n"
    "  -o OUT.so           the file to write (written whole or not at all)\n"
    "  --target T          code-generation target: x86_64 (default: this machine's)\n"
    "  --cpu C             LLVM CPU name, e.g. x86-64-v3, x86-64-v4, znver4, sapphirerapids\n"
    "                      (default: this machine's CPU and its exact features)\n"
    "  --quant Q           store the f32/f16/bf16 matrices as Q: q8_0, q4_0, q4_K or q6_K\n"
    "                      (ggml's block layouts and rounding; a matrix whose rows are not\n"
    "                      whole blocks stays f32). Quantized GGUF tensors are kept as they are\n"
    "  --dump-ir DIR       write the IR after every pass to DIR/NN-PASS.ir, and the\n"
    "                      optimised LLVM IR to DIR/99-llvm.ll\n"
    "  --print-after PASS  print the IR after PASS (or 'all') on stdout\n"
    "  -v, --verbose       report the time each phase took on stderr\n"
    "  -h, --help          show this help\n";

static void print_passes(FILE *f) {
  fprintf(f, "\nPasses, in order:\n");
  for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++) fprintf(f, "  %-18s %s\n", p->name, p->summary);
}

int llmc_cmd_compile(int argc, char **argv) {
  static const struct option long_options[] = {
      {"target", required_argument, NULL, 'T'},      {"cpu", required_argument, NULL, 'C'},
      {"dump-ir", required_argument, NULL, 'D'},     {"print-after", required_argument, NULL, 'P'},
      {"verbose", no_argument, NULL, 'v'},           {"help", no_argument, NULL, 'h'},
      {"quant", required_argument, NULL, 'Q'},
      {NULL, 0, NULL, 0},
  };
  llmc_compile_options_t opts = {0};
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":o:vh", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'o': opts.output = optarg; break;
    case 'T': opts.target = optarg; break;
    case 'C': opts.cpu = optarg; break;
    case 'Q': opts.quant = optarg; break;
    case 'D': opts.dump_ir_dir = optarg; break;
    case 'P': opts.print_after = optarg; break;
    case 'v': opts.verbose = true; break;
    case 'h':
      fputs(compile_usage, stdout);
      print_passes(stdout);
      return 0;
    default: return llmc_cli_bad_option("compile", compile_usage, opt, argv);
    }
  }
  if (optind != argc - 1) return llmc_cli_usage_error("compile", compile_usage, "expected one SRC, got %d", argc - optind);
  if (!opts.output) return llmc_cli_usage_error("compile", compile_usage, "-o OUT.so is required");
  opts.source = argv[optind];
  llmc_status_t s = llmc_compile(&opts);
  return s ? llmc_status_report(s, stderr) : 0;
}

static const char import_usage[] =
    "usage: llmc import SRC -o model.json\n"
    "\n"
    "Writes the graph description of a Hugging Face folder (config.json +\n"
    "*.safetensors) or of a GGUF file as model.json (docs/model-json.md). Weight\n"
    "files are referenced relative to the output's folder, not copied.\n";

int llmc_cmd_import(int argc, char **argv) {
  static const struct option long_options[] = {{"help", no_argument, NULL, 'h'}, {NULL, 0, NULL, 0}};
  const char *output = NULL;
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":o:h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'o': output = optarg; break;
    case 'h': fputs(import_usage, stdout); return 0;
    default: return llmc_cli_bad_option("import", import_usage, opt, argv);
    }
  }
  if (optind != argc - 1) return llmc_cli_usage_error("import", import_usage, "expected one SRC, got %d", argc - optind);
  if (!output) return llmc_cli_usage_error("import", import_usage, "-o model.json is required");
  char *dir = llmc_path_dirname(output);
  cJSON *doc = NULL;
  llmc_status_t s = llmc_import(argv[optind], dir, &doc);
  free(dir);
  if (!s) s = llmc_import_write(doc, output);
  cJSON_Delete(doc);
  return s ? llmc_status_report(s, stderr) : 0;
}
