// A streamed invocation through the Fleet, against an agent on a real loopback socket that answers the
// protocol: the stream's start and chunks reach the caller's ResponseStream in order, each only after the
// caller took the one before (the fleet reads the agent no faster), and the result comes after them.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { systemClock } from '../core/clock.ts';
import type { FunctionVersion } from '../core/types.ts';
import type { ResponseStream } from '../agent/index.ts';
import { Fleet } from './fleet.ts';
import { heartbeatSchema } from './protocol.ts';

const version = { functionName: 'f', version: '$LATEST', revisionId: 'r1', config: { codeSha256: 'a'.repeat(64), memoryMb: 128, runtime: 'nodejs24.x' }, createdAt: 0 } as unknown as FunctionVersion;
const CHUNKS = ['one;', 'two;', 'three'];

let server: Server;
let asked: { stream?: boolean } = {};
after(() => { server?.close(); });

test('a streamed invocation: start, then each chunk once the caller took the last, then the result', async () => {
  server = createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      asked = JSON.parse(body);
      res.writeHead(200, { 'content-type': 'application/x-ndjson' });
      // All at once, in one write: whatever paces the caller's stream is the fleet's reading.
      res.end([
        { started: true }, { streamStart: { contentType: 'text/plain' } },
        ...CHUNKS.map((c) => ({ chunk: Buffer.from(c).toString('base64') })),
        { result: { record: { id: 's1' }, payload: '', functionError: null, logs: [] } },
      ].map((l) => JSON.stringify(l) + '\n').join(''));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const fleet = new Fleet({ clock: systemClock, log: () => {} });
  fleet.heartbeat(heartbeatSchema.parse({ name: 'a', url, capacity: { memoryBudgetMb: 1024, cpus: 2 }, instances: [], packages: [], busy: 0 }));

  const seen: string[] = [];
  let head: Parameters<ResponseStream['start']>[0] | null = null;
  const stream: ResponseStream = {
    start: (h) => { head = h; seen.push('start'); },
    // Taken on a later turn: a fleet that did not wait would have written every chunk by then.
    write: (chunk, consumed) => { seen.push(`write ${chunk}`); setImmediate(() => { seen.push(`took ${chunk}`); consumed(); }); },
  };
  const r = await fleet.invoke({ invocationId: 's1', version, qualifier: '$LATEST', payload: '{}', trigger: 'api', callerInvocationId: null, clientContext: null, concurrencyLimit: null, receivedMono: 0, receivedAt: 0, stream });
  seen.push('result');
  await fleet.close();

  assert.equal(asked.stream, true, 'the agent is told the invocation is streamed');
  assert.deepEqual(head, { contentType: 'text/plain', executedVersion: '$LATEST', invocationId: 's1' });
  assert.deepEqual(seen, ['start', ...CHUNKS.flatMap((c) => [`write ${c}`, `took ${c}`]), 'result']);
  assert.equal(r.record.id, 's1');
});
