// Drives a running Lumen with the official openai SDK, as a client app
// would: structured output (json_schema) and required tool calls, each
// whole and streamed. Prints one JSON line per check; exits non-zero on
// the first failure. Usage: node check.cjs BASE_URL (…/v1); the SDK is
// loaded from $OPENAI_SDK_DIR/node_modules/openai (make openai-sdk).
const path = require('path');
const OpenAI = require(path.join(process.env.OPENAI_SDK_DIR, 'node_modules', 'openai')).default;

const client = new OpenAI({ baseURL: process.argv[2], apiKey: 'no-key', maxRetries: 0 });

const person = {
  type: 'object',
  properties: {
    name: { type: 'string', maxLength: 12 },
    age: { type: 'integer', minimum: 0, maximum: 120 },
    pets: { type: 'array', items: { enum: ['cat', 'dog'] }, maxItems: 3 },
  },
  required: ['name', 'age', 'pets'],
  additionalProperties: false,
};

const tools = [
  {
    type: 'function',
    function: {
      name: 'get_weather',
      description: 'Current weather for a city',
      parameters: {
        type: 'object',
        properties: { city: { type: 'string', maxLength: 10 }, unit: { enum: ['c', 'f'] } },
        required: ['city', 'unit'],
        additionalProperties: false,
      },
    },
  },
];

function fail(check, why) {
  console.log(JSON.stringify({ check, ok: false, why }));
  process.exit(1);
}

function checkPerson(check, text) {
  let v;
  try {
    v = JSON.parse(text);
  } catch (e) {
    fail(check, `content is not JSON: ${JSON.stringify(text)}`);
  }
  const keys = Object.keys(v).sort().join(',');
  if (keys !== 'age,name,pets' || typeof v.name !== 'string' || v.name.length > 12 || !Number.isInteger(v.age) ||
      v.age < 0 || v.age > 120 || !Array.isArray(v.pets) || v.pets.length > 3 || v.pets.some((p) => p !== 'cat' && p !== 'dog')) {
    fail(check, `does not follow the schema: ${text}`);
  }
  console.log(JSON.stringify({ check, ok: true, value: v }));
}

function checkCall(check, call) {
  if (!call || call.type !== 'function' || !/^call_/.test(call.id || '') || call.function.name !== 'get_weather') {
    fail(check, `bad tool call ${JSON.stringify(call)}`);
  }
  let args;
  try {
    args = JSON.parse(call.function.arguments);
  } catch (e) {
    fail(check, `arguments are not JSON: ${call.function.arguments}`);
  }
  if (typeof args.city !== 'string' || args.city.length > 10 || (args.unit !== 'c' && args.unit !== 'f')) {
    fail(check, `arguments do not follow the parameters: ${call.function.arguments}`);
  }
  console.log(JSON.stringify({ check, ok: true, call: { name: call.function.name, arguments: args } }));
}

async function main() {
  const base = { model: process.argv[3] || undefined, temperature: 1, max_tokens: 300 };
  const format = { type: 'json_schema', json_schema: { name: 'person', schema: person, strict: true } };
  const messages = [{ role: 'user', content: 'Describe a person as JSON.' }];

  const whole = await client.chat.completions.create({ ...base, seed: 1, messages, response_format: format });
  if (whole.choices[0].finish_reason !== 'stop') fail('json_schema', `finish_reason ${whole.choices[0].finish_reason}`);
  checkPerson('json_schema', whole.choices[0].message.content);

  const stream = await client.chat.completions.create({ ...base, seed: 2, messages, response_format: format, stream: true });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta?.content || '';
  checkPerson('json_schema stream', text);

  const ask = [{ role: 'user', content: 'What is the weather in Oslo?' }];
  const called = await client.chat.completions.create({ ...base, seed: 3, messages: ask, tools, tool_choice: 'required', parallel_tool_calls: false });
  const choice = called.choices[0];
  if (choice.finish_reason !== 'tool_calls' || choice.message.tool_calls?.length !== 1) {
    fail('tools', `finish_reason ${choice.finish_reason}, message ${JSON.stringify(choice.message)}`);
  }
  checkCall('tools', choice.message.tool_calls[0]);

  // The SDK's own stream helper assembles tool-call deltas by index.
  const runner = client.chat.completions.stream({ ...base, seed: 4, messages: ask, tools, tool_choice: 'required', parallel_tool_calls: false });
  const final = await runner.finalChatCompletion();
  if (final.choices[0].finish_reason !== 'tool_calls') fail('tools stream', `finish_reason ${final.choices[0].finish_reason}`);
  checkCall('tools stream', final.choices[0].message.tool_calls?.[0]);

  // A conversation that carries the call and its result back.
  const next = await client.chat.completions.create({
    ...base, seed: 5, max_tokens: 16, tools,
    messages: [...ask, choice.message, { role: 'tool', tool_call_id: choice.message.tool_calls[0].id, content: '{"temp": 3}' }],
  });
  if (!next.choices[0].finish_reason) fail('tool result', 'no finish_reason');
  console.log(JSON.stringify({ check: 'tool result', ok: true }));
}

// logprobs: the SDK's types for chat (choices[].logprobs.content[]) and
// completions (tokens, token_logprobs, top_logprobs, text_offset).
function checkChatLogprobs(check, content, n) {
  if (!Array.isArray(content) || content.length !== n) fail(check, `content ${JSON.stringify(content)}, want ${n} entries`);
  for (const e of content) {
    if (typeof e.token !== 'string' || typeof e.logprob !== 'number' || e.logprob > 0 || !Array.isArray(e.bytes) ||
        !Array.isArray(e.top_logprobs) || e.top_logprobs.length !== 2 || e.top_logprobs[0].token !== e.token) {
      fail(check, `bad entry ${JSON.stringify(e)}`);
    }
  }
  console.log(JSON.stringify({ check, ok: true, tokens: content.length }));
}

async function logprobs() {
  const messages = [{ role: 'user', content: 'Count to three.' }];
  const req = { messages, temperature: 0, max_tokens: 6, logprobs: true, top_logprobs: 2, ignore_eos: true };
  const whole = await client.chat.completions.create(req);
  checkChatLogprobs('logprobs', whole.choices[0].logprobs?.content, whole.usage.completion_tokens);

  const stream = await client.chat.completions.create({ ...req, stream: true });
  const content = [];
  for await (const chunk of stream) content.push(...(chunk.choices[0]?.logprobs?.content || []));
  checkChatLogprobs('logprobs stream', content, whole.usage.completion_tokens);

  const cmpl = await client.completions.create({ prompt: 'Once upon', max_tokens: 3, temperature: 0, logprobs: 2, echo: true, ignore_eos: true });
  const lp = cmpl.choices[0].logprobs;
  const n = cmpl.usage.prompt_tokens + cmpl.usage.completion_tokens;
  if (!cmpl.choices[0].text.startsWith('Once upon') || lp.tokens.length !== n || lp.token_logprobs.length !== n ||
      lp.token_logprobs[0] !== null || lp.top_logprobs.length !== n || lp.text_offset.length !== n) {
    fail('completions logprobs', JSON.stringify(cmpl.choices[0]));
  }
  console.log(JSON.stringify({ check: 'completions logprobs', ok: true }));

  const many = await client.chat.completions.create({ messages, max_tokens: 4, n: 3, seed: 9 });
  if (many.choices.length !== 3 || many.choices.some((c, i) => c.index !== i || typeof c.message.content !== 'string')) {
    fail('n', JSON.stringify(many.choices));
  }
  const batched = await client.completions.create({ prompt: ['One', 'Two'], max_tokens: 3 });
  if (batched.choices.length !== 2 || batched.choices[1].index !== 1) fail('n', JSON.stringify(batched.choices));
  console.log(JSON.stringify({ check: 'n', ok: true }));
}

// The Responses API (stateless): create, structured output, tools, the
// SDK's stream helper, and a clear 400 for what needs server-side state.
async function responses() {
  const r = await client.responses.create({ input: 'Say hello.', instructions: 'Be brief.', max_output_tokens: 8, temperature: 0 });
  if (r.object !== 'response' || !['completed', 'incomplete'].includes(r.status) || typeof r.output_text !== 'string' ||
      r.output[0]?.type !== 'message' || r.usage?.output_tokens < 1 || r.usage.total_tokens !== r.usage.input_tokens + r.usage.output_tokens) {
    fail('responses', JSON.stringify(r));
  }
  console.log(JSON.stringify({ check: 'responses', ok: true }));

  const js = await client.responses.create({
    input: [{ role: 'user', content: [{ type: 'input_text', text: 'Describe a person as JSON.' }] }], max_output_tokens: 300, temperature: 1,
    text: { format: { type: 'json_schema', name: 'person', schema: person, strict: true } },
  });
  checkPerson('responses json_schema', js.output_text);

  const ask = [{ role: 'user', content: 'What is the weather in Oslo?' }];
  const flat = [{ type: 'function', ...tools[0].function }];
  const called = await client.responses.create({ input: ask, tools: flat, tool_choice: 'required', parallel_tool_calls: false, max_output_tokens: 300 });
  const call = called.output.find((o) => o.type === 'function_call');
  if (!call) fail('responses tools', JSON.stringify(called.output));
  checkCall('responses tools', { id: call.call_id, type: 'function', function: { name: call.name, arguments: call.arguments } });

  // The call and its output go back as input items.
  const next = await client.responses.create({
    input: [...ask, call, { type: 'function_call_output', call_id: call.call_id, output: '{"temp": 3}' }], tools: flat, max_output_tokens: 8,
  });
  if (!next.status) fail('responses tool result', JSON.stringify(next));
  console.log(JSON.stringify({ check: 'responses tool result', ok: true }));

  const stream = client.responses.stream({ input: 'Count to three.', max_output_tokens: 12, temperature: 0 });
  const kinds = [];
  let deltas = '';
  stream.on('event', (e) => kinds.push(e.type));
  stream.on('response.output_text.delta', (e) => { deltas += e.delta; });
  const final = await stream.finalResponse();
  // The helper's final response has no output_text convenience field,
  // and only response.completed (not response.incomplete, which a reply
  // cut by max_output_tokens ends with) replaces its snapshot.
  const text = final.output.filter((o) => o.type === 'message').flatMap((o) => o.content.map((c) => c.text)).join('');
  const last = kinds[kinds.length - 1];
  if (kinds[0] !== 'response.created' || !kinds.includes('response.output_text.delta') ||
      !['response.completed', 'response.incomplete'].includes(last) || text !== deltas || (last === 'response.completed' && !final.usage)) {
    fail('responses stream', JSON.stringify({ kinds, deltas, text, final }));
  }
  console.log(JSON.stringify({ check: 'responses stream', ok: true, events: kinds.length }));

  try {
    await client.responses.create({ input: 'Hi', previous_response_id: 'resp_123' });
    fail('responses stateless', 'previous_response_id was accepted');
  } catch (e) {
    if (e.status !== 400 || e.param !== 'previous_response_id') fail('responses stateless', String(e));
  }
  console.log(JSON.stringify({ check: 'responses stateless', ok: true }));
}

// Embeddings: the SDK asks for base64 unless told otherwise and decodes
// it; both ways must give the same unit vectors.
async function embeddings() {
  const input = ['The quick brown fox', 'jumps over the lazy dog'];
  const b64 = await client.embeddings.create({ input });
  const floats = await client.embeddings.create({ input, encoding_format: 'float' });
  const ok = b64.data.length === 2 && b64.data.every((d, i) => {
    const v = d.embedding;
    const w = floats.data[i].embedding;
    const norm = v.reduce((s, x) => s + x * x, 0);
    return d.index === i && v.length === w.length && v.length > 0 && Math.abs(norm - 1) < 1e-4 &&
      v.every((x, k) => Math.abs(x - w[k]) < 1e-6);
  });
  if (!ok || b64.object !== 'list' || !(b64.usage.prompt_tokens > 0)) fail('embeddings', JSON.stringify(b64).slice(0, 500));
  console.log(JSON.stringify({ check: 'embeddings', ok: true, dimensions: b64.data[0].embedding.length }));
}

main().then(logprobs).then(responses).then(embeddings).catch((e) => fail('sdk', String(e && e.stack || e)));
