/* cpu_features.h — does this CPU have what a model.so was compiled for?
 *
 * `llmc compile` generates code for the host's CPU by default, with all of
 * its features (AVX-512, VNNI, ...), and records LLVM's feature string in
 * the model's metadata ("target": {"features": "+avx2,+avx512vnni,..."}).
 * Run on a CPU without one of them, that code would die of SIGILL; the
 * loader asks here first and refuses the model with a clear error. */
#ifndef LLMC_SUPPORT_CPU_FEATURES_H
#define LLMC_SUPPORT_CPU_FEATURES_H

#include <stdbool.h>
#include <stddef.h>

/* Whether the LLVM feature string `features` enables ("+name") a feature
 * this CPU lacks; if so, the first such name (as LLVM spells it) is put in
 * missing [size]. Only the x86-64 vector and bit-manipulation extensions
 * that code generation uses are checked; other names are ignored, and so
 * is everything on a host that is not x86-64. */
bool llmc_cpu_missing_feature(const char *features, char *missing, size_t size);

#endif
