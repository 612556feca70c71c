/* fuzz_jinja.c — libFuzzer target for the chat-template interpreter: the
 * input is template text, rendered with a fixed context that has the shapes
 * real templates walk (messages with tool calls, tools, a namespace-worthy
 * mix of types). Any crash, sanitizer report, leak or hang is a bug: the
 * interpreter must turn every input into either text or an error.
 *
 * Build and run (from the repository root; clang with libFuzzer):
 *
 *   clang-19 -g -O1 -std=c17 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
 *     -Iruntime tests/fuzz/fuzz_jinja.c runtime/chat_template.c runtime/jinja_*.c \
 *     runtime/support/arena.c runtime/support/status.c -lcjson -lm -o /tmp/fuzz_jinja
 *   mkdir -p /tmp/jinja_corpus
 *   /tmp/fuzz_jinja /tmp/jinja_corpus -dict=tests/fuzz/jinja.dict -max_len=4096 \
 *     -timeout=10 -rss_limit_mb=2048
 *
 * Seeding the corpus with real templates finds deep paths sooner, e.g. the
 * "template" members of tests/data/chat_templates/families.json. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "chat_template.h"

static const char context_json[] =
    "{\"bos_token\": \"<s>\", \"eos_token\": \"</s>\", \"add_generation_prompt\": true,"
    " \"messages\": ["
    "  {\"role\": \"system\", \"content\": \"  Be brief.  \"},"
    "  {\"role\": \"user\", \"content\": \"Hi \\u00fc\\ud83e\\udd99 <think>x</think>\\n\"},"
    "  {\"role\": \"assistant\", \"content\": null, \"tool_calls\": [{\"id\": \"abc123xyz\","
    "   \"type\": \"function\", \"function\": {\"name\": \"f\", \"arguments\": {\"a\": [1, "
    "2.5]}}}]},"
    "  {\"role\": \"tool\", \"tool_call_id\": \"abc123xyz\", \"content\": \"42\"},"
    "  {\"role\": \"user\", \"content\": [{\"type\": \"text\", \"text\": \"part\"}]}],"
    " \"tools\": [{\"type\": \"function\", \"function\": {\"name\": \"f\", \"parameters\":"
    "   {\"type\": \"object\", \"properties\": {\"a\": {\"type\": \"array\"}}}}}],"
    " \"n\": -7, \"x\": 0.5, \"flag\": false, \"nothing\": null}";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llmc_chat_template_t *tpl = NULL;
  llmc_status_t st = llmc_chat_template_create((const char *)data, size, &tpl);
  if (!st) {
    char *text = NULL;
    size_t len;
    bool raised;
    st = llmc_chat_template_apply_json(tpl, context_json, sizeof context_json - 1, &text, &len,
                                       &raised);
    free(text);
  }
  llmc_status_free(st);
  llmc_chat_template_destroy(tpl);
  return 0;
}
