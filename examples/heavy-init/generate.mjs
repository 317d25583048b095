// Writes lib/: 80 modules of framework-style code (classes, validators, route handlers), the part of a
// heavy init that is compiling and linking many modules. Run once; the output is committed.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const dir = join(import.meta.dirname, 'lib');
mkdirSync(dir, { recursive: true });
const N = 80;
for (let m = 0; m < N; m++) {
  const lines = [`// generated module ${m}`];
  if (m > 0) lines.push(`import { Base${m - 1} } from './m${String(m - 1).padStart(3, '0')}.mjs';`);
  lines.push(`export class Base${m} ${m > 0 ? `extends Base${m - 1} ` : ''}{`);
  for (let f = 0; f < 25; f++) {
    lines.push(`  field${f}(input) { const v = input?.f${f} ?? ${f}; if (typeof v !== 'number') throw new TypeError('f${f}'); return v * ${m + 1} + ${f}; }`);
  }
  lines.push('}');
  for (let r = 0; r < 15; r++) {
    lines.push(`export function route${r}(req) { const parts = String(req.path ?? '').split('/').filter(Boolean); return { module: ${m}, route: ${r}, depth: parts.length, key: parts.join(':') + '#${m}.${r}' }; }`);
  }
  lines.push(`export const routes = [${Array.from({ length: 15 }, (_, r) => `['/m${m}/r${r}', route${r}]`).join(', ')}];`);
  writeFileSync(join(dir, `m${String(m).padStart(3, '0')}.mjs`), lines.join('\n') + '\n');
}
writeFileSync(join(dir, 'index.mjs'), Array.from({ length: N }, (_, m) => `export * as m${m} from './m${String(m).padStart(3, '0')}.mjs';`).join('\n') + '\n');
console.log(`wrote ${N} modules to ${dir}`);
