// Every sandbox driver against the conformance suite (src/sandbox/sandbox.case.ts): the process driver and
// the namespaces driver starting the real Node bootstrap, and the memory driver running a fake program.
// Each real driver's suite ends with a leak check: no process, cgroup or mount of it is left.
import { after, test } from 'node:test';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { nodeRuntime } from '../src/runtimes/index.ts';
import { NamespacesDriver, detectCgroups, memoryDriver, probeNamespaces, processDriver, scopeTagFor, type MemoryProgram, type SandboxSpec } from '../src/sandbox/index.ts';
import { sandboxConformance, type ProbeReply, type ProbeRequest, type SpecFor } from '../src/sandbox/sandbox.case.ts';
import { eventually, processesUnder } from './helpers.ts';

/** Specs as the agent makes them: the real Node bootstrap, a clean environment, cwd in a scratch dir. */
const nodeSpecs = (scratch: string): SpecFor => (id, overrides = {}) => ({
  ...nodeRuntime.sandboxSpec({ id, memoryMb: 128, tmpMb: 16, cwd: scratch, env: { PATH: '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8', HOME: scratch }, readPaths: [] }),
  ...overrides,
});

/** Mount points at or below dir (from /proc/self/mountinfo). */
const mountsUnder = (dir: string) => readFileSync('/proc/self/mountinfo', 'utf8').split('\n')
  .map((line) => line.split(' ')[4]?.replace(/\\040/g, ' '))
  .filter((mp): mp is string => !!mp && (mp === dir || mp.startsWith(dir + '/')));

// The process driver.
const processScratch = mkdtempSync('/dev/shm/thaw-sandbox-process-');
sandboxConformance('process', () => processDriver, nodeSpecs(processScratch), {
});

test('process driver: no process started in its scratch dir outlives the suite', async () => {
  assert.deepEqual(await processesUnder(processScratch), []);
});

test('process driver: a frozen instance dies with the server that started it (which it cannot notice itself)', async () => {
  const script = join(processScratch, 'owner.ts');
  writeFileSync(script, [
    `import { processDriver } from ${JSON.stringify(join(process.cwd(), 'src/sandbox/index.ts'))};`,
    `const sb = await processDriver.create({ id: 'orphan', command: '/bin/sleep', args: ['1000'], env: {}, cwd: ${JSON.stringify(processScratch)}, channel: false, memoryMb: 64, tmpMb: 0 } as never);`,
    'await sb.freeze();',
    'console.log(sb.pid);',
    'setInterval(() => {}, 1000);',
  ].join('\n'));
  const owner = spawn(process.execPath, [script], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = Number((await once(owner.stdout!, 'data'))[0].toString());
  assert.ok(pid > 0 && existsSync(`/proc/${pid}`), 'the frozen instance runs');
  owner.kill('SIGKILL');
  await once(owner, 'exit');
  await eventually(async () => !existsSync(`/proc/${pid}`) || readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.startsWith('Z') ? true : null, 'the frozen instance to die with its server');
});

// The namespaces driver, where this host can run it.
const probed = probeNamespaces();
const nsSkip = probed.ok ? undefined : `namespaces driver unavailable: ${probed.reason} (to enable: apt-get install bubblewrap and run as root; ${probed.fix})`;
const nsRunDir = mkdtempSync('/dev/shm/thaw-sandbox-ns-run-');
const nsScratch = mkdtempSync('/dev/shm/thaw-sandbox-ns-scratch-');
const nsScope = `thaw-${scopeTagFor(nsRunDir)}`;
const nsCompileRoot = join(nsScratch, 'compile');
let compileDirs = 0;
sandboxConformance('namespaces', () => new NamespacesDriver({ runDir: nsRunDir, compileRoot: nsCompileRoot, scopeTag: scopeTagFor(nsRunDir) }), nodeSpecs(nsScratch), {
  compileCacheDir: () => join(nsCompileRoot, `v${++compileDirs}`),
  skip: nsSkip,
  // Inside, the host's paths do not exist: home and the working directory are the private /tmp.
  envSetByDriver: { HOME: '/tmp', PWD: '/tmp' },
});

/** Where the driver's cgroup scope would be, in every hierarchy mounted here. */
const scopeDirs = () => {
  const layout = detectCgroups();
  return [layout.v2, ...Object.values(layout.v1)].filter((d): d is string => !!d).map((d) => join(d, nsScope));
};

test('namespaces driver: after close() no process, mount or cgroup of it is left', { skip: nsSkip }, async () => {
  assert.deepEqual(await processesUnder(nsRunDir), [], 'processes in its cgroups');
  assert.deepEqual(mountsUnder(nsRunDir), [], 'mounts under its run dir');
  assert.deepEqual(scopeDirs().filter(existsSync), [], 'cgroup directories of its scope');
});

after(() => {
  // Never a recursive remove over a live mount: it would reach through a bind into the host directory.
  if (mountsUnder(nsRunDir).length === 0) rmSync(nsRunDir, { recursive: true, force: true });
  for (const d of scopeDirs().reverse()) try { rmSync(d, { recursive: false }); } catch { /* absent or not empty */ }
  rmSync(nsScratch, { recursive: true, force: true });
  rmSync(processScratch, { recursive: true, force: true });
});

// The memory driver: a fake runtime that answers what the Node bootstrap and the probe would.
const fakeProbe: MemoryProgram = (unit) => {
  const reply = (m: ProbeReply) => unit.send(m);
  unit.onMessage((raw) => {
    const m = raw as ProbeRequest;
    switch (m.type) {
      case 'ping': reply({ type: 'pong', id: m.id }); break;
      case 'env': reply({ type: 'env', env: { ...unit.spec.env } }); break;
      case 'read':
        try { reply({ type: 'read', text: readFileSync(m.path, 'utf8'), error: null }); } catch (e) { reply({ type: 'read', text: null, error: String((e as NodeJS.ErrnoException).code) }); }
        break;
      case 'write':
        try { writeFileSync(m.path, m.text); reply({ type: 'write', error: null }); } catch (e) { reply({ type: 'write', error: String((e as NodeJS.ErrnoException).code) }); }
        break;
      case 'print': unit[m.stream].write(m.text, () => reply({ type: 'printed' })); break;
      case 'exit': unit.exit(m.code); break;
      case 'die': unit.exit(null, 'SIGKILL'); break;
      case 'spawn': case 'spin': throw new Error(`the memory driver has no processes: '${m.type}' is not for it`);
    }
  });
  reply({ type: 'ready' });
};

sandboxConformance('memory', () => memoryDriver(fakeProbe), (id, overrides = {}): SandboxSpec => nodeSpecs('/nonexistent')(id, overrides), { processes: false });
