// Function URLs: the management API (2021-10-31: Create, Get, Update, Delete and ListFunctionUrlConfigs) and
// the serving of http://HOST:PORT/lambda-url/{urlId}/{path}: auth by the URL's AuthType (NONE: the
// function's public lambda:InvokeFunctionUrl permission, as on Lambda since 2022; AWS_IAM: a SigV4
// signature), CORS from the URL's config, and the payload format 2.0 event through the HTTP triggers' own
// path (triggers.ts invokeHttpEvent). Path-based, not host-based: the URL works wherever Thaw's endpoint
// does, with no DNS. Imports src/core and the gateway's plumbing.
import { randomBytes } from 'node:crypto';
import { ACCOUNT_ID, functionArn, parseFunctionRef } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import { LATEST, type AccessKey, type FunctionUrlCors, type FunctionUrlRecord } from '../core/types.ts';
import { permits, type Gatekeeper } from './auth.ts';
import { checkFields, functionTarget, listPage, optString, prereadBody, readJson, sendJson, type RequestContext, type Router } from './http.ts';
import { keyPrincipal, policyAllows } from './lambda-permissions-api.ts';
import { MAX_SYNC_PAYLOAD_BYTES, type Platform } from './platform.ts';
import { invokeHttpEvent, writeHttpResponse, type HttpResponse } from './triggers.ts';
import { HttpStreamResponse } from './lambda-streaming-api.ts';

const BODY_BYTES = 64 * 1024;
export const URL_PREFIX = '/lambda-url/';
const URL_ID_ALPHABET = 'abcdefghijklmnopqrstuvwxyz234567';
const AUTH_TYPES = ['NONE', 'AWS_IAM'] as const;
const INVOKE_MODES = ['BUFFERED', 'RESPONSE_STREAM'] as const;
const URL_FIELDS = ['AuthType', 'Cors', 'InvokeMode'];
const CORS_FIELDS = ['AllowCredentials', 'AllowHeaders', 'AllowMethods', 'AllowOrigins', 'ExposeHeaders', 'MaxAge'];
const CORS_METHODS = ['GET', 'PUT', 'HEAD', 'POST', 'PATCH', 'DELETE', 'OPTIONS', '*'];
const HEADER_NAME = /^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,1024}$/;

/** 32 lowercase letters and digits, like Lambda's URL ids (and as unguessable: 160 random bits). */
const newUrlId = () => [...randomBytes(32)].map((b) => URL_ID_ALPHABET[b & 31]).join('');

const bad = (message: string) => new ThawError('THAW_E_REQUEST_INVALID', message);

/** Lambda's Cors object, checked field by field; an empty one is no CORS. undefined when not given. */
export function corsOf(v: unknown, op: string): FunctionUrlCors | null | undefined {
  if (v === undefined) return undefined;
  if (v === null) return null;
  if (typeof v !== 'object' || Array.isArray(v)) throw bad('Cors must be an object');
  const c = v as Record<string, unknown>;
  const list = (k: string, max: number, ok: (s: string) => boolean, shape: string) => {
    const x = c[k];
    if (x === undefined || x === null) return undefined;
    if (!Array.isArray(x) || x.length > max || !x.every((s) => typeof s === 'string' && ok(s))) throw bad(`Cors.${k} must be a list of at most ${max} ${shape}, got ${JSON.stringify(x)}`);
    return x as string[];
  };
  const out: { -readonly [K in keyof FunctionUrlCors]: FunctionUrlCors[K] } = {};
  checkFields(`${op}'s Cors`, c, CORS_FIELDS);
  if (c.AllowCredentials !== undefined && c.AllowCredentials !== null) {
    if (typeof c.AllowCredentials !== 'boolean') throw bad('Cors.AllowCredentials must be true or false');
    out.AllowCredentials = c.AllowCredentials;
  }
  out.AllowHeaders = list('AllowHeaders', 100, (s) => HEADER_NAME.test(s), 'header names');
  out.AllowMethods = list('AllowMethods', 6, (s) => CORS_METHODS.includes(s), `methods (${CORS_METHODS.join(', ')})`);
  out.AllowOrigins = list('AllowOrigins', 100, (s) => s === '*' || /^[a-z][a-z0-9+.-]*:\/\/[^\s/]{1,253}$/i.test(s), 'origins ("*" or scheme://host[:port])');
  out.ExposeHeaders = list('ExposeHeaders', 100, (s) => HEADER_NAME.test(s), 'header names');
  if (c.MaxAge !== undefined && c.MaxAge !== null) {
    if (!Number.isInteger(c.MaxAge) || (c.MaxAge as number) < 0 || (c.MaxAge as number) > 86_400) throw bad(`Cors.MaxAge must be 0-86400 seconds, got ${JSON.stringify(c.MaxAge)}`);
    out.MaxAge = c.MaxAge as number;
  }
  const set = Object.fromEntries(Object.entries(out).filter(([, x]) => x !== undefined)) as FunctionUrlCors;
  return Object.keys(set).length ? set : null;
}

/** The CORS headers of a response to a request from `origin` (none when the origin is not allowed). */
export function corsHeaders(cors: FunctionUrlCors, origin: string | undefined): Record<string, string> {
  const origins = cors.AllowOrigins ?? [];
  const any = origins.includes('*');
  if (!origin || (!any && !origins.some((o) => o.toLowerCase() === origin.toLowerCase()))) return {};
  return {
    // A credentialed request may not be answered with "*": the origin itself is.
    'access-control-allow-origin': any && !cors.AllowCredentials ? '*' : origin,
    ...(cors.AllowCredentials ? { 'access-control-allow-credentials': 'true' } : {}),
    ...(cors.ExposeHeaders?.length ? { 'access-control-expose-headers': cors.ExposeHeaders.join(',') } : {}),
  };
}

/** The answer to a CORS preflight, which Lambda gives itself when the URL has CORS (the function is not run). */
export function preflightHeaders(cors: FunctionUrlCors, origin: string, method: string): Record<string, string> {
  const { 'access-control-expose-headers': _, ...base } = corsHeaders(cors, origin);
  const methods = cors.AllowMethods ?? [];
  if (!base['access-control-allow-origin'] || !(methods.includes('*') || methods.includes(method.toUpperCase()))) return {};
  return {
    ...base,
    'access-control-allow-methods': methods.join(','),
    ...(cors.AllowHeaders?.length ? { 'access-control-allow-headers': cors.AllowHeaders.join(',') } : {}),
    ...(cors.MaxAge !== undefined ? { 'access-control-max-age': String(cors.MaxAge) } : {}),
  };
}

/** With CORS configured, the URL's settings decide every Access-Control-* header (the function's own are dropped). */
function withCors(response: HttpResponse, cors: FunctionUrlCors, origin: string | undefined): HttpResponse {
  const headers = Object.fromEntries(Object.entries(response.headers).filter(([k]) => !k.startsWith('access-control-')));
  return { ...response, headers: { ...headers, ...corsHeaders(cors, origin), vary: 'Origin' } };
}

export function functionUrlRoutes(router: Router, platform: Platform, gate: Gatekeeper): void {
  const { control, store } = platform;
  const region = platform.options.region;
  const base = '/2021-10-31/functions/{name}/url';
  const iso = (ms: number) => new Date(ms).toISOString();

  /** The URL is on the endpoint the client used to reach Thaw (the Host it sent), so it works for that client. */
  const urlOf = (ctx: RequestContext, u: FunctionUrlRecord) => `http://${ctx.req.headers.host}${URL_PREFIX}${u.urlId}/`;

  const shape = (ctx: RequestContext, u: FunctionUrlRecord, withModified = true) => ({
    FunctionUrl: urlOf(ctx, u),
    FunctionArn: functionArn(region, u.functionName, u.qualifier),
    AuthType: u.authType,
    ...(u.cors ? { Cors: u.cors } : {}),
    CreationTime: iso(u.createdAt),
    ...(withModified ? { LastModifiedTime: iso(u.updatedAt) } : {}),
    InvokeMode: u.invokeMode,
  });

  /** $LATEST or an alias, which must exist; a version number is refused, as on Lambda. */
  const target = async (ctx: RequestContext) => {
    const t = functionTarget(ctx);
    const qualifier = t.qualifier ?? LATEST;
    if (/^\d+$/.test(qualifier)) throw new ThawError('THAW_E_QUALIFIER_INVALID', `a function URL is for $LATEST or an alias, not a version number (got ${qualifier}); point an alias at the version and give its name as Qualifier`);
    if (qualifier === LATEST) await control.getFunction(t.name);
    else await control.getAlias(t.name, qualifier);
    return { name: t.name, qualifier };
  };

  /** The settings of a Create (AuthType required) or an Update (what is given replaces, the rest stays). */
  const settings = async (ctx: RequestContext, previous: FunctionUrlRecord | null) => {
    const body = await readJson(ctx.req, BODY_BYTES);
    const op = previous ? 'UpdateFunctionUrlConfig' : 'CreateFunctionUrlConfig';
    checkFields(op, body, URL_FIELDS);
    const authType = optString(body, 'AuthType');
    if (authType === undefined && !previous) throw bad('AuthType is required: NONE (public, with the lambda:InvokeFunctionUrl permission) or AWS_IAM (SigV4-signed requests)');
    if (authType !== undefined && !(AUTH_TYPES as readonly string[]).includes(authType)) throw bad(`AuthType must be NONE or AWS_IAM, got ${JSON.stringify(authType)}`);
    const invokeMode = optString(body, 'InvokeMode');
    if (invokeMode !== undefined && !(INVOKE_MODES as readonly string[]).includes(invokeMode)) throw bad(`InvokeMode must be BUFFERED or RESPONSE_STREAM, got ${JSON.stringify(invokeMode)}`);
    const cors = corsOf(body.Cors, op);
    return {
      authType: (authType ?? previous!.authType) as FunctionUrlRecord['authType'],
      cors: cors === undefined ? previous?.cors ?? null : cors,
      invokeMode: (invokeMode ?? previous?.invokeMode ?? 'BUFFERED') as FunctionUrlRecord['invokeMode'],
    };
  };

  const notFound = (name: string, qualifier: string) => new ThawError('THAW_E_FUNCTION_URL_NOT_FOUND', `The resource you requested does not exist: ${functionArn(region, name, qualifier)} has no function URL`);

  router.on('POST', base, async (ctx) => {
    const t = await target(ctx);
    const s = await settings(ctx, null);
    const now = platform.clock.now();
    const u: FunctionUrlRecord = { functionName: t.name, qualifier: t.qualifier, urlId: newUrlId(), ...s, createdAt: now, updatedAt: now };
    await store.putFunctionUrl(u, true);
    sendJson(ctx, 201, shape(ctx, u, false));
  });

  router.on('GET', base, async (ctx) => {
    const t = await target(ctx);
    const u = await store.getFunctionUrl(t.name, t.qualifier);
    if (!u) throw notFound(t.name, t.qualifier);
    sendJson(ctx, 200, shape(ctx, u));
  });

  router.on('PUT', base, async (ctx) => {
    const t = await target(ctx);
    const previous = await store.getFunctionUrl(t.name, t.qualifier);
    if (!previous) throw notFound(t.name, t.qualifier);
    const u: FunctionUrlRecord = { ...previous, ...(await settings(ctx, previous)), updatedAt: platform.clock.now() };
    await store.putFunctionUrl(u, false);
    sendJson(ctx, 200, shape(ctx, u));
  });

  router.on('DELETE', base, async (ctx) => {
    const t = await target(ctx);
    if (!(await store.deleteFunctionUrl(t.name, t.qualifier))) throw notFound(t.name, t.qualifier);
    sendJson(ctx, 204, undefined);
  });

  router.on('GET', '/2021-10-31/functions/{name}/urls', async (ctx) => {
    const { name } = parseFunctionRef(ctx.params.name);
    await control.getFunction(name);
    const all = await store.listFunctionUrls(name);
    const { items, next } = listPage(ctx, all);
    sendJson(ctx, 200, { FunctionUrlConfigs: items.map((u) => shape(ctx, u)), ...next });
  });

  router.on('*', `${URL_PREFIX}{urlId}/{rest+}`, (ctx) => serveFunctionUrl(ctx, platform, gate));
}

/**
 * Who calls: null for anyone (NONE, or AWS_IAM on a Thaw with no keys, which serves only this machine, as
 * its API does), else the signing key. Throws THAW_E_FUNCTION_URL_FORBIDDEN saying what would allow it.
 */
async function authorize(ctx: RequestContext, platform: Platform, gate: Gatekeeper, u: FunctionUrlRecord): Promise<AccessKey | null> {
  const policy = await platform.store.getResourcePolicy(u.functionName, u.qualifier);
  const context = { 'lambda:FunctionUrlAuthType': u.authType, 'lambda:InvokedViaFunctionUrl': 'true' };
  const allows = (principal: string | null) => policy !== null && policyAllows(policy.statements, { action: 'lambda:InvokeFunctionUrl', principal, context });
  const fn = u.qualifier === LATEST ? u.functionName : `${u.functionName}:${u.qualifier}`;
  if (u.authType === 'NONE') {
    if (allows(null)) return null;
    const qualifier = u.qualifier === LATEST ? '' : ` --qualifier ${u.qualifier}`;
    throw new ThawError('THAW_E_FUNCTION_URL_FORBIDDEN', `Forbidden: the URL of ${fn} has AuthType NONE, but the function's policy does not allow public access to it (as on Lambda). Allow it with AddPermission: aws lambda add-permission --function-name ${u.functionName}${qualifier} --statement-id FunctionURLAllowPublicAccess --action lambda:InvokeFunctionUrl --principal '*' --function-url-auth-type NONE`);
  }
  if (!(await platform.keys.active())) return null;
  const rawPath = (ctx.req.url ?? '/').split('?')[0];
  const { key, service } = await gate.signedKey(ctx.req, ctx.req.headers.host ?? '', ctx.url, rawPath, () => prereadBody(ctx.req, MAX_SYNC_PAYLOAD_BYTES));
  if (service !== 'lambda') throw new ThawError('THAW_E_AUTH_SIGNATURE', `a function URL request is signed for the service lambda, not ${service}`);
  if (permits(key, 'invoke', u.functionName) || allows(keyPrincipal(key))) return key;
  throw new ThawError('THAW_E_FUNCTION_URL_FORBIDDEN', `Forbidden: access key ${key.id} may not invoke the URL of ${fn}: its role and functions do not allow it, and the function's policy grants ${keyPrincipal(key)} no lambda:InvokeFunctionUrl`);
}

/** The one place a function URL request is served: preflight, auth, the v2.0 event, CORS, the response. */
async function serveFunctionUrl(ctx: RequestContext, platform: Platform, gate: Gatekeeper): Promise<void> {
  const u = await platform.store.getFunctionUrlById(ctx.params.urlId);
  if (!u) throw new ThawError('THAW_E_FUNCTION_URL_NOT_FOUND', `no function URL has the id ${ctx.params.urlId}`);
  const origin = typeof ctx.req.headers.origin === 'string' ? ctx.req.headers.origin : undefined;
  const requested = ctx.req.headers['access-control-request-method'];
  if (u.cors && ctx.req.method === 'OPTIONS' && origin && typeof requested === 'string') {
    ctx.req.resume();
    ctx.res.writeHead(200, { ...preflightHeaders(u.cors, origin, requested), vary: 'Origin', 'content-length': '0', 'x-amzn-requestid': ctx.requestId });
    ctx.res.end();
    return;
  }
  const key = await authorize(ctx, platform, gate, u);
  // RESPONSE_STREAM: a streaming handler's response goes to the client as it is written, its head from the
  // HttpResponseStream prelude with the URL's CORS; a handler that does not stream is answered as BUFFERED.
  const streamed = u.invokeMode === 'RESPONSE_STREAM'
    ? new HttpStreamResponse(ctx, (head) => {
      const shaped = u.cors ? withCors({ ...head, body: Buffer.alloc(0) }, u.cors, origin) : head;
      return { status: shaped.status, headers: { ...shaped.headers, 'x-amzn-requestid': ctx.requestId } };
    })
    : undefined;
  const { response, headers } = await invokeHttpEvent(ctx, platform, {
    name: u.functionName,
    qualifier: u.qualifier === LATEST ? null : u.qualifier,
    path: '/' + (ctx.params.rest ?? ''),
    requestContext: {
      accountId: key ? ACCOUNT_ID : 'anonymous',
      apiId: u.urlId,
      domainPrefix: u.urlId,
      ...(key ? { authorizer: { iam: { accessKey: key.id, accountId: ACCOUNT_ID, callerId: key.id, cognitoIdentity: null, principalOrgId: null, userArn: keyPrincipal(key), userId: key.id } } } : {}),
    },
  }, streamed);
  // A streamed invocation's result is empty (a 200 here); anything else is its failure, which cuts the stream.
  if (streamed?.streaming) return streamed.end(response.status !== 200);
  writeHttpResponse(ctx, u.cors ? withCors(response, u.cors, origin) : response, { ...headers, 'x-amzn-requestid': ctx.requestId });
}
