/* chat_context.h — what a model's chat prompts are rendered with: its
 * template text and the special-token variables Hugging Face's
 * apply_chat_template passes to every template (bos_token, eos_token).
 * Shared by `llmc serve` and `llmc run --chat`. */
#ifndef LLMC_RUNTIME_CHAT_CONTEXT_H
#define LLMC_RUNTIME_CHAT_CONTEXT_H

#include <cjson/cJSON.h>

#include "llmc/runtime.h"
#include "support/status.h"
#include "tokenizer.h"

/* The chat template the model's metadata carries (config.chat_template),
 * or NULL when it has none. Owned by the model. */
const char *llmc_chat_template_of_model(const llmc_model_t *model);

/* Adds "bos_token" and "eos_token" to the context object: the tokenizer's
 * BOS and EOS as its vocabulary spells them ("<s>", "<|begin_of_text|>"),
 * "" for one it lacks. Fails only when memory runs out. */
llmc_status_t llmc_chat_context_add_special_tokens(cJSON *context, const llmc_tokenizer_t *tok);

#endif /* LLMC_RUNTIME_CHAT_CONTEXT_H */
