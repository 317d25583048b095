// Layers end to end, with the AWS SDK v3 and the AWS CLI as clients: publishing, reading, listing and
// deleting layer versions; functions whose Layers are extracted at /opt in order so require() finds
// /opt/nodejs/node_modules (confined, pooled, and under the process driver, where /opt is NODE_PATH's
// tree instead); built-in layers; bad input refused with nothing stored.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AddLayerVersionPermissionCommand, CreateFunctionCommand, DeleteLayerVersionCommand, GetFunctionCommand, GetFunctionConfigurationCommand,
  GetLayerVersionByArnCommand, GetLayerVersionCommand, GetLayerVersionPolicyCommand, InvokeCommand, ListLayersCommand, ListLayerVersionsCommand,
  PublishLayerVersionCommand, PublishVersionCommand, RemoveLayerVersionPermissionCommand, UpdateFunctionConfigurationCommand, type LambdaClient,
} from '@aws-sdk/client-lambda';
import { eventually, getJson, invokeHttp, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const ROLE = 'arn:aws:iam::000000000000:role/thaw';

/** A CommonJS handler that reports what require() and /opt give it. */
const probe = pkg({
  'index.js': `exports.handler = async () => {
    const fs = require('node:fs');
    const read = (p) => { try { return fs.readFileSync(p, 'utf8'); } catch (e) { return 'missing: ' + e.code; } };
    return { lib: require('mylib').name, shared: read('/opt/shared.txt'), nodePath: process.env.NODE_PATH, overridden: require('mylib/which.js') };
  };`,
});

const layerA = pkg({ 'nodejs/node_modules/mylib/index.js': "exports.name = 'mylib from A';", 'nodejs/node_modules/mylib/which.js': "module.exports = 'A';", 'shared.txt': 'A' });
const layerB = pkg({ 'nodejs/node_modules/mylib/which.js': "module.exports = 'B';", 'shared.txt': 'B' });

async function invoke(lambda: LambdaClient, name: string, qualifier?: string) {
  const r = await lambda.send(new InvokeCommand({ FunctionName: name, Qualifier: qualifier }));
  const text = Buffer.from(r.Payload ?? []).toString();
  assert.equal(r.FunctionError, undefined, text);
  return JSON.parse(text);
}

const rejectsWith = async (p: Promise<unknown>, name: string, message?: RegExp) => {
  await assert.rejects(p, (e: Error) => {
    assert.equal(e.name, name, e.message);
    if (message) assert.match(e.message, message);
    return true;
  });
};

describe('layers through the AWS SDK', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw(); });
  after(async () => { await t?.stop(); });

  test('PublishLayerVersion, GetLayerVersion(ByArn), ListLayers, ListLayerVersions and DeleteLayerVersion answer as Lambda does', async () => {
    const one = await t.lambda.send(new PublishLayerVersionCommand({
      LayerName: 'util', Content: { ZipFile: layerA }, Description: 'first', CompatibleRuntimes: ['nodejs22.x', 'nodejs24.x'], CompatibleArchitectures: ['x86_64'], LicenseInfo: 'MIT',
    }));
    assert.equal(one.Version, 1);
    assert.equal(one.LayerArn, 'arn:aws:lambda:us-east-1:000000000000:layer:util');
    assert.equal(one.LayerVersionArn, 'arn:aws:lambda:us-east-1:000000000000:layer:util:1');
    assert.deepEqual([one.Description, one.CompatibleRuntimes, one.CompatibleArchitectures, one.LicenseInfo], ['first', ['nodejs22.x', 'nodejs24.x'], ['x86_64'], 'MIT']);
    assert.equal(one.Content?.CodeSize, layerA.length);
    assert.equal(one.Content?.CodeSha256, (await import('node:crypto')).createHash('sha256').update(layerA).digest('base64'));
    assert.equal((await fetch(one.Content!.Location!)).status, 200, 'Content.Location serves the zip');
    assert.match(one.CreatedDate!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000$/);

    const two = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'util', Content: { ZipFile: layerB }, CompatibleRuntimes: ['nodejs20.x'] }));
    assert.equal(two.Version, 2);
    const got = await t.lambda.send(new GetLayerVersionCommand({ LayerName: 'util', VersionNumber: 1 }));
    assert.deepEqual({ ...got, $metadata: undefined }, { ...one, $metadata: undefined });
    const byArn = await t.lambda.send(new GetLayerVersionByArnCommand({ Arn: two.LayerVersionArn }));
    assert.equal(byArn.Version, 2);
    // LayerName may be the layer's ARN too.
    assert.equal((await t.lambda.send(new GetLayerVersionCommand({ LayerName: one.LayerArn, VersionNumber: 2 }))).Description, '');

    const versions = await t.lambda.send(new ListLayerVersionsCommand({ LayerName: 'util' }));
    assert.deepEqual(versions.LayerVersions?.map((v) => v.Version), [2, 1], 'newest first');
    const for22 = await t.lambda.send(new ListLayerVersionsCommand({ LayerName: 'util', CompatibleRuntime: 'nodejs22.x' }));
    assert.deepEqual(for22.LayerVersions?.map((v) => v.Version), [1]);
    const listed = await t.lambda.send(new ListLayersCommand({}));
    const util = listed.Layers?.find((l) => l.LayerName === 'util');
    assert.equal(util?.LatestMatchingVersion?.Version, 2);
    assert.equal(util?.LayerArn, one.LayerArn);
    const matching = await t.lambda.send(new ListLayersCommand({ CompatibleRuntime: 'nodejs22.x' }));
    assert.equal(matching.Layers?.find((l) => l.LayerName === 'util')?.LatestMatchingVersion?.Version, 1, 'the newest version that matches');

    await t.lambda.send(new DeleteLayerVersionCommand({ LayerName: 'util', VersionNumber: 2 }));
    await t.lambda.send(new DeleteLayerVersionCommand({ LayerName: 'util', VersionNumber: 2 })); // idempotent, as on Lambda
    await rejectsWith(t.lambda.send(new GetLayerVersionCommand({ LayerName: 'util', VersionNumber: 2 })), 'ResourceNotFoundException', /util:2/);
    const three = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'util', Content: { ZipFile: layerB } }));
    assert.equal(three.Version, 3, 'a deleted version number is not given again');
  });

  test('a function with two layers: the second overrides the first\'s files, require() finds /opt/nodejs/node_modules, versions keep them', async () => {
    const a = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'lib-a', Content: { ZipFile: layerA } }));
    const b = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'lib-b', Content: { ZipFile: layerB } }));
    const created = await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'layered', Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Code: { ZipFile: probe }, Layers: [a.LayerVersionArn!, b.LayerVersionArn!],
    }));
    assert.deepEqual(created.Layers, [{ Arn: a.LayerVersionArn, CodeSize: layerA.length }, { Arn: b.LayerVersionArn, CodeSize: layerB.length }]);
    const out = await invoke(t.lambda, 'layered');
    assert.equal(out.lib, 'mylib from A', 'a module only the first layer has');
    assert.equal(out.overridden, 'B', 'the second layer\'s file over the first\'s');
    assert.equal(out.shared, 'B');
    const major = 24;
    const opt = t.thaw.platform.options.sandbox === 'namespaces' ? '/opt' : null;
    if (opt) assert.equal(out.nodePath, `/opt/nodejs/node${major}/node_modules:/opt/nodejs/node_modules:/var/task`);

    const v1 = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'layered' }));
    assert.deepEqual(v1.Layers?.map((l) => l.Arn), [a.LayerVersionArn, b.LayerVersionArn]);
    // The version's snapshot bundles its layers' modules from the same tree (a module it could not resolve would fail it).
    const snap = await eventually(async () => {
      const s = (await getJson(`${t.url}/thaw/v1/functions/layered/snapshots`)).snapshots.find((x: { version: string }) => x.version === '1');
      return s && s.status !== 'pending' ? s : null;
    }, 'the snapshot of version 1', 90_000);
    assert.equal(snap.status, 'ready', JSON.stringify(snap));
    // Reversed order: now the first layer's files win.
    const swapped = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'layered', Layers: [b.LayerVersionArn!, a.LayerVersionArn!] }));
    assert.deepEqual(swapped.Layers?.map((l) => l.Arn), [b.LayerVersionArn, a.LayerVersionArn]);
    assert.equal((await invoke(t.lambda, 'layered')).overridden, 'A');
    assert.equal((await invoke(t.lambda, 'layered', '1')).overridden, 'B', 'version 1 keeps its layers in its order');

    // Deleting the layer versions leaves the functions that use them working (their content stays), as on Lambda.
    await t.lambda.send(new DeleteLayerVersionCommand({ LayerName: 'lib-a', VersionNumber: a.Version }));
    await t.lambda.send(new DeleteLayerVersionCommand({ LayerName: 'lib-b', VersionNumber: b.Version }));
    assert.equal((await fetch(a.Content!.Location!)).status, 200, 'the deleted layer\'s content is kept while a version uses it');
    // A configuration change makes a new $LATEST revision: a fresh instance, which again gets both layers.
    const resent = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'layered', MemorySize: 256, Layers: [b.LayerVersionArn!, a.LayerVersionArn!] }));
    assert.equal(resent.MemorySize, 256, 'sending the same (deleted) layers back is accepted');
    const again = await invoke(t.lambda, 'layered');
    assert.deepEqual([again.lib, again.overridden], ['mylib from A', 'A']);
    assert.equal((await invoke(t.lambda, 'layered', '1')).lib, 'mylib from A');
    // But a deleted version cannot be newly added to a function.
    await rejectsWith(t.lambda.send(new CreateFunctionCommand({ FunctionName: 'late', Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Code: { ZipFile: probe }, Layers: [a.LayerVersionArn!] })),
      'InvalidParameterValueException', /lib-a:\d+ does not exist/);
    // Removing them: no Layers in the configuration any more.
    const none = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'layered', Layers: [] }));
    assert.equal(none.Layers, undefined);
  });

  test('a pooled runtime (started before its function was known) sees the same /opt and NODE_PATH as a cold start', async () => {
    const a = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'pool-a', Content: { ZipFile: layerA } }));
    const b = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'pool-b', Content: { ZipFile: layerB } }));
    const create = (name: string) => t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', MemorySize: 192, Code: { ZipFile: probe }, Layers: [a.LayerVersionArn!, b.LayerVersionArn!] }));
    await create('shape-of-192');
    const first = await invokeHttp(t.url, 'shape-of-192');
    // The pool now keeps runtimes of this shape ready.
    await eventually(async () => (await getJson(`${t.url}/thaw/v1/node`)).pool.some((s: { memoryMb: number; ready: number }) => s.memoryMb === 192 && s.ready > 0), 'a pooled runtime of 192 MB', 60_000);
    await create('pooled-layers');
    const r = await invokeHttp(t.url, 'pooled-layers');
    assert.equal(r.headers.get('x-thaw-start'), 'pooled');
    assert.deepEqual(r.json, first.json, 'the same modules, files and NODE_PATH as the first start');
    assert.deepEqual([r.json.lib, r.json.overridden, r.json.shared], ['mylib from A', 'B', 'B']);
  });

  test('a built-in layer (thaw-middy-core, from Thaw\'s own node_modules) is listed and works', async () => {
    const listed = await t.lambda.send(new ListLayersCommand({}));
    const names = (listed.Layers ?? []).map((l) => l.LayerName);
    for (const n of ['thaw-zod', 'thaw-middy-core', 'thaw-hono', 'thaw-aws-lambda-powertools-logger']) assert.ok(names.includes(n), `${n} in ${names.join(', ')}`);
    const middy = listed.Layers!.find((l) => l.LayerName === 'thaw-middy-core')!;
    assert.match(middy.LatestMatchingVersion!.Description!, /^@middy\/core@\d+\.\d+\.\d+/);
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'with-middy', Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Layers: [middy.LatestMatchingVersion!.LayerVersionArn!],
      Code: { ZipFile: pkg({ 'index.js': "const middy = require('@middy/core').default; exports.handler = middy(async (event) => ({ doubled: event.n * 2, from: require.resolve('@middy/core') }));" }) },
    }));
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'with-middy', Payload: JSON.stringify({ n: 21 }) }));
    const out = JSON.parse(Buffer.from(r.Payload!).toString());
    assert.equal(out.doubled, 42, JSON.stringify(out));
    if (t.thaw.platform.options.sandbox === 'namespaces') assert.match(out.from, /^\/opt\/nodejs\/node_modules\/@middy\/core\//);
    // A restart on the same data dir publishes nothing new: the layer already holds that package version.
    await t.restart();
    const after = await t.lambda.send(new ListLayerVersionsCommand({ LayerName: 'thaw-middy-core' }));
    assert.equal(after.LayerVersions?.length, 1);
  });

  test('bad input is refused, naming what is wrong, and nothing is stored', async () => {
    const ok = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'six', Content: { ZipFile: layerA } }));
    const six = Array.from({ length: 6 }, (_, i) => `arn:aws:lambda:us-east-1:000000000000:layer:l${i}:1`);
    const create = (name: string, layers: string[]) => t.lambda.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Code: { ZipFile: probe }, Layers: layers }));
    await rejectsWith(create('bad1', six), 'InvalidParameterValueException', /at most 5/);
    const unknown = 'arn:aws:lambda:us-east-1:000000000000:layer:nope:7';
    await rejectsWith(create('bad2', [ok.LayerVersionArn!, unknown]), 'InvalidParameterValueException', /layer:nope:7 does not exist/);
    await rejectsWith(create('bad3', [ok.LayerVersionArn!, ok.LayerVersionArn!]), 'InvalidParameterValueException', /twice/);
    await rejectsWith(create('bad4', ['arn:aws:lambda:eu-west-1:000000000000:layer:six:1']), 'InvalidParameterValueException', /not a layer of this Thaw/);
    for (const name of ['bad1', 'bad2', 'bad3', 'bad4']) await rejectsWith(t.lambda.send(new GetFunctionCommand({ FunctionName: name })), 'ResourceNotFoundException');
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'plain', Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Code: { ZipFile: probe } }));
    await rejectsWith(t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'plain', Layers: [unknown] })), 'InvalidParameterValueException', /nope:7/);
    assert.equal((await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'plain' }))).Layers, undefined, 'the refused update changed nothing');

    await rejectsWith(t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'broken', Content: { ZipFile: Buffer.from('not a zip at all') } })), 'InvalidParameterValueException', /neither a zip/);
    await rejectsWith(t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'broken', Content: { ZipFile: layerA, S3Bucket: 'b', S3Key: 'k' } })), 'InvalidParameterValueException', /S3/);
    await rejectsWith(t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'broken', Content: { ZipFile: layerA }, CompatibleArchitectures: ['sparc' as 'arm64'] })), 'InvalidParameterValueException', /CompatibleArchitectures/);
    assert.deepEqual((await t.lambda.send(new ListLayerVersionsCommand({ LayerName: 'broken' }))).LayerVersions, []);
    assert.equal((await t.lambda.send(new ListLayersCommand({}))).Layers?.some((l) => l.LayerName === 'broken'), false);
  });

  test('layer version permissions are stored and returned as a policy (Thaw has one account: they grant nothing more)', async () => {
    await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'shared', Content: { ZipFile: layerA } }));
    const added = await t.lambda.send(new AddLayerVersionPermissionCommand({ LayerName: 'shared', VersionNumber: 1, StatementId: 'everyone', Action: 'lambda:GetLayerVersion', Principal: '*' }));
    assert.deepEqual(JSON.parse(added.Statement!), { Sid: 'everyone', Effect: 'Allow', Principal: '*', Action: 'lambda:GetLayerVersion', Resource: 'arn:aws:lambda:us-east-1:000000000000:layer:shared:1' });
    await rejectsWith(t.lambda.send(new AddLayerVersionPermissionCommand({ LayerName: 'shared', VersionNumber: 1, StatementId: 'everyone', Action: 'lambda:GetLayerVersion', Principal: '*' })), 'ResourceConflictException');
    await rejectsWith(t.lambda.send(new AddLayerVersionPermissionCommand({ LayerName: 'shared', VersionNumber: 1, StatementId: 'x', Action: 'lambda:InvokeFunction', Principal: '*' })), 'InvalidParameterValueException', /Action/);
    const policy = await t.lambda.send(new GetLayerVersionPolicyCommand({ LayerName: 'shared', VersionNumber: 1 }));
    assert.equal(policy.RevisionId, added.RevisionId);
    assert.deepEqual(JSON.parse(policy.Policy!).Statement.map((s: { Sid: string }) => s.Sid), ['everyone']);
    await rejectsWith(t.lambda.send(new RemoveLayerVersionPermissionCommand({ LayerName: 'shared', VersionNumber: 1, StatementId: 'everyone', RevisionId: 'stale' })), 'PreconditionFailedException');
    await t.lambda.send(new RemoveLayerVersionPermissionCommand({ LayerName: 'shared', VersionNumber: 1, StatementId: 'everyone', RevisionId: policy.RevisionId }));
    await rejectsWith(t.lambda.send(new GetLayerVersionPolicyCommand({ LayerName: 'shared', VersionNumber: 1 })), 'ResourceNotFoundException');
  });
});

describe('layers under the process driver (no mount namespace: NODE_PATH names the merged tree)', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ sandbox: 'process' }); });
  after(async () => { await t?.stop(); });

  test('require() finds the layers\' modules, in order, through NODE_PATH; /opt is the host\'s, not the layers\'', async () => {
    const a = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'lib-a', Content: { ZipFile: layerA } }));
    const b = await t.lambda.send(new PublishLayerVersionCommand({ LayerName: 'lib-b', Content: { ZipFile: layerB } }));
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'layered', Runtime: 'nodejs24.x', Role: ROLE, Handler: 'index.handler', Code: { ZipFile: probe }, Layers: [a.LayerVersionArn!, b.LayerVersionArn!] }));
    const out = await invoke(t.lambda, 'layered');
    assert.deepEqual([out.lib, out.overridden], ['mylib from A', 'B']);
    const [first] = out.nodePath.split(':');
    assert.ok(first.startsWith(join(t.cacheDir, 'code')) && first.endsWith('/nodejs/node24/node_modules'), out.nodePath);
  });
});

const AWS = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));

describe('layers through the AWS CLI', { skip: AWS ? false : 'the AWS CLI is not installed (to enable: apt-get install awscli)' }, () => {
  let t: TestThaw;
  let dir = '';
  before(async () => { t = await startTestThaw({ poolSize: 0 }); dir = mkdtempSync('/tmp/thaw-awscli-layers-'); });
  after(async () => { await t?.stop(); rmSync(dir, { recursive: true, force: true }); });

  const aws = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    execFile(AWS!, ['lambda', ...args, '--endpoint-url', t.url, '--region', 'us-east-1', '--output', 'json'], {
      env: { PATH: '/usr/bin:/bin', HOME: dir, AWS_ACCESS_KEY_ID: 'thaw', AWS_SECRET_ACCESS_KEY: 'thaw', AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
      timeout: 120_000,
    }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });

  test('publish-layer-version --zip-file, list-layers, get-layer-version and delete-layer-version', async () => {
    writeFileSync(join(dir, 'layer.zip'), layerA);
    const pub = await aws(['publish-layer-version', '--layer-name', 'cli-layer', '--zip-file', `fileb://${join(dir, 'layer.zip')}`, '--compatible-runtimes', 'nodejs22.x']);
    assert.equal(pub.code, 0, pub.stderr);
    assert.equal(JSON.parse(pub.stdout).LayerVersionArn, 'arn:aws:lambda:us-east-1:000000000000:layer:cli-layer:1');
    const list = await aws(['list-layers', '--compatible-runtime', 'nodejs22.x']);
    assert.equal(list.code, 0, list.stderr);
    assert.ok(JSON.parse(list.stdout).Layers.some((l: { LayerName: string }) => l.LayerName === 'cli-layer'), list.stdout);
    const got = await aws(['get-layer-version', '--layer-name', 'cli-layer', '--version-number', '1']);
    assert.equal(JSON.parse(got.stdout).Content.CodeSize, layerA.length);
    assert.equal((await aws(['delete-layer-version', '--layer-name', 'cli-layer', '--version-number', '1'])).code, 0);
    const gone = await aws(['get-layer-version', '--layer-name', 'cli-layer', '--version-number', '1']);
    assert.notEqual(gone.code, 0);
    assert.match(gone.stderr, /ResourceNotFoundException/);
  });
});
