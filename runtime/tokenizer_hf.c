/* tokenizer_hf.c — loading a Hugging Face tokenizer.json.
 *
 * Reads the parts that decide ids and text: model (BPE: vocab, merges,
 * byte_fallback, unk_token, fuse_unk, ignore_merges), added_tokens,
 * normalizer, pre_tokenizer, decoder and post_processor. Each normalizer
 * and pre-tokenizer becomes text operations (tokenizer_internal.h), each
 * decoder a decode step. Anything the file asks for that llmc does not
 * implement (a WordPiece or Unigram model, BertNormalizer, BPE dropout,
 * ...) is an UNIMPLEMENTED error naming it, never a silently different
 * tokenization. Every field is type-checked; a malformed file is an
 * INVALID_ARGUMENT error that says where. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "support/file.h"
#include "tokenizer_internal.h"

/* A loader's state: the tokenizer being built and the file's name. */
typedef struct {
  llmc_tokenizer_t *tok;
  const char *name;
} loader_t;

bool llmc_tok_json_int(const cJSON *v, int64_t min, int64_t max, int64_t *out) {
  if (!cJSON_IsNumber(v)) return false;
  double d = v->valuedouble;
  if (!(d >= (double)min && d <= (double)max) || d != floor(d)) return false;
  *out = (int64_t)d;
  return true;
}

/* obj[key] as a boolean: absent or null gives def; another type is an error. */
static llmc_status_t json_bool(const loader_t *l, const cJSON *obj, const char *key, bool def,
                               const char *where, bool *out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = def;
  if (!v || cJSON_IsNull(v)) return LLMC_OK;
  if (!cJSON_IsBool(v))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.%s is not a boolean", l->name, where, key);
  *out = cJSON_IsTrue(v);
  return LLMC_OK;
}

/* obj[key] as a string, or NULL when absent or null; another type is an error. */
static llmc_status_t json_str(const loader_t *l, const cJSON *obj, const char *key,
                              const char *where, const char **out) {
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
  *out = NULL;
  if (!v || cJSON_IsNull(v)) return LLMC_OK;
  if (!cJSON_IsString(v))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.%s is not a string", l->name, where, key);
  *out = v->valuestring;
  return LLMC_OK;
}

/* The "type" of a component object. */
static llmc_status_t component_type(const loader_t *l, const cJSON *obj, const char *where,
                                    const char **out) {
  if (!cJSON_IsObject(obj))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s is not an object", l->name, where);
  LLMC_PROPAGATE(json_str(l, obj, "type", where, out));
  if (!*out) return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s has no \"type\"", l->name, where);
  return LLMC_OK;
}

static llmc_status_t unsupported(const loader_t *l, const char *what, const char *type) {
  return LLMC_ERROR(UNIMPLEMENTED, "%s: %s \"%s\" is not supported (docs/tokenizers.md)", l->name,
                    what, type);
}

/* A {"String": s} or {"Regex": r} pattern into op->re. */
static llmc_status_t set_pattern(const loader_t *l, llmc_tok_op_t *op, const cJSON *pattern,
                                 const char *where) {
  const cJSON *s = cJSON_GetObjectItemCaseSensitive(pattern, "String");
  const cJSON *r = cJSON_GetObjectItemCaseSensitive(pattern, "Regex");
  const cJSON *which = cJSON_IsString(s) ? s : r;
  if (!cJSON_IsObject(pattern) || !cJSON_IsString(which))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: %s.pattern: expected {\"String\": ...} or {\"Regex\": ...}", l->name,
                      where);
  size_t len = strlen(which->valuestring);
  if (len == 0) return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.pattern is empty", l->name, where);
  return llmc_status_annotate(llmc_tok_op_set_pattern(op, which->valuestring, len, which == s),
                              "%s: %s", l->name, where);
}

/* Declares `op`, a new operation of `kind` at the end of `ops`, or returns
 * an out-of-memory error from the calling function. */
#define APPEND_OR_FAIL(op, ops, kind)                 \
  llmc_tok_op_t *op = llmc_tok_ops_append(ops, kind); \
  if (!op) return LLMC_ERROR(OUT_OF_MEMORY, "%s: tokenizer operations", l->name)

static llmc_status_t parse_normalizer(const loader_t *l, const cJSON *n, const char *where) {
  if (!n || cJSON_IsNull(n)) return LLMC_OK;
  llmc_tok_ops_t *ops = &l->tok->normalizer;
  const char *type;
  LLMC_PROPAGATE(component_type(l, n, where, &type));
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(n, "normalizers"), *item;
    if (!cJSON_IsArray(list))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.normalizers is not an array", l->name, where);
    cJSON_ArrayForEach(item, list) LLMC_PROPAGATE(parse_normalizer(l, item, where));
    return LLMC_OK;
  }
  static const struct {
    const char *name;
    llmc_tok_op_kind_t kind;
  } simple[] = {{"NFC", LLMC_TOK_OP_NFC},
                {"NFD", LLMC_TOK_OP_NFD},
                {"NFKC", LLMC_TOK_OP_NFKC},
                {"NFKD", LLMC_TOK_OP_NFKD},
                {"Lowercase", LLMC_TOK_OP_LOWERCASE}};
  for (size_t i = 0; i < sizeof simple / sizeof simple[0]; i++) {
    if (strcmp(type, simple[i].name) != 0) continue;
    if (!llmc_tok_ops_append(ops, simple[i].kind))
      return LLMC_ERROR(OUT_OF_MEMORY, "%s: tokenizer operations", l->name);
    return LLMC_OK;
  }
  if (strcmp(type, "Prepend") == 0) {
    const char *text;
    LLMC_PROPAGATE(json_str(l, n, "prepend", where, &text));
    if (!text)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: Prepend without \"prepend\"", l->name, where);
    APPEND_OR_FAIL(op, ops, LLMC_TOK_OP_PREPEND);
    return llmc_tok_op_set_text(op, text, strlen(text));
  }
  if (strcmp(type, "Replace") == 0) {
    const char *content;
    LLMC_PROPAGATE(json_str(l, n, "content", where, &content));
    if (!content)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: Replace without \"content\"", l->name, where);
    APPEND_OR_FAIL(op, ops, LLMC_TOK_OP_REPLACE);
    LLMC_PROPAGATE(set_pattern(l, op, cJSON_GetObjectItemCaseSensitive(n, "pattern"), where));
    return llmc_tok_op_set_text(op, content, strlen(content));
  }
  if (strcmp(type, "Strip") == 0) {
    APPEND_OR_FAIL(op, ops, LLMC_TOK_OP_STRIP);
    LLMC_PROPAGATE(json_bool(l, n, "strip_left", true, where, &op->left));
    return json_bool(l, n, "strip_right", true, where, &op->right);
  }
  return unsupported(l, "normalizer", type);
}

static llmc_status_t parse_behavior(const loader_t *l, const cJSON *obj, const char *where,
                                    llmc_tok_split_behavior_t *out) {
  static const char *names[] = {"Removed", "Isolated", "MergedWithPrevious", "MergedWithNext",
                                "Contiguous"};
  const char *b;
  LLMC_PROPAGATE(json_str(l, obj, "behavior", where, &b));
  if (!b) {
    *out = LLMC_TOK_SPLIT_ISOLATED;
    return LLMC_OK;
  }
  for (int i = 0; i < LLMC_TOK_SPLIT_BEHAVIOR_COUNT; i++) {
    if (strcmp(b, names[i]) == 0) {
      *out = (llmc_tok_split_behavior_t)i;
      return LLMC_OK;
    }
  }
  return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: unknown split behavior \"%s\"", l->name, where, b);
}

/* Hugging Face's is_punctuation: ASCII punctuation or Unicode P*. */
static const char punctuation_pattern[] =
    "[\\p{P}\\x{21}-\\x{2F}\\x{3A}-\\x{40}\\x{5B}-\\x{60}\\x{7B}-\\x{7E}]";

static llmc_status_t parse_metaspace(const loader_t *l, const cJSON *p, const char *where) {
  llmc_tok_ops_t *ops = &l->tok->pre;
  const char *repl, *scheme;
  bool legacy_prefix, split;
  LLMC_PROPAGATE(json_str(l, p, "replacement", where, &repl));
  LLMC_PROPAGATE(json_str(l, p, "prepend_scheme", where, &scheme));
  LLMC_PROPAGATE(json_bool(l, p, "add_prefix_space", true, where, &legacy_prefix));
  LLMC_PROPAGATE(json_bool(l, p, "split", true, where, &split));
  if (!repl) repl = "\xE2\x96\x81";
  size_t rlen = strlen(repl);
  if (rlen == 0)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: empty Metaspace replacement", l->name, where);
  if (!scheme) scheme = legacy_prefix ? "always" : "never";
  if (strcmp(scheme, "always") && strcmp(scheme, "first") && strcmp(scheme, "never"))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: unknown prepend_scheme \"%s\"", l->name, where,
                      scheme);

  APPEND_OR_FAIL(rep, ops, LLMC_TOK_OP_REPLACE);
  LLMC_PROPAGATE(llmc_tok_op_set_pattern(rep, " ", 1, true));
  LLMC_PROPAGATE(llmc_tok_op_set_text(rep, repl, rlen));
  if (strcmp(scheme, "never") != 0) {
    APPEND_OR_FAIL(pre, ops, LLMC_TOK_OP_PREPEND);
    pre->if_missing = true;
    pre->first_only = strcmp(scheme, "first") == 0;
    LLMC_PROPAGATE(llmc_tok_op_set_text(pre, repl, rlen));
  }
  if (split) {
    APPEND_OR_FAIL(sp, ops, LLMC_TOK_OP_SPLIT);
    sp->behavior = LLMC_TOK_SPLIT_MERGED_WITH_NEXT;
    LLMC_PROPAGATE(llmc_tok_op_set_pattern(sp, repl, rlen, true));
  }
  return LLMC_OK;
}

static llmc_status_t parse_pre_tokenizer(const loader_t *l, const cJSON *p, const char *where) {
  if (!p || cJSON_IsNull(p)) return LLMC_OK;
  llmc_tok_ops_t *ops = &l->tok->pre;
  const char *type;
  LLMC_PROPAGATE(component_type(l, p, where, &type));
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "pretokenizers"), *item;
    if (!cJSON_IsArray(list))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.pretokenizers is not an array", l->name, where);
    cJSON_ArrayForEach(item, list) LLMC_PROPAGATE(parse_pre_tokenizer(l, item, where));
    return LLMC_OK;
  }
  if (strcmp(type, "Split") == 0) {
    APPEND_OR_FAIL(op, ops, LLMC_TOK_OP_SPLIT);
    LLMC_PROPAGATE(parse_behavior(l, p, where, &op->behavior));
    LLMC_PROPAGATE(json_bool(l, p, "invert", false, where, &op->invert));
    return set_pattern(l, op, cJSON_GetObjectItemCaseSensitive(p, "pattern"), where);
  }
  if (strcmp(type, "ByteLevel") == 0) {
    bool prefix, regex;
    LLMC_PROPAGATE(json_bool(l, p, "add_prefix_space", true, where, &prefix));
    LLMC_PROPAGATE(json_bool(l, p, "use_regex", true, where, &regex));
    return llmc_tok_ops_add_byte_level(ops, prefix, regex);
  }
  if (strcmp(type, "Metaspace") == 0) return parse_metaspace(l, p, where);
  if (strcmp(type, "Punctuation") == 0) {
    llmc_tok_split_behavior_t behavior;
    LLMC_PROPAGATE(parse_behavior(l, p, where, &behavior));
    return llmc_tok_ops_add_split(ops, punctuation_pattern, behavior, false);
  }
  if (strcmp(type, "Digits") == 0) {
    bool individual;
    LLMC_PROPAGATE(json_bool(l, p, "individual_digits", false, where, &individual));
    return llmc_tok_ops_add_split(
        ops, "\\p{N}", individual ? LLMC_TOK_SPLIT_ISOLATED : LLMC_TOK_SPLIT_CONTIGUOUS, false);
  }
  if (strcmp(type, "Whitespace") == 0)
    return llmc_tok_ops_add_split(ops, "\\w+|[^\\w\\s]+", LLMC_TOK_SPLIT_REMOVED, true);
  if (strcmp(type, "WhitespaceSplit") == 0)
    return llmc_tok_ops_add_split(ops, "\\s+", LLMC_TOK_SPLIT_REMOVED, false);
  if (strcmp(type, "BertPreTokenizer") == 0) {
    LLMC_PROPAGATE(llmc_tok_ops_add_split(ops, "\\s+", LLMC_TOK_SPLIT_REMOVED, false));
    return llmc_tok_ops_add_split(ops, punctuation_pattern, LLMC_TOK_SPLIT_ISOLATED, false);
  }
  return unsupported(l, "pre-tokenizer", type);
}

static llmc_status_t parse_decoder(const loader_t *l, const cJSON *d, const char *where) {
  if (!d || cJSON_IsNull(d)) return LLMC_OK;
  llmc_tokenizer_t *tok = l->tok;
  const char *type;
  LLMC_PROPAGATE(component_type(l, d, where, &type));
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(d, "decoders"), *item;
    if (!cJSON_IsArray(list))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.decoders is not an array", l->name, where);
    cJSON_ArrayForEach(item, list) LLMC_PROPAGATE(parse_decoder(l, item, where));
    return LLMC_OK;
  }
  if (strcmp(type, "ByteLevel") == 0)
    return llmc_tok_dec_add(tok, LLMC_TOK_DEC_BYTE_LEVEL, NULL, 0, NULL, 0);
  if (strcmp(type, "ByteFallback") == 0)
    return llmc_tok_dec_add(tok, LLMC_TOK_DEC_BYTE_FALLBACK, NULL, 0, NULL, 0);
  if (strcmp(type, "Fuse") == 0) return LLMC_OK; /* tokens are always joined */
  if (strcmp(type, "Replace") == 0) {
    const cJSON *pattern = cJSON_GetObjectItemCaseSensitive(d, "pattern");
    const cJSON *from = cJSON_GetObjectItemCaseSensitive(pattern, "String");
    const char *to;
    LLMC_PROPAGATE(json_str(l, d, "content", where, &to));
    if (!cJSON_IsString(from)) return unsupported(l, "decoder", "Replace with a Regex pattern");
    if (!to)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: Replace without \"content\"", l->name, where);
    return llmc_tok_dec_add(tok, LLMC_TOK_DEC_REPLACE, from->valuestring, strlen(from->valuestring),
                            to, strlen(to));
  }
  if (strcmp(type, "Strip") == 0) {
    const char *content;
    int64_t start = 0, stop = 0;
    LLMC_PROPAGATE(json_str(l, d, "content", where, &content));
    if (!llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(d, "start"), 0, 1 << 20, &start) ||
        !llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(d, "stop"), 0, 1 << 20, &stop))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: Strip needs integer start and stop", l->name,
                        where);
    if (!content || strcmp(content, " ") != 0 || start > 1 || stop != 0)
      return unsupported(l, "decoder", "Strip other than one leading space");
    tok->strip_leading_space = tok->strip_leading_space || start == 1;
    return LLMC_OK;
  }
  if (strcmp(type, "Metaspace") == 0) {
    const char *repl, *scheme;
    bool legacy_prefix;
    LLMC_PROPAGATE(json_str(l, d, "replacement", where, &repl));
    LLMC_PROPAGATE(json_str(l, d, "prepend_scheme", where, &scheme));
    LLMC_PROPAGATE(json_bool(l, d, "add_prefix_space", true, where, &legacy_prefix));
    if (!repl) repl = "\xE2\x96\x81";
    if (!repl[0])
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s: empty Metaspace replacement", l->name, where);
    tok->strip_leading_space = scheme ? strcmp(scheme, "never") != 0 : legacy_prefix;
    return llmc_tok_dec_add(tok, LLMC_TOK_DEC_REPLACE, repl, strlen(repl), " ", 1);
  }
  return unsupported(l, "decoder", type);
}

/* The ids of special token `name` in a TemplateProcessing's special_tokens. */
static llmc_status_t template_ids(const loader_t *l, const cJSON *specials, const char *name,
                                  bool before) {
  llmc_tokenizer_t *tok = l->tok;
  const cJSON *entry = cJSON_GetObjectItemCaseSensitive(specials, name);
  const cJSON *ids = cJSON_GetObjectItemCaseSensitive(entry, "ids"), *v;
  if (!cJSON_IsArray(ids))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: post_processor: special token \"%s\" has no ids",
                      l->name, name);
  cJSON_ArrayForEach(v, ids) {
    int64_t id;
    int32_t *n = before ? &tok->n_before : &tok->n_after;
    if (!llmc_tok_json_int(v, 0, tok->n_vocab - 1, &id))
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "%s: post_processor: \"%s\" has an id outside the vocabulary", l->name,
                        name);
    if (*n == LLMC_TOK_MAX_AROUND)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: post_processor adds more than %d tokens", l->name,
                        LLMC_TOK_MAX_AROUND);
    (before ? tok->before : tok->after)[(*n)++] = (int32_t)id;
  }
  return LLMC_OK;
}

/* A [token, id] pair of Bert/RobertaProcessing. */
static llmc_status_t pair_id(const loader_t *l, const cJSON *p, const char *key, int32_t *list,
                             int32_t *n) {
  const cJSON *pair = cJSON_GetObjectItemCaseSensitive(p, key);
  int64_t id;
  if (!cJSON_IsArray(pair) || cJSON_GetArraySize(pair) != 2 ||
      !llmc_tok_json_int(cJSON_GetArrayItem(pair, 1), 0, l->tok->n_vocab - 1, &id))
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: post_processor.%s: expected [token, id in the vocabulary]", l->name,
                      key);
  if (*n == LLMC_TOK_MAX_AROUND)
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: post_processor adds more than %d tokens", l->name,
                      LLMC_TOK_MAX_AROUND);
  list[(*n)++] = (int32_t)id;
  return LLMC_OK;
}

static llmc_status_t parse_post_processor(const loader_t *l, const cJSON *p, const char *where) {
  if (!p || cJSON_IsNull(p)) return LLMC_OK;
  llmc_tokenizer_t *tok = l->tok;
  const char *type;
  LLMC_PROPAGATE(component_type(l, p, where, &type));
  if (strcmp(type, "Sequence") == 0) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(p, "processors"), *item;
    if (!cJSON_IsArray(list))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.processors is not an array", l->name, where);
    cJSON_ArrayForEach(item, list) LLMC_PROPAGATE(parse_post_processor(l, item, where));
    return LLMC_OK;
  }
  if (strcmp(type, "ByteLevel") == 0) return LLMC_OK; /* offsets only */
  if (strcmp(type, "BertProcessing") == 0 || strcmp(type, "RobertaProcessing") == 0) {
    LLMC_PROPAGATE(pair_id(l, p, "cls", tok->before, &tok->n_before));
    return pair_id(l, p, "sep", tok->after, &tok->n_after);
  }
  if (strcmp(type, "TemplateProcessing") == 0) {
    const cJSON *single = cJSON_GetObjectItemCaseSensitive(p, "single"), *item;
    const cJSON *specials = cJSON_GetObjectItemCaseSensitive(p, "special_tokens");
    if (!cJSON_IsArray(single))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s.single is not an array", l->name, where);
    bool seen_text = false;
    cJSON_ArrayForEach(item, single) {
      const cJSON *special = cJSON_GetObjectItemCaseSensitive(item, "SpecialToken");
      if (cJSON_GetObjectItemCaseSensitive(item, "Sequence")) {
        seen_text = true;
        continue;
      }
      const cJSON *name = cJSON_GetObjectItemCaseSensitive(special, "id");
      if (!cJSON_IsString(name))
        return LLMC_ERROR(INVALID_ARGUMENT,
                          "%s: %s.single: expected SpecialToken or Sequence items", l->name, where);
      LLMC_PROPAGATE(template_ids(l, specials, name->valuestring, !seen_text));
    }
    return LLMC_OK;
  }
  return unsupported(l, "post-processor", type);
}

/* The model's vocabulary size: one more than the largest id in
 * model.vocab and added_tokens. Ids must be dense enough that a few
 * entries cannot make the tokenizer allocate for millions. */
static llmc_status_t vocab_size(const loader_t *l, const cJSON *vocab, const cJSON *added,
                                int32_t *out) {
  int64_t max = -1, id, entries = 0;
  const cJSON *v;
  cJSON_ArrayForEach(v, vocab) {
    entries++;
    if (!llmc_tok_json_int(v, 0, LLMC_TOK_MAX_VOCAB - 1, &id))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: model.vocab[\"%.60s\"]: not an id in [0, %d)",
                        l->name, v->string ? v->string : "?", LLMC_TOK_MAX_VOCAB);
    if (id > max) max = id;
  }
  cJSON_ArrayForEach(v, added) {
    entries++;
    if (!llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(v, "id"), 0, LLMC_TOK_MAX_VOCAB - 1,
                           &id))
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: added_tokens: an entry without an id in [0, %d)",
                        l->name, LLMC_TOK_MAX_VOCAB);
    if (id > max) max = id;
  }
  if (max < 0) return LLMC_ERROR(INVALID_ARGUMENT, "%s: the vocabulary is empty", l->name);
  if (max >= 2 * entries + 1024)
    return LLMC_ERROR(INVALID_ARGUMENT,
                      "%s: %lld tokens with ids up to %lld: the ids are too sparse", l->name,
                      (long long)entries, (long long)max);
  *out = (int32_t)(max + 1);
  return LLMC_OK;
}

static llmc_status_t parse_merges(const loader_t *l, const cJSON *merges) {
  llmc_tokenizer_t *tok = l->tok;
  if (!merges || cJSON_IsNull(merges)) return llmc_tok_merges_reserve(tok, 0);
  if (!cJSON_IsArray(merges))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: model.merges is not an array", l->name);
  LLMC_PROPAGATE(llmc_tok_merges_reserve(tok, (size_t)cJSON_GetArraySize(merges)));
  const cJSON *m;
  int index = 0;
  cJSON_ArrayForEach(m, merges) {
    if (cJSON_IsString(m)) { /* "left right" */
      LLMC_PROPAGATE(llmc_tok_merge_add_line(tok, m->valuestring, strlen(m->valuestring)));
    } else if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 && cJSON_IsString(m->child) &&
               cJSON_IsString(m->child->next) && m->child->valuestring[0] &&
               m->child->next->valuestring[0]) { /* ["left", "right"] */
      const char *a = m->child->valuestring, *b = m->child->next->valuestring;
      LLMC_PROPAGATE(llmc_tok_merge_add(tok, a, strlen(a), b, strlen(b)));
    } else {
      return LLMC_ERROR(INVALID_ARGUMENT,
                        "%s: model.merges[%d]: expected \"left right\" or [left, right]", l->name,
                        index);
    }
    index++;
  }
  return LLMC_OK;
}

static llmc_status_t parse_added_tokens(const loader_t *l, const cJSON *added) {
  const cJSON *a;
  int index = 0;
  cJSON_ArrayForEach(a, added) {
    char where[64];
    snprintf(where, sizeof where, "added_tokens[%d]", index++);
    const char *content;
    int64_t id = 0;
    bool special, normalized, lstrip, rstrip, single_word;
    LLMC_PROPAGATE(json_str(l, a, "content", where, &content));
    llmc_tok_json_int(cJSON_GetObjectItemCaseSensitive(a, "id"), 0, LLMC_TOK_MAX_VOCAB - 1,
                      &id); /* checked by vocab_size */
    LLMC_PROPAGATE(json_bool(l, a, "special", false, where, &special));
    LLMC_PROPAGATE(json_bool(l, a, "normalized", !special, where, &normalized));
    LLMC_PROPAGATE(json_bool(l, a, "lstrip", false, where, &lstrip));
    LLMC_PROPAGATE(json_bool(l, a, "rstrip", false, where, &rstrip));
    LLMC_PROPAGATE(json_bool(l, a, "single_word", false, where, &single_word));
    if (!content) return LLMC_ERROR(INVALID_ARGUMENT, "%s: %s has no content", l->name, where);
    LLMC_PROPAGATE(llmc_tok_added_add(l->tok, (int32_t)id, content, strlen(content), special,
                                      normalized, lstrip, rstrip, single_word));
  }
  return LLMC_OK;
}

/* Model options other than the vocabulary and merges. */
static llmc_status_t parse_model_options(const loader_t *l, const cJSON *model) {
  llmc_tokenizer_t *tok = l->tok;
  const char *unk, *prefix, *suffix;
  LLMC_PROPAGATE(json_bool(l, model, "byte_fallback", false, "model", &tok->byte_fallback));
  LLMC_PROPAGATE(json_bool(l, model, "fuse_unk", false, "model", &tok->fuse_unk));
  LLMC_PROPAGATE(json_bool(l, model, "ignore_merges", false, "model", &tok->ignore_merges));
  LLMC_PROPAGATE(json_str(l, model, "unk_token", "model", &unk));
  LLMC_PROPAGATE(json_str(l, model, "continuing_subword_prefix", "model", &prefix));
  LLMC_PROPAGATE(json_str(l, model, "end_of_word_suffix", "model", &suffix));
  if ((prefix && prefix[0]) || (suffix && suffix[0]))
    return unsupported(l, "BPE option",
                       prefix && prefix[0] ? "continuing_subword_prefix" : "end_of_word_suffix");
  const cJSON *dropout = cJSON_GetObjectItemCaseSensitive(model, "dropout");
  if (cJSON_IsNumber(dropout) && dropout->valuedouble > 0)
    return unsupported(l, "BPE option", "dropout");
  if (unk) {
    tok->unk_id = llmc_tok_find(tok, unk, strlen(unk));
    if (tok->unk_id < 0)
      return LLMC_ERROR(INVALID_ARGUMENT, "%s: model.unk_token \"%.60s\" is not in the vocabulary",
                        l->name, unk);
  }
  return LLMC_OK;
}

static llmc_status_t parse_root(loader_t *l, const cJSON *root) {
  if (!cJSON_IsObject(root)) return LLMC_ERROR(INVALID_ARGUMENT, "%s: not a JSON object", l->name);
  const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
  if (!cJSON_IsObject(model))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: no \"model\" object", l->name);
  const char *type;
  LLMC_PROPAGATE(json_str(l, model, "type", "model", &type));
  if (type && strcmp(type, "BPE") != 0) return unsupported(l, "model", type);
  const cJSON *vocab = cJSON_GetObjectItemCaseSensitive(model, "vocab");
  if (!cJSON_IsObject(vocab))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: model.vocab is not an object", l->name);
  const cJSON *added = cJSON_GetObjectItemCaseSensitive(root, "added_tokens");
  if (added && !cJSON_IsNull(added) && !cJSON_IsArray(added))
    return LLMC_ERROR(INVALID_ARGUMENT, "%s: added_tokens is not an array", l->name);

  int32_t n_vocab = 0;
  LLMC_PROPAGATE(vocab_size(l, vocab, added, &n_vocab));
  LLMC_PROPAGATE(llmc_tok_create(l->name, LLMC_TOK_MODEL_BPE, n_vocab, &l->tok));
  const cJSON *v;
  cJSON_ArrayForEach(v, vocab) LLMC_PROPAGATE(
      llmc_tok_token_set(l->tok, (int32_t)v->valuedouble, v->string, strlen(v->string), 0));
  LLMC_PROPAGATE(parse_added_tokens(l, added));
  LLMC_PROPAGATE(parse_model_options(l, model));
  LLMC_PROPAGATE(parse_merges(l, cJSON_GetObjectItemCaseSensitive(model, "merges")));
  LLMC_PROPAGATE(
      parse_normalizer(l, cJSON_GetObjectItemCaseSensitive(root, "normalizer"), "normalizer"));
  LLMC_PROPAGATE(parse_pre_tokenizer(l, cJSON_GetObjectItemCaseSensitive(root, "pre_tokenizer"),
                                     "pre_tokenizer"));
  LLMC_PROPAGATE(parse_decoder(l, cJSON_GetObjectItemCaseSensitive(root, "decoder"), "decoder"));
  LLMC_PROPAGATE(parse_post_processor(l, cJSON_GetObjectItemCaseSensitive(root, "post_processor"),
                                      "post_processor"));
  if (l->tok->n_before) l->tok->bos_id = l->tok->before[0];
  if (l->tok->n_after) l->tok->eos_id = l->tok->after[l->tok->n_after - 1];
  return llmc_tok_finish(l->tok);
}

llmc_status_t llmc_tokenizer_parse_hf_json(const char *json, size_t len, const char *name,
                                           llmc_tokenizer_t **out) {
  *out = NULL;
  cJSON *root = cJSON_ParseWithLength(json, len);
  if (!root) return LLMC_ERROR(INVALID_ARGUMENT, "%s: not valid JSON", name);
  loader_t l = {NULL, name};
  llmc_status_t status = parse_root(&l, root);
  cJSON_Delete(root);
  if (status) {
    llmc_tokenizer_destroy(l.tok);
    return status;
  }
  *out = l.tok;
  return LLMC_OK;
}

llmc_status_t llmc_tokenizer_load_hf_json(const char *path, llmc_tokenizer_t **out) {
  *out = NULL;
  char *data;
  size_t len;
  LLMC_PROPAGATE(llmc_file_read_all(path, &data, &len));
  llmc_status_t status = llmc_tokenizer_parse_hf_json(data, len, path, out);
  free(data);
  return status;
}
