// The PostgreSQL store: the conformance suite against a real server the test starts (test/postgres.ts),
// plus what only a shared store has: migrations taken once by concurrent starts, leases and schedule
// firings taken once by two stores on one database, keys seen across processes, and clear refusals of an
// unreachable server, a wrong password and a database that is not Thaw's (nothing created in it).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isThawError } from '../core/errors.ts';
import { LATEST } from '../core/types.ts';
import { startPostgres, type TestPostgres } from '../../test/postgres.ts';
import { openStore } from './index.ts';
import { fnRecord, storeConformance } from './store.case.ts';
import type { Store } from './types.ts';

const started = await startPostgres();
const skip = 'skip' in started ? started.skip : false;
const server = 'skip' in started ? null : started;
after(() => server?.stop());

/** Each store its own new database, as each SQLite store its own file. */
const fresh = async (): Promise<Store> => openStore(await server!.createDatabase());

describe('PostgreSQL store', { skip }, () => {
  storeConformance('postgres', fresh);

  const code = (c: string, ...inMessage: string[]) => (e: unknown) => isThawError(e) && e.code === c && inMessage.every((m) => e.message.includes(m));
  const tables = async (url: string) => {
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      return (await c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY table_name`)).rows.map((r) => r.table_name as string);
    } finally { await c.end(); }
  };

  test('two stores starting at once on an empty database migrate it once', async () => {
    const url = await server!.createDatabase();
    const [a, b, c] = await Promise.all([openStore(url), openStore(url), openStore(url)]);
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    const rows = (await db.query('SELECT version, name FROM schema_migrations ORDER BY version')).rows;
    await db.end();
    assert.deepEqual(rows.map((r) => r.version), rows.map((_, i) => i + 1), 'each version applied once');
    assert.ok(rows.length >= 1);
    await a.createFunction(fnRecord('f'));
    assert.equal((await b.getFunction('f'))?.name, 'f', 'one schema, seen by every store');
    await Promise.all([a.close(), b.close(), c.close()]);
    const again = await openStore(url);
    await again.close();
  });

  describe('two stores on one database', () => {
    let a: Store;
    let b: Store;
    before(async () => {
      const url = await server!.createDatabase();
      [a, b] = [await openStore(url), await openStore(url)];
    });
    after(async () => { await a?.close(); await b?.close(); });

    test('an event enqueued once is leased by one store only, even when both ask at once', async () => {
      const ids = Array.from({ length: 40 }, (_, i) => `ev-${i}`);
      for (const id of ids) await a.enqueueEvent({ id, functionName: 'f', qualifier: LATEST, payload: '{}', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
      const taken: string[][] = [[], []];
      // Both stores ask again and again in parallel, a few at a time, until nothing is due.
      await Promise.all([a, b].map(async (s, i) => {
        for (;;) {
          const got = await s.leaseEvents(10, 60_000, 3, `node-${i}`);
          if (!got.length) return;
          taken[i].push(...got.map((e) => e.id));
        }
      }));
      assert.deepEqual([...taken[0], ...taken[1]].sort(), [...ids].sort(), 'every event taken exactly once');
      for (const id of ids) await a.completeEvent(id);
    });

    test('releaseLeases with an owner releases only that owner\'s leases', async () => {
      for (const id of ['x1', 'x2']) await a.enqueueEvent({ id, functionName: 'f', qualifier: LATEST, payload: '{}', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
      assert.deepEqual((await a.leaseEvents(10, 60_000, 1, 'node-a')).map((e) => e.id), ['x1']);
      assert.deepEqual((await b.leaseEvents(10, 60_000, 1, 'node-b')).map((e) => e.id), ['x2']);
      assert.equal(await a.releaseLeases('node-a'), 1, 'node-a restarted: its own lease is void');
      assert.deepEqual((await b.leaseEvents(20, 60_000, 10, 'node-b')).map((e) => e.id), ['x1'], 'node-b\'s lease on x2 still holds');
      assert.equal(await b.releaseLeases(), 2, 'without an owner: every lease (a store one node owns)');
      for (const id of ['x1', 'x2']) await a.completeEvent(id);
    });

    test('a due schedule is claimed by one store only', async () => {
      await a.createFunction(fnRecord('timed'));
      const sc = { id: 'sch-1', functionName: 'timed', qualifier: LATEST, expression: 'rate(1 minute)', kind: 'invoke' as const, payload: null, enabled: true, nextAt: 60_000, lastAt: null, createdAt: 0 };
      await a.putSchedule(sc);
      const fired = { ...sc, lastAt: 60_000, nextAt: 120_000 };
      const claims = await Promise.all([a.claimSchedule(fired, 60_000), b.claimSchedule(fired, 60_000)]);
      assert.deepEqual(claims.filter(Boolean).length, 1, `one claim wins: ${claims}`);
      assert.deepEqual((await b.listSchedules('timed'))[0], fired);
      assert.equal(await b.claimSchedule({ ...fired, id: 'gone' }, 60_000), false, 'a schedule that is gone is not claimed');
    });

    test('a key created through one store is seen by the other; revoked through the other, by the first', async () => {
      assert.equal(await b.hasActiveKeys(), false);
      await a.createKey({ id: 'AKTHSHARED', secretSealed: 'c2VhbGVk', role: 'admin', functions: null, createdAt: 1, revokedAt: null });
      assert.equal(await b.hasActiveKeys(), true);
      assert.equal(await b.revokeKey('AKTHSHARED', 2), true);
      assert.equal(await a.hasActiveKeys(), false);
      assert.equal(await a.revokeKey('AKTHSHARED', 3), false, 'revoked once');
    });

    test('concurrent publishes through two stores make one version; layer numbers stay distinct', async () => {
      await a.createFunction(fnRecord('pub'));
      const vs = await Promise.all([a.publishVersion('pub', 1), b.publishVersion('pub', 2), a.publishVersion('pub', 3), b.publishVersion('pub', 4)]);
      assert.deepEqual(new Set(vs.map((v) => v.version)), new Set(['1']));
      const layer = { name: 'shared', description: '', compatibleRuntimes: [], compatibleArchitectures: [], licenseInfo: null, codeSha256: 'e'.repeat(64), codeSize: 1, createdAt: 1 };
      const ls = await Promise.all([a, b, a, b].map((s) => s.publishLayerVersion(layer as never)));
      assert.deepEqual(ls.map((l) => l.version).sort(), [1, 2, 3, 4]);
    });
  });

  describe('refusals', () => {
    test('an unreachable server: THAW_E_STORE_UNAVAILABLE naming the URL without its password', async () => {
      const port = new URL(server!.url).port;
      const url = server!.urlWith({ password: 'hunter2-secret' }).replace(`:${port}/`, ':1/');
      await assert.rejects(openStore(url), code('THAW_E_STORE_UNAVAILABLE', '127.0.0.1:1', 'refused', 'running'));
      await assert.rejects(openStore(url), (e: unknown) => !String((e as Error).message).includes('hunter2-secret'));
    });

    test('a server that goes away under an open store: THAW_E_STORE_UNAVAILABLE on the next call, not an internal error', async () => {
      const own = await startPostgres();
      assert.ok(!('skip' in own));
      const s = await openStore(own.url);
      await s.createFunction(fnRecord('f'));
      await own.stop();
      await assert.rejects(s.getFunction('f'), code('THAW_E_STORE_UNAVAILABLE', '127.0.0.1'));
      await assert.rejects(s.publishVersion('f', 1), code('THAW_E_STORE_UNAVAILABLE'));
      await s.close();
    });

    test('a wrong password: THAW_E_STORE_UNAVAILABLE saying to check the user and password, nothing created', async () => {
      const url = await server!.createDatabase();
      const wrong = server!.urlWith({ database: new URL(url).pathname.slice(1), password: 'wrong-password-xyz' });
      await assert.rejects(openStore(wrong), code('THAW_E_STORE_UNAVAILABLE', 'password', 'check the user and password'));
      await assert.rejects(openStore(wrong), (e: unknown) => !String((e as Error).message).includes('wrong-password-xyz'));
      assert.deepEqual(await tables(url), []);
    });

    test('a database that does not exist: THAW_E_STORE_UNAVAILABLE saying to create it', async () => {
      await assert.rejects(openStore(server!.urlWith({ database: 'no_such_db' })), code('THAW_E_STORE_UNAVAILABLE', 'no_such_db', 'CREATE DATABASE'));
    });

    test('a database of another program (a table of another shape): THAW_E_STORE_INCOMPATIBLE, nothing created', async () => {
      const url = await server!.createDatabase();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query('CREATE TABLE functions (id SERIAL PRIMARY KEY, body TEXT)');
      await c.end();
      await assert.rejects(openStore(url), code('THAW_E_STORE_INCOMPATIBLE', 'functions', 'not a Thaw store'));
      assert.deepEqual(await tables(url), ['functions'], 'no Thaw table, no schema_migrations');

      const other = await server!.createDatabase();
      const d = new pg.Client({ connectionString: other });
      await d.connect();
      await d.query('CREATE TABLE schema_migrations (id TEXT PRIMARY KEY, checksum TEXT)');
      await d.end();
      await assert.rejects(openStore(other), code('THAW_E_STORE_INCOMPATIBLE', 'schema_migrations'));
      assert.deepEqual(await tables(other), ['schema_migrations']);
    });

    test('a schema newer than this Thaw: THAW_E_STORE_INCOMPATIBLE saying to upgrade', async () => {
      const url = await server!.createDatabase();
      await (await openStore(url)).close();
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      await c.query(`INSERT INTO schema_migrations (version, name) VALUES (999, 'from the future')`);
      await c.end();
      await assert.rejects(openStore(url), code('THAW_E_STORE_INCOMPATIBLE', '999', 'upgrade Thaw'));
    });
  });
});
