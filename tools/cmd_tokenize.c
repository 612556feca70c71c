/* cmd_tokenize.c — `llmc tokenize`: the token ids of a text.
 *
 * One of the commands the project is checked with from outside
 * (DESIGN.md section 4), so its output is fixed: one JSON array of ids on
 * one line ("[1, 2, 3]"), nothing added around the text (no BOS / EOS).
 * SOURCE is a tokenizer.json, a GGUF file or a compiled model.so (which
 * carries its tokenizer, docs/model-so.md), told apart by their magic
 * bytes. Special tokens written in the text are parsed as
 * tokenizer.json's added tokens say, unless --no-parse-special asks for
 * llama.cpp's default (special tokens as plain text). --batch tokenizes
 * many texts with one load (a JSON array of strings on standard input,
 * one array of ids per line out), for scripts and the reference tests. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "commands.h"
#include "llmc/runtime.h"
#include "support/file.h"
#include "tokenizer.h"

static const char usage[] =
    "usage: llmc tokenize SOURCE [TEXT] [--no-parse-special] [--batch]\n"
    "\n"
    "Prints the token ids of TEXT (or of standard input) as one JSON array, e.g.\n"
    "[1, 2, 3]. Nothing is added around the text (no BOS / EOS). A TEXT that starts\n"
    "with '-' goes after \"--\".\n"
    "\n"
    "  SOURCE              a tokenizer.json, a .gguf, or a model.so (which carries\n"
    "                      its tokenizer)\n"
    "  --batch             standard input is a JSON array of strings; prints the ids\n"
    "                      of each, one array per line\n"
    "  --parse-special     special tokens written in the text (\"<|eot_id|>\", \"<s>\")\n"
    "                      become their ids, as Hugging Face does (the default)\n"
    "  --no-parse-special  they are tokenized as plain text, as llama.cpp does by\n"
    "                      default\n"
    "  -h, --help          this text\n";

/* Whether the file at path starts with the ELF magic (a model.so). */
static bool is_elf(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) return false;
  char magic[4] = {0};
  bool elf = fread(magic, 1, 4, f) == 4 && memcmp(magic,
                                                  "\x7f"
                                                  "ELF",
                                                  4) == 0;
  fclose(f);
  return elf;
}

/* The tokenizer a compiled model carries (or, in a model.json written by
 * hand, names), as llmc_tokenizer_load_for_model loads it. */
static llmc_status_t load_model_tokenizer(const char *path, llmc_tokenizer_t **out) {
  llmc_model_options_t options = {.weights_mode = LLMC_WEIGHTS_MMAP};
  llmc_model_t *model = NULL;
  LLMC_PROPAGATE(llmc_model_load(path, &options, &model));
  llmc_status_t st = llmc_tokenizer_load_for_model(model, out);
  llmc_model_destroy(model);
  return st;
}

/* Prints "[1, 2, 3]" and a newline. */
static void print_ids(const int32_t *ids, size_t n) {
  putchar('[');
  for (size_t i = 0; i < n; i++) printf(i ? ", %d" : "%d", ids[i]);
  puts("]");
}

static llmc_status_t encode_and_print(const llmc_tokenizer_t *tok, const char *text, size_t len,
                                      uint32_t flags) {
  int32_t *ids = NULL;
  size_t n = 0;
  LLMC_PROPAGATE(llmc_tokenizer_encode(tok, text, len, flags, &ids, &n));
  print_ids(ids, n);
  free(ids);
  return LLMC_OK;
}

/* --batch: every string of the JSON array json[0, len). */
static llmc_status_t encode_batch(const llmc_tokenizer_t *tok, const char *json, size_t len,
                                  uint32_t flags) {
  cJSON *texts = cJSON_ParseWithLength(json, len);
  llmc_status_t st = LLMC_OK;
  if (!cJSON_IsArray(texts))
    st = LLMC_ERROR(INVALID_ARGUMENT, "--batch: standard input is not a JSON array");
  const cJSON *t;
  int i = 0;
  cJSON_ArrayForEach(t, texts) {
    if (st) break;
    if (!cJSON_IsString(t))
      st = LLMC_ERROR(INVALID_ARGUMENT, "--batch: element %d is not a string", i);
    else
      st = encode_and_print(tok, t->valuestring, strlen(t->valuestring), flags);
    i++;
  }
  cJSON_Delete(texts);
  return st;
}

static llmc_status_t run_tokenize(const char *source, const char *text, size_t len, uint32_t flags,
                                  bool batch) {
  llmc_tokenizer_t *tok = NULL;
  LLMC_PROPAGATE(is_elf(source) ? load_model_tokenizer(source, &tok)
                                : llmc_tokenizer_load_file(source, &tok));
  llmc_status_t st =
      batch ? encode_batch(tok, text, len, flags) : encode_and_print(tok, text, len, flags);
  if (!st && fflush(stdout) != 0)
    st = LLMC_ERROR(IO, "writing standard output: %s", strerror(errno));
  llmc_tokenizer_destroy(tok);
  return st;
}

int llmc_cmd_tokenize(int argc, char **argv) {
  enum { OPT_PARSE = 1000, OPT_NO_PARSE, OPT_BATCH };
  static const struct option long_options[] = {
      {"parse-special", no_argument, NULL, OPT_PARSE},
      {"no-parse-special", no_argument, NULL, OPT_NO_PARSE},
      {"batch", no_argument, NULL, OPT_BATCH},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  uint32_t flags = LLMC_TOKENIZE_PARSE_SPECIAL;
  bool batch = false;
  optind = 0;
  for (int opt; (opt = getopt_long(argc, argv, ":h", long_options, NULL)) != -1;) {
    switch (opt) {
    case OPT_PARSE: flags |= LLMC_TOKENIZE_PARSE_SPECIAL; break;
    case OPT_NO_PARSE: flags &= ~(uint32_t)LLMC_TOKENIZE_PARSE_SPECIAL; break;
    case OPT_BATCH: batch = true; break;
    case 'h': fputs(usage, stdout); return 0;
    default: return llmc_cli_bad_option("tokenize", usage, opt, argv);
    }
  }
  int n_args = argc - optind;
  if (n_args < 1 || n_args > 2)
    return llmc_cli_usage_error("tokenize", usage,
                                "expected SOURCE and at most one TEXT, got %d arguments", n_args);
  if (batch && n_args == 2)
    return llmc_cli_usage_error("tokenize", usage,
                                "--batch reads the texts from standard input, not TEXT");
  const char *source = argv[optind];
  llmc_status_t st;
  if (n_args == 2) {
    st = run_tokenize(source, argv[optind + 1], strlen(argv[optind + 1]), flags, false);
  } else {
    char *text = NULL;
    size_t len = 0;
    st = llmc_file_read_stream(stdin, "standard input", &text, &len);
    if (!st) st = run_tokenize(source, text, len, flags, batch);
    free(text);
  }
  return st ? llmc_status_report(st, stderr) : 0;
}
