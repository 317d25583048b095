// W3C Trace Context parsing and the invocation's trace: malformed headers start a new trace, never an error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { handlerSpan, invocationTrace, parseTraceparent, traceparentOf } from './trace.ts';

const T = '4bf92f3577b34da6a3ce929d0e0e4736';
const S = '00f067aa0ba902b7';

test('parseTraceparent() reads version 00 and the sampled flag', () => {
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-01`), { traceId: T, spanId: S, sampled: true });
  assert.deepEqual(parseTraceparent(`00-${T}-${S}-00`), { traceId: T, spanId: S, sampled: false });
  assert.deepEqual(parseTraceparent(` 00-${T}-${S}-03 `), { traceId: T, spanId: S, sampled: true }, 'other flag bits ignored');
});

test('parseTraceparent() accepts a future version with more fields, as W3C asks', () => {
  assert.deepEqual(parseTraceparent(`01-${T}-${S}-01-whatever`), { traceId: T, spanId: S, sampled: true });
});

test('parseTraceparent() returns null for anything malformed', () => {
  for (const bad of [undefined, null, '', 'garbage', `00-${T}-${S}`, `00-${T}-${S}-01-extra`, `ff-${T}-${S}-01`,
    `00-${'0'.repeat(32)}-${S}-01`, `00-${T}-${'0'.repeat(16)}-01`, `00-${T.toUpperCase()}-${S}-01`, `00-${T}x-${S}-01`, `00-${T}-${S}-01`.padEnd(600, 'x')]) {
    assert.equal(parseTraceparent(bad), null, String(bad));
  }
});

test('invocationTrace() joins a caller\'s trace or starts a sampled one whose id begins with the epoch second', () => {
  const child = invocationTrace({ traceId: T, spanId: S, sampled: false }, 0);
  assert.equal(child.traceId, T);
  assert.equal(child.parentSpanId, S);
  assert.equal(child.sampled, false);
  assert.match(child.handlerSpanId, /^[0-9a-f]{16}$/);
  assert.equal(traceparentOf(child), `00-${T}-${child.handlerSpanId}-00`);

  const fresh = invocationTrace(null, 1_700_000_000_123);
  assert.equal(fresh.parentSpanId, null);
  assert.equal(fresh.sampled, true);
  assert.match(fresh.traceId, /^6553f100[0-9a-f]{24}$/);
  assert.deepEqual(parseTraceparent(traceparentOf(fresh)), handlerSpan(fresh), 'what the function sees is the handler span');
});
