/* elf_section.c — see elf_section.h.
 *
 * File layout after the append:
 *   [original file up to its end][zero padding][section bytes]
 *   [old section-name table + the new name][section headers + 1]
 * The old section-header table and name table stay where they were, unused;
 * e_shoff and the name table's header point at the new copies. */
#include "elf_section.h"

#include <elf.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static llmc_status_t pad_to(FILE *f, uint64_t align) {
  long pos = ftell(f);
  if (pos < 0) return LLMC_ERROR(IO, "ftell: %s", strerror(errno));
  for (uint64_t p = (uint64_t)pos; p % align; p++)
    if (fputc(0, f) == EOF) return LLMC_ERROR(IO, "write: %s", strerror(errno));
  return LLMC_OK;
}

static llmc_status_t append(FILE *f, const char *path, const char *name, uint64_t size, uint64_t align,
                            llmc_status_t (*write_fn)(void *ctx, FILE *f), void *ctx,
                            Elf64_Shdr **shdrs, char **names) {
  Elf64_Ehdr eh;
  if (fread(&eh, sizeof eh, 1, f) != 1 || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
      eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_shentsize != sizeof(Elf64_Shdr) ||
      eh.e_shstrndx == SHN_UNDEF || eh.e_shstrndx >= eh.e_shnum)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: not an ELF64 file with section headers", path);
  *shdrs = calloc((size_t)eh.e_shnum + 1, sizeof **shdrs);
  if (!*shdrs) return LLMC_ERROR(OUT_OF_MEMORY, "%s", path);
  if (fseeko(f, (off_t)eh.e_shoff, SEEK_SET) || fread(*shdrs, sizeof **shdrs, eh.e_shnum, f) != eh.e_shnum)
    return LLMC_ERROR(IO, "%s: cannot read section headers", path);
  Elf64_Shdr *strtab = &(*shdrs)[eh.e_shstrndx];
  size_t name_len = strlen(name) + 1;
  *names = malloc(strtab->sh_size + name_len);
  if (!*names) return LLMC_ERROR(OUT_OF_MEMORY, "%s", path);
  if (fseeko(f, (off_t)strtab->sh_offset, SEEK_SET) || fread(*names, 1, strtab->sh_size, f) != strtab->sh_size)
    return LLMC_ERROR(IO, "%s: cannot read section names", path);
  memcpy(*names + strtab->sh_size, name, name_len);

  if (fseeko(f, 0, SEEK_END)) return LLMC_ERROR(IO, "%s: seek: %s", path, strerror(errno));
  LLMC_RETURN_IF_ERROR(pad_to(f, align), "%s", path);
  Elf64_Shdr *sec = &(*shdrs)[eh.e_shnum];
  memset(sec, 0, sizeof *sec);
  sec->sh_name = (Elf64_Word)strtab->sh_size;
  sec->sh_type = SHT_PROGBITS;
  sec->sh_flags = 0; /* not SHF_ALLOC: never loaded by dlopen */
  sec->sh_offset = (Elf64_Off)ftello(f);
  sec->sh_size = size;
  sec->sh_addralign = align;
  LLMC_RETURN_IF_ERROR(write_fn(ctx, f), "%s: writing section %s", path, name);
  if ((uint64_t)ftello(f) != sec->sh_offset + size)
    return LLMC_ERROR(INTERNAL, "%s: section %s: wrote %lld bytes, planned %llu", path, name,
                      (long long)(ftello(f) - (off_t)sec->sh_offset), (unsigned long long)size);

  strtab->sh_offset = (Elf64_Off)ftello(f);
  strtab->sh_size += name_len;
  if (fwrite(*names, 1, strtab->sh_size, f) != strtab->sh_size)
    return LLMC_ERROR(IO, "%s: write: %s", path, strerror(errno));
  LLMC_RETURN_IF_ERROR(pad_to(f, 8), "%s", path);
  eh.e_shoff = (Elf64_Off)ftello(f);
  eh.e_shnum++;
  if (fwrite(*shdrs, sizeof **shdrs, eh.e_shnum, f) != eh.e_shnum || fseeko(f, 0, SEEK_SET) ||
      fwrite(&eh, sizeof eh, 1, f) != 1)
    return LLMC_ERROR(IO, "%s: write: %s", path, strerror(errno));
  return LLMC_OK;
}

llmc_status_t llmc_elf_append_section(const char *path, const char *name, uint64_t size, uint64_t align,
                                      llmc_status_t (*write_fn)(void *ctx, FILE *f), void *ctx) {
  FILE *f = fopen(path, "r+b");
  if (!f) return LLMC_ERROR(IO, "cannot open %s: %s", path, strerror(errno));
  Elf64_Shdr *shdrs = NULL;
  char *names = NULL;
  llmc_status_t s = append(f, path, name, size, align, write_fn, ctx, &shdrs, &names);
  free(shdrs);
  free(names);
  if (fclose(f) != 0 && !s) s = LLMC_ERROR(IO, "closing %s: %s", path, strerror(errno));
  return s;
}
