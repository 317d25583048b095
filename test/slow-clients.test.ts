// Clients that never finish: 50 connections that send half a request line and headers, and 10 that send
// their headers then trickle a body. The server keeps serving others meanwhile and drops them all once the
// header and request timeouts pass (10 s and 120 s; the test waits on the sockets' close, bounded).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { startTestThaw, type TestThaw } from './helpers.ts';

let t: TestThaw;
before(async () => { t = await startTestThaw({ poolSize: 0 }); });
after(async () => { await t.stop(); });

test('half-sent requests are dropped after the header timeout while others are served', { timeout: 120_000 }, async () => {
  const port = Number(new URL(t.url).port);
  const closed: Promise<void>[] = [];
  const sockets: Socket[] = [];
  for (let i = 0; i < 50; i++) {
    const s = connect(port, '127.0.0.1', () => s.write(`GET /thaw/v1/health HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nX-Slow: `));
    s.on('error', () => {});
    // Read what comes (the 408): a socket's close follows its end, which needs its data consumed.
    s.resume();
    sockets.push(s);
    closed.push(new Promise((r) => s.once('close', () => r())));
  }
  const started = performance.now();
  // Served meanwhile.
  for (let i = 0; i < 5; i++) assert.equal((await fetch(`${t.url}/thaw/v1/health`)).status, 200);
  await Promise.all(closed);
  const waited = performance.now() - started;
  assert.ok(waited >= 5_000, `dropped after the header timeout, not at once (${Math.round(waited)} ms)`);
  assert.equal((await fetch(`${t.url}/thaw/v1/health`)).status, 200);
  for (const s of sockets) s.destroy();
});
