// What only the memory driver promises, beyond the conformance suite (test/sandbox.test.ts runs that):
// messages keep their order across a listener arriving late and across a freeze, both ways.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryDriver, type MemoryUnit } from './memory.ts';
import type { SandboxSpec } from './types.ts';

const spec = (id: string): SandboxSpec => ({ id, command: 'fake', args: [], env: {}, cwd: '/', memoryBytes: 128 << 20, tmpBytes: 16 << 20, readPaths: [] });
/** A turn of the event loop: every message already sent has arrived. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

async function unitAndSandbox() {
  let unit: MemoryUnit | undefined;
  const sandbox = await memoryDriver((u) => { unit = u; }).create(spec('m'));
  return { unit: unit!, sandbox };
}

test('memoryDriver: messages sent before the host listens arrive, in order, before later ones', async () => {
  const { unit, sandbox } = await unitAndSandbox();
  unit.send(1);
  unit.send(2);
  await settle();
  const heard: unknown[] = [];
  sandbox.channel.onMessage((m) => heard.push(m));
  unit.send(3);
  await settle();
  assert.deepEqual(heard, [1, 2, 3]);
  sandbox.kill('done');
});

test('memoryDriver: a frozen unit holds messages both ways, and thaw() delivers them in the order sent', async () => {
  const { unit, sandbox } = await unitAndSandbox();
  const toHost: unknown[] = [];
  const toUnit: unknown[] = [];
  sandbox.channel.onMessage((m) => toHost.push(m));
  unit.onMessage((m) => toUnit.push(m));
  await sandbox.freeze();
  assert.equal(unit.frozen, true);
  unit.send('up 1');
  sandbox.channel.send('down 1');
  unit.send('up 2');
  await settle();
  assert.deepEqual([toHost, toUnit], [[], []], 'nothing crosses while frozen');
  assert.equal(await sandbox.thaw(), true);
  await settle();
  assert.deepEqual([toHost, toUnit], [['up 1', 'up 2'], ['down 1']]);
  sandbox.kill('done');
});

test('memoryDriver: a killed unit drops what it held and sends nothing more; its pid is no host process', async () => {
  const { unit, sandbox } = await unitAndSandbox();
  const toHost: unknown[] = [];
  sandbox.channel.onMessage((m) => toHost.push(m));
  await sandbox.freeze();
  unit.send('held');
  await settle();
  sandbox.kill('gone');
  unit.send('after');
  await settle();
  assert.deepEqual(toHost, []);
  assert.equal(unit.hasExited, true);
  assert.ok(sandbox.pid > 4_194_304, 'above the largest pid_max');
  assert.throws(() => process.kill(sandbox.pid, 0), { code: 'ESRCH' });
});
