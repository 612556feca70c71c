/* scheduler.h — continuous batching: many generation requests served by one
 * engine, as DESIGN.md section 2 describes.
 *
 * A scheduler owns an engine (its thread pool and paged KV cache) and one
 * thread that runs steps. Every step takes, in this order, one decode token
 * of each running sequence (decodes are never starved), then chunks of
 * prompts still being prefilled, up to the step's token budget (chunked
 * prefill), then admits waiting requests in arrival order while the budget
 * and free KV blocks allow. When a running sequence needs a block and none is
 * free, the most recently admitted running request is pre-empted: its blocks
 * are released and it goes back to the front of the queue, to be recomputed
 * from its prompt and the tokens it had produced. Because every kernel is
 * batch-invariant, a request's tokens do not depend on what else ran beside
 * it, nor on whether it was pre-empted.
 *
 * A request's prompt may start with full KV blocks another request left in
 * the cache (prefix caching, kv_cache.c); those are shared, not recomputed.
 *
 * Requests are handles shared by the scheduler and one client thread. The
 * client submits, then polls for output (new text, new tokens, the finish);
 * it may cancel at any time (a disconnected HTTP client), and must release
 * the handle when done with it. Everything in this header is thread-safe
 * unless it says otherwise. */
#ifndef LLMC_RUNTIME_SCHEDULER_H
#define LLMC_RUNTIME_SCHEDULER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmc/runtime.h"
#include "sampler.h"
#include "stop_text.h"
#include "support/status.h"
#include "tokenizer.h"

#define LLMC_MAX_TOP_LOGPROBS 20

/* Serving keeps the KV cache in f16, as llama.cpp and vLLM do: half the
 * memory of f32, so twice the sequences. (The one-sequence tools default
 * to f32, which matches reference logits more closely.) */
#define LLMC_SCHEDULER_DEFAULT_KV_DTYPE LLMC_KV_F16

typedef struct llmc_scheduler_options {
  llmc_engine_options_t engine; /* threads, step token budget, KV pool (0s: defaults; KV f16) */
  int32_t max_running;          /* sequences in one step at most; default 64 */
  bool no_prefix_cache;         /* never share KV blocks between requests */
} llmc_scheduler_options_t;

/* What one request asks for. Strings are copied at submit. */
typedef struct llmc_gen_params {
  llmc_sampling_params_t sampling;
  int32_t max_tokens;  /* tokens to generate at most, >= 1; prompt + max_tokens <= max_context */
  bool ignore_eos;     /* keep going past the end-of-sequence token */
  bool skip_special;   /* leave special tokens out of the text (default on in servers) */
  int32_t n_stop;
  const char *stop[LLMC_MAX_STOP_STRINGS]; /* text ends before the first of these (not included) */
  bool logprobs;        /* report each token's log-probability (a pass over the vocabulary) */
  int32_t top_logprobs; /* alternatives reported per token, 0..LLMC_MAX_TOP_LOGPROBS */
} llmc_gen_params_t;

/* Defaults: llmc_sampling_params_default(), max_tokens 16, skip_special. */
llmc_gen_params_t llmc_gen_params_default(void);

typedef enum {
  LLMC_FINISH_NONE = 0,  /* still running */
  LLMC_FINISH_STOP,      /* end-of-sequence token or a stop string */
  LLMC_FINISH_LENGTH,    /* max_tokens reached */
  LLMC_FINISH_CANCELLED, /* llmc_request_cancel, or the scheduler shut down without draining */
  LLMC_FINISH_ERROR,     /* the engine failed; the delta's error says why */
} llmc_finish_reason_t;

/* "stop", "length", "cancelled", "error" (NULL for NONE). */
const char *llmc_finish_reason_name(llmc_finish_reason_t reason);

/* One generated token. */
typedef struct llmc_token_info {
  int32_t id;
  float logprob; /* log-probability under the model's raw distribution (0 unless asked for) */
  int32_t n_top; /* == the request's top_logprobs */
  int32_t top_ids[LLMC_MAX_TOP_LOGPROBS];
  float top_logprobs[LLMC_MAX_TOP_LOGPROBS]; /* most likely first */
} llmc_token_info_t;

/* Output that became available since the previous poll. Owned by the
 * caller: llmc_request_delta_deinit. */
typedef struct llmc_request_delta {
  char *text;                /* malloc'ed, NUL-terminated: new text, whole UTF-8 characters */
  size_t text_len;
  llmc_token_info_t *tokens; /* malloc'ed [n_tokens]: new tokens (also those whose text is held back) */
  int32_t n_tokens;
  llmc_finish_reason_t finish; /* != NONE on the last delta of the request */
  llmc_status_t error;         /* owned: with LLMC_FINISH_ERROR */
  int32_t prompt_tokens;       /* usage, as of this delta */
  int32_t completion_tokens;
  int32_t cached_tokens;       /* prompt tokens whose KV came from the prefix cache */
} llmc_request_delta_t;

void llmc_request_delta_deinit(llmc_request_delta_t *delta);

typedef struct llmc_scheduler llmc_scheduler_t;
typedef struct llmc_request llmc_request_t;

/* Creates the engine and starts the scheduler's thread. model and tok are
 * borrowed and must outlive the scheduler. options may be NULL. */
llmc_status_t llmc_scheduler_create(const llmc_model_t *model, const llmc_tokenizer_t *tok,
                                    const llmc_scheduler_options_t *options,
                                    llmc_scheduler_t **out);

/* Stops taking requests; with drain, waits until every request has
 * finished, else cancels them; then stops the thread. Idempotent. Clients
 * still polling see their requests finish. */
void llmc_scheduler_shutdown(llmc_scheduler_t *s, bool drain);

/* Shuts down (without draining) and frees the scheduler. Requests not yet
 * released stay valid until released. NULL is fine. */
void llmc_scheduler_destroy(llmc_scheduler_t *s);

/* Queues a request for the prompt's n_prompt token ids (copied). Fails
 * with INVALID_ARGUMENT, naming the problem, for an empty prompt, an id
 * outside the vocabulary, a prompt + max_tokens longer than the model's
 * context or than the whole KV pool, or bad params; with UNIMPLEMENTED
 * (read: unavailable) once the scheduler is shutting down. On success
 * *out is the caller's handle. */
llmc_status_t llmc_scheduler_submit(llmc_scheduler_t *s, const int32_t *prompt, int32_t n_prompt,
                                    const llmc_gen_params_t *params, llmc_request_t **out);

/* Waits up to timeout_ms (< 0: forever) for output the previous polls did
 * not return and moves it into *delta (which the caller deinits). Returns
 * true if the delta has anything (text, tokens or the finish); after the
 * delta with the finish, polls return false at once. */
bool llmc_request_poll(llmc_request_t *r, llmc_request_delta_t *delta, int timeout_ms);

/* Waits up to timeout_ms (< 0: forever) until one of the n requests rs (of
 * one scheduler, none waited on by another thread) has output its polls
 * have not returned; true if one has. Takes nothing: poll them after. This
 * is how one client thread serves several requests (an n > 1 completion)
 * without waiting on each in turn. */
bool llmc_request_wait_any(llmc_request_t *const *rs, int32_t n, int timeout_ms);

/* Asks the scheduler to stop the request; its KV blocks are freed at the
 * start of the next step, and it finishes with LLMC_FINISH_CANCELLED (if it
 * had not finished already). */
void llmc_request_cancel(llmc_request_t *r);

/* The client is done with the handle (cancels the request if it is still
 * running). r must not be used afterwards. NULL is fine. */
void llmc_request_release(llmc_request_t *r);

/* ---- statistics, for /metrics -------------------------------------------- */

#define LLMC_HISTOGRAM_BUCKETS 14

/* Cumulative histogram of durations in seconds, Prometheus style: counts[i]
 * counts observations <= llmc_histogram_bounds[i]; counts[BUCKETS] is all. */
typedef struct llmc_histogram {
  uint64_t counts[LLMC_HISTOGRAM_BUCKETS + 1];
  double sum;
} llmc_histogram_t;

extern const double llmc_histogram_bounds[LLMC_HISTOGRAM_BUCKETS];

typedef struct llmc_scheduler_stats {
  int32_t requests_running;     /* admitted and not finished */
  int32_t requests_waiting;     /* queued, or pre-empted and queued again */
  int32_t kv_blocks_total;
  int32_t kv_blocks_used;       /* held by at least one sequence */
  int32_t kv_blocks_cached;     /* free but holding a prefix another request may reuse */
  uint64_t prefix_cache_queries; /* prompt tokens looked up in the prefix cache */
  uint64_t prefix_cache_hits;    /* of those, tokens found there */
  uint64_t prompt_tokens;       /* prompt tokens computed (not cached ones) */
  uint64_t generation_tokens;   /* tokens generated */
  uint64_t requests_finished[LLMC_FINISH_ERROR + 1]; /* by finish reason */
  uint64_t preemptions;
  uint64_t steps;
  llmc_histogram_t time_to_first_token; /* submit to first token */
  llmc_histogram_t inter_token_latency; /* between consecutive tokens of a request */
  llmc_histogram_t request_latency;     /* submit to finish */
} llmc_scheduler_stats_t;

/* A consistent snapshot of the counters. */
void llmc_scheduler_stats(llmc_scheduler_t *s, llmc_scheduler_stats_t *out);

/* The most tokens (prompt and output) one request can have: the model's
 * context, or the whole KV pool if that is smaller. */
int32_t llmc_scheduler_max_context(const llmc_scheduler_t *s);

#endif /* LLMC_RUNTIME_SCHEDULER_H */
