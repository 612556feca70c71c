/* chat_template.c — the public face of the Jinja2 interpreter (jinja.h):
 * owns the parsed template, sets the error trap around parsing and
 * rendering, turns the JSON context into the template's variables and hands
 * the output back as a malloc'ed string.
 *
 * Each render gets its own arena with a byte budget; the parsed template is
 * read-only while rendering, so renders may run in parallel. The trap lives
 * in the arena rather than on the stack so that nothing the longjmp crosses
 * needs to be volatile. */
#include "chat_template.h"

#include <stdlib.h>
#include <string.h>

#include "jinja.h"

enum {
  RENDER_MEMORY_LIMIT = 256 << 20, /* bytes one render may allocate */
  PARSE_MEMORY_BASE = 16 << 20,    /* plus 64 bytes per template byte */
};

struct llmc_chat_template {
  llmc_arena_t *arena; /* owns the AST */
  jinja_node_t **body;
  size_t n_body;
};

llmc_status_t llmc_chat_template_create(const char *text, size_t len,
                                        llmc_chat_template_t **out_template) {
  *out_template = NULL;
  llmc_chat_template_t *tpl = calloc(1, sizeof *tpl);
  llmc_arena_t *arena = llmc_arena_create();
  if (!tpl || !arena) {
    free(tpl);
    llmc_arena_destroy(arena);
    return LLMC_ERROR(OUT_OF_MEMORY, "chat template");
  }
  tpl->arena = arena;
  jinja_heap_t *heap = llmc_arena_alloc(arena, sizeof *heap);
  heap->arena = arena;
  heap->limit = len < (SIZE_MAX - PARSE_MEMORY_BASE) / 64 ? PARSE_MEMORY_BASE + 64 * len : SIZE_MAX;
  heap->trap = llmc_arena_alloc(arena, sizeof *heap->trap);
  if (setjmp(heap->trap->jmp)) {
    llmc_status_t status = heap->trap->status;
    llmc_chat_template_destroy(tpl);
    return status;
  }
  jinja_parse(heap, text, len, &tpl->body, &tpl->n_body);
  *out_template = tpl;
  return LLMC_OK;
}

void llmc_chat_template_destroy(llmc_chat_template_t *tpl) {
  if (!tpl) return;
  llmc_arena_destroy(tpl->arena);
  free(tpl);
}

/* Renders tpl with context (NULL: no variables); json/json_len, when not
 * NULL, is the text context was parsed from, for the numbers' types. */
static llmc_status_t render(const llmc_chat_template_t *tpl, const cJSON *context, const char *json,
                            size_t json_len, char **out_text, size_t *out_len, bool *out_raised) {
  *out_text = NULL;
  if (out_len) *out_len = 0;
  if (out_raised) *out_raised = false;
  if (context && !cJSON_IsObject(context))
    return LLMC_ERROR(INVALID_ARGUMENT, "chat template: the context must be a JSON object");
  llmc_arena_t *arena = llmc_arena_create();
  if (!arena) return LLMC_ERROR(OUT_OF_MEMORY, "chat template");
  jinja_eval_t *ev = llmc_arena_alloc(arena, sizeof *ev);
  ev->heap.arena = arena;
  ev->heap.limit = RENDER_MEMORY_LIMIT;
  ev->heap.trap = ev->trap = llmc_arena_alloc(arena, sizeof *ev->trap);
  ev->out = llmc_arena_alloc(arena, sizeof *ev->out);
  ev->out->heap = &ev->heap;
  if (setjmp(ev->trap->jmp)) {
    llmc_status_t status = ev->trap->status;
    if (out_raised) *out_raised = ev->trap->raised;
    llmc_arena_destroy(arena);
    return status;
  }
  if (context) {
    jinja_json_numbers_t numbers = {0};
    if (json) numbers = jinja_scan_json_numbers(&ev->heap, json, json_len);
    ev->globals = jinja_from_cjson(ev, context, json ? &numbers : NULL).dict;
  } else {
    ev->globals = jinja_dict_new(ev, JV_DICT).dict;
  }
  jinja_render(ev, tpl->body, tpl->n_body);
  jinja_str_t out = jinja_buf_str(ev->out);
  char *text = malloc(out.len + 1);
  if (!text) {
    llmc_arena_destroy(arena);
    return LLMC_ERROR(OUT_OF_MEMORY, "chat template output (%zu bytes)", out.len);
  }
  memcpy(text, out.data, out.len);
  text[out.len] = '\0';
  llmc_arena_destroy(arena);
  *out_text = text;
  if (out_len) *out_len = out.len;
  return LLMC_OK;
}

llmc_status_t llmc_chat_template_apply(const llmc_chat_template_t *tpl, const cJSON *context,
                                       char **out_text, size_t *out_len, bool *out_raised) {
  return render(tpl, context, NULL, 0, out_text, out_len, out_raised);
}

llmc_status_t llmc_chat_template_apply_json(const llmc_chat_template_t *tpl, const char *json,
                                            size_t len, char **out_text, size_t *out_len,
                                            bool *out_raised) {
  *out_text = NULL;
  if (out_raised) *out_raised = false;
  const char *end = NULL;
  cJSON *context = cJSON_ParseWithLengthOpts(json, len, &end, false);
  while (context && end < json + len && strchr(" \t\r\n", *end) && *end) end++;
  if (!context || end != json + len) { /* as json.loads, nothing may follow the value */
    cJSON_Delete(context);
    return LLMC_ERROR(INVALID_ARGUMENT, "the context is not valid JSON");
  }
  llmc_status_t status = render(tpl, context, json, len, out_text, out_len, out_raised);
  cJSON_Delete(context);
  return status;
}

llmc_status_t llmc_chat_template_render(const char *template_text, const cJSON *context,
                                        char **out_text, size_t *out_len, bool *out_raised) {
  *out_text = NULL;
  if (out_raised) *out_raised = false;
  llmc_chat_template_t *tpl;
  LLMC_PROPAGATE(llmc_chat_template_create(template_text, strlen(template_text), &tpl));
  llmc_status_t status = llmc_chat_template_apply(tpl, context, out_text, out_len, out_raised);
  llmc_chat_template_destroy(tpl);
  return status;
}
