// completions.test.mjs — /v1/completions through the openai client: the
// same text as `llmc run`, streamed or not, with n, logprobs, stop, seed,
// the prefix cache, and batching that does not change a request's output.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, llmcRun, metrics, MODEL_NAME } from './helpers.mjs';

const openai = client();
const PROMPT = 'Once upon a time';

test('non-streaming text equals llmc run --temp 0', async () => {
  const expected = llmcRun(PROMPT, 40);
  const r = await openai.completions.create({ model: MODEL_NAME, prompt: PROMPT, max_tokens: 40, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.match(r.id, /^cmpl-/);
  assert.equal(r.model, MODEL_NAME);
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.equal(r.usage.completion_tokens, 40);
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + 40);
});

test('a missing model field is the served model; max_tokens defaults to 16', async () => {
  const r = await openai.completions.create({ prompt: PROMPT, temperature: 0 });
  assert.equal(r.usage.completion_tokens, 16);
  assert.equal(r.choices[0].text, llmcRun(PROMPT, 16));
});

test('streaming: the deltas add up to the same text, with usage and [DONE]', async () => {
  const full = await openai.completions.create({ model: MODEL_NAME, prompt: PROMPT, max_tokens: 40, temperature: 0 });
  const stream = await openai.completions.create({
    model: MODEL_NAME, prompt: PROMPT, max_tokens: 40, temperature: 0, stream: true,
    stream_options: { include_usage: true },
  });
  let text = '', finish = null, usage = null, chunks = 0;
  for await (const chunk of stream) { // the client ends the loop at [DONE]
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.ok(chunks >= 2, `only ${chunks} chunks`); // a fast model may finish between two polls
  assert.equal(text, full.choices[0].text);
  assert.equal(finish, 'length');
  assert.deepEqual(usage, full.usage);
});

test('n = 2 gives two choices, indexed', async () => {
  const r = await openai.completions.create({ prompt: PROMPT, max_tokens: 8, n: 2, temperature: 1, seed: 5, ignore_eos: true });
  assert.deepEqual(r.choices.map((c) => c.index), [0, 1]);
  for (const c of r.choices) assert.ok(c.text.length > 0);
  assert.equal(r.usage.completion_tokens, 16);
});

test('logprobs: one entry per completion token, consistent with greedy choice', async () => {
  const r = await openai.completions.create({ prompt: PROMPT, max_tokens: 12, temperature: 0, logprobs: 3 });
  const lp = r.choices[0].logprobs;
  const n = r.usage.completion_tokens;
  assert.equal(lp.tokens.length, n);
  assert.equal(lp.token_logprobs.length, n);
  assert.equal(lp.top_logprobs.length, n);
  assert.equal(lp.text_offset.length, n);
  assert.equal(lp.tokens.join(''), r.choices[0].text); // each token's share of the text
  for (let i = 0; i < n; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alternatives = Object.values(lp.top_logprobs[i]);
    assert.ok(alternatives.length >= 1 && alternatives.length <= 4); // alternatives that read alike share a key
    // Greedy picks the most likely token: its logprob is the top one.
    assert.ok(Math.abs(Math.max(...alternatives) - lp.token_logprobs[i]) < 1e-6);
    if (i > 0) assert.ok(lp.text_offset[i] >= lp.text_offset[i - 1]);
  }
});

test('a stop string ends the text before it', async () => {
  const full = await openai.completions.create({ prompt: PROMPT, max_tokens: 40, temperature: 0 });
  const at = full.choices[0].text.indexOf('Lily');
  assert.ok(at > 0, full.choices[0].text);
  const r = await openai.completions.create({ prompt: PROMPT, max_tokens: 40, temperature: 0, stop: ['Lily'] });
  assert.equal(r.choices[0].text, full.choices[0].text.slice(0, at));
  assert.equal(r.choices[0].finish_reason, 'stop');
});

test('the same seed at temperature 1 gives the same text', async () => {
  const ask = (seed) => openai.completions.create({ prompt: PROMPT, max_tokens: 30, temperature: 1, seed });
  const [a, b, c] = await Promise.all([ask(42), ask(42), ask(43)]);
  assert.equal(a.choices[0].text, b.choices[0].text);
  assert.notEqual(a.choices[0].text, c.choices[0].text);
});

test('a prompt given as token ids', async () => {
  const tokens = (await (await fetch(`${process.env.LLMC_SERVE_URL}/tokenize`, {
    method: 'POST', body: JSON.stringify({ prompt: PROMPT }),
  })).json()).tokens;
  const a = await openai.completions.create({ prompt: tokens, max_tokens: 10, temperature: 0 });
  const b = await openai.completions.create({ prompt: PROMPT, max_tokens: 10, temperature: 0 });
  assert.equal(a.choices[0].text, b.choices[0].text);
});

test('batched requests give what each gives alone', async () => {
  const prompts = ['Once upon a time', 'The cat', 'Lily and Ben', 'One day', 'The sun was', 'Tom had a'];
  const alone = [];
  for (const p of prompts) alone.push((await openai.completions.create({ prompt: p, max_tokens: 24, temperature: 0 })).choices[0].text);
  const together = await Promise.all(prompts.map((p) => openai.completions.create({ prompt: p, max_tokens: 24, temperature: 0 })));
  assert.deepEqual(together.map((r) => r.choices[0].text), alone);
});

test('a repeated long prompt is served from the prefix cache', async () => {
  const prompt = 'Once upon a time, there was a little girl named Lily. She loved to play outside in the sunshine with her friends.';
  const before = await metrics();
  await openai.completions.create({ prompt, max_tokens: 4, temperature: 0 });
  const r = await openai.completions.create({ prompt, max_tokens: 4, temperature: 0 });
  assert.ok(r.usage.prompt_tokens >= 16);
  assert.ok(r.usage.prompt_tokens_details.cached_tokens >= 16, JSON.stringify(r.usage));
  const after = await metrics();
  assert.ok(after.llmc_prefix_cache_hits_total >= before.llmc_prefix_cache_hits_total + 16);
});
