/* main.c — the llmc tool: `llmc <command> [args]` dispatches to one
 * subcommand (tools/commands.h). The compiler's commands exist only in
 * builds with LLMC_WITH_COMPILER; a runtime-only llmc still loads,
 * inspects and runs compiled models. */
#include <stdio.h>
#include <string.h>

#include "commands.h"

#ifndef LLMC_VERSION
#define LLMC_VERSION "unknown"
#endif

typedef struct {
  const char *name;
  int (*run)(int argc, char **argv);
  const char *summary; /* one line for `llmc --help` */
} command_t;

static const command_t commands[] = {
#ifdef LLMC_WITH_COMPILER
    {"compile", llmc_cmd_compile, "compile model.json, a HF folder or a .gguf to a model.so"},
    {"import", llmc_cmd_import, "write model.json from a HF folder or a .gguf"},
    {"opt", llmc_cmd_opt, "run compiler passes over a model and print the IR"},
#endif
    {"run", llmc_cmd_run, "generate a completion of a prompt"},
    {"serve", llmc_cmd_serve, "serve a model.so over an OpenAI-compatible HTTP API"},
    {"perplexity", llmc_cmd_perplexity, "perplexity over a text file, scored as llama.cpp does"},
    {"logits", llmc_cmd_logits, "write the logits after each of the given tokens"},
    {"inspect", llmc_cmd_inspect, "print a model.so's ABI, target, entry points and weights"},
    {"invoke", llmc_cmd_invoke, "call one entry point of a model.so (debugging)"},
    {"render-template", llmc_cmd_render_template, "render a chat template with a JSON context"},
    {"bench", llmc_cmd_bench, "measure prompt and generation speed of a model.so"},
    {"bench-serve", llmc_cmd_bench_serve, "load-test an OpenAI-compatible server, as vLLM's benchmark_serving"},
    {"tokenize", llmc_cmd_tokenize, "print the token ids of a text (tokenizer.json, .gguf or .so)"},
    {"quantize", llmc_cmd_quantize, "quantize a .gguf's weights to q8_0, q4_0, q4_K or q6_K"},
};

static void print_usage(FILE *f) {
  fprintf(f,
          "usage: llmc <command> [args]   (llmc <command> --help for its options)\n\n"
          "commands:\n");
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    fprintf(f, "  %-16s %s\n", commands[i].name, commands[i].summary);
  fprintf(f, "\n  %-16s %s\n  %-16s %s\n", "--help", "this text", "--version", "print the version");
}

int main(int argc, char **argv) {
  if (argc < 2) {
    print_usage(stderr);
    return 2;
  }
  const char *name = argv[1];
  if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
    print_usage(stdout);
    return 0;
  }
  if (strcmp(name, "--version") == 0) {
    printf("llmc %s\n", LLMC_VERSION);
    return 0;
  }
  for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
    if (strcmp(name, commands[i].name) == 0) return commands[i].run(argc - 1, argv + 1);
  fprintf(stderr, "llmc: unknown command '%s'\n\n", name);
  print_usage(stderr);
  return 2;
}
