// The official OpenAI JavaScript SDK (npm `openai`) against `v4agent serve`: plain and
// streamed completions, usage with cached tokens, a conversation with tools whose assistant
// turn (reasoning_content included) goes back unchanged and comes from the cache, and errors
// raised as the SDK's typed exceptions. Usage: node openai_sdk_check.cjs NODE_MODULES PORT
const assert = require('node:assert/strict');
const { OpenAI } = require(process.argv[2] + '/openai');
const client = new OpenAI({ baseURL: `http://127.0.0.1:${process.argv[3]}/v1`, apiKey: 'unused',
                            maxRetries: 0 });
const model = 'mini';
const tools = [{ type: 'function', function: { name: 'read_file', description: 'Read a file',
  parameters: { type: 'object', properties: { path: { type: 'string' } }, required: ['path'] } } }];

async function main() {
  const plain = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8, seed: 7 });
  assert.equal(plain.object, 'chat.completion');
  assert.equal(plain.choices[0].message.role, 'assistant');
  assert.equal(plain.usage.completion_tokens, 8);
  assert.equal(typeof plain.usage.prompt_tokens_details.cached_tokens, 'number');
  console.log('ok plain');

  const stream = await client.chat.completions.create({
    model, messages: [{ role: 'user', content: 'Hello there' }], max_tokens: 8, seed: 7,
    stream: true, stream_options: { include_usage: true } });
  let text = '', roles = 0, finish = null, usage = null;
  for await (const chunk of stream) {
    if (chunk.usage) usage = chunk.usage;
    if (!chunk.choices.length) continue;
    const d = chunk.choices[0].delta;
    if (d.role) roles++;
    text += (d.reasoning_content || '') + (d.content || '');
    if (chunk.choices[0].finish_reason) finish = chunk.choices[0].finish_reason;
  }
  assert.equal(roles, 1);
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 8);
  const m = plain.choices[0].message;
  assert.equal(text, (m.reasoning_content || '') + (m.content || ''), 'seeded stream == plain');
  console.log('ok stream');

  // With tools V4 keeps earlier reasoning: the turn sent back unchanged is a cached prefix.
  const history = [{ role: 'system', content: 'You read files.' },
                   { role: 'user', content: 'What is in README?' }];
  const first = await client.chat.completions.create({ model, messages: history, tools,
    tool_choice: 'auto', max_tokens: 12 });
  const turn = first.choices[0].message;
  assert.ok(typeof turn.reasoning_content === 'string', 'reasoning_content comes back');
  const second = await client.chat.completions.create({ model, tools, max_tokens: 4,
    messages: [...history, turn, { role: 'user', content: 'And now?' }] });
  assert.ok(second.usage.prompt_tokens_details.cached_tokens >= first.usage.prompt_tokens +
            first.usage.completion_tokens - 1,
            `cached ${second.usage.prompt_tokens_details.cached_tokens} of ` +
            `${first.usage.prompt_tokens} + ${first.usage.completion_tokens}`);
  console.log('ok reasoning round trip');

  await assert.rejects(client.chat.completions.create({ model: 'gpt-9', messages: [
    { role: 'user', content: 'x' }] }), (e) => e instanceof OpenAI.NotFoundError &&
    e.code === 'model_not_found');
  await assert.rejects(client.chat.completions.create({ model, messages: [
    { role: 'user', content: 'x' }], tools: [{ type: 'function', function: { name: 'f',
    parameters: { type: 'string' } } }] }), (e) => e instanceof OpenAI.BadRequestError &&
    e.param === 'tools[0].function.parameters');
  console.log('ok errors');

  // The legacy completions route: a raw prompt, plain and streamed.
  const legacy = await client.completions.create({ model, prompt: 'Once upon', max_tokens: 5,
    seed: 4 });
  assert.equal(legacy.object, 'text_completion');
  assert.equal(legacy.usage.completion_tokens, 5);
  let streamedText = '';
  for await (const c of await client.completions.create({ model, prompt: 'Once upon',
    max_tokens: 5, seed: 4, stream: true })) {
    if (c.choices.length) streamedText += c.choices[0].text;
  }
  assert.equal(streamedText, legacy.choices[0].text);
  console.log('ok completions');

  const models = await client.models.list();
  assert.equal(models.data[0].id, model);
  console.log('ok models');
}

main().then(() => console.log('all ok'), (e) => { console.error(e); process.exit(1); });
