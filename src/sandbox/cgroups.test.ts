// Where each cgroup controller is found and how each limit is enforced, on the layouts hosts have:
// pure cgroup v2, pure v1, the hybrid of this machine, and none; and what the namespaces driver then says.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { detectCgroups, enforcement } from './cgroups.ts';
import { NamespacesDriver } from './namespaces.ts';

const line = (id: number, mount: string, fstype: string, opts: string) => `${id} 1 0:${id} / ${mount} rw,relatime shared:${id} - ${fstype} ${fstype} ${opts}`;

const V2_ONLY = [line(30, '/sys/fs/cgroup', 'cgroup2', 'rw,nsdelegate,memory_recursiveprot')].join('\n');
const HYBRID = [
  line(30, '/sys/fs/cgroup', 'tmpfs', 'rw,mode=755'),
  line(31, '/sys/fs/cgroup/cpu', 'cgroup', 'rw,cpu'),
  line(34, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  line(36, '/sys/fs/cgroup/freezer', 'cgroup', 'rw,freezer'),
  line(38, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
  line(40, '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
].join('\n');
const V1_NO_PIDS = [line(31, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'), line(34, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory')].join('\n');

test('detectCgroups() finds the cgroup2 mount and each v1 controller\'s hierarchy in mountinfo', () => {
  const h = detectCgroups(HYBRID);
  assert.equal(h.v2, '/sys/fs/cgroup/unified');
  assert.deepEqual(h.v1, { cpu: '/sys/fs/cgroup/cpu', memory: '/sys/fs/cgroup/memory', freezer: '/sys/fs/cgroup/freezer', pids: '/sys/fs/cgroup/pids' });
  assert.deepEqual(detectCgroups(V1_NO_PIDS).v1, { cpu: '/sys/fs/cgroup/cpu,cpuacct', memory: '/sys/fs/cgroup/memory' });
  assert.equal(detectCgroups('').v2, null);
});

test('enforcement(): v2 where v2 offers the controller (the freezer is core v2), else v1, else not at all', () => {
  assert.deepEqual(enforcement({ v2: '/sys/fs/cgroup', v2Controllers: new Set(['cpu', 'memory', 'pids', 'io']), v1: {} }), { memory: 'v2', pids: 'v2', cpu: 'v2', freezer: 'v2' });
  // This machine: controllers bound to v1, a cgroup2 mount with none of them (its freeze and kill still work).
  assert.deepEqual(enforcement({ ...detectCgroups(HYBRID), v2Controllers: new Set(['hugetlb']) }), { memory: 'v1', pids: 'v1', cpu: 'v1', freezer: 'v2' });
  assert.deepEqual(enforcement({ ...detectCgroups(V1_NO_PIDS), v2Controllers: new Set() }), { memory: 'v1', pids: null, cpu: 'v1', freezer: null });
  assert.deepEqual(enforcement({ v2: null, v2Controllers: new Set(), v1: {} }), { memory: null, pids: null, cpu: null, freezer: null });
});

test('the namespaces driver says which limits a host without some controller does not enforce', () => {
  const d = new NamespacesDriver({ runDir: '/nonexistent/run', compileRoot: '/nonexistent/compile', scopeTag: 'report', layout: { ...detectCgroups(V1_NO_PIDS), v2Controllers: new Set() } });
  const r = d.report();
  assert.ok(r.enforced.some((e) => /memory limit .*cgroup v1/.test(e)), r.enforced.join('; '));
  assert.ok(r.notEnforced.some((e) => /process limit 1024: no pids cgroup controller/.test(e)), r.notEnforced.join('; '));
  assert.ok(r.notEnforced.some((e) => /freez.*no freezer/.test(e)), r.notEnforced.join('; '));
  const full = new NamespacesDriver({ runDir: '/nonexistent/run', compileRoot: '/nonexistent/compile', scopeTag: 'report', layout: { v2: '/sys/fs/cgroup', v2Controllers: new Set(['cpu', 'memory', 'pids']), v1: {} } });
  assert.ok(!full.report().notEnforced.some((e) => /cgroup controller/.test(e)));
});
