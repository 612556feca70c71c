/* cmd_perplexity.c — `llmc perplexity`: perplexity of a model over a text
 * file, computed the way llama.cpp's llama-perplexity computes it (the text
 * tokenized with BOS as the tokenizer adds it, windows of -c tokens each
 * starting with BOS, the second half of each window scored), so the two
 * tools can be compared on the same GGUF model and text. Progress goes to
 * stderr; the last line of stdout is "ppl = X". */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"
#include "perplexity.h"
#include "support/file.h"
#include "tokenizer.h"

static const char usage[] =
    "usage: llmc perplexity MODEL.so -f FILE [-c CTX] [-t THREADS] [--kv-type f16|f32|q8_0]\n"
    "\n"
    "Prints the perplexity of MODEL.so over the text in FILE, scored as llama.cpp's\n"
    "llama-perplexity scores it: windows of CTX tokens (default 512), the second\n"
    "half of each window scored. The last line printed is \"ppl = X\".\n"
    "\n"
    "  -f, --file FILE   the text\n"
    "  -c, --ctx CTX     window size in tokens (default 512)\n"
    "  -t, --threads N   thread pool size; default: one per online CPU\n"
    "  --kv-type T       KV cache element type: f32 (default), f16 or q8_0\n"
    "  -h, --help        this text\n";

static void report(int32_t done, int32_t total, double ppl, void *ctx) {
  (void)ctx;
  fprintf(stderr, "[%d/%d] %.4f\n", done, total, ppl);
}

static llmc_status_t run_perplexity(const char *model_path, const char *text_path, int32_t n_ctx, int32_t n_threads,
                                    llmc_kv_dtype_t kv_dtype) {
  llmc_model_t *model = NULL;
  LLMC_PROPAGATE(llmc_model_load(model_path, NULL, &model));
  llmc_tokenizer_t *tok = NULL;
  llmc_engine_t *engine = NULL;
  char *text = NULL;
  size_t len = 0, n = 0;
  int32_t *ids = NULL;
  llmc_status_t st = llmc_tokenizer_load_for_model(model, &tok);
  if (!st) st = llmc_file_read_all(text_path, &text, &len);
  if (!st) st = llmc_tokenizer_encode(tok, text, len, LLMC_TOKENIZE_ADD_SPECIAL, &ids, &n);
  if (!st && n_ctx > model->abi->max_context)
    st = LLMC_ERROR(INVALID_ARGUMENT, "-c %d is more than the model's context of %d", n_ctx, model->abi->max_context);
  llmc_engine_options_t options = {
      .n_threads = n_threads,
      .kv_blocks = (n_ctx + LLMC_KV_DEFAULT_BLOCK_SIZE - 1) / LLMC_KV_DEFAULT_BLOCK_SIZE, /* one window */
      .kv_dtype = kv_dtype,
  };
  if (!st) st = llmc_engine_create(model, &options, &engine);
  llmc_perplexity_result_t r;
  /* llama.cpp puts BOS first in every window when the model adds BOS. */
  int32_t bos = n > 0 && ids[0] == llmc_tokenizer_bos_id(tok) ? ids[0] : -1;
  if (!st) {
    fprintf(stderr, "llmc: %zu tokens, %lld windows of %d\n", n, (long long)(n / (size_t)n_ctx), n_ctx);
    st = llmc_perplexity(engine, model->abi->vocab_size, ids, (int64_t)n, n_ctx, bos, report, NULL, &r);
  }
  if (!st) printf("tokens = %zu, scored = %lld, +/- %.5f\nppl = %.4f\n", n, (long long)r.count, r.ppl_stderr, r.ppl);
  free(ids);
  free(text);
  llmc_engine_destroy(engine);
  llmc_tokenizer_destroy(tok);
  llmc_model_destroy(model);
  return st;
}

int llmc_cmd_perplexity(int argc, char **argv) {
  static const struct option long_options[] = {
      {"file", required_argument, NULL, 'f'},    {"ctx", required_argument, NULL, 'c'},
      {"threads", required_argument, NULL, 't'}, {"kv-type", required_argument, NULL, 'K'},
      {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
  };
  const char *file = NULL;
  int32_t n_ctx = 512, n_threads = 0;
  llmc_kv_dtype_t kv_dtype = 0; /* the engine's default */
  llmc_status_t st = LLMC_OK;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":f:c:t:h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'f': file = optarg; break;
    case 'c': st = llmc_cli_parse_int("-c", optarg, 2, INT32_MAX, &n_ctx); break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &n_threads); break;
    case 'K': st = llmc_kv_dtype_parse(optarg, &kv_dtype); break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("perplexity", usage, opt, argv);
    }
  }
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  if (optind != argc - 1) return llmc_cli_usage_error("perplexity", usage, "expected one MODEL.so, got %d", argc - optind);
  if (!file) return llmc_cli_usage_error("perplexity", usage, "-f FILE is required");
  st = run_perplexity(argv[optind], file, n_ctx, n_threads, kv_dtype);
  return st ? llmc_status_report(st, stderr) : 0;
}
