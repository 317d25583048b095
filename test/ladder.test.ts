// The instance ladder end to end, through the public API: pooled runtimes, frozen instances (and one
// killed while frozen), the pool running dry, and the V8 compile cache. Snapshots: test/snapshot.test.ts.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateFunctionCommand } from '@aws-sdk/client-lambda';
import { detectCgroups } from '../src/sandbox/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';

/** A value unique to the process that loaded the module: pids say nothing inside a PID namespace. */
const TOKEN = 'const token = `${Date.now()}-${Math.random()}`;';
const confined = (t: TestThaw) => t.thaw.platform.driver.name === 'namespaces';

/** Whether the cgroup freezer holds this process (v2 cgroup.events or v1 freezer.state). */
function cgroupFrozen(pid: number): boolean {
  const { v2, v1 } = detectCgroups();
  for (const line of readFileSync(`/proc/${pid}/cgroup`, 'utf8').split('\n')) {
    const [, controllers, path] = line.split(':');
    if (path === undefined) continue;
    try {
      if (controllers === '' && v2 && /^frozen 1$/m.test(readFileSync(join(v2, path, 'cgroup.events'), 'utf8'))) return true;
      if (controllers.split(',').includes('freezer') && v1.freezer && readFileSync(join(v1.freezer, path, 'freezer.state'), 'utf8').trim() === 'FROZEN') return true;
    } catch { /* not in a group of that hierarchy */ }
  }
  return false;
}

const create = (t: TestThaw, name: string, files: Record<string, string>, extra: Record<string, unknown> = {}) =>
  t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg(files) }, ...extra }));

const poolReady = async (t: TestThaw, memoryMb = 128) => eventually(async () => {
  const shape = (await getJson(`${t.url}/thaw/v1/instances`)).pool.find((p: { memoryMb: number }) => p.memoryMb === memoryMb);
  return shape && shape.ready >= 1 && shape;
}, `a ready pooled runtime of ${memoryMb} MB`);

describe('pooled runtimes', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 2, poolRefillDelayMs: 0, freezeAfterMs: -1 }); });
  after(async () => { await t.stop(); });

  test('a new instance takes a started runtime from the pool: no sandbox or runtime boot on the critical path', async () => {
    await create(t, 'p1', { 'index.mjs': fnSource('return { token, env: process.env.MINE, cwd: process.cwd() };', TOKEN) }, { Environment: { Variables: { MINE: 'mine' } } });
    const shape = await poolReady(t);
    assert.equal(shape.target, 2);
    const r = await invokeHttp(t.url, 'p1');
    assert.equal(r.status, 200, r.text);
    assert.equal(r.headers.get('x-thaw-start'), 'pooled');
    assert.equal(r.json.env, 'mine', 'the function environment is applied when the runtime is specialized');
    assert.match(r.json.cwd, confined(t) ? /^\/var\/task$/ : /\/code\/[0-9a-f]{64}$/);
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`);
    assert.equal(rec.start, 'pooled');
    const phase = (n: string) => rec.phases.find((p: { name: string }) => p.name === n);
    assert.equal(phase('runtime').durationMs, 0, 'the runtime was already running');
    assert.ok(phase('init').durationMs > 0);
    const again = await invokeHttp(t.url, 'p1');
    assert.equal(again.headers.get('x-thaw-start'), 'warm');
    assert.equal(again.json.token, r.json.token);
  });

  test('a specialized runtime never returns to the pool; the pool refills in the background', async () => {
    await create(t, 'p2', { 'index.mjs': fnSource('return token;', TOKEN) });
    await create(t, 'p3', { 'index.mjs': fnSource('return token;', TOKEN) });
    await poolReady(t);
    const a = await invokeHttp(t.url, 'p2');
    await poolReady(t);
    const b = await invokeHttp(t.url, 'p3');
    assert.equal(b.headers.get('x-thaw-start'), 'pooled');
    assert.notEqual(a.json, b.json, 'two functions never share a runtime process');
    await eventually(async () => (await getJson(`${t.url}/thaw/v1/instances`)).pool[0].ready === 2 || null, 'the pool back at its target');
  });

  test('memory sizes have their own runtimes (the heap limit is fixed at start); a new size is learned', async () => {
    await create(t, 'big', { 'index.mjs': fnSource('return 1;') }, { MemorySize: 512 });
    const first = await invokeHttp(t.url, 'big');
    assert.equal(first.headers.get('x-thaw-start'), 'cold', 'no 512 MB runtime was pooled yet');
    await poolReady(t, 512);
    await t.lambda.send(new (await import('@aws-sdk/client-lambda')).UpdateFunctionConfigurationCommand({ FunctionName: 'big', Description: 'new revision' }));
    const second = await invokeHttp(t.url, 'big');
    // The update warms the new revision ahead of its first request (version prewarm) or the request
    // specializes a runtime itself: either way the instance came from the 512 MB pool.
    const start = second.headers.get('x-thaw-start');
    assert.ok(start === 'pooled' || start === 'warm', `pooled, or warm on a prewarmed instance: ${start}`);
    const rec = await eventually(async () => { const r = await fetch(`${t.url}/thaw/v1/invocations/${second.headers.get('x-thaw-invocation-id')}`); return r.ok && await r.json() as { instanceId: string }; }, 'the record');
    const served = (await getJson(`${t.url}/thaw/v1/instances`)).instances.find((i: { id: string }) => i.id === rec.instanceId);
    assert.equal(served?.origin, 'pooled', `the instance that served it: ${JSON.stringify(served)}`);
  });
});

describe('an empty pool falls back to a full cold start', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 }); });
  after(async () => { await t.stop(); });

  test('poolSize 0: every new instance is a full cold start', async () => {
    await create(t, 'c1', { 'index.mjs': fnSource('return 1;') });
    assert.deepEqual((await getJson(`${t.url}/thaw/v1/instances`)).pool, []);
    assert.equal((await invokeHttp(t.url, 'c1')).headers.get('x-thaw-start'), 'cold');
  });
});

describe('frozen instances', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: 100 }); });
  after(async () => { await t.stop(); });

  const stateOf = async (id: string) => (await getJson(`${t.url}/thaw/v1/instances`)).instances.find((i: { id: string }) => i.id === id);
  const procState = (pid: number) => /^\d+ \(.*\) (\S)/s.exec(readFileSync(`/proc/${pid}/stat`, 'utf8'))![1];
  /** Stopped by SIGSTOP (the process driver), or in a frozen cgroup (the namespaces driver's freezer). */
  const isStopped = (pid: number) => procState(pid) === 'T' || cgroupFrozen(pid);

  test('an idle instance is frozen after the delay (stopped, heap shrunk) and thawed by the next request', async () => {
    await create(t, 'fz', { 'index.mjs': fnSource('count += 1; return { token, count, random: Math.random() };', `let count = 0;\n${TOKEN}`) });
    const first = await invokeHttp(t.url, 'fz');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${first.headers.get('x-thaw-invocation-id')}`);
    const id = rec.instanceId;
    const frozen = await eventually(async () => { const i = await stateOf(id); return i?.state === 'frozen' && i.frozenRssBytes && i; }, 'the instance to freeze');
    assert.ok(isStopped(frozen.pid), 'the process is stopped');
    assert.ok(frozen.frozenRssBytes > 1024 * 1024, 'frozen RSS is measured');
    const thawed = await invokeHttp(t.url, 'fz');
    assert.equal(thawed.status, 200);
    assert.equal(thawed.headers.get('x-thaw-start'), 'thawed');
    assert.deepEqual([thawed.json.token, thawed.json.count], [first.json.token, 2], 'same process, state kept');
    assert.ok(!isStopped(frozen.pid));
    const warm = await invokeHttp(t.url, 'fz');
    assert.equal(warm.headers.get('x-thaw-start'), 'warm');
  });

  test('an instance killed while frozen is replaced: the invocation succeeds on a new instance', async () => {
    await create(t, 'fk', { 'index.mjs': fnSource('return token;', TOKEN) });
    const first = await invokeHttp(t.url, 'fk');
    const id = (await getJson(`${t.url}/thaw/v1/invocations/${first.headers.get('x-thaw-invocation-id')}`)).instanceId;
    const frozen = await eventually(async () => { const i = await stateOf(id); return i?.state === 'frozen' && i; }, 'the instance to freeze');
    await eventually(async () => isStopped(frozen.pid) || null, 'the process to stop');
    process.kill(frozen.pid, 'SIGKILL');
    const next = await invokeHttp(t.url, 'fk');
    assert.equal(next.status, 200, next.text);
    assert.equal(next.headers.get('x-amz-function-error'), null);
    assert.notEqual(next.json, first.json, 'a new process answered');
    assert.equal(next.headers.get('x-thaw-start'), 'cold');
    await eventually(async () => !(await stateOf(id)) || null, 'the dead instance to be forgotten');
  });
});

describe('V8 compile cache', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1 }); });
  after(async () => { await t.stop(); });

  test('the first instance of a package writes the compile cache; the next one reuses the directory', async () => {
    const lib = Array.from({ length: 200 }, (_, i) => `export function f${i}(x) { return x * ${i} + ${i}; }`).join('\n');
    await create(t, 'cc', { 'index.mjs': fnSource('return f1(2);', "import { f1 } from './lib.mjs';"), 'lib.mjs': lib });
    await invokeHttp(t.url, 'cc');
    const dir = join(t.cacheDir, 'compile');
    await eventually(async () => existsSync(dir) && readdirSync(dir, { recursive: true }).length > 1 || null, 'compile cache files');
    const entries = readdirSync(dir);
    assert.equal(entries.length, 1, 'one directory per package');
    await t.lambda.send(new (await import('@aws-sdk/client-lambda')).UpdateFunctionConfigurationCommand({ FunctionName: 'cc', Description: 'new instance please' }));
    const r = await invokeHttp(t.url, 'cc');
    assert.equal(r.json, 3);
    assert.deepEqual(readdirSync(dir), entries, 'the same package shares its cache');
  });
});

describe('reserved (provisioned) instances', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, idleTimeoutMs: 300, snapshots: false }); });
  after(async () => { await t.stop(); });

  const sdk = () => import('@aws-sdk/client-lambda');

  test('a version keeps its reserved instances initialized, requests use them first, keep-alive never stops them', async () => {
    const { PutProvisionedConcurrencyConfigCommand, GetProvisionedConcurrencyConfigCommand } = await sdk();
    await create(t, 'res', { 'index.mjs': fnSource('return process.env.AWS_LAMBDA_INITIALIZATION_TYPE;') }, { Publish: true });
    await assert.rejects(t.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: '$LATEST', ProvisionedConcurrentExecutions: 1 })), /Qualifier/);
    await t.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: '1', ProvisionedConcurrentExecutions: 2 }));
    const ready = await eventually(async () => {
      const s = await t.lambda.send(new GetProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: '1' }));
      return s.Status === 'READY' && s;
    }, 'reserved instances ready');
    assert.equal(ready.AvailableProvisionedConcurrentExecutions, 2);
    const reserved = (await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { reserved: boolean }) => i.reserved);
    assert.equal(reserved.length, 2);
    const provisions = (await getJson(`${t.url}/thaw/v1/invocations?function=res`)).invocations.filter((r: { trigger: string }) => r.trigger === 'provision');
    assert.equal(provisions.length, 2, 'each reserved init is recorded (and billed)');
    assert.ok(provisions.every((r: { billedMs: number }) => r.billedMs > 0));

    const r = await invokeHttp(t.url, 'res', {}, { qualifier: '1' });
    assert.equal(r.headers.get('x-thaw-start'), 'warm', 'the first request finds a reserved instance');
    assert.equal(r.json, 'provisioned-concurrency', 'and the instance knows it was provisioned');
    const served = (await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`)).instanceId;
    assert.ok(reserved.some((i: { id: string }) => i.id === served));
    await new Promise((res) => setTimeout(res, 800));
    assert.equal((await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { reserved: boolean }) => i.reserved).length, 2, 'still there after the idle timeout');
  });

  test('a reserved instance that dies is replaced; removing the config releases them to keep-alive', async () => {
    const { DeleteProvisionedConcurrencyConfigCommand } = await sdk();
    const before = (await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { reserved: boolean }) => i.reserved);
    process.kill(before[0].pid, 'SIGKILL');
    await eventually(async () => {
      const now = (await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { reserved: boolean; state: string }) => i.reserved && i.state === 'idle');
      return now.length === 2 && !now.some((i: { pid: number }) => i.pid === before[0].pid) || null;
    }, 'a replacement reserved instance');
    await t.lambda.send(new DeleteProvisionedConcurrencyConfigCommand({ FunctionName: 'res', Qualifier: '1' }));
    await eventually(async () => (await getJson(`${t.url}/thaw/v1/instances`)).instances.filter((i: { functionName: string }) => i.functionName === 'res').length === 0 || null, 'released instances to age out');
  });
});

describe('node code cache', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, snapshots: false }); });
  after(async () => { await t.stop(); });

  test('code evicted from the node cache while an instance runs: the instance keeps working, the next start refetches it', async () => {
    await create(t, 'ev', { 'index.mjs': fnSource('const { value } = await import("./lazy.mjs"); return value;'), 'lazy.mjs': 'export const value = "lazy";' });
    const first = await invokeHttp(t.url, 'ev');
    assert.equal(first.json, 'lazy');
    const codeDir = join(t.cacheDir, 'code');
    const sha = readdirSync(codeDir).find((d) => /^[0-9a-f]{64}$/.test(d))!;
    (await import('node:fs')).rmSync(join(codeDir, sha), { recursive: true });
    // The running instance already loaded what it needs.
    assert.equal((await invokeHttp(t.url, 'ev')).json, 'lazy');
    const misses = (await getJson(`${t.url}/thaw/v1/node`)).codeCache.misses;
    await t.lambda.send(new (await import('@aws-sdk/client-lambda')).UpdateFunctionConfigurationCommand({ FunctionName: 'ev', Description: 'new instance' }));
    const again = await invokeHttp(t.url, 'ev');
    assert.equal(again.json, 'lazy');
    // The new revision's instance (the request's own, or the version prewarm's it waited for) unpacked the
    // package again: a cache miss, and an unpack phase in that start's record.
    const stats = (await getJson(`${t.url}/thaw/v1/node`)).codeCache;
    assert.ok(stats.misses > misses && stats.hits >= 1, JSON.stringify(stats));
    const recs = (await getJson(`${t.url}/thaw/v1/invocations?function=ev`)).invocations as { phases: { name: string; durationMs: number }[] }[];
    const unpacked = (r: (typeof recs)[number]) => (r.phases.find((p) => p.name === 'unpack')?.durationMs ?? 0) > 0;
    assert.ok(recs.slice(0, -2).some(unpacked), `a start after the eviction unpacked: ${JSON.stringify(recs.map((r) => r.phases))}`);
  });
});
