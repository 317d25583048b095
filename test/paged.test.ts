// The paged tier against a real zram swap device that the platform sets up (`zramMb`) and releases on
// stop: a frozen instance's memory goes to swap, it answers its next request (X-Thaw-Start: paged) with
// its state intact, and the device is gone after the server stops. Needs root, the namespaces sandbox and
// a free zram device; skipped with the reason elsewhere.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { join } from 'node:path';
import { enableZramSwap, probeNamespaces, swapDevices } from '../src/sandbox/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';

function why(): string | null {
  const probe = probeNamespaces();
  if (!probe.ok) return `namespaces sandbox unavailable: ${probe.reason} (${probe.fix})`;
  if (!existsSync('/sys/block/zram0')) return 'no zram device (modprobe zram)';
  const free = [0, 1, 2, 3].some((i) => existsSync(`/sys/block/zram${i}`) && readFileSync(`/sys/block/zram${i}/disksize`, 'utf8').trim() === '0');
  return free ? null : 'every zram device is in use';
}
const reason = why();

/** Holds ~25 MB of objects across invocations and proves they are intact. */
const HOLDER = fnSource(`
  globalThis.data ??= Array.from({ length: 250000 }, (_, i) => ({ i, s: 'item-' + i }));
  return { n: globalThis.data.length, sum: globalThis.data.reduce((a, d) => a + d.i, 0), last: globalThis.data.at(-1).s };`);

describe('the paged tier (zram)', { skip: reason ? `${reason}; to enable: run as root with bubblewrap and a free zram device` : false }, () => {
  let t: TestThaw;
  let device = '';
  before(async () => { t = await startTestThaw({ zramMb: 256, freezeAfterMs: 200, pageAfterMs: 300 }); });
  after(async () => {
    await t?.stop();
    assert.ok(!swapDevices().some((d) => d.name === device), `${device} is released when the server stops`);
  });

  const instance = async () => (await getJson(`${t.url}/thaw/v1/instances`)).instances.find((i: { functionName: string }) => i.functionName === 'holder');

  test('thaw up --zram sets up a swap device and says the tier is on', async () => {
    const tier = (await getJson(`${t.url}/thaw/v1/node`)).pagedTier;
    assert.equal(tier.on, true, tier.how);
    device = tier.zram.device;
    assert.ok(swapDevices().some((d) => d.name === device), `${device} is a swap area`);
  });

  test('a frozen instance is paged out: its memory goes to swap, what stays resident shrinks', async () => {
    const r = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ FunctionName: 'holder', Runtime: 'nodejs24', Handler: 'index.handler', MemorySize: 256, Code: { ZipFile: pkg({ 'index.mjs': HOLDER }).toString('base64') } }) });
    assert.equal(r.status, 201);
    const first = await invokeHttp(t.url, 'holder', {});
    assert.deepEqual(first.json, { n: 250000, sum: 31249875000, last: 'item-249999' });
    const paged = await eventually(async () => { const i = await instance(); return i?.state === 'paged' && i.swappedBytes && i; }, 'paged out');
    assert.ok(paged.swappedBytes > 10 * 1024 * 1024, `at least 10 MB went to swap: ${paged.swappedBytes}`);
    assert.ok(paged.pagedToBytes < paged.pagedFromBytes / 5, `private resident memory shrank more than 5×: ${paged.pagedFromBytes} -> ${paged.pagedToBytes}`);
    // Its RAM now is what stays resident plus zram's compressed copy; the node adds up each tier.
    assert.ok(paged.compressedBytes > 0 && paged.compressedBytes < paged.swappedBytes, `compressed in zram: ${paged.compressedBytes} of ${paged.swappedBytes}`);
    const memory = (await getJson(`${t.url}/thaw/v1/node`)).memory;
    assert.equal(memory.tiers.paged.instances, 1, JSON.stringify(memory));
    assert.equal(memory.tiers.paged.swappedBytes, paged.swappedBytes);
    assert.equal(memory.swapBytes, paged.swappedBytes, 'swap is the paged pages, uncompressed');
    assert.ok(memory.swapBudgetBytes > memory.swapBytes && memory.swapBudgetBytes <= 256 * 1048576, `the swap budget: 90 % of the 256 MB device (${memory.swapBudgetBytes})`);
    assert.ok(memory.tiers.paged.compressedBytes > 0 && memory.ramBytes >= memory.tiers.paged.residentBytes + memory.tiers.paged.compressedBytes, JSON.stringify(memory));
    assert.ok(memory.zramCompression > 0 && memory.zramCompression < 1, 'zram compresses');
    // The policies' tier costs now hold this page-out's paged RAM fraction, measured here.
    const costs = (await getJson(`${t.url}/thaw/v1/node`)).tierCosts;
    assert.ok(costs.learned.includes('pagedRamFraction'), JSON.stringify(costs));
    const expected = (paged.pagedToBytes + paged.swappedBytes * memory.zramCompression) / paged.pagedFromBytes;
    assert.ok(Math.abs(costs.pagedRamFraction - expected) < 0.05, `${costs.pagedRamFraction} vs ${expected}`);
    const logs = ((await getJson(`${t.url}/thaw/v1/functions/holder/logs`)).lines as { line: string }[]).map((l) => l.line);
    assert.ok(logs.some((l) => /paged out: .* in swap/.test(l)), 'the page-out is in the function\'s platform log');
  });

  test('the next request resumes it from swap (X-Thaw-Start: paged) with its state intact, and it is warm after', async () => {
    const r = await invokeHttp(t.url, 'holder', {});
    assert.equal(r.headers.get('x-thaw-start'), 'paged');
    assert.deepEqual(r.json, { n: 250000, sum: 31249875000, last: 'item-249999' });
    const again = await invokeHttp(t.url, 'holder', {});
    assert.equal(again.headers.get('x-thaw-start'), 'warm');
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${r.headers.get('x-thaw-invocation-id')}`);
    assert.equal(rec.start, 'paged');
    assert.equal(rec.initMs, 0, 'no init: the instance was already initialized');
  });
});

describe('a zram device left behind by a killed run', { skip: reason ? `${reason}; to enable: run as root with bubblewrap and a free zram device` : false }, () => {
  test('is released by the next start on the same cache dir, which says so', async () => {
    const cacheDir = await mkdtemp('/dev/shm/thaw-test-cache-');
    // What a run killed with its device set up leaves: the device in use as swap, and the note of it.
    const left = enableZramSwap(32 * 1024 * 1024, join(cacheDir, 'zram.device'));
    assert.ok(swapDevices().some((d) => d.name === left.device));
    const t = await startTestThaw({ cacheDir });
    try {
      assert.ok(!swapDevices().some((d) => d.name === left.device), `${left.device} was released at start`);
      assert.equal((await getJson(`${t.url}/thaw/v1/node`)).pagedTier.on, false, 'no swap now, and none asked for');
    } finally {
      await t.stop();
      left.release();
    }
  });
});
