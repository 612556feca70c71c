// chat.test.mjs — /v1/chat/completions through the openai client, with the
// ChatML template run.sh gives the server (stories260K has none).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, post, MODEL_NAME } from './helpers.mjs';

const openai = client();
const messages = [{ role: 'user', content: 'Tell me a story' }];

test('chat: the reply continues the rendered template, as a completion would', async () => {
  const r = await openai.chat.completions.create({ model: MODEL_NAME, messages, max_tokens: 20, temperature: 0 });
  assert.equal(r.object, 'chat.completion');
  assert.match(r.id, /^chatcmpl-/);
  assert.equal(r.choices[0].message.role, 'assistant');
  assert.equal(typeof r.choices[0].message.content, 'string');
  assert.ok(['stop', 'length'].includes(r.choices[0].finish_reason));
  // The same prompt through /tokenize (messages) and /v1/completions (ids).
  const t = await post('/tokenize', { messages });
  assert.equal(t.status, 200);
  assert.equal(t.json.count, r.usage.prompt_tokens);
  const c = await openai.completions.create({ prompt: t.json.tokens, max_tokens: 20, temperature: 0 });
  assert.equal(r.choices[0].message.content, c.choices[0].text);
});

test('chat streaming: role first, then the same content, usage, [DONE]', async () => {
  const full = await openai.chat.completions.create({ messages, max_tokens: 20, temperature: 0 });
  const stream = await openai.chat.completions.create({
    messages, max_tokens: 20, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let content = '', role = null, first = true, finish = null, usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, 'chat.completion.chunk');
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      if (first) { role = c.delta.role; first = false; }
      content += c.delta.content ?? '';
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(role, 'assistant');
  assert.equal(content, full.choices[0].message.content);
  assert.equal(finish, full.choices[0].finish_reason);
  assert.deepEqual(usage, full.usage);
});

test('content as text parts is the same as a string', async () => {
  const parts = [{ role: 'user', content: [{ type: 'text', text: 'Tell me' }, { type: 'text', text: 'a story' }] }];
  const joined = [{ role: 'user', content: 'Tell me\na story' }];
  const a = await openai.chat.completions.create({ messages: parts, max_tokens: 10, temperature: 0 });
  const b = await openai.chat.completions.create({ messages: joined, max_tokens: 10, temperature: 0 });
  assert.equal(a.choices[0].message.content, b.choices[0].message.content);
  assert.equal(a.usage.prompt_tokens, b.usage.prompt_tokens);
});

test('chat logprobs: one content entry per token, with top_logprobs', async () => {
  const r = await openai.chat.completions.create({ messages, max_tokens: 8, temperature: 0, logprobs: true, top_logprobs: 2 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const e of content) {
    assert.equal(typeof e.token, 'string');
    assert.ok(e.logprob <= 0);
    assert.ok(Array.isArray(e.bytes));
    assert.equal(e.top_logprobs.length, 2);
    assert.ok(Math.abs(e.top_logprobs[0].logprob - e.logprob) < 1e-6); // greedy
  }
});

test("the template's raise_exception is a 400 with its message", async () => {
  const r = await post('/v1/chat/completions', { messages: [{ role: 'wizard', content: 'hi' }] });
  assert.equal(r.status, 400);
  assert.equal(r.json.error.message, 'Unknown role: wizard');
  assert.equal(r.json.error.type, 'invalid_request_error');
});
