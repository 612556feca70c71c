/* chat_context.c — see chat_context.h. */
#include "chat_context.h"

#include <stdlib.h>
#include <string.h>

const char *llmc_chat_template_of_model(const llmc_model_t *model) {
  const cJSON *config = cJSON_GetObjectItemCaseSensitive(model->metadata, "config");
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(config, "chat_template");
  return cJSON_IsString(t) ? t->valuestring : NULL;
}

/* Adds the vocabulary spelling of token id (or "" for -1) as context[name]. */
static llmc_status_t add_token_string(cJSON *context, const char *name, const llmc_tokenizer_t *tok,
                                      int32_t id) {
  size_t len = 0;
  const char *text = id >= 0 ? llmc_tokenizer_token_text(tok, id, &len) : NULL;
  /* The vocabulary entry is not NUL-terminated: copy it to make a string. */
  char *s = strndup(text ? text : "", text ? len : 0);
  cJSON *item = s ? cJSON_AddStringToObject(context, name, s) : NULL;
  free(s);
  return item ? LLMC_OK : LLMC_ERROR(OUT_OF_MEMORY, "chat template context: %s", name);
}

llmc_status_t llmc_chat_context_add_special_tokens(cJSON *context, const llmc_tokenizer_t *tok) {
  LLMC_PROPAGATE(add_token_string(context, "bos_token", tok, llmc_tokenizer_bos_id(tok)));
  return add_token_string(context, "eos_token", tok, llmc_tokenizer_eos_id(tok));
}
