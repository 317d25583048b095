// HTTP triggers: `/{function}[:{qualifier}]/{path}` delivers the API Gateway HTTP API (payload format 2.0)
// event and maps the handler's v2 response back to HTTP. The mapping functions are pure and tested directly.
import type { IncomingHttpHeaders } from 'node:http';
import { ThawError, asThawError } from '../core/errors.ts';
import { RESERVED_NAMES } from '../control/index.ts';
import { ACCOUNT_ID } from '../core/arn.ts';
import { serverTiming } from '../telemetry/index.ts';
import { readBody, type RequestContext, type Router } from './http.ts';
import { MAX_SYNC_PAYLOAD_BYTES, type Platform } from './platform.ts';
import type { ResponseStream } from '../agent/index.ts';

export interface TriggerRequest {
  method: string;
  /** Path below the function's prefix, starting with '/'. */
  path: string;
  rawQueryString: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  sourceIp: string;
  requestId: string;
  timeEpoch: number;
  functionName: string;
  host: string;
  /** Fields of requestContext that differ from an HTTP trigger's (a function URL's apiId, authorizer, ...). */
  requestContext?: Record<string, unknown>;
}

const TEXT_TYPES = /^(text\/|application\/(json|xml|javascript|x-www-form-urlencoded|graphql)|[^;]*\+(json|xml))/i;

/** The API Gateway HTTP API v2.0 event for one request. */
export function httpEventV2(r: TriggerRequest) {
  const headers: Record<string, string> = {};
  let cookies: string[] | undefined;
  for (const [k, v] of Object.entries(r.headers)) {
    if (v === undefined) continue;
    if (k === 'cookie') { cookies = (Array.isArray(v) ? v.join('; ') : v).split(/;\s*/).filter(Boolean); continue; }
    headers[k] = Array.isArray(v) ? v.join(',') : v;
  }
  const query: Record<string, string> = {};
  for (const [k, v] of new URLSearchParams(r.rawQueryString)) query[k] = k in query ? `${query[k]},${v}` : v;
  const contentType = headers['content-type'] ?? '';
  const binary = r.body.length > 0 && !TEXT_TYPES.test(contentType);
  return {
    version: '2.0',
    routeKey: '$default',
    rawPath: r.path,
    rawQueryString: r.rawQueryString,
    ...(cookies ? { cookies } : {}),
    headers,
    ...(Object.keys(query).length ? { queryStringParameters: query } : {}),
    requestContext: {
      accountId: ACCOUNT_ID,
      apiId: r.functionName,
      domainName: r.host,
      domainPrefix: r.host.split('.')[0],
      http: { method: r.method, path: r.path, protocol: 'HTTP/1.1', sourceIp: r.sourceIp, userAgent: headers['user-agent'] ?? '' },
      requestId: r.requestId,
      routeKey: '$default',
      stage: '$default',
      time: clfTime(r.timeEpoch),
      timeEpoch: r.timeEpoch,
      ...r.requestContext,
    },
    ...(r.body.length ? { body: binary ? r.body.toString('base64') : r.body.toString('utf8') } : {}),
    isBase64Encoded: binary,
  };
}

/** 12/Mar/2020:19:03:58 +0000, the time format API Gateway puts in requestContext.time. */
function clfTime(epochMs: number): string {
  const d = new Date(epochMs);
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${p(d.getUTCDate())}/${months[d.getUTCMonth()]}/${d.getUTCFullYear()}:${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[]>;
  body: Buffer;
}

/**
 * Maps a handler's result as API Gateway's v2 format does: an object with statusCode is a response;
 * anything else is a 200 JSON body (a string is sent as it is).
 */
export function httpResponseV2(resultJson: string): HttpResponse {
  let result: unknown;
  try { result = JSON.parse(resultJson); } catch { result = resultJson; }
  if (result && typeof result === 'object' && !Array.isArray(result) && 'statusCode' in result) {
    const r = result as { statusCode: unknown; headers?: Record<string, unknown>; multiValueHeaders?: Record<string, unknown[]>; cookies?: unknown[]; body?: unknown; isBase64Encoded?: boolean };
    const status = Number(r.statusCode);
    if (!Number.isInteger(status) || status < 100 || status > 599) return badGateway();
    const headers: Record<string, string | string[]> = {};
    for (const [k, v] of Object.entries(r.headers ?? {})) headers[k.toLowerCase()] = String(v);
    for (const [k, vs] of Object.entries(r.multiValueHeaders ?? {})) headers[k.toLowerCase()] = (vs ?? []).map(String).join(',');
    if (Array.isArray(r.cookies) && r.cookies.length) headers['set-cookie'] = r.cookies.map(String);
    const text = r.body === undefined || r.body === null ? '' : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
    return { status, headers, body: r.isBase64Encoded ? Buffer.from(text, 'base64') : Buffer.from(text) };
  }
  const body = typeof result === 'string' ? result : JSON.stringify(result);
  return { status: 200, headers: { 'content-type': 'application/json' }, body: Buffer.from(body) };
}

const badGateway = (): HttpResponse => ({ status: 502, headers: { 'content-type': 'application/json' }, body: Buffer.from('{"message":"Internal Server Error"}') });

/** Where an HTTP request is delivered: the function, its qualifier, the path it sees, its requestContext. */
export interface HttpTarget {
  name: string;
  qualifier: string | null;
  /** The path below the prefix that named the function, starting with '/'. */
  path: string;
  requestContext?: Record<string, unknown>;
}

/**
 * Runs one HTTP request through a function as a v2.0 event and maps its result: the one path of HTTP
 * triggers and function URLs. A function error is a 502; a refusal (not found, throttled) its own status.
 * With `stream` (a RESPONSE_STREAM function URL), a streaming handler's response goes there as it is written.
 */
export async function invokeHttpEvent(ctx: RequestContext, platform: Platform, target: HttpTarget, stream?: ResponseStream): Promise<{ response: HttpResponse; headers: Record<string, string> }> {
  const body = await readBody(ctx.req, MAX_SYNC_PAYLOAD_BYTES);
  const event = httpEventV2({
    method: ctx.req.method ?? 'GET',
    path: target.path,
    rawQueryString: ctx.url.search.slice(1),
    headers: ctx.req.headers,
    body,
    sourceIp: ctx.req.socket.remoteAddress ?? '',
    requestId: ctx.requestId,
    timeEpoch: ctx.receivedAt,
    functionName: target.name,
    host: ctx.req.headers.host ?? 'localhost',
    requestContext: target.requestContext,
  });
  try {
    const r = await platform.invoke(target.name, target.qualifier, JSON.stringify(event), {
      trigger: 'http', signal: ctx.signal, receivedMono: ctx.receivedMono, receivedAt: ctx.receivedAt, invocationId: ctx.requestId, stream,
      traceId: typeof ctx.req.headers['x-amzn-trace-id'] === 'string' ? ctx.req.headers['x-amzn-trace-id'] : null,
      traceparent: typeof ctx.req.headers.traceparent === 'string' ? ctx.req.headers.traceparent : null,
    });
    return {
      response: r.functionError ? badGateway() : httpResponseV2(r.payload),
      headers: { 'x-thaw-invocation-id': r.record.id, 'x-thaw-start': r.record.start ?? 'none', 'server-timing': serverTiming(r.record), 'x-amz-executed-version': r.record.version },
    };
  } catch (err) {
    const e = asThawError(err);
    const message = e.status === 404 ? 'Not Found' : e.status === 429 ? 'Too Many Requests' : e.kind === 'user' ? e.message : 'Internal Server Error';
    return { response: { status: e.status >= 400 ? e.status : 500, headers: { 'content-type': 'application/json', 'x-thaw-error': e.code }, body: Buffer.from(JSON.stringify({ message, code: e.code })) }, headers: {} };
  }
}

export function writeHttpResponse(ctx: RequestContext, response: HttpResponse, headers: Record<string, string>): void {
  ctx.res.writeHead(response.status, { ...response.headers, ...headers, 'content-length': String(response.body.length) });
  ctx.res.end(response.body);
}

export function triggerRoutes(router: Router, platform: Platform): void {
  router.on('*', '/{target}/{rest+}', async (ctx: RequestContext) => {
    const [name, qualifier = null] = ctx.params.target.split(':', 2);
    if (RESERVED_NAMES.has(name.toLowerCase()) || /^\d/.test(name)) throw new ThawError('THAW_E_ROUTE_NOT_FOUND', `no route for ${ctx.req.method} ${ctx.url.pathname}`);
    // A function URL's AuthType and permission guard the function: once it has one, this open path is closed.
    const [url] = await platform.store.listFunctionUrls(name);
    if (url) throw new ThawError('THAW_E_TRIGGER_CLOSED', `function ${name} has a function URL (AuthType ${url.authType}), which is its HTTP endpoint: call /lambda-url/${url.urlId}/ instead`);
    const { response, headers } = await invokeHttpEvent(ctx, platform, { name, qualifier, path: '/' + (ctx.params.rest ?? '') });
    writeHttpResponse(ctx, response, { ...headers, 'apigw-requestid': ctx.requestId });
  });
}
