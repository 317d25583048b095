// Who may call Thaw: with no key, loopback clients that address Thaw by its own host and carry no foreign
// Origin; once a key exists (the first one made in the data dir by `thaw keys create --data`, taking effect
// on the running server at once), every API call must be SigV4-signed by an active key whose role and
// functions allow it. Real server, the AWS SDK, the thaw CLI as a child process, raw sockets for bad Hosts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { connect } from 'node:net';
import { join, resolve } from 'node:path';
import { CreateFunctionCommand, DeleteFunctionCommand, InvokeCommand, LambdaClient, ListFunctionsCommand } from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { createHash, createHmac } from 'node:crypto';
import { isLoopbackAddress, requiredAction, functionOf, permits } from '../src/gateway/auth.ts';
import { signRequest } from '../src/gateway/index.ts';
import { fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const bin = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');

function thawCli(args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    const clean = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('AWS_')));
    execFile(process.execPath, [bin, ...args], { env: { ...clean, ...env }, timeout: 60_000 }, (err, stdout, stderr) => {
      res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr });
    });
  });
}

/** Sends raw bytes and returns the status line and body: for requests fetch refuses to make. */
function raw(port: number, text: string): Promise<{ status: number; body: string }> {
  return new Promise((resolvePromise, reject) => {
    const s = connect(port, '127.0.0.1', () => s.write(text));
    let d = '';
    s.on('data', (c) => { d += c; });
    s.on('error', reject);
    s.on('end', () => resolvePromise({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(d)?.[1] ?? 0), body: d.slice(d.indexOf('\r\n\r\n') + 4) }));
  });
}

const sdk = (t: TestThaw, accessKeyId: string, secretAccessKey: string) => new LambdaClient({ endpoint: t.url, region: 'us-east-1', credentials: { accessKeyId, secretAccessKey }, maxAttempts: 1 });
const create = (c: LambdaClient, name: string) => c.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { ok: event.n ?? 1 };') }) } }));

describe('with no access key: this machine only', () => {
  let t: TestThaw;
  let port: number;
  before(async () => { t = await startTestThaw({ poolSize: 0 }); port = Number(new URL(t.url).port); });
  after(async () => { await t.stop(); });

  test('malformed Host headers get 400 and the server keeps serving', async () => {
    for (const host of ['[::1', 'a b', '[', 'x:99999999', '%zz', '']) {
      const r = await raw(port, `GET /thaw/v1/functions HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
      assert.equal(r.status, 400, `Host ${JSON.stringify(host)}: ${r.body}`);
    }
    const r = await raw(port, `GET /%zz%ff/../x HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nConnection: close\r\n\r\n`);
    assert.ok(r.status >= 400 && r.status < 500, `a malformed path is a 4xx, got ${r.status}`);
    assert.equal((await fetch(`${t.url}/thaw/v1/health`)).status, 200);
  });

  test('a Host that is not the address Thaw listens on is refused (DNS rebinding)', async () => {
    const r = await raw(port, `GET /2015-03-31/functions HTTP/1.1\r\nHost: evil.example:${port}\r\nConnection: close\r\n\r\n`);
    assert.equal(r.status, 403);
    assert.equal(JSON.parse(r.body).code, 'THAW_E_HOST_REFUSED');
    const ok = await raw(port, `GET /2015-03-31/functions HTTP/1.1\r\nHost: localhost:${port}\r\nConnection: close\r\n\r\n`);
    assert.equal(ok.status, 200, 'localhost is this machine');
  });

  test('a cross-origin request to the API is refused and changes nothing (CSRF)', async () => {
    const body = JSON.stringify({ FunctionName: 'csrf', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return 1;') }).toString('base64') } });
    const r = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body, headers: { 'content-type': 'text/plain', origin: 'http://evil.example' } });
    assert.equal(r.status, 403);
    assert.equal(((await r.json()) as { code: string }).code, 'THAW_E_ORIGIN_REFUSED');
    assert.equal((await fetch(`${t.url}/2015-03-31/functions/csrf`)).status, 404, 'no function was created');
    const same = await fetch(`${t.url}/2015-03-31/functions`, { headers: { origin: t.url } });
    assert.equal(same.status, 200, 'the same origin is served');
  });

  test('the AWS SDK with any credentials works from this machine (nothing to check them against)', async () => {
    await create(sdk(t, 'whatever', 'whatever'), 'nokeys');
    const out = await sdk(t, 'x', 'y').send(new InvokeCommand({ FunctionName: 'nokeys', Payload: Buffer.from('{"n":2}') }));
    assert.deepEqual(JSON.parse(Buffer.from(out.Payload!).toString()), { ok: 2 });
  });

  test('loopback is 127.0.0.0/8 and ::1 only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) assert.ok(isLoopbackAddress(a), a);
    for (const a of ['10.0.0.1', '192.168.1.1', '::ffff:10.0.0.1', 'fe80::1', '0.0.0.0', '', undefined]) assert.ok(!isLoopbackAddress(a), String(a));
  });
});

describe('thaw up on a non-loopback address', () => {
  test('is refused while no key exists, with how to create one', async () => {
    await assert.rejects(startTestThaw({ host: '0.0.0.0', poolSize: 0 }), (e: Error & { code?: string }) => e.code === 'THAW_E_CONFIG_INVALID' && /thaw keys create/.test(e.message));
  });
});

describe('with access keys: every API call signed', () => {
  let t: TestThaw;
  let admin: { AccessKeyId: string; SecretAccessKey: string };
  before(async () => {
    t = await startTestThaw({ poolSize: 0 });
    await create(t.lambda, 'f');
    await create(t.lambda, 'g');
    // The first key, made in the data dir by another process while the server runs.
    const r = await thawCli(['keys', 'create', '--data', t.dataDir, '--role', 'admin', '--json'], {});
    assert.equal(r.code, 0, r.stderr);
    admin = JSON.parse(r.stdout);
    assert.match(admin.AccessKeyId, /^AKTH[A-Z2-7]{16}$/);
  });
  after(async () => { await t.stop(); });

  test('the first key takes effect at once: unsigned calls are refused with Lambda\'s error types', async () => {
    const r = await fetch(`${t.url}/2015-03-31/functions`);
    assert.equal(r.status, 403);
    assert.equal(r.headers.get('x-amzn-errortype'), 'MissingAuthenticationTokenException');
    await assert.rejects(sdk(t, admin.AccessKeyId, 'wrong-secret').send(new ListFunctionsCommand({})), (e: Error) => e.name === 'InvalidSignatureException');
    await assert.rejects(sdk(t, 'AKTHAAAAAAAAAAAAAAAA', 'x').send(new ListFunctionsCommand({})), (e: Error) => e.name === 'UnrecognizedClientException');
    await assert.rejects(t.lambda.send(new DeleteFunctionCommand({ FunctionName: 'f' })), (e: Error) => e.name === 'UnrecognizedClientException');
    // Every date-versioned Lambda API, not only the ones first thought of (found by review: 2017-10-31).
    for (const [method, path] of [['PUT', '/2017-10-31/functions/f/concurrency'], ['DELETE', '/2017-10-31/functions/f/concurrency'], ['GET', '/2019-09-25/functions/f/event-invoke-config'], ['GET', '/2099-01-01/functions/f']]) {
      const u = await fetch(`${t.url}${path}`, { method, body: method === 'PUT' ? '{"ReservedConcurrentExecutions":0}' : undefined });
      assert.equal(u.status, 403, `${method} ${path} unsigned`);
    }
    // Headers that are not there (nor inherited names like constructor) are a refused signature, not a crash.
    const url = new URL(`${t.url}/2015-03-31/functions`);
    const h = await signRequest({ method: 'GET', url, headers: {}, body: undefined, accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1' });
    const forged = await fetch(url, { headers: { ...h, authorization: h.authorization.replace('SignedHeaders=', 'SignedHeaders=constructor;') } });
    assert.equal(forged.status, 403);
    // A header signature with X-Amz-* names in the query is a header signature.
    const qurl = new URL(`${t.url}/2015-03-31/functions?X-Amz-Algorithm=AWS4-HMAC-SHA256`);
    const qh = await signRequest({ method: 'GET', url: qurl, headers: {}, body: undefined, accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1' });
    assert.equal((await fetch(qurl, { headers: qh })).status, 200);
    const listed = await sdk(t, admin.AccessKeyId, admin.SecretAccessKey).send(new ListFunctionsCommand({}));
    assert.deepEqual(listed.Functions!.map((f) => f.FunctionName).sort(), ['f', 'g'], 'the functions are still there');
  });

  test('the AWS SDK with the right key deploys and invokes; a tampered body or a stale date is refused', async () => {
    const c = sdk(t, admin.AccessKeyId, admin.SecretAccessKey);
    await create(c, 'signed');
    const out = await c.send(new InvokeCommand({ FunctionName: 'signed', Payload: Buffer.from('{"n":7}') }));
    assert.deepEqual(JSON.parse(Buffer.from(out.Payload!).toString()), { ok: 7 });
    const url = new URL(`${t.url}/2015-03-31/functions/signed/invocations`);
    const headers = await signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: '{"n":1}', accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1' });
    const tampered = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"n":2}' });
    assert.equal(tampered.status, 403);
    assert.equal(tampered.headers.get('x-amzn-errortype'), 'InvalidSignatureException');
    const good = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: '{"n":1}' });
    assert.equal(good.status, 200, await good.clone().text());
    const stale = await signRequest({ method: 'GET', url: new URL(`${t.url}/2015-03-31/functions`), headers: {}, body: undefined, accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1', now: new Date(Date.now() - 20 * 60_000) });
    const old = await fetch(`${t.url}/2015-03-31/functions`, { headers: stale });
    assert.equal(old.status, 403);
    assert.match(((await old.json()) as { message: string }).message, /15 minutes/);
  });

  test('a presigned URL works until it expires', async () => {
    const signer = new SignatureV4({
      credentials: { accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey }, region: 'us-east-1', service: 'lambda',
      sha256: class { #h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>; constructor(k?: string | Uint8Array) { this.#h = k ? createHmac('sha256', k) : createHash('sha256'); } update(d: string | Uint8Array) { this.#h.update(d); } async digest() { return new Uint8Array(this.#h.digest()); } reset() {} } as never,
    });
    const u = new URL(t.url);
    const presign = async (signingDate: Date) => {
      const p = await signer.presign({ method: 'GET', protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: '/2015-03-31/functions/f', query: {}, headers: { host: u.host } }, { expiresIn: 60, signingDate });
      return `${t.url}${p.path}?${new URLSearchParams(p.query as Record<string, string>)}`;
    };
    const ok = await fetch(await presign(new Date()));
    assert.equal(ok.status, 200, await ok.clone().text());
    const expired = await fetch(await presign(new Date(Date.now() - 5 * 60_000)));
    assert.equal(expired.status, 403);
    assert.match(((await expired.json()) as { message: string }).message, /expired/);
  });

  test('roles and function lists limit what a key may do', async () => {
    const a = sdk(t, admin.AccessKeyId, admin.SecretAccessKey);
    const mk = async (body: unknown) => {
      const url = new URL(`${t.url}/thaw/v1/keys`);
      const text = JSON.stringify(body);
      const h = await signRequest({ method: 'POST', url, headers: { 'content-type': 'application/json' }, body: text, accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1' });
      const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', ...h }, body: text });
      assert.equal(r.status, 201, await r.clone().text());
      return r.json() as Promise<{ AccessKeyId: string; SecretAccessKey: string }>;
    };
    const empty = await fetch(`${t.url}/thaw/v1/keys`, { method: 'POST', headers: await signRequest({ method: 'POST', url: new URL(`${t.url}/thaw/v1/keys`), headers: { 'content-type': 'application/json' }, body: '{"Role":"invoker","Functions":[]}', accessKeyId: admin.AccessKeyId, secretAccessKey: admin.SecretAccessKey, region: 'us-east-1' }).then((x) => ({ 'content-type': 'application/json', ...x })), body: '{"Role":"invoker","Functions":[]}' });
    assert.equal(empty.status, 400, 'an empty function list is refused, not read as "all functions"');
    const invoker = await mk({ Role: 'invoker', Functions: ['f'] });
    const inv = sdk(t, invoker.AccessKeyId, invoker.SecretAccessKey);
    await inv.send(new InvokeCommand({ FunctionName: 'f', Payload: Buffer.from('{}') }));
    await assert.rejects(inv.send(new InvokeCommand({ FunctionName: 'g', Payload: Buffer.from('{}') })), (e: Error) => e.name === 'AccessDeniedException');
    await assert.rejects(inv.send(new DeleteFunctionCommand({ FunctionName: 'f' })), (e: Error) => e.name === 'AccessDeniedException');
    await assert.rejects(inv.send(new ListFunctionsCommand({})), (e: Error) => e.name === 'AccessDeniedException');
    const dev = await mk({ Role: 'developer' });
    const d = sdk(t, dev.AccessKeyId, dev.SecretAccessKey);
    await create(d, 'by-dev');
    const keysByDev = await thawCli(['keys', 'list'], { THAW_ENDPOINT: t.url, AWS_ACCESS_KEY_ID: dev.AccessKeyId, AWS_SECRET_ACCESS_KEY: dev.SecretAccessKey });
    assert.equal(keysByDev.code, 1);
    assert.match(keysByDev.stderr, /THAW_E_AUTH_DENIED/);
    // Revoked: unknown from then on.
    await a.send(new ListFunctionsCommand({}));
    const revoke = await thawCli(['keys', 'revoke', dev.AccessKeyId], { THAW_ENDPOINT: t.url, AWS_ACCESS_KEY_ID: admin.AccessKeyId, AWS_SECRET_ACCESS_KEY: admin.SecretAccessKey });
    assert.equal(revoke.code, 0, revoke.stderr);
    await assert.rejects(d.send(new ListFunctionsCommand({})), (e: Error) => e.name === 'UnrecognizedClientException');
  });

  test('the thaw CLI signs with AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a profile, and says what is wrong without', async () => {
    const env = { THAW_ENDPOINT: t.url, AWS_ACCESS_KEY_ID: admin.AccessKeyId, AWS_SECRET_ACCESS_KEY: admin.SecretAccessKey };
    const listed = await thawCli(['list'], env);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^f\s/m);
    const invoked = await thawCli(['invoke', 'f', '--payload', '{"n":3}'], env);
    assert.equal(invoked.code, 0, invoked.stderr);
    const { writeFileSync, mkdtempSync } = await import('node:fs');
    const dir = mkdtempSync('/tmp/thaw-aws-');
    writeFileSync(join(dir, 'credentials'), `[other]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n[thaw]\naws_access_key_id = ${admin.AccessKeyId}\naws_secret_access_key = ${admin.SecretAccessKey}\n`);
    const byProfile = await thawCli(['list'], { THAW_ENDPOINT: t.url, AWS_SHARED_CREDENTIALS_FILE: join(dir, 'credentials'), AWS_PROFILE: 'thaw' });
    assert.equal(byProfile.code, 0, byProfile.stderr);
    const none = await thawCli(['list'], { THAW_ENDPOINT: t.url, HOME: dir });
    assert.equal(none.code, 1);
    assert.match(none.stderr, /THAW_E_AUTH_REQUIRED[\s\S]*fix: .*AWS_ACCESS_KEY_ID/);
  });

  test('HTTP triggers stay public', async () => {
    const r = await fetch(`${t.url}/f/anything`);
    assert.equal(r.status, 200);
  });
});

describe('authorization rules', () => {
  test('requiredAction() and functionOf() classify the routes', () => {
    assert.equal(requiredAction('POST', '/2015-03-31/functions/f/invocations'), 'invoke');
    assert.equal(requiredAction('GET', '/2015-03-31/functions/f'), 'read');
    assert.equal(requiredAction('DELETE', '/2015-03-31/functions/f'), 'write');
    assert.equal(requiredAction('GET', '/thaw/v1/keys'), 'admin');
    assert.equal(functionOf('/2015-03-31/functions/f%3A2/invocations'), 'f');
    assert.equal(functionOf('/2015-03-31/functions/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Ag/invocations'), 'g');
    assert.equal(functionOf('/2015-03-31/functions'), null);
    assert.equal(requiredAction('POST', '/2014-11-13/functions/f/invoke-async'), 'invoke', 'InvokeAsync is an invoke, not a write');
    // Tags name their function by ARN: a key limited to it may tag it and read its tags.
    assert.equal(functionOf('/2017-03-31/tags/arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3At'), 't');
    assert.equal(functionOf('/2017-03-31/tags/arn:aws:lambda:us-east-1:000000000000:function:t'), 't');
  });

  test('permits() follows the role and the function list', () => {
    const key = (role: 'admin' | 'developer' | 'invoker', functions: string[] | null) => ({ id: 'k', secretSealed: '', role, functions, createdAt: 0, revokedAt: null });
    assert.ok(permits(key('admin', null), 'admin', null));
    assert.ok(!permits(key('developer', null), 'admin', null));
    assert.ok(permits(key('developer', null), 'write', 'f'));
    assert.ok(!permits(key('invoker', null), 'read', 'f'));
    assert.ok(permits(key('invoker', ['f']), 'invoke', 'f'));
    assert.ok(!permits(key('invoker', ['f']), 'invoke', 'g'));
    assert.ok(!permits(key('developer', ['f']), 'read', null), 'a limited key cannot list everything');
  });
});
