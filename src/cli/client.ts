// The CLI's HTTP client for a running Thaw: the Lambda API and /thaw/v1, with errors turned back into
// ThawErrors (code, message, fix) and uploads that report their progress. Imports src/core and node:http.
import { request } from 'node:http';
import { request as requestTls } from 'node:https';
import { ThawError, errorRegistry, type ErrorCode } from '../core/errors.ts';

export interface Reply {
  status: number;
  headers: Headers;
  body: Buffer;
  json(): any;
}

export class ThawClient {
  readonly endpoint: string;

  constructor(endpoint: string) {
    let url: URL;
    try { url = new URL(endpoint); } catch {
      throw new ThawError('THAW_E_CLI_USAGE', `endpoint ${JSON.stringify(endpoint)} is not a URL; give one like http://127.0.0.1:8080`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ThawError('THAW_E_CLI_USAGE', `endpoint must be http:// or https://, got ${endpoint}`);
    this.endpoint = url.origin;
  }

  /** Sends a request; non-2xx replies become the ThawError the server described. */
  async call(method: string, path: string, init: { json?: unknown; body?: string; headers?: Record<string, string> } = {}): Promise<Reply> {
    const body = init.json !== undefined ? JSON.stringify(init.json) : init.body;
    const headers = { ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers };
    let res: Response;
    try {
      res = await fetch(this.endpoint + path, { method, body, headers });
    } catch (err) {
      throw unreachable(this.endpoint, err);
    }
    return checked(res.status, res.headers, Buffer.from(await res.arrayBuffer()));
  }

  async get(path: string): Promise<any> {
    return (await this.call('GET', path)).json();
  }

  /** Sends a JSON body in chunks through node:http so progress reports bytes actually handed to the socket. */
  async upload(method: string, path: string, json: unknown, onProgress: (sent: number, total: number) => void): Promise<Reply> {
    const data = Buffer.from(JSON.stringify(json));
    const url = new URL(this.endpoint + path);
    const send = url.protocol === 'https:' ? requestTls : request;
    return new Promise<Reply>((resolve, reject) => {
      const req = send(url, { method, headers: { 'content-type': 'application/json', 'content-length': data.length } }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const headers = new Headers();
          for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
          try { resolve(checked(res.statusCode ?? 0, headers, Buffer.concat(chunks))); } catch (err) { reject(err); }
        });
      });
      req.on('error', (err) => reject(unreachable(this.endpoint, err)));
      const CHUNK = 256 * 1024;
      let sent = 0;
      const pump = () => {
        while (sent < data.length) {
          const end = Math.min(data.length, sent + CHUNK);
          const more = req.write(data.subarray(sent, end));
          sent = end;
          onProgress(sent, data.length);
          if (!more) { req.once('drain', pump); return; }
        }
        req.end();
      };
      onProgress(0, data.length);
      pump();
    });
  }
}

function checked(status: number, headers: Headers, body: Buffer): Reply {
  const reply: Reply = { status, headers, body, json: () => (body.length ? JSON.parse(body.toString('utf8')) : null) };
  if (status >= 200 && status < 300) return reply;
  let parsed: { code?: string; message?: string; Message?: string } = {};
  try { parsed = reply.json() ?? {}; } catch { /* not JSON */ }
  const code = parsed.code && parsed.code in errorRegistry ? (parsed.code as ErrorCode) : status === 404 ? 'THAW_E_ROUTE_NOT_FOUND' : 'THAW_E_INTERNAL';
  throw new ThawError(code, parsed.message ?? parsed.Message ?? `the server answered ${status}`, { details: { status } });
}

function unreachable(endpoint: string, err: unknown): ThawError {
  const cause = (err as { cause?: { code?: string } }).cause?.code ?? (err as { code?: string }).code ?? (err as Error).message;
  return new ThawError('THAW_E_CLI_UNREACHABLE', `cannot reach Thaw at ${endpoint} (${cause})`, { cause: err });
}

/** `name` or `name:qualifier` as the CLI takes it, URL-encoded for a path segment. */
export const fnPath = (ref: string) => encodeURIComponent(ref);
