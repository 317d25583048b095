// The Lambda frameworks people deploy, written exactly as their docs show for Lambda and bundled with
// esbuild as a deploy tool would (the packages are devDependencies): middy, Express through serverless-http
// and @codegenie/serverless-express, Fastify through @fastify/aws-lambda, Hono, and Powertools' Logger and
// Tracer. Each is deployed and called through the AWS SDK's Invoke and through an HTTP trigger.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { build } from 'esbuild';
import { CreateFunctionCommand, InvokeCommand, PutProvisionedConcurrencyConfigCommand, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { eventually, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const root = resolve(import.meta.dirname, '..');

/** One CommonJS file with the handler and its dependencies, as `esbuild --bundle --platform=node` makes it. */
async function bundle(source: string): Promise<Buffer> {
  const out = await build({
    stdin: { contents: source, resolveDir: root, loader: 'js', sourcefile: 'index.mjs' },
    bundle: true, platform: 'node', format: 'cjs', target: 'node20', write: false, logLevel: 'silent',
  });
  return pkg({ 'index.js': out.outputFiles[0].text });
}

/** A GET through API Gateway's HTTP API (payload format 2.0), as a Lambda behind it receives it. */
const apiEvent = (path: string, query = '') => ({
  version: '2.0', routeKey: '$default', rawPath: path, rawQueryString: query,
  headers: { host: 'example.com', accept: 'application/json' },
  ...(query ? { queryStringParameters: Object.fromEntries(new URLSearchParams(query)) } : {}),
  requestContext: {
    accountId: '000000000000', apiId: 'api', domainName: 'example.com', domainPrefix: 'example', requestId: 'r1',
    routeKey: '$default', stage: '$default', time: '01/Jan/2026:00:00:00 +0000', timeEpoch: 0,
    http: { method: 'GET', path, protocol: 'HTTP/1.1', sourceIp: '127.0.0.1', userAgent: 'test' },
  },
  isBase64Encoded: false,
});

/**
 * The runtime each is deployed on: @codegenie/serverless-express's handler declares (event, context,
 * callback), which Lambda's Node 24 runtime refuses (its issue #707), so it runs on nodejs22.x as on AWS.
 */
const runtimeOf = (name: string) => (name === 'serverless-express' ? 'nodejs22.x' : 'nodejs24.x');

const frameworks: Record<string, string> = {
  middy: `
    import middy from '@middy/core';
    const addGreeting = () => ({ after: async (request) => { request.response = { statusCode: 200, body: JSON.stringify({ ...JSON.parse(request.response.body), via: 'middy' }) }; } });
    export const handler = middy(async (event) => ({ statusCode: 200, body: JSON.stringify({ path: event.rawPath, who: event.queryStringParameters?.who }) })).use(addGreeting());
  `,
  'serverless-http': `
    import express from 'express';
    import serverless from 'serverless-http';
    const app = express();
    app.get('/hello', (req, res) => res.json({ path: req.path, who: req.query.who, via: 'express+serverless-http' }));
    export const handler = serverless(app);
  `,
  'serverless-express': `
    import express from 'express';
    import serverlessExpress from '@codegenie/serverless-express';
    const app = express();
    app.get('/hello', (req, res) => res.json({ path: req.path, who: req.query.who, via: 'express+serverless-express' }));
    export const handler = serverlessExpress({ app });
  `,
  fastify: `
    import Fastify from 'fastify';
    import awsLambdaFastify from '@fastify/aws-lambda';
    const app = Fastify();
    app.get('/hello', async (request) => ({ path: request.url.split('?')[0], who: request.query.who, via: 'fastify' }));
    export const handler = awsLambdaFastify(app);
  `,
  hono: `
    import { Hono } from 'hono';
    import { handle } from 'hono/aws-lambda';
    const app = new Hono();
    app.get('/hello', (c) => c.json({ path: c.req.path, who: c.req.query('who'), via: 'hono' }));
    export const handler = handle(app);
  `,
};

describe('Lambda frameworks as their docs write them', () => {
  let t: TestThaw;
  before(async () => {
    t = await startTestThaw({ poolSize: 0 });
    for (const [name, source] of Object.entries(frameworks)) {
      await t.lambda.send(new CreateFunctionCommand({
        FunctionName: name, Runtime: runtimeOf(name), Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda',
        Code: { ZipFile: await bundle(source) }, MemorySize: 256, Timeout: 10,
      }));
    }
  });
  after(async () => { await t?.stop(); });

  test('@codegenie/serverless-express on nodejs24.x fails its init with Runtime.CallbackHandlerDeprecated, as on Lambda', async () => {
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'serverless-express-24', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda',
      Code: { ZipFile: await bundle(frameworks['serverless-express']) }, MemorySize: 256, Timeout: 10,
    }));
    const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'serverless-express-24', Payload: JSON.stringify(apiEvent('/hello')) }));
    assert.equal(r.FunctionError, 'Unhandled');
    assert.equal(JSON.parse(Buffer.from(r.Payload!).toString('utf8')).errorType, 'Runtime.CallbackHandlerDeprecated');
  });

  for (const name of Object.keys(frameworks)) {
    test(`${name} (${runtimeOf(name)}): through Invoke with an HTTP API event, and through an HTTP trigger`, async () => {
      const r = await t.lambda.send(new InvokeCommand({ FunctionName: name, Payload: JSON.stringify(apiEvent('/hello', 'who=sdk')) }));
      const text = Buffer.from(r.Payload!).toString('utf8');
      assert.equal(r.FunctionError, undefined, text);
      const response = JSON.parse(text);
      assert.equal(response.statusCode, 200, text);
      const body = JSON.parse(response.isBase64Encoded ? Buffer.from(response.body, 'base64').toString('utf8') : response.body);
      assert.equal(body.path, '/hello');
      assert.equal(body.who, 'sdk');

      const res = await fetch(`${t.url}/${name}/hello?who=http`);
      const json = await res.json() as { path: string; who: string };
      assert.equal(res.status, 200, JSON.stringify(json));
      assert.equal(json.path, '/hello');
      assert.equal(json.who, 'http');
    });
  }
});

describe('Powertools on Thaw', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0 }); });
  after(async () => { await t?.stop(); });

  const logsOf = (r: { LogResult?: string }) => Buffer.from(r.LogResult ?? '', 'base64').toString('utf8');
  /** The cold_start field of the Logger's structured line for this invocation. */
  const coldStart = (logs: string): boolean => {
    const line = logs.split('\n').find((l) => l.includes('"message":"handled"'));
    assert.ok(line, `no Logger line in:\n${logs}`);
    return JSON.parse(line.slice(line.indexOf('{'))).cold_start;
  };

  test('the Logger reports cold_start: true exactly on the invocations that started an instance', async () => {
    const source = `
      import { Logger } from '@aws-lambda-powertools/logger';
      const logger = new Logger({ serviceName: 'thaw-test' });
      export const handler = async (event, context) => {
        logger.addContext(context);
        logger.info('handled');
        if (event.hold) await new Promise((r) => setTimeout(r, event.hold));
        return { initializationType: process.env.AWS_LAMBDA_INITIALIZATION_TYPE };
      };
    `;
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'pt', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda', Code: { ZipFile: await bundle(source) }, Timeout: 10 }));
    const invoke = (payload: unknown = {}, qualifier?: string) => t.lambda.send(new InvokeCommand({ FunctionName: 'pt', Qualifier: qualifier, LogType: 'Tail', Payload: JSON.stringify(payload) }));
    const first = await invoke();
    assert.equal(coldStart(logsOf(first)), true, 'the first invocation started the instance');
    assert.equal(JSON.parse(Buffer.from(first.Payload!).toString()).initializationType, 'on-demand');
    assert.equal(coldStart(logsOf(await invoke())), false, 'the second ran on the same, warm instance');
    // Two at once: one is warm, the other had to start a second instance.
    const [a, b] = await Promise.all([invoke({ hold: 300 }), invoke({ hold: 300 })]);
    assert.deepEqual([coldStart(logsOf(a)), coldStart(logsOf(b))].sort(), [false, true]);
    // A reserved (provisioned) instance was initialized ahead of any request: Powertools says not cold, as on Lambda.
    const v = await t.lambda.send(new PublishVersionCommand({ FunctionName: 'pt' }));
    await t.lambda.send(new PutProvisionedConcurrencyConfigCommand({ FunctionName: 'pt', Qualifier: v.Version, ProvisionedConcurrentExecutions: 1 }));
    await eventually(async () => (await (await fetch(`${t.url}/thaw/v1/instances`)).json() as { instances: { functionName: string; version: string; state: string }[] })
      .instances.some((i) => i.functionName === 'pt' && i.version === v.Version && i.state === 'idle'), 'the reserved instance to be ready', 30_000);
    const reserved = await invoke({}, v.Version);
    assert.equal(JSON.parse(Buffer.from(reserved.Payload!).toString()).initializationType, 'provisioned-concurrency');
    assert.equal(coldStart(logsOf(reserved)), false);
  });

  test('the Tracer finds its trace header: no ERROR line on an invocation', async () => {
    const source = `
      import { Tracer } from '@aws-lambda-powertools/tracer';
      const tracer = new Tracer({ serviceName: 'thaw-test' });
      export const handler = async () => {
        const segment = tracer.getSegment();
        return { traceId: process.env._X_AMZN_TRACE_ID, segment: segment ? segment.constructor.name : null };
      };
    `;
    await t.lambda.send(new CreateFunctionCommand({ FunctionName: 'tracer', Runtime: 'nodejs24.x', Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/lambda', Code: { ZipFile: await bundle(source) }, Timeout: 10 }));
    for (let i = 0; i < 2; i++) {
      const r = await t.lambda.send(new InvokeCommand({ FunctionName: 'tracer', LogType: 'Tail', Payload: '{}' }));
      const logs = logsOf(r);
      assert.equal(r.FunctionError, undefined, logs);
      assert.doesNotMatch(logs, /\tERROR\t/, logs);
      assert.match(JSON.parse(Buffer.from(r.Payload!).toString()).traceId, /^Root=1-[0-9a-f]{8}-[0-9a-f]{24};Parent=[0-9a-f]{16};Sampled=[01]/);
    }
  });
});
