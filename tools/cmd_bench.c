/* cmd_bench.c — `llmc bench`: prompt-processing and generation speed of a
 * compiled model, as llama.cpp's llama-bench measures them.
 *
 * pp: one sequence's prompt of -p random tokens, fed in steps of up to the
 * engine's token capacity, logits for the last token only. tg: then -n
 * single-token decode steps on the same sequence. Each test is repeated -r
 * times on a fresh sequence; the table shows the mean and the standard
 * deviation of tokens per second. Timings are wall-clock (monotonic). */
#include <getopt.h>
#include <math.h>
#include <stdlib.h>
#include <time.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"

static const char usage[] =
    "usage: llmc bench MODEL.so [-p 512] [-n 128] [-r 3] [-t THREADS] [--kv-type T] [--json]\n"
    "\n"
    "Measures prompt processing (pp: -p tokens in as few steps as the engine takes)\n"
    "and generation (tg: -n decode steps of one token) on one sequence of random\n"
    "tokens, -r times each, and prints tokens per second (mean and deviation).\n"
    "\n"
    "  -p N           prompt tokens (default 512; 0 skips pp)\n"
    "  -n N           generated tokens (default 128; 0 skips tg)\n"
    "  -r N           repetitions (default 3)\n"
    "  -t, --threads  thread pool size; default: one per online CPU\n"
    "  --kv-type T    KV cache element type: f32 (default), f16 or q8_0\n"
    "  --json         print one line {\"pp_tok_s\": X, \"tg_tok_s\": Y, ...} instead\n"
    "  -h, --help     this text\n";

typedef struct {
  const char *model_path;
  int32_t n_prompt, n_gen, reps, n_threads;
  llmc_kv_dtype_t kv_dtype; /* 0: default */
  int json;
} bench_args_t;

typedef struct {
  double mean, stddev; /* tokens per second */
} rate_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static rate_t summarise(const double *tok_s, int n) {
  rate_t r = {0, 0};
  for (int i = 0; i < n; i++) r.mean += tok_s[i] / n;
  for (int i = 0; i < n && n > 1; i++) r.stddev += (tok_s[i] - r.mean) * (tok_s[i] - r.mean) / (n - 1);
  r.stddev = sqrt(r.stddev);
  return r;
}

/* One repetition: a fresh sequence, the prompt, then the decode steps.
 * Writes the two rates (0 for a skipped test). */
static llmc_status_t bench_once(llmc_engine_t *engine, const bench_args_t *a, const int32_t *prompt, int32_t vocab,
                                float *logits, double *pp_tok_s, double *tg_tok_s) {
  llmc_kv_seq_t seq = {0};
  llmc_status_t st = LLMC_OK;
  double t0 = now_s();
  if (a->n_prompt > 0)
    st = llmc_engine_feed(engine, &seq, prompt, a->n_prompt, LLMC_ENGINE_LOGITS_LAST, logits);
  double t1 = now_s();
  int32_t token = prompt[0];
  for (int32_t i = 0; !st && i < a->n_gen; i++) {
    st = llmc_engine_feed(engine, &seq, &token, 1, LLMC_ENGINE_LOGITS_LAST, logits);
    token = (token * 7 + i + 1) % vocab; /* any valid token: speed does not depend on which */
  }
  double t2 = now_s();
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  *pp_tok_s = a->n_prompt > 0 ? a->n_prompt / (t1 - t0) : 0;
  *tg_tok_s = a->n_gen > 0 ? a->n_gen / (t2 - t1) : 0;
  return st;
}

static llmc_status_t run_bench(const bench_args_t *a) {
  llmc_model_t *model = NULL;
  LLMC_PROPAGATE(llmc_model_load(a->model_path, NULL, &model));
  const llmc_abi_record_t *abi = model->abi;
  llmc_status_t st = LLMC_OK;
  if (a->n_prompt + a->n_gen > abi->max_context)
    st = LLMC_ERROR(INVALID_ARGUMENT, "-p %d plus -n %d is more than the model's max_context %d", a->n_prompt,
                    a->n_gen, abi->max_context);
  llmc_engine_t *engine = NULL;
  llmc_engine_options_t options = {
      .n_threads = a->n_threads,
      .kv_blocks = (a->n_prompt + a->n_gen + LLMC_KV_DEFAULT_BLOCK_SIZE - 1) / LLMC_KV_DEFAULT_BLOCK_SIZE,
      .kv_dtype = a->kv_dtype,
  };
  if (!st) st = llmc_engine_create(model, &options, &engine);
  int32_t *prompt = malloc(((size_t)a->n_prompt + 1) * sizeof *prompt);
  float *logits = malloc((size_t)abi->vocab_size * sizeof *logits);
  double *pp = calloc((size_t)a->reps, sizeof *pp), *tg = calloc((size_t)a->reps, sizeof *tg);
  if (!st && (!prompt || !logits || !pp || !tg)) st = LLMC_ERROR(OUT_OF_MEMORY, "bench buffers");
  uint64_t x = 88172645463325252ull; /* xorshift: the same prompt every run */
  for (int32_t i = 0; !st && i <= a->n_prompt; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    prompt[i] = (int32_t)(x % (uint64_t)abi->vocab_size);
  }
  /* One untimed run first: page faults, caches and thread start-up are not
   * what this measures. */
  if (!st) st = bench_once(engine, a, prompt, abi->vocab_size, logits, &pp[0], &tg[0]);
  for (int r = 0; !st && r < a->reps; r++) st = bench_once(engine, a, prompt, abi->vocab_size, logits, &pp[r], &tg[r]);
  if (!st) {
    rate_t p = summarise(pp, a->reps), g = summarise(tg, a->reps);
    const char *name = strrchr(a->model_path, '/') ? strrchr(a->model_path, '/') + 1 : a->model_path;
    int threads = llmc_engine_n_threads(engine);
    if (a->json) {
      printf("{\"pp_tok_s\": %.3f, \"tg_tok_s\": %.3f, \"pp_stddev\": %.3f, \"tg_stddev\": %.3f, "
             "\"p\": %d, \"n\": %d, \"reps\": %d, \"threads\": %d, \"model\": \"%s\"}\n",
             p.mean, g.mean, p.stddev, g.stddev, a->n_prompt, a->n_gen, a->reps, threads, name);
    } else {
      printf("| %-24s | %7s | %8s | %22s |\n", "model", "threads", "test", "t/s");
      printf("| %-24s | %7s | %8s | %22s |\n", "---", "---", "---", "---");
      if (a->n_prompt) printf("| %-24s | %7d | pp%-6d | %11.2f ± %8.2f |\n", name, threads, a->n_prompt, p.mean, p.stddev);
      if (a->n_gen) printf("| %-24s | %7d | tg%-6d | %11.2f ± %8.2f |\n", name, threads, a->n_gen, g.mean, g.stddev);
    }
  }
  free(prompt);
  free(logits);
  free(pp);
  free(tg);
  llmc_engine_destroy(engine);
  llmc_model_destroy(model);
  return st;
}

int llmc_cmd_bench(int argc, char **argv) {
  static const struct option long_options[] = {
      {"threads", required_argument, NULL, 't'}, {"json", no_argument, NULL, 'j'},
      {"kv-type", required_argument, NULL, 'K'}, {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  bench_args_t a = {.n_prompt = 512, .n_gen = 128, .reps = 3};
  llmc_status_t st = LLMC_OK;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":p:n:r:t:h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'p': st = llmc_cli_parse_int("-p", optarg, 0, 1 << 24, &a.n_prompt); break;
    case 'n': st = llmc_cli_parse_int("-n", optarg, 0, 1 << 24, &a.n_gen); break;
    case 'r': st = llmc_cli_parse_int("-r", optarg, 1, 1000, &a.reps); break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &a.n_threads); break;
    case 'j': a.json = 1; break;
    case 'K': st = llmc_kv_dtype_parse(optarg, &a.kv_dtype); break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("bench", usage, opt, argv);
    }
  }
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  if (optind != argc - 1) return llmc_cli_usage_error("bench", usage, "expected one MODEL.so, got %d", argc - optind);
  if (a.n_prompt == 0 && a.n_gen == 0) return llmc_cli_usage_error("bench", usage, "-p 0 and -n 0: nothing to measure");
  a.model_path = argv[optind];
  st = run_bench(&a);
  return st ? llmc_status_report(st, stderr) : 0;
}
