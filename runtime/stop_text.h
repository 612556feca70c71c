/* stop_text.h — generated text held back while it may still turn into a
 * stop string.
 *
 * Text goes in as the detokenizer produces it; what can no longer be part
 * of a stop string comes out. When a stop string appears, the text before
 * it comes out and the rest is dropped, as the OpenAI API and llama.cpp
 * cut a completion (the stop string itself is not included). Used by
 * `llmc run` and by the scheduler, so both cut text the same way. */
#ifndef LLMC_RUNTIME_STOP_TEXT_H
#define LLMC_RUNTIME_STOP_TEXT_H

#include <stdbool.h>
#include <stddef.h>

#include "support/status.h"

#define LLMC_MAX_STOP_STRINGS 16 /* as many as a request may give */

typedef struct llmc_stop_text {
  const char *const *stops; /* borrowed: [n_stops] non-empty stop strings */
  int n_stops;
  char *held;      /* owned: [len] text, NUL-terminated; its first `released` bytes went out */
  size_t released; /* with the last push; dropped at the next */
  size_t len, cap;
} llmc_stop_text_t;

/* Starts with nothing held; stops must outlive the holder. */
void llmc_stop_text_init(llmc_stop_text_t *st, const char *const *stops, int n_stops);
void llmc_stop_text_deinit(llmc_stop_text_t *st);

/* Adds n bytes of text and finds what may be released: on return
 * *out_text / *out_len is the released text (pointing into the holder,
 * valid until the next call) and the result is true if a stop string was
 * found (the released text ends right before it; everything after is
 * dropped). With final set (no more text will come) nothing is held back.
 * Fails only for memory. */
llmc_status_t llmc_stop_text_push(llmc_stop_text_t *st, const char *text, size_t n, bool final,
                                  const char **out_text, size_t *out_len, bool *out_stopped);

#endif /* LLMC_RUNTIME_STOP_TEXT_H */
