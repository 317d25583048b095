// The SQLite store: the conformance suite against a real file, plus what only a file-backed store has:
// surviving a reopen, refusing a file that is not a database, and redelivering leases after a crash.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isThawError } from '../core/errors.ts';
import { LATEST } from '../core/types.ts';
import { openStore } from './index.ts';
import { fnRecord, storeConformance } from './store.case.ts';

const dir = mkdtempSync(join(tmpdir(), 'thaw-sqlite-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;

storeConformance('sqlite', () => openStore(join(dir, `conformance-${n++}.db`)));

test('data survives closing and reopening the file', async () => {
  const path = join(dir, 'nested', 'reopen.db');
  const a = await openStore(path);
  await a.createFunction(fnRecord('kept'));
  await a.publishVersion('kept', 5);
  await a.close();
  const b = await openStore(`sqlite:${path}`);
  assert.deepEqual((await b.getFunction('kept'))!.latest, fnRecord('kept').latest);
  assert.equal((await b.listVersions('kept')).length, 1);
  await b.close();
});

test('a file that is not a database is refused with a clear error', async () => {
  const path = join(dir, 'garbage.db');
  writeFileSync(path, 'this is not a database, it is a text file '.repeat(100));
  await assert.rejects(openStore(path), (e: unknown) => isThawError(e) && e.code === 'THAW_E_CONFIG_INVALID' && e.message.includes(path));
});

test('an in-memory store opens from :memory: and sqlite::memory:', async () => {
  for (const spec of [':memory:', 'sqlite::memory:']) {
    const s = await openStore(spec);
    await s.createFunction(fnRecord('m'));
    assert.equal((await s.getFunction('m'))!.name, 'm', spec);
    await s.close();
  }
});

test('unsupported store specs are refused', async () => {
  for (const spec of ['mysql://x', '']) {
    await assert.rejects(openStore(spec), (e: unknown) => isThawError(e) && e.code === 'THAW_E_CONFIG_INVALID', spec);
  }
});

test('a PostgreSQL URL whose server cannot be reached: THAW_E_STORE_UNAVAILABLE naming it without its password', async () => {
  // Port 1 on loopback: nothing listens there, the connection is refused at once.
  for (const spec of ['postgres://thaw:s3cret-pw@127.0.0.1:1/thaw', 'postgresql://thaw:s3cret-pw@127.0.0.1:1/thaw']) {
    await assert.rejects(openStore(spec), (e: unknown) => isThawError(e) && e.code === 'THAW_E_STORE_UNAVAILABLE'
      && e.message.includes('127.0.0.1:1/thaw') && e.message.includes('check that PostgreSQL is running') && !e.message.includes('s3cret-pw'), spec);
  }
});

test('events leased by a process that died are delivered again after releaseLeases', async () => {
  const path = join(dir, 'crash.db');
  const a = await openStore(path);
  await a.enqueueEvent({ id: 'e1', functionName: 'f', qualifier: LATEST, payload: '{}', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
  assert.equal((await a.leaseEvents(10, 16 * 60_000, 10)).length, 1);
  await a.close(); // "crash": the lease is never completed
  const b = await openStore(path);
  assert.deepEqual(await b.leaseEvents(20, 1000, 10), [], 'still leased');
  assert.equal(await b.releaseLeases(), 1);
  assert.deepEqual((await b.leaseEvents(20, 1000, 10)).map((e) => e.id), ['e1']);
  await b.close();
});
