/* test_scheduler.c — continuous batching on a real compiled model.
 *
 * Compiles tests/data/models/stories260K.gguf (a trained 260K-parameter
 * Llama) and checks the scheduler's promises against the plain one-sequence
 * engine path that `llmc run` uses:
 *   - a greedy request gives the same tokens alone, among 31 others of
 *     different lengths and samplers, and through llmc_engine_feed;
 *   - with a KV pool far too small for 64 requests at once, all 64 finish
 *     with the tokens they give alone (some are pre-empted), and every
 *     block is free afterwards;
 *   - a request whose prompt starts with blocks another left behind reuses
 *     them and still gives the same tokens;
 *   - cancellation, stop strings, max_tokens, and bad requests. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "compiler/compile.h"
#include "llmc/runtime.h"
#include "scheduler.h"
#include "tokenizer.h"

#define MODEL_SRC "tests/data/models/stories260K.gguf"

static llmc_model_t *model;
static llmc_tokenizer_t *tok;

/* Tokens of "Once upon a time" style prompts: BOS plus n ids that vary
 * with `salt`, so prompts differ from their first real token on. */
static int32_t make_prompt(int32_t *ids, int32_t n, int32_t salt) {
  ids[0] = llmc_tokenizer_bos_id(tok);
  for (int32_t i = 1; i < n; i++) ids[i] = 3 + (salt * 37 + i * 11) % 400;
  return n;
}

/* Greedy tokens through the engine alone, as llmc run computes them (with
 * the KV cache in the scheduler's element type). */
static int32_t reference_greedy(const int32_t *prompt, int32_t n_prompt, int32_t max_tokens,
                                int32_t *out) {
  llmc_engine_t *engine = NULL;
  llmc_engine_options_t options = {.kv_dtype = LLMC_SCHEDULER_DEFAULT_KV_DTYPE};
  if (!CHECK_OK(llmc_engine_create(model, &options, &engine))) return 0;
  int32_t vocab = model->abi->vocab_size, eos = llmc_tokenizer_eos_id(tok), n = 0;
  float *logits = malloc((size_t)vocab * sizeof *logits);
  llmc_kv_seq_t seq = {0};
  CHECK_OK(llmc_engine_feed(engine, &seq, prompt, n_prompt, LLMC_ENGINE_LOGITS_LAST, logits));
  while (n < max_tokens) {
    int32_t best = 0;
    for (int32_t v = 1; v < vocab; v++)
      if (logits[v] > logits[best]) best = v;
    if (best == eos) break;
    out[n++] = best;
    if (n < max_tokens)
      CHECK_OK(llmc_engine_feed(engine, &seq, &best, 1, LLMC_ENGINE_LOGITS_LAST, logits));
  }
  llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
  free(logits);
  llmc_engine_destroy(engine);
  return n;
}

/* Everything one request produced. */
typedef struct {
  int32_t tokens[512];
  int32_t n_tokens;
  char text[4096];
  size_t text_len;
  llmc_finish_reason_t finish;
  int32_t cached_tokens;
} result_t;

/* Polls r until it finishes, collecting its output. */
static void collect(llmc_request_t *r, result_t *res) {
  memset(res, 0, sizeof *res);
  for (;;) {
    llmc_request_delta_t d;
    if (!llmc_request_poll(r, &d, 10000)) {
      CHECK_MSG(0, "request produced nothing for 10 s");
      return;
    }
    for (int32_t i = 0; i < d.n_tokens && res->n_tokens < 512; i++)
      res->tokens[res->n_tokens++] = d.tokens[i].id;
    if (res->text_len + d.text_len < sizeof res->text) {
      memcpy(res->text + res->text_len, d.text, d.text_len);
      res->text_len += d.text_len;
    }
    res->cached_tokens = d.cached_tokens;
    llmc_finish_reason_t finish = d.finish;
    if (d.error) fprintf(stderr, "request error: %s\n", llmc_status_message(d.error));
    llmc_request_delta_deinit(&d);
    if (finish) {
      res->finish = finish;
      return;
    }
  }
}

static llmc_gen_params_t greedy(int32_t max_tokens) {
  llmc_gen_params_t p = llmc_gen_params_default();
  p.sampling.temperature = 0;
  p.max_tokens = max_tokens;
  return p;
}

/* Waits until the scheduler has nothing running or waiting. */
static void wait_idle(llmc_scheduler_t *s, llmc_scheduler_stats_t *st) {
  for (int i = 0; i < 500; i++) {
    llmc_scheduler_stats(s, st);
    if (st->requests_running == 0 && st->requests_waiting == 0) return;
    usleep(10000);
  }
}

static void test_batch_invariance(void) {
  int32_t prompt[40], ref[64];
  int32_t n_prompt = make_prompt(prompt, 12, 0);
  int32_t n_ref = reference_greedy(prompt, n_prompt, 64, ref);
  CHECK(n_ref > 8);

  llmc_scheduler_t *s = NULL;
  llmc_scheduler_options_t opt = {.engine.token_capacity = 64}; /* forces chunked prefill */
  if (!CHECK_OK(llmc_scheduler_create(model, tok, &opt, &s))) return;
  llmc_gen_params_t p = greedy(64);
  llmc_request_t *alone = NULL;
  result_t res;
  CHECK_OK(llmc_scheduler_submit(s, prompt, n_prompt, &p, &alone));
  collect(alone, &res);
  llmc_request_release(alone);
  CHECK_EQ_INT(res.n_tokens, n_ref);
  CHECK(!memcmp(res.tokens, ref, (size_t)n_ref * sizeof *ref));

  /* The same request third among 32 of different prompt lengths, lengths
   * and samplers, all in flight together. */
  llmc_request_t *reqs[32];
  for (int32_t i = 0; i < 32; i++) {
    int32_t other[40];
    llmc_gen_params_t q = greedy(8 + i * 3);
    q.sampling.temperature = (float)(i % 3) * 0.5f;
    q.sampling.seed = (uint64_t)i;
    int32_t n = make_prompt(other, 2 + i, i + 1);
    if (i == 2)
      CHECK_OK(llmc_scheduler_submit(s, prompt, n_prompt, &p, &reqs[i]));
    else
      CHECK_OK(llmc_scheduler_submit(s, other, n, &q, &reqs[i]));
  }
  for (int32_t i = 0; i < 32; i++) {
    collect(reqs[i], &res);
    if (i == 2) {
      CHECK_EQ_INT(res.n_tokens, n_ref);
      CHECK(!memcmp(res.tokens, ref, (size_t)n_ref * sizeof *ref));
    }
    CHECK(res.finish == LLMC_FINISH_STOP || res.finish == LLMC_FINISH_LENGTH);
    llmc_request_release(reqs[i]);
  }
  llmc_scheduler_stats_t st;
  wait_idle(s, &st);
  CHECK_EQ_INT(st.requests_finished[LLMC_FINISH_STOP] + st.requests_finished[LLMC_FINISH_LENGTH], 33);
  llmc_scheduler_destroy(s);
}

static void test_pressure(void) {
  enum { N = 64, MAX = 40 };
  static int32_t want[N][MAX];
  int32_t n_want[N];
  int32_t prompts[N][24], n_prompt[N];
  for (int32_t i = 0; i < N; i++) {
    n_prompt[i] = make_prompt(prompts[i], 4 + i % 20, 100 + i);
    n_want[i] = reference_greedy(prompts[i], n_prompt[i], MAX, want[i]);
  }
  /* 12 blocks of 16 tokens: about three requests at a time. */
  llmc_scheduler_t *s = NULL;
  llmc_scheduler_options_t opt = {.engine = {.kv_blocks = 12, .token_capacity = 64}};
  if (!CHECK_OK(llmc_scheduler_create(model, tok, &opt, &s))) return;
  llmc_request_t *reqs[N];
  llmc_gen_params_t p = greedy(MAX);
  for (int32_t i = 0; i < N; i++) CHECK_OK(llmc_scheduler_submit(s, prompts[i], n_prompt[i], &p, &reqs[i]));
  static result_t res;
  for (int32_t i = 0; i < N; i++) {
    collect(reqs[i], &res);
    CHECK_EQ_INT(res.n_tokens, n_want[i]);
    CHECK_MSG(!memcmp(res.tokens, want[i], (size_t)n_want[i] * sizeof(int32_t)),
              "request %d: tokens differ from its run alone", i);
    llmc_request_release(reqs[i]);
  }
  llmc_scheduler_stats_t st;
  wait_idle(s, &st);
  CHECK(st.preemptions > 0);
  CHECK_EQ_INT(st.kv_blocks_used, 0);
  CHECK_EQ_INT(st.kv_blocks_total, 12);
  llmc_scheduler_destroy(s);
}

static void test_prefix_sharing(void) {
  int32_t a[100], b[100], ref[32];
  make_prompt(a, 80, 7);
  memcpy(b, a, sizeof a);
  for (int32_t i = 70; i < 80; i++) b[i] = 5 + i; /* same first 70 tokens */
  int32_t n_ref = reference_greedy(b, 80, 32, ref);

  llmc_scheduler_t *s = NULL;
  if (!CHECK_OK(llmc_scheduler_create(model, tok, NULL, &s))) return;
  llmc_gen_params_t p = greedy(32);
  llmc_request_t *r = NULL;
  result_t res;
  CHECK_OK(llmc_scheduler_submit(s, a, 80, &p, &r));
  collect(r, &res);
  llmc_request_release(r);
  CHECK_EQ_INT(res.cached_tokens, 0);
  CHECK_OK(llmc_scheduler_submit(s, b, 80, &p, &r));
  collect(r, &res);
  llmc_request_release(r);
  CHECK_EQ_INT(res.cached_tokens, 64); /* four full blocks of 16 */
  CHECK_EQ_INT(res.n_tokens, n_ref);
  CHECK(!memcmp(res.tokens, ref, (size_t)n_ref * sizeof *ref));
  llmc_scheduler_stats_t st;
  wait_idle(s, &st);
  CHECK_EQ_INT((int)st.prefix_cache_hits, 64);
  CHECK_EQ_INT(st.kv_blocks_used, 0);
  CHECK(st.kv_blocks_cached > 0);
  llmc_scheduler_destroy(s);
}

static void test_cancel_stop_and_errors(void) {
  llmc_scheduler_t *s = NULL;
  if (!CHECK_OK(llmc_scheduler_create(model, tok, NULL, &s))) return;
  int32_t prompt[8];
  int32_t n = make_prompt(prompt, 8, 3);
  result_t res;

  /* Cancelled: finishes as such, blocks freed. */
  llmc_gen_params_t p = greedy(400);
  p.ignore_eos = true;
  llmc_request_t *r = NULL;
  CHECK_OK(llmc_scheduler_submit(s, prompt, n, &p, &r));
  llmc_request_cancel(r);
  collect(r, &res);
  CHECK_EQ_INT(res.finish, LLMC_FINISH_CANCELLED);
  llmc_request_release(r);

  /* max_tokens: exactly that many tokens, finish "length". */
  p = greedy(5);
  p.ignore_eos = true;
  CHECK_OK(llmc_scheduler_submit(s, prompt, n, &p, &r));
  collect(r, &res);
  llmc_request_release(r);
  CHECK_EQ_INT(res.n_tokens, 5);
  CHECK_EQ_INT(res.finish, LLMC_FINISH_LENGTH);

  /* A stop string taken from the greedy text: the text ends before it. */
  p = greedy(60);
  CHECK_OK(llmc_scheduler_submit(s, prompt, n, &p, &r));
  collect(r, &res);
  llmc_request_release(r);
  result_t full = res;
  CHECK(full.text_len > 20);
  if (full.text_len > 20) {
    char stop[8];
    memcpy(stop, full.text + 12, 4);
    stop[4] = 0;
    p.stop[0] = stop;
    p.n_stop = 1;
    CHECK_OK(llmc_scheduler_submit(s, prompt, n, &p, &r));
    collect(r, &res);
    llmc_request_release(r);
    const char *first = strstr(full.text, stop);
    CHECK_EQ_INT(res.finish, LLMC_FINISH_STOP);
    CHECK_EQ_INT((int)res.text_len, (int)(first - full.text));
    CHECK(!memcmp(res.text, full.text, res.text_len));
  }

  /* Bad requests are refused at submit. */
  p = greedy(16);
  int32_t bad[2] = {1, 100000};
  CHECK_ERROR(llmc_scheduler_submit(s, bad, 2, &p, &r), INVALID_ARGUMENT, "outside");
  CHECK_ERROR(llmc_scheduler_submit(s, prompt, 0, &p, &r), INVALID_ARGUMENT, "no tokens");
  p.max_tokens = model->abi->max_context;
  CHECK_ERROR(llmc_scheduler_submit(s, prompt, n, &p, &r), INVALID_ARGUMENT, "maximum context length");
  p = greedy(16);
  p.sampling.temperature = -1;
  CHECK_ERROR(llmc_scheduler_submit(s, prompt, n, &p, &r), INVALID_ARGUMENT, "temperature");

  /* Shutdown with drain finishes what runs; later submits are refused. */
  p = greedy(20);
  CHECK_OK(llmc_scheduler_submit(s, prompt, n, &p, &r));
  llmc_scheduler_shutdown(s, true);
  collect(r, &res);
  CHECK(res.finish == LLMC_FINISH_LENGTH || res.finish == LLMC_FINISH_STOP);
  llmc_request_release(r);
  llmc_request_t *late = NULL;
  CHECK_ERROR(llmc_scheduler_submit(s, prompt, n, &p, &late), UNIMPLEMENTED, "shutting down");
  llmc_scheduler_destroy(s);
}

/* llmc_request_wait_any serves several requests from one thread: each
 * wake-up finds output in one of them, polling only the ones that have it
 * gives every request its whole output (the same as alone), and once all
 * have finished and been polled it reports nothing, at once for a zero
 * timeout. */
static void test_wait_any(void) {
  llmc_scheduler_t *s = NULL;
  if (!CHECK_OK(llmc_scheduler_create(model, tok, NULL, &s))) return;
  enum { N = 3 };
  int32_t prompt[N][8], n[N];
  llmc_request_t *rs[N];
  result_t alone[N];
  static result_t got[N];
  for (int i = 0; i < N; i++) {
    n[i] = make_prompt(prompt[i], 8, 5 + i);
    llmc_gen_params_t p = greedy(10 + 15 * i);
    p.ignore_eos = true;
    CHECK_OK(llmc_scheduler_submit(s, prompt[i], n[i], &p, &rs[i]));
    collect(rs[i], &alone[i]);
    llmc_request_release(rs[i]);
  }
  for (int i = 0; i < N; i++) {
    llmc_gen_params_t p = greedy(10 + 15 * i);
    p.ignore_eos = true;
    CHECK_OK(llmc_scheduler_submit(s, prompt[i], n[i], &p, &rs[i]));
  }
  llmc_request_t *open_rs[N] = {rs[0], rs[1], rs[2]};
  int32_t n_open = N, wakes = 0;
  while (n_open > 0 && wakes < 1000) {
    if (!llmc_request_wait_any(open_rs, n_open, 10000)) {
      CHECK_MSG(0, "no request produced anything for 10 s");
      break;
    }
    wakes++;
    int32_t still = 0;
    for (int32_t k = 0; k < n_open; k++) {
      int i = open_rs[k] == rs[0] ? 0 : open_rs[k] == rs[1] ? 1 : 2;
      llmc_request_delta_t d;
      bool finished = false;
      if (llmc_request_poll(rs[i], &d, 0)) {
        for (int32_t t = 0; t < d.n_tokens && got[i].n_tokens < 512; t++)
          got[i].tokens[got[i].n_tokens++] = d.tokens[t].id;
        finished = d.finish != LLMC_FINISH_NONE;
        if (finished) got[i].finish = d.finish;
        llmc_request_delta_deinit(&d);
      }
      if (!finished) open_rs[still++] = rs[i];
    }
    n_open = still;
  }
  for (int i = 0; i < N; i++) {
    CHECK_EQ_INT(got[i].finish, LLMC_FINISH_LENGTH);
    CHECK_EQ_INT(got[i].n_tokens, alone[i].n_tokens);
    CHECK(memcmp(got[i].tokens, alone[i].tokens, sizeof(int32_t) * (size_t)alone[i].n_tokens) == 0);
  }
  CHECK(!llmc_request_wait_any(rs, N, 0));
  CHECK(!llmc_request_wait_any(rs, N, 20));
  for (int i = 0; i < N; i++) llmc_request_release(rs[i]);
  llmc_scheduler_destroy(s);
}

int main(void) {
  char dir[] = "/tmp/llmc-test-scheduler-XXXXXX", so[128];
  if (!mkdtemp(dir)) return 1;
  snprintf(so, sizeof so, "%s/stories.so", dir);
  llmc_compile_options_t copt = {.source = MODEL_SRC, .output = so};
  if (CHECK_OK(llmc_compile(&copt)) && CHECK_OK(llmc_model_load(so, NULL, &model)) &&
      CHECK_OK(llmc_tokenizer_load_for_model(model, &tok))) {
    test_batch_invariance();
    test_pressure();
    test_prefix_sharing();
    test_cancel_stop_and_errors();
    test_wait_any();
  }
  llmc_tokenizer_destroy(tok);
  llmc_model_destroy(model);
  unlink(so);
  rmdir(dir);
  return check_report("test_scheduler");
}
