// The page's one way to call Thaw: fetch to this origin, signed with the signed-in access key when there is
// one (sigv4.js). The key lives in sessionStorage: this tab only, gone when it closes. Errors carry the
// gateway's THAW_E_* code and message.
import { signedHeaders } from './sigv4.js';

const STORE_KEY = 'thaw.credentials';

/** @typedef {{ accessKeyId: string, secretAccessKey: string }} Credentials */

/** @returns {Credentials | null} */
export function credentials() {
  const s = sessionStorage.getItem(STORE_KEY);
  if (!s) return null;
  try { return JSON.parse(s); } catch { return null; }
}

/** @param {Credentials} c */
export function signIn(c) { sessionStorage.setItem(STORE_KEY, JSON.stringify(c)); }

export function signOut() { sessionStorage.removeItem(STORE_KEY); }

export class ApiError extends Error {
  /**
   * @param {number} status
   * @param {string} code
   * @param {string} message
   */
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/** The codes that mean "sign in (again)": no signature, an unknown key, a signature that does not verify. */
export const AUTH_CODES = new Set(['THAW_E_AUTH_REQUIRED', 'THAW_E_AUTH_UNKNOWN_KEY', 'THAW_E_AUTH_SIGNATURE']);

/**
 * Calls the API; resolves with the parsed JSON reply, rejects with an ApiError.
 * @param {string} method
 * @param {string} path
 * @param {unknown} [body]
 * @returns {Promise<any>}
 */
export async function api(method, path, body) {
  const url = new URL(path, location.origin);
  const text = body === undefined ? '' : JSON.stringify(body);
  /** @type {Record<string, string>} */
  const headers = body === undefined ? {} : { 'content-type': 'application/json' };
  const c = credentials();
  if (c) Object.assign(headers, await signedHeaders({ method, url, body: text, ...c }));
  const res = await fetch(url, { method, headers, body: body === undefined ? undefined : text, cache: 'no-store' });
  const reply = await res.text();
  let json = null;
  try { json = reply ? JSON.parse(reply) : null; } catch { /* not JSON: the message is the text */ }
  if (!res.ok) throw new ApiError(res.status, json?.code ?? '', json?.message ?? (reply || res.statusText));
  return json;
}

/**
 * A function-scoped path segment.
 * @param {string} name
 */
export const fnPath = (name) => encodeURIComponent(name);
