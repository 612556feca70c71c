#!/bin/sh
# bench_serve.sh — `llmc bench-serve` against tests/e2e/fake_openai_server.py,
# a stand-in OpenAI-compatible server with known delays (50 ms to the first
# token, 10 ms between tokens): request and token counts, latencies in a
# plausible range for those delays (generous bounds: this checks what is
# measured, not how fast anything is), the requests it sends (lengths,
# prompts that begin differently, the seed, --prompt-file, --api-key,
# --max-concurrency), --json, failures (HTTP 500, an error in the stream, a
# timeout, a refused connection) and bad flags.
#
# Each case runs llmc and keeps what it printed and what the fake received;
# one Python run then checks them all (starting Python, and an llmc linked
# with LLVM, is most of this test's time).
#
# usage: bench_serve.sh LLMC PYTHON WORKDIR
set -eu
LLMC=$1 PYTHON=$2 WORK=$3
HERE=$(cd "$(dirname "$0")" && pwd)
case $LLMC in /*) ;; *) LLMC=$(pwd)/$LLMC ;; esac
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK"
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}

"$PYTHON" "$HERE/fake_openai_server.py" --port-file port --log requests.jsonl \
  --ttft-ms 50 --itl-ms 10 &
server=$!
trap 'kill $server 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -s port ] && break; sleep 0.1; done
[ -s port ] || { echo "FAIL: the fake server did not start" >&2; exit 1; }
URL=http://127.0.0.1:$(cat port)
REFUSED=http://127.0.0.1:1 # nothing listens on port 1 (tcpmux)

# run_case NAME RC NEEDLE ARGS...: `llmc bench-serve ARGS` exits with RC and its
# stderr contains NEEDLE; NAME.out and NAME.err keep what it printed and
# NAME.log the requests the fake received.
run_case() {
  name=$1 want=$2 needle=$3
  shift 3
  rc=0
  "$LLMC" bench-serve "$@" >"$name.out" 2>"$name.err" || rc=$?
  [ "$rc" = "$want" ] || fail "$name: exited $rc, expected $want: $(cat "$name.err")"
  [ -z "$needle" ] || grep -qF -- "$needle" "$name.err" ||
    fail "$name: stderr lacks '$needle': $(cat "$name.err")"
  if [ -e requests.jsonl ]; then mv requests.jsonl "$name.log"; else : >"$name.log"; fi
}

seq 0 99 | sed 's/^/w/' | tr '\n' ' ' >words.txt
seeded="--num-prompts 12 --input-len 20 --output-len 8 --range-ratio 0.5 --seed 7"

run_case table 0 "16 requests to $URL/v1/completions, model fake-model, inf req/s" \
  --url "$URL" --num-prompts 16 --input-len 32 --output-len 8
# shellcheck disable=SC2086 # $seeded is a list of flags
run_case json 0 "50 req/s, concurrency 3" --url "$URL/v1/" $seeded --request-rate 50 \
  --max-concurrency 3 --json
# shellcheck disable=SC2086
run_case seed7 0 "12 requests" --url "$URL" $seeded --json
# shellcheck disable=SC2086
run_case seed8 0 "12 requests" --url "$URL" $seeded --seed 8 --json
run_case prompt_file 0 "4 requests" --url "$URL" --prompt-file words.txt --num-prompts 4 \
  --input-len 5 --output-len 2 --api-key sk-test --json
run_case no_usage 0 \
  "4 responses reported no usage.prompt_tokens; their input tokens are counted as the words sent" \
  --url "$URL" --model no-usage --num-prompts 4 --input-len 6 --output-len 5 --json
grep -qF "their generated tokens are counted as the text events" no_usage.err ||
  fail "no_usage: stderr lacks the note on generated tokens"
run_case fail_500 1 "error: 4 of 4 requests failed; the first, request " \
  --url "$URL" --model fail-500 --num-prompts 4 --input-len 4 --output-len 4
grep -qF ": POST $URL/v1/completions: HTTP 500: {\"error\": {\"message\": \"fake failure\"" \
  fail_500.err || fail "fail_500: $(cat fail_500.err)"
run_case error_event 1 "/v1/completions: the server streamed an error: fake mid-stream error" \
  --url "$URL" --model error-mid-stream --num-prompts 3 --input-len 4 --output-len 4 --json
run_case timeout 1 "error: 2 of 2 requests failed" --url "$URL" --model fake-model --timeout 0.03 \
  --num-prompts 2 --input-len 4 --output-len 4 --json
# libcurl says "Operation timed out", or "Connection time-out" if connecting took that long.
grep -qiE "timed out|time-out" timeout.err || fail "timeout: $(cat timeout.err)"
run_case refused_models 1 \
  "error: GET $REFUSED/v1/models, asking for the model's name (or give --model): Failed to connect" \
  --url "$REFUSED" --num-prompts 2
run_case refused 1 \
  "error: 2 of 2 requests failed; the first, request 0: POST $REFUSED/v1/completions: Failed to connect" \
  --url "$REFUSED" --model m --num-prompts 2 --json

run_case bad_rate 2 "--request-rate must be more than 0" --request-rate 0
run_case bad_number 2 "--request-rate x: expected a number" --request-rate x
run_case bad_ratio 2 "--range-ratio must be at least 0 and below 1" --range-ratio 1
run_case bad_url 2 "--url localhost:8000: expected http://" --url localhost:8000
run_case bad_timeout 2 "--timeout 0: expected seconds" --timeout 0
run_case bad_option 2 "unknown option --rate" --rate 3
run_case help 0 "" --help

"$PYTHON" - <<'PY' || fail "the checks above"
import json, sys

def out(name):
    """The case's stdout: its JSON, or its table as {label: value}."""
    text = open(name + ".out").read()
    if text.startswith("{"):
        return json.loads(text)
    table = {}
    for line in text.splitlines():
        if ":" in line and not line.startswith(("=", "-")):
            label, value = line.rsplit(":", 1)
            table[label] = float(value)
    return table

def log(name):
    return [json.loads(line) for line in open(name + ".log")]

def table():
    o, reqs = out("table"), log("table")
    assert o["Successful requests"] == 16 and o["Failed requests"] == 0, o
    assert o["Total generated tokens"] == 16 * 8, o
    assert o["Total input tokens"] == 16 * 33, o  # the fake counts words + 1
    assert "Maximum request concurrency" not in o and "Request rate configured (RPS)" not in o
    for key in ("Benchmark duration (s)", "Request throughput (req/s)",
                "Output token throughput (tok/s)", "Total Token throughput (tok/s)"):
        assert o[key] > 0, (key, o)
    assert 40 <= o["Mean TTFT (ms)"] <= 5000, o
    assert 40 <= o["Median TTFT (ms)"] <= o["P99 TTFT (ms)"] <= 5000, o
    for m in ("TPOT", "ITL"):
        assert 8 <= o["Mean %s (ms)" % m] <= 1000, o
        assert 8 <= o["Median %s (ms)" % m] <= o["P99 %s (ms)" % m] <= 1000, o
    lines = open("table.out").read().splitlines()
    for line in ("============ Serving Benchmark Result ============",
                 "---------------Time to First Token----------------",
                 "-----Time per Output Token (excl. 1st token)------",
                 "---------------Inter-token Latency----------------",
                 "=================================================="):
        assert line in lines, line
    assert "Successful requests:                     16        " in lines, lines
    assert len(reqs) == 16, reqs
    assert all(r["model"] == "fake-model" and r["authorization"] is None for r in reqs), reqs
    assert all(r["max_tokens"] == 8 and len(r["prompt"].split()) == 32 for r in reqs), reqs
    firsts = [r["prompt"].split()[0] for r in reqs]
    assert len(set(firsts)) == 16, firsts

def json_():
    o, reqs = out("json"), log("json")
    assert o["completed"] == 12 and o["failed"] == 0, o
    assert o["request_rate"] == 50 and o["max_concurrency"] == 3, o
    assert len(reqs) == 12 and max(r["in_flight"] for r in reqs) <= 3, reqs
    assert o["total_output_tokens"] == sum(r["max_tokens"] for r in reqs), (o, reqs)
    assert o["total_input_tokens"] == sum(len(r["prompt"].split()) + 1 for r in reqs), (o, reqs)
    assert all(4 <= r["max_tokens"] <= 12 for r in reqs), reqs
    assert all(10 <= len(r["prompt"].split()) <= 30 for r in reqs), reqs
    assert len({r["max_tokens"] for r in reqs}) > 1, reqs
    for key in ("duration", "request_throughput", "output_throughput", "total_token_throughput"):
        assert o[key] > 0, (key, o)
    for m in ("ttft", "tpot", "itl"):
        assert all(k + "_" + m + "_ms" in o for k in ("mean", "median", "std", "p99")), o

def seeds():
    prompts = {name: sorted(r["prompt"] for r in log(name)) for name in ("json", "seed7", "seed8")}
    assert prompts["seed7"] == prompts["json"], "--seed 7 twice: different prompts"
    assert prompts["seed8"] != prompts["json"], "--seed 8 sends --seed 7's prompts"
    assert out("seed7")["request_rate"] is None and out("seed7")["max_concurrency"] is None

def prompt_file():
    o, reqs = out("prompt_file"), log("prompt_file")
    assert o["completed"] == 4, o
    assert all(r["authorization"] == "Bearer sk-test" for r in reqs), reqs
    for r in reqs:
        ids = [int(w[1:]) for w in r["prompt"].split()]
        assert len(ids) == 5 and all((b - a) % 100 == 1 for a, b in zip(ids, ids[1:])), r
    assert len({r["prompt"] for r in reqs}) == 4, reqs

def no_usage():
    o = out("no_usage")
    assert o["completed"] == 4 and o["total_input_tokens"] == 24, o
    assert o["total_output_tokens"] == 20, o
    assert o["input_tokens_counted_as_words"] == 4 and o["output_tokens_counted_as_events"] == 4

def failures():
    o = out("fail_500")
    assert o["Successful requests"] == 0 and o["Failed requests"] == 4, o
    assert o["Total generated tokens"] == 0, o
    o = out("error_event")
    assert o["completed"] == 0 and o["failed"] == 3, o
    assert out("timeout")["failed"] == 2
    assert out("refused")["failed"] == 2
    assert open("refused_models.out").read() == "", "refused_models printed results"

def bad_usage():
    for name in ("bad_rate", "bad_number", "bad_ratio", "bad_url", "bad_timeout", "bad_option"):
        assert "usage: llmc bench-serve" in open(name + ".err").read(), name
        assert open(name + ".log").read() == "", name + " sent requests"
    text = open("help.out").read()
    for flag in ("--url", "--model", "--num-prompts", "--request-rate", "--max-concurrency",
                 "--input-len", "--output-len", "--range-ratio", "--seed", "--prompt-file",
                 "--api-key", "--timeout", "--json"):
        assert "  %s " % flag in text, "--help does not describe " + flag

failed = 0
for check in (table, json_, seeds, prompt_file, no_usage, failures, bad_usage):
    try:
        check()
    except (AssertionError, KeyError, ValueError, OSError) as e:
        print("FAIL: %s: %r" % (check.__name__, e), file=sys.stderr)
        failed += 1
sys.exit(1 if failed else 0)
PY

[ "$failures" = 0 ] || { echo "$failures failure(s)" >&2; exit 1; }
echo "bench-serve: all checks passed"
