/* elf_section.h — appending a non-loaded section to a linked ELF file.
 *
 * The weights of a model go into the .so this way: after ld.lld has linked
 * the code, the section's bytes are written at the end of the file (at an
 * offset aligned for mmap), followed by a new section-header table that
 * names it. The section has no SHF_ALLOC flag, so dlopen never reads it;
 * the runtime maps it itself (runtime/loader.c). */
#ifndef LLMC_COMPILER_ELF_SECTION_H
#define LLMC_COMPILER_ELF_SECTION_H

#include <stdint.h>
#include <stdio.h>

#include "support/status.h"

/* Appends section `name` of `size` bytes to the ELF64 file at path, at a
 * file offset that is a multiple of `align`. The bytes come from
 * write_fn(ctx, f), called with f positioned at the section's start; it
 * must write exactly `size` bytes. */
llmc_status_t llmc_elf_append_section(const char *path, const char *name, uint64_t size, uint64_t align,
                                      llmc_status_t (*write_fn)(void *ctx, FILE *f), void *ctx);

#endif
