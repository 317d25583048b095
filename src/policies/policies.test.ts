// The pure policies: the ladder decision over every combination of instances, pool and snapshot, and
// (keep-alive, prewarm, scaling and eviction are in engine.test.ts).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { decideLadder, type InstanceCandidate, type LadderInputs } from './index.ts';

const inst = (id: string, o: Partial<InstanceCandidate> = {}): InstanceCandidate =>
  ({ instanceId: id, state: 'idle', inFlight: 0, capacity: 1, lastUsedAt: 0, ...o });
const inputs = (o: Partial<LadderInputs> = {}): LadderInputs =>
  ({ instances: [], pooledRuntimes: 0, snapshotReady: false, expectedInitMs: null, expectedRestoreMs: null, ...o });
const path = (o: Partial<LadderInputs>) => decideLadder(inputs(o)).path;

test('nothing at all: a full cold start', () => {
  assert.equal(path({}), 'cold');
});

test('warm: the most recently used idle instance, reserved ones first', () => {
  const d = decideLadder(inputs({ instances: [inst('a', { lastUsedAt: 5 }), inst('b', { lastUsedAt: 9 }), inst('c', { lastUsedAt: 1 })] }));
  assert.deepEqual([d.path, 'instanceId' in d && d.instanceId], ['warm', 'b']);
  const r = decideLadder(inputs({ instances: [inst('a', { lastUsedAt: 9 }), inst('r', { lastUsedAt: 1, reserved: true })] }));
  assert.equal('instanceId' in r && r.instanceId, 'r');
});

test('busy, starting, initializing and stopping instances are not usable; spare concurrency is', () => {
  const unusable = [inst('a', { state: 'busy', inFlight: 1 }), inst('b', { state: 'starting' }), inst('c', { state: 'stopping' }), inst('d', { state: 'initializing' }), inst('e', { state: 'gone' })];
  assert.equal(path({ instances: unusable }), 'cold');
  assert.equal(path({ instances: [inst('a', { state: 'busy', inFlight: 1, capacity: 4 })] }), 'warm');
  assert.equal(path({ instances: [inst('a', { state: 'busy', inFlight: 4, capacity: 4 })] }), 'cold');
});

test('each rung is taken only when every faster one is missing', () => {
  const all = { instances: [inst('w'), inst('f', { state: 'frozen' })], pooledRuntimes: 2, snapshotReady: true, expectedInitMs: 400, expectedRestoreMs: 60 };
  assert.equal(path(all), 'warm');
  assert.equal(path({ ...all, instances: [inst('f', { state: 'frozen' })] }), 'thawed');
  assert.equal(path({ ...all, instances: [inst('p', { state: 'paged' }), inst('f', { state: 'frozen' })] }), 'thawed', 'frozen (all in RAM) before paged');
  assert.equal(path({ ...all, instances: [inst('p', { state: 'paged' })] }), 'paged', 'paged before any new process');
  assert.equal(path({ ...all, instances: [] }), 'restored', 'heavy init: a restore beats running init on a pooled runtime');
  assert.equal(path({ ...all, instances: [], snapshotReady: false }), 'pooled');
  assert.equal(path({ ...all, instances: [], snapshotReady: false, pooledRuntimes: 0 }), 'cold');
  assert.equal(path({ ...all, instances: [], pooledRuntimes: 0 }), 'restored', 'snapshot without a pool');
});

test('never slower than a cold start: a restore measured slower than boot + init is not taken', () => {
  const snap = { pooledRuntimes: 0, snapshotReady: true };
  assert.equal(path({ ...snap, expectedInitMs: 400, expectedRestoreMs: 900, expectedBootMs: 100 }), 'cold', 'heavy heap: deserializing costs more than init');
  assert.match(decideLadder(inputs({ ...snap, expectedInitMs: 400, expectedRestoreMs: 900, expectedBootMs: 100 })).reason, /restore \(900 ms\) measured no faster than a cold start \(100 ms boot \+ 400 ms init\)/);
  assert.equal(path({ ...snap, expectedInitMs: 400, expectedRestoreMs: 200, expectedBootMs: 100 }), 'restored', 'a restore that measured faster');
  assert.equal(path({ ...snap, expectedInitMs: 400, expectedRestoreMs: null, expectedBootMs: 100 }), 'restored', 'not measured yet: tried once');
  assert.equal(path({ ...snap, expectedInitMs: null, expectedRestoreMs: 900, expectedBootMs: 100 }), 'restored', 'init not known: nothing to compare');
  assert.equal(path({ ...snap, expectedInitMs: 400, expectedRestoreMs: 900 }), 'restored', 'boot not known: nothing to compare');
  assert.equal(path({ ...snap, pooledRuntimes: 1, expectedInitMs: 400, expectedRestoreMs: 900, expectedBootMs: 100 }), 'pooled', 'with a pool, init on a started runtime beats both');
});

test('with both a pool and a snapshot, the cheaper of init and restore wins', () => {
  const both = { pooledRuntimes: 1, snapshotReady: true };
  assert.equal(path({ ...both, expectedInitMs: 3, expectedRestoreMs: 55 }), 'pooled', 'light init: the pool');
  assert.equal(path({ ...both, expectedInitMs: null, expectedRestoreMs: 55 }), 'pooled', 'unknown init: the pool');
  assert.equal(path({ ...both, expectedInitMs: 300, expectedRestoreMs: null }), 'restored');
  assert.equal(path({ ...both, expectedInitMs: 20, expectedRestoreMs: null }), 'pooled');
});
