// The dashboard's files at `/` (the page) and `/dashboard/*` (its modules and styles), with their content
// types, a strict Content-Security-Policy and validators (src/web owns the files and the headers). They hold
// no data and no secret: with access keys the page signs its own API calls (src/web/assets/sigv4.js), so the
// files themselves are served as the Gatekeeper lets any non-API path through. Imports src/core, src/web.
import { ThawError } from '../core/errors.ts';
import { DASHBOARD_HEADERS, loadAssets, type Asset } from '../web/index.ts';
import type { RequestContext, Router } from './http.ts';

export function dashboardRoutes(router: Router, assets: ReadonlyMap<string, Asset> = loadAssets()): void {
  const serve = (ctx: RequestContext, name: string) => {
    const asset = assets.get(name);
    if (!asset) throw new ThawError('THAW_E_ROUTE_NOT_FOUND', `the dashboard has no file ${name}`);
    const headers = { ...DASHBOARD_HEADERS, etag: asset.etag };
    if (ctx.req.headers['if-none-match'] === asset.etag) {
      ctx.res.writeHead(304, headers);
      ctx.res.end();
      return;
    }
    ctx.res.writeHead(200, { ...headers, 'content-type': asset.contentType, 'content-length': asset.body.length });
    ctx.res.end(ctx.req.method === 'HEAD' ? undefined : asset.body);
  };
  for (const method of ['GET', 'HEAD']) {
    router.on(method, '/', async (ctx) => serve(ctx, 'index.html'));
    router.on(method, '/dashboard/{file+}', async (ctx) => serve(ctx, ctx.params.file || 'index.html'));
  }
}
