// The rest of the Lambda management API as deploy tools call it, through the AWS SDK v3 and the AWS CLI:
// tags, account settings, code signing, runtime management, recursion, event source mappings; every field
// of the function operations honoured or refused by name (never dropped); and every operation of the
// SDK's Lambda client either served or refused with a specific error, never an unknown route.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, statSync } from 'node:fs';
import * as sdk from '@aws-sdk/client-lambda';
import {
  CreateEventSourceMappingCommand, CreateFunctionCommand, GetAccountSettingsCommand, GetFunctionCodeSigningConfigCommand,
  GetFunctionCommand, GetFunctionConfigurationCommand, GetFunctionRecursionConfigCommand, GetRuntimeManagementConfigCommand,
  InvokeCommand, ListEventSourceMappingsCommand, ListTagsCommand, PublishVersionCommand, PutFunctionCodeSigningConfigCommand,
  PutFunctionRecursionConfigCommand, PutRuntimeManagementConfigCommand, TagResourceCommand, UntagResourceCommand,
  UpdateFunctionCodeCommand, UpdateFunctionConfigurationCommand, type CreateFunctionCommandInput, type FunctionConfiguration,
} from '@aws-sdk/client-lambda';
import { eventually, fnSource, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

/** The role most creates give (SDK types require one; Thaw would default it). */
const ROLE = 'arn:aws:iam::123456789012:role/tests';
const ARCH = process.arch === 'arm64' ? 'arm64' : 'x86_64';
const arn = (name: string) => `arn:aws:lambda:us-east-1:000000000000:function:${name}`;
const zip = (body = 'return { ok: true };') => pkg({ 'index.mjs': fnSource(body) });

/** The error a call fails with (the SDK's exception), or a failure if it succeeds. */
async function refusal(p: Promise<unknown>): Promise<Error & { $metadata?: { httpStatusCode?: number } }> {
  try { await p; } catch (err) { return err as Error; }
  throw new Error('expected the call to be refused');
}

/**
 * Where the configuration Lambda returns differs from what a deploy tool sent, field by field. As tools
 * read it, a field sent empty ("", [], {}) matches one returned empty or left out.
 */
function drift(sent: unknown, got: unknown, path = ''): string[] {
  const empty = (v: unknown) => v === undefined || v === '' || (Array.isArray(v) && v.length === 0) || (typeof v === 'object' && v !== null && Object.values(v).every(empty));
  if (empty(sent)) return empty(got) ? [] : [`${path}: sent empty, got ${JSON.stringify(got)}`];
  if (Array.isArray(sent)) return JSON.stringify(sent) === JSON.stringify(got) ? [] : [`${path}: sent ${JSON.stringify(sent)}, got ${JSON.stringify(got)}`];
  if (typeof sent === 'object' && sent !== null) {
    if (typeof got !== 'object' || got === null) return [`${path}: sent ${JSON.stringify(sent)}, got ${JSON.stringify(got)}`];
    return Object.entries(sent).flatMap(([k, v]) => drift(v, (got as Record<string, unknown>)[k], path ? `${path}.${k}` : k));
  }
  return sent === got ? [] : [`${path}: sent ${JSON.stringify(sent)}, got ${JSON.stringify(got)}`];
}

/** The fields of a CreateFunction / UpdateFunctionConfiguration request that FunctionConfiguration echoes. */
function echoed(input: object) {
  const { Code: _c, Publish: _p, Tags: _t, ZipFile: _z, RevisionId: _r, ...rest } = input as Record<string, unknown>;
  return rest;
}

describe('the Lambda management API', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0 }); });
  after(async () => { await t?.stop(); });

  /** What SAM or Terraform send on create: every field at the value the template gives or its default. */
  const fullCreate = (name: string): CreateFunctionCommandInput => ({
    FunctionName: name,
    Role: 'arn:aws:iam::123456789012:role/service-role/deploy-tool-role',
    Runtime: 'nodejs24.x',
    Handler: 'index.handler',
    Code: { ZipFile: zip('return { trace: process.env._X_AMZN_TRACE_ID };') },
    Description: 'made by a deploy tool',
    Timeout: 7,
    MemorySize: 256,
    Publish: false,
    PackageType: 'Zip',
    Environment: { Variables: { STAGE: 'dev', TABLE: 'orders' } },
    TracingConfig: { Mode: 'Active' },
    Architectures: [ARCH],
    EphemeralStorage: { Size: 1024 },
    VpcConfig: { SubnetIds: [], SecurityGroupIds: [] },
    DeadLetterConfig: {},
    KMSKeyArn: '',
    FileSystemConfigs: [],
    LoggingConfig: { LogFormat: 'Text', LogGroup: `/aws/lambda/${name}` },
    SnapStart: { ApplyOn: 'PublishedVersions' },
    Layers: [],
    Tags: { team: 'payments', 'cost-center': '42' },
  });

  test('a deploy tool\'s create / read / update cycle finds no drift in any field it sent', async () => {
    const input = fullCreate('deployed');
    const created = await t.lambda.send(new CreateFunctionCommand(input));
    assert.deepEqual(drift(echoed(input), created), [], 'CreateFunction\'s answer');
    const got = await t.lambda.send(new GetFunctionCommand({ FunctionName: 'deployed' }));
    assert.deepEqual(drift(echoed(input), got.Configuration), [], 'GetFunction\'s Configuration');
    assert.deepEqual(got.Tags, input.Tags);
    const c = got.Configuration!;
    assert.equal(c.State, 'Active');
    assert.equal(c.LastUpdateStatus, 'Successful');
    assert.deepEqual(c.SnapStart, { ApplyOn: 'PublishedVersions', OptimizationStatus: 'Off' }, '$LATEST is never snapshotted');

    const update = {
      FunctionName: 'deployed', Role: 'arn:aws:iam::123456789012:role/other-role', Description: 'updated', Timeout: 9, MemorySize: 512,
      Environment: { Variables: { STAGE: 'prod' } }, TracingConfig: { Mode: 'PassThrough' as const }, SnapStart: { ApplyOn: 'None' as const },
      LoggingConfig: { LogFormat: 'Text' as const, LogGroup: '/aws/lambda/deployed' }, DeadLetterConfig: { TargetArn: '' }, KMSKeyArn: '',
      VpcConfig: { SubnetIds: [], SecurityGroupIds: [] }, EphemeralStorage: { Size: 512 }, RevisionId: c.RevisionId,
    };
    const updated = await t.lambda.send(new UpdateFunctionConfigurationCommand(update));
    assert.deepEqual(drift(echoed(update), updated), [], 'UpdateFunctionConfiguration\'s answer');
    const after = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'deployed' }));
    assert.deepEqual(drift(echoed(update), after), [], 'GetFunctionConfiguration after the update');
    assert.equal(after.Handler, 'index.handler', 'what the update did not name is kept');

    const code = await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'deployed', ZipFile: zip('return 2;'), Architectures: [ARCH] }));
    assert.deepEqual(drift(echoed(update), code), [], 'UpdateFunctionCode keeps the configuration');
    const v1 = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'deployed', Description: 'release 1', CodeSha256: code.CodeSha256 }));
    assert.equal(v1.Version, '1');
    assert.equal(v1.Description, 'release 1', 'PublishVersion\'s Description is the version\'s');
    assert.equal(v1.Role, update.Role);
    assert.equal((await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'deployed' }))).Description, 'updated', '$LATEST keeps its own description');
  });

  test('Runtime and Role come back exactly as sent', async () => {
    const c = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'deployed' }));
    assert.equal(c.Role, 'arn:aws:iam::123456789012:role/other-role');
    assert.equal(c.Runtime, 'nodejs24.x', 'Runtime echo (the runtimes helper\'s part of issue 14)');
  });

  test('fields Thaw cannot honour are refused with InvalidParameterValueException naming them, and change nothing', async () => {
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'strict', Role: 'arn:aws:iam::123456789012:role/r', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() } }));
    const before = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'strict' }));
    const cases: [string, Record<string, unknown>][] = [
      ['DeadLetterConfig.TargetArn', { DeadLetterConfig: { TargetArn: 'arn:aws:sqs:us-east-1:123456789012:dlq' } }],
      ['KMSKeyArn', { KMSKeyArn: 'arn:aws:kms:us-east-1:123456789012:key/abc' }],
      ['FileSystemConfigs', { FileSystemConfigs: [{ Arn: 'arn:aws:elasticfilesystem:us-east-1:123456789012:access-point/fsap-1', LocalMountPath: '/mnt/efs' }] }],
      ['ImageConfig', { ImageConfig: { Command: ['app.handler'] } }],
      ['LoggingConfig.LogFormat', { LoggingConfig: { LogFormat: 'XML' } }],
      ['LoggingConfig.LogGroup', { LoggingConfig: { LogGroup: '/custom/group' } }],
      ['LoggingConfig.ApplicationLogLevel', { LoggingConfig: { LogFormat: 'Text', ApplicationLogLevel: 'DEBUG' } }],
      ['VpcConfig.Ipv6AllowedForDualStack', { VpcConfig: { SubnetIds: [], SecurityGroupIds: [], Ipv6AllowedForDualStack: true } }],
      ['TracingConfig', { TracingConfig: { Mode: 'Sometimes' } }],
      ['SnapStart', { SnapStart: { ApplyOn: 'Always' } }],
      ['Role', { Role: 'my-role' }],
      ['DurableConfig', { DurableConfig: { ExecutionTimeout: 60 } }],
      ['CapacityProviderConfig', { CapacityProviderConfig: { LambdaManagedInstancesCapacityProviderConfig: { CapacityProviderArn: 'arn:aws:lambda:us-east-1:123456789012:capacity-provider:cp' } } }],
    ];
    for (const [field, extra] of cases) {
      const err = await refusal(t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'strict', ...extra })));
      assert.equal(err.name, 'InvalidParameterValueException', `${field}: ${err.message}`);
      assert.match(err.message, new RegExp(field.replace(/\./g, '\\.').replace(/^TracingConfig$/, 'TracingConfig\\.Mode').replace(/^SnapStart$/, 'SnapStart\\.ApplyOn')), `${field} is named`);
    }
    const other = ARCH === 'x86_64' ? 'arm64' : 'x86_64';
    const arch = await refusal(t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'strict', ZipFile: zip(), Architectures: [other] })));
    assert.match(arch.message, /Architectures/);
    const s3 = await refusal(t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'from-s3', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip(), S3Bucket: 'b', S3Key: 'k.zip' } })));
    assert.equal(s3.name, 'InvalidParameterValueException');
    assert.match(s3.message, /Code\.S3Bucket/);
    const csc = await refusal(t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'signed', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() }, CodeSigningConfigArn: 'arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-1' })));
    assert.match(csc.message, /CodeSigningConfigArn/);
    assert.equal((await refusal(t.lambda.send(new GetFunctionCommand({ FunctionName: 'signed' })))).name, 'ResourceNotFoundException', 'a refused create makes nothing');
    const now = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'strict' }));
    assert.equal(now.RevisionId, before.RevisionId, 'no refused update changed the function');
  });

  test('an unknown field (a typo) is refused, naming the field meant', async () => {
    const r = await fetch(`${t.url}/2015-03-31/functions/strict/configuration`, { method: 'PUT', body: JSON.stringify({ Timeuot: 30 }) });
    assert.equal(r.status, 400);
    assert.equal(r.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
    const body = await r.json() as { code: string; message: string };
    assert.equal(body.code, 'THAW_E_FIELD_UNKNOWN');
    assert.match(body.message, /Timeuot.*did you mean Timeout/);
    const nested = await fetch(`${t.url}/2015-03-31/functions/strict/configuration`, { method: 'PUT', body: JSON.stringify({ TracingConfig: { mode: 'Active' } }) });
    assert.match((await nested.json() as { message: string }).message, /TracingConfig.*mode.*did you mean Mode/);
  });

  test('tags: CreateFunction Tags, TagResource, ListTags, UntagResource and GetFunction agree', async () => {
    await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'tagged', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() }, Tags: { a: '1' } }));
    await t.lambda.send(new TagResourceCommand({ Resource: arn('tagged'), Tags: { b: '2', a: 'one' } }));
    assert.deepEqual((await t.lambda.send(new ListTagsCommand({ Resource: arn('tagged') }))).Tags, { a: 'one', b: '2' });
    await t.lambda.send(new UntagResourceCommand({ Resource: arn('tagged'), TagKeys: ['a', 'never'] }));
    assert.deepEqual((await t.lambda.send(new ListTagsCommand({ Resource: arn('tagged') }))).Tags, { b: '2' });
    assert.deepEqual((await t.lambda.send(new GetFunctionCommand({ FunctionName: 'tagged' }))).Tags, { b: '2' });
  });

  test('tags are validated as Lambda does, and a refused TagResource keeps nothing', async () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ 'aws:cloudformation:stack-name': 's' }, /aws:/],
      [{ ['k'.repeat(129)]: 'v' }, /1-128/],
      [{ k: 'v'.repeat(257) }, /0-256/],
      [{ 'bad#key': 'v' }, /not valid/],
    ];
    for (const [tags, why] of bad) {
      const err = await refusal(t.lambda.send(new TagResourceCommand({ Resource: arn('tagged'), Tags: tags })));
      assert.equal(err.name, 'InvalidParameterValueException');
      assert.match(err.message, why);
    }
    const many = Object.fromEntries(Array.from({ length: 50 }, (_, i) => [`k${i}`, 'v']));
    assert.match((await refusal(t.lambda.send(new TagResourceCommand({ Resource: arn('tagged'), Tags: many })))).message, /51 tags; the limit is 50/);
    assert.deepEqual((await t.lambda.send(new ListTagsCommand({ Resource: arn('tagged') }))).Tags, { b: '2' });
    assert.match((await refusal(t.lambda.send(new TagResourceCommand({ Resource: `${arn('tagged')}:1`, Tags: { x: 'y' } })))).message, /not to a version or alias/);
    assert.equal((await refusal(t.lambda.send(new ListTagsCommand({ Resource: arn('ghost') })))).name, 'ResourceNotFoundException');
    assert.equal((await refusal(t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'badtags', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() }, Tags: { 'aws:x': 'y' } })))).name, 'InvalidParameterValueException');
    assert.equal((await refusal(t.lambda.send(new GetFunctionCommand({ FunctionName: 'badtags' })))).name, 'ResourceNotFoundException', 'refused tags create no function');
  });

  test('GetAccountSettings reports the node\'s limits and what the store really holds', async () => {
    const s1 = await t.lambda.send(new GetAccountSettingsCommand({}));
    const fns = (await getJson(`${t.url}/2015-03-31/functions?FunctionVersion=ALL`)).Functions as FunctionConfiguration[];
    assert.equal(s1.AccountUsage!.FunctionCount, new Set(fns.map((f) => f.FunctionName)).size);
    assert.equal(s1.AccountUsage!.TotalCodeSize, fns.reduce((n, f) => n + f.CodeSize!, 0));
    assert.equal(s1.AccountLimit!.CodeSizeZipped, 50 * 1024 * 1024);
    assert.equal(s1.AccountLimit!.CodeSizeUnzipped, 250 * 1024 * 1024);
    assert.equal(s1.AccountLimit!.ConcurrentExecutions, 100);
    assert.ok(s1.AccountLimit!.TotalCodeSize! > s1.AccountUsage!.TotalCodeSize!);
    const made = await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'counted', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip('return "counted";') } }));
    const s2 = await t.lambda.send(new GetAccountSettingsCommand({}));
    assert.equal(s2.AccountUsage!.FunctionCount, s1.AccountUsage!.FunctionCount! + 1);
    assert.equal(s2.AccountUsage!.TotalCodeSize, s1.AccountUsage!.TotalCodeSize! + made.CodeSize!);
  });

  test('code signing, runtime management and recursion answer as Lambda does for a function without them', async () => {
    assert.deepEqual(pick(await t.lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: 'tagged' }))), { CodeSigningConfigArn: '', FunctionName: 'tagged' });
    const put = await refusal(t.lambda.send(new PutFunctionCodeSigningConfigCommand({ FunctionName: 'tagged', CodeSigningConfigArn: 'arn:aws:lambda:us-east-1:123456789012:code-signing-config:csc-1' })));
    assert.equal(put.name, 'InvalidParameterValueException');
    assert.match(put.message, /PutFunctionCodeSigningConfig is not offered/);
    assert.equal((await t.lambda.send(new GetRuntimeManagementConfigCommand({ FunctionName: 'tagged' }))).UpdateRuntimeOn, 'Auto');
    assert.equal((await t.lambda.send(new PutRuntimeManagementConfigCommand({ FunctionName: 'tagged', UpdateRuntimeOn: 'Auto' }))).UpdateRuntimeOn, 'Auto');
    assert.match((await refusal(t.lambda.send(new PutRuntimeManagementConfigCommand({ FunctionName: 'tagged', UpdateRuntimeOn: 'Manual', RuntimeVersionArn: 'arn:aws:lambda:us-east-1::runtime:abc' })))).message, /UpdateRuntimeOn/);
    assert.equal((await t.lambda.send(new GetFunctionRecursionConfigCommand({ FunctionName: 'tagged' }))).RecursiveLoop, 'Terminate');
    assert.equal((await t.lambda.send(new PutFunctionRecursionConfigCommand({ FunctionName: 'tagged', RecursiveLoop: 'Terminate' }))).RecursiveLoop, 'Terminate');
    assert.match((await refusal(t.lambda.send(new PutFunctionRecursionConfigCommand({ FunctionName: 'tagged', RecursiveLoop: 'Allow' })))).message, /RecursiveLoop/);
    assert.equal((await refusal(t.lambda.send(new GetFunctionCodeSigningConfigCommand({ FunctionName: 'ghost' })))).name, 'ResourceNotFoundException');
  });

  test('event source mappings: the list is honestly empty, creating one is refused saying why', async () => {
    assert.deepEqual((await t.lambda.send(new ListEventSourceMappingsCommand({}))).EventSourceMappings, []);
    assert.deepEqual((await t.lambda.send(new ListEventSourceMappingsCommand({ FunctionName: 'tagged' }))).EventSourceMappings, []);
    const err = await refusal(t.lambda.send(new CreateEventSourceMappingCommand({ FunctionName: 'tagged', EventSourceArn: 'arn:aws:sqs:us-east-1:123456789012:q' })));
    assert.equal(err.name, 'InvalidParameterValueException');
    assert.match(err.message, /no event sources/);
  });

  test('TracingConfig Active: fresh trace headers are sampled; PassThrough: not', async () => {
    const traceOf = async () => {
      const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'traced' }));
      return JSON.parse(Buffer.from(r.Payload!).toString()).trace as string;
    };
    await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'traced', Runtime: 'nodejs24.x', Handler: 'index.handler', TracingConfig: { Mode: 'Active' }, Code: { ZipFile: zip('return { trace: process.env._X_AMZN_TRACE_ID };') } }));
    assert.match(await traceOf(), /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=1$/);
    await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'traced', TracingConfig: { Mode: 'PassThrough' } }));
    assert.match(await traceOf(), /;Sampled=0$/);
  });

  test('SnapStart ApplyOn None: a published version gets no snapshot; PublishedVersions: it does', async () => {
    for (const [name, applyOn] of [['nosnap', 'None'], ['snap', 'PublishedVersions']] as const) {
      await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: name, Runtime: 'nodejs24.x', Handler: 'index.handler', SnapStart: { ApplyOn: applyOn }, Code: { ZipFile: zip() } }));
      const v = await t.lambda.send(new PublishVersionCommand({ FunctionName: name }));
      assert.deepEqual(v.SnapStart, { ApplyOn: applyOn, OptimizationStatus: applyOn === 'None' ? 'Off' : 'On' });
    }
    // Builds are queued in publish order: once the second version has its record, the first would have one.
    await eventually(async () => (await getJson(`${t.url}/thaw/v1/functions/snap/snapshots`)).snapshots?.length, 'the snapshot record of snap:1');
    assert.deepEqual((await getJson(`${t.url}/thaw/v1/functions/nosnap/snapshots`)).snapshots, []);
  });

  test('every operation of the SDK\'s Lambda client is served or refused specifically, never an unknown route', async () => {
    await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'walk', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() } }));
    const values: Record<string, unknown> = {
      FunctionName: 'walk', Resource: arn('walk'), ResourceArn: arn('walk'), Tags: { k: 'v' }, TagKeys: ['k'], Name: 'live', FunctionVersion: '$LATEST',
      Role: 'arn:aws:iam::123456789012:role/r', Code: { ZipFile: zip() }, Content: { ZipFile: zip() }, ReservedConcurrentExecutions: 1,
      ProvisionedConcurrentExecutions: 1, Qualifier: 'live', LayerName: 'walk-layer', VersionNumber: 1, StatementId: 's1',
      Action: 'lambda:InvokeFunction', Principal: '*', UUID: '00000000-0000-0000-0000-000000000000', Arn: 'arn:aws:lambda:us-east-1:000000000000:layer:walk-layer:1',
      CodeSigningConfigArn: 'arn:aws:lambda:us-east-1:000000000000:code-signing-config:csc-0123456789abcdef0', AllowedPublishers: { SigningProfileVersionArns: ['arn:aws:signer:us-east-1:123456789012:/signing-profiles/p/v'] },
      AuthType: 'NONE', UpdateRuntimeOn: 'Auto', RecursiveLoop: 'Terminate', CapacityProviderName: 'cp', VpcConfig: { SubnetIds: ['s'], SecurityGroupIds: ['g'] },
      PermissionsConfig: { CapacityProviderOperatorRoleArn: 'arn:aws:iam::123456789012:role/r' }, DurableExecutionArn: 'arn:aws:lambda:us-east-1:000000000000:function:walk:1/durable-execution/x/y',
      CheckpointToken: 't', CallbackId: 'cb', InvokeArgs: Buffer.from('{}'), Policy: '{"Version":"2012-10-17","Statement":[]}',
    };
    const served: string[] = [];
    const unknown: string[] = [];
    const operations = Object.keys(sdk).filter((k) => k.endsWith('Command') && k !== 'Command' && typeof (sdk as Record<string, unknown>)[`${k.slice(0, -7)}$`] !== 'undefined');
    assert.ok(operations.length >= 80, `found ${operations.length} operations in the SDK`);
    // Destructive ones last, so the others find the function.
    const last = (op: string) => /^Delete(Function|Alias)Command$/.test(op) ? 1 : 0;
    for (const op of operations.sort((a, b) => last(a) - last(b))) {
      const schema = (sdk as unknown as Record<string, unknown[]>)[`${op.slice(0, -7)}$`];
      const input = (typeof schema[4] === 'function' ? (schema[4] as () => unknown[])() : schema[4]) as unknown[];
      const required = (input[4] as string[]).slice(0, (input[6] as number | undefined) ?? 0);
      const args = Object.fromEntries(required.map((m) => [m, values[m]]));
      const Command = (sdk as unknown as Record<string, new (i: unknown) => sdk.InvokeCommand>)[op];
      try {
        await t.lambda.send(new Command(args));
        served.push(op);
      } catch (err) {
        const e = err as Error & { $metadata?: { httpStatusCode?: number } };
        if (e.name === 'UnknownOperationException' || e.$metadata?.httpStatusCode === 405) unknown.push(`${op} (${e.name}: ${e.message})`);
        else served.push(op);
      }
    }
    assert.deepEqual(unknown.filter((u) => !NOT_OFFERED.some((n) => u.startsWith(`${n}Command `))), [], 'operations without a route');
  });

  const pick = (o: object) => Object.fromEntries(Object.entries(o).filter(([k]) => k !== '$metadata'));
});

/** Operations deliberately not offered (none: every operation has a route that serves or refuses it). */
const NOT_OFFERED: string[] = [];

const AWS = (process.env.PATH ?? '').split(':').map((d) => `${d}/aws`).find((p) => { try { return statSync(p).isFile(); } catch { return false; } });

describe('the management API from the AWS CLI', { skip: AWS ? false : 'the AWS CLI is not installed (to enable: apt-get install awscli)' }, () => {
  let t: TestThaw;
  let home = '';
  const aws = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    execFile(AWS!, ['lambda', ...args, '--endpoint-url', t.url, '--region', 'us-east-1', '--output', 'json'], {
      timeout: 120_000,
      env: { PATH: process.env.PATH ?? '', HOME: home, AWS_ACCESS_KEY_ID: 'thaw', AWS_SECRET_ACCESS_KEY: 'thaw', AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
    }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
  before(async () => {
    home = mkdtempSync('/tmp/thaw-awscli-home-');
    t = await startTestThaw({ poolSize: 0 });
    await t.lambda.send(new CreateFunctionCommand({ Role: ROLE, FunctionName: 'cli', Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: zip() } }));
  });
  after(async () => { await t?.stop(); });

  test('tag-resource, list-tags, untag-resource', async () => {
    assert.equal((await aws(['tag-resource', '--resource', arn('cli'), '--tags', 'team=core,env=dev'])).code, 0);
    const listed = await aws(['list-tags', '--resource', arn('cli')]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.deepEqual(JSON.parse(listed.stdout).Tags, { team: 'core', env: 'dev' });
    assert.equal((await aws(['untag-resource', '--resource', arn('cli'), '--tag-keys', 'env'])).code, 0);
    assert.deepEqual(JSON.parse((await aws(['list-tags', '--resource', arn('cli')])).stdout).Tags, { team: 'core' });
  });

  test('get-account-settings, get-function-code-signing-config, list-event-source-mappings', async () => {
    const s = await aws(['get-account-settings']);
    assert.equal(s.code, 0, s.stderr);
    assert.equal(JSON.parse(s.stdout).AccountUsage.FunctionCount, 1);
    const csc = await aws(['get-function-code-signing-config', '--function-name', 'cli']);
    assert.equal(csc.code, 0, csc.stderr);
    assert.equal(JSON.parse(csc.stdout).FunctionName, 'cli');
    const esm = await aws(['list-event-source-mappings']);
    assert.equal(esm.code, 0, esm.stderr);
    assert.deepEqual(JSON.parse(esm.stdout).EventSourceMappings, []);
  });

  test('a field Thaw cannot honour is refused by name', async () => {
    const r = await aws(['update-function-configuration', '--function-name', 'cli', '--kms-key-arn', 'arn:aws:kms:us-east-1:123456789012:key/abc']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /InvalidParameterValueException.*KMSKeyArn/s);
  });
});
