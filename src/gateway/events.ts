// Asynchronous (InvocationType=Event) invocations: queued durably in the store, delivered at least once by
// a poller that leases events, with Lambda's retries on function errors and throttles.
// Imports src/core and src/store.
import type { Clock, TimerHandle } from '../core/clock.ts';
import { asThawError } from '../core/errors.ts';
import { newInvocationId } from '../core/ids.ts';
import type { QueuedEvent } from '../core/types.ts';
import type { Store } from '../store/index.ts';
import type { InvokeResult } from '../agent/index.ts';

export interface EventQueueOptions {
  store: Store;
  clock: Clock;
  pollIntervalMs: number;
  /** Delay before each retry; its length is the number of retries. */
  retryDelaysMs: readonly number[];
  invoke(functionName: string, qualifier: string, payload: string, invocationId: string): Promise<InvokeResult>;
}

/** Longer than any function may run (900 s), so a live delivery is never taken twice. */
const LEASE_MS = 16 * 60_000;
const BATCH = 8;
/** Delivery outcomes kept in memory for the API; the store keeps the invocation records themselves. */
const HISTORY = 1000;

export class EventQueue {
  #o: EventQueueOptions;
  #timer: TimerHandle | null = null;
  #inFlight = new Set<Promise<void>>();
  #polling = false;
  #closed = false;
  /** Deliveries that ended, in order, for tests and the API: id, attempt, outcome. */
  readonly history: { id: string; attempt: number; outcome: 'delivered' | 'retry' | 'dropped'; reason: string }[] = [];

  constructor(options: EventQueueOptions) { this.#o = options; }

  async enqueue(functionName: string, qualifier: string, payload: string): Promise<string> {
    const now = this.#o.clock.now();
    const id = newInvocationId();
    await this.#o.store.enqueueEvent({ id, functionName, qualifier, payload, attempts: 0, enqueuedAt: now, nextAttemptAt: now });
    this.#schedule(0);
    return id;
  }

  start() { this.#schedule(0); }

  #schedule(ms: number) {
    if (this.#closed) return;
    this.#timer?.cancel();
    this.#timer = this.#o.clock.setTimer(() => { void this.poll(); }, ms);
  }

  /** Takes due events and starts their delivery; returns once they are all started. */
  async poll(): Promise<void> {
    if (this.#polling || this.#closed) return;
    this.#polling = true;
    try {
      const room = BATCH - this.#inFlight.size;
      const due = room > 0 ? await this.#o.store.leaseEvents(this.#o.clock.now(), LEASE_MS, room) : [];
      for (const ev of due) {
        const p: Promise<void> = this.#deliver(ev).finally(() => { this.#inFlight.delete(p); this.#schedule(0); });
        this.#inFlight.add(p);
      }
    } catch (err) {
      process.stderr.write(`thaw: event queue poll failed: ${(err as Error).message}\n`);
    } finally {
      this.#polling = false;
      this.#schedule(this.#o.pollIntervalMs);
    }
  }

  async #deliver(ev: QueuedEvent): Promise<void> {
    const attempt = ev.attempts + 1;
    let failure: string | null = null;
    let retryable = true;
    try {
      const r = await this.#o.invoke(ev.functionName, ev.qualifier, ev.payload, ev.id);
      if (r.functionError) failure = `${r.record.errorType}: ${r.record.errorMessage}`;
    } catch (err) {
      const e = asThawError(err);
      failure = `${e.code}: ${e.message}`;
      // A function that no longer exists or a malformed event will not get better by waiting.
      retryable = e.retryable;
    }
    const { store, clock, retryDelaysMs } = this.#o;
    if (failure === null) {
      await store.completeEvent(ev.id);
      this.#remember({ id: ev.id, attempt, outcome: 'delivered', reason: 'success' });
    } else if (retryable && ev.attempts < retryDelaysMs.length) {
      await store.retryEvent(ev.id, clock.now() + retryDelaysMs[ev.attempts]);
      this.#remember({ id: ev.id, attempt, outcome: 'retry', reason: failure });
    } else {
      await store.completeEvent(ev.id);
      this.#remember({ id: ev.id, attempt, outcome: 'dropped', reason: failure });
      process.stderr.write(`thaw: dropped event ${ev.id} for ${ev.functionName} after ${attempt} attempt(s): ${failure}\n`);
    }
  }

  #remember(entry: EventQueue['history'][number]) {
    this.history.push(entry);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
  }

  /** Stops polling and waits for deliveries under way. Events not yet taken stay queued in the store. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    await Promise.allSettled([...this.#inFlight]);
  }
}
