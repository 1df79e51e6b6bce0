// The official openai npm package against rwkv-server's HTTP front (run by
// with_server.sh, demo model): non-streaming and streaming chat, a 5-turn
// conversation resent in full each turn whose cached_tokens grow (only the
// new message is computed), a Responses API chain through
// previous_response_id, and errors surfacing as the SDK's error classes.
import assert from "node:assert/strict";
import OpenAI from "openai";

const base = process.env.RWKV_HTTP_BASE;
assert.ok(base, "RWKV_HTTP_BASE is not set (run through with_server.sh)");
const client = new OpenAI({ baseURL: `${base}/v1`, apiKey: "unused", maxRetries: 0 });
const model = (await client.models.list()).data[0].id;
console.log(`model ${model}`);

// Non-streaming and streaming give the same greedy reply.
const question = [{ role: "user", content: "What is the capital of France?" }];
const whole = await client.chat.completions.create({
  model, messages: question, temperature: 0, max_tokens: 60,
});
const answer = whole.choices[0].message.content;
assert.match(answer, /Paris/);
assert.equal(whole.choices[0].finish_reason, "stop");
console.log(`non-streaming: ${JSON.stringify(answer)}`);

const stream = await client.chat.completions.create({
  model, messages: question, temperature: 0, max_tokens: 60, stream: true,
  stream_options: { include_usage: true },
});
let streamed = "", chunks = 0, usage = null, finish = null;
for await (const chunk of stream) {
  chunks++;
  if (chunk.usage) usage = chunk.usage;
  const choice = chunk.choices[0];
  if (choice?.delta?.content) streamed += choice.delta.content;
  if (choice?.finish_reason) finish = choice.finish_reason;
}
assert.equal(streamed, answer);
assert.equal(finish, "stop");
assert.ok(chunks > 3, `only ${chunks} chunks`);
assert.equal(usage.completion_tokens, whole.usage.completion_tokens);
console.log(`streaming: ${chunks} chunks, usage ${JSON.stringify(usage)}`);

// A conversation resent in full every turn: everything up to the previous
// reply comes from the prefix cache, so the computed part is the new
// message in its template (plus the separator when a reply was cut).
const messages = [];
let previousCached = -1;
const turns = ["My name is Alice.", "What is the capital of Italy?",
  "What is the capital of Spain?", "How are you?", "What is my name?"];
for (const [i, content] of turns.entries()) {
  messages.push({ role: "user", content });
  const c = await client.chat.completions.create({
    model, messages, temperature: 0, max_tokens: 60,
  });
  const cached = c.usage.prompt_tokens_details.cached_tokens;
  const computed = c.usage.prompt_tokens - cached;
  const template = `User: ${content}\n\nAssistant:`.length;  // bytes = tokens here
  console.log(`turn ${i + 1}: prompt ${c.usage.prompt_tokens}, cached ${cached}, ` +
              `computed ${computed} (new message in template: ${template})`);
  assert.ok(cached > previousCached, "cached_tokens must grow");
  if (i > 0) assert.ok(computed <= template + 2, `turn ${i + 1} computed ${computed}`);
  previousCached = cached;
  messages.push({ role: "assistant", content: c.choices[0].message.content });
}
const last = messages[messages.length - 1].content;
console.log(`last reply: ${JSON.stringify(last)}`);
assert.match(last, /Alice/, "the resent conversation remembers the name");

// The Responses API: a chain through previous_response_id continues from
// the stored state; continuing costs only the new input.
const first = await client.responses.create({
  model, input: "My name is Alice.", temperature: 0, max_output_tokens: 60,
});
assert.match(first.id, /^resp_/);
const second = await client.responses.create({
  model, input: "What is my name?", previous_response_id: first.id,
  temperature: 0, max_output_tokens: 60,
});
console.log(`responses: ${JSON.stringify(first.output_text)} -> ` +
            `${JSON.stringify(second.output_text)}, usage ${JSON.stringify(second.usage)}`);
assert.match(second.output_text, /Alice/);
assert.equal(second.usage.input_tokens_details.cached_tokens, first.usage.total_tokens);
assert.equal(second.previous_response_id, first.id);
const retrieved = await client.responses.retrieve(first.id);
assert.equal(retrieved.output_text, first.output_text);

const events = [];
const streamedResponse = await client.responses.create({
  model, input: "What is the capital of Spain?", previous_response_id: second.id,
  temperature: 0, max_output_tokens: 60, stream: true,
});
let delta = "";
for await (const event of streamedResponse) {
  events.push(event.type);
  if (event.type === "response.output_text.delta") delta += event.delta;
}
assert.equal(events[0], "response.created");
assert.equal(events[events.length - 1], "response.completed");
assert.match(delta, /Madrid/);
console.log(`streamed response: ${events.length} events, ${JSON.stringify(delta)}`);
await client.responses.delete(second.id);
await assert.rejects(client.responses.retrieve(second.id), (e) => e.status === 404);

// Errors come back as the SDK's classes, naming the field.
await assert.rejects(
  client.chat.completions.create({ model, messages: question, n: 2 }),
  (e) => e instanceof OpenAI.BadRequestError && /n is not supported/.test(e.message),
);
await assert.rejects(
  client.chat.completions.create({ model, messages: [] }),
  (e) => e.status === 400 && /messages is empty/.test(e.message),
);
console.log("PASS");
