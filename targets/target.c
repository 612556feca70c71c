/* target.c — the table of code-generation targets. */
#include "target.h"

#include <string.h>

/* Defined by targets/cpu/kernels_embed.S. */
extern const unsigned char llmc_kernels_x86_64_bc[];
extern const unsigned long long llmc_kernels_x86_64_bc_size;

static llmc_target_t targets[] = {
    {"x86_64", "x86_64-unknown-linux-gnu", llmc_kernels_x86_64_bc, 0, "x86-64-v3"},
};

const llmc_target_t *llmc_target_find(const char *name) {
  targets[0].kernel_bc_size = (size_t)llmc_kernels_x86_64_bc_size;
  if (!name) {
#if defined(__x86_64__)
    return &targets[0];
#else
    return NULL;
#endif
  }
  for (size_t i = 0; i < sizeof targets / sizeof *targets; i++)
    if (!strcmp(targets[i].name, name) || !strcmp(targets[i].triple, name)) return &targets[i];
  return NULL;
}

const char *llmc_target_names(void) { return "x86_64"; }
