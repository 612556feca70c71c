/* cmd_run.c — `llmc run`: one prompt in, the completion streamed out.
 *
 * Standard output carries the completion and nothing else (DESIGN.md
 * section 4); the timing report goes to standard error at the end. The
 * prompt is tokenized with the tokenizer the model's metadata names (BOS
 * added as the tokenizer says; an empty prompt is BOS alone), or rendered
 * through the model's chat template first with --chat. Text is printed as
 * soon as it forms whole UTF-8 characters and cannot be the start of a stop
 * string. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "chat_context.h"
#include "chat_template.h"
#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"
#include "sampler.h"
#include "stop_text.h"
#include "support/file.h"
#include "tokenizer.h"

static const char usage[] =
    "usage: llmc run MODEL.so [-p PROMPT | -f FILE] [-n N] [options]\n"
    "\n"
    "Generates a completion of PROMPT and prints it on stdout as it is produced;\n"
    "prompt and generation speed go to stderr at the end.\n"
    "\n"
    "  -p, --prompt TEXT        the prompt (default: empty, i.e. BOS alone)\n"
    "  -f, --file FILE          read the prompt from FILE\n"
    "  -n, --n-predict N        tokens to generate at most (default 128)\n"
    "  --chat                   wrap the prompt as a user message in the model's chat\n"
    "                           template (with --system TEXT as a system message)\n"
    "  --chat-template FILE     use this Jinja template instead of the model's\n"
    "  --temp T                 temperature; 0 = greedy (default 0.8)\n"
    "  --top-k K, --top-p P, --min-p P    sampling filters (default off)\n"
    "  --repeat-penalty R, --presence-penalty P, --frequency-penalty F\n"
    "  --seed S                 random seed (default 0)\n"
    "  --stop TEXT              stop before TEXT (up to 16 times)\n"
    "  --ignore-eos             keep generating past the end-of-sequence token\n"
    "  --kv-type T              KV cache element type: f32 (default), f16 (as llmc serve\n"
    "                           uses) or q8_0\n"
    "  -t, --threads N          thread pool size; default: one per online CPU\n"
    "  -h, --help               this text\n";

typedef struct {
  const char *model_path, *prompt, *prompt_file, *system, *template_file;
  int32_t n_predict, n_threads;
  llmc_kv_dtype_t kv_dtype;
  bool chat, ignore_eos;
  const char *stops[LLMC_MAX_STOP_STRINGS];
  int n_stops;
  llmc_sampling_params_t sampling;
} run_args_t;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- the prompt ---- */

/* The chat template: --chat-template FILE, else the model's. */
static llmc_status_t load_template(const run_args_t *a, const llmc_model_t *model, char **out) {
  *out = NULL;
  if (a->template_file) {
    size_t len;
    return llmc_file_read_all(a->template_file, out, &len);
  }
  const char *t = llmc_chat_template_of_model(model);
  if (!t) return LLMC_ERROR(NOT_FOUND, "%s has no chat template; give one with --chat-template FILE", a->model_path);
  *out = strdup(t);
  return *out ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "chat template");
}

/* The prompt's tokens: the rendered chat or the plain text. */
static llmc_status_t prompt_tokens(const run_args_t *a, const llmc_model_t *model, const llmc_tokenizer_t *tok,
                                   const char *text, int32_t **ids, size_t *n) {
  if (!a->chat) {
    if (!text[0]) { /* empty prompt: BOS alone */
      *ids = malloc(sizeof **ids);
      if (!*ids) return LLMC_ERROR(OUT_OF_MEMORY, "prompt");
      (*ids)[0] = llmc_tokenizer_bos_id(tok);
      *n = 1;
      return (*ids)[0] >= 0 ? LLMC_OK : LLMC_ERROR(INVALID_ARGUMENT, "empty prompt, and the tokenizer has no BOS");
    }
    return llmc_tokenizer_encode(tok, text, strlen(text), LLMC_TOKENIZE_ADD_SPECIAL, ids, n);
  }
  char *tpl = NULL, *rendered = NULL;
  size_t rendered_len = 0;
  LLMC_PROPAGATE(load_template(a, model, &tpl));
  cJSON *ctx = cJSON_CreateObject(), *messages = cJSON_AddArrayToObject(ctx, "messages");
  if (a->system) {
    cJSON *m = cJSON_CreateObject();
    cJSON_AddStringToObject(m, "role", "system");
    cJSON_AddStringToObject(m, "content", a->system);
    cJSON_AddItemToArray(messages, m);
  }
  cJSON *m = cJSON_CreateObject();
  cJSON_AddStringToObject(m, "role", "user");
  cJSON_AddStringToObject(m, "content", text);
  cJSON_AddItemToArray(messages, m);
  cJSON_AddBoolToObject(ctx, "add_generation_prompt", 1);
  llmc_status_t st = llmc_chat_context_add_special_tokens(ctx, tok);
  if (!st) st = llmc_chat_template_render(tpl, ctx, &rendered, &rendered_len, NULL);
  cJSON_Delete(ctx);
  free(tpl);
  if (st) return llmc_status_annotate(st, "chat template");
  /* The template writes BOS itself, as Hugging Face's apply_chat_template
   * output is tokenized without adding special tokens. */
  st = llmc_tokenizer_encode(tok, rendered, rendered_len, LLMC_TOKENIZE_PARSE_SPECIAL, ids, n);
  free(rendered);
  return st;
}

/* ---- generation ---- */

static llmc_status_t generate(const run_args_t *a, const llmc_model_t *model, const llmc_tokenizer_t *tok,
                              const int32_t *prompt, size_t n_prompt) {
  const llmc_abi_record_t *abi = model->abi;
  if ((int64_t)n_prompt + a->n_predict > abi->max_context)
    return LLMC_ERROR(INVALID_ARGUMENT, "%zu prompt tokens plus -n %d exceed the model's context of %d", n_prompt,
                      a->n_predict, abi->max_context);
  /* KV blocks for this sequence only: the model's whole context could be
   * tens of GiB for long-context models. */
  int64_t positions = (int64_t)n_prompt + a->n_predict;
  llmc_engine_options_t options = {
      .n_threads = a->n_threads,
      .kv_dtype = a->kv_dtype,
      .kv_blocks = (int32_t)((positions + LLMC_KV_DEFAULT_BLOCK_SIZE - 1) / LLMC_KV_DEFAULT_BLOCK_SIZE),
  };
  llmc_engine_t *engine = NULL;
  LLMC_PROPAGATE(llmc_engine_create(model, &options, &engine));
  llmc_sampler_t *sampler = NULL;
  float *logits = malloc((size_t)abi->vocab_size * sizeof *logits);
  llmc_status_t st = logits ? llmc_sampler_create(&a->sampling, abi->vocab_size, &sampler)
                            : LLMC_ERROR(OUT_OF_MEMORY, "logits");
  for (size_t i = 0; !st && i < n_prompt; i++) llmc_sampler_accept(sampler, prompt[i], 0);
  llmc_kv_seq_t seq = {0};
  llmc_tokenizer_stream_t stream;
  llmc_tokenizer_stream_init(&stream, tok, LLMC_DETOKENIZE_SKIP_SPECIAL);
  llmc_stop_text_t held;
  llmc_stop_text_init(&held, a->stops, a->n_stops);
  double t0 = now_s();
  if (!st) st = llmc_engine_feed(engine, &seq, prompt, (int32_t)n_prompt, LLMC_ENGINE_LOGITS_LAST, logits);
  double t1 = now_s();
  int32_t generated = 0, eos = llmc_tokenizer_eos_id(tok);
  bool stopped = false, final = false;
  while (!st && !stopped && !final) {
    const char *text;
    size_t len;
    int32_t token = generated < a->n_predict ? llmc_sampler_sample(sampler, logits, NULL) : -1;
    final = token < 0 || (token == eos && !a->ignore_eos);
    if (final) { /* no more tokens: flush what the stream still holds */
      st = llmc_tokenizer_stream_finish(&stream, &text, &len);
    } else {
      generated++;
      llmc_sampler_accept(sampler, token, 1);
      st = llmc_tokenizer_stream_push(&stream, token, &text, &len);
    }
    const char *out;
    size_t out_len;
    if (!st) st = llmc_stop_text_push(&held, text, len, final, &out, &out_len, &stopped);
    if (!st) {
      fwrite(out, 1, out_len, stdout);
      fflush(stdout);
    }
    if (!st && !stopped && !final && generated < a->n_predict)
      st = llmc_engine_feed(engine, &seq, &token, 1, LLMC_ENGINE_LOGITS_LAST, logits);
  }
  double t2 = now_s();
  if (!st)
    fprintf(stderr, "\nllmc: prompt %zu tokens in %.3f s (%.1f tok/s), generated %d tokens in %.3f s (%.1f tok/s)\n",
            n_prompt, t1 - t0, (double)n_prompt / (t1 - t0), generated, t2 - t1,
            generated > 0 ? generated / (t2 - t1) : 0.0);
  llmc_stop_text_deinit(&held);
  llmc_tokenizer_stream_deinit(&stream);
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  llmc_sampler_destroy(sampler);
  free(logits);
  llmc_engine_destroy(engine);
  return st;
}

static llmc_status_t run(const run_args_t *a) {
  llmc_model_t *model = NULL;
  LLMC_PROPAGATE(llmc_model_load(a->model_path, NULL, &model));
  llmc_tokenizer_t *tok = NULL;
  char *file_text = NULL;
  int32_t *ids = NULL;
  size_t n = 0, len = 0;
  llmc_status_t st = llmc_tokenizer_load_for_model(model, &tok);
  if (!st && a->prompt_file) st = llmc_file_read_all(a->prompt_file, &file_text, &len);
  if (!st) st = prompt_tokens(a, model, tok, file_text ? file_text : a->prompt ? a->prompt : "", &ids, &n);
  if (!st) st = generate(a, model, tok, ids, n);
  free(ids);
  free(file_text);
  llmc_tokenizer_destroy(tok);
  llmc_model_destroy(model);
  return st;
}

/* Parses a float option into *out. */
static llmc_status_t parse_float(const char *flag, const char *text, float *out) {
  char *end = NULL;
  float v = strtof(text, &end);
  if (end == text || *end) return LLMC_ERROR(INVALID_ARGUMENT, "%s %s: expected a number", flag, text);
  *out = v;
  return LLMC_OK;
}

int llmc_cmd_run(int argc, char **argv) {
  enum { O_CHAT = 256, O_SYSTEM, O_TEMPLATE, O_TEMP, O_TOP_K, O_TOP_P, O_MIN_P, O_REPEAT, O_PRESENCE, O_FREQUENCY,
         O_SEED, O_STOP, O_IGNORE_EOS, O_KV_TYPE };
  static const struct option long_options[] = {
      {"prompt", required_argument, NULL, 'p'},        {"file", required_argument, NULL, 'f'},
      {"n-predict", required_argument, NULL, 'n'},     {"threads", required_argument, NULL, 't'},
      {"chat", no_argument, NULL, O_CHAT},             {"system", required_argument, NULL, O_SYSTEM},
      {"chat-template", required_argument, NULL, O_TEMPLATE}, {"temp", required_argument, NULL, O_TEMP},
      {"top-k", required_argument, NULL, O_TOP_K},     {"top-p", required_argument, NULL, O_TOP_P},
      {"min-p", required_argument, NULL, O_MIN_P},     {"repeat-penalty", required_argument, NULL, O_REPEAT},
      {"presence-penalty", required_argument, NULL, O_PRESENCE},
      {"frequency-penalty", required_argument, NULL, O_FREQUENCY},
      {"seed", required_argument, NULL, O_SEED},       {"stop", required_argument, NULL, O_STOP},
      {"ignore-eos", no_argument, NULL, O_IGNORE_EOS}, {"kv-type", required_argument, NULL, O_KV_TYPE},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  run_args_t a = {.n_predict = 128, .sampling = llmc_sampling_params_default()};
  a.sampling.temperature = 0.8f;
  llmc_status_t st = LLMC_OK;
  int32_t seed = 0;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":p:f:n:t:h", long_options, NULL)) != -1;) {
    switch (opt) {
    case 'p': a.prompt = optarg; break;
    case 'f': a.prompt_file = optarg; break;
    case 'n': st = llmc_cli_parse_int("-n", optarg, 0, INT32_MAX, &a.n_predict); break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &a.n_threads); break;
    case O_CHAT: a.chat = true; break;
    case O_SYSTEM: a.system = optarg; break;
    case O_TEMPLATE: a.template_file = optarg; break;
    case O_TEMP: st = parse_float("--temp", optarg, &a.sampling.temperature); break;
    case O_TOP_K: st = llmc_cli_parse_int("--top-k", optarg, 0, INT32_MAX, &a.sampling.top_k); break;
    case O_TOP_P: st = parse_float("--top-p", optarg, &a.sampling.top_p); break;
    case O_MIN_P: st = parse_float("--min-p", optarg, &a.sampling.min_p); break;
    case O_REPEAT: st = parse_float("--repeat-penalty", optarg, &a.sampling.repetition_penalty); break;
    case O_PRESENCE: st = parse_float("--presence-penalty", optarg, &a.sampling.presence_penalty); break;
    case O_FREQUENCY: st = parse_float("--frequency-penalty", optarg, &a.sampling.frequency_penalty); break;
    case O_SEED:
      st = llmc_cli_parse_int("--seed", optarg, 0, INT32_MAX, &seed);
      a.sampling.seed = (uint64_t)seed;
      break;
    case O_STOP:
      if (a.n_stops == LLMC_MAX_STOP_STRINGS) return llmc_cli_usage_error("run", usage, "at most %d --stop strings", LLMC_MAX_STOP_STRINGS);
      if (!optarg[0]) return llmc_cli_usage_error("run", usage, "--stop needs a non-empty string");
      a.stops[a.n_stops++] = optarg;
      break;
    case O_IGNORE_EOS: a.ignore_eos = true; break;
    case O_KV_TYPE: st = llmc_kv_dtype_parse(optarg, &a.kv_dtype); break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("run", usage, opt, argv);
    }
  }
  if (!st) st = llmc_sampling_params_check(&a.sampling);
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  if (optind != argc - 1) return llmc_cli_usage_error("run", usage, "expected one MODEL.so, got %d", argc - optind);
  if (a.prompt && a.prompt_file) return llmc_cli_usage_error("run", usage, "give -p or -f, not both");
  a.model_path = argv[optind];
  st = run(&a);
  return st ? llmc_status_report(st, stderr) : 0;
}
