/* openai.h — the JSON side of llmc serve: requests parsed into prompts and
 * generation parameters (openai_request.c), generations run and answered
 * in the shapes OpenAI, vLLM and shortfin clients expect (openai.c).
 * Private to runtime/server/: http.c is the only caller. Nothing here
 * knows about HTTP beyond status codes; nothing in http.c knows JSON. */
#ifndef LLMC_SERVER_OPENAI_H
#define LLMC_SERVER_OPENAI_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "chat_template.h"
#include "scheduler.h"
#include "tokenizer.h"

/* What every request handler reads; set up once by llmc_server_run and
 * read-only afterwards (handlers run on many threads at once). */
typedef struct llmc_api_ctx {
  llmc_scheduler_t *scheduler;               /* borrowed */
  const llmc_tokenizer_t *tok;               /* borrowed */
  const llmc_chat_template_t *chat_template; /* borrowed; NULL: chat requests are refused */
  const char *chat_template_missing;         /* why there is none: the 400's message */
  const char *model_name;                    /* the name clients use */
  int32_t vocab_size;                        /* the model's: prompt ids must be below it */
  int32_t max_context;                       /* prompt + max_tokens at most */
  int32_t max_tokens_limit;                  /* max_tokens at most */
  int64_t created; /* when the server started (Unix time), for /v1/models */
} llmc_api_ctx_t;

/* A complete HTTP answer. */
typedef struct llmc_api_reply {
  int status;               /* HTTP status code */
  const char *content_type; /* static string */
  char *body;               /* owned, malloc'ed; may be NULL when body_len is 0 */
  size_t body_len;
} llmc_api_reply_t;

/* Frees the body; the reply is empty again. */
void llmc_api_reply_deinit(llmc_api_reply_t *reply);

/* Makes *reply an OpenAI error with the given status: {"error": {"message",
 * "type", "param", "code"}}, type "invalid_request_error" for 4xx and
 * "server_error" for 5xx; code and param may be NULL (JSON null). Any body
 * *reply had is freed first. */
void llmc_api_error_reply(llmc_api_reply_t *reply, int status, const char *code, const char *param,
                          const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Makes *reply a 200 with the JSON text of value (which stays the caller's). */
void llmc_api_json_reply(llmc_api_reply_t *reply, const cJSON *value);

/* ---- requests (openai_request.c) ---------------------------------------- */

typedef enum {
  LLMC_API_COMPLETIONS, /* POST /v1/completions */
  LLMC_API_CHAT,        /* POST /v1/chat/completions */
  LLMC_API_GENERATE,    /* POST /generate (shortfin) */
} llmc_api_kind_t;

/* A generation request, validated: everything the scheduler needs, and
 * how the client wants the answer. */
typedef struct llmc_api_request {
  llmc_api_kind_t kind;
  cJSON *json;     /* owned: the parsed body; params.stop and rid point into it */
  int32_t *prompt; /* owned: [n_prompt] token ids, 1 <= n_prompt < max_context */
  int32_t n_prompt;
  char *prompt_text;        /* owned: the prompt as text (generate's "text"), or NULL */
  llmc_gen_params_t params; /* params.sampling.seed is the first choice's; choice i uses seed + i */
  int32_t n;                /* choices, 1..LLMC_API_MAX_N */
  bool stream;              /* answer as server-sent events */
  bool include_usage;       /* stream_options.include_usage */
  bool return_ids;          /* generate's return_input_ids: token ids instead of text */
  const char *rid;          /* generate's request id, or NULL */
} llmc_api_request_t;

#define LLMC_API_MAX_N 16 /* choices one request may ask for */

/* Parses a generation request body of len bytes (need not be
 * NUL-terminated) for kind. On success fills *req (the caller deinits it)
 * and returns true; otherwise makes *error the 4xx/5xx answer (naming the
 * offending field in "param") and returns false. */
bool llmc_api_request_parse(const llmc_api_ctx_t *ctx, llmc_api_kind_t kind, const char *body,
                            size_t len, llmc_api_request_t *req, llmc_api_reply_t *error);

/* Frees what req owns. */
void llmc_api_request_deinit(llmc_api_request_t *req);

/* POST /tokenize (vLLM's): {"prompt": text} or {"messages": [...]} to
 * {"count", "max_model_len", "tokens"}. */
void llmc_api_tokenize(const llmc_api_ctx_t *ctx, const char *body, size_t len,
                       llmc_api_reply_t *reply);

/* POST /detokenize (vLLM's): {"tokens": [ids]} to {"prompt": text}. */
void llmc_api_detokenize(const llmc_api_ctx_t *ctx, const char *body, size_t len,
                         llmc_api_reply_t *reply);

/* ---- generations (openai.c) --------------------------------------------- */

/* One generation request in flight: its scheduler requests (one per
 * choice) and the answer being built. Used by one thread at a time. */
typedef struct llmc_api_job llmc_api_job_t;

/* Parses the body and submits its requests. Returns the job, or NULL with
 * *reply the error answer (bad request, or the scheduler refusing). */
llmc_api_job_t *llmc_api_job_start(const llmc_api_ctx_t *ctx, llmc_api_kind_t kind,
                                   const char *body, size_t len, llmc_api_reply_t *reply);

/* Whether the client asked for server-sent events. */
bool llmc_api_job_streaming(const llmc_api_job_t *job);

/* Waits up to timeout_ms for new output and folds it into the answer
 * (streaming: appends events to read). Returns true once every choice has
 * finished (then, streaming, the closing events are written too). */
bool llmc_api_job_poll(llmc_api_job_t *job, int timeout_ms);

/* Streaming: moves up to max bytes of events not yet read into buf;
 * returns how many (0: none waiting). */
size_t llmc_api_job_read(llmc_api_job_t *job, char *buf, size_t max);

/* Streaming: every choice finished and every event was read. */
bool llmc_api_job_done(const llmc_api_job_t *job);

/* Not streaming, after llmc_api_job_poll returned true: the answer. */
void llmc_api_job_reply(llmc_api_job_t *job, llmc_api_reply_t *reply);

/* Releases the job's scheduler requests (cancelling those still running:
 * their KV blocks are freed at the scheduler's next step) and frees it.
 * NULL is fine. */
void llmc_api_job_destroy(llmc_api_job_t *job);

/* GET /v1/models (name NULL) or /v1/models/NAME. */
void llmc_api_models(const llmc_api_ctx_t *ctx, const char *name, llmc_api_reply_t *reply);

#endif /* LLMC_SERVER_OPENAI_H */
