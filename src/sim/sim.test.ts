// The simulator on its own: the Azure trace reader (and its refusals), the synthetic generator, the
// duration model, determinism, and the metrics' bookkeeping on a hand-made trace.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parsePolicy } from '../policies/index.ts';
import { readAzureTrace, sampleDuration, simulate, syntheticTrace, type Trace } from './index.ts';

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
