// Lambda's LoggingConfig through the AWS SDK: Text lines or JSON records (timestamp, level, requestId,
// message) written by the bootstrap as Lambda's Node runtime writes them, the application log level
// filtering console.* and the system log level the platform's START/END/REPORT, echoed by
// GetFunctionConfiguration; and Thaw's per-function log retention, pruned by age.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { CreateFunctionCommand, GetFunctionConfigurationCommand, InvokeCommand, UpdateFunctionConfigurationCommand, type LoggingConfig } from '@aws-sdk/client-lambda';
import { channels, type LogEvent } from '../src/core/events.ts';
import { eventually, fnSource, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const ROLE = 'arn:aws:iam::000000000000:role/x';
/** One call of each console method, an Error among them. */
const LOGS = fnSource([
  'console.trace("t");',
  'console.debug("d");',
  'console.info("i", 1);',
  'console.log({ shape: "object" });',
  'console.warn("w %s", "formatted");',
  'console.error(new TypeError("e"));',
  'return "ok";',
].join('\n'));

const refusal = async (p: Promise<unknown>) => { try { await p; } catch (e) { return e as Error & { name: string }; } throw new Error('expected a refusal'); };

describe('LoggingConfig', () => {
  let t: TestThaw;
  before(async () => { t = await startTestThaw({ poolSize: 0 }); });
  after(async () => { await t.stop(); });

  const create = (name: string, logging?: LoggingConfig) => t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', Code: { ZipFile: pkg({ 'index.mjs': LOGS }) }, LoggingConfig: logging,
  }));
  /** The invocation's log (LogType Tail) as lines, and its request id. */
  const tail = async (name: string) => {
    const out = await t.lambda.send(new InvokeCommand({ FunctionName: name, LogType: 'Tail', Payload: Buffer.from('{}') }));
    assert.equal(out.FunctionError, undefined);
    return { id: out.$metadata.requestId!, lines: Buffer.from(out.LogResult!, 'base64').toString().split('\n').filter(Boolean) };
  };

  test('Text by default: every level as a tab-separated line, the platform lines as Lambda writes them', async () => {
    const c = await create('log-text');
    assert.deepEqual(c.LoggingConfig, { LogFormat: 'Text', LogGroup: '/aws/lambda/log-text' });
    const { id, lines } = await tail('log-text');
    assert.match(lines[0], new RegExp(`^START RequestId: ${id} Version: \\$LATEST$`));
    const own = lines.filter((l) => l.includes(`\t${id}\t`)).map((l) => l.split('\t')[2]);
    assert.deepEqual(own, ['TRACE', 'DEBUG', 'INFO', 'INFO', 'WARN', 'ERROR'], 'no level filtering in Text');
    assert.ok(lines.some((l) => l.startsWith(`REPORT RequestId: ${id}`)));
  });

  test('JSON: console.* become Lambda\'s JSON records, below the application level dropped; platform records as JSON', async () => {
    const c = await create('log-json', { LogFormat: 'JSON' });
    assert.deepEqual(c.LoggingConfig, { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'INFO', LogGroup: '/aws/lambda/log-json' }, 'both levels INFO unless given');
    const { id, lines } = await tail('log-json');
    const records = lines.map((l) => JSON.parse(l));
    const app = records.filter((r) => 'level' in r);
    assert.deepEqual(app.map((r) => r.level), ['INFO', 'INFO', 'WARN', 'ERROR'], 'TRACE and DEBUG are below INFO');
    for (const r of app) {
      assert.equal(r.requestId, id);
      assert.ok(!Number.isNaN(Date.parse(r.timestamp)), r.timestamp);
    }
    assert.equal(app[0].message, 'i 1');
    assert.deepEqual(app[1].message, { shape: 'object' }, 'one argument is kept as it is');
    assert.equal(app[2].message, 'w formatted');
    assert.equal(app[3].message.errorType, 'TypeError');
    assert.equal(app[3].message.errorMessage, 'e');
    assert.ok(Array.isArray(app[3].message.stackTrace));
    const platform = records.filter((r) => 'type' in r);
    assert.deepEqual(platform.map((r) => r.type), ['platform.start', 'platform.runtimeDone', 'platform.report']);
    assert.deepEqual(platform[0].record, { requestId: id, version: '$LATEST' });
    const report = platform[2].record;
    assert.equal(report.requestId, id);
    assert.equal(report.metrics.memorySizeMB, 128);
    assert.ok(report.metrics.billedDurationMs >= 1 && report.metrics.initDurationMs > 0, JSON.stringify(report));
  });

  test('levels: WARN application and system levels keep WARN and above, and drop START, END and REPORT', async () => {
    await create('log-warn', { LogFormat: 'JSON', ApplicationLogLevel: 'WARN', SystemLogLevel: 'WARN' });
    const c = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'log-warn' }));
    assert.deepEqual(c.LoggingConfig, { LogFormat: 'JSON', ApplicationLogLevel: 'WARN', SystemLogLevel: 'WARN', LogGroup: '/aws/lambda/log-warn' });
    const { lines } = await tail('log-warn');
    assert.deepEqual(lines.map((l) => JSON.parse(l).level), ['WARN', 'ERROR']);
    // The stored log says the same (thaw logs reads it).
    const stored = await eventually(async () => {
      const r = (await (await fetch(`${t.url}/thaw/v1/functions/log-warn/logs`)).json()) as { lines: { line: string }[] };
      return r.lines.length >= 2 ? r.lines : null;
    }, 'the log lines to be stored');
    assert.deepEqual(stored.map((l) => JSON.parse(l.line).level), ['WARN', 'ERROR']);
  });

  test('UpdateFunctionConfiguration switches the format; new instances log the new way', async () => {
    await create('log-switch', { LogFormat: 'JSON', ApplicationLogLevel: 'ERROR' });
    assert.deepEqual((await tail('log-switch')).lines.filter((l) => l.startsWith('{"timestamp"')).map((l) => JSON.parse(l).level), ['ERROR']);
    const u = await t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'log-switch', LoggingConfig: { LogFormat: 'Text' } }));
    assert.deepEqual(u.LoggingConfig, { LogFormat: 'Text', LogGroup: '/aws/lambda/log-switch' });
    const { id, lines } = await tail('log-switch');
    assert.equal(lines.filter((l) => l.includes(`\t${id}\t`)).length, 6, 'Text again: every level');
  });

  test('bad LoggingConfig values are refused naming the field, and change nothing', async () => {
    await create('log-bad');
    const before = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'log-bad' }));
    const cases: [RegExp, LoggingConfig][] = [
      [/LoggingConfig\.LogFormat/, { LogFormat: 'XML' as never }],
      [/LoggingConfig\.ApplicationLogLevel/, { LogFormat: 'JSON', ApplicationLogLevel: 'LOUD' as never }],
      [/LoggingConfig\.SystemLogLevel/, { LogFormat: 'JSON', SystemLogLevel: 'ERROR' as never }],
      [/LoggingConfig\.ApplicationLogLevel.*only to LogFormat JSON/, { LogFormat: 'Text', ApplicationLogLevel: 'DEBUG' }],
      [/LoggingConfig\.LogGroup/, { LogFormat: 'JSON', LogGroup: '/custom/group' }],
    ];
    for (const [field, LoggingConfig] of cases) {
      const err = await refusal(t.lambda.send(new UpdateFunctionConfigurationCommand({ FunctionName: 'log-bad', LoggingConfig })));
      assert.equal(err.name, 'InvalidParameterValueException', err.message);
      assert.match(err.message, field);
    }
    const now = await t.lambda.send(new GetFunctionConfigurationCommand({ FunctionName: 'log-bad' }));
    assert.equal(now.RevisionId, before.RevisionId);
    assert.deepEqual(now.LoggingConfig, before.LoggingConfig);
  });

  test('JSON: a thrown error is logged as Lambda\'s structured Invoke Error record, and so is an init error', async () => {
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'log-throw', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', LoggingConfig: { LogFormat: 'JSON' },
      Code: { ZipFile: pkg({ 'index.mjs': fnSource('throw new RangeError("out of range");') }) },
    }));
    const out = await t.lambda.send(new InvokeCommand({ FunctionName: 'log-throw', LogType: 'Tail', Payload: Buffer.from('{}') }));
    assert.equal(out.FunctionError, 'Unhandled');
    const records = Buffer.from(out.LogResult!, 'base64').toString().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const err = records.find((r) => r.level === 'ERROR');
    assert.ok(err, JSON.stringify(records));
    assert.equal(err.requestId, out.$metadata.requestId);
    assert.equal(typeof err.message, 'object', `the error is an object, not a string: ${JSON.stringify(err)}`);
    assert.equal(err.message.errorType, 'RangeError');
    assert.equal(err.message.errorMessage, 'out of range');
    assert.ok(Array.isArray(err.message.stackTrace));

    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'log-init-error', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', LoggingConfig: { LogFormat: 'JSON' },
      Code: { ZipFile: pkg({ 'index.mjs': 'throw new Error("bad init");\nexport const handler = async () => 1;\n' }) },
    }));
    const failed = await t.lambda.send(new InvokeCommand({ FunctionName: 'log-init-error', LogType: 'Tail', Payload: Buffer.from('{}') }));
    assert.equal(failed.FunctionError, 'Unhandled');
    // Init ran before the invocation was attached to the instance: its lines are in the function's log, not the tail.
    const initErr = await eventually(async () => {
      const r = (await (await fetch(`${t.url}/thaw/v1/functions/log-init-error/logs`)).json()) as { lines: { line: string }[] };
      return r.lines.map((l) => JSON.parse(l.line)).find((x) => x.level === 'ERROR');
    }, 'the init error to be stored');
    assert.equal(initErr.message.errorMessage, 'bad init', JSON.stringify(initErr));
    assert.ok(Array.isArray(initErr.message.stackTrace));
  });

  test('JSON: a message that is itself JSON stays a string; a huge line is cut to Lambda\'s 256 KB event limit everywhere', async () => {
    await t.lambda.send(new CreateFunctionCommand({
      FunctionName: 'log-huge', Role: ROLE, Runtime: 'nodejs24.x', Handler: 'index.handler', LoggingConfig: { LogFormat: 'JSON' },
      Code: { ZipFile: pkg({ 'index.mjs': fnSource('console.log(\'{"level":"DEBUG","message":"spoof"}\'); console.log("x".repeat(1024 * 1024)); process.stdout.write("y".repeat(600 * 1024) + "\\n"); return 1;') }) },
    }));
    // What followers (thaw logs --follow) and the invocation's own kept lines get, before the store cuts its copy.
    const published: LogEvent[] = [];
    const on = (e: unknown) => { if ((e as LogEvent).functionName === 'log-huge') published.push(e as LogEvent); };
    channels.log.subscribe(on);
    let out;
    try {
      out = await t.lambda.send(new InvokeCommand({ FunctionName: 'log-huge', LogType: 'Tail', Payload: Buffer.from('{}') }));
    } finally {
      channels.log.unsubscribe(on);
    }
    assert.equal(out.FunctionError, undefined);
    const app = published.filter((l) => l.stream !== 'platform');
    const spoof = JSON.parse(app.find((l) => l.line.includes('spoof'))!.line);
    assert.equal(spoof.level, 'INFO', 'the record\'s own level, not the one inside its message');
    assert.equal(spoof.requestId, out.$metadata.requestId);
    assert.equal(spoof.message, '{"level":"DEBUG","message":"spoof"}');
    const huge = app.filter((l) => /xxxx|yyyy/.test(l.line));
    assert.equal(huge.length, 2, 'each long line is kept, cut');
    for (const l of huge) assert.ok(Buffer.byteLength(l.line) <= 256 * 1024, `a line of ${Buffer.byteLength(l.line)} bytes was published`);
    assert.ok(Buffer.from(out.LogResult!, 'base64').toString().includes('platform.report'), 'the tail still ends with the REPORT');
  });

  test('retention: lines older than a function\'s retention go when it is set; others stay', async () => {
    await create('log-kept');
    await tail('log-kept');
    const url = `${t.url}/thaw/v1/functions/log-kept/logs/retention`;
    assert.deepEqual(await (await fetch(url)).json(), { functionName: 'log-kept', retentionInDays: null, maxLinesKept: 20_000 });
    // A line written two days ago (waiting two days is not an option in a test).
    const now = t.thaw.platform.clock.now();
    await t.thaw.platform.store.appendLogs([{ at: now - 2 * 86_400_000, functionName: 'log-kept', version: '$LATEST', instanceId: 'old', invocationId: null, stream: 'stdout', line: 'two days old' }]);
    const read = async () => ((await (await fetch(`${t.url}/thaw/v1/functions/log-kept/logs?limit=1000`)).json()) as { lines: { line: string }[] }).lines.map((l) => l.line);
    assert.ok((await read()).includes('two days old'));
    for (const bad of [{ retentionInDays: 0 }, { retentionInDays: 1.5 }, { retentionInDays: '7' }, { days: 7 }, { retentionInDays: 4000 }]) {
      const r = await fetch(url, { method: 'PUT', body: JSON.stringify(bad) });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.equal(((await r.json()) as { code: string }).code, 'THAW_E_REQUEST_INVALID');
    }
    assert.ok((await read()).includes('two days old'), 'a refused setting removed nothing');
    const set = await fetch(url, { method: 'PUT', body: JSON.stringify({ retentionInDays: 1 }) });
    assert.equal(set.status, 200);
    assert.equal(((await set.json()) as { retentionInDays: number }).retentionInDays, 1);
    const left = await read();
    assert.ok(!left.includes('two days old'), 'the old line is gone');
    assert.ok(left.some((l) => l.startsWith('START RequestId')), 'today\'s lines stay');
    const missing = await fetch(`${t.url}/thaw/v1/functions/nope/logs/retention`, { method: 'PUT', body: '{"retentionInDays":1}' });
    assert.equal(((await missing.json()) as { code: string }).code, 'THAW_E_FUNCTION_NOT_FOUND');
    const cleared = await fetch(url, { method: 'PUT', body: '{"retentionInDays":null}' });
    assert.equal(((await cleared.json()) as { retentionInDays: null }).retentionInDays, null);
  });
});
