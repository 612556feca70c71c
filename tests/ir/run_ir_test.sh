#!/usr/bin/env bash
# Runs one IR test: the "; RUN:" lines of TEST, with %s = the test file,
# %t = a fresh scratch directory, %llmc = the llmc binary, %FileCheck =
# LLVM's FileCheck and %not = LLVM's `not` (inverts an exit status). Like
# LLVM's lit, in miniature.
# usage: run_ir_test.sh LLMC LLVM_BINDIR TEST
set -euo pipefail
llmc=$1 bindir=$2 test=$3
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
grep -q '^; RUN:' "$test" || { echo "$test: no RUN line" >&2; exit 1; }
grep '^; RUN:' "$test" | sed 's/^; RUN: *//' | while IFS= read -r cmd; do
  cmd=${cmd//%s/$test}
  cmd=${cmd//%t/$scratch}
  cmd=${cmd//%llmc/$llmc}
  cmd=${cmd//%FileCheck/$bindir/FileCheck}
  cmd=${cmd//%not/$bindir/not}
  echo "RUN: $cmd"
  bash -o pipefail -c "$cmd"
done
