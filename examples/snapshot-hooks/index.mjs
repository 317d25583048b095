// Snapshot hooks (as SnapStart's runtime hooks): a published version is snapshotted after its init, and
// every instance restored from it shares that memory. State that must be unique or fresh per instance
// (connections, credentials, random ids, timestamps) is dropped before the snapshot and rebuilt after
// each restore. `globalThis.thaw` exists in every Thaw runtime; the hooks only fire around snapshots.
import { randomUUID } from 'node:crypto';

let connection = connect();

function connect() {
  // Stand-in for a database client: an id that must differ per instance, and when it was opened.
  return { id: randomUUID(), openedAt: new Date().toISOString() };
}

globalThis.thaw?.onBeforeSnapshot(() => {
  // Never snapshot a live connection: it would be shared by every restored instance.
  connection = null;
});

globalThis.thaw?.onAfterRestore(() => {
  connection = connect();
});

export const handler = async () => ({ connection, instance: process.pid });
