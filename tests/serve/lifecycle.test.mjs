// lifecycle.test.mjs — authentication, a client that disconnects in the
// middle of a stream, and SIGTERM while a request is in flight.
import assert from 'node:assert/strict';
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
