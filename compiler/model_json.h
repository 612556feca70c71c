/* model_json.h — reading a model.json document (docs/model-json.md) into IR. */
#ifndef LLMC_COMPILER_MODEL_JSON_H
#define LLMC_COMPILER_MODEL_JSON_H

#include <cjson/cJSON.h>

#include "ir.h"

/* Loads and parses the file at path into a cJSON document (caller frees it
 * with cJSON_Delete). Errors name the file. */
llmc_status_t llmc_model_json_read(const char *path, cJSON **out_doc);

/* Builds an IR module from a model.json document. `doc_name` is used in
 * messages ("model.json:/graph/3/args/0: ..."); weight file paths in the
 * document are resolved against `base_dir`. Every tensor's file must exist
 * and hold the tensor's bytes. Shapes of graph nodes are left to the
 * shape-infer pass. On error returns a status and *out is NULL. */
llmc_status_t llmc_model_json_to_ir(const cJSON *doc, const char *doc_name, const char *base_dir,
                                    llmc_ir_module_t **out);

#endif
