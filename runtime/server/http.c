/* http.c — llmc serve's HTTP side, on libmicrohttpd: the daemon, routing,
 * authentication, request bodies, streaming, and the signal-driven drain.
 *
 * One thread per connection (MHD_USE_THREAD_PER_CONNECTION): a generation
 * handler blocks, polling its scheduler requests, until it can answer, and
 * a streaming response's reader blocks until it has the next events. Every
 * wait is cut into POLL_MS slices, after each of which the handler peeks at
 * its socket: a client that went away has its requests cancelled (and so
 * its KV blocks freed at the scheduler's next step) at once rather than
 * when the next write fails.
 *
 * A request's answer is only decided once its whole body has arrived, even
 * when the headers alone settle it (404, 401, a body over the limit): the
 * body is read and dropped, so the client reads a clean answer instead of a
 * connection reset in the middle of its upload. Bodies are kept up to
 * max_body_bytes and no further. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "server/buf.h"
#include "chat_context.h"
#include "server/metrics.h"
#include "server/openai.h"
#include "server/server.h"

#define POLL_MS 50               /* a handler's wait on the scheduler between looks at its client */
#define STREAM_BLOCK_BYTES 16384 /* most bytes libmicrohttpd asks a stream for at once */
#define DRAIN_GRACE_MS 10000     /* once drained: the longest wait for the last answers to go out */

typedef enum {
  ROUTE_COMPLETIONS,
  ROUTE_CHAT,
  ROUTE_GENERATE,
  ROUTE_TOKENIZE,
  ROUTE_DETOKENIZE,
  ROUTE_MODELS,
  ROUTE_MODEL, /* /v1/models/NAME */
  ROUTE_HEALTH,
  ROUTE_METRICS,
  ROUTE_COUNT
} route_t;

/* The routes. /health and /metrics need no API key: load balancers and
 * Prometheus scrapers probe them without one (vLLM checks the key on /v1
 * only; llmc also checks it on /generate, /tokenize and /detokenize, which
 * use the model). */
static const struct {
  const char *path;
  const char *method;
  bool prefix; /* path is a prefix: the rest of the URL is an argument */
  bool open;   /* served without the API key */
} routes[ROUTE_COUNT] = {
    [ROUTE_COMPLETIONS] = {"/v1/completions", "POST", false, false},
    [ROUTE_CHAT] = {"/v1/chat/completions", "POST", false, false},
    [ROUTE_GENERATE] = {"/generate", "POST", false, false},
    [ROUTE_TOKENIZE] = {"/tokenize", "POST", false, false},
    [ROUTE_DETOKENIZE] = {"/detokenize", "POST", false, false},
    [ROUTE_MODELS] = {"/v1/models", "GET", false, false},
    [ROUTE_MODEL] = {"/v1/models/", "GET", true, false},
    [ROUTE_HEALTH] = {"/health", "GET", false, true},
    [ROUTE_METRICS] = {"/metrics", "GET", false, true},
};

/* The server: shared by every connection thread. */
typedef struct server {
  llmc_api_ctx_t api;
  const char *api_key; /* NULL: no authentication */
  size_t max_body_bytes;
  double keepalive_s;    /* a silent stream sends an SSE comment this often; 0: never */
  bool verbose;
  bool debug;            /* $LLMC_DEBUG: libmicrohttpd's messages also once serving */
  atomic_bool listening; /* startup is over: libmicrohttpd's messages only with debug */
  atomic_bool draining;  /* a signal came: answer, but close connections and refuse new work */
  atomic_int active;     /* HTTP requests begun and not yet completed */
} server_t;

/* One HTTP request, from its headers to its completion (MHD's con_cls). */
typedef struct http_request {
  int route;              /* a route_t, or -1 */
  llmc_api_reply_t early; /* status != 0: the answer the headers decided */
  llmc_buf_t body;        /* the body so far */
  bool too_large;         /* the body went over max_body_bytes (and is no longer kept) */
  char *method, *url;     /* owned copies, for the log line */
  int status;             /* the status answered, for the log line */
  double t0;              /* when the headers arrived, CLOCK_MONOTONIC seconds */
} http_request_t;

/* Seconds on the monotonic clock. */
static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* ---- signals -------------------------------------------------------------- */

/* The self-pipe the signal handler writes to and llmc_server_run waits on:
 * the only async-signal-safe way to wake a thread. Process-wide, hence one
 * server per process. */
static int signal_pipe[2] = {-1, -1};

/* SIGINT / SIGTERM: wake llmc_server_run. */
static void on_signal(int sig) {
  int saved = errno;
  char byte = (char)sig;
  ssize_t n = write(signal_pipe[1], &byte, 1);
  (void)n; /* a full pipe already holds a wake-up */
  errno = saved;
}

/* ---- helpers -------------------------------------------------------------- */

/* libmicrohttpd's messages: why it cannot start, always; once serving,
 * only with $LLMC_DEBUG, since it reports every client that goes away
 * mid-answer (the client's business, and the verbose request line says
 * so). One write per message, so that lines from different threads do not
 * mix. */
static void log_mhd(void *cls, const char *fmt, va_list ap) {
  const server_t *srv = cls;
  if (atomic_load(&srv->listening) && !srv->debug) return;
  char message[512];
  vsnprintf(message, sizeof message, fmt, ap);
  size_t n = strlen(message);
  fprintf(stderr, "llmc serve: libmicrohttpd: %s%s", message,
          n && message[n - 1] == '\n' ? "" : "\n");
}

/* Whether the client at the other end of fd has closed its side (or the
 * connection broke): a non-blocking peek reads end-of-file. Bytes waiting
 * (a pipelined request) mean it is still there. */
static bool client_gone(int fd) {
  if (fd < 0) return false;
  struct pollfd p = {.fd = fd, .events = POLLIN | POLLRDHUP};
  if (poll(&p, 1, 0) <= 0) return false;
  if (p.revents & (POLLERR | POLLHUP | POLLNVAL)) return true;
  char byte;
  ssize_t n = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* The connection's socket, or -1. */
static int connection_fd(struct MHD_Connection *c) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
  return info ? info->connect_fd : -1;
}

/* Queues resp (which is released here) with status. While draining, the
 * connection is closed after it: no more requests on it. */
static enum MHD_Result queue(server_t *srv, struct MHD_Connection *c, http_request_t *r,
                             struct MHD_Response *resp, int status) {
  if (atomic_load(&srv->draining))
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  r->status = status;
  enum MHD_Result ret = MHD_queue_response(c, (unsigned)status, resp);
  MHD_destroy_response(resp);
  return ret;
}

/* Sends a complete reply (its body is handed to libmicrohttpd). */
static enum MHD_Result send_reply(server_t *srv, struct MHD_Connection *c, http_request_t *r,
                                  llmc_api_reply_t *reply) {
  struct MHD_Response *resp =
      reply->body
          ? MHD_create_response_from_buffer(reply->body_len, reply->body, MHD_RESPMEM_MUST_FREE)
          : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
  if (!resp) {
    llmc_api_reply_deinit(reply);
    return MHD_NO;
  }
  reply->body = NULL; /* resp frees it */
  if (reply->content_type)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, reply->content_type);
  if (reply->status == MHD_HTTP_METHOD_NOT_ALLOWED && r->route >= 0)
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, routes[r->route].method);
  return queue(srv, c, r, resp, reply->status);
}

/* Whether the request carries "Authorization: Bearer KEY" with the
 * server's key. Compared in time independent of where they differ. */
static bool authorized(const server_t *srv, struct MHD_Connection *c) {
  const char *header =
      MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
  static const char bearer[] = "Bearer ";
  if (!header || strncmp(header, bearer, sizeof bearer - 1) != 0) return false;
  const char *given = header + sizeof bearer - 1;
  size_t given_len = strlen(given), key_len = strlen(srv->api_key);
  unsigned diff = given_len != key_len;
  for (size_t i = 0; i < key_len; i++)
    diff |= (unsigned char)srv->api_key[i] ^ (unsigned char)(i < given_len ? given[i] : 0);
  return diff == 0;
}

/* Routes the request and decides from its headers alone what can be
 * decided: an unknown route (404), a wrong method (405), a missing or
 * wrong API key (401). */
static void route_request(const server_t *srv, struct MHD_Connection *c, const char *url,
                          const char *method, http_request_t *r) {
  r->route = -1;
  int path_match = -1; /* a route with this path, for the 405's Allow header */
  for (int i = 0; i < ROUTE_COUNT && r->route < 0; i++) {
    size_t n = strlen(routes[i].path);
    bool match = routes[i].prefix ? strncmp(url, routes[i].path, n) == 0 && url[n]
                                  : strcmp(url, routes[i].path) == 0;
    if (!match) continue;
    if (path_match < 0) path_match = i;
    /* HEAD is GET without the body, which libmicrohttpd leaves out. */
    bool head = strcmp(routes[i].method, "GET") == 0 && strcmp(method, "HEAD") == 0;
    if (head || strcmp(method, routes[i].method) == 0) r->route = i;
  }
  if (r->route < 0 && path_match >= 0) {
    r->route = path_match;
    llmc_api_error_reply(&r->early, 405, NULL, NULL, "Method %s is not allowed on %s.", method,
                         url);
    return;
  }
  if (r->route < 0) {
    llmc_api_error_reply(&r->early, 404, "not_found", NULL, "Invalid URL (%s %s).", method, url);
    return;
  }
  if (srv->api_key && !routes[r->route].open && !authorized(srv, c))
    llmc_api_error_reply(&r->early, 401, "invalid_api_key", NULL,
                         "Incorrect API key provided. Send it as \"Authorization: Bearer KEY\".");
}

/* ---- streaming ------------------------------------------------------------ */

/* A streaming response's state: the job, and the socket to watch. */
typedef struct stream {
  llmc_api_job_t *job; /* owned */
  int fd;
  double keepalive_s; /* the server's */
  double last_sent;   /* when the reader last returned bytes, now_s() */
} stream_t;

/* An SSE comment, which clients skip: sent when a stream has been silent
 * for keepalive_s (its request waiting in the queue, say), because
 * libmicrohttpd closes a connection that sent nothing for the idle timeout
 * once the reader returns. */
static const char keepalive_comment[] = ": keep-alive\n\n";

/* libmicrohttpd's content reader: the next events, waiting for them as
 * long as it takes (with a keep-alive comment now and then); the end of
 * the stream once the job is done; an error (which closes the connection,
 * and so frees the stream) when the client has gone. */
static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max) {
  stream_t *s = cls;
  for (;;) {
    size_t n = llmc_api_job_read(s->job, buf, max);
    if (!n && s->keepalive_s > 0 && now_s() - s->last_sent >= s->keepalive_s &&
        max >= sizeof keepalive_comment - 1) {
      n = sizeof keepalive_comment - 1;
      memcpy(buf, keepalive_comment, n);
    }
    if (n) {
      s->last_sent = now_s();
      return (ssize_t)n;
    }
    if (llmc_api_job_done(s->job)) return MHD_CONTENT_READER_END_OF_STREAM;
    if (client_gone(s->fd)) return MHD_CONTENT_READER_END_WITH_ERROR;
    llmc_api_job_poll(s->job, POLL_MS);
  }
}

/* libmicrohttpd is done with the response (sent, or the client gone):
 * release the scheduler requests, cancelling any still running. */
static void stream_free(void *cls) {
  stream_t *s = cls;
  llmc_api_job_destroy(s->job);
  free(s);
}

/* Answers a streaming job with server-sent events. */
static enum MHD_Result send_stream(server_t *srv, struct MHD_Connection *c, http_request_t *r,
                                   llmc_api_job_t *job, int fd) {
  stream_t *s = malloc(sizeof *s);
  struct MHD_Response *resp =
      s ? MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, STREAM_BLOCK_BYTES, stream_read, s,
                                            stream_free)
        : NULL;
  if (!resp) {
    free(s);
    llmc_api_job_destroy(job);
    return MHD_NO;
  }
  *s = (stream_t){job, fd, srv->keepalive_s, now_s()};
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream; charset=utf-8");
  MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
  return queue(srv, c, r, resp, MHD_HTTP_OK);
}

/* ---- handlers ------------------------------------------------------------- */

/* A generation: submitted, then streamed or waited for. */
static enum MHD_Result generate(server_t *srv, struct MHD_Connection *c, http_request_t *r,
                                llmc_api_kind_t kind) {
  llmc_api_reply_t reply = {0};
  llmc_api_job_t *job =
      llmc_api_job_start(&srv->api, kind, r->body.data ? r->body.data : "", r->body.len, &reply);
  if (!job) return send_reply(srv, c, r, &reply);
  int fd = connection_fd(c);
  if (llmc_api_job_streaming(job)) return send_stream(srv, c, r, job, fd);
  while (!llmc_api_job_poll(job, POLL_MS))
    if (client_gone(fd)) {
      llmc_api_job_destroy(job);
      r->status = 499; /* nginx's "client closed request", for the log */
      return MHD_NO;
    }
  llmc_api_job_reply(job, &reply);
  llmc_api_job_destroy(job);
  return send_reply(srv, c, r, &reply);
}

/* GET /metrics. */
static void metrics(server_t *srv, llmc_api_reply_t *reply) {
  llmc_scheduler_stats_t stats;
  llmc_scheduler_stats(srv->api.scheduler, &stats);
  char *text = NULL;
  size_t len = 0;
  llmc_status_t st = llmc_server_metrics_format(&stats, &text, &len);
  if (st) {
    llmc_api_error_reply(reply, 500, NULL, NULL, "%s", llmc_status_message(st));
    llmc_status_free(st);
    return;
  }
  *reply = (llmc_api_reply_t){200, "text/plain; version=0.0.4; charset=utf-8", text, len};
}

/* Answers a request whose body has fully arrived. */
static enum MHD_Result dispatch(server_t *srv, struct MHD_Connection *c, const char *url,
                                http_request_t *r) {
  llmc_api_reply_t reply = {0};
  const char *body = r->body.data ? r->body.data : "";
  switch ((route_t)r->route) {
  case ROUTE_COMPLETIONS: return generate(srv, c, r, LLMC_API_COMPLETIONS);
  case ROUTE_CHAT: return generate(srv, c, r, LLMC_API_CHAT);
  case ROUTE_GENERATE: return generate(srv, c, r, LLMC_API_GENERATE);
  case ROUTE_TOKENIZE: llmc_api_tokenize(&srv->api, body, r->body.len, &reply); break;
  case ROUTE_DETOKENIZE: llmc_api_detokenize(&srv->api, body, r->body.len, &reply); break;
  case ROUTE_MODELS: llmc_api_models(&srv->api, NULL, &reply); break;
  case ROUTE_MODEL:
    llmc_api_models(&srv->api, url + strlen(routes[ROUTE_MODEL].path), &reply);
    break;
  case ROUTE_HEALTH:
    /* Draining: tell load balancers to send new work elsewhere. */
    reply.status = atomic_load(&srv->draining) ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK;
    break;
  case ROUTE_METRICS: metrics(srv, &reply); break;
  case ROUTE_COUNT: break;
  }
  return send_reply(srv, c, r, &reply);
}

/* libmicrohttpd's access handler: called with the headers (*con_cls still
 * NULL), then with each piece of the body, then once more with none. */
static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload_data,
                              size_t *upload_size, void **con_cls) {
  server_t *srv = cls;
  http_request_t *r = *con_cls;
  if (!r) {
    r = calloc(1, sizeof *r);
    if (!r) return MHD_NO;
    r->t0 = now_s();
    if (srv->verbose && (!(r->method = strdup(method)) || !(r->url = strdup(url)))) {
      free(r->method);
      free(r);
      return MHD_NO;
    }
    *con_cls = r;
    atomic_fetch_add(&srv->active, 1);
    route_request(srv, c, url, method, r);
    return MHD_YES;
  }
  if (*upload_size) {
    size_t n = *upload_size;
    *upload_size = 0;
    if (r->early.status || r->too_large) return MHD_YES; /* dropped, see the top of the file */
    if (r->body.len + n > srv->max_body_bytes) {
      r->too_large = true;
      llmc_buf_deinit(&r->body);
    } else if (!llmc_buf_append(&r->body, upload_data, n)) {
      return MHD_NO;
    }
    return MHD_YES;
  }
  if (r->early.status) return send_reply(srv, c, r, &r->early);
  if (r->too_large) {
    llmc_api_reply_t reply = {0};
    llmc_api_error_reply(&reply, MHD_HTTP_CONTENT_TOO_LARGE, "request_too_large", NULL,
                         "The request body is larger than this server's limit of %zu bytes.",
                         srv->max_body_bytes);
    return send_reply(srv, c, r, &reply);
  }
  return dispatch(srv, c, url, r);
}

/* libmicrohttpd's request-completed callback: the answer went out, or the
 * connection ended before it did. Logs the request when verbose. */
static void request_completed(void *cls, struct MHD_Connection *c, void **con_cls,
                              enum MHD_RequestTerminationCode toe) {
  server_t *srv = cls;
  http_request_t *r = *con_cls;
  if (!r) return;
  if (srv->verbose)
    fprintf(stderr, "llmc serve: %s %s %d %.3f s%s\n", r->method, r->url, r->status,
            now_s() - r->t0,
            toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "" : " (connection closed early)");
  llmc_api_reply_deinit(&r->early);
  llmc_buf_deinit(&r->body);
  free(r->method);
  free(r->url);
  free(r);
  *con_cls = NULL;
  atomic_fetch_sub(&srv->active, 1);
}

/* ---- the daemon ----------------------------------------------------------- */

/* Resolves host (an IPv4 or IPv6 address, "[::1]", or a name; IPv4 first
 * for a name with both) and port into *addr. */
static llmc_status_t resolve(const char *host, int32_t port, struct sockaddr_storage *addr) {
  char name[256], service[16];
  size_t len = strlen(host);
  if (len >= 2 && host[0] == '[' && host[len - 1] == ']')
    snprintf(name, sizeof name, "%.*s", (int)(len - 2), host + 1);
  else
    snprintf(name, sizeof name, "%s", host);
  snprintf(service, sizeof service, "%d", port < 0 ? 0 : (int)port);
  struct addrinfo hints = {
      .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
  struct addrinfo *list = NULL;
  int rc = getaddrinfo(name, service, &hints, &list);
  if (rc) return LLMC_ERROR(INVALID_ARGUMENT, "host %s: %s", host, gai_strerror(rc));
  const struct addrinfo *pick = NULL;
  for (const struct addrinfo *a = list; a; a = a->ai_next)
    if ((a->ai_family == AF_INET && (!pick || pick->ai_family != AF_INET)) ||
        (a->ai_family == AF_INET6 && !pick))
      pick = a;
  if (pick) memcpy(addr, pick->ai_addr, pick->ai_addrlen);
  freeaddrinfo(list);
  return pick ? LLMC_OK : LLMC_ERROR(INVALID_ARGUMENT, "host %s: no IPv4 or IPv6 address", host);
}

/* Opens the listening socket on addr. SO_REUSEADDR lets a restarted
 * server bind while connections of the previous one linger in TIME_WAIT
 * (libmicrohttpd does not set it on a socket it opens from an address);
 * a port another live server listens on is still refused. */
static llmc_status_t open_listener(const struct sockaddr_storage *addr, const char *host,
                                   int32_t port, int *out_fd) {
  *out_fd = -1;
  socklen_t len = addr->ss_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                              : sizeof(struct sockaddr_in);
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int on = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) != 0 ||
      bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, SOMAXCONN) != 0) {
    llmc_status_t st = LLMC_ERROR(IO, "cannot listen on %s port %d: %s", host, port < 0 ? 0 : port,
                                  strerror(errno));
    if (fd >= 0) close(fd);
    return st;
  }
  *out_fd = fd;
  return LLMC_OK;
}

/* The port fd listens on (the one the kernel chose for port 0). */
static unsigned listening_port(int fd) {
  struct sockaddr_storage bound = {0};
  socklen_t len = sizeof bound;
  if (getsockname(fd, (struct sockaddr *)&bound, &len) != 0) return 0;
  return ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                           : ((struct sockaddr_in *)&bound)->sin_port);
}

/* Parses the chat template (the override, else the model's). A model
 * template that does not parse is not fatal: chat is refused with the
 * reason (in *missing, malloc'ed), completions still work. */
static llmc_status_t load_chat_template(const llmc_model_t *model, const char *override,
                                        llmc_chat_template_t **out, char **missing) {
  *out = NULL;
  *missing = NULL;
  const char *text = override ? override : llmc_chat_template_of_model(model);
  if (!text) {
    *missing = strdup("This model has no chat template, so chat requests are refused; start the "
                      "server with --chat-template FILE.");
    return *missing ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "chat template");
  }
  llmc_status_t st = llmc_chat_template_create(text, strlen(text), out);
  if (!st) return LLMC_OK;
  if (override) return llmc_status_annotate(st, "chat template");
  fprintf(stderr,
          "llmc serve: warning: the model's chat template cannot be used (%s); chat requests will "
          "be refused\n",
          llmc_status_message(st));
  size_t n = strlen(llmc_status_message(st)) + 128;
  *missing = malloc(n);
  if (*missing)
    snprintf(*missing, n,
             "The model's chat template cannot be used (%s); start the server with --chat-template "
             "FILE.",
             llmc_status_message(st));
  llmc_status_free(st);
  return *missing ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "chat template");
}

/* The served name by default: the model file's name without ".so". */
static char *default_model_name(const char *path) {
  const char *base = strrchr(path, '/');
  base = base ? base + 1 : path;
  size_t n = strlen(base);
  if (n > 3 && strcmp(base + n - 3, ".so") == 0) n -= 3;
  return strndup(base, n);
}

/* Blocks until SIGINT or SIGTERM arrives through the self-pipe. */
static void wait_for_signal(void) {
  struct pollfd p = {.fd = signal_pipe[0], .events = POLLIN};
  while (poll(&p, 1, -1) < 0 && errno == EINTR) continue;
}

/* Stops serving: no new connections, the scheduler drained, the answers
 * out (for at most DRAIN_GRACE_MS more), then the daemon stopped. */
static void drain(server_t *srv, struct MHD_Daemon *d) {
  llmc_scheduler_stats_t stats;
  llmc_scheduler_stats(srv->api.scheduler, &stats);
  fprintf(stderr, "llmc serve: stopping; finishing %d requests in flight\n",
          stats.requests_running + stats.requests_waiting);
  atomic_store(&srv->draining, true);
  /* Refuse new connections at once (not after the drain): shutting the
   * quiesced listening socket down resets those in its backlog. It is
   * closed only after the daemon's threads are gone, as MHD asks. */
  MHD_socket listen_fd = MHD_quiesce_daemon(d);
  if (listen_fd != MHD_INVALID_SOCKET) shutdown(listen_fd, SHUT_RDWR);
  llmc_scheduler_shutdown(srv->api.scheduler, true);
  for (int waited = 0; atomic_load(&srv->active) > 0 && waited < DRAIN_GRACE_MS; waited += 10)
    nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
  MHD_stop_daemon(d);
  if (listen_fd != MHD_INVALID_SOCKET) close(listen_fd);
}

llmc_status_t llmc_server_run(llmc_scheduler_t *scheduler, const llmc_model_t *model,
                              const llmc_tokenizer_t *tok, const llmc_server_options_t *options) {
  llmc_server_options_t o = options ? *options : (llmc_server_options_t){0};
  if (!o.host) o.host = LLMC_SERVER_DEFAULT_HOST;
  if (!o.port) o.port = LLMC_SERVER_DEFAULT_PORT;
  if (!o.max_body_bytes) o.max_body_bytes = LLMC_SERVER_DEFAULT_MAX_BODY_BYTES;
  int32_t max_context = llmc_scheduler_max_context(scheduler);
  if (o.max_tokens_limit <= 0 || o.max_tokens_limit > max_context) o.max_tokens_limit = max_context;

  struct sockaddr_storage addr = {0};
  LLMC_PROPAGATE(resolve(o.host, o.port, &addr));
  char *name = o.model_name ? strdup(o.model_name) : default_model_name(model->path);
  char *missing = NULL;
  llmc_chat_template_t *tpl = NULL;
  llmc_status_t st = name ? load_chat_template(model, o.chat_template, &tpl, &missing)
                          : LLMC_ERROR(OUT_OF_MEMORY, "model name");
  if (!st && pipe2(signal_pipe, O_CLOEXEC | O_NONBLOCK) != 0)
    st = LLMC_ERROR(IO, "pipe: %s", strerror(errno));
  if (st) {
    llmc_chat_template_destroy(tpl);
    free(missing);
    free(name);
    return st;
  }
  /* libmicrohttpd closes a connection that sent and received nothing for
   * idle_timeout seconds (0: never). A handler waiting on the scheduler
   * holds the connection's thread, so a non-streaming request is not cut
   * while it waits; a stream is checked each time its reader returns, so
   * a silent stream sends keep-alive comments twice per timeout. */
  unsigned idle_timeout = o.idle_timeout_s < 0   ? 0u
                          : o.idle_timeout_s > 0 ? (unsigned)o.idle_timeout_s
                                                 : LLMC_SERVER_DEFAULT_IDLE_TIMEOUT_S;
  server_t srv = {
      .api = {.scheduler = scheduler,
              .tok = tok,
              .chat_template = tpl,
              .chat_template_missing = missing,
              .model_name = name,
              .vocab_size = model->abi->vocab_size,
              .max_context = max_context,
              .max_tokens_limit = o.max_tokens_limit,
              .created = (int64_t)time(NULL)},
      .api_key = o.api_key && o.api_key[0] ? o.api_key : NULL,
      .max_body_bytes = o.max_body_bytes,
      .keepalive_s = idle_timeout / 2.0,
      .verbose = o.verbose,
      .debug = getenv("LLMC_DEBUG") != NULL,
  };
  struct sigaction on = {.sa_handler = on_signal, .sa_flags = SA_RESTART}, old_int, old_term;
  struct sigaction ignore = {.sa_handler = SIG_IGN};
  sigemptyset(&on.sa_mask);
  sigaction(SIGINT, &on, &old_int);
  sigaction(SIGTERM, &on, &old_term);
  sigaction(SIGPIPE, &ignore, NULL); /* a write to a closed connection must not end the server */

  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL |
                   MHD_USE_ITC | MHD_USE_ERROR_LOG;
  int listen_fd = -1;
  st = open_listener(&addr, o.host, o.port, &listen_fd);
  /* The logger first: MHD uses its own for anything before it. The daemon
   * owns listen_fd once it starts. */
  struct MHD_Daemon *d =
      st ? NULL
         : MHD_start_daemon(flags, 0, NULL, NULL, handle, &srv, MHD_OPTION_EXTERNAL_LOGGER, log_mhd,
                            &srv, MHD_OPTION_LISTEN_SOCKET, (MHD_socket)listen_fd,
                            MHD_OPTION_NOTIFY_COMPLETED, request_completed, &srv,
                            MHD_OPTION_CONNECTION_TIMEOUT, idle_timeout, MHD_OPTION_END);
  if (d) {
    atomic_store(&srv.listening, true);
    char host[INET6_ADDRSTRLEN] = "?";
    const void *ip = addr.ss_family == AF_INET6
                         ? (const void *)&((struct sockaddr_in6 *)&addr)->sin6_addr
                         : (const void *)&((struct sockaddr_in *)&addr)->sin_addr;
    inet_ntop(addr.ss_family, ip, host, sizeof host);
    bool v6 = addr.ss_family == AF_INET6;
    fprintf(stderr, "llmc serve: listening on http://%s%s%s:%u (model %s)\n", v6 ? "[" : "", host,
            v6 ? "]" : "", listening_port(listen_fd), name);
    wait_for_signal();
    sigaction(SIGINT, &old_int, NULL); /* a second signal ends the process as before */
    sigaction(SIGTERM, &old_term, NULL);
    drain(&srv, d);
    fprintf(stderr, "llmc serve: stopped\n");
  } else {
    sigaction(SIGINT, &old_int, NULL);
    sigaction(SIGTERM, &old_term, NULL);
    if (!st) {
      close(listen_fd);
      st = LLMC_ERROR(IO, "cannot start the HTTP server on %s port %d", o.host,
                      o.port < 0 ? 0 : o.port);
    }
  }
  close(signal_pipe[0]);
  close(signal_pipe[1]);
  signal_pipe[0] = signal_pipe[1] = -1;
  llmc_chat_template_destroy(tpl);
  free(missing);
  free(name);
  return st;
}
