// `thaw dev` end to end: the command as a real child process against a real server, a directory edited on
// disk, the function invoked through the AWS SDK v3; the edit must be what the next invoke runs, and the
// invocation's start path and log lines must appear in the command's output.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GetFunctionCommand, InvokeCommand } from '@aws-sdk/client-lambda';
import { eventually, startTestThaw, type TestThaw } from './helpers.ts';

const bin = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');

describe('thaw dev', () => {
  let t: TestThaw;
  let dir: string;
  let dev: ChildProcess;
  let out = '';
  before(async () => {
    t = await startTestThaw({ freezeAfterMs: -1, snapshots: false });
    dir = await mkdtemp(join(tmpdir(), 'thaw-dev-'));
    await writeFile(join(dir, 'index.mjs'), 'export const handler = async () => { console.log("first log line"); return "v1"; };\n');
    dev = spawn(process.execPath, [bin, 'dev', dir, '--name', 'devloop'], { env: { ...process.env, THAW_ENDPOINT: t.url }, stdio: ['ignore', 'pipe', 'pipe'] });
    dev.stdout!.on('data', (c) => { out += c; });
    dev.stderr!.on('data', (c) => { out += c; });
    await eventually(async () => out.includes('thaw dev: watching'), `thaw dev to start watching (output: ${out})`, 60_000);
  });
  after(async () => {
    if (dev.exitCode === null) { dev.kill('SIGINT'); await once(dev, 'exit'); }
    await t.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const invoke = async () => {
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'devloop', Payload: Buffer.from('{}') }));
    return { value: JSON.parse(Buffer.from(r.Payload ?? []).toString()), error: r.FunctionError, id: r.$metadata.requestId };
  };
  /** Output after `mark` characters, once `what` matches there. */
  const printed = (mark: number, what: RegExp, label: string) => eventually(async () => what.exec(out.slice(mark)), `${label} (output: ${out.slice(mark)})`, 60_000);

  test('creates the missing function and prints each invocation\'s start path and logs as they happen', async () => {
    assert.match(out, /published devloop:\$LATEST created/);
    assert.equal((await t.lambda.send(new GetFunctionCommand({ FunctionName: 'devloop' }))).Configuration?.Handler, 'index.handler');
    const mark = out.length;
    assert.equal((await invoke()).value, 'v1');
    await printed(mark, /first log line/, 'the function\'s log line');
    await printed(mark, /invocation \S+ \$LATEST: start (cold|pooled|warm|restored)/, 'the invocation and its start path');
  });

  test('a save publishes $LATEST: the next invoke runs the new code', async () => {
    const mark = out.length;
    await writeFile(join(dir, 'index.mjs'), 'export const handler = async () => { console.log("second log line"); return "v2"; };\n');
    await printed(mark, /published devloop:\$LATEST updated/, 'the save to be published');
    assert.equal((await invoke()).value, 'v2');
    await printed(mark, /second log line/, 'the new code\'s log line');
  });

  test('TypeScript that does not compile is reported with file:line and the last good code keeps running', async () => {
    let mark = out.length;
    await writeFile(join(dir, 'util.ts'), 'export const broken = (a: number => a;\n');
    await printed(mark, /publish failed: THAW_E_TYPESCRIPT_INVALID[\s\S]*util\.ts:1:\d+/, 'the compile error');
    assert.equal((await invoke()).value, 'v2');
    mark = out.length;
    await writeFile(join(dir, 'util.ts'), "export enum Answer { Yes = 'v3' }\n");
    await writeFile(join(dir, 'index.mjs'), 'import { Answer } from "./util.js";\nexport const handler = async () => Answer.Yes;\n');
    await printed(mark, /published devloop:\$LATEST updated/, 'the fixed code to be published');
    assert.equal((await eventually(async () => { const r = await invoke(); return r.value === 'v3' && r; }, 'the fixed code to run')).value, 'v3');
  });
});
