import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fixedKeepAlive, pickInstance, planIdleStops, type InstanceCandidate } from './index.ts';

const inst = (id: string, o: Partial<InstanceCandidate> = {}): InstanceCandidate =>
  ({ instanceId: id, state: 'idle', inFlight: 0, capacity: 1, lastUsedAt: 0, ...o });

test('pickInstance() takes a cold start when there is no instance', () => {
  assert.deepEqual(pickInstance([]), { path: 'cold' });
});

test('pickInstance() prefers the most recently used idle instance', () => {
  assert.deepEqual(pickInstance([inst('a', { lastUsedAt: 5 }), inst('b', { lastUsedAt: 9 }), inst('c', { lastUsedAt: 1 })]), { path: 'warm', instanceId: 'b' });
});

test('pickInstance() skips busy, starting and stopping instances', () => {
  const d = pickInstance([inst('a', { state: 'busy', inFlight: 1 }), inst('b', { state: 'starting' }), inst('c', { state: 'stopping' }), inst('d', { state: 'initializing' })]);
  assert.deepEqual(d, { path: 'cold' });
});

test('pickInstance() shares a busy instance that has spare concurrency', () => {
  assert.deepEqual(pickInstance([inst('a', { state: 'busy', inFlight: 1, capacity: 4 })]), { path: 'warm', instanceId: 'a' });
  assert.deepEqual(pickInstance([inst('a', { state: 'busy', inFlight: 4, capacity: 4 })]), { path: 'cold' });
});

test('fixedKeepAlive() stops an instance exactly its TTL after it went idle', () => {
  const p = fixedKeepAlive(600_000);
  const idle = [{ instanceId: 'a', functionKey: 'f', idleSince: 1000, memoryMb: 128, invocations: 3 }];
  assert.deepEqual(planIdleStops(idle, 600_999, p), []);
  const plan = planIdleStops(idle, 601_000, p);
  assert.equal(plan.length, 1);
  assert.equal(plan[0].instanceId, 'a');
  assert.match(plan[0].reason, /keep-alive fixed:600000ms/);
});

test('fixedKeepAlive() rejects a negative TTL', () => {
  assert.throws(() => fixedKeepAlive(-1), RangeError);
});
