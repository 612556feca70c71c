/* model_doc.h — reading and checking model.json documents in the importer
 * tests (test_import_hf.c, test_import_gguf.c): accessors that return NULL
 * or NaN for anything missing, and the structural rules of
 * docs/model-json.md that every imported document must follow.
 *
 * Like check.h, everything is static inline: each test is one translation
 * unit and uses what it needs. Include check.h first. */
#ifndef LLMC_TESTS_UNIT_MODEL_DOC_H
#define LLMC_TESTS_UNIT_MODEL_DOC_H

#include <cjson/cJSON.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* The ops of ir/ops.def with their argument counts. */
static const struct {
  const char *name;
  int min_args, max_args;
} model_doc_ops[] = {
#define OP(e, name, amin, amax, flags) {name, amin, amax},
#include "ir/ops.def"
#undef OP
};

static inline cJSON *item(const cJSON *obj, const char *key) {
  return cJSON_GetObjectItemCaseSensitive(obj, key);
}

static inline const char *str(const cJSON *obj, const char *key) {
  const cJSON *v = item(obj, key);
  return cJSON_IsString(v) ? v->valuestring : NULL;
}

static inline double num(const cJSON *obj, const char *key) {
  const cJSON *v = item(obj, key);
  return cJSON_IsNumber(v) ? v->valuedouble : NAN;
}

/* The element of doc[list] whose string member key equals value, or NULL. */
static inline cJSON *find_by(const cJSON *doc, const char *list, const char *key,
                             const char *value) {
  const cJSON *e;
  cJSON_ArrayForEach(e, item(doc, list)) {
    const char *s = str(e, key);
    if (s && strcmp(s, value) == 0) return (cJSON *)e;
  }
  return NULL;
}

static inline cJSON *node(const cJSON *doc, const char *id) {
  return find_by(doc, "graph", "id", id);
}

static inline cJSON *tensor(const cJSON *doc, const char *name) {
  return find_by(doc, "tensors", "name", name);
}

/* Argument i of a graph node, or NULL. */
static inline const char *arg(const cJSON *node_, int i) {
  const cJSON *a = cJSON_GetArrayItem(item(node_, "args"), i);
  return cJSON_IsString(a) ? a->valuestring : NULL;
}

static inline double attr(const cJSON *node_, const char *key) {
  return num(item(node_, "attrs"), key);
}

/* Graph nodes whose op is op. */
static inline int count_op(const cJSON *doc, const char *op) {
  int n = 0;
  const cJSON *e;
  cJSON_ArrayForEach(e, item(doc, "graph")) n += str(e, "op") && strcmp(str(e, "op"), op) == 0;
  return n;
}

/* The rules every imported document follows (docs/model-json.md): format
 * and version; tensors named uniquely, with a dtype, a shape and either
 * inline data or a place in a weight file, and every one used; graph nodes
 * with unique ids, known ops with a valid argument count, and arguments
 * that are tensors or earlier nodes; one output, and an attention and a KV
 * store per layer. `what` names the document in failure messages. */
static inline void check_model_doc(const cJSON *doc, const char *what) {
  CHECK_EQ_STR(str(doc, "format"), "llmc-model");
  CHECK_EQ_NUM(num(doc, "version"), 1);
  CHECK(cJSON_IsObject(item(doc, "config")));
  const cJSON *t, *n, *a;
  cJSON_ArrayForEach(t, item(doc, "tensors")) {
    CHECK(str(t, "name") && str(t, "dtype") && cJSON_IsArray(item(t, "shape")));
    if (!str(t, "name")) continue;
    CHECK(item(t, "data") || (num(t, "file") >= 0 && num(t, "offset") >= 0));
    CHECK(tensor(doc, str(t, "name")) == t); /* names unique */
    bool used = false;
    cJSON_ArrayForEach(n, item(doc, "graph")) cJSON_ArrayForEach(a, item(n, "args")) used |=
        cJSON_IsString(a) && strcmp(a->valuestring, str(t, "name")) == 0;
    if (!used) fprintf(stderr, "%s: tensor %s is never used\n", what, str(t, "name"));
    CHECK(used);
  }
  /* Graph order: every argument is a tensor or the id of an earlier node. */
  int index = 0;
  cJSON_ArrayForEach(n, item(doc, "graph")) {
    const char *id = str(n, "id"), *op = str(n, "op");
    CHECK(id && op);
    if (!id || !op) continue;
    CHECK(node(doc, id) == n); /* ids unique */
    CHECK(tensor(doc, id) == NULL);
    int n_args = cJSON_GetArraySize(item(n, "args"));
    bool known = false;
    for (size_t i = 0; i < sizeof model_doc_ops / sizeof model_doc_ops[0]; i++)
      if (strcmp(model_doc_ops[i].name, op) == 0)
        known = n_args >= model_doc_ops[i].min_args && n_args <= model_doc_ops[i].max_args;
    if (!known) fprintf(stderr, "%s: node %s: op %s with %d args\n", what, id, op, n_args);
    CHECK(known);
    cJSON_ArrayForEach(a, item(n, "args")) {
      CHECK(cJSON_IsString(a));
      if (!cJSON_IsString(a)) continue;
      bool defined = tensor(doc, a->valuestring) != NULL;
      int j = 0;
      const cJSON *m;
      cJSON_ArrayForEach(m, item(doc, "graph")) {
        if (j++ >= index) break;
        defined |= str(m, "id") && strcmp(str(m, "id"), a->valuestring) == 0;
      }
      if (!defined)
        fprintf(stderr, "%s: node %s: argument %s not defined before use\n", what, id,
                a->valuestring);
      CHECK(defined);
    }
    index++;
  }
  CHECK_EQ_NUM(count_op(doc, "output"), 1);
  CHECK_EQ_NUM(count_op(doc, "attention"), num(item(doc, "config"), "n_layers"));
  CHECK_EQ_NUM(count_op(doc, "kv_store"), num(item(doc, "config"), "n_layers"));
}

#endif /* LLMC_TESTS_UNIT_MODEL_DOC_H */
