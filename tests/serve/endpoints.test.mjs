// endpoints.test.mjs — /v1/models, /health, /metrics, /tokenize,
// /detokenize and shortfin's /generate.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { client, get, post, sseData, MODEL_NAME } from './helpers.mjs';

const openai = client();

test('models.list and models.retrieve', async () => {
  const list = await openai.models.list();
  assert.deepEqual(list.data.map((m) => m.id), [MODEL_NAME]);
  assert.equal(list.data[0].object, 'model');
  const m = await openai.models.retrieve(MODEL_NAME);
  assert.equal(m.id, MODEL_NAME);
  assert.equal((await get('/v1/models/nope')).status, 404);
});

test('/health', async () => {
  const r = await get('/health');
  assert.equal(r.status, 200);
});

test('/metrics: Prometheus text, every series llmc_, the listed ones present', async () => {
  await openai.completions.create({ prompt: 'Once', max_tokens: 4 }); // something to count
  const r = await get('/metrics');
  assert.equal(r.status, 200);
  assert.match(r.headers.get('content-type'), /^text\/plain/);
  for (const line of r.text.trim().split('\n')) {
    if (line.startsWith('# HELP ') || line.startsWith('# TYPE ')) assert.match(line, /^# (HELP|TYPE) llmc_/);
    else assert.match(line, /^llmc_[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/, line);
  }
  for (const name of ['llmc_kv_blocks_used', 'llmc_kv_blocks_total', 'llmc_requests_running',
    'llmc_requests_waiting', 'llmc_prefix_cache_hits_total', 'llmc_prompt_tokens_total',
    'llmc_generation_tokens_total'])
    assert.match(r.text, new RegExp(`^${name} \\d+$`, 'm'), name);
  for (const h of ['llmc_time_to_first_token_seconds', 'llmc_inter_token_latency_seconds']) {
    assert.match(r.text, new RegExp(`^# TYPE ${h} histogram$`, 'm'));
    assert.match(r.text, new RegExp(`^${h}_bucket\\{le="\\+Inf"\\} [1-9]\\d*$`, 'm'));
    assert.match(r.text, new RegExp(`^${h}_sum `, 'm'));
    assert.match(r.text, new RegExp(`^${h}_count [1-9]`, 'm'));
  }
  assert.match(r.text, /^# TYPE llmc_generation_tokens_total counter$/m);
});

test('/tokenize and /detokenize round trip', async () => {
  const text = 'Once upon a time, there was a cat.';
  const t = await post('/tokenize', { prompt: text, add_special_tokens: false });
  assert.equal(t.status, 200);
  assert.equal(t.json.count, t.json.tokens.length);
  assert.equal(t.json.max_model_len, 2048);
  const withBos = await post('/tokenize', { prompt: text });
  assert.equal(withBos.json.count, t.json.count + 1); // BOS, as the tokenizer adds it
  const d = await post('/detokenize', { tokens: t.json.tokens });
  assert.equal(d.status, 200);
  assert.equal(d.json.prompt, text);
});

test("/generate answers as shortfin does", async () => {
  const prompt = 'Once upon a time';
  const c = await openai.completions.create({ prompt, max_tokens: 20, temperature: 0 });
  const r = await post('/generate', { text: prompt, sampling_params: { max_completion_tokens: 20, temperature: 0 } });
  assert.equal(r.status, 200);
  assert.deepEqual(r.json, { responses: [{ prompt, responses: [{ text: c.choices[0].text }] }] });
  // Streaming: "data(RID): text" events, then "data: [DONE]".
  const s = await post('/generate', { text: prompt, rid: 'r1', stream: true, sampling_params: { max_completion_tokens: 20, temperature: 0 } });
  assert.equal(s.status, 200);
  assert.match(s.headers.get('content-type'), /^text\/event-stream/);
  const events = s.text.split('\n\n').filter((e) => e);
  assert.equal(events.at(-1), 'data: [DONE]');
  let text = '';
  for (const e of events.slice(0, -1)) {
    assert.ok(e.startsWith('data(r1): '), e);
    text += e.slice('data(r1): '.length);
  }
  assert.equal(text, c.choices[0].text);
  // Token ids instead of text.
  const ids = await post('/generate', { text: prompt, return_input_ids: true, sampling_params: { max_completion_tokens: 5, temperature: 0 } });
  assert.equal(ids.json.length, 5);
  const d = await post('/detokenize', { tokens: ids.json });
  assert.ok(c.choices[0].text.startsWith(d.json.prompt));
});

test('an OpenAI stream by hand: data: lines, [DONE] last', async () => {
  const r = await post('/v1/completions', { prompt: 'Once', max_tokens: 5, stream: true });
  const data = sseData(r.text);
  assert.equal(data.at(-1), '[DONE]');
  for (const d of data.slice(0, -1)) assert.equal(JSON.parse(d).object, 'text_completion');
});
