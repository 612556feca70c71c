/* cpu_features.c — see cpu_features.h. */
#include "support/cpu_features.h"

#include <string.h>

#if defined(__x86_64__)
/* Whether this CPU has the feature LLVM calls `name`; -1 when it is not
 * one this table knows. __builtin_cpu_supports takes only literals, hence
 * one line per feature. */
static int host_has(const char *name) {
#define FEATURE(llvm_name, gcc_name) \
  if (!strcmp(name, llvm_name)) return __builtin_cpu_supports(gcc_name) != 0;
  FEATURE("avx", "avx")
  FEATURE("avx2", "avx2")
  FEATURE("fma", "fma")
  FEATURE("f16c", "f16c")
  FEATURE("bmi", "bmi")
  FEATURE("bmi2", "bmi2")
  FEATURE("avx512f", "avx512f")
  FEATURE("avx512bw", "avx512bw")
  FEATURE("avx512cd", "avx512cd")
  FEATURE("avx512dq", "avx512dq")
  FEATURE("avx512vl", "avx512vl")
  FEATURE("avx512vnni", "avx512vnni")
  FEATURE("avx512bf16", "avx512bf16")
  FEATURE("avx512fp16", "avx512fp16")
  FEATURE("avx512ifma", "avx512ifma")
  FEATURE("avx512vbmi", "avx512vbmi")
  FEATURE("avx512vbmi2", "avx512vbmi2")
  FEATURE("avx512bitalg", "avx512bitalg")
  FEATURE("avx512vpopcntdq", "avx512vpopcntdq")
  FEATURE("avxvnni", "avxvnni")
  FEATURE("amx-tile", "amx-tile")
#undef FEATURE
  return -1;
}
#endif

bool llmc_cpu_missing_feature(const char *features, char *missing, size_t size) {
#if defined(__x86_64__)
  for (const char *at = features; at && *at;) {
    size_t len = strcspn(at, ",");
    if (at[0] == '+' && len - 1 < size) {
      memcpy(missing, at + 1, len - 1);
      missing[len - 1] = 0;
      if (host_has(missing) == 0) return true;
    }
    at += len + (at[len] == ',');
  }
#else
  (void)features, (void)missing, (void)size;
#endif
  return false;
}
