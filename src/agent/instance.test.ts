import { test } from 'node:test';
import assert from 'node:assert/strict';
import { INSTANCE_STATES } from '../core/types.ts';
import { canTransition, instanceTransitions } from './instance.ts';

test('instanceTransitions covers every state and names only known states', () => {
  assert.deepEqual(Object.keys(instanceTransitions).sort(), [...INSTANCE_STATES].sort());
  for (const targets of Object.values(instanceTransitions)) for (const t of targets) assert.ok(INSTANCE_STATES.includes(t));
});

test('instanceTransitions follows the lifecycle: starting -> initializing -> idle <-> busy -> stopping -> gone', () => {
  const path = ['starting', 'initializing', 'idle', 'busy', 'idle', 'stopping', 'gone'] as const;
  for (let i = 1; i < path.length; i++) assert.ok(canTransition(path[i - 1], path[i]), `${path[i - 1]} -> ${path[i]}`);
});

test('instanceTransitions never lets an instance skip init or come back from gone', () => {
  assert.equal(canTransition('starting', 'idle'), false);
  assert.equal(canTransition('starting', 'busy'), false);
  assert.equal(canTransition('initializing', 'busy'), false);
  assert.equal(canTransition('stopping', 'idle'), false);
  for (const s of INSTANCE_STATES) assert.equal(canTransition('gone', s), false);
});

test('instanceTransitions lets every live state die at once (crash, kill)', () => {
  for (const s of INSTANCE_STATES) if (s !== 'gone') assert.ok(canTransition(s, 'gone'), s);
});

test('instanceTransitions: only an idle instance is frozen, and a frozen one thaws to idle, never straight to busy', () => {
  assert.ok(canTransition('idle', 'frozen'));
  assert.ok(canTransition('frozen', 'idle'));
  assert.equal(canTransition('busy', 'frozen'), false);
  assert.equal(canTransition('frozen', 'busy'), false);
  assert.equal(canTransition('initializing', 'frozen'), false);
  assert.ok(canTransition('frozen', 'stopping'), 'keep-alive may stop a frozen instance');
});
