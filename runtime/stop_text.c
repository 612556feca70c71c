/* stop_text.c — see stop_text.h.
 *
 * The holder keeps the text it released at the front of `held` until the
 * next push (so the caller reads it without a copy), then drops it. */
#include "stop_text.h"

#include <stdlib.h>
#include <string.h>

void llmc_stop_text_init(llmc_stop_text_t *st, const char *const *stops, int n_stops) {
  *st = (llmc_stop_text_t){.stops = stops, .n_stops = n_stops};
}

void llmc_stop_text_deinit(llmc_stop_text_t *st) {
  free(st->held);
  *st = (llmc_stop_text_t){0};
}

/* Where the first stop string starts in held[0, len), or len. */
static size_t first_stop(const llmc_stop_text_t *st) {
  size_t at = st->len;
  for (int i = 0; i < st->n_stops; i++) {
    const char *hit = memmem(st->held, st->len, st->stops[i], strlen(st->stops[i]));
    if (hit && (size_t)(hit - st->held) < at) at = (size_t)(hit - st->held);
  }
  return at;
}

/* The longest tail of held that is a proper prefix of some stop string:
 * the text that must wait for more before it can be released. */
static size_t tail_to_hold(const llmc_stop_text_t *st) {
  size_t keep = 0;
  for (int i = 0; i < st->n_stops; i++)
    for (size_t k = strlen(st->stops[i]) - 1; k > keep; k--)
      if (k <= st->len && !memcmp(st->held + st->len - k, st->stops[i], k)) {
        keep = k;
        break;
      }
  return keep;
}

llmc_status_t llmc_stop_text_push(llmc_stop_text_t *st, const char *text, size_t n, bool final,
                                  const char **out_text, size_t *out_len, bool *out_stopped) {
  *out_text = "";
  *out_len = 0;
  *out_stopped = false;
  if (st->released) {
    memmove(st->held, st->held + st->released, st->len - st->released);
    st->len -= st->released;
    st->released = 0;
  }
  if (st->len + n + 1 > st->cap) {
    size_t cap = (st->len + n + 1) * 2;
    char *held = realloc(st->held, cap);
    if (!held) return LLMC_ERROR(OUT_OF_MEMORY, "%zu bytes of generated text", cap);
    st->held = held;
    st->cap = cap;
  }
  memcpy(st->held + st->len, text, n);
  st->len += n;
  st->held[st->len] = 0;
  size_t stop_at = first_stop(st);
  bool stopped = stop_at < st->len;
  size_t out = stopped ? stop_at : final ? st->len : st->len - tail_to_hold(st);
  if (stopped) st->len = out; /* the stop string and what follows are dropped */
  *out_stopped = stopped;
  *out_text = st->held;
  *out_len = out;
  st->released = out;
  return LLMC_OK;
}
