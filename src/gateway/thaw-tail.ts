// GET /thaw/v1/functions/{name}/tail: a function's log lines and finished invocations as they happen, one
// JSON object per line (NDJSON), until the client goes away. `thaw dev` prints from it. It subscribes to
// the named events the recorder also hears, so a line reaches the client without waiting for the store's
// flush or a poll. Imports src/core and the gateway's HTTP plumbing.
import diagnostics_channel from 'node:diagnostics_channel';
import type { LogEvent } from '../core/events.ts';
import type { InvocationRecord } from '../core/types.ts';
import type { Router } from './http.ts';
import type { Platform } from './platform.ts';

/** What a tail may hold for a client that has not read it yet; beyond, lines are dropped (and counted). */
const MAX_BUFFERED_BYTES = 1024 * 1024;

export function tailRoutes(router: Router, platform: Platform): void {
  router.on('GET', '/thaw/v1/functions/{name}/tail', async (ctx) => {
    const name = ctx.params.name;
    await platform.control.getFunction(name);
    ctx.res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store', 'x-amzn-requestid': ctx.requestId });
    ctx.res.flushHeaders();
    // A client that reads slower than the function logs (or not at all) must not grow the server's memory:
    // past MAX_BUFFERED_BYTES lines are dropped, and the client is told how many once it has caught up.
    let dropped = 0;
    const send = (o: unknown) => {
      if (ctx.res.destroyed) return;
      if (ctx.res.writableLength > MAX_BUFFERED_BYTES) { dropped++; return; }
      if (dropped) { ctx.res.write(`${JSON.stringify({ type: 'dropped', lines: dropped })}\n`); dropped = 0; }
      ctx.res.write(`${JSON.stringify(o)}\n`);
    };
    const onLog = (m: unknown) => {
      const e = m as LogEvent;
      if (e.functionName === name) send({ type: 'log', version: e.version, instanceId: e.instanceId, invocationId: e.invocationId, stream: e.stream, at: e.at, line: e.line });
    };
    const onEnd = (m: unknown) => {
      const r = m as InvocationRecord;
      if (r.functionName === name) send({ type: 'invocation', ...r });
    };
    diagnostics_channel.subscribe('thaw:function:log', onLog);
    diagnostics_channel.subscribe('thaw:invocation:end', onEnd);
    try {
      // Held open until the client disconnects (or the server closes every connection on shutdown).
      await new Promise<void>((resolve) => {
        if (ctx.signal.aborted) resolve();
        ctx.signal.addEventListener('abort', () => resolve(), { once: true });
        ctx.res.once('close', () => resolve());
      });
    } finally {
      diagnostics_channel.unsubscribe('thaw:function:log', onLog);
      diagnostics_channel.unsubscribe('thaw:invocation:end', onEnd);
    }
  });
}
