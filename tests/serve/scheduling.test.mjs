// scheduling.test.mjs — continuous batching seen from clients: a request's
// output does not depend on what runs beside it (batch invariance), a KV
// pool far too small for the load makes requests wait or be pre-empted but
// never changes their output, a shared prompt prefix is served from the
// cache with the same output as without it, and a few hundred mixed
// requests (streamed or not, chat, n=2, logprobs, stop strings, clients
// that disconnect) leave the server with every block free and its memory
// where it was.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { client, LLMC, llmcRun, metrics, startServer, waitForMetrics } from './helpers.mjs';

const openai = client();

// Prompts of different lengths that begin differently.
const WORDS = ['Once', 'The', 'Lily', 'Tom', 'One', 'A', 'Sue', 'Ben', 'Max', 'Mia'];
const TAIL = ' upon a time there was a little dog who liked to run and play in the park with his friends every day';
function prompt(i) {
  const tail = TAIL.split(' ').slice(0, 2 + (i * 7) % 20).join(' ');
  return `${WORDS[i % WORDS.length]} ${i}${tail}`;
}

async function complete(c, body) {
  const r = await c.completions.create({ temperature: 0, ...body });
  return r.choices[0].text;
}

test('a greedy request gives the same text alone, among 31 others, and from llmc run', async () => {
  const p = 'Once upon a time, there was a little girl';
  const n = 48;
  const alone = await complete(openai, { prompt: p, max_tokens: n });
  assert.equal(alone, llmcRun(p, n));
  // 31 others of different prompt and output lengths, some sampled, some
  // streamed, all in flight with ours.
  const others = [];
  for (let i = 0; i < 31; i++) {
    const body = { prompt: prompt(i), max_tokens: 8 + (i * 5) % 60, temperature: (i % 3) * 0.5, seed: i };
    if (i % 4 === 0) {
      others.push((async () => {
        const stream = await openai.completions.create({ ...body, stream: true });
        let text = '';
        for await (const chunk of stream) text += chunk.choices[0]?.text ?? '';
        return text;
      })());
    } else {
      others.push(openai.completions.create(body).then((r) => r.choices[0].text));
    }
  }
  const ours = complete(openai, { prompt: p, max_tokens: n });
  const results = await Promise.all([ours, ...others]);
  assert.equal(results[0], alone);
});

test('a KV pool far too small for 64 concurrent requests: all complete, unchanged', async () => {
  const n = 64, maxTokens = 40;
  const prompts = Array.from({ length: n }, (_, i) => prompt(i));
  const alone = [];
  for (const p of prompts) alone.push(await complete(openai, { prompt: p, max_tokens: maxTokens, ignore_eos: true }));
  // 12 blocks of 16 tokens hold about three of these requests at a time.
  const server = await startServer(['--kv-blocks', '12', '--max-running', '16']);
  try {
    const small = client(server.url);
    const together = await Promise.all(prompts.map((p) => complete(small, { prompt: p, max_tokens: maxTokens, ignore_eos: true })));
    for (let i = 0; i < n; i++) assert.equal(together[i], alone[i], `request ${i}`);
    const m = await waitForMetrics((x) => x.llmc_requests_running === 0 && x.llmc_requests_waiting === 0, { url: server.url });
    assert.equal(m.llmc_kv_blocks_used, 0);
    assert.equal(m.llmc_kv_blocks_total, 12);
    assert.ok(m.llmc_preemptions_total > 0, 'some requests were pre-empted');
    assert.equal(m['llmc_requests_finished_total{finish_reason="length"}'], n);
  } finally {
    server.proc.kill('SIGTERM');
    assert.equal((await server.exited).code, 0);
  }
});

test('two requests with a long common prefix: same outputs as without sharing, the second hits the cache', async () => {
  const common = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine. ' +
    'One day, she saw a big red ball in the park and ran to get it.';
  const bodies = [
    { prompt: `${common} Her mom said`, max_tokens: 32 },
    { prompt: `${common} Then a dog came`, max_tokens: 32 },
  ];
  const plain = await startServer(['--no-prefix-cache']);
  const shared = await startServer();
  try {
    const want = [];
    for (const b of bodies) want.push(await complete(client(plain.url), b));
    const c = client(shared.url);
    const first = await c.completions.create({ temperature: 0, ...bodies[0] });
    const second = await c.completions.create({ temperature: 0, ...bodies[1] });
    assert.equal(first.choices[0].text, want[0]);
    assert.equal(second.choices[0].text, want[1]);
    assert.equal(first.usage.prompt_tokens_details.cached_tokens, 0);
    assert.ok(second.usage.prompt_tokens_details.cached_tokens >= 32, JSON.stringify(second.usage));
    const m = await metrics(shared.url);
    assert.equal(m.llmc_prefix_cache_hits_total, second.usage.prompt_tokens_details.cached_tokens);
    assert.equal((await metrics(plain.url)).llmc_prefix_cache_hits_total, 0);
  } finally {
    for (const s of [plain, shared]) s.proc.kill('SIGTERM');
    assert.equal((await plain.exited).code, 0);
    assert.equal((await shared.exited).code, 0);
  }
});

// Under AddressSanitizer freed memory sits in quarantine, so resident
// memory only grows; there LeakSanitizer's check at exit (the server must
// exit 0) is what finds leaks.
const SANITIZED = /libasan/.test(execFileSync('ldd', [LLMC], { encoding: 'utf8' }));

// Resident memory of a process, in KiB.
function rssKiB(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+)/.exec(status)[1]);
}

// One request of the soak's mix; i picks its kind. Resolves to true when
// it got what it should (a cancelled one counts as right when it ends).
async function mixedRequest(c, i) {
  const kind = i % 6;
  const body = { prompt: prompt(i), max_tokens: 4 + (i * 13) % 40, temperature: (i % 2) * 0.8, seed: i };
  if (kind === 0) return (await c.completions.create(body)).choices.length === 1;
  if (kind === 1) {
    let text = '';
    for await (const chunk of await c.completions.create({ ...body, stream: true })) text += chunk.choices[0]?.text ?? '';
    return typeof text === 'string';
  }
  if (kind === 2) {
    const r = await c.chat.completions.create({ messages: [{ role: 'user', content: prompt(i) }], max_tokens: body.max_tokens, stream: i % 4 === 2 });
    if (r.choices) return r.choices[0].message.role === 'assistant';
    for await (const chunk of r) void chunk;
    return true;
  }
  if (kind === 3) {
    const r = await c.completions.create({ ...body, n: 2, logprobs: 2 });
    return r.choices.length === 2 && r.choices.every((ch) => ch.logprobs.token_logprobs.length > 0);
  }
  if (kind === 4) return typeof (await c.completions.create({ ...body, stop: [' the', '.'] })).choices[0].text === 'string';
  // kind 5: a streaming client that goes away after its first chunk.
  const controller = new AbortController();
  const stream = await c.completions.create({ ...body, max_tokens: 200, ignore_eos: true, stream: true }, { signal: controller.signal });
  try {
    for await (const chunk of stream) { void chunk; controller.abort(); }
  } catch (e) {
    if (!/abort/i.test(String(e?.name ?? e))) throw e;
  }
  return true;
}

test('a soak of 300 mixed requests: no failures, every block free, memory back to where it was', async () => {
  const server = await startServer(['--kv-blocks', '64', '--chat-template', new URL('./chatml.jinja', import.meta.url).pathname]);
  try {
    const c = client(server.url);
    // A round of the same mix first, so the pool and the allocator's
    // arenas are as warm as they will get; then the measured round.
    const round = async (from, count) => {
      const results = [];
      for (let i = from; i < from + count; i += 20)
        results.push(...(await Promise.all(Array.from({ length: Math.min(20, from + count - i) }, (_, k) => mixedRequest(c, i + k)))));
      return results;
    };
    assert.ok((await round(0, 60)).every(Boolean));
    await waitForMetrics((x) => x.llmc_requests_running === 0 && x.llmc_requests_waiting === 0, { url: server.url });
    const before = rssKiB(server.proc.pid);
    const results = await round(60, 300);
    assert.equal(results.filter((ok) => !ok).length, 0);
    const m = await waitForMetrics((x) => x.llmc_requests_running === 0 && x.llmc_requests_waiting === 0 && x.llmc_kv_blocks_used === 0, { url: server.url });
    assert.equal(m['llmc_requests_finished_total{finish_reason="error"}'], 0);
    const after = rssKiB(server.proc.pid);
    // Memory back to its baseline: allocator noise only (a leak of a few
    // bytes per request or token would show as megabytes here).
    if (!SANITIZED) assert.ok(after - before < 4096, `RSS grew from ${before} to ${after} KiB`);
  } finally {
    server.proc.kill('SIGTERM');
    assert.equal((await server.exited).code, 0);
  }
});
