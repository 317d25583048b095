// Checks the dependency rules of DESIGN.md and STYLE.md that tsc cannot: components import each other only
// one way and only through their index.ts; policies do no I/O; time is read only by the clock adapter.
// Run by `npm run lint`; exits 1 listing every violation.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';

const root = resolve(import.meta.dirname, '..', 'src');

/** Which components each component may import (core is shared vocabulary and open to all). */
export const allowed: Record<string, string[]> = {
  core: [],
  store: ['core'],
  codestore: ['core'],
  sandbox: ['core'],
  network: ['core', 'sandbox'],
  runtimes: ['core', 'sandbox'],
  policies: ['core'],
  telemetry: ['core', 'store'],
  control: ['core', 'store', 'codestore', 'network', 'policies'],
  agent: ['core', 'store', 'codestore', 'sandbox', 'network', 'runtimes', 'policies'],
  sim: ['core', 'policies'],
  cluster: ['core', 'codestore', 'agent', 'policies'],
  gateway: ['core', 'store', 'codestore', 'sandbox', 'network', 'runtimes', 'policies', 'sim', 'telemetry', 'control', 'agent', 'cluster', 'web'],
  web: ['core', 'telemetry'],
  cli: ['core', 'store', 'codestore', 'sandbox', 'network', 'runtimes', 'policies', 'telemetry', 'control', 'agent', 'cluster', 'gateway', 'sim', 'web'],
};

const IO_MODULES = /^node:(fs|fs\/promises|net|http|https|child_process|dgram|dns|worker_threads|cluster|tls|sqlite)$/;
const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^'"]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;

function* files(dir: string): Generator<string> {
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) yield* files(p);
    else if (/\.(ts|mjs|js)$/.test(name)) yield p;
  }
}

const component = (file: string) => relative(root, file).split(sep)[0];
const problems: string[] = [];

for (const file of files(root)) {
  const from = component(file);
  const text = readFileSync(file, 'utf8');
  const rel = relative(resolve(root, '..'), file);
  if (!(from in allowed)) problems.push(`${rel}: src/${from} is not a known component; add it to scripts/check-layers.ts`);
  for (const m of text.matchAll(IMPORT)) {
    const spec = m[1] ?? m[2];
    if (from === 'policies' && IO_MODULES.test(spec)) problems.push(`${rel}: policies must not do I/O (imports ${spec})`);
    if (!spec.startsWith('.')) continue;
    const target = resolve(dirname(file), spec);
    if (!target.startsWith(root + sep)) continue;
    const to = component(target);
    if (to === from) continue;
    if (!(allowed[from] ?? []).includes(to)) problems.push(`${rel}: ${from} may not import ${to} (${spec})`);
    else if (to !== 'core' && relative(root, target) !== join(to, 'index.ts')) problems.push(`${rel}: import ${to} through ${to}/index.ts, not ${spec}`);
  }
  const clockFree = !rel.endsWith(join('core', 'clock.ts')) && !rel.includes(join('runtimes', 'node', 'bootstrap.mjs')) && !rel.endsWith('.test.ts');
  if (clockFree && /\bDate\.now\(\)|\bperformance\.now\(\)/.test(text)) problems.push(`${rel}: reads the time directly; take a Clock (src/core/clock.ts)`);
}

if (problems.length) {
  process.stderr.write(`layering: ${problems.length} problem(s)\n${problems.map((p) => `  ${p}`).join('\n')}\n`);
  process.exit(1);
}
process.stdout.write('layering: ok\n');
