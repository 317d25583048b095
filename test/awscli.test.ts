// The AWS CLI (Debian's awscli) against Thaw: with no key it works from this machine with any credentials;
// once a key exists it works with that key and is refused with another secret. Skipped where `aws` is not
// installed, saying how to install it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const AWS = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));
const skip = AWS ? false : 'the AWS CLI is not installed (to enable: apt-get install awscli)';
const bin = join(resolve(import.meta.dirname, '..'), 'bin', 'thaw.js');

function run(cmd: string, args: string[], env: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((res) => {
    execFile(cmd, args, { env, timeout: 120_000 }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
}

describe('the AWS CLI', { skip }, () => {
  let t: TestThaw;
  let home = '';
  const aws = (args: string[], creds: { id: string; secret: string }) => run(AWS!, [...args, '--endpoint-url', t.url, '--region', 'us-east-1', '--output', 'json'], {
    PATH: '/usr/bin:/bin', HOME: home, AWS_ACCESS_KEY_ID: creds.id, AWS_SECRET_ACCESS_KEY: creds.secret,
    AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1',
  });
  before(async () => {
    home = mkdtempSync('/tmp/thaw-awscli-home-');
    t = await startTestThaw({ poolSize: 0 });
    const r = await fetch(`${t.url}/2015-03-31/functions`, { method: 'POST', body: JSON.stringify({ FunctionName: 'cli', Runtime: 'nodejs24', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': fnSource('return { hi: event.who };') }).toString('base64') } }) });
    assert.equal(r.status, 201);
  });
  after(async () => { await t?.stop(); });

  test('with no key: any credentials work from this machine', async () => {
    const r = await aws(['lambda', 'list-functions'], { id: 'anything', secret: 'anything' });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).Functions.map((f: { FunctionName: string }) => f.FunctionName), ['cli']);
  });

  test('with a key: the right key invokes, another secret is refused with InvalidSignatureException', async () => {
    const made = await run(process.execPath, [bin, 'keys', 'create', '--data', t.dataDir, '--role', 'admin', '--json'], { PATH: process.env.PATH ?? '' });
    assert.equal(made.code, 0, made.stderr);
    const key = JSON.parse(made.stdout) as { AccessKeyId: string; SecretAccessKey: string };
    const out = join(home, 'out.json');
    const ok = await aws(['lambda', 'invoke', '--function-name', 'cli', '--cli-binary-format', 'raw-in-base64-out', '--payload', '{"who":"aws"}', out], { id: key.AccessKeyId, secret: key.SecretAccessKey });
    assert.equal(ok.code, 0, ok.stderr);
    assert.deepEqual(JSON.parse(readFileSync(out, 'utf8')), { hi: 'aws' });
    const bad = await aws(['lambda', 'list-functions'], { id: key.AccessKeyId, secret: 'not-the-secret' });
    assert.notEqual(bad.code, 0);
    assert.match(bad.stderr, /InvalidSignatureException/);
  });
});
