// The recorder: subscribes to Thaw's named events and keeps invocation records and function logs in the
// store, batched off the request path, with bounded retention. Imports src/core and src/store.
import diagnostics_channel from 'node:diagnostics_channel';
import type { Clock, TimerHandle } from '../core/clock.ts';
import type { LogEvent } from '../core/events.ts';
import type { InvocationRecord, LogLine } from '../core/types.ts';
import type { Store } from '../store/index.ts';

/** Records or log lines written in one transaction. */
const SLICE = 128;

export interface RecorderOptions {
  store: Store;
  clock: Clock;
  flushIntervalMs: number;
  /** Invocation records kept in the store (newest first). */
  keepInvocations: number;
  /** Log lines kept per function. */
  keepLogLinesPerFunction: number;
  /** Called when a write to the store fails; records are dropped rather than blocking invocations. */
  onError(err: unknown): void;
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
  #closed = false;
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
      try {
        // In slices, each its own transaction: a burst's thousand records in one would hold the store's
        // write lock (and, for a store that writes on the event loop, every request) for tens of milliseconds.
        for (let k = 0; k < records.length; k += SLICE) await this.#o.store.recordInvocations(records.slice(k, k + SLICE));
        for (let k = 0; k < logs.length; k += SLICE) await this.#o.store.appendLogs(logs.slice(k, k + SLICE));
        this.#sinceprune += records.length + logs.length;
        if (this.#sinceprune > 1000) {
          this.#sinceprune = 0;
          await this.#o.store.pruneInvocations(this.#o.keepInvocations);
          await this.#o.store.pruneLogs(this.#o.keepLogLinesPerFunction);
        }
      } catch (err) {
        this.#o.onError(err);
      } finally {
        this.#writing = [];
      }
    });
    return this.#flushing;
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
