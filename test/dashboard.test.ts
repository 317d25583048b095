// The dashboard end to end in a real browser: Thaw serves it at `/`, Debian's Chromium (driven by
// playwright-core) loads it, and the DOM shows the functions, live instances with their tiers, a cold start's
// waterfall and why, the decision log, and the simulator's Pareto chart for an uploaded trace; user content
// stays text; with access keys the page signs in and signs its calls. THAW_SCREENSHOTS=1 writes
// docs/dashboard-*.png (the test run leaves the tree alone otherwise).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CreateAliasCommand, CreateFunctionCommand, InvokeCommand, PublishVersionCommand } from '@aws-sdk/client-lambda';
import { chromium, type Browser, type Page } from 'playwright-core';
import { eventually, fnSource, getJson, pkg, startTestThaw, type TestThaw } from './helpers.ts';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = process.env.THAW_SCREENSHOTS === '1';
const DOCS = join(import.meta.dirname, '..', 'docs');
/** Markup a function puts in its description, logs and error: it must show as text and never become an element. */
const HOSTILE = '<img src=x class=injected onerror="window.__xss=1">';

/** Waits until the element with this id shows the text (the page fills panels as its calls return). */
const waitForText = (page: Page, id: string, text: string) =>
  page.waitForFunction(([i, s]) => ((globalThis as any).document.getElementById(i)?.textContent ?? '').includes(s), [id, text] as const);

/** A small trace in the Azure Functions 2019 format: 4 functions over 2 hours, of different rhythms. */
function tinyTrace(): string {
  const minutes = 120;
  const cols = Array.from({ length: minutes }, (_, i) => String(i + 1));
  const rows = [['o', 'a1', 'every-minute', 'http', ...cols.map(() => '2')],
    ['o', 'a1', 'every-10', 'timer', ...cols.map((_, i) => (i % 10 === 0 ? '1' : '0'))],
    ['o', 'a2', 'every-45', 'queue', ...cols.map((_, i) => (i % 45 === 0 ? '3' : '0'))],
    ['o', 'a3', 'once', 'http', ...cols.map((_, i) => (i === 30 ? '1' : '0'))]];
  return [['HashOwner', 'HashApp', 'HashFunction', 'Trigger', ...cols].join(','), ...rows.map((r) => r.join(','))].join('\n') + '\n';
}

describe('the dashboard', { skip: existsSync(CHROMIUM) ? false : `Chromium is not installed (to enable: apt-get install chromium)` }, () => {
  let t: TestThaw;
  let browser: Browser;
  let coldId: string;
  /** Console errors and uncaught exceptions of every page, checked by the last test. */
  const problems: string[] = [];

  const create = (name: string, body: string, description = '') => t.lambda.send(new CreateFunctionCommand({
    FunctionName: name, Runtime: 'nodejs24.x' as never, Handler: 'index.handler', Role: 'arn:aws:iam::000000000000:role/r',
    Description: description, Code: { ZipFile: pkg({ 'index.mjs': fnSource(body) }) },
  }));
  const invoke = (name: string, qualifier?: string) => t.lambda.send(new InvokeCommand({ FunctionName: name, Payload: Buffer.from('{}'), Qualifier: qualifier }));

  async function openPage(): Promise<Page> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    const page = await context.newPage();
    page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()}`); });
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
    await page.goto(t.url);
    return page;
  }

  before(async () => {
    // Instances freeze soon after a request, so the decision log has entries and the tiers move.
    t = await startTestThaw({ freezeAfterMs: 300 });
    await create('hello', 'console.log("hello from", event.who ?? "the dashboard test"); return { ok: true };', 'says hello');
    await t.lambda.send(new PublishVersionCommand({ FunctionName: 'hello' }));
    await t.lambda.send(new CreateAliasCommand({ FunctionName: 'hello', Name: 'live', FunctionVersion: '1' }));
    await create('hostile', `console.log(${JSON.stringify(HOSTILE)}); throw new Error(${JSON.stringify(HOSTILE)});`, HOSTILE);
    const cold = await invoke('hello', 'live');
    assert.equal(cold.FunctionError, undefined);
    await invoke('hello', 'live');
    await invoke('hostile');
    const { invocations } = await getJson(`${t.url}/thaw/v1/invocations?function=hello`);
    // The first request started an instance: from scratch, or a pooled runtime when the pool had one.
    const first = invocations.at(-1);
    assert.ok(['cold', 'pooled'].includes(first.start), `the first invocation started an instance (${first.start})`);
    coldId = first.id;
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  });

  after(async () => {
    await browser?.close();
    await t?.stop();
  });

  test('/ and /dashboard/* are served with their content types, a strict CSP and validators', async () => {
    const page = await fetch(`${t.url}/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type')!, /^text\/html/);
    const csp = page.headers.get('content-security-policy')!;
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /default-src 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.doesNotMatch(await page.text(), /<script(?![^>]*\ssrc=)[^>]*>/, 'no inline script in the page');
    const js = await fetch(`${t.url}/dashboard/app.js`);
    assert.match(js.headers.get('content-type')!, /^text\/javascript/);
    const etag = js.headers.get('etag')!;
    const again = await fetch(`${t.url}/dashboard/app.js`, { headers: { 'if-none-match': etag } });
    assert.equal(again.status, 304);
    assert.match((await fetch(`${t.url}/dashboard/dashboard.css`)).headers.get('content-type')!, /^text\/css/);
    const missing = await fetch(`${t.url}/dashboard/tsconfig.json`);
    assert.equal(missing.status, 404);
    assert.equal(((await missing.json()) as any).code, 'THAW_E_ROUTE_NOT_FOUND');
    const dotdot = await fetch(`${t.url}/dashboard/%2e%2e%2findex.ts`);
    assert.equal(dotdot.status, 404);
  });

  test('a function cannot be named dashboard: the name is the page\'s path', async () => {
    await assert.rejects(create('dashboard', 'return 1;'), (err: Error & { name: string }) => /reserved/.test(err.message));
  });

  test('shows functions with versions, aliases and policies, and live instances by state and tier', async () => {
    const page = await openPage();
    const row = page.locator('#functions-body tr[data-function="hello"]');
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[0], 'hello');
    assert.equal(cells[3], '1');
    assert.equal(cells[4], 'live → 1');
    const policy = await getJson(`${t.url}/thaw/v1/functions/hello/policy`);
    assert.equal(cells[5], `${policy.policy} (node default)`);
    // The instance the API lists is on the page with its state and the tier that state is in.
    const { instances } = await getJson(`${t.url}/thaw/v1/instances`);
    const inst = instances.find((i: { functionName: string }) => i.functionName === 'hello');
    assert.ok(inst, 'hello has a live instance');
    const instRow = page.locator(`#instances-body tr[data-instance="${inst.id}"]`);
    await instRow.waitFor();
    const state = await instRow.locator('td.state').textContent();
    assert.ok(['idle', 'frozen', 'paged', 'busy'].includes(state!), state!);
    const tier = await instRow.locator('td.tier').textContent();
    assert.equal(tier, { idle: 'warm', busy: 'warm', frozen: 'frozen', paged: 'paged' }[state!]);
    assert.match((await page.locator('#instances-summary .card[data-function="hello"]').textContent())!, /tier \d+ (warm|frozen|paged)/);
    // The timeline has a point: one cold start among the invocations.
    await page.locator('#chart-cold-rate svg circle').first().waitFor();
    await page.locator('#chart-first-latency svg circle').first().waitFor();
    if (SHOTS) await page.screenshot({ path: join(DOCS, 'dashboard-overview.png'), fullPage: true });
    await page.context().close();
  });

  test('a cold start shows its phase waterfall, its why and its logs', async () => {
    const page = await openPage();
    const rec = await getJson(`${t.url}/thaw/v1/invocations/${coldId}`);
    const why = await getJson(`${t.url}/thaw/v1/invocations/${coldId}/why`);
    const row = page.locator(`#invocations-body tr[data-invocation="${coldId}"]`);
    await row.waitFor();
    assert.equal(await row.locator('td.start').textContent(), rec.start);
    await row.click();
    const phases = page.locator('#invocation-detail svg.waterfall g.phase');
    await phases.first().waitFor();
    assert.deepEqual(await phases.evaluateAll((gs) => gs.map((g) => g.getAttribute('data-phase'))), rec.phases.map((p: { name: string }) => p.name));
    assert.ok(rec.phases.some((p: { name: string }) => p.name === 'init'), 'a cold start has an init phase');
    await page.locator('#why .cause').waitFor();
    assert.equal(await page.locator('#why .cause').textContent(), why.cause);
    assert.equal(why.cause, 'first-invocation');
    assert.equal(await page.locator('#why .why-detail').textContent(), why.detail);
    await waitForText(page, 'invocation-logs', 'hello from');
    if (SHOTS) await page.locator('#invocations').screenshot({ path: join(DOCS, 'dashboard-invocation.png') });
    await page.context().close();
  });

  test('shows the decision log', async () => {
    const d = await eventually(async () => (await getJson(`${t.url}/thaw/v1/decisions`)).decisions.find((x: { fn: string; action: string }) => x.fn === 'hello' && x.action === 'freeze'), 'a freeze decision for hello');
    const page = await openPage();
    const row = page.locator('#decisions-body tr[data-action="freeze"]', { hasText: d.instanceId }).first();
    await row.waitFor();
    const cells = await row.locator('td').allTextContents();
    assert.equal(cells[1], 'hello');
    assert.equal(cells[2], 'freeze');
    assert.equal(cells[4], d.reason);
    await page.context().close();
  });

  test('a function\'s description, log lines and error show as text and run nothing', async () => {
    const page = await openPage();
    const row = page.locator('#functions-body tr[data-function="hostile"]');
    await row.waitFor();
    assert.equal(await row.locator('td').last().textContent(), HOSTILE);
    const { invocations } = await getJson(`${t.url}/thaw/v1/invocations?function=hostile`);
    await page.locator(`#invocations-body tr[data-invocation="${invocations[0].id}"]`).click();
    await waitForText(page, 'invocation-logs', HOSTILE);
    assert.match((await page.locator('#invocation-detail p.error').textContent())!, /<img src=x class=injected/);
    assert.equal(await page.locator('img.injected, img[src="x"]').count(), 0, 'no element was made of the markup');
    assert.equal(await page.evaluate(() => (globalThis as { __xss?: number }).__xss), undefined);
    await page.context().close();
  });

  test('the simulator runs an uploaded trace and draws its Pareto chart', async () => {
    const page = await openPage();
    await page.locator('#sim-files').setInputFiles({ name: 'tiny_inv.csv', mimeType: 'text/csv', buffer: Buffer.from(tinyTrace()) });
    await page.locator('#sim-run').click();
    await page.locator('#sim-chart svg polyline').first().waitFor({ timeout: 90_000 });
    assert.match((await page.locator('#sim-status').textContent())!, /^tiny: 4 functions, 120 minutes, \d+ invocations; 18 policy settings swept\.$/);
    const families = await page.locator('#sim-body tr').evaluateAll((rs) => rs.map((r) => r.getAttribute('data-family')));
    assert.deepEqual([...new Set(families)], ['fixed', 'hybrid', 'gdsf', 'thaw']);
    assert.ok(await page.locator('#sim-chart svg circle').count() >= 18, 'a point per policy setting');
    if (SHOTS) await page.locator('#simulator').screenshot({ path: join(DOCS, 'dashboard-simulator.png') });
    await page.context().close();
  });

  test('POST /thaw/v1/sim refuses bad traces with a code, and traces past its bounds', async () => {
    const post = async (body: unknown) => {
      const r = await fetch(`${t.url}/thaw/v1/sim`, { method: 'POST', body: JSON.stringify(body) });
      return { status: r.status, body: await r.json() as any };
    };
    const noCounts = await post({ invocations: 'HashOwner,HashApp,HashFunction,Trigger\no,a,f,http\n' });
    assert.equal(noCounts.status, 400);
    assert.equal(noCounts.body.code, 'THAW_E_TRACE_INVALID');
    const notCount = await post({ invocations: 'HashOwner,HashApp,HashFunction,Trigger,1,2\no,a,f,http,1,x\n' });
    assert.equal(notCount.body.code, 'THAW_E_TRACE_INVALID');
    assert.match(notCount.body.message, /'x' in column 2, not a count/);
    const unknown = await post({ invocations: tinyTrace(), polcy: 'fixed:10m' });
    assert.equal(unknown.body.code, 'THAW_E_FIELD_UNKNOWN');
    const many = ['HashOwner,HashApp,HashFunction,Trigger,1', ...Array.from({ length: 1001 }, (_, i) => `o,a,f${i},http,1`)].join('\n');
    const tooMany = await post({ invocations: many });
    assert.equal(tooMany.status, 413);
    assert.equal(tooMany.body.code, 'THAW_E_SIM_TOO_LARGE');
    assert.match(tooMany.body.message, /1001 functions \(at most 1000\)/);
    const huge = await fetch(`${t.url}/thaw/v1/sim`, { method: 'POST', body: JSON.stringify({ invocations: 'x'.repeat(5 * 1024 * 1024) }) });
    assert.equal(huge.status, 413);
    assert.equal(((await huge.json()) as any).code, 'THAW_E_REQUEST_TOO_LARGE');
  });

  test('no page logged an error or threw', () => {
    assert.deepEqual(problems, []);
  });

  describe('once access keys exist', () => {
    let admin: { id: string; secret: string };
    before(async () => {
      const a = await t.thaw.platform.keys.create('admin', null, t.thaw.platform.clock.now());
      admin = { id: a.key.id, secret: a.secret };
    });

    test('the page asks to sign in, refuses a wrong secret, and signs its calls with the right one', async () => {
      const page = await openPage();
      await page.locator('#login').waitFor();
      assert.equal(await page.locator('#main').isHidden(), true);
      // The page's unsigned call is refused by the gateway itself.
      const bare = await page.evaluate(async () => { const r = await fetch('/thaw/v1/node'); return { status: r.status, code: ((await r.json()) as any).code as string }; });
      assert.deepEqual(bare, { status: 403, code: 'THAW_E_AUTH_REQUIRED' });

      await page.locator('#login-key').fill(admin.id);
      await page.locator('#login-secret').fill('not-the-secret-of-this-key');
      await page.locator('#login-form button[type=submit]').click();
      await waitForText(page, 'login-error', 'The key was refused');
      assert.match((await page.locator('#login-error').textContent())!, /signature we calculated does not match/);
      assert.equal(await page.locator('#main').isHidden(), true);

      await page.locator('#login-key').fill(admin.id);
      await page.locator('#login-secret').fill(admin.secret);
      await page.locator('#login-form button[type=submit]').click();
      await page.locator('#functions-body tr[data-function="hello"]').waitFor();
      assert.equal(await page.locator('#signed-in').textContent(), `signed in as ${admin.id}`);
      // A path with an escaped qualifier and a query string signs as the SDK's does.
      await page.locator(`#invocations-body tr[data-invocation="${coldId}"]`).click();
      await page.locator('#why .cause').waitFor();
      await waitForText(page, 'invocation-logs', 'hello from');
      // Problems here are the expected 403s of the refused calls; the page itself threw nothing.
      assert.deepEqual(problems.filter((p) => p.startsWith('page error')), []);
      await page.context().close();
    });
  });
});
