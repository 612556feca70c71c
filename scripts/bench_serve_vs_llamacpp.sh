#!/usr/bin/env bash
# Serving throughput and latency of llmc serve beside llama.cpp's
# llama-server: the same GGUF, the same threads, the same number of parallel
# slots, the same requests (llmc bench-serve with a fixed seed), for each
# number of concurrent clients.
#
# usage: LLAMA_SERVER=/path/to/llama-server scripts/bench_serve_vs_llamacpp.sh MODEL.gguf
# env:   THREADS (default: nproc), SLOTS (parallel sequences, default 16),
#        CLIENTS (default "1 4 16"), IN (prompt tokens, default 128),
#        OUT (output tokens, default 64), REQUESTS_PER_CLIENT (default 4),
#        LLMC (default build/llmc), PORT (default 18080; llama-server gets PORT+1,
#        so that neither waits for the other's closed connections)
# llama.cpp is not part of this repository: build it yourself and point
# LLAMA_SERVER at its llama-server.
set -euo pipefail
llmc=${LLMC:-build/llmc}
threads=${THREADS:-$(nproc)} slots=${SLOTS:-16} clients=${CLIENTS:-"1 4 16"}
in=${IN:-128} out=${OUT:-64} per_client=${REQUESTS_PER_CLIENT:-4} port=${PORT:-18080}
[ $# -eq 1 ] || { echo "usage: LLAMA_SERVER=... $0 MODEL.gguf" >&2; exit 2; }
[ -x "${LLAMA_SERVER:-}" ] || { echo "set LLAMA_SERVER to llama.cpp's llama-server binary" >&2; exit 2; }
gguf=$1
work=$(mktemp -d)
server_pid=
cleanup() {
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT

# Waits until the server answers /health (both servers have it).
wait_ready() {
  for _ in $(seq 600); do
    curl -sf "http://127.0.0.1:$port/health" >/dev/null 2>&1 && return 0
    kill -0 "$server_pid" 2>/dev/null || { echo "server exited; its log:" >&2; cat "$work/server.log" >&2; exit 1; }
    sleep 0.2
  done
  echo "server not ready after 120 s" >&2
  exit 1
}

stop_server() {
  kill "$server_pid"
  wait "$server_pid" 2>/dev/null || true
  server_pid=
}

# Runs the benchmark for every client count against the server on $port
# and prints one table row per count. Each count has its own seed, so no run
# finds an earlier run's prompts in a prefix cache.
bench_all() {
  local engine=$1
  for c in $clients; do
    "$llmc" bench-serve --url "http://127.0.0.1:$port" --num-prompts $((c * per_client)) \
      --max-concurrency "$c" --input-len "$in" --output-len "$out" --seed "$c" --json \
      >"$work/result.json"
    python3 - "$engine" "$c" "$work/result.json" <<'EOF'
import json, sys
engine, c, path = sys.argv[1], sys.argv[2], sys.argv[3]
d = json.load(open(path))
print("| %s | %s | %d | %.1f | %.0f | %.0f | %.1f | %.1f |" % (
    engine, c, d["completed"], d["output_throughput"], d["mean_ttft_ms"], d["median_ttft_ms"],
    d["mean_tpot_ms"], d["median_itl_ms"]))
EOF
  done
}

ctx_per_slot=$(( (in + out) * 2 ))
echo "model $(basename "$gguf"), $threads threads, $slots slots, prompts ~$in tokens, $out output tokens"
echo
echo "| server | clients | requests | output tok/s | mean TTFT ms | median TTFT ms | mean TPOT ms | median ITL ms |"
echo "|---|---|---|---|---|---|---|---|"

"$llmc" compile "$gguf" -o "$work/model.so" >/dev/null
"$llmc" serve "$work/model.so" --port "$port" -t "$threads" --max-running "$slots" \
  >"$work/server.log" 2>&1 &
server_pid=$!
wait_ready
bench_all llmc
stop_server

port=$((port + 1))
# --no-mmap: llama.cpp reads the weights into memory, as llmc copies models
# of 64 MiB and more into huge-page memory (docs/model-so.md).
"$LLAMA_SERVER" -m "$gguf" --host 127.0.0.1 --port "$port" -t "$threads" -np "$slots" \
  -c $((ctx_per_slot * slots)) --no-mmap >"$work/server.log" 2>&1 &
server_pid=$!
wait_ready
bench_all llama-server
stop_server
