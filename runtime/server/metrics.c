/* metrics.c — see metrics.h. The series and their meaning are listed in
 * docs/serving.md; the names follow vLLM's where vLLM has the same thing
 * (vllm:num_requests_running is llmc_requests_running here), and
 * Prometheus' conventions: base units (seconds), _total on counters. */
#include "server/metrics.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

/* # HELP and # TYPE lines of a series. */
static void header(FILE *f, const char *name, const char *type, const char *help) {
  fprintf(f, "# HELP llmc_%s %s\n# TYPE llmc_%s %s\n", name, help, name, type);
}

/* A gauge with its current value. */
static void gauge(FILE *f, const char *name, const char *help, double value) {
  header(f, name, "gauge", help);
  fprintf(f, "llmc_%s %.10g\n", name, value);
}

/* A counter (name ends in _total) with its value. */
static void counter(FILE *f, const char *name, const char *help, uint64_t value) {
  header(f, name, "counter", help);
  fprintf(f, "llmc_%s %" PRIu64 "\n", name, value);
}

/* A histogram of durations in seconds: cumulative buckets, +Inf, sum, count. */
static void histogram(FILE *f, const char *name, const char *help, const llmc_histogram_t *h) {
  header(f, name, "histogram", help);
  for (int i = 0; i < LLMC_HISTOGRAM_BUCKETS; i++)
    fprintf(f, "llmc_%s_bucket{le=\"%g\"} %" PRIu64 "\n", name, llmc_histogram_bounds[i],
            h->counts[i]);
  fprintf(f, "llmc_%s_bucket{le=\"+Inf\"} %" PRIu64 "\n", name, h->counts[LLMC_HISTOGRAM_BUCKETS]);
  fprintf(f, "llmc_%s_sum %.17g\nllmc_%s_count %" PRIu64 "\n", name, h->sum, name,
          h->counts[LLMC_HISTOGRAM_BUCKETS]);
}

llmc_status_t llmc_server_metrics_format(const llmc_scheduler_stats_t *s, char **out_text,
                                         size_t *out_len) {
  *out_text = NULL;
  *out_len = 0;
  char *text = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&text, &len);
  if (!f) return LLMC_ERROR(OUT_OF_MEMORY, "metrics");
  gauge(f, "requests_running", "Requests admitted to the batch and not finished.",
        s->requests_running);
  gauge(f, "requests_waiting", "Requests queued, including pre-empted ones queued again.",
        s->requests_waiting);
  gauge(f, "kv_blocks_total", "KV cache blocks in the pool.", s->kv_blocks_total);
  gauge(f, "kv_blocks_used", "KV cache blocks held by at least one sequence.", s->kv_blocks_used);
  gauge(f, "kv_blocks_cached", "Free KV cache blocks that still hold a reusable prompt prefix.",
        s->kv_blocks_cached);
  gauge(f, "kv_cache_usage_ratio", "Fraction of the KV cache blocks in use (0 to 1).",
        s->kv_blocks_total > 0 ? (double)s->kv_blocks_used / s->kv_blocks_total : 0.0);
  counter(f, "prefix_cache_queries_total", "Prompt tokens looked up in the prefix cache.",
          s->prefix_cache_queries);
  counter(f, "prefix_cache_hits_total", "Prompt tokens whose KV was found in the prefix cache.",
          s->prefix_cache_hits);
  counter(f, "prompt_tokens_total", "Prompt tokens computed (prefix cache hits excluded).",
          s->prompt_tokens);
  counter(f, "generation_tokens_total", "Tokens generated.", s->generation_tokens);
  header(f, "requests_finished_total", "counter", "Requests finished, by finish reason.");
  for (int r = LLMC_FINISH_STOP; r <= LLMC_FINISH_ERROR; r++)
    fprintf(f, "llmc_requests_finished_total{finish_reason=\"%s\"} %" PRIu64 "\n",
            llmc_finish_reason_name((llmc_finish_reason_t)r), s->requests_finished[r]);
  counter(f, "preemptions_total", "Running requests pre-empted for lack of KV blocks.",
          s->preemptions);
  counter(f, "steps_total", "Engine steps run.", s->steps);
  histogram(f, "time_to_first_token_seconds", "Time from a request's arrival to its first token.",
            &s->time_to_first_token);
  histogram(f, "inter_token_latency_seconds", "Time between consecutive tokens of a request.",
            &s->inter_token_latency);
  histogram(f, "request_latency_seconds", "Time from a request's arrival to its finish.",
            &s->request_latency);
  bool failed = ferror(f) != 0;
  if (fclose(f) != 0 || failed) {
    free(text);
    return LLMC_ERROR(OUT_OF_MEMORY, "metrics");
  }
  *out_text = text;
  *out_len = len;
  return LLMC_OK;
}
