// Runtimes end to end, through the AWS SDK: nodejs20.x, nodejs22.x and nodejs24.x each run on their own
// Node major, on every start path (cold, pooled, restored from a snapshot); Runtime is echoed as sent;
// callback handlers run on 20 and 22 as Lambda's older runtimes run them and are refused on 24; egress
// goes through the proxy where Node can be told to (22, 24) and what Node 20 lacks is what the README says.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import {
  CreateFunctionCommand, GetFunctionConfigurationCommand, InvokeCommand, UpdateFunctionConfigurationCommand, type Runtime,
} from '@aws-sdk/client-lambda';
import { probeNamespaces } from '../src/sandbox/index.ts';
import { eventually, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { HTTP_SERVER, canMakeNetHosts, pointToPoint, type NetHost } from './nethost.ts';

const RUNTIMES = [['nodejs20.x', 'v20.'], ['nodejs22.x', 'v22.'], ['nodejs24.x', 'v24.']] as const;

const WHO = 'export const handler = async () => ({ version: process.version, env: process.env.AWS_EXECUTION_ENV });\n';

const create = (t: TestThaw, name: string, runtime: string, files: Record<string, string>, extra: Record<string, unknown> = {}) =>
  t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: runtime as Runtime, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda', Code: { ZipFile: pkg(files) }, ...extra,
  }));

/** An invocation through the SDK: its payload parsed, its function error, and the start path Thaw recorded for it. */
async function invoke(t: TestThaw, name: string, payload: unknown = {}, qualifier?: string) {
  const r = await t.lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(payload)), ...(qualifier ? { Qualifier: qualifier } : {}) }));
  const text = Buffer.from(r.Payload ?? []).toString('utf8');
  const record = await getJson(`${t.url}/thaw/v1/invocations/${r.$metadata.requestId}`);
  return { json: JSON.parse(text), text, functionError: r.FunctionError, start: record.start as string, instanceId: record.instanceId as string };
}

describe('runtimes: each runs on its own Node', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 1, poolRefillDelayMs: 0, freezeAfterMs: -1, snapshots: false }); });
  after(async () => { await t.stop(); });

  for (const [runtime, major] of RUNTIMES) {
    test(`${runtime}: the function sees Node ${major.slice(1, -1)} and AWS_EXECUTION_ENV AWS_Lambda_${runtime}; Runtime is echoed as sent`, async () => {
      const created = await create(t, `who-${runtime.replace('.', '-')}`, runtime, { 'index.mjs': WHO });
      assert.equal(created.Runtime, runtime);
      const config = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: `who-${runtime.replace('.', '-')}` }));
      assert.equal(config.Runtime, runtime);
      const r = await invoke(t, `who-${runtime.replace('.', '-')}`);
      assert.equal(r.functionError, undefined, r.text);
      assert.ok(r.json.version.startsWith(major), `${runtime} ran on ${r.json.version}`);
      assert.equal(r.json.env, `AWS_Lambda_${runtime}`);
    });

    test(`${runtime}: a pooled start takes a runtime started on the function's own Node`, async () => {
      // The pool keeps runtimes of a kind once one of its functions has started: wait for this kind's.
      await eventually(async () => (await getJson(`${t.url}/thaw/v1/instances`)).pool
        .find((p: { runtime: string; memoryMb: number; ready: number }) => p.runtime === runtime && p.memoryMb === 128 && p.ready >= 1), `a pooled ${runtime} runtime`);
      const name = `pooled-${runtime.replace('.', '-')}`;
      await create(t, name, runtime, { 'index.mjs': WHO });
      const r = await invoke(t, name);
      assert.equal(r.start, 'pooled');
      assert.ok(r.json.version.startsWith(major), `${runtime} ran on ${r.json.version}`);
    });
  }

  test('nodejs24 (Thaw\'s first spelling) still runs on Node 24 and is echoed as nodejs24', async () => {
    const created = await create(t, 'bare24', 'nodejs24', { 'index.mjs': WHO });
    assert.equal(created.Runtime, 'nodejs24');
    const r = await invoke(t, 'bare24');
    assert.ok(r.json.version.startsWith('v24.'));
    assert.equal(r.json.env, 'AWS_Lambda_nodejs24.x');
  });

  test('changing Runtime moves the function to the other Node, echoed exactly', async () => {
    await create(t, 'mover', 'nodejs20.x', { 'index.mjs': WHO });
    assert.ok((await invoke(t, 'mover')).json.version.startsWith('v20.'));
    const updated = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'mover', Runtime: 'nodejs22.x' }));
    assert.equal(updated.Runtime, 'nodejs22.x');
    assert.ok((await invoke(t, 'mover')).json.version.startsWith('v22.'));
  });

  test('an unknown runtime is refused with the supported ones named, and nothing is created', async () => {
    for (const runtime of ['nodejs18.x', 'python3.12', 'nodejs22']) {
      await assert.rejects(create(t, 'nope', runtime, { 'index.mjs': WHO }), (e: Error & { name: string }) =>
        e.name === 'InvalidParameterValueException' && /nodejs20\.x, nodejs22\.x, nodejs24\.x/.test(e.message));
    }
    await assert.rejects(t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'nope' })), { name: 'ResourceNotFoundException' });
  });
});

/** A callback handler: answers later through the callback, or fails through it, or through context. */
const CALLBACK = `
exports.handler = function (event, context, callback) {
  if (event.mode === 'later') setTimeout(() => callback(null, { version: process.version, n: event.n }), 20);
  else if (event.mode === 'error') callback(new Error('failed through the callback'));
  else if (event.mode === 'succeed') context.succeed({ via: 'succeed' });
  else if (event.mode === 'fail') context.fail(new Error('failed through context.fail'));
  else if (event.mode === 'wait') {
    // The result is serialized when the invocation ends: after the timer, since callback waits for an empty loop.
    const state = { timerRan: false };
    setTimeout(() => { state.timerRan = true; }, 50);
    callback(null, state);
  } else if (event.mode === 'nowait') {
    context.callbackWaitsForEmptyEventLoop = false;
    // Holds the event loop far longer than the function's timeout: only an answer that does not wait gets out.
    setTimeout(() => {}, 60_000);
    callback(null, { waited: false });
  }
  // mode 'nothing': returns without calling back; the invocation ends with null once the loop is empty.
};
`;

/** The same handler made by a wrapper: what a static look at the file cannot measure, the runtime refuses at init. */
const WRAPPED_CALLBACK = `const wrap = (f) => f;\n${CALLBACK.replace('exports.handler = function', 'exports.handler = wrap(function').replace(/};\s*$/, '});\n')}`;

describe('runtimes: callback handlers', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, snapshots: false }); });
  after(async () => { await t.stop(); });

  for (const [runtime, major] of RUNTIMES.slice(0, 2)) {
    test(`${runtime}: callback(err, result), context.succeed/fail and callbackWaitsForEmptyEventLoop work as on Lambda`, async () => {
      const name = `cb-${runtime.replace('.', '-')}`;
      await create(t, name, runtime, { 'index.js': CALLBACK }, { Timeout: 5 });
      const later = await invoke(t, name, { mode: 'later', n: 7 });
      assert.equal(later.functionError, undefined, later.text);
      assert.equal(later.json.n, 7);
      assert.ok(later.json.version.startsWith(major));
      const failed = await invoke(t, name, { mode: 'error' });
      assert.equal(failed.functionError, 'Unhandled');
      assert.equal(failed.json.errorMessage, 'failed through the callback');
      assert.deepEqual((await invoke(t, name, { mode: 'succeed' })).json, { via: 'succeed' });
      const viaFail = await invoke(t, name, { mode: 'fail' });
      assert.equal(viaFail.functionError, 'Unhandled');
      assert.equal(viaFail.json.errorMessage, 'failed through context.fail');
      assert.deepEqual((await invoke(t, name, { mode: 'wait' })).json, { timerRan: true }, 'callback waited for the event loop to empty');
      const nothing = await invoke(t, name, { mode: 'nothing' });
      assert.equal(nothing.functionError, undefined, nothing.text);
      assert.equal(nothing.json, null);
      // Last: its timer holds the event loop for a minute, which any later invocation that waits would wait for.
      const nowait = await invoke(t, name, { mode: 'nowait' });
      assert.equal(nowait.functionError, undefined, nowait.text);
      assert.deepEqual(nowait.json, { waited: false });
      // The same instance served every one of them: nothing crashed it.
      assert.equal(nowait.start, 'warm');
      assert.equal(nowait.instanceId, later.instanceId);
    });
  }

  for (const runtime of ['nodejs24.x', 'nodejs24']) {
    test(`${runtime}: a callback handler is refused at deploy with Runtime.CallbackHandlerDeprecated, and nothing is created`, async () => {
      const name = `cb-${runtime.replace('.', '-')}`;
      await assert.rejects(create(t, name, runtime, { 'index.js': CALLBACK }), (e: Error) => e.name === 'InvalidParameterValueException' && /CallbackHandlerDeprecated/.test(e.message) && /nodejs22\.x/.test(e.message));
      await assert.rejects(t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: name })), { name: 'ResourceNotFoundException' });
    });

    test(`${runtime}: a callback handler deploy cannot see (made by a wrapper) is refused at init with Runtime.CallbackHandlerDeprecated`, async () => {
      const name = `cbw-${runtime.replace('.', '-')}`;
      await create(t, name, runtime, { 'index.js': WRAPPED_CALLBACK });
      const r = await invoke(t, name, { mode: 'later', n: 1 });
      assert.equal(r.functionError, 'Unhandled');
      assert.equal(r.json.errorType, 'Runtime.CallbackHandlerDeprecated');
      assert.match(r.json.errorMessage, /nodejs22\.x/, 'the message says how to fix it');
    });
  }

  test('moving a callback handler to nodejs24.x is refused at UpdateFunctionConfiguration, and the function stays on its runtime', async () => {
    await create(t, 'cbmove', 'nodejs22.x', { 'index.js': CALLBACK });
    await assert.rejects(t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'cbmove', Runtime: 'nodejs24.x' })), /CallbackHandlerDeprecated/);
    assert.equal((await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'cbmove' }))).Runtime, 'nodejs22.x');
  });

  test('nodejs24.x: a handler that returns nothing answers null and its instance lives on', async () => {
    await create(t, 'quiet24', 'nodejs24.x', { 'index.js': 'exports.handler = function (event) { setTimeout(() => {}, 20); };\n' });
    const first = await invoke(t, 'quiet24');
    assert.equal(first.functionError, undefined, first.text);
    assert.equal(first.json, null);
    const second = await invoke(t, 'quiet24');
    assert.equal(second.start, 'warm');
    assert.equal(second.instanceId, first.instanceId);
  });
});

describe('runtimes: snapshots are built and restored on the function\'s own Node', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, snapshotTimeoutMs: 30_000 }); });
  after(async () => { await t.stop(); });

  for (const [runtime, major] of RUNTIMES) {
    test(`${runtime}: a published version restores from its snapshot on Node ${major.slice(1, -1)}`, async () => {
      const name = `snap-${runtime.replace('.', '-')}`;
      await create(t, name, runtime, { 'index.mjs': `const builtOn = process.version;\n${WHO.replace('({', '({ builtOn,')}` }, { Publish: true });
      const snap = await eventually(async () => {
        const s = (await getJson(`${t.url}/thaw/v1/functions/${name}/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
        return s && s.status !== 'pending' && s;
      }, `the snapshot of ${name}`, 90_000);
      assert.equal(snap.status, 'ready', snap.reason);
      const r = await invoke(t, name, {}, '1');
      assert.equal(r.functionError, undefined, r.text);
      assert.equal(r.start, 'restored');
      assert.ok(r.json.version.startsWith(major), `restored on ${r.json.version}`);
      assert.ok(r.json.builtOn.startsWith(major), `built on ${r.json.builtOn}`);
    });
  }

  test('nodejs24.x: a callback handler\'s snapshot fails with the reason, and the version still answers with the error', async () => {
    await create(t, 'snapcb', 'nodejs24.x', { 'index.js': WRAPPED_CALLBACK }, { Publish: true });
    const snap = await eventually(async () => {
      const s = (await getJson(`${t.url}/thaw/v1/functions/snapcb/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' && s;
    }, 'the snapshot of snapcb', 90_000);
    assert.equal(snap.status, 'failed');
    assert.match(snap.reason, /CallbackHandlerDeprecated/);
    const r = await invoke(t, 'snapcb', { mode: 'later' }, '1');
    assert.equal(r.json.errorType, 'Runtime.CallbackHandlerDeprecated');
  });
});

/** fetch(event.url) inside the function; the outcome as data. */
const FETCHER = `export const handler = async (event) => {
  try {
    const r = await fetch(event.url, { signal: AbortSignal.timeout(5000) });
    return { status: r.status, text: await r.text(), version: process.version };
  } catch (e) { return { error: String(e) + " / " + String(e.cause?.message ?? e.cause), version: process.version }; }
};
`;

const probe = probeNamespaces();
const noNet = !probe.ok ? `namespaces sandbox unavailable: ${probe.reason} (${probe.fix})` : canMakeNetHosts();

describe('runtimes: egress through the proxy on each Node', { skip: noNet ? `${noNet}; to enable: run as root with bubblewrap and iproute2` : false }, () => {
  let t: TestThaw;
  let web: NetHost;
  before(async () => {
    web = pointToPoint();
    await web.run(HTTP_SERVER);
    t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
  });
  after(async () => {
    await t?.stop();
    await web?.close();
  });
  /** ThawEgress is Thaw's own field, which the SDK does not send: created through the REST API directly. */
  const createWithEgress = async (name: string, runtime: string, publish: boolean) => {
    const r = await fetch(`${t.url}/2015-03-31/functions`, {
      method: 'POST', headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ FunctionName: name, Runtime: runtime, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda', Timeout: 30, Publish: publish, Code: { ZipFile: pkg({ 'index.mjs': FETCHER }).toString('base64') }, ThawEgress: { Mode: 'allow', Allow: [`${web.address}:8080`] } }),
    });
    assert.equal(r.status, 201, await r.text());
  };

  for (const runtime of ['nodejs22.x', 'nodejs24.x']) {
    test(`${runtime}: plain fetch reaches an allow-listed host, cold and restored from a snapshot`, async () => {
      const name = `egress-${runtime.replace('.', '-')}`;
      await createWithEgress(name, runtime, true);
      const cold = await invoke(t, name, { url: `http://${web.address}:8080/cold` });
      assert.equal(cold.json.text, `hello from ${web.address}:8080 /cold`, cold.text);
      const snap = await eventually(async () => {
        const s = (await getJson(`${t.url}/thaw/v1/functions/${name}/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
        return s && s.status !== 'pending' && s;
      }, `the snapshot of ${name}`, 90_000);
      assert.equal(snap.status, 'ready', snap.reason);
      const restored = await invoke(t, name, { url: `http://${web.address}:8080/restored` }, '1');
      assert.equal(restored.start, 'restored');
      assert.equal(restored.json.text, `hello from ${web.address}:8080 /restored`, restored.text);
    });
  }

  test('nodejs20.x: fetch has no proxy support in Node 20, so it does not get out (README, Runtimes)', async () => {
    await createWithEgress('egress-20', 'nodejs20.x', false);
    const r = await invoke(t, 'egress-20', { url: `http://${web.address}:8080/x` });
    assert.ok(r.json.version.startsWith('v20.'));
    assert.ok(r.json.error, `fetch failed: ${r.text}`);
  });
});
