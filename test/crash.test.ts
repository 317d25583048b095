// The platform killed with SIGKILL while it holds running, frozen and pooled sandboxes: no instance
// process outlives it for long, and the next `thaw up` on the same dirs removes whatever was left
// (cgroups, mounts, slots) before it starts. Real `thaw up` processes, real sandboxes.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CreateFunctionCommand, LambdaClient } from '@aws-sdk/client-lambda';
import { detectCgroups, probeNamespaces, scopeTagFor } from '../src/sandbox/index.ts';
import { eventually, fnSource, getJson, invokeHttp, pkg, processesUnder, thawUp } from './helpers.ts';

const probe = probeNamespaces();
const skip = probe.ok ? false : `the namespaces sandbox is not available here: ${probe.reason} (to enable: ${probe.fix})`;

const up = (dataDir: string, cacheDir: string) => thawUp(dataDir, cacheDir, ['--freeze-after', '0.2', '--pool-size', '1']);

const alive = (pid: number) => { try { process.kill(pid, 0); return true; } catch { return false; } };

describe('the platform killed with SIGKILL', { skip }, () => {
  let dataDir = '';
  let cacheDir = '';
  let second: ChildProcess | null = null;
  before(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'thaw-crash-data-'));
    cacheDir = await mkdtemp('/dev/shm/thaw-crash-cache-');
  });
  after(async () => {
    if (second && second.exitCode === null) {
      second.kill('SIGTERM');
      await new Promise((r) => second!.once('exit', r));
    }
    await rm(dataDir, { recursive: true, force: true });
    await rm(cacheDir, { recursive: true, force: true });
  });

  test('leaves no instance process behind, and the next thaw up removes its cgroups, mounts and slots', async () => {
    const first = await up(dataDir, cacheDir);
    assert.match(first.stderr(), /sandbox: namespaces/);
    const lambda = new LambdaClient({ endpoint: first.url, region: 'us-east-1', credentials: { accessKeyId: 'x', secretAccessKey: 'x' }, maxAttempts: 1 });
    for (const name of ['idle', 'frozen', 'busy']) {
      await lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r',
        Code: { ZipFile: pkg({ 'index.mjs': fnSource('if (event.wait) await new Promise((r) => setTimeout(r, 60_000)); return 1;') }) } }));
    }
    lambda.destroy();
    await invokeHttp(first.url, 'frozen');
    // One invocation is still running when the server dies.
    void invokeHttp(first.url, 'busy', { wait: true }).catch(() => {});
    const frozen = await eventually(async () => {
      const all = (await getJson(`${first.url}/thaw/v1/instances`)).instances;
      return all.some((i: { state: string }) => i.state === 'frozen') && all.some((i: { state: string }) => i.state === 'busy') && all;
    }, 'a frozen and a busy instance');
    await invokeHttp(first.url, 'idle');
    assert.ok(frozen.length >= 2);
    const before = await processesUnder(cacheDir);
    assert.ok(before.length >= 3, `sandboxes are running (${before.length} processes)`);

    first.child.kill('SIGKILL');
    await new Promise((r) => first.child.once('exit', r));
    // bwrap's --die-with-parent ends every sandbox, frozen ones too where the freezer lets SIGKILL through (cgroup v2).
    const left = await eventually(async () => { const l = before.filter(alive); return l.length === 0 ? ['none'] : null; }, 'instance processes to die with the server', 10_000).catch(() => before.filter(alive));
    const scope = `thaw-${scopeTagFor(cacheDir)}`;

    const next = await up(dataDir, cacheDir);
    second = next.child;
    assert.deepEqual(before.filter(alive), [], `no process of the killed run is alive after the restart (left before it: ${left.join(',')})`);
    // What the restart found of the old run is gone: only its own sandboxes remain.
    const live = new Set((await getJson(`${next.url}/thaw/v1/instances`)).instances.map((i: { id: string }) => i.id));
    const slots = existsSync(join(cacheDir, 'sandboxes')) ? (await import('node:fs')).readdirSync(join(cacheDir, 'sandboxes')) : [];
    const pooled = (await getJson(`${next.url}/thaw/v1/node`)).pool.reduce((n: number, s: { ready: number; starting: number }) => n + s.ready + s.starting, 0);
    assert.ok(slots.length <= live.size + pooled + 1, `stale slots remain: ${slots.join(', ')}`);
    const mounts = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter((l) => l.includes(join(cacheDir, 'sandboxes')));
    assert.ok(mounts.length <= 1 + 2 * (live.size + pooled), `stale mounts: ${mounts.join('\n')}`);
    const { v2, v1 } = detectCgroups();
    const roots = [v2, v1.memory, v1.pids, v1.cpu, v1.freezer].filter((r): r is string => !!r).map((r) => join(r, scope));
    const oldGroups = frozen.flatMap((i: { id: string }) => roots.map((r) => join(r, i.id))).filter((d: string) => existsSync(d));
    assert.deepEqual(oldGroups, [], 'the old run\'s cgroups are removed');
    assert.equal((await invokeHttp(next.url, 'idle')).status, 200, 'the restarted server serves');
  });
});
