/* chat_template.h — renders Hugging Face chat templates (Jinja2) exactly as
 * transformers' apply_chat_template does: jinja2 3.1 in an
 * ImmutableSandboxedEnvironment with trim_blocks and lstrip_blocks, the
 * loopcontrols extension, and the globals raise_exception and strftime_now
 * and the tojson filter that Hugging Face adds (docs/chat-templates.md).
 *
 * A template is parsed once (llmc_chat_template_create) and rendered any
 * number of times, from any number of threads at once, with a context given
 * as a JSON object: its members are the template's variables (messages,
 * add_generation_prompt, bos_token, eos_token, tools, anything else).
 * Rendering never crashes on any template or context: errors (syntax, a
 * construct llmc does not implement, a Python TypeError, an undefined value
 * used where jinja2 raises, runaway loops or memory) come back as statuses
 * that name the template's line:column and the construct. */
#ifndef LLMC_CHAT_TEMPLATE_H
#define LLMC_CHAT_TEMPLATE_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>

#include "support/status.h"

typedef struct llmc_chat_template llmc_chat_template_t;

/* Parses a template (len bytes of UTF-8 text, NUL bytes allowed) into
 * *out_template (owned by the caller: llmc_chat_template_destroy). Syntax
 * errors and unsupported tags, filters and tests fail here, as jinja2 fails
 * when it compiles a template, with "LINE:COL: message". */
llmc_status_t llmc_chat_template_create(const char *text, size_t len,
                                        llmc_chat_template_t **out_template);

/* Frees a template. NULL is fine. */
void llmc_chat_template_destroy(llmc_chat_template_t *tpl);

/* Renders tpl with the members of `context` (a JSON object; NULL: no
 * variables) as its variables. On success *out_text is the malloc'ed,
 * NUL-terminated output (owned by the caller) and *out_len its length (the
 * output may itself contain NUL bytes). On failure *out_text is NULL and
 * *out_raised (when not NULL) tells whether the template called
 * raise_exception: the status message is then exactly the template's
 * message, which a server shows its client; other errors read
 * "LINE:COL: message". */
llmc_status_t llmc_chat_template_apply(const llmc_chat_template_t *tpl, const cJSON *context,
                                       char **out_text, size_t *out_len, bool *out_raised);

/* As llmc_chat_template_apply, with the context given as JSON text (len
 * bytes). Prefer this when the text is at hand: numbers then read as
 * Python's json module reads them (1.0 stays a float and prints "1.0",
 * integers are exact to 64 bits), which a cJSON tree cannot tell. */
llmc_status_t llmc_chat_template_apply_json(const llmc_chat_template_t *tpl, const char *json,
                                            size_t len, char **out_text, size_t *out_len,
                                            bool *out_raised);

/* Parses and renders in one call (NUL-terminated template text). */
llmc_status_t llmc_chat_template_render(const char *template_text, const cJSON *context,
                                        char **out_text, size_t *out_len, bool *out_raised);

#endif /* LLMC_CHAT_TEMPLATE_H */
