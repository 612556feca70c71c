/* sampler.h — choosing the next token from a row of logits.
 *
 * The steps, in vLLM's order: penalties (repetition over prompt and output,
 * presence and frequency over the output), temperature, top-k, top-p,
 * min-p, then a draw. Temperature 0 is greedy (the lowest id among equal
 * maxima). Each sampler owns its random state, seeded per request, so the
 * same seed and the same logits give the same tokens whatever else runs. */
#ifndef LLMC_RUNTIME_SAMPLER_H
#define LLMC_RUNTIME_SAMPLER_H

#include <stdint.h>

#include "support/status.h"

typedef struct {
  float temperature;        /* 0 = greedy; default 1 */
  int32_t top_k;            /* keep the k most likely; 0 = off */
  float top_p;              /* keep the smallest set with mass >= top_p; 1 = off */
  float min_p;              /* drop tokens below min_p * p(max); 0 = off */
  float repetition_penalty; /* > 1 discourages tokens seen in prompt or output; 1 = off */
  float presence_penalty;   /* subtracted once from tokens in the output; 0 = off */
  float frequency_penalty;  /* subtracted per occurrence in the output; 0 = off */
  uint64_t seed;
} llmc_sampling_params_t;

/* The defaults above: temperature 1, everything else off, seed 0. */
llmc_sampling_params_t llmc_sampling_params_default(void);
/* Checks ranges (temperature >= 0, top_p in (0, 1], min_p in [0, 1],
 * repetition_penalty > 0, top_k >= 0, penalties in [-2, 2] as OpenAI);
 * the message names the parameter. */
llmc_status_t llmc_sampling_params_check(const llmc_sampling_params_t *p);

typedef struct llmc_sampler llmc_sampler_t;

/* A sampler over a vocabulary of `vocab` tokens. */
llmc_status_t llmc_sampler_create(const llmc_sampling_params_t *params, int32_t vocab, llmc_sampler_t **out);
void llmc_sampler_destroy(llmc_sampler_t *s);

/* Records a token of the prompt (is_output = 0) or of the output (1), for
 * the penalties. Ids outside the vocabulary are ignored. */
void llmc_sampler_accept(llmc_sampler_t *s, int32_t token, int is_output);

/* Picks the next token from logits [vocab] (left unchanged). If
 * out_logprob is not NULL it receives the log-probability of the chosen
 * token under the model's raw distribution (log-softmax of logits), as the
 * OpenAI API reports it. */
int32_t llmc_sampler_sample(llmc_sampler_t *s, const float *logits, float *out_logprob);

/* The n most likely tokens of logits [vocab] (most likely first, ties to
 * the lower id) and their log-probabilities under the raw distribution:
 * ids [n], logprobs [n]. n <= vocab. */
void llmc_top_logprobs(const float *logits, int32_t vocab, int32_t n, int32_t *ids, float *logprobs);

#endif
