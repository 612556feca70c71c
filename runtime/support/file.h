/* file.h — small file helpers shared by the runtime and the compiler. */
#ifndef LLMC_SUPPORT_FILE_H
#define LLMC_SUPPORT_FILE_H

#include <stddef.h>
#include <stdio.h>

#include "support/status.h"

/* Reads the whole file into a malloc'ed, NUL-terminated buffer (*out_len
 * excludes the NUL). Errors name the path. */
llmc_status_t llmc_file_read_all(const char *path, char **out_data, size_t *out_len);

/* Reads f to its end into a malloc'ed, NUL-terminated buffer (*out_len
 * excludes the NUL); `name` names f in errors ("standard input"). */
llmc_status_t llmc_file_read_stream(FILE *f, const char *name, char **out_data, size_t *out_len);

/* The directory part of path ("." if none), malloc'ed. */
char *llmc_path_dirname(const char *path);

#endif
