/* import_hf.h — turns a Hugging Face checkpoint folder (config.json plus
 * model.safetensors or a sharded model.safetensors.index.json) into a
 * model.json document (docs/model-json.md), which the compiler then parses
 * like any hand-written one.
 *
 * The importer knows each supported architecture's tensor names and forward
 * pass (docs/architectures.md) and writes that forward pass as a graph of IR
 * operations over the checkpoint's tensors. It checks every tensor the graph
 * needs against the shapes config.json implies, so a checkpoint that does not
 * match its config fails here, with the tensor's name, rather than later. */
#ifndef LLMC_COMPILER_IMPORT_HF_H
#define LLMC_COMPILER_IMPORT_HF_H

#include <cjson/cJSON.h>

#include "support/status.h"

/* Imports the Hugging Face folder `folder` and returns a new model.json
 * document in *out_doc (the caller frees it with cJSON_Delete).
 *
 * path_base is the directory the document will be written to: the weight
 * files and the tokenizer are referred to by paths relative to it (or by
 * absolute paths when path_base is NULL or does not exist). Errors name the
 * file and the key or tensor at fault: a missing or malformed config.json,
 * a missing required key, an unsupported architecture or RoPE type, a tensor
 * the graph needs that the checkpoint lacks or has with another shape or an
 * unreadable dtype, or a corrupt safetensors file. */
llmc_status_t llmc_import_hf(const char *folder, const char *path_base, cJSON **out_doc);

/* Writes doc to path, pretty-printed, through path.tmp and a rename, so a
 * failure never leaves a partial file at path. */
llmc_status_t llmc_import_write(const cJSON *doc, const char *path);

#endif
