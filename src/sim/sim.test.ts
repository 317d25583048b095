// The simulator on its own: the Azure trace reader (and its refusals), the synthetic generator, the
// duration model, determinism, the metrics' bookkeeping on a hand-made trace (RAM and swap of the paged
// tier too), and the tier costs read from bench results.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../policies/index.ts';
import { BENCH_COSTS, benchCosts, describeCosts, readAzureTrace, sampleDuration, simulate, syntheticTrace, type Trace } from './index.ts';

function traceDir(inv: string, run?: string, mem?: string) {
  const dir = mkdtempSync(join(tmpdir(), 'thaw-trace-'));
  writeFileSync(join(dir, '3_inv.csv'), inv);
  if (run) writeFileSync(join(dir, '3_run.csv'), run);
  if (mem) writeFileSync(join(dir, '3_mem.csv'), mem);
  return dir;
}

test('reads the Azure 2019 format: per-minute counts, duration percentiles per function, memory per app', () => {
  const dir = traceDir(
    'HashFunction,HashOwner,HashApp,minute_1,minute_2,minute_3\nf1,o,a1,1,0,2\nf2,o,a2,0,0,1\n',
    'HashOwner,HashApp,HashFunction,Average,Count,Minimum,Maximum,percentile_Average_0,percentile_Average_1,percentile_Average_25,percentile_Average_50,percentile_Average_75,percentile_Average_99,percentile_Average_100\no,a1,f1,5,1,1,9,1,2,3,4,5,6,7\n',
    'HashOwner,HashApp,SampleCount,AverageAllocatedMb\no,a1,3,300\n',
  );
  const t = readAzureTrace(dir);
  assert.equal(t.minutes, 3);
  assert.deepEqual(t.functions.map((f) => [f.id, [...f.perMinute], f.memoryMb]), [['f1', [1, 0, 2], 300], ['f2', [0, 0, 1], 128]]);
  assert.deepEqual(t.functions[0].durationPercentiles, [1, 2, 3, 4, 5, 6, 7]);
  assert.deepEqual(t.functions[1].durationPercentiles, [1000, 1000, 1000, 1000, 1000, 1000, 1000], 'no run row: 1 s');
});

test('refuses what is not a trace, saying what is expected', () => {
  const bad = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: any) => e.code === 'THAW_E_TRACE_INVALID' && re.test(e.message));
  bad(() => readAzureTrace('/nonexistent'), /does not exist/);
  bad(() => readAzureTrace(mkdtempSync(join(tmpdir(), 'thaw-empty-'))), /no <n>_inv\.csv/);
  bad(() => readAzureTrace(traceDir('a,b,c\n1,2,3\n')), /lacks HashFunction/);
  bad(() => readAzureTrace(traceDir('HashFunction,HashOwner,HashApp,minute_1\nf,o,a,x\n')), /'x' in column minute_1, not a count/);
  bad(() => readAzureTrace(traceDir('HashFunction,HashOwner,HashApp,minute_1,minute_2\nf,o,a,1\n')), /a row has 4 columns, the header 5/);
});

test('durations are drawn linearly between the published percentiles', () => {
  const p = [10, 20, 30, 40, 50, 60, 70];
  assert.equal(sampleDuration(p, 0), 10);
  assert.equal(sampleDuration(p, 0.5), 40);
  assert.equal(sampleDuration(p, 0.375), 35);
  assert.equal(sampleDuration(p, 1), 70);
});

test('the same trace and seed give the same result; the synthetic day has every shape', () => {
  const t = syntheticTrace({ functions: 24, minutes: 240, seed: 7 });
  const a = simulate(t, { policy: parsePolicy('thaw') });
  const b = simulate(t, { policy: parsePolicy('thaw') });
  assert.deepEqual({ ...a, wallMs: 0 }, { ...b, wallMs: 0 });
  assert.ok(a.invocations > 1000 && a.coldStarts > 0 && a.wastedMemoryGBs > 0);
});

test('bookkeeping on a hand-made trace: one call a minute, kept warm vs dropped', () => {
  const perMinute = new Uint32Array(10).fill(1);
  const t: Trace = { name: 'tiny', minutes: 10, functions: [{ id: 'f', app: 'a', perMinute, durationPercentiles: [100, 100, 100, 100, 100, 100, 100], memoryMb: 1024 }] };
  const kept = simulate(t, { policy: parsePolicy('fixed:10m'), freezeAfterMs: -1 });
  assert.deepEqual([kept.invocations, kept.coldStarts, kept.instanceStarts], [10, 1, 1], 'one start, then warm');
  // Idle from the first run's end to the trace's end, less nine 100 ms runs (and the start): about 600 GB·s at 1 GB.
  assert.ok(kept.wastedMemoryGBs > 540 && kept.wastedMemoryGBs <= 600, `${kept.wastedMemoryGBs}`);
  const dropped = simulate(t, { policy: parsePolicy('fixed:0ms'), freezeAfterMs: -1 });
  assert.deepEqual([dropped.coldStarts, dropped.wastedMemoryGBs, dropped.p75FunctionColdStartRate], [10, 0, 1]);
});

test("the minute model (Shahrad et al.'s): a function is loaded or not, each active minute one arrival", () => {
  // Four 30 s invocations in every minute: by invocation they overlap and need several instances; by
  // minute there is one arrival a minute and one instance.
  const perMinute = new Uint32Array(10).fill(4);
  const t: Trace = { name: 'busy', minutes: 10, functions: [{ id: 'f', app: 'a', perMinute, durationPercentiles: Array(7).fill(30_000), memoryMb: 1024 }] };
  const byInvocation = simulate(t, { policy: parsePolicy('fixed:10m'), freezeAfterMs: -1 });
  assert.equal(byInvocation.model, 'invocation');
  assert.equal(byInvocation.invocations, 40);
  assert.ok(byInvocation.instanceStarts > 1, `${byInvocation.instanceStarts} starts`);
  const byMinute = simulate(t, { policy: parsePolicy('fixed:10m'), freezeAfterMs: -1, model: 'minute' });
  assert.deepEqual([byMinute.model, byMinute.invocations, byMinute.coldStarts, byMinute.instanceStarts], ['minute', 10, 1, 1]);
  assert.ok(byMinute.wastedMemoryGBs > 540 && byMinute.wastedMemoryGBs <= 600, 'idle the whole time after the first arrival, runs take none');
});

test('a buffer costs a periodic function little: its spare goes once the activity is over, and the pre-warm still comes', () => {
  const perMinute = new Uint32Array(180).map((_, m) => (m % 10 === 0 ? 1 : 0));
  const t: Trace = { name: 'periodic', minutes: 180, functions: [{ id: 'f', app: 'a', perMinute, durationPercentiles: Array(7).fill(200), memoryMb: 1024 }] };
  const plain = simulate(t, { policy: parsePolicy('thaw') });
  const buffered = simulate(t, { policy: parsePolicy('thaw,buffer=1') });
  assert.equal(buffered.coldStarts, plain.coldStarts, 'only the first call is cold either way');
  assert.ok(buffered.wastedMemoryGBs < plain.wastedMemoryGBs * 1.2, `${buffered.wastedMemoryGBs} vs ${plain.wastedMemoryGBs} GB·s`);
});

test('the paged tier: RAM counts a paged instance at its fraction and its pages as swap; an arrival that finds it is not a cold start', () => {
  // Ten calls 30 s apart (a trusted histogram with no pre-warm gap: thaw keeps it 10 min), then silence.
  // Paged RAM half of frozen, a paged resume +10 ms against +100 ms for a start: paged at 2 min idle and
  // kept to 18 min, where a frozen one goes at 10 min (src/policies/tiers.ts).
  const t: Trace = { name: 'tiers', minutes: 60, functions: [{ id: 'f', app: 'a', perMinute: new Uint32Array(60), durationPercentiles: Array(7).fill(0), memoryMb: 1024 }] };
  const calls = Array.from({ length: 10 }, (_, k) => ({ fn: 'f', at: k * 30_000, durationMs: 0 }));
  const tiers = { ...BENCH_COSTS, warm: 0, thawed: 4, paged: 14, restored: 0, pooled: 0, cold: 104, pagedRamFraction: 0.5, pagedSwapFraction: 0.9 };
  const free = { warm: 0, thawed: 0, paged: 0, restored: 0, pooled: 0, cold: 0, pagedRamFraction: 0.5, pagedSwapFraction: 0.9 };
  const run = (paging: boolean, arrivals = calls) => simulate(t, { policy: parsePolicy('thaw'), arrivals, costs: free, tiers, paging, freezeAfterMs: 10_000 });
  const paged = run(true);
  const frozen = run(false);
  assert.deepEqual([paged.decisions.page, frozen.decisions.page], [1, undefined]);
  // 9 gaps of 30 s at 1 GB, then 2 min frozen at 1 GB and 16 min paged at 0.5 GB (600 GB·s), or 10 min frozen.
  assert.equal(paged.wastedMemoryGBs, 270 + 120 + 480);
  assert.equal(frozen.wastedMemoryGBs, 270 + 600, 'the same RAM: the paged stay is stretched to what the frozen one held');
  assert.deepEqual([paged.swapGBs, frozen.swapGBs], [960 * 0.9, 0], '16 min of 0.9 GB in swap');
  // A call 15 min after the last: past the frozen window, inside the paged one.
  const late = [...calls, { fn: 'f', at: 270_000 + 15 * 60_000, durationMs: 0 }];
  const resumed = run(true, late);
  const restarted = run(false, late);
  assert.deepEqual([resumed.byPath.paged, resumed.coldStarts], [1, 1], 'the paged path, not a cold start');
  assert.deepEqual([restarted.byPath.paged, restarted.coldStarts], [0, 2]);
});

test('the baselines page only when the page-out time is forced, and then keep their windows', () => {
  const perMinute = new Uint32Array(30);
  perMinute[0] = 1;
  const t: Trace = { name: 'once', minutes: 30, functions: [{ id: 'f', app: 'a', perMinute, durationPercentiles: Array(7).fill(0), memoryMb: 1024 }] };
  const fixed = simulate(t, { policy: parsePolicy('fixed:10m') });
  assert.deepEqual([fixed.decisions.page, fixed.swapGBs], [undefined, 0], 'fixed:10m as published');
  const forced = simulate(t, { policy: parsePolicy('fixed:10m'), pageAfterMs: 50_000 });
  assert.equal(forced.decisions.page, 1);
  assert.equal(forced.decisions.stop, 1);
  // Frozen at 10 s, paged at 60 s, stopped at 10 min: 60 s at 1 GB, 540 s at the constant fraction.
  assert.equal(forced.wastedMemoryGBs, Math.round(60 + 540 * BENCH_COSTS.pagedRamFraction));
  assert.ok(forced.wastedMemoryGBs < fixed.wastedMemoryGBs);
});

test('tier costs come from the bench results: ladder medians, the paged start and the paged RAM fraction; the constants only for what is missing', () => {
  const ladder = { functions: { hello: { cold: { p50: 176.1 }, coldCached: { p50: 150 }, pooled: { p50: 31.6 }, restored: { p50: 191.4 }, thawed: { p50: 4.01 }, warm: { p50: 4.18 } } } };
  const MB = 1048576;
  const paged = { functions: { hello: { paged: 18.9, frozenResidentBytes: 10 * MB, pagedRamBytes: 3.5 * MB, pagedSwappedBytes: 9 * MB } }, zram: null };
  const b = benchCosts({ ladder, paged }, '2026-11-30');
  assert.deepEqual(b.costs, { warm: 4.18, thawed: 4.01, paged: 18.9, restored: 191.4, pooled: 31.6, cold: 176.1, pagedRamFraction: 0.35, pagedSwapFraction: 0.9 });
  assert.deepEqual(b.constants, []);
  // Results from before the compressed size was recorded: the swapped pages at the device's ratio.
  const older = benchCosts({ paged: { functions: { hello: { paged: 18.9, frozenResidentMb: 10, pagedResidentMb: 1, swappedMb: 9 } }, zram: { origMb: 90, comprMb: 30 } } });
  assert.equal(older.costs.pagedRamFraction, (1 + 9 / 3) / 10);
  assert.deepEqual(older.constants, ['warm', 'thawed', 'restored', 'pooled', 'cold']);
  const none = benchCosts({ ladder: {}, paged: null });
  assert.deepEqual([none.costs, none.measured], [BENCH_COSTS, []]);
  assert.match(describeCosts(none, 'results.json'), /has no ladder or paged figures: the constants warm 2\.9 ms/);
  assert.match(describeCosts(null, 'results.json'), /no bench results at results\.json \(run npm run bench\)/);
  assert.match(describeCosts(older, 'r.json'), /^tier costs from r\.json: paged 18\.9 ms, paged RAM 0\.40× frozen, paged swap 0\.90× frozen; constants \(not in the results\) warm 2\.9 ms/);
});
