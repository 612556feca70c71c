/* perplexity.h — perplexity over a token stream, scored the way llama.cpp's
 * llama-perplexity scores it, so the two can be compared number for number.
 *
 * The tokens are cut into windows of n_ctx; each window is evaluated as a
 * fresh sequence (its first token replaced by BOS when the model adds one),
 * and only the second half of each window is scored: position i in
 * [n_ctx/2, n_ctx - 1) contributes -log p(token i+1 | tokens 0..i). */
#ifndef LLMC_RUNTIME_PERPLEXITY_H
#define LLMC_RUNTIME_PERPLEXITY_H

#include <stdint.h>

#include "llmc/runtime.h"

typedef struct {
  double ppl;        /* exp(mean negative log-likelihood) */
  double ppl_stderr; /* llama.cpp's "+/-": ppl * stddev(nll) / sqrt(count - 1) */
  int64_t count;     /* scored tokens */
  int32_t n_windows;
} llmc_perplexity_result_t;

/* Called after each window with the windows done, their total and the
 * perplexity so far. */
typedef void (*llmc_perplexity_progress_fn)(int32_t done, int32_t total, double ppl, void *ctx);

/* Scores tokens [n] in floor(n / n_ctx) windows (at least 2 * n_ctx tokens
 * are needed, as llama.cpp requires). bos < 0: the first token of each
 * window is left as it is. The engine's token capacity may be smaller than
 * n_ctx (the window is fed in steps). */
llmc_status_t llmc_perplexity(llmc_engine_t *engine, int32_t vocab, const int32_t *tokens, int64_t n,
                              int32_t n_ctx, int32_t bos, llmc_perplexity_progress_fn progress, void *ctx,
                              llmc_perplexity_result_t *out);

#endif
