// Thaw's own API under /thaw/v1: invocation records and their phases, logs, instances, call graph,
// package download. JSON in and out; the CLI and the dashboard use it.
import { ThawError } from '../core/errors.ts';
import { readJson, sendJson, sendObject, type Router } from './http.ts';
import { keyView } from './keys.ts';
import type { Platform } from './platform.ts';
import { tailRoutes } from './thaw-tail.ts';
import { explain } from './why.ts';

/** Recorded invocations `thaw why` replays: the newest up to the one asked about. */
const WHY_HISTORY = 1000;

const intParam = (v: string | null, name: string, def: number, max: number): number => {
  if (v === null || v === '') return def;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new ThawError('THAW_E_REQUEST_INVALID', `${name} must be a non-negative integer`);
  return Math.min(n, max);
};

export function thawRoutes(router: Router, platform: Platform): void {
  const { store, control } = platform;
  tailRoutes(router, platform);

  router.on('GET', '/thaw/v1/health', async (ctx) => {
    sendJson(ctx, 200, { status: platform.agent.closing ? 'draining' : 'ok', store: store.kind, instances: platform.executor.instances().length });
  });

  // Access keys (admin only, see auth.ts): the secret is shown once, in the reply that creates it.
  router.on('POST', '/thaw/v1/keys', async (ctx) => {
    const body = await readJson(ctx.req, 64 * 1024);
    const role = body.Role ?? body.role ?? 'developer';
    const fns = body.Functions ?? body.functions ?? null;
    if (fns !== null && (!Array.isArray(fns) || fns.some((f) => typeof f !== 'string'))) throw new ThawError('THAW_E_REQUEST_INVALID', 'Functions must be a list of function names');
    for (const f of (fns as string[] | null) ?? []) await control.getFunction(f);
    const { key, secret } = await platform.keys.create(role as never, fns as string[] | null, platform.clock.now());
    sendJson(ctx, 201, { ...keyView(key), SecretAccessKey: secret });
  });

  router.on('GET', '/thaw/v1/keys', async (ctx) => {
    sendJson(ctx, 200, { keys: (await platform.keys.list()).map(keyView) });
  });

  router.on('DELETE', '/thaw/v1/keys/{id}', async (ctx) => {
    await platform.keys.revoke(ctx.params.id, platform.clock.now());
    sendJson(ctx, 204, undefined);
  });

  router.on('GET', '/thaw/v1/invocations', async (ctx) => {
    const q = ctx.url.searchParams;
    const fn = q.get('function') ?? undefined;
    if (fn) await control.getFunction(fn);
    await platform.recorder.flush();
    const invocations = await store.listInvocations({ functionName: fn, limit: intParam(q.get('limit'), 'limit', 50, 1000), before: q.get('before') ? intParam(q.get('before'), 'before', 0, Number.MAX_SAFE_INTEGER) : undefined });
    sendJson(ctx, 200, { invocations });
  });

  // The id is the caller's: quoted and cut short in the message, whatever it holds.
  const notFound = (id: string) => new ThawError('THAW_E_INVOCATION_NOT_FOUND', `no invocation ${JSON.stringify(id.length > 80 ? `${id.slice(0, 80)}…` : id)} is recorded (records are kept for the newest ${platform.options.keepInvocations}; ids are in X-Thaw-Invocation-Id and thaw logs)`);

  router.on('GET', '/thaw/v1/invocations/{id}', async (ctx) => {
    const rec = await platform.recorder.getInvocation(ctx.params.id);
    if (!rec) throw notFound(ctx.params.id);
    sendJson(ctx, 200, rec);
  });

  // Why it was cold (or warm), with what would have avoided it: `thaw why`.
  router.on('GET', '/thaw/v1/invocations/{id}/why', async (ctx) => {
    await platform.recorder.flush();
    const rec = await platform.recorder.getInvocation(ctx.params.id);
    if (!rec) throw notFound(ctx.params.id);
    // The newest records up to it, not the newest overall: an old invocation of a busy function is replayed with its own past.
    const before = rec.receivedAt + 1;
    const [fnRecords, fn] = await Promise.all([store.listInvocations({ functionName: rec.functionName, limit: WHY_HISTORY, before }), store.getFunction(rec.functionName)]);
    sendJson(ctx, 200, await explain(rec, { fn: fnRecords, node: () => store.listInvocations({ limit: WHY_HISTORY, before }), createdAt: fn?.createdAt ?? null }));
  });

  router.on('GET', '/thaw/v1/functions/{name}/logs', async (ctx) => {
    const q = ctx.url.searchParams;
    await control.getFunction(ctx.params.name);
    await platform.recorder.flush();
    const lines = await store.readLogs({
      functionName: ctx.params.name,
      afterSeq: q.get('after') === null ? undefined : intParam(q.get('after'), 'after', 0, Number.MAX_SAFE_INTEGER),
      invocationId: q.get('invocation') ?? undefined,
      limit: intParam(q.get('limit'), 'limit', 200, 5000),
    });
    sendJson(ctx, 200, { lines, next: lines.length ? lines[lines.length - 1].seq : Number(q.get('after') ?? 0) });
  });

  router.on('GET', '/thaw/v1/functions/{name}/snapshots', async (ctx) => {
    await control.getFunction(ctx.params.name);
    const recs = await platform.agent.snapshots.list(ctx.params.name);
    const snapshots = await Promise.all(recs.map((r) => platform.agent.snapshots.status(r.functionName, r.version)));
    sendJson(ctx, 200, { enabled: platform.agent.snapshots.enabled, snapshots });
  });

  router.on('GET', '/thaw/v1/node', async (ctx) => {
    sendJson(ctx, 200, { sandbox: { ...platform.driver.report(), fallback: platform.options.sandboxFallback }, network: platform.network?.view() ?? null, pagedTier: platform.pagedTier(), memory: platform.memoryByTier(), tierCosts: platform.agent.tierCosts(), pool: platform.agent.pool(), codeCache: platform.cache.stats(), instances: platform.executor.instances().length, cluster: platform.fleet?.view() ?? null, snapshots: platform.agent.snapshots.enabled, origin: { kind: platform.blobs.kind, location: platform.blobs.location } });
  });

  router.on('GET', '/thaw/v1/instances', async (ctx) => {
    sendJson(ctx, 200, { instances: platform.instanceViews(), pool: platform.agent.pool() });
  });

  router.on('GET', '/thaw/v1/calls', async (ctx) => {
    sendJson(ctx, 200, { calls: await store.listCalls(ctx.url.searchParams.get('caller') ?? undefined) });
  });

  router.on('GET', '/thaw/v1/events', async (ctx) => {
    sendJson(ctx, 200, { queued: await store.countEvents(), redeliveries: platform.events.redeliveries, recent: platform.events.history.slice(-100) });
  });

  // Policies: the spec in force per function, what the engine has learned, and its recent decisions.
  const policyView = async (name: string) => {
    await control.getFunction(name);
    const state = platform.agent.policies.state(name, platform.clock.monotonic());
    const now = platform.clock.now();
    return { functionName: name, ...state, decisions: platform.executor.decisions(name, 50).map((d) => ({ ...d, agoMs: Math.max(0, now - d.wallAt) })) };
  };

  router.on('GET', '/thaw/v1/functions/{name}/policy', async (ctx) => {
    sendJson(ctx, 200, await policyView(ctx.params.name));
  });

  router.on('PUT', '/thaw/v1/functions/{name}/policy', async (ctx) => {
    const body = await readJson(ctx.req, 4096);
    if (typeof body.policy !== 'string' && body.policy !== null) throw new ThawError('THAW_E_REQUEST_INVALID', 'send {"policy": "<spec>"} (e.g. "hybrid:4h"), or {"policy": null} for the node default');
    await platform.putPolicy(ctx.params.name, body.policy as string | null);
    sendJson(ctx, 200, await policyView(ctx.params.name));
  });

  router.on('DELETE', '/thaw/v1/functions/{name}/policy', async (ctx) => {
    await platform.putPolicy(ctx.params.name, null);
    sendJson(ctx, 200, await policyView(ctx.params.name));
  });

  router.on('GET', '/thaw/v1/decisions', async (ctx) => {
    const q = ctx.url.searchParams;
    sendJson(ctx, 200, { decisions: platform.executor.decisions(q.get('function') ?? undefined, intParam(q.get('limit'), 'limit', 100, 1000)) });
  });

  // Timer triggers and scheduled warm-ups.
  router.on('GET', '/thaw/v1/functions/{name}/schedules', async (ctx) => {
    await control.getFunction(ctx.params.name);
    const fired = platform.schedules.history;
    sendJson(ctx, 200, { schedules: platform.schedules.list(ctx.params.name).map((s) => ({ ...s, recent: fired.filter((h) => h.id === s.id).slice(-5) })) });
  });

  router.on('POST', '/thaw/v1/functions/{name}/schedules', async (ctx) => {
    const name = ctx.params.name;
    await control.getFunction(name);
    const body = await readJson(ctx.req, 300 * 1024);
    if (typeof body.expression !== 'string') throw new ThawError('THAW_E_SCHEDULE_INVALID', 'send {"expression": "rate(5 minutes)"} or a cron expression, with "kind": "invoke" or "warmup"');
    const qualifier = body.qualifier === undefined ? undefined : String(body.qualifier);
    if (qualifier) await control.resolve(name, qualifier);
    const payload = body.payload === undefined || body.payload === null ? null : JSON.stringify(body.payload);
    if (payload !== null && Buffer.byteLength(payload) > 256 * 1024) throw new ThawError('THAW_E_PAYLOAD_TOO_LARGE', 'a scheduled payload is at most 256 KB, as an asynchronous one');
    const s = await platform.schedules.add(name, { expression: body.expression, kind: body.kind as 'invoke' | 'warmup' | undefined, qualifier, payload });
    sendJson(ctx, 201, s);
  });

  router.on('DELETE', '/thaw/v1/functions/{name}/schedules/{id}', async (ctx) => {
    await platform.schedules.remove(ctx.params.name, ctx.params.id);
    sendJson(ctx, 204, undefined);
  });

  router.on('GET', '/thaw/v1/code/{sha}', async (ctx) => {
    await sendObject(ctx, platform.blobs, ctx.params.sha, 'package');
  });
}
