// Asynchronous (InvocationType=Event) invocations with Lambda's semantics: queued durably in the store
// before the 202, delivered at least once by a poller that leases events, retried with back-off up to the
// function's MaximumRetryAttempts within its MaximumEventAgeInSeconds, then sent to its OnSuccess or
// OnFailure destination (another function, as an Event carrying Lambda's invocation record) and, when it
// failed for good, kept as a dead letter. Each outcome commits with the event's completion and its
// invocation record in one transaction, so a crash at any moment loses neither.
// Imports src/core and src/store.
import type { Clock, TimerHandle } from '../core/clock.ts';
import { functionArn, parseFunctionRef } from '../core/arn.ts';
import { asThawError } from '../core/errors.ts';
import { newInvocationId } from '../core/ids.ts';
import { LATEST, type DeadLetter, type EventInvokeConfig, type InvocationRecord, type QueuedEvent } from '../core/types.ts';
import type { Store } from '../store/index.ts';
import type { InvokeResult } from '../agent/index.ts';

export interface EventQueueOptions {
  store: Store;
  clock: Clock;
  pollIntervalMs: number;
  /** Delay before each retry (Lambda: about 1 and 2 minutes); MaximumRetryAttempts takes the first n. */
  retryDelaysMs: readonly number[];
  region: string;
  /** Names this node on its leases, so that on a shared store a restart releases its own leases only. */
  leaseOwner?: string;
  invoke(functionName: string, qualifier: string, payload: string, invocationId: string): Promise<InvokeResult>;
}

/** Lambda's defaults where a function has no event invoke config. */
export const DEFAULT_MAX_RETRIES = 2;
export const DEFAULT_MAX_EVENT_AGE_S = 21_600;

/** Destination hops after which an event is not passed on (Lambda stops recursive loops after 16). */
export const MAX_DESTINATION_DEPTH = 16;
/** A destination's invocation record is an Event: held to the Event payload limit. */
const MAX_RECORD_BYTES = 256 * 1024;
/** A throttled delivery did not run: it is tried again soon, without using up a retry. */
const THROTTLE_RETRY_MS = 1000;

/**
 * A delivery's lease, renewed every third of it while the delivery runs, so a live one is never taken twice
 * and one whose node died (kill -9, on a store other nodes share) is taken by another within a lease.
 */
const LEASE_MS = 60_000;
const BATCH = 8;
/** Delivery outcomes kept in memory for the API; the store keeps the invocation records themselves. */
const HISTORY = 1000;

export class EventQueue {
  #o: EventQueueOptions;
  #timer: TimerHandle | null = null;
  #inFlight = new Set<Promise<void>>();
  /** Ids of the events being delivered, whose leases the renewal timer extends. */
  #leased = new Set<string>();
  #renewal: TimerHandle | null = null;
  #polling = false;
  #closed = false;
  /** The store refused the last poll: said once when it starts and once when it ends, not every poll. */
  #pollFailing = false;
  /** Deliveries that ended, in order, for tests and the API: id, attempt, outcome. */
  readonly history: { id: string; attempt: number; outcome: 'delivered' | 'retry' | 'dropped'; reason: string }[] = [];
  /** Deliveries that started again after an earlier one was cut off (may have run twice). */
  redeliveries = 0;

  constructor(options: EventQueueOptions) { this.#o = options; }

  /** Stores the event (durably: the caller answers 202 after this) and returns its id, the invocation's. */
  async enqueue(functionName: string, qualifier: string, payload: string): Promise<string> {
    const now = this.#o.clock.now();
    const id = newInvocationId();
    await this.#o.store.enqueueEvent({ id, functionName, qualifier, payload, attempts: 0, enqueuedAt: now, nextAttemptAt: now });
    this.#schedule(0);
    return id;
  }

  /** The config in force for an event: its qualifier's, else the unqualified function's, else Lambda's defaults. */
  async #config(ev: QueuedEvent): Promise<EventInvokeConfig> {
    const { store, clock } = this.#o;
    return await store.getEventInvokeConfig(ev.functionName, ev.qualifier)
      ?? (ev.qualifier !== LATEST ? await store.getEventInvokeConfig(ev.functionName, LATEST) : null)
      ?? { functionName: ev.functionName, qualifier: ev.qualifier, maximumRetryAttempts: DEFAULT_MAX_RETRIES, maximumEventAgeSeconds: DEFAULT_MAX_EVENT_AGE_S, onSuccess: null, onFailure: null, updatedAt: clock.now() };
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
      const due = room > 0 ? await this.#o.store.leaseEvents(this.#o.clock.now(), LEASE_MS, room, this.#o.leaseOwner ?? null) : [];
      if (this.#pollFailing) process.stderr.write('thaw: the event queue reads the store again\n');
      this.#pollFailing = false;
      for (const ev of due) {
        // A store that fails mid-delivery (disk full) loses nothing: the event stays leased and comes back.
        const p: Promise<void> = this.#deliver(ev)
          .catch((err) => { process.stderr.write(`thaw: delivery of event ${ev.id} could not be recorded: ${(err as Error).message}\n`); })
          .finally(() => { this.#inFlight.delete(p); this.#leased.delete(ev.id); this.#schedule(0); });
        this.#inFlight.add(p);
        this.#leased.add(ev.id);
      }
      this.#armRenewal();
    } catch (err) {
      if (!this.#pollFailing) process.stderr.write(`thaw: event queue poll failed (retrying every ${this.#o.pollIntervalMs} ms): ${(err as Error).message}\n`);
      this.#pollFailing = true;
    } finally {
      this.#polling = false;
      this.#schedule(this.#o.pollIntervalMs);
    }
  }

  #armRenewal() {
    if (this.#renewal || !this.#leased.size) return;
    this.#renewal = this.#o.clock.setTimer(() => { void this.#renew(); }, LEASE_MS / 3);
  }

  /** Extends the leases of the deliveries under way; one that fails now is tried again a third of a lease later. */
  async #renew() {
    try {
      if (this.#leased.size) await this.#o.store.renewLeases([...this.#leased], this.#o.clock.now() + LEASE_MS, this.#o.leaseOwner ?? null);
    } catch (err) {
      process.stderr.write(`thaw: could not renew the leases of ${this.#leased.size} event(s) being delivered: ${(err as Error).message}\n`);
    } finally {
      this.#renewal = null;
      this.#armRenewal();
    }
  }

  async #deliver(ev: QueuedEvent): Promise<void> {
    const { store, clock, retryDelaysMs } = this.#o;
    const attempt = ev.attempts + 1;
    if ((ev.leases ?? 0) > attempt) {
      this.redeliveries++;
      process.stderr.write(`thaw: event ${ev.id} for ${ev.functionName} is delivered again: an earlier delivery was cut off and may have run\n`);
    }
    const cfg = await this.#config(ev);
    if (clock.now() - ev.enqueuedAt > cfg.maximumEventAgeSeconds * 1000) {
      await this.#fail(ev, cfg, attempt - 1, null, 'EventAgeExceeded', null, `older than MaximumEventAgeInSeconds ${cfg.maximumEventAgeSeconds}`);
      return;
    }
    let failure: string | null = null;
    let retryable = true;
    let throttled = false;
    let record: InvocationRecord | null = null;
    let response = 'null';
    try {
      const r = await this.#o.invoke(ev.functionName, ev.qualifier, ev.payload, ev.id);
      record = r.record;
      response = r.payload;
      if (r.functionError) failure = `${r.record.errorType}: ${r.record.errorMessage}`;
    } catch (err) {
      const e = asThawError(err);
      failure = `${e.code}: ${e.message}`;
      // A function that no longer exists or a malformed event will not get better by waiting.
      retryable = e.retryable;
      // Like a throttle: a cluster agent lost under it says nothing of the function; it is delivered again soon.
      throttled = e.code === 'THAW_E_THROTTLED' || e.code === 'THAW_E_AGENT_LOST' || e.code === 'THAW_E_CLUSTER_NO_AGENTS';
    }
    if (throttled) {
      // As on Lambda: throttles are retried within the event's maximum age, not counted as attempts.
      if (clock.now() + THROTTLE_RETRY_MS - ev.enqueuedAt <= cfg.maximumEventAgeSeconds * 1000) {
        await store.retryEvent(ev.id, clock.now() + THROTTLE_RETRY_MS, null, false);
        this.#remember({ id: ev.id, attempt, outcome: 'retry', reason: failure! });
        return;
      }
      await this.#fail(ev, cfg, attempt - 1, null, 'EventAgeExceeded', null, failure!);
      return;
    }
    if (failure === null) {
      const dest = cfg.onSuccess ? this.#destinationEvent(cfg.onSuccess, ev, attempt, 'Success', record, response) : null;
      await store.completeEvent(ev.id, { record, enqueue: dest });
      this.#remember({ id: ev.id, attempt, outcome: 'delivered', reason: 'success' });
      if (dest) this.#schedule(0);
    } else if (retryable && ev.attempts < Math.min(cfg.maximumRetryAttempts, retryDelaysMs.length)) {
      const due = clock.now() + retryDelaysMs[ev.attempts];
      // A retry that would come after the event's maximum age is not made: the event fails now.
      if (due - ev.enqueuedAt > cfg.maximumEventAgeSeconds * 1000) {
        await this.#fail(ev, cfg, attempt, record, 'EventAgeExceeded', response, failure);
        return;
      }
      await store.retryEvent(ev.id, due, record);
      this.#remember({ id: ev.id, attempt, outcome: 'retry', reason: failure });
    } else {
      await this.#fail(ev, cfg, attempt, record, retryable ? 'RetriesExhausted' : 'Refused', response, failure);
    }
  }

  /** Ends a failed event: its record, an OnFailure destination event if configured, and a dead letter. */
  async #fail(ev: QueuedEvent, cfg: EventInvokeConfig, attempts: number, record: InvocationRecord | null, condition: string, response: string | null, failure: string) {
    const { store, clock } = this.#o;
    const dest = cfg.onFailure ? this.#destinationEvent(cfg.onFailure, ev, attempts, condition, record, response) : null;
    const deadLetter: DeadLetter = {
      id: ev.id, functionName: ev.functionName, qualifier: ev.qualifier, payload: ev.payload, condition,
      errorType: record?.errorType ?? failure.split(':')[0] ?? null, errorMessage: record?.errorMessage ?? failure,
      attempts, enqueuedAt: ev.enqueuedAt, failedAt: clock.now(),
    };
    await store.completeEvent(ev.id, { record, enqueue: dest, deadLetter });
    this.#remember({ id: ev.id, attempt: attempts, outcome: 'dropped', reason: `${condition}: ${failure}` });
    process.stderr.write(`thaw: event ${ev.id} for ${ev.functionName} failed for good after ${attempts} attempt(s) (${condition}): ${failure}\n`);
    if (dest) this.#schedule(0);
  }

  /** Lambda's invocation record, sent as an Event to a destination function. */
  #destinationEvent(destination: string, ev: QueuedEvent, attempts: number, condition: string, record: InvocationRecord | null, response: string | null): QueuedEvent | null {
    const depth = (ev.depth ?? 0) + 1;
    if (depth > MAX_DESTINATION_DEPTH) {
      process.stderr.write(`thaw: event ${ev.id} for ${ev.functionName} is not passed to ${destination}: ${MAX_DESTINATION_DEPTH} destination hops in a row (a loop?)\n`);
      return null;
    }
    const { name, qualifier } = parseFunctionRef(destination);
    const now = this.#o.clock.now();
    const parse = (s: string | null) => { if (s === null) return null; try { return JSON.parse(s); } catch { return s; } };
    const body = {
      version: '1.0',
      timestamp: new Date(now).toISOString(),
      requestContext: { requestId: ev.id, functionArn: functionArn(this.#o.region, ev.functionName, ev.qualifier), condition, approximateInvokeCount: attempts },
      requestPayload: parse(ev.payload),
      responseContext: { statusCode: 200, executedVersion: record?.version ?? ev.qualifier, ...(record?.errorType ? { functionError: 'Unhandled' } : {}) },
      responsePayload: parse(response),
    };
    let payload = JSON.stringify(body);
    if (Buffer.byteLength(payload) > MAX_RECORD_BYTES) {
      // Too large to pass on whole: the response (and if need be the request) is left out and said so.
      payload = JSON.stringify({ ...body, responsePayload: null, responsePayloadTruncated: true });
      if (Buffer.byteLength(payload) > MAX_RECORD_BYTES) payload = JSON.stringify({ ...body, requestPayload: null, requestPayloadTruncated: true, responsePayload: null, responsePayloadTruncated: true });
    }
    return { id: newInvocationId(), functionName: name, qualifier: qualifier ?? LATEST, payload, attempts: 0, enqueuedAt: now, nextAttemptAt: now, depth };
  }

  #remember(entry: EventQueue['history'][number]) {
    this.history.push(entry);
    if (this.history.length > HISTORY) this.history.splice(0, this.history.length - HISTORY);
  }

  /** Settles when the deliveries under way now have finished (tests step the queue with it). */
  async settled(): Promise<void> {
    while (this.#inFlight.size) await Promise.allSettled([...this.#inFlight]);
  }

  /** Stops polling and waits for deliveries under way. Events not yet taken stay queued in the store. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#timer?.cancel();
    // Leases are renewed until the last delivery ends: a drain longer than a lease must not hand them out.
    await Promise.allSettled([...this.#inFlight]);
    this.#renewal?.cancel();
  }
}
