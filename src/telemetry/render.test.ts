import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { InvocationRecord } from '../core/types.ts';
import { renderWaterfall, serverTiming } from './render.ts';

const record: InvocationRecord = {
  id: 'abc', functionName: 'hello', version: '1', qualifier: 'live', instanceId: 'i-1', start: 'cold', trigger: 'api',
  callerInvocationId: null, receivedAt: 0, durationMs: 100, initMs: 30, handlerMs: 10, billedMs: 40, memoryMb: 128,
  outcome: 'success', errorType: null, errorMessage: null,
  phases: [
    { name: 'schedule', offsetMs: 0, durationMs: 0.1 }, { name: 'sandbox', offsetMs: 0.1, durationMs: 5 },
    { name: 'code', offsetMs: 5.1, durationMs: 1 }, { name: 'unpack', offsetMs: 6.1, durationMs: 2 },
    { name: 'env', offsetMs: 8.1, durationMs: 0.2 }, { name: 'network', offsetMs: 8.3, durationMs: 0 },
    { name: 'runtime', offsetMs: 5.1, durationMs: 50 }, { name: 'init', offsetMs: 55.1, durationMs: 30 },
    { name: 'handler', offsetMs: 85.1, durationMs: 10 },
  ],
};

test('serverTiming() lists every phase with its duration and the total', () => {
  assert.equal(serverTiming(record), 'schedule;dur=0.100, sandbox;dur=5.000, code;dur=1.000, unpack;dur=2.000, env;dur=0.200, network;dur=0.000, runtime;dur=50.000, init;dur=30.000, handler;dur=10.000, total;dur=100.000');
});

test('renderWaterfall() draws one row per phase, placed at its offset', () => {
  const out = renderWaterfall(record);
  for (const p of record.phases) assert.match(out, new RegExp(`^${p.name}\\s`, 'm'));
  const row = (name: string) => out.split('\n').find((l) => l.startsWith(name))!;
  const barStart = (l: string) => l.indexOf('█');
  assert.ok(barStart(row('handler')) > barStart(row('init')), 'handler starts after init');
  assert.ok(barStart(row('init')) > barStart(row('sandbox')), 'init starts after sandbox');
  assert.match(out, /billed 40 ms/);
});
