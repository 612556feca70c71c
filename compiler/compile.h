/* compile.h — the compiler driver: source → IR → passes → object → model.so. */
#ifndef LLMC_COMPILER_COMPILE_H
#define LLMC_COMPILER_COMPILE_H

#include <stdbool.h>

#include <cjson/cJSON.h>

#include "ir.h"
#include "support/status.h"

typedef struct {
  const char *source;      /* model.json or a Hugging Face folder */
  const char *output;      /* the .so to write */
  const char *target;      /* target name (target.h); NULL = the host's */
  const char *cpu;         /* LLVM CPU name; NULL = the host CPU */
  const char *quant;       /* quantize f32/f16/bf16 matrices to q8_0/q4_0/q4_K/q6_K; NULL = keep */
  const char *dump_ir_dir; /* write the IR after every pass (and the LLVM IR) here */
  const char *print_after; /* print the IR after this pass ("all": after each) */
  bool verbose;            /* report timings on stderr */
} llmc_compile_options_t;

/* Imports a Hugging Face folder or a .gguf file as a model.json document
 * whose weight-file paths are relative to path_base. */
llmc_status_t llmc_import(const char *source, const char *path_base, cJSON **out_doc);

/* Reads a source into IR: a model.json, a Hugging Face folder, or IR text
 * (a file ending in .ir, as llmc_ir_print writes it). */
llmc_status_t llmc_compile_load(const char *source, llmc_ir_module_t **out);

/* Compiles opts->source into opts->output. On failure nothing is left at
 * opts->output (an existing file there is kept as it was). */
llmc_status_t llmc_compile(const llmc_compile_options_t *opts);

#endif
