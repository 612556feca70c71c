/* test_gguf_write.c — the GGUF writer (runtime/formats/gguf_write.h).
 *
 * 1. A GGUF built here byte by byte, as ggml lays it out (metadata of every
 *    type: each scalar type, strings, numeric arrays, string arrays, empty
 *    arrays; general.alignment 64; tensors whose sizes are and are not
 *    multiples of it), parsed by the reader and copied through the writer
 *    key by key and tensor by tensor, the data in pieces that straddle
 *    tensors: the copy must be the same bytes, and read back the same.
 * 2. llmc_gguf_writer_set_u32 replacing a key (moved to the end, new type)
 *    and adding one; a file without tensors.
 * 3. Misuse and failures: each an error naming what is wrong, and no file
 *    left behind (an existing one untouched). */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "formats/gguf.h"
#include "formats/gguf_write.h"

static char dir[64]; /* a fresh temporary folder */

typedef struct {
  char s[128];
} path_t;

/* dir/name. */
static path_t in_dir(const char *name) {
  path_t p;
  snprintf(p.s, sizeof p.s, "%s/%s", dir, name);
  return p;
}

static bool exists(const char *name) {
  struct stat sb;
  return stat(in_dir(name).s, &sb) == 0;
}

/* ---- a GGUF built by hand ---- */

typedef struct {
  uint8_t data[8192];
  size_t len;
} buf_t;

static void put(buf_t *b, uint64_t v, int n) {
  for (int i = 0; i < n; i++) b->data[b->len++] = (uint8_t)(v >> (8 * i));
}

static void put_str(buf_t *b, const char *s) {
  put(b, strlen(s), 8);
  memcpy(b->data + b->len, s, strlen(s));
  b->len += strlen(s);
}

static void pad(buf_t *b, size_t alignment) {
  while (b->len % alignment) put(b, 0, 1);
}

/* Tensors of the file: name, dims (ggml order), type, size of the data. */
static const struct {
  const char *name;
  uint32_t n_dims;
  uint64_t dims[4];
  uint32_t type;
  uint64_t nbytes;
} tensors[] = {
    {"token_embd.weight", 2, {5, 3}, LLMC_GGML_F32, 60},   /* not a multiple of 64 */
    {"blk.0.attn_q.weight", 2, {32, 2}, LLMC_GGML_Q8_0, 68},
    {"blk.0.attn_norm.weight", 1, {7}, LLMC_GGML_F16, 14},
    {"t.4d", 4, {2, 2, 2, 4}, LLMC_GGML_F32, 128},          /* exactly two alignments */
};
#define N_TENSORS (sizeof tensors / sizeof tensors[0])
#define ALIGNMENT 64

/* Tensor i's data: bytes that differ from tensor to tensor. */
static uint8_t data_byte(size_t i, uint64_t k) { return (uint8_t)(i * 71 + k * 13 + 1); }

/* A GGUF v3 file in *b, laid out as ggml writes it: 27 keys covering every
 * metadata type, general.alignment 64, the tensors above. */
static void build(buf_t *b) {
  memset(b, 0, sizeof *b);
  memcpy(b->data, "GGUF", 4);
  b->len = 4;
  put(b, 3, 4);
  put(b, N_TENSORS, 8);
  put(b, 27, 8);
  put_str(b, "general.architecture"), put(b, LLMC_GGUF_STRING, 4), put_str(b, "llama");
  put_str(b, "general.alignment"), put(b, LLMC_GGUF_UINT32, 4), put(b, ALIGNMENT, 4);
  static const struct {
    const char *key;
    llmc_gguf_type_t type;
    uint64_t bits;
    int size;
  } scalars[] = {
      {"t.u8", LLMC_GGUF_UINT8, 200, 1},
      {"t.i8", LLMC_GGUF_INT8, 0x80, 1},
      {"t.u16", LLMC_GGUF_UINT16, 60000, 2},
      {"t.i16", LLMC_GGUF_INT16, 0xfffe, 2},
      {"t.u32", LLMC_GGUF_UINT32, 4000000000u, 4},
      {"t.i32", LLMC_GGUF_INT32, 0xffffffffu, 4},
      {"t.f32", LLMC_GGUF_FLOAT32, 0x3fc00000u, 4},
      {"t.bool", LLMC_GGUF_BOOL, 1, 1},
      {"t.u64", LLMC_GGUF_UINT64, UINT64_MAX, 8},
      {"t.i64", LLMC_GGUF_INT64, (uint64_t)INT64_MIN, 8},
      {"t.f64", LLMC_GGUF_FLOAT64, 0xc004000000000000u, 8},
  };
  for (size_t i = 0; i < sizeof scalars / sizeof scalars[0]; i++) {
    put_str(b, scalars[i].key);
    put(b, scalars[i].type, 4);
    put(b, scalars[i].bits, scalars[i].size);
    /* and an array of two of each: the value and its complement */
    char key[32];
    snprintf(key, sizeof key, "%s.arr", scalars[i].key);
    put_str(b, key), put(b, LLMC_GGUF_ARRAY, 4), put(b, scalars[i].type, 4), put(b, 2, 8);
    put(b, scalars[i].bits, scalars[i].size);
    put(b, scalars[i].type == LLMC_GGUF_BOOL ? 0 : ~scalars[i].bits, scalars[i].size);
  }
  put_str(b, "t.empty_string"), put(b, LLMC_GGUF_STRING, 4), put_str(b, "");
  put_str(b, "t.empty_array"), put(b, LLMC_GGUF_ARRAY, 4), put(b, LLMC_GGUF_INT32, 4), put(b, 0, 8);
  put_str(b, "tokenizer.ggml.tokens"), put(b, LLMC_GGUF_ARRAY, 4), put(b, LLMC_GGUF_STRING, 4);
  put(b, 4, 8), put_str(b, "<unk>"), put_str(b, "h\xc3\xa9"), put_str(b, ""), put_str(b, "end");

  uint64_t offset = 0;
  for (size_t i = 0; i < N_TENSORS; i++) {
    put_str(b, tensors[i].name);
    put(b, tensors[i].n_dims, 4);
    for (uint32_t d = 0; d < tensors[i].n_dims; d++) put(b, tensors[i].dims[d], 8);
    put(b, tensors[i].type, 4);
    put(b, offset, 8);
    offset += (tensors[i].nbytes + ALIGNMENT - 1) / ALIGNMENT * ALIGNMENT;
  }
  pad(b, ALIGNMENT);
  for (size_t i = 0; i < N_TENSORS; i++) {
    for (uint64_t k = 0; k < tensors[i].nbytes; k++) put(b, data_byte(i, k), 1);
    pad(b, ALIGNMENT);
  }
}

static llmc_gguf_t *parse_ok(const uint8_t *data, size_t size) {
  llmc_gguf_t *g = NULL;
  llmc_status_t s = llmc_gguf_parse(data, size, "built", &g);
  if (s) {
    fprintf(stderr, "built: unexpected error: %s\n", llmc_status_message(s));
    llmc_status_free(s);
    check_failures++;
  }
  return g;
}

/* The file at path (malloc'ed; its first 64 KiB), its size in *size. */
static uint8_t *read_all(const char *path, size_t *size) {
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  uint8_t *data = malloc(1 << 16);
  *size = data ? fread(data, 1, 1 << 16, f) : 0;
  fclose(f);
  return data;
}

/* Every key and tensor of src through a writer to path, the data in pieces
 * of `piece` bytes. */
static llmc_status_t copy_file(const llmc_gguf_t *src, const char *path, uint64_t piece) {
  llmc_gguf_writer_t *w = NULL;
  LLMC_PROPAGATE(llmc_gguf_writer_create(path, &w));
  llmc_status_t s = LLMC_OK;
  for (uint64_t i = 0; !s && i < src->n_kv; i++) s = llmc_gguf_writer_copy_kv(w, &src->kv[i]);
  for (uint64_t i = 0; !s && i < src->n_tensors; i++) {
    const llmc_gguf_tensor_t *t = &src->tensors[i];
    s = llmc_gguf_writer_add_tensor(w, t->name, t->n_dims, t->dims, t->type, t->nbytes);
  }
  /* All data, as one stream cut every `piece` bytes. */
  uint8_t stream[1024];
  uint64_t n = 0;
  for (uint64_t i = 0; i < src->n_tensors; i++) {
    memcpy(stream + n, src->map + src->tensors[i].offset, src->tensors[i].nbytes);
    n += src->tensors[i].nbytes;
  }
  for (uint64_t at = 0; !s && at < n; at += piece)
    s = llmc_gguf_writer_write(w, stream + at, n - at < piece ? n - at : piece);
  if (!s) s = llmc_gguf_writer_finish(w);
  llmc_gguf_writer_destroy(w);
  return s;
}

/* ---- 1. a copy is the same file ---- */

static void test_copy(void) {
  static buf_t b;
  build(&b);
  llmc_gguf_t *src = parse_ok(b.data, b.len);
  if (!src) return;
  CHECK_EQ_INT(src->n_kv, 27);
  CHECK_EQ_INT(src->alignment, ALIGNMENT);
  static const uint64_t pieces[] = {1, 7, 60, 61, 1000};
  for (size_t p = 0; p < sizeof pieces / sizeof pieces[0]; p++) {
    CHECK_OK(copy_file(src, in_dir("copy.gguf").s, pieces[p]));
    size_t size = 0;
    uint8_t *got = read_all(in_dir("copy.gguf").s, &size);
    CHECK(got && size == b.len && memcmp(got, b.data, b.len) == 0);
    CHECK(!exists("copy.gguf.tmp"));
    free(got);
  }

  /* Read back with the reader: everything as in the source. */
  llmc_gguf_t *g = NULL;
  CHECK_OK(llmc_gguf_open(in_dir("copy.gguf").s, &g));
  if (g) {
    CHECK_EQ_INT(g->version, 3);
    CHECK_EQ_INT(g->n_kv, src->n_kv);
    CHECK_EQ_INT(g->alignment, ALIGNMENT);
    CHECK_EQ_INT(g->data_offset % ALIGNMENT, 0);
    for (uint64_t i = 0; i < g->n_kv && i < src->n_kv; i++) {
      const llmc_gguf_kv_t *a = &src->kv[i], *c = &g->kv[i];
      CHECK(a->key.len == c->key.len && memcmp(a->key.data, c->key.data, a->key.len) == 0);
      CHECK_EQ_INT(c->type, a->type);
      CHECK_EQ_INT(c->elem_type, a->elem_type);
      CHECK_EQ_INT(c->n, a->n);
    }
    int64_t v = 0;
    double f = 0;
    bool flag = false;
    llmc_gguf_str_t s = {0};
    CHECK(llmc_gguf_get_int(g, "t.i8", &v) && v == -128);
    CHECK(llmc_gguf_get_int(g, "t.i64", &v) && v == INT64_MIN);
    CHECK(llmc_gguf_get_int(g, "t.u32", &v) && v == 4000000000);
    CHECK(llmc_gguf_get_float(g, "t.f64", &f) && f == -2.5);
    CHECK(llmc_gguf_get_float(g, "t.f32", &f) && f == 1.5);
    CHECK(llmc_gguf_get_bool(g, "t.bool", &flag) && flag);
    CHECK(llmc_gguf_get_string(g, "general.architecture", &s) && s.len == 5 &&
          !memcmp(s.data, "llama", 5));
    CHECK(llmc_gguf_get_string(g, "t.empty_string", &s) && s.len == 0);
    const llmc_gguf_kv_t *kv = llmc_gguf_find(g, "t.i16.arr");
    CHECK(kv && kv->n == 2 && llmc_gguf_array_int(kv, 0) == -2 && llmc_gguf_array_int(kv, 1) == 1);
    kv = llmc_gguf_find(g, "t.empty_array");
    CHECK(kv && kv->type == LLMC_GGUF_ARRAY && kv->n == 0);
    kv = llmc_gguf_find(g, "tokenizer.ggml.tokens");
    CHECK(kv && kv->n == 4);
    if (kv) {
      llmc_gguf_str_t e = llmc_gguf_array_string(kv, 1);
      CHECK(e.len == 3 && memcmp(e.data, "h\xc3\xa9", 3) == 0);
      CHECK(llmc_gguf_array_string(kv, 2).len == 0);
      CHECK(llmc_gguf_array_string(kv, 3).len == 3);
    }
    CHECK_EQ_INT(g->n_tensors, N_TENSORS);
    for (size_t i = 0; i < N_TENSORS && i < g->n_tensors; i++) {
      const llmc_gguf_tensor_t *t = &g->tensors[i];
      CHECK(t->name.len == strlen(tensors[i].name) &&
            !memcmp(t->name.data, tensors[i].name, t->name.len));
      CHECK_EQ_INT(t->n_dims, tensors[i].n_dims);
      for (uint32_t d = 0; d < t->n_dims; d++) CHECK_EQ_INT(t->dims[d], tensors[i].dims[d]);
      CHECK_EQ_INT(t->type, tensors[i].type);
      CHECK_EQ_INT(t->nbytes, tensors[i].nbytes);
      CHECK_EQ_INT(t->offset % ALIGNMENT, 0);
      int same = 1;
      for (uint64_t k = 0; k < t->nbytes; k++) same &= g->map[t->offset + k] == data_byte(i, k);
      CHECK(same);
    }
    CHECK_EQ_INT(g->size % ALIGNMENT, 0); /* the last tensor is padded too */
    llmc_gguf_close(g);
  }
  llmc_gguf_close(src);
}

/* ---- 2. set_u32, and no tensors ---- */

static void test_set_u32(void) {
  static buf_t b;
  build(&b);
  llmc_gguf_t *src = parse_ok(b.data, b.len);
  if (!src) return;
  const path_t path = in_dir("set.gguf");
  llmc_gguf_writer_t *w = NULL;
  CHECK_OK(llmc_gguf_writer_create(path.s, &w));
  if (!w) return;
  for (uint64_t i = 0; i < src->n_kv; i++) CHECK_OK(llmc_gguf_writer_copy_kv(w, &src->kv[i]));
  CHECK_OK(llmc_gguf_writer_set_u32(w, "t.u8", 7));         /* was a uint8, third */
  CHECK_OK(llmc_gguf_writer_set_u32(w, "general.file_type", 14)); /* new */
  CHECK_OK(llmc_gguf_writer_set_u32(w, "general.alignment", 16));
  CHECK_OK(llmc_gguf_writer_finish(w));
  llmc_gguf_writer_destroy(w);
  llmc_gguf_close(src);

  llmc_gguf_t *g = NULL;
  CHECK_OK(llmc_gguf_open(path.s, &g));
  if (!g) return;
  CHECK_EQ_INT(g->n_kv, 28);
  CHECK_EQ_INT(g->n_tensors, 0);
  CHECK_EQ_INT(g->alignment, 16);
  CHECK_EQ_INT(g->size % 16, 0);
  if (g->n_kv == 28) {
    /* t.u8 and general.alignment left their places (2 and 1) for the end. */
    CHECK(g->kv[1].key.len == 8 && !memcmp(g->kv[1].key.data, "t.u8.arr", 8));
    CHECK(g->kv[25].key.len == 4 && !memcmp(g->kv[25].key.data, "t.u8", 4));
    CHECK_EQ_INT(g->kv[25].type, LLMC_GGUF_UINT32);
    CHECK(g->kv[26].key.len == 17 && !memcmp(g->kv[26].key.data, "general.file_type", 17));
    CHECK(g->kv[27].key.len == 17 && !memcmp(g->kv[27].key.data, "general.alignment", 17));
  }
  int64_t v = 0;
  CHECK(llmc_gguf_get_int(g, "t.u8", &v) && v == 7);
  CHECK(llmc_gguf_get_int(g, "general.file_type", &v) && v == 14);
  llmc_gguf_close(g);
}

/* ---- 3. misuse and failures ---- */

static void test_errors(void) {
  static const uint64_t dims[4] = {32, 2, 1, 1};
  const llmc_gguf_str_t name = {"w", 1};
  uint8_t data[100] = {0};

  /* An existing file survives a failed write, and no .tmp is left. */
  const path_t path = in_dir("keep.gguf");
  FILE *f = fopen(path.s, "wb");
  CHECK(f && fputs("old", f) >= 0 && fclose(f) == 0);
  llmc_gguf_writer_t *w = NULL;
  CHECK_OK(llmc_gguf_writer_create(path.s, &w));
  if (w) {
    CHECK(exists("keep.gguf.tmp"));
    CHECK_OK(llmc_gguf_writer_add_tensor(w, name, 2, dims, LLMC_GGML_Q8_0, 68));
    CHECK_OK(llmc_gguf_writer_write(w, data, 67));
    CHECK_ERROR(llmc_gguf_writer_finish(w), INTERNAL, "tensor w: 67 of its 68 bytes written");
    CHECK_ERROR(llmc_gguf_writer_set_u32(w, "k", 1), INTERNAL, "after the tensor data started");
    llmc_gguf_writer_destroy(w);
  }
  size_t size = 0;
  uint8_t *old = read_all(path.s, &size);
  CHECK(old && size == 3 && !memcmp(old, "old", 3));
  free(old);
  CHECK(!exists("keep.gguf.tmp"));

  /* More data than the tensors hold; nothing after a failure. */
  CHECK_OK(llmc_gguf_writer_create(in_dir("long.gguf").s, &w));
  if (w) {
    CHECK_OK(llmc_gguf_writer_add_tensor(w, name, 2, dims, LLMC_GGML_Q8_0, 68));
    CHECK_ERROR(llmc_gguf_writer_write(w, data, 69),
                INTERNAL, "1 bytes more than the tensors hold");
    CHECK_ERROR(llmc_gguf_writer_finish(w), INTERNAL, "failed");
    llmc_gguf_writer_destroy(w);
  }
  CHECK(!exists("long.gguf") && !exists("long.gguf.tmp"));

  /* Bad keys, alignments and tensor descriptors. */
  CHECK_OK(llmc_gguf_writer_create(in_dir("bad.gguf").s, &w));
  if (w) {
    CHECK_ERROR(llmc_gguf_writer_set_u32(w, "general.alignment", 48),
                INVALID_ARGUMENT, "power of two");
    CHECK_ERROR(llmc_gguf_writer_set_u32(w, "general.alignment", 0),
                INVALID_ARGUMENT, "power of two");
    const uint8_t eight[8] = {8};
    const llmc_gguf_kv_t wide = {
        .key = {"general.alignment", 17}, .type = LLMC_GGUF_UINT64, .value = eight};
    CHECK_ERROR(llmc_gguf_writer_copy_kv(w, &wide),
                INVALID_ARGUMENT, "general.alignment must be a uint32");
    const llmc_gguf_kv_t odd = {.key = {"k", 1}, .type = LLMC_GGUF_TYPE_COUNT, .value = eight};
    CHECK_ERROR(llmc_gguf_writer_copy_kv(w, &odd), INVALID_ARGUMENT, "key k: value type 13");
    CHECK_ERROR(llmc_gguf_writer_set_u32(w, "", 1), INVALID_ARGUMENT, "key of 0 bytes");
    char long_name[65];
    memset(long_name, 'a', sizeof long_name);
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, (llmc_gguf_str_t){long_name, 65}, 1, dims, 0, 4),
                INVALID_ARGUMENT, "tensor name of 65 bytes");
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, name, 5, dims, 0, 4),
                INVALID_ARGUMENT, "tensor w: 5 dims");
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, name, 0, dims, 0, 4),
                INVALID_ARGUMENT, "tensor w: 0 dims");
    static const uint64_t zero[2] = {4, 0};
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, name, 2, zero, 0, 4),
                INVALID_ARGUMENT, "tensor w: dim 1 is 0");
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, name, 1, dims, 0, 0),
                INVALID_ARGUMENT, "tensor w: no data");
    CHECK_OK(llmc_gguf_writer_add_tensor(w, name, 1, dims, 0, 128));
    CHECK_ERROR(llmc_gguf_writer_add_tensor(w, name, 1, dims, 0, 128),
                INVALID_ARGUMENT, "tensor w added twice");
    llmc_gguf_writer_destroy(w); /* never finished */
  }
  CHECK(!exists("bad.gguf") && !exists("bad.gguf.tmp"));

  /* A folder that does not exist. */
  w = NULL;
  CHECK_ERROR(llmc_gguf_writer_create(in_dir("no/such/dir.gguf").s, &w),
              IO, "no/such/dir.gguf.tmp");
  CHECK(w == NULL);
}

int main(void) {
  snprintf(dir, sizeof dir, "/tmp/test_gguf_write.XXXXXX");
  if (!mkdtemp(dir)) {
    perror("mkdtemp");
    return 1;
  }
  test_copy();
  test_set_u32();
  test_errors();
  static const char *const files[] = {"copy.gguf", "set.gguf", "keep.gguf"};
  for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) unlink(in_dir(files[i]).s);
  rmdir(dir);
  return check_report("test_gguf_write");
}
