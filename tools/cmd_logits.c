/* cmd_logits.c — `llmc logits`: the logits after each of a list of tokens,
 * as raw float32, through the same engine path serving uses.
 *
 * This is one of the commands the project is checked with from outside
 * (DESIGN.md section 4), so its output format is fixed: float32
 * little-endian, row-major [n_tokens x vocab], nothing else in the file.
 * --chunk K sets the engine's token capacity to K, so the tokens go
 * through the KV cache K at a time; every K must give the same logits. */
#include <getopt.h>
#include <stdlib.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "llmc logits writes host floats as little-endian");

static const char usage[] =
    "usage: llmc logits MODEL.so --tokens 1,5,7,... -o OUT.f32 [--chunk K] [-t THREADS]\n"
    "                   [--kv-type f16|f32|q8_0]\n"
    "\n"
    "Runs the tokens through MODEL.so and writes the logits after each token to OUT.f32:\n"
    "float32 little-endian, row-major [n_tokens x vocab], nothing else.\n"
    "\n"
    "  --tokens LIST  comma-separated token ids, each below the model's vocab size;\n"
    "                 at most max_context of them\n"
    "  -o, --output   the file to write\n"
    "  --chunk K      feed the tokens K at a time through the KV cache (K=1: pure\n"
    "                 decode); default: all at once\n"
    "  -t, --threads  thread pool size; default: one per online CPU\n"
    "  --kv-type T    KV cache element type: f32 (default), f16 or q8_0\n"
    "  -h, --help     this text\n"
    "\n"
    "LLMC_WEIGHTS=mmap|copy in the environment chooses how the weights are loaded\n"
    "(docs/model-so.md).\n";

/* The parsed command line. Owns tokens. */
typedef struct {
  const char *model_path;
  const char *out_path;
  int32_t *tokens; /* [n_tokens] */
  int32_t n_tokens;
  int32_t chunk;            /* 0: all at once */
  int32_t n_threads;        /* 0: default */
  llmc_kv_dtype_t kv_dtype; /* 0: default */
} logits_args_t;

/* Loads the model, feeds the tokens and writes the logits file. */
static llmc_status_t run_logits(const logits_args_t *args) {
  llmc_model_t *model = NULL;
  llmc_status_t st = llmc_model_load(args->model_path, NULL, &model);
  if (st) return st;
  const llmc_abi_record_t *abi = model->abi;
  if (args->n_tokens > abi->max_context)
    st = LLMC_ERROR(INVALID_ARGUMENT, "%d tokens, more than the model's max_context %d",
                    args->n_tokens, abi->max_context);
  for (int32_t i = 0; !st && i < args->n_tokens; i++)
    if (args->tokens[i] >= abi->vocab_size)
      st = LLMC_ERROR(INVALID_ARGUMENT, "--tokens: token %d is id %d, not below the vocab size %d",
                      i, args->tokens[i], abi->vocab_size);

  size_t n_floats = (size_t)args->n_tokens * (size_t)abi->vocab_size;
  float *logits = st ? NULL : malloc(n_floats * sizeof *logits);
  if (!st && !logits) st = LLMC_ERROR(OUT_OF_MEMORY, "logits of %d tokens", args->n_tokens);

  llmc_engine_t *engine = NULL;
  if (!st) {
    int32_t chunk = args->chunk > 0 && args->chunk < args->n_tokens ? args->chunk : args->n_tokens;
    llmc_engine_options_t options = {
        .n_threads = args->n_threads,
        .token_capacity = chunk,
        .kv_blocks = (args->n_tokens + LLMC_KV_DEFAULT_BLOCK_SIZE - 1) / LLMC_KV_DEFAULT_BLOCK_SIZE,
        .kv_dtype = args->kv_dtype,
    };
    st = llmc_engine_create(model, &options, &engine);
  }
  if (!st) {
    llmc_kv_seq_t seq = {0};
    st = llmc_engine_feed(engine, &seq, args->tokens, args->n_tokens, LLMC_ENGINE_LOGITS_ALL,
                          logits);
    llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  }
  if (!st) st = llmc_cli_write_file(args->out_path, logits, n_floats * sizeof *logits);
  llmc_engine_destroy(engine);
  free(logits);
  llmc_model_destroy(model);
  return st;
}

int llmc_cmd_logits(int argc, char **argv) {
  static const struct option long_options[] = {
      {"tokens", required_argument, NULL, 'k'}, {"output", required_argument, NULL, 'o'},
      {"chunk", required_argument, NULL, 'c'},  {"threads", required_argument, NULL, 't'},
      {"kv-type", required_argument, NULL, 'K'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  logits_args_t args = {0};
  const char *tokens_text = NULL;
  llmc_status_t st = LLMC_OK;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":o:t:h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'k': tokens_text = optarg; break;
    case 'o': args.out_path = optarg; break;
    case 'c': st = llmc_cli_parse_int("--chunk", optarg, 1, INT32_MAX, &args.chunk); break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &args.n_threads); break;
    case 'K': st = llmc_kv_dtype_parse(optarg, &args.kv_dtype); break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("logits", usage, opt, argv);
    }
  }
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  if (optind != argc - 1)
    return llmc_cli_usage_error("logits", usage, "expected one MODEL.so, got %d", argc - optind);
  if (!tokens_text) return llmc_cli_usage_error("logits", usage, "--tokens is required");
  if (!args.out_path) return llmc_cli_usage_error("logits", usage, "-o OUT.f32 is required");
  args.model_path = argv[optind];
  st = llmc_cli_parse_tokens(tokens_text, &args.tokens, &args.n_tokens);
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  st = run_logits(&args);
  free(args.tokens);
  return st ? llmc_status_report(st, stderr) : 0;
}
