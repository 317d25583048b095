// Generates a big package: a handler plus tens of MB of node_modules (many modules, most never loaded),
// the shape of a function that bundles a large SDK. `node generate.mjs [DIR] [MB]`; the bench uses it.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** @param {string} dir @param {number} [mb] */
export function generateBigPackage(dir, mb = 30) {
  const perFile = 64 * 1024;
  const files = Math.ceil((mb * 1024 * 1024) / perFile);
  const perPkg = 50;
  for (let f = 0; f < files; f++) {
    const pkg = join(dir, 'node_modules', `dep-${Math.floor(f / perPkg)}`);
    mkdirSync(pkg, { recursive: true });
    const body = [];
    let n = 0;
    let size = 0;
    while (size < perFile) {
      const line = `exports.fn${n} = function fn${n}(x) { return [x, ${f}, ${n}, ${JSON.stringify(`payload-${f}-${n}`.repeat(4))}]; };`;
      body.push(line);
      size += line.length + 1;
      n++;
    }
    writeFileSync(join(pkg, `part-${f % perPkg}.js`), body.join('\n'));
  }
  writeFileSync(join(dir, 'node_modules', 'dep-0', 'index.js'), "module.exports = require('./part-0.js');\n");
  writeFileSync(join(dir, 'index.mjs'), "import dep from './node_modules/dep-0/index.js';\nexport const handler = async () => ({ ok: dep.fn1(1).length });\n");
  return { files: files + 2 };
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const dir = process.argv[2] ?? join(import.meta.dirname, 'out');
  const r = generateBigPackage(dir, Number(process.argv[3] ?? 30));
  console.log(`wrote ${r.files} files to ${dir}`);
}
