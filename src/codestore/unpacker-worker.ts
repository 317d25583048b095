// The unpacking worker thread (see unpacker.ts): runs unpack() for each request and answers with the
// result or the ThawError's code and message. Imports the codestore's own modules and node built-ins.
import { parentPort } from 'node:worker_threads';
import { ThawError } from '../core/errors.ts';
import { unpack } from './unpacker.ts';

parentPort!.on('message', async (m: { id: number; bytes: Uint8Array; dir: string; limits: Parameters<typeof unpack>[2] }) => {
  try {
    const value = await unpack(Buffer.from(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength), m.dir, m.limits);
    parentPort!.postMessage({ id: m.id, ok: true, value });
  } catch (err) {
    const e = err instanceof ThawError ? err : null;
    parentPort!.postMessage({ id: m.id, ok: false, code: e?.code ?? 'THAW_E_INTERNAL', message: (err as Error)?.message ?? String(err), details: e?.details });
  }
});
