// The HTTP front door: one node:http server carrying the Lambda API, Thaw's API and HTTP triggers. Every
// request gets an id and an AbortSignal that fires when the client goes away.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ThawError } from '../core/errors.ts';
import { newInvocationId } from '../core/ids.ts';
import { Gatekeeper, isLoopbackHost } from './auth.ts';
import { Router, prereadBody, sendError, type RequestContext } from './http.ts';
import { lambdaRoutes } from './lambda-api.ts';
import { layerRoutes } from './lambda-layers-api.ts';
import { managementRoutes } from './lambda-management-api.ts';
import { lambdaStreamingRoutes } from './lambda-streaming-api.ts';
import { resolveOptions, type UserOptions } from './options.ts';
import { Platform } from './platform.ts';
import { eventConfigRoutes } from './event-config-api.ts';
import { functionUrlRoutes } from './function-urls.ts';
import { permissionRoutes, policyGrant } from './lambda-permissions-api.ts';
import { networkRoutes, securityGroupRoutes } from './network-api.ts';
import { thawRoutes } from './thaw-api.ts';
import { clusterRoutes } from './cluster-api.ts';
import { metricsRoutes } from './metrics-api.ts';
import { logRoutes } from './logs-api.ts';
import { triggerRoutes } from './triggers.ts';
import { dashboardRoutes } from './dashboard.ts';
import { simRoutes } from './sim-api.ts';

export interface RunningThaw extends AsyncDisposable {
  readonly url: string;
  readonly platform: Platform;
  readonly server: Server;
  /** Drains: stops accepting, finishes running invocations, stops instances. Idempotent. */
  close(): Promise<void>;
  /** Aborts: kills instances and connections now. Idempotent. */
  destroy(): Promise<void>;
}

const HEADERS_TIMEOUT_MS = 10_000;
const REQUEST_TIMEOUT_MS = 120_000;

/** host[:port] as RFC 9110 allows it (a reg-name, IPv4 or a bracketed IPv6 literal), or null. */
export function parseHost(value: string | undefined): { hostname: string; port: number | null } | null {
  if (!value) return null;
  const m = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._~-]+)(?::(\d{1,5}))?$/.exec(value);
  if (!m) return null;
  const port = m[2] === undefined ? null : Number(m[2]);
  if (port !== null && port > 65535) return null;
  return { hostname: m[1].toLowerCase(), port };
}

export async function startThaw(userOptions: UserOptions = {}): Promise<RunningThaw> {
  const options = resolveOptions(userOptions);
  const platform = await Platform.start(options);
  if (!isLoopbackHost(options.host.includes(':') ? `[${options.host}]` : options.host) && !(await platform.keys.active())) {
    await platform.destroy();
    throw new ThawError('THAW_E_CONFIG_INVALID', `refusing to listen on ${options.host} with no access key: anyone who can reach it could deploy and run code. Create one first (thaw keys create --data ${options.dataDir} --role admin), or listen on 127.0.0.1`);
  }
  const redact = (s: string) => s.replaceAll(options.cacheDir, '<cache>').replaceAll(options.dataDir, '<data>');
  let url = '';
  let listening = { host: options.host, port: options.port };
  const gate = new Gatekeeper(platform.keys, () => listening, () => platform.clock.now(), policyGrant(platform.store));
  // Large enough for any route's body (a package upload); each route then applies its own limit.
  const maxBodyBytes = Math.ceil(options.maxPackageBytes * 4 / 3) + 1024 * 1024;
  const router = new Router();
  thawRoutes(router, platform);
  logRoutes(router, platform);
  clusterRoutes(router, platform);
  networkRoutes(router, platform);
  securityGroupRoutes(router, platform);
  lambdaRoutes(router, platform, () => url);
  lambdaStreamingRoutes(router, platform);
  layerRoutes(router, platform, () => url);
  eventConfigRoutes(router, platform);
  permissionRoutes(router, platform);
  // Before the triggers: /lambda-url/... would otherwise read as an HTTP trigger of a function named lambda-url.
  functionUrlRoutes(router, platform, gate);
  // Before the triggers too: /metrics is Thaw's, not the HTTP trigger of a function named metrics.
  metricsRoutes(router, platform, gate);
  // The dashboard at / and /dashboard/* (a reserved name, so no function's trigger path).
  dashboardRoutes(router);
  simRoutes(router, platform);
  managementRoutes(router, platform);
  triggerRoutes(router, platform);

  const server = createServer({
    keepAliveTimeout: 30_000,
    // A client that sends its headers slowly, or never finishes its body, is dropped rather than held.
    headersTimeout: HEADERS_TIMEOUT_MS,
    requestTimeout: REQUEST_TIMEOUT_MS,
    // How often those timeouts are checked (Node's default, 30 s, would hold a slow client up to 40 s).
    connectionsCheckingInterval: 1000,
  }, (req, res) => {
    const receivedMono = platform.clock.monotonic();
    const abort = new AbortController();
    res.on('close', () => { if (!res.writableFinished) abort.abort(); });
    // The URL is parsed against a fixed base: the Host header is the client's to get wrong (checked below).
    let parsed: URL;
    let bad: ThawError | null = null;
    try { parsed = new URL(req.url ?? '/', 'http://thaw.invalid'); } catch { parsed = new URL('http://thaw.invalid/'); bad = new ThawError('THAW_E_REQUEST_INVALID', 'the request target is not a valid path'); }
    const ctx: RequestContext = {
      req, res, url: parsed, params: {}, signal: abort.signal,
      requestId: newInvocationId(), receivedMono, receivedAt: platform.clock.now(),
    };
    let run: Promise<void>;
    try {
      if (bad) throw bad;
      const host = parseHost(req.headers.host);
      if (!host) throw new ThawError('THAW_E_HEADER_INVALID', 'the Host header is missing or not a host[:port]');
      const rawPath = (req.url ?? '/').split('?')[0];
      run = gate.check(req, host, req.headers.host!, parsed, rawPath, () => prereadBody(req, maxBodyBytes)).then(() => {
        const match = router.match(req.method ?? 'GET', parsed.pathname);
        if ('handler' in match) { ctx.params = match.params; return match.handler(ctx); }
        throw match.allow.length
          ? new ThawError('THAW_E_METHOD_NOT_ALLOWED', `${req.method} is not allowed on ${parsed.pathname}; use ${match.allow.join(', ')}`, { details: { allow: match.allow } })
          : new ThawError('THAW_E_ROUTE_NOT_FOUND', `no route for ${req.method} ${parsed.pathname}`);
      });
    } catch (err) {
      run = Promise.reject(err);
    }
    run.catch((err) => {
      // Drain the rest of a refused body so the connection can carry the error back.
      req.resume();
      sendError(ctx, err, redact);
    }).finally(() => {
      if (options.accessLog) process.stderr.write(`${req.method} ${parsed.pathname} ${res.statusCode} ${(platform.clock.monotonic() - receivedMono).toFixed(1)}ms\n`);
    });
  });

  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, options.host, () => { server.off('error', reject); resolve(); });
    });
  } catch (err) {
    // Not serving: nothing of this server may go on running (its event worker would consume the queue).
    await platform.destroy();
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'EADDRINUSE') throw new ThawError('THAW_E_CONFIG_INVALID', `port ${options.port} on ${options.host} is in use; stop what listens there or choose another --port`);
    throw err;
  }
  const { port } = server.address() as AddressInfo;
  listening = { host: options.host, port };
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
