// Hostile and unlucky S3: Code.S3Bucket/S3Key naming things that are not one object of one bucket, an S3
// that lies about sizes, stalls, trickles, answers 5xx, drops the connection mid-body or revokes the keys,
// and an origin bucket whose objects are damaged or shared by two platforms. A real s3rver (test/s3.ts)
// stands behind a fault-injecting HTTP proxy the test owns (as toxiproxy would), so each fault is one
// request's answer and the rest is the real server's.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { deflateRawSync } from 'node:zlib';
import { CreateBucketCommand, ListObjectsV2Command, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateFunctionCommand, DeleteFunctionCommand, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { S3Origin, s3ClientConfig } from '../src/codestore/index.ts';
import { originConformance } from '../src/codestore/origin.case.ts';
import { startThaw } from '../src/gateway/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { startS3, type RunningS3 } from './s3.ts';

const ROLE = 'arn:aws:iam::000000000000:role/x';
const MB = 1024 * 1024;

/** What the proxy does with one request: pass it on, or one of the faults. */
type Fault =
  | 'pass'
  | { status: number; code: string } // an S3 error answer
  | 'lie' // HEAD passes with Content-Length 100; GET streams without end (until 256 MB or the client leaves)
  | 'trickle' // the real answer's headers, then one byte every 200 ms
  | 'cut' // the real answer's headers and half its body, then the connection is dropped
  | 'hold'; // held unanswered until release()

class FaultProxy {
  fault: (method: string, path: string) => Fault = () => 'pass';
  readonly seen: string[] = [];
  /** Bytes of the endless body sent before the client closed, and whether it did. */
  endless = { sent: 0, closedByClient: false };
  #server!: http.Server;
  #open = new Set<http.ServerResponse>();
  #held: (() => void)[] = [];
  #upstream: URL;
  endpoint = '';

  constructor(upstream: string) { this.#upstream = new URL(upstream); }

  async start() {
    this.#server = http.createServer((req, res) => this.#handle(req, res));
    this.#server.listen(0, '127.0.0.1');
    await once(this.#server, 'listening');
    this.endpoint = `http://127.0.0.1:${(this.#server.address() as { port: number }).port}`;
  }

  /** Requests held so far, let through. */
  release() { for (const go of this.#held.splice(0)) go(); }
  held() { return this.#held.length; }
  /** Responses still open (a stalled answer the client has not given up on). */
  open() { return this.#open.size; }

  async stop() {
    this.release();
    for (const r of this.#open) r.destroy();
    this.#server.closeAllConnections();
    this.#server.close();
  }

  #handle(req: http.IncomingMessage, res: http.ServerResponse) {
    const path = decodeURIComponent(new URL(req.url!, 'http://x').pathname);
    this.seen.push(`${req.method} ${path}`);
    this.#open.add(res);
    res.on('close', () => this.#open.delete(res));
    const fault = this.fault(req.method!, path);
    if (typeof fault === 'object') {
      req.resume();
      const body = `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${fault.code}</Code><Message>injected</Message></Error>`;
      res.writeHead(fault.status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(req.method === 'HEAD' ? undefined : body);
      return;
    }
    if (fault === 'lie' && req.method === 'GET') {
      req.resume();
      this.endless = { sent: 0, closedByClient: false };
      res.writeHead(200, { 'content-type': 'application/zip', etag: '"0123456789abcdef0123456789abcdef"' });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = () => {
        while (!res.destroyed && this.endless.sent < 256 * MB) {
          this.endless.sent += chunk.length;
          if (!res.write(chunk)) { res.once('drain', pump); return; }
        }
        if (!res.destroyed) res.end();
      };
      res.on('close', () => { if (!res.writableFinished) this.endless.closedByClient = true; });
      pump();
      return;
    }
    const forward = () => {
      const up = http.request({ host: this.#upstream.hostname, port: this.#upstream.port, method: req.method, path: req.url, headers: req.headers }, (ur) => {
        const headers = { ...ur.headers };
        if (fault === 'lie' && req.method === 'HEAD') headers['content-length'] = '100';
        res.writeHead(ur.statusCode!, headers);
        if (fault === 'trickle' || fault === 'cut') {
          void (async () => {
            const body: Buffer[] = [];
            for await (const c of ur) body.push(c as Buffer);
            const all = Buffer.concat(body);
            if (fault === 'cut') {
              res.write(all.subarray(0, all.length >> 1), () => res.socket?.destroy());
              return;
            }
            for (let i = 0; i < all.length && !res.destroyed; i++) {
              res.write(all.subarray(i, i + 1));
              await new Promise((r) => setTimeout(r, 200));
            }
            if (!res.destroyed) res.end();
          })();
          return;
        }
        ur.pipe(res);
      });
      up.on('error', () => res.destroy());
      req.pipe(up);
    };
    if (fault === 'hold') this.#held.push(forward);
    else forward();
  }
}

/** A zip of one stored... deflated entry that expands to `size` zero bytes (a zip bomb in miniature). */
function bomb(size: number): Buffer {
  const data = deflateRawSync(Buffer.alloc(size));
  const name = Buffer.from('index.mjs');
  const crc = crc32(Buffer.alloc(size));
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0); local.writeUInt16LE(20, 4); local.writeUInt16LE(8, 8);
  local.writeUInt32LE(crc, 14); local.writeUInt32LE(data.length, 18); local.writeUInt32LE(size, 22); local.writeUInt16LE(name.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0); central.writeUInt16LE(20, 4); central.writeUInt16LE(20, 6); central.writeUInt16LE(8, 10);
  central.writeUInt32LE(crc, 16); central.writeUInt32LE(data.length, 20); central.writeUInt32LE(size, 24); central.writeUInt16LE(name.length, 28);
  const cdOffset = local.length + name.length + data.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0); end.writeUInt16LE(1, 8); end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + name.length, 12); end.writeUInt32LE(cdOffset, 16);
  return Buffer.concat([local, name, data, central, name, end]);
}

function crc32(b: Buffer): number {
  let c = ~0;
  for (const byte of b) { c ^= byte; for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1)); }
  return ~c >>> 0;
}

/** The error a rejected Lambda call carries: its name, message and Thaw's code. */
async function refusal(p: Promise<unknown>): Promise<{ name: string; message: string; code: string; status: number }> {
  const e = await p.then(() => assert.fail('accepted'), (err: Error & { $response?: unknown; $metadata?: { httpStatusCode?: number }; code?: string }) => err);
  return { name: e.name, message: e.message, code: (e as unknown as { code?: string }).code ?? '', status: e.$metadata?.httpStatusCode ?? 0 };
}

let s3: RunningS3;
const put = (Key: string, Body: Buffer | string, Bucket = s3.bucket) => direct.send(new PutObjectCommand({ Bucket, Key, Body }));
let proxy: FaultProxy;
let direct: S3Client;
const savedEnv = { ...process.env };

before(async () => {
  s3 = await startS3();
  proxy = new FaultProxy(s3.endpoint);
  await proxy.start();
  // Thaw (in this process) reaches S3 through the proxy, by the usual variables.
  Object.assign(process.env, s3.env, { AWS_ENDPOINT_URL_S3: proxy.endpoint });
  direct = new S3Client(s3ClientConfig(s3.env));
  await direct.send(new CreateBucketCommand({ Bucket: 'secret-bucket' }));
});
after(async () => {
  direct?.destroy();
  await proxy?.stop();
  await s3?.stop();
  for (const k of Object.keys(process.env)) if (!(k in savedEnv)) delete process.env[k];
  Object.assign(process.env, savedEnv);
});

describe('Code.S3Bucket/S3Key from a hostile user or an unlucky S3', () => {
  let t: TestThaw;
  const create = (FunctionName: string, Code: Record<string, string>) =>
    t.lambda.send(new CreateFunctionCommand({ FunctionName, Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code }));
  const names = async () => (await t.lambda.send(new ListFunctionsCommand({}))).Functions!.map((f) => f.FunctionName);

  before(async () => {
    t = await startTestThaw({ maxPackageMb: 1, codeS3TimeoutMs: 3_000 });
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'bystander', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return "still here";') }) } }));
  });
  after(async () => { proxy.fault = () => 'pass'; await t?.stop(); });

  test('names that are not one object of one bucket are refused before any request to S3, and create nothing', async () => {
    await put('pkg.zip', pkg({ 'index.mjs': fnSource('return "another bucket\'s code";') }), 'secret-bucket');
    await put('ok.zip', pkg({ 'index.mjs': fnSource('return "ok";') }));
    const cases: [string, Record<string, string>, RegExp][] = [
      ['url-bucket', { S3Bucket: 'http://evil.example:80', S3Key: 'x.zip' }, /S3Bucket/],
      ['at-bucket', { S3Bucket: 'user@evil.example', S3Key: 'x.zip' }, /S3Bucket/],
      ['dotdot', { S3Bucket: s3.bucket, S3Key: '../secret-bucket/pkg.zip' }, /S3Key/],
      ['dot', { S3Bucket: s3.bucket, S3Key: 'a/./../../secret-bucket/pkg.zip' }, /S3Key/],
      ['huge-key', { S3Bucket: s3.bucket, S3Key: 'k'.repeat(1025) }, /S3Key/],
      ['control-key', { S3Bucket: s3.bucket, S3Key: 'ok.zip\r\nX-Injected: 1' }, /S3Key/],
      ['bad-version', { S3Bucket: s3.bucket, S3Key: 'ok.zip', S3ObjectVersion: 'v\n../x' }, /S3ObjectVersion/],
      ['huge-version', { S3Bucket: s3.bucket, S3Key: 'ok.zip', S3ObjectVersion: 'v'.repeat(1025) }, /S3ObjectVersion/],
    ];
    const before = proxy.seen.length;
    for (const [name, code, field] of cases) {
      const e = await refusal(create(name, code));
      assert.equal(e.name, 'InvalidParameterValueException', `${name}: ${e.message}`);
      assert.match(e.message, field, name);
    }
    assert.deepEqual(proxy.seen.slice(before), [], 'no request reached S3');
    const all = await names();
    for (const [name] of cases) assert.equal(all.includes(name), false, name);
  });

  test('an object whose size lies (HEAD small, body endless) is refused at the limit, without reading it all', async () => {
    await put('liar.zip', pkg({ 'index.mjs': fnSource('return 1;') }));
    proxy.fault = (_m, path) => path.endsWith('/liar.zip') ? 'lie' : 'pass';
    const e = await refusal(create('liar', { S3Bucket: s3.bucket, S3Key: 'liar.zip' }));
    proxy.fault = () => 'pass';
    assert.equal(e.name, 'RequestEntityTooLargeException', e.message);
    // Had Thaw read on, the proxy would have finished its 256 MB instead of seeing the client leave.
    await eventually(async () => proxy.endless.closedByClient, 'Thaw to hang up on the endless body', 60_000);
    assert.ok(proxy.endless.sent < 32 * MB, `Thaw stopped reading near the 1 MB limit (the proxy sent ${(proxy.endless.sent / MB).toFixed(1)} MB)`);
    assert.equal((await names()).includes('liar'), false);
  });

  test('a zip bomb fetched from S3 is refused like an uploaded one, and creates nothing', async () => {
    await put('bomb.zip', bomb(512 * MB));
    const e = await refusal(create('bomb', { S3Bucket: s3.bucket, S3Key: 'bomb.zip' }));
    assert.ok(e.status >= 400 && e.status < 500, `${e.name}: ${e.message}`);
    assert.match(e.message, /unpacks to 536870912 bytes/);
    assert.equal((await names()).includes('bomb'), false);
  });

  test('an S3 that trickles the body times out with a clear error, lets go of the connection, and others are served meanwhile', async () => {
    await put('slow.zip', pkg({ 'index.mjs': fnSource('return "slow";') }));
    proxy.fault = (m, path) => m === 'GET' && path.endsWith('/slow.zip') ? 'trickle' : 'pass';
    const pending = refusal(create('slow', { S3Bucket: s3.bucket, S3Key: 'slow.zip' }));
    const r = await invokeHttp(t.url, 'bystander');
    assert.equal(r.status, 200, r.text);
    const e = await pending;
    proxy.fault = () => 'pass';
    assert.equal(e.name, 'ServiceException', e.message);
    assert.match(e.message, /slow\.zip/);
    assert.match(e.message, /did not arrive within 3 s/);
    await eventually(async () => proxy.open() === 0, 'Thaw to close the trickling download', 60_000);
    assert.equal((await names()).includes('slow'), false);
  });

  test('S3 answering 500 or 503 is a retryable ServiceException naming the object, and creates nothing', async () => {
    await put('flaky.zip', pkg({ 'index.mjs': fnSource('return "flaky";') }));
    for (const [status, code] of [[503, 'SlowDown'], [500, 'InternalError']] as const) {
      proxy.fault = (_m, path) => path.endsWith('/flaky.zip') ? { status, code } : 'pass';
      const e = await refusal(create(`flaky${status}`, { S3Bucket: s3.bucket, S3Key: 'flaky.zip' }));
      assert.equal(e.name, 'ServiceException', e.message);
      assert.match(e.message, /flaky\.zip/);
      assert.equal((await names()).includes(`flaky${status}`), false);
    }
    proxy.fault = () => 'pass';
  });

  test('S3 gone mid-download is a clear ServiceException, not an internal error, and creates nothing', async () => {
    await put('cut.zip', pkg({ 'index.mjs': fnSource('return "cut";'), 'pad.bin': 'x'.repeat(200_000) }));
    proxy.fault = (m, path) => m === 'GET' && path.endsWith('/cut.zip') ? 'cut' : 'pass';
    const e = await refusal(create('cut', { S3Bucket: s3.bucket, S3Key: 'cut.zip' }));
    proxy.fault = () => 'pass';
    assert.equal(e.name, 'ServiceException', e.message);
    assert.doesNotMatch(e.message, /internal error/);
    assert.match(e.message, /cut\.zip/);
    assert.equal((await names()).includes('cut'), false);
  });

  test('errors never show the secret key or credentials written into the endpoint URL', async () => {
    const saved = process.env.AWS_ENDPOINT_URL_S3;
    process.env.AWS_ENDPOINT_URL_S3 = proxy.endpoint.replace('//', '//S3RVER:TopSecretInUrl@');
    try {
      const e = await refusal(create('leaky', { S3Bucket: s3.bucket, S3Key: 'absent.zip' }));
      assert.equal(e.name, 'InvalidParameterValueException', e.message);
      assert.doesNotMatch(e.message, /TopSecretInUrl|S3RVER:/);
      assert.match(e.message, new RegExp(proxy.endpoint.replace(/[.]/g, '\\.')), 'the endpoint is still named');
    } finally {
      process.env.AWS_ENDPOINT_URL_S3 = saved;
    }
  });
});

describe('the S3 origin, damaged, revoked, shared and oddly named', () => {
  const platforms: TestThaw[] = [];
  const start = async (prefix: string) => { const p = await startTestThaw({ origin: `s3://${s3.bucket}/${prefix}` }); platforms.push(p); return p; };
  const deploy = (p: TestThaw, FunctionName: string, body: string) =>
    p.lambda.send(new CreateFunctionCommand({ FunctionName, Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource(body) }) } }));
  /** Restarts on an empty cache dir, so the next start of each function reads its package from the bucket. */
  const freshCache = async (p: TestThaw) => {
    const cacheDir = await mkdtemp('/dev/shm/thaw-hostile-s3-cache-');
    await p.restart({ cacheDir });
    // stop() removes the test's own cache dir; this one is removed with it.
    return cacheDir;
  };
  const extra: string[] = [];
  after(async () => {
    proxy.fault = () => 'pass';
    for (const p of platforms) await p.stop().catch(() => {});
    for (const d of extra) await rm(d, { recursive: true, force: true });
  });

  test('a package object damaged in the bucket is refused on a cold start, never run, nor served as the code', async () => {
    const p = await start('damaged');
    const fn = await deploy(p, 'victim', 'return "good code";');
    const sha = Buffer.from(fn.CodeSha256!, 'base64').toString('hex');
    // The package and what was built from it (its image) alike: whatever a cold start reads is damaged.
    const stored = (await direct.send(new ListObjectsV2Command({ Bucket: s3.bucket, Prefix: 'damaged/' }))).Contents!.map((o) => o.Key!);
    assert.ok(stored.includes(`damaged/${sha.slice(0, 2)}/${sha}`));
    for (const key of stored) await put(key, pkg({ 'index.mjs': fnSource('return "EVIL";') }));
    extra.push(await freshCache(p));
    const r = await invokeHttp(p.url, 'victim');
    assert.notEqual(r.status, 200, r.text);
    assert.doesNotMatch(r.text, /EVIL/);
    const code = await fetch(`${p.url}/thaw/v1/code/${sha}`, { signal: AbortSignal.timeout(60_000) });
    const bytes = Buffer.from(await code.arrayBuffer().catch(() => new ArrayBuffer(0)));
    assert.ok(code.status !== 200 || !bytes.includes(Buffer.from('EVIL')), `the damaged bytes were served as the package (HTTP ${code.status})`);
  });

  test('the code download survives S3 dropping the connection mid-body; the platform keeps serving', async () => {
    const p = await start('dropped');
    const fn = await p.lambda.send(new CreateFunctionCommand({ FunctionName: 'big', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return 1;'), 'pad.bin': 'y'.repeat(300_000) }) } }));
    const sha = Buffer.from(fn.CodeSha256!, 'base64').toString('hex');
    proxy.fault = (m, path) => m === 'GET' && path.endsWith(`/${sha}`) ? 'cut' : 'pass';
    // Bounded, so a download left hanging fails the test instead of stalling it.
    const got = await fetch(`${p.url}/thaw/v1/code/${sha}`, { signal: AbortSignal.timeout(60_000) })
      .then(async (r) => ({ status: r.status, bytes: (await r.arrayBuffer()).byteLength }))
      .catch((e: Error) => e.name === 'TimeoutError' ? 'hung' as const : null);
    proxy.fault = () => 'pass';
    if (got === 'hung') assert.fail('the download was left hanging');
    assert.ok(got === null || got.status !== 200 || got.bytes !== fn.CodeSize, 'a cut download is never a complete-looking package');
    assert.equal((await fetch(`${p.url}/thaw/v1/node`)).status, 200, 'the platform is still up');
  });

  test('keys revoked after start: a cold start fails with THAW_E_ORIGIN_UNAVAILABLE, the platform stays up', async () => {
    const p = await start('revoked');
    await deploy(p, 'locked-out', 'return "x";');
    extra.push(await freshCache(p));
    proxy.fault = (_m, path) => path.startsWith(`/${s3.bucket}/revoked/`) ? { status: 403, code: 'InvalidAccessKeyId' } : 'pass';
    const r = await invokeHttp(p.url, 'locked-out');
    proxy.fault = () => 'pass';
    assert.notEqual(r.status, 200);
    assert.match(r.text, /THAW_E_ORIGIN_UNAVAILABLE/);
    assert.match(r.text, /InvalidAccessKeyId/);
    assert.equal((await fetch(`${p.url}/thaw/v1/node`)).status, 200);
  });

  test('keys wrong at start: thaw refuses to start with THAW_E_ORIGIN_UNAVAILABLE, and shows no secret', async () => {
    const saved = { id: process.env.AWS_ACCESS_KEY_ID, secret: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = 'WRONGKEYID';
    process.env.AWS_SECRET_ACCESS_KEY = 'WrongSecretValue';
    const dataDir = await mkdtemp('/tmp/thaw-hostile-s3-data-');
    const cacheDir = await mkdtemp('/dev/shm/thaw-hostile-s3-cache-');
    try {
      const err = await startThaw({ port: 0, dataDir, cacheDir, origin: `s3://${s3.bucket}/wrong` }).then(async (th) => { await th.close(); return assert.fail('started'); }, (e: Error & { code?: string }) => e);
      assert.equal(err.code, 'THAW_E_ORIGIN_UNAVAILABLE', err.message);
      assert.match(err.message, /HTTP 403/);
      assert.match((err as Error & { fix?: string }).fix ?? '', /credentials/);
      assert.doesNotMatch(err.message, /WrongSecretValue/);
    } finally {
      process.env.AWS_ACCESS_KEY_ID = saved.id;
      process.env.AWS_SECRET_ACCESS_KEY = saved.secret;
      await rm(dataDir, { recursive: true, force: true });
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  test('two platforms sharing one bucket prefix: one deleting its function keeps the package the other still runs', async () => {
    const a = await start('shared');
    const b = await start('shared');
    const body = 'return "shared code";';
    await deploy(a, 'mine', body);
    await deploy(b, 'theirs', body);
    await a.lambda.send(new DeleteFunctionCommand({ FunctionName: 'mine' }));
    extra.push(await freshCache(b));
    const r = await invokeHttp(b.url, 'theirs');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json, 'shared code');
  });

  test('a platform alone on its prefix still removes a deleted function\'s package from the bucket', async () => {
    const p = await start('alone');
    const fn = await deploy(p, 'gone', 'return "gone";');
    const sha = Buffer.from(fn.CodeSha256!, 'base64').toString('hex');
    const origin = new S3Origin({ bucket: s3.bucket, prefix: 'alone' }, direct, s3.endpoint);
    assert.equal(await origin.has(sha), true);
    await p.lambda.send(new DeleteFunctionCommand({ FunctionName: 'gone' }));
    assert.equal(await origin.has(sha), false);
  });

  test('a function deleted while its cold start downloads leaves no package behind, and the start fails cleanly', async () => {
    const p = await start('racing');
    const fn = await deploy(p, 'racer', 'return "racer";');
    const sha = Buffer.from(fn.CodeSha256!, 'base64').toString('hex');
    extra.push(await freshCache(p));
    // The package or its image, whichever the cold start reads.
    proxy.fault = (m, path) => m === 'GET' && path.startsWith(`/${s3.bucket}/racing/`) ? 'hold' : 'pass';
    const invoked = invokeHttp(p.url, 'racer');
    await eventually(async () => proxy.held() > 0, 'the cold start to ask S3 for the code', 60_000);
    await p.lambda.send(new DeleteFunctionCommand({ FunctionName: 'racer' }));
    proxy.fault = () => 'pass';
    proxy.release();
    const r = await invoked;
    assert.ok(r.status === 200 || r.status >= 400, r.text);
    const origin = new S3Origin({ bucket: s3.bucket, prefix: 'racing' }, direct, s3.endpoint);
    assert.equal(await origin.has(sha), false, 'the package left the bucket');
    assert.notEqual((await invokeHttp(p.url, 'racer')).status, 200, 'the function is gone');
    assert.equal((await getJson(`${p.url}/thaw/v1/node`)).codeCache.entries ?? 0, 0, 'no cached code of a deleted function');
  });
});

// A prefix with spaces, plus signs, percent signs and non-ASCII letters: every key is still its own object.
originConformance('S3Origin under an oddly spelled prefix', async () => {
  const client = new S3Client(s3ClientConfig(s3.env));
  const origin = new S3Origin({ bucket: s3.bucket, prefix: 'odd prefix+%41~ü/x y' }, client, s3.endpoint);
  return {
    origin,
    damage: async (hash) => { await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: origin.key(hash), Body: 'damaged' })); },
    close: async () => { client.destroy(); },
  };
});
