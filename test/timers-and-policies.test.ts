// Timer triggers and scheduled warm-ups end to end on a manual clock: a schedule fires at its time, the
// function runs in a real process, a warm-up is told so (event and context) and is recorded as a warm-up
// that the policies never learn from; then the API and CLI for schedules and policies, with bad input;
// rollout and call-chain pre-warms on a live platform; and `thaw replay`.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/core/clock.ts';
import { channels, type LogEvent } from '../src/core/events.ts';
import type { InstanceView } from '../src/agent/index.ts';
import { Platform, parseSchedule, resolveOptions } from '../src/gateway/index.ts';
import { DEFAULT_TIER_COSTS } from '../src/policies/index.ts';
import { main } from '../src/cli/index.ts';
import { eventually, scratchDirs, fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const MIN = 60_000;

test('schedule expressions: rate and cron (5 fields, or AWS 6 with ? and a year), in UTC; nonsense refused', () => {
  const t0 = Date.UTC(2026, 10, 23, 10, 7, 30);
  assert.equal(parseSchedule('rate(5 minutes)', t0).next(t0), t0 + 5 * MIN);
  assert.equal(parseSchedule('rate(1 hour)', t0).next(t0 + 61 * MIN), t0 + 120 * MIN);
  assert.equal(parseSchedule('cron(*/15 * * * *)').next(t0), Date.UTC(2026, 10, 23, 10, 15));
  assert.equal(parseSchedule('0 12 * * *').next(t0), Date.UTC(2026, 10, 23, 12, 0));
  assert.equal(parseSchedule('cron(0 12 ? * 2 *)').next(t0), Date.UTC(2026, 10, 24, 12, 0), 'Tuesday the 24th');
  assert.equal(parseSchedule('30 9 1 1-3 *').next(t0), Date.UTC(2027, 0, 1, 9, 30));
  for (const bad of ['', 'rate(0 minutes)', 'rate(5 fortnights)', 'cron(61 * * * *)', '* * *', 'cron(* * 31 2 *)', 'cron(a b c d e)']) {
    assert.throws(() => parseSchedule(bad, t0).next(t0), (e: any) => e.code === 'THAW_E_SCHEDULE_INVALID', bad);
  }
});

describe('schedules fire on time and warm-ups are told so', () => {
  const dirs = scratchDirs('sched');

  test('a rate schedule invokes (trigger timer); a warm-up schedule warms (trigger warmup, not counted)', async () => {
    const clock = new ManualClock(Date.UTC(2026, 10, 23, 10, 0, 0));
    const platform = await Platform.start(resolveOptions({ ...dirs, poolSize: 0, snapshots: false, freezeAfterMs: -1, eventPollIntervalMs: 1e9 }), clock);
    try {
      await platform.control.createFunction({
        name: 'job', handler: 'index.handler',
        code: pkg({ 'index.mjs': fnSource('console.log(JSON.stringify({ warmup: context.warmup, eventWarmup: event.warmup === true, source: event.source })); return context.warmup ? "warm" : "ran";') }),
      });
      await platform.schedules.add('job', { expression: 'rate(5 minutes)' });
      await platform.schedules.add('job', { expression: 'rate(2 minutes)', kind: 'warmup' });
      clock.advance(2 * MIN);
      await until(() => platform.schedules.history.length >= 1);
      clock.advance(2 * MIN);
      await until(() => platform.schedules.history.length >= 2);
      clock.advance(MIN);
      await until(() => platform.schedules.history.length >= 3);
      assert.deepEqual(platform.schedules.history.map((h) => h.outcome), ['ok', 'ok', 'ok']);
      await platform.recorder.flush();
      const recs = (await platform.store.listInvocations({ functionName: 'job', limit: 10 })).reverse();
      assert.deepEqual(recs.map((r) => [r.trigger, r.outcome]), [['warmup', 'success'], ['warmup', 'success'], ['timer', 'success']]);
      assert.deepEqual(recs.map((r) => r.receivedAt - Date.UTC(2026, 10, 23, 10)), [2 * MIN, 4 * MIN, 5 * MIN], 'each at its time');
      const lines = (await platform.store.readLogs({ functionName: 'job', limit: 100 })).map((l) => l.line).filter((l) => l.includes('{"warmup"'));
      assert.deepEqual(lines.map((l) => JSON.parse(l.slice(l.indexOf('{')))), [
        { warmup: true, eventWarmup: true, source: 'thaw.warmup' }, { warmup: true, eventWarmup: true, source: 'thaw.warmup' }, { warmup: false, eventWarmup: false, source: 'aws.events' },
      ]);
      assert.equal(platform.agent.policies.state('job', clock.monotonic()).invocations, 1, 'the policy learned only from the timer invocation');
    } finally {
      await platform.destroy();
    }
  });
});

/**
 * A function prelude: `signalled(n)` settles once the instance has had n SIGUSR2s, so the test decides when a
 * call ends (or an init finishes) instead of racing a sleep against instance starts.
 */
const GATE = "let signals = 0; const waiting = new Set(); process.on('SIGUSR2', () => { signals++; for (const w of waiting) w(); });\n" +
  'const signalled = (n) => new Promise((r) => { const w = () => { if (signals >= n) { waiting.delete(w); r(); } }; waiting.add(w); w(); });';

/** Resolves once ok() holds, checked now and at every instance state change and log line: events, not a clock. */
function when(ok: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const check = () => {
      if (!ok()) return;
      channels.instanceState.unsubscribe(check);
      channels.log.unsubscribe(check);
      resolve();
    };
    channels.instanceState.subscribe(check);
    channels.log.subscribe(check);
    check();
  });
}

async function until(ok: () => boolean) {
  for (let i = 0; i < 400 && !ok(); i++) await new Promise((r) => setTimeout(r, 25));
  assert.ok(ok(), 'condition not reached');
}

describe('schedules and policies through the API and the CLI', () => {
  let t: TestThaw;
  before(async () => {
    t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
    await t.thaw.platform.control.createFunction({ name: 'fn', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
  });
  after(async () => { await t.stop(); });

  const cli = async (...argv: string[]) => {
    let out = '', err = '';
    const code = await main([...argv, '--endpoint', t.url], { out: (s) => { out += s; }, err: (s) => { err += s; }, tty: false, env: {}, signal: undefined });
    return { code, out, err };
  };
  const call = (method: string, path: string, body?: unknown) => fetch(t.url + path, { method, body: body === undefined ? undefined : JSON.stringify(body) });

  test('set, show and clear a function\'s policy; bad specs change nothing', async () => {
    let r = await cli('policy', 'fn');
    assert.equal(r.code, 0, r.err);
    assert.match(r.out, /policy\s+thaw \(node default\)/);
    r = await cli('policy', 'fn', 'hybrid:2h');
    assert.match(r.out, /policy\s+hybrid:2h\n/);
    const bad = await call('PUT', '/thaw/v1/functions/fn/policy', { policy: 'lru:5m' });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).code, 'THAW_E_INVALID_POLICY');
    assert.equal(((await (await call('GET', '/thaw/v1/functions/fn/policy')).json()) as any).policy, 'hybrid:2h', 'unchanged');
    assert.equal((await call('PUT', '/thaw/v1/functions/nope/policy', { policy: 'thaw' })).status, 404);
    await t.restart();
    assert.equal(((await (await call('GET', '/thaw/v1/functions/fn/policy')).json()) as any).policy, 'hybrid:2h', 'kept across a restart');
    r = await cli('policy', 'fn', '--default');
    assert.match(r.out, /\(node default\)/);
    r = await cli('policy', 'fn', '--json');
    assert.equal(JSON.parse(r.out).windows.mode, 'fallback');
  });

  test('shifting an alias\'s weight warms the new version in proportion, before its traffic', async () => {
    const { control } = t.thaw.platform;
    await control.createFunction({ name: 'roll', handler: 'index.handler', publish: true, code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    await control.updateCode('roll', pkg({ 'index.mjs': fnSource('return 2;') }), { publish: true });
    let r = await cli('alias', 'set', 'roll', 'live', '1');
    assert.equal(r.code, 0, r.err);
    assert.equal((await cli('invoke', 'roll:live')).code, 0);
    r = await cli('alias', 'set', 'roll', 'live', '1', '--weight', '2=0.1');
    assert.equal(r.code, 0, r.err);
    const { decisions } = await (await call('GET', '/thaw/v1/decisions?function=roll')).json() as any;
    assert.match(decisions.at(-1).reason, /alias live routes 90% to 1, 10% to 2: version 2 wants 1, has 0/);
    for (let i = 0; i < 200; i++) {
      const { instances } = await (await call('GET', '/thaw/v1/instances')).json() as any;
      if (instances.some((x: any) => x.functionName === 'roll' && x.version === '2' && x.state === 'idle' && x.prewarmed)) return;
      await new Promise((res) => setTimeout(res, 25));
    }
    assert.fail('version 2 was not warmed');
  });

  test('call chains: once A is seen calling B, an arrival of A warms B before A calls it', async () => {
    const { platform } = t.thaw;
    await platform.control.createFunction({ name: 'callee', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return "b";') }) });
    // The caller waits for the callee's cold start: a timeout no loaded machine reaches (3 s did, once).
    await platform.control.createFunction({ name: 'caller', handler: 'index.handler', timeoutMs: 60_000, code: pkg({ 'index.mjs': fnSource('return await context.invoke("callee", {});') }) });
    // The callee is dropped 300 ms after each call, so before each new call of A it has nothing loaded.
    await platform.putPolicy('callee', 'fixed:300ms');
    for (let k = 0; k < 4; k++) {
      const r = await platform.invoke('caller', null, '{}', { trigger: 'api' });
      assert.equal(r.payload, '"b"');
      await eventually(async () => !platform.agent.instances().some((i) => i.functionName === 'callee' && i.state !== 'gone'), 'the callee dropped');
    }
    const d = platform.agent.decisions('callee').filter((x) => x.action === 'prewarm');
    assert.ok(d.length >= 1, 'a prewarm of the callee');
    assert.match(d[0].reason, /caller calls callee in \d+% of \d+ invocations/);
    await platform.recorder.flush();
    const recs = await platform.store.listInvocations({ functionName: 'callee', limit: 20 });
    assert.ok(recs.some((r) => r.trigger === 'prewarm'), 'the pre-warmed instance was started and recorded as a prewarm');
  });

  test('a buffer: with thaw,buffer=1 a spare instance is started beside the running ones, so a second caller finds it warm', async () => {
    const { platform } = t.thaw;
    await platform.control.createFunction({ name: 'buf', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('if (event.hold) await signalled(1); return 1;', GATE) }) });
    const set = await call('PUT', '/thaw/v1/functions/buf/policy', { policy: 'thaw,utilization=0.8,buffer=1' });
    assert.equal(set.status, 200);
    assert.equal(((await set.json()) as any).policy, 'thaw,buffer=1,utilization=0.8', 'printed back in its canonical order');
    const bad = await call('PUT', '/thaw/v1/functions/buf/policy', { policy: 'thaw,buffer=lots' });
    assert.equal(bad.status, 400);
    assert.match(((await bad.json()) as any).message, /needs a buffer of 0\.\.100 spare instances, not 'lots'/);
    const live = () => platform.agent.instances().filter((i) => i.functionName === 'buf' && i.state !== 'gone' && i.state !== 'stopping');
    // The first call is held until the test releases it (SIGUSR2 to its instance), so it is still running
    // when the second arrives however slowly the machine starts instances.
    const first = platform.invoke('buf', null, '{"hold":true}', { trigger: 'api' });
    await Promise.race([
      when(() => live().some((i) => i.state === 'busy')),
      first.then((r) => assert.fail(`the held call ended before it was released: ${r.payload}`)),
    ]);
    // Its spare was decided on arrival, before the call's instance went busy: once started, it waits idle.
    await platform.agent.prewarmsSettled();
    assert.deepEqual(live().map((i) => i.state).sort(), ['busy', 'idle'], 'a spare instance idle beside the running one');
    const held = live().find((i) => i.state === 'busy')!;
    // While the first runs, a second caller takes the spare, and a new spare is started.
    const second = await platform.invoke('buf', null, '{}', { trigger: 'api' });
    assert.equal(second.record.start, 'warm', 'the second caller found the spare');
    process.kill(held.pid, 'SIGUSR2');
    assert.equal((await first).record.outcome, 'success');
    await platform.agent.prewarmsSettled();
    assert.deepEqual(live().map((i) => i.state), ['idle', 'idle', 'idle'], 'the buffer topped up again');
    const d = platform.agent.decisions('buf').filter((x) => x.action === 'prewarm');
    assert.ok(d.length >= 2 && d.every((x) => /^buffer: 0 spare of 1/.test(x.reason)), JSON.stringify(d));
  });

  test('an instance starting for a call is not a spare: a caller arriving meanwhile takes the idle spare, and another is started', async () => {
    const { platform } = t.thaw;
    // Each instance waits in init for a first SIGUSR2 (it logs once it listens) and a held call for a second.
    const code = fnSource('if (event.hold) await signalled(2); return 1;', `${GATE}\nconsole.log('gate listening'); await signalled(1);`);
    await platform.control.createFunction({ name: 'buf2', handler: 'index.handler', code: pkg({ 'index.mjs': code }) });
    await platform.putPolicy('buf2', 'thaw,buffer=1');
    const listening = new Set<string>();
    const onLog = (e: unknown) => { const l = e as LogEvent; if (l.functionName === 'buf2' && l.line.includes('gate listening')) listening.add(l.instanceId); };
    channels.log.subscribe(onLog);
    const live = () => platform.agent.instances().filter((i) => i.functionName === 'buf2' && i.state !== 'gone' && i.state !== 'stopping');
    const starting = () => live().filter((i) => i.state === 'starting' || i.state === 'initializing');
    const state = (id: string) => live().find((i) => i.id === id)?.state;
    // The pid is read once the runtime listens: under the namespaces driver it is bwrap's until the runtime runs.
    const signal = async (i: InstanceView) => { await when(() => listening.has(i.id)); process.kill(live().find((x) => x.id === i.id)!.pid, 'SIGUSR2'); };
    const prewarms = () => platform.agent.decisions('buf2').filter((x) => x.action === 'prewarm').map((x) => x.reason);
    const calls: Promise<unknown>[] = [];
    const invoke = (payload: string) => { const p = platform.invoke('buf2', null, payload, { trigger: 'api' }); calls.push(p); return p; };
    try {
      // A held first call: its own instance A and its spare B start; both are let through init.
      invoke('{"hold":true}');
      await when(() => starting().length === 2);
      for (const i of starting()) await signal(i);
      await when(() => live().map((i) => i.state).sort().join() === 'busy,idle');
      // A held second call takes B; its spare C starts and is kept in init.
      invoke('{"hold":true}');
      await when(() => starting().length === 1);
      const c = starting()[0];
      // A third call finds nothing idle: C is its spare (rightly), so it starts its own instance D, kept in init.
      invoke('{}');
      await when(() => starting().length === 2);
      await signal(c);
      await when(() => state(c.id) === 'idle');
      assert.equal(prewarms().length, 2);
      // A fourth call, while D still starts for the third: C is the only spare and the fourth takes it.
      const fourth = await invoke('{}');
      assert.equal(fourth.record.start, 'warm');
      assert.deepEqual(prewarms(), Array(3).fill('buffer: 0 spare of 1 once this invocation runs'), 'D, starting for the third call, was not counted as a spare');
      await when(() => starting().length === 2);
    } finally {
      // Let every init and held call through (E, the fourth call's spare, included), so nothing is left waiting.
      await Promise.all(live().map((i) => (i.state === 'busy' ? process.kill(i.pid, 'SIGUSR2') : i.state === 'idle' ? undefined : signal(i))));
      await Promise.allSettled(calls);
      await platform.agent.prewarmsSettled();
      channels.log.unsubscribe(onLog);
    }
  });

  test('the policies decide with the tier costs this node measured, not constants', async () => {
    const { platform } = t.thaw;
    await platform.control.createFunction({ name: 'costed', handler: 'index.handler', code: pkg({ 'index.mjs': fnSource('return 1;') }) });
    const before = platform.agent.tierCosts();
    for (let k = 0; k < 4; k++) await platform.invoke('costed', null, '{}', { trigger: 'api' });
    const after = platform.agent.tierCosts();
    assert.ok(after.learned.includes('warm'), `warm learned after 3 warm invocations: ${JSON.stringify(after)}`);
    assert.notEqual(after.warm, DEFAULT_TIER_COSTS.warm, 'a figure measured here, not the constant');
    assert.ok(!before.learned.includes('pagedRamFraction') && after.pagedRamFraction === DEFAULT_TIER_COSTS.pagedRamFraction, 'nothing paged here: that one stays the constant');
    platform.agent.sweepIdle();
    assert.equal(platform.agent.policies.tiers.warm, after.warm, 'the engine took them at the sweep');
  });

  test('add, list and remove schedules; bad expressions are refused with a fix', async () => {
    let r = await cli('schedule', 'fn', 'rate(10 minutes)', '--warmup');
    assert.equal(r.code, 0, r.err);
    const id = r.out.split(':')[0];
    r = await cli('schedule', 'fn');
    assert.match(r.out, new RegExp(`${id}\\s+warmup\\s+rate\\(10 minutes\\)`));
    r = await cli('schedule', 'fn', 'cron(99 * * * *)');
    assert.equal(r.code, 1);
    assert.match(r.err, /THAW_E_SCHEDULE_INVALID.*outside 0-59 in the minute field/);
    const badKind = await call('POST', '/thaw/v1/functions/fn/schedules', { expression: 'rate(1 minute)', kind: 'sometimes' });
    assert.equal(badKind.status, 400);
    assert.equal(((await (await call('GET', '/thaw/v1/functions/fn/schedules')).json()) as any).schedules.length, 1, 'nothing half-added');
    r = await cli('schedule', 'fn', '--rm', id);
    assert.equal(r.code, 0, r.err);
    assert.equal((await call('DELETE', `/thaw/v1/functions/fn/schedules/${id}`)).status, 404);
  });
});

test('thaw replay drives a real platform with a compressed slice and simulates the same arrivals', async () => {
  let out = '', err = '';
  const code = await main(['replay', '--synthetic', '12', '--count', '3', '--minutes', '4', '--speed', '120', '--json'], { out: (s) => { out += s; }, err: (s) => { err += s; }, tty: false, env: {}, signal: undefined });
  assert.equal(code, 0, err);
  const r = JSON.parse(out);
  assert.ok(r.live.invocations > 0, 'the slice has invocations');
  assert.equal(r.live.invocations, r.simulated.invocations, 'every arrival ran live');
  assert.ok(r.live.coldStarts >= 1 && r.simulated.coldStarts >= 1, 'the first call of each function is a start in both');
  for (const k of ['coldStartRate', 'p75FunctionColdStartRate', 'wastedMemoryGBs']) assert.equal(typeof r.agreement[k], 'number');
});
