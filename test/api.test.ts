// End to end through the AWS SDK v3 LambdaClient and plain HTTP: a real server, real instance processes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  CreateAliasCommand, CreateFunctionCommand, DeleteFunctionCommand, GetAliasCommand, GetFunctionCommand, InvokeCommand,
  ListFunctionsCommand, PublishVersionCommand, PutFunctionConcurrencyCommand, UpdateAliasCommand, UpdateFunctionCodeCommand,
  UpdateFunctionConfigurationCommand,
} from '@aws-sdk/client-lambda';
import { zipDirectory } from '../src/codestore/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, processesUnder, startTestThaw, type TestThaw } from './helpers.ts';

const examples = join(import.meta.dirname, '..', 'examples');
const dec = (b?: Uint8Array) => JSON.parse(Buffer.from(b ?? []).toString('utf8'));

describe('Lambda API through the AWS SDK', () => {
  let t: TestThaw;
  // The full cold path: no runtime pool, no freezing (test/ladder.test.ts covers the other rungs).
  before(async () => { t = await startTestThaw({ eventRetryDelaysMs: [100, 100], poolSize: 0, freezeAfterMs: -1 }); });
  after(async () => { await t.stop(); });

  const create = (name: string, code: Buffer, extra: Record<string, unknown> = {}) =>
    t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x', Code: { ZipFile: code }, ...extra }));

  test('CreateFunction + Invoke runs the handler: cold first, warm after, on the same instance', async () => {
    const out = await create('hello', await zipDirectory(join(examples, 'hello')), { Publish: true });
    assert.equal(out.Version, '1');
    assert.equal(out.State, 'Active');
    const first = await invokeHttp(t.url, 'hello', { name: 'Ada' });
    assert.equal(first.status, 200);
    assert.equal(first.json.message, 'Hello, Ada!');
    assert.equal(first.headers.get('x-thaw-start'), 'cold');
    assert.match(first.headers.get('server-timing')!, /sandbox;dur=.*runtime;dur=.*init;dur=.*handler;dur=/);
    const second = await invokeHttp(t.url, 'hello', { name: 'Bob' });
    assert.equal(second.headers.get('x-thaw-start'), 'warm');
    assert.equal(second.json.instanceStartedAt, first.json.instanceStartedAt);
    assert.equal(second.json.requestId, second.headers.get('x-thaw-invocation-id'));

    const sdk = await t.lambda.send(new InvokeCommand({ FunctionName: 'hello', Payload: Buffer.from('{"name":"SDK"}'), LogType: 'Tail' }));
    assert.equal(sdk.StatusCode, 200);
    assert.equal(sdk.FunctionError, undefined);
    assert.equal(sdk.ExecutedVersion, '$LATEST');
    assert.equal(dec(sdk.Payload).message, 'Hello, SDK!');
    const tail = Buffer.from(sdk.LogResult!, 'base64').toString();
    assert.match(tail, /START RequestId: /);
    assert.match(tail, /\tINFO\thello invoked \{"name":"SDK"\}/);
    assert.match(tail, /REPORT RequestId: .*Billed Duration: \d+ ms/);
  });

  test('the invocation record has every cold-start phase; billing starts at user init', async () => {
    const cold = await invokeHttp(t.url, 'hello', {}, { qualifier: '1' });
    assert.equal(cold.headers.get('x-thaw-start'), 'cold', 'version 1 has its own instances');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${cold.headers.get('x-thaw-invocation-id')}`);
    assert.deepEqual(rec.phases.map((p: { name: string }) => p.name), ['schedule', 'sandbox', 'code', 'unpack', 'env', 'network', 'runtime', 'init', 'handler']);
    assert.equal(rec.start, 'cold');
    assert.equal(rec.version, '1');
    assert.ok(rec.initMs > 0);
    assert.equal(rec.billedMs, Math.ceil(rec.initMs + rec.handlerMs));
    assert.ok(rec.durationMs >= rec.initMs + rec.handlerMs);
    const warm = await invokeHttp(t.url, 'hello', {}, { qualifier: '1' });
    const wrec = await getJson(`${t.url}/thaw/v1/invocations/${warm.headers.get('x-thaw-invocation-id')}`);
    assert.deepEqual(wrec.phases.map((p: { name: string }) => p.name), ['schedule', 'handler']);
    assert.equal(wrec.initMs, 0);
  });

  test('GetFunction, ListFunctions and UpdateFunctionConfiguration speak Lambda shapes', async () => {
    const got = await t.lambda.send(new GetFunctionCommand({ FunctionName: 'hello' }));
    assert.equal(got.Configuration?.Handler, 'index.handler');
    assert.equal(got.Configuration?.MemorySize, 128);
    const pkgBytes = await (await fetch(got.Code!.Location!)).arrayBuffer();
    assert.equal(Buffer.from(await crypto.subtle.digest('SHA-256', pkgBytes)).toString('base64'), got.Configuration?.CodeSha256);
    const oldInstances = new Set((await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { functionName: string; version: string }) => i.functionName === 'hello' && i.version === '$LATEST').map((i: { id: string }) => i.id));
    const updated = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'hello', MemorySize: 256, Timeout: 5, Environment: { Variables: { GREETING: 'hi' } } }));
    assert.equal(updated.MemorySize, 256);
    assert.equal(updated.Timeout, 5);
    const list = await t.lambda.send(new ListFunctionsCommand({}));
    assert.ok(list.Functions?.some((f) => f.FunctionName === 'hello' && f.MemorySize === 256));
    const after = await invokeHttp(t.url, 'hello');
    // A new instance of the new revision: started by this request, or warmed ahead of it (version prewarm).
    const start = after.headers.get('x-thaw-start');
    assert.ok(start === 'cold' || start === 'warm', `cold, or warm on a prewarmed instance: ${start}`);
    const rec = await eventually(async () => { const r = await fetch(`${t.url}/thaw/v1/invocations/${after.headers.get('x-thaw-invocation-id')}`); return r.ok && await r.json() as { instanceId: string }; }, 'the record');
    assert.ok(oldInstances.size > 0 && !oldInstances.has(rec.instanceId), 'a configuration change retires the old $LATEST instances');
  });

  test('ListFunctions pages with Marker and MaxItems, and refuses values that name no page', async () => {
    await create('paged', await zipDirectory(join(examples, 'hello')));
    const all = (await t.lambda.send(new ListFunctionsCommand({}))).Functions!.map((f) => f.FunctionName);
    assert.ok(all.length >= 2, `two functions at least: ${all}`);
    const first = await t.lambda.send(new ListFunctionsCommand({ MaxItems: 1 }));
    assert.deepEqual(first.Functions!.map((f) => f.FunctionName), all.slice(0, 1));
    assert.equal(first.NextMarker, '1');
    const second = await t.lambda.send(new ListFunctionsCommand({ MaxItems: 1, Marker: first.NextMarker }));
    assert.deepEqual(second.Functions!.map((f) => f.FunctionName), all.slice(1, 2));
    for (const q of ['Marker=-1', 'Marker=abc', 'MaxItems=0', 'MaxItems=10001', 'MaxItems=x']) {
      const r = await fetch(`${t.url}/2015-03-31/functions?${q}`);
      assert.equal(r.status, 400, q);
      assert.equal(((await r.json()) as { code: string }).code, 'THAW_E_REQUEST_INVALID', q);
    }
    await t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'paged' }));
  });

  test('instances get a clean environment: the function\'s variables and the runtime\'s, nothing of the host', async () => {
    await create('envy', pkg({ 'index.mjs': fnSource('return { env: process.env, remaining: context.getRemainingTimeInMillis(), arn: context.invokedFunctionArn, mem: context.memoryLimitInMB };') }), { Environment: { Variables: { COLOR: 'blue' } }, Timeout: 7 });
    const r = await invokeHttp(t.url, 'envy');
    assert.equal(r.json.env.COLOR, 'blue');
    assert.equal(r.json.env.AWS_LAMBDA_FUNCTION_NAME, 'envy');
    assert.equal(r.json.env.AWS_LAMBDA_FUNCTION_VERSION, '$LATEST');
    assert.equal(r.json.env.NODE_EXTRA_CA_CERTS, undefined);
    assert.equal(r.json.env.NODE_OPTIONS, undefined);
    assert.ok(r.json.remaining > 5000 && r.json.remaining <= 7000, String(r.json.remaining));
    assert.equal(r.json.arn, 'arn:aws:lambda:us-east-1:000000000000:function:envy');
    assert.equal(r.json.mem, '128');
  });

  test('Lambda\'s runtime environment: log stream, initialization type, task and runtime dirs, a trace header per invocation (the caller\'s when well-formed)', async () => {
    await create('lambdaenv', pkg({ 'index.mjs': fnSource(`const e = process.env; return { trace: e._X_AMZN_TRACE_ID, init: e.AWS_LAMBDA_INITIALIZATION_TYPE, stream: e.AWS_LAMBDA_LOG_STREAM_NAME, ctxStream: context.logStreamName, task: e.LAMBDA_TASK_ROOT, runtimeDir: e.LAMBDA_RUNTIME_DIR, tz: e.TZ };`) }));
    const call = async (trace?: string) => {
      const r = await fetch(`${t.url}/2015-03-31/functions/lambdaenv/invocations`, { method: 'POST', body: '{}', headers: trace ? { 'x-amzn-trace-id': trace } : {} });
      assert.equal(r.status, 200);
      return await r.json() as Record<string, string>;
    };
    const first = await call();
    assert.equal(first.init, 'on-demand');
    assert.match(first.stream, /^\d{4}\/\d{2}\/\d{2}\/\[\$LATEST\][0-9a-f]{32}$/);
    assert.equal(first.ctxStream, first.stream, 'context.logStreamName is the same stream');
    assert.ok(first.task && first.runtimeDir && first.task !== first.runtimeDir, JSON.stringify(first));
    assert.equal(first.tz, 'UTC');
    const fresh = /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=0$/;
    assert.match(first.trace, fresh);
    const theirs = 'Root=1-5f84c7a1-1234567890abcdef12345678;Parent=53995c3f42cd8ad8;Sampled=1';
    assert.equal((await call(theirs)).trace, theirs, 'the caller\'s trace header is passed on');
    const again = await call('not a trace header');
    assert.match(again.trace, fresh, 'a malformed one is replaced');
    assert.notEqual(again.trace, first.trace, 'a new trace per invocation');
    assert.equal(again.stream, first.stream, 'the same instance, the same stream');
  });

  test('a response over 6 MB is the function\'s error Function.ResponseSizeTooLarge, as on Lambda; the instance serves on', async () => {
    await create('toolarge', pkg({ 'index.mjs': fnSource(`return event.big ? 'x'.repeat(7 * 1024 * 1024) : 'small';`) }));
    const r = await fetch(`${t.url}/2015-03-31/functions/toolarge/invocations`, { method: 'POST', body: '{"big":true}' });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('x-amz-function-error'), 'Unhandled');
    const body = await r.json() as { errorType: string; errorMessage: string };
    assert.equal(body.errorType, 'Function.ResponseSizeTooLarge');
    assert.match(body.errorMessage, /exceeded maximum allowed payload size \(6291456 bytes\)/);
    const small = await invokeHttp(t.url, 'toolarge', {});
    assert.equal(small.json, 'small');
    assert.equal(small.headers.get('x-thaw-start'), 'warm', 'the same instance');
  });

  test('CommonJS and TypeScript handlers run as written', async () => {
    await create('cjs', await zipDirectory(join(examples, 'greeter-cjs')), { Environment: { Variables: { DEFAULT_NAME: 'pal' } } });
    assert.deepEqual((await invokeHttp(t.url, 'cjs', { lang: 'fr' })).json, { greeting: 'Bonjour, pal', invocations: 1 });
    assert.deepEqual((await invokeHttp(t.url, 'cjs', { lang: 'de', name: 'X' })).json, { greeting: 'Hallo, X', invocations: 2 });
    await create('tsfn', await zipDirectory(join(examples, 'ts-hello')), { Handler: 'handler.handler' });
    assert.match((await invokeHttp(t.url, 'tsfn', { name: 'T' })).json.message, /Hello from TypeScript, T/);
  });

  test('an alias shifted 10% to a new version sends about a tenth of the traffic there', async () => {
    await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'hello', ZipFile: pkg({ 'index.mjs': fnSource('return { message: "v2" };') }) }));
    const v2 = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'hello' }));
    assert.equal(v2.Version, '2');
    await t.lambda.send(new CreateAliasCommand({ FunctionName: 'hello', Name: 'live', FunctionVersion: '1' }));
    assert.equal((await invokeHttp(t.url, 'hello', {}, { qualifier: 'live' })).headers.get('x-amz-executed-version'), '1');
    await t.lambda.send(new UpdateAliasCommand({ FunctionName: 'hello', Name: 'live', RoutingConfig: { AdditionalVersionWeights: { '2': 0.1 } } }));
    const alias = await t.lambda.send(new GetAliasCommand({ FunctionName: 'hello', Name: 'live' }));
    assert.deepEqual(alias.RoutingConfig?.AdditionalVersionWeights, { '2': 0.1 });
    let toV2 = 0;
    const n = 300;
    for (let i = 0; i < n; i++) {
      const r = await invokeHttp(t.url, 'hello', {}, { qualifier: 'live' });
      const v = r.headers.get('x-amz-executed-version');
      assert.ok(v === '1' || v === '2');
      if (v === '2') { toV2++; assert.equal(r.json.message, 'v2'); }
    }
    // Binomial(300, 0.1): mean 30, sd 5.2; these bounds are more than 4 sd away.
    assert.ok(toV2 >= 8 && toV2 <= 62, `version 2 got ${toV2} of ${n}`);
    await assert.rejects(t.lambda.send(new UpdateAliasCommand({ FunctionName: 'hello', Name: 'live', RoutingConfig: { AdditionalVersionWeights: { '1': 0.5 } } })),
      (e: Error) => e.name === 'InvalidParameterValueException');
  });

  test('a handler that throws returns Unhandled with Lambda\'s error shape, and the instance lives on', async () => {
    await create('thrower', pkg({ 'index.mjs': fnSource('if (event.fail) { const e = new TypeError("bad input"); throw e; } return "ok";') }));
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'thrower', Payload: Buffer.from('{"fail":true}') }));
    assert.equal(r.StatusCode, 200);
    assert.equal(r.FunctionError, 'Unhandled');
    const err = dec(r.Payload);
    assert.equal(err.errorType, 'TypeError');
    assert.equal(err.errorMessage, 'bad input');
    assert.ok(Array.isArray(err.trace) && err.trace.length > 0);
    const ok = await invokeHttp(t.url, 'thrower', {});
    assert.equal(ok.json, 'ok');
    assert.equal(ok.headers.get('x-thaw-start'), 'warm');
  });

  test('a timeout kills the instance and returns Sandbox.Timedout; the next call gets a new instance', async () => {
    await create('sleepy', pkg({ 'index.mjs': fnSource('await new Promise((r) => setTimeout(r, event.ms)); return "done";') }), { Timeout: 1 });
    assert.equal((await invokeHttp(t.url, 'sleepy', { ms: 1 })).json, 'done');
    const r = await invokeHttp(t.url, 'sleepy', { ms: 60_000 });
    assert.equal(r.headers.get('x-amz-function-error'), 'Unhandled');
    assert.equal(r.json.errorType, 'Sandbox.Timedout');
    assert.match(r.json.errorMessage, /Task timed out after 1\.00 seconds/);
    const again = await invokeHttp(t.url, 'sleepy', { ms: 1 });
    assert.equal(again.json, 'done');
    assert.equal(again.headers.get('x-thaw-start'), 'cold');
  });

  test('process.exit, an uncaught exception and running out of memory each fail one invocation, not the platform', async () => {
    await create('crashy', pkg({ 'index.mjs': fnSource(`
      if (event.how === 'exit') process.exit(3);
      if (event.how === 'throw') { setTimeout(() => { throw new RangeError('boom later'); }, 1); await new Promise((r) => setTimeout(r, 1000)); }
      if (event.how === 'oom') { const keep = []; for (;;) keep.push(new Array(1e6).fill(Math.random())); }
      return 'fine';`) }));
    const exit = await invokeHttp(t.url, 'crashy', { how: 'exit' });
    assert.equal(exit.json.errorType, 'Runtime.ExitError');
    assert.match(exit.json.errorMessage, /exit status 3/);
    const thrown = await invokeHttp(t.url, 'crashy', { how: 'throw' });
    assert.equal(thrown.headers.get('x-amz-function-error'), 'Unhandled');
    assert.match(thrown.json.errorMessage, /boom later/);
    const oom = await invokeHttp(t.url, 'crashy', { how: 'oom' });
    assert.equal(oom.json.errorType, 'Runtime.OutOfMemory');
    const fine = await invokeHttp(t.url, 'crashy', {});
    assert.equal(fine.json, 'fine');
    assert.equal(fine.headers.get('x-thaw-start'), 'cold');
  });

  test('init errors are reported as Lambda does and leave no instance behind', async () => {
    await create('badinit', pkg({ 'index.mjs': 'throw new Error("no config");\nexport const handler = async () => 1;\n' }));
    const r = await invokeHttp(t.url, 'badinit');
    assert.equal(r.headers.get('x-amz-function-error'), 'Unhandled');
    assert.equal(r.json.errorMessage, 'no config');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`);
    assert.equal(rec.outcome, 'init_error');
    await eventually(async () => {
      const instances = (await getJson(`${t.url}/thaw/v1/instances`)).instances;
      return !instances.some((i: { functionName: string }) => i.functionName === 'badinit');
    }, 'the failed instance to be gone');
  });

  test('a per-function concurrency limit answers 429 TooManyRequestsException beyond it', async () => {
    await create('slow', pkg({ 'index.mjs': fnSource('await new Promise((r) => setTimeout(r, 800)); return 1;') }));
    await t.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'slow', ReservedConcurrentExecutions: 1 }));
    const [a, b] = await Promise.all([invokeHttp(t.url, 'slow'), new Promise((r) => setTimeout(r, 200)).then(() => invokeHttp(t.url, 'slow'))]);
    assert.equal(a.status, 200);
    assert.equal(b.status, 429);
    assert.equal(b.headers.get('x-amzn-errortype'), 'TooManyRequestsException');
    assert.equal(b.json.code, 'THAW_E_THROTTLED');
    await assert.rejects(t.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'slow', ReservedConcurrentExecutions: 0 })).then(() => t.lambda.send(new InvokeCommand({ FunctionName: 'slow' }))),
      (e: Error) => e.name === 'TooManyRequestsException');
  });

  test('context.invoke calls another function and the call edge is recorded', async () => {
    await create('chain', await zipDirectory(join(examples, 'chain')));
    const r = await invokeHttp(t.url, 'chain', { target: 'cjs', name: 'via chain' });
    assert.equal(r.status, 200, r.text);
    const calls = (await getJson(`${t.url}/thaw/v1/calls?caller=chain`)).calls;
    assert.deepEqual(calls.map((c: { callee: string }) => c.callee), ['cjs']);
    const missing = await invokeHttp(t.url, 'chain', { target: 'nobody' });
    assert.equal(missing.headers.get('x-amz-function-error'), 'Unhandled');
    assert.equal(missing.json.errorType, 'ResourceNotFoundException');
  });

  test('an unknown route is UnknownOperationException, not ResourceNotFoundException (which SDKs read as a missing function)', async () => {
    const r = await fetch(`${t.url}/2015-03-31/functions/hello/no-such-thing`);
    assert.equal(r.status, 404);
    assert.equal(r.headers.get('x-amzn-errortype'), 'UnknownOperationException');
    assert.equal(((await r.json()) as { code: string }).code, 'THAW_E_ROUTE_NOT_FOUND');
    const gone = await fetch(`${t.url}/2015-03-31/functions/nope-not-here`);
    assert.equal(gone.headers.get('x-amzn-errortype'), 'ResourceNotFoundException', 'a missing function still is');
  });

  test('DryRun checks without running; unknown functions and bad payloads get Lambda\'s errors', async () => {
    const dry = await fetch(`${t.url}/2015-03-31/functions/hello/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'DryRun' }, body: '{}' });
    assert.equal(dry.status, 204);
    await assert.rejects(t.lambda.send(new InvokeCommand({ FunctionName: 'nope' })), (e: Error) => e.name === 'ResourceNotFoundException');
    const bad = await invokeHttp(t.url, 'hello', '{not json');
    assert.equal(bad.status, 400);
    assert.equal(bad.json.code, 'THAW_E_PAYLOAD_INVALID');
    assert.equal(bad.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
    const badHeader = await invokeHttp(t.url, 'hello', {}, { headers: { 'x-amz-invocation-type': 'Sometimes' } });
    assert.equal(badHeader.json.code, 'THAW_E_HEADER_INVALID');
    const badQ = await invokeHttp(t.url, 'hello', {}, { qualifier: '99' });
    assert.equal(badQ.status, 404);
    assert.equal(badQ.json.code, 'THAW_E_VERSION_NOT_FOUND');
  });

  test('a rejected package creates nothing: no function, no blob, no unpacked code', async () => {
    const blobsBefore = await listTree(join(t.dataDir, 'blobs'));
    const cacheBefore = await listTree(join(t.cacheDir, 'code'));
    await assert.rejects(create('evil', pkg({ '../escape.js': 'x', 'index.mjs': fnSource('return 1;') })), (e: Error & { code?: string }) => e.name === 'InvalidParameterValueException');
    await assert.rejects(create('nohandler', pkg({ 'other.mjs': fnSource('return 1;') })), (e: Error) => e.name === 'InvalidParameterValueException');
    await assert.rejects(create('noexport', pkg({ 'index.mjs': 'export const other = () => 1;' })), (e: Error) => e.name === 'InvalidParameterValueException');
    await assert.rejects(create('junk', Buffer.from('this is not a zip')), (e: Error) => e.name === 'InvalidParameterValueException');
    await assert.rejects(create('bad name!', pkg({ 'index.mjs': fnSource('return 1;') })), (e: Error) => e.name === 'InvalidParameterValueException');
    await assert.rejects(create('badrt', pkg({ 'index.mjs': fnSource('return 1;') }), { Runtime: 'python3.12' }), (e: Error) => e.name === 'InvalidParameterValueException');
    for (const name of ['evil', 'nohandler', 'noexport', 'junk', 'badrt']) {
      await assert.rejects(t.lambda.send(new GetFunctionCommand({ FunctionName: name })), (e: Error) => e.name === 'ResourceNotFoundException');
    }
    assert.deepEqual(await listTree(join(t.dataDir, 'blobs')), blobsBefore);
    assert.deepEqual(await listTree(join(t.cacheDir, 'code')), cacheBefore);
    const res = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: '{"FunctionName": "x", ' });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as any).code, 'THAW_E_REQUEST_JSON');
  });

  test('Event invocations are queued, delivered and retried after a failure', async () => {
    await create('flaky', pkg({ 'index.mjs': fnSource('calls += 1; if (calls === 1) throw new Error("first call fails"); console.log("delivered", JSON.stringify(event)); return calls;', 'let calls = 0;') }));
    const r = await fetch(`${t.url}/2015-03-31/functions/flaky/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{"n":1}' });
    assert.equal(r.status, 202);
    const id = r.headers.get('x-thaw-invocation-id')!;
    const events = await eventually(async () => {
      const h = (await getJson(`${t.url}/thaw/v1/events`)).recent.filter((e: { id: string }) => e.id === id);
      return h.some((e: { outcome: string }) => e.outcome === 'delivered') && h;
    }, 'event delivery');
    assert.deepEqual(events.map((e: { outcome: string }) => e.outcome), ['retry', 'delivered']);
    const logs = (await getJson(`${t.url}/thaw/v1/functions/flaky/logs`)).lines;
    assert.ok(logs.some((l: { line: string }) => l.line.includes('delivered {"n":1}')));
  });

  test('DeleteFunction removes it and stops its instances', async () => {
    await invokeHttp(t.url, 'cjs', {});
    await t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'cjs' }));
    await assert.rejects(t.lambda.send(new GetFunctionCommand({ FunctionName: 'cjs' })), (e: Error) => e.name === 'ResourceNotFoundException');
    const instances = (await getJson(`${t.url}/thaw/v1/instances`)).instances;
    assert.ok(!instances.some((i: { functionName: string }) => i.functionName === 'cjs'));
  });
});

describe('HTTP triggers', () => {
  let t: TestThaw;
  before(async () => {
    t = await startTestThaw();
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'web', Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: await zipDirectory(join(examples, 'http-api')) } }));
  });
  after(async () => { await t.stop(); });

  test('GET delivers a v2.0 event and maps the v2 response, cookies included', async () => {
    const res = await fetch(`${t.url}/web/greet/me?name=Curl`);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('content-type'), 'text/html; charset=utf-8');
    assert.equal(res.headers.get('set-cookie'), 'visited=1; Path=/');
    assert.equal(await res.text(), '<h1>Hello, Curl!</h1><p>path /greet/me</p>');
    assert.match(res.headers.get('x-thaw-start')!, /^(pooled|cold)$/, 'a new instance: from the runtime pool once it has filled');
    assert.match(res.headers.get('server-timing')!, /handler;dur=/);
  });

  test('POST bodies arrive and status codes come back', async () => {
    const res = await fetch(`${t.url}/web/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"a":1}' });
    assert.equal(res.status, 201);
    assert.deepEqual(await res.json() as unknown, { received: { a: 1 } });
    assert.equal(res.headers.get('x-thaw-start'), 'warm');
  });

  test('an unknown function is a 404 and a function error a 502', async () => {
    assert.equal((await fetch(`${t.url}/nobody/x`)).status, 404);
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'broken', Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': fnSource('throw new Error("x");') }) } }));
    const res = await fetch(`${t.url}/broken/`);
    assert.equal(res.status, 502);
    assert.deepEqual(await res.json(), { message: 'Internal Server Error' });
    assert.equal((await fetch(`${t.url}/thaw/v1/nothing`)).status, 404);
  });
});

describe('durability and shutdown', () => {
  test('an Event queued before a restart is delivered after it', async () => {
    const t = await startTestThaw({ eventRetryDelaysMs: [200, 200, 200, 200, 200, 200, 200, 200] });
    try {
      await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'later', Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "ran";') }) } }));
      await t.lambda.send(new PutFunctionConcurrencyCommand({ FunctionName: 'later', ReservedConcurrentExecutions: 0 }));
      const r = await fetch(`${t.url}/2015-03-31/functions/later/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{}' });
      const id = r.headers.get('x-thaw-invocation-id')!;
      await t.restart();
      await fetch(`${t.url}/2017-10-31/functions/later/concurrency`, { method: 'DELETE' });
      const rec = await eventually(async () => {
        const res = await fetch(`${t.url}/thaw/v1/invocations/${id}`);
        const body: any = res.ok ? await res.json() : null;
        return body?.outcome === 'success' && body;
      }, 'the queued event to run after restart');
      assert.equal(rec.trigger, 'event');
    } finally {
      await t.stop();
    }
  });

  test('close() drains a running invocation, then stops every instance', async () => {
    const t = await startTestThaw();
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'slowpoke', Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': fnSource('await new Promise((r) => setTimeout(r, 500)); return "finished";') }) } }));
    await invokeHttp(t.url, 'slowpoke');
    const running = invokeHttp(t.url, 'slowpoke');
    await new Promise((r) => setTimeout(r, 100));
    assert.ok((await processesUnder(t.cacheDir)).length >= 1);
    const closed = t.thaw.close();
    assert.equal((await running).json, 'finished');
    await closed;
    assert.deepEqual(await processesUnder(t.cacheDir), []);
    await t.stop();
  });
});

async function listTree(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir, { recursive: true })).map(String).sort();
  } catch {
    return [];
  }
}
