#!/bin/sh
# run.sh — llmc serve driven by real HTTP clients: the official `openai`
# npm package (pinned by package-lock.json) and Node's fetch.
#  1. npm ci, when node_modules is missing or older than the lockfile;
#  2. compiles the bundled stories260K.gguf (its tokenizer comes along; it
#     has no chat template, so chatml.jinja here is given for chat);
#  3. starts `llmc serve` on a free port and waits for its listening line;
#  4. runs tests/serve/*.test.mjs with node's test runner, one file at a
#     time (they share the server and read its /metrics);
#  5. stops the server with SIGTERM and checks it exits 0.
# Skipped (77) where node or npm is missing.
#
# usage: run.sh LLMC REPO_ROOT WORKDIR
set -eu
LLMC=$1 ROOT=$2 WORK=$3
HERE=$ROOT/tests/serve
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIP: node and npm are needed (scripts/install-deps.sh installs them)"
  exit 77
fi
mkdir -p "$WORK"
case $WORK in /*) ;; *) WORK=$(pwd)/$WORK ;; esac

stamp=$HERE/node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ "$HERE/package-lock.json" -nt "$stamp" ]; then
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error) || {
    echo "FAIL: npm ci in $HERE (the npm registry must be reachable once)" >&2
    exit 1
  }
fi

"$LLMC" compile "$ROOT/tests/data/models/stories260K.gguf" -o "$WORK/stories.so" >/dev/null

"$LLMC" serve "$WORK/stories.so" --port 0 -t 1 --chat-template "$HERE/chatml.jinja" \
  --max-body-bytes 65536 -v 2>"$WORK/server.log" &
pid=$!
trap 'kill "$pid" 2>/dev/null || true' EXIT
url=
for _ in $(seq 300); do
  url=$(sed -n 's/^llmc serve: listening on \([^ ]*\) .*/\1/p' "$WORK/server.log")
  [ -n "$url" ] && break
  kill -0 "$pid" 2>/dev/null || break
  sleep 0.1
done
if [ -z "$url" ]; then
  echo "FAIL: llmc serve did not start:" >&2
  cat "$WORK/server.log" >&2
  exit 1
fi
echo "llmc serve at $url (log: $WORK/server.log)"

rc=0
LLMC=$LLMC LLMC_MODEL_SO=$WORK/stories.so LLMC_SERVE_URL=$url \
  node --test --test-concurrency=1 "$HERE"/*.test.mjs || rc=$?

kill -TERM "$pid"
src=0
wait "$pid" || src=$?
trap - EXIT
if [ "$src" != 0 ]; then
  echo "FAIL: llmc serve exited $src after SIGTERM; its log:" >&2
  tail -n 20 "$WORK/server.log" >&2
  rc=1
fi
grep -q "^llmc serve: stopped" "$WORK/server.log" || { echo "FAIL: no 'stopped' line in the server log" >&2; rc=1; }
exit $rc
