/* safetensors.c — see safetensors.h. Reads only the JSON header of each
 * file (with fread, so a directory of shards costs a few kilobytes of I/O),
 * checks every claim it makes against the file size, and builds one table
 * sorted by name for binary search. */
#include "formats/safetensors.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "support/file.h"

/* The format's own limit on the header (safetensors refuses larger ones). */
#define MAX_HEADER_BYTES (100u << 20)
/* Largest integer a JSON number (a double) holds exactly. */
#define MAX_EXACT_INT 9007199254740992.0

/* Every dtype the safetensors format defines with a whole-byte element;
 * llmc reads the float ones. */
static const struct {
  const char *st_name;
  const char *llmc_name; /* NULL: llmc cannot compute with it */
  uint64_t size;
} dtypes[] = {
    {"F32", "f32", 4}, {"F16", "f16", 2},    {"BF16", "bf16", 2},  {"F64", NULL, 8},
    {"I64", NULL, 8},  {"U64", NULL, 8},     {"I32", NULL, 4},     {"U32", NULL, 4},
    {"I16", NULL, 2},  {"U16", NULL, 2},     {"I8", NULL, 1},      {"U8", NULL, 1},
    {"BOOL", NULL, 1}, {"F8_E4M3", NULL, 1}, {"F8_E5M2", NULL, 1}, {"F8_E8M0", NULL, 1},
};

/* A JSON number that is a non-negative integer a double holds exactly. */
static bool json_uint(const cJSON *v, uint64_t *out) {
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  if (!(d >= 0) || d > MAX_EXACT_INT || d != floor(d)) return false;
  *out = (uint64_t)d;
  return true;
}

static llmc_status_t open_error(const char *path) {
  int e = errno;
  if (e == ENOENT) return LLMC_ERROR(NOT_FOUND, "%s: no such file", path);
  return LLMC_ERROR(IO, "%s: %s", path, strerror(e));
}

/* Parses one header entry into *t. data_start is the absolute offset of the
 * data section, data_size its length. */
static llmc_status_t parse_entry(llmc_safetensors_t *st, const char *path, const cJSON *e, int file,
                                 uint64_t data_start, uint64_t data_size,
                                 llmc_safetensors_tensor_t *t) {
  const char *name = e->string;
  if (!cJSON_IsObject(e))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: entry is not an object", path, name);
  t->name = llmc_arena_strdup(st->arena, name);
  t->file = file;

  const cJSON *dt = cJSON_GetObjectItemCaseSensitive(e, "dtype");
  if (!cJSON_IsString(dt))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: \"dtype\" missing or not a string", path,
                      name);
  uint64_t elem = 0;
  for (size_t i = 0; i < sizeof dtypes / sizeof dtypes[0]; i++) {
    if (strcmp(dt->valuestring, dtypes[i].st_name) == 0) {
      t->st_dtype = dtypes[i].st_name;
      t->dtype = dtypes[i].llmc_name;
      elem = dtypes[i].size;
    }
  }
  if (!elem)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: unknown dtype \"%s\"", path, name,
                      dt->valuestring);

  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(e, "shape");
  if (!cJSON_IsArray(shape))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: \"shape\" missing or not an array", path,
                      name);
  int rank = cJSON_GetArraySize(shape);
  if (rank > LLMC_SAFETENSORS_MAX_DIMS)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: rank %d (llmc reads at most %d dims)", path,
                      name, rank, LLMC_SAFETENSORS_MAX_DIMS);
  t->rank = rank;
  uint64_t numel = 1;
  for (int d = 0; d < rank; d++) {
    uint64_t dim;
    if (!json_uint(cJSON_GetArrayItem(shape, d), &dim))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: shape[%d] is not a non-negative integer",
                        path, name, d);
    if (dim && numel > UINT64_MAX / elem / dim)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: shape overflows", path, name);
    numel *= dim;
    t->shape[d] = (int64_t)dim;
  }

  const cJSON *offs = cJSON_GetObjectItemCaseSensitive(e, "data_offsets");
  uint64_t begin, end;
  if (!cJSON_IsArray(offs) || cJSON_GetArraySize(offs) != 2 ||
      !json_uint(cJSON_GetArrayItem(offs, 0), &begin) ||
      !json_uint(cJSON_GetArrayItem(offs, 1), &end))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor %s: \"data_offsets\" must be two non-negative integers", path,
                      name);
  if (begin > end)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: tensor %s: data_offsets [%llu, %llu] run backwards",
                      path, name, (unsigned long long)begin, (unsigned long long)end);
  if (end > data_size)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor %s: data_offsets [%llu, %llu] run past the end of the data "
                      "(%llu bytes; is the file truncated?)",
                      path, name, (unsigned long long)begin, (unsigned long long)end,
                      (unsigned long long)data_size);
  if (end - begin != numel * elem)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: tensor %s: %llu bytes for %llu elements of %s (expected %llu)", path,
                      name, (unsigned long long)(end - begin), (unsigned long long)numel,
                      t->st_dtype, (unsigned long long)(numel * elem));
  t->offset = data_start + begin;
  t->nbytes = end - begin;
  return LLMC_OK;
}

static int by_offset(const void *a, const void *b) {
  const llmc_safetensors_tensor_t *x = *(llmc_safetensors_tensor_t *const *)a;
  const llmc_safetensors_tensor_t *y = *(llmc_safetensors_tensor_t *const *)b;
  return (x->offset > y->offset) - (x->offset < y->offset);
}

static int by_name(const void *a, const void *b) {
  return strcmp(((const llmc_safetensors_tensor_t *)a)->name,
                ((const llmc_safetensors_tensor_t *)b)->name);
}

/* Rejects tensors of one file whose byte ranges overlap. */
static llmc_status_t check_overlap(const char *path, llmc_safetensors_tensor_t *ts, int n) {
  llmc_safetensors_tensor_t **order = malloc(sizeof *order * (size_t)(n ? n : 1));
  if (!order) return LLMC_ERROR(OUT_OF_MEMORY, "%s: %d tensors", path, n);
  for (int i = 0; i < n; i++) order[i] = &ts[i];
  qsort(order, (size_t)n, sizeof *order, by_offset);
  llmc_status_t s = LLMC_OK;
  const llmc_safetensors_tensor_t *prev = NULL;
  for (int i = 0; i < n && !s; i++) {
    const llmc_safetensors_tensor_t *t = order[i];
    if (!t->nbytes) continue;
    if (prev && t->offset < prev->offset + prev->nbytes)
      s = LLMC_ERROR(INVALID_ARGUMENT, "%s: tensors %s and %s overlap", path, prev->name, t->name);
    prev = t;
  }
  free(order);
  return s;
}

/* Reads the header of `path` (file number `file` of st) and appends its
 * tensors to a fresh arena array *out_ts of *out_n entries. */
static llmc_status_t parse_file(llmc_safetensors_t *st, const char *path, int file,
                                llmc_safetensors_tensor_t **out_ts, int *out_n) {
  FILE *f = fopen(path, "rb");
  if (!f) return open_error(path);
  struct stat sb;
  unsigned char len_bytes[8];
  llmc_status_t s = LLMC_OK;
  char *text = NULL;
  cJSON *root = NULL;
  if (fstat(fileno(f), &sb) != 0 || !S_ISREG(sb.st_mode)) {
    s = LLMC_ERROR(IO, "%s: not a regular file", path);
    goto done;
  }
  uint64_t size = (uint64_t)sb.st_size;
  if (size < 8 || fread(len_bytes, 1, 8, f) != 8) {
    s = LLMC_ERROR(INVALID_ARGUMENT, "%s: file of %llu bytes is too short for a header", path,
                   (unsigned long long)size);
    goto done;
  }
  uint64_t header_len = 0;
  for (int i = 7; i >= 0; i--) header_len = header_len << 8 | len_bytes[i];
  if (header_len > MAX_HEADER_BYTES || header_len > size - 8) {
    s = LLMC_ERROR(INVALID_ARGUMENT,
                   "%s: header length %llu is absurd (file is %llu bytes; not a safetensors "
                   "file, or truncated)",
                   path, (unsigned long long)header_len, (unsigned long long)size);
    goto done;
  }
  text = malloc(header_len + 1);
  if (!text) {
    s = LLMC_ERROR(OUT_OF_MEMORY, "%s: header of %llu bytes", path, (unsigned long long)header_len);
    goto done;
  }
  if (fread(text, 1, header_len, f) != header_len) {
    s = LLMC_ERROR(IO, "%s: cannot read the header", path);
    goto done;
  }
  root = cJSON_ParseWithLength(text, header_len);
  if (!cJSON_IsObject(root)) {
    s = LLMC_ERROR(INVALID_ARGUMENT, "%s: header is not a JSON object", path);
    goto done;
  }
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, root) n += strcmp(e->string, "__metadata__") != 0;
  llmc_safetensors_tensor_t *ts = llmc_arena_alloc(st->arena, sizeof *ts * (size_t)n);
  int i = 0;
  cJSON_ArrayForEach(e, root) {
    if (strcmp(e->string, "__metadata__") == 0) continue;
    s = parse_entry(st, path, e, file, 8 + header_len, size - 8 - header_len, &ts[i++]);
    if (s) goto done;
  }
  s = check_overlap(path, ts, n);
  *out_ts = ts;
  *out_n = n;
done:
  cJSON_Delete(root);
  free(text);
  fclose(f);
  return s;
}

static llmc_safetensors_t *table_create(const char *source) {
  llmc_arena_t *arena = llmc_arena_create();
  if (!arena) return NULL;
  llmc_safetensors_t *st = llmc_arena_alloc(arena, sizeof *st);
  st->arena = arena;
  st->source = llmc_arena_strdup(arena, source);
  return st;
}

/* Joins the per-file arrays into st->tensors, sorted by name, and rejects
 * a name that appears twice. */
static llmc_status_t table_merge(llmc_safetensors_t *st, llmc_safetensors_tensor_t **parts,
                                 const int *counts) {
  int total = 0;
  for (int f = 0; f < st->n_files; f++) total += counts[f];
  st->tensors = llmc_arena_alloc(st->arena, sizeof *st->tensors * (size_t)total);
  for (int f = 0; f < st->n_files; f++) {
    if (counts[f])
      memcpy(st->tensors + st->n_tensors, parts[f], sizeof *parts[f] * (size_t)counts[f]);
    st->n_tensors += counts[f];
  }
  qsort(st->tensors, (size_t)total, sizeof *st->tensors, by_name);
  for (int i = 1; i < total; i++) {
    const llmc_safetensors_tensor_t *a = &st->tensors[i - 1], *b = &st->tensors[i];
    if (strcmp(a->name, b->name) == 0)
      return LLMC_ERROR(INVALID_ARGUMENT, "tensor %s appears twice (in %s and %s)", a->name,
                        st->files[a->file], st->files[b->file]);
  }
  return LLMC_OK;
}

llmc_status_t llmc_safetensors_open(const char *path, llmc_safetensors_t **out_st) {
  *out_st = NULL;
  llmc_safetensors_t *st = table_create(path);
  if (!st) return LLMC_ERROR(OUT_OF_MEMORY, "%s", path);
  st->n_files = 1;
  st->files = llmc_arena_alloc(st->arena, sizeof *st->files);
  st->files[0] = st->source;
  llmc_safetensors_tensor_t *part = NULL;
  int count = 0;
  llmc_status_t s = parse_file(st, path, 0, &part, &count);
  if (!s) s = table_merge(st, &part, &count);
  if (s) {
    llmc_safetensors_destroy(st);
    return s;
  }
  *out_st = st;
  return LLMC_OK;
}

/* Index in st->files of the shard called name (relative to dir), adding
 * it if new; names[] holds the relative names of st->files. */
static int shard_index(llmc_safetensors_t *st, const char **names, const char *dir,
                       const char *name) {
  for (int f = 0; f < st->n_files; f++)
    if (strcmp(names[f], name) == 0) return f;
  names[st->n_files] = name;
  st->files[st->n_files] = llmc_arena_printf(st->arena, "%s/%s", dir, name);
  return st->n_files++;
}

/* Opens every shard the weight map names and checks the map against them. */
static llmc_status_t open_shards(llmc_safetensors_t *st, const char *dir, const cJSON *map) {
  size_t n_entries = (size_t)cJSON_GetArraySize(map) + 1;
  st->files = llmc_arena_alloc(st->arena, sizeof *st->files * n_entries);
  const char **names = llmc_arena_alloc(st->arena, sizeof *names * n_entries);
  int *entry_file = llmc_arena_alloc(st->arena, sizeof *entry_file * n_entries);
  int i = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, map) {
    if (!cJSON_IsString(e) || !e->valuestring[0])
      return LLMC_ERROR(INVALID_ARGUMENT, "weight_map/%s: not a file name", e->string);
    if (e->valuestring[0] == '/' || strstr(e->valuestring, ".."))
      return LLMC_ERROR(INVALID_ARGUMENT, "weight_map/%s: shard \"%s\" is outside the folder",
                        e->string, e->valuestring);
    entry_file[i++] = shard_index(st, names, dir, e->valuestring);
  }
  llmc_safetensors_tensor_t **parts = llmc_arena_alloc(st->arena, sizeof *parts * n_entries);
  int *counts = llmc_arena_alloc(st->arena, sizeof *counts * n_entries);
  for (int f = 0; f < st->n_files; f++) {
    llmc_status_t s = parse_file(st, st->files[f], f, &parts[f], &counts[f]);
    if (s) return s;
  }
  llmc_status_t s = table_merge(st, parts, counts);
  if (s) return s;
  i = 0;
  cJSON_ArrayForEach(e, map) {
    const llmc_safetensors_tensor_t *t = llmc_safetensors_find(st, e->string);
    int f = entry_file[i++];
    if (!t || t->file != f)
      return LLMC_ERROR(INVALID_ARGUMENT, "weight_map/%s: %s has no tensor of that name", e->string,
                        st->files[f]);
  }
  return LLMC_OK;
}

llmc_status_t llmc_safetensors_open_index(const char *index_path, llmc_safetensors_t **out_st) {
  *out_st = NULL;
  char *text = NULL;
  size_t len;
  llmc_status_t s = llmc_file_read_all(index_path, &text, &len);
  if (s) return s;
  cJSON *root = cJSON_Parse(text);
  free(text);
  const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
  if (!cJSON_IsObject(map)) {
    cJSON_Delete(root);
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: not JSON with a \"weight_map\" object", index_path);
  }
  llmc_safetensors_t *st = table_create(index_path);
  char *dir = llmc_path_dirname(index_path);
  if (!st || !dir) {
    llmc_safetensors_destroy(st);
    free(dir);
    cJSON_Delete(root);
    return LLMC_ERROR(OUT_OF_MEMORY, "%s", index_path);
  }
  s = open_shards(st, dir, map);
  free(dir);
  cJSON_Delete(root);
  if (s) {
    llmc_safetensors_destroy(st);
    return llmc_status_annotate(s, "%s", index_path);
  }
  *out_st = st;
  return LLMC_OK;
}

llmc_status_t llmc_safetensors_open_folder(const char *folder, llmc_safetensors_t **out_st) {
  *out_st = NULL;
  size_t n = strlen(folder) + sizeof "/model.safetensors.index.json";
  char *path = malloc(n);
  if (!path) return LLMC_ERROR(OUT_OF_MEMORY, "%s", folder);
  llmc_status_t s;
  snprintf(path, n, "%s/model.safetensors.index.json", folder);
  if (access(path, F_OK) == 0) {
    s = llmc_safetensors_open_index(path, out_st);
  } else {
    snprintf(path, n, "%s/model.safetensors", folder);
    if (access(path, F_OK) == 0)
      s = llmc_safetensors_open(path, out_st);
    else
      s = LLMC_ERROR(NOT_FOUND, "%s: no model.safetensors or model.safetensors.index.json", folder);
  }
  free(path);
  return s;
}

const llmc_safetensors_tensor_t *llmc_safetensors_find(const llmc_safetensors_t *st,
                                                       const char *name) {
  llmc_safetensors_tensor_t key = {.name = name};
  return bsearch(&key, st->tensors, (size_t)st->n_tensors, sizeof key, by_name);
}

void llmc_safetensors_destroy(llmc_safetensors_t *st) {
  if (st) llmc_arena_destroy(st->arena);
}
