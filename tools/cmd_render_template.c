/* cmd_render_template.c — `llmc render-template`: renders a chat template
 * with the variables of a JSON file and prints exactly the result.
 *
 * One of the commands the project is checked with from outside (DESIGN.md
 * section 4): stdout carries the rendered bytes and nothing else (no added
 * newline), so a test can compare them with what jinja2 renders. The
 * template's own raise_exception() is told apart from every other failure
 * by the exit status, 3, with its message on stderr. */
#include <getopt.h>
#include <stdlib.h>

#include "chat_template.h"
#include "cli.h"
#include "commands.h"
#include "support/file.h"

static const char usage[] =
    "usage: llmc render-template --template FILE --context CTX.json\n"
    "\n"
    "Renders the Jinja2 chat template in FILE as Hugging Face's apply_chat_template\n"
    "does, with the members of the JSON object in CTX.json as its variables\n"
    "(messages, add_generation_prompt, bos_token, eos_token, tools, anything else),\n"
    "and prints exactly the rendered text.\n"
    "\n"
    "  -t, --template FILE  the template text (e.g. a tokenizer_config.json's chat_template)\n"
    "  -c, --context FILE   a JSON object: the template's variables\n"
    "  -h, --help           this text\n"
    "\n"
    "Exit status: 0 rendered, 1 an error (the template's line:column on stderr),\n"
    "2 bad usage, 3 the template called raise_exception (its message on stderr).\n";

/* Reads, parses and renders; on success *out_text and *out_len hold the output. */
static llmc_status_t render(const char *template_path, const char *context_path, char **out_text,
                            size_t *out_len, bool *out_raised) {
  char *text = NULL, *context = NULL;
  size_t text_len, context_len;
  llmc_chat_template_t *tpl = NULL;
  llmc_status_t st = llmc_file_read_all(template_path, &text, &text_len);
  if (!st) st = llmc_file_read_all(context_path, &context, &context_len);
  if (!st) {
    st = llmc_chat_template_create(text, text_len, &tpl);
    if (st) st = llmc_status_annotate(st, "%s", template_path);
  }
  if (!st) {
    st = llmc_chat_template_apply_json(tpl, context, context_len, out_text, out_len, out_raised);
    if (st && !*out_raised)
      st = llmc_status_annotate(st, "%s with %s", template_path, context_path);
  }
  llmc_chat_template_destroy(tpl);
  free(context);
  free(text);
  return st;
}

int llmc_cmd_render_template(int argc, char **argv) {
  static const struct option options[] = {{"template", required_argument, NULL, 't'},
                                          {"context", required_argument, NULL, 'c'},
                                          {"help", no_argument, NULL, 'h'},
                                          {NULL, 0, NULL, 0}};
  const char *template_path = NULL, *context_path = NULL;
  int opt;
  while ((opt = getopt_long(argc, argv, ":t:c:h", options, NULL)) != -1) {
    switch (opt) {
    case 't': template_path = optarg; break;
    case 'c': context_path = optarg; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("render-template", usage, opt, argv);
    }
  }
  if (optind < argc)
    return llmc_cli_usage_error("render-template", usage, "unexpected argument '%s'", argv[optind]);
  if (!template_path || !context_path)
    return llmc_cli_usage_error("render-template", usage, "--template and --context are required");

  char *text = NULL;
  size_t len = 0;
  bool raised = false;
  llmc_status_t st = render(template_path, context_path, &text, &len, &raised);
  if (st && raised) {
    fprintf(stderr, "llmc render-template: raise_exception: %s\n", llmc_status_message(st));
    llmc_status_free(st);
    return 3;
  }
  if (st) return llmc_status_report(st, stderr);
  int ok = fwrite(text, 1, len, stdout) == len;
  ok &= fflush(stdout) == 0;
  free(text);
  if (!ok) return llmc_status_report(LLMC_ERROR(IO, "error writing the output"), stderr);
  return 0;
}
