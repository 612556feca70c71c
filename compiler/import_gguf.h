/* import_gguf.h — turns a GGUF model file (as llama.cpp's converters write
 * it) into a model.json document (docs/model-json.md), the same document
 * schema import_hf.h writes for a Hugging Face folder.
 *
 * The weights stay in the GGUF file: every tensor entry points at its bytes
 * there (format "gguf", absolute file offset), with its ggml type mapped to
 * an llmc dtype and its dims reversed into model.json's outermost-first
 * order. The tokenizer is read from the same file (tokenizer.ggml.*), so the
 * document names it as {"gguf": path}. docs/gguf.md describes the mapping
 * per architecture: which RoPE pairing each uses (llama.cpp stores `llama`
 * Q/K rows interleaved for pairwise RoPE, so those graphs use the rope op's
 * interleaved form and no rows are moved), fused tensors that are sliced
 * (phi3), norm weights used as stored (gemma), stacked experts. */
#ifndef LLMC_COMPILER_IMPORT_GGUF_H
#define LLMC_COMPILER_IMPORT_GGUF_H

#include <cjson/cJSON.h>

#include "support/status.h"

/* Imports the GGUF file at path and returns a new model.json document in
 * *out_doc (the caller frees it with cJSON_Delete).
 *
 * path_base is the directory the document will be written to: the GGUF file
 * is referred to by a path relative to it (or by its absolute path when
 * path_base is NULL or does not exist). Supported: general.architecture
 * "llama" (Llama, Mistral, Mixtral-style experts), "qwen2", "qwen3", "phi3",
 * "gemma" and "gemma2", with f32, f16, bf16, q8_0, q4_0, q4_K and q6_K
 * tensors. Errors name the file and the key or tensor at
 * fault: a corrupt GGUF file, an unsupported architecture (the message lists
 * the supported ones), a missing or ill-typed hyper-parameter, unsupported
 * RoPE scaling, a tensor the graph needs that is missing, has other dims
 * than the hyper-parameters imply, or has a type llmc does not compute
 * with. */
llmc_status_t llmc_import_gguf(const char *path, const char *path_base, cJSON **out_doc);

#endif
