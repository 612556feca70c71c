// errors.test.mjs — bad requests get the right 4xx and an OpenAI-shaped
// body ({"error": {"message", "type", "param", "code"}}), through the
// openai client's error classes and through raw fetch(); the server keeps
// serving afterwards.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import OpenAI from 'openai';
import { client, get, post, CONTEXT, URL } from './helpers.mjs';

const openai = client();

// Asserts r is an OpenAI error with this status (and param, when given).
function assertError(r, status, param) {
  assert.equal(r.status, status, r.text);
  assert.equal(typeof r.json.error.message, 'string');
  assert.ok(r.json.error.message.length > 0);
  assert.equal(r.json.error.type, status < 500 ? 'invalid_request_error' : 'server_error');
  assert.ok('param' in r.json.error && 'code' in r.json.error);
  if (param !== undefined) assert.equal(r.json.error.param, param);
}

test('an unknown model is a 404 NotFoundError, code model_not_found', async () => {
  await assert.rejects(openai.completions.create({ model: 'gpt-4', prompt: 'hi' }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError);
    assert.equal(e.status, 404);
    assert.equal(e.code, 'model_not_found');
    return true;
  });
});

test('a bad temperature is a 400 BadRequestError naming it', async () => {
  await assert.rejects(openai.completions.create({ prompt: 'hi', temperature: -1 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.equal(e.param, 'temperature');
    return true;
  });
});

test('malformed JSON is a 400', async () => {
  assertError(await post('/v1/completions', '{"prompt": "hi",'), 400);
  assertError(await post('/v1/chat/completions', 'not json at all'), 400);
  assertError(await post('/v1/completions', '[1, 2]'), 400);
  assertError(await post('/v1/completions', ''), 400);
});

test('a known field of the wrong type or value is a 400 with param', async () => {
  assertError(await post('/v1/completions', { prompt: 'hi', max_tokens: 'ten' }), 400, 'max_tokens');
  assertError(await post('/v1/completions', { prompt: 'hi', max_tokens: 2.5 }), 400, 'max_tokens');
  assertError(await post('/v1/completions', { prompt: 'hi', max_tokens: 0 }), 400, 'max_tokens');
  assertError(await post('/v1/completions', { prompt: 'hi', top_p: 0 }), 400, 'top_p');
  assertError(await post('/v1/completions', { prompt: 'hi', stream: 'yes' }), 400, 'stream');
  assertError(await post('/v1/completions', { prompt: 'hi', stop: [1] }), 400, 'stop');
  assertError(await post('/v1/completions', { prompt: 'hi', n: 1000 }), 400, 'n');
  assertError(await post('/v1/completions', { prompt: 'hi', logprobs: 99 }), 400, 'logprobs');
  assertError(await post('/v1/completions', { prompt: 'hi', seed: 'x' }), 400, 'seed');
  assertError(await post('/v1/completions', { prompt: 42 }), 400, 'prompt');
  assertError(await post('/v1/completions', { prompt: [5, 999999] }), 400, 'prompt');
  assertError(await post('/v1/completions', { prompt: ['one', 'two'] }), 400, 'prompt');
  assertError(await post('/v1/completions', {}), 400, 'prompt');
  assertError(await post('/v1/completions', { prompt: 'hi', model: 7 }), 400, 'model');
  assertError(await post('/v1/chat/completions', { messages: 'hi' }), 400, 'messages');
  assertError(await post('/v1/chat/completions', { messages: [{ content: 'no role' }] }), 400, 'messages');
  assertError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: 'x' }], top_logprobs: 2 }), 400, 'top_logprobs');
  assertError(await post('/v1/completions', { prompt: 'hi', echo: true }), 400, 'echo');
});

test('unknown fields are ignored', async () => {
  const r = await post('/v1/completions', { prompt: 'hi', max_tokens: 2, some_future_field: { x: 1 } });
  assert.equal(r.status, 200);
});

test('an unknown route is a 404, a wrong method a 405', async () => {
  assertError(await post('/v1/nothing', {}), 404);
  assertError(await get('/v2/models'), 404);
  const r = await get('/v1/completions');
  assertError(r, 405);
  assert.equal(r.headers.get('allow'), 'POST');
});

test('a prompt longer than the context is a 400 context_length_exceeded', async () => {
  const prompt = Array(CONTEXT + 10).fill(100);
  const r = await post('/v1/completions', { prompt, max_tokens: 5 });
  assertError(r, 400, 'prompt');
  assert.equal(r.json.error.code, 'context_length_exceeded');
  assert.match(r.json.error.message, /maximum context length is 2048 tokens/);
  // A prompt that fits, with too many tokens asked for.
  const r2 = await post('/v1/completions', { prompt: Array(2000).fill(100), max_tokens: 100 });
  assertError(r2, 400, 'prompt');
  assert.match(r2.json.error.message, /you requested 2100 tokens \(2000 in the prompt, 100 in the completion\)/);
  // Chat: the default max_tokens is the rest of the context.
  const long = 'Once upon a time '.repeat(800);
  assertError(await post('/v1/chat/completions', { messages: [{ role: 'user', content: long }] }), 400, 'messages');
});

test('a body over --max-body-bytes is a 413', async () => {
  const r = await post('/v1/completions', { prompt: 'x'.repeat(70000) });
  assertError(r, 413);
  // The server keeps serving, on the same and on new connections.
  assert.equal((await post('/v1/completions', { prompt: 'hi', max_tokens: 2 })).status, 200);
});

test('/generate and /tokenize errors are OpenAI-shaped too', async () => {
  assertError(await post('/generate', { sampling_params: {} }), 400, 'text');
  assertError(await post('/generate', { text: 'hi', sampling_params: { max_completion_tokens: -1 } }), 400, 'max_completion_tokens');
  assertError(await post('/tokenize', { prompt: 5 }), 400, 'prompt');
  assertError(await post('/detokenize', { tokens: [-1] }), 400, 'tokens');
});

test('still serving after all that', async () => {
  const r = await openai.completions.create({ prompt: 'hi', max_tokens: 3 });
  assert.equal(r.choices.length, 1);
  assert.equal((await get('/health', { url: URL })).status, 200);
});
