/* model_json.c — model.json → IR.
 *
 * The document is validated as it is read: every error carries the JSON
 * path of the offending value so a person editing the file by hand can find
 * it. Tensors become weight-table entries (their files are checked to exist
 * and to be long enough); graph nodes become IR nodes in document order,
 * with a tensor used as an argument turned into one `weight` node. */
#include "model_json.h"

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "support/file.h"

llmc_status_t llmc_model_json_read(const char *path, cJSON **out_doc) {
  *out_doc = NULL;
  char *text = NULL;
  size_t len = 0;
  LLMC_PROPAGATE(llmc_file_read_all(path, &text, &len));
  const char *end = NULL;
  cJSON *doc = cJSON_ParseWithLengthOpts(text, len, &end, false);
  if (!doc) {
    size_t off = end ? (size_t)(end - text) : 0;
    int line = 1;
    for (size_t i = 0; i < off && i < len; i++) line += text[i] == '\n';
    free(text);
    return LLMC_ERROR(INVALID_ARGUMENT, "%s:%d: not valid JSON", path, line);
  }
  free(text);
  *out_doc = doc;
  return LLMC_OK;
}

/* State of one conversion; `where` is the JSON path prefix for messages. */
typedef struct {
  llmc_ir_module_t *m;
  const char *doc_name;
  const char **files; /* [n_files] resolved weight file paths */
  uint64_t *file_sizes;
  int n_files;
  llmc_ir_value_t *weight_node; /* [n_weights] weight node per tensor, 0 if none yet */
} reader_t;

#define BAD(path_fmt, ...) LLMC_ERROR(INVALID_ARGUMENT, "%s:" path_fmt, r->doc_name, __VA_ARGS__)

static llmc_status_t read_shape(reader_t *r, const cJSON *shape, const char *where,
                                llmc_ir_shape_t *out) {
  if (!cJSON_IsArray(shape)) return BAD("%s/shape: expected an array of dimensions", where);
  int rank = cJSON_GetArraySize(shape);
  if (rank < 1 || rank > LLMC_IR_MAX_DIMS)
    return BAD("%s/shape: rank %d not in [1, %d]", where, rank, LLMC_IR_MAX_DIMS);
  out->rank = rank;
  for (int i = 0; i < rank; i++) {
    const cJSON *d = cJSON_GetArrayItem(shape, i);
    if (!cJSON_IsNumber(d) || d->valuedouble < 1 || d->valuedouble > 1e12 ||
        d->valuedouble != floor(d->valuedouble))
      return BAD("%s/shape/%d: expected a positive integer", where, i);
    out->dims[i] = (int64_t)d->valuedouble;
  }
  return LLMC_OK;
}

static llmc_status_t read_weight_files(reader_t *r, const cJSON *doc, const char *base_dir) {
  const cJSON *files = cJSON_GetObjectItemCaseSensitive(doc, "weight_files");
  if (!files) return LLMC_OK;
  if (!cJSON_IsArray(files)) return BAD("%s: expected an array", "/weight_files");
  r->n_files = cJSON_GetArraySize(files);
  r->files = llmc_arena_alloc(r->m->arena, (size_t)r->n_files * sizeof *r->files + 1);
  r->file_sizes = llmc_arena_alloc(r->m->arena, (size_t)r->n_files * sizeof *r->file_sizes + 1);
  for (int i = 0; i < r->n_files; i++) {
    const cJSON *f = cJSON_GetArrayItem(files, i);
    const cJSON *path = cJSON_GetObjectItemCaseSensitive(f, "path");
    if (!cJSON_IsString(path)) return BAD("/weight_files/%d/path: expected a string", i);
    const char *p = path->valuestring;
    r->files[i] = p[0] == '/' || !base_dir || !base_dir[0]
                      ? llmc_arena_strdup(r->m->arena, p)
                      : llmc_arena_printf(r->m->arena, "%s/%s", base_dir, p);
    struct stat st;
    if (stat(r->files[i], &st) != 0)
      return BAD("/weight_files/%d: cannot open %s: %s", i, r->files[i], strerror(errno));
    r->file_sizes[i] = (uint64_t)st.st_size;
  }
  return LLMC_OK;
}

static llmc_status_t read_tensor(reader_t *r, const cJSON *t, int index) {
  char where[48];
  snprintf(where, sizeof where, "/tensors/%d", index);
  const cJSON *name = cJSON_GetObjectItemCaseSensitive(t, "name");
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(t, "dtype");
  if (!cJSON_IsString(name) || !name->valuestring[0])
    return BAD("%s/name: expected a non-empty string", where);
  if (llmc_ir_find_weight(r->m, name->valuestring) >= 0)
    return BAD("%s/name: tensor \"%s\" is defined twice", where, name->valuestring);
  if (!cJSON_IsString(dtype)) return BAD("%s/dtype: expected a string (tensor %s)", where, name->valuestring);
  llmc_dtype_t dt = llmc_dtype_from_name(dtype->valuestring);
  if (dt == LLMC_DTYPE_COUNT || dt == LLMC_DTYPE_NONE || dt == LLMC_DTYPE_I32)
    return BAD("%s/dtype: unknown tensor dtype \"%s\" (tensor %s)", where, dtype->valuestring,
               name->valuestring);
  llmc_ir_shape_t shape = {0};
  LLMC_RETURN_IF_ERROR(read_shape(r, cJSON_GetObjectItemCaseSensitive(t, "shape"), where, &shape),
                       "tensor %s", name->valuestring);
  int64_t numel = llmc_shape_numel(&shape);
  int64_t inner = shape.dims[shape.rank - 1];
  if (inner % llmc_dtype_block_elems(dt))
    return BAD("%s/shape: tensor %s: row length %lld is not a multiple of %s's block of %d", where,
               name->valuestring, (long long)inner, dtype->valuestring, llmc_dtype_block_elems(dt));
  uint32_t w = llmc_ir_add_weight(r->m, name->valuestring, dt, shape);
  llmc_ir_weight_t *wt = &r->m->weights[w];

  const cJSON *data = cJSON_GetObjectItemCaseSensitive(t, "data");
  if (data) {
    if (dt != LLMC_DTYPE_F32) return BAD("%s/data: inline data must be f32 (tensor %s)", where, name->valuestring);
    if (!cJSON_IsArray(data) || cJSON_GetArraySize(data) != numel)
      return BAD("%s/data: expected an array of %lld numbers (tensor %s)", where, (long long)numel,
                 name->valuestring);
    wt->kind = LLMC_WEIGHT_DATA;
    wt->data = llmc_arena_alloc(r->m->arena, (size_t)numel * sizeof(float));
    int i = 0;
    for (const cJSON *v = data->child; v; v = v->next, i++) {
      if (!cJSON_IsNumber(v)) return BAD("%s/data/%d: expected a number", where, i);
      wt->data[i] = (float)v->valuedouble;
    }
    return LLMC_OK;
  }
  const cJSON *file = cJSON_GetObjectItemCaseSensitive(t, "file");
  const cJSON *offset = cJSON_GetObjectItemCaseSensitive(t, "offset");
  if (!cJSON_IsNumber(file) || file->valueint < 0 || file->valueint >= r->n_files)
    return BAD("%s/file: expected an index into weight_files (tensor %s)", where, name->valuestring);
  if (!cJSON_IsNumber(offset) || offset->valuedouble < 0 || offset->valuedouble != floor(offset->valuedouble))
    return BAD("%s/offset: expected a non-negative integer (tensor %s)", where, name->valuestring);
  wt->kind = LLMC_WEIGHT_FILE;
  wt->file = r->files[file->valueint];
  wt->offset = (uint64_t)offset->valuedouble;
  uint64_t nbytes = llmc_dtype_nbytes(dt, (uint64_t)numel);
  if (wt->offset + nbytes > r->file_sizes[file->valueint])
    return BAD("%s: tensor %s needs bytes [%llu, %llu) of %s, which has only %llu bytes "
               "(truncated file?)",
               where, name->valuestring, (unsigned long long)wt->offset,
               (unsigned long long)(wt->offset + nbytes), wt->file,
               (unsigned long long)r->file_sizes[file->valueint]);
  return LLMC_OK;
}

/* Finds the value an argument string names: an earlier node id, or a
 * tensor (whose weight node is created on first use). 0 if neither. */
static llmc_ir_value_t resolve_arg(reader_t *r, const char *s) {
  for (uint32_t i = r->m->n_nodes; i-- > 1;)
    if (r->m->nodes[i].name && r->m->nodes[i].op != LLMC_OP_WEIGHT && !strcmp(r->m->nodes[i].name, s))
      return i;
  int64_t w = llmc_ir_find_weight(r->m, s);
  if (w < 0) return 0;
  if (!r->weight_node[w]) {
    llmc_ir_value_t v = llmc_ir_add_node(r->m, LLMC_OP_WEIGHT, 0, NULL);
    r->m->nodes[v].weight = (uint32_t)w;
    r->m->nodes[v].name = r->m->weights[w].name;
    r->weight_node[w] = v;
  }
  return r->weight_node[w];
}

static llmc_status_t read_node(reader_t *r, const cJSON *n, int index) {
  char where[48];
  snprintf(where, sizeof where, "/graph/%d", index);
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(n, "id");
  const cJSON *op = cJSON_GetObjectItemCaseSensitive(n, "op");
  const cJSON *args = cJSON_GetObjectItemCaseSensitive(n, "args");
  const cJSON *attrs = cJSON_GetObjectItemCaseSensitive(n, "attrs");
  if (!cJSON_IsString(id) || !id->valuestring[0]) return BAD("%s/id: expected a non-empty string", where);
  const char *nid = id->valuestring;
  if (!cJSON_IsString(op)) return BAD("%s/op: expected a string (node %s)", where, nid);
  llmc_ir_op_t o = llmc_ir_op_from_name(op->valuestring);
  if (o == LLMC_OP_COUNT || o == LLMC_OP_WEIGHT)
    return BAD("%s/op: unknown op \"%s\" (node %s)", where, op->valuestring, nid);
  if (llmc_ir_find_weight(r->m, nid) >= 0 || resolve_arg(r, nid))
    return BAD("%s/id: \"%s\" is already the name of a tensor or node", where, nid);
  int n_args = args ? cJSON_GetArraySize(args) : 0;
  if ((args && !cJSON_IsArray(args)) || n_args < llmc_ir_op_min_args(o) ||
      n_args > llmc_ir_op_max_args(o))
    return BAD("%s/args: %s takes %d to %d arguments, got %d (node %s)", where, op->valuestring,
               llmc_ir_op_min_args(o), llmc_ir_op_max_args(o), n_args, nid);
  llmc_ir_value_t vals[LLMC_IR_MAX_ARGS];
  for (int i = 0; i < n_args; i++) {
    const cJSON *a = cJSON_GetArrayItem(args, i);
    if (!cJSON_IsString(a)) return BAD("%s/args/%d: expected a string (node %s)", where, i, nid);
    vals[i] = resolve_arg(r, a->valuestring);
    if (!vals[i])
      return BAD("%s/args/%d: \"%s\" is neither an earlier node nor a tensor (node %s)", where, i,
                 a->valuestring, nid);
  }
  llmc_ir_value_t v = llmc_ir_add_node(r->m, o, n_args, vals);
  llmc_ir_node_t *node = &r->m->nodes[v];
  node->name = llmc_arena_strdup(r->m->arena, nid);
  node->loc = llmc_arena_printf(r->m->arena, "%s:%s", r->doc_name, where);
  if (attrs && !cJSON_IsObject(attrs)) return BAD("%s/attrs: expected an object (node %s)", where, nid);
  for (const cJSON *a = attrs ? attrs->child : NULL; a; a = a->next) {
    if (cJSON_IsString(a))
      llmc_ir_set_string(r->m, v, a->string, a->valuestring);
    else if (cJSON_IsNumber(a) && a->valuedouble == floor(a->valuedouble) && fabs(a->valuedouble) < 1e15)
      llmc_ir_set_int(r->m, v, a->string, (int64_t)a->valuedouble);
    else if (cJSON_IsNumber(a))
      llmc_ir_set_float(r->m, v, a->string, a->valuedouble);
    else
      return BAD("%s/attrs/%s: expected a number or a string (node %s)", where, a->string, nid);
  }
  return LLMC_OK;
}

/* The tokenizer's file paths made absolute: the compiler reads the file
 * to embed it in the model.so (compile.c) from wherever it runs, not from
 * the folder model.json was read in. A path that does not resolve is
 * still joined to base_dir, so that the error reading it names the file. */
static void absolute_tokenizer_paths(cJSON *tokenizer, const char *base_dir) {
  for (cJSON *f = tokenizer ? tokenizer->child : NULL; f; f = f->next) {
    if (!cJSON_IsString(f) || f->valuestring[0] == '/') continue;
    char joined[4096], resolved[PATH_MAX];
    snprintf(joined, sizeof joined, "%s/%s", base_dir && base_dir[0] ? base_dir : ".", f->valuestring);
    cJSON_SetValuestring(f, realpath(joined, resolved) ? resolved : joined);
  }
}

/* The metadata carried into the .so: everything but tensors and graph. */
static const char *make_meta(llmc_ir_module_t *m, const cJSON *doc, const char *base_dir) {
  cJSON *meta = cJSON_CreateObject();
  for (const cJSON *f = doc->child; f; f = f->next) {
    if (!strcmp(f->string, "tensors") || !strcmp(f->string, "graph") ||
        !strcmp(f->string, "weight_files"))
      continue;
    cJSON_AddItemToObject(meta, f->string, cJSON_Duplicate(f, true));
  }
  absolute_tokenizer_paths(cJSON_GetObjectItemCaseSensitive(meta, "tokenizer"), base_dir);
  char *text = cJSON_PrintUnformatted(meta);
  const char *copy = llmc_arena_strdup(m->arena, text);
  cJSON_free(text);
  cJSON_Delete(meta);
  return copy;
}

static llmc_status_t convert(reader_t *r, const cJSON *doc, const char *base_dir) {
  if (!cJSON_IsObject(doc)) return BAD("%s: expected a JSON object", "");
  const cJSON *format = cJSON_GetObjectItemCaseSensitive(doc, "format");
  const cJSON *version = cJSON_GetObjectItemCaseSensitive(doc, "version");
  if (!cJSON_IsString(format) || strcmp(format->valuestring, "llmc-model"))
    return BAD("%s: expected \"llmc-model\"", "/format");
  if (!cJSON_IsNumber(version) || version->valueint != 1)
    return BAD("%s: unsupported version (this llmc reads version 1)", "/version");
  const cJSON *arch = cJSON_GetObjectItemCaseSensitive(doc, "architecture");
  if (!cJSON_IsString(arch)) return BAD("%s: expected a string", "/architecture");
  r->m->arch = llmc_arena_strdup(r->m->arena, arch->valuestring);
  if (!cJSON_IsObject(cJSON_GetObjectItemCaseSensitive(doc, "config")))
    return BAD("%s: expected an object", "/config");
  r->m->meta_json = make_meta(r->m, doc, base_dir);

  LLMC_PROPAGATE(read_weight_files(r, doc, base_dir));
  const cJSON *tensors = cJSON_GetObjectItemCaseSensitive(doc, "tensors");
  if (!cJSON_IsArray(tensors)) return BAD("%s: expected an array", "/tensors");
  int i = 0;
  for (const cJSON *t = tensors->child; t; t = t->next, i++)
    LLMC_PROPAGATE(read_tensor(r, t, i));
  r->weight_node = llmc_arena_alloc(r->m->arena, (r->m->n_weights + 1) * sizeof *r->weight_node);

  const cJSON *graph = cJSON_GetObjectItemCaseSensitive(doc, "graph");
  if (!cJSON_IsArray(graph) || !cJSON_GetArraySize(graph))
    return BAD("%s: expected a non-empty array of nodes", "/graph");
  i = 0;
  for (const cJSON *n = graph->child; n; n = n->next, i++) LLMC_PROPAGATE(read_node(r, n, i));
  return LLMC_OK;
}

llmc_status_t llmc_model_json_to_ir(const cJSON *doc, const char *doc_name, const char *base_dir,
                                    llmc_ir_module_t **out) {
  *out = NULL;
  reader_t r = {.m = llmc_ir_module_create(), .doc_name = doc_name};
  if (!r.m) return LLMC_ERROR(OUT_OF_MEMORY, "creating an IR module");
  llmc_status_t s = convert(&r, doc, base_dir);
  if (s) {
    llmc_ir_module_destroy(r.m);
    return s;
  }
  *out = r.m;
  return LLMC_OK;
}
