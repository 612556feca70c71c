// helpers.mjs — what the llmc serve tests share: the server run.sh started
// (LLMC_SERVE_URL), the compiled model (LLMC_MODEL_SO), the llmc binary
// (LLMC), a way to start more servers, and small HTTP helpers.
import { spawn, execFileSync } from 'node:child_process';
import OpenAI from 'openai';

export const LLMC = process.env.LLMC;
export const MODEL_SO = process.env.LLMC_MODEL_SO;
export const URL = process.env.LLMC_SERVE_URL;
export const MODEL_NAME = 'stories';
export const CONTEXT = 2048; // stories260K's

if (!LLMC || !MODEL_SO || !URL) throw new Error('run these tests through tests/serve/run.sh');

// An openai client for the server at url; no retries, so that every error
// the server sends reaches the test.
export function client(url = URL, apiKey = 'none') {
  return new OpenAI({ baseURL: `${url}/v1`, apiKey, maxRetries: 0, timeout: 30000 });
}

// POSTs body (an object, or a string sent as it is) to url + path; returns
// { status, json, text, headers }.
export async function post(path, body, { url = URL, headers = {} } = {}) {
  const res = await fetch(url + path, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON: SSE or plain text */ }
  return { status: res.status, json, text, headers: res.headers };
}

// GET url + path; same shape as post().
export async function get(path, { url = URL, headers = {} } = {}) {
  const res = await fetch(url + path, { headers });
  const text = await res.text();
  let json = null;
  try { json = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, json, text, headers: res.headers };
}

// The data: payloads of a server-sent event stream, in order.
export function sseData(text) {
  return text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
}

// /metrics as { 'llmc_x': value, 'llmc_y{label="v"}': value, ... }.
export async function metrics(url = URL) {
  const { status, text } = await get('/metrics', { url });
  if (status !== 200) throw new Error(`/metrics: ${status}`);
  const out = {};
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const at = line.lastIndexOf(' ');
    out[line.slice(0, at)] = Number(line.slice(at + 1));
  }
  return out;
}

// Polls /metrics until pred(metrics) holds (or throws after timeoutMs).
export async function waitForMetrics(pred, { url = URL, timeoutMs = 5000 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const m = await metrics(url);
    if (pred(m)) return m;
    if (Date.now() > end) throw new Error(`metrics never matched: ${JSON.stringify(m)}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

// `llmc run MODEL -p prompt -n n --temp 0`'s standard output, with the KV
// cache in f16 as llmc serve keeps it.
export function llmcRun(prompt, n) {
  return execFileSync(LLMC, ['run', MODEL_SO, '-p', prompt, '-n', String(n), '--temp', '0', '-t', '1', '--kv-type', 'f16'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'ignore'],
  });
}

// Starts another `llmc serve MODEL --port 0 ...args`; resolves, once it
// listens, to { url, proc, stderr(), exited } where exited resolves to
// { code, signal }.
export function startServer(args = []) {
  const proc = spawn(LLMC, ['serve', MODEL_SO, '--port', '0', '-t', '1', ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let log = '';
  const exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`llmc serve did not start: ${log}`)), 20000);
    proc.stderr.on('data', (chunk) => {
      log += chunk;
      const m = /llmc serve: listening on (\S+)/.exec(log);
      if (m && timer) {
        clearTimeout(timer);
        resolve({ url: m[1], proc, stderr: () => log, exited });
      }
    });
    proc.on('exit', (code) => reject(new Error(`llmc serve exited ${code}: ${log}`)));
  });
}
