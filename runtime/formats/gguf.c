/* gguf.c — see gguf.h. The layout follows the GGUF specification
 * (ggml-org/ggml docs/gguf.md; docs/gguf.md here summarises it):
 *
 *   "GGUF" u32 version, u64 n_tensors, u64 n_kv
 *   n_kv   x { string key, u32 type, value }
 *   n_tensors x { string name, u32 n_dims, u64 dims[n_dims], u32 type, u64 offset }
 *   padding to general.alignment, then the data section (offsets are relative to it)
 *
 * where a string is a u64 length and that many bytes, and an array value is
 * u32 element type, u64 count, then the elements. Everything is little-endian
 * and read byte by byte (no unaligned loads, no host-order assumptions).
 *
 * One cursor walks the file; every read first checks that the bytes are
 * there, and every count is checked against the bytes left before anything
 * is allocated for it, so a hostile file costs at most a few times its own
 * size in memory. Leaf errors say what is wrong; the loops above them add
 * which key or tensor, and the entry point adds the file name. */
#include "formats/gguf.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define GGUF_MAGIC "GGUF"
#define DEFAULT_ALIGNMENT 32
#define MAX_KEY_LEN 65535 /* the specification's limit on a key */
#define MAX_NAME_LEN 64   /* the specification's limit on a tensor name */
#define MAX_DIMS 4
/* The smallest encodings: a key/value (1-byte key, u32 type, 1-byte value)
 * and a tensor info (1-byte name, u32 n_dims, one u64 dim, u32 type, u64
 * offset). Counts larger than the bytes left divided by these are lies. */
#define MIN_KV_BYTES (8 + 1 + 4 + 1)
#define MIN_TENSOR_BYTES (8 + 1 + 4 + 8 + 4 + 8)

/* Bytes of one scalar of each metadata type; 0 for STRING and ARRAY. */
static const uint8_t scalar_size[LLMC_GGUF_TYPE_COUNT] = {
    [LLMC_GGUF_UINT8] = 1,   [LLMC_GGUF_INT8] = 1,    [LLMC_GGUF_UINT16] = 2,
    [LLMC_GGUF_INT16] = 2,   [LLMC_GGUF_UINT32] = 4,  [LLMC_GGUF_INT32] = 4,
    [LLMC_GGUF_FLOAT32] = 4, [LLMC_GGUF_BOOL] = 1,    [LLMC_GGUF_UINT64] = 8,
    [LLMC_GGUF_INT64] = 8,   [LLMC_GGUF_FLOAT64] = 8,
};

/* ggml's tensor types as the specification lists them: name, elements per
 * block, bytes per block (ggml-common.h). Numbers missing here (4, 5, 31-33,
 * 36-38: removed from ggml; 40 and up: newer than this table) are unknown. */
static const struct {
  const char *name;
  uint32_t block;
  uint32_t bytes;
} ggml_types[] = {
    [0] = {"f32", 1, 4},          [1] = {"f16", 1, 2},         [2] = {"q4_0", 32, 18},
    [3] = {"q4_1", 32, 20},       [6] = {"q5_0", 32, 22},      [7] = {"q5_1", 32, 24},
    [8] = {"q8_0", 32, 34},       [9] = {"q8_1", 32, 36},      [10] = {"q2_K", 256, 84},
    [11] = {"q3_K", 256, 110},    [12] = {"q4_K", 256, 144},   [13] = {"q5_K", 256, 176},
    [14] = {"q6_K", 256, 210},    [15] = {"q8_K", 256, 292},   [16] = {"iq2_xxs", 256, 66},
    [17] = {"iq2_xs", 256, 74},   [18] = {"iq3_xxs", 256, 98}, [19] = {"iq1_s", 256, 50},
    [20] = {"iq4_nl", 32, 18},    [21] = {"iq3_s", 256, 110},  [22] = {"iq2_s", 256, 82},
    [23] = {"iq4_xs", 256, 136},  [24] = {"i8", 1, 1},         [25] = {"i16", 1, 2},
    [26] = {"i32", 1, 4},         [27] = {"i64", 1, 8},        [28] = {"f64", 1, 8},
    [29] = {"iq1_m", 256, 56},    [30] = {"bf16", 1, 2},       [34] = {"tq1_0", 256, 54},
    [35] = {"tq2_0", 256, 66},    [39] = {"mxfp4", 32, 17},
};

const char *llmc_ggml_type_name(uint32_t type) {
  return type < sizeof ggml_types / sizeof ggml_types[0] ? ggml_types[type].name : NULL;
}

/* ---- reading ---- */

typedef struct {
  const uint8_t *data;
  uint64_t size, pos;
} cursor_t;

static uint64_t load_le(const uint8_t *p, int n) {
  uint64_t v = 0;
  for (int i = n; i-- > 0;) v = v << 8 | p[i];
  return v;
}

static llmc_status_t past_end(const cursor_t *c, uint64_t n, const char *what) {
  return LLMC_ERROR(INVALID_ARGUMENT,
                    "%s (%llu bytes at offset %llu) runs past the end of the file (size %llu)",
                    what, (unsigned long long)n, (unsigned long long)c->pos,
                    (unsigned long long)c->size);
}

/* Advances over n bytes, returning where they start in *out. */
static llmc_status_t take(cursor_t *c, uint64_t n, const char *what, const uint8_t **out) {
  if (c->size - c->pos < n) return past_end(c, n, what);
  *out = c->data + c->pos;
  c->pos += n;
  return LLMC_OK;
}

static llmc_status_t read_uint(cursor_t *c, int n, const char *what, uint64_t *out) {
  const uint8_t *p = NULL;
  LLMC_PROPAGATE(take(c, (uint64_t)n, what, &p));
  *out = load_le(p, n);
  return LLMC_OK;
}

static llmc_status_t read_u32(cursor_t *c, const char *what, uint32_t *out) {
  uint64_t v = 0;
  LLMC_PROPAGATE(read_uint(c, 4, what, &v));
  *out = (uint32_t)v;
  return LLMC_OK;
}

static llmc_status_t read_str(cursor_t *c, const char *what, llmc_gguf_str_t *out) {
  const uint8_t *p = NULL;
  LLMC_PROPAGATE(read_uint(c, 8, what, &out->len));
  LLMC_PROPAGATE(take(c, out->len, what, &p));
  out->data = (const char *)p;
  return LLMC_OK;
}

/* At most 80 bytes of a name from the file, for messages (a hostile name
 * can be anything; a long one would drown the message). */
#define SHOW(s) (int)((s).len < 80 ? (s).len : 80), (s).data

/* ---- metadata ---- */

static llmc_status_t check_bools(const uint8_t *p, uint64_t n) {
  for (uint64_t i = 0; i < n; i++)
    if (p[i] > 1)
      return LLMC_ERROR(INVALID_ARGUMENT, "boolean value %u (must be 0 or 1)", p[i]);
  return LLMC_OK;
}

/* An array value: element type, count, elements. Strings get an owned
 * table of their offsets from kv->value. */
static llmc_status_t parse_array(cursor_t *c, llmc_gguf_kv_t *kv) {
  uint32_t et = 0;
  uint64_t n = 0;
  LLMC_PROPAGATE(read_u32(c, "array element type", &et));
  if (et == LLMC_GGUF_ARRAY)
    return LLMC_ERROR(UNIMPLEMENTED, "arrays of arrays are not supported");
  if (et >= LLMC_GGUF_TYPE_COUNT)
    return LLMC_ERROR(INVALID_ARGUMENT, "unknown array element type %u", et);
  LLMC_PROPAGATE(read_uint(c, 8, "array length", &n));
  kv->elem_type = (llmc_gguf_type_t)et;
  kv->n = n;
  kv->value = c->data + c->pos;
  uint64_t left = c->size - c->pos;
  if (et != LLMC_GGUF_STRING) {
    uint64_t size = scalar_size[et];
    if (n > left / size)
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "array of %llu %u-byte values does not fit in the %llu bytes left",
                        (unsigned long long)n, (unsigned)size, (unsigned long long)left);
    c->pos += n * size;
    return et == LLMC_GGUF_BOOL ? check_bools(kv->value, n) : LLMC_OK;
  }
  if (n > left / 8)
    return LLMC_ERROR(INVALID_ARGUMENT, "array of %llu strings does not fit in the %llu bytes left",
                      (unsigned long long)n, (unsigned long long)left);
  uint64_t *offsets = malloc(sizeof *offsets * (size_t)(n ? n : 1));
  if (!offsets) return LLMC_ERROR(OUT_OF_MEMORY, "array of %llu strings", (unsigned long long)n);
  const uint64_t start = c->pos;
  for (uint64_t i = 0; i < n; i++) {
    llmc_gguf_str_t str;
    offsets[i] = c->pos - start;
    llmc_status_t s = read_str(c, "string", &str);
    if (s) {
      free(offsets);
      return llmc_status_annotate(s, "element %llu", (unsigned long long)i);
    }
  }
  kv->str_offsets = offsets;
  return LLMC_OK;
}

/* One key/value pair. */
static llmc_status_t parse_kv(cursor_t *c, llmc_gguf_kv_t *kv) {
  uint32_t type = 0;
  LLMC_PROPAGATE(read_str(c, "key", &kv->key));
  if (kv->key.len == 0 || kv->key.len > MAX_KEY_LEN)
    return LLMC_ERROR(INVALID_ARGUMENT, "key of %llu bytes (must be 1 to %d)",
                      (unsigned long long)kv->key.len, MAX_KEY_LEN);
  LLMC_RETURN_IF_ERROR(read_u32(c, "value type", &type), "key %.*s", SHOW(kv->key));
  if (type >= LLMC_GGUF_TYPE_COUNT)
    return LLMC_ERROR(INVALID_ARGUMENT, "key %.*s: unknown value type %u", SHOW(kv->key), type);
  kv->type = (llmc_gguf_type_t)type;
  llmc_status_t s;
  if (type == LLMC_GGUF_ARRAY) {
    s = parse_array(c, kv);
  } else if (type == LLMC_GGUF_STRING) {
    llmc_gguf_str_t str;
    kv->value = c->data + c->pos;
    s = read_str(c, "string value", &str);
  } else {
    s = take(c, scalar_size[type], "value", &kv->value);
    if (!s && type == LLMC_GGUF_BOOL) s = check_bools(kv->value, 1);
  }
  return llmc_status_annotate(s, "key %.*s", SHOW(kv->key));
}

static int str_cmp(llmc_gguf_str_t a, llmc_gguf_str_t b) {
  int c = memcmp(a.data, b.data, a.len < b.len ? a.len : b.len);
  return c ? c : (a.len > b.len) - (a.len < b.len);
}

static int by_str(const void *a, const void *b) {
  return str_cmp(**(const llmc_gguf_str_t *const *)a, **(const llmc_gguf_str_t *const *)b);
}

/* Rejects a name that appears twice among n names, each the first member
 * of an element of `stride` bytes starting at base (the key of a
 * llmc_gguf_kv_t, the name of a llmc_gguf_tensor_t). */
static llmc_status_t check_unique(const void *base, size_t stride, uint64_t n, const char *what) {
  if (n < 2) return LLMC_OK;
  const llmc_gguf_str_t **order = malloc(sizeof *order * (size_t)n);
  if (!order) return LLMC_ERROR(OUT_OF_MEMORY, "%llu %ss", (unsigned long long)n, what);
  for (uint64_t i = 0; i < n; i++)
    order[i] = (const llmc_gguf_str_t *)((const char *)base + i * stride);
  qsort(order, (size_t)n, sizeof *order, by_str);
  llmc_status_t s = LLMC_OK;
  for (uint64_t i = 1; i < n && !s; i++)
    if (str_cmp(*order[i - 1], *order[i]) == 0)
      s = LLMC_ERROR(INVALID_ARGUMENT, "%s %.*s appears twice", what, SHOW(*order[i]));
  free(order);
  return s;
}

/* general.alignment, when present: an integer, a nonzero power of two. */
static llmc_status_t read_alignment(llmc_gguf_t *g) {
  g->alignment = DEFAULT_ALIGNMENT;
  if (!llmc_gguf_find(g, "general.alignment")) return LLMC_OK;
  int64_t a;
  if (!llmc_gguf_get_int(g, "general.alignment", &a) || a <= 0 || (a & (a - 1)))
    return LLMC_ERROR(INVALID_ARGUMENT, "general.alignment must be a nonzero power of two");
  g->alignment = (uint64_t)a;
  return LLMC_OK;
}

/* ---- tensors ---- */

/* What follows a tensor's name: dims, type and (relative) offset. */
static llmc_status_t parse_tensor_shape(cursor_t *c, llmc_gguf_tensor_t *t) {
  LLMC_PROPAGATE(read_u32(c, "n_dims", &t->n_dims));
  if (t->n_dims < 1 || t->n_dims > MAX_DIMS)
    return LLMC_ERROR(INVALID_ARGUMENT, "%u dims (must be 1 to %d)", t->n_dims, MAX_DIMS);
  uint64_t numel = 1;
  for (uint32_t d = 0; d < t->n_dims; d++) {
    LLMC_PROPAGATE(read_uint(c, 8, "dims", &t->dims[d]));
    if (t->dims[d] == 0 || t->dims[d] > (uint64_t)INT64_MAX / numel)
      return LLMC_ERROR(INVALID_ARGUMENT, "dim %u is %llu (dims must be > 0, and their product "
                        "at most 2^63-1)", d, (unsigned long long)t->dims[d]);
    numel *= t->dims[d];
  }
  LLMC_PROPAGATE(read_u32(c, "type", &t->type));
  return read_uint(c, 8, "offset", &t->offset);
}

/* One tensor info; its offset is still relative to the data section. */
static llmc_status_t parse_tensor_info(cursor_t *c, llmc_gguf_tensor_t *t) {
  LLMC_PROPAGATE(read_str(c, "name", &t->name));
  if (t->name.len == 0 || t->name.len > MAX_NAME_LEN)
    return LLMC_ERROR(INVALID_ARGUMENT, "name of %llu bytes (must be 1 to %d)",
                      (unsigned long long)t->name.len, MAX_NAME_LEN);
  return llmc_status_annotate(parse_tensor_shape(c, t), "%.*s", SHOW(t->name));
}

/* Places tensor t in the data section: its size from its type and dims,
 * its absolute offset, both checked against the file. */
static llmc_status_t place_tensor(const llmc_gguf_t *g, llmc_gguf_tensor_t *t) {
  if (t->offset % g->alignment)
    return LLMC_ERROR(INVALID_ARGUMENT, "offset %llu is not a multiple of the alignment %llu",
                      (unsigned long long)t->offset, (unsigned long long)g->alignment);
  if (t->offset > g->size - g->data_offset)
    return LLMC_ERROR(INVALID_ARGUMENT, "data offset %llu past the end of the file (size %llu)",
                      (unsigned long long)(g->data_offset + t->offset), (unsigned long long)g->size);
  t->offset += g->data_offset;
  const char *name = llmc_ggml_type_name(t->type);
  if (!name) return LLMC_OK; /* unknown type: nbytes stays 0 */
  uint64_t block = ggml_types[t->type].block, bytes = ggml_types[t->type].bytes;
  if (t->dims[0] % block)
    return LLMC_ERROR(INVALID_ARGUMENT, "row of %llu elements is not a multiple of %s's block of %llu",
                      (unsigned long long)t->dims[0], name, (unsigned long long)block);
  uint64_t blocks = t->dims[0] / block;
  for (uint32_t d = 1; d < t->n_dims; d++) blocks *= t->dims[d]; /* <= numel: no overflow */
  if (blocks > (g->size - t->offset) / bytes) {
    if (blocks > (UINT64_MAX - t->offset) / bytes)
      return LLMC_ERROR(INVALID_ARGUMENT, "%llu blocks of %s do not fit in 2^64 bytes",
                        (unsigned long long)blocks, name);
    return LLMC_ERROR(INVALID_ARGUMENT, "data [%llu, %llu) past the end of the file (size %llu)",
                      (unsigned long long)t->offset,
                      (unsigned long long)(t->offset + blocks * bytes),
                      (unsigned long long)g->size);
  }
  t->nbytes = blocks * bytes;
  return LLMC_OK;
}

/* ---- the file ---- */

static llmc_status_t parse_header(llmc_gguf_t *g, cursor_t *c) {
  const uint8_t *magic = NULL;
  uint64_t n_tensors = 0, n_kv = 0;
  LLMC_PROPAGATE(take(c, 4, "magic", &magic));
  if (memcmp(magic, GGUF_MAGIC, 4) != 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "not a GGUF file (magic %02x %02x %02x %02x)", magic[0],
                      magic[1], magic[2], magic[3]);
  LLMC_PROPAGATE(read_u32(c, "version", &g->version));
  if (g->version == 1)
    return LLMC_ERROR(UNIMPLEMENTED, "unsupported GGUF version 1 (llmc reads versions 2 and 3)");
  if (g->version != 2 && g->version != 3) {
    uint32_t v = g->version;
    uint32_t swapped = v >> 24 | (v >> 8 & 0xff00) | (v << 8 & 0xff0000) | v << 24;
    if (swapped >= 1 && swapped <= 3)
      return LLMC_ERROR(UNIMPLEMENTED, "big-endian GGUF files are not supported");
    return LLMC_ERROR(UNIMPLEMENTED, "unsupported GGUF version %u (llmc reads versions 2 and 3)",
                      g->version);
  }
  LLMC_PROPAGATE(read_uint(c, 8, "tensor count", &n_tensors));
  LLMC_PROPAGATE(read_uint(c, 8, "metadata count", &n_kv));
  if (n_kv > (c->size - c->pos) / MIN_KV_BYTES)
    return LLMC_ERROR(INVALID_ARGUMENT, "%llu metadata pairs cannot fit in a file of %llu bytes",
                      (unsigned long long)n_kv, (unsigned long long)c->size);
  g->kv = calloc((size_t)(n_kv ? n_kv : 1), sizeof *g->kv);
  if (!g->kv) return LLMC_ERROR(OUT_OF_MEMORY, "%llu metadata pairs", (unsigned long long)n_kv);
  for (; g->n_kv < n_kv; g->n_kv++)
    LLMC_RETURN_IF_ERROR(parse_kv(c, &g->kv[g->n_kv]), "metadata pair %llu",
                         (unsigned long long)g->n_kv);
  LLMC_PROPAGATE(check_unique(g->kv, sizeof *g->kv, g->n_kv, "key"));
  LLMC_PROPAGATE(read_alignment(g));

  if (n_tensors > (c->size - c->pos) / MIN_TENSOR_BYTES)
    return LLMC_ERROR(INVALID_ARGUMENT, "%llu tensors cannot fit in a file of %llu bytes",
                      (unsigned long long)n_tensors, (unsigned long long)c->size);
  g->tensors = calloc((size_t)(n_tensors ? n_tensors : 1), sizeof *g->tensors);
  if (!g->tensors) return LLMC_ERROR(OUT_OF_MEMORY, "%llu tensors", (unsigned long long)n_tensors);
  for (; g->n_tensors < n_tensors; g->n_tensors++) {
    llmc_gguf_tensor_t *t = &g->tensors[g->n_tensors];
    LLMC_RETURN_IF_ERROR(parse_tensor_info(c, t), "tensor %llu", (unsigned long long)g->n_tensors);
  }
  LLMC_PROPAGATE(check_unique(g->tensors, sizeof *g->tensors, g->n_tensors, "tensor"));

  /* The data section starts at the next multiple of the alignment (a file
   * without tensors may end before it). */
  uint64_t pad = (g->alignment - c->pos % g->alignment) % g->alignment;
  if (pad > c->size - c->pos) {
    if (n_tensors)
      return LLMC_ERROR(INVALID_ARGUMENT, "the data section starts past the end of the file");
    pad = c->size - c->pos;
  }
  g->data_offset = c->pos + pad;
  for (uint64_t i = 0; i < g->n_tensors; i++) {
    llmc_gguf_tensor_t *t = &g->tensors[i];
    LLMC_RETURN_IF_ERROR(place_tensor(g, t), "tensor %llu (%.*s)", (unsigned long long)i,
                         SHOW(t->name));
  }
  return LLMC_OK;
}

llmc_status_t llmc_gguf_parse(const uint8_t *data, uint64_t size, const char *name,
                              llmc_gguf_t **out) {
  *out = NULL;
  llmc_gguf_t *g = calloc(1, sizeof *g);
  if (g) g->path = strdup(name);
  if (!g || !g->path) {
    free(g);
    return LLMC_ERROR(OUT_OF_MEMORY, "%s", name);
  }
  g->map = data;
  g->size = size;
  cursor_t c = {.data = data, .size = size};
  llmc_status_t s = parse_header(g, &c);
  if (s) {
    llmc_gguf_close(g);
    return llmc_status_annotate(s, "%s", name);
  }
  *out = g;
  return LLMC_OK;
}

llmc_status_t llmc_gguf_open(const char *path, llmc_gguf_t **out) {
  *out = NULL;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return LLMC_ERROR(NOT_FOUND, "%s: no such file", path);
    return LLMC_ERROR(IO, "%s: %s", path, strerror(errno));
  }
  struct stat sb;
  if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
    close(fd);
    return LLMC_ERROR(IO, "%s: not a regular file", path);
  }
  if (sb.st_size == 0) {
    close(fd);
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: empty file (not a GGUF file)", path);
  }
  void *map = mmap(NULL, (size_t)sb.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
  int map_errno = errno;
  close(fd);
  if (map == MAP_FAILED) return LLMC_ERROR(IO, "%s: mmap: %s", path, strerror(map_errno));
  llmc_status_t s = llmc_gguf_parse(map, (uint64_t)sb.st_size, path, out);
  if (s) {
    munmap(map, (size_t)sb.st_size);
    return s;
  }
  (*out)->owns_map = true;
  return LLMC_OK;
}

void llmc_gguf_close(llmc_gguf_t *g) {
  if (!g) return;
  for (uint64_t i = 0; i < g->n_kv; i++) free((void *)g->kv[i].str_offsets);
  free(g->kv);
  free(g->tensors);
  if (g->owns_map) munmap((void *)g->map, (size_t)g->size);
  free(g->path);
  free(g);
}

/* ---- lookups ---- */

static bool str_is(llmc_gguf_str_t s, const char *z) {
  size_t n = strlen(z);
  return s.len == n && memcmp(s.data, z, n) == 0;
}

const llmc_gguf_kv_t *llmc_gguf_find(const llmc_gguf_t *g, const char *key) {
  for (uint64_t i = 0; i < g->n_kv; i++)
    if (str_is(g->kv[i].key, key)) return &g->kv[i];
  return NULL;
}

const llmc_gguf_tensor_t *llmc_gguf_find_tensor(const llmc_gguf_t *g, const char *name) {
  for (uint64_t i = 0; i < g->n_tensors; i++)
    if (str_is(g->tensors[i].name, name)) return &g->tensors[i];
  return NULL;
}

llmc_status_t llmc_gguf_tensor_data(const llmc_gguf_t *g, const llmc_gguf_tensor_t *t,
                                    const uint8_t **out) {
  *out = NULL;
  if (!llmc_ggml_type_name(t->type))
    return LLMC_ERROR(UNIMPLEMENTED, "%s: tensor %.*s has ggml type %u, which llmc does not know",
                      g->path, SHOW(t->name), t->type);
  *out = g->map + t->offset;
  return LLMC_OK;
}

/* A scalar of numeric type `type` at p as int64 (false for floats, and for
 * a uint64 past INT64_MAX). */
static bool load_int(llmc_gguf_type_t type, const uint8_t *p, int64_t *out) {
  uint64_t v = load_le(p, scalar_size[type]);
  switch (type) {
  case LLMC_GGUF_UINT8: case LLMC_GGUF_UINT16: case LLMC_GGUF_UINT32: *out = (int64_t)v; return true;
  case LLMC_GGUF_INT8: *out = (int8_t)v; return true;
  case LLMC_GGUF_INT16: *out = (int16_t)v; return true;
  case LLMC_GGUF_INT32: *out = (int32_t)v; return true;
  case LLMC_GGUF_INT64: *out = (int64_t)v; return true;
  case LLMC_GGUF_UINT64:
    if (v > INT64_MAX) return false;
    *out = (int64_t)v;
    return true;
  default: return false;
  }
}

/* A scalar of float type `type` at p (false for other types). */
static bool load_float(llmc_gguf_type_t type, const uint8_t *p, double *out) {
  if (type == LLMC_GGUF_FLOAT32) {
    uint32_t bits = (uint32_t)load_le(p, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    *out = f;
    return true;
  }
  if (type == LLMC_GGUF_FLOAT64) {
    uint64_t bits = load_le(p, 8);
    memcpy(out, &bits, sizeof *out);
    return true;
  }
  return false;
}

bool llmc_gguf_get_int(const llmc_gguf_t *g, const char *key, int64_t *out) {
  const llmc_gguf_kv_t *kv = llmc_gguf_find(g, key);
  return kv && load_int(kv->type, kv->value, out);
}

bool llmc_gguf_get_float(const llmc_gguf_t *g, const char *key, double *out) {
  const llmc_gguf_kv_t *kv = llmc_gguf_find(g, key);
  return kv && load_float(kv->type, kv->value, out);
}

bool llmc_gguf_get_bool(const llmc_gguf_t *g, const char *key, bool *out) {
  const llmc_gguf_kv_t *kv = llmc_gguf_find(g, key);
  if (!kv || kv->type != LLMC_GGUF_BOOL) return false;
  *out = kv->value[0] != 0;
  return true;
}

/* The string whose 8-byte length is at p (its bytes were checked). */
static llmc_gguf_str_t load_str(const uint8_t *p) {
  return (llmc_gguf_str_t){.data = (const char *)p + 8, .len = load_le(p, 8)};
}

bool llmc_gguf_get_string(const llmc_gguf_t *g, const char *key, llmc_gguf_str_t *out) {
  const llmc_gguf_kv_t *kv = llmc_gguf_find(g, key);
  if (!kv || kv->type != LLMC_GGUF_STRING) return false;
  *out = load_str(kv->value);
  return true;
}

/* Element i of a numeric array, or NULL when kv is not one or i >= n. */
static const uint8_t *array_elem(const llmc_gguf_kv_t *kv, uint64_t i) {
  if (kv->type != LLMC_GGUF_ARRAY || i >= kv->n || kv->elem_type == LLMC_GGUF_STRING) return NULL;
  return kv->value + i * scalar_size[kv->elem_type];
}

llmc_gguf_str_t llmc_gguf_array_string(const llmc_gguf_kv_t *kv, uint64_t i) {
  if (kv->type != LLMC_GGUF_ARRAY || kv->elem_type != LLMC_GGUF_STRING || i >= kv->n)
    return (llmc_gguf_str_t){.data = "", .len = 0};
  return load_str(kv->value + kv->str_offsets[i]);
}

int64_t llmc_gguf_array_int(const llmc_gguf_kv_t *kv, uint64_t i) {
  const uint8_t *p = array_elem(kv, i);
  int64_t v;
  double f;
  if (p && load_int(kv->elem_type, p, &v)) return v;
  if (p && kv->elem_type == LLMC_GGUF_UINT64) return INT64_MAX; /* saturate */
  if (p && load_float(kv->elem_type, p, &f) && f > -9.2e18 && f < 9.2e18) return (int64_t)f;
  return 0;
}

double llmc_gguf_array_float(const llmc_gguf_kv_t *kv, uint64_t i) {
  const uint8_t *p = array_elem(kv, i);
  int64_t v;
  double f;
  if (p && load_float(kv->elem_type, p, &f)) return f;
  if (p && kv->elem_type == LLMC_GGUF_UINT64) return (double)load_le(p, 8);
  if (p && load_int(kv->elem_type, p, &v)) return (double)v;
  return 0;
}
