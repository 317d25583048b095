// Response streaming end to end: awslambda.streamifyResponse and HttpResponseStream.from inside real
// instances, InvokeWithResponseStream through the AWS SDK v3 (its own event-stream parser), Invoke of a
// streaming handler, and a RESPONSE_STREAM function URL through fetch.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateFunctionCommand, CreateFunctionUrlConfigCommand, InvokeCommand, InvokeWithResponseStreamCommand,
  type InvokeWithResponseStreamResponseEvent,
} from '@aws-sdk/client-lambda';
import { channels } from '../src/core/events.ts';
import { STREAM_CHUNK_BYTES, STREAM_WINDOW_BYTES } from '../src/runtimes/node/protocol.ts';
import { eventually, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

/**
 * A function prelude: `signalled(n)` settles once the instance has had n SIGUSR2s, so the test decides when
 * the function goes on writing (as in timers-and-policies.test.ts).
 */
const GATE = "let signals = 0; const waiting = new Set(); process.on('SIGUSR2', () => { signals++; for (const w of waiting) w(); });\n" +
  'const signalled = (n) => new Promise((r) => { const w = () => { if (signals >= n) { waiting.delete(w); r(); } }; waiting.add(w); w(); });';

/**
 * A streaming handler: `setup` may replace the stream; it writes `first;`, waits for the signal numbered
 * `signal` (in the event, or in the body of a function URL's event), writes `second`.
 */
const gated = (setup: string) => `${GATE}
export const handler = awslambda.streamifyResponse(async (event, responseStream, context) => {
  ${setup}
  responseStream.write('first;');
  await signalled(event.signal ?? JSON.parse(event.body).signal);
  responseStream.write('second');
  responseStream.end();
});`;

const PRELUDE = { statusCode: 201, headers: { 'content-type': 'text/plain', 'x-streamed': 'yes' }, cookies: ['a=1', 'b=2'] };

const text = (b?: Uint8Array) => Buffer.from(b ?? []).toString('utf8');
const json = (v: unknown) => Buffer.from(JSON.stringify(v));

/** The rest of an event stream: the payload bytes and the InvokeComplete event. */
async function drain(it: AsyncIterator<InvokeWithResponseStreamResponseEvent>, bytes: Buffer[] = []) {
  for (;;) {
    const { value, done } = await it.next();
    assert.ok(!done, 'the stream ended without an InvokeComplete event');
    if (value.PayloadChunk) bytes.push(Buffer.from(value.PayloadChunk.Payload ?? []));
    else if (value.InvokeComplete) {
      assert.ok((await it.next()).done, 'InvokeComplete is the last event');
      return { body: Buffer.concat(bytes), complete: value.InvokeComplete };
    }
  }
}

describe('response streaming', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 }); });
  after(async () => { await t.stop(); });

  const create = (name: string, source: string, timeout = 60) => t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x', Timeout: timeout,
    Code: { ZipFile: pkg({ 'index.mjs': source }) },
  }));
  const stream = (name: string, payload: unknown, extra: { LogType?: 'Tail' } = {}, abortSignal?: AbortSignal) =>
    t.lambda.send(new InvokeWithResponseStreamCommand({ FunctionName: name, Payload: json(payload), ...extra }), { abortSignal });
  /** The one live instance of a function. */
  const instanceOf = (name: string) => {
    const live = t.thaw.platform.agent.instances().filter((i) => i.functionName === name && i.state !== 'gone' && i.state !== 'stopping');
    assert.equal(live.length, 1, `one instance of ${name}`);
    return live[0];
  };
  const record = (id: string | undefined) => eventually(async () => {
    const r = await getJson(`${t.url}/thaw/v1/invocations/${id}`);
    return r.outcome ? r : null;
  }, `the record of invocation ${id}`);

  test('InvokeWithResponseStream: a chunk reaches the SDK while the function is still running, then the rest and InvokeComplete', async () => {
    await create('gated', gated("responseStream.setContentType('text/plain');"));
    const r = await stream('gated', { signal: 1 }, { LogType: 'Tail' });
    assert.equal(r.StatusCode, 200);
    assert.equal(r.ExecutedVersion, '$LATEST');
    assert.equal(r.ResponseStreamContentType, 'text/plain');
    const it = r.EventStream![Symbol.asyncIterator]();
    const first = await it.next();
    assert.equal(text(first.value.PayloadChunk?.Payload), 'first;');
    // The function cannot have finished: it waits for the signal sent only now.
    const running = instanceOf('gated');
    assert.equal(running.state, 'busy');
    process.kill(running.pid, 'SIGUSR2');
    const { body, complete } = await drain(it);
    assert.equal(body.toString(), 'second');
    assert.equal(complete.ErrorCode, undefined);
    const tail = Buffer.from(complete.LogResult!, 'base64').toString();
    assert.match(tail, /START RequestId: /);
    assert.match(tail, /REPORT RequestId: .*Billed Duration: \d+ ms/);
    // The invocation is recorded, phased and billed like any other.
    const rec = await record(r.$metadata.requestId);
    assert.equal(rec.outcome, 'success');
    assert.equal(rec.trigger, 'api');
    assert.ok(rec.phases.some((p: { name: string }) => p.name === 'handler'));
    assert.equal(rec.billedMs, Math.ceil(rec.initMs + rec.handlerMs));
    assert.equal(instanceOf('gated').state, 'idle');
  });

  test('HttpResponseStream.from: the stream begins with the JSON prelude and 8 NUL bytes, under its content type', async () => {
    await create('prelude', gated(`responseStream = awslambda.HttpResponseStream.from(responseStream, ${JSON.stringify(PRELUDE)});`));
    const r = await stream('prelude', { signal: 1 });
    assert.equal(r.ResponseStreamContentType, 'application/vnd.awslambda.http-integration-response');
    const it = r.EventStream![Symbol.asyncIterator]();
    const bytes: Buffer[] = [];
    while (!Buffer.concat(bytes).toString().endsWith('first;')) bytes.push(Buffer.from((await it.next()).value.PayloadChunk!.Payload!));
    process.kill(instanceOf('prelude').pid, 'SIGUSR2');
    const { body, complete } = await drain(it, bytes);
    assert.equal(complete.ErrorCode, undefined);
    assert.deepEqual(body, Buffer.concat([json(PRELUDE), Buffer.alloc(8), Buffer.from('first;second')]));
  });

  test('a RESPONSE_STREAM function URL: the prelude is the status, headers and cookies; the body comes chunk by chunk as written', async () => {
    const url = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'prelude', AuthType: 'AWS_IAM', InvokeMode: 'RESPONSE_STREAM' }));
    assert.equal(url.InvokeMode, 'RESPONSE_STREAM');
    const res = await fetch(`${url.FunctionUrl}hello?x=1`, { method: 'POST', body: JSON.stringify({ signal: 2 }) });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get('x-streamed'), 'yes');
    assert.equal(res.headers.get('content-type'), 'text/plain');
    assert.deepEqual(res.headers.getSetCookie(), ['a=1', 'b=2']);
    assert.equal(res.headers.get('transfer-encoding'), 'chunked');
    const reader = res.body!.getReader();
    let got = '';
    while (!got.endsWith('first;')) got += text((await reader.read()).value);
    assert.equal(got, 'first;', 'no prelude bytes in the body');
    // The URL's v2.0 event reached the function, which is held until this signal.
    const running = instanceOf('prelude');
    assert.equal(running.state, 'busy');
    process.kill(running.pid, 'SIGUSR2');
    for (let r = await reader.read(); !r.done; r = await reader.read()) got += text(r.value);
    assert.equal(got, 'first;second');
    // Without a prelude: 200 and the stream's own content type; a prelude that is not JSON: Lambda's 502.
    await create('csv', "export const handler = awslambda.streamifyResponse(async (event, s) => { s.setContentType('text/csv'); s.end('a,b'); });");
    await create('garbled', "export const handler = awslambda.streamifyResponse(async (event, s) => { s.setContentType('application/vnd.awslambda.http-integration-response'); s.write('{not json'); s.end(new Uint8Array(8)); });");
    for (const [name, status, type, body] of [['csv', 200, 'text/csv', 'a,b'], ['garbled', 502, 'application/json', '{"message":"Internal Server Error"}']] as const) {
      const u = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: name, AuthType: 'AWS_IAM', InvokeMode: 'RESPONSE_STREAM' }));
      const r = await fetch(u.FunctionUrl!);
      assert.equal(r.status, status, name);
      assert.equal(r.headers.get('content-type'), type, name);
      assert.equal(await r.text(), body, name);
    }
  });

  test('an error mid-stream ends it with InvokeComplete ErrorCode and ErrorDetails; so does a timeout', async () => {
    await create('fails', "export const handler = awslambda.streamifyResponse(async (event, s) => { s.write('partial'); await new Promise((r) => setTimeout(r, 10)); throw new TypeError('boom'); });");
    const r = await stream('fails', {});
    const { body, complete } = await drain(r.EventStream![Symbol.asyncIterator]());
    assert.equal(body.toString(), 'partial');
    assert.equal(complete.ErrorCode, 'TypeError');
    assert.equal(complete.ErrorDetails, 'boom');
    assert.equal((await record(r.$metadata.requestId)).outcome, 'error');

    await create('hangs', "export const handler = awslambda.streamifyResponse(async (event, s) => { s.write('partial'); await new Promise(() => {}); });", 1);
    const h = await stream('hangs', {});
    const end = await drain(h.EventStream![Symbol.asyncIterator]());
    assert.equal(end.body.toString(), 'partial');
    assert.equal(end.complete.ErrorCode, 'Sandbox.Timedout');
    assert.match(end.complete.ErrorDetails!, /Task timed out after 1\.00 seconds/);
    assert.equal((await record(h.$metadata.requestId)).outcome, 'timeout');
  });

  test('Invoke of a streaming handler returns what it wrote, buffered; InvokeWithResponseStream of a buffered handler, one chunk', async () => {
    await create('writes', "export const handler = awslambda.streamifyResponse(async (event, s) => { for (const x of ['a', 'b', { c: 1 }]) { s.write(x); await new Promise((r) => setImmediate(r)); } s.end(); return 'ignored'; });");
    const plain = await t.lambda.send(new InvokeCommand({ FunctionName: 'writes', Payload: json({}) }));
    assert.equal(plain.StatusCode, 200);
    assert.equal(plain.FunctionError, undefined);
    assert.equal(text(plain.Payload), 'ab{"c":1}');

    await create('returns', 'export const handler = async (event) => ({ ok: true, got: event });');
    const r = await stream('returns', { n: 1 });
    const { body, complete } = await drain(r.EventStream![Symbol.asyncIterator]());
    assert.deepEqual(JSON.parse(body.toString()), { ok: true, got: { n: 1 } });
    assert.equal(complete.ErrorCode, undefined);
  });

  test('a streaming handler restored from its version\'s snapshot streams as well', async () => {
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'snapped', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x', Publish: true,
      Code: { ZipFile: pkg({ 'index.mjs': "const greeting = 'restored'; export const handler = awslambda.streamifyResponse(async (event, s) => { s.write(greeting); s.end(); });" }) },
    }));
    const snap = await eventually(async () => {
      const x = (await getJson(`${t.url}/thaw/v1/functions/snapped/snapshots`)).snapshots.find((s: { version: string }) => s.version === '1');
      return x && x.status !== 'pending' && x;
    }, 'the snapshot of snapped:1', 60_000);
    assert.equal(snap.status, 'ready', JSON.stringify(snap));
    const r = await t.lambda.send(new InvokeWithResponseStreamCommand({ FunctionName: 'snapped', Qualifier: '1', Payload: json({}) }));
    assert.equal(r.ExecutedVersion, '1');
    const { body, complete } = await drain(r.EventStream![Symbol.asyncIterator]());
    assert.equal(body.toString(), 'restored');
    assert.equal(complete.ErrorCode, undefined);
    assert.equal((await record(r.$metadata.requestId)).start, 'restored');
  });

  test('nodejs20.x and nodejs22.x stream as nodejs24.x does', async () => {
    for (const runtime of ['nodejs20.x', 'nodejs22.x'] as const) {
      const name = `on-${runtime.replace('.', '-')}`;
      await t.lambda.send(new CreateFunctionCommand({
        FunctionName: name, Runtime: runtime, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x',
        Code: { ZipFile: pkg({ 'index.mjs': "export const handler = awslambda.streamifyResponse(async (event, s) => { s.write(process.versions.node.split('.')[0] + ';'); await new Promise((r) => setImmediate(r)); s.end('done'); });" }) },
      }));
      const r = await stream(name, {});
      const { body, complete } = await drain(r.EventStream![Symbol.asyncIterator]());
      assert.equal(complete.ErrorCode, undefined, complete.ErrorDetails);
      assert.equal(body.toString(), `${runtime.slice(6, 8)};done`);
    }
  });

  test('a client that goes away ends the invocation (aborted); the handler sees its stream fail and its instance serves the next call', async () => {
    await create('ticks', `import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
export const handler = awslambda.streamifyResponse(async (event, responseStream) => {
  if (event.once) return void responseStream.end('once');
  async function* ticks() { for (let i = 0; ; i++) { yield 'tick ' + i + '\\n'; await new Promise((r) => setTimeout(r, 5)); } }
  await pipeline(Readable.from(ticks()), responseStream);
});`);
    const ac = new AbortController();
    const r = await stream('ticks', {}, {}, ac.signal);
    const before = instanceOf('ticks');
    let chunks = 0;
    await assert.rejects(async () => {
      for await (const e of r.EventStream!) if (e.PayloadChunk && ++chunks === 3) ac.abort();
    });
    const rec = await record(r.$metadata.requestId);
    assert.equal(rec.outcome, 'aborted');
    await eventually(async () => instanceOf('ticks').state === 'idle', 'the instance to be idle again');
    const next = await t.lambda.send(new InvokeCommand({ FunctionName: 'ticks', Payload: json({ once: true }) }));
    assert.equal(text(next.Payload), 'once');
    assert.equal(instanceOf('ticks').id, before.id, 'the same instance, alive');
    assert.equal((await record(next.$metadata.requestId)).start, 'warm');
  });

  test('a client that does not read holds the function: at most the window is in flight, whatever it writes at once', async () => {
    const { platform } = t.thaw;
    await create('big', `export const handler = awslambda.streamifyResponse(async (event, s) => {
  const done = new Promise((r) => s.write(Buffer.alloc(event.bytes, 120), r));
  console.log('write returned');
  await done;
  s.end();
});`);
    // A stalled client: nothing is consumed until the function's log line says its one write call returned.
    // The channel keeps order, so every chunk sent during that call has been delivered by then.
    let delivered = 0;
    let atLog = -1;
    const held: (() => void)[] = [];
    const onLog = (m: unknown) => {
      const { line, functionName } = m as { line: string; functionName: string };
      if (functionName !== 'big' || !line.includes('write returned')) return;
      atLog = delivered;
      for (const c of held.splice(0)) c();
    };
    channels.log.subscribe(onLog);
    try {
      const bytes = 8 * 1024 * 1024;
      let contentType = '';
      const r = await platform.invoke('big', null, JSON.stringify({ bytes }), {
        trigger: 'api',
        stream: {
          start: (head) => { contentType = head.contentType; },
          write: (chunk, consumed) => {
            assert.ok(chunk.length <= STREAM_CHUNK_BYTES);
            delivered += chunk.length;
            if (atLog === -1) held.push(consumed); else consumed();
          },
        },
      });
      assert.equal(r.record.outcome, 'success');
      assert.equal(contentType, 'application/octet-stream');
      assert.equal(atLog, STREAM_WINDOW_BYTES, 'the runtime stopped at the window until the host consumed');
      assert.equal(delivered, bytes, 'then everything came');
    } finally {
      channels.log.unsubscribe(onLog);
    }
  });

  test('limits: a streamed response is cut at 20 MB, a buffered one fails over 6 MB (Function.ResponseSizeTooLarge)', async () => {
    const r = await stream('big', { bytes: 21 * 1024 * 1024 });
    const { body, complete } = await drain(r.EventStream![Symbol.asyncIterator]());
    assert.equal(complete.ErrorCode, 'Function.ResponseSizeTooLarge');
    assert.ok(body.length <= 20 * 1024 * 1024, `${body.length} bytes reached the client`);
    const plain = await t.lambda.send(new InvokeCommand({ FunctionName: 'big', Payload: json({ bytes: 7 * 1024 * 1024 }) }));
    assert.equal(plain.FunctionError, 'Unhandled');
    assert.equal(JSON.parse(text(plain.Payload)).errorType, 'Function.ResponseSizeTooLarge');
    assert.equal(instanceOf('big').state, 'idle', 'the cut streams failed the handler, not its instance');
  });
});

test('a prelude\'s length and hop-by-hop headers are dropped: the gateway frames the stream itself', async () => {
  const { parsePrelude } = await import('../src/gateway/lambda-streaming-api.ts');
  const head = parsePrelude(Buffer.from(JSON.stringify({ statusCode: 202, headers: { 'Content-Length': '2', 'Transfer-Encoding': 'gzip', Connection: 'close', 'X-Kept': 'yes' } })));
  assert.ok(head);
  assert.equal(head.status, 202);
  assert.equal(head.headers['x-kept'], 'yes');
  for (const h of ['content-length', 'transfer-encoding', 'connection']) assert.equal(head.headers[h], undefined, h);
});
