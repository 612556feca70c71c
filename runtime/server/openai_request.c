/* openai_request.c — request bodies to prompts and generation parameters.
 *
 * The rules are vLLM's, which are OpenAI's plus a few extensions: fields
 * the server does not know are ignored, a JSON null is the same as an
 * absent field (clients send null for "not set"), and a known field with a
 * wrong type or value is a 400 whose "param" names it. Fields that ask for
 * something llmc does not do (echo, suffix, logit_bias, tools, ...) are
 * refused rather than ignored, so that a client never gets an answer to a
 * question it did not ask.
 *
 * Prompts become token ids here: a completion prompt as `llmc run` tokenizes
 * it (the tokenizer's BOS added; an empty prompt is BOS alone), chat
 * messages through the chat template with special tokens parsed and nothing
 * added (the template writes BOS), as vLLM does. */
#include <math.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "server/buf.h"
#include "chat_context.h"
#include "server/openai.h"

/* ---- typed fields --------------------------------------------------------- */

/* obj[name], or NULL when absent or JSON null. */
static const cJSON *member(const cJSON *obj, const char *name) {
  const cJSON *m = cJSON_GetObjectItemCaseSensitive(obj, name);
  return cJSON_IsNull(m) ? NULL : m;
}

/* The 400 for a field of the wrong type; returns false for the caller to pass on. */
static bool bad_type(llmc_api_reply_t *err, const char *name, const char *expected) {
  llmc_api_error_reply(err, 400, NULL, name, "Invalid type for '%s': expected %s.", name, expected);
  return false;
}

/* Reads a boolean field into *out (left alone when absent). */
static bool read_bool(const cJSON *obj, const char *name, bool *out, llmc_api_reply_t *err) {
  const cJSON *m = member(obj, name);
  if (!m) return true;
  if (!cJSON_IsBool(m)) return bad_type(err, name, "a boolean");
  *out = cJSON_IsTrue(m);
  return true;
}

/* Reads an integer field in [min, max] into *out (left alone when absent).
 * JSON numbers are doubles in cJSON: 3.0 is an integer, 3.5 is not. */
static bool read_int(const cJSON *obj, const char *name, int64_t min, int64_t max, int64_t *out,
                     llmc_api_reply_t *err) {
  const cJSON *m = member(obj, name);
  if (!m) return true;
  double v = cJSON_IsNumber(m) ? m->valuedouble : NAN;
  if (!isfinite(v) || v != floor(v)) return bad_type(err, name, "an integer");
  /* (double)max + 1 keeps INT64_MAX, which double rounds up to 2^63, exclusive. */
  if (v < (double)min || v >= (double)max + 1.0) {
    llmc_api_error_reply(err, 400, NULL, name, "'%s' must be between %lld and %lld, got %.0f.",
                         name, (long long)min, (long long)max, v);
    return false;
  }
  *out = (int64_t)v;
  return true;
}

/* Reads a finite number field into *out (left alone when absent). */
static bool read_float(const cJSON *obj, const char *name, float *out, llmc_api_reply_t *err) {
  const cJSON *m = member(obj, name);
  if (!m) return true;
  if (!cJSON_IsNumber(m) || !isfinite(m->valuedouble)) return bad_type(err, name, "a number");
  *out = (float)m->valuedouble;
  return true;
}

/* Refuses a field that asks for something llmc does not implement, when its
 * value asks for it (absent, null, false, "" and empty containers do not). */
static bool refuse_field(const cJSON *obj, const char *name, llmc_api_reply_t *err) {
  const cJSON *m = member(obj, name);
  bool asks = m && !cJSON_IsFalse(m) && !(cJSON_IsString(m) && !m->valuestring[0]) &&
              !((cJSON_IsArray(m) || cJSON_IsObject(m)) && !m->child);
  if (!asks) return true;
  llmc_api_error_reply(err, 400, NULL, name, "'%s' is not supported by this server.", name);
  return false;
}

/* Parses body as one JSON object into *out (owned by the caller). */
static bool parse_body(const char *body, size_t len, cJSON **out, llmc_api_reply_t *err) {
  const char *end = NULL;
  cJSON *json = cJSON_ParseWithLengthOpts(body, len, &end, false);
  if (json && end) /* only white space may follow the value */
    while ((size_t)(end - body) < len && strchr(" \t\r\n", *end)) end++;
  if (!json || (size_t)(end - body) < len) {
    size_t at = json                  ? (size_t)(end - body)
                : cJSON_GetErrorPtr() ? (size_t)(cJSON_GetErrorPtr() - body)
                                      : 0;
    cJSON_Delete(json);
    llmc_api_error_reply(err, 400, NULL, NULL,
                         "We could not parse the JSON body of your request (error at byte %zu).",
                         at > len ? len : at);
    return false;
  }
  if (!cJSON_IsObject(json)) {
    cJSON_Delete(json);
    llmc_api_error_reply(err, 400, NULL, NULL, "The request body must be a JSON object.");
    return false;
  }
  *out = json;
  return true;
}

/* Checks the "model" field: absent, or the served name (404 otherwise). */
static bool check_model(const llmc_api_ctx_t *ctx, const cJSON *json, llmc_api_reply_t *err) {
  const cJSON *m = member(json, "model");
  if (!m) return true;
  if (!cJSON_IsString(m)) return bad_type(err, "model", "a string");
  if (strcmp(m->valuestring, ctx->model_name) == 0) return true;
  llmc_api_error_reply(err, 404, "model_not_found", "model",
                       "The model '%s' does not exist. This server serves '%s'.", m->valuestring,
                       ctx->model_name);
  return false;
}

/* ---- prompts -------------------------------------------------------------- */

/* Reads a JSON array of token ids (each in [0, vocab)) into *out (malloc'ed). */
static bool read_ids(const cJSON *array, const char *name, int32_t vocab, int32_t **out, int32_t *n,
                     llmc_api_reply_t *err) {
  int count = cJSON_GetArraySize(array);
  if (count == 0) {
    llmc_api_error_reply(err, 400, NULL, name, "'%s' must not be empty.", name);
    return false;
  }
  int32_t *ids = malloc((size_t)count * sizeof *ids);
  if (!ids) {
    llmc_api_error_reply(err, 500, NULL, NULL, "Out of memory reading %d token ids.", count);
    return false;
  }
  int i = 0;
  for (const cJSON *e = array->child; e; e = e->next, i++) {
    double v = cJSON_IsNumber(e) ? e->valuedouble : NAN;
    if (!(v >= 0 && v < vocab && v == floor(v))) {
      free(ids);
      llmc_api_error_reply(err, 400, NULL, name,
                           "'%s'[%d] is not a token id: expected an integer in [0, %d).", name, i,
                           vocab);
      return false;
    }
    ids[i] = (int32_t)v;
  }
  *out = ids;
  *n = count;
  return true;
}

/* Tokenizes text (flags: LLMC_TOKENIZE_*) into *out. A text that gives no
 * tokens at all is BOS alone, as `llmc run` treats an empty prompt. */
static bool tokenize(const llmc_api_ctx_t *ctx, const char *text, size_t len, uint32_t flags,
                     const char *name, int32_t **out, int32_t *n, llmc_api_reply_t *err) {
  size_t count = 0;
  llmc_status_t st = llmc_tokenizer_encode(ctx->tok, text, len, flags, out, &count);
  if (st) {
    llmc_api_error_reply(err, 500, NULL, NULL, "Tokenizing the prompt failed: %s",
                         llmc_status_message(st));
    llmc_status_free(st);
    return false;
  }
  if (count == 0) {
    int32_t bos = llmc_tokenizer_bos_id(ctx->tok);
    free(*out);
    *out = bos >= 0 ? malloc(sizeof **out) : NULL;
    if (!*out) {
      llmc_api_error_reply(err, 400, NULL, name,
                           "The prompt is empty and the model has no BOS token.");
      return false;
    }
    (*out)[0] = bos;
    count = 1;
  }
  if (count >= (size_t)INT32_MAX) {
    llmc_api_error_reply(err, 400, NULL, name, "The prompt is too long.");
    return false;
  }
  *n = (int32_t)count;
  return true;
}

/* A completion's prompt: a string, an array of token ids, or an array
 * holding one of those. Several prompts in one request are refused. */
static bool completion_prompt(const llmc_api_ctx_t *ctx, const cJSON *p, const char *name,
                              llmc_api_request_t *req, llmc_api_reply_t *err) {
  if (!p) {
    llmc_api_error_reply(err, 400, NULL, name, "'%s' is required.", name);
    return false;
  }
  if (cJSON_IsArray(p) && cJSON_GetArraySize(p) == 1 && !cJSON_IsNumber(p->child)) p = p->child;
  if (cJSON_IsString(p)) {
    req->prompt_text = strdup(p->valuestring);
    if (!req->prompt_text) {
      llmc_api_error_reply(err, 500, NULL, NULL, "Out of memory.");
      return false;
    }
    return tokenize(ctx, p->valuestring, strlen(p->valuestring), LLMC_TOKENIZE_ADD_SPECIAL, name,
                    &req->prompt, &req->n_prompt, err);
  }
  if (cJSON_IsArray(p) && (!p->child || cJSON_IsNumber(p->child)))
    return read_ids(p, name, ctx->vocab_size, &req->prompt, &req->n_prompt, err);
  if (cJSON_IsArray(p)) {
    llmc_api_error_reply(err, 400, NULL, name,
                         "Several prompts in one request are not supported: send one request per "
                         "prompt (or use n for several completions of one prompt).");
    return false;
  }
  return bad_type(err, name, "a string or an array of token ids");
}

/* The text of a message's content: a string, or an array of
 * {"type": "text", "text": ...} parts joined by newlines (as vLLM joins
 * them). Appends it to out. */
static bool message_content(const cJSON *content, llmc_buf_t *out, llmc_api_reply_t *err) {
  if (cJSON_IsString(content)) {
    if (!llmc_buf_append_str(out, content->valuestring)) goto oom;
    return true;
  }
  if (!cJSON_IsArray(content))
    return bad_type(err, "messages", "message content as a string or an array of content parts");
  for (const cJSON *part = content->child; part; part = part->next) {
    const cJSON *type = member(part, "type"), *text = member(part, "text");
    if (!cJSON_IsString(type) || strcmp(type->valuestring, "text") != 0) {
      llmc_api_error_reply(err, 400, NULL, "messages",
                           "Only text content parts are supported (got type '%s').",
                           cJSON_IsString(type) ? type->valuestring : "?");
      return false;
    }
    if (!cJSON_IsString(text)) return bad_type(err, "messages", "a string as a text part's 'text'");
    if ((part != content->child && !llmc_buf_append_str(out, "\n")) ||
        !llmc_buf_append_str(out, text->valuestring))
      goto oom;
  }
  return true;
oom:
  llmc_api_error_reply(err, 500, NULL, NULL, "Out of memory.");
  return false;
}

/* The messages as the template sees them: every message an object with a
 * string role, its content reduced to one string (or left null). */
static bool chat_messages(const cJSON *messages, cJSON **out, llmc_api_reply_t *err) {
  if (!cJSON_IsArray(messages) || !messages->child) {
    if (!messages)
      llmc_api_error_reply(err, 400, NULL, "messages", "'messages' is required.");
    else
      bad_type(err, "messages", "a non-empty array of messages");
    return false;
  }
  cJSON *list = cJSON_Duplicate(messages, true);
  if (!list) goto oom;
  for (cJSON *m = list->child; m; m = m->next) {
    if (!cJSON_IsObject(m) || !cJSON_IsString(member(m, "role"))) {
      cJSON_Delete(list);
      return bad_type(err, "messages", "objects with a string 'role'");
    }
    const cJSON *content = member(m, "content");
    if (!content || cJSON_IsString(content)) continue;
    llmc_buf_t text = {0};
    if (!message_content(content, &text, err)) {
      llmc_buf_deinit(&text);
      cJSON_Delete(list);
      return false;
    }
    cJSON *s = cJSON_CreateString(text.data ? text.data : "");
    llmc_buf_deinit(&text);
    if (!s || !cJSON_ReplaceItemInObjectCaseSensitive(m, "content", s)) {
      cJSON_Delete(s);
      cJSON_Delete(list);
      goto oom;
    }
  }
  *out = list;
  return true;
oom:
  llmc_api_error_reply(err, 500, NULL, NULL, "Out of memory.");
  return false;
}

/* Renders the request's messages with the chat template and tokenizes the
 * text: special tokens parsed, nothing added (the template writes BOS). */
static bool chat_prompt(const llmc_api_ctx_t *ctx, const cJSON *json, int32_t **out, int32_t *n,
                        llmc_api_reply_t *err) {
  if (!ctx->chat_template) {
    llmc_api_error_reply(err, 400, NULL, "messages", "%s", ctx->chat_template_missing);
    return false;
  }
  bool add_generation_prompt = true;
  cJSON *messages = NULL;
  if (!read_bool(json, "add_generation_prompt", &add_generation_prompt, err) ||
      !chat_messages(member(json, "messages"), &messages, err))
    return false;
  cJSON *context = cJSON_CreateObject();
  llmc_status_t st = LLMC_OK;
  if (!context || !cJSON_AddBoolToObject(context, "add_generation_prompt", add_generation_prompt))
    st = LLMC_ERROR(OUT_OF_MEMORY, "chat template context");
  if (!st) {
    cJSON_AddItemToObject(context, "messages", messages);
    messages = NULL;
    st = llmc_chat_context_add_special_tokens(context, ctx->tok);
  }
  char *text = NULL;
  size_t len = 0;
  bool raised = false;
  if (!st) st = llmc_chat_template_apply(ctx->chat_template, context, &text, &len, &raised);
  cJSON_Delete(messages);
  cJSON_Delete(context);
  if (st) {
    /* The template's own raise_exception is the client's problem, and so is
     * anything else its messages make it trip over; memory is ours. */
    int status = llmc_status_code(st) == LLMC_STATUS_OUT_OF_MEMORY ? 500 : 400;
    llmc_api_error_reply(err, status, NULL, "messages", "%s%s",
                         raised ? "" : "Chat template: ", llmc_status_message(st));
    llmc_status_free(st);
    return false;
  }
  bool ok = tokenize(ctx, text, len, LLMC_TOKENIZE_PARSE_SPECIAL, "messages", out, n, err);
  free(text);
  return ok;
}

/* ---- generation parameters ------------------------------------------------ */

/* The sampling fields, read into llmc_sampling_params_t by offset. */
static const struct {
  const char *name;
  size_t offset;
} float_fields[] = {
    {"temperature", offsetof(llmc_sampling_params_t, temperature)},
    {"top_p", offsetof(llmc_sampling_params_t, top_p)},
    {"min_p", offsetof(llmc_sampling_params_t, min_p)},
    {"repetition_penalty", offsetof(llmc_sampling_params_t, repetition_penalty)},
    {"presence_penalty", offsetof(llmc_sampling_params_t, presence_penalty)},
    {"frequency_penalty", offsetof(llmc_sampling_params_t, frequency_penalty)},
};

/* Checks one sampling field's value with the sampler's own rules: the
 * field alone is set in otherwise default parameters, so the sampler's
 * message is about it and "param" can name it. */
static bool check_sampling_field(const llmc_sampling_params_t *probe, const char *name,
                                 llmc_api_reply_t *err) {
  llmc_status_t st = llmc_sampling_params_check(probe);
  if (!st) return true;
  llmc_api_error_reply(err, 400, NULL, name, "%s", llmc_status_message(st));
  llmc_status_free(st);
  return false;
}

/* A seed nobody asked for: requests without one are not reproducible, as
 * with OpenAI. */
static uint64_t random_seed(void) {
  uint64_t seed;
  if (getrandom(&seed, sizeof seed, 0) == (ssize_t)sizeof seed) return seed;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000007u ^ (uint64_t)ts.tv_nsec;
}

/* Reads the sampling fields, stop, seed, n, ignore_eos and
 * skip_special_tokens from obj (the body, or generate's sampling_params). */
static bool read_sampling(const cJSON *obj, llmc_api_request_t *req, llmc_api_reply_t *err) {
  llmc_gen_params_t *p = &req->params;
  for (size_t i = 0; i < sizeof float_fields / sizeof float_fields[0]; i++) {
    llmc_sampling_params_t probe = llmc_sampling_params_default();
    float *field = (float *)((char *)&probe + float_fields[i].offset);
    if (!member(obj, float_fields[i].name)) continue;
    if (!read_float(obj, float_fields[i].name, field, err) ||
        !check_sampling_field(&probe, float_fields[i].name, err))
      return false;
    *(float *)((char *)&p->sampling + float_fields[i].offset) = *field;
  }
  int64_t top_k = 0, seed = 0, n = 1;
  if (!read_int(obj, "top_k", -1, INT32_MAX, &top_k, err)) return false;
  p->sampling.top_k = top_k < 0 ? 0 : (int32_t)top_k; /* vLLM: -1 turns it off, as 0 does */
  bool seeded = member(obj, "seed") != NULL;
  if (!read_int(obj, "seed", INT64_MIN, INT64_MAX, &seed, err)) return false;
  p->sampling.seed = seeded ? (uint64_t)seed : random_seed();
  if (!read_int(obj, "n", 1, LLMC_API_MAX_N, &n, err) ||
      !read_bool(obj, "ignore_eos", &p->ignore_eos, err) ||
      !read_bool(obj, "skip_special_tokens", &p->skip_special, err))
    return false;
  req->n = (int32_t)n;
  const cJSON *stop = member(obj, "stop");
  if (cJSON_IsString(stop)) {
    p->stop[p->n_stop++] = stop->valuestring;
  } else if (cJSON_IsArray(stop)) {
    if (cJSON_GetArraySize(stop) > LLMC_MAX_STOP_STRINGS) {
      llmc_api_error_reply(err, 400, NULL, "stop", "At most %d stop strings are supported.",
                           LLMC_MAX_STOP_STRINGS);
      return false;
    }
    for (const cJSON *s = stop->child; s; s = s->next) {
      if (!cJSON_IsString(s)) return bad_type(err, "stop", "a string or an array of strings");
      p->stop[p->n_stop++] = s->valuestring;
    }
  } else if (stop) {
    return bad_type(err, "stop", "a string or an array of strings");
  }
  for (int32_t i = 0; i < p->n_stop; i++)
    if (!p->stop[i][0]) {
      llmc_api_error_reply(err, 400, NULL, "stop", "Stop strings must not be empty.");
      return false;
    }
  return true;
}

/* Reads the max_tokens field called name and checks it and the prompt
 * against the context and the server's limit. When the field is absent,
 * the default (want; 0: the rest of the context) is cut to what fits. */
static bool read_max_tokens(const llmc_api_ctx_t *ctx, const cJSON *obj, const char *name,
                            int32_t want, const char *prompt_name, llmc_api_request_t *req,
                            llmc_api_reply_t *err) {
  int64_t room = (int64_t)ctx->max_context - req->n_prompt;
  if (!member(obj, name)) {
    if (room < 1) {
      llmc_api_error_reply(err, 400, "context_length_exceeded", prompt_name,
                           "This model's maximum context length is %d tokens. However, your %s "
                           "resulted in %d tokens. Please reduce the length of the %s.",
                           ctx->max_context, prompt_name, req->n_prompt, prompt_name);
      return false;
    }
    int64_t max_tokens = want > 0 && want < room ? want : room;
    req->params.max_tokens =
        (int32_t)(max_tokens < ctx->max_tokens_limit ? max_tokens : ctx->max_tokens_limit);
    return true;
  }
  int64_t max_tokens = 0;
  if (!read_int(obj, name, 1, INT32_MAX, &max_tokens, err)) return false;
  if (max_tokens > ctx->max_tokens_limit) {
    llmc_api_error_reply(err, 400, NULL, name, "'%s' must be at most %d on this server, got %lld.",
                         name, ctx->max_tokens_limit, (long long)max_tokens);
    return false;
  }
  if (max_tokens > room) {
    llmc_api_error_reply(err, 400, "context_length_exceeded", prompt_name,
                         "This model's maximum context length is %d tokens. However, you requested "
                         "%lld tokens (%d in the %s, %lld in the completion). Please reduce the "
                         "length of the %s or completion.",
                         ctx->max_context, (long long)(req->n_prompt + max_tokens), req->n_prompt,
                         prompt_name, (long long)max_tokens, prompt_name);
    return false;
  }
  req->params.max_tokens = (int32_t)max_tokens;
  return true;
}

/* stream and stream_options (OpenAI's: include_usage). */
static bool read_stream(const cJSON *json, llmc_api_request_t *req, llmc_api_reply_t *err) {
  if (!read_bool(json, "stream", &req->stream, err)) return false;
  const cJSON *options = member(json, "stream_options");
  if (!options) return true;
  if (!cJSON_IsObject(options)) return bad_type(err, "stream_options", "an object");
  if (!req->stream) {
    llmc_api_error_reply(err, 400, NULL, "stream_options",
                         "'stream_options' can only be given when 'stream' is true.");
    return false;
  }
  if (!member(options, "include_usage")) return true;
  if (!cJSON_IsBool(member(options, "include_usage")))
    return bad_type(err, "stream_options.include_usage", "a boolean");
  req->include_usage = cJSON_IsTrue(member(options, "include_usage"));
  return true;
}

/* /v1/completions: prompt, max_tokens (default 16), logprobs (an integer,
 * the alternatives per token). */
static bool parse_completion(const llmc_api_ctx_t *ctx, llmc_api_request_t *req,
                             llmc_api_reply_t *err) {
  const cJSON *json = req->json;
  int64_t logprobs = -1, best_of = 1;
  if (!refuse_field(json, "suffix", err) || !refuse_field(json, "echo", err) ||
      !refuse_field(json, "logit_bias", err) ||
      !read_int(json, "best_of", 1, LLMC_API_MAX_N, &best_of, err) ||
      !read_stream(json, req, err) || !read_sampling(json, req, err) ||
      !read_int(json, "logprobs", 0, LLMC_MAX_TOP_LOGPROBS, &logprobs, err))
    return false;
  if (best_of != 1 && best_of != req->n) {
    llmc_api_error_reply(err, 400, NULL, "best_of", "'best_of' other than n is not supported.");
    return false;
  }
  req->params.logprobs = logprobs >= 0;
  req->params.top_logprobs = logprobs > 0 ? (int32_t)logprobs : 0;
  return completion_prompt(ctx, member(json, "prompt"), "prompt", req, err) &&
         read_max_tokens(ctx, json, "max_tokens", 16, "prompt", req, err);
}

/* /v1/chat/completions: messages, max_completion_tokens or max_tokens
 * (default: the rest of the context), logprobs (a boolean) and
 * top_logprobs. */
static bool parse_chat(const llmc_api_ctx_t *ctx, llmc_api_request_t *req, llmc_api_reply_t *err) {
  const cJSON *json = req->json;
  int64_t top_logprobs = 0;
  const cJSON *format = member(json, "response_format"), *type = member(format, "type");
  if (format && !(cJSON_IsString(type) && strcmp(type->valuestring, "text") == 0)) {
    llmc_api_error_reply(err, 400, NULL, "response_format",
                         "Only the 'text' response format is supported.");
    return false;
  }
  const cJSON *choice = member(json, "tool_choice");
  if (choice && !(cJSON_IsString(choice) && strcmp(choice->valuestring, "none") == 0)) {
    llmc_api_error_reply(err, 400, NULL, "tool_choice",
                         "Tool calls are not supported by this server.");
    return false;
  }
  if (!refuse_field(json, "tools", err) || !refuse_field(json, "functions", err) ||
      !refuse_field(json, "logit_bias", err) || !read_stream(json, req, err) ||
      !read_sampling(json, req, err) || !read_bool(json, "logprobs", &req->params.logprobs, err) ||
      !read_int(json, "top_logprobs", 0, LLMC_MAX_TOP_LOGPROBS, &top_logprobs, err))
    return false;
  if (top_logprobs > 0 && !req->params.logprobs) {
    llmc_api_error_reply(err, 400, NULL, "top_logprobs",
                         "'top_logprobs' needs 'logprobs' set to true.");
    return false;
  }
  req->params.top_logprobs = (int32_t)top_logprobs;
  const char *max_name =
      member(json, "max_completion_tokens") ? "max_completion_tokens" : "max_tokens";
  return chat_prompt(ctx, json, &req->prompt, &req->n_prompt, err) &&
         read_max_tokens(ctx, json, max_name, 0, "messages", req, err);
}

/* shortfin's /generate: text or input_ids, sampling_params (with
 * max_completion_tokens, default 50 as shortfin's), stream, rid,
 * return_input_ids. */
static bool parse_generate(const llmc_api_ctx_t *ctx, llmc_api_request_t *req,
                           llmc_api_reply_t *err) {
  const cJSON *json = req->json;
  const cJSON *sampling = member(json, "sampling_params"), *rid = member(json, "rid");
  if (sampling && !cJSON_IsObject(sampling)) return bad_type(err, "sampling_params", "an object");
  if (rid && !cJSON_IsString(rid)) return bad_type(err, "rid", "a string");
  req->rid = rid ? rid->valuestring : NULL;
  if (!refuse_field(json, "return_logprob", err) || !refuse_field(json, "image_data", err) ||
      !read_bool(json, "stream", &req->stream, err) ||
      !read_bool(json, "return_input_ids", &req->return_ids, err) ||
      !read_sampling(sampling, req, err))
    return false;
  const cJSON *text = member(json, "text"), *ids = member(json, "input_ids");
  if (!text == !ids) {
    llmc_api_error_reply(err, 400, NULL, "text", "Give either 'text' or 'input_ids'.");
    return false;
  }
  const char *name = text ? "text" : "input_ids";
  return completion_prompt(ctx, text ? text : ids, name, req, err) &&
         read_max_tokens(ctx, sampling, "max_completion_tokens", 50, name, req, err);
}

bool llmc_api_request_parse(const llmc_api_ctx_t *ctx, llmc_api_kind_t kind, const char *body,
                            size_t len, llmc_api_request_t *req, llmc_api_reply_t *error) {
  *req = (llmc_api_request_t){.kind = kind, .params = llmc_gen_params_default(), .n = 1};
  req->params.skip_special = true;
  if (!parse_body(body, len, &req->json, error)) return false;
  bool ok = check_model(ctx, req->json, error);
  if (ok && kind == LLMC_API_COMPLETIONS) ok = parse_completion(ctx, req, error);
  if (ok && kind == LLMC_API_CHAT) ok = parse_chat(ctx, req, error);
  if (ok && kind == LLMC_API_GENERATE) ok = parse_generate(ctx, req, error);
  if (!ok) llmc_api_request_deinit(req);
  return ok;
}

void llmc_api_request_deinit(llmc_api_request_t *req) {
  cJSON_Delete(req->json);
  free(req->prompt);
  free(req->prompt_text);
  *req = (llmc_api_request_t){0};
}

/* ---- /tokenize and /detokenize -------------------------------------------- */

void llmc_api_tokenize(const llmc_api_ctx_t *ctx, const char *body, size_t len,
                       llmc_api_reply_t *reply) {
  cJSON *json = NULL, *out = NULL;
  int32_t *ids = NULL, n = 0;
  if (!parse_body(body, len, &json, reply) || !check_model(ctx, json, reply)) goto done;
  const cJSON *prompt = member(json, "prompt");
  bool chat = member(json, "messages") != NULL;
  /* vLLM's defaults: BOS added to a prompt, not to a chat (the template writes it). */
  bool add_special = !chat;
  if (!read_bool(json, "add_special_tokens", &add_special, reply)) goto done;
  if (chat) {
    if (!chat_prompt(ctx, json, &ids, &n, reply)) goto done;
  } else if (cJSON_IsString(prompt)) {
    size_t count = 0;
    llmc_status_t st =
        llmc_tokenizer_encode(ctx->tok, prompt->valuestring, strlen(prompt->valuestring),
                              add_special ? LLMC_TOKENIZE_ADD_SPECIAL : 0, &ids, &count);
    if (st) {
      llmc_api_error_reply(reply, 500, NULL, NULL, "Tokenizing failed: %s",
                           llmc_status_message(st));
      llmc_status_free(st);
      goto done;
    }
    n = (int32_t)count;
  } else {
    if (prompt)
      bad_type(reply, "prompt", "a string");
    else
      llmc_api_error_reply(reply, 400, NULL, "prompt", "Give 'prompt' (a string) or 'messages'.");
    goto done;
  }
  out = cJSON_CreateObject();
  cJSON *tokens = cJSON_CreateIntArray(n ? ids : (const int[]){0}, n);
  if (!cJSON_AddNumberToObject(out, "count", n) ||
      !cJSON_AddNumberToObject(out, "max_model_len", ctx->max_context) ||
      !cJSON_AddItemToObject(out, "tokens", tokens)) {
    cJSON_Delete(tokens); /* not in out yet */
    llmc_api_error_reply(reply, 500, NULL, NULL, "Out of memory.");
    goto done;
  }
  if (!cJSON_AddNullToObject(out, "token_strs")) {
    llmc_api_error_reply(reply, 500, NULL, NULL, "Out of memory.");
    goto done;
  }
  llmc_api_json_reply(reply, out);
done:
  free(ids);
  cJSON_Delete(out);
  cJSON_Delete(json);
}

/* Appends the text of ids (LLMC_DETOKENIZE_* flags) to out as valid UTF-8:
 * bytes that do not form a character become U+FFFD, as the streaming
 * detokenizer writes them (tokenizer_decode gives raw bytes, which JSON
 * cannot carry). Fails on an id outside the vocabulary or without memory. */
static llmc_status_t decode_text(const llmc_tokenizer_t *tok, const int32_t *ids, size_t n,
                                 uint32_t flags, llmc_buf_t *out) {
  /* The streaming decoder is what turns stray bytes into U+FFFD. */
  llmc_tokenizer_stream_t stream;
  llmc_tokenizer_stream_init(&stream, tok, flags);
  llmc_status_t st = LLMC_OK;
  const char *text;
  size_t len;
  for (size_t i = 0; !st && i <= n; i++) {
    st = i < n ? llmc_tokenizer_stream_push(&stream, ids[i], &text, &len)
               : llmc_tokenizer_stream_finish(&stream, &text, &len);
    if (!st && !llmc_buf_append(out, text, len)) st = LLMC_ERROR(OUT_OF_MEMORY, "detokenizing");
  }
  llmc_tokenizer_stream_deinit(&stream);
  return st;
}

void llmc_api_detokenize(const llmc_api_ctx_t *ctx, const char *body, size_t len,
                         llmc_api_reply_t *reply) {
  cJSON *json = NULL, *out = NULL;
  int32_t *ids = NULL, n = 0;
  llmc_buf_t text = {0};
  if (!parse_body(body, len, &json, reply) || !check_model(ctx, json, reply)) goto done;
  const cJSON *tokens = member(json, "tokens");
  if (!cJSON_IsArray(tokens)) {
    if (tokens)
      bad_type(reply, "tokens", "an array of token ids");
    else
      llmc_api_error_reply(reply, 400, NULL, "tokens", "'tokens' is required.");
    goto done;
  }
  if (tokens->child &&
      !read_ids(tokens, "tokens", llmc_tokenizer_vocab_size(ctx->tok), &ids, &n, reply))
    goto done;
  llmc_status_t st = decode_text(ctx->tok, ids, (size_t)n, 0, &text);
  if (st) {
    llmc_api_error_reply(reply, 500, NULL, NULL, "Detokenizing failed: %s",
                         llmc_status_message(st));
    llmc_status_free(st);
    goto done;
  }
  out = cJSON_CreateObject();
  if (!out || !cJSON_AddStringToObject(out, "prompt", text.data ? text.data : "")) {
    llmc_api_error_reply(reply, 500, NULL, NULL, "Out of memory.");
    goto done;
  }
  llmc_api_json_reply(reply, out);
done:
  llmc_buf_deinit(&text);
  free(ids);
  cJSON_Delete(out);
  cJSON_Delete(json);
}
