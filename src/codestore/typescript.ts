// TypeScript compiled at deploy, so what deploys is what runs: every .ts, .mts and .cts file of a package
// (outside node_modules, declaration files aside) gets its JavaScript written beside it (.ts→.js, .mts→.mjs,
// .cts→.cjs) by esbuild's transform — all of TypeScript's syntax (enums, namespaces, parameter properties,
// decorators), not Node's strip-only subset — in the module format Node gives the source: .mts ESM, .cts
// CommonJS, .ts by the nearest package.json "type". Relative imports are rewritten to the files that exist
// once compiled ('./util' and './util.ts' become './util.js'), because ES modules never guess extensions.
// Any error refuses the package naming file:line:column. Imports src/core, node built-ins, es-module-lexer
// and, only when a package has TypeScript, esbuild.
import { createHash } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire, SourceMap } from 'node:module';
import { posix } from 'node:path';
import { init as initEsm, parse as parseEsm } from 'es-module-lexer';
import { ThawError } from '../core/errors.ts';
import { packageType } from './handler.ts';

type Format = 'esm' | 'cjs';
interface Source { rel: string; out: string; format: Format }
interface Located { text: string; location?: { file: string; line: number; column: number } | null }

/** The lowest Node Thaw runs functions on: one compiled tree serves every runtime a package is used with. */
const TARGET = 'node20';
/** Bumped when the rules here change what a package compiles to, so trees compiled before are not reused. */
const RULES = 1;
const OUT_EXT: Record<string, string> = { '.ts': '.js', '.mts': '.mjs', '.cts': '.cjs' };
const IS_SOURCE = /^(?!.*\.d\.[mc]?ts$).*\.[mc]?ts$/;
/** Files the compiler works on at once (esbuild runs them in parallel in its own process). */
const CONCURRENCY = 16;

let tag: string | null = null;
/**
 * What a package's unpacked tree depends on besides its bytes: the compiler, its version and these rules.
 * The code cache keys trees by package hash and this tag, so a new esbuild never serves an old tree.
 */
export function compilerTag(): string {
  return (tag ??= createHash('sha256').update(`esbuild@${createRequire(import.meta.url)('esbuild/package.json').version} ${TARGET} rules ${RULES}`).digest('hex').slice(0, 16));
}

/**
 * Compiles the TypeScript of the unpacked package in dir (in place: the caller owns dir and removes it on
 * failure). Returns how many files and bytes it wrote; a package without TypeScript costs one directory walk.
 */
export async function compileTypeScript(dir: string): Promise<{ files: number; bytes: number }> {
  const all = new Set<string>();
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    if (e.isFile() || e.isSymbolicLink()) all.add(posix.join(posix.relative(dir, e.parentPath).split('\\').join('/'), e.name));
  }
  const candidates = [...all].filter((rel) => IS_SOURCE.test(rel) && !rel.split('/').includes('node_modules'));
  if (candidates.length === 0) return { files: 0, bytes: 0 };

  // Where each source's JavaScript goes. A package that already ships that file (compiled by its author)
  // keeps it, as Lambda would load it; the source is then left alone.
  const outputs = new Map<string, string>();
  const sources: Source[] = [];
  for (const rel of candidates) {
    const ext = posix.extname(rel);
    const out = rel.slice(0, -ext.length) + OUT_EXT[ext];
    outputs.set(rel, out);
    if (all.has(out)) continue;
    const format: Format = ext === '.mts' ? 'esm' : ext === '.cts' ? 'cjs' : (await packageType(posix.join(dir, posix.dirname(rel)), dir)) === 'module' ? 'esm' : 'cjs';
    sources.push({ rel, out, format });
  }
  for (const s of sources) all.add(s.out);

  const esbuild = await import('esbuild');
  await initEsm();
  const tsconfigs = new Map<string, Promise<string | undefined>>();
  const tsconfigFor = (rel: string) => {
    for (let d = posix.dirname(rel); ; d = posix.dirname(d)) {
      const p = d === '.' ? 'tsconfig.json' : `${d}/tsconfig.json`;
      if (all.has(p)) {
        if (!tsconfigs.has(p)) tsconfigs.set(p, readFile(posix.join(dir, p), 'utf8'));
        return tsconfigs.get(p)!;
      }
      if (d === '.') return Promise.resolve(undefined);
    }
  };

  const errors: string[] = [];
  let bytes = 0;
  const compileOne = async (s: Source) => {
    const source = await readFile(posix.join(dir, s.rel), 'utf8');
    // esbuild parses nesting by recursion: a few hundred thousand brackets take a gigabyte of its stack and
    // then kill its process, which every later deploy shares. Such a file is refused before it gets there.
    const depth = nestingDepth(source);
    if (depth > MAX_NESTING) {
      errors.push(`${s.rel}: brackets nest ${depth > MAX_NESTING * 10 ? `over ${MAX_NESTING * 10}` : depth} deep, past the ${MAX_NESTING} Thaw compiles; flatten the expression (generated data can be JSON, loaded with import or readFileSync)`);
      return;
    }
    const tsconfigRaw = await tsconfigFor(s.rel);
    let first;
    try {
      first = await transform(esbuild, source, { loader: 'ts', platform: 'node', sourcefile: s.rel, target: TARGET, sourcemap: 'external', tsconfigRaw });
    } catch (err) {
      errors.push(...located(err).map((e) => where(e.location, e.text)));
      return;
    }
    let code = rewriteImports(first.code, s.rel, all, outputs);
    if (s.format === 'cjs') {
      try {
        code = (await transform(esbuild, code, { loader: 'js', format: 'cjs', platform: 'node', sourcefile: s.rel, target: TARGET, logOverride: { 'empty-import-meta': 'error' } })).code;
      } catch (err) {
        // Located in the intermediate JavaScript: mapped back to the TypeScript line the user wrote.
        const map = new SourceMap(JSON.parse(first.map));
        for (const e of located(err)) {
          const at = e.location ? map.findEntry(e.location.line - 1, e.location.column) as { originalLine?: number; originalColumn?: number } : {};
          const loc = at.originalLine !== undefined ? { file: s.rel, line: at.originalLine + 1, column: at.originalColumn ?? 0 } : e.location;
          errors.push(`${where(loc, e.text)} (${s.rel} is CommonJS: ${s.rel.endsWith('.cts') ? 'it is a .cts file' : 'the nearest package.json has no "type": "module"'}; for ES module syntax rename it .mts or set "type": "module")`);
        }
        return;
      }
    }
    // O_EXCL: a compiled file never replaces one the package brought or writes through a link.
    await writeFile(posix.join(dir, s.out), code, { flag: 'wx', mode: 0o644 });
    bytes += Buffer.byteLength(code);
  };
  for (let i = 0; i < sources.length; i += CONCURRENCY) await Promise.all(sources.slice(i, i + CONCURRENCY).map(compileOne));

  if (errors.length) {
    const more = errors.length > 5 ? `\n(and ${errors.length - 5} more)` : '';
    throw new ThawError('THAW_E_TYPESCRIPT_INVALID', `the package's TypeScript does not compile:\n${errors.slice(0, 5).join('\n')}${more}`, { details: { errors: errors.slice(0, 20) } });
  }
  return { files: sources.length, bytes };
}

/** Deeper than any written or generated code we know of, far below what esbuild's stack can take. */
const MAX_NESTING = 1000;

/**
 * How deep ( [ { nest in a source, strings and comments aside (a regular expression's brackets count:
 * an overestimate by a few at worst). Stops counting at ten times the limit.
 */
export function nestingDepth(source: string): number {
  let depth = 0;
  let max = 0;
  for (let i = 0; i < source.length && max <= MAX_NESTING * 10; i++) {
    const c = source[i];
    if (c === '(' || c === '[' || c === '{') { if (++depth > max) max = depth; }
    else if (c === ')' || c === ']' || c === '}') { if (depth > 0) depth--; }
    else if (c === '/' && source[i + 1] === '/') { const e = source.indexOf('\n', i); i = e < 0 ? source.length : e; }
    else if (c === '/' && source[i + 1] === '*') { const e = source.indexOf('*/', i + 2); i = e < 0 ? source.length : e + 1; }
    else if (c === '"' || c === "'" || c === '`') {
      for (i++; i < source.length && source[i] !== c; i++) if (source[i] === '\\') i++;
    }
  }
  return max;
}

type Esbuild = typeof import('esbuild');

/**
 * esbuild's transform. Its process serves every deploy of the server: if it has died (killed, out of
 * memory), it is stopped for good, so the next call starts a new one, and asked once more.
 */
async function transform(esbuild: Esbuild, input: string, options: Parameters<Esbuild['transform']>[1]) {
  try {
    return await esbuild.transform(input, options);
  } catch (err) {
    if ((err as { errors?: unknown[] }).errors?.length || !/service (was stopped|is no longer running)/.test((err as Error).message ?? '')) throw err;
    await esbuild.stop();
    return esbuild.transform(input, options);
  }
}

function located(err: unknown): Located[] {
  const list = (err as { errors?: Located[] }).errors;
  return list?.length ? list : [{ text: (err as Error).message ?? String(err) }];
}

/** file:line:column as editors and tsc print it (column from 1). */
function where(loc: Located['location'] | undefined, text: string): string {
  return loc ? `${loc.file}:${loc.line}:${loc.column + 1}: ${text}` : text;
}

/** Static and dynamic imports (string literals) of relative paths, pointed at the file that will exist. */
function rewriteImports(code: string, from: string, files: Set<string>, outputs: Map<string, string>): string {
  let imports;
  try { [imports] = parseEsm(code, from); } catch { return code; }
  let result = code;
  for (const imp of [...imports].reverse()) {
    const n = imp.specifier;
    if (typeof n !== 'string' || !(n.startsWith('./') || n.startsWith('../'))) continue;
    const spec = resolveSpecifier(from, n, files, outputs);
    if (spec === null) continue;
    // A dynamic import's range is the whole literal, quotes included; a static one's is inside the quotes.
    if (imp.type === 'dynamic') { result = result.slice(0, imp.start) + JSON.stringify(spec) + result.slice(imp.end); continue; }
    const quote = result[imp.start - 1];
    if (spec.includes(quote) || spec.includes('\\')) continue;
    result = result.slice(0, imp.start) + spec + result.slice(imp.end);
  }
  return result;
}

/**
 * The specifier that reaches what `spec` meant, TypeScript's way: the file itself, its source named by the
 * output's extension ('./util.js' for util.ts), or with .ts, .js or .json added, or a directory's index.
 * Null when it needs no change or names nothing in the package (Node reports that at load, as always).
 */
function resolveSpecifier(from: string, spec: string, files: Set<string>, outputs: Map<string, string>): string | null {
  const target = posix.normalize(posix.join(posix.dirname(from), spec));
  if (target.startsWith('../')) return null;
  const swapped = target.replace(/\.([mc]?)js$/, '.$1ts');
  const candidates = [target, swapped, ...['.ts', '.js', '.json', '/index.ts', '/index.js', '/index.json'].map((x) => target + x)];
  for (const c of candidates) {
    const found = outputs.get(c) ?? (files.has(c) ? c : null);
    if (found === null) continue;
    let rel = posix.relative(posix.dirname(from), found);
    if (!rel.startsWith('.')) rel = `./${rel}`;
    return rel === spec ? null : rel;
  }
  return null;
}
