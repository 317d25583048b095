// GET /metrics: counters from real invocations, gauges read at scrape time, the exposition checked by
// Debian's promtool, scraped by a real Prometheus started here (queried through its HTTP API), and who
// may read it once access keys exist (a bearer --metrics-token for scrapers, or a signed request).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateFunctionCommand, InvokeCommand, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { publishInvocationEnd } from '../src/core/events.ts';
import type { InvocationRecord } from '../src/core/types.ts';
import { signRequest } from '../src/gateway/index.ts';
import { ThawMetrics } from '../src/telemetry/index.ts';
import { eventually, fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const PROMTOOL = '/usr/bin/promtool';
const PROMETHEUS = '/usr/bin/prometheus';
const TOKEN = 'scrape-token-0123456789abcdef';

interface Sample { name: string; labels: Record<string, string>; value: number }

/** The text exposition format, as far as these tests read it (no timestamps, no exemplars). */
function parse(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

/** The sum of a metric's samples whose labels include `match`. */
const sum = (samples: Sample[], name: string, match: Record<string, string> = {}) =>
  samples.filter((s) => s.name === name && Object.entries(match).every(([k, v]) => s.labels[k] === v)).reduce((a, s) => a + s.value, 0);

const scrape = async (t: TestThaw, headers: Record<string, string> = {}) => {
  const r = await fetch(`${t.url}/metrics`, { headers });
  const text = await r.text();
  assert.equal(r.status, 200, text);
  return { text, samples: parse(text), contentType: r.headers.get('content-type') };
};

const freePort = () => new Promise<number>((resolve, reject) => {
  const s = createServer();
  s.once('error', reject);
  s.listen(0, '127.0.0.1', () => { const { port } = s.address() as { port: number }; s.close(() => resolve(port)); });
});

const record = (o: Partial<InvocationRecord>): InvocationRecord => ({
  id: Math.random().toString(36).slice(2), functionName: 'f', version: '$LATEST', qualifier: '$LATEST', instanceId: 'i', start: 'warm', trigger: 'api',
  callerInvocationId: null, receivedAt: 0, durationMs: 1, phases: [{ name: 'handler', offsetMs: 0, durationMs: 1 }], initMs: 0, handlerMs: 1, billedMs: 1,
  memoryMb: 128, outcome: 'success', errorType: null, errorMessage: null, ...o,
});

describe('ThawMetrics', () => {
  test('function labels are kept apart up to the cap, then counted as _other', async () => {
    using m = new ThawMetrics({ maxFunctions: 2, snapshots: true, queue: async () => ({ depth: 0, oldestEnqueuedAt: null }), now: () => 0 });
    for (const fn of ['cap-a', 'cap-b', 'cap-c', 'cap-d', 'cap-a']) publishInvocationEnd(record({ functionName: fn }));
    const s = parse(await m.scrape());
    assert.equal(sum(s, 'thaw_invocations_total', { function: 'cap-a' }), 2);
    assert.equal(sum(s, 'thaw_invocations_total', { function: 'cap-b' }), 1);
    assert.equal(sum(s, 'thaw_invocations_total', { function: '_other' }), 2, 'cap-c and cap-d share one series');
    assert.equal(sum(s, 'thaw_metrics_function_label_overflow'), 1);
  });

  test('a restored start is a snapshot hit; a new instance of a published version that ran init is a miss', async () => {
    using m = new ThawMetrics({ maxFunctions: 10, snapshots: true, queue: async () => ({ depth: 0, oldestEnqueuedAt: null }), now: () => 0 });
    publishInvocationEnd(record({ functionName: 'snap', version: '1', start: 'restored' }));
    publishInvocationEnd(record({ functionName: 'snap', version: '1', start: 'pooled' }));
    publishInvocationEnd(record({ functionName: 'snap', version: '1', start: 'thawed' }));
    publishInvocationEnd(record({ functionName: 'snap', version: '$LATEST', start: 'cold' }));
    const s = parse(await m.scrape());
    assert.equal(sum(s, 'thaw_snapshot_hits_total', { function: 'snap' }), 1);
    assert.equal(sum(s, 'thaw_snapshot_misses_total', { function: 'snap' }), 1, '$LATEST gets no snapshot, a thaw is no new instance');
    assert.equal(sum(s, 'thaw_cold_starts_total', { function: 'snap' }), 3);
    assert.equal(sum(s, 'thaw_cold_starts_total', { function: 'snap', start: 'thawed' }), 0);
  });
});

describe('GET /metrics on a running Thaw', () => {
  let t: TestThaw;
  const create = (name: string, body: string, prelude = '') => t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r',
    Code: { ZipFile: pkg({ 'index.mjs': fnSource(body, prelude) }) },
  }));
  const invoke = (name: string, payload: unknown = {}, type: 'RequestResponse' | 'Event' = 'RequestResponse', qualifier?: string) =>
    t.lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(payload)), InvocationType: type, Qualifier: qualifier }));

  before(async () => {
    t = await startTestThaw({ poolSize: 1, freezeAfterMs: 300, metricsToken: TOKEN });
    await create('m-ok', 'return { ok: true };');
    await create('m-fail', 'throw new Error("boom");');
    // Held until the test sends SIGUSR2, so the queue is seen holding its event however slow the machine.
    await create('m-slow', 'await released; return 1;', "const released = new Promise((r) => process.once('SIGUSR2', r));");
  });
  after(async () => { await t.stop(); });

  test('counts invocations, errors and cold starts by function, version, trigger and start path', async () => {
    for (let k = 0; k < 3; k++) await invoke('m-ok');
    const failed = await invoke('m-fail');
    assert.equal(failed.FunctionError, 'Unhandled');
    const { samples, contentType } = await scrape(t);
    assert.match(contentType ?? '', /^text\/plain; version=0\.0\.4/);
    assert.equal(sum(samples, 'thaw_invocations_total', { function: 'm-ok', version: '$LATEST', trigger: 'api' }), 3);
    assert.equal(sum(samples, 'thaw_cold_starts_total', { function: 'm-ok' }), 1, 'one new instance, then it was reused');
    const starts = samples.filter((s) => s.name === 'thaw_invocations_total' && s.labels.function === 'm-ok' && s.value > 0).map((s) => s.labels.start);
    assert.ok(starts.every((s) => ['warm', 'thawed', 'paged', 'pooled', 'cold', 'restored'].includes(s)), starts.join());
    assert.equal(sum(samples, 'thaw_invocation_errors_total', { function: 'm-fail', outcome: 'error' }), 1);
    assert.equal(sum(samples, 'thaw_invocation_errors_total', { function: 'm-ok' }), 0);
    // Every invocation has a handler phase; every new instance an init phase.
    assert.equal(sum(samples, 'thaw_invocation_phase_duration_seconds_count', { phase: 'handler' }), 4);
    assert.equal(sum(samples, 'thaw_invocation_phase_duration_seconds_count', { phase: 'init' }), 2);
    assert.ok(sum(samples, 'thaw_invocation_phase_duration_seconds_sum', { phase: 'handler' }) > 0);
    // Gauges read at scrape time: the instances, the pool, the code cache, the memory budgets.
    assert.ok(sum(samples, 'thaw_instances', { node: 'local', function: 'm-ok' }) >= 1);
    assert.ok(sum(samples, 'thaw_runtime_pool_runtimes', { status: 'target' }) >= 1);
    assert.ok(sum(samples, 'thaw_code_cache_hits_total') + sum(samples, 'thaw_code_cache_misses_total') >= 1, 'the first start looked its package up');
    assert.ok(sum(samples, 'thaw_code_cache_bytes') > 0);
    assert.ok(sum(samples, 'thaw_memory_budget_bytes', { resource: 'ram' }) > 0);
    assert.ok(sum(samples, 'process_resident_memory_bytes') > 0, 'the process metrics are there');
  });

  test('idle instances are frozen: the decision is counted and the instance shows in the frozen tier', async () => {
    const s = await eventually(async () => {
      const { samples } = await scrape(t);
      return sum(samples, 'thaw_instances', { function: 'm-ok', state: 'frozen', tier: 'frozen' }) >= 1 ? samples : null;
    }, 'the m-ok instance to be frozen');
    assert.ok(sum(s, 'thaw_policy_decisions_total', { action: 'freeze', outcome: 'done' }) >= 1);
  });

  test('the Event queue: its depth and the age of its oldest event while one is delivered', async () => {
    await invoke('m-slow', {}, 'Event');
    const during = await eventually(async () => {
      const { samples } = await scrape(t);
      return sum(samples, 'thaw_event_queue_depth') === 1 && sum(samples, 'thaw_event_queue_oldest_age_seconds') > 0 ? samples : null;
    }, 'the event to be queued and aged');
    assert.ok(sum(during, 'thaw_event_queue_oldest_age_seconds') < 600);
    const held = await eventually(async () => t.thaw.platform.executor.instances().find((i) => i.functionName === 'm-slow' && i.state === 'busy'), 'the event to be running');
    process.kill(held.pid!, 'SIGUSR2');
    const done = await eventually(async () => {
      const { samples } = await scrape(t);
      // The record is counted as the invocation ends; the event leaves the queue when its completion is stored.
      return sum(samples, 'thaw_invocations_total', { function: 'm-slow', trigger: 'event' }) === 1 && sum(samples, 'thaw_invocation_errors_total', { function: 'm-slow' }) === 0 && sum(samples, 'thaw_event_queue_depth') === 0 ? samples : null;
    }, 'the event to be delivered and completed', 30_000);
    assert.equal(sum(done, 'thaw_event_queue_depth'), 0);
    assert.equal(sum(done, 'thaw_event_queue_oldest_age_seconds'), 0);
  });

  test('a published version is counted under its number', async () => {
    const v = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'm-ok' }));
    await invoke('m-ok', {}, 'RequestResponse', v.Version);
    const { samples } = await scrape(t);
    assert.equal(sum(samples, 'thaw_invocations_total', { function: 'm-ok', version: v.Version!, trigger: 'api' }), 1);
  });

  test('promtool check metrics passes on the exposition', { skip: existsSync(PROMTOOL) ? false : `promtool is not installed (to enable: apt-get install prometheus)` }, async () => {
    const { text } = await scrape(t);
    const r = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(r.status, 0, `promtool: ${r.stdout}${r.stderr}`);
    assert.equal(`${r.stdout}${r.stderr}`.trim(), '', 'no lint warnings either');
  });

  describe('once access keys exist', () => {
    let admin: { id: string; secret: string };
    let invoker: { id: string; secret: string };
    before(async () => {
      const now = t.thaw.platform.clock.now();
      const a = await t.thaw.platform.keys.create('admin', null, now);
      const i = await t.thaw.platform.keys.create('invoker', null, now);
      admin = { id: a.key.id, secret: a.secret };
      invoker = { id: i.key.id, secret: i.secret };
    });
    const signed = async (key: { id: string; secret: string }) => fetch(`${t.url}/metrics`, {
      headers: await signRequest({ method: 'GET', url: new URL(`${t.url}/metrics`), headers: {}, body: undefined, accessKeyId: key.id, secretAccessKey: key.secret, region: 'us-east-1' }),
    });

    test('an unsigned scrape is refused, the metrics token or a signed request of a key that may read is served', async () => {
      const bare = await fetch(`${t.url}/metrics`);
      assert.equal(bare.status, 403);
      assert.equal(((await bare.json()) as { code: string }).code, 'THAW_E_AUTH_REQUIRED');
      const wrong = await fetch(`${t.url}/metrics`, { headers: { authorization: 'Bearer not-the-token-at-all' } });
      assert.equal(wrong.status, 401);
      assert.equal(((await wrong.json()) as { code: string }).code, 'THAW_E_METRICS_TOKEN_INVALID');
      const { samples } = await scrape(t, { authorization: `Bearer ${TOKEN}` });
      assert.equal(sum(samples, 'thaw_invocations_total', { function: 'm-ok', version: '$LATEST' }), 3);
      const byAdmin = await signed(admin);
      assert.equal(byAdmin.status, 200, await byAdmin.clone().text());
      assert.match(await byAdmin.text(), /^thaw_invocations_total\{/m);
      const byInvoker = await signed(invoker);
      assert.equal(byInvoker.status, 403);
      assert.equal(((await byInvoker.json()) as { code: string }).code, 'THAW_E_AUTH_DENIED');
    });

    describe('a real Prometheus', { skip: existsSync(PROMETHEUS) ? false : 'Prometheus is not installed (to enable: apt-get install prometheus)' }, () => {
      let prom: ChildProcess | null = null;
      let dir = '';
      let promUrl = '';
      let log = '';
      before(async () => {
        dir = await mkdtemp(join(tmpdir(), 'thaw-prometheus-'));
        const port = await freePort();
        promUrl = `http://127.0.0.1:${port}`;
        const target = new URL(t.url).host;
        await writeFile(join(dir, 'prometheus.yml'), [
          'global:', '  scrape_interval: 1s', 'scrape_configs:', '  - job_name: thaw', '    scrape_interval: 1s',
          '    authorization:', `      credentials: ${TOKEN}`, '    static_configs:', `      - targets: ['${target}']`, '',
        ].join('\n'));
        prom = spawn(PROMETHEUS, [`--config.file=${join(dir, 'prometheus.yml')}`, `--storage.tsdb.path=${join(dir, 'data')}`, `--web.listen-address=127.0.0.1:${port}`], { stdio: ['ignore', 'pipe', 'pipe'] });
        prom.stdout!.on('data', (c) => { log += c; });
        prom.stderr!.on('data', (c) => { log += c; });
        await eventually(async () => (await fetch(`${promUrl}/-/ready`).catch(() => null))?.ok, `Prometheus to be ready (${log.slice(-2000)})`, 60_000, 200);
      });
      after(async () => {
        if (prom && prom.exitCode === null) {
          const exited = new Promise((r) => prom!.once('exit', r));
          prom.kill('SIGTERM');
          await exited;
        }
        await rm(dir, { recursive: true, force: true });
      });

      test('scrapes Thaw with the bearer token, and its query API returns the invocation count', async () => {
        const query = async (q: string) => {
          const r = (await (await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(q)}`)).json()) as { status: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } };
          assert.equal(r.status, 'success');
          return r.data.result;
        };
        const up = await eventually(async () => (await query('up{job="thaw"}')).find((r) => r.value[1] === '1'), `Prometheus to scrape Thaw (${log.slice(-2000)})`, 60_000, 500);
        assert.equal(up.metric.instance, new URL(t.url).host);
        const count = await eventually(async () => (await query('sum(thaw_invocations_total{function="m-ok",version="$LATEST",trigger="api"})'))[0], 'the invocation count in Prometheus', 30_000, 500);
        assert.equal(Number(count.value[1]), 3);
      });
    });
  });
});
