/* sampler.c — see sampler.h.
 *
 * The candidate set is sorted only when a filter needs an order (top-k,
 * top-p); plain temperature sampling walks the whole distribution once.
 * Ties are broken by the lower token id everywhere, so results depend on
 * the logits and the seed alone. The generator is xoshiro256** seeded
 * through splitmix64. */
#include "sampler.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct llmc_sampler {
  llmc_sampling_params_t p;
  int32_t vocab;
  uint8_t *seen;      /* [vocab] token occurred in the prompt or the output */
  int32_t *out_count; /* [vocab] occurrences in the output */
  float *work;        /* [vocab] logits after penalties and temperature */
  int32_t *cand;      /* [vocab] candidate ids */
  uint64_t rng[4];
};

llmc_sampling_params_t llmc_sampling_params_default(void) {
  return (llmc_sampling_params_t){.temperature = 1.0f, .top_p = 1.0f, .repetition_penalty = 1.0f};
}

llmc_status_t llmc_sampling_params_check(const llmc_sampling_params_t *p) {
  if (!(p->temperature >= 0 && p->temperature <= 100))
    return LLMC_ERROR(INVALID_ARGUMENT, "temperature must be in [0, 100], got %g", p->temperature);
  if (p->top_k < 0) return LLMC_ERROR(INVALID_ARGUMENT, "top_k must be >= 0, got %d", p->top_k);
  if (!(p->top_p > 0 && p->top_p <= 1)) return LLMC_ERROR(INVALID_ARGUMENT, "top_p must be in (0, 1], got %g", p->top_p);
  if (!(p->min_p >= 0 && p->min_p <= 1)) return LLMC_ERROR(INVALID_ARGUMENT, "min_p must be in [0, 1], got %g", p->min_p);
  if (!(p->repetition_penalty > 0 && p->repetition_penalty <= 100))
    return LLMC_ERROR(INVALID_ARGUMENT, "repetition_penalty must be in (0, 100], got %g", p->repetition_penalty);
  if (!(fabsf(p->presence_penalty) <= 2))
    return LLMC_ERROR(INVALID_ARGUMENT, "presence_penalty must be in [-2, 2], got %g", p->presence_penalty);
  if (!(fabsf(p->frequency_penalty) <= 2))
    return LLMC_ERROR(INVALID_ARGUMENT, "frequency_penalty must be in [-2, 2], got %g", p->frequency_penalty);
  return LLMC_OK;
}

static uint64_t splitmix64(uint64_t *x) {
  uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

/* A uniform double in [0, 1). */
static double next_uniform(uint64_t s[4]) {
  uint64_t result = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
  s[2] ^= s[0];
  s[3] ^= s[1];
  s[1] ^= s[2];
  s[0] ^= s[3];
  s[2] ^= t;
  s[3] = rotl(s[3], 45);
  return (double)(result >> 11) * 0x1.0p-53;
}

llmc_status_t llmc_sampler_create(const llmc_sampling_params_t *params, int32_t vocab, llmc_sampler_t **out) {
  *out = NULL;
  LLMC_PROPAGATE(llmc_sampling_params_check(params));
  if (vocab <= 0) return LLMC_ERROR(INVALID_ARGUMENT, "sampler: vocabulary of %d tokens", vocab);
  llmc_sampler_t *s = calloc(1, sizeof *s);
  if (s) {
    s->seen = calloc((size_t)vocab, 1);
    s->out_count = calloc((size_t)vocab, sizeof *s->out_count);
    s->work = malloc((size_t)vocab * sizeof *s->work);
    s->cand = malloc((size_t)vocab * sizeof *s->cand);
  }
  if (!s || !s->seen || !s->out_count || !s->work || !s->cand) {
    llmc_sampler_destroy(s);
    return LLMC_ERROR(OUT_OF_MEMORY, "sampler for %d tokens", vocab);
  }
  s->p = *params;
  s->vocab = vocab;
  uint64_t x = params->seed;
  for (int i = 0; i < 4; i++) s->rng[i] = splitmix64(&x);
  *out = s;
  return LLMC_OK;
}

void llmc_sampler_destroy(llmc_sampler_t *s) {
  if (!s) return;
  free(s->seen);
  free(s->out_count);
  free(s->work);
  free(s->cand);
  free(s);
}

void llmc_sampler_accept(llmc_sampler_t *s, int32_t token, int is_output) {
  if (token < 0 || token >= s->vocab) return;
  s->seen[token] = 1;
  if (is_output) s->out_count[token]++;
}

/* log of the softmax denominator: max + log sum exp(logits - max). */
static double log_sum_exp(const float *logits, int32_t vocab) {
  float max = logits[0];
  for (int32_t i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
  double sum = 0;
  for (int32_t i = 0; i < vocab; i++) sum += exp((double)(logits[i] - max));
  return (double)max + log(sum);
}

/* log p(token) under softmax(logits). */
static float log_softmax_at(const float *logits, int32_t vocab, int32_t token) {
  return (float)((double)logits[token] - log_sum_exp(logits, vocab));
}

void llmc_top_logprobs(const float *logits, int32_t vocab, int32_t n, int32_t *ids, float *logprobs) {
  /* Insertion into a sorted list of n: O(vocab * n), and n is at most 20. */
  int32_t have = 0;
  for (int32_t t = 0; t < vocab; t++) {
    if (have == n && logits[t] <= logits[ids[n - 1]]) continue; /* ties keep the lower id */
    int32_t at = have < n ? have++ : n - 1;
    while (at > 0 && logits[ids[at - 1]] < logits[t]) {
      ids[at] = ids[at - 1];
      at--;
    }
    ids[at] = t;
  }
  double lse = log_sum_exp(logits, vocab);
  for (int32_t i = 0; i < n; i++) logprobs[i] = (float)((double)logits[ids[i]] - lse);
}

static void apply_penalties(llmc_sampler_t *s) {
  const llmc_sampling_params_t *p = &s->p;
  for (int32_t i = 0; i < s->vocab; i++) {
    if (!s->seen[i]) continue;
    float *l = &s->work[i];
    if (p->repetition_penalty != 1.0f) *l = *l > 0 ? *l / p->repetition_penalty : *l * p->repetition_penalty;
    if (s->out_count[i]) *l -= p->frequency_penalty * (float)s->out_count[i] + p->presence_penalty;
  }
}

/* qsort has no context argument: a thread-local pointer carries the logits
 * to the comparator (samplers may run on several threads at once). */
static _Thread_local const float *sort_logits;

static int by_logit_desc(const void *a, const void *b) {
  int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
  if (sort_logits[x] != sort_logits[y]) return sort_logits[x] > sort_logits[y] ? -1 : 1;
  return x < y ? -1 : x > y;
}

int32_t llmc_sampler_sample(llmc_sampler_t *s, const float *logits, float *out_logprob) {
  const llmc_sampling_params_t *p = &s->p;
  int32_t V = s->vocab;
  memcpy(s->work, logits, (size_t)V * sizeof *s->work);
  apply_penalties(s);
  int32_t best = 0;
  for (int32_t i = 1; i < V; i++)
    if (s->work[i] > s->work[best]) best = i;
  int32_t chosen = best;
  if (p->temperature > 0) {
    /* Candidates: all tokens, sorted by logit when a filter needs an order. */
    int32_t n = V;
    for (int32_t i = 0; i < V; i++) s->cand[i] = i;
    bool ordered = (p->top_k > 0 && p->top_k < V) || p->top_p < 1.0f;
    if (ordered) {
      sort_logits = s->work;
      qsort(s->cand, (size_t)V, sizeof *s->cand, by_logit_desc);
      if (p->top_k > 0 && p->top_k < n) n = p->top_k;
    }
    /* Probabilities at this temperature, relative to the best token. */
    float max = s->work[best];
    double total = 0;
    for (int32_t i = 0; i < n; i++) {
      int32_t t = s->cand[i];
      s->work[t] = (float)exp((double)(s->work[t] - max) / p->temperature);
      total += s->work[t];
    }
    if (p->top_p < 1.0f) { /* the smallest prefix with mass >= top_p */
      double mass = 0;
      int32_t keep = 0;
      while (keep < n && mass < p->top_p * total) mass += s->work[s->cand[keep++]];
      n = keep > 0 ? keep : 1;
      total = mass > 0 ? mass : s->work[s->cand[0]];
    }
    if (p->min_p > 0) { /* the best token has weight 1 here */
      int32_t kept = 0;
      total = 0;
      for (int32_t i = 0; i < n; i++)
        if (s->work[s->cand[i]] >= p->min_p) {
          s->cand[kept++] = s->cand[i];
          total += s->work[s->cand[i]];
        }
      n = kept;
    }
    double u = next_uniform(s->rng) * total, acc = 0;
    chosen = s->cand[n - 1];
    for (int32_t i = 0; i < n; i++) {
      acc += s->work[s->cand[i]];
      if (u < acc) {
        chosen = s->cand[i];
        break;
      }
    }
  }
  if (out_logprob) *out_logprob = log_softmax_at(logits, V, chosen);
  return chosen;
}
