// Handlers: parse `file.export`, find the file as Node would load it (.js .mjs .cjs .ts ...), and check the
// export exists without running the code (lexers for ESM and CommonJS, following re-exports).
// Imports src/core, node built-ins, es-module-lexer and cjs-module-lexer.
import { readFile, realpath, stat } from 'node:fs/promises';
import { stripTypeScriptTypes } from 'node:module';
import { dirname, extname, join, relative, resolve, sep } from 'node:path';
import { init as initCjs, parse as parseCjs } from 'cjs-module-lexer';
import { init as initEsm, parse as parseEsm } from 'es-module-lexer';
import { ThawError } from '../core/errors.ts';

export const HANDLER_EXTENSIONS = ['.js', '.mjs', '.cjs', '.ts', '.mts', '.cts'] as const;
const HANDLER = /^[A-Za-z0-9_$./-]+$/;

export function parseHandler(handler: string): { module: string; exportName: string } {
  const invalid = (why: string) => new ThawError('THAW_E_HANDLER_INVALID', `handler ${JSON.stringify(handler)} ${why}`);
  if (!HANDLER.test(handler)) throw invalid('may contain only letters, digits, _ $ . / and -');
  const dot = handler.lastIndexOf('.');
  if (dot <= 0 || dot === handler.length - 1) throw invalid('must be FILE.EXPORT, e.g. index.handler');
  const module = handler.slice(0, dot);
  const exportName = handler.slice(dot + 1);
  if (module.startsWith('/')) throw invalid('must be a path relative to the package root');
  if (module.split('/').some((s) => s === '..' || s === '')) throw invalid('must not contain ".." or empty path segments');
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(exportName)) throw invalid(`names export ${JSON.stringify(exportName)}, which is not a JavaScript identifier`);
  return { module, exportName };
}

export type ModuleFormat = 'esm' | 'cjs';

export async function resolveHandlerFile(dir: string, handler: string): Promise<{ file: string; format: ModuleFormat }> {
  const { module } = parseHandler(handler);
  const base = resolve(dir);
  const root = await realpath(base).catch(() => base);
  const tried: string[] = [];
  for (const ext of HANDLER_EXTENSIONS) {
    const candidate = join(base, module + ext);
    tried.push(module + ext);
    if (!(await isFileInside(candidate, root))) continue;
    return { file: candidate, format: await moduleFormat(candidate, base) };
  }
  throw new ThawError('THAW_E_HANDLER_FILE_MISSING', `handler ${handler}: none of ${tried.join(', ')} is in the package`);
}

/** A regular file (after following links) whose real path is inside root. */
async function isFileInside(path: string, root: string): Promise<boolean> {
  const real = await realpath(path).catch(() => null);
  if (!real || (real !== root && !real.startsWith(root + sep))) return false;
  return (await stat(real).catch(() => null))?.isFile() ?? false;
}

/** As Node decides: by extension, else the nearest package.json "type" up to base, else by syntax. */
async function moduleFormat(file: string, base: string): Promise<ModuleFormat> {
  const ext = extname(file);
  if (ext === '.mjs' || ext === '.mts') return 'esm';
  if (ext === '.cjs' || ext === '.cts') return 'cjs';
  const type = await packageType(dirname(file), base);
  if (type) return type === 'module' ? 'esm' : 'cjs';
  // No "type": Node 24 detects ES module syntax, so a .js file with import/export loads as ESM.
  return (await esmParse(file))?.[3] ? 'esm' : 'cjs';
}

/** The nearest package.json's "type" (module or commonjs) from `from` up to base; null when none. */
export async function packageType(from: string, base: string): Promise<string | null> {
  for (let d = from; ; d = dirname(d)) {
    try {
      const pkg = JSON.parse(await readFile(join(d, 'package.json'), 'utf8'));
      return pkg.type === 'module' ? 'module' : 'commonjs';
    } catch { /* no package.json here, or unreadable: keep walking */ }
    if (d === base || !d.startsWith(base + sep)) return null;
  }
}

/** Node's type stripping, without its once-per-process "experimental" warning on the server's stderr. */
function stripTypes(source: string): string {
  const emit = process.emitWarning;
  process.emitWarning = () => {};
  try { return stripTypeScriptTypes(source); } finally { process.emitWarning = emit; }
}

/** es-module-lexer's view of a file, TypeScript stripped first; null when it does not parse. */
async function esmParse(file: string) {
  await initEsm();
  let source = await readFile(file, 'utf8');
  if (/\.[mc]?ts$/.test(file)) {
    try { source = stripTypes(source); } catch { return null; }
  }
  try { return parseEsm(source, file); } catch { return null; }
}

/**
 * Rejects a handler whose file does not export the named function when that can be known statically.
 * When it cannot (computed CommonJS exports, a parse error the runtime will report), it is accepted.
 */
export async function checkHandlerExport(dir: string, handler: string): Promise<void> {
  const { exportName } = parseHandler(handler);
  const { file, format } = await resolveHandlerFile(dir, handler);
  const root = await realpath(dir);
  const found = format === 'esm' ? await esmExports(file, root, 0) : await cjsExports(file, root, 0);
  if (found === 'unknown' || found.has(exportName)) return;
  const have = [...found].filter((n) => n !== '__esModule');
  throw new ThawError('THAW_E_HANDLER_EXPORT_MISSING',
    `${relative(resolve(dir), file)} does not export ${exportName}${have.length ? `; it exports ${have.slice(0, 10).join(', ')}` : '; it exports nothing'}`);
}

type Exports = Set<string> | 'unknown';
/** How many `export * from` / `require()` re-export hops are followed before giving up (and accepting). */
const MAX_DEPTH = 8;

async function esmExports(file: string, root: string, depth: number): Promise<Exports> {
  if (depth > MAX_DEPTH) return 'unknown';
  const parsed = await esmParse(file);
  if (!parsed) return 'unknown';
  const names = new Set<string>();
  for (const e of parsed[1]) {
    if (e.typeOnly) continue;
    if (e.type !== 'reexport-all') { names.add(e.name); continue; }
    const target = e.from.startsWith('.') ? await resolveRelative(file, e.from, root) : null;
    if (!target) return 'unknown';
    const more = await esmExports(target, root, depth + 1);
    if (more === 'unknown') return 'unknown';
    for (const n of more) if (n !== 'default') names.add(n);
  }
  return names;
}

async function cjsExports(file: string, root: string, depth: number): Promise<Exports> {
  if (depth > MAX_DEPTH) return 'unknown';
  await initCjs();
  let source = await readFile(file, 'utf8');
  if (/\.[mc]?ts$/.test(file)) {
    try { source = stripTypes(source); } catch { return 'unknown'; }
  }
  let parsed;
  try { parsed = parseCjs(source); } catch { return 'unknown'; }
  const names = new Set(parsed.exports);
  for (const spec of parsed.reexports) {
    const target = spec.startsWith('.') ? await resolveRelative(file, spec, root) : null;
    if (!target) return 'unknown';
    const more = await cjsExports(target, root, depth + 1);
    if (more === 'unknown') return 'unknown';
    for (const n of more) names.add(n);
  }
  // `module.exports = someExpression` is invisible to the lexer: nothing found means we cannot tell.
  if (names.size === 0 || (names.size === 1 && names.has('__esModule'))) return 'unknown';
  return names;
}

/** A relative import as Node resolves it (exact, then with an extension, then index files), inside root. */
async function resolveRelative(from: string, spec: string, root: string): Promise<string | null> {
  const base = resolve(dirname(from), spec);
  const candidates = [base, ...HANDLER_EXTENSIONS.map((e) => base + e), ...HANDLER_EXTENSIONS.map((e) => join(base, `index${e}`))];
  for (const c of candidates) if (await isFileInside(c, root)) return c;
  return null;
}
