// The HTTP front door: one node:http server carrying the Lambda API, Thaw's API and HTTP triggers. Every
// request gets an id and an AbortSignal that fires when the client goes away.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ThawError } from '../core/errors.ts';
import { newInvocationId } from '../core/ids.ts';
import { Router, sendError, type RequestContext } from './http.ts';
import { lambdaRoutes } from './lambda-api.ts';
import { resolveOptions, type UserOptions } from './options.ts';
import { Platform } from './platform.ts';
import { thawRoutes } from './thaw-api.ts';
import { triggerRoutes } from './triggers.ts';

export interface RunningThaw extends AsyncDisposable {
  readonly url: string;
  readonly platform: Platform;
  readonly server: Server;
  /** Drains: stops accepting, finishes running invocations, stops instances. Idempotent. */
  close(): Promise<void>;
  /** Aborts: kills instances and connections now. Idempotent. */
  destroy(): Promise<void>;
}

export async function startThaw(userOptions: UserOptions = {}): Promise<RunningThaw> {
  const options = resolveOptions(userOptions);
  const platform = await Platform.start(options);
  let url = '';
  const router = new Router();
  thawRoutes(router, platform);
  lambdaRoutes(router, platform, () => url);
  triggerRoutes(router, platform);

  const server = createServer({ keepAliveTimeout: 30_000, requestTimeout: 0 }, (req, res) => {
    const receivedMono = platform.clock.monotonic();
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    const base = `http://${req.headers.host ?? 'localhost'}`;
    let parsed: URL;
    try { parsed = new URL(req.url ?? '/', base); } catch { parsed = new URL('/', base); }
    const ctx: RequestContext = {
      req, res, url: parsed, params: {}, signal: abort.signal,
      requestId: newInvocationId(), receivedMono, receivedAt: platform.clock.now(),
    };
    const match = router.match(req.method ?? 'GET', parsed.pathname);
    const run = 'handler' in match
      ? (ctx.params = match.params, match.handler(ctx))
      : Promise.reject(match.allow.length
        ? new ThawError('THAW_E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${parsed.pathname}; use ${match.allow.join(', ')}`, { details: { allow: match.allow } })
        : new ThawError('THAW_E_ROUTE_NOT_FOUND', `no route for ${req.method} ${parsed.pathname}`));
    run.catch((err) => {
      // Drain the rest of a refused body so the connection can carry the error back.
      req.resume();
      sendError(ctx, err);
    }).finally(() => {
      if (options.accessLog) process.stderr.write(`${req.method} ${parsed.pathname} ${res.statusCode} ${(platform.clock.monotonic() - receivedMono).toFixed(1)}ms\n`);
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => { server.off('error', reject); resolve(); });
  });
  const { port } = server.address() as AddressInfo;
  url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;

  let closing: Promise<void> | null = null;
  const close = () => closing ??= (async () => {
    const stopped = new Promise<void>((r) => server.close(() => r()));
    server.closeIdleConnections();
    await platform.close();
    server.closeAllConnections();
    await stopped;
  })();
  const destroy = async () => {
    server.closeAllConnections();
    await platform.destroy();
    await close();
  };
  return { url, platform, server, close, destroy, [Symbol.asyncDispose]: close };
}
