/* test_runtime.c — the runtime against tests/fixtures/fake_model.c: the
 * loader's checks (ELF, section, ABI record), logits through the engine
 * for whole, chunked and multi-sequence steps against values worked out by
 * hand from the fixture's formula, the paged KV cache's bookkeeping, and
 * the thread pool under many small jobs.
 *
 * The fixture's paths come from tests/CMakeLists.txt as
 * LLMC_FAKE_MODEL_PATH and LLMC_FAKE_MODEL_BAD_VERSION_PATH. Broken
 * variants of the model (bad magic, section past EOF, ...) are made by
 * patching a copy of it in a temporary directory. */
#include <elf.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "llmc/runtime.h"
#include "support/file.h"

/* ---- the fixture's arithmetic (see fake_model.c) ---- */

#define VOCAB 8

/* The logits after token tokens[i] of a sequence: 10 t + v + v/4 plus the
 * number of earlier equal tokens (both layers agree, so every v gets it). */
static void expected_logits(const int32_t *tokens, int32_t n, float *out /* [n, VOCAB] */) {
  for (int32_t i = 0; i < n; i++) {
    int32_t t = tokens[i], count = 0;
    for (int32_t j = 0; j < i; j++) count += tokens[j] == t;
    for (int32_t v = 0; v < VOCAB; v++)
      out[i * VOCAB + v] = (float)(10 * t + v) + (float)v / 4.0f + (float)count;
  }
}

/* Compares n rows of logits exactly; reports the first difference. */
static void check_rows(const float *got, const float *want, int32_t n_rows, const char *what) {
  for (int32_t i = 0; i < n_rows * VOCAB; i++)
    if (got[i] != want[i]) {
      fprintf(stderr, "%s: row %d col %d: got %g, expected %g\n", what, i / VOCAB, i % VOCAB,
              (double)got[i], (double)want[i]);
      check_failures++;
      return;
    }
}

/* ---- temporary files ---- */

static char tmp_dir[64];

/* A path in the test's temporary directory, in a static buffer. */
static const char *tmp_path(const char *name) {
  static char buf[8][128];
  static int next;
  char *p = buf[next++ % 8];
  snprintf(p, sizeof buf[0], "%s/%s", tmp_dir, name);
  return p;
}

static void write_bytes(const char *path, const void *data, size_t n) {
  FILE *f = fopen(path, "wb");
  CHECK(f != NULL);
  if (!f) return;
  CHECK(fwrite(data, 1, n, f) == n);
  fclose(f);
}

/* The fixture's bytes (malloc'ed). */
static char *read_fixture(size_t *len) {
  char *data = NULL;
  CHECK_OK(llmc_file_read_all(LLMC_FAKE_MODEL_PATH, &data, len));
  return data;
}

/* The section header of .llmc_weights inside an ELF image in memory. */
static Elf64_Shdr *weights_shdr(char *elf) {
  Elf64_Ehdr *eh = (Elf64_Ehdr *)elf;
  Elf64_Shdr *sh = (Elf64_Shdr *)(elf + eh->e_shoff);
  const char *names = elf + sh[eh->e_shstrndx].sh_offset;
  for (int i = 0; i < eh->e_shnum; i++)
    if (strcmp(names + sh[i].sh_name, LLMC_WEIGHTS_SECTION) == 0) return &sh[i];
  return NULL;
}

/* ---- loader ---- */

static void test_loader_ok(llmc_weights_mode_t mode) {
  llmc_model_options_t options = {.weights_mode = mode};
  llmc_model_t *model = NULL;
  CHECK_OK(llmc_model_load(LLMC_FAKE_MODEL_PATH, &options, &model));
  if (!model) return;
  CHECK_EQ_INT(model->weights_mode, mode);
  CHECK_EQ_INT(model->abi->vocab_size, VOCAB);
  CHECK_EQ_INT(model->abi->n_layers, 2);
  CHECK_EQ_INT(model->weights_bytes, 288);
  const float *w = (const float *)model->weights;
  CHECK(w[3 * VOCAB + 5] == 35.0f);    /* bigram[3][5] */
  CHECK(w[VOCAB * VOCAB + 6] == 1.5f); /* bias[6] */
  if (mode == LLMC_WEIGHTS_COPY) CHECK_EQ_INT((uintptr_t)model->weights % (2u << 20), 0);
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(model->metadata, "architecture");
  CHECK(cJSON_IsString(arch) && strcmp(arch->valuestring, "fake-bigram") == 0);
  CHECK(llmc_model_symbol_lookup(model, "fake_region_0") != NULL);
  CHECK(llmc_model_symbol_lookup(model, "no_such_symbol") == NULL);
  llmc_model_destroy(model);
}

/* Loads path, which must fail with code and a message containing needle
 * and the path. */
static void expect_load_error(const char *path, llmc_status_code_t code, const char *needle,
                              int line) {
  llmc_model_t *model = NULL;
  llmc_status_t st = llmc_model_load(path, NULL, &model);
  CHECK(model == NULL);
  if (st && !strstr(llmc_status_message(st), path)) {
    fprintf(stderr, "test_runtime.c:%d: error does not name %s: %s\n", line, path,
            llmc_status_message(st));
    check_failures++;
  }
  check_error_at(__FILE__, line, path, st, code, needle);
}

static void test_loader_errors(void) {
  expect_load_error(tmp_path("missing.so"), LLMC_STATUS_NOT_FOUND, "cannot open", __LINE__);
  write_bytes(tmp_path("text.so"),
              "hello, world\n this is not a shared object at all, no. ....."
              "..........",
              70);
  expect_load_error(tmp_path("text.so"), LLMC_STATUS_INVALID_ARGUMENT, "not an ELF file", __LINE__);
  write_bytes(tmp_path("empty.so"), "", 0);
  expect_load_error(tmp_path("empty.so"), LLMC_STATUS_INVALID_ARGUMENT, "too short", __LINE__);
  expect_load_error(tmp_dir, LLMC_STATUS_INVALID_ARGUMENT, "not a regular file", __LINE__);

  size_t len = 0;
  char *image = read_fixture(&len);
  if (!image) return;
  char *copy = malloc(len);
  CHECK(copy != NULL);
  if (!copy) {
    free(image);
    return;
  }
  /* Truncated: the section table (at the end) is gone. */
  write_bytes(tmp_path("truncated.so"), image, len / 2);
  expect_load_error(tmp_path("truncated.so"), LLMC_STATUS_INVALID_ARGUMENT, "past the end",
                    __LINE__);

  memcpy(copy, image, len);
  ((Elf64_Ehdr *)copy)->e_machine = EM_RISCV;
  write_bytes(tmp_path("machine.so"), copy, len);
  expect_load_error(tmp_path("machine.so"), LLMC_STATUS_INVALID_ARGUMENT, "ELF machine", __LINE__);

  memcpy(copy, image, len);
  ((Elf64_Ehdr *)copy)->e_ident[EI_CLASS] = ELFCLASS32;
  write_bytes(tmp_path("class.so"), copy, len);
  expect_load_error(tmp_path("class.so"), LLMC_STATUS_INVALID_ARGUMENT, "64-bit", __LINE__);

  memcpy(copy, image, len);
  Elf64_Shdr *sh = weights_shdr(copy);
  CHECK(sh != NULL);
  if (sh) {
    CHECK_EQ_INT(sh->sh_offset % LLMC_WEIGHTS_FILE_ALIGN, 0);
    CHECK_EQ_INT(sh->sh_flags & SHF_ALLOC, 0);
    sh->sh_size = (uint64_t)len;
    write_bytes(tmp_path("section_eof.so"), copy, len);
    expect_load_error(tmp_path("section_eof.so"), LLMC_STATUS_INVALID_ARGUMENT,
                      "runs past the end of the file", __LINE__);
    memcpy(copy, image, len);
    sh = weights_shdr(copy);
    sh->sh_offset += 64; /* still inside the file: the section table follows */
    write_bytes(tmp_path("misaligned.so"), copy, len);
    expect_load_error(tmp_path("misaligned.so"), LLMC_STATUS_INVALID_ARGUMENT, "not a multiple of",
                      __LINE__);
    memcpy(copy, image, len);
    sh = weights_shdr(copy);
    sh->sh_flags |= SHF_ALLOC;
    write_bytes(tmp_path("alloc.so"), copy, len);
    expect_load_error(tmp_path("alloc.so"), LLMC_STATUS_INVALID_ARGUMENT, "SHF_ALLOC", __LINE__);
  }

  /* Bad magic: find the record's header (magic, version, size, reserved). */
  uint32_t header[4] = {LLMC_ABI_MAGIC, LLMC_ABI_VERSION, sizeof(llmc_abi_record_t), 0};
  memcpy(copy, image, len);
  char *found = NULL;
  int n_found = 0;
  for (size_t i = 0; i + sizeof header <= len; i++)
    if (memcmp(copy + i, header, sizeof header) == 0) {
      found = copy + i;
      n_found++;
    }
  CHECK_EQ_INT(n_found, 1);
  if (found) {
    found[0] ^= 0x20;
    write_bytes(tmp_path("magic.so"), copy, len);
    expect_load_error(tmp_path("magic.so"), LLMC_STATUS_ABI_MISMATCH, "magic", __LINE__);
  }
  free(copy);
  free(image);

  char want[96];
  snprintf(want, sizeof want, "model ABI version %u, this runtime speaks ABI version %u",
           LLMC_ABI_VERSION + 1, LLMC_ABI_VERSION);
  expect_load_error(LLMC_FAKE_MODEL_BAD_VERSION_PATH, LLMC_STATUS_ABI_MISMATCH, want, __LINE__);
}

/* ---- engine ---- */

/* Feeds tokens in chunks of `chunk` tokens with n_threads threads and
 * compares all logits with the hand-computed ones. */
static void check_feed(const llmc_model_t *model, const int32_t *tokens, int32_t n, int32_t chunk,
                       int32_t n_threads, llmc_kv_dtype_t kv_dtype) {
  llmc_engine_options_t options = {
      .n_threads = n_threads, .token_capacity = chunk, .kv_dtype = kv_dtype};
  llmc_engine_t *engine = NULL;
  CHECK_OK(llmc_engine_create(model, &options, &engine));
  if (!engine) return;
  float *got = calloc((size_t)n * VOCAB, sizeof *got),
        *want = calloc((size_t)n * VOCAB, sizeof *want);
  llmc_kv_seq_t seq = {0};
  CHECK_OK(llmc_engine_feed(engine, &seq, tokens, n, LLMC_ENGINE_LOGITS_ALL, got));
  CHECK_EQ_INT(seq.n_tokens, n);
  expected_logits(tokens, n, want);
  char what[64];
  snprintf(what, sizeof what, "%d tokens, chunk %d, %d threads, kv %s", n, chunk, n_threads,
           llmc_kv_dtype_name(llmc_engine_kv_cache(engine)->dtype));
  check_rows(got, want, n, what);

  /* LAST gives the same final row, from a cache with stale data in it. */
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  float last[VOCAB];
  CHECK_OK(llmc_engine_feed(engine, &seq, tokens, n, LLMC_ENGINE_LOGITS_LAST, last));
  check_rows(last, want + (size_t)(n - 1) * VOCAB, 1, what);
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  CHECK_EQ_INT(llmc_engine_kv_cache(engine)->n_free, llmc_engine_kv_cache(engine)->n_blocks);
  llmc_engine_destroy(engine);
  free(got);
  free(want);
}

static void test_engine_logits(const llmc_model_t *model) {
  const int32_t short_prompt[] = {1, 2, 1, 3, 1};
  int32_t long_prompt[40];
  for (int i = 0; i < 40; i++) long_prompt[i] = (i * 5 + i / 7) % VOCAB;
  const int32_t chunks[] = {1, 3, 7, 16, 40};
  const int32_t threads[] = {1, 2, 4};
  for (size_t c = 0; c < sizeof chunks / sizeof chunks[0]; c++)
    for (size_t t = 0; t < sizeof threads / sizeof threads[0]; t++) {
      check_feed(model, short_prompt, 5, chunks[c], threads[t], 0);
      check_feed(model, long_prompt, 40, chunks[c], threads[t], 0);
    }
  /* The fixture stores small integers, exact in f16: the same logits. */
  check_feed(model, long_prompt, 40, 7, 2, LLMC_KV_F16);
  check_feed(model, long_prompt, 40, 40, 1, LLMC_KV_F32);
  llmc_engine_t *engine = NULL;
  llmc_engine_options_t q8 = {.kv_dtype = LLMC_KV_Q8_0};
  CHECK_ERROR(llmc_engine_create(model, &q8, &engine), INVALID_ARGUMENT,
              "multiple of 32; this model's is 4");
  CHECK(engine == NULL);
}

/* Prefix caching through the engine: a second request attaches the first
 * one's full blocks and computes only the rest; its logits, which the
 * fixture computes from the K/V it reads back, are those of its whole
 * prompt, so the shared blocks hold the right tokens at the right
 * positions. */
static void test_engine_prefix_cache(const llmc_model_t *model) {
  llmc_engine_options_t options = {
      .n_threads = 2, .token_capacity = 16, .kv_block_size = 4, .kv_dtype = LLMC_KV_F16};
  llmc_engine_t *engine = NULL;
  CHECK_OK(llmc_engine_create(model, &options, &engine));
  if (!engine) return;
  llmc_kv_cache_t *kv = llmc_engine_kv_cache(engine);
  const int32_t a[11] = {1, 2, 1, 3, 1, 4, 4, 2, 5, 1, 6};
  const int32_t b[13] = {1, 2, 1, 3, 1, 4, 4, 2, 1, 1, 2, 3, 1};
  float want[13 * VOCAB], got[13 * VOCAB];
  llmc_kv_seq_t sa = {0}, sb = {0};
  CHECK_OK(llmc_engine_feed(engine, &sa, a, 11, LLMC_ENGINE_LOGITS_NONE, NULL));
  llmc_kv_seq_publish(kv, &sa, a);
  int32_t reused = llmc_kv_seq_attach_prefix(kv, &sb, b, 12);
  CHECK_EQ_INT(reused, 8);
  CHECK_OK(llmc_engine_feed(engine, &sb, b + reused, 13 - reused, LLMC_ENGINE_LOGITS_ALL, got));
  expected_logits(b, 13, want);
  check_rows(got, want + reused * VOCAB, 13 - reused, "after a shared prefix");
  CHECK_EQ_INT(kv->ref_counts[sa.blocks[0]], 2);
  /* a's third block (2 5 1 6) is a's alone. */
  CHECK(sb.blocks[2] != sa.blocks[2]);
  llmc_kv_seq_deinit(kv, &sa);
  llmc_kv_seq_deinit(kv, &sb);
  CHECK_EQ_INT(kv->n_free, kv->n_blocks);
  llmc_engine_destroy(engine);
}

/* Two sequences share steps: a prefill of both, then decode steps of both;
 * each must see only its own history. */
static void test_engine_multi_seq(const llmc_model_t *model) {
  llmc_engine_options_t options = {.n_threads = 3, .token_capacity = 8, .kv_block_size = 4};
  llmc_engine_t *engine = NULL;
  CHECK_OK(llmc_engine_create(model, &options, &engine));
  if (!engine) return;
  const int32_t a[] = {1, 2, 1, 1, 5, 1}, b[] = {1, 1, 1, 3, 1, 2};
  float want_a[6 * VOCAB], want_b[6 * VOCAB];
  expected_logits(a, 6, want_a);
  expected_logits(b, 6, want_b);
  llmc_kv_seq_t sa = {0}, sb = {0};
  /* Step 1: a[0..3) with every row, b[0..5) with the last row. */
  llmc_engine_chunk_t step1[2] = {
      {.seq = &sa, .tokens = a, .n_tokens = 3, .logits = LLMC_ENGINE_LOGITS_ALL},
      {.seq = &sb, .tokens = b, .n_tokens = 5, .logits = LLMC_ENGINE_LOGITS_LAST},
  };
  CHECK_EQ_INT(llmc_engine_logit_rows(step1, 2), 4);
  float out[8 * VOCAB];
  CHECK_OK(llmc_engine_step(engine, step1, 2, out));
  check_rows(out, want_a, 3, "multi-seq step 1, a");
  check_rows(out + 3 * VOCAB, want_b + 4 * VOCAB, 1, "multi-seq step 1, b");
  /* Step 2 decodes both, b first this time. */
  llmc_engine_chunk_t step2[2] = {
      {.seq = &sb, .tokens = b + 5, .n_tokens = 1, .logits = LLMC_ENGINE_LOGITS_LAST},
      {.seq = &sa, .tokens = a + 3, .n_tokens = 1, .logits = LLMC_ENGINE_LOGITS_LAST},
  };
  CHECK_OK(llmc_engine_step(engine, step2, 2, out));
  check_rows(out, want_b + 5 * VOCAB, 1, "multi-seq step 2, b");
  check_rows(out + VOCAB, want_a + 3 * VOCAB, 1, "multi-seq step 2, a");
  /* Step 3 finishes a alone. */
  llmc_engine_chunk_t step3 = {
      .seq = &sa, .tokens = a + 4, .n_tokens = 2, .logits = LLMC_ENGINE_LOGITS_ALL};
  CHECK_OK(llmc_engine_step(engine, &step3, 1, out));
  check_rows(out, want_a + 4 * VOCAB, 2, "multi-seq step 3, a");
  CHECK_EQ_INT(sa.n_tokens, 6);
  CHECK_EQ_INT(sb.n_tokens, 6);
  /* The same sequence twice in one step is refused. */
  llmc_engine_chunk_t twice[2] = {
      {.seq = &sa, .tokens = a, .n_tokens = 1},
      {.seq = &sa, .tokens = a, .n_tokens = 1},
  };
  CHECK_ERROR(llmc_engine_step(engine, twice, 2, NULL), INVALID_ARGUMENT, "same sequence");
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &sa);
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &sb);
  llmc_engine_destroy(engine);
}

static void test_engine_errors(const llmc_model_t *model) {
  llmc_engine_options_t options = {
      .n_threads = 2, .token_capacity = 4, .kv_blocks = 2, .kv_block_size = 4};
  llmc_engine_t *engine = NULL;
  CHECK_OK(llmc_engine_create(model, &options, &engine));
  if (!engine) return;
  llmc_kv_cache_t *kv = llmc_engine_kv_cache(engine);
  float out[70 * VOCAB];
  int32_t tokens[70] = {0};
  llmc_kv_seq_t seq = {0};
  const int32_t bad[] = {1, 8};
  CHECK_ERROR(llmc_engine_feed(engine, &seq, bad, 2, LLMC_ENGINE_LOGITS_ALL, out), INVALID_ARGUMENT,
              "outside [0, 8)");
  const int32_t negative[] = {-1};
  CHECK_ERROR(llmc_engine_feed(engine, &seq, negative, 1, LLMC_ENGINE_LOGITS_ALL, out),
              INVALID_ARGUMENT, "outside");
  llmc_engine_chunk_t too_many = {.seq = &seq, .tokens = tokens, .n_tokens = 5};
  CHECK_ERROR(llmc_engine_step(engine, &too_many, 1, NULL), INVALID_ARGUMENT, "token capacity");
  llmc_engine_chunk_t no_buffer = {
      .seq = &seq, .tokens = tokens, .n_tokens = 1, .logits = LLMC_ENGINE_LOGITS_LAST};
  CHECK_ERROR(llmc_engine_step(engine, &no_buffer, 1, NULL), INVALID_ARGUMENT, "no buffer");
  CHECK_EQ_INT(seq.n_tokens, 0);
  /* The pool holds 8 tokens: the 9th is refused, the sequence keeps 8. */
  CHECK_OK(llmc_engine_feed(engine, &seq, tokens, 8, LLMC_ENGINE_LOGITS_NONE, NULL));
  CHECK_EQ_INT(kv->n_free, 0);
  CHECK_ERROR(llmc_engine_feed(engine, &seq, tokens, 1, LLMC_ENGINE_LOGITS_LAST, out),
              OUT_OF_MEMORY, "KV cache");
  CHECK_EQ_INT(seq.n_tokens, 8);
  CHECK_EQ_INT(seq.n_blocks, 2);
  /* A second sequence cannot get a block either, and is left empty. */
  llmc_kv_seq_t other = {0};
  CHECK_ERROR(llmc_engine_feed(engine, &other, tokens, 1, LLMC_ENGINE_LOGITS_LAST, out),
              OUT_OF_MEMORY, "exhausted");
  CHECK_EQ_INT(other.n_blocks, 0);
  llmc_kv_seq_deinit(kv, &seq);
  CHECK_EQ_INT(kv->n_free, 2);
  llmc_engine_destroy(engine);

  /* Past max_context (64) is an error, not a crash. */
  options = (llmc_engine_options_t){.n_threads = 1, .token_capacity = 70};
  CHECK_OK(llmc_engine_create(model, &options, &engine));
  if (!engine) return;
  llmc_kv_seq_t longer = {0};
  CHECK_ERROR(llmc_engine_feed(engine, &longer, tokens, 65, LLMC_ENGINE_LOGITS_ALL, out),
              INVALID_ARGUMENT, "max_context 64");
  CHECK_OK(llmc_engine_feed(engine, &longer, tokens, 64, LLMC_ENGINE_LOGITS_LAST, out));
  CHECK_ERROR(llmc_engine_feed(engine, &longer, tokens, 1, LLMC_ENGINE_LOGITS_LAST, out),
              INVALID_ARGUMENT, "max_context");
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &longer);
  llmc_engine_destroy(engine);
}

/* ---- KV cache ---- */

static void test_kv_cache(void) {
  llmc_kv_cache_t *kv = NULL;
  CHECK_ERROR(llmc_kv_cache_create(2, 4, 0, 16, LLMC_KV_F32, &kv), INVALID_ARGUMENT, "0 blocks");
  CHECK_ERROR(llmc_kv_cache_create(2, 4, 4, 16, LLMC_KV_Q8_0, &kv), INVALID_ARGUMENT,
              "multiple of 32");
  CHECK_ERROR(llmc_kv_cache_create(2, 4, 4, 16, LLMC_KV_DTYPE_END, &kv), INVALID_ARGUMENT,
              "unknown element type");
  CHECK_OK(llmc_kv_cache_create(2, 4, 4, 0, LLMC_KV_F32, &kv));
  if (!kv) return;
  CHECK_EQ_INT(kv->block_size, LLMC_KV_DEFAULT_BLOCK_SIZE);
  CHECK_EQ_INT(kv->data_bytes, 2 * 2 * 4 * 16 * 4 * sizeof(float));
  llmc_kv_cache_view_t view = llmc_kv_cache_view(kv);
  CHECK(view.data == kv->data && view.n_blocks == 4 && view.block_size == 16);
  CHECK_EQ_INT(view.dtype, LLMC_KV_F32);
  kv->data[kv->data_bytes - 1] = 1; /* the whole pool is writable */

  llmc_kv_seq_t seq = {0};
  CHECK_OK(llmc_kv_seq_reserve(kv, &seq, 0));
  CHECK_EQ_INT(seq.n_blocks, 0);
  CHECK_OK(llmc_kv_seq_reserve(kv, &seq, 17));
  CHECK_EQ_INT(seq.n_blocks, 2);
  CHECK_EQ_INT(kv->n_free, 2);
  CHECK_EQ_INT(llmc_kv_seq_slot(kv, &seq, 17), seq.blocks[1] * 16 + 1);
  CHECK_OK(llmc_kv_seq_reserve(kv, &seq, 32)); /* still 32 tokens: no more blocks */
  CHECK_EQ_INT(seq.n_blocks, 2);
  /* All or nothing: 3 blocks wanted, 2 free. */
  CHECK_ERROR(llmc_kv_seq_reserve(kv, &seq, 65), OUT_OF_MEMORY, "do not fit");
  llmc_kv_seq_t other = {0};
  CHECK_OK(llmc_kv_seq_reserve(kv, &other, 1));
  seq.n_tokens = 16;
  CHECK_ERROR(llmc_kv_seq_reserve(kv, &seq, 48), OUT_OF_MEMORY, "exhausted");
  CHECK_EQ_INT(seq.n_blocks, 2);
  CHECK_EQ_INT(kv->n_free, 1);
  llmc_kv_seq_deinit(kv, &other);
  CHECK_EQ_INT(kv->n_free, 2);
  /* trim keeps what n_tokens needs. */
  llmc_kv_seq_trim(kv, &seq);
  CHECK_EQ_INT(seq.n_blocks, 1);
  CHECK_EQ_INT(kv->n_free, 3);

  /* Reference counts: a shared block outlives the sequence that made it. */
  int32_t shared = seq.blocks[0];
  llmc_kv_cache_block_retain(kv, shared);
  CHECK_EQ_INT(kv->ref_counts[shared], 2);
  llmc_kv_seq_deinit(kv, &seq);
  CHECK(seq.blocks == NULL && seq.n_blocks == 0 && seq.n_tokens == 0);
  CHECK_EQ_INT(kv->ref_counts[shared], 1);
  CHECK_EQ_INT(kv->n_free, 3);
  llmc_kv_cache_block_release(kv, shared);
  CHECK_EQ_INT(kv->n_free, 4);

  /* Exhaustion through block_alloc, then everything back. */
  int32_t blocks[4];
  for (int i = 0; i < 4; i++) CHECK_OK(llmc_kv_cache_block_alloc(kv, &blocks[i]));
  int32_t extra = -1;
  CHECK_ERROR(llmc_kv_cache_block_alloc(kv, &extra), OUT_OF_MEMORY, "exhausted");
  for (int i = 0; i < 4; i++) {
    for (int j = 0; j < i; j++) CHECK(blocks[i] != blocks[j]);
    llmc_kv_cache_block_release(kv, blocks[i]);
  }
  CHECK_EQ_INT(kv->n_free, 4);
  llmc_kv_cache_destroy(kv);

  /* A model without a cache (0 layers) still hands out blocks. */
  CHECK_OK(llmc_kv_cache_create(0, 4, 2, 16, LLMC_KV_F16, &kv));
  if (kv) {
    CHECK(kv->data == NULL && kv->data_bytes == 0);
    llmc_kv_cache_destroy(kv);
  }
}

/* ---- thread pool ---- */

typedef struct {
  atomic_int *hits;     /* [n_tasks] times each task ran */
  atomic_long sum;      /* sum of task indices */
  int32_t expect_tasks; /* the n_tasks every call must see */
  atomic_int bad_n;     /* calls that saw another n_tasks */
} pool_job_t;

static void pool_task(void *env, int32_t task, int32_t n_tasks) {
  pool_job_t *job = env;
  if (n_tasks != job->expect_tasks || task < 0 || task >= n_tasks) {
    atomic_fetch_add(&job->bad_n, 1);
    return;
  }
  atomic_fetch_add(&job->hits[task], 1);
  atomic_fetch_add(&job->sum, task);
}

static void test_thread_pool(void) {
  const int32_t pool_sizes[] = {1, 2, 4, 8};
  const int32_t task_counts[] = {1, 3, 64, 1000};
  for (size_t p = 0; p < sizeof pool_sizes / sizeof pool_sizes[0]; p++) {
    llmc_thread_pool_t *pool = NULL;
    CHECK_OK(llmc_thread_pool_create(pool_sizes[p], &pool));
    if (!pool) continue;
    CHECK_EQ_INT(llmc_thread_pool_size(pool), pool_sizes[p]);
    llmc_runtime_api_t api = llmc_thread_pool_api(pool);
    CHECK(api.pool == pool && api.n_threads == pool_sizes[p]);
    for (size_t t = 0; t < sizeof task_counts / sizeof task_counts[0]; t++) {
      int32_t n = task_counts[t];
      pool_job_t job = {.expect_tasks = n};
      job.hits = calloc((size_t)n, sizeof *job.hits);
      const int reps = 300;
      for (int r = 0; r < reps; r++) {
        /* Now and then let the workers fall asleep between jobs. */
        if (r % 100 == 99) usleep(2000);
        api.parallel_for(api.pool, pool_task, &job, n);
      }
      int wrong = 0;
      for (int32_t i = 0; i < n; i++) wrong += atomic_load(&job.hits[i]) != reps;
      CHECK_EQ_INT(wrong, 0);
      CHECK_EQ_INT(atomic_load(&job.sum), (long long)reps * n * (n - 1) / 2);
      CHECK_EQ_INT(atomic_load(&job.bad_n), 0);
      free(job.hits);
    }
    llmc_thread_pool_parallel_for(pool, pool_task, NULL, 0); /* no tasks: returns at once */
    llmc_thread_pool_destroy(pool);
  }
  llmc_thread_pool_t *pool = NULL;
  CHECK_OK(llmc_thread_pool_create(0, &pool)); /* one per CPU */
  if (pool) CHECK(llmc_thread_pool_size(pool) >= 1);
  llmc_thread_pool_destroy(pool);
}

int main(void) {
  snprintf(tmp_dir, sizeof tmp_dir, "/tmp/llmc_test_runtime_XXXXXX");
  if (!mkdtemp(tmp_dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_thread_pool();
  test_kv_cache();
  test_loader_ok(LLMC_WEIGHTS_MMAP);
  test_loader_ok(LLMC_WEIGHTS_COPY);
  test_loader_errors();
  llmc_model_t *model = NULL;
  CHECK_OK(llmc_model_load(LLMC_FAKE_MODEL_PATH, NULL, &model));
  if (model) {
    test_engine_logits(model);
    test_engine_prefix_cache(model);
    test_engine_multi_seq(model);
    test_engine_errors(model);
    llmc_model_destroy(model);
  }
  const char *names[] = {"missing.so", "text.so",  "empty.so",       "truncated.so",
                         "machine.so", "class.so", "section_eof.so", "misaligned.so",
                         "alloc.so",   "magic.so"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) unlink(tmp_path(names[i]));
  rmdir(tmp_dir);
  return check_report("test_runtime");
}
