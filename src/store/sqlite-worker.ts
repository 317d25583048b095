// The worker thread behind TelemetryWorker (sqlite-telemetry.ts): its own connection to the store's file,
// the telemetry writes asked of it one message at a time, and a PASSIVE WAL checkpoint on an interval
// (it never waits for, or blocks, the main connection's readers and writer).
import { DatabaseSync } from 'node:sqlite';
import { parentPort, workerData } from 'node:worker_threads';
import { Statements, TELEMETRY_OPS, TelemetryWriter, type TelemetryOp } from './sqlite-telemetry.ts';

const { path, checkpointEveryMs } = workerData as { path: string; checkpointEveryMs: number };
const db = new DatabaseSync(path);
db.exec('PRAGMA busy_timeout = 5000; PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;');
const statements = new Statements(db);
const writer = new TelemetryWriter(statements);
const checkpoint = statements.get('PRAGMA wal_checkpoint(PASSIVE)');
const timer = setInterval(() => { try { checkpoint.get(); } catch { /* busy: the next one catches up */ } }, checkpointEveryMs);

parentPort!.on('message', (m: { id: number; op: TelemetryOp | 'close'; arg: unknown }) => {
  if (m.op === 'close') {
    clearInterval(timer);
    db.close();
    parentPort!.close();
    return;
  }
  try {
    if (!TELEMETRY_OPS.includes(m.op)) throw new Error(`unknown operation ${m.op}`);
    const result = (writer[m.op] as (arg: unknown) => number)(m.arg);
    parentPort!.postMessage({ id: m.id, result });
  } catch (err) {
    parentPort!.postMessage({ id: m.id, error: (err as Error).message });
  }
});
