/* cmd_inspect.c — `llmc inspect`: what a model.so is, for a person.
 *
 * Everything printed comes from the ABI record and the metadata JSON the
 * compiler embedded (docs/model-so.md), after the same checks every load
 * does; the weights are mapped, never read, so inspecting a large model
 * is instant. Metadata fields that are missing print as "?" rather than
 * failing: inspect is what one reaches for when a model looks wrong. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"

static const char usage[] =
    "usage: llmc inspect MODEL.so\n"
    "\n"
    "Checks MODEL.so as loading it would, then prints its ABI version, target\n"
    "(triple, cpu, features), entry points with their signatures, the weight table\n"
    "(name dtype shape offset bytes) and, last, the whole metadata JSON.\n"
    "\n"
    "  -h, --help  this text\n";

/* obj[key] as a string, or "?" when absent or not a string. */
static const char *str_field(const cJSON *obj, const char *key) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  return cJSON_IsString(item) ? item->valuestring : "?";
}

/* Formats a JSON array of numbers and dimension names as "[a,b]" into buf
 * ([cap] bytes, always NUL-terminated). */
static void format_shape(const cJSON *shape, char *buf, size_t cap) {
  size_t len = (size_t)snprintf(buf, cap, "[");
  const cJSON *dim;
  int first = 1;
  cJSON_ArrayForEach(dim, shape) {
    if (len >= cap) break;
    const char *sep = first ? "" : ",";
    if (cJSON_IsNumber(dim))
      len += (size_t)snprintf(buf + len, cap - len, "%s%.0f", sep, dim->valuedouble);
    else
      len += (size_t)snprintf(buf + len, cap - len, "%s%s", sep,
                              cJSON_IsString(dim) ? dim->valuestring : "?");
    first = 0;
  }
  if (len < cap) snprintf(buf + len, cap - len, "]");
}

/* obj[key] as an integer in buf ([cap] bytes), or "?". */
static const char *num_field(const cJSON *obj, const char *key, char *buf, size_t cap) {
  const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, key);
  if (!cJSON_IsNumber(item)) return "?";
  snprintf(buf, cap, "%.0f", item->valuedouble);
  return buf;
}

/* "name(step: step, x: f32[T,4] in, ...)" */
static void print_signature(const cJSON *entry) {
  printf("%s(", str_field(entry, "name"));
  const cJSON *arg;
  int first = 1;
  cJSON_ArrayForEach(arg, cJSON_GetObjectItemCaseSensitive(entry, "args")) {
    const char *type = str_field(arg, "type");
    printf("%s%s: ", first ? "" : ", ", str_field(arg, "name"));
    if (strcmp(type, "tensor") == 0) {
      char shape[256];
      format_shape(cJSON_GetObjectItemCaseSensitive(arg, "shape"), shape, sizeof shape);
      printf("%s%s %s", str_field(arg, "dtype"), shape, str_field(arg, "dir"));
    } else {
      printf("%s", type);
    }
    first = 0;
  }
  printf(")");
}

/* The weight table with aligned columns: one pass to measure, one to print. */
static void print_weights(const cJSON *weights) {
  int w_name = 4, w_dtype = 5, w_shape = 5;
  char shape[256], offset[32], bytes[32];
  const cJSON *wt;
  cJSON_ArrayForEach(wt, weights) {
    format_shape(cJSON_GetObjectItemCaseSensitive(wt, "shape"), shape, sizeof shape);
    int ln = (int)strlen(str_field(wt, "name")), ld = (int)strlen(str_field(wt, "dtype"));
    int ls = (int)strlen(shape);
    w_name = ln > w_name ? ln : w_name;
    w_dtype = ld > w_dtype ? ld : w_dtype;
    w_shape = ls > w_shape ? ls : w_shape;
  }
  printf("\nweights (%d tensors):\n", cJSON_GetArraySize(weights));
  printf("  %-*s  %-*s  %-*s  %12s  %12s\n", w_name, "name", w_dtype, "dtype", w_shape, "shape",
         "offset", "bytes");
  cJSON_ArrayForEach(wt, weights) {
    format_shape(cJSON_GetObjectItemCaseSensitive(wt, "shape"), shape, sizeof shape);
    printf("  %-*s  %-*s  %-*s  %12s  %12s\n", w_name, str_field(wt, "name"), w_dtype,
           str_field(wt, "dtype"), w_shape, shape, num_field(wt, "offset", offset, sizeof offset),
           num_field(wt, "bytes", bytes, sizeof bytes));
  }
}

static void print_model(const llmc_model_t *model) {
  const llmc_abi_record_t *abi = model->abi;
  const cJSON *meta = model->metadata;
  const cJSON *target = cJSON_GetObjectItemCaseSensitive(meta, "target");
  const cJSON *compiled = cJSON_GetObjectItemCaseSensitive(meta, "compiled");
  const char *features = str_field(target, "features");

  printf("model:        %s\n", model->path);
  printf("abi_version:  %u (runtime %u)\n", (unsigned)abi->abi_version, LLMC_ABI_VERSION);
  printf("architecture: %s\n", str_field(meta, "architecture"));
  printf("target:       %s, cpu %s, features %s\n", str_field(target, "triple"),
         str_field(target, "cpu"), *features ? features : "(none)");
  printf("compiled:     llmc %s from %s, passes:", str_field(compiled, "llmc_version"),
         str_field(compiled, "source"));
  const cJSON *pass;
  cJSON_ArrayForEach(pass, cJSON_GetObjectItemCaseSensitive(compiled, "passes"))
      printf(" %s", cJSON_IsString(pass) ? pass->valuestring : "?");
  printf("\n");
  printf("vocab_size:   %d\n", abi->vocab_size);
  printf("max_context:  %d\n", abi->max_context);
  printf("kv cache:     %d layers x kv_dim %d (element type chosen at run time)\n", abi->n_layers,
         abi->kv_dim);
  printf("weights:      %llu bytes in %s\n", (unsigned long long)abi->weights_bytes,
         LLMC_WEIGHTS_SECTION);

  const cJSON *entries = cJSON_GetObjectItemCaseSensitive(meta, "entry_points");
  printf("\nentry points (%d):\n", cJSON_GetArraySize(entries));
  const cJSON *entry;
  cJSON_ArrayForEach(entry, entries) {
    printf("  %-9s ", str_field(entry, "kind"));
    print_signature(entry);
    printf("\n");
  }
  print_weights(cJSON_GetObjectItemCaseSensitive(meta, "weights"));

  char *json = cJSON_Print(meta);
  printf("\nmetadata:\n%s\n", json ? json : "?");
  free(json);
}

int llmc_cmd_inspect(int argc, char **argv) {
  static const struct option long_options[] = {
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
    if (opt == 'h') {
      fputs(usage, stdout);
      return 0;
    }
    return llmc_cli_bad_option("inspect", usage, opt, argv);
  }
  if (optind != argc - 1)
    return llmc_cli_usage_error("inspect", usage, "expected one MODEL.so, got %d", argc - optind);
  llmc_model_t *model = NULL;
  llmc_model_options_t options = {.weights_mode = LLMC_WEIGHTS_MMAP};
  llmc_status_t st = llmc_model_load(argv[optind], &options, &model);
  if (st) return llmc_status_report(st, stderr);
  print_model(model);
  llmc_model_destroy(model);
  return 0;
}
