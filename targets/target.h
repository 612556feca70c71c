/* target.h — what the code generator needs to know about a target: its
 * LLVM triple, its embedded kernel library, and how to pick a CPU. One
 * entry per target in target.c; adding a target (aarch64, amdgcn, nvptx)
 * is an entry there plus its kernel folder. */
#ifndef LLMC_TARGETS_TARGET_H
#define LLMC_TARGETS_TARGET_H

#include <stddef.h>

typedef struct llmc_target {
  const char *name;   /* as given to --target, e.g. "x86_64" */
  const char *triple; /* LLVM target triple */
  const unsigned char *kernel_bc; /* the kernel library's bitcode */
  size_t kernel_bc_size;
  const char *baseline_cpu; /* used when --cpu is not given and the host is another target */
} llmc_target_t;

/* The target named name, or NULL. NULL name = the host's target. */
const llmc_target_t *llmc_target_find(const char *name);
/* Comma-separated names of the supported targets, for messages. */
const char *llmc_target_names(void);

#endif
