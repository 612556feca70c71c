/* server.h — `llmc serve`: an OpenAI-compatible HTTP server over a
 * scheduler (DESIGN.md section 2, docs/serving.md).
 *
 * The server speaks HTTP/1.1 through libmicrohttpd, one thread per
 * connection: a handler may block while it waits for the scheduler, which
 * is what every generation request does. Routes:
 *   POST /v1/completions, /v1/chat/completions   OpenAI (stream: true = SSE)
 *   GET  /v1/models, /v1/models/NAME
 *   POST /tokenize, /detokenize                   vLLM's
 *   POST /generate                                shortfin's
 *   GET  /health, /metrics                        liveness, Prometheus text
 * Errors are OpenAI-shaped: {"error": {"message", "type", "param", "code"}}.
 *
 * The model, tokenizer and scheduler are borrowed; the server owns only its
 * connections and the parsed chat template. */
#ifndef LLMC_SERVER_SERVER_H
#define LLMC_SERVER_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "llmc/runtime.h"
#include "scheduler.h"
#include "support/status.h"
#include "tokenizer.h"

#define LLMC_SERVER_DEFAULT_HOST "127.0.0.1"
#define LLMC_SERVER_DEFAULT_PORT 8000
#define LLMC_SERVER_DEFAULT_MAX_BODY_BYTES ((size_t)1 << 20)
#define LLMC_SERVER_DEFAULT_IDLE_TIMEOUT_S 60

/* Zero / NULL in any field means its default. */
typedef struct llmc_server_options {
  const char *host; /* address to bind: IPv4, IPv6 or a host name; default 127.0.0.1 */
  int32_t port;     /* TCP port; default 8000; -1: any free port (the listening line says which) */
  const char *api_key;    /* when set, requests need "Authorization: Bearer KEY" */
  const char *model_name; /* the name clients use; default: the .so's file name without .so */
  size_t max_body_bytes;  /* largest request body; default 1 MiB */
  int32_t
      max_tokens_limit; /* largest max_tokens a request may ask for; default the model's context */
  const char *chat_template; /* template text replacing the model's own; NULL: the model's */
  int32_t idle_timeout_s;    /* close a connection that neither sends nor receives for this
                                long (a kept-alive one between requests, a stalled upload); a
                                request waiting for its answer is never idle; default 60,
                                -1: never */
  bool verbose;              /* one line per request on stderr */
} llmc_server_options_t;

/* Serves until SIGINT or SIGTERM, then stops accepting connections, lets
 * every request in flight finish (llmc_scheduler_shutdown(s, true)),
 * closes the connections and returns OK. A second signal while draining
 * ends the process at once (the handlers in place before the call are
 * back). Prints "llmc serve: listening on http://HOST:PORT (model NAME)"
 * on stderr once it accepts connections. Fails, before serving, when the
 * address cannot be bound or the chat template given does not parse.
 * Only one server may run in a process at a time (signals are
 * process-wide); SIGPIPE is ignored from the call on. */
llmc_status_t llmc_server_run(llmc_scheduler_t *scheduler, const llmc_model_t *model,
                              const llmc_tokenizer_t *tok, const llmc_server_options_t *options);

#endif /* LLMC_SERVER_SERVER_H */
