/* test_cpu_features.c — llmc_cpu_missing_feature, which the loader uses to
 * refuse a model.so compiled for CPU features this CPU lacks. */
#include "check.h"
#include "support/cpu_features.h"

int main(void) {
  char missing[32] = "";
  CHECK(!llmc_cpu_missing_feature("", missing, sizeof missing));
  CHECK(!llmc_cpu_missing_feature(NULL, missing, sizeof missing));
  /* Names the table does not know, and features turned off, ask nothing. */
  CHECK(!llmc_cpu_missing_feature("+no-such-feature,-avx512f,-amx-tile", missing, sizeof missing));
#if defined(__x86_64__)
  CHECK(!llmc_cpu_missing_feature("+64bit,+sse2,+cx8", missing, sizeof missing));
  if (__builtin_cpu_supports("avx2"))
    CHECK(!llmc_cpu_missing_feature("+avx2,+fma", missing, sizeof missing) || !__builtin_cpu_supports("fma"));
  if (!__builtin_cpu_supports("amx-tile")) { /* AMX: Sapphire Rapids and later Xeons only */
    CHECK(llmc_cpu_missing_feature("+sse2,+amx-tile,+avx", missing, sizeof missing));
    CHECK_EQ_STR(missing, "amx-tile");
  }
  if (!__builtin_cpu_supports("avx512f")) {
    CHECK(llmc_cpu_missing_feature("+avx512f", missing, sizeof missing));
    CHECK_EQ_STR(missing, "avx512f");
  }
#endif
  return check_report("test_cpu_features");
}
