/* safetensors.h — reads the table of contents of Hugging Face .safetensors
 * checkpoints: one file, or a sharded set described by
 * model.safetensors.index.json.
 *
 * A safetensors file is an 8-byte little-endian header length N, N bytes of
 * JSON ({"name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}}
 * plus an optional "__metadata__"), then the data section; offsets are
 * relative to the data section. This reader parses and validates the header
 * only and never reads tensor data: the compiler records (file, offset) pairs
 * and the bytes are mapped later by whoever needs them. Everything a header
 * claims is checked against the file's real size, so a truncated or hostile
 * file is an error naming the file and the tensor, never a crash.
 *
 * The runtime does not depend on ir/, so dtypes are the llmc dtype names
 * ("f32", "f16", "bf16") as strings, which llmc_dtype_from_name maps. */
#ifndef LLMC_FORMATS_SAFETENSORS_H
#define LLMC_FORMATS_SAFETENSORS_H

#include <stdint.h>

#include "support/arena.h"
#include "support/status.h"

#define LLMC_SAFETENSORS_MAX_DIMS 4

typedef struct {
  const char *name;     /* as written in the header */
  const char *dtype;    /* llmc name: "f32", "f16", "bf16"; NULL when llmc cannot read st_dtype */
  const char *st_dtype; /* the header's name: "F32", "BF16", "I64", ... */
  int rank;             /* 0..LLMC_SAFETENSORS_MAX_DIMS */
  int64_t shape[LLMC_SAFETENSORS_MAX_DIMS]; /* outermost first; unused dims are 0 */
  int file;                                 /* index into llmc_safetensors_t.files */
  uint64_t offset; /* absolute byte offset of the first element in that file */
  uint64_t nbytes; /* = numel * element size */
} llmc_safetensors_tensor_t;

typedef struct {
  llmc_arena_t *arena; /* owns everything below */
  const char *source;  /* what was opened (a .safetensors or an index.json), for messages */
  int n_files;
  const char **files; /* [n_files] paths of the data files, as opened */
  int n_tensors;
  llmc_safetensors_tensor_t *tensors; /* [n_tensors], sorted by name, names unique */
} llmc_safetensors_t;

/* Opens one .safetensors file and reads its header. On success *out_st is a
 * new table the caller frees with llmc_safetensors_destroy. Errors (file
 * missing or truncated, header length past the end of the file, invalid
 * JSON, unknown dtype, shapes that are not non-negative integers or have more
 * than LLMC_SAFETENSORS_MAX_DIMS dims, offsets outside the data section, a
 * size that is not numel * element size, overlapping tensors) name the file
 * and, where there is one, the tensor. */
llmc_status_t llmc_safetensors_open(const char *path, llmc_safetensors_t **out_st);

/* Opens a sharded checkpoint from its index (model.safetensors.index.json:
 * {"weight_map": {tensor name: file name relative to the index's folder}}).
 * Every shard named in the weight map is opened; every tensor of every shard
 * is listed; a tensor the weight map puts in a shard that lacks it, or a
 * name found in two shards, is an error. */
llmc_status_t llmc_safetensors_open_index(const char *index_path, llmc_safetensors_t **out_st);

/* Opens the checkpoint of a Hugging Face folder: its
 * model.safetensors.index.json if there is one, else its model.safetensors.
 * Neither present is a NOT_FOUND error naming the folder. */
llmc_status_t llmc_safetensors_open_folder(const char *folder, llmc_safetensors_t **out_st);

/* The tensor called name, or NULL. */
const llmc_safetensors_tensor_t *llmc_safetensors_find(const llmc_safetensors_t *st,
                                                       const char *name);

/* Frees the table. NULL is fine. */
void llmc_safetensors_destroy(llmc_safetensors_t *st);

#endif
