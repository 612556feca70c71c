/* gguf.h — reading GGUF files (versions 2 and 3), as llama.cpp writes them.
 *
 * The file is mapped read-only and parsed once: the header, every metadata
 * key/value and every tensor descriptor are validated (counts, lengths,
 * types, offsets and sizes against the file size) so that nothing read
 * later can run past the end of the mapping. Strings and array payloads
 * point into the mapping (they are not NUL-terminated); tensor data is
 * never copied. Used by the compiler's GGUF importer and by the tokenizer.
 */
#ifndef LLMC_FORMATS_GGUF_H
#define LLMC_FORMATS_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "support/status.h"

/* Metadata value types, numbered as in the GGUF specification. */
typedef enum {
  LLMC_GGUF_UINT8 = 0,
  LLMC_GGUF_INT8 = 1,
  LLMC_GGUF_UINT16 = 2,
  LLMC_GGUF_INT16 = 3,
  LLMC_GGUF_UINT32 = 4,
  LLMC_GGUF_INT32 = 5,
  LLMC_GGUF_FLOAT32 = 6,
  LLMC_GGUF_BOOL = 7,
  LLMC_GGUF_STRING = 8,
  LLMC_GGUF_ARRAY = 9,
  LLMC_GGUF_UINT64 = 10,
  LLMC_GGUF_INT64 = 11,
  LLMC_GGUF_FLOAT64 = 12,
  LLMC_GGUF_TYPE_COUNT
} llmc_gguf_type_t;

/* Tensor types, numbered as ggml's ggml_type (only those llmc computes
 * with; the reader knows the block sizes of every type in the GGUF
 * specification, see llmc_ggml_type_name). */
typedef enum {
  LLMC_GGML_F32 = 0,
  LLMC_GGML_F16 = 1,
  LLMC_GGML_Q4_0 = 2,
  LLMC_GGML_Q8_0 = 8,
  LLMC_GGML_Q4_K = 12,
  LLMC_GGML_Q6_K = 14,
  LLMC_GGML_BF16 = 30,
} llmc_ggml_type_t;

/* A string inside the mapped file: len bytes at data, not NUL-terminated. */
typedef struct {
  const char *data;
  uint64_t len;
} llmc_gguf_str_t;

typedef struct {
  llmc_gguf_str_t key;
  llmc_gguf_type_t type;      /* for arrays: LLMC_GGUF_ARRAY */
  llmc_gguf_type_t elem_type; /* arrays only: the element type (never ARRAY: nesting is rejected) */
  uint64_t n;                 /* arrays only: element count */
  const uint8_t *value;       /* the value (scalars, strings: the 8-byte length then the bytes), or the
                                 first array element, in the mapping */
  const uint64_t *str_offsets; /* string arrays only: [n] offset of each element (its 8-byte length) from value */
} llmc_gguf_kv_t;

typedef struct {
  llmc_gguf_str_t name;
  uint32_t n_dims;
  uint64_t dims[4];  /* ggml order: dims[0] is the innermost (row length) */
  uint32_t type;     /* llmc_ggml_type_t, or another ggml type number */
  uint64_t offset;   /* absolute byte offset of the data in the file */
  uint64_t nbytes;   /* 0 for a type llmc does not know the size of (then only offset is
                        checked against the file; llmc_gguf_tensor_data refuses it) */
} llmc_gguf_tensor_t;

typedef struct llmc_gguf {
  char *path;            /* owned copy, for messages */
  const uint8_t *map;    /* the whole file, mapped read-only (or the caller's buffer) */
  uint64_t size;
  bool owns_map;         /* unmapped by close */
  uint32_t version;      /* 2 or 3 */
  uint64_t alignment;    /* general.alignment, default 32 */
  uint64_t data_offset;  /* start of the tensor data section */
  uint64_t n_kv;
  llmc_gguf_kv_t *kv;    /* [n_kv] owned, with each string array's str_offsets */
  uint64_t n_tensors;
  llmc_gguf_tensor_t *tensors; /* [n_tensors] owned */
} llmc_gguf_t;

/* Maps and parses the file at path. Errors name the file and what is wrong
 * ("x.gguf: tensor 3 (blk.0.attn_q.weight): data [a, b) past the end of the
 * file (size c)"). What is checked: the magic, version 2 or 3 (1 and
 * big-endian files are refused by name), counts against the bytes that
 * are left (no allocation is sized by an unchecked count), string and
 * array lengths, value types (an unknown one names its key; arrays of
 * arrays are refused), booleans 0 or 1, unique non-empty keys and tensor
 * names, general.alignment (an integer, a nonzero power of two), tensor
 * dims (1 to 4, each > 0, element count within int64), a known type's row
 * length a multiple of its block, offsets multiples of the alignment, and
 * every tensor's bytes inside the file. A tensor of a type the reader does
 * not know stays in the table (nbytes 0) so that a file with one exotic
 * tensor still opens; asking for its data is the error. */
llmc_status_t llmc_gguf_open(const char *path, llmc_gguf_t **out);
/* Parses size bytes at data (not copied; must outlive the result), with
 * every check llmc_gguf_open makes; `name` is used in messages. For the
 * tokenizer a model.so embeds (runtime/tokenizer.c), fuzzing and tests. */
llmc_status_t llmc_gguf_parse(const uint8_t *data, uint64_t size, const char *name, llmc_gguf_t **out);
/* Frees g (and unmaps the file if it mapped it). NULL is fine. */
void llmc_gguf_close(llmc_gguf_t *g);

/* The data of tensor t (an entry of g->tensors) in *out: nbytes bytes in
 * the mapping. An error naming the tensor and its type number when the
 * type is one the reader does not know the size of. */
llmc_status_t llmc_gguf_tensor_data(const llmc_gguf_t *g, const llmc_gguf_tensor_t *t,
                                    const uint8_t **out);

/* ggml's name of tensor type `type` ("f32", "q4_K", "iq2_xxs", ...), or NULL
 * for a number the reader does not know. */
const char *llmc_ggml_type_name(uint32_t type);

/* The key/value with this key, or NULL. */
const llmc_gguf_kv_t *llmc_gguf_find(const llmc_gguf_t *g, const char *key);
/* The tensor with this name, or NULL. */
const llmc_gguf_tensor_t *llmc_gguf_find_tensor(const llmc_gguf_t *g, const char *name);

/* Typed getters: false if the key is absent or not of a compatible type
 * (any integer type for get_int, but not a uint64 past INT64_MAX;
 * FLOAT32/FLOAT64 for get_float). */
bool llmc_gguf_get_int(const llmc_gguf_t *g, const char *key, int64_t *out);
bool llmc_gguf_get_float(const llmc_gguf_t *g, const char *key, double *out);
bool llmc_gguf_get_bool(const llmc_gguf_t *g, const char *key, bool *out);
bool llmc_gguf_get_string(const llmc_gguf_t *g, const char *key, llmc_gguf_str_t *out);

/* Element i (< kv->n) of an array: string arrays via array_string, numeric
 * arrays via array_int / array_float (converting from any integer or float
 * element type; array_int truncates floats toward zero and saturates a
 * uint64 past INT64_MAX). An index out of range or an array of the wrong
 * kind gives an empty string or 0, and so does a float outside int64's
 * range (or NaN) in array_int. */
llmc_gguf_str_t llmc_gguf_array_string(const llmc_gguf_kv_t *kv, uint64_t i);
int64_t llmc_gguf_array_int(const llmc_gguf_kv_t *kv, uint64_t i);
double llmc_gguf_array_float(const llmc_gguf_kv_t *kv, uint64_t i);

#endif /* LLMC_FORMATS_GGUF_H */
