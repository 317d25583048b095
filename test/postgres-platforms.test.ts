// Two Thaw platforms on one PostgreSQL store (and one S3 origin for packages), as two control planes of a
// cluster: a function deployed through one invokes through the other, events enqueued once run once though
// both queues poll, a key created through one makes the other require signed calls, and a timer two
// control planes both hold fires once.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { InvokeCommand, CreateFunctionCommand } from '@aws-sdk/client-lambda';
import { startPostgres, type TestPostgres } from './postgres.ts';
import { startS3, type RunningS3 } from './s3.ts';
import { eventually, fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import type { Clock } from '../src/core/clock.ts';
import { Scheduler } from '../src/gateway/schedules.ts';
import { openStore, type Store } from '../src/store/index.ts';

const started = await startPostgres();
const skip = 'skip' in started ? started.skip : false;
after(() => ('skip' in started ? undefined : started.stop()));

describe('two platforms sharing a PostgreSQL store', { skip }, () => {
  const server = started as TestPostgres;
  let s3: RunningS3;
  let a: TestThaw;
  let b: TestThaw;
  const saved = { ...process.env };

  before(async () => {
    s3 = await startS3();
    // The S3 origin reads its endpoint and keys from the environment, as `thaw up` does.
    Object.assign(process.env, s3.env);
    const shared = { store: server.url, origin: `s3://${s3.bucket}`, poolSize: 0, snapshots: false, versionPrewarm: false };
    a = await startTestThaw(shared);
    b = await startTestThaw(shared);
  });

  after(async () => {
    await a?.stop();
    await b?.stop();
    await s3?.stop();
    for (const k of Object.keys(s3?.env ?? {})) if (saved[k] === undefined) delete process.env[k]; else process.env[k] = saved[k];
  });

  test('a function deployed through one invokes through the other', async () => {
    await a.lambda.send(new CreateFunctionCommand({
      FunctionName: 'shared', Runtime: 'nodejs22.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x',
      Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { got: event.n, fn: context.functionName };') }) },
    }));
    const out = await b.lambda.send(new InvokeCommand({ FunctionName: 'shared', Payload: Buffer.from(JSON.stringify({ n: 7 })) }));
    assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload ?? []).toString());
    assert.deepEqual(JSON.parse(Buffer.from(out.Payload!).toString()), { got: 7, fn: 'shared' });
  });

  test('events enqueued once run once, though both platforms poll the queue', async () => {
    const n = 12;
    for (let i = 0; i < n; i++) {
      const via = i % 2 ? a : b;
      const out = await via.lambda.send(new InvokeCommand({ FunctionName: 'shared', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ n: i })) }));
      assert.equal(out.StatusCode, 202);
    }
    const store = a.thaw.platform.store;
    // An event leaves the queue atomically with its invocation record: an empty queue means every delivery is recorded.
    await eventually(async () => (await store.countEvents()) === 0, 'the queue to drain', 60_000);
    const records = (await store.listInvocations({ functionName: 'shared', limit: 1000 })).filter((r) => r.trigger === 'event');
    assert.equal(records.length, n, 'one record per event');
    assert.equal(new Set(records.map((r) => r.id)).size, n);
    assert.equal(a.thaw.platform.events.redeliveries + b.thaw.platform.events.redeliveries, 0);
  });

  test('a key created through one platform makes the other refuse unsigned calls', async () => {
    const unsigned = () => fetch(`${b.url}/2015-03-31/functions/shared`);
    assert.equal((await unsigned()).status, 200);
    await a.thaw.platform.keys.create('admin', null, Date.now());
    const refused = await unsigned();
    assert.ok(refused.status === 401 || refused.status === 403, `status ${refused.status}`);
  });
});

describe('two schedulers on one PostgreSQL store', { skip }, () => {
  test('a due timer fires once, whichever control plane gets to it first', async () => {
    const url = await (started as TestPostgres).createDatabase();
    const stores: Store[] = [await openStore(url), await openStore(url)];
    // Time set by hand and no timers: the test calls fire() on both, at once, as two nodes' timers would.
    let now = Date.UTC(2030, 0, 1);
    const clock: Clock = { now: () => now, monotonic: () => 0, setTimer: () => ({ cancel() {} }) };
    const fired: string[] = [];
    const scheduler = (node: string, store: Store) => new Scheduler({
      store, clock, region: 'us-east-1', onError: (m) => { throw new Error(m); },
      invoke: async (fn) => { fired.push(`${node}:${fn}`); },
    });
    try {
      const a = scheduler('a', stores[0]);
      await a.add('tick', { expression: 'rate(1 minute)' });
      const b = scheduler('b', stores[1]);
      await b.start();
      for (let minute = 1; minute <= 3; minute++) {
        now += 60_000;
        await Promise.all([a.fire(), b.fire()]);
        assert.equal(fired.length, minute, `minute ${minute}: fired ${fired.join(', ')}`);
      }
      await Promise.all([a.close(), b.close()]);
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
