// TypeScript compiled at deploy, end to end through the AWS SDK v3: what deploys runs (enums, parameter
// properties, extensionless and type-only imports, .mts and .cts), and what does not compile is refused at
// deploy naming file:line, leaving nothing behind.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { CreateFunctionCommand, GetFunctionCommand, InvokeCommand, UpdateFunctionCodeCommand } from '@aws-sdk/client-lambda';
import { pkg, startTestThaw, type TestThaw } from './helpers.ts';

const dec = (b?: Uint8Array) => JSON.parse(Buffer.from(b ?? []).toString('utf8'));

describe('TypeScript compiled at deploy', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0, freezeAfterMs: -1, snapshots: false }); });
  after(async () => { await t.stop(); });

  const create = (name: string, files: Record<string, string>, handler = 'index.handler') =>
    t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x' as never, Handler: handler, Role: 'arn:aws:iam::000000000000:role/x', Code: { ZipFile: pkg(files) } }));
  const invoke = async (name: string, payload: unknown = {}) => {
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from(JSON.stringify(payload)) }));
    assert.equal(r.FunctionError, undefined, Buffer.from(r.Payload ?? []).toString());
    return dec(r.Payload);
  };
  /** The SDK's error for a refused request: its name (the Lambda type) and message. */
  const refusal = async (p: Promise<unknown>) => {
    try { await p; } catch (err) { return { name: (err as Error).name, message: (err as Error).message, status: (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode }; }
    assert.fail('the request was accepted');
  };
  const cacheTrees = () => (existsSync(join(t.cacheDir, 'code')) ? readdirSync(join(t.cacheDir, 'code')).sort() : []);

  test('enum, parameter properties, an extensionless import and a type-only import deploy and run', async () => {
    await create('ts-full', {
      'index.ts': [
        "import { Greeter, Mood } from './lib/greeter';",
        "import type { Event } from './types';",
        "import { twice } from './lib';",
        'export const handler = async (event: Event) => {',
        "  const g = new Greeter('Hello');",
        "  const { late } = await import('./lib/late');",
        '  return { text: g.greet(event.name), mood: Mood.Happy, moods: Object.keys(Mood), twice: twice(21), late };',
        '};',
      ].join('\n'),
      'lib/greeter.ts': [
        "export enum Mood { Happy = 'happy', Calm = 'calm' }",
        'export class Greeter {',
        '  constructor(private readonly word: string, public count: number = 1) {}',
        '  greet(name: string): string { return `${this.word}, ${name}` + "!".repeat(this.count); }',
        '}',
      ].join('\n'),
      'lib/index.ts': 'export const twice = (n: number): number => n * 2;',
      'lib/late.ts': "namespace Inner { export const value = 'late'; }\nexport const late: string = Inner.value;",
      'types.ts': 'export interface Event { name: string }',
    });
    assert.deepEqual(await invoke('ts-full', { name: 'Ada' }), { text: 'Hello, Ada!', mood: 'happy', moods: ['Happy', 'Calm'], twice: 42, late: 'late' });
  });

  test('.mts is an ES module (top-level await, import.meta) and .cts CommonJS; .ts follows package.json "type"', async () => {
    await create('ts-mts', {
      'index.mts': "import { base } from './util.mjs';\nconst ready: number = await Promise.resolve(1);\nexport const handler = async () => ({ ready, esm: typeof import.meta.url, base: base() });",
      'util.mts': "export const base = (): string => 'esm';",
    });
    assert.deepEqual(await invoke('ts-mts'), { ready: 1, esm: 'string', base: 'esm' });

    await create('ts-cts', {
      'index.cts': "import { helper } from './helper.cjs';\nexport const handler = async () => ({ cjs: typeof module, dir: typeof __dirname, helper: helper() });",
      'helper.cts': "export function helper(): string { return 'cjs'; }",
    });
    assert.deepEqual(await invoke('ts-cts'), { cjs: 'object', dir: 'string', helper: 'cjs' });

    await create('ts-module', {
      'package.json': '{"type":"module"}',
      'index.ts': "import { n } from './n';\nconst v: number = await Promise.resolve(n);\nexport const handler = async () => ({ v, esm: typeof import.meta.url });",
      'n.ts': 'export const n: number = 7;',
    });
    assert.deepEqual(await invoke('ts-module'), { v: 7, esm: 'string' });
  });

  test('a syntax error is refused at deploy naming file:line, and nothing of the package is kept', async () => {
    const before = cacheTrees();
    const r = await refusal(create('ts-broken', {
      'index.ts': "import { x } from './lib';\nexport const handler = async () => x;",
      'lib.ts': 'export const x: number = 1;\nexport function f(a: number {\n  return a;\n}',
    }));
    assert.equal(r.status, 400);
    assert.equal(r.name, 'InvalidParameterValueException');
    assert.match(r.message, /THAW_E_TYPESCRIPT_INVALID|does not compile/);
    assert.match(r.message, /lib\.ts:2:\d+: /, r.message);
    assert.deepEqual(cacheTrees(), before, 'no tree, compiled or not, is left in the code cache');
    assert.equal((await refusal(t.lambda.send(new GetFunctionCommand({ FunctionName: 'ts-broken' })))).name, 'ResourceNotFoundException');
  });

  test('ES module syntax CommonJS cannot express is refused with the TypeScript line and what to do', async () => {
    const r = await refusal(create('ts-cjs-tla', {
      'index.ts': "interface A { a: number }\n\nconst a: A = { a: 1 };\nexport const url = import.meta.url;\nexport const handler = async () => a;",
    }));
    assert.equal(r.name, 'InvalidParameterValueException');
    assert.match(r.message, /index\.ts:4:\d+: "import\.meta" is not available/, r.message);
    assert.match(r.message, /rename it \.mts or set "type": "module"/);
  });

  test('UpdateFunctionCode compiles too: a broken update is refused and the function keeps running its last code', async () => {
    await create('ts-update', { 'index.ts': "enum E { A = 'first' }\nexport const handler = async () => E.A;" });
    assert.equal(await invoke('ts-update'), 'first');
    const r = await refusal(t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'ts-update', ZipFile: pkg({ 'index.ts': 'export const handler = async () => {;' }) })));
    assert.equal(r.name, 'InvalidParameterValueException');
    assert.match(r.message, /index\.ts:1:\d+: /);
    assert.equal(await invoke('ts-update'), 'first');
    await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'ts-update', ZipFile: pkg({ 'index.ts': "enum E { B = 'second' }\nexport const handler = async () => E.B;" }) }));
    assert.equal(await invoke('ts-update'), 'second');
  });
});
