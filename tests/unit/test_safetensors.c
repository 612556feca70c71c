/* test_safetensors.c — the safetensors header reader: a real checkpoint from
 * tests/data, hand-made files that break each rule the reader checks, and a
 * sharded checkpoint with its index. Scratch files go to a fresh folder
 * under /tmp. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "formats/safetensors.h"

static char dir[] = "/tmp/llmc_test_safetensors_XXXXXX";

/* Writes a safetensors file: the header text, then data_len zero bytes. */
static const char *write_st(const char *name, const char *header, size_t data_len) {
  static char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "wb");
  uint64_t n = strlen(header);
  unsigned char len[8];
  for (int i = 0; i < 8; i++) len[i] = (unsigned char)(n >> (8 * i));
  fwrite(len, 1, 8, f);
  fwrite(header, 1, n, f);
  for (size_t i = 0; i < data_len; i++) fputc(0, f);
  fclose(f);
  return path;
}

static void write_text(const char *name, const char *text) {
  char path[128];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "w");
  fputs(text, f);
  fclose(f);
}

/* Opening `path` must fail with `code` and a message containing want1 and
 * want2 (NULL: anything). */
static void expect_error(int line, const char *path, llmc_status_code_t code, const char *want1,
                         const char *want2) {
  llmc_safetensors_t *st = NULL;
  size_t n = strlen(path);
  llmc_status_t s = n > 5 && strcmp(path + n - 5, ".json") == 0
                        ? llmc_safetensors_open_index(path, &st)
                        : llmc_safetensors_open(path, &st);
  const char *msg = llmc_status_message(s);
  if (!s || llmc_status_code(s) != code || (want1 && !strstr(msg, want1)) ||
      (want2 && !strstr(msg, want2))) {
    fprintf(stderr, "%s:%d: got code %d \"%s\", expected code %d with \"%s\" and \"%s\"\n",
            __FILE__, line, llmc_status_code(s), msg, code, want1 ? want1 : "", want2 ? want2 : "");
    check_failures++;
  }
  CHECK(st == NULL);
  llmc_status_free(s);
  llmc_safetensors_destroy(st);
}
#define EXPECT_ERROR(path, code, w1, w2) expect_error(__LINE__, path, LLMC_STATUS_##code, w1, w2)

static void test_real_checkpoint(void) {
  llmc_safetensors_t *st = NULL;
  llmc_status_t s = llmc_safetensors_open("tests/data/hf/llama/model.safetensors", &st);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  if (s) {
    llmc_status_free(s);
    return;
  }
  CHECK_EQ_INT(st->n_files, 1);
  CHECK_EQ_INT(st->n_tensors, 30); /* embed, lm_head, norm, 3 layers x 9 */
  for (int i = 1; i < st->n_tensors; i++)
    CHECK(strcmp(st->tensors[i - 1].name, st->tensors[i].name) < 0);
  /* The header is 3152 bytes; lm_head is the first tensor of the data. */
  const llmc_safetensors_tensor_t *t = llmc_safetensors_find(st, "lm_head.weight");
  CHECK(t != NULL);
  if (t) {
    CHECK_EQ_STR(t->dtype, "f32");
    CHECK_EQ_STR(t->st_dtype, "F32");
    CHECK_EQ_INT(t->rank, 2);
    CHECK_EQ_INT(t->shape[0], 512);
    CHECK_EQ_INT(t->shape[1], 128);
    CHECK_EQ_INT(t->offset, 8 + 3152);
    CHECK_EQ_INT(t->nbytes, 512 * 128 * 4);
    CHECK_EQ_INT(t->file, 0);
  }
  t = llmc_safetensors_find(st, "model.norm.weight");
  CHECK(t && t->rank == 1 && t->shape[0] == 128 && t->offset == 8 + 3152 + 2297344 - 512);
  CHECK(llmc_safetensors_find(st, "model.layers.3.mlp.up_proj.weight") == NULL);
  CHECK(llmc_safetensors_find(st, "__metadata__") == NULL);
  llmc_safetensors_destroy(st);

  s = llmc_safetensors_open_folder("tests/data/hf/qwen2", &st);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  if (!s) {
    CHECK_EQ_INT(st->n_tensors, 1 + 1 + 3 * 12);
    CHECK(llmc_safetensors_find(st, "model.layers.2.self_attn.q_proj.bias") != NULL);
  }
  llmc_status_free(s);
  llmc_safetensors_destroy(st);
}

static void test_dtypes(void) {
  const char *path = write_st("dtypes.safetensors",
                              "{\"__metadata__\":{\"format\":\"pt\"},"
                              "\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},"
                              "\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[12,20]},"
                              "\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[20,28]},"
                              "\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[28,28]}}",
                              28);
  llmc_safetensors_t *st = NULL;
  llmc_status_t s = llmc_safetensors_open(path, &st);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  if (s) {
    llmc_status_free(s);
    return;
  }
  CHECK_EQ_INT(st->n_tensors, 4);
  const llmc_safetensors_tensor_t *h = llmc_safetensors_find(st, "h");
  const llmc_safetensors_tensor_t *b = llmc_safetensors_find(st, "b");
  const llmc_safetensors_tensor_t *i = llmc_safetensors_find(st, "i");
  const llmc_safetensors_tensor_t *e = llmc_safetensors_find(st, "e");
  CHECK(h && b && i && e);
  if (h && b && i && e) {
    uint64_t data = 8 + strlen("{\"__metadata__\":{\"format\":\"pt\"},") +
                    strlen("\"h\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]},") +
                    strlen("\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[12,20]},") +
                    strlen("\"i\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[20,28]},") +
                    strlen("\"e\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[28,28]}}");
    CHECK_EQ_STR(h->dtype, "f16");
    CHECK_EQ_INT(h->offset, data);
    CHECK_EQ_INT(h->nbytes, 12);
    CHECK_EQ_STR(b->dtype, "bf16");
    CHECK_EQ_INT(b->offset, data + 12);
    CHECK(i->dtype == NULL); /* readable header, but llmc cannot use an I64 tensor */
    CHECK_EQ_STR(i->st_dtype, "I64");
    CHECK_EQ_INT(i->rank, 0);
    CHECK_EQ_INT(e->nbytes, 0);
  }
  llmc_safetensors_destroy(st);
}

static void test_bad_files(void) {
  char missing[128];
  snprintf(missing, sizeof missing, "%s/missing.safetensors", dir);
  EXPECT_ERROR(missing, NOT_FOUND, "missing.safetensors", NULL);

  const char *p = write_st("short.safetensors", "", 0);
  FILE *f = fopen(p, "wb");
  fputs("abc", f);
  fclose(f);
  EXPECT_ERROR(p, INVALID_ARGUMENT, "short.safetensors", "too short");

  /* Header length past the end of the file, and absurdly large. */
  p = write_st("pastend.safetensors", "{}", 0);
  f = fopen(p, "r+b");
  fputc(100, f);
  fclose(f);
  EXPECT_ERROR(p, INVALID_ARGUMENT, "pastend.safetensors", "header length 100");
  f = fopen(p, "r+b");
  fseek(f, 5, SEEK_SET);
  fputc(1, f); /* 2^40 + 100 */
  fclose(f);
  EXPECT_ERROR(p, INVALID_ARGUMENT, "pastend.safetensors", "absurd");

  EXPECT_ERROR(write_st("notjson.safetensors", "{\"a\": [1,", 0), INVALID_ARGUMENT,
               "notjson.safetensors", "not a JSON object");
  EXPECT_ERROR(write_st("array.safetensors", "[1, 2]", 0), INVALID_ARGUMENT, "array.safetensors",
               "not a JSON object");
  EXPECT_ERROR(write_st("trunc.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]}}", 8),
               INVALID_ARGUMENT, "tensor w", "truncated");
  EXPECT_ERROR(write_st("size.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[3],\"data_offsets\":[0,16]}}", 16),
               INVALID_ARGUMENT, "tensor w", "expected 12");
  EXPECT_ERROR(write_st("overlap.safetensors",
                        "{\"a\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[0,16]},"
                        "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}",
                        16),
               INVALID_ARGUMENT, "tensors a and b overlap", NULL);
  EXPECT_ERROR(write_st("backwards.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[8,4]}}", 16),
               INVALID_ARGUMENT, "tensor w", "backwards");
  EXPECT_ERROR(write_st("negoff.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 16),
               INVALID_ARGUMENT, "tensor w", "data_offsets");
  EXPECT_ERROR(write_st("negdim.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}", 16),
               INVALID_ARGUMENT, "tensor w", "shape[0]");
  EXPECT_ERROR(write_st("fracdim.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,4]}}", 16),
               INVALID_ARGUMENT, "tensor w", "shape[1]");
  EXPECT_ERROR(
      write_st("strdim.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[\"4\"],\"data_offsets\":[0,16]}}", 16),
      INVALID_ARGUMENT, "tensor w", "shape[0]");
  EXPECT_ERROR(
      write_st("rank5.safetensors",
               "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1],\"data_offsets\":[0,4]}}", 4),
      INVALID_ARGUMENT, "tensor w", "rank 5");
  EXPECT_ERROR(write_st("dtype.safetensors",
                        "{\"w\":{\"dtype\":\"Q4\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
               INVALID_ARGUMENT, "tensor w", "unknown dtype \"Q4\"");
  EXPECT_ERROR(write_st("nodtype.safetensors", "{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4),
               INVALID_ARGUMENT, "tensor w", "dtype");
  EXPECT_ERROR(write_st("overflow.safetensors",
                        "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],"
                        "\"data_offsets\":[0,4]}}",
                        4),
               INVALID_ARGUMENT, "tensor w", "overflows");
}

static void test_sharded(void) {
  write_st("model-00001-of-00002.safetensors",
           "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
           "\"c\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
           12);
  write_st("model-00002-of-00002.safetensors",
           "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", 6);
  write_text("model.safetensors.index.json",
             "{\"metadata\":{\"total_size\":18},\"weight_map\":{"
             "\"a\":\"model-00001-of-00002.safetensors\","
             "\"b\":\"model-00002-of-00002.safetensors\","
             "\"c\":\"model-00001-of-00002.safetensors\"}}");
  llmc_safetensors_t *st = NULL;
  llmc_status_t s = llmc_safetensors_open_folder(dir, &st);
  CHECK_EQ_STR(llmc_status_message(s), "OK");
  if (!s) {
    CHECK_EQ_INT(st->n_files, 2);
    CHECK_EQ_INT(st->n_tensors, 3);
    const llmc_safetensors_tensor_t *a = llmc_safetensors_find(st, "a");
    const llmc_safetensors_tensor_t *b = llmc_safetensors_find(st, "b");
    CHECK(a && b);
    if (a && b) {
      CHECK(strstr(st->files[a->file], "model-00001-of-00002.safetensors") != NULL);
      CHECK(strstr(st->files[b->file], "model-00002-of-00002.safetensors") != NULL);
      CHECK_EQ_STR(b->dtype, "bf16");
    }
  }
  llmc_status_free(s);
  llmc_safetensors_destroy(st);

  char index[128];
  snprintf(index, sizeof index, "%s/bad.index.json", dir);
  write_text("bad.index.json", "{\"weight_map\":{\"a\":\"model-00002-of-00002.safetensors\"}}");
  EXPECT_ERROR(index, INVALID_ARGUMENT, "weight_map/a", "model-00002-of-00002.safetensors");
  write_text("bad.index.json", "{\"weight_map\":{\"a\":\"../etc/passwd\"}}");
  EXPECT_ERROR(index, INVALID_ARGUMENT, "weight_map/a", "outside the folder");
  write_text("bad.index.json", "{\"weight_map\":{\"a\":\"gone.safetensors\"}}");
  EXPECT_ERROR(index, NOT_FOUND, "gone.safetensors", NULL);
  write_text("bad.index.json", "{\"weight_map\": 3}");
  EXPECT_ERROR(index, INVALID_ARGUMENT, "bad.index.json", "weight_map");
  write_st("dup.safetensors", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}",
           4);
  write_text("bad.index.json",
             "{\"weight_map\":{\"a\":\"model-00001-of-00002.safetensors\","
             "\"x\":\"dup.safetensors\"}}");
  EXPECT_ERROR(index, INVALID_ARGUMENT, "tensor a appears twice", NULL);
}

int main(void) {
  if (!mkdtemp(dir)) return 1;
  test_real_checkpoint();
  test_dtypes();
  test_bad_files();
  test_sharded();
  char cmd[sizeof dir + 16];
  snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
  CHECK(system(cmd) == 0);
  return check_report("test_safetensors");
}
