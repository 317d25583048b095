#!/bin/sh
':' //; self=$0; [ -L "$self" ] && self=$(readlink -f "$self"); node="${self%/bin/*}/node_modules/node/bin/node"; [ -x "$node" ] || node=node; exec "$node" "$self" "$@"
// The `thaw` command. Thaw needs Node 24 (type stripping, node:sqlite, zstd). The line above is for the
// shell (JavaScript sees a string and a comment): run as a program, this file execs straight into the Node 24
// pinned in this package's node_modules, one process instead of an old Node starting a new one. When an
// older Node is given the file directly (`node bin/thaw.js`), it re-runs itself with the pinned Node.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import module from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const major = Number(process.versions.node.split('.')[0]);
if (major < 24) {
  const root = dirname(dirname(fileURLToPath(import.meta.url)));
  const pinned = join(root, 'node_modules', 'node', 'bin', 'node');
  if (!existsSync(pinned)) {
    process.stderr.write(`thaw: Node ${process.versions.node} is too old and ${pinned} is missing; run \`npm install\` first.\n`);
    process.exit(1);
  }
  const child = spawn(pinned, [fileURLToPath(import.meta.url), ...process.argv.slice(2)], { stdio: 'inherit' });
  for (const sig of /** @type {const} */ (['SIGINT', 'SIGTERM', 'SIGHUP'])) process.on(sig, () => child.kill(sig));
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 128 : 1)));
} else {
  // Node's compile cache keeps each source's stripped types and V8 code between runs (checked against the
  // source, so an edit is never served stale): without it, every `thaw` command spends most of its start
  // stripping types from the same files again.
  module.enableCompileCache();
  const { main } = await import('../src/cli/index.ts');
  process.exitCode = await main(process.argv.slice(2));
}
