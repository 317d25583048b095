// `thaw replay --trace DIR`: drives a real platform (in this process, its own data directory) with a
// time-compressed slice of a trace, through generated functions that sleep as long as the trace says,
// measures cold starts and idle memory from the platform's own events, then simulates the same arrivals
// with start costs measured in the run, and prints both with their agreement.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ScaledClock, systemClock } from '../../core/clock.ts';
import { ThawError } from '../../core/errors.ts';
import { channels, type InstanceStateEvent } from '../../core/events.ts';
import { START_KINDS, type InvocationRecord, type StartKind } from '../../core/types.ts';
import { zipEntries } from '../../codestore/index.ts';
import { Platform, resolveOptions } from '../../gateway/index.ts';
import { DEFAULT_POLICY, formatPolicy, parsePolicy, ramMb, type TierCosts } from '../../policies/index.ts';
import { BENCH_COSTS, coldStartSummary, minuteArrivals, rng, simulate, type PathCosts, type SimResult, type Trace } from '../../sim/index.ts';
import { num, str, type Command } from '../command.ts';
import { loadTrace, resultRows } from './sim.ts';

const HANDLER = `import { setTimeout as sleep } from 'node:timers/promises';
export const handler = async (event) => { if (event.ms > 0) await sleep(event.ms); return 1; };
`;

interface Slice { trace: Trace; arrivals: { fn: string; at: number; durationMs: number }[] }

/**
 * The first `count` functions that are invoked in the window but at most `maxPerMinute` times a minute
 * (a 2-core machine must keep up at the chosen speed), with arrivals by the simulator's model.
 */
export function sliceTrace(trace: Trace, o: { from: number; minutes: number; count: number; maxPerMinute: number; seed: number }): Slice {
  const chosen = trace.functions.filter((f) => {
    const w = f.perMinute.subarray(o.from, o.from + o.minutes);
    return w.some((n) => n > 0) && Math.max(...w) <= o.maxPerMinute;
  }).slice(0, o.count);
  if (!chosen.length) throw new ThawError('THAW_E_TRACE_INVALID', `no function of ${trace.name} is invoked in minutes ${o.from}..${o.from + o.minutes} at most ${o.maxPerMinute} times a minute`);
  const functions = chosen.map((f, i) => ({ ...f, id: `replay-${i}`, memoryMb: Math.max(128, Math.min(10_240, Math.round(f.memoryMb))), perMinute: f.perMinute.slice(o.from, o.from + o.minutes) }));
  const arrivals: Slice['arrivals'] = [];
  functions.forEach((f, i) => {
    for (let m = 0; m < o.minutes; m++) {
      const r = rng((o.seed * 7919 + i * 104729 + m * 31) >>> 0);
      minuteArrivals(f.perMinute[m], m, f.durationPercentiles, r, (at, durationMs) => arrivals.push({ fn: f.id, at, durationMs }));
    }
  });
  arrivals.sort((a, b) => a.at - b.at);
  return { trace: { name: `${trace.name}[${o.from}+${o.minutes}min, ${functions.length} functions]`, minutes: o.minutes, functions }, arrivals };
}

export const replayCommand: Command = {
  name: 'replay',
  usage: 'replay --trace DIR [--count N] [--minutes M] [--speed S] [--policy SPEC] [--json]',
  summary: 'drive a real platform with a time-compressed trace slice and compare it with the simulator',
  help: [
    '  --trace DIR, --functions N, --synthetic N   the trace, as for `thaw sim`',
    '  --count N       functions in the slice (default 12)',
    '  --from M        first minute of the slice (default 0)',
    '  --minutes M     length of the slice in trace minutes (default 30)',
    '  --speed S       time compression (default 30: a trace minute in 2 s)',
    '  --max-rate N    leave out functions invoked more than N times in a minute (default 6)',
    `  --policy SPEC   the policy both run (default ${formatPolicy(DEFAULT_POLICY)})`,
    '  --json          one JSON object: live, simulated, agreement',
    '',
  ].join('\n'),
  options: {
    trace: { type: 'string' }, functions: { type: 'string' }, synthetic: { type: 'string' }, count: { type: 'string' }, from: { type: 'string' },
    minutes: { type: 'string' }, speed: { type: 'string' }, 'max-rate': { type: 'string' }, policy: { type: 'string' }, json: { type: 'boolean' },
  },
  async run(args) {
    const { io } = args;
    const policy = parsePolicy(str(args, 'policy') ?? formatPolicy(DEFAULT_POLICY));
    const speed = num(args, 'speed') ?? 30;
    if (speed < 1 || speed > 600) throw new ThawError('THAW_E_CLI_USAGE', '--speed must be between 1 and 600');
    const slice = sliceTrace(loadTrace(args.values), {
      from: num(args, 'from') ?? 0, minutes: num(args, 'minutes') ?? 30, count: num(args, 'count') ?? 12, maxPerMinute: num(args, 'max-rate') ?? 6, seed: 1,
    });
    const freezeAfterMs = 10_000;
    io.err(`replay: ${slice.trace.name}, ${slice.arrivals.length} invocations, ${formatPolicy(policy)}, ${speed}× (${(slice.trace.minutes * 60 / speed).toFixed(0)} s)\n`);
    const live = await runLive(slice, { policy: formatPolicy(policy), speed, freezeAfterMs }, (done) => { if (io.tty) io.err(`\rreplay: ${done}/${slice.arrivals.length} invocations sent`); });
    io.err(`${io.tty ? '\n' : ''}replay: done; simulating the same arrivals\n`);
    // The simulator gets the same arrivals and the start costs this run measured (in trace time); its engine
    // decides by the tier facts the live one had, with the paged tier on where it was.
    const sim = simulate(slice.trace, { policy, arrivals: slice.arrivals, freezeAfterMs, costs: live.costs, tiers: live.tiers, paging: live.paging, poolSize: 2, snapshots: false });
    const agreement = {
      coldStarts: ratio(live.result.coldStarts, sim.coldStarts),
      coldStartRate: ratio(live.result.coldStartRate, sim.coldStartRate),
      p75FunctionColdStartRate: ratio(live.result.p75FunctionColdStartRate, sim.p75FunctionColdStartRate),
      wastedMemoryGBs: ratio(live.result.wastedMemoryGBs, sim.wastedMemoryGBs),
    };
    if (args.values.json) { io.out(`${JSON.stringify({ live: live.result, simulated: sim, costs: live.costs, agreement })}\n`); return 0; }
    io.out(resultRows([{ ...live.result, policy: `live ${live.result.policy}` }, { ...sim, policy: `sim ${sim.policy}` }]));
    io.out(`start costs measured (trace ms): ${START_KINDS.map((k) => `${k} ${live.costs[k].toFixed(0)}`).join(', ')}\n`);
    io.out(`agreement (live / simulated): cold starts ${agreement.coldStarts}, wasted memory ${agreement.wastedMemoryGBs}\n`);
    return 0;
  },
};

const ratio = (a: number, b: number) => (b === 0 ? (a === 0 ? 1 : Infinity) : Math.round((a / b) * 100) / 100);

async function runLive(slice: Slice, o: { policy: string; speed: number; freezeAfterMs: number }, progress: (n: number) => void): Promise<{ result: SimResult; costs: PathCosts; tiers: TierCosts; paging: boolean }> {
  const dataDir = await mkdtemp(join(tmpdir(), 'thaw-replay-'));
  const cacheDir = await mkdtemp('/dev/shm/thaw-replay-cache-').catch(() => mkdtemp(join(tmpdir(), 'thaw-replay-cache-')));
  const clock = new ScaledClock(systemClock, o.speed);
  // Limits are in trace time: a 10 s start limit is 10 s of real time at any speed.
  const platform = await Platform.start(resolveOptions({
    dataDir, cacheDir, policy: o.policy, freezeAfterMs: o.freezeAfterMs, snapshots: false, eventPollIntervalMs: 1e9,
    startTimeoutMs: 10_000 * o.speed, initTimeoutMs: 10_000 * o.speed, policySweepMs: 30_000,
  }), clock);
  const memory = new Map(slice.trace.functions.map((f) => [f.id, f.memoryMb]));
  const tiers = platform.agent.policies.tiers;
  // Since when each instance has rested in which tier: idle and frozen ones hold their memory, paged ones their RAM fraction.
  const resting = new Map<string, { since: number; state: string; memoryMb: number }>();
  let wastedMbMs = 0, swapMbMs = 0;
  const held = (r: { since: number; state: string; memoryMb: number }, until: number) => {
    wastedMbMs += (until - r.since) * ramMb(r.state, r.memoryMb, tiers);
    if (r.state === 'paged') swapMbMs += (until - r.since) * r.memoryMb * tiers.pagedSwapFraction;
  };
  const onState = (m: unknown) => {
    const e = m as InstanceStateEvent;
    if (!e.functionName || !memory.has(e.functionName)) return;
    const r = resting.get(e.instanceId);
    if (r) { held(r, e.at); resting.delete(e.instanceId); }
    if (e.to === 'idle' || e.to === 'frozen' || e.to === 'paged') resting.set(e.instanceId, { since: e.at, state: e.to, memoryMb: memory.get(e.functionName)! });
  };
  const records: InvocationRecord[] = [];
  const onRecord = (m: unknown) => { const r = m as InvocationRecord; if (memory.has(r.functionName) && r.trigger === 'api') records.push(r); };
  channels.instanceState.subscribe(onState);
  channels.invocationEnd.subscribe(onRecord);
  try {
    const code = zipEntries([{ path: 'index.mjs', data: Buffer.from(HANDLER) }]);
    for (const f of slice.trace.functions) await platform.control.createFunction({ name: f.id, code, handler: 'index.handler', memoryMb: f.memoryMb, timeoutMs: 900_000 });
    const t0 = clock.now();
    const running: Promise<unknown>[] = [];
    for (let i = 0; i < slice.arrivals.length; i++) {
      const a = slice.arrivals[i];
      const wait = (a.at - (clock.now() - t0)) / o.speed;
      if (wait > 1) await sleep(wait);
      running.push(platform.invoke(a.fn, null, JSON.stringify({ ms: a.durationMs / o.speed }), { trigger: 'api' }).catch(() => null));
      if (i % 20 === 0) progress(i + 1);
    }
    progress(slice.arrivals.length);
    await Promise.all(running);
    const end = t0 + slice.trace.minutes * 60_000;
    if (clock.now() < end) await sleep((end - clock.now()) / o.speed);
    const endAt = clock.now();
    for (const i of platform.agent.instances()) {
      const r = resting.get(i.id);
      if (r) held(r, endAt);
    }
    const per = slice.trace.functions.map((f) => {
      const rs = records.filter((r) => r.functionName === f.id);
      return { invocations: rs.length, coldStarts: rs.filter((r) => r.start !== 'warm' && r.start !== 'thawed' && r.start !== 'paged').length };
    });
    const byPath = Object.fromEntries(START_KINDS.map((k) => [k, records.filter((r) => r.start === k).length])) as Record<StartKind, number>;
    // What each rung cost in this run, from the records' start phases (trace time).
    const startMs = (r: InvocationRecord) => r.phases.filter((p) => p.name !== 'handler').reduce((s, p) => s + p.durationMs, 0);
    const costs = { ...BENCH_COSTS } as PathCosts;
    for (const k of START_KINDS) {
      const xs = records.filter((r) => r.start === k).map(startMs).sort((a, b) => a - b);
      if (xs.length) costs[k] = xs[Math.floor(xs.length / 2)];
    }
    const decisions: Record<string, number> = {};
    for (const d of platform.agent.decisions(undefined, 1000)) decisions[d.action] = (decisions[d.action] ?? 0) + 1;
    const result: SimResult = {
      trace: slice.trace.name, policy: o.policy, model: 'invocation', ...coldStartSummary(per), wastedMemoryGBs: Math.round(wastedMbMs / 1024 / 1000),
      swapGBs: Math.round(swapMbMs / 1024 / 1000),
      instanceStarts: records.filter((r) => r.start !== 'warm' && r.start !== 'thawed' && r.start !== 'paged').length + (decisions.prewarm ?? 0),
      prewarms: decisions.prewarm ?? 0, evictions: decisions.evict ?? 0, byPath,
      startPenaltySeconds: Math.round(records.reduce((s, r) => s + startMs(r), 0) / 10) / 100, decisions,
      simulatedMinutes: slice.trace.minutes, wallMs: Math.round((clock.now() - t0) / o.speed),
    };
    return { result, costs, tiers, paging: platform.agent.paging };
  } finally {
    channels.instanceState.unsubscribe(onState);
    channels.invocationEnd.unsubscribe(onRecord);
    await platform.destroy();
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  }
}
