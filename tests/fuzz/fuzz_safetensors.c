/* fuzz_safetensors.c — libFuzzer target for the safetensors header reader
 * (runtime/formats/safetensors.c).
 *
 * The reader opens files by path (it reads only the header, with fread), so
 * each input is written to one memory-backed file (memfd) that is opened
 * through /proc/self/fd. When the header parses, every tensor is looked up
 * by name and its claimed byte range is checked against the input. Built
 * and run by run_fuzzers.sh; seeds in corpus/fuzz_safetensors. */
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "formats/safetensors.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fd = -1;
static char path[64];

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (fd < 0) {
    fd = memfd_create("fuzz.safetensors", 0);
    if (fd < 0) abort();
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
  }
  if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size) abort();
  llmc_safetensors_t *st = NULL;
  llmc_status_t s = llmc_safetensors_open(path, &st);
  if (s) {
    llmc_status_free(s);
    return 0;
  }
  for (int i = 0; i < st->n_tensors; i++) {
    const llmc_safetensors_tensor_t *t = &st->tensors[i];
    /* The reader promises every range lies inside the file. */
    if (llmc_safetensors_find(st, t->name) != t || t->offset > size || t->nbytes > size - t->offset)
      abort();
  }
  llmc_safetensors_destroy(st);
  return 0;
}
