// AWS Signature Version 4 with the AWS SDK's own signer (@smithy/signature-v4): signing for Thaw's CLI and
// checking for the gateway, which recomputes the signature of a request from the headers its client said
// it signed and compares. Header (Authorization) and presigned-query forms. Imports src/core, node:crypto and the signer.
import { createHash, createHmac, timingSafeEqual, type Hash, type Hmac } from 'node:crypto';
import { SignatureV4 } from '@smithy/signature-v4';
import { ThawError } from '../core/errors.ts';

type SourceData = string | ArrayBuffer | ArrayBufferView;
const bytes = (d: SourceData) => (typeof d === 'string' ? Buffer.from(d, 'utf8') : ArrayBuffer.isView(d) ? Buffer.from(d.buffer, d.byteOffset, d.byteLength) : Buffer.from(d));

/** SHA-256 and HMAC-SHA-256 from node:crypto, in the shape the signer takes. */
class NodeSha256 {
  readonly #secret: Buffer | null;
  #h: Hash | Hmac;
  constructor(secret?: SourceData) {
    this.#secret = secret === undefined ? null : bytes(secret);
    this.#h = this.#fresh();
  }
  #fresh() { return this.#secret ? createHmac('sha256', this.#secret) : createHash('sha256'); }
  update(data: SourceData) { this.#h.update(bytes(data)); }
  async digest(): Promise<Uint8Array> { return new Uint8Array(this.#h.digest()); }
  reset() { this.#h = this.#fresh(); }
}

/** The parts of an HTTP request a signature covers. */
export interface SignableRequest {
  method: string;
  /** host[:port] as sent. */
  host: string;
  /** The path as sent on the wire (percent-encoding kept), without the query. */
  path: string;
  query: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

/** Longest clock difference accepted between a client and Thaw (AWS's window). */
export const MAX_SKEW_MS = 15 * 60_000;

/** `20261130T065530Z` to epoch ms, or NaN. */
function amzDate(s: string | null | undefined): number {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(s ?? '');
  return m ? Date.UTC(+m[1], +m[2] - 1, +m[3], +m[4], +m[5], +m[6]) : NaN;
}

const invalid = (message: string) => new ThawError('THAW_E_AUTH_SIGNATURE', message);

export interface ParsedSignature {
  keyId: string;
  date: string;
  region: string;
  service: string;
  signedHeaders: string[];
  signature: string;
  /** When it was signed (epoch ms) and, for a presigned URL, for how long it is good (s). */
  signedAt: number;
  expiresSec: number | null;
  presigned: boolean;
}

/** Finds and parses the signature of a request; null when it carries none; THAW_E_AUTH_SIGNATURE when it is malformed. */
export function parseSignature(r: SignableRequest): ParsedSignature | null {
  const auth = r.headers.authorization;
  const header = Array.isArray(auth) ? auth[0] : auth;
  let credential: string; let signedHeaders: string; let signature: string; let when: string | null | undefined; let expiresSec: number | null = null;
  // A header signature wins: query parameters of that name then are just query parameters.
  const presigned = (header === undefined || header === '') && r.query.get('X-Amz-Algorithm') !== null;
  if (header !== undefined && header !== '') {
    const m = /^AWS4-HMAC-SHA256\s+(.*)$/s.exec(header);
    if (!m) throw invalid('the Authorization header is not AWS Signature Version 4 (AWS4-HMAC-SHA256)');
    const fields = new Map(m[1].split(',').map((p) => p.trim()).map((p) => [p.slice(0, p.indexOf('=')), p.slice(p.indexOf('=') + 1)] as const));
    credential = fields.get('Credential') ?? ''; signedHeaders = fields.get('SignedHeaders') ?? ''; signature = fields.get('Signature') ?? '';
    const d = r.headers['x-amz-date'];
    when = Array.isArray(d) ? d[0] : d;
    if (!when) throw invalid('a signed request needs an X-Amz-Date header');
  } else if (presigned) {
    if (r.query.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256') throw invalid('X-Amz-Algorithm must be AWS4-HMAC-SHA256');
    credential = r.query.get('X-Amz-Credential') ?? ''; signedHeaders = r.query.get('X-Amz-SignedHeaders') ?? ''; signature = r.query.get('X-Amz-Signature') ?? '';
    when = r.query.get('X-Amz-Date');
    expiresSec = Number(r.query.get('X-Amz-Expires') ?? NaN);
    if (!Number.isInteger(expiresSec) || expiresSec < 1 || expiresSec > 604_800) throw invalid('X-Amz-Expires must be 1-604800 seconds');
  } else {
    return null;
  }
  const scope = credential.split('/');
  if (scope.length !== 5 || scope[4] !== 'aws4_request' || !scope[0]) throw invalid('Credential must be KEYID/DATE/REGION/SERVICE/aws4_request');
  if (!/^[0-9a-f]{64}$/.test(signature)) throw invalid('Signature must be 64 hex digits');
  const headers = signedHeaders.split(';').filter(Boolean);
  if (!headers.includes('host')) throw invalid('SignedHeaders must include host');
  const signedAt = amzDate(when);
  if (Number.isNaN(signedAt)) throw invalid('X-Amz-Date must look like 20261130T120000Z');
  if (scope[1] !== when!.slice(0, 8)) throw invalid('the Credential date does not match X-Amz-Date');
  return { keyId: scope[0], date: scope[1], region: scope[2], service: scope[3], signedHeaders: headers, signature, signedAt, expiresSec, presigned };
}

/** Whether the request's signature is valid for this secret at time now; throws THAW_E_AUTH_SIGNATURE when not. */
export async function verifySignature(r: SignableRequest, sig: ParsedSignature, secret: string, now: number): Promise<void> {
  if (sig.presigned) {
    if (now < sig.signedAt - MAX_SKEW_MS) throw invalid('the presigned URL is dated in the future');
    if (now > sig.signedAt + sig.expiresSec! * 1000) throw invalid('the presigned URL has expired');
  } else if (Math.abs(now - sig.signedAt) > MAX_SKEW_MS) {
    throw invalid(`the signature is dated ${new Date(sig.signedAt).toISOString()}, more than 15 minutes from the server's clock; check the client's clock`);
  }
  // A client may state the body's hash (x-amz-content-sha256); the signer then trusts the header, so the
  // header must be the hash of the body that arrived. Unsigned payloads are only for presigned URLs.
  const stated = r.headers['x-amz-content-sha256'];
  if (stated !== undefined) {
    const value = Array.isArray(stated) ? stated[0] : stated;
    if (value === 'UNSIGNED-PAYLOAD' ? !sig.presigned : value !== createHash('sha256').update(r.body).digest('hex')) {
      throw invalid('x-amz-content-sha256 is not the SHA-256 of the request body');
    }
  }
  // applyChecksum off: the signer must not add an x-amz-content-sha256 header the client did not sign.
  const signer = new SignatureV4({ credentials: { accessKeyId: sig.keyId, secretAccessKey: secret }, region: sig.region, service: sig.service, sha256: NodeSha256, uriEscapePath: sig.service !== 's3', applyChecksum: false });
  const headers: Record<string, string> = {};
  for (const h of sig.signedHeaders) {
    const v = h === 'host' ? r.host : Object.hasOwn(r.headers, h) ? r.headers[h] : undefined;
    if (v === undefined || (typeof v !== 'string' && !Array.isArray(v))) throw invalid(`the signed header ${h} is missing`);
    headers[h] = Array.isArray(v) ? v.join(',') : v;
  }
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of r.query) {
    if (sig.presigned && k === 'X-Amz-Signature') continue;
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const [hostname, port] = splitHost(r.host);
  const request = { method: r.method, protocol: 'http:', hostname, port, path: r.path, query, headers, body: r.body.length ? r.body : undefined };
  let expected: string;
  if (sig.presigned) {
    // The query already holds the signing parameters; the signer recomputes over exactly these.
    const canonicalQuery = Object.fromEntries(Object.entries(query).filter(([k]) => !k.startsWith('X-Amz-') || k === 'X-Amz-Security-Token'));
    const signed = await signer.presign({ ...request, query: canonicalQuery, headers: Object.fromEntries(Object.entries(headers).filter(([k]) => k !== 'x-amz-date')) }, {
      signingDate: new Date(sig.signedAt), expiresIn: sig.expiresSec!, signingRegion: sig.region, signingService: sig.service,
      signableHeaders: new Set(sig.signedHeaders), unhoistableHeaders: new Set(sig.signedHeaders),
    });
    expected = String(signed.query?.['X-Amz-Signature'] ?? '');
  } else {
    const signed = await signer.sign(request, { signingDate: new Date(sig.signedAt), signingRegion: sig.region, signingService: sig.service, signableHeaders: new Set(sig.signedHeaders) });
    expected = /Signature=([0-9a-f]{64})/.exec(String(signed.headers.authorization ?? signed.headers.Authorization ?? ''))?.[1] ?? '';
  }
  const a = Buffer.from(expected, 'hex');
  const b = Buffer.from(sig.signature, 'hex');
  if (a.length !== b.length || !timingSafeEqual(a, b)) {
    throw invalid('The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.');
  }
}

function splitHost(host: string): [string, number | undefined] {
  const m = /^(\[[^\]]+\]|[^:]+)(?::(\d+))?$/.exec(host);
  return m ? [m[1], m[2] ? Number(m[2]) : undefined] : [host, undefined];
}

/** Signs a request as the AWS SDK would (for Thaw's own CLI); returns the headers to add. */
export async function signRequest(o: { method: string; url: URL; headers: Record<string, string>; body: Buffer | string | undefined; accessKeyId: string; secretAccessKey: string; sessionToken?: string; region: string; service?: string; now?: Date }): Promise<Record<string, string>> {
  const signer = new SignatureV4({ credentials: { accessKeyId: o.accessKeyId, secretAccessKey: o.secretAccessKey, sessionToken: o.sessionToken }, region: o.region, service: o.service ?? 'lambda', sha256: NodeSha256 });
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of o.url.searchParams) { const p = query[k]; query[k] = p === undefined ? v : Array.isArray(p) ? [...p, v] : [p, v]; }
  const signed = await signer.sign({
    method: o.method, protocol: o.url.protocol, hostname: o.url.hostname, port: o.url.port ? Number(o.url.port) : undefined,
    path: o.url.pathname, query, headers: { ...o.headers, host: o.url.host }, body: o.body,
  }, { signingDate: o.now });
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers)) if (k.toLowerCase() !== 'host') out[k] = String(v);
  return out;
}
