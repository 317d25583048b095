// The recorder: subscribes to Thaw's named events and keeps invocation records and function logs in the
// store, batched off the request path, with bounded retention. Imports src/core and src/store.
import diagnostics_channel from 'node:diagnostics_channel';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { LogEvent } from '../core/events.ts';
import type { InvocationRecord, LogLine } from '../core/types.ts';
import { isThawError } from '../core/errors.ts';
import type { Store } from '../store/index.ts';

/** Records or log lines written in one transaction. */
const SLICE = 128;
/** How often, at most, lines past their function's log retention are removed while logs are written. */
const PRUNE_EVERY_MS = 10 * 60_000;
/** Records and log lines each held for the store while it is unreachable; past that the oldest are dropped, counted. */
const HOLD_WHILE_DOWN = 20_000;

export interface RecorderOptions {
  store: Store;
  clock: Clock;
  flushIntervalMs: number;
  /** Invocation records kept in the store (newest first). */
  keepInvocations: number;
  /** Log lines kept per function. */
  keepLogLinesPerFunction: number;
  /**
   * Called when a write to the store fails: once when an outage starts (records are held and written when
   * the store is back, up to a bound), and for each batch a lasting error drops (never blocking invocations).
   */
  onError(err: unknown): void;
  /** Called when the store takes writes again after an outage, with what was written and what was dropped. */
  onRecovered?(held: { records: number; logLines: number }, dropped: { records: number; logLines: number }): void;
}

export class Recorder implements AsyncDisposable {
  #o: RecorderOptions;
  #records: InvocationRecord[] = [];
  /** Taken by the flush under way and not all in the store yet. */
  #writing: InvocationRecord[] = [];
  #logs: Omit<LogLine, 'seq'>[] = [];
  #timer: TimerHandle | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #sinceprune = 0;
  #prunedAt = 0;
  #closed = false;
  /** The store is unreachable: what is buffered is held for it, and onError is not repeated every flush. */
  #down = false;
  /** `lost` when the outage began: what it cost is the difference. */
  #lostBefore = { records: 0, logLines: 0 };
  /** Records and log lines never written: dropped past the bound while the store was down, or refused by it. */
  readonly lost = { records: 0, logLines: 0 };
  #onRecord = (r: unknown) => { this.#records.push(r as InvocationRecord); this.#arm(); };
  #onLog = (e: unknown) => {
    const l = e as LogEvent;
    this.#logs.push({ at: l.at, functionName: l.functionName, version: l.version, instanceId: l.instanceId, invocationId: l.invocationId, stream: l.stream, line: l.line.length > 16_384 ? l.line.slice(0, 16_384) + '…' : l.line });
    this.#arm();
  };

  constructor(options: RecorderOptions) {
    this.#o = options;
    diagnostics_channel.subscribe('thaw:invocation:end', this.#onRecord);
    diagnostics_channel.subscribe('thaw:function:log', this.#onLog);
  }

  /** A record that may not have reached the store yet. */
  pending(id: string): InvocationRecord | undefined { return this.#records.find((r) => r.id === id) ?? this.#writing.find((r) => r.id === id); }

  async getInvocation(id: string): Promise<InvocationRecord | null> {
    return this.pending(id) ?? (await this.#o.store.getInvocation(id));
  }

  #arm() {
    if (this.#timer || this.#closed) return;
    this.#timer = this.#o.clock.setTimer(() => { this.#timer = null; void this.flush(); }, this.#o.flushIntervalMs);
  }

  /** Writes everything buffered; concurrent calls queue behind each other. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const records = this.#records.splice(0);
      const logs = this.#logs.splice(0);
      this.#writing = records;
      let r = 0;
      let l = 0;
      try {
        // In slices, each its own transaction: a burst's thousand records in one would hold the store's
        // write lock (and, for a store that writes on the event loop, every request) for tens of milliseconds.
        for (; r < records.length; r += SLICE) await this.#o.store.recordInvocations(records.slice(r, r + SLICE));
        for (; l < logs.length; l += SLICE) await this.#o.store.appendLogs(logs.slice(l, l + SLICE));
        if (this.#down) {
          this.#down = false;
          this.#o.onRecovered?.({ records: records.length, logLines: logs.length }, { records: this.lost.records - this.#lostBefore.records, logLines: this.lost.logLines - this.#lostBefore.logLines });
        }
        this.#sinceprune += records.length + logs.length;
        // Every 1000 rows written, or every PRUNE_EVERY_MS for lines that outlived their function's retention.
        if (this.#sinceprune > 1000 || this.#o.clock.now() - this.#prunedAt > PRUNE_EVERY_MS) await this.prune();
      } catch (err) {
        this.#failed(err, records.slice(r), logs.slice(l));
      } finally {
        this.#writing = [];
      }
    });
    return this.#flushing;
  }

  /** A retryable failure (the store unreachable) holds what was not written for the next flush; any other drops it. */
  #failed(err: unknown, records: InvocationRecord[], logs: Omit<LogLine, 'seq'>[]) {
    if (!(isThawError(err) && err.retryable) || this.#closed) {
      this.lost.records += records.length;
      this.lost.logLines += logs.length;
      this.#o.onError(err);
      return;
    }
    if (!this.#down) { this.#o.onError(err); this.#lostBefore = { ...this.lost }; }
    this.#down = true;
    this.#records = records.concat(this.#records);
    this.#logs = logs.concat(this.#logs);
    const over = { records: Math.max(0, this.#records.length - HOLD_WHILE_DOWN), logLines: Math.max(0, this.#logs.length - HOLD_WHILE_DOWN) };
    this.#records.splice(0, over.records);
    this.#logs.splice(0, over.logLines);
    this.lost.records += over.records;
    this.lost.logLines += over.logLines;
    this.#arm();
  }

  /** Applies the bounds: the newest records, the newest lines per function, each function's log retention. */
  async prune(): Promise<void> {
    this.#sinceprune = 0;
    this.#prunedAt = this.#o.clock.now();
    await this.#o.store.pruneInvocations(this.#o.keepInvocations);
    await this.#o.store.pruneLogs(this.#o.keepLogLinesPerFunction, this.#prunedAt);
  }

  async close(): Promise<void> {
    if (this.#closed) return this.#flushing;
    this.#closed = true;
    diagnostics_channel.unsubscribe('thaw:invocation:end', this.#onRecord);
    diagnostics_channel.unsubscribe('thaw:function:log', this.#onLog);
    this.#timer?.cancel();
    await this.flush();
  }

  async [Symbol.asyncDispose]() { await this.close(); }
}
