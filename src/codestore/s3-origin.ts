// The S3-compatible origin (`--origin s3://BUCKET[/PREFIX]`): packages, layers and snapshots as objects
// PREFIX/ab/<sha256> of a bucket, through the AWS SDK's S3 client with the usual AWS variables; and reading
// a package a deploy names by Code.S3Bucket/S3Key. Imports src/core and the codestore's origin contract.
import { randomUUID } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import {
  DeleteObjectCommand, GetObjectCommand, HeadBucketCommand, HeadObjectCommand, ListObjectsV2Command, PutObjectCommand, S3Client,
  type S3ClientConfig,
} from '@aws-sdk/client-s3';
import { ThawError } from '../core/errors.ts';
import { sha256 } from './blobs.ts';
import type { Origin, PutResult } from './origin.ts';

const SHA = /^[0-9a-f]{64}$/;
// S3's bucket naming rules (lowercase letters, digits, dots and hyphens; 3-63 characters).
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/**
 * The id this data dir's platform registers on a bucket prefix with (kept in DATA/origin-owner, made on the
 * first start): a restart is the same platform, another data dir is another.
 */
export function originOwner(dataDir: string): string {
  const file = join(dataDir, 'origin-owner');
  if (!existsSync(file)) writeFileSync(file, `${randomUUID()}\n`, { mode: 0o600, flag: 'wx' });
  return readFileSync(file, 'utf8').trim();
}

export interface S3Location {
  readonly bucket: string;
  /** Key prefix without leading or trailing slashes; '' for the bucket's root. */
  readonly prefix: string;
}

/** `s3://BUCKET[/PREFIX]` → bucket and prefix; anything else is THAW_E_CONFIG_INVALID naming what to give. */
export function parseS3Url(url: string): S3Location {
  const m = /^s3:\/\/([^/]+)(?:\/(.*))?$/.exec(url);
  const bucket = m?.[1] ?? '';
  const prefix = (m?.[2] ?? '').replace(/^\/+|\/+$/g, '');
  if (!m || !BUCKET.test(bucket) || /[\\\0]|(^|\/)\.\.?(\/|$)|\/\//.test(prefix)) {
    throw new ThawError('THAW_E_CONFIG_INVALID', `the origin must be s3://BUCKET or s3://BUCKET/PREFIX (bucket: 3-63 lowercase letters, digits, dots and hyphens), got ${JSON.stringify(url)}`);
  }
  return { bucket, prefix };
}

/**
 * The S3 client's settings from the usual AWS variables of `env`. Left to itself the SDK reads the endpoint
 * (AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL) and keys (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, else
 * profiles and roles) from process.env; they are given here when `env` has them, so a client can be made
 * for another environment (a test's server). What the SDK does not do is added: a region when only
 * AWS_DEFAULT_REGION or none is set (it would refuse to sign), path-style addressing for an explicit
 * endpoint (S3-compatible servers seldom serve bucket subdomains), and checksums only where S3 requires
 * them (several compatible servers refuse the newer default ones; objects are checked against their
 * SHA-256 name anyway).
 */
export function s3ClientConfig(env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  const endpoint = s3Endpoint(env);
  const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
    ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, ...(env.AWS_SESSION_TOKEN ? { sessionToken: env.AWS_SESSION_TOKEN } : {}) }
    : undefined;
  return {
    region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
    ...(endpoint ? { endpoint } : {}),
    ...(keys ? { credentials: keys } : {}),
    forcePathStyle: endpoint !== null,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
    // A vanished endpoint fails fast instead of holding a cold start for minutes.
    requestHandler: { connectionTimeout: 5_000, requestTimeout: 120_000 },
    maxAttempts: 3,
  };
}

/**
 * The endpoint as messages show it: without user:password, which an operator may have written into the URL
 * (the SDK ignores them, an error message would not).
 */
export function shownEndpoint(env: NodeJS.ProcessEnv = process.env): string {
  const e = s3Endpoint(env);
  return e ? e.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/@]*@/i, '$1') : 'AWS';
}

/** The endpoint the SDK will use from the environment, or null for AWS's own. */
export function s3Endpoint(env: NodeJS.ProcessEnv = process.env): string | null {
  if (env.AWS_IGNORE_CONFIGURED_ENDPOINT_URLS === 'true') return null;
  return env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || null;
}

/** An S3 error that means "no such object" (HEAD answers a bare 404 named NotFound). */
const isMissing = (e: unknown) => {
  const err = e as { name?: string; $metadata?: { httpStatusCode?: number } };
  return err?.name === 'NoSuchKey' || err?.name === 'NotFound' || (err?.$metadata?.httpStatusCode === 404 && err?.name !== 'NoSuchBucket');
};

/** A short cause for a message: the S3 error code or the network error, never a stack. */
const causeOf = (e: unknown) => {
  const err = e as { name?: string; code?: string; message?: string; $metadata?: { httpStatusCode?: number } };
  const status = err?.$metadata?.httpStatusCode;
  if (err?.code && /^E[A-Z]+$/.test(err.code)) return `${err.code} (${err.message})`;
  // A HEAD's error has no body to name it: the SDK calls it Unknown, its status says more.
  if (err?.name === 'Unknown' && status) return `${http.STATUS_CODES[status] ?? 'error'} (HTTP ${status})`;
  if (err?.name && err.name !== 'Error') return `${err.name}${status ? ` (HTTP ${status})` : ''}${err.message && err.message !== err.name && err.message !== 'UnknownError' ? `: ${err.message}` : ''}`;
  return err?.message ?? String(e);
};

export class S3Origin implements Origin {
  readonly kind = 's3';
  readonly bucket: string;
  readonly prefix: string;
  /** The endpoint's URL, or `AWS` for AWS's own; for messages. */
  readonly endpoint: string;
  readonly #client: S3Client;
  /**
   * This platform's id and where platforms writing the prefix register (PREFIX/.thaw-owners/<id>), or null
   * for an origin that never deletes on anyone's behalf but its own (tests, readers).
   */
  readonly #owners: { id: string; dir: string } | null;

  constructor(where: S3Location, client: S3Client = new S3Client(s3ClientConfig()), endpoint = shownEndpoint(), owner?: string | { id: string; dir: string }) {
    this.bucket = where.bucket;
    this.prefix = where.prefix;
    this.#client = client;
    this.endpoint = endpoint;
    this.#owners = typeof owner === 'string' ? { id: owner, dir: `${where.prefix ? `${where.prefix}/` : ''}.thaw-owners/` } : owner ?? null;
  }

  get location() { return `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ''}`; }

  /** The same bucket under a sub-prefix (snapshots beside packages), sharing the client. */
  under(sub: string): S3Origin {
    return new S3Origin({ bucket: this.bucket, prefix: this.prefix ? `${this.prefix}/${sub}` : sub }, this.#client, this.endpoint, this.#owners ?? undefined);
  }

  key(hash: string): string {
    if (!SHA.test(hash)) throw new ThawError('THAW_E_INTERNAL', `${JSON.stringify(hash)} is not a SHA-256`);
    return `${this.prefix ? `${this.prefix}/` : ''}${hash.slice(0, 2)}/${hash}`;
  }

  /**
   * Proves at start that the bucket is there and writable, by writing, reading back and removing a probe
   * object: a typo in the bucket or a wrong endpoint is found now, not at the first cold start.
   */
  async check(): Promise<void> {
    const probe = `${this.prefix ? `${this.prefix}/` : ''}.thaw-probe-${process.pid}-${Math.random().toString(36).slice(2)}`;
    try {
      await this.#client.send(new HeadBucketCommand({ Bucket: this.bucket }));
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: probe, Body: Buffer.from('thaw') }));
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: probe }));
      if (this.#owners) await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: `${this.#owners.dir}${this.#owners.id}`, Body: Buffer.from('thaw') }));
    } catch (err) {
      throw this.#unavailable('is not reachable and writable', err);
    }
  }

  /**
   * HEAD first (the usual case on a redeploy is that the bytes are there), then a PUT conditional on the
   * key being absent: on S3 and servers that honour If-None-Match, of two concurrent puts exactly one
   * reports created; a server that ignores the condition overwrites with the same bytes, which is harmless.
   */
  async put(bytes: Buffer, known?: string): Promise<PutResult> {
    const hash = known ?? sha256(bytes);
    const result = (created: boolean) => ({ sha256: hash, size: bytes.length, created });
    if (await this.has(hash)) return result(false);
    try {
      await this.#client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.key(hash), Body: bytes, ContentLength: bytes.length, IfNoneMatch: '*' }));
    } catch (err) {
      const status = (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
      if (status === 412 || status === 409) return result(false);
      throw this.#unavailable(`could not store object ${hash}`, err);
    }
    return result(true);
  }

  async has(hash: string): Promise<boolean> {
    if (!SHA.test(hash)) return false;
    try {
      await this.#client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.key(hash) }));
      return true;
    } catch (err) {
      if (isMissing(err)) return false;
      throw this.#unavailable(`could not look up object ${hash}`, err);
    }
  }

  async get(hash: string): Promise<Buffer> {
    const got = await this.#object(hash);
    // A connection dropped mid-body is the origin's failure, said as such, not an internal error.
    const bytes = Buffer.from(await got.Body!.transformToByteArray().catch((err) => { throw this.#unavailable(`could not read object ${hash}`, err); }));
    if (sha256(bytes) !== hash) throw new ThawError('THAW_E_INTERNAL', `object ${hash} in the origin ${this.location} is damaged (its hash differs)`);
    return bytes;
  }

  async stream(hash: string): Promise<Readable> {
    return (await this.#object(hash, undefined, 'THAW_E_PACKAGE_NOT_FOUND')).Body as unknown as Readable;
  }

  async getRange(hash: string, start: number, end: number): Promise<Buffer> {
    if (end <= start) return Buffer.alloc(0);
    try {
      const r = await this.#object(hash, `bytes=${start}-${end - 1}`);
      const bytes = Buffer.from(await r.Body!.transformToByteArray());
      // A server may answer with more than was asked (the whole object, or s3rver's bytes=0-0 as 0-end):
      // what it sent starts where its Content-Range says, and is cut to the range asked for.
      const from = Number(/^bytes (\d+)-/.exec(r.ContentRange ?? '')?.[1] ?? 0);
      return bytes.subarray(start - from, end - from);
    } catch (err) {
      // A range that starts past the end reads nothing, as a short read of a file does.
      if ((err as ThawError).cause && ((err as ThawError).cause as { name?: string }).name === 'InvalidRange') return Buffer.alloc(0);
      throw err;
    }
  }

  /**
   * Removes the object, unless another platform writes the same prefix: each platform's store knows only
   * its own functions, so an object one no longer needs may be another's running code (the origin is
   * content-addressed: the same zip deployed twice is one object). A shared prefix keeps its objects; a
   * platform that leaves it for good removes its PREFIX/.thaw-owners/<id> marker by hand.
   */
  async delete(hash: string): Promise<void> {
    if (!SHA.test(hash)) return;
    if (await this.#shared()) return;
    try {
      await this.#client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.key(hash) }));
    } catch (err) {
      if (!isMissing(err)) throw this.#unavailable(`could not delete object ${hash}`, err);
    }
  }

  async list(): Promise<string[]> {
    const base = this.prefix ? `${this.prefix}/` : '';
    // Only PREFIX/ab/<sha>: objects under deeper prefixes (snapshots/) belong to another origin.
    const own = new RegExp(`^${base.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}[0-9a-f]{2}/([0-9a-f]{64})$`);
    const out: string[] = [];
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: base, ContinuationToken: token }));
      } catch (err) {
        throw this.#unavailable('could not be listed', err);
      }
      for (const o of page.Contents ?? []) {
        const m = own.exec(o.Key ?? '');
        if (m && m[1].startsWith(o.Key!.slice(base.length, base.length + 2))) out.push(m[1]);
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
    return out.sort();
  }

  close(): void { this.#client.destroy(); }

  /** Whether a platform other than this one has registered on the prefix. */
  async #shared(): Promise<boolean> {
    if (!this.#owners) return false;
    const { id, dir } = this.#owners;
    try {
      const page = await this.#client.send(new ListObjectsV2Command({ Bucket: this.bucket, Prefix: dir }));
      return (page.Contents ?? []).some((o) => o.Key !== `${dir}${id}`);
    } catch (err) {
      throw this.#unavailable('could not be listed', err);
    }
  }

  async #object(hash: string, range?: string, missing: 'THAW_E_INTERNAL' | 'THAW_E_PACKAGE_NOT_FOUND' = 'THAW_E_INTERNAL') {
    try {
      return await this.#client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.key(hash), Range: range }));
    } catch (err) {
      if (isMissing(err)) throw new ThawError(missing, `object ${hash} is missing from the origin ${this.location}`, { cause: err });
      throw this.#unavailable(`could not read object ${hash}`, err);
    }
  }

  #unavailable(what: string, err: unknown): ThawError {
    if (err instanceof ThawError) return err;
    return new ThawError('THAW_E_ORIGIN_UNAVAILABLE', `the origin ${this.location} (bucket ${this.bucket} at endpoint ${this.endpoint}) ${what}: ${causeOf(err)}`, {
      cause: err, details: { bucket: this.bucket, endpoint: this.endpoint },
    });
  }
}

/** Where a deploy's Code.S3Bucket/S3Key (and S3ObjectVersion) point. */
export interface S3ObjectRef {
  readonly bucket: string;
  readonly key: string;
  readonly version?: string;
}

/**
 * Reads a package a deploy names by bucket and key: its size is checked with a HEAD before a byte is
 * read, so a 5 GB object is refused without being downloaded. An object that cannot be read (no such
 * bucket, key or version, access denied, no credentials) is the caller's to fix, said as Lambda says it
 * (InvalidParameterValueException); an endpoint that does not answer is not. `field` names the request's
 * members in messages (`Code.`).
 */
/**
 * Refuses, before any request, a reference that is not one object of one bucket: a bucket that is not a bucket
 * name (a URL, `user@host`), a key with `.` or `..` segments (HTTP stacks and path-style servers resolve them,
 * `b/../other/k` reads bucket `other`), control characters, or a key or version longer than S3 allows.
 * The patterns are Lambda's own for these fields.
 */
export function checkS3Ref(ref: S3ObjectRef, field = ''): void {
  const bad = (member: string, why: string, value: string) => new ThawError('THAW_E_REQUEST_INVALID',
    `${field}${member} ${why} (got ${JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}…` : value)})`, { details: { field: `${field}${member}` } });
  if (!/^[0-9A-Za-z.\-_]{3,63}$/.test(ref.bucket) || ref.bucket.endsWith('.')) throw bad('S3Bucket', 'must be a bucket name: 3-63 letters, digits, dots, hyphens and underscores, not ending in a dot', ref.bucket);
  if (ref.key.length < 1 || ref.key.length > 1024) throw bad('S3Key', 'must be 1-1024 characters', ref.key);
  if (/[\0-\x1f\x7f]/.test(ref.key)) throw bad('S3Key', 'must not contain control characters', ref.key);
  if (ref.key.split('/').some((seg) => seg === '.' || seg === '..')) throw bad('S3Key', 'must not have "." or ".." segments: servers resolve them to another key or bucket', ref.key);
  if (ref.version !== undefined && !/^[\x21-\x7e]{1,1024}$/.test(ref.version)) throw bad('S3ObjectVersion', 'must be 1-1024 printable characters without spaces', ref.version);
}

export async function readS3Package(client: S3Client, ref: S3ObjectRef, maxBytes: number, field = '', endpoint = shownEndpoint(), timeoutMs = 60_000): Promise<Buffer> {
  checkS3Ref(ref, field);
  const where = `${field}S3Bucket/${field}S3Key s3://${ref.bucket}/${ref.key}${ref.version ? ` (version ${ref.version})` : ''}`;
  const q = { Bucket: ref.bucket, Key: ref.key, ...(ref.version ? { VersionId: ref.version } : {}) };
  const details = { bucket: ref.bucket, key: ref.key, field: `${field}S3Key` };
  const fail = (err: unknown): never => {
    const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
    const status = e?.$metadata?.httpStatusCode;
    if (e?.name === 'CredentialsProviderError') {
      throw new ThawError('THAW_E_CODE_S3_UNREADABLE', `Thaw has no credentials to read ${where}: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (or a profile) where thaw up runs`, { cause: err, details });
    }
    if (status !== undefined && status >= 400 && status < 500) {
      // HEAD answers without a body: a 404 is a missing bucket or key alike.
      const code = status === 404 ? (e?.name === 'NotFound' ? 'NoSuchKey' : e?.name) : e?.name;
      throw new ThawError('THAW_E_CODE_S3_UNREADABLE', `Error occurred while GetObject. S3 Error Code: ${code}. ${where} at endpoint ${endpoint} cannot be read: ${causeOf(err)}`, { cause: err, details });
    }
    throw new ThawError('THAW_E_CODE_S3_UNREACHABLE', `could not read ${where} from endpoint ${endpoint}: ${causeOf(err)}`, { cause: err, details });
  };
  // One deadline for the whole read, body included: an S3 that trickles a byte at a time never trips an
  // idle timeout, and would hold the deploy and its buffers for as long as it likes.
  const deadline = AbortSignal.timeout(timeoutMs);
  const failOrLate = (err: unknown): never => {
    if (deadline.aborted) throw new ThawError('THAW_E_CODE_S3_UNREACHABLE', `${where} did not arrive within ${Math.round(timeoutMs / 1000)} s from endpoint ${endpoint}; the read was abandoned`, { cause: err, details });
    return fail(err);
  };
  const tooLarge = (size: number) => new ThawError('THAW_E_PACKAGE_TOO_LARGE', `${where} is ${(size / 1048576).toFixed(1)} MB; the limit is ${(maxBytes / 1048576).toFixed(0)} MB`, { details });
  const head = await client.send(new HeadObjectCommand(q), { abortSignal: deadline }).catch(failOrLate);
  if ((head.ContentLength ?? 0) > maxBytes) throw tooLarge(head.ContentLength!);
  // The object that was measured: one replaced between HEAD and GET is refused, not read unmeasured. A server
  // that ignores If-Match (s3rver) or a HEAD that lied is caught by counting the body as it comes.
  const got = await client.send(new GetObjectCommand({ ...q, ...(head.ETag ? { IfMatch: head.ETag } : {}) }), { abortSignal: deadline }).catch(failOrLate);
  const body = got.Body as Readable;
  if ((got.ContentLength ?? 0) > maxBytes) { body.destroy(); throw tooLarge(got.ContentLength!); }
  const bytes = await readAtMost(body, maxBytes, deadline).catch(failOrLate);
  if (!bytes) throw new ThawError('THAW_E_PACKAGE_TOO_LARGE', `${where} is larger than its size said, and over the limit of ${(maxBytes / 1048576).toFixed(0)} MB; reading stopped there`, { details });
  return bytes;
}

/** The stream's bytes, or null (and the stream destroyed) once they pass `maxBytes`; `signal` destroys it. */
async function readAtMost(body: Readable, maxBytes: number, signal: AbortSignal): Promise<Buffer | null> {
  const stop = () => body.destroy(signal.reason as Error);
  if (signal.aborted) stop();
  signal.addEventListener('abort', stop, { once: true });
  try {
    const chunks: Buffer[] = [];
    let n = 0;
    for await (const chunk of body) {
      n += (chunk as Buffer).length;
      if (n > maxBytes) { body.destroy(); return null; }
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  } finally {
    signal.removeEventListener('abort', stop);
  }
}
