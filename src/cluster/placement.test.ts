import { test } from 'node:test';
import assert from 'node:assert/strict';
import { place, placeRandomly, type Candidate } from './placement.ts';

const sha = 'a'.repeat(64);
const want = { key: 'f@1#r', codeSha256: sha, memoryMb: 128 };
const agent = (name: string, o: Partial<Candidate> = {}): Candidate => ({
  name, ready: new Map(), packages: new Set(), busy: 0, cpus: 2, memoryUsedMb: 0, memoryBudgetMb: 1024, ...o,
});
const ready = (idle: number, frozen = 0, paged = 0) => new Map([[want.key, { idle, frozen, paged }]]);

test('place() prefers an idle instance of the version, then frozen, then paged', () => {
  assert.deepEqual(place([agent('a'), agent('b', { ready: ready(1), busy: 1 })], want), { agent: 'b', reason: 'warm' });
  assert.deepEqual(place([agent('a', { ready: ready(0, 0, 1) }), agent('b', { ready: ready(0, 1) })], want), { agent: 'b', reason: 'frozen' });
  assert.deepEqual(place([agent('a', { ready: ready(0, 0, 1) }), agent('b')], want), { agent: 'a', reason: 'paged' });
});

test('place() goes where the package is held while that agent has a CPU free, else to the least loaded', () => {
  const holder = agent('a', { packages: new Set([sha]), busy: 1 });
  assert.deepEqual(place([holder, agent('b')], want), { agent: 'a', reason: 'cached' });
  const saturated = agent('a', { packages: new Set([sha]), busy: 2 });
  assert.deepEqual(place([saturated, agent('b', { busy: 1 })], want), { agent: 'b', reason: 'least-loaded' });
});

test('place() prefers an agent holding the version\'s snapshot over one holding only the package, while it has a CPU free', () => {
  const withSnapshot = { ...want, snapshot: 'f@1' };
  const snap = agent('a', { snapshots: new Set(['f@1']), packages: new Set([sha]), busy: 1 });
  const pkgOnly = agent('b', { packages: new Set([sha]) });
  assert.deepEqual(place([snap, pkgOnly], withSnapshot), { agent: 'a', reason: 'restorable' });
  // A warm instance still beats a restore.
  assert.deepEqual(place([snap, agent('b', { ready: ready(1) })], withSnapshot), { agent: 'b', reason: 'warm' });
  // Saturated, or without room for the instance: the snapshot does not hold the invocation there.
  assert.deepEqual(place([agent('a', { snapshots: new Set(['f@1']), busy: 2 }), pkgOnly], withSnapshot), { agent: 'b', reason: 'cached' });
  assert.deepEqual(place([agent('a', { snapshots: new Set(['f@1']), memoryUsedMb: 1000 }), pkgOnly], withSnapshot), { agent: 'b', reason: 'cached' });
  // Another version's snapshot is no reason; nor is one when the invocation names none.
  assert.deepEqual(place([agent('a', { snapshots: new Set(['f@2']) }), pkgOnly], withSnapshot), { agent: 'b', reason: 'cached' });
  assert.deepEqual(place([snap, pkgOnly], want), { agent: 'b', reason: 'cached' });
});

test('place() skips agents whose memory the instance does not fit, unless none fits', () => {
  const full = agent('a', { packages: new Set([sha]), memoryUsedMb: 1000 });
  assert.deepEqual(place([full, agent('b', { busy: 1 })], want), { agent: 'b', reason: 'least-loaded' });
  assert.deepEqual(place([full], want), { agent: 'a', reason: 'least-loaded' });
});

test('place() ranks by load per CPU and never picks an excluded agent', () => {
  assert.equal(place([agent('a', { busy: 2, cpus: 4 }), agent('b', { busy: 2, cpus: 2 })], want)?.agent, 'a');
  assert.equal(place([agent('a'), agent('b')], want, new Set(['a']))?.agent, 'b');
  assert.equal(place([agent('a')], want, new Set(['a'])), null);
});

test('placeRandomly() picks uniformly by the given random source', () => {
  const cs = [agent('a'), agent('b'), agent('c')];
  assert.equal(placeRandomly(cs, () => 0), 'a');
  assert.equal(placeRandomly(cs, () => 0.99), 'c');
  assert.equal(placeRandomly([], () => 0.5), null);
});
