// The Event queue's Lambda semantics on a manual clock, against a real SQLite store: retries up to
// MaximumRetryAttempts with back-off, MaximumEventAgeInSeconds, OnSuccess/OnFailure destinations carrying
// Lambda's invocation record, dead letters, redelivery after a cut-off delivery, and records committed
// with each outcome.
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ManualClock } from '../core/clock.ts';
import { ThawError } from '../core/errors.ts';
import type { InvocationRecord } from '../core/types.ts';
import { openStore } from '../store/index.ts';
import type { Store } from '../store/index.ts';
import { EventQueue } from './events.ts';

type Outcome = 'ok' | 'error' | 'gone';

async function fixture(behaviour: (fn: string, payload: string, n: number) => Outcome) {
  const store: Store = await openStore(':memory:');
  const clock = new ManualClock(1_700_000_000_000);
  const calls: { fn: string; qualifier: string; payload: string; id: string }[] = [];
  const record = (fn: string, id: string, error: boolean): InvocationRecord => ({
    id, functionName: fn, version: '$LATEST', qualifier: '$LATEST', trigger: 'event', callerInvocationId: null, receivedAt: clock.now(),
    durationMs: 1, memoryMb: 128, start: 'warm', instanceId: 'i', phases: [], initMs: 0, handlerMs: 1, billedMs: 1,
    outcome: error ? 'error' : 'success', errorType: error ? 'Error' : null, errorMessage: error ? 'boom' : null,
  });
  const q = new EventQueue({
    store, clock, pollIntervalMs: 1000, retryDelaysMs: [60_000, 120_000], region: 'us-east-1',
    invoke: async (fn, qualifier, payload, id) => {
      calls.push({ fn, qualifier, payload, id });
      const o = behaviour(fn, payload, calls.filter((c) => c.id === id).length);
      if (o === 'gone') throw new ThawError('THAW_E_FUNCTION_NOT_FOUND', `function ${fn} does not exist`);
      const error = o === 'error';
      return { record: record(fn, id, error), payload: error ? '{"errorType":"Error","errorMessage":"boom"}' : '{"done":true}', functionError: error ? 'Unhandled' as const : null, logs: [] };
    },
  });
  /** Runs every delivery due by now, then those it queued (destinations), until nothing is due. */
  const step = async () => { for (let i = 0; i < 5; i++) { await q.poll(); await q.settled(); } };
  const put = (fn: string, retries: number, ageS = 21_600, onSuccess: string | null = null, onFailure: string | null = null) =>
    store.putEventInvokeConfig({ functionName: fn, qualifier: '$LATEST', maximumRetryAttempts: retries, maximumEventAgeSeconds: ageS, onSuccess, onFailure, updatedAt: 0 });
  return { store, clock, q, calls, step, put, [Symbol.asyncDispose]: async () => { await q.close(); await store.close(); } };
}

describe('EventQueue: Lambda\'s asynchronous invocation semantics', () => {
  test('a failing event is tried 1 + MaximumRetryAttempts times, 1 and 2 minutes apart, then dead-lettered with its record', async () => {
    await using f = await fixture(() => 'error');
    await f.put('fn', 2);
    const id = await f.q.enqueue('fn', '$LATEST', '{"n":1}');
    await f.step();
    assert.equal(f.calls.length, 1);
    f.clock.advance(59_000); await f.step();
    assert.equal(f.calls.length, 1, 'not before the first back-off');
    f.clock.advance(1_000); await f.step();
    assert.equal(f.calls.length, 2);
    f.clock.advance(120_000); await f.step();
    assert.equal(f.calls.length, 3);
    f.clock.advance(600_000); await f.step();
    assert.equal(f.calls.length, 3, 'no fourth attempt');
    assert.equal(await f.store.countEvents(), 0);
    const [dl] = await f.store.listDeadLetters('fn', 10);
    assert.deepEqual([dl.id, dl.condition, dl.attempts, dl.payload], [id, 'RetriesExhausted', 3, '{"n":1}']);
    assert.equal((await f.store.getInvocation(id))?.outcome, 'error', 'the last attempt\'s record is stored with the outcome');
  });

  test('MaximumRetryAttempts 0 tries once; a retry that would come after MaximumEventAgeInSeconds is not made', async () => {
    await using f = await fixture(() => 'error');
    await f.put('once', 0);
    await f.put('young', 2, 90);
    await f.q.enqueue('once', '$LATEST', '{}');
    await f.q.enqueue('young', '$LATEST', '{}');
    await f.step();
    f.clock.advance(60_000); await f.step();
    f.clock.advance(600_000); await f.step();
    assert.equal(f.calls.filter((c) => c.fn === 'once').length, 1);
    assert.equal(f.calls.filter((c) => c.fn === 'young').length, 2, 'the first retry (at 60 s) is inside 90 s; the second (at 180 s) is not');
    assert.equal((await f.store.listDeadLetters('young', 1))[0].condition, 'EventAgeExceeded');
  });

  test('an event older than MaximumEventAgeInSeconds when it comes due is not run', async () => {
    await using f = await fixture(() => 'ok');
    await f.put('stale', 2, 60);
    const id = 'ev-old';
    await f.store.enqueueEvent({ id, functionName: 'stale', qualifier: '$LATEST', payload: '{}', attempts: 0, enqueuedAt: f.clock.now() - 61_000, nextAttemptAt: f.clock.now() });
    await f.step();
    assert.deepEqual(f.calls, []);
    assert.equal((await f.store.getDeadLetter(id))?.condition, 'EventAgeExceeded');
  });

  test('OnSuccess and OnFailure destinations get Lambda\'s invocation record as an Event, in the same commit', async () => {
    await using f = await fixture((fn, payload) => (fn === 'work' && JSON.parse(payload).fail ? 'error' : 'ok'));
    await f.put('work', 0, 21_600, 'arn:aws:lambda:us-east-1:000000000000:function:audit', 'failures');
    const good = await f.q.enqueue('work', '$LATEST', '{"fail":false}');
    const bad = await f.q.enqueue('work', '$LATEST', '{"fail":true}');
    await f.step();
    const audit = f.calls.find((c) => c.fn === 'audit')!;
    const fail = f.calls.find((c) => c.fn === 'failures')!;
    const a = JSON.parse(audit.payload);
    assert.deepEqual([a.version, a.requestContext.requestId, a.requestContext.condition, a.requestContext.approximateInvokeCount], ['1.0', good, 'Success', 1]);
    assert.deepEqual([a.requestPayload, a.responsePayload, a.responseContext.statusCode], [{ fail: false }, { done: true }, 200]);
    assert.equal(a.requestContext.functionArn, 'arn:aws:lambda:us-east-1:000000000000:function:work');
    const b = JSON.parse(fail.payload);
    assert.deepEqual([b.requestContext.requestId, b.requestContext.condition, b.responseContext.functionError], [bad, 'RetriesExhausted', 'Unhandled']);
    assert.equal((await f.store.listDeadLetters('work', 10)).length, 1, 'a failed event is also kept as a dead letter');
  });

  test('an event for a function that is gone is not retried: it is dead-lettered at once', async () => {
    await using f = await fixture(() => 'gone');
    await f.q.enqueue('ghost', '$LATEST', '{}');
    await f.step();
    f.clock.advance(600_000); await f.step();
    assert.equal(f.calls.length, 1);
    assert.equal((await f.store.listDeadLetters('ghost', 1))[0].condition, 'Refused');
  });

  test('a delivery cut off (lease taken, never finished) is redelivered when its lease is released, and counted', async () => {
    await using f = await fixture(() => 'ok');
    const id = await f.q.enqueue('fn', '$LATEST', '{}');
    // A crashed server took it: the lease is held, the delivery never finished.
    const [taken] = await f.store.leaseEvents(f.clock.now(), 16 * 60_000, 8);
    assert.equal(taken.id, id);
    await f.store.releaseLeases();
    await f.step();
    assert.equal(f.calls.length, 1);
    assert.equal(f.q.redeliveries, 1, 'the second delivery is reported as one that may have run twice');
    assert.equal(await f.store.countEvents(), 0);
    assert.ok(await f.store.getInvocation(id));
  });

  test('a poison event never blocks the others', async () => {
    await using f = await fixture((fn) => (fn === 'poison' ? 'error' : 'ok'));
    await f.put('poison', 2);
    await f.q.enqueue('poison', '$LATEST', '{}');
    for (let i = 0; i < 20; i++) await f.q.enqueue('fine', '$LATEST', `{"i":${i}}`);
    await f.step();
    assert.equal(f.calls.filter((c) => c.fn === 'fine').length, 20);
    assert.equal(await f.store.countEvents(), 1, 'only the poison event waits for its retry');
  });

  test('a destination that leads back to its function stops after 16 hops', async () => {
    await using f = await fixture(() => 'ok');
    await f.put('loop', 0, 21_600, 'loop');
    await f.q.enqueue('loop', '$LATEST', '{}');
    for (let i = 0; i < 40; i++) await f.step();
    assert.equal(f.calls.length, 17, 'the first delivery and 16 hops');
    assert.equal(await f.store.countEvents(), 0);
  });

  test('a destination record too large for an Event leaves out the response, and says so', async () => {
    await using f = await fixture(() => 'ok');
    await f.put('big', 0, 21_600, 'sink');
    const huge = JSON.stringify({ blob: 'x'.repeat(300_000) });
    await f.q.enqueue('big', '$LATEST', '{}');
    // The fake returns {"done":true}; make the response huge by queuing a request that is.
    await f.q.enqueue('big', '$LATEST', huge);
    await f.step();
    const sinks = f.calls.filter((c) => c.fn === 'sink').map((c) => c.payload);
    assert.equal(sinks.length, 2);
    for (const p of sinks) assert.ok(Buffer.byteLength(p) <= 256 * 1024, `${Buffer.byteLength(p)} bytes`);
    assert.ok(sinks.some((p) => JSON.parse(p).requestPayloadTruncated === true));
  });

  test('a throttled delivery does not use up a retry: it is tried again within the event\'s age', async () => {
    let throttles = 3;
    const store = await openStore(':memory:');
    const clock = new ManualClock(1_700_000_000_000);
    const calls: string[] = [];
    const q = new EventQueue({
      store, clock, pollIntervalMs: 1000, retryDelaysMs: [60_000, 120_000], region: 'us-east-1',
      invoke: async (fn, _q, _p, id) => {
        calls.push(id);
        if (throttles-- > 0) throw new ThawError('THAW_E_THROTTLED', 'concurrency limit 1 reached');
        return { record: { id, functionName: fn, version: '$LATEST', qualifier: '$LATEST', trigger: 'event', callerInvocationId: null, receivedAt: 0, durationMs: 1, memoryMb: 128, start: 'warm', instanceId: 'i', phases: [], initMs: 0, handlerMs: 1, billedMs: 1, outcome: 'success', errorType: null, errorMessage: null }, payload: '1', functionError: null, logs: [] };
      },
    });
    await store.putEventInvokeConfig({ functionName: 'fn', qualifier: '$LATEST', maximumRetryAttempts: 0, maximumEventAgeSeconds: 3600, onSuccess: null, onFailure: null, updatedAt: 0 });
    await q.enqueue('fn', '$LATEST', '{}');
    for (let i = 0; i < 12; i++) { await q.poll(); await q.settled(); clock.advance(1000); }
    assert.equal(calls.length, 4, 'three throttles, then it ran');
    assert.equal(await store.countEvents(), 0);
    assert.deepEqual(await store.listDeadLetters('fn', 10), [], 'MaximumRetryAttempts 0 did not make a throttle final');
    await q.close(); await store.close();
  });
});
