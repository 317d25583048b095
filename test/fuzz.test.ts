// Property-based fuzzing (fast-check), bounded for CI: ≥ 10,000 generated HTTP requests against a live
// server (no 5xx, no crash, the server answers afterwards), and the parsers that take outside input — the
// zip/tar readers, policy specs, schedules, SigV4 — which may refuse with a THAW_E_* code and nothing else.
// A failure prints its seed and shrunk counterexample; each one found becomes a regression case below.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import fc from 'fast-check';
import { ThawError } from '../src/core/errors.ts';
import { defaultPackageLimits, readPackage, zipEntries } from '../src/codestore/index.ts';
import { parsePolicy } from '../src/policies/index.ts';
import { parseSchedule } from '../src/gateway/index.ts';
import { parseSignature } from '../src/gateway/sigv4.ts';
import { fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';
import { gzipSync } from 'node:zlib';

/** Only refusals with a stable code: anything else thrown is a bug. */
function refusesCleanly(fn: () => unknown): void {
  try { fn(); } catch (err) {
    if (!(err instanceof ThawError)) throw new Error(`threw ${(err as Error)?.name}: ${(err as Error)?.message}`);
  }
}

const RUNS = Number(process.env.THAW_FUZZ_RUNS ?? 0) || undefined;

describe('fuzzing the HTTP front door', () => {
  let t: TestThaw;
  let port = 0;
  before(async () => {
    t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
    port = Number(new URL(t.url).port);
    await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'f', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return event;') }).toString('base64') } }) });
  });
  after(async () => { await t.stop(); });

  const segment = fc.oneof(
    fc.constantFrom('f', 'nope', '%zz', '..', '.', '', 'f:1', 'f:$LATEST', 'f:live', 'arn%3Aaws%3Alambda%3Aus-east-1%3A000000000000%3Afunction%3Af', '%00', 'a'.repeat(300)),
    fc.string({ maxLength: 12 }).map(encodeURIComponent),
  );
  const path = fc.oneof(
    fc.tuple(fc.constantFrom(
      '/2015-03-31/functions/{}', '/2015-03-31/functions/{}/invocations', '/2015-03-31/functions/{}/configuration', '/2015-03-31/functions/{}/code',
      '/2015-03-31/functions/{}/versions', '/2015-03-31/functions/{}/aliases', '/2015-03-31/functions/{}/aliases/{}', '/2019-09-30/functions/{}/concurrency',
      '/2019-09-30/functions/{}/provisioned-concurrency', '/2019-09-25/functions/{}/event-invoke-config', '/thaw/v1/functions/{}/logs',
      '/thaw/v1/functions/{}/policy', '/thaw/v1/functions/{}/schedules', '/thaw/v1/functions/{}/dead-letters', '/thaw/v1/invocations/{}',
      '/thaw/v1/code/{}', '/thaw/v1/keys/{}', '/{}/{}', '/2015-03-31/functions', '/thaw/v1/node', '/thaw/v1/instances',
    ), segment, segment).map(([p, a, b]) => p.replace('{}', a).replace('{}', b)),
    fc.string({ maxLength: 40 }).map((s) => `/${s}`),
  );
  const query = fc.option(fc.oneof(fc.constantFrom('Qualifier=1', 'Qualifier=%zz', 'Qualifier=$LATEST', 'limit=-1', 'limit=abc', 'after=1e999', 'List=ALL'), fc.string({ maxLength: 20 })), { nil: undefined });
  const json = fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v));
  const body = fc.oneof(
    json,
    fc.string({ maxLength: 200 }),
    fc.record({ FunctionName: fc.oneof(fc.string({ maxLength: 10 }), fc.integer()), Runtime: fc.constantFrom('nodejs24', 'nodejs24.x', 'python3.12', 7), Handler: fc.string({ maxLength: 10 }), MemorySize: fc.oneof(fc.integer(), fc.constant('x')), Code: fc.oneof(fc.constant({ ZipFile: 'not base64!' }), fc.record({ ZipFile: fc.base64String({ maxLength: 64 }) }), fc.constant(null)) }, { requiredKeys: [] }).map((o) => JSON.stringify(o)),
  );
  const headers = fc.record({
    'x-amz-invocation-type': fc.constantFrom('RequestResponse', 'Event', 'DryRun', 'bogus'),
    'x-amz-log-type': fc.constantFrom('None', 'Tail', '??'),
    'x-amz-client-context': fc.oneof(fc.base64String({ maxLength: 32 }), fc.string({ maxLength: 10 })),
    authorization: fc.oneof(fc.constant('AWS4-HMAC-SHA256 Credential=x/y, SignedHeaders=host, Signature=zz'), fc.string({ maxLength: 30 })),
    'content-type': fc.constantFrom('application/json', 'text/plain', 'application/x-www-form-urlencoded'),
  }, { requiredKeys: [] });
  const method = fc.constantFrom('GET', 'POST', 'PUT', 'DELETE', 'PATCH', 'HEAD', 'OPTIONS');

  test('≥ 10,000 generated requests: never a 5xx, never a crash, and the server answers after', { timeout: 600_000 }, async (c) => {
    let sent = 0;
    const statuses = new Map<number, number>();
    await fc.assert(fc.asyncProperty(method, path, query, headers, body, async (m, p, q, h, b) => {
      // Only printable header values: fetch refuses the rest before sending (raw sockets cover those below).
      const hs = Object.fromEntries(Object.entries(h).filter(([, v]) => /^[\x20-\x7e]*$/.test(v)));
      let r: Response;
      try {
        r = await fetch(`${t.url}${p}${q ? `?${q}` : ''}`, { method: m, headers: hs, body: m === 'GET' || m === 'HEAD' ? undefined : b });
      } catch (err) {
        // fetch refuses to send some generated URLs (e.g. invalid percent-encoding is fine, but not all); not a server fault.
        if (/Invalid URL|invalid|Failed to parse/i.test(String((err as Error).cause ?? err))) return;
        throw err;
      }
      await r.arrayBuffer();
      sent++;
      statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      assert.ok(r.status < 500, `${m} ${p}${q ? `?${q}` : ''} → ${r.status}`);
    }), { numRuns: RUNS ?? 10_000, seed: Number(process.env.THAW_FUZZ_SEED ?? Date.now() % 2 ** 31) });
    c.diagnostic(`${sent} requests sent; statuses ${[...statuses].sort((a, b) => a[0] - b[0]).map(([s, n]) => `${s}×${n}`).join(' ')}`);
    assert.equal((await fetch(`${t.url}/thaw/v1/health`)).status, 200);
    // f answers: its result, or a refusal (generated requests may have deleted it, throttled it or broken its handler).
    const ok = await fetch(`${t.url}/2015-03-31/functions/f/invocations`, { method: 'POST', body: '{"still":"here"}' });
    assert.ok(ok.status < 500, `f answered ${ok.status}`);
  });

  test('raw malformed request lines and headers get a 4xx or a closed connection, never a crash', { timeout: 120_000 }, async () => {
    const line = fc.oneof(
      fc.tuple(method, fc.string({ maxLength: 30 }), fc.constantFrom('HTTP/1.1', 'HTTP/1.0', 'HTTP/9', '')).map(([m, p, v]) => `${m} ${p} ${v}`),
      fc.string({ maxLength: 60 }),
    );
    const header = fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 40 })).map(([k, v]) => `${k}: ${v}`);
    await fc.assert(fc.asyncProperty(line, fc.array(header, { maxLength: 5 }), fc.constantFrom(`127.0.0.1:${port}`, '[::1', 'a b', '', 'x:99999999'), async (l, hs, host) => {
      const text = `${l}\r\nHost: ${host}\r\n${hs.join('\r\n')}\r\nConnection: close\r\n\r\n`;
      const status = await new Promise<number>((resolve) => {
        const s = connect(port, '127.0.0.1', () => s.write(text));
        let d = '';
        s.setTimeout(5000, () => s.destroy());
        s.on('data', (x) => { d += x; });
        s.on('error', () => resolve(0));
        s.on('close', () => resolve(Number(/^HTTP\/1\.[01] (\d{3})/.exec(d)?.[1] ?? 0)));
      });
      assert.ok(status === 0 || status < 500, `${JSON.stringify(text.slice(0, 120))} → ${status}`);
    }), { numRuns: Math.min(RUNS ?? 1000, 1000) });
    assert.equal((await fetch(`${t.url}/thaw/v1/health`)).status, 200);
  });
});

describe('fuzzing the parsers of outside input', () => {
  const limits = defaultPackageLimits;

  test('readPackage: random bytes, and valid zips and tgzs with bytes flipped, are read or refused with a code', () => {
    const zip = zipEntries([{ path: 'index.mjs', data: Buffer.from('export const handler = async () => 1;') }, { path: 'lib/a.js', data: Buffer.alloc(200, 65) }]);
    const tar = (() => {
      const h = Buffer.alloc(512);
      h.write('index.mjs', 0); h.write('0000644\0', 100); h.write('00000000040\0', 124); h.write('        ', 148); h.write('0', 156); h.write('ustar\0', 257); h.write('00', 263);
      let sum = 0; for (const b of h) sum += b; h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148);
      return gzipSync(Buffer.concat([h, Buffer.alloc(512, 0x20), Buffer.alloc(1024)]));
    })();
    fc.assert(fc.property(fc.uint8Array({ maxLength: 2048 }), (bytes) => refusesCleanly(() => readPackage(Buffer.from(bytes), limits))), { numRuns: RUNS ?? 2000 });
    for (const base of [zip, tar]) {
      fc.assert(fc.property(fc.array(fc.tuple(fc.nat(base.length - 1), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 8 }), (flips) => {
        const b = Buffer.from(base);
        for (const [i, v] of flips) b[i] = v;
        refusesCleanly(() => readPackage(b, limits));
      }), { numRuns: RUNS ?? 2000 });
    }
  });

  test('parsePolicy and parseSchedule: any string parses or is refused with a code', () => {
    const spec = fc.oneof(fc.string({ maxLength: 40 }), fc.tuple(fc.constantFrom('fixed', 'hybrid', 'gdsf', 'thaw', 'thaw:2h', ''), fc.string({ maxLength: 20 })).map(([a, b]) => `${a}${b}`));
    fc.assert(fc.property(spec, (s) => refusesCleanly(() => parsePolicy(s))), { numRuns: RUNS ?? 3000 });
    const sched = fc.oneof(fc.string({ maxLength: 40 }), fc.tuple(fc.constantFrom('rate(', 'cron(', ''), fc.string({ maxLength: 30 }), fc.constantFrom(')', '')).map(([a, b, c]) => `${a}${b}${c}`),
      fc.array(fc.constantFrom('*', '*/5', '1-3', '0', '59', '60', '1,2', 'MON', '?', '-1', '1/0'), { minLength: 1, maxLength: 7 }).map((f) => `cron(${f.join(' ')})`));
    fc.assert(fc.property(sched, (s) => refusesCleanly(() => parseSchedule(s))), { numRuns: RUNS ?? 3000 });
  });

  test('parseSignature: any Authorization header or presigned query parses or is refused with a code', () => {
    const auth = fc.oneof(fc.string({ maxLength: 80 }),
      fc.tuple(fc.string({ maxLength: 30 }), fc.string({ maxLength: 30 }), fc.string({ maxLength: 70 })).map(([c, s, g]) => `AWS4-HMAC-SHA256 Credential=${c}, SignedHeaders=${s}, Signature=${g}`));
    fc.assert(fc.property(auth, fc.option(fc.string({ maxLength: 20 }), { nil: undefined }), (a, date) => refusesCleanly(() => parseSignature({ method: 'GET', host: 'h', path: '/', query: new URLSearchParams(), headers: { authorization: a, 'x-amz-date': date }, body: Buffer.alloc(0) }))), { numRuns: RUNS ?? 3000 });
    const q = fc.dictionary(fc.constantFrom('X-Amz-Algorithm', 'X-Amz-Credential', 'X-Amz-Date', 'X-Amz-Expires', 'X-Amz-SignedHeaders', 'X-Amz-Signature'), fc.string({ maxLength: 30 }));
    fc.assert(fc.property(q, (d) => refusesCleanly(() => parseSignature({ method: 'GET', host: 'h', path: '/', query: new URLSearchParams(d), headers: {}, body: Buffer.alloc(0) }))), { numRuns: RUNS ?? 3000 });
  });
});
