// The Store conformance suite: every implementation (SQLite and PostgreSQL) runs these same tests
// against a real database. Each test opens a fresh store from the factory.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { isThawError } from '../core/errors.ts';
import { LATEST, type FunctionRecord, type FunctionVersion, type InvocationRecord, type LogLine } from '../core/types.ts';
import type { Store } from './types.ts';

const sha = (c: string) => c.repeat(64);

export function version(name: string, revisionId: string, code = sha('a'), memoryMb = 128): FunctionVersion {
  return {
    functionName: name, version: LATEST, revisionId, createdAt: 1000,
    config: { runtime: 'nodejs24', handler: 'index.handler', memoryMb, timeoutMs: 3000, env: { A: '1' }, description: '', instanceConcurrency: 1, codeSha256: code, codeSize: 10 },
  };
}

export function fnRecord(name: string, code = sha('a')): FunctionRecord {
  return { name, createdAt: 1000, updatedAt: 1000, latest: version(name, `${name}-r1`, code), lastPublished: 0, reservedConcurrency: null, logRetentionDays: null };
}

function invocation(id: string, functionName: string, receivedAt: number): InvocationRecord {
  return {
    id, functionName, version: '1', qualifier: LATEST, instanceId: 'i-1', start: 'cold', trigger: 'api', callerInvocationId: null, receivedAt,
    durationMs: 12.5, phases: [{ name: 'sandbox', offsetMs: 0.5, durationMs: 3.25 }], initMs: 4, handlerMs: 2, billedMs: 6, memoryMb: 128,
    outcome: 'success', errorType: null, errorMessage: null,
  };
}

const line = (functionName: string, n: number, invocationId: string | null = null): Omit<LogLine, 'seq'> =>
  ({ at: 1000 + n, functionName, version: '1', instanceId: 'i-1', invocationId, stream: 'stdout', line: `line ${n}` });

const code = (c: string) => (e: unknown) => isThawError(e) && e.code === c;

export function storeConformance(name: string, open: () => Promise<Store>): void {
  const withStore = (title: string, fn: (s: Store) => Promise<void>) =>
    test(title, async () => {
      const s = await open();
      try { await fn(s); } finally { await s.close(); }
    });

  describe(`Store conformance: ${name}`, () => {
    withStore('functions are created once, read back whole, listed by name', async (s) => {
      await s.createFunction(fnRecord('b'));
      await s.createFunction(fnRecord('a'));
      await assert.rejects(s.createFunction(fnRecord('a')), code('THAW_E_FUNCTION_EXISTS'));
      assert.deepEqual(await s.getFunction('a'), fnRecord('a'));
      assert.equal(await s.getFunction('nope'), null);
      assert.deepEqual((await s.listFunctions()).map((f) => f.name), ['a', 'b']);
    });

    withStore('updateLatest replaces $LATEST and honours the expected revision', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.updateLatest('f', version('f', 'r2', sha('b')), 2000, 'f-r1');
      const f = await s.getFunction('f');
      assert.equal(f!.latest.revisionId, 'r2');
      assert.equal(f!.updatedAt, 2000);
      await assert.rejects(s.updateLatest('f', version('f', 'r3'), 3000, 'f-r1'), code('THAW_E_REVISION_MISMATCH'));
      assert.equal((await s.getFunction('f'))!.latest.revisionId, 'r2', 'a refused update changes nothing');
      await assert.rejects(s.updateLatest('ghost', version('ghost', 'r'), 1), code('THAW_E_FUNCTION_NOT_FOUND'));
    });

    withStore('reserved concurrency is set and cleared', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.setReservedConcurrency('f', 5);
      assert.equal((await s.getFunction('f'))!.reservedConcurrency, 5);
      await s.setReservedConcurrency('f', null);
      assert.equal((await s.getFunction('f'))!.reservedConcurrency, null);
      await assert.rejects(s.setReservedConcurrency('ghost', 1), code('THAW_E_FUNCTION_NOT_FOUND'));
    });

    withStore('publishVersion numbers versions and publishes nothing new for an unchanged $LATEST', async (s) => {
      await s.createFunction(fnRecord('f'));
      const v1 = await s.publishVersion('f', 2000);
      assert.equal(v1.version, '1');
      assert.equal(v1.createdAt, 2000);
      assert.deepEqual(await s.publishVersion('f', 2500), v1, 'same revision: the same version comes back');
      await s.updateLatest('f', version('f', 'r2'), 3000);
      assert.equal((await s.publishVersion('f', 3000)).version, '1', 'same code and configuration under a new revision: still version 1');
      await s.updateLatest('f', version('f', 'r3', sha('c')), 3000);
      const v2 = await s.publishVersion('f', 3100);
      assert.equal(v2.version, '2');
      assert.equal(v2.config.codeSha256, sha('c'));
      assert.equal((await s.getFunction('f'))!.lastPublished, 2);
      assert.deepEqual((await s.listVersions('f')).map((v) => v.version), ['1', '2']);
      assert.deepEqual(await s.getVersion('f', '2'), v2);
      assert.equal((await s.getVersion('f', LATEST))!.revisionId, 'r3');
      assert.equal(await s.getVersion('f', '9'), null);
      await assert.rejects(s.publishVersion('ghost', 1), code('THAW_E_FUNCTION_NOT_FOUND'));
    });

    withStore('concurrent publishes of one $LATEST produce one version', async (s) => {
      await s.createFunction(fnRecord('f'));
      const vs = await Promise.all([s.publishVersion('f', 1), s.publishVersion('f', 2), s.publishVersion('f', 3)]);
      assert.deepEqual(new Set(vs.map((v) => v.version)), new Set(['1']));
    });

    withStore('publishVersion with a description publishes it in the version, $LATEST keeps its own', async (s) => {
      await s.createFunction(fnRecord('f'));
      const v1 = await s.publishVersion('f', 2000, 'release one');
      assert.equal(v1.config.description, 'release one');
      assert.equal((await s.getVersion('f', '1'))!.config.description, 'release one');
      assert.equal((await s.getFunction('f'))!.latest.config.description, '');
    });

    withStore('tags: stored with the function, merged, removed, capped atomically, gone with the function', async (s) => {
      await s.createFunction(fnRecord('f'), { team: 'a', env: 'dev' });
      assert.deepEqual(await s.getTags('f'), { env: 'dev', team: 'a' });
      assert.equal(await s.getTags('ghost'), null);
      assert.deepEqual(await s.tagFunction('f', { env: 'prod', cost: '7' }, 50), { cost: '7', env: 'prod', team: 'a' });
      await s.untagFunction('f', ['team', 'never-set']);
      assert.deepEqual(await s.getTags('f'), { cost: '7', env: 'prod' });
      await assert.rejects(s.tagFunction('f', { x: '1' }, 2), code('THAW_E_TAGS_INVALID'));
      assert.deepEqual(await s.getTags('f'), { cost: '7', env: 'prod' }, 'a refused TagResource keeps nothing');
      await assert.rejects(s.tagFunction('ghost', { x: '1' }, 50), code('THAW_E_FUNCTION_NOT_FOUND'));
      await assert.rejects(s.untagFunction('ghost', ['x']), code('THAW_E_FUNCTION_NOT_FOUND'));
      await s.deleteFunction('f');
      await s.createFunction(fnRecord('f'));
      assert.deepEqual(await s.getTags('f'), {}, 'a re-created function starts with no tags');
    });

    withStore('aliases: create, update, conflicts, routing, and versions they pin cannot be deleted', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.publishVersion('f', 1);
      await s.updateLatest('f', version('f', 'r2', sha('b')), 2);
      await s.publishVersion('f', 2);
      const live = { functionName: 'f', name: 'live', functionVersion: '1', routing: { version: '2', weight: 0.1 }, description: 'd', revisionId: 'a1' };
      await s.putAlias(live, true);
      await assert.rejects(s.putAlias(live, true), code('THAW_E_ALIAS_EXISTS'));
      await assert.rejects(s.putAlias({ ...live, name: 'nope' }, false), code('THAW_E_ALIAS_NOT_FOUND'));
      assert.deepEqual(await s.getAlias('f', 'live'), live);
      await assert.rejects(s.deleteVersion('f', '2'), code('THAW_E_REQUEST_INVALID'), 'the routing version is in use');
      await assert.rejects(s.deleteVersion('f', '1'), code('THAW_E_REQUEST_INVALID'), 'the primary version is in use');
      await s.putAlias({ ...live, functionVersion: '2', routing: null, revisionId: 'a2' }, false);
      assert.equal((await s.getAlias('f', 'live'))!.routing, null);
      await s.deleteVersion('f', '1');
      await assert.rejects(s.deleteVersion('f', '1'), code('THAW_E_VERSION_NOT_FOUND'));
      await s.putAlias({ ...live, name: 'beta', functionVersion: '2', routing: null }, true);
      assert.deepEqual((await s.listAliases('f')).map((a) => a.name), ['beta', 'live']);
      await s.deleteAlias('f', 'beta');
      await assert.rejects(s.deleteAlias('f', 'beta'), code('THAW_E_ALIAS_NOT_FOUND'));
      assert.equal(await s.getAlias('f', 'beta'), null);
      await assert.rejects(s.putAlias({ ...live, functionName: 'ghost' }, true), code('THAW_E_FUNCTION_NOT_FOUND'));
    });

    withStore('isCodeInUse sees $LATEST and every published version', async (s) => {
      await s.createFunction(fnRecord('f', sha('a')));
      await s.publishVersion('f', 1);
      await s.updateLatest('f', version('f', 'r2', sha('b')), 2);
      assert.equal(await s.isCodeInUse(sha('a')), true, 'version 1 still uses a');
      assert.equal(await s.isCodeInUse(sha('b')), true, '$LATEST uses b');
      assert.equal(await s.isCodeInUse(sha('c')), false);
      await s.deleteFunction('f');
      assert.equal(await s.isCodeInUse(sha('a')), false);
      assert.equal(await s.isCodeInUse(sha('b')), false);
    });

    withStore('deleteFunction removes versions, aliases, logs and queued events; keeps invocation history', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.createFunction(fnRecord('g'));
      await s.publishVersion('f', 1);
      await s.putAlias({ functionName: 'f', name: 'live', functionVersion: '1', routing: null, description: '', revisionId: 'x' }, true);
      await s.appendLogs([line('f', 1), line('g', 1)]);
      await s.enqueueEvent({ id: 'e1', functionName: 'f', qualifier: LATEST, payload: '{}', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
      await s.recordInvocations([invocation('i1', 'f', 5)]);
      await s.deleteFunction('f');
      assert.equal(await s.getFunction('f'), null);
      assert.deepEqual(await s.listVersions('f'), []);
      assert.deepEqual(await s.listAliases('f'), []);
      assert.deepEqual(await s.readLogs({ functionName: 'f', limit: 10 }), []);
      assert.equal((await s.readLogs({ functionName: 'g', limit: 10 })).length, 1, 'other functions keep their logs');
      assert.equal(await s.countEvents(), 0);
      assert.ok(await s.getInvocation('i1'));
      await assert.rejects(s.deleteFunction('f'), code('THAW_E_FUNCTION_NOT_FOUND'));
      await s.createFunction(fnRecord('f'));
      assert.equal((await s.publishVersion('f', 9)).version, '1', 'a re-created function starts at version 1');
    });

    withStore('invocation records round-trip, list newest first with paging, and prune', async (s) => {
      await s.recordInvocations(Array.from({ length: 6 }, (_, i) => invocation(`i${i}`, i % 2 ? 'odd' : 'even', 100 + i)));
      await s.recordInvocations([]);
      for (let i = 6; i < 10; i++) await s.recordInvocations([invocation(`i${i}`, i % 2 ? 'odd' : 'even', 100 + i)]);
      assert.deepEqual(await s.getInvocation('i3'), invocation('i3', 'odd', 103));
      assert.equal(await s.getInvocation('nope'), null);
      assert.deepEqual((await s.listInvocations({ limit: 3 })).map((r) => r.id), ['i9', 'i8', 'i7']);
      assert.deepEqual((await s.listInvocations({ limit: 3, before: 107 })).map((r) => r.id), ['i6', 'i5', 'i4']);
      assert.deepEqual((await s.listInvocations({ functionName: 'odd', limit: 10 })).map((r) => r.id), ['i9', 'i7', 'i5', 'i3', 'i1']);
      assert.equal(await s.pruneInvocations(4), 6);
      assert.deepEqual((await s.listInvocations({ limit: 100 })).map((r) => r.id), ['i9', 'i8', 'i7', 'i6']);
      assert.equal(await s.pruneInvocations(4), 0, 'nothing more to prune');
      assert.equal(await s.pruneInvocations(10), 0, 'fewer records than kept');
      // Records received in the same millisecond: the newest by id are kept, as listed.
      await s.recordInvocations([invocation('j1', 'odd', 200), invocation('j2', 'odd', 200), invocation('j3', 'odd', 200)]);
      assert.equal(await s.pruneInvocations(2), 5);
      assert.deepEqual((await s.listInvocations({ limit: 100 })).map((r) => r.id), ['j3', 'j2']);
      assert.equal(await s.pruneInvocations(0), 2);
      assert.deepEqual(await s.listInvocations({ limit: 100 }), []);
    });

    withStore('logs: sequence numbers, tail without a cursor, follow with one, per invocation, pruned per function', async (s) => {
      await s.appendLogs([line('f', 1, 'a'), line('f', 2, 'a'), line('f', 3, 'b'), line('g', 1)]);
      await s.appendLogs([]);
      const all = await s.readLogs({ functionName: 'f', limit: 100 });
      assert.deepEqual(all.map((l) => l.line), ['line 1', 'line 2', 'line 3']);
      assert.ok(all[0].seq < all[1].seq && all[1].seq < all[2].seq);
      assert.deepEqual((await s.readLogs({ functionName: 'f', limit: 2 })).map((l) => l.line), ['line 2', 'line 3'], 'the newest lines, oldest first');
      assert.deepEqual((await s.readLogs({ functionName: 'f', afterSeq: all[0].seq, limit: 1 })).map((l) => l.line), ['line 2']);
      assert.deepEqual((await s.readLogs({ functionName: 'f', invocationId: 'a', limit: 10 })).map((l) => l.line), ['line 1', 'line 2']);
      const { seq: _seq, ...first } = all[0];
      assert.deepEqual(first, line('f', 1, 'a'));
      await s.appendLogs([line('g', 2), line('g', 3)]);
      assert.equal(await s.pruneLogs(2), 2, 'f loses one, g loses one');
      assert.deepEqual((await s.readLogs({ functionName: 'f', limit: 10 })).map((l) => l.line), ['line 2', 'line 3']);
      assert.deepEqual((await s.readLogs({ functionName: 'g', limit: 10 })).map((l) => l.line), ['line 2', 'line 3']);
      assert.equal(await s.pruneLogs(0), 4, 'keeping none removes every line');
      assert.deepEqual(await s.readLogs({ functionName: 'f', limit: 10 }), []);
    });

    withStore('logs: a function\'s retention in days removes its older lines, others keep theirs', async (s) => {
      const DAY = 86_400_000;
      await s.createFunction(fnRecord('short'));
      await s.createFunction(fnRecord('forever'));
      await s.setLogRetention('short', 1);
      assert.equal((await s.getFunction('short'))!.logRetentionDays, 1);
      await assert.rejects(s.setLogRetention('nope', 1), code('THAW_E_FUNCTION_NOT_FOUND'));
      const at = (fn: string, t: number) => ({ ...line(fn, t), at: t });
      await s.appendLogs([at('short', 10 * DAY - 2 * DAY), at('short', 10 * DAY - DAY / 2), at('forever', 1), at('orphan', 1)]);
      assert.equal(await s.pruneLogs(100), 0, 'without now, only the line cap applies');
      assert.equal(await s.pruneLogs(100, 10 * DAY), 1, 'the line older than one day goes');
      assert.equal((await s.readLogs({ functionName: 'short', limit: 10 })).length, 1);
      assert.equal((await s.readLogs({ functionName: 'forever', limit: 10 })).length, 1, 'no retention: no age limit');
      assert.equal((await s.readLogs({ functionName: 'orphan', limit: 10 })).length, 1);
      await s.setLogRetention('short', null);
      assert.equal((await s.getFunction('short'))!.logRetentionDays, null);
      assert.equal(await s.pruneLogs(100, 100 * DAY), 0);
    });

    withStore('events: leased once until the lease ends, retried later, completed, released', async (s) => {
      const ev = (id: string, at: number) => ({ id, functionName: 'f', qualifier: LATEST, payload: `{"id":"${id}"}`, attempts: 0, enqueuedAt: at, nextAttemptAt: at });
      assert.equal(await s.oldestEventAt(), null, 'an empty queue has no oldest event');
      await s.enqueueEvent(ev('e3', 500));
      await s.enqueueEvent(ev('e1', 10));
      await s.enqueueEvent(ev('e2', 20));
      assert.equal(await s.countEvents(), 3);
      assert.equal(await s.oldestEventAt(), 10, 'the oldest accepted, whatever the order of enqueueing');
      const first = await s.leaseEvents(100, 1000, 10);
      assert.deepEqual(first.map((e) => e.id), ['e1', 'e2'], 'only due events, oldest first');
      assert.deepEqual(first[0], { ...ev('e1', 10), leases: 1 }, 'a leased event says how often it was taken, this time included');
      assert.deepEqual(await s.leaseEvents(200, 1000, 10), [], 'leased events are not handed out twice');
      await s.retryEvent('e1', 300);
      await s.completeEvent('e2');
      const again = await s.leaseEvents(600, 1000, 10);
      assert.deepEqual(again.map((e) => [e.id, e.attempts, e.leases]), [['e1', 1, 2], ['e3', 0, 1]]);
      assert.deepEqual((await s.leaseEvents(1700, 1000, 1)).map((e) => e.id), ['e1'], 'an expired lease makes the event due again; limit applies');
      assert.equal(await s.releaseLeases(), 2);
      assert.deepEqual((await s.leaseEvents(700, 1000, 10)).map((e) => e.id), ['e1', 'e3'], 'released leases are due at once');
      assert.equal(await s.countEvents(), 2);
    });

    withStore('renewLeases extends the leases their owner still holds, no others', async (s) => {
      const ev = (id: string) => ({ id, functionName: 'f', qualifier: LATEST, payload: '{}', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
      for (const id of ['a', 'b', 'c']) await s.enqueueEvent(ev(id));
      await s.leaseEvents(10, 100, 2, 'node-1');
      await s.leaseEvents(10, 100, 1, 'node-2');
      assert.equal(await s.renewLeases(['a', 'b', 'c'], 1000, 'node-1'), 2, 'node-2\'s lease is not node-1\'s to renew');
      assert.deepEqual((await s.leaseEvents(500, 1000, 10, 'node-3')).map((e) => e.id), ['c'], 'renewed leases hold past their first expiry');
      assert.deepEqual((await s.leaseEvents(1000, 100, 10, 'node-3')).map((e) => e.id), ['a', 'b'], 'and end when the renewal does');
    });

    withStore('snapshot records: put, replace, list, delete; deleting the function removes them', async (s) => {
      await s.createFunction(fnRecord('f'));
      const rec = { functionName: 'f', version: '2', status: 'pending' as const, reason: 'bundling', sha256: null, sizeBytes: null, buildMs: null, updatedAt: 5 };
      await s.putSnapshot(rec);
      await s.putSnapshot({ ...rec, version: '10' });
      assert.deepEqual(await s.getSnapshot('f', '2'), rec);
      const ready = { ...rec, status: 'ready' as const, reason: null, sha256: sha('d'), sizeBytes: 100, buildMs: 900, updatedAt: 6 };
      await s.putSnapshot(ready);
      assert.deepEqual(await s.getSnapshot('f', '2'), ready);
      assert.deepEqual((await s.listSnapshots('f')).map((r) => r.version), ['2', '10'], 'in version order');
      assert.equal(await s.isSnapshotInUse(sha('d')), true);
      await s.deleteSnapshot('f', '2');
      assert.equal(await s.getSnapshot('f', '2'), null);
      assert.equal(await s.isSnapshotInUse(sha('d')), false);
      await s.deleteFunction('f');
      assert.deepEqual(await s.listSnapshots(), []);
    });

    withStore('init sets: the first record for a package and handler stands; another handler has its own', async (s) => {
      const set = { codeSha256: sha('a'), handler: 'index.handler', bundleSha256: sha('b'), files: ['index.mjs', 'lib/a.js'], bytes: 120 };
      assert.equal(await s.getInitSet(sha('a'), 'index.handler'), null);
      assert.equal(await s.putInitSet(set), true);
      assert.equal(await s.putInitSet({ ...set, bundleSha256: sha('c'), files: ['index.mjs'] }), false, 'a second recording does not replace the first');
      assert.deepEqual(await s.getInitSet(sha('a'), 'index.handler'), set);
      assert.equal(await s.getInitSet(sha('a'), 'other.handler'), null);
      assert.equal(await s.putInitSet({ ...set, handler: 'other.handler' }), true);
      assert.equal(await s.getInitSet(sha('b'), 'index.handler'), null);
      // Another package whose init reads the same files shares the bundle: it is not given up with the first.
      await s.putInitSet({ ...set, codeSha256: sha('e') });
      assert.deepEqual(await s.deleteInitSets(sha('a')), []);
      assert.equal(await s.getInitSet(sha('a'), 'index.handler'), null);
      assert.equal(await s.getInitSet(sha('a'), 'other.handler'), null);
      assert.deepEqual(await s.deleteInitSets(sha('e')), [sha('b')]);
      assert.deepEqual(await s.deleteInitSets(sha('e')), []);
    });

    withStore('provisioned configs: put, replace, list, delete; deleted with their function', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.putProvisioned({ functionName: 'f', qualifier: 'live', count: 2, updatedAt: 1 });
      await s.putProvisioned({ functionName: 'f', qualifier: '1', count: 1, updatedAt: 2 });
      await s.putProvisioned({ functionName: 'f', qualifier: 'live', count: 3, updatedAt: 3 });
      assert.deepEqual(await s.listProvisioned('f'), [{ functionName: 'f', qualifier: '1', count: 1, updatedAt: 2 }, { functionName: 'f', qualifier: 'live', count: 3, updatedAt: 3 }]);
      assert.equal(await s.deleteProvisioned('f', '1'), true);
      assert.equal(await s.deleteProvisioned('f', '1'), false);
      await s.deleteFunction('f');
      assert.deepEqual(await s.listProvisioned(), []);
    });

    withStore('policies and schedules: put, replace, list, delete; deleted with their function', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.putPolicy({ functionName: 'f', spec: 'fixed:10m', updatedAt: 1 });
      await s.putPolicy({ functionName: 'f', spec: 'hybrid:4h', updatedAt: 2 });
      assert.deepEqual(await s.listPolicies(), [{ functionName: 'f', spec: 'hybrid:4h', updatedAt: 2 }]);
      const sc = { id: 's1', functionName: 'f', qualifier: '$LATEST', expression: 'rate(5 minutes)', kind: 'warmup' as const, payload: null, enabled: true, nextAt: 10, lastAt: null, createdAt: 1 };
      await s.putSchedule(sc);
      await s.putSchedule({ ...sc, id: 's2', kind: 'invoke', payload: '{"a":1}' });
      await s.putSchedule({ ...sc, nextAt: 20, lastAt: 10 });
      assert.deepEqual(await s.listSchedules('f'), [{ ...sc, nextAt: 20, lastAt: 10 }, { ...sc, id: 's2', kind: 'invoke', payload: '{"a":1}' }]);
      assert.equal(await s.deleteSchedule('s2'), true);
      assert.equal(await s.deleteSchedule('s2'), false);
      assert.equal(await s.deletePolicy('nope'), false);
      await s.deleteFunction('f');
      assert.deepEqual([await s.listPolicies(), await s.listSchedules()], [[], []]);
    });

    withStore('call edges count and order by frequency', async (s) => {
      await s.recordCall('a', 'b', 1);
      await s.recordCall('a', 'c', 2);
      await s.recordCall('a', 'c', 3);
      await s.recordCall('x', 'b', 4);
      assert.deepEqual(await s.listCalls('a'), [{ caller: 'a', callee: 'c', count: 2, lastAt: 3 }, { caller: 'a', callee: 'b', count: 1, lastAt: 1 }]);
      assert.equal((await s.listCalls()).length, 3);
    });

    withStore('access keys: created once, read back, revoked once; hasActiveKeys follows the unrevoked ones', async (s) => {
      assert.equal(await s.hasActiveKeys(), false);
      const key = { id: 'AKTHAAAA', secretSealed: 'c2VhbGVk', role: 'invoker' as const, functions: ['f'], createdAt: 1, revokedAt: null };
      await s.createKey(key);
      await assert.rejects(s.createKey(key));
      assert.deepEqual(await s.getKey('AKTHAAAA'), key);
      assert.equal(await s.getKey('nope'), null);
      assert.equal(await s.hasActiveKeys(), true);
      await s.createKey({ ...key, id: 'AKTHBBBB', role: 'admin', functions: null });
      assert.deepEqual((await s.listKeys()).map((k) => k.id), ['AKTHAAAA', 'AKTHBBBB']);
      assert.equal(await s.revokeKey('AKTHAAAA', 5), true);
      assert.equal(await s.revokeKey('AKTHAAAA', 6), false, 'a revoked key stays revoked at its first time');
      assert.equal((await s.getKey('AKTHAAAA'))?.revokedAt, 5);
      assert.equal(await s.hasActiveKeys(), true);
      await s.revokeKey('AKTHBBBB', 7);
      assert.equal(await s.hasActiveKeys(), false);
    });

    withStore('networks: created once (a second create is THAW_E_NETWORK_EXISTS), listed by name, deleted once', async (s) => {
      const net = { name: 'db', subnet: '10.77.0.0/24', hostAccess: false, createdAt: 1 };
      await s.createNetwork(net);
      await assert.rejects(s.createNetwork({ ...net, subnet: '10.78.0.0/24' }), (e: unknown) => (e as { code?: string }).code === 'THAW_E_NETWORK_EXISTS');
      await s.createNetwork({ ...net, name: 'app', subnet: '10.79.0.0/24' });
      assert.deepEqual(await s.getNetwork('db'), net);
      assert.equal(await s.getNetwork('nope'), null);
      assert.deepEqual((await s.listNetworks()).map((n) => n.name), ['app', 'db']);
      assert.equal(await s.deleteNetwork('db'), true);
      assert.equal(await s.deleteNetwork('db'), false);
      assert.deepEqual((await s.listNetworks()).map((n) => n.name), ['app']);
    });

    withStore('security groups: created once (a second create is THAW_E_SECURITY_GROUP_EXISTS), listed by name, deleted once', async (s) => {
      const g = { name: 'sg-db', allow: ['10.77.0.5:5432/tcp'], description: 'the database', createdAt: 1 };
      await s.createSecurityGroup(g);
      await assert.rejects(s.createSecurityGroup(g), (e: unknown) => (e as { code?: string }).code === 'THAW_E_SECURITY_GROUP_EXISTS');
      await s.createSecurityGroup({ ...g, name: 'sg-all', allow: ['10.77.0.0/24'] });
      assert.deepEqual(await s.getSecurityGroup('sg-db'), g);
      assert.equal(await s.getSecurityGroup('nope'), null);
      assert.deepEqual((await s.listSecurityGroups()).map((x) => x.name), ['sg-all', 'sg-db']);
      assert.equal(await s.deleteSecurityGroup('sg-db'), true);
      assert.equal(await s.deleteSecurityGroup('sg-db'), false);
    });

    const layer = (name: string, c: string) => ({
      name, description: `${name} ${c}`, compatibleRuntimes: ['nodejs22.x'], compatibleArchitectures: ['x86_64'], licenseInfo: 'MIT', codeSha256: sha(c), codeSize: 7, createdAt: 1000,
    });

    withStore('layer versions are numbered per layer from 1, never reused after a delete, listed newest first', async (s) => {
      assert.equal((await s.publishLayerVersion(layer('lib', 'a'))).version, 1);
      assert.equal((await s.publishLayerVersion(layer('lib', 'b'))).version, 2);
      assert.equal((await s.publishLayerVersion(layer('other', 'c'))).version, 1);
      assert.deepEqual(await s.getLayerVersion('lib', 1), { ...layer('lib', 'a'), version: 1 });
      assert.equal(await s.getLayerVersion('lib', 3), null);
      assert.deepEqual((await s.listLayerVersions('lib')).map((v) => v.version), [2, 1]);
      assert.deepEqual((await s.listLayerVersions()).map((v) => `${v.name}:${v.version}`), ['lib:2', 'lib:1', 'other:1']);
      assert.equal(await s.deleteLayerVersion('lib', 2), true);
      assert.equal(await s.deleteLayerVersion('lib', 2), false);
      assert.equal((await s.publishLayerVersion(layer('lib', 'd'))).version, 3, 'a deleted number is not given again');
    });

    withStore('isCodeInUse sees layer versions and the layers function versions name, deleted layer versions included', async (s) => {
      await s.publishLayerVersion(layer('lib', 'c'));
      assert.equal(await s.isCodeInUse(sha('c')), true, 'the layer version holds c');
      const base = fnRecord('f');
      const latest = { ...base.latest, config: { ...base.latest.config, layers: [{ arn: 'arn:aws:lambda:us-east-1:000000000000:layer:lib:1', codeSha256: sha('c'), codeSize: 7 }] } };
      await s.createFunction({ ...base, latest });
      await s.publishVersion('f', 2000);
      await s.deleteLayerVersion('lib', 1);
      assert.equal(await s.isCodeInUse(sha('c')), true, 'function f still uses it');
      await s.updateLatest('f', version('f', 'r2'), 3000);
      assert.equal(await s.isCodeInUse(sha('c')), true, 'its version 1 still uses it');
      await s.deleteFunction('f');
      assert.equal(await s.isCodeInUse(sha('c')), false);
    });

    withStore('layer permissions: one statement id per version, listed by id, removed once, gone with their version', async (s) => {
      const p = { layerName: 'lib', version: 1, statementId: 's1', action: 'lambda:GetLayerVersion', principal: '*', organizationId: null };
      await assert.rejects(s.addLayerPermission(p), code('THAW_E_LAYER_NOT_FOUND'));
      await s.publishLayerVersion(layer('lib', 'a'));
      await s.addLayerPermission(p);
      await assert.rejects(s.addLayerPermission(p), code('THAW_E_LAYER_PERMISSION_EXISTS'));
      await s.addLayerPermission({ ...p, statementId: 'a0', principal: '123456789012' });
      assert.deepEqual((await s.listLayerPermissions('lib', 1)).map((x) => x.statementId), ['a0', 's1']);
      assert.equal(await s.removeLayerPermission('lib', 1, 'a0'), true);
      assert.equal(await s.removeLayerPermission('lib', 1, 'a0'), false);
      assert.deepEqual(await s.listLayerPermissions('lib', 1), [p]);
      await s.deleteLayerVersion('lib', 1);
      assert.deepEqual(await s.listLayerPermissions('lib', 1), []);
    });

    withStore('function URLs: one per qualifier, found by id, updated only when present, gone with their alias and function', async (s) => {
      await s.createFunction(fnRecord('f'));
      await s.putAlias({ functionName: 'f', name: 'live', functionVersion: LATEST, description: '', routing: null, revisionId: 'a1' }, true);
      const u = { functionName: 'f', qualifier: LATEST, urlId: 'a'.repeat(32), authType: 'NONE' as const, cors: { AllowOrigins: ['*'] }, invokeMode: 'BUFFERED' as const, createdAt: 1, updatedAt: 1 };
      await s.putFunctionUrl(u, true);
      await assert.rejects(s.putFunctionUrl({ ...u, urlId: 'b'.repeat(32) }, true), code('THAW_E_FUNCTION_URL_EXISTS'));
      await assert.rejects(s.putFunctionUrl({ ...u, qualifier: 'live' }, false), code('THAW_E_FUNCTION_URL_NOT_FOUND'));
      await assert.rejects(s.putFunctionUrl({ ...u, functionName: 'ghost' }, true), code('THAW_E_FUNCTION_NOT_FOUND'));
      await s.putFunctionUrl({ ...u, qualifier: 'live', urlId: 'c'.repeat(32) }, true);
      await s.putFunctionUrl({ ...u, authType: 'AWS_IAM', updatedAt: 2 }, false);
      assert.deepEqual(await s.getFunctionUrl('f', LATEST), { ...u, authType: 'AWS_IAM', updatedAt: 2 });
      assert.equal((await s.getFunctionUrlById('c'.repeat(32)))?.qualifier, 'live');
      assert.equal(await s.getFunctionUrlById('d'.repeat(32)), null);
      assert.deepEqual((await s.listFunctionUrls('f')).map((x) => x.qualifier), [LATEST, 'live']);
      await s.deleteAlias('f', 'live');
      assert.equal(await s.getFunctionUrlById('c'.repeat(32)), null, 'the alias took its URL');
      assert.equal(await s.deleteFunctionUrl('f', LATEST), true);
      assert.equal(await s.deleteFunctionUrl('f', LATEST), false);
      await s.putFunctionUrl(u, true);
      await s.deleteFunction('f');
      assert.equal(await s.getFunctionUrlById(u.urlId), null, 'the function took its URL');
    });

    withStore('resource policies: replaced only at the expected revision, removed when empty, gone with their function', async (s) => {
      await s.createFunction(fnRecord('f'));
      const st = { Sid: 's1', Effect: 'Allow' as const, Principal: '*' as const, Action: 'lambda:InvokeFunction', Resource: 'arn:aws:lambda:us-east-1:000000000000:function:f' };
      const p = { functionName: 'f', qualifier: LATEST, revisionId: 'r1', statements: [st], updatedAt: 1 };
      await s.putResourcePolicy(p, null);
      await assert.rejects(s.putResourcePolicy({ ...p, revisionId: 'r2' }, null), code('THAW_E_REVISION_MISMATCH'));
      await assert.rejects(s.putResourcePolicy({ ...p, revisionId: 'r2' }, 'r0'), code('THAW_E_REVISION_MISMATCH'));
      assert.deepEqual(await s.getResourcePolicy('f', LATEST), p, 'a refused put changes nothing');
      assert.equal(await s.getResourcePolicy('f', 'live'), null, 'each qualifier has its own policy');
      await s.putResourcePolicy({ ...p, revisionId: 'r2', statements: [st, { ...st, Sid: 's2' }] }, 'r1');
      assert.deepEqual((await s.getResourcePolicy('f', LATEST))!.statements.map((x) => x.Sid), ['s1', 's2']);
      await s.putResourcePolicy({ ...p, revisionId: 'r3', statements: [] }, 'r2');
      assert.equal(await s.getResourcePolicy('f', LATEST), null, 'no statements: no policy');
      await assert.rejects(s.putResourcePolicy({ ...p, functionName: 'ghost' }, null), code('THAW_E_FUNCTION_NOT_FOUND'));
      await s.putResourcePolicy(p, null);
      await s.deleteFunction('f');
      await s.createFunction(fnRecord('f'));
      assert.equal(await s.getResourcePolicy('f', LATEST), null, 'a function made again under the name starts with no policy');
    });

    withStore('close is idempotent and asyncDispose closes', async (s) => {
      await s.close();
      await s.close();
      assert.equal(typeof s[Symbol.asyncDispose], 'function');
    });
  });
}
