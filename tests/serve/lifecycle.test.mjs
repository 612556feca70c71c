// lifecycle.test.mjs — authentication, a client that disconnects in the
// middle of a stream, SIGTERM while a request is in flight, and idle
// connections.
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import OpenAI from 'openai';
import { client, get, post, metrics, startServer, waitForMetrics } from './helpers.mjs';

test('--api-key: 401 without the key or with a wrong one, 200 with it', async () => {
  const server = await startServer(['--api-key', 'sekret']);
  try {
    const url = server.url;
    const none = await get('/v1/models', { url });
    assert.equal(none.status, 401);
    assert.equal(none.json.error.code, 'invalid_api_key');
    const wrong = await get('/v1/models', { url, headers: { authorization: 'Bearer sekreT' } });
    assert.equal(wrong.status, 401);
    const prefix = await post('/v1/completions', { prompt: 'hi' }, { url, headers: { authorization: 'Bearer sek' } });
    assert.equal(prefix.status, 401);
    const right = await get('/v1/models', { url, headers: { authorization: 'Bearer sekret' } });
    assert.equal(right.status, 200);
    // Probes stay open, as in vLLM.
    assert.equal((await get('/health', { url })).status, 200);
    assert.equal((await get('/metrics', { url })).status, 200);
    await assert.rejects(client(url, 'wrong').completions.create({ prompt: 'hi' }), OpenAI.AuthenticationError);
    const ok = await client(url, 'sekret').completions.create({ prompt: 'hi', max_tokens: 2 });
    assert.equal(ok.choices.length, 1);
    // This server was given no chat template, and stories260K has none.
    const chat = await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }] },
      { url, headers: { authorization: 'Bearer sekret' } });
    assert.equal(chat.status, 400);
    assert.match(chat.json.error.message, /no chat template/);
  } finally {
    server.proc.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  }
});

test('a client that disconnects mid-stream has its request cancelled and its blocks freed', async () => {
  const before = await metrics();
  const cancelled = 'llmc_requests_finished_total{finish_reason="cancelled"}';
  const ac = new AbortController();
  const res = await fetch(`${process.env.LLMC_SERVE_URL}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 2000, ignore_eos: true, stream: true }),
    signal: ac.signal,
  });
  const reader = res.body.getReader();
  const first = await reader.read();
  assert.ok(!first.done);
  ac.abort();
  await assert.rejects(reader.read());
  const m = await waitForMetrics((x) => x.llmc_requests_running === 0 && x.llmc_kv_blocks_used === 0);
  assert.ok(m[cancelled] >= before[cancelled] + 1, `cancelled ${before[cancelled]} -> ${m[cancelled]}`);
  assert.ok(m.llmc_generation_tokens_total - before.llmc_generation_tokens_total < 2000);
});

test('SIGTERM: the request in flight finishes, then the server exits 0', async () => {
  const server = await startServer();
  const res = await fetch(`${server.url}/v1/completions`, {
    method: 'POST',
    body: JSON.stringify({ prompt: 'Once upon a time', max_tokens: 1500, ignore_eos: true, stream: true,
      stream_options: { include_usage: true } }),
  });
  const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
  let text = (await reader.read()).value;
  server.proc.kill('SIGTERM');
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += value;
  }
  const data = text.split('\n\n').filter((e) => e.startsWith('data: ')).map((e) => e.slice(6));
  assert.equal(data.at(-1), '[DONE]');
  const usage = JSON.parse(data.at(-2)).usage;
  assert.equal(usage.completion_tokens, 1500);
  assert.ok(data.some((d) => d !== '[DONE]' && JSON.parse(d).choices[0]?.finish_reason === 'length'));
  assert.deepEqual(await server.exited, { code: 0, signal: null });
  assert.match(server.stderr(), /llmc serve: stopped/);
  // Nobody listens any more.
  await assert.rejects(fetch(`${server.url}/health`));
});

test('--idle-timeout: an idle kept-alive connection is closed; a stream waiting in the queue is not', async () => {
  const server = await startServer(['--idle-timeout', '1', '--max-running', '1']);
  try {
    const { hostname, port } = new URL(server.url);
    // A kept-alive connection that sends nothing after its first answer.
    const sock = net.connect(Number(port), hostname);
    let answer = '';
    const closed = new Promise((resolve) => sock.on('close', resolve));
    sock.on('data', (d) => { answer += d; });
    sock.write(`GET /health HTTP/1.1\r\nHost: ${hostname}\r\n\r\n`);
    const timer = setTimeout(() => sock.destroy(new Error('not closed within 10 s')), 10000);
    await closed;
    clearTimeout(timer);
    assert.match(answer, /^HTTP\/1\.1 200/);
    assert.ok(!sock.errored, 'the server closed the idle connection');

    // One sequence at a time: the stream waits behind a long request, silent
    // for longer than the timeout, with keep-alive comments the client skips.
    const openai = client(server.url);
    const long = openai.completions.create({ prompt: 'Once', max_tokens: 1500, ignore_eos: true });
    await new Promise((resolve) => setTimeout(resolve, 100));
    const stream = await openai.completions.create({ prompt: 'Hello', max_tokens: 5, stream: true });
    let text = '', finish = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.text ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    assert.equal(finish, 'length');
    assert.ok(text.length > 0);
    assert.equal((await long).choices[0].finish_reason, 'length');
  } finally {
    server.proc.kill('SIGTERM');
    assert.deepEqual(await server.exited, { code: 0, signal: null });
  }
});
