/* gguf_write.c — see gguf_write.h. The layout written (as gguf.c reads it):
 *
 *   "GGUF" u32 3, u64 n_tensors, u64 n_kv
 *   n_kv      x { string key, u32 type, value }
 *   n_tensors x { string name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset }
 *   zeros to general.alignment; then each tensor's data and zeros to the alignment
 *
 * Each key/value is kept encoded, exactly as it will be in the file, from
 * the moment it is added; the header is assembled from those bytes in
 * memory and written with the first tensor data. Tensor offsets (relative
 * to the data section) are only computed then, since general.alignment may
 * be set after the tensors are added. Data goes through a stdio buffer
 * straight to PATH.tmp, or for a memory writer to an open_memstream
 * buffer, so both kinds share every line but the last steps of finish.
 * Integers are encoded little-endian byte by byte. */
#include "formats/gguf_write.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_ALIGNMENT 32
#define MAX_KEY_LEN 65535 /* the limits gguf.c checks when reading */
#define MAX_NAME_LEN 64
#define MAX_DIMS 4
#define MEMORY_NAME "(in-memory GGUF)" /* a memory writer's "path" in messages */

/* At most 80 bytes of a name, for messages. */
#define SHOW_N(len, p) (int)((len) < 80 ? (len) : 80), (p)
#define SHOW(s) SHOW_N((s).len, (s).data)

/* A growable byte string. */
typedef struct {
  uint8_t *data;
  uint64_t len, cap;
} bytes_t;

typedef struct {
  char name[MAX_NAME_LEN];
  uint64_t name_len;
  uint32_t n_dims;
  uint64_t dims[MAX_DIMS]; /* ggml order: dims[0] is the row length */
  uint32_t type;           /* ggml type number */
  uint64_t nbytes;         /* size of the data, as the caller declared it */
} tensor_entry_t;

struct llmc_gguf_writer {
  char *path, *tmp_path; /* owned; both MEMORY_NAME for a memory writer */
  FILE *f;               /* PATH.tmp or the memory stream; NULL once closed */
  bool in_memory;        /* made by llmc_gguf_writer_create_memory */
  char *mem;             /* memory writers: the stream's buffer (owned until taken) */
  size_t mem_len;        /* its length, valid after a flush or close */
  uint64_t alignment;    /* general.alignment, or 32 */
  bytes_t *kv;           /* [n_kv] owned, in file order: each pair encoded (u64 key
                            length, key, u32 type, value) */
  uint64_t n_kv, cap_kv;
  tensor_entry_t *tensors; /* [n_tensors] owned, in file order */
  uint64_t n_tensors, cap_tensors;
  bool started;  /* the header is written; no more keys or tensors */
  bool failed;   /* a write failed: the file is unusable */
  bool finished; /* renamed into place */
  uint64_t pos;  /* bytes written to the file */
  uint64_t cur, cur_done; /* the tensor being filled, and its bytes so far */
};

/* ---- encoding ---- */

static bool bytes_put(bytes_t *b, const void *p, uint64_t n) {
  if (n > ((uint64_t)1 << 62) - b->len) return false; /* no doubling past 2^63 */
  if (n > b->cap - b->len) {
    uint64_t cap = b->cap ? b->cap : 64;
    while (cap - b->len < n) cap *= 2;
    uint8_t *data = realloc(b->data, (size_t)cap);
    if (!data) return false;
    b->data = data;
    b->cap = cap;
  }
  if (n) memcpy(b->data + b->len, p, (size_t)n);
  b->len += n;
  return true;
}

static bool bytes_put_le(bytes_t *b, uint64_t v, int n) {
  uint8_t le[8];
  for (int i = 0; i < n; i++) le[i] = (uint8_t)(v >> 8 * i);
  return bytes_put(b, le, (uint64_t)n);
}

static bool bytes_put_str(bytes_t *b, const char *s, uint64_t len) {
  return bytes_put_le(b, len, 8) && bytes_put(b, s, len);
}

static uint64_t load_le64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 8; i-- > 0;) v = v << 8 | p[i];
  return v;
}

/* Bytes of one scalar of metadata type `type`; 0 for STRING, ARRAY and
 * unknown numbers. */
static uint64_t scalar_bytes(uint32_t type) {
  switch (type) {
  case LLMC_GGUF_UINT8: case LLMC_GGUF_INT8: case LLMC_GGUF_BOOL: return 1;
  case LLMC_GGUF_UINT16: case LLMC_GGUF_INT16: return 2;
  case LLMC_GGUF_UINT32: case LLMC_GGUF_INT32: case LLMC_GGUF_FLOAT32: return 4;
  case LLMC_GGUF_UINT64: case LLMC_GGUF_INT64: case LLMC_GGUF_FLOAT64: return 8;
  default: return 0;
  }
}

/* The bytes of kv's value in its file (from kv->value on: for an array,
 * its elements, after the element type and count). */
static llmc_status_t value_bytes(const llmc_gguf_kv_t *kv, uint64_t *out) {
  if (kv->type == LLMC_GGUF_STRING) {
    *out = 8 + load_le64(kv->value);
  } else if (kv->type == LLMC_GGUF_ARRAY && kv->elem_type == LLMC_GGUF_STRING) {
    const uint8_t *last = kv->n ? kv->value + kv->str_offsets[kv->n - 1] : NULL;
    *out = last ? kv->str_offsets[kv->n - 1] + 8 + load_le64(last) : 0;
  } else if (kv->type == LLMC_GGUF_ARRAY && scalar_bytes(kv->elem_type)) {
    *out = kv->n * scalar_bytes(kv->elem_type);
  } else if (kv->type != LLMC_GGUF_ARRAY && scalar_bytes(kv->type)) {
    *out = scalar_bytes(kv->type);
  } else {
    return LLMC_ERROR(INVALID_ARGUMENT, "value type %u (element type %u) is not a GGUF type",
                      (unsigned)kv->type, (unsigned)kv->elem_type);
  }
  return LLMC_OK;
}

/* ---- key/values ---- */

static bool key_is(const bytes_t *e, const char *key, uint64_t len) {
  return load_le64(e->data) == len && memcmp(e->data + 8, key, (size_t)len) == 0;
}

/* general.alignment = the value at p, of metadata type `type`. */
static llmc_status_t set_alignment(llmc_gguf_writer_t *w, uint32_t type, const uint8_t *p) {
  uint32_t a = 0;
  if (type == LLMC_GGUF_UINT32) a = p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24;
  if (a == 0 || (a & (a - 1)))
    return LLMC_ERROR(INVALID_ARGUMENT, "general.alignment must be a uint32 power of two");
  w->alignment = a;
  return LLMC_OK;
}

/* Adds the pair `key` (len bytes) = a value of metadata type `type`
 * (arrays: n elements of elem_type) whose encoding is the n_value bytes at
 * value, replacing and moving to the end a pair with the same key. */
static llmc_status_t put_kv(llmc_gguf_writer_t *w, const char *key, uint64_t len, uint32_t type,
                            uint32_t elem_type, uint64_t n, const uint8_t *value, uint64_t n_value) {
  if (w->started)
    return LLMC_ERROR(INTERNAL, "key %.*s added after the tensor data started", SHOW_N(len, key));
  if (len == 0 || len > MAX_KEY_LEN)
    return LLMC_ERROR(INVALID_ARGUMENT, "key of %llu bytes (must be 1 to %d)",
                      (unsigned long long)len, MAX_KEY_LEN);
  if (len == strlen("general.alignment") && memcmp(key, "general.alignment", (size_t)len) == 0)
    LLMC_PROPAGATE(set_alignment(w, type, value));
  bytes_t e = {0};
  bool ok = bytes_put_str(&e, key, len) && bytes_put_le(&e, type, 4);
  if (type == LLMC_GGUF_ARRAY) ok = ok && bytes_put_le(&e, elem_type, 4) && bytes_put_le(&e, n, 8);
  if (!ok || !bytes_put(&e, value, n_value)) {
    free(e.data);
    return LLMC_ERROR(OUT_OF_MEMORY, "key %.*s", SHOW_N(len, key));
  }
  for (uint64_t i = 0; i < w->n_kv; i++) {
    if (!key_is(&w->kv[i], key, len)) continue;
    free(w->kv[i].data);
    memmove(&w->kv[i], &w->kv[i + 1], (size_t)(w->n_kv - i - 1) * sizeof *w->kv);
    w->n_kv--;
    break;
  }
  if (w->n_kv == w->cap_kv) {
    uint64_t cap = w->cap_kv ? 2 * w->cap_kv : 16;
    bytes_t *kv = realloc(w->kv, (size_t)cap * sizeof *kv);
    if (!kv) {
      free(e.data);
      return LLMC_ERROR(OUT_OF_MEMORY, "%llu keys", (unsigned long long)cap);
    }
    w->kv = kv;
    w->cap_kv = cap;
  }
  w->kv[w->n_kv++] = e;
  return LLMC_OK;
}

llmc_status_t llmc_gguf_writer_copy_kv(llmc_gguf_writer_t *w, const llmc_gguf_kv_t *kv) {
  uint64_t n_value = 0;
  LLMC_RETURN_IF_ERROR(value_bytes(kv, &n_value), "key %.*s", SHOW(kv->key));
  return put_kv(w, kv->key.data, kv->key.len, kv->type, kv->elem_type, kv->n, kv->value, n_value);
}

llmc_status_t llmc_gguf_writer_set_u32(llmc_gguf_writer_t *w, const char *key, uint32_t value) {
  const uint8_t le[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                         (uint8_t)(value >> 24)};
  return put_kv(w, key, strlen(key), LLMC_GGUF_UINT32, 0, 0, le, 4);
}

/* ---- tensors ---- */

llmc_status_t llmc_gguf_writer_add_tensor(llmc_gguf_writer_t *w, llmc_gguf_str_t name,
                                          uint32_t n_dims, const uint64_t *dims, uint32_t type,
                                          uint64_t nbytes) {
  if (w->started)
    return LLMC_ERROR(INTERNAL, "tensor %.*s added after the tensor data started", SHOW(name));
  if (name.len == 0 || name.len > MAX_NAME_LEN)
    return LLMC_ERROR(INVALID_ARGUMENT, "tensor name of %llu bytes (must be 1 to %d)",
                      (unsigned long long)name.len, MAX_NAME_LEN);
  if (n_dims < 1 || n_dims > MAX_DIMS)
    return LLMC_ERROR(INVALID_ARGUMENT, "tensor %.*s: %u dims (must be 1 to %d)", SHOW(name), n_dims,
                      MAX_DIMS);
  for (uint32_t d = 0; d < n_dims; d++)
    if (dims[d] == 0) return LLMC_ERROR(INVALID_ARGUMENT, "tensor %.*s: dim %u is 0", SHOW(name), d);
  if (nbytes == 0) return LLMC_ERROR(INVALID_ARGUMENT, "tensor %.*s: no data", SHOW(name));
  for (uint64_t i = 0; i < w->n_tensors; i++)
    if (w->tensors[i].name_len == name.len && memcmp(w->tensors[i].name, name.data, (size_t)name.len) == 0)
      return LLMC_ERROR(INVALID_ARGUMENT, "tensor %.*s added twice", SHOW(name));
  if (w->n_tensors == w->cap_tensors) {
    uint64_t cap = w->cap_tensors ? 2 * w->cap_tensors : 64;
    tensor_entry_t *tensors = realloc(w->tensors, (size_t)cap * sizeof *tensors);
    if (!tensors) return LLMC_ERROR(OUT_OF_MEMORY, "%llu tensors", (unsigned long long)cap);
    w->tensors = tensors;
    w->cap_tensors = cap;
  }
  tensor_entry_t *t = &w->tensors[w->n_tensors++];
  memcpy(t->name, name.data, (size_t)name.len);
  t->name_len = name.len;
  t->n_dims = n_dims;
  memcpy(t->dims, dims, n_dims * sizeof *dims);
  t->type = type;
  t->nbytes = nbytes;
  return LLMC_OK;
}

/* ---- the file ---- */

static llmc_status_t put(llmc_gguf_writer_t *w, const void *p, uint64_t n) {
  if (n && fwrite(p, 1, (size_t)n, w->f) != n) {
    w->failed = true;
    return LLMC_ERROR(IO, "%s: write error: %s", w->tmp_path, strerror(errno));
  }
  w->pos += n;
  return LLMC_OK;
}

/* Zeros up to the next multiple of the alignment. */
static llmc_status_t pad(llmc_gguf_writer_t *w) {
  static const uint8_t zeros[4096];
  for (uint64_t left = (w->alignment - w->pos % w->alignment) % w->alignment; left;) {
    uint64_t n = left < sizeof zeros ? left : sizeof zeros;
    LLMC_PROPAGATE(put(w, zeros, n));
    left -= n;
  }
  return LLMC_OK;
}

/* Everything before the data section, assembled in memory, then written. */
static llmc_status_t write_header(llmc_gguf_writer_t *w) {
  bytes_t h = {0};
  bool ok = bytes_put(&h, "GGUF", 4) && bytes_put_le(&h, 3, 4) && bytes_put_le(&h, w->n_tensors, 8) &&
            bytes_put_le(&h, w->n_kv, 8);
  for (uint64_t i = 0; ok && i < w->n_kv; i++) ok = bytes_put(&h, w->kv[i].data, w->kv[i].len);
  uint64_t offset = 0;
  for (uint64_t i = 0; ok && i < w->n_tensors; i++) {
    const tensor_entry_t *t = &w->tensors[i];
    ok = bytes_put_str(&h, t->name, t->name_len) && bytes_put_le(&h, t->n_dims, 4);
    for (uint32_t d = 0; ok && d < t->n_dims; d++) ok = bytes_put_le(&h, t->dims[d], 8);
    ok = ok && bytes_put_le(&h, t->type, 4) && bytes_put_le(&h, offset, 8);
    uint64_t padded = t->nbytes + (w->alignment - t->nbytes % w->alignment) % w->alignment;
    if (padded < t->nbytes || padded > UINT64_MAX - offset) {
      free(h.data);
      return LLMC_ERROR(INVALID_ARGUMENT, "tensor %.*s: the data section passes 2^64 bytes",
                        SHOW_N(t->name_len, t->name));
    }
    offset += padded;
  }
  llmc_status_t s = ok ? put(w, h.data, h.len) : LLMC_ERROR(OUT_OF_MEMORY, "%s: header", w->tmp_path);
  free(h.data);
  w->started = true;
  if (s) w->failed = true;
  return s ? s : pad(w);
}

/* A writer with no stream yet, its names copied; NULL without memory. */
static llmc_gguf_writer_t *writer_new(const char *path, const char *tmp_suffix) {
  llmc_gguf_writer_t *w = calloc(1, sizeof *w);
  size_t n = strlen(path) + strlen(tmp_suffix) + 1;
  if (w) w->path = strdup(path);
  if (w) w->tmp_path = malloc(n);
  if (!w || !w->path || !w->tmp_path) {
    llmc_gguf_writer_destroy(w);
    return NULL;
  }
  snprintf(w->tmp_path, n, "%s%s", path, tmp_suffix);
  w->alignment = DEFAULT_ALIGNMENT;
  return w;
}

llmc_status_t llmc_gguf_writer_create(const char *path, llmc_gguf_writer_t **out) {
  *out = NULL;
  llmc_gguf_writer_t *w = writer_new(path, ".tmp");
  if (!w) return LLMC_ERROR(OUT_OF_MEMORY, "%s", path);
  w->f = fopen(w->tmp_path, "wb");
  if (!w->f) {
    llmc_status_t s = LLMC_ERROR(IO, "cannot create %s: %s", w->tmp_path, strerror(errno));
    free(w->tmp_path); /* not ours to remove */
    w->tmp_path = NULL;
    llmc_gguf_writer_destroy(w);
    return s;
  }
  *out = w;
  return LLMC_OK;
}

llmc_status_t llmc_gguf_writer_create_memory(llmc_gguf_writer_t **out) {
  *out = NULL;
  llmc_gguf_writer_t *w = writer_new(MEMORY_NAME, "");
  if (!w) return LLMC_ERROR(OUT_OF_MEMORY, "%s", MEMORY_NAME);
  w->in_memory = true;
  w->f = open_memstream(&w->mem, &w->mem_len);
  if (!w->f) {
    llmc_status_t s = LLMC_ERROR(OUT_OF_MEMORY, "%s: %s", MEMORY_NAME, strerror(errno));
    llmc_gguf_writer_destroy(w);
    return s;
  }
  *out = w;
  return LLMC_OK;
}

llmc_status_t llmc_gguf_writer_write(llmc_gguf_writer_t *w, const void *data, uint64_t n) {
  if (w->failed || w->finished)
    return LLMC_ERROR(INTERNAL, "%s: write after the file %s", w->tmp_path,
                      w->failed ? "failed" : "was finished");
  if (!w->started) LLMC_PROPAGATE(write_header(w));
  const uint8_t *p = data;
  while (n) {
    if (w->cur == w->n_tensors) {
      w->failed = true;
      return LLMC_ERROR(INTERNAL, "%s: %llu bytes more than the tensors hold", w->tmp_path,
                        (unsigned long long)n);
    }
    const tensor_entry_t *t = &w->tensors[w->cur];
    uint64_t take = t->nbytes - w->cur_done < n ? t->nbytes - w->cur_done : n;
    LLMC_PROPAGATE(put(w, p, take));
    p += take;
    n -= take;
    w->cur_done += take;
    if (w->cur_done == t->nbytes) {
      LLMC_PROPAGATE(pad(w));
      w->cur++;
      w->cur_done = 0;
    }
  }
  return LLMC_OK;
}

llmc_status_t llmc_gguf_writer_finish(llmc_gguf_writer_t *w) {
  if (w->failed || w->finished)
    return LLMC_ERROR(INTERNAL, "%s: finish after the file %s", w->tmp_path,
                      w->failed ? "failed" : "was finished");
  if (!w->started) LLMC_PROPAGATE(write_header(w));
  if (w->cur < w->n_tensors) {
    const tensor_entry_t *t = &w->tensors[w->cur];
    return LLMC_ERROR(INTERNAL, "%s: tensor %.*s: %llu of its %llu bytes written", w->tmp_path,
                      SHOW_N(t->name_len, t->name), (unsigned long long)w->cur_done,
                      (unsigned long long)t->nbytes);
  }
  int err = 0;
  if (fflush(w->f) != 0 || (!w->in_memory && fsync(fileno(w->f)) != 0)) err = errno ? errno : EIO;
  if (fclose(w->f) != 0 && !err) err = errno ? errno : EIO;
  w->f = NULL;
  if (err) {
    w->failed = true;
    return LLMC_ERROR(IO, "%s: write error: %s", w->tmp_path, strerror(err));
  }
  if (!w->in_memory && rename(w->tmp_path, w->path) != 0) {
    w->failed = true;
    return LLMC_ERROR(IO, "cannot rename %s to %s: %s", w->tmp_path, w->path, strerror(errno));
  }
  w->finished = true;
  return LLMC_OK;
}

llmc_status_t llmc_gguf_writer_take_memory(llmc_gguf_writer_t *w, uint8_t **out,
                                           uint64_t *out_len) {
  *out = NULL;
  *out_len = 0;
  if (!w->in_memory || !w->finished || !w->mem)
    return LLMC_ERROR(INTERNAL, "%s: no finished in-memory file to take", w->tmp_path);
  *out = (uint8_t *)w->mem;
  *out_len = w->mem_len;
  w->mem = NULL;
  return LLMC_OK;
}

void llmc_gguf_writer_destroy(llmc_gguf_writer_t *w) {
  if (!w) return;
  if (w->f) fclose(w->f); /* a memory stream's buffer is final only after this */
  if (!w->finished && !w->in_memory && w->tmp_path) unlink(w->tmp_path);
  free(w->mem);
  for (uint64_t i = 0; i < w->n_kv; i++) free(w->kv[i].data);
  free(w->kv);
  free(w->tensors);
  free(w->path);
  free(w->tmp_path);
  free(w);
}
