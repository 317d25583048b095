// The PostgreSQL store attacked as an unlucky operator and a hostile user would: text PostgreSQL refuses
// (NUL, lone surrogates) and SQL in every user string, connection URLs that leak or do not parse, the
// server going away and coming back under a running platform, two control planes on one database (one of
// them killed -9 mid-delivery), and a row lock held from outside. A real private PostgreSQL throughout.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import pg from 'pg';
import { isThawError } from '../src/core/errors.ts';
import { LATEST, type FunctionConfig, type FunctionRecord, type Schedule } from '../src/core/types.ts';
import { openStore, redactUrl, type Store } from '../src/store/index.ts';
import { fnRecord } from '../src/store/store.case.ts';
import { CreateFunctionCommand, DeleteFunctionCommand, InvokeCommand, PublishVersionCommand, UpdateFunctionConfigurationCommand, type LambdaClient } from '@aws-sdk/client-lambda';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import type { Clock } from '../src/core/clock.ts';
import { Scheduler } from '../src/gateway/schedules.ts';
import { startS3, type RunningS3 } from './s3.ts';
import { startPostgres, type TestPostgres } from './postgres.ts';
import { eventually, fnSource, invokeHttp, pkg, processesUnder, startTestThaw, thawUp, type TestThaw } from './helpers.ts';

const started = await startPostgres();
const skip = 'skip' in started ? started.skip : false;
const server = started as TestPostgres;
after(() => ('skip' in started ? undefined : started.stop()));

const code = (c: string, ...fragments: string[]) => (e: unknown) => {
  assert.ok(isThawError(e), `not a ThawError: ${(e as Error)?.stack ?? e}`);
  assert.equal(e.code, c, e.message);
  for (const f of fragments) assert.ok(e.message.includes(f), `${JSON.stringify(f)} not in: ${e.message}`);
  return true;
};

/** A fresh database and a store on it, closed after fn. */
async function withStore(fn: (s: Store, url: string) => Promise<void>): Promise<void> {
  const url = await server.createDatabase();
  const s = await openStore(url);
  try { await fn(s, url); } finally { await s.close(); }
}

const withConfig = (f: FunctionRecord, config: Partial<FunctionConfig>): FunctionRecord => ({ ...f, latest: { ...f.latest, config: { ...f.latest.config, ...config } } });

const HOSTILE = [`'); DROP TABLE functions; --`, `$1 $$ $q$ \\ " ' ;`, 'a\u0000b', 'lone \ud800 surrogate', '🧊 thaw', `x' OR '1'='1`];

describe('hostile strings reaching the PostgreSQL store', { skip }, () => {
  test('a log line with a NUL byte is kept (the NUL replaced), and so is the rest of its batch', async () => {
    await withStore(async (s) => {
      await s.createFunction(fnRecord('f'));
      const line = (n: number, text: string) => ({ at: 1000 + n, functionName: 'f', version: '1', instanceId: 'i-1', invocationId: null, stream: 'stdout' as const, line: text });
      await s.appendLogs([line(1, 'before'), line(2, 'bin\u0000ary\u0000'), line(3, 'after')]);
      const lines = (await s.readLogs({ functionName: 'f', limit: 10 })).map((l) => l.line);
      assert.equal(lines.length, 3, 'no line of the batch is lost');
      assert.equal(lines[0], 'before');
      assert.ok(!lines[1].includes('\u0000') && lines[1].startsWith('bin') && lines[1].includes('ary'), JSON.stringify(lines[1]));
      assert.equal(lines[2], 'after');
    });
  });

  test('user strings with SQL, NUL, lone surrogates and emoji: stored or refused cleanly, never run as SQL', async () => {
    await withStore(async (s) => {
      const rec = withConfig(fnRecord('f'), { description: HOSTILE.join(' | '), env: Object.fromEntries(HOSTILE.map((v, i) => [`V${i}`, v])) });
      const tags = Object.fromEntries(HOSTILE.map((v, i) => [`k${i}`, v]));
      await s.createFunction(rec, tags);
      const back = await s.getFunction('f');
      assert.equal(back!.latest.config.env.V0, HOSTILE[0]);
      assert.equal(back!.latest.config.env.V2, 'a\u0000b', 'a NUL inside a JSON body survives (escaped)');
      const backTags = (await s.getTags('f'))!;
      assert.equal(backTags.k0, HOSTILE[0]);
      assert.equal(backTags.k5, HOSTILE[5]);
      assert.ok(!backTags.k2.includes('\u0000'));
      await s.tagFunction('f', { k6: `'; DELETE FROM function_tags; --` }, 50);
      await s.untagFunction('f', [`k0' OR 1=1 --`]);
      assert.equal(Object.keys((await s.getTags('f'))!).length, 7);
      await s.putPolicy({ functionName: 'f', spec: `fixed:10m'; DROP TABLE policies; --\u0000`, updatedAt: 1 });
      assert.equal((await s.listPolicies()).length, 1);
      const layer = await s.publishLayerVersion({ name: `l'--`, description: HOSTILE.join(' '), compatibleRuntimes: [HOSTILE[0]], compatibleArchitectures: [], licenseInfo: '\u0000', codeSha256: 'c'.repeat(64), codeSize: 1, createdAt: 1 });
      assert.equal((await s.getLayerVersion(`l'--`, layer.version))!.description, HOSTILE.join(' '));
      assert.equal((await s.listFunctions()).length, 1, 'the functions table is still there');
    });
  });

  test('a function whose env or description holds a NUL does not break the code-in-use check of every other function', async () => {
    await withStore(async (s) => {
      const rec = withConfig(fnRecord('nul', 'a'.repeat(64)), { env: { X: 'a\u0000b' }, description: 'd\u0000' });
      await s.createFunction(rec);
      await s.publishVersion('nul', 1);
      // Content nothing names: the check scans every function's layers, the NUL one's included.
      assert.equal(await s.isCodeInUse('b'.repeat(64)), false);
      assert.equal(await s.isCodeInUse('a'.repeat(64)), true);
    });
  });

  test('a schedule whose payload holds a NUL (or a lone surrogate) can still be claimed', async () => {
    await withStore(async (s) => {
      await s.createFunction(fnRecord('f'));
      for (const payload of ['{"x":"\u0000"}', '{"x":"\ud800"}']) {
        const sc: Schedule = { id: `sch-${payload.length}-${payload.charCodeAt(7)}`, functionName: 'f', qualifier: LATEST, expression: 'rate(1 minute)', kind: 'invoke', payload, enabled: true, nextAt: 60_000, lastAt: null, createdAt: 0 };
        await s.putSchedule(sc);
        assert.equal(await s.claimSchedule({ ...sc, nextAt: 120_000, lastAt: 60_000 }, 60_000), true, 'the first claim wins');
        assert.equal(await s.claimSchedule({ ...sc, nextAt: 120_000, lastAt: 60_000 }, 60_000), false, 'the same claim again loses');
        assert.equal((await s.listSchedules('f')).find((x) => x.id === sc.id)!.nextAt, 120_000);
      }
    });
  });

  test('an event whose payload holds a raw NUL (not JSON, so only from inside Thaw) is queued, the NUL replaced', async () => {
    await withStore(async (s) => {
      await s.enqueueEvent({ id: 'ev-1', functionName: 'f', qualifier: LATEST, payload: '"a\u0000b"', attempts: 0, enqueuedAt: 1, nextAttemptAt: 1 });
      const [taken] = await s.leaseEvents(2, 60_000, 8, 'me');
      assert.equal(taken.payload, '"a\ufffdb"');
    });
  });

  test('an invocation record with NULs and lone surrogates in its error is recorded with the rest of its batch', async () => {
    await withStore(async (s) => {
      const rec = (id: string, msg: string | null) => ({
        id, functionName: 'f', version: '1', qualifier: LATEST, instanceId: 'i\u0000', start: 'cold' as const, trigger: 'api' as const, callerInvocationId: null, receivedAt: 5,
        durationMs: 1, phases: [], initMs: 0, handlerMs: 1, billedMs: 1, memoryMb: 128, outcome: 'error' as const, errorType: 'E\u0000', errorMessage: msg,
      });
      await s.recordInvocations([rec('r1', 'ok'), rec('r2', 'nul\u0000 and \udc00'), rec('r3', null)]);
      assert.deepEqual((await s.listInvocations({ limit: 10 })).map((r) => r.id).sort(), ['r1', 'r2', 'r3']);
      assert.equal((await s.getInvocation('r2'))!.errorMessage!.startsWith('nul'), true);
    });
  });
});

describe('connection URLs', { skip }, () => {
  const password = 'p@ss:w/rd#?%&=';
  let admin: pg.Client;
  before(async () => {
    admin = new pg.Client({ connectionString: server.url });
    await admin.connect();
    await admin.query(`CREATE ROLE hostile LOGIN PASSWORD '${password.replace(/'/g, "''")}'`);
    await admin.query(`GRANT ALL ON SCHEMA public TO hostile`);
  });
  after(() => admin?.end());

  const urlOf = (pass: string, query = '') => server.urlWith({ user: 'hostile', password: 'x' }).replace(':x@', `:${pass}@`) + query;

  test('a password with special characters, percent-encoded, connects; the password is printed nowhere', async () => {
    const db = new URL(await server.createDatabase()).pathname.slice(1);
    await admin.query(`ALTER DATABASE ${db} OWNER TO hostile`);
    const url = urlOf(encodeURIComponent(password)).replace(/\/[^/]+$/, `/${db}`);
    const s = await openStore(url);
    try { assert.equal((await s.listFunctions()).length, 0); } finally { await s.close(); }
    assert.ok(!redactUrl(url).includes(encodeURIComponent(password)) && !redactUrl(url).includes('w/rd'), redactUrl(url));
  });

  test('the same password not encoded: THAW_E_CONFIG_INVALID saying to percent-encode it, without the password', async () => {
    await assert.rejects(openStore(urlOf(password)), (e: unknown) => {
      code('THAW_E_CONFIG_INVALID', 'percent-encode')(e);
      assert.ok(!(e as Error).message.includes('w/rd') && !(e as Error).message.includes('ss:w'), (e as Error).message);
      return true;
    });
    assert.ok(!redactUrl(urlOf(password)).includes('w/rd'), redactUrl(urlOf(password)));
  });

  test('a password given as a query parameter is hidden too', async () => {
    const url = `${server.urlWith({}).replace(/:[^:@/]*@/, '@')}?password=${encodeURIComponent('t0p-secret')}&sslmode=disable`;
    assert.ok(!redactUrl(url).includes('t0p-secret'), redactUrl(url));
    await assert.rejects(openStore(url), (e: unknown) => isThawError(e) && !e.message.includes('t0p-secret'));
  });

  test('a unix socket directory (?host=DIR) connects', async () => {
    const db = new URL(await server.createDatabase()).pathname.slice(1);
    const port = new URL(server.url).port;
    const s = await openStore(`postgres://thaw@/${db}?host=${encodeURIComponent(server.socketDir)}&port=${port}`);
    try { assert.deepEqual(await s.listFunctions(), []); } finally { await s.close(); }
  });

  test('sslmode=require against a server without TLS: THAW_E_STORE_UNAVAILABLE saying so, without the password', async () => {
    const url = `${server.url}?sslmode=require`;
    const pass = decodeURIComponent(new URL(url).password);
    await assert.rejects(openStore(url), (e: unknown) => {
      code('THAW_E_STORE_UNAVAILABLE', 'SSL')(e);
      assert.ok(!(e as Error).message.includes(pass));
      return true;
    });
  });
});

describe('the database goes away under a running platform and comes back', { skip }, () => {
  let t: TestThaw;
  const stderr: string[] = [];
  const write = process.stderr.write.bind(process.stderr);
  before(async () => {
    t = await startTestThaw({ store: await server.createDatabase(), poolSize: 0, snapshots: false, versionPrewarm: false });
    process.stderr.write = ((chunk: string | Uint8Array, ...rest: unknown[]) => { stderr.push(String(chunk)); return (write as (...a: unknown[]) => boolean)(chunk, ...rest); }) as typeof process.stderr.write;
  });
  after(async () => {
    process.stderr.write = write;
    await server.resume();
    await t?.stop();
  });

  test('the platform stays up; warm invocations run; records made meanwhile reach the store once it is back', async () => {
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'warm', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x',
      Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { n: event.n };') }) },
    }));
    assert.equal((await invokeHttp(t.url, 'warm', { n: 0 })).status, 200);
    await t.thaw.platform.recorder.flush();

    await server.halt();
    const node = await fetch(`${t.url}/thaw/v1/node`);
    assert.equal(node.status, 200, 'the platform answers while its store is gone');
    const during = await invokeHttp(t.url, 'warm', { n: 1 });
    assert.equal(during.status, 200, `a warm function runs while the store is gone: ${during.text}`);
    assert.deepEqual(during.json, { n: 1 });
    const id = during.headers.get('x-amzn-requestid')!;
    const queued = await fetch(`${t.url}/2015-03-31/functions/warm/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{"n":2}' });
    assert.equal(queued.status, 503, 'an Event is refused (not accepted and lost) while the queue cannot be written');
    assert.equal(((await queued.json()) as { code: string }).code, 'THAW_E_STORE_UNAVAILABLE');
    await t.thaw.platform.recorder.flush();

    await server.resume();
    // The pool reconnects on its own: the same platform serves and queues again.
    await eventually(async () => (await invokeHttp(t.url, 'warm', { n: 3 })).status === 200, 'invocations through the store again', 60_000, 250);
    const again = await fetch(`${t.url}/2015-03-31/functions/warm/invocations`, { method: 'POST', headers: { 'x-amz-invocation-type': 'Event' }, body: '{"n":4}' });
    assert.equal(again.status, 202);
    const evId = again.headers.get('x-amzn-requestid')!;
    await eventually(async () => (await t.thaw.platform.store.countEvents()) === 0, 'the queue to run the event', 60_000);
    assert.ok(await t.thaw.platform.store.getInvocation(evId), 'the event delivered after the outage is recorded');
    await eventually(async () => { await t.thaw.platform.recorder.flush(); return t.thaw.platform.store.getInvocation(id); }, 'the record of the invocation made during the outage', 30_000, 250);
  });
});

describe('two control planes on one database', { skip }, () => {
  let s3: RunningS3;
  let url: string;
  let b: TestThaw | undefined;
  let c: TestThaw | undefined;
  let killed: { child: ChildProcess; dataDir: string; cacheDir: string } | undefined;
  const saved = { ...process.env };
  const role = 'arn:aws:iam::000000000000:role/x';
  const shared = () => ({ store: url, origin: `s3://${s3.bucket}`, poolSize: 0, snapshots: false, versionPrewarm: false });
  const create = (lambda: LambdaClient, name: string, body: string, extra: { Timeout?: number } = {}) => lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs22.x', Handler: 'index.handler', Role: role, ...extra, Code: { ZipFile: pkg({ 'index.mjs': fnSource(body) }) },
  }));

  before(async () => {
    s3 = await startS3();
    // The S3 origin (and the child `thaw up`) read the endpoint and keys from the environment.
    Object.assign(process.env, s3.env);
    url = await server.createDatabase();
  });
  after(async () => {
    if (killed) {
      killed.child.kill('SIGKILL');
      // The killed node's sandbox mounts stay until a `thaw up` on its cache dir sweeps them, as after a real crash.
      const sweep = await thawUp(killed.dataDir, killed.cacheDir, ['--pool-size', '0']);
      sweep.child.kill('SIGTERM');
      await new Promise((r) => sweep.child.once('exit', r));
      for (const pid of await processesUnder(killed.cacheDir)) { try { process.kill(pid, 'SIGKILL'); } catch { /* gone */ } }
      await rm(killed.dataDir, { recursive: true, force: true });
      await rm(killed.cacheDir, { recursive: true, force: true });
    }
    await b?.stop();
    await c?.stop();
    await s3?.stop();
    for (const k of Object.keys(s3?.env ?? {})) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  });

  test('an event a control plane was delivering when it was killed -9 is delivered by another within a lease', { timeout: 300_000 }, async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'thaw-hpg-a-'));
    const cacheDir = await mkdtemp('/dev/shm/thaw-hpg-a-');
    const a = await thawUp(dataDir, cacheDir, ['--store', url, '--origin', `s3://${s3.bucket}`, '--pool-size', '0', '--no-snapshots']);
    killed = { child: a.child, dataDir, cacheDir };
    const { LambdaClient } = await import('@aws-sdk/client-lambda');
    const lambdaA = new LambdaClient({ endpoint: a.url, region: 'us-east-1', credentials: { accessKeyId: 'thaw', secretAccessKey: 'thaw' }, maxAttempts: 1 });
    // The handler waits until a moment past the kill, then returns: the first delivery is cut off, the redelivery is quick.
    await create(lambdaA, 'cutoff', 'while (Date.now() < event.until) await new Promise((r) => setTimeout(r, 200)); return "done";', { Timeout: 120 });
    const sent = await lambdaA.send(new InvokeCommand({ FunctionName: 'cutoff', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ until: Date.now() + 40_000 })) }));
    assert.equal(sent.StatusCode, 202);
    lambdaA.destroy();
    const db = new pg.Client({ connectionString: url });
    await db.connect();
    try {
      await eventually(async () => (await db.query("SELECT 1 FROM events WHERE lease_owner LIKE '%' || $1", [dataDir])).rowCount, 'the first control plane to lease the event', 60_000, 100);
    } finally { await db.end(); }
    a.child.kill('SIGKILL');
    await new Promise((r) => a.child.once('exit', r));

    b = await startTestThaw(shared());
    const store = b.thaw.platform.store;
    assert.equal(await store.countEvents(), 1, 'the event outlives its control plane');
    await eventually(async () => (await store.countEvents()) === 0, 'the other control plane to deliver it (one lease after the kill)', 240_000, 500);
    const rec = (await store.listInvocations({ functionName: 'cutoff', limit: 10 })).filter((r) => r.trigger === 'event');
    assert.equal(rec.length, 1);
    assert.equal(rec[0].outcome, 'success');
    assert.equal(b.thaw.platform.events.redeliveries, 1, 'counted as a redelivery (the cut-off one may have run)');
    await eventually(async () => (await processesUnder(cacheDir)).length === 0, 'the killed node\'s instance to exit with its channel', 60_000, 250);
  });

  test('PublishVersion racing through both numbers each version once', async () => {
    const cc = (c = await startTestThaw(shared()));
    const bb = b ?? (b = await startTestThaw(shared()));
    await create(bb.lambda, 'pub', 'return 1;');
    for (let i = 1; i <= 6; i++) {
      await (i % 2 ? cc : bb).lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'pub', Description: `round ${i}` }));
      const got = await Promise.all([bb, cc, bb, cc].map((t) => t.lambda.send(new PublishVersionCommand({ FunctionName: 'pub' }))));
      assert.deepEqual(new Set(got.map((v) => v.Version)), new Set([String(i)]), `round ${i}: ${got.map((v) => v.Version).join(', ')}`);
    }
    assert.deepEqual((await bb.thaw.platform.store.listVersions('pub')).map((v) => v.version), ['1', '2', '3', '4', '5', '6']);
  });

  test('a function deleted through one is gone for the other at once, warm instance or not', async () => {
    await create(c!.lambda, 'doomed', 'return "alive";');
    assert.equal((await invokeHttp(b!.url, 'doomed')).status, 200);
    await c!.lambda.send(new DeleteFunctionCommand({ FunctionName: 'doomed' }));
    const after = await invokeHttp(b!.url, 'doomed');
    assert.equal(after.status, 404, after.text);
    assert.equal(after.json.code, 'THAW_E_FUNCTION_NOT_FOUND');
  });
});

describe('a schedule added through one control plane', { skip }, () => {
  test('is fired by another that was already running, once the first is gone', async () => {
    const url = await server.createDatabase();
    const stores: Store[] = [await openStore(url), await openStore(url)];
    let now = Date.UTC(2030, 0, 1);
    const clock: Clock = { now: () => now, monotonic: () => 0, setTimer: () => ({ cancel() {} }) };
    const fired: string[] = [];
    const scheduler = (node: string, store: Store) => new Scheduler({
      store, clock, region: 'us-east-1', reloadMs: 30_000, onError: (m) => { throw new Error(m); },
      invoke: async (fn) => { fired.push(`${node}:${fn}`); },
    });
    try {
      const b = scheduler('b', stores[1]);
      await b.start();
      const a = scheduler('a', stores[0]);
      await a.add('tick', { expression: 'rate(1 minute)' });
      await a.close();
      for (let minute = 1; minute <= 2; minute++) {
        now += 60_000;
        await b.fire();
        assert.deepEqual(fired, Array.from({ length: minute }, () => 'b:tick'));
      }
      await b.close();
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});

describe('a row locked from outside while 200 calls arrive', { skip }, () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ store: await server.createDatabase(), poolSize: 0, snapshots: false, versionPrewarm: false }); });
  after(() => t?.stop());

  test('calls on the locked function fail as busy after a bound, and every other call is served meanwhile', { timeout: 180_000 }, async () => {
    for (const name of ['locked', 'free']) await t.lambda.send(new CreateFunctionCommand({
      FunctionName: name, Runtime: 'nodejs22.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return 1;') }) },
    }));
    const holder = new pg.Client({ connectionString: t.thaw.platform.options.store });
    holder.on('error', () => {});
    await holder.connect();
    try {
      // An operator's session left open in the middle of a transaction, holding the function's row.
      await holder.query('BEGIN');
      await holder.query("SELECT * FROM functions WHERE name = 'locked' FOR UPDATE");
      const api = (path: string, init?: RequestInit) => fetch(`${t.url}/2015-03-31/functions/${path}`, init).then(async (r) => ({ status: r.status, body: await r.text() }));
      // More writers on the locked row than the pool has connections, and 200 readers of another function.
      const writers = Array.from({ length: 12 }, (_, i) => api('locked/configuration', { method: 'PUT', body: JSON.stringify({ Description: `w${i}` }) }));
      const readers = Array.from({ length: 200 }, () => api('free'));
      const read = await Promise.all(readers);
      assert.deepEqual([...new Set(read.map((r) => r.status))], [200], read.find((r) => r.status !== 200)?.body);
      const wrote = await Promise.all(writers);
      for (const w of wrote) {
        assert.equal(w.status, 503, w.body);
        assert.equal(JSON.parse(w.body).code, 'THAW_E_STORE_BUSY');
      }
    } finally {
      await holder.query('ROLLBACK').catch(() => {});
      await holder.end();
    }
    const after = await fetch(`${t.url}/2015-03-31/functions/locked/configuration`, { method: 'PUT', body: JSON.stringify({ Description: 'free again' }) });
    assert.equal(after.status, 200, 'once the lock is let go, the function is written again');
  });
});
