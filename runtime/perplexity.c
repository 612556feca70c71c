/* perplexity.c — see perplexity.h. The log-softmax is computed as llama.cpp
 * does it (float max and exp terms, summed in double), so that the same
 * logits give the same perplexity to the last printed digit. */
#include "perplexity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* log p(tok) under softmax(logits [vocab]). */
static double log_softmax_at(const float *logits, int32_t vocab, int32_t tok) {
  float max = logits[0];
  for (int32_t i = 1; i < vocab; i++) max = logits[i] > max ? logits[i] : max;
  double sum = 0.0;
  for (int32_t i = 0; i < vocab; i++) sum += expf(logits[i] - max);
  return (double)(logits[tok] - max) - log(sum);
}

llmc_status_t llmc_perplexity(llmc_engine_t *engine, int32_t vocab, const int32_t *tokens, int64_t n,
                              int32_t n_ctx, int32_t bos, llmc_perplexity_progress_fn progress, void *ctx,
                              llmc_perplexity_result_t *out) {
  memset(out, 0, sizeof *out);
  if (n_ctx < 2) return LLMC_ERROR(INVALID_ARGUMENT, "perplexity: context %d is too small", n_ctx);
  if (n < 2 * (int64_t)n_ctx)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "perplexity: the text has %lld tokens; a context of %d needs at least %lld (2 windows)",
                      (long long)n, n_ctx, 2 * (long long)n_ctx);
  int32_t n_windows = (int32_t)(n / n_ctx), first = n_ctx / 2;
  int32_t *window = malloc((size_t)n_ctx * sizeof *window);
  float *logits = malloc((size_t)n_ctx * (size_t)vocab * sizeof *logits);
  llmc_status_t st = window && logits ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "perplexity buffers");
  double nll = 0, nll2 = 0;
  int64_t count = 0;
  for (int32_t w = 0; !st && w < n_windows; w++) {
    memcpy(window, tokens + (int64_t)w * n_ctx, (size_t)n_ctx * sizeof *window);
    if (bos >= 0) window[0] = bos;
    llmc_kv_seq_t seq = {0};
    st = llmc_engine_feed(engine, &seq, window, n_ctx, LLMC_ENGINE_LOGITS_ALL, logits);
    llmc_kv_seq_deinit(llmc_engine_kv_cache(engine), &seq);
    /* Position i predicts token i + 1 of the window as it was fed. */
    for (int32_t i = first; !st && i < n_ctx - 1; i++) {
      double v = -log_softmax_at(logits + (size_t)i * (size_t)vocab, vocab, window[i + 1]);
      nll += v;
      nll2 += v * v;
      count++;
    }
    if (!st && progress) progress(w + 1, n_windows, exp(nll / (double)count), ctx);
  }
  free(window);
  free(logits);
  if (st) return st;
  double mean = nll / (double)count, var = nll2 / (double)count - mean * mean;
  out->ppl = exp(mean);
  out->ppl_stderr = var > 0 && count > 1 ? sqrt(var / (double)(count - 1)) * out->ppl : 0;
  out->count = count;
  out->n_windows = n_windows;
  return LLMC_OK;
}
