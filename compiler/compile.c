/* compile.c — see compile.h.
 *
 * A model.so is one self-contained file: besides the code and the weights
 * it carries its tokenizer, in the weights section after the tensors, and
 * its metadata describes it there rather than naming a file that may be
 * gone by the time the model runs (docs/model-so.md).
 *
 * The output is assembled next to its destination (OUT.tmp.o, OUT.tmp) and
 * renamed into place only when complete, so a failed or interrupted compile
 * never leaves a partial model.so behind. */
#include "compile.h"

#include <errno.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "codegen.h"
#include "elf_section.h"
#include "formats/gguf_write.h"
#include "import_gguf.h"
#include "import_hf.h"
#include "llmc/abi.h"
#include "model_json.h"
#include "pass.h"
#include "support/file.h"
#include "tokenizer.h"
#include "weights.h"

extern char **environ;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static bool is_directory(const char *path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool ends_with(const char *s, const char *suffix) {
  size_t n = strlen(s), k = strlen(suffix);
  return n >= k && !strcmp(s + n - k, suffix);
}

llmc_status_t llmc_import(const char *source, const char *path_base, cJSON **out_doc) {
  if (is_directory(source)) LLMC_RETURN_IF_ERROR(llmc_import_hf(source, path_base, out_doc), "importing %s", source);
  else if (ends_with(source, ".gguf")) LLMC_RETURN_IF_ERROR(llmc_import_gguf(source, path_base, out_doc), "importing %s", source);
  else return LLMC_ERROR(INVALID_ARGUMENT, "%s: expected a Hugging Face folder or a .gguf file", source);
  return LLMC_OK;
}

llmc_status_t llmc_compile_load(const char *source, llmc_ir_module_t **out) {
  *out = NULL;
  if (ends_with(source, ".ir")) {
    char *text = NULL;
    size_t len = 0;
    LLMC_PROPAGATE(llmc_file_read_all(source, &text, &len));
    llmc_status_t s = LLMC_OK;
    *out = llmc_ir_parse(text, source, &s);
    free(text);
    return s;
  }
  cJSON *doc = NULL;
  char *base = NULL;
  const char *name = source;
  if (ends_with(source, ".gguf") || is_directory(source)) {
    /* Paths in the imported document are relative to the folder the
     * weights are in: the HF folder itself, or the GGUF file's folder. */
    base = is_directory(source) ? strdup(source) : llmc_path_dirname(source);
    llmc_status_t s = llmc_import(source, base, &doc);
    if (s) {
      free(base);
      return s;
    }
    name = "(imported model.json)";
  } else {
    LLMC_PROPAGATE(llmc_model_json_read(source, &doc));
    base = llmc_path_dirname(source);
  }
  llmc_status_t s = llmc_model_json_to_ir(doc, name, base, out);
  cJSON_Delete(doc);
  free(base);
  return s;
}

static cJSON *weights_json(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan) {
  cJSON *list = cJSON_CreateArray();
  for (uint32_t i = 0; i < plan->n; i++) {
    const llmc_ir_weight_t *w = &m->weights[plan->weight[i]];
    cJSON *e = cJSON_CreateObject();
    cJSON_AddStringToObject(e, "name", w->name);
    cJSON_AddStringToObject(e, "dtype", llmc_dtype_name(plan->dtype[i]));
    if (plan->grouped[i]) cJSON_AddStringToObject(e, "layout", "rows16");
    cJSON *shape = cJSON_CreateArray();
    for (int d = 0; d < w->shape.rank; d++) cJSON_AddItemToArray(shape, cJSON_CreateNumber((double)w->shape.dims[d]));
    cJSON_AddItemToObject(e, "shape", shape);
    cJSON_AddNumberToObject(e, "offset", (double)plan->offset[i]);
    cJSON_AddNumberToObject(e, "bytes", (double)plan->bytes[i]);
    cJSON_AddItemToArray(list, e);
  }
  return list;
}

static cJSON *make_metadata(const llmc_ir_module_t *m, const llmc_weight_plan_t *plan, const char *source) {
  cJSON *meta = cJSON_Parse(m->meta_json ? m->meta_json : "{}");
  if (!meta) meta = cJSON_CreateObject();
  cJSON_DeleteItemFromObject(meta, "format");
  cJSON_DeleteItemFromObject(meta, "version");
  cJSON_AddStringToObject(meta, "format", "llmc-model-so");
  cJSON_AddNumberToObject(meta, "abi_version", LLMC_ABI_VERSION);
  cJSON *compiled = cJSON_CreateObject();
  cJSON_AddStringToObject(compiled, "llmc_version", LLMC_VERSION);
  cJSON_AddStringToObject(compiled, "source", source);
  cJSON *passes = cJSON_CreateArray();
  for (const llmc_pass_t *p = llmc_default_pipeline; p->name; p++) cJSON_AddItemToArray(passes, cJSON_CreateString(p->name));
  cJSON_AddItemToObject(compiled, "passes", passes);
  cJSON_AddItemToObject(meta, "compiled", compiled);
  cJSON_AddItemToObject(meta, "weights", weights_json(m, plan));
  return meta;
}

/* The tokenizer of the GGUF file at path as a GGUF of its own, in memory
 * (*out, malloc'ed, *out_len bytes): the metadata keys the tokenizer reads
 * and no tensors, so that the weights are not stored twice. */
static llmc_status_t extract_gguf_tokenizer(const char *path, uint8_t **out, uint64_t *out_len) {
  llmc_gguf_t *g = NULL;
  llmc_gguf_writer_t *w = NULL;
  LLMC_PROPAGATE(llmc_gguf_open(path, &g));
  llmc_status_t s = llmc_gguf_writer_create_memory(&w);
  for (uint64_t i = 0; i < g->n_kv && !s; i++)
    if (llmc_tokenizer_gguf_reads_key(g->kv[i].key)) s = llmc_gguf_writer_copy_kv(w, &g->kv[i]);
  if (!s) s = llmc_gguf_writer_finish(w);
  if (!s) s = llmc_gguf_writer_take_memory(w, out, out_len);
  llmc_gguf_writer_destroy(w);
  llmc_gguf_close(g);
  return llmc_status_annotate(s, "%s: the tokenizer's keys", path);
}

/* Reads the tokenizer that spec (metadata's "tokenizer": {"file":
 * tokenizer.json} or {"gguf": model.gguf}, paths made absolute by
 * model_json.c) names into *out (malloc'ed, *out_len bytes): the
 * tokenizer.json as it is, or extract_gguf_tokenizer's GGUF. *kind is the
 * "embedded" value that says which; *source the path read. */
static llmc_status_t read_tokenizer(const cJSON *spec, uint8_t **out, uint64_t *out_len,
                                    const char **kind, const char **source) {
  const cJSON *file = cJSON_GetObjectItemCaseSensitive(spec, "file");
  const cJSON *gguf = cJSON_GetObjectItemCaseSensitive(spec, "gguf");
  if (!cJSON_IsObject(spec) || cJSON_IsString(file) == cJSON_IsString(gguf))
    return LLMC_ERROR(INVALID_ARGUMENT, "tokenizer: expected null, {\"file\": \"tokenizer.json\"} "
                                        "or {\"gguf\": \"model.gguf\"}");
  if (cJSON_IsString(file)) {
    char *text = NULL;
    size_t len = 0;
    LLMC_RETURN_IF_ERROR(llmc_file_read_all(file->valuestring, &text, &len), "reading the tokenizer");
    *out = (uint8_t *)text;
    *out_len = len;
    *kind = "tokenizer.json";
    *source = file->valuestring;
    return LLMC_OK;
  }
  *kind = "gguf";
  *source = gguf->valuestring;
  return llmc_status_annotate(extract_gguf_tokenizer(gguf->valuestring, out, out_len),
                              "reading the tokenizer");
}

/* Puts the tokenizer the metadata names (if any) into the plan, after the
 * tensors, once it is known to load, and replaces meta's "tokenizer" with
 * where it is:
 * {"embedded", "offset", "bytes", "source"}. *out_data (NULL without a
 * tokenizer) holds the bytes the plan points to; the caller frees it once
 * the section is written. */
static llmc_status_t embed_tokenizer(cJSON *meta, llmc_weight_plan_t *plan, uint8_t **out_data) {
  *out_data = NULL;
  const cJSON *spec = cJSON_GetObjectItemCaseSensitive(meta, "tokenizer");
  if (!spec || cJSON_IsNull(spec)) return LLMC_OK;
  uint64_t bytes = 0;
  const char *kind = NULL, *source = NULL;
  LLMC_PROPAGATE(read_tokenizer(spec, out_data, &bytes, &kind, &source));
  llmc_tokenizer_t *tok = NULL;
  llmc_status_t s = llmc_tokenizer_parse_embedded(kind, *out_data, bytes, &tok);
  llmc_tokenizer_destroy(tok);
  if (s) {
    free(*out_data);
    *out_data = NULL;
    return llmc_status_annotate(s, "the tokenizer of %s cannot be used", source);
  }
  cJSON *embedded = cJSON_CreateObject();
  cJSON_AddStringToObject(embedded, "embedded", kind);
  cJSON_AddNumberToObject(embedded, "offset", (double)llmc_weight_plan_add_tokenizer(plan, *out_data, bytes));
  cJSON_AddNumberToObject(embedded, "bytes", (double)bytes);
  cJSON_AddStringToObject(embedded, "source", source); /* before the old member, which owns it, goes */
  cJSON_ReplaceItemInObjectCaseSensitive(meta, "tokenizer", embedded);
  return LLMC_OK;
}

/* Runs ld.lld to turn the object into a shared object. */
static llmc_status_t link_shared_object(const char *object, const char *output) {
  char lld[4096];
  snprintf(lld, sizeof lld, "%s/ld.lld", LLMC_LLVM_BINDIR);
  if (access(lld, X_OK) != 0) snprintf(lld, sizeof lld, "ld.lld-19");
  char *argv[] = {lld, "-shared", "-z", "noexecstack", "-z", "now", "--hash-style=gnu", "-o", (char *)output,
                  (char *)object, NULL};
  pid_t pid;
  int rc = posix_spawnp(&pid, lld, NULL, NULL, argv, environ);
  if (rc != 0) return LLMC_ERROR(IO, "cannot run %s: %s", lld, strerror(rc));
  int status;
  if (waitpid(pid, &status, 0) < 0) return LLMC_ERROR(IO, "waiting for %s: %s", lld, strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return LLMC_ERROR(INTERNAL, "%s failed linking %s (status %d)", lld, object, status);
  return LLMC_OK;
}

typedef struct {
  const llmc_ir_module_t *m;
  const llmc_weight_plan_t *plan;
} weights_ctx_t;

static void report_progress(uint64_t done, uint64_t total) {
  static int last = -1; /* percent last printed: one compile per process */
  int percent = (int)(100.0 * (double)done / (double)(total ? total : 1));
  if (percent == last) return;
  last = percent;
  fprintf(stderr, "\rllmc: writing weights %3d%%", percent);
  if (done == total) fputc('\n', stderr);
}

static llmc_status_t write_weights(void *ctx, FILE *f) {
  weights_ctx_t *w = ctx;
  /* Progress is worth printing only when writing takes noticeable time. */
  bool show = w->plan->total >= (256u << 20);
  return llmc_weights_write(w->m, w->plan, f, show ? report_progress : NULL);
}

static llmc_status_t build(const llmc_compile_options_t *opts, llmc_ir_module_t *m, const char *obj_path,
                           const char *tmp_path) {
  double t0 = now_s();
  llmc_pipeline_options_t popts = {.dump_dir = opts->dump_ir_dir, .print_after = opts->print_after};
  if (opts->print_after && strcmp(opts->print_after, "all") && !llmc_pass_find(opts->print_after))
    return LLMC_ERROR(INVALID_ARGUMENT, "--print-after: unknown pass \"%s\"", opts->print_after);
  LLMC_PROPAGATE(llmc_pipeline_run(m, &popts));
  double t1 = now_s();

  const llmc_target_t *target = llmc_target_find(opts->target);
  if (!target)
    return LLMC_ERROR(INVALID_ARGUMENT, "unknown target \"%s\" (supported: %s)", opts->target ? opts->target : "host",
                      llmc_target_names());
  llmc_dtype_t quant = opts->quant ? llmc_dtype_from_name(opts->quant) : LLMC_DTYPE_NONE;
  if (quant == LLMC_DTYPE_COUNT)
    return LLMC_ERROR(INVALID_ARGUMENT, "--quant: unknown type \"%s\" (q8_0, q4_0, q4_K, q6_K)", opts->quant);
  llmc_codegen_options_t copts = {.target = target, .cpu = opts->cpu, .object_path = obj_path};
  llmc_weight_plan_t plan;
  LLMC_PROPAGATE(llmc_weight_plan_make(m, quant, llmc_codegen_int8_isa(&copts) != LLMC_INT8_NONE, &plan));
  for (uint32_t i = 0; i < plan.n; i++)
    if (plan.kept_f32[i])
      fprintf(stderr, "llmc: %s: rows of %lld elements are not whole %s blocks; kept in f32\n",
              m->weights[plan.weight[i]].name, (long long)m->weights[plan.weight[i]].shape.dims[1], opts->quant);
  cJSON *meta = make_metadata(m, &plan, opts->source);
  uint8_t *tokenizer = NULL;
  llmc_status_t s = embed_tokenizer(meta, &plan, &tokenizer);
  if (s) {
    cJSON_Delete(meta);
    return s;
  }
  char *ll_path = NULL;
  if (opts->dump_ir_dir) {
    size_t n = strlen(opts->dump_ir_dir) + 32;
    ll_path = malloc(n);
    snprintf(ll_path, n, "%s/99-llvm.ll", opts->dump_ir_dir);
  }
  copts.llvm_ir_path = ll_path;
  s = llmc_codegen(m, &plan, meta, &copts);
  cJSON_Delete(meta);
  free(ll_path);
  double t2 = now_s();
  if (!s) s = link_shared_object(obj_path, tmp_path);
  weights_ctx_t wctx = {m, &plan};
  if (!s)
    s = llmc_elf_append_section(tmp_path, LLMC_WEIGHTS_SECTION, plan.total, LLMC_WEIGHTS_FILE_ALIGN, write_weights,
                                &wctx);
  free(tokenizer);
  if (s) return s;
  if (opts->verbose)
    fprintf(stderr, "llmc: passes %.3f s, codegen %.3f s, link+weights %.3f s (%.1f MiB of weights)\n", t1 - t0,
            t2 - t1, now_s() - t2, (double)plan.total / (1 << 20));
  return LLMC_OK;
}

llmc_status_t llmc_compile(const llmc_compile_options_t *opts) {
  llmc_ir_module_t *m = NULL;
  LLMC_PROPAGATE(llmc_compile_load(opts->source, &m));
  size_t n = strlen(opts->output) + 16;
  char *obj_path = malloc(n), *tmp_path = malloc(n);
  snprintf(obj_path, n, "%s.tmp.o", opts->output);
  snprintf(tmp_path, n, "%s.tmp", opts->output);
  llmc_status_t s = build(opts, m, obj_path, tmp_path);
  if (!s && rename(tmp_path, opts->output) != 0)
    s = LLMC_ERROR(IO, "cannot write %s: %s", opts->output, strerror(errno));
  unlink(obj_path);
  if (s) unlink(tmp_path);
  free(obj_path);
  free(tmp_path);
  llmc_ir_module_destroy(m);
  return s;
}
