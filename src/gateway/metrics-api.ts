// GET /metrics: the Prometheus exposition of Platform.metrics. Who may read it: with no access key, the
// Gatekeeper's loopback and Host rules (like every path); once keys exist, a scraper that shows the
// --metrics-token as a bearer token (Prometheus cannot sign with SigV4), or any request signed by a key
// that may read. Imports src/core and the gateway's plumbing.
import { timingSafeEqual, createHash } from 'node:crypto';
import { ThawError } from '../core/errors.ts';
import { permits, type Gatekeeper } from './auth.ts';
import type { RequestContext, Router } from './http.ts';
import type { Platform } from './platform.ts';

export function metricsRoutes(router: Router, platform: Platform, gate: Gatekeeper): void {
  router.on('GET', '/metrics', async (ctx) => {
    await authorize(ctx, platform, gate);
    const text = await platform.metrics.scrape();
    ctx.res.writeHead(200, { 'content-type': platform.metrics.contentType, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
    ctx.res.end(text);
  });
}

/** Throws unless the caller may read metrics (see the header); with no key the Gatekeeper has decided already. */
async function authorize(ctx: RequestContext, platform: Platform, gate: Gatekeeper): Promise<void> {
  if (!(await platform.keys.active())) return;
  const auth = ctx.req.headers.authorization ?? '';
  const bearer = /^Bearer\s+(\S+)$/i.exec(auth)?.[1];
  if (bearer !== undefined) {
    const token = platform.options.metricsToken;
    if (token === null || !sameSecret(bearer, token)) throw new ThawError('THAW_E_METRICS_TOKEN_INVALID', token === null ? 'this Thaw was started without --metrics-token, so /metrics takes only signed requests' : 'the bearer token is not the metrics token');
    return;
  }
  const rawPath = (ctx.req.url ?? '/').split('?')[0];
  const { key } = await gate.signedKey(ctx.req, ctx.req.headers.host ?? '', ctx.url, rawPath, async () => Buffer.alloc(0));
  if (!permits(key, 'read', null)) throw new ThawError('THAW_E_AUTH_DENIED', `access key ${key.id} (role ${key.role}${key.functions ? `, functions ${key.functions.join(', ')}` : ''}) may not read metrics, which span every function`);
}

/** Compared in constant time, over digests so the lengths do not leak either. */
const sameSecret = (a: string, b: string) => timingSafeEqual(createHash('sha256').update(a).digest(), createHash('sha256').update(b).digest());
