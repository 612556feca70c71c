/* cmd_invoke.c — `llmc invoke`: call one exported entry point of a
 * model.so by itself, for debugging generated code region by region.
 *
 * The entry point's signature comes from the metadata (docs/model-so.md),
 * so the call is built at run time with libffi: every argument is a
 * pointer. A "step" argument gets an llmc_step_t made by the engine for
 * one fresh sequence of the --tokens (positions 0..T-1, logits for every
 * row); a "tensor" argument gets a 64-byte aligned buffer of its shape
 * (T and L = number of tokens, S = 1), zero-filled or read from an --in
 * file whose size must match exactly, and written to its --out file after
 * the call. */
#include <ffi.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"
#include "support/file.h"

#define MAX_RANK 8

static const char usage[] =
    "usage: llmc invoke MODEL.so ENTRY [--tokens 1,2,3] [--in NAME=FILE ...]\n"
    "                   [--out NAME=FILE ...] [-t THREADS]\n"
    "\n"
    "Calls the entry point ENTRY of MODEL.so (llmc inspect lists them) once, with\n"
    "arguments built from its signature in the metadata:\n"
    "  step arguments   an llmc_step_t for one new sequence of the --tokens\n"
    "                   (positions 0..T-1, an empty KV cache, logits for every row)\n"
    "  tensor arguments a buffer of the tensor's shape, with T and L = the number of\n"
    "                   tokens and S = 1: zero-filled, or the raw contents of FILE\n"
    "                   given by --in NAME=FILE (its size must match exactly)\n"
    "\n"
    "  --tokens LIST       comma-separated token ids (needed when the signature has\n"
    "                      a step argument or a T/L dimension)\n"
    "  --in NAME=FILE      fill tensor argument NAME from FILE before the call\n"
    "  --out NAME=FILE     write tensor argument NAME to FILE after the call\n"
    "  -t, --threads N     thread pool size; default: one per online CPU\n"
    "  -h, --help          this text\n";

/* One NAME=FILE option. */
typedef struct {
  const char *name; /* points into argv, cut at '=' in a copy */
  const char *file;
  char *owned; /* owned: the copy name and file point into */
} binding_t;

/* The parsed command line. Owns tokens and the bindings. */
typedef struct {
  const char *model_path;
  const char *entry_name;
  int32_t *tokens; /* [n_tokens] or NULL */
  int32_t n_tokens;
  int32_t n_threads;
  binding_t *ins, *outs; /* [n_ins], [n_outs] */
  int n_ins, n_outs;
} invoke_args_t;

/* One argument of the call. Owns buffer. */
typedef struct {
  const char *name; /* from the metadata */
  int is_step;      /* else a tensor */
  void *buffer;     /* owned tensor data (64-aligned), or NULL for a step */
  size_t bytes;     /* of buffer */
  char shape[96];   /* "f32[3,4]" for messages */
  void *pointer;    /* the value passed: &step or buffer */
} call_arg_t;

static llmc_status_t parse_binding(const char *text, const char *flag, binding_t *out) {
  const char *eq = strchr(text, '=');
  if (!eq || eq == text || !eq[1])
    return LLMC_ERROR(INVALID_ARGUMENT, "%s %s: expected NAME=FILE", flag, text);
  out->owned = strdup(text);
  if (!out->owned) return LLMC_ERROR(OUT_OF_MEMORY, "%s", flag);
  out->owned[eq - text] = 0;
  out->name = out->owned;
  out->file = out->owned + (eq - text) + 1;
  return LLMC_OK;
}

/* Bytes per element of a tensor argument's dtype, 0 if it has none. */
static size_t dtype_bytes(const char *dtype) {
  if (strcmp(dtype, "f32") == 0 || strcmp(dtype, "i32") == 0) return 4;
  if (strcmp(dtype, "f16") == 0 || strcmp(dtype, "bf16") == 0) return 2;
  return 0;
}

/* Finds entry point `name` in the metadata, or explains which exist. */
static llmc_status_t find_entry(const cJSON *meta, const char *name, const cJSON **out) {
  const cJSON *entries = cJSON_GetObjectItemCaseSensitive(meta, "entry_points");
  const cJSON *entry;
  cJSON_ArrayForEach(entry, entries) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(entry, "name");
    if (cJSON_IsString(n) && strcmp(n->valuestring, name) == 0) {
      *out = entry;
      return LLMC_OK;
    }
  }
  char list[1024] = "";
  size_t len = 0;
  cJSON_ArrayForEach(entry, entries) {
    const cJSON *n = cJSON_GetObjectItemCaseSensitive(entry, "name");
    if (cJSON_IsString(n) && len < sizeof list)
      len +=
          (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", n->valuestring);
  }
  return LLMC_ERROR(NOT_FOUND, "no entry point %s; the model has: %s", name, len ? list : "(none)");
}

/* Sizes and allocates the zero-filled buffer of the tensor argument whose
 * signature is `arg`. */
static llmc_status_t make_tensor(const cJSON *arg, int32_t n_tokens, int have_tokens,
                                 call_arg_t *out) {
  const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(arg, "dtype");
  const cJSON *shape = cJSON_GetObjectItemCaseSensitive(arg, "shape");
  size_t elem = cJSON_IsString(dtype) ? dtype_bytes(dtype->valuestring) : 0;
  if (!elem)
    return LLMC_ERROR(UNIMPLEMENTED, "tensor %s: dtype not f32, i32, f16 or bf16", out->name);
  if (!cJSON_IsArray(shape) || cJSON_GetArraySize(shape) > MAX_RANK)
    return LLMC_ERROR(INVALID_ARGUMENT, "tensor %s: no shape of rank <= %d", out->name, MAX_RANK);
  size_t len = (size_t)snprintf(out->shape, sizeof out->shape, "%s[", dtype->valuestring);
  uint64_t count = 1;
  const cJSON *dim;
  cJSON_ArrayForEach(dim, shape) {
    int64_t extent = -1;
    if (cJSON_IsNumber(dim) && dim->valuedouble >= 0 && dim->valuedouble < 1e12)
      extent = (int64_t)dim->valuedouble;
    else if (cJSON_IsString(dim) &&
             (strcmp(dim->valuestring, "T") == 0 || strcmp(dim->valuestring, "L") == 0)) {
      if (!have_tokens)
        return LLMC_ERROR(INVALID_ARGUMENT, "tensor %s has dimension %s: give --tokens", out->name,
                          dim->valuestring);
      extent = n_tokens;
    } else if (cJSON_IsString(dim) && strcmp(dim->valuestring, "S") == 0) {
      extent = 1;
    }
    if (extent < 0) return LLMC_ERROR(INVALID_ARGUMENT, "tensor %s: bad dimension", out->name);
    if (extent > 0 && count > (UINT64_MAX / elem) / (uint64_t)extent)
      return LLMC_ERROR(INVALID_ARGUMENT, "tensor %s: too large", out->name);
    count *= (uint64_t)extent;
    if (len < sizeof out->shape)
      len += (size_t)snprintf(out->shape + len, sizeof out->shape - len, "%s%lld",
                              dim == shape->child ? "" : ",", (long long)extent);
  }
  if (len < sizeof out->shape) snprintf(out->shape + len, sizeof out->shape - len, "]");
  if (count * elem > SIZE_MAX - 64)
    return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s %s", out->name, out->shape);
  out->bytes = (size_t)(count * elem);
  size_t rounded = (out->bytes + 63) / 64 * 64; /* aligned_alloc wants a multiple */
  out->buffer = aligned_alloc(64, rounded ? rounded : 64);
  if (!out->buffer) return LLMC_ERROR(OUT_OF_MEMORY, "tensor %s %s", out->name, out->shape);
  memset(out->buffer, 0, out->bytes);
  out->pointer = out->buffer;
  return LLMC_OK;
}

/* The tensor argument named `name`, or an error naming the flag. */
static llmc_status_t find_tensor(call_arg_t *args, int n_args, const char *name, const char *flag,
                                 call_arg_t **out) {
  for (int i = 0; i < n_args; i++)
    if (!args[i].is_step && strcmp(args[i].name, name) == 0) {
      *out = &args[i];
      return LLMC_OK;
    }
  return LLMC_ERROR(INVALID_ARGUMENT, "%s %s: the entry point has no tensor argument of that name",
                    flag, name);
}

/* Fills a tensor from an --in file. */
static llmc_status_t read_input(call_arg_t *arg, const char *path) {
  char *data = NULL;
  size_t len = 0;
  LLMC_RETURN_IF_ERROR(llmc_file_read_all(path, &data, &len), "--in %s", arg->name);
  llmc_status_t st = LLMC_OK;
  if (len != arg->bytes)
    st = LLMC_ERROR(INVALID_ARGUMENT, "--in %s=%s: file has %zu bytes, %s needs %zu", arg->name,
                    path, len, arg->shape, arg->bytes);
  else
    memcpy(arg->buffer, data, len);
  free(data);
  return st;
}

/* What a call's step arguments point at. Owns engine, seq's blocks and
 * logits. */
typedef struct {
  llmc_engine_t *engine;
  llmc_kv_seq_t seq;
  float *logits; /* [n_tokens, vocab] */
  llmc_step_t step;
} step_state_t;

/* Builds the step for one new sequence of the --tokens. */
static llmc_status_t make_step(const invoke_args_t *a, const llmc_model_t *model, step_state_t *s) {
  if (!a->tokens) return LLMC_ERROR(INVALID_ARGUMENT, "a step argument needs --tokens");
  llmc_engine_options_t options = {
      .n_threads = a->n_threads,
      .token_capacity = a->n_tokens,
      .kv_blocks = (a->n_tokens + LLMC_KV_DEFAULT_BLOCK_SIZE - 1) / LLMC_KV_DEFAULT_BLOCK_SIZE,
  };
  s->logits = malloc((size_t)a->n_tokens * (size_t)model->abi->vocab_size * sizeof *s->logits);
  if (!s->logits) return LLMC_ERROR(OUT_OF_MEMORY, "logits of %d tokens", a->n_tokens);
  LLMC_RETURN_IF_ERROR(llmc_engine_create(model, &options, &s->engine), "step argument");
  llmc_engine_chunk_t chunk = {.seq = &s->seq,
                               .tokens = a->tokens,
                               .n_tokens = a->n_tokens,
                               .logits = LLMC_ENGINE_LOGITS_ALL};
  return llmc_engine_step_build(s->engine, &chunk, 1, s->logits, &s->step);
}

static void step_state_deinit(step_state_t *s) {
  if (s->engine) llmc_kv_seq_deinit(llmc_engine_kv_cache(s->engine), &s->seq);
  llmc_engine_destroy(s->engine);
  free(s->logits);
}

/* Makes args[i] for each argument in the signature arg_json. */
static llmc_status_t make_args(const invoke_args_t *a, const llmc_model_t *model,
                               const cJSON *arg_json, step_state_t *s, call_arg_t *args) {
  int i = 0;
  const cJSON *aj;
  cJSON_ArrayForEach(aj, arg_json) {
    call_arg_t *arg = &args[i++];
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(aj, "name");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(aj, "type");
    arg->name = cJSON_IsString(name) ? name->valuestring : "?";
    if (!cJSON_IsString(type))
      return LLMC_ERROR(INVALID_ARGUMENT, "argument %s has no type", arg->name);
    if (strcmp(type->valuestring, "tensor") == 0) {
      LLMC_RETURN_IF_ERROR(make_tensor(aj, a->n_tokens, a->tokens != NULL, arg), "argument %d",
                           i - 1);
    } else if (strcmp(type->valuestring, "step") == 0) {
      if (!s->engine) LLMC_RETURN_IF_ERROR(make_step(a, model, s), "argument %s", arg->name);
      arg->is_step = 1;
      arg->pointer = &s->step;
    } else {
      return LLMC_ERROR(UNIMPLEMENTED, "argument %s has type %s", arg->name, type->valuestring);
    }
  }
  for (int k = 0; k < a->n_ins; k++) {
    call_arg_t *arg = NULL;
    LLMC_RETURN_IF_ERROR(find_tensor(args, i, a->ins[k].name, "--in", &arg), "arguments");
    LLMC_RETURN_IF_ERROR(read_input(arg, a->ins[k].file), "arguments");
  }
  for (int k = 0; k < a->n_outs; k++) {
    call_arg_t *arg = NULL;
    LLMC_RETURN_IF_ERROR(find_tensor(args, i, a->outs[k].name, "--out", &arg), "arguments");
  }
  return LLMC_OK;
}

/* Calls fn(args[0].pointer, ...) through libffi: void fn(void *, ...). */
static llmc_status_t call_entry(void *fn, call_arg_t *args, int n_args) {
  ffi_type **types = calloc((size_t)n_args + 1, sizeof *types);
  void **values = calloc((size_t)n_args + 1, sizeof *values);
  llmc_status_t st = LLMC_OK;
  ffi_cif cif;
  if (!types || !values) st = LLMC_ERROR(OUT_OF_MEMORY, "%d call arguments", n_args);
  for (int k = 0; !st && k < n_args; k++) {
    types[k] = &ffi_type_pointer;
    values[k] = &args[k].pointer;
  }
  if (!st && ffi_prep_cif(&cif, FFI_DEFAULT_ABI, (unsigned)n_args, &ffi_type_void, types) != FFI_OK)
    st = LLMC_ERROR(INTERNAL, "libffi cannot describe a call with %d pointer arguments", n_args);
  if (!st) ffi_call(&cif, FFI_FN(fn), NULL, values);
  free(types);
  free(values);
  return st;
}

/* Builds the arguments, calls the entry point, writes the outputs. */
static llmc_status_t invoke(const invoke_args_t *a, const llmc_model_t *model, const cJSON *entry,
                            void *fn, call_arg_t *args, int n_args) {
  step_state_t s = {0};
  llmc_status_t st = make_args(a, model, cJSON_GetObjectItemCaseSensitive(entry, "args"), &s, args);
  if (!st) st = call_entry(fn, args, n_args);
  for (int k = 0; !st && k < a->n_outs; k++) {
    call_arg_t *arg = NULL;
    st = find_tensor(args, n_args, a->outs[k].name, "--out", &arg);
    if (!st) st = llmc_cli_write_file(a->outs[k].file, arg->buffer, arg->bytes);
    if (!st) printf("%s %s -> %s\n", arg->name, arg->shape, a->outs[k].file);
  }
  step_state_deinit(&s);
  return st;
}

/* Loads the model, looks the entry point up and invokes it. */
static llmc_status_t run_invoke(const invoke_args_t *a) {
  llmc_model_t *model = NULL;
  llmc_status_t st = llmc_model_load(a->model_path, NULL, &model);
  if (st) return st;
  const cJSON *entry = NULL;
  st = find_entry(model->metadata, a->entry_name, &entry);
  void *fn = st ? NULL : llmc_model_symbol_lookup(model, a->entry_name);
  if (!st && !fn)
    st = LLMC_ERROR(NOT_FOUND, "the metadata lists entry point %s but the .so does not export it",
                    a->entry_name);
  for (int32_t i = 0; !st && a->tokens && i < a->n_tokens; i++)
    if (a->tokens[i] >= model->abi->vocab_size)
      st = LLMC_ERROR(INVALID_ARGUMENT, "--tokens: token %d is id %d, not below the vocab size %d",
                      i, a->tokens[i], model->abi->vocab_size);
  int n_args = st ? 0 : cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(entry, "args"));
  call_arg_t *args = st ? NULL : calloc(n_args > 0 ? (size_t)n_args : 1, sizeof *args);
  if (!st && !args) st = LLMC_ERROR(OUT_OF_MEMORY, "arguments");
  if (!st) st = invoke(a, model, entry, fn, args, n_args);
  for (int i = 0; args && i < n_args; i++) free(args[i].buffer);
  free(args);
  llmc_model_destroy(model);
  return llmc_status_annotate(st, "invoking %s", a->entry_name);
}

int llmc_cmd_invoke(int argc, char **argv) {
  static const struct option long_options[] = {
      {"tokens", required_argument, NULL, 'k'}, {"in", required_argument, NULL, 'i'},
      {"out", required_argument, NULL, 'O'},    {"threads", required_argument, NULL, 't'},
      {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
  };
  invoke_args_t a = {0};
  a.ins = calloc((size_t)argc, sizeof *a.ins);
  a.outs = calloc((size_t)argc, sizeof *a.outs);
  const char *tokens_text = NULL;
  llmc_status_t st = a.ins && a.outs ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "arguments");
  int exit_code = -1; /* -1: not decided yet */
  optind = 0;
  while (!st && exit_code < 0) {
    int opt = getopt_long(argc, argv, ":t:h", long_options, NULL);
    if (opt == -1) break;
    switch (opt) {
    case 'k': tokens_text = optarg; break;
    case 'i': st = parse_binding(optarg, "--in", &a.ins[a.n_ins++]); break;
    case 'O': st = parse_binding(optarg, "--out", &a.outs[a.n_outs++]); break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &a.n_threads); break;
    case 'h':
      fputs(usage, stdout);
      exit_code = 0;
      break;
    default: exit_code = llmc_cli_bad_option("invoke", usage, opt, argv); break;
    }
  }
  if (!st && exit_code < 0 && optind != argc - 2)
    exit_code = llmc_cli_usage_error(
        "invoke", usage, "expected MODEL.so and ENTRY, got %d arguments", argc - optind);
  if (!st && exit_code < 0 && tokens_text)
    st = llmc_cli_parse_tokens(tokens_text, &a.tokens, &a.n_tokens);
  if (st) {
    llmc_status_report(st, stderr);
    exit_code = 2;
  }
  if (exit_code < 0) {
    a.model_path = argv[optind];
    a.entry_name = argv[optind + 1];
    st = run_invoke(&a);
    exit_code = st ? llmc_status_report(st, stderr) : 0;
  }
  for (int i = 0; i < a.n_ins; i++) free(a.ins[i].owned);
  for (int i = 0; i < a.n_outs; i++) free(a.outs[i].owned);
  free(a.ins);
  free(a.outs);
  free(a.tokens);
  return exit_code;
}
