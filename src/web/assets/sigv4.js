// AWS Signature Version 4 in the browser, with WebCrypto: the page signs each API call itself with the access
// key the user gave, as the AWS SDK and `thaw` do, so the gateway checks it exactly as theirs
// (src/gateway/sigv4.ts) and no other kind of credential exists. Signed: host, x-amz-date and
// x-amz-content-sha256 (the body's hash, which the gateway checks against the body).

const enc = new TextEncoder();

/** @param {ArrayBuffer} buf */
const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

/** @param {string | Uint8Array<ArrayBuffer>} data */
export const sha256Hex = async (data) => hex(await crypto.subtle.digest('SHA-256', typeof data === 'string' ? enc.encode(data) : data));

/**
 * @param {string | ArrayBuffer} key
 * @param {string} data
 */
async function hmac(key, data) {
  const k = await crypto.subtle.importKey('raw', typeof key === 'string' ? enc.encode(key) : key, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  return crypto.subtle.sign('HMAC', k, enc.encode(data));
}

/**
 * RFC 3986 escaping, as the AWS signer's escapeUri.
 * @param {string} s
 */
const escape = (s) => encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/**
 * The canonical path: the path as sent (already percent-encoded), dot segments resolved, escaped once more.
 * @param {string} path
 */
export function canonicalPath(path) {
  /** @type {string[]} */
  const segments = [];
  for (const s of path.split('/')) {
    if (s === '' || s === '.') continue;
    if (s === '..') segments.pop(); else segments.push(s);
  }
  const normalized = `/${segments.join('/')}${segments.length && path.endsWith('/') ? '/' : ''}`;
  return escape(normalized).replace(/%2F/g, '/');
}

/** @param {URLSearchParams} params */
export function canonicalQuery(params) {
  /** @type {Map<string, string[]>} */
  const byKey = new Map();
  for (const [k, v] of params) {
    const key = escape(k);
    const list = byKey.get(key) ?? [];
    list.push(`${key}=${escape(v)}`);
    byKey.set(key, list);
  }
  return [...byKey.keys()].sort().map((k) => (byKey.get(k) ?? []).sort().join('&')).join('&');
}

/**
 * The headers that sign one request.
 * @param {{ method: string, url: URL, body: string, accessKeyId: string, secretAccessKey: string, region?: string, service?: string, now?: Date }} r
 * @returns {Promise<Record<string, string>>}
 */
export async function signedHeaders(r) {
  const region = r.region ?? 'us-east-1';
  const service = r.service ?? 'lambda';
  // The browser's own clock dates the signature; the gateway accepts 15 minutes of skew, as AWS does.
  const amzDate = (r.now ?? new Date()).toISOString().replace(/[-:]/g, '').replace(/\.\d{3}Z$/, 'Z');
  const day = amzDate.slice(0, 8);
  const payloadHash = await sha256Hex(r.body);
  const headers = { host: r.url.host, 'x-amz-content-sha256': payloadHash, 'x-amz-date': amzDate };
  const names = Object.keys(headers).sort();
  const canonical = [
    r.method, canonicalPath(r.url.pathname), canonicalQuery(r.url.searchParams),
    ...names.map((n) => `${n}:${headers[/** @type {keyof typeof headers} */ (n)]}`), '',
    names.join(';'), payloadHash,
  ].join('\n');
  const scope = `${day}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, await sha256Hex(canonical)].join('\n');
  let key = await hmac(`AWS4${r.secretAccessKey}`, day);
  for (const part of [region, service, 'aws4_request']) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  return {
    'x-amz-date': amzDate,
    'x-amz-content-sha256': payloadHash,
    authorization: `AWS4-HMAC-SHA256 Credential=${r.accessKeyId}/${scope}, SignedHeaders=${names.join(';')}, Signature=${signature}`,
  };
}
