// OpenTelemetry traces end to end: Thaw started with OTEL_EXPORTER_OTLP_ENDPOINT pointing at an OTLP/HTTP
// receiver started here (node:http on loopback, decoding the JSON the SDK's exporter posts to /v1/traces);
// real instance processes, real HTTP triggers, a real context.invoke chain.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { CreateFunctionCommand } from '@aws-sdk/client-lambda';
import { eventually, fnSource, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

interface OtlpValue { stringValue?: string; boolValue?: boolean; intValue?: number | string; doubleValue?: number }
interface OtlpSpan {
  traceId: string; spanId: string; parentSpanId?: string; name: string; kind: number;
  startTimeUnixNano: string | number; endTimeUnixNano: string | number;
  attributes?: { key: string; value: OtlpValue }[]; status?: { code?: number; message?: string };
}
interface Span extends Omit<OtlpSpan, 'attributes'> { attrs: Record<string, unknown>; start: bigint; end: bigint; resource: Record<string, unknown> }

const attrsOf = (kvs: { key: string; value: OtlpValue }[] = []) =>
  Object.fromEntries(kvs.map(({ key, value }) => [key, value.stringValue ?? value.boolValue ?? (value.intValue !== undefined ? Number(value.intValue) : value.doubleValue)]));

/** An OTLP/HTTP traces receiver: keeps every span posted to /v1/traces, as the exporter's JSON encodes it. */
function otlpReceiver() {
  const spans: Span[] = [];
  const contentTypes = new Set<string>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      if (req.method !== 'POST' || req.url !== '/v1/traces') { res.writeHead(404).end(); return; }
      contentTypes.add(String(req.headers['content-type']));
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      for (const rs of body.resourceSpans ?? []) {
        const resource = attrsOf(rs.resource?.attributes);
        for (const ss of rs.scopeSpans ?? []) {
          for (const s of ss.spans as OtlpSpan[]) {
            spans.push({ ...s, attrs: attrsOf(s.attributes), start: BigInt(s.startTimeUnixNano), end: BigInt(s.endTimeUnixNano), resource });
          }
        }
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  return { server, spans, contentTypes };
}

/** A W3C traceparent of a caller of ours. */
const callerSpan = (sampled = true) => {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  const traceId = hex(32);
  const spanId = hex(16);
  return { traceId, spanId, header: `00-${traceId}-${spanId}-${sampled ? '01' : '00'}` };
};

describe('OpenTelemetry traces over OTLP/HTTP', () => {
  const receiver = otlpReceiver();
  let t: TestThaw;
  const saved = { ...process.env };

  before(async () => {
    await new Promise<void>((ok) => receiver.server.listen(0, '127.0.0.1', ok));
    const { port } = receiver.server.address() as { port: number };
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = `http://127.0.0.1:${port}`;
    process.env.OTEL_SERVICE_NAME = 'thaw-under-test';
    // Export soon after each invocation rather than every 5 s: the test waits on arrivals, not on sleeps.
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    // The full cold path first (no runtime pool), and instances that stay warm.
    t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 });
    const create = (name: string, body: string) => t.lambda.send(new CreateFunctionCommand({
      FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/x', Code: { ZipFile: pkg({ 'index.mjs': fnSource(body) }) },
    }));
    const sees = 'traceparent: process.env.TRACEPARENT ?? null, fromContext: context.traceparent ?? null, xray: process.env._X_AMZN_TRACE_ID';
    await create('seer', `return { ${sees} };`);
    await create('callee', `return { ${sees} };`);
    await create('caller', `const b = await context.invoke('callee', {}); return { ${sees}, callee: b };`);
  });

  after(async () => {
    await t?.stop();
    await new Promise((ok) => receiver.server.close(ok));
    process.env = saved;
  });

  /** The root span of an invocation and its children, once the receiver has them all. */
  async function traceOf(invocationId: string, children: number) {
    return eventually(async () => {
      const root = receiver.spans.find((s) => s.attrs['faas.invocation.id'] === invocationId);
      if (!root) return null;
      const kids = receiver.spans.filter((s) => s.traceId === root.traceId && s.parentSpanId === root.spanId);
      return kids.length >= children ? { root, kids } : null;
    }, `the spans of invocation ${invocationId}`);
  }

  const viaTrigger = async (name: string, headers: Record<string, string> = {}) => {
    const res = await fetch(`${t.url}/${name}/`, { headers });
    assert.equal(res.status, 200);
    return { id: res.headers.get('x-thaw-invocation-id')!, start: res.headers.get('x-thaw-start'), body: await res.json() as Record<string, any> };
  };

  test('a cold invocation is a trace of its phases: one root, a child per phase at the times of the record', async () => {
    const r = await viaTrigger('seer');
    assert.equal(r.start, 'cold');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${r.id}`);
    const { root, kids } = await traceOf(r.id, rec.phases.length);
    assert.deepEqual(kids.map((k) => k.name).sort(), rec.phases.map((p: { name: string }) => p.name).sort());
    assert.ok(['sandbox', 'code', 'runtime', 'init', 'handler'].every((n) => kids.some((k) => k.name === n)), 'cold-start phases, init and handler');
    assert.equal(root.parentSpanId || null, null, 'no caller: the root of a new trace');
    assert.equal(root.name, 'seer');
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(root.attrs['faas.coldstart'], true);
    assert.equal(root.attrs['faas.trigger'], 'http');
    assert.equal(root.attrs['faas.name'], 'seer');
    assert.equal(root.attrs['faas.version'], '$LATEST');
    assert.equal(root.attrs['thaw.start'], 'cold');
    assert.equal(root.attrs['thaw.outcome'], 'success');
    assert.equal(root.resource['service.name'], 'thaw-under-test', 'OTEL_SERVICE_NAME');
    assert.ok(root.start <= root.end);
    for (const k of kids) {
      assert.ok(k.start <= k.end, `${k.name} starts before it ends`);
      assert.ok(k.start >= root.start && k.end <= root.end, `${k.name} lies inside the invocation`);
      // The waterfall is the record's: each span starts at its phase's offset and lasts its duration (µs).
      const p = rec.phases.find((x: { name: string }) => x.name === k.name);
      assert.ok(Math.abs(Number(k.start - root.start) / 1e6 - p.offsetMs) < 0.01, `${k.name} offset`);
      assert.ok(Math.abs(Number(k.end - k.start) / 1e6 - p.durationMs) < 0.01, `${k.name} duration`);
    }
    assert.ok(Math.abs(Number(root.end - root.start) / 1e6 - rec.durationMs) < 0.01);
    assert.equal(rec.trace.traceId, root.traceId, 'the record names its trace');
    // The function ran inside its handler span, and its X-Ray header names the same trace.
    const handler = kids.find((k) => k.name === 'handler')!;
    assert.equal(r.body.traceparent, `00-${root.traceId}-${handler.spanId}-01`);
    assert.equal(r.body.fromContext, r.body.traceparent);
    assert.match(r.body.xray, new RegExp(`^Root=1-${root.traceId.slice(0, 8)}-${root.traceId.slice(8)};Parent=${handler.spanId};Sampled=0$`));
    assert.deepEqual([...receiver.contentTypes], ['application/json']);
  });

  test('a warm invocation has no cold-start phases', async () => {
    const r = await viaTrigger('seer');
    assert.equal(r.start, 'warm');
    const { root, kids } = await traceOf(r.id, 2);
    assert.deepEqual(kids.map((k) => k.name).sort(), ['handler', 'schedule']);
    assert.equal(root.attrs['faas.coldstart'], false);
    assert.equal(root.attrs['thaw.start'], 'warm');
  });

  test('a traceparent from an HTTP trigger is the parent: the invocation joins the caller\'s trace', async () => {
    const caller = callerSpan();
    const r = await viaTrigger('seer', { traceparent: caller.header });
    const { root, kids } = await traceOf(r.id, 2);
    assert.equal(root.traceId, caller.traceId);
    assert.equal(root.parentSpanId, caller.spanId);
    const handler = kids.find((k) => k.name === 'handler')!;
    assert.equal(r.body.traceparent, `00-${caller.traceId}-${handler.spanId}-01`);
  });

  test('the Invoke API takes a traceparent too', async () => {
    const caller = callerSpan();
    const res = await fetch(`${t.url}/2015-03-31/functions/seer/invocations`, { method: 'POST', body: '{}', headers: { traceparent: caller.header } });
    assert.equal(res.status, 200);
    const { root } = await traceOf(res.headers.get('x-amzn-requestid')!, 2);
    assert.equal(root.traceId, caller.traceId);
    assert.equal(root.parentSpanId, caller.spanId);
    assert.equal(root.attrs['faas.trigger'], 'other');
  });

  test('a malformed traceparent is ignored: a new trace, never an error', async () => {
    for (const bad of ['00-xyz', `00-${'0'.repeat(32)}-${'1'.repeat(16)}-01`, `ff-${'a'.repeat(32)}-${'b'.repeat(16)}-01`, `00-${'A'.repeat(32)}-${'b'.repeat(16)}-01`]) {
      const r = await viaTrigger('seer', { traceparent: bad });
      const { root } = await traceOf(r.id, 2);
      assert.equal(root.parentSpanId || null, null, bad);
      assert.match(r.body.traceparent, new RegExp(`^00-${root.traceId}-[0-9a-f]{16}-01$`));
    }
  });

  test('a call chain A → B is one trace: B is a child of A\'s handler span', async () => {
    const caller = callerSpan();
    const r = await viaTrigger('caller', { traceparent: caller.header });
    const a = await traceOf(r.id, 2);
    const aHandler = a.kids.find((k) => k.name === 'handler')!;
    const b = await eventually(async () => receiver.spans.find((s) => s.attrs['faas.name'] === 'callee' && s.parentSpanId === aHandler.spanId), 'the callee\'s root span');
    assert.equal(a.root.traceId, caller.traceId);
    assert.equal(b.traceId, caller.traceId, 'one trace from the first caller to the last callee');
    assert.equal(b.attrs['thaw.trigger'], 'invoke');
    assert.equal(b.attrs['thaw.caller_invocation_id'], r.id);
    const bTrace = await traceOf(String(b.attrs['faas.invocation.id']), 2);
    const bHandler = bTrace.kids.find((k) => k.name === 'handler')!;
    assert.equal(r.body.callee.traceparent, `00-${caller.traceId}-${bHandler.spanId}-01`, 'the callee sees its own handler span in the same trace');
    assert.ok(b.start >= a.root.start && b.end <= a.root.end, 'the callee runs inside its caller');
  });

  test('an unsampled caller is respected: the function sees the trace, nothing is exported for it', async () => {
    const quiet = callerSpan(false);
    const r = await viaTrigger('seer', { traceparent: quiet.header });
    assert.match(r.body.traceparent, new RegExp(`^00-${quiet.traceId}-[0-9a-f]{16}-00$`));
    // Spans leave in the order they end: once a later invocation's spans are in, this one's would be.
    const later = await viaTrigger('seer');
    await traceOf(later.id, 2);
    assert.equal(receiver.spans.filter((s) => s.traceId === quiet.traceId).length, 0);
  });
});

describe('without an OTLP endpoint', () => {
  test('the OpenTelemetry SDK is not loaded at all (and is, with one)', () => {
    const dir = mkdtempSync(join(tmpdir(), 'thaw-otel-off-'));
    try {
      const root = resolve(import.meta.dirname, '..');
      const script = `
        import { createRequire } from 'node:module';
        import { startThaw } from ${JSON.stringify(join(root, 'src/gateway/index.ts'))};
        const t = await startThaw({ port: 0, dataDir: ${JSON.stringify(join(dir, 'data'))}, cacheDir: ${JSON.stringify(join(dir, 'cache'))}, poolSize: 0 });
        await t.close();
        // The API alone is prom-client's (exemplars); the SDK, the exporter and resources are what start-up would pay for.
        const loaded = Object.keys(createRequire(import.meta.url).cache).filter((f) => f.includes('@opentelemetry') && !f.includes('@opentelemetry/api/'));
        console.log(JSON.stringify(loaded));`;
      const loaded = (otlp: string | null): string[] => {
        const env = { ...process.env };
        delete env.OTEL_EXPORTER_OTLP_ENDPOINT;
        delete env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT;
        // A port nothing listens on: the exporter has nothing to send and would only fail to, quietly.
        if (otlp) env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT = otlp;
        const out = spawnSync(process.execPath, ['--input-type=module', '-e', script], { cwd: root, env, encoding: 'utf8', timeout: 60_000 });
        assert.equal(out.status, 0, out.stderr);
        return JSON.parse(out.stdout.trim().split('\n').at(-1)!);
      };
      assert.deepEqual(loaded(null), []);
      assert.ok(loaded('http://127.0.0.1:9/v1/traces').some((f) => f.includes('sdk-trace')), 'the check sees the SDK when it is loaded');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
