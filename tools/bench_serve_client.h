/* bench_serve_client.h — the HTTP side of `llmc bench-serve`
 * (bench_serve_client.c): sends prepared completion requests to an
 * OpenAI-compatible server on a schedule, reads their event streams and
 * times the arrival of each token. cmd_bench_serve.c makes the requests
 * and turns the times into vLLM's metrics. */
#ifndef LLMC_TOOLS_BENCH_SERVE_CLIENT_H
#define LLMC_TOOLS_BENCH_SERVE_CLIENT_H

#include <curl/curl.h>
#include <stddef.h>
#include <stdint.h>

#include "support/status.h"

typedef struct {
  char *data; /* NUL-terminated when not NULL */
  size_t len, cap;
} bench_buf_t;

/* One request and what its response brought. The caller fills body (and
 * may keep its own notes in prompt_words and max_tokens), zeroes the
 * rest, and sets prompt_tokens and completion_tokens to -1. */
typedef struct {
  char *body; /* the JSON to POST; the caller's to free */
  int32_t prompt_words, max_tokens;
  CURL *easy; /* while in flight */
  char errbuf[CURL_ERROR_SIZE];
  bench_buf_t pending; /* received bytes after the last complete line */
  char head[300];      /* the response's first bytes, for error messages */
  size_t head_len;
  long http_status;                /* 0 until known */
  double t_start, t_first, t_last; /* monotonic seconds: sent, first and last text event */
  int32_t n_text_events;
  double *itl; /* seconds between consecutive text events: n_text_events - 1 of them */
  size_t itl_cap;
  int64_t prompt_tokens, completion_tokens; /* from the stream's usage; -1 if none */
  llmc_status_t error; /* why it failed; LLMC_OK if it has not */
} bench_request_t;

/* POSTs reqs[i].body to url (the full /v1/completions address) at time
 * arrival[i] seconds after the start, or, with max_concurrency > 0, once
 * fewer than that many are in flight after it; streams every response to
 * its end. A request succeeds with status 200, at least one event carrying
 * text, and no error event; otherwise its error says why. api_key: sent as
 * a bearer token (NULL: none); timeout_s: the most one request may take
 * (0: no limit). *duration: from the first send to the last request's end.
 * *first_failure: the request that failed first, in time, or -1. The
 * status returned is libcurl failing as a whole, not a request failing. */
llmc_status_t bench_serve_run(bench_request_t *reqs, int32_t n, const double *arrival,
                              int32_t max_concurrency, const char *url, const char *api_key,
                              double timeout_s, double *duration, int32_t *first_failure);

/* The first model id that GET url (a /v1/models address) lists, malloc'ed
 * into *out_model. */
llmc_status_t bench_serve_fetch_model(const char *url, const char *api_key, double timeout_s,
                                      char **out_model);

/* Frees what bench_serve_run allocated in r (not body). */
void bench_request_clear(bench_request_t *r);

#endif
