// Lambda's asynchronous-invocation configuration API (2019-09-25: Put, Update, Get, Delete and
// ListFunctionEventInvokeConfigs) and Thaw's dead letters (/thaw/v1/functions/{name}/dead-letters: list,
// read, delete, redrive). Imports src/core and the gateway's plumbing.
import { ACCOUNT_ID, functionArn, parseFunctionRef } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import { LATEST, type EventInvokeConfig } from '../core/types.ts';
import { DEFAULT_MAX_EVENT_AGE_S, DEFAULT_MAX_RETRIES } from './events.ts';
import { functionTarget, optNumber, optObject, optString, readJson, sendJson, type RequestContext, type Router } from './http.ts';
import type { Platform } from './platform.ts';
import { checkRequestFields } from './lambda-management-api.ts';

const BODY_BYTES = 64 * 1024;

export function eventConfigRoutes(router: Router, platform: Platform): void {
  const { control, store } = platform;
  const region = platform.options.region;
  const base = '/2019-09-25/functions/{name}/event-invoke-config';

  const target = async (ctx: RequestContext) => {
    const t = functionTarget(ctx);
    const qualifier = t.qualifier ?? LATEST;
    if (qualifier === LATEST) await control.getFunction(t.name);
    else await control.getVersion(t.name, qualifier);
    return { name: t.name, qualifier };
  };

  const shape = (c: EventInvokeConfig) => ({
    LastModified: c.updatedAt / 1000,
    FunctionArn: functionArn(region, c.functionName, c.qualifier),
    MaximumRetryAttempts: c.maximumRetryAttempts,
    MaximumEventAgeInSeconds: c.maximumEventAgeSeconds,
    DestinationConfig: {
      ...(c.onSuccess ? { OnSuccess: { Destination: c.onSuccess } } : {}),
      ...(c.onFailure ? { OnFailure: { Destination: c.onFailure } } : {}),
    },
  });

  /** A destination: another function of this Thaw (its ARN or name), which must exist. */
  const destination = async (d: Record<string, unknown> | undefined, which: string): Promise<string | null | undefined> => {
    if (d === undefined) return undefined;
    const arn = optString(d, 'Destination');
    if (arn === undefined || arn === '') return null;
    if (/^arn:[^:]+:(sqs|sns|events|s3):/.test(arn)) throw new ThawError('THAW_E_REQUEST_INVALID', `${which}.Destination: only functions are destinations on Thaw (SQS, SNS, EventBridge and S3 are not), got ${arn}`);
    const full = /^arn:[^:]+:lambda:([^:]*):([^:]*):function:/.exec(arn);
    if (full && (full[1] !== region || full[2] !== ACCOUNT_ID)) throw new ThawError('THAW_E_REQUEST_INVALID', `${which}.Destination: ${arn} is not a function of this Thaw (region ${region}, account ${ACCOUNT_ID})`);
    const ref = parseFunctionRef(arn);
    if (ref.qualifier && ref.qualifier !== LATEST) await control.getVersion(ref.name, ref.qualifier).catch(() => control.resolve(ref.name, ref.qualifier));
    else await control.getFunction(ref.name);
    return arn;
  };

  /** Reads and checks the settings given; `merge` keeps what a previous config had for the rest (Update). */
  const settings = async (ctx: RequestContext, name: string, qualifier: string, previous: EventInvokeConfig | null): Promise<EventInvokeConfig> => {
    const body = await readJson(ctx.req, BODY_BYTES);
    checkRequestFields(previous ? 'UpdateFunctionEventInvokeConfig' : 'PutFunctionEventInvokeConfig', body);
    const retries = optNumber(body, 'MaximumRetryAttempts');
    const age = optNumber(body, 'MaximumEventAgeInSeconds');
    if (retries !== undefined && (!Number.isInteger(retries) || retries < 0 || retries > 2)) throw new ThawError('THAW_E_REQUEST_INVALID', `MaximumRetryAttempts must be 0, 1 or 2, got ${retries}`);
    if (age !== undefined && (!Number.isInteger(age) || age < 60 || age > 21_600)) throw new ThawError('THAW_E_REQUEST_INVALID', `MaximumEventAgeInSeconds must be 60-21600, got ${age}`);
    const dc = optObject(body, 'DestinationConfig');
    const onSuccess = await destination(dc ? optObject(dc, 'OnSuccess') : undefined, 'OnSuccess');
    const onFailure = await destination(dc ? optObject(dc, 'OnFailure') : undefined, 'OnFailure');
    return {
      functionName: name, qualifier,
      maximumRetryAttempts: retries ?? previous?.maximumRetryAttempts ?? DEFAULT_MAX_RETRIES,
      maximumEventAgeSeconds: age ?? previous?.maximumEventAgeSeconds ?? DEFAULT_MAX_EVENT_AGE_S,
      onSuccess: onSuccess === undefined ? previous?.onSuccess ?? null : onSuccess,
      onFailure: onFailure === undefined ? previous?.onFailure ?? null : onFailure,
      updatedAt: platform.clock.now(),
    };
  };

  const notFound = (name: string, qualifier: string) => new ThawError('THAW_E_EVENT_CONFIG_NOT_FOUND', `function ${name}:${qualifier} has no event invoke config`);

  router.on('PUT', base, async (ctx) => {
    const t = await target(ctx);
    const cfg = await settings(ctx, t.name, t.qualifier, null);
    await store.putEventInvokeConfig(cfg);
    sendJson(ctx, 200, shape(cfg));
  });

  router.on('POST', base, async (ctx) => {
    const t = await target(ctx);
    const previous = await store.getEventInvokeConfig(t.name, t.qualifier);
    if (!previous) throw notFound(t.name, t.qualifier);
    const cfg = await settings(ctx, t.name, t.qualifier, previous);
    await store.putEventInvokeConfig(cfg);
    sendJson(ctx, 200, shape(cfg));
  });

  router.on('GET', `${base}/list`, async (ctx) => {
    const { name } = parseFunctionRef(ctx.params.name);
    await control.getFunction(name);
    sendJson(ctx, 200, { FunctionEventInvokeConfigs: (await store.listEventInvokeConfigs(name)).map(shape) });
  });

  router.on('GET', base, async (ctx) => {
    const t = await target(ctx);
    const cfg = await store.getEventInvokeConfig(t.name, t.qualifier);
    if (!cfg) throw notFound(t.name, t.qualifier);
    sendJson(ctx, 200, shape(cfg));
  });

  router.on('DELETE', base, async (ctx) => {
    const t = await target(ctx);
    if (!(await store.deleteEventInvokeConfig(t.name, t.qualifier))) throw notFound(t.name, t.qualifier);
    sendJson(ctx, 204, undefined);
  });

  // Dead letters: events that failed for good, with why.
  router.on('GET', '/thaw/v1/functions/{name}/dead-letters', async (ctx) => {
    await control.getFunction(ctx.params.name);
    const limit = Math.min(1000, Number(ctx.url.searchParams.get('limit') ?? 100) || 100);
    sendJson(ctx, 200, { deadLetters: await store.listDeadLetters(ctx.params.name, limit) });
  });

  const letter = async (ctx: RequestContext) => {
    const d = await store.getDeadLetter(ctx.params.id);
    if (!d || d.functionName !== ctx.params.name) throw new ThawError('THAW_E_DEAD_LETTER_NOT_FOUND', `function ${ctx.params.name} has no dead letter ${ctx.params.id}`);
    return d;
  };

  router.on('DELETE', '/thaw/v1/functions/{name}/dead-letters/{id}', async (ctx) => {
    await letter(ctx);
    await store.deleteDeadLetter(ctx.params.id);
    sendJson(ctx, 204, undefined);
  });

  /** Queues the event again (a new delivery, a new id) and removes the dead letter. */
  router.on('POST', '/thaw/v1/functions/{name}/dead-letters/{id}/redrive', async (ctx) => {
    const d = await letter(ctx);
    const id = await platform.events.enqueue(d.functionName, d.qualifier, d.payload);
    await store.deleteDeadLetter(d.id);
    sendJson(ctx, 202, { redriven: d.id, invocationId: id });
  });
}
