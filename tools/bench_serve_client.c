/* bench_serve_client.c — see bench_serve_client.h.
 *
 * One thread drives every transfer through libcurl's multi interface: no
 * locks, and on a small machine no client threads competing with the
 * server under test for its cores. Token arrivals are timed when their
 * bytes reach the write callback, which runs inside curl_multi_perform, as
 * soon as the socket is read. */
#include "bench_serve_client.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Appends n bytes to b, keeping it NUL-terminated; 0 when out of memory. */
static int buf_append(bench_buf_t *b, const char *p, size_t n) {
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 1024;
    while (cap < b->len + n + 1) cap *= 2;
    char *data = realloc(b->data, cap);
    if (!data) return 0;
    b->data = data;
    b->cap = cap;
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 1;
}

/* ---- the event stream ---- */

/* Records why r failed, unless it already has a reason (the first stays). */
static void request_fail(bench_request_t *r, llmc_status_t why) {
  if (r->error)
    llmc_status_free(why);
  else
    r->error = why;
}

/* The response's first bytes on one line, for an error message. */
static const char *response_head(bench_request_t *r) {
  for (size_t i = 0; i < r->head_len; i++)
    if (r->head[i] == '\n' || r->head[i] == '\r') r->head[i] = ' ';
  r->head[r->head_len] = '\0';
  return r->head_len ? r->head : "(empty)";
}

/* One line of the event stream, received at time t. Only "data:" lines
 * matter (SSE comments, event names and the blank lines between events are
 * skipped). An event whose first choice has non-empty text is a token
 * arrival (vLLM's final usage event has no choices, llama-server's has
 * empty text); usage, wherever it comes, gives the token counts. */
static void handle_line(bench_request_t *r, const char *line, size_t len, double t) {
  if (len < 5 || memcmp(line, "data:", 5) != 0) return;
  line += 5, len -= 5;
  if (len && *line == ' ') line++, len--;
  if (len == 6 && memcmp(line, "[DONE]", 6) == 0) return;
  cJSON *event = cJSON_ParseWithLength(line, len);
  if (!event) {
    int shown = len > 200 ? 200 : (int)len;
    request_fail(r, LLMC_ERROR(INVALID_ARGUMENT, "malformed event: %.*s", shown, line));
    return;
  }
  const cJSON *err = cJSON_GetObjectItemCaseSensitive(event, "error");
  if (err) {
    const cJSON *msg = cJSON_GetObjectItemCaseSensitive(err, "message");
    const char *why = cJSON_IsString(msg)   ? msg->valuestring
                      : cJSON_IsString(err) ? err->valuestring
                                            : "(no message)";
    request_fail(r, LLMC_ERROR(INVALID_ARGUMENT, "the server streamed an error: %s", why));
  }
  const cJSON *choice = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(event, "choices"), 0);
  const cJSON *text = cJSON_GetObjectItemCaseSensitive(choice, "text");
  if (cJSON_IsString(text) && text->valuestring[0]) {
    if (r->n_text_events == 0) {
      r->t_first = t;
    } else {
      if ((size_t)r->n_text_events > r->itl_cap) {
        size_t cap = r->itl_cap ? 2 * r->itl_cap : 256;
        double *grown = realloc(r->itl, cap * sizeof *grown);
        if (!grown) {
          request_fail(r, LLMC_ERROR(OUT_OF_MEMORY, "inter-token latencies"));
          cJSON_Delete(event);
          return;
        }
        r->itl = grown;
        r->itl_cap = cap;
      }
      r->itl[r->n_text_events - 1] = t - r->t_last;
    }
    r->t_last = t;
    r->n_text_events++;
  }
  const cJSON *counts = cJSON_GetObjectItemCaseSensitive(event, "usage");
  const cJSON *prompt = cJSON_GetObjectItemCaseSensitive(counts, "prompt_tokens");
  const cJSON *completion = cJSON_GetObjectItemCaseSensitive(counts, "completion_tokens");
  if (cJSON_IsNumber(prompt)) r->prompt_tokens = (int64_t)prompt->valuedouble;
  if (cJSON_IsNumber(completion)) r->completion_tokens = (int64_t)completion->valuedouble;
  cJSON_Delete(event);
}

/* libcurl's write callback: takes the time, keeps the first bytes, and
 * hands each complete line of a 200 response to handle_line (any other
 * status's body is only the error to report). Returning less than it was
 * given aborts the transfer: done once the request has failed. */
static size_t on_body(char *data, size_t size, size_t nmemb, void *user) {
  bench_request_t *r = user;
  size_t n = size * nmemb;
  double t = now_s();
  size_t keep = sizeof r->head - 1 - r->head_len;
  memcpy(r->head + r->head_len, data, n < keep ? n : keep);
  r->head_len += n < keep ? n : keep;
  if (!r->http_status) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
  if (r->http_status != 200) return n;
  if (!buf_append(&r->pending, data, n)) {
    request_fail(r, LLMC_ERROR(OUT_OF_MEMORY, "response buffer"));
    return 0;
  }
  size_t done = 0;
  for (char *nl; (nl = memchr(r->pending.data + done, '\n', r->pending.len - done));) {
    size_t len = (size_t)(nl - (r->pending.data + done));
    handle_line(r, r->pending.data + done, len - (len && nl[-1] == '\r'), t);
    done += len + 1;
  }
  memmove(r->pending.data, r->pending.data + done, r->pending.len - done);
  r->pending.len -= done;
  return r->error ? 0 : n;
}

/* ---- running the requests ---- */

/* The request headers: JSON, no "Expect: 100-continue" (libcurl sends it
 * for larger bodies and waits up to a second for a server that never
 * answers it, which would land in TTFT), and the API key if any. */
static struct curl_slist *make_headers(const char *api_key) {
  struct curl_slist *h = curl_slist_append(NULL, "Content-Type: application/json");
  if (h && !curl_slist_append(h, "Expect:")) {
    curl_slist_free_all(h);
    return NULL;
  }
  if (h && api_key) {
    size_t n = strlen(api_key) + 32;
    char *line = malloc(n);
    if (line) snprintf(line, n, "Authorization: Bearer %s", api_key);
    if (!line || !curl_slist_append(h, line)) {
      curl_slist_free_all(h);
      h = NULL;
    }
    free(line);
  }
  return h;
}

/* Makes r's easy handle and adds it to multi; the clock starts here. */
static llmc_status_t start_request(CURLM *multi, bench_request_t *r, const char *url,
                                   struct curl_slist *headers, double timeout_s) {
  r->easy = curl_easy_init();
  if (!r->easy) return LLMC_ERROR(OUT_OF_MEMORY, "curl_easy_init");
  CURL *e = r->easy;
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
  curl_easy_setopt(e, CURLOPT_PRIVATE, r);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
  if (timeout_s > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ceil(timeout_s * 1000));
  r->t_start = now_s();
  CURLMcode mc = curl_multi_add_handle(multi, e);
  if (mc) return LLMC_ERROR(INTERNAL, "curl_multi_add_handle: %s", curl_multi_strerror(mc));
  return LLMC_OK;
}

/* Ends r's transfer (result: libcurl's verdict) and decides whether it
 * succeeded: status 200, at least one text event, no error. */
static void finish_request(CURLM *multi, bench_request_t *r, CURLcode result, const char *url) {
  if (!r->http_status) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &r->http_status);
  curl_multi_remove_handle(multi, r->easy);
  curl_easy_cleanup(r->easy);
  r->easy = NULL;
  if (result != CURLE_OK)
    request_fail(r, LLMC_ERROR(IO, "%s", r->errbuf[0] ? r->errbuf : curl_easy_strerror(result)));
  else if (r->http_status != 200)
    request_fail(r, LLMC_ERROR(IO, "HTTP %ld: %s", r->http_status, response_head(r)));
  else if (r->n_text_events == 0)
    request_fail(r, LLMC_ERROR(INVALID_ARGUMENT, "the response streamed no text: %s",
                               response_head(r)));
  r->error = llmc_status_annotate(r->error, "POST %s", url);
  free(r->pending.data);
  r->pending = (bench_buf_t){0};
}

llmc_status_t bench_serve_run(bench_request_t *reqs, int32_t n, const double *arrival,
                              int32_t max_concurrency, const char *url, const char *api_key,
                              double timeout_s, double *duration, int32_t *first_failure) {
  *duration = 0;
  *first_failure = -1;
  struct curl_slist *headers = make_headers(api_key);
  CURLM *multi = headers ? curl_multi_init() : NULL;
  if (!multi) {
    curl_slist_free_all(headers);
    return LLMC_ERROR(OUT_OF_MEMORY, "curl_multi_init");
  }
  llmc_status_t st = LLMC_OK;
  int32_t next = 0, in_flight = 0, done = 0;
  double t0 = now_s();
  while (!st && done < n) {
    while (!st && next < n && arrival[next] <= now_s() - t0 &&
           (!max_concurrency || in_flight < max_concurrency)) {
      st = start_request(multi, &reqs[next++], url, headers, timeout_s);
      in_flight++;
    }
    int running = 0;
    CURLMcode mc = st ? CURLM_OK : curl_multi_perform(multi, &running);
    if (mc) st = LLMC_ERROR(INTERNAL, "curl_multi_perform: %s", curl_multi_strerror(mc));
    int left = 0;
    for (CURLMsg *msg; !st && (msg = curl_multi_info_read(multi, &left));) {
      if (msg->msg != CURLMSG_DONE) continue;
      char *priv = NULL;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
      bench_request_t *r = (bench_request_t *)priv;
      finish_request(multi, r, msg->data.result, url);
      if (r->error && *first_failure < 0) *first_failure = (int32_t)(r - reqs);
      in_flight--;
      done++;
    }
    if (st || done == n) break;
    /* Sleep until a transfer has something or the next request is due. */
    double wait = 1.0;
    if (next < n && (!max_concurrency || in_flight < max_concurrency))
      wait = fmin(wait, arrival[next] - (now_s() - t0));
    if (wait > 0) curl_multi_poll(multi, NULL, 0, (int)ceil(wait * 1000), NULL);
  }
  *duration = now_s() - t0;
  for (int32_t i = 0; i < next; i++) /* left in flight only after an error */
    if (reqs[i].easy) {
      curl_multi_remove_handle(multi, reqs[i].easy);
      curl_easy_cleanup(reqs[i].easy);
      reqs[i].easy = NULL;
    }
  curl_multi_cleanup(multi);
  curl_slist_free_all(headers);
  return st;
}

/* libcurl's write callback for a plain response: appends to a bench_buf_t. */
static size_t on_plain_body(char *data, size_t size, size_t nmemb, void *user) {
  return buf_append(user, data, size * nmemb) ? size * nmemb : 0;
}

/* The list is OpenAI's {"data": [{"id": ...}, ...]}. */
llmc_status_t bench_serve_fetch_model(const char *url, const char *api_key, double timeout_s,
                                      char **out_model) {
  struct curl_slist *headers = make_headers(api_key);
  CURL *e = headers ? curl_easy_init() : NULL;
  if (!e) {
    curl_slist_free_all(headers);
    return LLMC_ERROR(OUT_OF_MEMORY, "curl_easy_init");
  }
  bench_buf_t body = {0};
  char errbuf[CURL_ERROR_SIZE] = "";
  curl_easy_setopt(e, CURLOPT_URL, url);
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_plain_body);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(e, CURLOPT_ERRORBUFFER, errbuf);
  if (timeout_s > 0) curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)ceil(timeout_s * 1000));
  CURLcode res = curl_easy_perform(e);
  long status = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
  curl_easy_cleanup(e);
  curl_slist_free_all(headers);
  llmc_status_t st = LLMC_OK;
  cJSON *doc = NULL;
  if (res != CURLE_OK)
    st = LLMC_ERROR(IO, "%s", errbuf[0] ? errbuf : curl_easy_strerror(res));
  else if (status != 200)
    st = LLMC_ERROR(IO, "HTTP %ld: %.200s", status, body.data ? body.data : "");
  else if (!(doc = cJSON_ParseWithLength(body.data ? body.data : "", body.len)))
    st = LLMC_ERROR(INVALID_ARGUMENT, "the response is not JSON: %.200s",
                    body.data ? body.data : "");
  const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(doc, "data"), 0);
  const cJSON *id = cJSON_GetObjectItemCaseSensitive(first, "id");
  if (!st && !cJSON_IsString(id))
    st = LLMC_ERROR(INVALID_ARGUMENT, "the response lists no model id: %.200s", body.data);
  if (!st && !(*out_model = strdup(id->valuestring)))
    st = LLMC_ERROR(OUT_OF_MEMORY, "model name");
  cJSON_Delete(doc);
  free(body.data);
  return llmc_status_annotate(st, "GET %s, asking for the model's name (or give --model)", url);
}

void bench_request_clear(bench_request_t *r) {
  free(r->itl);
  free(r->pending.data);
  llmc_status_free(r->error);
  r->itl = NULL;
  r->pending = (bench_buf_t){0};
  r->error = LLMC_OK;
}
