// Who may call Thaw's APIs. With no access key, only clients on this machine, addressing Thaw by the host
// it listens on (no DNS rebinding) and without a foreign Origin (no cross-site requests). Once a key
// exists, every call to the Lambda and Thaw APIs carries a valid SigV4 signature of an active key whose
// role and functions allow it, or whose invocation the function's resource-based policy grants. HTTP
// triggers stay public; function URLs check their own AuthType (function-urls.ts). Imports src/core and node built-ins.
import type { IncomingMessage } from 'node:http';
import { isIP } from 'node:net';
import { parseFunctionRef } from '../core/arn.ts';
import { ThawError } from '../core/errors.ts';
import type { AccessKey } from '../core/types.ts';
import type { KeyRing } from './keys.ts';
import { parseSignature, verifySignature, type SignableRequest } from './sigv4.ts';

/**
 * What a call does, for the roles: admin may do all, developer all but `admin` and `cluster`, invoker only
 * `invoke`, agent only `cluster` (the routes a `thaw agent` calls).
 */
export type Action = 'invoke' | 'read' | 'write' | 'admin' | 'cluster';

/** Lambda's APIs are versioned by date (/2015-03-31, /2017-10-31, ...); no function name starts with a digit. */
const API = /^\/(\d{4}-\d{2}-\d{2}|thaw\/v1)(\/|$)/;

/** Which paths are the management and invoke APIs (everything else is an HTTP trigger). */
export const isApiPath = (path: string) => API.test(path) && path !== '/thaw/v1/health';

export function requiredAction(method: string, path: string): Action {
  if (/^\/thaw\/v1\/keys(\/|$)/.test(path)) return 'admin';
  if (/^\/thaw\/v1\/cluster\/(agents|telemetry|calls|code|snapshots)(\/|$)/.test(path)) return 'cluster';
  if (/^\/thaw\/v1\/(networks|security-groups)(\/|$)/.test(path) && method !== 'GET' && method !== 'HEAD') return 'admin';
  if (method === 'POST' && /\/functions\/[^/]+\/(invocations|response-streaming-invocations|invoke-async)\/?$/.test(path)) return 'invoke';
  return method === 'GET' || method === 'HEAD' ? 'read' : 'write';
}

/** The function a path is about, if any (name, name:qualifier or an ARN in the path; a tagged function's ARN). */
export function functionOf(path: string): string | null {
  const m = /^\/(?:\d{4}-\d{2}-\d{2}|thaw\/v1)\/functions\/([^/]+)/.exec(path) ?? /^\/\d{4}-\d{2}-\d{2}\/tags\/([^/]+)\/?$/.exec(path);
  if (!m) return null;
  try { return parseFunctionRef(decodeURIComponent(m[1])).name; } catch { return null; }
}

/** The qualifier a call names: in the path (name:qualifier, a qualified ARN) or as ?Qualifier=; null for none. */
export function qualifierOf(path: string, query: URLSearchParams): string | null {
  const m = /^\/(?:\d{4}-\d{2}-\d{2}|thaw\/v1)\/functions\/([^/]+)/.exec(path);
  let fromPath: string | null = null;
  if (m) try { fromPath = parseFunctionRef(decodeURIComponent(m[1])).qualifier; } catch { /* malformed: the route refuses it */ }
  return query.get('Qualifier') ?? fromPath;
}

/**
 * Whether a function's resource-based policy lets a key do what its own role and functions do not (only
 * invoking is granted that way, as on Lambda). The resource policies answer it (lambda-permissions-api.ts).
 */
export type PolicyGrant = (key: AccessKey, fn: string, qualifier: string | null) => Promise<boolean>;

export function permits(key: AccessKey, action: Action, fn: string | null): boolean {
  const roleOk = key.role === 'admin' || (key.role === 'developer' && action !== 'admin' && action !== 'cluster')
    || (key.role === 'invoker' && action === 'invoke') || (key.role === 'agent' && action === 'cluster');
  if (!roleOk) return false;
  // A key limited to some functions may only make calls about one of them.
  return key.functions === null || (fn !== null && key.functions.includes(fn));
}

const LOOPBACK_NAMES = new Set(['localhost', '127.0.0.1', '[::1]']);

export function isLoopbackAddress(addr: string | undefined): boolean {
  if (!addr) return false;
  const a = addr.startsWith('::ffff:') ? addr.slice(7) : addr;
  return a === '::1' || (isIP(a) === 4 && a.startsWith('127.'));
}

export const isLoopbackHost = (host: string) => LOOPBACK_NAMES.has(host) || isLoopbackAddress(host.replace(/^\[|\]$/g, ''));

export interface Listening { host: string; port: number }

export class Gatekeeper {
  readonly #keys: KeyRing;
  readonly #listening: () => Listening;
  readonly #now: () => number;
  readonly #grant: PolicyGrant;

  constructor(keys: KeyRing, listening: () => Listening, now: () => number, grant: PolicyGrant = async () => false) {
    this.#keys = keys;
    this.#listening = listening;
    this.#now = now;
    this.#grant = grant;
  }

  /** The host names a client on this machine may use for Thaw without keys. */
  #allowedHost(hostname: string, port: number | null): boolean {
    const l = this.#listening();
    const bound = l.host.includes(':') ? `[${l.host}]` : l.host;
    const nameOk = hostname === bound || LOOPBACK_NAMES.has(hostname) || (isLoopbackHost(hostname) && isLoopbackHost(bound));
    return nameOk && (port === null ? l.port === 80 : port === l.port);
  }

  /**
   * Decides whether a request may go on; throws the ThawError that refuses it. `body` reads the request
   * body (a signature covers it), only when a signature must be checked.
   */
  async check(req: IncomingMessage, host: { hostname: string; port: number | null }, rawHost: string, url: URL, rawPath: string, body: () => Promise<Buffer>): Promise<{ key: AccessKey | null }> {
    const api = isApiPath(url.pathname);
    if (!(await this.#keys.active())) {
      if (!isLoopbackAddress(req.socket.remoteAddress)) throw new ThawError('THAW_E_AUTH_LOOPBACK_ONLY', `no access key exists, so Thaw serves only this machine; ${req.socket.remoteAddress ?? 'the client'} is not on it`);
      if (!this.#allowedHost(host.hostname, host.port)) throw new ThawError('THAW_E_HOST_REFUSED', `the Host header ${JSON.stringify(rawHost)} is not the address Thaw listens on`);
      const origin = req.headers.origin;
      if (api && origin !== undefined && origin !== 'null') {
        let o: URL | null = null;
        try { o = new URL(origin); } catch { /* refused below */ }
        const port = o ? Number(o.port || (o.protocol === 'https:' ? 443 : 80)) : NaN;
        if (!o || !this.#allowedHost(o.hostname, port)) {
          throw new ThawError('THAW_E_ORIGIN_REFUSED', `requests from the web origin ${origin} are refused`);
        }
      } else if (api && origin === 'null') {
        throw new ThawError('THAW_E_ORIGIN_REFUSED', 'requests from an opaque web origin are refused');
      }
      return { key: null };
    }
    if (!api) return { key: null };
    const { key } = await this.signedKey(req, rawHost, url, rawPath, body);
    const action = requiredAction(req.method ?? 'GET', url.pathname);
    const fn = functionOf(url.pathname);
    if (!permits(key, action, fn) && !(action === 'invoke' && fn !== null && await this.#grant(key, fn, qualifierOf(url.pathname, url.searchParams)))) {
      const what = fn ? ` on function ${fn}` : '';
      throw new ThawError('THAW_E_AUTH_DENIED', `access key ${key.id} (role ${key.role}${key.functions ? `, functions ${key.functions.join(', ')}` : ''}) may not ${action}${what}${action === 'invoke' ? ', and the function\'s policy grants it nothing' : ''}`);
    }
    return { key };
  }

  /**
   * The active key whose valid SigV4 signature the request carries, and the service it was signed for;
   * throws when there is none or it does not verify. Also used by AWS_IAM function URLs.
   */
  async signedKey(req: IncomingMessage, rawHost: string, url: URL, rawPath: string, body: () => Promise<Buffer>): Promise<{ key: AccessKey; service: string }> {
    const signable: SignableRequest = { method: req.method ?? 'GET', host: rawHost, path: rawPath, query: url.searchParams, headers: req.headers, body: Buffer.alloc(0) };
    const sig = parseSignature(signable);
    if (!sig) throw new ThawError('THAW_E_AUTH_REQUIRED', 'this Thaw requires signed requests: no Authorization header or presigned query was given');
    const found = await this.#keys.lookup(sig.keyId);
    if (!found) throw new ThawError('THAW_E_AUTH_UNKNOWN_KEY', `The security token included in the request is invalid: no active access key ${sig.keyId}`);
    signable.body = await body();
    await verifySignature(signable, sig, found.secret, this.#now());
    return { key: found.key, service: sig.service };
  }
}
