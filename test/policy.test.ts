// One scripted arrival sequence, fed to the live agent (real processes, virtual time on a ManualClock)
// and to the simulator: both run the same PolicyEngine, so they must take the same decisions at the
// same times for the same reasons. Then policies per function through the API and CLI.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../src/core/clock.ts';
import { Platform, resolveOptions } from '../src/gateway/index.ts';
import { simulate, type Trace } from '../src/sim/index.ts';
import { parsePolicy, type PolicyDecision } from '../src/policies/index.ts';
import { scratchDirs, fnSource, getJson, pkg, processesUnder, startTestThaw, type TestThaw } from './helpers.ts';

const MIN = 60_000;

/** Every 3 minutes (and a little) for `tick`; a burst of 4 at once for `burst`, twice. */
function script() {
  const arrivals: { fn: string; at: number; durationMs: number }[] = [];
  for (let k = 0; k < 9; k++) arrivals.push({ fn: 'tick', at: 1234 + k * 3 * MIN + (k % 3) * 700, durationMs: 0 });
  for (const at of [2 * MIN + 4321, 14 * MIN + 999]) for (let k = 0; k < 4; k++) arrivals.push({ fn: 'burst', at, durationMs: 0 });
  return arrivals.sort((a, b) => a.at - b.at);
}

const view = (d: PolicyDecision) => `${(d.at / 1000).toFixed(3)}s ${d.fn} ${d.action}${'count' in d ? ` ${d.count}` : ''}: ${d.reason}`;

describe('the live agent and the simulator take the same decisions', () => {
  const END = 40 * MIN;
  const dirs = scratchDirs('policy');

  test('on one scripted sequence: keep-alive, freeze, unload, pre-warm and scale-in, decision for decision', async () => {
    const arrivals = script();
    const policy = 'thaw';
    const freezeAfterMs = 20_000;

    // The simulator: the same functions, starts that cost nothing (virtual time stands still in the agent too).
    const trace: Trace = {
      name: 'scripted', minutes: END / MIN,
      functions: ['tick', 'burst'].map((id) => ({ id, app: id, perMinute: new Uint32Array(END / MIN), durationPercentiles: [0, 0, 0, 0, 0, 0, 0], memoryMb: 128 })),
    };
    const simulated: PolicyDecision[] = [];
    simulate(trace, {
      policy: parsePolicy(policy), arrivals, freezeAfterMs, poolSize: 0, snapshots: false,
      costs: { warm: 0, thawed: 0, paged: 0, restored: 0, pooled: 0, cold: 0 }, onDecision: (d) => simulated.push(d),
    });

    // The live platform on a manual clock: real processes, real freezes; time moves only when told.
    const clock = new ManualClock(Date.UTC(2026, 10, 23));
    const platform = await Platform.start(resolveOptions({
      ...dirs, poolSize: 0, snapshots: false, compileCache: false, policy, freezeAfterMs, policySweepMs: 1e9, eventPollIntervalMs: 1e9,
    }), clock);
    try {
      // A burst is concurrent in virtual time; its invocations overlap in real time too, as the simulator assumes.
      await platform.control.createFunction({ name: 'tick', code: pkg({ 'index.mjs': fnSource('return "ok";') }), handler: 'index.handler' });
      await platform.control.createFunction({ name: 'burst', code: pkg({ 'index.mjs': fnSource('await new Promise((r) => setTimeout(r, 300)); return "ok";') }), handler: 'index.handler' });
      let next = 0;
      for (;;) {
        const timer = clock.nextTimerAt();
        const arrival = next < arrivals.length ? arrivals[next].at : Infinity;
        const at = Math.min(timer ?? Infinity, arrival, END);
        clock.advance(at - clock.monotonic());
        if (at === arrival) {
          const now = arrivals.filter((a, i) => i >= next && a.at === at);
          next += now.length;
          const results = await Promise.all(now.map((a) => platform.invoke(a.fn, null, '{}', { trigger: 'api' })));
          for (const r of results) assert.equal(r.record.outcome, 'success');
        }
        await platform.agent.prewarmsSettled();
        if (at >= END) break;
      }
      const live = platform.agent.decisions(undefined, 1000);
      const sim = simulated.filter((d) => d.at <= END).map(view);
      assert.ok(sim.length >= 10, `a scenario with decisions to compare (${sim.length})`);
      for (const action of ['freeze', 'stop', 'prewarm']) assert.ok(simulated.some((d) => d.action === action), `the scenario exercises ${action}`);
      assert.ok(simulated.some((d) => d.reason.startsWith('scale-in')), 'and staged scale-in');
      assert.deepEqual(live.map(view), sim);
      assert.ok(live.every((d) => d.outcome === 'done'), 'the agent carried out every decision');
    } finally {
      await platform.destroy();
    }
    assert.deepEqual(await processesUnder(dirs.cacheDir), []);
  });
});
