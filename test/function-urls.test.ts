// Function URLs and resource-based policies end to end: the AWS SDK v3 manages them against a real Thaw,
// plain fetch calls the URLs (signed with @smithy/signature-v4 for AWS_IAM), and the AWS CLI does one round
// trip (skipped where it is not installed). Policies are enforced for access keys: a grant lets a key
// invoke what its own function list does not.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, createHmac } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import {
  AddPermissionCommand, CreateAliasCommand, CreateFunctionCommand, CreateFunctionUrlConfigCommand, DeleteFunctionUrlConfigCommand,
  GetFunctionUrlConfigCommand, GetPolicyCommand, InvokeCommand, LambdaClient, ListFunctionUrlConfigsCommand, PublishVersionCommand,
  RemovePermissionCommand, UpdateFunctionUrlConfigCommand,
} from '@aws-sdk/client-lambda';
import { SignatureV4 } from '@smithy/signature-v4';
import { fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

/** Returns the event it got, with a status, headers (one a CORS header of its own) and cookies of its choosing. */
const ECHO = fnSource(`return {
  statusCode: 201,
  headers: { 'content-type': 'application/json', 'x-fn': 'yes', 'access-control-allow-origin': 'http://from-the-function.example' },
  cookies: ['a=1; Path=/', 'b=2'],
  body: JSON.stringify(event),
};`);

const create = (c: LambdaClient, name: string, source = ECHO) =>
  c.send(new CreateFunctionCommand({ FunctionName: name, Runtime: 'nodejs24.x' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r', Code: { ZipFile: pkg({ 'index.mjs': source }) } }));

const allowPublic = (c: LambdaClient, name: string, qualifier?: string) =>
  c.send(new AddPermissionCommand({ FunctionName: name, Qualifier: qualifier, StatementId: 'FunctionURLAllowPublicAccess', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }));

const named = (name: string) => (e: Error) => e.name === name;

describe('function URLs and permissions, no access keys (this machine only)', () => {
  let t: TestThaw;
  before(async () => {
    t = await startTestThaw({ poolSize: 0 });
    await create(t.lambda, 'echo');
  });
  after(async () => { await t?.stop(); });

  test('a function with a URL is not served by the open HTTP trigger, which the URL\'s auth would not guard', async () => {
    await create(t.lambda, 'guarded');
    assert.equal((await fetch(`${t.url}/guarded/x`)).status, 201, 'the trigger serves while there is no URL');
    const made = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'guarded', AuthType: 'AWS_IAM' }));
    const closed = await fetch(`${t.url}/guarded/x`);
    assert.equal(closed.status, 403);
    const body = await closed.json() as { code: string; message: string };
    assert.equal(body.code, 'THAW_E_TRIGGER_CLOSED');
    assert.ok(body.message.includes(new URL(made.FunctionUrl!).pathname), body.message);
    await t.lambda.send(new DeleteFunctionUrlConfigCommand({ FunctionName: 'guarded' }));
    assert.equal((await fetch(`${t.url}/guarded/x`)).status, 201, 'and serves again once the URL is deleted');
  });

  test('create, get, update, list and delete a URL as the SDK calls them', async () => {
    await create(t.lambda, 'crud');
    const made = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'crud', AuthType: 'AWS_IAM', Cors: { AllowOrigins: ['https://app.example'], MaxAge: 60 } }));
    assert.equal(made.$metadata.httpStatusCode, 201);
    assert.match(made.FunctionUrl!, new RegExp(`^${t.url}/lambda-url/[a-z2-7]{32}/$`));
    assert.equal(made.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:crud');
    assert.equal(made.AuthType, 'AWS_IAM');
    assert.equal(made.InvokeMode, 'BUFFERED', 'the default mode');
    assert.deepEqual(made.Cors, { AllowOrigins: ['https://app.example'], MaxAge: 60 });
    await assert.rejects(t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'crud', AuthType: 'NONE' })), named('ResourceConflictException'));

    const got = await t.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: 'crud' }));
    assert.equal(got.FunctionUrl, made.FunctionUrl);
    assert.equal(got.CreationTime, made.CreationTime);

    const updated = await t.lambda.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'crud', AuthType: 'NONE', InvokeMode: 'RESPONSE_STREAM' }));
    assert.equal(updated.AuthType, 'NONE');
    assert.equal(updated.InvokeMode, 'RESPONSE_STREAM');
    assert.deepEqual(updated.Cors, made.Cors, 'what an update does not give stays');
    assert.equal(updated.FunctionUrl, made.FunctionUrl, 'the URL itself never changes');

    await t.lambda.send(new PublishVersionCommand({ FunctionName: 'crud' }));
    await t.lambda.send(new CreateAliasCommand({ FunctionName: 'crud', Name: 'live', FunctionVersion: '1' }));
    const aliased = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'crud', Qualifier: 'live', AuthType: 'NONE' }));
    assert.equal(aliased.FunctionArn, 'arn:aws:lambda:us-east-1:000000000000:function:crud:live');
    assert.notEqual(aliased.FunctionUrl, made.FunctionUrl);
    await assert.rejects(t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'crud', Qualifier: '1', AuthType: 'NONE' })),
      (e: Error) => e.name === 'InvalidParameterValueException' && /alias, not a version number/.test(e.message));
    await assert.rejects(t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'crud', Qualifier: 'nope', AuthType: 'NONE' })), named('ResourceNotFoundException'));

    const listed = await t.lambda.send(new ListFunctionUrlConfigsCommand({ FunctionName: 'crud' }));
    assert.deepEqual(listed.FunctionUrlConfigs!.map((u) => u.FunctionArn).sort(), [made.FunctionArn, aliased.FunctionArn]);
    const page = await t.lambda.send(new ListFunctionUrlConfigsCommand({ FunctionName: 'crud', MaxItems: 1 }));
    assert.equal(page.FunctionUrlConfigs!.length, 1);
    assert.equal(page.NextMarker, '1');

    await t.lambda.send(new DeleteFunctionUrlConfigCommand({ FunctionName: 'crud' }));
    await assert.rejects(t.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: 'crud' })), named('ResourceNotFoundException'));
    await assert.rejects(t.lambda.send(new DeleteFunctionUrlConfigCommand({ FunctionName: 'crud' })), named('ResourceNotFoundException'));
    assert.equal((await fetch(made.FunctionUrl!)).status, 404, 'a deleted URL serves nothing');
    await assert.rejects(t.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: 'ghost' })), named('ResourceNotFoundException'));
  });

  test('bad input is refused naming the field, and nothing is stored', async () => {
    await create(t.lambda, 'strict');
    const refusals: [Record<string, unknown>, RegExp][] = [
      [{}, /AuthType is required/],
      [{ AuthType: 'OPEN' }, /AuthType must be NONE or AWS_IAM/],
      [{ AuthType: 'NONE', InvokeMode: 'FAST' }, /InvokeMode must be BUFFERED or RESPONSE_STREAM/],
      [{ AuthType: 'NONE', Cors: { MaxAge: 90_000 } }, /Cors.MaxAge must be 0-86400/],
      [{ AuthType: 'NONE', Cors: { AllowMethods: ['FETCH'] } }, /Cors.AllowMethods/],
      [{ AuthType: 'NONE', Cors: { AllowOrigins: ['not an origin'] } }, /Cors.AllowOrigins/],
      [{ AuthType: 'NONE', Cors: { AllowOriginz: ['*'] } }, /CreateFunctionUrlConfig's Cors has no field AllowOriginz \(did you mean AllowOrigins\?\)/],
      [{ AuthType: 'NONE', Tags: {} }, /CreateFunctionUrlConfig has no field Tags; its fields are AuthType, Cors, InvokeMode/],
    ];
    for (const [body, message] of refusals) {
      const r = await fetch(`${t.url}/2021-10-31/functions/strict/url`, { method: 'POST', body: JSON.stringify(body) });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.equal(r.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
      assert.match(((await r.json()) as { message: string }).message, message);
    }
    // The SDK refuses nothing of these itself: Thaw must.
    await assert.rejects(t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'strict', AuthType: 'OPEN' as never })), named('InvalidParameterValueException'));
    assert.deepEqual((await t.lambda.send(new ListFunctionUrlConfigsCommand({ FunctionName: 'strict' }))).FunctionUrlConfigs, []);

    await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'strict', AuthType: 'NONE', Cors: { AllowOrigins: ['*'] } }));
    await assert.rejects(t.lambda.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'strict', AuthType: 'AWS_IAM', Cors: { MaxAge: -1 } })), named('InvalidParameterValueException'));
    const after = await t.lambda.send(new GetFunctionUrlConfigCommand({ FunctionName: 'strict' }));
    assert.equal(after.AuthType, 'NONE', 'a refused update changes nothing');

    const badPermissions: [Record<string, unknown>, RegExp][] = [
      [{ Action: 'lambda:InvokeFunction', Principal: '*' }, /StatementId is required/],
      [{ StatementId: 'a b', Action: 'lambda:InvokeFunction', Principal: '*' }, /StatementId/],
      [{ StatementId: 's', Action: 'lambda:DeleteFunction', Principal: '*' }, /Action must be one of/],
      [{ StatementId: 's', Action: 'lambda:InvokeFunction' }, /Principal is required/],
      [{ StatementId: 's', Action: 'lambda:InvokeFunction', Principal: 'somebody' }, /is not a principal/],
      [{ StatementId: 's', Action: 'lambda:InvokeFunction', Principal: '*', SourceAccount: '12' }, /SourceAccount must be a 12-digit account id/],
      [{ StatementId: 's', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'OPEN' }, /FunctionUrlAuthType must be NONE or AWS_IAM/],
      [{ StatementId: 's', Action: 'lambda:InvokeFunction', Principal: '*', Extra: 1 }, /AddPermission has no field Extra; its fields are StatementId/],
    ];
    for (const [body, message] of badPermissions) {
      const r = await fetch(`${t.url}/2015-03-31/functions/strict/policy`, { method: 'POST', body: JSON.stringify(body) });
      assert.equal(r.status, 400, JSON.stringify(body));
      assert.match(((await r.json()) as { message: string }).message, message);
    }
    await assert.rejects(t.lambda.send(new GetPolicyCommand({ FunctionName: 'strict' })), named('ResourceNotFoundException'), 'no policy was made');
    await assert.rejects(t.lambda.send(new AddPermissionCommand({ FunctionName: 'strict', Qualifier: '$LATEST', StatementId: 's', Action: 'lambda:InvokeFunction', Principal: '*' })),
      (e: Error) => e.name === 'InvalidParameterValueException' && /\$LATEST/.test(e.message));
    await assert.rejects(t.lambda.send(new AddPermissionCommand({ FunctionName: 'ghost', StatementId: 's', Action: 'lambda:InvokeFunction', Principal: '*' })), named('ResourceNotFoundException'));
  });

  test('an AuthType NONE URL needs the public permission, as on Lambda, and the 403 says which AddPermission to make', async () => {
    await create(t.lambda, 'closed');
    const { FunctionUrl } = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'closed', AuthType: 'NONE' }));
    const r = await fetch(`${FunctionUrl}x`);
    assert.equal(r.status, 403);
    const body = (await r.json()) as { code: string; message: string };
    assert.equal(body.code, 'THAW_E_FUNCTION_URL_FORBIDDEN');
    assert.match(body.message, /aws lambda add-permission --function-name closed --statement-id FunctionURLAllowPublicAccess --action lambda:InvokeFunctionUrl --principal '\*' --function-url-auth-type NONE/);
    // A grant for AWS_IAM URLs only does not open a NONE one.
    await t.lambda.send(new AddPermissionCommand({ FunctionName: 'closed', StatementId: 'iam-only', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'AWS_IAM' }));
    assert.equal((await fetch(`${FunctionUrl}x`)).status, 403);
    await allowPublic(t.lambda, 'closed');
    assert.equal((await fetch(`${FunctionUrl}x`)).status, 201);
  });

  test('a URL request delivers the payload format 2.0 event and returns the function\'s status, headers, cookies and body', async () => {
    const { FunctionUrl } = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'echo', AuthType: 'NONE' }));
    await allowPublic(t.lambda, 'echo');
    const urlId = /\/lambda-url\/([a-z2-7]{32})\/$/.exec(FunctionUrl!)![1];
    const r = await fetch(`${FunctionUrl}items/42?color=red&color=blue&size=m`, { method: 'POST', body: '{"hello":"url"}', headers: { 'content-type': 'application/json', cookie: 'session=abc; theme=dark', 'x-custom': 'v' } });
    assert.equal(r.status, 201);
    assert.equal(r.headers.get('x-fn'), 'yes');
    assert.deepEqual(r.headers.getSetCookie(), ['a=1; Path=/', 'b=2']);
    assert.ok(r.headers.get('x-amzn-requestid'));
    const event = await r.json() as any;
    assert.equal(event.version, '2.0');
    assert.equal(event.routeKey, '$default');
    assert.equal(event.rawPath, '/items/42');
    assert.equal(event.rawQueryString, 'color=red&color=blue&size=m');
    assert.deepEqual(event.queryStringParameters, { color: 'red,blue', size: 'm' });
    assert.deepEqual(event.cookies, ['session=abc', 'theme=dark']);
    assert.equal(event.headers['x-custom'], 'v');
    assert.equal(event.body, '{"hello":"url"}');
    assert.equal(event.isBase64Encoded, false);
    const rc = event.requestContext;
    assert.equal(rc.apiId, urlId);
    assert.equal(rc.domainPrefix, urlId);
    assert.equal(rc.domainName, new URL(t.url).host);
    assert.equal(rc.accountId, 'anonymous');
    assert.equal(rc.http.method, 'POST');
    assert.equal(rc.http.path, '/items/42');
    assert.equal(rc.stage, '$default');
    assert.equal(rc.requestId, r.headers.get('x-amzn-requestid'));
    assert.equal(rc.authorizer, undefined, 'NONE: no caller identity');
    // The bare URL (no trailing slash) is the root path.
    assert.equal(((await (await fetch(FunctionUrl!.slice(0, -1))).json()) as any).rawPath, '/');
  });

  test('an alias URL runs the alias\'s version', async () => {
    await create(t.lambda, 'versioned', fnSource('return { statusCode: 200, body: "v1" };'));
    await t.lambda.send(new PublishVersionCommand({ FunctionName: 'versioned' }));
    await t.lambda.send(new CreateAliasCommand({ FunctionName: 'versioned', Name: 'prod', FunctionVersion: '1' }));
    const { UpdateFunctionCodeCommand } = await import('@aws-sdk/client-lambda');
    await t.lambda.send(new UpdateFunctionCodeCommand({ FunctionName: 'versioned', ZipFile: pkg({ 'index.mjs': fnSource('return { statusCode: 200, body: "latest" };') }) }));
    const prod = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'versioned', Qualifier: 'prod', AuthType: 'NONE' }));
    const latest = await t.lambda.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'versioned', AuthType: 'NONE' }));
    await allowPublic(t.lambda, 'versioned');
    assert.equal((await fetch(prod.FunctionUrl!)).status, 403, 'the alias has its own policy: the function\'s does not open it');
    await allowPublic(t.lambda, 'versioned', 'prod');
    const p = await fetch(prod.FunctionUrl!);
    assert.equal(await p.text(), 'v1');
    assert.equal(p.headers.get('x-amz-executed-version'), '1');
    assert.equal(await (await fetch(latest.FunctionUrl!)).text(), 'latest');
  });

  test('CORS: the preflight is answered without running the function; responses carry the URL\'s CORS headers, not the function\'s', async () => {
    await create(t.lambda, 'cors', fnSource('globalThis.runs = (globalThis.runs ?? 0) + 1; return { statusCode: 200, headers: { "access-control-allow-origin": "*", "x-runs": String(globalThis.runs) }, body: event.requestContext.http.method };'));
    const { FunctionUrl } = await t.lambda.send(new CreateFunctionUrlConfigCommand({
      FunctionName: 'cors', AuthType: 'NONE',
      Cors: { AllowOrigins: ['https://app.example'], AllowMethods: ['GET', 'POST'], AllowHeaders: ['content-type', 'x-api-key'], ExposeHeaders: ['x-runs'], MaxAge: 300, AllowCredentials: true },
    }));
    await allowPublic(t.lambda, 'cors');
    const pre = await fetch(FunctionUrl!, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type' } });
    assert.equal(pre.status, 200);
    assert.equal(pre.headers.get('access-control-allow-origin'), 'https://app.example');
    assert.equal(pre.headers.get('access-control-allow-methods'), 'GET,POST');
    assert.equal(pre.headers.get('access-control-allow-headers'), 'content-type,x-api-key');
    assert.equal(pre.headers.get('access-control-max-age'), '300');
    assert.equal(pre.headers.get('access-control-allow-credentials'), 'true');
    const foreign = await fetch(FunctionUrl!, { method: 'OPTIONS', headers: { origin: 'https://evil.example', 'access-control-request-method': 'POST' } });
    assert.equal(foreign.headers.get('access-control-allow-origin'), null, 'an origin not listed gets no CORS grant');
    const badMethod = await fetch(FunctionUrl!, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'DELETE' } });
    assert.equal(badMethod.headers.get('access-control-allow-methods'), null, 'a method not listed gets no CORS grant');

    const r = await fetch(FunctionUrl!, { method: 'POST', headers: { origin: 'https://app.example' } });
    assert.equal(await r.text(), 'POST');
    assert.equal(r.headers.get('x-runs'), '1', 'the preflights did not run the function');
    assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example', 'the URL\'s CORS replaces the function\'s "*"');
    assert.equal(r.headers.get('access-control-allow-credentials'), 'true');
    assert.equal(r.headers.get('access-control-expose-headers'), 'x-runs');
    assert.match(r.headers.get('vary') ?? '', /Origin/);
    const other = await fetch(FunctionUrl!, { headers: { origin: 'https://evil.example' } });
    assert.equal(other.status, 200);
    assert.equal(other.headers.get('access-control-allow-origin'), null);

    // Without CORS on the URL, OPTIONS is the function's to answer, as on Lambda.
    await t.lambda.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'cors', Cors: {} }));
    const passed = await fetch(FunctionUrl!, { method: 'OPTIONS', headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' } });
    assert.equal(await passed.text(), 'OPTIONS');
    assert.equal(passed.headers.get('access-control-allow-origin'), '*', 'the function\'s own header');
  });

  test('AddPermission, GetPolicy and RemovePermission round trip, with Lambda\'s errors for duplicates, unknown statements and stale revisions', async () => {
    await create(t.lambda, 'pol');
    const added = await t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', StatementId: 's3-invoke', Action: 'lambda:InvokeFunction', Principal: 's3.amazonaws.com', SourceArn: 'arn:aws:s3:::my-bucket', SourceAccount: '123456789012' }));
    assert.equal(added.$metadata.httpStatusCode, 201);
    const statement = JSON.parse(added.Statement!);
    assert.deepEqual(statement, {
      Sid: 's3-invoke', Effect: 'Allow', Principal: { Service: 's3.amazonaws.com' }, Action: 'lambda:InvokeFunction',
      Resource: 'arn:aws:lambda:us-east-1:000000000000:function:pol',
      Condition: { ArnLike: { 'AWS:SourceArn': 'arn:aws:s3:::my-bucket' }, StringEquals: { 'AWS:SourceAccount': '123456789012' } },
    });
    await t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', StatementId: 'public-url', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }));
    await t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', StatementId: 'acct', Action: 'lambda:*', Principal: '111122223333' }));
    await assert.rejects(t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', StatementId: 'acct', Action: 'lambda:InvokeFunction', Principal: '*' })),
      (e: Error) => e.name === 'ResourceConflictException' && /statement id \(acct\) provided already exists/.test(e.message));

    const got = await t.lambda.send(new GetPolicyCommand({ FunctionName: 'pol' }));
    const policy = JSON.parse(got.Policy!);
    assert.equal(policy.Version, '2012-10-17');
    assert.deepEqual(policy.Statement.map((s: { Sid: string }) => s.Sid), ['s3-invoke', 'public-url', 'acct']);
    assert.deepEqual(policy.Statement[0], statement);
    assert.deepEqual(policy.Statement[1].Condition, { StringEquals: { 'lambda:FunctionUrlAuthType': 'NONE' } });
    assert.deepEqual(policy.Statement[2].Principal, { AWS: 'arn:aws:iam::111122223333:root' });
    assert.ok(got.RevisionId);

    await assert.rejects(t.lambda.send(new RemovePermissionCommand({ FunctionName: 'pol', StatementId: 'acct', RevisionId: 'stale' })), named('PreconditionFailedException'));
    await assert.rejects(t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', StatementId: 'x', Action: 'lambda:InvokeFunction', Principal: '*', RevisionId: 'stale' })), named('PreconditionFailedException'));
    await t.lambda.send(new RemovePermissionCommand({ FunctionName: 'pol', StatementId: 'acct', RevisionId: got.RevisionId }));
    await assert.rejects(t.lambda.send(new RemovePermissionCommand({ FunctionName: 'pol', StatementId: 'acct' })), named('ResourceNotFoundException'));
    const after = await t.lambda.send(new GetPolicyCommand({ FunctionName: 'pol' }));
    assert.notEqual(after.RevisionId, got.RevisionId, 'every change makes a new revision');
    assert.deepEqual(JSON.parse(after.Policy!).Statement.map((s: { Sid: string }) => s.Sid), ['s3-invoke', 'public-url']);

    // A version's policy is its own.
    await t.lambda.send(new PublishVersionCommand({ FunctionName: 'pol' }));
    await assert.rejects(t.lambda.send(new GetPolicyCommand({ FunctionName: 'pol', Qualifier: '1' })), named('ResourceNotFoundException'));
    await t.lambda.send(new AddPermissionCommand({ FunctionName: 'pol', Qualifier: '1', StatementId: 'v1', Action: 'lambda:InvokeFunction', Principal: '*' }));
    const v1 = JSON.parse((await t.lambda.send(new GetPolicyCommand({ FunctionName: 'pol', Qualifier: '1' }))).Policy!);
    assert.equal(v1.Statement[0].Resource, 'arn:aws:lambda:us-east-1:000000000000:function:pol:1');

    await t.lambda.send(new RemovePermissionCommand({ FunctionName: 'pol', StatementId: 's3-invoke' }));
    await t.lambda.send(new RemovePermissionCommand({ FunctionName: 'pol', StatementId: 'public-url' }));
    await assert.rejects(t.lambda.send(new GetPolicyCommand({ FunctionName: 'pol' })), named('ResourceNotFoundException'), 'the last statement gone, the policy is gone');
  });
});

/** SigV4 for a URL request with the AWS SDK's own signer (service lambda), as a client of an AWS_IAM URL signs. */
async function signedFetch(url: string, creds: { id: string; secret: string }, init: { method?: string; body?: string } = {}) {
  const signer = new SignatureV4({
    credentials: { accessKeyId: creds.id, secretAccessKey: creds.secret }, region: 'us-east-1', service: 'lambda',
    sha256: class { #h: ReturnType<typeof createHash> | ReturnType<typeof createHmac>; constructor(k?: string | Uint8Array) { this.#h = k ? createHmac('sha256', k) : createHash('sha256'); } update(d: string | Uint8Array) { this.#h.update(d); } async digest() { return new Uint8Array(this.#h.digest()); } reset() {} } as never,
  });
  const u = new URL(url);
  const method = init.method ?? 'GET';
  const signed = await signer.sign({ method, protocol: 'http:', hostname: u.hostname, port: Number(u.port), path: u.pathname, query: Object.fromEntries(u.searchParams), headers: { host: u.host }, body: init.body });
  const headers = Object.fromEntries(Object.entries(signed.headers).filter(([k]) => k !== 'host')) as Record<string, string>;
  return fetch(url, { method, headers, body: init.body });
}

describe('with access keys: AWS_IAM URLs and policies that grant keys', () => {
  let t: TestThaw;
  let admin: { id: string; secret: string };
  let narrow: { id: string; secret: string };
  const sdk = (c: { id: string; secret: string }) => new LambdaClient({ endpoint: t.url, region: 'us-east-1', credentials: { accessKeyId: c.id, secretAccessKey: c.secret }, maxAttempts: 1 });
  before(async () => {
    t = await startTestThaw({ poolSize: 0 });
    await create(t.lambda, 'private');
    await create(t.lambda, 'other', fnSource('return { ok: true };'));
    // Keys made as `thaw keys create --data` makes them; from now on every API call is signed.
    const k1 = await t.thaw.platform.keys.create('admin', null, Date.now());
    admin = { id: k1.key.id, secret: k1.secret };
    const k2 = await t.thaw.platform.keys.create('invoker', ['other'], Date.now());
    narrow = { id: k2.key.id, secret: k2.secret };
  });
  after(async () => { await t?.stop(); });

  test('an AWS_IAM URL refuses unsigned and wrongly signed requests and serves a signed one with the caller in the event', async () => {
    const a = sdk(admin);
    const { FunctionUrl } = await a.send(new CreateFunctionUrlConfigCommand({ FunctionName: 'private', AuthType: 'AWS_IAM' }));
    const unsigned = await fetch(`${FunctionUrl}p`);
    assert.equal(unsigned.status, 403);
    assert.equal(((await unsigned.json()) as { code: string }).code, 'THAW_E_AUTH_REQUIRED');
    const wrong = await signedFetch(`${FunctionUrl}p`, { id: admin.id, secret: 'not-the-secret' });
    assert.equal(wrong.status, 403);
    assert.equal(wrong.headers.get('x-amzn-errortype'), 'InvalidSignatureException');

    const ok = await signedFetch(`${FunctionUrl}p?q=1`, admin, { method: 'POST', body: '{"signed":true}' });
    assert.equal(ok.status, 201, await ok.clone().text());
    const event = await ok.json() as any;
    assert.equal(event.body, '{"signed":true}');
    assert.equal(event.requestContext.accountId, '000000000000');
    assert.deepEqual(event.requestContext.authorizer.iam, {
      accessKey: admin.id, accountId: '000000000000', callerId: admin.id, cognitoIdentity: null, principalOrgId: null,
      userArn: `arn:aws:iam::000000000000:user/${admin.id}`, userId: admin.id,
    });
    // A NONE URL stays public once keys exist (with its permission), as HTTP triggers do.
    await a.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'private', AuthType: 'NONE' }));
    await a.send(new AddPermissionCommand({ FunctionName: 'private', StatementId: 'public', Action: 'lambda:InvokeFunctionUrl', Principal: '*', FunctionUrlAuthType: 'NONE' }));
    assert.equal((await fetch(`${FunctionUrl}p`)).status, 201);
    await a.send(new RemovePermissionCommand({ FunctionName: 'private', StatementId: 'public' }));
    await a.send(new UpdateFunctionUrlConfigCommand({ FunctionName: 'private', AuthType: 'AWS_IAM' }));
  });

  test('a function\'s policy grants a key what its own function list does not, for the Invoke API and for AWS_IAM URLs', async () => {
    const a = sdk(admin);
    const n = sdk(narrow);
    const invoke = () => n.send(new InvokeCommand({ FunctionName: 'private', Payload: Buffer.from('{}') }));
    await n.send(new InvokeCommand({ FunctionName: 'other', Payload: Buffer.from('{}') }));
    await assert.rejects(invoke(), named('AccessDeniedException'));
    const { FunctionUrl } = await a.send(new GetFunctionUrlConfigCommand({ FunctionName: 'private' }));
    const refused = await signedFetch(FunctionUrl!, narrow);
    assert.equal(refused.status, 403);
    assert.equal(((await refused.json()) as { code: string }).code, 'THAW_E_FUNCTION_URL_FORBIDDEN');

    // The key by its id: the statement names it as an IAM user of Thaw's account.
    const added = await a.send(new AddPermissionCommand({ FunctionName: 'private', StatementId: 'narrow-invoke', Action: 'lambda:InvokeFunction', Principal: narrow.id }));
    assert.deepEqual(JSON.parse(added.Statement!).Principal, { AWS: `arn:aws:iam::000000000000:user/${narrow.id}` });
    const out = await invoke();
    assert.equal(out.StatusCode, 200);
    assert.equal(JSON.parse(Buffer.from(out.Payload!).toString()).statusCode, 201);
    assert.equal((await signedFetch(FunctionUrl!, narrow)).status, 403, 'lambda:InvokeFunction does not grant the URL');
    await assert.rejects(n.send(new GetPolicyCommand({ FunctionName: 'private' })), named('AccessDeniedException'), 'a grant to invoke is no grant to read');

    await a.send(new AddPermissionCommand({ FunctionName: 'private', StatementId: 'narrow-url', Action: 'lambda:InvokeFunctionUrl', Principal: `arn:aws:iam::000000000000:user/${narrow.id}`, FunctionUrlAuthType: 'AWS_IAM' }));
    assert.equal((await signedFetch(FunctionUrl!, narrow)).status, 201);

    // A grant on the function does not reach its alias (each has its own policy, as on Lambda).
    await a.send(new PublishVersionCommand({ FunctionName: 'private' }));
    await a.send(new CreateAliasCommand({ FunctionName: 'private', Name: 'live', FunctionVersion: '1' }));
    await assert.rejects(n.send(new InvokeCommand({ FunctionName: 'private', Qualifier: 'live', Payload: Buffer.from('{}') })), named('AccessDeniedException'));
    await a.send(new AddPermissionCommand({ FunctionName: 'private', Qualifier: 'live', StatementId: 'narrow-live', Action: 'lambda:InvokeFunction', Principal: narrow.id }));
    assert.equal((await n.send(new InvokeCommand({ FunctionName: 'private:live', Payload: Buffer.from('{}') }))).StatusCode, 200);

    await a.send(new RemovePermissionCommand({ FunctionName: 'private', StatementId: 'narrow-invoke' }));
    await assert.rejects(invoke(), named('AccessDeniedException'), 'removed: denied again');
    a.destroy();
    n.destroy();
  });
});

const AWS = ['/usr/bin/aws', '/usr/local/bin/aws'].find((p) => existsSync(p));
const skip = AWS ? false : 'the AWS CLI is not installed (to enable: apt-get install awscli)';

describe('the AWS CLI', { skip }, () => {
  let t: TestThaw;
  let home = '';
  const aws = (args: string[]) => new Promise<{ code: number; stdout: string; stderr: string }>((res) => {
    execFile(AWS!, [...args, '--endpoint-url', t.url, '--region', 'us-east-1', '--output', 'json'], {
      timeout: 120_000,
      env: { PATH: '/usr/bin:/bin', HOME: home, AWS_ACCESS_KEY_ID: 'any', AWS_SECRET_ACCESS_KEY: 'any', AWS_EC2_METADATA_DISABLED: 'true', AWS_PAGER: '', AWS_MAX_ATTEMPTS: '1' },
    }, (err, stdout, stderr) => res({ code: err ? (typeof err.code === 'number' ? err.code : 1) : 0, stdout, stderr }));
  });
  before(async () => {
    home = mkdtempSync('/tmp/thaw-awscli-home-');
    t = await startTestThaw({ poolSize: 0 });
    await create(t.lambda, 'cli');
  });
  after(async () => { await t?.stop(); });

  test('create-function-url-config, add-permission and get-policy make a public URL that serves', async () => {
    const made = await aws(['lambda', 'create-function-url-config', '--function-name', 'cli', '--auth-type', 'NONE', '--cors', 'AllowOrigins=https://a.example,MaxAge=10']);
    assert.equal(made.code, 0, made.stderr);
    const url = JSON.parse(made.stdout) as { FunctionUrl: string; Cors: unknown };
    assert.deepEqual(url.Cors, { AllowOrigins: ['https://a.example'], MaxAge: 10 });
    const perm = await aws(['lambda', 'add-permission', '--function-name', 'cli', '--statement-id', 'FunctionURLAllowPublicAccess', '--action', 'lambda:InvokeFunctionUrl', '--principal', '*', '--function-url-auth-type', 'NONE']);
    assert.equal(perm.code, 0, perm.stderr);
    const policy = await aws(['lambda', 'get-policy', '--function-name', 'cli']);
    assert.equal(policy.code, 0, policy.stderr);
    assert.equal(JSON.parse(JSON.parse(policy.stdout).Policy).Statement[0].Sid, 'FunctionURLAllowPublicAccess');
    const r = await fetch(`${url.FunctionUrl}from-cli`);
    assert.equal(r.status, 201);
    assert.equal(((await r.json()) as { rawPath: string }).rawPath, '/from-cli');
    const dup = await aws(['lambda', 'add-permission', '--function-name', 'cli', '--statement-id', 'FunctionURLAllowPublicAccess', '--action', 'lambda:InvokeFunctionUrl', '--principal', '*']);
    assert.notEqual(dup.code, 0);
    assert.match(dup.stderr, /ResourceConflictException/);
    const listed = await aws(['lambda', 'list-function-url-configs', '--function-name', 'cli']);
    assert.equal(JSON.parse(listed.stdout).FunctionUrlConfigs.length, 1);
  });
});
