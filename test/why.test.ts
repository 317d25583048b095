// `thaw why`: each scenario produces a cold start on a real platform (real processes), and its cause is
// asserted through the API (GET /thaw/v1/invocations/{id}/why) and the CLI (`thaw why ID --json`); then
// the pure parts: the cause rule over facts, and the replay that prices the alternative.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { PublishVersionCommand, PutProvisionedConcurrencyConfigCommand, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { classifyColdStart } from '../src/agent/causes.ts';
import { channels, type PolicyDecisionEvent } from '../src/core/events.ts';
import type { ColdStartFacts, InvocationRecord } from '../src/core/types.ts';
import { explain } from '../src/gateway/why.ts';
import { whatIf } from '../src/sim/index.ts';
import { main } from '../src/cli/index.ts';
import { eventually, fnSource, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

/** `signalled(n)` settles once the instance has had n SIGUSR2s: the test decides when a held call ends. */
const GATE = "let signals = 0; const waiting = new Set(); process.on('SIGUSR2', () => { signals++; for (const w of waiting) w(); });\n" +
  'const signalled = (n) => new Promise((r) => { const w = () => { if (signals >= n) { waiting.delete(w); r(); } }; waiting.add(w); w(); });';

/** Resolves with the first policy decision that matches, as it is published (an event, not a sleep). */
function decision(match: (d: PolicyDecisionEvent) => boolean): Promise<PolicyDecisionEvent> {
  return new Promise((resolve) => {
    const on = (e: unknown) => {
      const d = e as PolicyDecisionEvent;
      if (!match(d)) return;
      channels.policyDecision.unsubscribe(on);
      resolve(d);
    };
    channels.policyDecision.subscribe(on);
  });
}

/** The why of an invocation through the API and through the CLI's --json, which must agree. */
async function why(t: TestThaw, id: string) {
  const api = await getJson(`${t.url}/thaw/v1/invocations/${id}/why`);
  if (process.env.WHY_DEBUG) console.log(api.summary);
  let out = '', err = '';
  const code = await main(['why', id, '--json', '--endpoint', t.url], { out: (s) => { out += s; }, err: (s) => { err += s; }, tty: false, env: {}, signal: undefined });
  assert.equal(code, 0, err);
  const cli = JSON.parse(out);
  assert.equal(cli.cause, api.cause);
  assert.equal(cli.detail, api.detail);
  assert.deepEqual(cli.avoidableBy?.kind, api.avoidableBy?.kind);
  let text = '';
  assert.equal(await main(['why', id, '--endpoint', t.url], { out: (s) => { text += s; }, err: () => {}, tty: false, env: {}, signal: undefined }), 0);
  assert.equal(text, `${api.summary}\n`, 'the text output is the summary');
  return api;
}

describe('thaw why names the cause of each cold start', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, snapshots: false }); });
  after(async () => { await t.stop(); });
  const platform = () => t.thaw.platform;
  const create = (name: string, body: string, prelude = '') => platform().control.createFunction({ name, handler: 'index.handler', code: pkg({ 'index.mjs': fnSource(body, prelude) }) });
  const invoke = (name: string, payload = '{}', qualifier: string | null = null) => platform().invoke(name, qualifier, payload, { trigger: 'api' });
  const live = (name: string) => platform().agent.instances().filter((i) => i.functionName === name && i.state !== 'stopping' && i.state !== 'gone');

  test('first-invocation, then a warm call says it was warm', async () => {
    await create('first', 'return 1;');
    const cold = await invoke('first');
    const w = await why(t, cold.record.id);
    assert.equal(w.cause, 'first-invocation');
    assert.equal(w.warm, false);
    assert.equal(w.avoidableBy.kind, 'provisioned');
    assert.ok(w.avoidableBy.costGBs > 0, JSON.stringify(w.avoidableBy));
    const warm = await invoke('first');
    assert.equal(warm.record.start, 'warm');
    const ww = await why(t, warm.record.id);
    assert.equal(ww.cause, 'warm');
    assert.equal(ww.avoidableBy, null);
    assert.match(ww.summary, /was warm/);
  });

  test('expired-keep-alive: the stop decision\'s policy and idle time, and a longer keep-alive priced by replay', async () => {
    await create('ka', 'return 1;');
    await platform().putPolicy('ka', 'fixed:300ms');
    const stopped = decision((d) => d.fn === 'ka' && d.action === 'stop' && d.outcome === 'done');
    await invoke('ka');
    await stopped;
    const cold = await invoke('ka');
    assert.notEqual(cold.record.start, 'warm');
    const w = await why(t, cold.record.id);
    assert.equal(w.cause, 'expired-keep-alive', w.detail);
    assert.match(w.detail, /fixed:300ms/);
    assert.equal(w.facts.lastEnd.how, 'stopped');
    assert.ok(w.facts.lastEnd.idleMs >= 300, `stopped after its keep-alive: ${w.facts.lastEnd.idleMs}`);
    assert.ok(w.facts.idleGapMs >= w.facts.lastEnd.idleMs);
    assert.equal(w.avoidableBy.kind, 'keep-alive');
    assert.match(w.avoidableBy.alternative, /^fixed:\d+ms$/);
    const altMs = Number(/\d+/.exec(w.avoidableBy.alternative)![0]);
    assert.ok(altMs > w.facts.idleGapMs, 'longer than the gap it had to cover');
    assert.ok(w.avoidableBy.costGBs > 0, JSON.stringify(w.avoidableBy));
    assert.deepEqual(w.avoidableBy.replay.lastWarm, { actual: false, alternative: true }, 'the replay reproduces the cold start and the alternative avoids it');
    assert.match(w.summary, /a keep-alive of .* would have kept it warm, costing [\d.]+ GB·s/i);
  });

  test('new-version: updated code, and why version prewarm did not apply', async () => {
    await create('nv', 'return 1;');
    await platform().putPolicy('nv', 'fixed:300ms');
    const stopped = decision((d) => d.fn === 'nv' && d.action === 'stop' && d.outcome === 'done');
    await invoke('nv');
    await stopped;
    await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'nv', ZipFile: pkg({ 'index.mjs': fnSource('return 2;') }) }));
    const cold = await invoke('nv');
    const w = await why(t, cold.record.id);
    assert.equal(w.cause, 'new-version', w.detail);
    assert.match(w.detail, /version prewarm did not apply: the function had no live instances/);
    assert.equal(w.avoidableBy.kind, 'version-prewarm');
  });

  test('burst: a second call while the first is held on the only instance', async () => {
    await create('burst', 'if (event.hold) await signalled(1); return 1;', GATE);
    const held = invoke('burst', '{"hold":true}');
    const busy = await eventually(async () => live('burst').find((i) => i.state === 'busy'), 'the held call to run');
    let second;
    try {
      second = await invoke('burst');
    } finally {
      process.kill(busy.pid, 'SIGUSR2');
      await held;
    }
    assert.notEqual(second.record.start, 'warm');
    const w = await why(t, second.record.id);
    assert.equal(w.cause, 'burst', w.detail);
    assert.equal(w.facts.busy, 1);
    assert.equal(w.avoidableBy.kind, 'buffer', 'the default policy (thaw) with a buffer of one spare, replayed');
    assert.match(w.avoidableBy.alternative, /^thaw,buffer=1$/);
    assert.equal(w.avoidableBy.replay.lastWarm.alternative, true);
    assert.ok(w.avoidableBy.costGBs > 0, JSON.stringify(w.avoidableBy));
  });

  test('scaled-in: a second instance was scaled in, then the concurrency came back', async () => {
    // Each held call waits for the next signal (an instance holds calls more than once here).
    await create('si', 'if (event.hold) await signalled(signals + 1); return 1;', GATE);
    await platform().putPolicy('si', 'thaw,cooldown=0ms');
    /** A call held on one instance while a second call runs beside it (on its own instance). */
    const pair = async () => {
      const held = invoke('si', '{"hold":true}');
      const busy = await eventually(async () => live('si').find((i) => i.state === 'busy'), 'the held call to run');
      let second;
      try { second = await invoke('si'); } finally { process.kill(busy.pid, 'SIGUSR2'); await held; }
      return second;
    };
    const scaledIn = decision((d) => d.fn === 'si' && d.action === 'stop' && d.outcome === 'done' && d.reason.startsWith('scale-in'));
    await pair();
    await scaledIn;
    const second = await pair();
    const w = await why(t, second.record.id);
    assert.equal(w.cause, 'scaled-in', w.detail);
    assert.equal(w.facts.lastEnd.how, 'scaled-in');
    assert.equal(w.avoidableBy.kind, 'scale-in-cooldown');
    assert.match(w.avoidableBy.alternative, /^thaw,cooldown=/);
    assert.ok(w.avoidableBy.costGBs > 0, JSON.stringify(w.avoidableBy));
  });

  test('crashed: the previous instance died running a call', async () => {
    await create('crash', 'if (event.crash) process.exit(1); return 1;');
    await invoke('crash');
    const crashed = await invoke('crash', '{"crash":true}');
    assert.equal(crashed.record.outcome, 'crash');
    await eventually(async () => live('crash').length === 0, 'the dead instance to be gone');
    const next = await invoke('crash');
    const w = await why(t, next.record.id);
    assert.equal(w.cause, 'crashed', w.detail);
    assert.match(w.detail, /exited with status 1 while running an invocation/);
    assert.equal(w.avoidableBy.kind, 'none');
  });

  test('reserved-exhausted: the one reserved instance is busy', async () => {
    await create('res', 'if (event.hold) await signalled(1); return 1;', GATE);
    const v = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'res' }));
    await t.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: v.Version, ProvisionedConcurrentExecutions: 1 }));
    const reserved = await eventually(async () => live('res').find((i) => i.reserved && i.state === 'idle'), 'the reserved instance to be ready', 30_000);
    const held = invoke('res', '{"hold":true}', v.Version!);
    await eventually(async () => live('res').find((i) => i.id === reserved.id && i.state === 'busy'), 'the held call on the reserved instance');
    try {
      const second = await invoke('res', '{}', v.Version!);
      const w = await why(t, second.record.id);
      assert.equal(w.cause, 'reserved-exhausted', w.detail);
      assert.deepEqual(w.facts.reserved, { configured: 1, busy: 1 });
      assert.equal(w.avoidableBy.kind, 'reserved');
      assert.equal(w.avoidableBy.alternative, 2);
    } finally {
      process.kill(reserved.pid, 'SIGUSR2');
      await held;
      await t.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: v.Version, ProvisionedConcurrentExecutions: 0 })).catch(() => {});
    }
  });

  test('an unknown invocation is a clear 404 through the API and the CLI', async () => {
    const res = await fetch(`${t.url}/thaw/v1/invocations/nope/why`);
    assert.equal(res.status, 404);
    assert.match(await res.text(), /THAW_E_INVOCATION_NOT_FOUND/);
    let err = '';
    const code = await main(['why', '--endpoint', t.url], { out: () => {}, err: (s) => { err += s; }, tty: false, env: {}, signal: undefined });
    assert.equal(code, 2);
    assert.match(err, /missing the invocation id/);
  });
});

describe('thaw why under a memory budget', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, snapshots: false, memoryBudgetMb: 200 }); });
  after(async () => { await t.stop(); });

  test('evicted-memory: who needed the room, and the budget that would have kept it', async () => {
    const { platform } = t.thaw;
    for (const name of ['ea', 'eb']) await platform.control.createFunction({ name, handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    await platform.invoke('ea', null, '{}', { trigger: 'api' });
    await platform.invoke('eb', null, '{}', { trigger: 'api' });
    const cold = await platform.invoke('ea', null, '{}', { trigger: 'api' });
    const w = await why(t, cold.record.id);
    assert.equal(w.cause, 'evicted-memory', w.detail);
    assert.equal(w.facts.lastEnd.evictedFor, 'eb:$LATEST');
    assert.equal(w.facts.lastEnd.budgetMb, 200);
    assert.match(w.detail, /for a start of eb:\$LATEST/);
    assert.equal(w.avoidableBy.kind, 'memory-budget');
    assert.equal(w.avoidableBy.alternative, 256);
    assert.equal(w.avoidableBy.replay.lastWarm.alternative, true);
    assert.ok(w.avoidableBy.costGBs > 0, JSON.stringify(w.avoidableBy));
  });
});

const facts = (f: Partial<ColdStartFacts>): ColdStartFacts => ({
  functionSeen: true, versionSeen: true, previousVersion: null, lastEnd: null, idleGapMs: null, busy: 0, instanceConcurrency: 1,
  reserved: null, versionPrewarm: 'none', otherVersionInstances: 0, policy: 'thaw', ...f,
});
const end = (how: 'stopped' | 'evicted' | 'scaled-in' | 'crashed' | 'killed' | 'retired') => ({ instanceId: 'i1', how, reason: 'r', endedAt: 0, idleMs: 1000, policy: 'fixed:1s' });

test('classifyColdStart() names the most specific cause first', () => {
  assert.equal(classifyColdStart(facts({ functionSeen: false, versionSeen: false }), '$LATEST').cause, 'first-invocation');
  assert.equal(classifyColdStart(facts({ versionSeen: false, previousVersion: '1' }), '2').cause, 'new-version');
  assert.equal(classifyColdStart(facts({ versionSeen: true, versionPrewarm: 'waited' }), '2').cause, 'new-version');
  assert.equal(classifyColdStart(facts({ lastEnd: end('stopped') }), '1').cause, 'expired-keep-alive');
  assert.equal(classifyColdStart(facts({ lastEnd: end('evicted') }), '1').cause, 'evicted-memory');
  assert.equal(classifyColdStart(facts({ lastEnd: end('scaled-in') }), '1').cause, 'scaled-in');
  assert.equal(classifyColdStart(facts({ lastEnd: end('crashed') }), '1').cause, 'crashed');
  assert.equal(classifyColdStart(facts({ lastEnd: end('killed') }), '1').cause, 'crashed');
  assert.equal(classifyColdStart(facts({ busy: 2, lastEnd: end('stopped') }), '1').cause, 'burst', 'busy instances outrank an older end');
  assert.equal(classifyColdStart(facts({ busy: 1, lastEnd: end('scaled-in') }), '1').cause, 'scaled-in', 'busy, and the spare one had been scaled in');
  assert.equal(classifyColdStart(facts({ busy: 1, reserved: { configured: 1, busy: 1 } }), '1').cause, 'reserved-exhausted');
  assert.equal(classifyColdStart(facts({ busy: 1, reserved: { configured: 2, busy: 1 } }), '1').cause, 'burst', 'a reserved one was free (starting): not exhausted');
});

test('whatIf() replays recorded arrivals: a keep-alive that covers the gap keeps the last one warm, at the idle memory it adds', () => {
  const arrivals = [{ fn: 'a', at: 10_000, durationMs: 100, memoryMb: 1024 }, { fn: 'a', at: 70_100, durationMs: 100, memoryMb: 1024 }];
  const r = whatIf(arrivals, 'a', { policy: 'fixed:10s' }, { policy: 'fixed:2m' });
  assert.deepEqual(r.lastWarm, { actual: false, alternative: true });
  assert.deepEqual(r.coldStarts, { actual: 2, alternative: 1 });
  assert.equal(r.idleGBs.actual, 10, '1 GB idle for 10 s, then stopped');
  assert.equal(r.idleGBs.alternative, 60, '1 GB idle the whole minute until the next call');
  assert.equal(r.extraGBs, 50);
});

test('explain() prices an expired keep-alive from the function\'s history', async () => {
  const rec = (id: string, at: number, start: InvocationRecord['start'], cause?: InvocationRecord['cause']): InvocationRecord => ({
    id, functionName: 'f', version: '$LATEST', qualifier: '$LATEST', instanceId: 'i', start, trigger: 'api', callerInvocationId: null, receivedAt: at,
    durationMs: 100, phases: [], initMs: 0, handlerMs: 100, billedMs: 100, memoryMb: 2048, outcome: 'success', errorType: null, errorMessage: null, ...(cause ? { cause } : {}),
  });
  const f = facts({ lastEnd: { ...end('stopped'), idleMs: 60_000, policy: 'fixed:1m' }, idleGapMs: 14 * 60_000, policy: 'fixed:1m' });
  const cold = rec('b', 14 * 60_000 + 100, 'cold', classifyColdStart(f, '$LATEST'));
  const w = await explain(cold, { fn: [cold, rec('a', 0, 'cold')], node: async () => [], createdAt: 0 });
  assert.equal(w.cause, 'expired-keep-alive');
  assert.equal(w.avoidableBy!.alternative, 'fixed:1020000ms', '14 min × 1.2, rounded up to 17 min');
  assert.equal(w.avoidableBy!.costGBs, 1560, '2 GB × (14 − 1) min more idle');
  assert.match(w.summary, /a keep-alive of 17 min would have kept it warm, costing 1560 GB·s/i);
});
