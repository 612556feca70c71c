/* cmd_serve.c — `llmc serve`: a compiled model behind an OpenAI-compatible
 * HTTP server (runtime/server/, docs/serving.md).
 *
 * Loads the model and the tokenizer its metadata names, starts a scheduler
 * (continuous batching over the paged KV cache) and serves until SIGINT or
 * SIGTERM; the requests in flight then finish before the command exits 0. */
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"
#include "scheduler.h"
#include "server/server.h"
#include "support/file.h"
#include "support/size.h"
#include "tokenizer.h"

static const char usage[] =
    "usage: llmc serve MODEL.so [--host H] [--port P] [options]\n"
    "\n"
    "Serves MODEL.so over HTTP: OpenAI's /v1/completions, /v1/chat/completions\n"
    "(both with \"stream\": true) and /v1/models; /health; /metrics (Prometheus);\n"
    "vLLM's /tokenize and /detokenize; shortfin's /generate. Requests are batched\n"
    "continuously over a paged KV cache. Runs until SIGINT or SIGTERM, then stops\n"
    "accepting connections, finishes the requests in flight and exits 0.\n"
    "docs/serving.md describes the endpoints, the metrics and the errors.\n"
    "\n"
    "  --host H                  address to listen on: IPv4, IPv6 or a name\n"
    "                            (default 127.0.0.1; 0.0.0.0 or :: for every interface)\n"
    "  --port P                  TCP port (default 8000; 0: any free port, which the\n"
    "                            \"listening on\" line on stderr names)\n"
    "  --api-key KEY             require \"Authorization: Bearer KEY\" on every route\n"
    "                            but /health and /metrics (default: $LLMC_API_KEY if set)\n"
    "  --served-model-name NAME  the model's name in the API (default: MODEL's file\n"
    "                            name without .so)\n"
    "  --chat-template FILE      Jinja chat template for chat requests, replacing the\n"
    "                            model's (without either, chat requests get a 400)\n"
    "  --max-body-bytes N        largest request body; larger ones get a 413\n"
    "                            (default 1048576)\n"
    "  --max-tokens-limit N      largest max_tokens a request may ask for\n"
    "                            (default: the model's context)\n"
    "  --idle-timeout S          close a connection that sends and receives nothing\n"
    "                            for S seconds: kept alive between requests, or a\n"
    "                            stalled upload (default 60; 0: never). A request\n"
    "                            waiting for its answer is not idle\n"
    "  -t, --threads N           thread pool size; default: one per online CPU\n"
    "  --kv-blocks N             KV cache blocks (default: 1 GiB worth, at least one\n"
    "                            full context, at most --max-running of them)\n"
    "  --kv-memory SIZE          KV cache blocks that fit in SIZE (\"2GiB\", \"512M\"),\n"
    "                            instead of --kv-blocks\n"
    "  --kv-type T               KV cache element type: f16 (default), f32 or q8_0\n"
    "  --kv-block-size N         tokens per KV block (default 16)\n"
    "  --max-batch-tokens N      most tokens in one engine step (default 512)\n"
    "  --max-running N           most sequences in one step (default 64)\n"
    "  --no-prefix-cache         never share KV blocks between requests\n"
    "  -v, --verbose             one line per request on stderr\n"
    "  -h, --help                this text\n";

typedef struct {
  const char *model_path, *template_file;
  uint64_t kv_memory; /* --kv-memory in bytes; 0: not given */
  llmc_server_options_t server;
  llmc_scheduler_options_t scheduler;
} serve_args_t;

/* --kv-memory: as many KV blocks as fit in a->kv_memory bytes, for the
 * model's layers and the chosen block size and element type. */
static llmc_status_t kv_blocks_for_memory(serve_args_t *a, const llmc_model_t *model) {
  llmc_engine_options_t *e = &a->scheduler.engine;
  int32_t block_size = e->kv_block_size > 0 ? e->kv_block_size : LLMC_KV_DEFAULT_BLOCK_SIZE;
  llmc_kv_dtype_t dtype = e->kv_dtype ? e->kv_dtype : LLMC_SCHEDULER_DEFAULT_KV_DTYPE;
  uint64_t block_bytes =
      llmc_kv_cache_block_bytes(model->abi->n_layers, model->abi->kv_dim, block_size, dtype);
  uint64_t blocks = block_bytes ? a->kv_memory / block_bytes : 0;
  if (blocks == 0)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "--kv-memory: %llu bytes do not hold one KV block (%llu bytes)",
                      (unsigned long long)a->kv_memory, (unsigned long long)block_bytes);
  e->kv_blocks = blocks > INT32_MAX ? INT32_MAX : (int32_t)blocks;
  return LLMC_OK;
}

/* Loads everything, serves, and tears everything down again. */
static llmc_status_t serve(serve_args_t *a) {
  llmc_model_t *model = NULL;
  llmc_tokenizer_t *tok = NULL;
  llmc_scheduler_t *scheduler = NULL;
  char *template_text = NULL;
  size_t template_len = 0;
  llmc_status_t st = LLMC_OK;
  if (a->template_file) st = llmc_file_read_all(a->template_file, &template_text, &template_len);
  a->server.chat_template = template_text;
  if (!st) st = llmc_model_load(a->model_path, NULL, &model);
  if (!st && a->kv_memory) st = kv_blocks_for_memory(a, model);
  if (!st) st = llmc_tokenizer_load_for_model(model, &tok);
  if (!st) st = llmc_scheduler_create(model, tok, &a->scheduler, &scheduler);
  if (!st) st = llmc_server_run(scheduler, model, tok, &a->server);
  llmc_scheduler_destroy(scheduler);
  llmc_tokenizer_destroy(tok);
  llmc_model_destroy(model);
  free(template_text);
  return st;
}

int llmc_cmd_serve(int argc, char **argv) {
  enum {
    O_HOST = 256,
    O_PORT,
    O_API_KEY,
    O_NAME,
    O_TEMPLATE,
    O_MAX_BODY,
    O_MAX_TOKENS,
    O_IDLE_TIMEOUT,
    O_KV_BLOCKS,
    O_KV_MEMORY,
    O_KV_TYPE,
    O_KV_BLOCK_SIZE,
    O_MAX_BATCH_TOKENS,
    O_MAX_RUNNING,
    O_NO_PREFIX_CACHE
  };
  static const struct option long_options[] = {
      {"host", required_argument, NULL, O_HOST},
      {"port", required_argument, NULL, O_PORT},
      {"api-key", required_argument, NULL, O_API_KEY},
      {"served-model-name", required_argument, NULL, O_NAME},
      {"chat-template", required_argument, NULL, O_TEMPLATE},
      {"max-body-bytes", required_argument, NULL, O_MAX_BODY},
      {"max-tokens-limit", required_argument, NULL, O_MAX_TOKENS},
      {"idle-timeout", required_argument, NULL, O_IDLE_TIMEOUT},
      {"threads", required_argument, NULL, 't'},
      {"kv-blocks", required_argument, NULL, O_KV_BLOCKS},
      {"kv-memory", required_argument, NULL, O_KV_MEMORY},
      {"kv-type", required_argument, NULL, O_KV_TYPE},
      {"kv-block-size", required_argument, NULL, O_KV_BLOCK_SIZE},
      {"max-batch-tokens", required_argument, NULL, O_MAX_BATCH_TOKENS},
      {"max-running", required_argument, NULL, O_MAX_RUNNING},
      {"no-prefix-cache", no_argument, NULL, O_NO_PREFIX_CACHE},
      {"verbose", no_argument, NULL, 'v'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  serve_args_t a = {0};
  a.server.api_key = getenv("LLMC_API_KEY");
  llmc_engine_options_t *engine = &a.scheduler.engine;
  llmc_status_t st = LLMC_OK;
  int32_t port = LLMC_SERVER_DEFAULT_PORT, max_body = 0, idle_timeout = LLMC_SERVER_DEFAULT_IDLE_TIMEOUT_S;
  optind = 0;
  for (int opt; !st && (opt = getopt_long(argc, argv, ":t:vh", long_options, NULL)) != -1;) {
    switch (opt) {
    case O_HOST: a.server.host = optarg; break;
    case O_PORT: st = llmc_cli_parse_int("--port", optarg, 0, 65535, &port); break;
    case O_API_KEY: a.server.api_key = optarg; break;
    case O_NAME:
      if (!optarg[0])
        return llmc_cli_usage_error("serve", usage, "--served-model-name needs a name");
      a.server.model_name = optarg;
      break;
    case O_TEMPLATE: a.template_file = optarg; break;
    case O_MAX_BODY:
      st = llmc_cli_parse_int("--max-body-bytes", optarg, 1, INT32_MAX, &max_body);
      break;
    case O_MAX_TOKENS:
      st = llmc_cli_parse_int("--max-tokens-limit", optarg, 1, INT32_MAX,
                              &a.server.max_tokens_limit);
      break;
    case O_IDLE_TIMEOUT:
      st = llmc_cli_parse_int("--idle-timeout", optarg, 0, 86400, &idle_timeout);
      break;
    case 't': st = llmc_cli_parse_int("--threads", optarg, 1, 1024, &engine->n_threads); break;
    case O_KV_BLOCKS:
      st = llmc_cli_parse_int("--kv-blocks", optarg, 1, INT32_MAX, &engine->kv_blocks);
      break;
    case O_KV_MEMORY: st = llmc_parse_size(optarg, &a.kv_memory); break;
    case O_KV_TYPE: st = llmc_kv_dtype_parse(optarg, &engine->kv_dtype); break;
    case O_KV_BLOCK_SIZE:
      st = llmc_cli_parse_int("--kv-block-size", optarg, 1, 65536, &engine->kv_block_size);
      break;
    case O_MAX_BATCH_TOKENS:
      st = llmc_cli_parse_int("--max-batch-tokens", optarg, 1, INT32_MAX, &engine->token_capacity);
      break;
    case O_MAX_RUNNING:
      st = llmc_cli_parse_int("--max-running", optarg, 1, 65536, &a.scheduler.max_running);
      break;
    case O_NO_PREFIX_CACHE: a.scheduler.no_prefix_cache = true; break;
    case 'v': a.server.verbose = true; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("serve", usage, opt, argv);
    }
  }
  if (st) {
    llmc_status_report(st, stderr);
    return 2;
  }
  if (optind != argc - 1)
    return llmc_cli_usage_error("serve", usage, "expected one MODEL.so, got %d", argc - optind);
  if (a.kv_memory && engine->kv_blocks)
    return llmc_cli_usage_error("serve", usage, "give --kv-blocks or --kv-memory, not both");
  a.model_path = argv[optind];
  a.server.port = port == 0 ? -1 : port; /* the server's 0 is "the default", the command's "any" */
  a.server.max_body_bytes = (size_t)max_body;
  a.server.idle_timeout_s = idle_timeout == 0 ? -1 : idle_timeout; /* the command's 0 is "never" */
  st = serve(&a);
  return st ? llmc_status_report(st, stderr) : 0;
}
