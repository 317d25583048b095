// The SQLite store's telemetry writes (invocation records and function logs, and their pruning) on one
// connection, and the worker thread that runs them for a store in a file. Records and logs are written a
// burst at a time, and a commit that crosses SQLite's checkpoint threshold syncs the file (20-30 ms on this
// machine's disk): on the event loop, either held every request up. A file-backed store hands these
// writes to a worker thread with its own connection (sqlite-worker.ts), which also runs the WAL checkpoints
// (automatic checkpoints are off on the store's connection); an in-memory store, which no second connection
// can open, writes on its own. Imports node built-ins and src/core types.
import type { DatabaseSync, SQLInputValue, StatementSync } from 'node:sqlite';
import { Worker } from 'node:worker_threads';
import { ThawError } from '../core/errors.ts';
import type { InvocationRecord, LogLine } from '../core/types.ts';

type Row = Record<string, SQLInputValue>;

/** Prepared statements of one connection by their SQL (every SQL text given is a constant). */
export class Statements {
  readonly #db: DatabaseSync;
  readonly #cache = new Map<string, StatementSync>();
  constructor(db: DatabaseSync) { this.#db = db; }

  get(sql: string): StatementSync {
    let st = this.#cache.get(sql);
    if (!st) { st = this.#db.prepare(sql); this.#cache.set(sql, st); }
    return st;
  }

  /** Runs fn in one write transaction; rolls back if it throws. */
  tx<T>(fn: () => T): T {
    this.#db.exec('BEGIN IMMEDIATE');
    try {
      const out = fn();
      this.#db.exec('COMMIT');
      return out;
    } catch (err) {
      this.#db.exec('ROLLBACK');
      throw err;
    }
  }
}

/** The telemetry operations, each one transaction or statement; the worker's messages name them. */
export class TelemetryWriter {
  readonly #s: Statements;
  constructor(statements: Statements) { this.#s = statements; }

  recordInvocations(recs: readonly InvocationRecord[]): number {
    if (!recs.length) return 0;
    this.#s.tx(() => { for (const r of recs) this.putInvocation(r); });
    return recs.length;
  }

  /** One record, inside the caller's transaction (an event's completion writes its record with it). */
  putInvocation(r: InvocationRecord): void {
    this.#s.get('INSERT OR REPLACE INTO invocations (id, function_name, received_at, body) VALUES (?, ?, ?, ?)').run(r.id, r.functionName, r.receivedAt, JSON.stringify(r));
  }

  /** Keeps the newest `keep` records. */
  pruneInvocations(keep: number): number {
    if (keep <= 0) return this.#run('DELETE FROM invocations');
    // The oldest record kept, found on the (received_at, id) index; everything older goes. (NOT IN over the
    // newest `keep` ids built a set of all of them each time: 100 ms at 100,000 records.)
    const cut = this.#s.get('SELECT received_at, id FROM invocations ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET ?').get(keep - 1) as Row | undefined;
    if (!cut) return 0;
    return this.#run('DELETE FROM invocations WHERE received_at < ? OR (received_at = ? AND id < ?)', cut.received_at, cut.received_at, cut.id);
  }

  appendLogs(lines: readonly Omit<LogLine, 'seq'>[]): number {
    if (!lines.length) return 0;
    const insert = this.#s.get('INSERT INTO logs (at, function_name, version, instance_id, invocation_id, stream, line) VALUES (?, ?, ?, ?, ?, ?, ?)');
    this.#s.tx(() => { for (const l of lines) insert.run(l.at, l.functionName, l.version, l.instanceId, l.invocationId, l.stream, l.line); });
    return lines.length;
  }

  /** Keeps the newest `keepPerFunction` lines of each function, and with `now` none older than its retention. */
  pruneLogs({ keepPerFunction, now }: { keepPerFunction: number; now?: number }): number {
    // OFFSET -1 would read as OFFSET 0 and keep one line, so keeping none is its own statement.
    if (keepPerFunction <= 0) return this.#run('DELETE FROM logs');
    let removed = 0;
    this.#s.tx(() => {
      if (now !== undefined) {
        for (const { name, log_retention_days: days } of this.#s.get('SELECT name, log_retention_days FROM functions WHERE log_retention_days IS NOT NULL').all() as Row[]) {
          removed += this.#run('DELETE FROM logs WHERE function_name = ? AND at < ?', name, now - Number(days) * 86_400_000);
        }
      }
      for (const { function_name: fn } of this.#s.get('SELECT function_name FROM logs GROUP BY function_name HAVING count(*) > ?').all(keepPerFunction) as Row[]) {
        const cut = this.#s.get('SELECT seq FROM logs WHERE function_name = ? ORDER BY seq DESC LIMIT 1 OFFSET ?').get(fn, keepPerFunction - 1) as Row | undefined;
        if (cut) removed += this.#run('DELETE FROM logs WHERE function_name = ? AND seq < ?', fn, cut.seq);
      }
    });
    return removed;
  }

  #run(sql: string, ...params: SQLInputValue[]): number { return Number(this.#s.get(sql).run(...params).changes); }
}

export type TelemetryOp = 'recordInvocations' | 'pruneInvocations' | 'appendLogs' | 'pruneLogs';
export const TELEMETRY_OPS: readonly TelemetryOp[] = ['recordInvocations', 'pruneInvocations', 'appendLogs', 'pruneLogs'];

/** The main thread's side of the worker: each call a message, answered with the operation's result. */
export class TelemetryWorker {
  readonly #worker: Worker;
  readonly #pending = new Map<number, PromiseWithResolvers<number>>();
  #next = 0;
  #dead: Error | null = null;
  #closing: Promise<void> | null = null;

  constructor(path: string, checkpointEveryMs = 500) {
    this.#worker = new Worker(new URL('./sqlite-worker.ts', import.meta.url), { workerData: { path, checkpointEveryMs } });
    this.#worker.unref();
    this.#worker.on('message', (m: { id: number; result?: number; error?: string }) => {
      const p = this.#pending.get(m.id);
      if (!p) return;
      this.#pending.delete(m.id);
      if (m.error !== undefined) p.reject(new ThawError('THAW_E_INTERNAL', `the store's telemetry writer failed: ${m.error}`));
      else p.resolve(m.result ?? 0);
    });
    const fail = (err: Error) => {
      this.#dead ??= err;
      for (const p of this.#pending.values()) p.reject(new ThawError('THAW_E_INTERNAL', `the store's telemetry writer stopped: ${err.message}`));
      this.#pending.clear();
    };
    this.#worker.on('error', fail);
    this.#worker.on('exit', (code) => fail(new Error(`exited with status ${code}`)));
  }

  /** False once the worker has stopped: the store then writes on its own connection. */
  get alive(): boolean { return this.#dead === null && this.#closing === null; }

  call(op: TelemetryOp, arg: unknown): Promise<number> {
    const p = Promise.withResolvers<number>();
    const id = this.#next++;
    this.#pending.set(id, p);
    // Pending calls keep the process up until answered; an idle worker does not.
    if (this.#pending.size === 1) this.#worker.ref();
    void p.promise.finally(() => { if (this.#pending.size === 0) this.#worker.unref(); }).catch(() => {});
    this.#worker.postMessage({ id, op, arg });
    return p.promise;
  }

  /** Waits for the calls under way, then stops the worker (its connection closes). */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await Promise.allSettled([...this.#pending.values()].map((p) => p.promise));
      if (this.#dead) return;
      const exited = new Promise<void>((resolve) => this.#worker.once('exit', () => resolve()));
      this.#worker.postMessage({ id: -1, op: 'close' });
      const timer = setTimeout(() => { void this.#worker.terminate(); }, 2000);
      await exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }
}
