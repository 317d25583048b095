// Seed 001's version prewarm: a new version of a function that has traffic is warmed before its first
// request (as many instances as the function runs, recorded as a prewarm decision with its reason); an
// idle function's new version is not; a prewarm under way when the function is deleted leaves nothing.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { eventually, fnSource, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';

describe('versions are warmed before their first request', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ freezeAfterMs: -1 }); });
  after(() => t.stop());

  const api = (method: string, path: string, body?: unknown) => fetch(`${t.url}${path}`, { method, headers: { 'content-type': 'application/json' }, body: body === undefined ? undefined : JSON.stringify(body) });
  const code = (v: string) => pkg({ 'index.mjs': fnSource(`return '${v}';`) }).toString('base64');
  const instancesOf = async (fn: string, version: string) => (await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { functionName: string; version: string; state: string }) => i.functionName === fn && i.version === version && i.state === 'idle');

  test('$LATEST changed while it runs: the new revision is warm for its first request, and the decision says why', async () => {
    assert.equal((await api('POST', '/2015-03-31/functions', { FunctionName: 'busy', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: code('v1') } })).status, 201);
    assert.equal((await invokeHttp(t.url, 'busy')).json, 'v1');
    assert.equal((await api('PUT', '/2015-03-31/functions/busy/code', { ZipFile: code('v2') })).status, 200);
    await eventually(async () => (await instancesOf('busy', '$LATEST')).length >= 1 || null, 'a warmed instance of the new revision');
    const r = await invokeHttp(t.url, 'busy');
    assert.equal(r.json, 'v2');
    assert.equal(r.headers.get('x-thaw-start'), 'warm', 'the first request after the deploy is warm');
    const decisions = (await getJson(`${t.url}/thaw/v1/decisions?function=busy`)).decisions as { action: string; reason: string }[];
    assert.ok(decisions.some((d) => d.action === 'prewarm' && /\$LATEST changed while it ran 1 instance/.test(d.reason)), JSON.stringify(decisions));
  });

  test('a request that arrives while the prewarm is starting waits for that instance instead of starting its own', async () => {
    // The new revision's init waits for a SIGUSR2 from the test, so the request surely arrives mid-start.
    const gate = "let signals = 0; const waiting = new Set(); process.on('SIGUSR2', () => { signals++; for (const w of waiting) w(); });\n" +
      "const signalled = (n) => new Promise((r) => { const w = () => { if (signals >= n) { waiting.delete(w); r(); } }; waiting.add(w); w(); });\nconsole.log('gate listening'); await signalled(1);";
    assert.equal((await api('POST', '/2015-03-31/functions', { FunctionName: 'racer', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: code('r1') } })).status, 201);
    assert.equal((await invokeHttp(t.url, 'racer')).json, 'r1');
    type View = { id: string; functionName: string; state: string; pid: number; inFlight: number; origin: string };
    const racers = async () => ((await getJson(`${t.url}/thaw/v1/instances`)).instances as View[]).filter((i) => i.functionName === 'racer');
    const before = new Set((await racers()).map((i) => i.id));
    assert.equal((await api('PUT', '/2015-03-31/functions/racer/code', { ZipFile: pkg({ 'index.mjs': fnSource("return 'r2';", gate) }).toString('base64') })).status, 200);
    const pending = await eventually(async () => (await racers()).find((i) => !before.has(i.id) && i.state === 'initializing') ?? null, 'the prewarm of the new revision in its init');
    await eventually(async () => ((await getJson(`${t.url}/thaw/v1/functions/racer/logs`)).lines as { line: string }[]).some((l) => l.line.includes('gate listening')) || null, 'its init listening for the signal');
    const call = invokeHttp(t.url, 'racer');
    await eventually(async () => (await racers()).find((i) => i.id === pending.id)?.inFlight === 1 || null, 'the request holding the starting instance');
    process.kill(pending.pid, 'SIGUSR2');
    const r = await call;
    assert.equal(r.json, 'r2');
    assert.equal(r.headers.get('x-thaw-start'), pending.origin, 'it reports the path of the start it waited for');
    const rec = await eventually(async () => { const x = await fetch(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`); return x.ok && await x.json() as { instanceId: string }; }, 'the record');
    assert.equal(rec.instanceId, pending.id, 'served by the prewarmed instance');
    assert.deepEqual((await racers()).filter((i) => !before.has(i.id)).map((i) => i.id), [pending.id], 'no second instance of the new revision was started');
  });

  test('a version published while the function has traffic is warmed; an idle function\'s is not', async () => {
    assert.equal((await api('POST', '/2015-03-31/functions/busy/versions', {})).status, 201);
    await eventually(async () => (await instancesOf('busy', '1')).length >= 1 || null, 'a warmed instance of version 1');
    const r = await invokeHttp(t.url, 'busy', {}, { qualifier: '1' });
    assert.equal(r.headers.get('x-thaw-start'), 'warm');

    assert.equal((await api('POST', '/2015-03-31/functions', { FunctionName: 'idle', Runtime: 'nodejs24', Handler: 'index.handler', Publish: true, Code: { ZipFile: code('i1') } })).status, 201);
    await new Promise((res) => setTimeout(res, 500));
    assert.deepEqual(await instancesOf('idle', '1'), [], 'nothing started for a function without traffic');
  });
});
