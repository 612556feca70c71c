/* test_sampler.c — the sampler against hand-computed expectations:
 * greedy, top-k/top-p/min-p supports, penalties, seed reproducibility and
 * empirical frequencies against the softmax probabilities. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "check.h"
#include "sampler.h"

enum { V = 6 };
static const float logits[V] = {1.0f, 3.0f, 2.0f, 3.0f, -1.0f, 0.5f};

static llmc_sampler_t *make(llmc_sampling_params_t p) {
  llmc_sampler_t *s = NULL;
  llmc_status_t st = llmc_sampler_create(&p, V, &s);
  if (st) {
    fprintf(stderr, "create: %s\n", llmc_status_message(st));
    exit(1);
  }
  return s;
}

/* Counts of each token over n draws. */
static void histogram(llmc_sampling_params_t p, int n, int *counts) {
  llmc_sampler_t *s = make(p);
  for (int i = 0; i < V; i++) counts[i] = 0;
  for (int i = 0; i < n; i++) counts[llmc_sampler_sample(s, logits, NULL)]++;
  llmc_sampler_destroy(s);
}

static void test_greedy(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  p.temperature = 0;
  llmc_sampler_t *s = make(p);
  float lp;
  int32_t t = llmc_sampler_sample(s, logits, &lp);
  CHECK_MSG(t == 1, "greedy picks the lowest id among equal maxima: got %d, want 1", t);
  double z = 0;
  for (int i = 0; i < V; i++) z += exp(logits[i]);
  CHECK_MSG(fabs(lp - (3.0 - log(z))) < 1e-5, "logprob %g, want %g", lp, 3.0 - log(z));
  llmc_sampler_destroy(s);
}

static void test_filters(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  int c[V];
  p.top_k = 2; /* the two best: ids 1 and 3 (equal logits) */
  histogram(p, 4000, c);
  CHECK_MSG(c[0] + c[2] + c[4] + c[5] == 0 && abs(c[1] - c[3]) < 300, "top_k=2: %d %d %d %d %d %d",
            c[0], c[1], c[2], c[3], c[4], c[5]);
  p = llmc_sampling_params_default();
  p.top_p = 0.5f; /* p(1) = p(3) = 0.37: the first two reach 0.5 */
  histogram(p, 4000, c);
  CHECK_MSG(c[0] + c[2] + c[4] + c[5] == 0 && c[1] > 0 && c[3] > 0, "top_p=0.5: %d %d %d %d %d %d",
            c[0], c[1], c[2], c[3], c[4], c[5]);
  p = llmc_sampling_params_default();
  p.min_p = 0.3f; /* keeps p >= 0.3 p(max): ids 1, 3 (1.0) and 2 (e^-1 = 0.37) */
  histogram(p, 4000, c);
  CHECK_MSG(c[0] + c[4] + c[5] == 0 && c[2] > 0, "min_p=0.3: %d %d %d %d %d %d", c[0], c[1], c[2],
            c[3], c[4], c[5]);
}

/* Empirical frequencies at temperature 2 follow softmax(logits / 2). */
static void test_distribution(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  p.temperature = 2.0f;
  p.seed = 7;
  enum { N = 60000 };
  int c[V];
  histogram(p, N, c);
  double z = 0;
  for (int i = 0; i < V; i++) z += exp(logits[i] / 2);
  for (int i = 0; i < V; i++) {
    double want = exp(logits[i] / 2) / z, got = (double)c[i] / N;
    double sigma = sqrt(want * (1 - want) / N);
    CHECK_MSG(fabs(got - want) < 5 * sigma, "token %d: frequency %g, probability %g", i, got, want);
  }
}

static void test_seed(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  p.seed = 1234;
  llmc_sampler_t *a = make(p), *b = make(p);
  p.seed = 1235;
  llmc_sampler_t *c = make(p);
  int same = 1, differs = 0;
  for (int i = 0; i < 200; i++) {
    int32_t x = llmc_sampler_sample(a, logits, NULL), y = llmc_sampler_sample(b, logits, NULL);
    same &= x == y;
    differs |= x != llmc_sampler_sample(c, logits, NULL);
  }
  CHECK_MSG(same, "the same seed gives the same tokens");
  CHECK_MSG(differs, "another seed gives other tokens");
  llmc_sampler_destroy(a);
  llmc_sampler_destroy(b);
  llmc_sampler_destroy(c);
}

static void test_penalties(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  p.temperature = 0;
  p.repetition_penalty = 2.0f; /* seen: 3 / 2 = 1.5 < 2 (id 2) */
  llmc_sampler_t *s = make(p);
  llmc_sampler_accept(s, 1, 0);
  llmc_sampler_accept(s, 3, 0);
  CHECK_MSG(llmc_sampler_sample(s, logits, NULL) == 2, "repetition penalty");
  llmc_sampler_destroy(s);
  p = llmc_sampling_params_default();
  p.temperature = 0;
  p.frequency_penalty = 0.8f; /* id 1 twice in the output: 3 - 1.6 = 1.4 */
  p.presence_penalty = 0.5f;  /* id 3 once: 3 - 0.8 - 0.5 = 1.7 < 2 */
  s = make(p);
  llmc_sampler_accept(s, 1, 1);
  llmc_sampler_accept(s, 1, 1);
  llmc_sampler_accept(s, 3, 1);
  llmc_sampler_accept(s, 2, 0); /* prompt tokens get no presence/frequency penalty */
  int32_t t = llmc_sampler_sample(s, logits, NULL);
  CHECK_MSG(t == 2, "presence/frequency penalties: got %d, want 2", t);
  llmc_sampler_destroy(s);
}

static void test_bad_params(void) {
  llmc_sampling_params_t p = llmc_sampling_params_default();
  p.top_p = 0;
  llmc_sampler_t *s = NULL;
  llmc_status_t st = llmc_sampler_create(&p, V, &s);
  CHECK_MSG(st && !s, "top_p = 0 is refused");
  llmc_status_free(st);
  p = llmc_sampling_params_default();
  p.temperature = -1;
  st = llmc_sampling_params_check(&p);
  CHECK_MSG(st != NULL, "negative temperature is refused");
  llmc_status_free(st);
}

int main(void) {
  test_greedy();
  test_filters();
  test_distribution();
  test_seed();
  test_penalties();
  test_bad_params();
  return check_report("test_sampler");
}
