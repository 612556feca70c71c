/* scheduler.c — continuous batching over one engine; see scheduler.h.
 *
 * Threads and locks. One scheduler thread owns the engine, the KV cache
 * and every request's generation state (its sequence, sampler,
 * detokenizer); nothing else touches those. Clients share with it only
 * what is under the scheduler's mutex: the queue of new requests, each
 * request's output buffer and flags, and the statistics. The engine step
 * itself runs without the lock, so polls and submits never wait for a
 * step.
 *
 * A request's life: submitted (on `incoming`) → waiting (the scheduler's
 * FIFO) → running (holds KV blocks, in `running` in admission order) →
 * finished (its blocks released, its output marked final). Pre-emption
 * moves a running request back to the front of the waiting FIFO with its
 * blocks released; it keeps its tokens, so it is recomputed, not
 * restarted.
 *
 * Admission reserves KV blocks for the request's whole prompt at once
 * (after sharing what the prefix cache holds), so prefill chunks never run
 * out of blocks; only decode tokens can, and those pre-empt the newest
 * running request until one fits. The oldest running request can always
 * make progress (submit refuses requests that could not fit the pool on
 * their own), so the scheduler never deadlocks. */
#include "scheduler.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DEFAULT_MAX_RUNNING 64
#define DEFAULT_KV_BYTES (1ull << 30) /* the pool, when no size is given */

const double llmc_histogram_bounds[LLMC_HISTOGRAM_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30};

/* Output a request produced that its client has not polled yet. Guarded
 * by the scheduler's mutex. */
typedef struct {
  char *text; /* [text_len] */
  size_t text_len, text_cap;
  llmc_token_info_t *tokens; /* [n_tokens] */
  int32_t n_tokens, tokens_cap;
  llmc_finish_reason_t finish;
  llmc_status_t error;
  bool finish_polled; /* the final delta went out */
  int32_t prompt_tokens, completion_tokens, cached_tokens;
} request_output_t;

struct llmc_request {
  llmc_scheduler_t *sched;
  /* Fixed at submit. */
  llmc_gen_params_t params;
  char *stop_storage; /* owned: params.stop point into it */
  int32_t n_prompt;
  double t_submit;
  /* Scheduler thread only. */
  int32_t *tokens; /* [n_tokens] prompt then generated tokens; KV holds seq.n_tokens of them */
  int32_t n_tokens, tokens_cap;
  int32_t n_generated;
  llmc_kv_seq_t seq;
  llmc_sampler_t *sampler;
  llmc_tokenizer_stream_t detok;
  llmc_stop_text_t stop_text;
  double t_last_token; /* 0 before the first */
  llmc_request_t *next; /* in incoming or waiting */
  /* Under the scheduler's mutex. */
  request_output_t out;
  pthread_cond_t changed; /* signalled when out changes */
  pthread_cond_t *also;   /* signalled too, while llmc_request_wait_any waits on r */
  bool cancel;            /* the client asked to stop */
  bool client_released;
  bool sched_released;
};

struct llmc_scheduler {
  const llmc_model_t *model;         /* borrowed */
  const llmc_tokenizer_t *tok;       /* borrowed */
  llmc_engine_t *engine;             /* owned; scheduler thread only */
  int32_t max_running;
  bool prefix_cache;
  int32_t eos;
  float *logits;                     /* owned: [max_running, vocab] one step's logit rows */
  llmc_engine_chunk_t *chunks;       /* owned: [max_running] */
  llmc_request_t **running;          /* owned array: [n_running] in admission order */
  uint64_t step_prompt_tokens;       /* prompt tokens (not recomputed output) in the planned step */
  int32_t n_running;
  llmc_request_t *waiting_head, *waiting_tail; /* scheduler thread only */
  pthread_t thread;
  bool thread_started;
  /* Under mu. */
  pthread_mutex_t mu;
  pthread_cond_t work; /* signalled on submit, cancel and shutdown */
  llmc_request_t *incoming_head, *incoming_tail;
  bool accepting;
  bool stopping; /* the thread exits once idle */
  bool draining; /* with stopping: finish what is queued first */
  llmc_scheduler_stats_t stats;
};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

llmc_gen_params_t llmc_gen_params_default(void) {
  return (llmc_gen_params_t){
      .sampling = llmc_sampling_params_default(), .max_tokens = 16, .skip_special = true};
}

const char *llmc_finish_reason_name(llmc_finish_reason_t reason) {
  switch (reason) {
  case LLMC_FINISH_STOP: return "stop";
  case LLMC_FINISH_LENGTH: return "length";
  case LLMC_FINISH_CANCELLED: return "cancelled";
  case LLMC_FINISH_ERROR: return "error";
  case LLMC_FINISH_NONE: break;
  }
  return NULL;
}

void llmc_request_delta_deinit(llmc_request_delta_t *delta) {
  free(delta->text);
  free(delta->tokens);
  llmc_status_free(delta->error);
  *delta = (llmc_request_delta_t){0};
}

static void histogram_observe(llmc_histogram_t *h, double seconds) {
  for (int i = 0; i < LLMC_HISTOGRAM_BUCKETS; i++)
    if (seconds <= llmc_histogram_bounds[i]) h->counts[i]++;
  h->counts[LLMC_HISTOGRAM_BUCKETS]++;
  h->sum += seconds;
}

/* ---- requests ------------------------------------------------------------ */

/* Frees a request both sides have released. */
static void request_free(llmc_request_t *r) {
  free(r->stop_storage);
  free(r->tokens);
  llmc_sampler_destroy(r->sampler);
  llmc_tokenizer_stream_deinit(&r->detok);
  llmc_stop_text_deinit(&r->stop_text);
  free(r->out.text);
  free(r->out.tokens);
  llmc_status_free(r->out.error);
  pthread_cond_destroy(&r->changed);
  free(r);
}

/* Copies params into r, the stop strings into one allocation r owns. */
static llmc_status_t request_copy_params(llmc_request_t *r, const llmc_gen_params_t *params) {
  r->params = *params;
  size_t bytes = 0;
  for (int32_t i = 0; i < params->n_stop; i++) bytes += strlen(params->stop[i]) + 1;
  if (bytes == 0) return LLMC_OK;
  r->stop_storage = malloc(bytes);
  if (!r->stop_storage) return LLMC_ERROR(OUT_OF_MEMORY, "stop strings");
  char *at = r->stop_storage;
  for (int32_t i = 0; i < params->n_stop; i++) {
    size_t n = strlen(params->stop[i]) + 1;
    memcpy(at, params->stop[i], n);
    r->params.stop[i] = at;
    at += n;
  }
  return LLMC_OK;
}

static llmc_status_t check_params(const llmc_scheduler_t *s, const llmc_gen_params_t *p,
                                  int32_t n_prompt) {
  LLMC_PROPAGATE(llmc_sampling_params_check(&p->sampling));
  if (p->max_tokens < 1)
    return LLMC_ERROR(INVALID_ARGUMENT, "max_tokens must be at least 1, got %d", p->max_tokens);
  if (p->n_stop < 0 || p->n_stop > LLMC_MAX_STOP_STRINGS)
    return LLMC_ERROR(INVALID_ARGUMENT, "at most %d stop strings, got %d", LLMC_MAX_STOP_STRINGS,
                      p->n_stop);
  for (int32_t i = 0; i < p->n_stop; i++)
    if (!p->stop[i] || !p->stop[i][0])
      return LLMC_ERROR(INVALID_ARGUMENT, "stop string %d is empty", i);
  if (p->top_logprobs < 0 || p->top_logprobs > LLMC_MAX_TOP_LOGPROBS)
    return LLMC_ERROR(INVALID_ARGUMENT, "top_logprobs must be in [0, %d], got %d",
                      LLMC_MAX_TOP_LOGPROBS, p->top_logprobs);
  int32_t context = s->model->abi->max_context;
  if ((int64_t)n_prompt + p->max_tokens > context)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "This model's maximum context length is %d tokens. However, you requested "
                      "%lld tokens (%d in the prompt, %d in the completion).",
                      context, (long long)n_prompt + p->max_tokens, n_prompt, p->max_tokens);
  const llmc_kv_cache_t *kv = llmc_engine_kv_cache(s->engine);
  int64_t pool_tokens = (int64_t)kv->n_blocks * kv->block_size;
  if ((int64_t)n_prompt + p->max_tokens > pool_tokens)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%d prompt tokens plus max_tokens %d do not fit the KV cache (%lld tokens); "
                      "start the server with more --kv-blocks or --kv-memory",
                      n_prompt, p->max_tokens, (long long)pool_tokens);
  return LLMC_OK;
}

llmc_status_t llmc_scheduler_submit(llmc_scheduler_t *s, const int32_t *prompt, int32_t n_prompt,
                                    const llmc_gen_params_t *params, llmc_request_t **out) {
  *out = NULL;
  if (n_prompt < 1) return LLMC_ERROR(INVALID_ARGUMENT, "the prompt has no tokens");
  int32_t vocab = s->model->abi->vocab_size;
  for (int32_t i = 0; i < n_prompt; i++)
    if (prompt[i] < 0 || prompt[i] >= vocab)
      return LLMC_ERROR(INVALID_ARGUMENT, "prompt token %d is id %d, outside [0, %d)", i, prompt[i],
                        vocab);
  LLMC_PROPAGATE(check_params(s, params, n_prompt));

  llmc_request_t *r = calloc(1, sizeof *r);
  if (!r) return LLMC_ERROR(OUT_OF_MEMORY, "request");
  pthread_cond_init(&r->changed, NULL);
  r->sched = s;
  r->n_prompt = n_prompt;
  r->tokens_cap = n_prompt + params->max_tokens;
  r->tokens = malloc((size_t)r->tokens_cap * sizeof *r->tokens);
  llmc_status_t st = r->tokens ? request_copy_params(r, params)
                               : LLMC_ERROR(OUT_OF_MEMORY, "%d tokens", r->tokens_cap);
  if (!st) st = llmc_sampler_create(&r->params.sampling, vocab, &r->sampler);
  llmc_tokenizer_stream_init(&r->detok, s->tok,
                             params->skip_special ? LLMC_DETOKENIZE_SKIP_SPECIAL : 0);
  llmc_stop_text_init(&r->stop_text, (const char *const *)r->params.stop, r->params.n_stop);
  if (st) {
    request_free(r);
    return st;
  }
  memcpy(r->tokens, prompt, (size_t)n_prompt * sizeof *prompt);
  r->n_tokens = n_prompt;
  for (int32_t i = 0; i < n_prompt; i++) llmc_sampler_accept(r->sampler, prompt[i], 0);
  r->out.prompt_tokens = n_prompt;
  r->t_submit = now_s();

  pthread_mutex_lock(&s->mu);
  if (!s->accepting) {
    pthread_mutex_unlock(&s->mu);
    request_free(r);
    return LLMC_ERROR(UNIMPLEMENTED, "the server is shutting down");
  }
  if (s->incoming_tail)
    s->incoming_tail->next = r;
  else
    s->incoming_head = r;
  s->incoming_tail = r;
  s->stats.requests_waiting++;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  *out = r;
  return LLMC_OK;
}

/* Moves everything produced since the last poll into delta. Under mu. */
/* Wakes whoever waits for r's output. Under mu. */
static void notify_client(llmc_request_t *r) {
  pthread_cond_broadcast(&r->changed);
  if (r->also) pthread_cond_broadcast(r->also);
}

/* Whether r has output its polls have not returned yet. Under mu. */
static bool has_output(const llmc_request_t *r) {
  const request_output_t *o = &r->out;
  return o->text_len || o->n_tokens || (o->finish != LLMC_FINISH_NONE && !o->finish_polled);
}

static bool take_output(llmc_request_t *r, llmc_request_delta_t *delta) {
  request_output_t *o = &r->out;
  bool finishing = o->finish != LLMC_FINISH_NONE && !o->finish_polled;
  if (!has_output(r)) return false;
  /* The buffers move to the delta whole; the next output starts new ones. */
  delta->text = o->text ? o->text : calloc(1, 1);
  delta->text_len = o->text_len;
  delta->tokens = o->tokens;
  delta->n_tokens = o->n_tokens;
  o->text = NULL;
  o->text_len = o->text_cap = 0;
  o->tokens = NULL;
  o->n_tokens = o->tokens_cap = 0;
  delta->prompt_tokens = o->prompt_tokens;
  delta->completion_tokens = o->completion_tokens;
  delta->cached_tokens = o->cached_tokens;
  if (finishing) {
    delta->finish = o->finish;
    delta->error = o->error;
    o->error = NULL;
    o->finish_polled = true;
  }
  return true;
}

/* The CLOCK_REALTIME time timeout_ms (>= 0) from now, for
 * pthread_cond_timedwait. */
static struct timespec deadline_after(int timeout_ms) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  if (timeout_ms > 0) {
    deadline.tv_sec += timeout_ms / 1000;
    deadline.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
      deadline.tv_sec++;
      deadline.tv_nsec -= 1000000000L;
    }
  }
  return deadline;
}

bool llmc_request_poll(llmc_request_t *r, llmc_request_delta_t *delta, int timeout_ms) {
  *delta = (llmc_request_delta_t){0};
  llmc_scheduler_t *s = r->sched;
  struct timespec deadline = deadline_after(timeout_ms);
  pthread_mutex_lock(&s->mu);
  bool got;
  while (!(got = take_output(r, delta)) && !r->out.finish_polled && timeout_ms != 0) {
    if (timeout_ms < 0)
      pthread_cond_wait(&r->changed, &s->mu);
    else if (pthread_cond_timedwait(&r->changed, &s->mu, &deadline))
      break; /* timed out */
  }
  pthread_mutex_unlock(&s->mu);
  return got;
}

bool llmc_request_wait_any(llmc_request_t *const *rs, int32_t n, int timeout_ms) {
  if (n <= 0) return false;
  llmc_scheduler_t *s = rs[0]->sched;
  struct timespec deadline = deadline_after(timeout_ms);
  pthread_cond_t woken;
  pthread_cond_init(&woken, NULL);
  pthread_mutex_lock(&s->mu);
  bool any = false;
  for (;;) {
    for (int32_t i = 0; i < n && !any; i++) any = has_output(rs[i]);
    if (any || timeout_ms == 0) break;
    for (int32_t i = 0; i < n; i++) rs[i]->also = &woken;
    int rc = timeout_ms < 0 ? pthread_cond_wait(&woken, &s->mu) : pthread_cond_timedwait(&woken, &s->mu, &deadline);
    for (int32_t i = 0; i < n; i++) rs[i]->also = NULL;
    if (rc) { /* timed out: one last look */
      for (int32_t i = 0; i < n && !any; i++) any = has_output(rs[i]);
      break;
    }
  }
  pthread_mutex_unlock(&s->mu);
  pthread_cond_destroy(&woken);
  return any;
}

void llmc_request_cancel(llmc_request_t *r) {
  if (!r) return;
  llmc_scheduler_t *s = r->sched;
  pthread_mutex_lock(&s->mu);
  r->cancel = true;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
}

void llmc_request_release(llmc_request_t *r) {
  if (!r) return;
  llmc_scheduler_t *s = r->sched;
  pthread_mutex_lock(&s->mu);
  r->client_released = true;
  r->cancel = true;
  bool last = r->sched_released;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  if (last) request_free(r);
}

/* ---- output (scheduler thread) ------------------------------------------- */

/* Appends n bytes of text to r's output and wakes its client. Under mu. */
static llmc_status_t append_text(llmc_request_t *r, const char *text, size_t n) {
  request_output_t *o = &r->out;
  if (o->text_len + n + 1 > o->text_cap) {
    size_t cap = (o->text_len + n + 1) * 2;
    char *t = realloc(o->text, cap);
    if (!t) return LLMC_ERROR(OUT_OF_MEMORY, "output text");
    o->text = t;
    o->text_cap = cap;
  }
  memcpy(o->text + o->text_len, text, n);
  o->text_len += n;
  o->text[o->text_len] = 0;
  notify_client(r);
  return LLMC_OK;
}

/* Appends a generated token to r's output and wakes its client. Under mu. */
static llmc_status_t append_token(llmc_request_t *r, const llmc_token_info_t *token) {
  request_output_t *o = &r->out;
  if (o->n_tokens == o->tokens_cap) {
    int32_t cap = o->tokens_cap ? o->tokens_cap * 2 : 16;
    llmc_token_info_t *t = realloc(o->tokens, (size_t)cap * sizeof *t);
    if (!t) return LLMC_ERROR(OUT_OF_MEMORY, "output tokens");
    o->tokens = t;
    o->tokens_cap = cap;
  }
  o->tokens[o->n_tokens++] = *token;
  o->completion_tokens++;
  notify_client(r);
  return LLMC_OK;
}

/* Passes detokenized text through r's stop strings and appends what comes
 * out; *stopped tells whether a stop string ended the text. Under mu. */
static llmc_status_t emit_text(llmc_request_t *r, const char *piece, size_t n, bool final,
                               bool *stopped) {
  const char *text;
  size_t len;
  LLMC_PROPAGATE(llmc_stop_text_push(&r->stop_text, piece, n, final, &text, &len, stopped));
  return len ? append_text(r, text, len) : LLMC_OK;
}

/* Copies the KV cache's block counts into the statistics: the cache
 * belongs to the scheduler thread, the statistics are read by others.
 * Under mu, on the scheduler thread (or before it starts). */
static void update_kv_stats(llmc_scheduler_t *s) {
  const llmc_kv_cache_t *kv = llmc_engine_kv_cache(s->engine);
  s->stats.kv_blocks_total = kv->n_blocks;
  s->stats.kv_blocks_used = kv->n_used;
  s->stats.kv_blocks_cached = kv->n_cached;
}

/* Marks r finished (error: owned, with LLMC_FINISH_ERROR) and releases its
 * KV blocks. The caller takes r out of running / waiting. */
static void finish_request(llmc_scheduler_t *s, llmc_request_t *r, llmc_finish_reason_t reason,
                           llmc_status_t error, bool was_running) {
  llmc_kv_seq_deinit(llmc_engine_kv_cache(s->engine), &r->seq);
  pthread_mutex_lock(&s->mu);
  r->out.finish = reason;
  r->out.error = error;
  s->stats.requests_finished[reason]++;
  if (was_running)
    s->stats.requests_running--;
  else
    s->stats.requests_waiting--;
  histogram_observe(&s->stats.request_latency, now_s() - r->t_submit);
  update_kv_stats(s); /* in the same update as the request counts */
  notify_client(r);
  r->sched_released = true;
  bool last = r->client_released;
  pthread_mutex_unlock(&s->mu);
  if (last) request_free(r);
}

/* Samples r's next token from its logits row [vocab], records it,
 * streams its text through the stop strings, and finishes r when it is
 * done. Returns true if r finished. */
static bool accept_token(llmc_scheduler_t *s, llmc_request_t *r, const float *logits) {
  llmc_token_info_t info = {.n_top = r->params.top_logprobs};
  /* The log-probability costs an exp() per vocabulary entry: only when asked. */
  bool want_logprob = r->params.logprobs || info.n_top > 0;
  info.id = llmc_sampler_sample(r->sampler, logits, want_logprob ? &info.logprob : NULL);
  if (info.n_top > 0)
    llmc_top_logprobs(logits, s->model->abi->vocab_size, info.n_top, info.top_ids,
                      info.top_logprobs);
  double t = now_s();
  bool end = info.id == s->eos && !r->params.ignore_eos; /* EOS ends the text, is not part of it */
  if (!end) {
    r->tokens[r->n_tokens++] = info.id;
    r->n_generated++;
    llmc_sampler_accept(r->sampler, info.id, 1);
  }
  bool length = !end && r->n_generated >= r->params.max_tokens;
  bool stopped = false;
  const char *piece;
  size_t n;
  llmc_status_t st = LLMC_OK;
  /* A token and its text reach the client in the same delta: one lock. */
  pthread_mutex_lock(&s->mu);
  if (!end) {
    st = llmc_tokenizer_stream_push(&r->detok, info.id, &piece, &n);
    if (!st) st = emit_text(r, piece, n, false, &stopped);
  }
  if (!st && (end || length) && !stopped) { /* no more tokens: what the detokenizer holds */
    st = llmc_tokenizer_stream_finish(&r->detok, &piece, &n);
    if (!st) st = emit_text(r, piece, n, true, &stopped);
  }
  if (!st && !end) st = append_token(r, &info);
  if (r->t_last_token == 0)
    histogram_observe(&s->stats.time_to_first_token, t - r->t_submit);
  else
    histogram_observe(&s->stats.inter_token_latency, t - r->t_last_token);
  if (!end) s->stats.generation_tokens++;
  pthread_mutex_unlock(&s->mu);
  r->t_last_token = t;

  if (st)
    finish_request(s, r, LLMC_FINISH_ERROR, st, true);
  else if (end || stopped || length)
    finish_request(s, r, stopped || end ? LLMC_FINISH_STOP : LLMC_FINISH_LENGTH, NULL, true);
  return st || end || stopped || length;
}

/* ---- scheduling (scheduler thread) --------------------------------------- */

static void waiting_push_front(llmc_scheduler_t *s, llmc_request_t *r) {
  r->next = s->waiting_head;
  s->waiting_head = r;
  if (!s->waiting_tail) s->waiting_tail = r;
}

static llmc_request_t *waiting_pop_front(llmc_scheduler_t *s) {
  llmc_request_t *r = s->waiting_head;
  s->waiting_head = r->next;
  if (!s->waiting_head) s->waiting_tail = NULL;
  r->next = NULL;
  return r;
}

static void running_remove(llmc_scheduler_t *s, int32_t i) {
  memmove(&s->running[i], &s->running[i + 1], (size_t)(s->n_running - i - 1) * sizeof *s->running);
  s->n_running--;
}

/* Takes the requests clients submitted since the last step into the
 * waiting queue, and finishes those they cancelled (freeing their blocks
 * before the step is planned). */
static void sync_with_clients(llmc_scheduler_t *s) {
  pthread_mutex_lock(&s->mu);
  if (s->incoming_head) {
    if (s->waiting_tail)
      s->waiting_tail->next = s->incoming_head;
    else
      s->waiting_head = s->incoming_head;
    s->waiting_tail = s->incoming_tail;
    s->incoming_head = s->incoming_tail = NULL;
  }
  bool cancel_all = s->stopping && !s->draining;
  /* The flags are read under the lock; finishing takes it again. */
  for (int32_t i = 0; i < s->n_running; i++)
    if (cancel_all) s->running[i]->cancel = true;
  for (llmc_request_t *r = s->waiting_head; r; r = r->next)
    if (cancel_all) r->cancel = true;
  pthread_mutex_unlock(&s->mu);

  for (int32_t i = 0; i < s->n_running;) {
    llmc_request_t *r = s->running[i];
    pthread_mutex_lock(&s->mu);
    bool cancel = r->cancel;
    pthread_mutex_unlock(&s->mu);
    if (!cancel) {
      i++;
      continue;
    }
    running_remove(s, i);
    finish_request(s, r, LLMC_FINISH_CANCELLED, NULL, true);
  }
  for (llmc_request_t **link = &s->waiting_head, *prev = NULL; *link;) {
    llmc_request_t *r = *link;
    pthread_mutex_lock(&s->mu);
    bool cancel = r->cancel;
    pthread_mutex_unlock(&s->mu);
    if (!cancel) {
      prev = r;
      link = &r->next;
      continue;
    }
    *link = r->next;
    if (s->waiting_tail == r) s->waiting_tail = prev;
    finish_request(s, r, LLMC_FINISH_CANCELLED, NULL, false);
  }
}

/* Moves running request i back to the front of the queue, its blocks
 * released: it will be recomputed from its tokens. */
static void preempt(llmc_scheduler_t *s, int32_t i) {
  llmc_request_t *r = s->running[i];
  running_remove(s, i);
  llmc_kv_seq_deinit(llmc_engine_kv_cache(s->engine), &r->seq);
  waiting_push_front(s, r);
  pthread_mutex_lock(&s->mu);
  s->stats.preemptions++;
  s->stats.requests_running--;
  s->stats.requests_waiting++;
  update_kv_stats(s);
  pthread_mutex_unlock(&s->mu);
}

/* Adds n of r's pending tokens to the step being planned. */
static void add_chunk(llmc_scheduler_t *s, int32_t *n_chunks, llmc_request_t *r, int32_t n) {
  int32_t from = r->seq.n_tokens;
  int32_t prompt_end = from + n < r->n_prompt ? from + n : r->n_prompt;
  if (prompt_end > from) s->step_prompt_tokens += (uint64_t)(prompt_end - from);
  s->chunks[(*n_chunks)++] = (llmc_engine_chunk_t){
      .seq = &r->seq,
      .tokens = r->tokens + from,
      .n_tokens = n,
      .logits = from + n == r->n_tokens ? LLMC_ENGINE_LOGITS_LAST : LLMC_ENGINE_LOGITS_NONE,
  };
}

/* Plans one step into s->chunks: decode tokens first, then prefill
 * chunks of running requests, then newly admitted requests, within the
 * token budget. Returns the number of chunks. */
static int32_t plan_step(llmc_scheduler_t *s) {
  llmc_kv_cache_t *kv = llmc_engine_kv_cache(s->engine);
  int32_t budget = llmc_engine_token_capacity(s->engine), n_chunks = 0;
  s->step_prompt_tokens = 0;

  /* Decodes, oldest first. A decode that finds no free block pre-empts
   * the newest running request (it has no chunk yet: chunks so far belong
   * to older requests), itself if it is the newest. */
  for (int32_t i = 0; i < s->n_running && budget > 0;) {
    llmc_request_t *r = s->running[i];
    if (r->n_tokens - r->seq.n_tokens != 1) {
      i++;
      continue;
    }
    llmc_status_t st;
    while ((st = llmc_kv_seq_reserve(kv, &r->seq, 1)) && s->n_running - 1 > i) {
      llmc_status_free(st);
      preempt(s, s->n_running - 1);
    }
    if (st) {
      llmc_status_free(st);
      preempt(s, i);
      continue;
    }
    add_chunk(s, &n_chunks, r, 1);
    budget--;
    i++;
  }
  /* Prompts being prefilled: their blocks were reserved at admission. */
  for (int32_t i = 0; i < s->n_running && budget > 0; i++) {
    llmc_request_t *r = s->running[i];
    int32_t pending = r->n_tokens - r->seq.n_tokens;
    if (pending <= 1) continue;
    int32_t n = pending < budget ? pending : budget;
    add_chunk(s, &n_chunks, r, n);
    budget -= n;
  }
  /* Admissions, in arrival order: each needs blocks for all its pending
   * tokens, after sharing what the prefix cache holds. */
  while (s->waiting_head && s->n_running < s->max_running && budget > 0) {
    llmc_request_t *r = s->waiting_head;
    int32_t cached = 0;
    if (s->prefix_cache && r->seq.n_tokens == 0)
      cached = llmc_kv_seq_attach_prefix(kv, &r->seq, r->tokens, r->n_tokens - 1);
    llmc_status_t st = llmc_kv_seq_reserve(kv, &r->seq, r->n_tokens - r->seq.n_tokens);
    if (st) { /* wait for blocks; later arrivals wait behind it */
      llmc_status_free(st);
      llmc_kv_seq_deinit(kv, &r->seq);
      break;
    }
    waiting_pop_front(s);
    s->running[s->n_running++] = r;
    pthread_mutex_lock(&s->mu);
    s->stats.requests_waiting--;
    s->stats.requests_running++;
    if (s->prefix_cache) {
      s->stats.prefix_cache_queries += (uint64_t)(r->n_tokens - 1);
      s->stats.prefix_cache_hits += (uint64_t)cached;
    }
    if (r->n_generated == 0) r->out.cached_tokens = cached; /* not on recompute */
    pthread_mutex_unlock(&s->mu);
    int32_t pending = r->n_tokens - r->seq.n_tokens;
    int32_t n = pending < budget ? pending : budget;
    add_chunk(s, &n_chunks, r, n);
    budget -= n;
  }
  return n_chunks;
}

/* The running request whose sequence is seq. */
static int32_t running_index(const llmc_scheduler_t *s, const llmc_kv_seq_t *seq) {
  for (int32_t i = 0; i < s->n_running; i++)
    if (&s->running[i]->seq == seq) return i;
  return -1;
}

/* Runs one planned step and hands each logits row to its request. */
static void run_step(llmc_scheduler_t *s, int32_t n_chunks) {
  llmc_kv_cache_t *kv = llmc_engine_kv_cache(s->engine);
  llmc_status_t st = llmc_engine_step(s->engine, s->chunks, n_chunks, s->logits);
  pthread_mutex_lock(&s->mu);
  s->stats.steps++;
  s->stats.prompt_tokens += st ? 0 : s->step_prompt_tokens;
  pthread_mutex_unlock(&s->mu);

  size_t vocab = (size_t)s->model->abi->vocab_size;
  int32_t row = 0;
  for (int32_t c = 0; c < n_chunks; c++) {
    const llmc_engine_chunk_t *ch = &s->chunks[c];
    int32_t i = running_index(s, ch->seq);
    llmc_request_t *r = s->running[i];
    if (st) { /* a bug, or memory: every request of the step fails alike */
      running_remove(s, i);
      finish_request(s, r, LLMC_FINISH_ERROR,
                     LLMC_ERROR(INTERNAL, "engine step failed: %s", llmc_status_message(st)), true);
      continue;
    }
    if (s->prefix_cache) llmc_kv_seq_publish(kv, &r->seq, r->tokens);
    if (ch->logits == LLMC_ENGINE_LOGITS_NONE) continue;
    if (accept_token(s, r, s->logits + (size_t)row * vocab)) running_remove(s, i);
    row++;
  }
  llmc_status_free(st);
}

/* Whether the thread has nothing to do. Under mu. */
static bool idle(const llmc_scheduler_t *s) {
  return !s->incoming_head && !s->waiting_head && s->n_running == 0;
}

static void *scheduler_main(void *arg) {
  llmc_scheduler_t *s = arg;
  for (;;) {
    pthread_mutex_lock(&s->mu);
    while (idle(s) && !s->stopping) pthread_cond_wait(&s->work, &s->mu);
    bool done = idle(s) && s->stopping;
    pthread_mutex_unlock(&s->mu);
    if (done) break;
    sync_with_clients(s);
    int32_t n_chunks = plan_step(s);
    if (n_chunks > 0) {
      run_step(s, n_chunks);
    } else if (s->waiting_head && s->n_running == 0) {
      /* Every block is free and the oldest request still does not fit:
       * submit's checks should make this impossible. Fail it rather than
       * spin. */
      llmc_request_t *r = waiting_pop_front(s);
      finish_request(s, r, LLMC_FINISH_ERROR,
                     LLMC_ERROR(INTERNAL, "request of %d tokens does not fit the KV cache",
                                r->n_tokens),
                     false);
    }
    pthread_mutex_lock(&s->mu);
    update_kv_stats(s);
    pthread_mutex_unlock(&s->mu);
  }
  return NULL;
}

/* ---- life cycle ---------------------------------------------------------- */

/* KV blocks for the pool when the options give no size: DEFAULT_KV_BYTES
 * worth, no more than max_running full contexts, no fewer than one. */
static int32_t default_kv_blocks(const llmc_model_t *model, const llmc_engine_options_t *engine,
                                 int32_t max_running) {
  const llmc_abi_record_t *abi = model->abi;
  int32_t block_size = engine->kv_block_size > 0 ? engine->kv_block_size : LLMC_KV_DEFAULT_BLOCK_SIZE;
  uint64_t block_bytes =
      llmc_kv_cache_block_bytes(abi->n_layers, abi->kv_dim, block_size, engine->kv_dtype);
  int64_t context_blocks = ((int64_t)abi->max_context + block_size - 1) / block_size;
  int64_t blocks = block_bytes ? (int64_t)(DEFAULT_KV_BYTES / block_bytes) : context_blocks;
  if (blocks > context_blocks * max_running) blocks = context_blocks * max_running;
  if (blocks < context_blocks) blocks = context_blocks;
  return blocks > INT32_MAX / block_size ? INT32_MAX / block_size : (int32_t)blocks;
}

llmc_status_t llmc_scheduler_create(const llmc_model_t *model, const llmc_tokenizer_t *tok,
                                    const llmc_scheduler_options_t *options,
                                    llmc_scheduler_t **out) {
  *out = NULL;
  llmc_scheduler_options_t opt = options ? *options : (llmc_scheduler_options_t){0};
  if (opt.max_running <= 0) opt.max_running = DEFAULT_MAX_RUNNING;
  if (opt.engine.token_capacity <= 0) opt.engine.token_capacity = LLMC_ENGINE_DEFAULT_TOKEN_CAPACITY;
  if (!opt.engine.kv_dtype) opt.engine.kv_dtype = LLMC_SCHEDULER_DEFAULT_KV_DTYPE;
  /* Every running request must be able to decode in every step. */
  if (opt.max_running > opt.engine.token_capacity) opt.max_running = opt.engine.token_capacity;
  if (opt.engine.kv_blocks <= 0)
    opt.engine.kv_blocks = default_kv_blocks(model, &opt.engine, opt.max_running);
  if (llmc_tokenizer_vocab_size(tok) > model->abi->vocab_size)
    return LLMC_ERROR(INVALID_ARGUMENT, "the tokenizer has %d tokens, the model only %d",
                      llmc_tokenizer_vocab_size(tok), model->abi->vocab_size);

  llmc_scheduler_t *s = calloc(1, sizeof *s);
  if (!s) return LLMC_ERROR(OUT_OF_MEMORY, "scheduler");
  s->model = model;
  s->tok = tok;
  s->max_running = opt.max_running;
  s->prefix_cache = !opt.no_prefix_cache;
  s->eos = llmc_tokenizer_eos_id(tok);
  s->accepting = true;
  pthread_mutex_init(&s->mu, NULL);
  pthread_cond_init(&s->work, NULL);
  llmc_status_t st = llmc_engine_create(model, &opt.engine, &s->engine);
  if (!st) {
    s->logits = malloc((size_t)opt.max_running * (size_t)model->abi->vocab_size * sizeof *s->logits);
    s->chunks = malloc((size_t)opt.max_running * sizeof *s->chunks);
    s->running = malloc((size_t)opt.max_running * sizeof *s->running);
    if (!s->logits || !s->chunks || !s->running)
      st = LLMC_ERROR(OUT_OF_MEMORY, "step buffers for %d sequences", opt.max_running);
  }
  if (!st) {
    llmc_kv_cache_set_prefix_caching(llmc_engine_kv_cache(s->engine), s->prefix_cache);
    update_kv_stats(s);
    if (pthread_create(&s->thread, NULL, scheduler_main, s))
      st = LLMC_ERROR(IO, "cannot start the scheduler thread");
    else
      s->thread_started = true;
  }
  if (st) {
    llmc_scheduler_destroy(s);
    return st;
  }
  *out = s;
  return LLMC_OK;
}

void llmc_scheduler_shutdown(llmc_scheduler_t *s, bool drain) {
  pthread_mutex_lock(&s->mu);
  s->accepting = false;
  if (!drain)
    s->draining = false; /* also after an earlier draining shutdown: cancel the rest */
  else if (!s->stopping)
    s->draining = true;
  s->stopping = true;
  pthread_cond_signal(&s->work);
  pthread_mutex_unlock(&s->mu);
  if (s->thread_started) {
    pthread_join(s->thread, NULL);
    s->thread_started = false;
  }
}

void llmc_scheduler_destroy(llmc_scheduler_t *s) {
  if (!s) return;
  llmc_scheduler_shutdown(s, false);
  llmc_engine_destroy(s->engine);
  free(s->logits);
  free(s->chunks);
  free(s->running);
  pthread_cond_destroy(&s->work);
  pthread_mutex_destroy(&s->mu);
  free(s);
}

void llmc_scheduler_stats(llmc_scheduler_t *s, llmc_scheduler_stats_t *out) {
  pthread_mutex_lock(&s->mu);
  *out = s->stats;
  pthread_mutex_unlock(&s->mu);
}

int32_t llmc_scheduler_max_context(const llmc_scheduler_t *s) {
  const llmc_kv_cache_t *kv = llmc_engine_kv_cache(s->engine); /* n_blocks never changes */
  int64_t pool = (int64_t)kv->n_blocks * kv->block_size;
  return pool < s->model->abi->max_context ? (int32_t)pool : s->model->abi->max_context;
}
