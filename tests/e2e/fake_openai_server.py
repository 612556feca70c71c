#!/usr/bin/env python3
"""fake_openai_server.py — a tiny OpenAI-compatible completions server with
known timing, for testing `llmc bench-serve` without a model (Python standard
library only).

GET /v1/models lists one model, "fake-model". POST /v1/completions checks the
request is what bench-serve sends (stream, temperature 0, ignore_eos,
stream_options.include_usage, a prompt, max_tokens >= 1), waits --ttft-ms,
then streams max_tokens events of text " tok" --itl-ms apart over chunked
HTTP/1.1, then vLLM's usage event (no choices; prompt_tokens = the prompt's
words + 1, as if a BOS were added; completion_tokens = max_tokens) and
"data: [DONE]". The request's model picks a misbehaviour:

    fail-500          HTTP 500 with an OpenAI error body
    no-usage          no usage event
    error-mid-stream  two tokens, then an error event

Every completion request is appended to --log as one JSON line: model,
prompt, max_tokens, the Authorization header (or null), and in_flight, the
number of completion requests being answered when it arrived, itself
included. The port (chosen by the system) is written to --port-file once the
server listens.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

lock = threading.Lock()
in_flight = 0


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, as real servers

    def log_message(self, *args):
        pass

    def handle(self):
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client hung up (bench-serve --timeout): nothing to answer

    def send_json(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def send_chunk(self, text):
        data = text.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def do_GET(self):
        if self.path == "/v1/models":
            models = [{"id": "fake-model", "object": "model"}]
            self.send_json(200, {"object": "list", "data": models})
        else:
            self.send_json(404, {"error": {"message": "no such path"}})

    def do_POST(self):
        global in_flight
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if self.path != "/v1/completions":
            self.send_json(404, {"error": {"message": "no such path"}})
            return
        try:
            req = json.loads(body)
            ok = (req.get("stream") is True and req.get("temperature") == 0
                  and req.get("ignore_eos") is True
                  and req.get("stream_options") == {"include_usage": True}
                  and isinstance(req.get("prompt"), str) and req["prompt"]
                  and isinstance(req.get("max_tokens"), int) and req["max_tokens"] >= 1
                  and isinstance(req.get("model"), str))
        except ValueError:
            ok = False
        if not ok:
            self.send_json(400, {"error": {"message": "unexpected request: %s" % body[:200]}})
            return
        model, n = req["model"], req["max_tokens"]
        with lock, open(self.server.log_path, "a") as log:
            in_flight += 1
            log.write(json.dumps({"model": model, "prompt": req["prompt"], "max_tokens": n,
                                  "authorization": self.headers.get("Authorization"),
                                  "in_flight": in_flight}) + "\n")
        try:
            if model == "fail-500":
                self.send_json(500, {"error": {"message": "fake failure", "type": "server_error"}})
            else:
                self.stream(model, n, len(req["prompt"].split()) + 1)
        finally:
            with lock:
                in_flight -= 1

    def stream(self, model, n, prompt_tokens):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        time.sleep(self.server.ttft)
        for k in range(n):
            if k:
                time.sleep(self.server.itl)
            if model == "error-mid-stream" and k == 2:
                self.send_chunk("data: %s\n\n" % json.dumps(
                    {"error": {"message": "fake mid-stream error", "code": 500}}))
                break
            choice = {"index": 0, "text": " tok", "logprobs": None,
                      "finish_reason": "length" if k == n - 1 else None}
            self.send_chunk("data: %s\n\n" % json.dumps(
                {"id": "cmpl-fake", "object": "text_completion", "model": model,
                 "choices": [choice]}))
        if model != "no-usage" and model != "error-mid-stream":
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": n,
                     "total_tokens": prompt_tokens + n}
            self.send_chunk("data: %s\n\n" % json.dumps(
                {"id": "cmpl-fake", "object": "text_completion", "model": model, "choices": [],
                 "usage": usage}))
        self.send_chunk("data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--ttft-ms", type=float, default=50)
    ap.add_argument("--itl-ms", type=float, default=10)
    args = ap.parse_args()
    ThreadingHTTPServer.request_queue_size = 256  # all-at-once clients connect together
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.ttft, server.itl, server.log_path = args.ttft_ms / 1e3, args.itl_ms / 1e3, args.log
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.replace(args.port_file + ".tmp", args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
