/* fuzz_gguf.c — libFuzzer target for the GGUF reader (runtime/formats/gguf.c).
 *
 * Parses the input as a GGUF file from memory and, when it parses, reads
 * everything a consumer would: every key through every typed getter, every
 * array element, every tensor's data (all of it, so that ASan sees a byte
 * outside the input) and the lookups by name. Built and run by
 * run_fuzzers.sh; seeds in corpus/fuzz_gguf. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/gguf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Folds bytes into a value the compiler cannot drop. */
static volatile uint64_t sink;

static void touch(const void *p, uint64_t n) {
  const uint8_t *b = p;
  uint64_t h = 0;
  for (uint64_t i = 0; i < n; i++) h = h * 31 + b[i];
  sink += h;
}

static void read_kv(const llmc_gguf_t *g, const llmc_gguf_kv_t *kv) {
  char key[128];
  size_t n = kv->key.len < sizeof key - 1 ? (size_t)kv->key.len : sizeof key - 1;
  memcpy(key, kv->key.data, n);
  key[n] = '\0';
  int64_t i;
  double f;
  bool b;
  llmc_gguf_str_t s;
  sink += llmc_gguf_get_int(g, key, &i) + llmc_gguf_get_float(g, key, &f) +
          llmc_gguf_get_bool(g, key, &b) + llmc_gguf_get_string(g, key, &s);
  if (llmc_gguf_get_string(g, key, &s)) touch(s.data, s.len);
  if (kv->type != LLMC_GGUF_ARRAY) return;
  for (uint64_t e = 0; e <= kv->n && e < 4096; e++) {
    s = llmc_gguf_array_string(kv, e);
    touch(s.data, s.len);
    sink += (uint64_t)llmc_gguf_array_int(kv, e);
    sink += llmc_gguf_array_float(kv, e) != 0.0;
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* A private copy, so that reads past the input's end are caught even
   * where libFuzzer's buffer has slack. */
  uint8_t *copy = malloc(size ? size : 1);
  if (!copy) return 0;
  memcpy(copy, data, size);
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_parse(copy, size, "fuzz.gguf", &g);
  if (s) {
    touch(llmc_status_message(s), strlen(llmc_status_message(s)));
    llmc_status_free(s);
  } else {
    for (uint64_t i = 0; i < g->n_kv; i++) read_kv(g, &g->kv[i]);
    for (uint64_t i = 0; i < g->n_tensors; i++) {
      const llmc_gguf_tensor_t *t = &g->tensors[i];
      const uint8_t *bytes = NULL;
      s = llmc_gguf_tensor_data(g, t, &bytes);
      if (s)
        llmc_status_free(s);
      else
        touch(bytes, t->nbytes);
      sink += llmc_ggml_type_name(t->type) != NULL;
    }
    sink += llmc_gguf_find(g, "general.architecture") != NULL;
    sink += llmc_gguf_find_tensor(g, "token_embd.weight") != NULL;
    llmc_gguf_close(g);
  }
  free(copy);
  return 0;
}
