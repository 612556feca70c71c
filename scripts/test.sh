#!/usr/bin/env bash
# Installs the dependencies, builds llmc with warnings as errors and runs
# every test (ctest); then does the same in a second build with
# AddressSanitizer and UndefinedBehaviorSanitizer (skip it with
# LLMC_TEST_SANITIZE=0). Usage: scripts/test.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
jobs=$(nproc)
scripts/install-deps.sh
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMC_WERROR=ON >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs"
if [ "${LLMC_TEST_SANITIZE:-1}" != 0 ]; then
  cmake -S . -B "$build-asan" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DLLMC_WERROR=ON \
        -DLLMC_SANITIZE=address,undefined >/dev/null
  cmake --build "$build-asan" -j "$jobs"
  # The fuzzers already run under ASan/UBSan in the first pass.
  UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 ctest --test-dir "$build-asan" --output-on-failure -j "$jobs" -E '^fuzz\.'

fi
