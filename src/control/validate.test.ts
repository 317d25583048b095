import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ThawError } from '../core/errors.ts';
import { pickRoutedVersion } from './control.ts';
import { normalizeRuntime, parseQualifier, validateConfig, validateFunctionName } from './validate.ts';

const code = (fn: () => unknown) => {
  try { fn(); } catch (e) { assert.ok(e instanceof ThawError, String(e)); return e.code; }
  return 'no error';
};

test('validateFunctionName() accepts Lambda-style names and rejects the rest with THAW_E_NAME_INVALID', () => {
  assert.equal(validateFunctionName('my-fn_2'), 'my-fn_2');
  for (const bad of ['', '1abc', 'a b', 'a/b', 'x'.repeat(65), '../x', 'a.b', 42]) assert.equal(code(() => validateFunctionName(bad)), 'THAW_E_NAME_INVALID', String(bad));
  assert.equal(code(() => validateFunctionName('thaw')), 'THAW_E_NAME_RESERVED');
});

test('parseQualifier() tells $LATEST, versions and aliases apart', () => {
  assert.deepEqual(parseQualifier(undefined), { kind: 'latest' });
  assert.deepEqual(parseQualifier('$LATEST'), { kind: 'latest' });
  assert.deepEqual(parseQualifier('12'), { kind: 'version', version: '12' });
  assert.deepEqual(parseQualifier('live'), { kind: 'alias', alias: 'live' });
  assert.equal(code(() => parseQualifier('a:b')), 'THAW_E_QUALIFIER_INVALID');
  assert.equal(code(() => parseQualifier('0')), 'THAW_E_QUALIFIER_INVALID');
});

test('normalizeRuntime() keeps a supported name exactly as given and refuses others listing the supported', () => {
  for (const name of ['nodejs20.x', 'nodejs22.x', 'nodejs24.x', 'nodejs24']) assert.equal(normalizeRuntime(name), name);
  assert.equal(code(() => normalizeRuntime('python3.12')), 'THAW_E_RUNTIME_UNKNOWN');
  assert.equal(code(() => normalizeRuntime('nodejs18.x')), 'THAW_E_RUNTIME_UNKNOWN');
  assert.throws(() => normalizeRuntime('nodejs22'), /supported: nodejs20\.x, nodejs22\.x, nodejs24\.x/);
});

test('validateConfig() names the field and the rule', () => {
  assert.throws(() => validateConfig({ memoryMb: 64 }), (e: ThawError) => e.code === 'THAW_E_CONFIG_INVALID' && /memoryMb/.test(e.message));
  assert.throws(() => validateConfig({ timeoutMs: 901_000 }), (e: ThawError) => e.code === 'THAW_E_CONFIG_INVALID' && /timeoutMs/.test(e.message));
  assert.equal(code(() => validateConfig({ handler: 'index' })), 'THAW_E_CONFIG_INVALID');
  assert.equal(code(() => validateConfig({ env: { '1BAD': 'x' } })), 'THAW_E_CONFIG_INVALID');
  assert.equal(code(() => validateConfig({ env: { AWS_REGION: 'x' } })), 'THAW_E_ENV_RESERVED');
  assert.equal(code(() => validateConfig({ env: { BIG: 'x'.repeat(5000) } })), 'THAW_E_CONFIG_INVALID');
  assert.deepEqual(validateConfig({ handler: 'src/app.main', memoryMb: 256 }), { handler: 'src/app.main', memoryMb: 256 });
});

test('pickRoutedVersion() sends the weighted share to the additional version', () => {
  const alias = { functionVersion: '1', routing: { version: '2', weight: 0.1 } };
  assert.equal(pickRoutedVersion(alias, 0.05), '2');
  assert.equal(pickRoutedVersion(alias, 0.1), '1');
  assert.equal(pickRoutedVersion(alias, 0.99), '1');
  assert.equal(pickRoutedVersion({ functionVersion: '3', routing: null }, 0), '3');
  const sent = Array.from({ length: 1000 }, (_, i) => pickRoutedVersion(alias, i / 1000)).filter((v) => v === '2').length;
  assert.equal(sent, 100);
});
