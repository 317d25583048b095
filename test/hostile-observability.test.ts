// Issue 16's observability parts under hostile input: /metrics with more functions than its label cap and
// label values full of quotes and newlines (checked by promtool), `thaw why` of an old invocation of a busy
// function, of malformed ids, and of another function's invocation by a key limited to one function.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { capLine, MAX_LINE_BYTES } from '../src/agent/logging.ts';
import { publishInvocationEnd } from '../src/core/events.ts';
import type { ColdStartCause, InvocationRecord } from '../src/core/types.ts';
import { signRequest } from '../src/gateway/index.ts';
import { avoidance } from '../src/gateway/why.ts';
import { ThawMetrics } from '../src/telemetry/index.ts';
import { UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { eventually, fnSource, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const PROMTOOL = '/usr/bin/promtool';

let seq = 0;
const record = (o: Partial<InvocationRecord>): InvocationRecord => ({
  id: `hostile-${seq++}`, functionName: 'f', version: '$LATEST', qualifier: '$LATEST', instanceId: 'i', start: 'warm', trigger: 'api',
  callerInvocationId: null, receivedAt: 0, durationMs: 100, phases: [{ name: 'handler', offsetMs: 0, durationMs: 100 }], initMs: 0, handlerMs: 100, billedMs: 100,
  memoryMb: 1024, outcome: 'success', errorType: null, errorMessage: null, ...o,
});

const cause = (kind: ColdStartCause['cause'], facts: Partial<ColdStartCause['facts']>): ColdStartCause => ({
  cause: kind, detail: kind,
  facts: { functionSeen: true, versionSeen: true, previousVersion: null, lastEnd: null, idleGapMs: null, busy: 0, instanceConcurrency: 1, reserved: null, versionPrewarm: 'none', otherVersionInstances: 0, policy: 'fixed:30s', ...facts },
});

describe('/metrics under hostile label values', () => {
  const metrics = (maxFunctions: number) => new ThawMetrics({ maxFunctions, snapshots: false, queue: async () => ({ depth: 0, oldestEnqueuedAt: null }), now: () => 0 });

  test('5000 functions: at most maxFunctions function label values, the rest under _other, every invocation counted', async () => {
    using m = metrics(1000);
    for (let k = 0; k < 5000; k++) publishInvocationEnd(record({ functionName: `many-${k}` }));
    const text = await m.scrape();
    const values = new Set([...text.matchAll(/^thaw_invocations_total\{[^}]*function="([^"]*)"/gm)].map((x) => x[1]));
    assert.equal(values.size, 1001, 'a thousand names and _other');
    assert.ok(values.has('_other'));
    const total = [...text.matchAll(/^thaw_invocations_total\{[^}]*\} (\d+)$/gm)].reduce((n, x) => n + Number(x[1]), 0);
    assert.equal(total, 5000);
  });

  test('label values with quotes, backslashes and newlines are escaped: promtool reads the exposition', { skip: existsSync(PROMTOOL) ? false : 'promtool is not installed (to enable: apt-get install prometheus)' }, async () => {
    using m = metrics(10);
    const nasty = 'a"b\\c\nd} 1\n# HELP x';
    publishInvocationEnd(record({ functionName: nasty, version: 'v"1\n', trigger: 'api' }));
    const text = await m.scrape();
    assert.ok(!text.includes('d} 1\n'), 'the newline in the name does not end the sample line');
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
  });
});

test('capLine() cuts a line of multi-byte characters within 256 KB, marked, and leaves short lines alone', () => {
  for (const ch of ['é', '€', '😀', 'x']) {
    const cut = capLine(ch.repeat(300_000));
    assert.ok(Buffer.byteLength(cut) <= MAX_LINE_BYTES, `${ch}: ${Buffer.byteLength(cut)} bytes`);
    assert.ok(cut.endsWith('…') && Buffer.byteLength(cut) > MAX_LINE_BYTES - 16, ch);
  }
  const short = '€'.repeat(80_000);
  assert.equal(capLine(short), short);
});

describe('thaw why: what the replay may suggest', () => {
  test('an eviction whose record lacks the loaded size never suggests a budget at or below the one it had', async () => {
    const rec = record({ functionName: 'ev', start: 'cold', receivedAt: 10_000 });
    const c = cause('evicted-memory', { lastEnd: { instanceId: 'x', how: 'evicted', reason: 'budget', endedAt: 5000, idleMs: 1000, policy: 'fixed:30s', budgetMb: 2048, evictedFor: 'other:$LATEST' } });
    const a = await avoidance(rec, { ...c, cause: 'evicted-memory' }, { fn: [rec], node: async () => [rec], createdAt: 0 });
    assert.equal(a.kind, 'memory-budget');
    assert.ok(typeof a.alternative === 'number' && a.alternative > 2048, `suggested ${a.alternative} MB against a 2048 MB budget`);
    assert.ok(a.costGBs !== null && Number.isFinite(a.costGBs) && a.costGBs >= 0, String(a.costGBs));
  });
});

describe('thaw why against a running Thaw: history, malformed ids, and keys limited to one function', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, snapshots: false }); });
  after(async () => { await t.stop(); });
  const platform = () => t.thaw.platform;

  test('an old cold start of a function with more than 1000 newer records is priced by replaying what came before it', async () => {
    await platform().control.createFunction({ name: 'busy-fn', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    const t0 = platform().clock.now() - 3 * 3600_000;
    const first = record({ functionName: 'busy-fn', start: 'cold', receivedAt: t0 });
    const asked = record({
      functionName: 'busy-fn', start: 'cold', receivedAt: t0 + 60_000,
      cause: cause('expired-keep-alive', { idleGapMs: 59_900, lastEnd: { instanceId: 'i', how: 'stopped', reason: 'idle 30 s', endedAt: t0 + 30_100, idleMs: 30_000, policy: 'fixed:30s' } }),
    });
    const newer = Array.from({ length: 1200 }, (_, k) => record({ functionName: 'busy-fn', receivedAt: t0 + 120_000 + k * 1000 }));
    await platform().store.recordInvocations([first, asked, ...newer]);
    const w = await getJson(`${t.url}/thaw/v1/invocations/${asked.id}/why`);
    assert.equal(w.cause, 'expired-keep-alive');
    assert.equal(w.avoidableBy.kind, 'keep-alive');
    assert.equal(w.avoidableBy.replay.invocations, 2, `the invocation before it is replayed: ${w.summary}`);
    assert.equal(w.avoidableBy.replay.lastWarm.alternative, true, w.summary);
    assert.ok(w.avoidableBy.costGBs > 0, w.summary);
  });

  test('malformed ids get a clean 404 with its code, never a 500', async () => {
    for (const id of ['..%2F..%2Fetc', '%00', 'x'.repeat(5000), '%E2%80%AE%0A%22', '1%20OR%201%3D1']) {
      const r = await fetch(`${t.url}/thaw/v1/invocations/${id}/why`);
      const body = (await r.json()) as { code: string; message: string };
      assert.equal(r.status, 404, `${id.slice(0, 40)}: ${JSON.stringify(body).slice(0, 300)}`);
      assert.equal(body.code, 'THAW_E_INVOCATION_NOT_FOUND');
      assert.ok(body.message.length < 1000, 'the id is not echoed at any length');
    }
  });

  // Last: once a key exists every request must be signed.
  test('a key limited to one function reads neither another function\'s why nor its logs nor /metrics', async () => {
    for (const name of ['mine', 'theirs']) await platform().control.createFunction({ name, handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    const theirs = await platform().invoke('theirs', null, '{}', { trigger: 'api' });
    const now = platform().clock.now();
    const limited = await platform().keys.create('developer', ['mine'], now);
    const admin = await platform().keys.create('admin', null, now);
    const get = async (path: string, key: { key: { id: string }; secret: string }) => {
      const url = new URL(`${t.url}${path}`);
      const headers = await signRequest({ method: 'GET', url, headers: {}, body: undefined, accessKeyId: key.key.id, secretAccessKey: key.secret, region: 'us-east-1' });
      const r = await fetch(url, { headers });
      return { status: r.status, body: (await r.json().catch(() => null)) as { code?: string } | null };
    };
    for (const path of [`/thaw/v1/invocations/${theirs.record.id}/why`, `/thaw/v1/invocations/${theirs.record.id}`, '/thaw/v1/functions/theirs/logs', '/thaw/v1/functions/theirs/logs/retention', '/metrics']) {
      const r = await get(path, limited);
      assert.equal(r.status, 403, `${path}: ${JSON.stringify(r.body)}`);
      assert.equal(r.body?.code, 'THAW_E_AUTH_DENIED', path);
    }
    const byAdmin = await get(`/thaw/v1/invocations/${theirs.record.id}/why`, admin);
    assert.equal(byAdmin.status, 200, JSON.stringify(byAdmin.body));
    assert.equal((byAdmin.body as { cause?: string }).cause, 'first-invocation');
  });
});

describe('thaw why in tricky orders', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, snapshots: false, freezeAfterMs: 100, versionPrewarm: false }); });
  after(async () => { await t.stop(); });
  const platform = () => t.thaw.platform;
  const frozen = (name: string) => platform().agent.instances().find((i) => i.functionName === name && i.state === 'frozen');

  test('a code update while the old instance was frozen: new-version, and the detail says the update stopped it', async () => {
    await platform().control.createFunction({ name: 'upd', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    await platform().invoke('upd', null, '{}', { trigger: 'api' });
    await eventually(async () => frozen('upd'), 'the instance to be frozen');
    await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'upd', ZipFile: pkg({ 'index.mjs': fnSource('return 2;') }) }));
    const cold = await platform().invoke('upd', null, '{}', { trigger: 'api' });
    const w = await getJson(`${t.url}/thaw/v1/invocations/${cold.record.id}/why`);
    assert.equal(w.cause, 'new-version', w.summary);
    assert.doesNotMatch(w.detail, /had no live instances/, 'it had one, frozen, until the update stopped it');
    assert.match(w.detail, /the change stopped the function's last instance \(\S+, of the earlier code, [\d.]+ \w+ idle\)/, w.detail);
  });
});
