// HTTP plumbing for the gateway: a small method+path router, bounded body reading, JSON replies and the
// rendering of ThawErrors in Lambda's error shape. Imports src/core and node built-ins.
import type { IncomingMessage, ServerResponse } from 'node:http';
import { pipeline } from 'node:stream/promises';
import { hashCheck, type Origin } from '../codestore/index.ts';
import { parseFunctionRef } from '../core/arn.ts';
import { ThawError, asThawError } from '../core/errors.ts';

export interface RequestContext {
  req: IncomingMessage;
  res: ServerResponse;
  url: URL;
  params: Record<string, string>;
  /** Aborted when the client goes away before the response is sent. */
  signal: AbortSignal;
  requestId: string;
  receivedMono: number;
  receivedAt: number;
}

export type Handler = (ctx: RequestContext) => Promise<void>;

interface Route { method: string; pattern: RegExp; keys: string[]; handler: Handler }

export class Router {
  #routes: Route[] = [];

  /** Path patterns use `{name}` for one segment and `{name+}` for the rest of the path. */
  on(method: string, path: string, handler: Handler): this {
    const keys: string[] = [];
    const source = path.replace(/\/?\{(\w+)(\+?)\}/g, (_m, key: string, greedy: string) => {
      keys.push(key);
      return greedy ? '(?:/(.*))?' : '/([^/]+)';
    });
    this.#routes.push({ method, pattern: new RegExp(`^${source}/?$`), keys, handler });
    return this;
  }

  /** Finds the handler for a request, or says which methods the path allows. */
  match(method: string, path: string): { handler: Handler; params: Record<string, string> } | { allow: string[] } {
    const allow: string[] = [];
    for (const r of this.#routes) {
      const m = r.pattern.exec(path);
      if (!m) continue;
      // A catch-all route never hides a more specific path that exists with other methods.
      if (r.method === '*' && allow.length) break;
      if (r.method !== method && r.method !== '*') { allow.push(r.method); continue; }
      const params: Record<string, string> = {};
      r.keys.forEach((k, i) => { params[k] = m[i + 1] === undefined ? '' : safeDecode(m[i + 1]); });
      return { handler: r.handler, params };
    }
    return { allow };
  }
}

const safeDecode = (s: string) => { try { return decodeURIComponent(s); } catch { return s; } };

/** Bodies read before routing (to check a signature over them), served to the route's own readBody. */
const preread = new WeakMap<IncomingMessage, Buffer>();

/** Reads the body now and keeps it for the route: readBody then returns it, under the route's own limit. */
export async function prereadBody(req: IncomingMessage, maxBytes: number): Promise<Buffer> {
  const known = preread.get(req);
  if (known) return known;
  const body = await readBody(req, maxBytes);
  preread.set(req, body);
  return body;
}

/** Reads the whole body, refusing more than maxBytes with THAW_E_REQUEST_TOO_LARGE before buffering it. */
export async function readBody(req: IncomingMessage, maxBytes: number, onProgress?: (bytes: number) => void): Promise<Buffer> {
  const known = preread.get(req);
  if (known) {
    if (known.length > maxBytes) throw new ThawError('THAW_E_REQUEST_TOO_LARGE', `the request body is ${known.length} bytes; the limit for this call is ${maxBytes}`);
    onProgress?.(known.length);
    return known;
  }
  const declared = Number(req.headers['content-length'] ?? NaN);
  if (declared > maxBytes) throw new ThawError('THAW_E_REQUEST_TOO_LARGE', `the request body is ${declared} bytes; the limit for this call is ${maxBytes}`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > maxBytes) throw new ThawError('THAW_E_REQUEST_TOO_LARGE', `the request body exceeds ${maxBytes} bytes, the limit for this call`);
    chunks.push(chunk as Buffer);
    onProgress?.(size);
  }
  return Buffer.concat(chunks, size);
}

export async function readJson(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const body = await readBody(req, maxBytes);
  if (body.length === 0) return {};
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw new ThawError('THAW_E_REQUEST_JSON', `the request body is not valid JSON: ${(err as Error).message}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw new ThawError('THAW_E_REQUEST_JSON', 'the request body must be a JSON object');
  return value as Record<string, unknown>;
}

/**
 * Serves a content-addressed object (a package, an image, an encrypted snapshot) from an origin. A body that
 * fails midway, or proves damaged, ends the transfer broken, never hanging and never as a complete-looking
 * object; the node carries on.
 */
export async function sendObject(ctx: RequestContext, origin: Origin, sha: string, what: string): Promise<void> {
  if (!/^[0-9a-f]{64}$/.test(sha) || !(await origin.has(sha))) throw new ThawError('THAW_E_PACKAGE_NOT_FOUND', `no ${what} ${sha}`);
  const body = await origin.stream(sha);
  ctx.res.writeHead(200, { 'content-type': 'application/octet-stream' });
  await pipeline(body, hashCheck(sha, `${what} ${sha}`), ctx.res).catch((err) => {
    process.stderr.write(`thaw: the download of ${what} ${sha} failed: ${(err as Error).message}\n`);
    ctx.res.destroy();
  });
}

export function sendJson(ctx: RequestContext, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  ctx.res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'x-amzn-requestid': ctx.requestId,
    ...headers,
  });
  ctx.res.end(text);
}

/**
 * Lambda's error shape (x-amzn-ErrorType + Type/message), plus Thaw's stable code and how to fix it. The
 * server's own paths never reach the client: `redact` rewrites them, and an internal error's details go to
 * the server log under the request id instead.
 */
export function sendError(ctx: RequestContext, err: unknown, redact: (s: string) => string = (s) => s): void {
  const e = asThawError(err);
  if (ctx.res.headersSent) { ctx.res.destroy(); return; }
  const status = e.status >= 400 && e.status < 600 ? e.status : 500;
  let message = redact(e.message);
  if (e.code === 'THAW_E_INTERNAL') {
    process.stderr.write(`thaw: internal error in request ${ctx.requestId}: ${(err as Error)?.stack ?? e.message}\n`);
    message = `internal error (request ${ctx.requestId}); the server log has the details`;
  }
  sendJson(ctx, status, {
    Type: e.kind === 'user' ? 'User' : 'Service',
    message,
    code: e.code,
    fix: e.fix,
    ...(e.details ? { details: JSON.parse(redact(JSON.stringify(e.details))) } : {}),
  }, { 'x-amzn-errortype': e.lambdaType, ...(e.retryable && status === 429 ? { 'retry-after': '1' } : {}) });
}

/** Reads a string field of a Lambda request body, rejecting other types with a clear message. */
export function optString(body: Record<string, unknown>, key: string): string | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'string') throw new ThawError('THAW_E_REQUEST_INVALID', `${key} must be a string`);
  return v;
}

export function optNumber(body: Record<string, unknown>, key: string): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v)) throw new ThawError('THAW_E_REQUEST_INVALID', `${key} must be a number`);
  return v;
}

export function optBoolean(body: Record<string, unknown>, key: string): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw new ThawError('THAW_E_REQUEST_INVALID', `${key} must be true or false`);
  return v;
}

export function optObject(body: Record<string, unknown>, key: string): Record<string, unknown> | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'object' || Array.isArray(v)) throw new ThawError('THAW_E_REQUEST_INVALID', `${key} must be an object`);
  return v as Record<string, unknown>;
}

/**
 * The function a route's {name} names: a name, `name:qualifier`, or an ARN; the Qualifier parameter may name
 * the qualifier, and one that disagrees with the path's is refused. Existence is each route's to check.
 */
export function functionTarget(ctx: RequestContext): { name: string; qualifier: string | null } {
  const ref = parseFunctionRef(ctx.params.name);
  const fromQuery = ctx.url.searchParams.get('Qualifier');
  if (ref.qualifier && fromQuery && ref.qualifier !== fromQuery) {
    throw new ThawError('THAW_E_QUALIFIER_INVALID', `the function name says qualifier ${ref.qualifier} but the Qualifier parameter says ${fromQuery}`);
  }
  return { name: ref.name, qualifier: fromQuery ?? ref.qualifier };
}

/** Refuses a request field the operation does not take (never dropped silently), naming the one it probably meant. */
export function checkFields(op: string, body: Record<string, unknown>, known: readonly string[]): void {
  for (const field of Object.keys(body)) if (!known.includes(field)) throw unknownField(op, field, known);
}

export function unknownField(op: string, field: string, known: readonly string[]): ThawError {
  const close = known.find((k) => k.toLowerCase() === field.toLowerCase() || editDistance(k.toLowerCase(), field.toLowerCase()) <= 2);
  return new ThawError('THAW_E_FIELD_UNKNOWN', `${op} has no field ${field}${close ? ` (did you mean ${close}?)` : ''}; its fields are ${known.join(', ')}`, { details: { field } });
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) row[j] = Math.min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = row;
  }
  return prev[b.length];
}

/**
 * Marker/MaxItems paging as Lambda's list calls take it (the marker is an offset here): one page of `all`, and
 * the NextMarker field to spread into the answer when more follow. A bad value is refused, not read as page one.
 */
export function listPage<T>(ctx: RequestContext, all: readonly T[], maxItems = 50): { items: T[]; next: { NextMarker?: string } } {
  const q = ctx.url.searchParams;
  const marker = Number(q.get('Marker') ?? 0);
  const max = Number(q.get('MaxItems') ?? Math.min(50, maxItems));
  if (!Number.isSafeInteger(marker) || marker < 0) throw new ThawError('THAW_E_REQUEST_INVALID', `Marker must be the NextMarker of a previous page, got ${JSON.stringify(q.get('Marker'))}`);
  if (!Number.isInteger(max) || max < 1 || max > maxItems) throw new ThawError('THAW_E_REQUEST_INVALID', `MaxItems must be 1-${maxItems}, got ${JSON.stringify(q.get('MaxItems'))}`);
  return { items: all.slice(marker, marker + max), next: marker + max < all.length ? { NextMarker: String(marker + max) } : {} };
}
