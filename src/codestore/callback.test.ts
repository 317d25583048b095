// The deploy-time view of a handler's declared parameters, which refuses callback handlers on Node.js 24.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkNotCallbackHandler, exportedArity } from './callback.ts';

test('a handler export written out in its file has its declared length, as Function.length counts it', () => {
  const cases: [string, number | null][] = [
    ['export const handler = async (event, context, callback) => {}', 3],
    ['export const handler = async (event, context) => {}', 2],
    ['export async function handler(event, context, cb) {}', 3],
    ['export function handler(event, context, cb) {}', 3],
    ['exports.handler = function (event, context, callback) {}', 3],
    ['module.exports.handler = async function named({ a, b }, [c, d], e) {}', 3],
    ['exports.handler = (event, context, callback = () => {}) => {}', 2],
    ['exports.handler = (event, ...rest) => {}', 1],
    ['export const handler = event => 1', 1],
    ['// export const handler = (a, b, c) => 1\nexport const handler = async (a) => 1', 1],
    // Not written out plainly: left to the runtime's check at init.
    ['export const handler = awslambda.streamifyResponse(async (event, stream, context) => {})', null],
    ['export const handler = middy(base)', null],
    ['export const main = (a, b, c) => 1', null],
    ['function handler(a, b, c) {}\nexport { handler }', null],
    // A bundle: a library's own function of that name, indented inside its module wrapper, is not the export.
    ['var lib = __commonJS({ "node_modules/x/index.js"(exports) {\n  function handler(req, res, next) {}\n} });\nvar handler = wrap(lib);\n', null],
  ];
  for (const [source, want] of cases) assert.equal(exportedArity(source, 'handler'), want, source);
});

test('a callback handler is refused for nodejs24.x and kept for nodejs22.x and nodejs20.x', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-callback-'));
  try {
    const file = join(dir, 'index.js');
    await writeFile(file, 'exports.handler = function (event, context, callback) { callback(null, 1); };\n');
    await assert.rejects(checkNotCallbackHandler(file, 'handler', 'nodejs24.x'), (e: Error & { code?: string }) => e.code === 'THAW_E_CALLBACK_HANDLER' && /CallbackHandlerDeprecated/.test(e.message));
    await assert.rejects(checkNotCallbackHandler(file, 'handler', 'nodejs24'), /CallbackHandlerDeprecated/);
    await checkNotCallbackHandler(file, 'handler', 'nodejs22.x');
    await checkNotCallbackHandler(file, 'handler', 'nodejs20.x');
    await writeFile(file, 'exports.handler = async (event, context) => 1;\n');
    await checkNotCallbackHandler(file, 'handler', 'nodejs24.x');
    // Lambda's runtime goes by the declared length alone: an async function of three parameters is refused too.
    await writeFile(file, 'exports.handler = async (event, context, callback) => 1;\n');
    await assert.rejects(checkNotCallbackHandler(file, 'handler', 'nodejs24.x'), /CallbackHandlerDeprecated/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
