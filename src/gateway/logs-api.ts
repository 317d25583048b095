// A function's log retention, Thaw's setting beside LoggingConfig (Lambda keeps retention on the CloudWatch
// log group, which Thaw does not have): GET/PUT /thaw/v1/functions/{name}/logs/retention. Lines older than
// it go with the store's log pruning, beside the per-function line cap. Imports src/core and the gateway's plumbing.
import { ThawError } from '../core/errors.ts';
import { readJson, sendJson, type Router } from './http.ts';
import type { Platform } from './platform.ts';

/** Ten years: CloudWatch's longest retention short of "never expire" (null here). */
const MAX_RETENTION_DAYS = 3653;

export function logRoutes(router: Router, platform: Platform): void {
  const view = async (name: string) => {
    const fn = await platform.control.getFunction(name);
    return { functionName: fn.name, retentionInDays: fn.logRetentionDays ?? null, maxLinesKept: platform.options.keepLogLinesPerFunction };
  };

  router.on('GET', '/thaw/v1/functions/{name}/logs/retention', async (ctx) => {
    sendJson(ctx, 200, await view(ctx.params.name));
  });

  router.on('PUT', '/thaw/v1/functions/{name}/logs/retention', async (ctx) => {
    const body = await readJson(ctx.req, 4096);
    const days = body.retentionInDays;
    if (!('retentionInDays' in body) || (days !== null && !(Number.isInteger(days) && (days as number) >= 1 && (days as number) <= MAX_RETENTION_DAYS))) {
      throw new ThawError('THAW_E_REQUEST_INVALID', `send {"retentionInDays": N} with N a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or {"retentionInDays": null} to keep lines without an age limit; got ${JSON.stringify(body).slice(0, 100)}`, { details: { field: 'retentionInDays' } });
    }
    await platform.control.getFunction(ctx.params.name);
    await platform.store.setLogRetention(ctx.params.name, days as number | null);
    // At once, rather than at the next prune: what the user asked to be gone is gone when this answers.
    await platform.recorder.flush();
    await platform.recorder.prune();
    sendJson(ctx, 200, await view(ctx.params.name));
  });
}
