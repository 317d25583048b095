// The CLI's HTTP client for a running Thaw: the Lambda API and /thaw/v1, with errors turned back into
// ThawErrors (code, message, fix), uploads that report their progress, and every request signed with AWS
// Signature Version 4 when it has credentials. Imports src/core, src/gateway's signer (loaded only when
// there are credentials: it brings the whole gateway) and node built-ins.
import { readFileSync } from 'node:fs';
import type { IncomingMessage } from 'node:http';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { ThawError, errorRegistry, type ErrorCode } from '../core/errors.ts';

// Not `import { request } from 'node:http'`: an ES import of node:http evaluates every export, and some are
// lazy getters that load undici and TLS, a good part of a short command's start. process.getBuiltinModule
// reads only what is used.
const { request } = process.getBuiltinModule('node:http');

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  region: string;
}

/**
 * The usual AWS sources, in the AWS CLI's order: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, else the
 * profile AWS_PROFILE (or default) of AWS_SHARED_CREDENTIALS_FILE (or ~/.aws/credentials); null when none.
 */
export function credentialsFrom(env: NodeJS.ProcessEnv): Credentials | null {
  const region = env.AWS_REGION ?? env.AWS_DEFAULT_REGION ?? 'us-east-1';
  if (env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY) return { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, region };
  let text: string;
  try { text = readFileSync(env.AWS_SHARED_CREDENTIALS_FILE ?? join(homedir(), '.aws', 'credentials'), 'utf8'); } catch { return null; }
  const profile = env.AWS_PROFILE ?? 'default';
  let inProfile = false;
  const found: Record<string, string> = {};
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section) { inProfile = section[1] === profile; continue; }
    const kv = /^([A-Za-z_]+)\s*=\s*(.*)$/.exec(line);
    if (inProfile && kv) found[kv[1].toLowerCase()] = kv[2].trim();
  }
  return found.aws_access_key_id && found.aws_secret_access_key ? { accessKeyId: found.aws_access_key_id, secretAccessKey: found.aws_secret_access_key, region } : null;
}

export interface ReplyHeaders { get(name: string): string | null }

export interface Reply {
  status: number;
  headers: ReplyHeaders;
  body: Buffer;
  json(): any;
}

export class ThawClient {
  readonly endpoint: string;
  readonly #credentials: Credentials | null;

  constructor(endpoint: string, credentials: Credentials | null = null) {
    this.#credentials = credentials;
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
    const headers = await this.#signed(method, new URL(this.endpoint + path), { ...(init.json !== undefined ? { 'content-type': 'application/json' } : {}), ...init.headers }, body);
    const url = new URL(this.endpoint + path);
    const send = await sender(url);
    return new Promise<Reply>((resolve, reject) => {
      const req = send(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => reject(unreachable(this.endpoint, err)));
        res.on('end', () => {
          try { resolve(checked(res.statusCode ?? 0, headersOf(res), Buffer.concat(chunks))); } catch (err) { reject(err); }
        });
      });
      req.on('error', (err) => reject(unreachable(this.endpoint, err)));
      req.end(body);
    });
  }

  /** The headers with a SigV4 signature added, when this client has credentials. */
  async #signed(method: string, url: URL, headers: Record<string, string>, body: Buffer | string | undefined): Promise<Record<string, string>> {
    if (!this.#credentials) return headers;
    const c = this.#credentials;
    const { signRequest } = await import('../gateway/index.ts');
    return { ...headers, ...(await signRequest({ method, url, headers, body, accessKeyId: c.accessKeyId, secretAccessKey: c.secretAccessKey, region: c.region })) };
  }

  async get(path: string): Promise<any> {
    return (await this.call('GET', path)).json();
  }

  /**
   * A long GET whose body is JSON lines (NDJSON, as /thaw/v1/functions/N/tail sends): each parsed line goes
   * to onLine as it arrives. Resolves when the server ends the response or the signal aborts.
   */
  async lines(path: string, onLine: (value: any) => void, signal: AbortSignal): Promise<void> {
    const url = new URL(this.endpoint + path);
    const headers = await this.#signed('GET', url, {}, undefined);
    const send = await sender(url);
    return new Promise<void>((resolve, reject) => {
      const req = send(url, { method: 'GET', headers, signal }, (res) => {
        if ((res.statusCode ?? 0) >= 300) {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => { try { checked(res.statusCode ?? 0, headersOf(res), Buffer.concat(chunks)); } catch (err) { reject(err); } });
          return;
        }
        let rest = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => {
          const parts = (rest + c).split('\n');
          rest = parts.pop()!;
          for (const p of parts) {
            if (!p) continue;
            let line: unknown;
            // A line that is not JSON (a proxy's page, a cut stream) is skipped, not fatal to the command.
            try { line = JSON.parse(p); } catch { continue; }
            onLine(line);
          }
        });
        // The stream ends only when asked to (the signal): otherwise the server went away, which is said.
        const ended = (err?: Error) => (signal.aborted ? resolve() : reject(new ThawError('THAW_E_CLI_UNREACHABLE', `the stream from ${this.endpoint} ended${err ? `: ${err.message}` : ''}; is Thaw still up?`)));
        res.on('end', () => ended());
        res.on('error', (err) => ended(err));
      });
      req.on('error', (err) => (signal.aborted ? resolve() : reject(unreachable(this.endpoint, err))));
      req.end();
    });
  }

  /** Sends a JSON body in chunks through node:http so progress reports bytes actually handed to the socket. */
  async upload(method: string, path: string, json: unknown, onProgress: (sent: number, total: number) => void): Promise<Reply> {
    const data = Buffer.from(JSON.stringify(json));
    const url = new URL(this.endpoint + path);
    const headers = await this.#signed(method, url, { 'content-type': 'application/json', 'content-length': String(data.length) }, data);
    const send = await sender(url);
    return new Promise<Reply>((resolve, reject) => {
      const req = send(url, { method, headers }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          try { resolve(checked(res.statusCode ?? 0, headersOf(res), Buffer.concat(chunks))); } catch (err) { reject(err); }
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

/**
 * node:http rather than fetch: a short command would otherwise spend a good part of its start loading undici;
 * node:https (and with it TLS) is loaded only for an https endpoint.
 */
async function sender(url: URL): Promise<typeof request> {
  return url.protocol === 'https:' ? process.getBuiltinModule('node:https').request : request;
}

/** Response headers by lower-case name (the global Headers would load undici too). */
function headersOf(res: IncomingMessage): ReplyHeaders {
  return { get: (name) => { const v = res.headers[name.toLowerCase()]; return typeof v === 'string' ? v : Array.isArray(v) ? v.join(', ') : null; } };
}

function checked(status: number, headers: ReplyHeaders, body: Buffer): Reply {
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
