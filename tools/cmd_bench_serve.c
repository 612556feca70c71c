/* cmd_bench_serve.c — `llmc bench-serve`: a load generator against an
 * OpenAI-compatible server (llmc serve, llama.cpp's llama-server, vLLM) that
 * measures what vLLM's benchmarks/benchmark_serving.py measures and prints
 * it in that script's layout.
 *
 * N streamed requests to POST /v1/completions, sent all at once or at
 * Poisson arrival times, at most C in flight (bench_serve_client.c sends
 * them and times the events of their streams). Each server-sent event that
 * carries text is a token arrival. The metrics are vLLM's: TTFT from
 * sending to the first text event; ITL the gaps between text events; TPOT
 * (last text event - first) / (output tokens - 1). Prompts, lengths and
 * arrival times come from a seeded generator: the same flags send the same
 * requests. */
#include <ctype.h>
#include <getopt.h>
#include <math.h>
#include <stdlib.h>

#include <cjson/cJSON.h>

#include "bench_serve_client.h"
#include "cli.h"
#include "commands.h"
#include "support/file.h"

static const char usage[] =
    "usage: llmc bench-serve [--url URL] [--model NAME] [--num-prompts N] [--request-rate R]\n"
    "                        [--max-concurrency C] [--input-len L] [--output-len L]\n"
    "                        [--range-ratio X] [--seed S] [--prompt-file FILE] [--api-key KEY]\n"
    "                        [--timeout SECONDS] [--json]\n"
    "\n"
    "Sends N streamed completion requests (POST URL/v1/completions with temperature 0,\n"
    "ignore_eos and max_tokens = the request's output length) to an OpenAI-compatible\n"
    "server (llmc serve, llama.cpp's llama-server, vLLM) and prints what vLLM's\n"
    "benchmark_serving prints: successful requests, duration, request and token\n"
    "throughput, and the mean, median and P99 of time to first token (TTFT), time per\n"
    "output token after the first (TPOT) and inter-token latency (ITL).\n"
    "\n"
    "  --url URL            the server (default http://127.0.0.1:8000; a trailing /v1 is\n"
    "                       allowed)\n"
    "  --model NAME         the request's model; default: the first id of GET URL/v1/models\n"
    "  --num-prompts N      requests to send (default 64)\n"
    "  --request-rate R     requests per second, Poisson arrivals (default inf: all at once)\n"
    "  --max-concurrency C  at most C requests in flight; later ones wait (default: no limit)\n"
    "  --input-len L        prompt length in words, about one token each (default 1024)\n"
    "  --output-len L       max_tokens of each request (default 128)\n"
    "  --range-ratio X      draw each length uniformly from [L*(1-X), L*(1+X)] (default 0;\n"
    "                       0 <= X < 1)\n"
    "  --seed S             seed of the prompts, lengths and arrival times (default 0)\n"
    "  --prompt-file FILE   prompts are slices of FILE's words (default: random words, each\n"
    "                       prompt starting differently)\n"
    "  --api-key KEY        send Authorization: Bearer KEY\n"
    "  --timeout SECONDS    a request still unfinished after this long fails (default: none)\n"
    "  --json               print the results as one line of JSON instead of the table\n"
    "  -h, --help           this text\n"
    "\n"
    "Token counts are the server's (usage in the stream); where a response has none, its\n"
    "input counts the words sent and its output the text events, and stderr says so.\n"
    "Exit status: 1 if any request failed (the table is printed, the first error goes to\n"
    "stderr) or none could be sent, 2 for bad usage.\n";

typedef struct {
  const char *url, *model, *prompt_file, *api_key;
  int32_t num_prompts, max_concurrency, input_len, output_len, seed;
  double request_rate, range_ratio, timeout_s;
  int json;
} serve_args_t;

typedef struct {
  double mean, median, std, p99; /* milliseconds */
} summary_t;

typedef struct {
  int32_t completed, failed, input_from_words, output_from_events;
  int64_t total_input, total_output;
  double duration;
  summary_t ttft, tpot, itl;
} results_t;

/* ---- the seeded generator: splitmix64 ---- */

typedef struct {
  uint64_t state;
} rng_t;

/* A generator for one use (stream) of the seed, so that changing how many
 * draws one use takes (a longer prompt) does not change the others. */
static rng_t rng_make(int32_t seed, uint64_t stream) {
  return (rng_t){(uint64_t)seed * 0x9e3779b97f4a7c15ull ^ stream};
}

static uint64_t rng_next(rng_t *r) {
  uint64_t z = (r->state += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

/* Uniform in [0, 1). */
static double rng_uniform(rng_t *r) { return (double)(rng_next(r) >> 11) * 0x1.0p-53; }

/* Uniform integer in [lo, hi]. */
static int32_t rng_int(rng_t *r, int32_t lo, int32_t hi) {
  return lo + (int32_t)(rng_next(r) % (uint64_t)(hi - lo + 1));
}

/* A length drawn as vLLM's random dataset draws it: uniform in
 * [int(L*(1-X)), int(L*(1+X))], here at least 1. */
static int32_t draw_length(rng_t *r, int32_t len, double ratio) {
  int32_t lo = (int32_t)(len * (1 - ratio)), hi = (int32_t)(len * (1 + ratio));
  return rng_int(r, lo < 1 ? 1 : lo, hi < 1 ? 1 : hi);
}

/* ---- prompts ---- */

/* Common English words, each one token (with the space before it) in the
 * usual vocabularies, so that a prompt of L words is about L tokens: the
 * Llama 2, Phi-3, GPT-2 and Falcon tokenizers (tests/data/tokenizers) make
 * exactly 256 tokens of the 256 (plus BOS). The first two words of prompt i
 * encode i (see make_prompt): up to 65536 prompts all start differently, so
 * that a server's prefix cache cannot turn the benchmark into cache hits. */
static const char *const words[256] = {
    "the", "of", "and", "to", "in", "is", "was", "that", "for", "on", "with", "he", "she", "it",
    "as", "at", "by", "from", "his", "her", "they", "we", "you", "this", "had", "are", "but",
    "not", "or", "have", "an", "were", "one", "all", "which", "there", "their", "when", "been",
    "would", "who", "will", "more", "if", "no", "out", "so", "said", "what", "up", "its",
    "about", "into", "than", "them", "can", "only", "other", "new", "some", "could", "time",
    "these", "two", "may", "then", "do", "first", "any", "my", "now", "such", "like", "our",
    "over", "man", "me", "even", "most", "made", "after", "also", "did", "many", "before",
    "must", "through", "back", "years", "where", "much", "your", "way", "well", "down",
    "should", "because", "each", "just", "those", "people", "how", "too", "little", "state",
    "good", "very", "make", "world", "still", "own", "see", "men", "work", "long", "get",
    "here", "between", "both", "life", "being", "under", "never", "day", "same", "another",
    "know", "while", "last", "might", "us", "great", "old", "year", "off", "come", "since",
    "against", "go", "came", "right", "used", "take", "three", "home", "small", "found",
    "house", "water", "room", "night", "light", "hand", "place", "part", "end", "head", "face",
    "door", "line", "city", "name", "side", "car", "book", "story", "word", "friend", "power",
    "game", "body", "money", "point", "mother", "father", "school", "week", "family", "group",
    "number", "system", "case", "eye", "food", "tree", "road", "river", "sea", "sun", "moon",
    "star", "fire", "earth", "wind", "rain", "snow", "stone", "bird", "dog", "cat", "horse",
    "fish", "king", "queen", "child", "girl", "boy", "woman", "heart", "mind", "voice", "music",
    "color", "table", "window", "garden", "street", "town", "field", "hill", "forest", "island",
    "ship", "train", "paper", "letter", "song", "dream", "idea", "truth", "peace", "war",
    "love", "hope", "fear", "joy", "red", "blue", "green", "black", "white", "cold", "warm",
    "young", "happy", "quiet", "apple", "bread", "milk", "glass", "chair", "bed", "shoe",
    "coat", "hat", "box",
};

/* Prompt i of `n_words` words, as a malloc'ed string: either a slice of
 * the prompt file's words (text, n_text of them) starting at `start`, or
 * random words whose first two encode i (offset by the seed's `shift`). */
static char *make_prompt(int32_t i, int32_t n_words, char *const *text, size_t n_text, size_t start,
                         const uint32_t shift[2], rng_t *rng) {
  const char **chosen = malloc((size_t)n_words * sizeof *chosen);
  if (!chosen) return NULL;
  size_t bytes = 0;
  for (int32_t w = 0; w < n_words; w++) {
    if (text)
      chosen[w] = text[(start + (size_t)w) % n_text];
    else if (w < 2)
      chosen[w] = words[((w == 0 ? (uint32_t)i : (uint32_t)i >> 8) + shift[w]) & 255];
    else
      chosen[w] = words[rng_next(rng) & 255];
    bytes += strlen(chosen[w]) + 1;
  }
  char *prompt = malloc(bytes), *p = prompt;
  for (int32_t w = 0; prompt && w < n_words; w++) {
    size_t len = strlen(chosen[w]);
    memcpy(p, chosen[w], len);
    p += len;
    *p++ = w + 1 < n_words ? ' ' : '\0';
  }
  free(chosen);
  return prompt;
}

/* Splits text (modified in place) at whitespace into a malloc'ed array of
 * its words. */
static llmc_status_t split_words(char *text, char ***out_words, size_t *out_n) {
  size_t n = 0, cap = 0;
  char **list = NULL;
  for (char *p = text; *p;) {
    while (*p && isspace((unsigned char)*p)) p++;
    if (!*p) break;
    if (n == cap) {
      cap = cap ? 2 * cap : 4096;
      char **grown = realloc(list, cap * sizeof *grown);
      if (!grown) {
        free(list);
        return LLMC_ERROR(OUT_OF_MEMORY, "splitting the prompt file into words");
      }
      list = grown;
    }
    list[n++] = p;
    while (*p && !isspace((unsigned char)*p)) p++;
    if (*p) *p++ = '\0';
  }
  *out_words = list;
  *out_n = n;
  return LLMC_OK;
}

/* Fills each request's body, lengths, and the arrival times (seconds from
 * the start; vLLM's: the first at 0, then exponential gaps of mean 1/rate). */
static llmc_status_t make_requests(const serve_args_t *a, const char *model, bench_request_t *reqs,
                                   double *arrival) {
  char *file_text = NULL, **text = NULL;
  size_t file_len = 0, n_text = 0;
  llmc_status_t st = LLMC_OK;
  if (a->prompt_file) {
    st = llmc_file_read_all(a->prompt_file, &file_text, &file_len);
    if (!st) st = split_words(file_text, &text, &n_text);
    if (!st && n_text == 0) st = LLMC_ERROR(INVALID_ARGUMENT, "%s has no words", a->prompt_file);
  }
  rng_t lengths = rng_make(a->seed, 1), prompts = rng_make(a->seed, 2), gaps = rng_make(a->seed, 3);
  uint32_t shift[2] = {(uint32_t)rng_next(&prompts) & 255, (uint32_t)rng_next(&prompts) & 255};
  /* File slices start evenly spaced from a random origin: different
   * starting places for every prompt while the file has enough words. */
  size_t origin = n_text ? rng_next(&prompts) % n_text : 0;
  size_t stride = n_text > (size_t)a->num_prompts ? n_text / (size_t)a->num_prompts : 1;
  double t = 0;
  for (int32_t i = 0; !st && i < a->num_prompts; i++) {
    bench_request_t *r = &reqs[i];
    r->prompt_words = draw_length(&lengths, a->input_len, a->range_ratio);
    r->max_tokens = draw_length(&lengths, a->output_len, a->range_ratio);
    r->prompt_tokens = r->completion_tokens = -1;
    arrival[i] = t;
    if (isfinite(a->request_rate)) t += -log1p(-rng_uniform(&gaps)) / a->request_rate;
    char *prompt = make_prompt(i, r->prompt_words, text, n_text, origin + (size_t)i * stride,
                               shift, &prompts);
    cJSON *req = cJSON_CreateObject();
    cJSON *options = cJSON_CreateObject();
    int ok = prompt && req && options && cJSON_AddStringToObject(req, "model", model) &&
             cJSON_AddStringToObject(req, "prompt", prompt) &&
             cJSON_AddNumberToObject(req, "max_tokens", r->max_tokens) &&
             cJSON_AddBoolToObject(req, "stream", 1) &&
             cJSON_AddNumberToObject(req, "temperature", 0) &&
             cJSON_AddBoolToObject(req, "ignore_eos", 1) &&
             cJSON_AddBoolToObject(options, "include_usage", 1) &&
             cJSON_AddItemToObject(req, "stream_options", options);
    if (!ok) cJSON_Delete(options); /* not attached to req */
    if (ok) r->body = cJSON_PrintUnformatted(req);
    if (!r->body) st = LLMC_ERROR(OUT_OF_MEMORY, "building request %d", i);
    cJSON_Delete(req);
    free(prompt);
  }
  free(text);
  free(file_text);
  return st;
}

/* ---- results ---- */

static int compare_doubles(const void *x, const void *y) {
  double a = *(const double *)x, b = *(const double *)y;
  return (a > b) - (a < b);
}

/* Mean, median, population standard deviation and 99th percentile (numpy's,
 * linear between the closest ranks) of v's n values in seconds, in
 * milliseconds; all 0 when n is 0, as vLLM reports. Sorts v. */
static summary_t summarise(double *v, size_t n) {
  summary_t s = {0, 0, 0, 0};
  if (n == 0) return s;
  qsort(v, n, sizeof *v, compare_doubles);
  for (size_t i = 0; i < n; i++) s.mean += v[i] / (double)n;
  for (size_t i = 0; i < n; i++) s.std += (v[i] - s.mean) * (v[i] - s.mean) / (double)n;
  s.std = sqrt(s.std);
  double ranks[2] = {0.5 * (double)(n - 1), 0.99 * (double)(n - 1)}, at[2];
  for (int k = 0; k < 2; k++) {
    size_t lo = (size_t)ranks[k], hi = lo + 1 < n ? lo + 1 : lo;
    at[k] = v[lo] + (v[hi] - v[lo]) * (ranks[k] - (double)lo);
  }
  s.mean *= 1e3, s.std *= 1e3, s.median = at[0] * 1e3, s.p99 = at[1] * 1e3;
  return s;
}

/* Totals and latency summaries over the successful requests (vLLM's
 * calculate_metrics). */
static llmc_status_t compute_results(const bench_request_t *reqs, int32_t n, double duration,
                                     results_t *out) {
  results_t res = {.duration = duration};
  size_t n_itl = 0;
  for (int32_t i = 0; i < n; i++) n_itl += reqs[i].error ? 0 : (size_t)reqs[i].n_text_events - 1;
  double *ttft = malloc(((size_t)n + 1) * sizeof *ttft);
  double *tpot = malloc(((size_t)n + 1) * sizeof *tpot);
  double *itl = malloc((n_itl + 1) * sizeof *itl);
  if (!ttft || !tpot || !itl) {
    free(ttft), free(tpot), free(itl);
    return LLMC_ERROR(OUT_OF_MEMORY, "results");
  }
  size_t n_tpot = 0;
  n_itl = 0;
  for (int32_t i = 0; i < n; i++) {
    const bench_request_t *r = &reqs[i];
    if (r->error) {
      res.failed++;
      continue;
    }
    int64_t out_tokens = r->completion_tokens >= 0 ? r->completion_tokens : r->n_text_events;
    res.output_from_events += r->completion_tokens < 0;
    res.input_from_words += r->prompt_tokens < 0;
    res.total_input += r->prompt_tokens >= 0 ? r->prompt_tokens : r->prompt_words;
    res.total_output += out_tokens;
    ttft[res.completed++] = r->t_first - r->t_start;
    if (out_tokens > 1) tpot[n_tpot++] = (r->t_last - r->t_first) / (double)(out_tokens - 1);
    memcpy(itl + n_itl, r->itl, ((size_t)r->n_text_events - 1) * sizeof *itl);
    n_itl += (size_t)r->n_text_events - 1;
  }
  res.ttft = summarise(ttft, (size_t)res.completed);
  res.tpot = summarise(tpot, n_tpot);
  res.itl = summarise(itl, n_itl);
  free(ttft), free(tpot), free(itl);
  *out = res;
  return LLMC_OK;
}

/* A row of the table: the label left-aligned in 40 columns, then the
 * value in 10 (Python's "{:<40} {:<10}" and "{:<40} {:<10.2f}"). */
static void row_int(const char *label, int64_t v) {
  printf("%-40s %-10lld\n", label, (long long)v);
}
static void row_num(const char *label, double v) { printf("%-40s %-10.2f\n", label, v); }

/* title centred in 50 columns of fill, as Python's "{:fill^50}". */
static void rule(const char *title, char fill) {
  int len = (int)strlen(title), left = (50 - len) / 2, right = 50 - len - left;
  for (int i = 0; i < left; i++) putchar(fill);
  fputs(title, stdout);
  for (int i = 0; i < right; i++) putchar(fill);
  putchar('\n');
}

static void print_metric(const char *header, const char *name, summary_t s) {
  char label[64];
  rule(header, '-');
  snprintf(label, sizeof label, "Mean %s (ms):", name), row_num(label, s.mean);
  snprintf(label, sizeof label, "Median %s (ms):", name), row_num(label, s.median);
  snprintf(label, sizeof label, "P99 %s (ms):", name), row_num(label, s.p99);
}

/* The table in benchmark_serving's layout. */
static void print_table(const serve_args_t *a, const results_t *r) {
  double d = r->duration > 0 ? r->duration : 1e-9;
  rule(" Serving Benchmark Result ", '=');
  row_int("Successful requests:", r->completed);
  row_int("Failed requests:", r->failed);
  if (a->max_concurrency) row_int("Maximum request concurrency:", a->max_concurrency);
  if (isfinite(a->request_rate)) row_num("Request rate configured (RPS):", a->request_rate);
  row_num("Benchmark duration (s):", r->duration);
  row_int("Total input tokens:", r->total_input);
  row_int("Total generated tokens:", r->total_output);
  row_num("Request throughput (req/s):", r->completed / d);
  row_num("Output token throughput (tok/s):", (double)r->total_output / d);
  row_num("Total Token throughput (tok/s):", (double)(r->total_input + r->total_output) / d);
  print_metric("Time to First Token", "TTFT", r->ttft);
  print_metric("Time per Output Token (excl. 1st token)", "TPOT", r->tpot);
  print_metric("Inter-token Latency", "ITL", r->itl);
  rule("", '=');
}

/* Adds name_{mean,median,std,p99}_ms to obj; 0 when out of memory. */
static int add_summary(cJSON *obj, const char *name, summary_t s) {
  const char *stats[4] = {"mean", "median", "std", "p99"};
  double values[4] = {s.mean, s.median, s.std, s.p99};
  char key[32];
  for (int k = 0; k < 4; k++) {
    snprintf(key, sizeof key, "%s_%s_ms", stats[k], name);
    if (!cJSON_AddNumberToObject(obj, key, values[k])) return 0;
  }
  return 1;
}

/* One line of JSON, with benchmark_serving's names for the results. */
static llmc_status_t print_json(const serve_args_t *a, const char *model, const results_t *r) {
  double d = r->duration > 0 ? r->duration : 1e-9;
  cJSON *o = cJSON_CreateObject();
  int ok = o && cJSON_AddStringToObject(o, "model", model) &&
           cJSON_AddNumberToObject(o, "num_prompts", a->num_prompts) &&
           (isfinite(a->request_rate) ? cJSON_AddNumberToObject(o, "request_rate", a->request_rate)
                                      : cJSON_AddNullToObject(o, "request_rate")) &&
           (a->max_concurrency ? cJSON_AddNumberToObject(o, "max_concurrency", a->max_concurrency)
                               : cJSON_AddNullToObject(o, "max_concurrency")) &&
           cJSON_AddNumberToObject(o, "duration", r->duration) &&
           cJSON_AddNumberToObject(o, "completed", r->completed) &&
           cJSON_AddNumberToObject(o, "failed", r->failed) &&
           cJSON_AddNumberToObject(o, "total_input_tokens", (double)r->total_input) &&
           cJSON_AddNumberToObject(o, "total_output_tokens", (double)r->total_output) &&
           cJSON_AddNumberToObject(o, "input_tokens_counted_as_words", r->input_from_words) &&
           cJSON_AddNumberToObject(o, "output_tokens_counted_as_events", r->output_from_events) &&
           cJSON_AddNumberToObject(o, "request_throughput", r->completed / d) &&
           cJSON_AddNumberToObject(o, "output_throughput", (double)r->total_output / d) &&
           cJSON_AddNumberToObject(o, "total_token_throughput",
                                   (double)(r->total_input + r->total_output) / d) &&
           add_summary(o, "ttft", r->ttft) && add_summary(o, "tpot", r->tpot) &&
           add_summary(o, "itl", r->itl);
  char *text = ok ? cJSON_PrintUnformatted(o) : NULL;
  cJSON_Delete(o);
  if (!text) return LLMC_ERROR(OUT_OF_MEMORY, "the JSON results");
  puts(text);
  cJSON_free(text);
  return LLMC_OK;
}

/* The benchmark: the model's name, the requests, the run, the report.
 * Returns the run's failure, the first failed request's error if any. */
static llmc_status_t bench_serve(const serve_args_t *a) {
  size_t base_len = strlen(a->url);
  while (base_len && a->url[base_len - 1] == '/') base_len--;
  if (base_len >= 3 && memcmp(a->url + base_len - 3, "/v1", 3) == 0) base_len -= 3;
  char models_url[4096], completions_url[4096]; /* --url has at most 4000 characters */
  snprintf(models_url, sizeof models_url, "%.*s/v1/models", (int)base_len, a->url);
  snprintf(completions_url, sizeof completions_url, "%.*s/v1/completions", (int)base_len, a->url);
  bench_request_t *reqs = calloc((size_t)a->num_prompts, sizeof *reqs);
  double *arrival = calloc((size_t)a->num_prompts, sizeof *arrival);
  char *model = a->model ? strdup(a->model) : NULL;
  llmc_status_t st = LLMC_OK;
  if (!reqs || !arrival || (a->model && !model))
    st = LLMC_ERROR(OUT_OF_MEMORY, "%d requests", a->num_prompts);
  if (!st && !model) st = bench_serve_fetch_model(models_url, a->api_key, a->timeout_s, &model);
  if (!st) st = make_requests(a, model, reqs, arrival);
  double duration = 0;
  int32_t first_failure = -1;
  if (!st) {
    char rate[32] = "inf", limit[32] = "no limit";
    if (isfinite(a->request_rate)) snprintf(rate, sizeof rate, "%g", a->request_rate);
    if (a->max_concurrency) snprintf(limit, sizeof limit, "%d", a->max_concurrency);
    fprintf(stderr, "llmc bench-serve: %d requests to %s, model %s, %s req/s, concurrency %s\n",
            a->num_prompts, completions_url, model, rate, limit);
    st = bench_serve_run(reqs, a->num_prompts, arrival, a->max_concurrency, completions_url,
                         a->api_key, a->timeout_s, &duration, &first_failure);
  }
  results_t res = {0};
  if (!st) st = compute_results(reqs, a->num_prompts, duration, &res);
  if (!st) {
    if (a->json)
      st = print_json(a, model, &res);
    else
      print_table(a, &res);
    fflush(stdout);
  }
  if (!st && res.input_from_words)
    fprintf(stderr,
            "llmc bench-serve: note: %d responses reported no usage.prompt_tokens; their "
            "input tokens are counted as the words sent\n",
            res.input_from_words);
  if (!st && res.output_from_events)
    fprintf(stderr,
            "llmc bench-serve: note: %d responses reported no usage.completion_tokens; their "
            "generated tokens are counted as the text events streamed\n",
            res.output_from_events);
  if (!st && first_failure >= 0) {
    st = reqs[first_failure].error;
    reqs[first_failure].error = LLMC_OK;
    st = llmc_status_annotate(st, "%d of %d requests failed; the first, request %d", res.failed,
                              a->num_prompts, first_failure);
  }
  for (int32_t i = 0; reqs && i < a->num_prompts; i++) {
    cJSON_free(reqs[i].body);
    bench_request_clear(&reqs[i]);
  }
  free(reqs);
  free(arrival);
  free(model);
  return st;
}

/* Parses a number (strtod's forms, "inf" included; not NaN) given for flag. */
static llmc_status_t parse_number(const char *flag, const char *text, double *out) {
  char *end = NULL;
  errno = 0;
  double v = strtod(text, &end);
  if (errno || end == text || *end || isnan(v))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s %s: expected a number", flag, text);
  *out = v;
  return LLMC_OK;
}

int llmc_cmd_bench_serve(int argc, char **argv) {
  enum { URL = 256, MODEL, NUM_PROMPTS, RATE, CONCURRENCY, INPUT_LEN, OUTPUT_LEN, RANGE_RATIO,
         SEED, PROMPT_FILE, API_KEY, TIMEOUT, JSON };
  static const struct option long_options[] = {
      {"url", required_argument, NULL, URL},
      {"model", required_argument, NULL, MODEL},
      {"num-prompts", required_argument, NULL, NUM_PROMPTS},
      {"request-rate", required_argument, NULL, RATE},
      {"max-concurrency", required_argument, NULL, CONCURRENCY},
      {"input-len", required_argument, NULL, INPUT_LEN},
      {"output-len", required_argument, NULL, OUTPUT_LEN},
      {"range-ratio", required_argument, NULL, RANGE_RATIO},
      {"seed", required_argument, NULL, SEED},
      {"prompt-file", required_argument, NULL, PROMPT_FILE},
      {"api-key", required_argument, NULL, API_KEY},
      {"timeout", required_argument, NULL, TIMEOUT},
      {"json", no_argument, NULL, JSON},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  serve_args_t a = {.url = "http://127.0.0.1:8000", .num_prompts = 64, .input_len = 1024,
                    .output_len = 128, .request_rate = INFINITY};
  llmc_status_t st = LLMC_OK;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
    switch (opt) {
    case URL: a.url = optarg; break;
    case MODEL: a.model = optarg; break;
    case NUM_PROMPTS:
      st = llmc_cli_parse_int("--num-prompts", optarg, 1, 100000, &a.num_prompts);
      break;
    case RATE: st = parse_number("--request-rate", optarg, &a.request_rate); break;
    case CONCURRENCY:
      st = llmc_cli_parse_int("--max-concurrency", optarg, 1, 1 << 20, &a.max_concurrency);
      break;
    case INPUT_LEN:
      st = llmc_cli_parse_int("--input-len", optarg, 1, 1 << 20, &a.input_len);
      break;
    case OUTPUT_LEN:
      st = llmc_cli_parse_int("--output-len", optarg, 1, 1 << 20, &a.output_len);
      break;
    case RANGE_RATIO: st = parse_number("--range-ratio", optarg, &a.range_ratio); break;
    case SEED: st = llmc_cli_parse_int("--seed", optarg, 0, INT32_MAX, &a.seed); break;
    case PROMPT_FILE: a.prompt_file = optarg; break;
    case API_KEY: a.api_key = optarg; break;
    case TIMEOUT:
      st = parse_number("--timeout", optarg, &a.timeout_s);
      if (!st && !(a.timeout_s > 0 && a.timeout_s < 1e7))
        return llmc_cli_usage_error("bench-serve", usage,
                                    "--timeout %s: expected seconds, more than 0", optarg);
      break;
    case JSON: a.json = 1; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("bench-serve", usage, opt, argv);
    }
  }
  if (st) {
    int rc = llmc_cli_usage_error("bench-serve", usage, "%s", llmc_status_message(st));
    llmc_status_free(st);
    return rc;
  }
  if (optind != argc)
    return llmc_cli_usage_error("bench-serve", usage, "unexpected argument '%s'", argv[optind]);
  if (strlen(a.url) > 4000)
    return llmc_cli_usage_error("bench-serve", usage, "--url: longer than 4000 characters");
  if (strncmp(a.url, "http://", 7) != 0 && strncmp(a.url, "https://", 8) != 0)
    return llmc_cli_usage_error("bench-serve", usage,
                                "--url %s: expected http://HOST:PORT or https://...", a.url);
  if (!(a.request_rate > 0))
    return llmc_cli_usage_error("bench-serve", usage,
                                "--request-rate must be more than 0 (inf: all at once)");
  if (!(a.range_ratio >= 0 && a.range_ratio < 1))
    return llmc_cli_usage_error("bench-serve", usage,
                                "--range-ratio must be at least 0 and below 1");
  if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
    fprintf(stderr, "error: libcurl failed to initialise\n");
    return 1;
  }
  st = bench_serve(&a);
  curl_global_cleanup();
  return st ? llmc_status_report(st, stderr) : 0;
}
