/* openai.c — generations run through the scheduler and answered as the
 * client asked: OpenAI completions and chat completions (a JSON object, or
 * server-sent events "data: {chunk}" ending in "data: [DONE]"), or
 * shortfin's /generate.
 *
 * A job holds one scheduler request per choice (n of them, seeds seed,
 * seed + 1, ...) and polls them from the one thread that serves the
 * connection. Output is folded in as it arrives: kept for the final object
 * when not streaming, turned into events at once when streaming. The
 * scheduler already cuts text at stop strings and hands out whole UTF-8
 * characters, so text goes to the client as it comes. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/buf.h"
#include "server/openai.h"

/* Logprobs below this are reported as it, as vLLM does: JSON has no -inf. */
#define MIN_LOGPROB -9999.0

/* ---- replies -------------------------------------------------------------- */

void llmc_api_reply_deinit(llmc_api_reply_t *reply) {
  free(reply->body);
  *reply = (llmc_api_reply_t){0};
}

/* Makes *reply the 500 for running out of memory, without allocating. */
static void oom_reply(llmc_api_reply_t *reply) {
  static const char body[] = "{\"error\":{\"message\":\"Out of memory.\",\"type\":\"server_error\","
                             "\"param\":null,\"code\":null}}";
  llmc_api_reply_deinit(reply);
  reply->status = 500;
  reply->content_type = "application/json";
  reply->body = strdup(body);
  reply->body_len = reply->body ? strlen(body) : 0;
}

/* Adds value (NULL: null) to obj as name; false when memory runs out. */
static bool add_string_or_null(cJSON *obj, const char *name, const char *value) {
  return value ? cJSON_AddStringToObject(obj, name, value) != NULL
               : cJSON_AddNullToObject(obj, name) != NULL;
}

/* Adds item to array, or deletes it: false when either is NULL or memory
 * ran out. Every new item goes through here (or object_add), so that an
 * item is always owned by its parent or freed. */
static bool array_add(cJSON *array, cJSON *item) {
  if (item && cJSON_AddItemToArray(array, item)) return true;
  cJSON_Delete(item);
  return false;
}

/* As array_add, for obj[name]. */
static bool object_add(cJSON *obj, const char *name, cJSON *item) {
  if (item && cJSON_AddItemToObject(obj, name, item)) return true;
  cJSON_Delete(item);
  return false;
}

/* {"error": {"message", "type", "param", "code"}}, or NULL without memory. */
static cJSON *error_json(int status, const char *code, const char *param, const char *message) {
  cJSON *root = cJSON_CreateObject(), *error = cJSON_AddObjectToObject(root, "error");
  if (!error || !cJSON_AddStringToObject(error, "message", message) ||
      !cJSON_AddStringToObject(error, "type",
                               status < 500 ? "invalid_request_error" : "server_error") ||
      !add_string_or_null(error, "param", param) || !add_string_or_null(error, "code", code)) {
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

void llmc_api_error_reply(llmc_api_reply_t *reply, int status, const char *code, const char *param,
                          const char *fmt, ...) {
  char message[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  cJSON *json = error_json(status, code, param, message);
  llmc_api_json_reply(reply, json);
  cJSON_Delete(json);
  if (reply->status == 200) reply->status = status;
}

void llmc_api_json_reply(llmc_api_reply_t *reply, const cJSON *value) {
  llmc_api_reply_deinit(reply);
  char *text = value ? cJSON_PrintUnformatted(value) : NULL;
  if (!text) {
    oom_reply(reply);
    return;
  }
  *reply = (llmc_api_reply_t){200, "application/json", text, strlen(text)};
}

/* ---- jobs ----------------------------------------------------------------- */

/* One choice of a job: one scheduler request and what it produced. */
typedef struct api_choice {
  llmc_request_t *req;         /* owned handle; NULL once the choice is done */
  bool done;                   /* its last delta was folded in */
  llmc_finish_reason_t finish; /* why it ended */
  llmc_status_t error;         /* owned: why, with LLMC_FINISH_ERROR */
  int32_t prompt_tokens, completion_tokens, cached_tokens; /* usage as of the last delta */
  llmc_buf_t text;                                         /* not streaming: all its text */
  cJSON *logprobs;               /* not streaming, with logprobs: the "logprobs" object so far */
  cJSON *ids;                    /* not streaming, generate's return_input_ids: the token ids */
  llmc_tokenizer_stream_t detok; /* with logprobs: the text of each sampled token */
  size_t text_offset;            /* completions logprobs: characters of token text so far */
} api_choice_t;

struct llmc_api_job {
  const llmc_api_ctx_t *ctx;
  llmc_api_request_t req; /* owned */
  char id[48];            /* "cmpl-...", "chatcmpl-...", or generate's rid */
  int64_t created;        /* Unix time */
  api_choice_t *choices;  /* owned [req.n] */
  bool finished;          /* every choice is done (streaming: the closing events written) */
  bool failed;            /* an event could not be formatted (memory); the stream is cut */
  llmc_buf_t out;         /* streaming: events; out_read bytes of them were read */
  size_t out_read;
};

/* 32 random hex digits (request ids need only be unique). */
static void random_hex(char out[33]) {
  static const char digits[] = "0123456789abcdef";
  unsigned char bytes[16] = {0};
  if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    memcpy(bytes, &ts, sizeof ts < sizeof bytes ? sizeof ts : sizeof bytes);
  }
  for (int i = 0; i < 16; i++) {
    out[2 * i] = digits[bytes[i] >> 4];
    out[2 * i + 1] = digits[bytes[i] & 15];
  }
  out[32] = 0;
}

/* The HTTP answer for a status from llmc_scheduler_submit. */
static void submit_error_reply(llmc_status_t st, llmc_api_reply_t *reply) {
  llmc_status_code_t code = llmc_status_code(st);
  if (code == LLMC_STATUS_INVALID_ARGUMENT)
    llmc_api_error_reply(reply, 400, NULL, NULL, "%s", llmc_status_message(st));
  else if (code == LLMC_STATUS_UNIMPLEMENTED)
    llmc_api_error_reply(reply, 503, NULL, NULL, "The server is shutting down.");
  else
    llmc_api_error_reply(reply, 500, NULL, NULL, "%s", llmc_status_message(st));
  llmc_status_free(st);
}

/* Appends one server-sent event "data: JSON\n\n" for value (which is
 * deleted). false when memory runs out. */
static bool emit_json(llmc_api_job_t *job, cJSON *value) {
  char *text = value ? cJSON_PrintUnformatted(value) : NULL;
  cJSON_Delete(value);
  bool ok = text && llmc_buf_append_str(&job->out, "data: ") &&
            llmc_buf_append_str(&job->out, text) && llmc_buf_append_str(&job->out, "\n\n");
  free(text);
  return ok;
}

/* The members every OpenAI object of the job starts with. */
static cJSON *object_head(const llmc_api_job_t *job, const char *object) {
  cJSON *o = cJSON_CreateObject();
  if (!cJSON_AddStringToObject(o, "id", job->id) || !cJSON_AddStringToObject(o, "object", object) ||
      !cJSON_AddNumberToObject(o, "created", (double)job->created) ||
      !cJSON_AddStringToObject(o, "model", job->ctx->model_name)) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* A streaming chunk's head: object_head with an empty "choices" array
 * (returned in *choices), and "usage": null when the client asked for
 * usage (OpenAI puts it on every chunk then). */
static cJSON *chunk_head(const llmc_api_job_t *job, cJSON **choices) {
  const char *object = job->req.kind == LLMC_API_CHAT ? "chat.completion.chunk" : "text_completion";
  cJSON *o = object_head(job, object);
  *choices = cJSON_AddArrayToObject(o, "choices");
  if (!*choices || (job->req.include_usage && !cJSON_AddNullToObject(o, "usage"))) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* The chat stream's opening chunk for every choice: the role, no text yet. */
static bool emit_roles(llmc_api_job_t *job) {
  for (int32_t i = 0; i < job->req.n; i++) {
    cJSON *choices, *chunk = chunk_head(job, &choices), *c = cJSON_CreateObject();
    bool ok = array_add(choices, c) && cJSON_AddNumberToObject(c, "index", i);
    cJSON *delta = cJSON_AddObjectToObject(c, "delta");
    ok = ok && cJSON_AddStringToObject(delta, "role", "assistant") &&
         cJSON_AddStringToObject(delta, "content", "") && cJSON_AddNullToObject(c, "logprobs") &&
         cJSON_AddNullToObject(c, "finish_reason");
    if (!ok) cJSON_Delete(chunk);
    if (!ok || !emit_json(job, chunk)) return false;
  }
  return true;
}

llmc_api_job_t *llmc_api_job_start(const llmc_api_ctx_t *ctx, llmc_api_kind_t kind,
                                   const char *body, size_t len, llmc_api_reply_t *reply) {
  llmc_api_job_t *job = calloc(1, sizeof *job);
  if (!job) {
    oom_reply(reply);
    return NULL;
  }
  job->ctx = ctx;
  job->created = (int64_t)time(NULL);
  if (!llmc_api_request_parse(ctx, kind, body, len, &job->req, reply)) {
    free(job);
    return NULL;
  }
  char hex[33];
  random_hex(hex);
  if (kind == LLMC_API_GENERATE)
    snprintf(job->id, sizeof job->id, "%.47s", job->req.rid ? job->req.rid : hex);
  else
    snprintf(job->id, sizeof job->id, "%s-%s", kind == LLMC_API_CHAT ? "chatcmpl" : "cmpl", hex);
  job->choices = calloc((size_t)job->req.n, sizeof *job->choices);
  if (!job->choices) {
    llmc_api_job_destroy(job);
    oom_reply(reply);
    return NULL;
  }
  for (int32_t i = 0; i < job->req.n; i++) {
    /* The scheduler's detokenizer's flags, so that both read tokens alike. */
    llmc_tokenizer_stream_init(&job->choices[i].detok, ctx->tok,
                               job->req.params.skip_special ? LLMC_DETOKENIZE_SKIP_SPECIAL : 0);
    llmc_gen_params_t params = job->req.params;
    params.sampling.seed += (uint64_t)i;
    llmc_status_t st = llmc_scheduler_submit(ctx->scheduler, job->req.prompt, job->req.n_prompt,
                                             &params, &job->choices[i].req);
    if (st) {
      llmc_api_job_destroy(job);
      submit_error_reply(st, reply);
      return NULL;
    }
  }
  if (job->req.stream && kind == LLMC_API_CHAT && !emit_roles(job)) {
    llmc_api_job_destroy(job);
    oom_reply(reply);
    return NULL;
  }
  return job;
}

bool llmc_api_job_streaming(const llmc_api_job_t *job) { return job->req.stream; }

/* Characters (not bytes) in s[0, n): what OpenAI's text_offset counts. */
static size_t utf8_chars(const char *s, size_t n) {
  size_t count = 0;
  for (size_t i = 0; i < n; i++) count += ((unsigned char)s[i] & 0xC0) != 0x80;
  return count;
}

/* The text a sampled token added to choice c's output: c's own
 * detokenizer follows the scheduler's, so that the logprobs' tokens add up
 * to the text (a token that ends inside a character adds "", the next one
 * the whole character). Appended to text, which is left NUL-terminated. */
static bool sampled_text(api_choice_t *c, int32_t id, llmc_buf_t *text) {
  const char *piece;
  size_t n;
  llmc_status_t st = llmc_tokenizer_stream_push(&c->detok, id, &piece, &n);
  llmc_status_free(st);
  return !st && llmc_buf_append(text, piece, n);
}

/* The text of an alternative token, as it would read in the middle of the
 * output (a SentencePiece token keeps its leading space), as valid UTF-8. */
static bool alternative_text(const llmc_api_job_t *job, int32_t id, llmc_buf_t *text) {
  llmc_tokenizer_stream_t stream;
  llmc_tokenizer_stream_init(&stream, job->ctx->tok, 0);
  stream.started = true; /* not at the start of the text: no leading space to drop */
  const char *piece;
  size_t n;
  llmc_status_t st = llmc_tokenizer_stream_push(&stream, id, &piece, &n);
  bool ok = !st && llmc_buf_append(text, piece, n);
  if (ok) st = llmc_tokenizer_stream_finish(&stream, &piece, &n);
  ok = ok && !st && llmc_buf_append(text, piece, n);
  llmc_status_free(st);
  llmc_tokenizer_stream_deinit(&stream);
  return ok;
}

/* A logprob as reported: clamped, since JSON has no -inf. */
static double reported_logprob(float logprob) {
  return logprob > MIN_LOGPROB ? (double)logprob : MIN_LOGPROB;
}

/* Appends one token's entry to completions logprobs lp ({"tokens",
 * "token_logprobs", "top_logprobs", "text_offset"}, as the legacy OpenAI
 * API and vLLM give them): the alternatives as {text: logprob}, with the
 * sampled token among them (OpenAI: "up to logprobs + 1 elements"). */
static bool add_completion_logprob(const llmc_api_job_t *job, api_choice_t *c,
                                   const llmc_token_info_t *t, cJSON *lp) {
  llmc_buf_t text = {0};
  cJSON *top = sampled_text(c, t->id, &text) ? cJSON_CreateObject() : NULL;
  bool ok = array_add(cJSON_GetObjectItem(lp, "top_logprobs"), top);
  for (int32_t k = 0; ok && k <= t->n_top; k++) {
    llmc_buf_t alt = {0};
    int32_t id = k < t->n_top ? t->top_ids[k] : t->id;
    float logprob = k < t->n_top ? t->top_logprobs[k] : t->logprob;
    ok = alternative_text(job, id, &alt);
    if (ok && !cJSON_GetObjectItemCaseSensitive(top, alt.data)) /* two ids may read alike */
      ok = cJSON_AddNumberToObject(top, alt.data, reported_logprob(logprob)) != NULL;
    llmc_buf_deinit(&alt);
  }
  ok =
      ok && array_add(cJSON_GetObjectItem(lp, "tokens"), cJSON_CreateString(text.data)) &&
      array_add(cJSON_GetObjectItem(lp, "token_logprobs"),
                cJSON_CreateNumber(reported_logprob(t->logprob))) &&
      array_add(cJSON_GetObjectItem(lp, "text_offset"), cJSON_CreateNumber((double)c->text_offset));
  if (ok) c->text_offset += utf8_chars(text.data, text.len);
  llmc_buf_deinit(&text);
  return ok;
}

/* {"token", "logprob", "bytes"} as chat logprobs give a token: bytes are
 * the UTF-8 of text[0, len). */
static cJSON *chat_token(const char *text, size_t len, float logprob) {
  cJSON *o = cJSON_CreateObject(), *bytes = cJSON_CreateArray();
  bool ok = object_add(o, "bytes", bytes) && cJSON_AddStringToObject(o, "token", text) &&
            cJSON_AddNumberToObject(o, "logprob", reported_logprob(logprob));
  for (size_t i = 0; ok && i < len; i++)
    ok = array_add(bytes, cJSON_CreateNumber((unsigned char)text[i]));
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* Appends one token's entry to chat logprobs content (an array): the
 * sampled token, and its alternatives as "top_logprobs". */
static bool add_chat_logprob(const llmc_api_job_t *job, api_choice_t *c, const llmc_token_info_t *t,
                             cJSON *content) {
  llmc_buf_t text = {0};
  cJSON *entry = sampled_text(c, t->id, &text) ? chat_token(text.data, text.len, t->logprob) : NULL;
  llmc_buf_deinit(&text);
  cJSON *top = cJSON_AddArrayToObject(entry, "top_logprobs");
  bool ok = top != NULL;
  for (int32_t k = 0; ok && k < t->n_top; k++) {
    llmc_buf_t alt = {0};
    ok = alternative_text(job, t->top_ids[k], &alt) &&
         array_add(top, chat_token(alt.data, alt.len, t->top_logprobs[k]));
    llmc_buf_deinit(&alt);
  }
  if (!ok) {
    cJSON_Delete(entry);
    return false;
  }
  return array_add(content, entry);
}

/* An empty "logprobs" object for the job's kind. */
static cJSON *logprobs_new(const llmc_api_job_t *job) {
  cJSON *lp = cJSON_CreateObject();
  static const char *const completion_keys[] = {"tokens", "token_logprobs", "top_logprobs",
                                                "text_offset"};
  if (job->req.kind == LLMC_API_CHAT) {
    if (!cJSON_AddArrayToObject(lp, "content")) goto fail;
  } else {
    for (int k = 0; k < 4; k++)
      if (!cJSON_AddArrayToObject(lp, completion_keys[k])) goto fail;
  }
  return lp;
fail:
  cJSON_Delete(lp);
  return NULL;
}

/* Appends the entries of tokens[0, n) to lp. */
static bool add_logprobs(const llmc_api_job_t *job, api_choice_t *c,
                         const llmc_token_info_t *tokens, int32_t n, cJSON *lp) {
  cJSON *content = cJSON_GetObjectItem(lp, "content");
  for (int32_t i = 0; i < n; i++)
    if (!(content ? add_chat_logprob(job, c, &tokens[i], content)
                  : add_completion_logprob(job, c, &tokens[i], lp)))
      return false;
  return true;
}

/* The OpenAI finish_reason of a choice that is done. */
static const char *finish_name(llmc_finish_reason_t reason) {
  return reason == LLMC_FINISH_CANCELLED ? "abort" : llmc_finish_reason_name(reason);
}

/* One OpenAI streaming chunk for choice i's delta: its text, its tokens'
 * logprobs, and the finish_reason on the last one. */
static bool emit_openai_delta(llmc_api_job_t *job, int32_t i, const llmc_request_delta_t *d) {
  api_choice_t *c = &job->choices[i];
  bool finished = d->finish != LLMC_FINISH_NONE;
  if (!d->text_len && !finished && !(job->req.params.logprobs && d->n_tokens)) return true;
  cJSON *choices, *chunk = chunk_head(job, &choices), *choice = cJSON_CreateObject();
  bool ok = array_add(choices, choice) && cJSON_AddNumberToObject(choice, "index", i);
  if (job->req.kind == LLMC_API_CHAT) {
    cJSON *delta = cJSON_AddObjectToObject(choice, "delta");
    ok = ok && delta && (!d->text_len || cJSON_AddStringToObject(delta, "content", d->text));
  } else {
    ok = ok && cJSON_AddStringToObject(choice, "text", d->text ? d->text : "");
  }
  if (ok && job->req.params.logprobs) {
    cJSON *lp = logprobs_new(job);
    ok = object_add(choice, "logprobs", lp) && add_logprobs(job, c, d->tokens, d->n_tokens, lp);
  } else {
    ok = ok && cJSON_AddNullToObject(choice, "logprobs");
  }
  ok = ok && add_string_or_null(choice, "finish_reason", finished ? finish_name(d->finish) : NULL);
  if (!ok) {
    cJSON_Delete(chunk);
    return false;
  }
  return emit_json(job, chunk);
}

/* shortfin's streaming event for a delta: "data(RID): TEXT\n\n" with the
 * new text, or one event per token id with return_input_ids. shortfin
 * writes the text raw (no JSON), and so does this. */
static bool emit_generate_delta(llmc_api_job_t *job, int32_t i, const llmc_request_delta_t *d) {
  char head[80];
  if (job->req.n > 1)
    snprintf(head, sizeof head, "data(%s-%d): ", job->id, i);
  else
    snprintf(head, sizeof head, "data(%s): ", job->id);
  bool ok = true;
  if (job->req.return_ids) {
    for (int32_t k = 0; ok && k < d->n_tokens; k++) {
      char id[16];
      snprintf(id, sizeof id, "%d", d->tokens[k].id);
      ok = llmc_buf_append_str(&job->out, head) && llmc_buf_append_str(&job->out, id) &&
           llmc_buf_append_str(&job->out, "\n\n");
    }
  } else if (d->text_len) {
    ok = llmc_buf_append_str(&job->out, head) && llmc_buf_append(&job->out, d->text, d->text_len) &&
         llmc_buf_append_str(&job->out, "\n\n");
  }
  return ok;
}

/* The SSE error event for a choice that failed; the stream goes on with
 * the other choices and ends with [DONE] as usual. */
static bool emit_error(llmc_api_job_t *job, llmc_status_t error) {
  cJSON *json = error_json(500, NULL, NULL, llmc_status_message(error));
  return json && emit_json(job, json);
}

/* Folds choice i's delta into the job: streamed out at once, or kept. */
static bool fold_delta(llmc_api_job_t *job, int32_t i, llmc_request_delta_t *d) {
  api_choice_t *c = &job->choices[i];
  c->prompt_tokens = d->prompt_tokens;
  c->completion_tokens = d->completion_tokens;
  c->cached_tokens = d->cached_tokens;
  bool ok = true;
  if (job->req.stream) {
    /* A failed choice's last text goes out as usual, then the error. */
    llmc_request_delta_t shown = *d;
    if (d->finish == LLMC_FINISH_ERROR) shown.finish = LLMC_FINISH_NONE;
    ok = job->req.kind == LLMC_API_GENERATE ? emit_generate_delta(job, i, &shown)
                                            : emit_openai_delta(job, i, &shown);
    if (ok && d->finish == LLMC_FINISH_ERROR) ok = emit_error(job, d->error);
  } else {
    ok = llmc_buf_append(&c->text, d->text ? d->text : "", d->text_len);
    if (ok && job->req.params.logprobs && !c->logprobs) ok = (c->logprobs = logprobs_new(job)) != NULL;
    if (ok && job->req.params.logprobs) ok = add_logprobs(job, c, d->tokens, d->n_tokens, c->logprobs);
    if (ok && job->req.return_ids && !c->ids) ok = (c->ids = cJSON_CreateArray()) != NULL;
    for (int32_t k = 0; ok && job->req.return_ids && k < d->n_tokens; k++)
      ok = array_add(c->ids, cJSON_CreateNumber(d->tokens[k].id));
  }
  if (d->finish != LLMC_FINISH_NONE) {
    c->done = true;
    c->finish = d->finish;
    c->error = d->error;
    d->error = NULL;
    llmc_request_release(c->req);
    c->req = NULL;
  }
  return ok;
}

/* Polls choice i for up to timeout_ms; true if it had output. */
static bool poll_choice(llmc_api_job_t *job, int32_t i, int timeout_ms) {
  llmc_request_delta_t d = {0};
  bool got = llmc_request_poll(job->choices[i].req, &d, timeout_ms);
  if (got && !fold_delta(job, i, &d)) {
    /* Out of memory formatting the answer: give up on the whole job. */
    job->failed = true;
    for (int32_t k = 0; k < job->req.n; k++)
      if (job->choices[k].req) llmc_request_cancel(job->choices[k].req);
  }
  llmc_request_delta_deinit(&d);
  return got;
}

/* {"prompt_tokens", "completion_tokens", "total_tokens",
 * "prompt_tokens_details": {"cached_tokens"}}: the prompt counted once,
 * the completions of every choice. */
static cJSON *usage_json(const llmc_api_job_t *job) {
  int32_t completion = 0;
  for (int32_t i = 0; i < job->req.n; i++) completion += job->choices[i].completion_tokens;
  int32_t prompt =
      job->choices[0].prompt_tokens ? job->choices[0].prompt_tokens : job->req.n_prompt;
  cJSON *u = cJSON_CreateObject();
  bool ok = cJSON_AddNumberToObject(u, "prompt_tokens", prompt) &&
            cJSON_AddNumberToObject(u, "completion_tokens", completion) &&
            cJSON_AddNumberToObject(u, "total_tokens", prompt + completion);
  cJSON *details = cJSON_AddObjectToObject(u, "prompt_tokens_details");
  if (!ok || !cJSON_AddNumberToObject(details, "cached_tokens", job->choices[0].cached_tokens)) {
    cJSON_Delete(u);
    return NULL;
  }
  return u;
}

/* The end of a stream: the usage chunk when asked for, then [DONE]. */
static bool emit_tail(llmc_api_job_t *job) {
  if (job->req.include_usage) {
    cJSON *choices, *chunk = chunk_head(job, &choices);
    cJSON_DeleteItemFromObject(chunk, "usage"); /* the null every other chunk has */
    if (!object_add(chunk, "usage", usage_json(job))) {
      cJSON_Delete(chunk);
      return false;
    }
    if (!emit_json(job, chunk)) return false;
  }
  return llmc_buf_append_str(&job->out, "data: [DONE]\n\n");
}

bool llmc_api_job_poll(llmc_api_job_t *job, int timeout_ms) {
  if (job->finished) return true;
  int32_t n = job->req.n;
  bool any = false;
  for (int32_t i = 0; i < n && !job->failed; i++)
    if (!job->choices[i].done) any |= poll_choice(job, i, 0);
  if (!any && !job->failed && timeout_ms != 0) {
    /* Nothing yet: wait for whichever unfinished choice speaks first. */
    llmc_request_t *waiting[LLMC_API_MAX_N] = {0};
    int32_t n_waiting = 0;
    for (int32_t i = 0; i < n; i++)
      if (!job->choices[i].done) waiting[n_waiting++] = job->choices[i].req;
    if (llmc_request_wait_any(waiting, n_waiting, timeout_ms))
      for (int32_t i = 0; i < n && !job->failed; i++)
        if (!job->choices[i].done) poll_choice(job, i, 0);
  }
  bool all_done = true;
  for (int32_t i = 0; i < n; i++) all_done &= job->choices[i].done;
  if (!all_done && !job->failed) return false;
  job->finished = true;
  if (job->req.stream && !job->failed && !emit_tail(job)) job->failed = true;
  return true;
}

size_t llmc_api_job_read(llmc_api_job_t *job, char *buf, size_t max) {
  size_t n = job->out.len - job->out_read;
  if (n == 0) return 0;
  if (n > max) n = max;
  memcpy(buf, job->out.data + job->out_read, n);
  job->out_read += n;
  if (job->out_read == job->out.len) job->out.len = job->out_read = 0; /* reuse the buffer */
  return n;
}

bool llmc_api_job_done(const llmc_api_job_t *job) {
  return job->finished && (job->failed || job->out_read == job->out.len);
}

/* One choice of a final OpenAI object. */
static cJSON *final_choice(llmc_api_job_t *job, int32_t i) {
  api_choice_t *c = &job->choices[i];
  cJSON *o = cJSON_CreateObject();
  bool ok = cJSON_AddNumberToObject(o, "index", i) != NULL;
  const char *text = c->text.data ? c->text.data : "";
  if (job->req.kind == LLMC_API_CHAT) {
    cJSON *message = cJSON_AddObjectToObject(o, "message");
    ok = ok && cJSON_AddStringToObject(message, "role", "assistant") &&
         cJSON_AddStringToObject(message, "content", text);
  } else {
    ok = ok && cJSON_AddStringToObject(o, "text", text);
  }
  if (ok && c->logprobs) {
    ok = object_add(o, "logprobs", c->logprobs);
    c->logprobs = NULL; /* o owns it now, or it is gone */
  } else {
    ok = ok && cJSON_AddNullToObject(o, "logprobs");
  }
  if (!ok || !cJSON_AddStringToObject(o, "finish_reason", finish_name(c->finish))) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* The final object of a completion or chat completion. */
static cJSON *openai_final(llmc_api_job_t *job) {
  cJSON *o =
      object_head(job, job->req.kind == LLMC_API_CHAT ? "chat.completion" : "text_completion");
  cJSON *choices = cJSON_AddArrayToObject(o, "choices");
  bool ok = choices != NULL;
  for (int32_t i = 0; ok && i < job->req.n; i++) ok = array_add(choices, final_choice(job, i));
  if (!ok || !object_add(o, "usage", usage_json(job))) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

/* shortfin's answer: {"responses": [{"prompt": TEXT, "responses":
 * [{"text": ...} per choice]}]}, or with return_input_ids the generated
 * ids (one array, or one per choice when n > 1). */
static cJSON *generate_final(llmc_api_job_t *job) {
  if (job->req.return_ids) {
    if (job->req.n == 1) {
      cJSON *ids = job->choices[0].ids ? job->choices[0].ids : cJSON_CreateArray();
      job->choices[0].ids = NULL;
      return ids;
    }
    cJSON *all = cJSON_CreateArray();
    bool ok = all != NULL;
    for (int32_t i = 0; ok && i < job->req.n; i++) {
      ok = array_add(all, job->choices[i].ids ? job->choices[i].ids : cJSON_CreateArray());
      job->choices[i].ids = NULL; /* all owns it now, or it is gone */
    }
    if (!ok) cJSON_Delete(all);
    return ok ? all : NULL;
  }
  cJSON *o = cJSON_CreateObject(), *prompts = cJSON_AddArrayToObject(o, "responses");
  cJSON *p = cJSON_CreateObject();
  bool ok = array_add(prompts, p) && add_string_or_null(p, "prompt", job->req.prompt_text);
  cJSON *texts = cJSON_AddArrayToObject(p, "responses");
  ok = ok && texts;
  for (int32_t i = 0; ok && i < job->req.n; i++) {
    cJSON *r = cJSON_CreateObject();
    ok = array_add(texts, r) &&
         cJSON_AddStringToObject(r, "text",
                                 job->choices[i].text.data ? job->choices[i].text.data : "");
  }
  if (!ok) {
    cJSON_Delete(o);
    return NULL;
  }
  return o;
}

void llmc_api_job_reply(llmc_api_job_t *job, llmc_api_reply_t *reply) {
  if (job->failed) {
    oom_reply(reply);
    return;
  }
  for (int32_t i = 0; i < job->req.n; i++)
    if (job->choices[i].error) {
      llmc_api_error_reply(reply, 500, NULL, NULL, "%s",
                           llmc_status_message(job->choices[i].error));
      return;
    }
  cJSON *json = job->req.kind == LLMC_API_GENERATE ? generate_final(job) : openai_final(job);
  llmc_api_json_reply(reply, json);
  cJSON_Delete(json);
}

void llmc_api_job_destroy(llmc_api_job_t *job) {
  if (!job) return;
  for (int32_t i = 0; job->choices && i < job->req.n; i++) {
    api_choice_t *c = &job->choices[i];
    llmc_request_release(c->req);
    llmc_status_free(c->error);
    llmc_buf_deinit(&c->text);
    cJSON_Delete(c->logprobs);
    cJSON_Delete(c->ids);
    llmc_tokenizer_stream_deinit(&c->detok);
  }
  free(job->choices);
  llmc_buf_deinit(&job->out);
  llmc_api_request_deinit(&job->req);
  free(job);
}

/* ---- /v1/models ----------------------------------------------------------- */

/* The model object OpenAI's /v1/models lists (vLLM adds max_model_len). */
static cJSON *model_json(const llmc_api_ctx_t *ctx) {
  cJSON *m = cJSON_CreateObject();
  if (!cJSON_AddStringToObject(m, "id", ctx->model_name) ||
      !cJSON_AddStringToObject(m, "object", "model") ||
      !cJSON_AddNumberToObject(m, "created", (double)ctx->created) ||
      !cJSON_AddStringToObject(m, "owned_by", "llmc") ||
      !cJSON_AddNumberToObject(m, "max_model_len", ctx->max_context)) {
    cJSON_Delete(m);
    return NULL;
  }
  return m;
}

void llmc_api_models(const llmc_api_ctx_t *ctx, const char *name, llmc_api_reply_t *reply) {
  if (name && strcmp(name, ctx->model_name) != 0) {
    llmc_api_error_reply(reply, 404, "model_not_found", "model", "The model '%s' does not exist.",
                         name);
    return;
  }
  cJSON *model = model_json(ctx), *json = model;
  if (!name) {
    json = cJSON_CreateObject();
    bool ok = cJSON_AddStringToObject(json, "object", "list") != NULL;
    cJSON *data = cJSON_AddArrayToObject(json, "data");
    if (!ok || !array_add(data, model)) {
      if (!ok) cJSON_Delete(model);
      cJSON_Delete(json);
      json = NULL;
    }
  }
  llmc_api_json_reply(reply, json);
  cJSON_Delete(json);
}
