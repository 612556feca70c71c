/* loader.c — loads a model.so: checks the file, the ABI record and the
 * metadata, and brings the weights into memory.
 *
 * The order matters. The ELF headers are parsed by hand first (open, pread,
 * <elf.h>) so that a file that is not a model for this machine is refused
 * with a clear message before dlopen runs any of its code, and so that the
 * .llmc_weights section, which no loaded segment covers, can be found at
 * all. Then dlopen, and the ABI record's magic, version and size are
 * checked before any other field is read. Last, the weights are either
 * mapped from the file (MMAP: start-up in microseconds, page cache shared
 * between processes) or read into anonymous memory advised for 2 MiB pages
 * (COPY: faster to stream through on machines where 4 KiB pages are slow,
 * e.g. virtual machines with shadow page tables); docs/model-so.md says
 * how the default is chosen. */
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "llmc/runtime.h"
#include "support/cpu_features.h"

#if defined(__x86_64__)
#define HOST_ELF_MACHINE EM_X86_64
#elif defined(__aarch64__)
#define HOST_ELF_MACHINE EM_AARCH64
#else
#error "llmc's loader knows x86-64 and aarch64 hosts only"
#endif

#define HUGE_PAGE_BYTES ((size_t)2 << 20)
#define COPY_THRESHOLD_BYTES ((uint64_t)64 << 20) /* AUTO picks COPY from this size up */

/* Where the weights section lies in the file. */
typedef struct {
  uint64_t offset;
  uint64_t size;
} weights_section_t;

/* pread of exactly n bytes at offset (short reads retried). */
static llmc_status_t read_exact(int fd, void *buf, size_t n, uint64_t offset) {
  uint8_t *p = buf;
  while (n > 0) {
    ssize_t got = pread(fd, p, n, (off_t)offset);
    if (got < 0 && errno == EINTR) continue;
    if (got < 0) return LLMC_ERROR(IO, "read failed: %s", strerror(errno));
    if (got == 0) return LLMC_ERROR(INVALID_ARGUMENT, "file truncated");
    p += got;
    n -= (size_t)got;
    offset += (uint64_t)got;
  }
  return LLMC_OK;
}

/* True if [offset, offset + size) lies within a file of file_size bytes. */
static int range_in_file(uint64_t offset, uint64_t size, uint64_t file_size) {
  return offset <= file_size && size <= file_size - offset;
}

/* Checks the ELF header: a 64-bit little-endian shared object for this
 * machine. */
static llmc_status_t check_elf_header(const Elf64_Ehdr *eh) {
  if (memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "not an ELF file");
  if (eh->e_ident[EI_CLASS] != ELFCLASS64)
    return LLMC_ERROR(INVALID_ARGUMENT, "not a 64-bit ELF file");
  if (eh->e_ident[EI_DATA] != ELFDATA2LSB)
    return LLMC_ERROR(INVALID_ARGUMENT, "not a little-endian ELF file");
  if (eh->e_machine != HOST_ELF_MACHINE)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "built for ELF machine %u, this host is machine %u (wrong --target?)",
                      (unsigned)eh->e_machine, (unsigned)HOST_ELF_MACHINE);
  if (eh->e_type != ET_DYN) return LLMC_ERROR(INVALID_ARGUMENT, "not a shared object");
  if (eh->e_shoff == 0) return LLMC_ERROR(INVALID_ARGUMENT, "no section table");
  if (eh->e_shentsize != sizeof(Elf64_Shdr))
    return LLMC_ERROR(INVALID_ARGUMENT, "section header size %u, expected %zu",
                      (unsigned)eh->e_shentsize, sizeof(Elf64_Shdr));
  return LLMC_OK;
}

/* Finds the .llmc_weights section in the section table of sections
 * (shdrs, [n]) whose names are in strtab ([strtab_size] bytes). */
static llmc_status_t find_weights_section(const Elf64_Shdr *shdrs, uint64_t n, const char *strtab,
                                          uint64_t strtab_size, uint64_t file_size,
                                          weights_section_t *out) {
  const size_t want = sizeof LLMC_WEIGHTS_SECTION; /* with its NUL */
  for (uint64_t i = 0; i < n; i++) {
    const Elf64_Shdr *sh = &shdrs[i];
    if (sh->sh_name >= strtab_size || strtab_size - sh->sh_name < want) continue;
    if (memcmp(strtab + sh->sh_name, LLMC_WEIGHTS_SECTION, want) != 0) continue;
    if (sh->sh_flags & SHF_ALLOC)
      return LLMC_ERROR(INVALID_ARGUMENT, "section %s is loaded (SHF_ALLOC); it must not be",
                        LLMC_WEIGHTS_SECTION);
    uint64_t size = sh->sh_type == SHT_NOBITS ? 0 : sh->sh_size;
    if (!range_in_file(sh->sh_offset, size, file_size))
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "section %s (offset %llu, %llu bytes) runs past the end of the file "
                        "(%llu bytes): file truncated?",
                        LLMC_WEIGHTS_SECTION, (unsigned long long)sh->sh_offset,
                        (unsigned long long)size, (unsigned long long)file_size);
    if (size > 0 && sh->sh_offset % LLMC_WEIGHTS_FILE_ALIGN != 0)
      return LLMC_ERROR(INVALID_ARGUMENT, "section %s at file offset %llu, not a multiple of %u",
                        LLMC_WEIGHTS_SECTION, (unsigned long long)sh->sh_offset,
                        LLMC_WEIGHTS_FILE_ALIGN);
    out->offset = sh->sh_offset;
    out->size = size;
    return LLMC_OK;
  }
  return LLMC_ERROR(INVALID_ARGUMENT, "no %s section: not an llmc model", LLMC_WEIGHTS_SECTION);
}

/* Parses the ELF headers of the open file fd (file_size bytes) and locates
 * the weights section. Handles extended section numbering (e_shnum == 0,
 * e_shstrndx == SHN_XINDEX). */
static llmc_status_t locate_weights(int fd, uint64_t file_size, weights_section_t *out) {
  Elf64_Ehdr eh;
  if (file_size < sizeof eh)
    return LLMC_ERROR(INVALID_ARGUMENT, "%llu bytes, too short for an ELF file",
                      (unsigned long long)file_size);
  llmc_status_t st = read_exact(fd, &eh, sizeof eh, 0);
  if (!st) st = check_elf_header(&eh);
  if (st) return st;

  Elf64_Shdr first;
  if (!range_in_file(eh.e_shoff, sizeof first, file_size))
    return LLMC_ERROR(INVALID_ARGUMENT, "section table past the end of the file");
  if ((st = read_exact(fd, &first, sizeof first, eh.e_shoff))) return st;
  uint64_t n = eh.e_shnum ? eh.e_shnum : first.sh_size;
  uint64_t strndx = eh.e_shstrndx == SHN_XINDEX ? first.sh_link : eh.e_shstrndx;
  if (n == 0 || n > file_size / sizeof(Elf64_Shdr) ||
      !range_in_file(eh.e_shoff, n * sizeof(Elf64_Shdr), file_size))
    return LLMC_ERROR(INVALID_ARGUMENT, "section table past the end of the file");
  if (strndx >= n)
    return LLMC_ERROR(INVALID_ARGUMENT, "bad section name table index %llu",
                      (unsigned long long)strndx);

  Elf64_Shdr *shdrs = malloc(n * sizeof *shdrs);
  if (!shdrs) return LLMC_ERROR(OUT_OF_MEMORY, "section table");
  st = read_exact(fd, shdrs, n * sizeof *shdrs, eh.e_shoff);
  char *strtab = NULL;
  uint64_t strtab_size = st ? 0 : shdrs[strndx].sh_size;
  if (!st && !range_in_file(shdrs[strndx].sh_offset, strtab_size, file_size))
    st = LLMC_ERROR(INVALID_ARGUMENT, "section name table past the end of the file");
  if (!st && !(strtab = malloc(strtab_size + 1)))
    st = LLMC_ERROR(OUT_OF_MEMORY, "section name table");
  if (!st) st = read_exact(fd, strtab, strtab_size, shdrs[strndx].sh_offset);
  if (!st) st = find_weights_section(shdrs, n, strtab, strtab_size, file_size, out);
  free(strtab);
  free(shdrs);
  return st;
}

/* The ABI record's size as the ELF symbol table records it, or 0 if the
 * dynamic linker cannot say. */
static size_t symbol_size(const void *addr) {
  Dl_info info;
  const ElfW(Sym) *sym = NULL;
  if (!dladdr1(addr, &info, (void **)&sym, RTLD_DL_SYMENT) || !sym) return 0;
  return (size_t)sym->st_size;
}

/* Checks the `llmc_abi` record: magic, version and size first, then the
 * fields the runtime relies on. */
static llmc_status_t check_abi(const llmc_abi_record_t *abi, uint64_t section_bytes) {
  size_t sym_bytes = symbol_size(abi);
  const size_t header_bytes = 3 * sizeof(uint32_t); /* magic, abi_version, record_size */
  if (sym_bytes != 0 && sym_bytes < header_bytes)
    return LLMC_ERROR(ABI_MISMATCH, "symbol %s is %zu bytes, too small for an ABI record",
                      LLMC_ABI_SYMBOL, sym_bytes);
  if (abi->magic != LLMC_ABI_MAGIC)
    return LLMC_ERROR(ABI_MISMATCH, "%s has magic 0x%08x, expected 0x%08x: not an llmc model",
                      LLMC_ABI_SYMBOL, (unsigned)abi->magic, LLMC_ABI_MAGIC);
  if (abi->abi_version != LLMC_ABI_VERSION)
    return LLMC_ERROR(ABI_MISMATCH,
                      "model ABI version %u, this runtime speaks ABI version %u: recompile "
                      "the model with a matching llmc",
                      (unsigned)abi->abi_version, LLMC_ABI_VERSION);
  if (abi->record_size != sizeof *abi || (sym_bytes != 0 && sym_bytes < sizeof *abi))
    return LLMC_ERROR(ABI_MISMATCH, "ABI record of %u bytes, expected %zu",
                      (unsigned)abi->record_size, sizeof *abi);

  if (!abi->metadata_json || !abi->step || !abi->scratch_bytes)
    return LLMC_ERROR(INVALID_ARGUMENT, "ABI record lacks metadata, step or scratch_bytes");
  if (abi->vocab_size <= 0 || abi->max_context <= 0 || abi->n_layers < 0 || abi->kv_dim < 0)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "ABI record has vocab_size %d, max_context %d, n_layers %d, kv_dim %d",
                      abi->vocab_size, abi->max_context, abi->n_layers, abi->kv_dim);
  if (abi->weights_bytes != section_bytes)
    return LLMC_ERROR(INVALID_ARGUMENT, "ABI record says %llu weight bytes, section %s has %llu",
                      (unsigned long long)abi->weights_bytes, LLMC_WEIGHTS_SECTION,
                      (unsigned long long)section_bytes);
  return LLMC_OK;
}

/* Parses the metadata JSON and checks its format tag. */
static llmc_status_t parse_metadata(const char *json, cJSON **out) {
  cJSON *meta = cJSON_Parse(json);
  if (!meta) return LLMC_ERROR(INVALID_ARGUMENT, "metadata is not valid JSON");
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(meta, "format");
  if (!cJSON_IsObject(meta) || !cJSON_IsString(format) ||
      strcmp(format->valuestring, "llmc-model-so") != 0) {
    cJSON_Delete(meta);
    return LLMC_ERROR(INVALID_ARGUMENT, "metadata \"format\" is not \"llmc-model-so\"");
  }
  *out = meta;
  return LLMC_OK;
}

/* Refuses a model whose code uses CPU features this CPU lacks (it would
 * die of SIGILL at its first step). */
static llmc_status_t check_cpu(const cJSON *meta) {
  const cJSON *target = cJSON_GetObjectItemCaseSensitive(meta, "target");
  const cJSON *features = cJSON_GetObjectItemCaseSensitive(target, "features");
  const cJSON *cpu = cJSON_GetObjectItemCaseSensitive(target, "cpu");
  char missing[64];
  if (cJSON_IsString(features) && llmc_cpu_missing_feature(features->valuestring, missing, sizeof missing))
    return LLMC_ERROR(UNIMPLEMENTED,
                      "compiled for a CPU with %s (%s), which this CPU lacks: compile the model on this "
                      "machine, or for a CPU it can run (e.g. --cpu x86-64-v3)",
                      missing, cJSON_IsString(cpu) ? cpu->valuestring : "?");
  return LLMC_OK;
}

/* Resolves AUTO: $LLMC_WEIGHTS, else by size. */
static llmc_status_t choose_mode(llmc_weights_mode_t requested, uint64_t bytes,
                                 llmc_weights_mode_t *out) {
  if (requested != LLMC_WEIGHTS_AUTO) {
    if (requested != LLMC_WEIGHTS_MMAP && requested != LLMC_WEIGHTS_COPY)
      return LLMC_ERROR(INVALID_ARGUMENT, "unknown weights mode %d", (int)requested);
    *out = requested;
    return LLMC_OK;
  }
  const char *env = getenv("LLMC_WEIGHTS");
  if (env && *env) {
    if (strcmp(env, "mmap") == 0)
      *out = LLMC_WEIGHTS_MMAP;
    else if (strcmp(env, "copy") == 0)
      *out = LLMC_WEIGHTS_COPY;
    else
      return LLMC_ERROR(INVALID_ARGUMENT, "LLMC_WEIGHTS=%s: expected mmap or copy", env);
    return LLMC_OK;
  }
  *out = bytes >= COPY_THRESHOLD_BYTES ? LLMC_WEIGHTS_COPY : LLMC_WEIGHTS_MMAP;
  return LLMC_OK;
}

/* Anonymous memory of `bytes` (a multiple of 2 MiB) starting on a 2 MiB
 * boundary, so that transparent huge pages can back all of it. */
static void *map_huge_aligned(size_t bytes) {
  size_t padded = bytes + HUGE_PAGE_BYTES;
  uint8_t *raw = mmap(NULL, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return NULL;
  uintptr_t start = ((uintptr_t)raw + HUGE_PAGE_BYTES - 1) & ~(uintptr_t)(HUGE_PAGE_BYTES - 1);
  size_t head = start - (uintptr_t)raw;
  if (head) munmap(raw, head);
  if (padded - head > bytes) munmap((uint8_t *)start + bytes, padded - head - bytes);
  return (void *)start;
}

/* Brings the section into memory in model->weights_mode. */
static llmc_status_t map_weights(llmc_model_t *model, int fd, const weights_section_t *sec) {
  if (sec->size == 0) return LLMC_OK;
  if (sec->size > SIZE_MAX - HUGE_PAGE_BYTES)
    return LLMC_ERROR(OUT_OF_MEMORY, "%llu bytes of weights", (unsigned long long)sec->size);
  size_t size = (size_t)sec->size;
  if (model->weights_mode == LLMC_WEIGHTS_MMAP) {
    void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, (off_t)sec->offset);
    if (p == MAP_FAILED) return LLMC_ERROR(IO, "mmap of the weights: %s", strerror(errno));
    model->weights_map = p;
    model->weights_map_bytes = size;
  } else {
    size_t rounded = (size + HUGE_PAGE_BYTES - 1) & ~(HUGE_PAGE_BYTES - 1);
    void *p = map_huge_aligned(rounded);
    if (!p) return LLMC_ERROR(OUT_OF_MEMORY, "%zu bytes for the weights", rounded);
    model->weights_map = p;
    model->weights_map_bytes = rounded;
    madvise(p, rounded, MADV_HUGEPAGE); /* advice only: no THP is not an error */
    LLMC_RETURN_IF_ERROR(read_exact(fd, p, size, sec->offset), "reading the weights");
    mprotect(p, rounded, PROT_READ);
    posix_fadvise(fd, (off_t)sec->offset, (off_t)size, POSIX_FADV_DONTNEED);
  }
  model->weights = model->weights_map;
  return LLMC_OK;
}

/* dlopen searches the library path for names without a slash; a model is
 * always a file, so make the path explicit. */
static char *explicit_path(const char *path) {
  if (strchr(path, '/')) return strdup(path);
  size_t n = strlen(path) + 3;
  char *p = malloc(n);
  if (p) snprintf(p, n, "./%s", path);
  return p;
}

/* The body of llmc_model_load once model and fd exist; the caller cleans
 * up on failure. */
static llmc_status_t load_into(llmc_model_t *model, int fd, const llmc_model_options_t *options) {
  struct stat sb;
  if (fstat(fd, &sb) != 0) return LLMC_ERROR(IO, "%s", strerror(errno));
  if (!S_ISREG(sb.st_mode)) return LLMC_ERROR(INVALID_ARGUMENT, "not a regular file");
  weights_section_t sec = {0};
  llmc_status_t st = locate_weights(fd, (uint64_t)sb.st_size, &sec);
  if (st) return st;

  model->dl_handle = dlopen(model->path, RTLD_NOW | RTLD_LOCAL);
  if (!model->dl_handle) {
    const char *why = dlerror();
    return LLMC_ERROR(INVALID_ARGUMENT, "dlopen failed: %s", why ? why : "unknown");
  }
  const llmc_abi_record_t *abi = dlsym(model->dl_handle, LLMC_ABI_SYMBOL);
  if (!abi) return LLMC_ERROR(INVALID_ARGUMENT, "no %s symbol: not an llmc model", LLMC_ABI_SYMBOL);
  if ((st = check_abi(abi, sec.size))) return st;
  model->abi = abi;
  model->weights_bytes = sec.size;
  if ((st = parse_metadata(abi->metadata_json, &model->metadata))) return st;
  if ((st = check_cpu(model->metadata))) return st;
  llmc_weights_mode_t mode = options ? options->weights_mode : LLMC_WEIGHTS_AUTO;
  if ((st = choose_mode(mode, sec.size, &model->weights_mode))) return st;
  return map_weights(model, fd, &sec);
}

llmc_status_t llmc_model_load(const char *path, const llmc_model_options_t *options,
                              llmc_model_t **out_model) {
  *out_model = NULL;
  llmc_model_t *model = calloc(1, sizeof *model);
  if (!model || !(model->path = explicit_path(path))) {
    free(model);
    return LLMC_ERROR(OUT_OF_MEMORY, "loading %s", path);
  }
  int fd = open(model->path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    llmc_model_destroy(model);
    return llmc_status_make(err == ENOENT ? LLMC_STATUS_NOT_FOUND : LLMC_STATUS_IO, __FILE__,
                            __LINE__, "%s: cannot open: %s", path, strerror(err));
  }
  llmc_status_t st = load_into(model, fd, options);
  close(fd);
  if (st) {
    llmc_model_destroy(model);
    return llmc_status_annotate(st, "%s", path);
  }
  *out_model = model;
  return LLMC_OK;
}

void llmc_model_destroy(llmc_model_t *model) {
  if (!model) return;
  if (model->weights_map) munmap(model->weights_map, model->weights_map_bytes);
  cJSON_Delete(model->metadata);
  if (model->dl_handle) dlclose(model->dl_handle);
  free(model->path);
  free(model);
}

void *llmc_model_symbol_lookup(const llmc_model_t *model, const char *name) {
  return dlsym(model->dl_handle, name);
}

const char *llmc_weights_mode_name(llmc_weights_mode_t mode) {
  switch (mode) {
  case LLMC_WEIGHTS_AUTO: return "auto";
  case LLMC_WEIGHTS_MMAP: return "mmap";
  case LLMC_WEIGHTS_COPY: return "copy";
  case LLMC_WEIGHTS_MODE_COUNT: break;
  }
  return "?";
}
