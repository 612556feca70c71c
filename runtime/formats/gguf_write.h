/* gguf_write.h — writing GGUF version 3 files, one tensor after another.
 *
 * A writer collects the metadata key/values and the tensor descriptors
 * (small, held in memory), then takes the tensors' data in the order they
 * were added, in pieces of any size, and writes each piece as it comes: a
 * model never has to be in memory at once (`llmc quantize` hands it one row
 * at a time). The layout is the one gguf.h reads and ggml writes: header,
 * key/values, tensor descriptors, zero padding to general.alignment (32
 * unless the metadata sets it), then each tensor's data padded with zeros
 * to the alignment (the last one too, as ggml does).
 *
 * The file is written as PATH.tmp and renamed to PATH only by a successful
 * finish; a writer destroyed before that removes PATH.tmp, so a failure at
 * any point leaves no partial file, and an existing PATH as it was. A
 * writer can also keep the file in memory (llmc_gguf_writer_create_memory):
 * the compiler embeds a tokenizer's metadata-only GGUF in a model.so that
 * way, with no file to clean up. */
#ifndef LLMC_FORMATS_GGUF_WRITE_H
#define LLMC_FORMATS_GGUF_WRITE_H

#include <stdint.h>

#include "formats/gguf.h"
#include "support/status.h"

typedef struct llmc_gguf_writer llmc_gguf_writer_t;

/* Creates PATH.tmp (truncating a stale one) and a writer for it in *out.
 * An IO error names PATH.tmp when it cannot be created. */
llmc_status_t llmc_gguf_writer_create(const char *path, llmc_gguf_writer_t **out);

/* Creates a writer whose file is kept in memory instead: the same bytes,
 * handed out by llmc_gguf_writer_take_memory after finish. Error messages
 * call it "(in-memory GGUF)". */
llmc_status_t llmc_gguf_writer_create_memory(llmc_gguf_writer_t **out);

/* Adds key/value kv, read from another file by gguf.h, as it is (same
 * type, same bytes). A key the writer already has is replaced, and moves
 * to the end, as ggml's gguf_set_* do. general.alignment must then be a
 * uint32 power of two (what ggml accepts), or this is an error. Keys and
 * tensors can be added only before the first llmc_gguf_writer_write. */
llmc_status_t llmc_gguf_writer_copy_kv(llmc_gguf_writer_t *w, const llmc_gguf_kv_t *kv);

/* Adds (or replaces, moving it to the end) key = value as a uint32. */
llmc_status_t llmc_gguf_writer_set_u32(llmc_gguf_writer_t *w, const char *key, uint32_t value);

/* Adds a tensor descriptor: name (1 to 64 bytes, not used before), n_dims
 * (1 to 4) dims in ggml order (dims[0] the row length, each > 0), ggml type
 * number `type`, and the size of its data, nbytes > 0, which the caller
 * computes from the type (the writer does not know every type's blocks)
 * and must then write exactly. */
llmc_status_t llmc_gguf_writer_add_tensor(llmc_gguf_writer_t *w, llmc_gguf_str_t name,
                                          uint32_t n_dims, const uint64_t *dims, uint32_t type,
                                          uint64_t nbytes);

/* Appends n bytes of tensor data: the first call writes the header, the
 * metadata and the descriptors; then bytes fill the tensors in the order
 * they were added (a piece may end one tensor and start the next). More
 * bytes than the tensors' sizes add up to is an error, and so is any write
 * error (naming PATH.tmp and the operating system's reason). */
llmc_status_t llmc_gguf_writer_write(llmc_gguf_writer_t *w, const void *data, uint64_t n);

/* Completes the file: an error naming the first tensor whose data is
 * short, otherwise writes what is left, flushes it to disk and renames
 * PATH.tmp to PATH (a memory writer's bytes are then complete). The
 * writer must still be destroyed. */
llmc_status_t llmc_gguf_writer_finish(llmc_gguf_writer_t *w);

/* The file of a writer made by llmc_gguf_writer_create_memory, after a
 * successful finish: *out (malloc'ed; the caller frees it) holds *out_len
 * bytes, and the writer holds them no longer. INTERNAL for another writer,
 * before finish, or a second time. */
llmc_status_t llmc_gguf_writer_take_memory(llmc_gguf_writer_t *w, uint8_t **out,
                                           uint64_t *out_len);

/* Frees w; unless finish succeeded, closes and removes PATH.tmp (a memory
 * writer frees its bytes unless they were taken). NULL is fine. */
void llmc_gguf_writer_destroy(llmc_gguf_writer_t *w);

#endif /* LLMC_FORMATS_GGUF_WRITE_H */
