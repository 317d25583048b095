// Building a V8 startup snapshot of a Node function with its handler module loaded and its init run
// (Huawei's process snapshot, AWS SnapStart): esbuild bundles the bootstrap and the user's code into one
// CommonJS script (what `--build-snapshot` takes), then `node --build-snapshot` runs it and writes the
// heap. A restored process starts in the bootstrap's main() with the handler already there. The build runs
// the user's init code, so it runs in a sandbox of the node's driver like any instance. A blob restores only
// in the Node binary that wrote it, so the build runs on the function's own runtime (its Node major).
// Imports src/core, src/sandbox types and node built-ins; esbuild is loaded on first use.
import { constants, createWriteStream } from 'node:fs';
import { mkdir, open, rm, stat, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { newInstanceId } from '../../core/ids.ts';
import type { SandboxDriver } from '../../sandbox/index.ts';

export interface SnapshotBuildSpec {
  /** The unpacked package and the handler in it. */
  codeDir: string;
  /** The function's layers merged (what /opt holds), bundled from as require() would find them; null: none. */
  optDir?: string | null;
  handlerFile: string;
  exportName: string;
  /** The environment init runs with: the runtime's variables plus the function's. */
  env: Record<string, string>;
  memoryMb: number;
  tmpMb: number;
  driver: SandboxDriver;
  /** Scratch directory for the bundle; removed afterwards. */
  workDir: string;
  outBlob: string;
  timeoutMs: number;
  bootstrapPath: string;
  heapFlag: string;
  /** The function's Node: the build runs on it and the bundle targets it; restores must use the same binary. */
  node: { binary: string; major: number };
  onProgress?(stage: 'bundling' | 'initializing' | 'writing', detail: string): void;
  signal?: AbortSignal;
}

/** Why a version cannot be snapshotted; shown to the user, and the version runs without a snapshot. */
export class SnapshotUnsupported extends Error {
  constructor(message: string) { super(message); this.name = 'SnapshotUnsupported'; }
}

export async function buildNodeSnapshot(spec: SnapshotBuildSpec): Promise<{ sizeBytes: number }> {
  await mkdir(spec.workDir, { recursive: true });
  try {
    spec.onProgress?.('bundling', 'bundling the handler and its dependencies into one script');
    const entry = join(spec.workDir, 'entry.cjs');
    const bundle = join(spec.workDir, 'snapshot.cjs');
    await writeFile(entry, entrySource(spec, spec.driver.insideView({ codeDir: spec.codeDir, compileCacheDir: null }).codeDir));
    const esbuild = await import('esbuild');
    try {
      await esbuild.build({
        entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: `node${spec.node.major}`, outfile: bundle,
        logLevel: 'silent', absWorkingDir: spec.codeDir, nodePaths: [join(spec.codeDir, 'node_modules'), ...(spec.optDir ? [join(spec.optDir, `nodejs/node${spec.node.major}/node_modules`), join(spec.optDir, 'nodejs/node_modules')] : [])],
      });
    } catch (err) {
      const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
      const first = errors[0];
      throw new SnapshotUnsupported(first
        ? `the code cannot be bundled into one script: ${first.text}${first.location ? ` (${first.location.file}:${first.location.line})` : ''}`
        : `bundling failed: ${(err as Error).message}`);
    }
    spec.onProgress?.('initializing', 'running the module\'s init code and writing the heap');
    // Written inside the work dir (all the sandbox may write), then copied out by the platform. The build
    // ran the function's code, which may have put a link there instead: only a regular file is read, never
    // followed, and the copy is the platform's own file.
    const inner = join(spec.workDir, 'out.blob');
    await runBuild(spec, bundle, inner);
    let src;
    try {
      src = await open(inner, constants.O_RDONLY | constants.O_NOFOLLOW);
    } catch (err) {
      throw new SnapshotUnsupported(`the build left no snapshot file (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    }
    try {
      if (!(await src.stat()).isFile()) throw new SnapshotUnsupported('the build left something other than a file where the snapshot goes');
      // Restored instances read it through a bind; the directory it lives in keeps everyone else out.
      await pipeline(src.createReadStream({ autoClose: false }), createWriteStream(spec.outBlob, { mode: 0o644, flags: 'wx' }));
    } finally {
      await src.close();
    }
    spec.onProgress?.('writing', 'snapshot written');
    return { sizeBytes: (await stat(spec.outBlob)).size };
  } finally {
    await rm(spec.workDir, { recursive: true, force: true });
  }
}

/** The snapshot's entry: load the runtime and the handler (running init), run the before-snapshot hooks. */
function entrySource(spec: SnapshotBuildSpec, codeDirInside: string): string {
  const q = JSON.stringify;
  return `'use strict';
process.chdir(${q(codeDirInside)});
const v8 = require('node:v8');
const runtime = require(${q(spec.bootstrapPath)});
const mod = require(${q(spec.handlerFile)});
const handler = mod[${q(spec.exportName)}] ?? mod.default?.[${q(spec.exportName)}];
if (typeof handler !== 'function') throw new Error(${q(`the module does not export a function named ${spec.exportName}`)});
runtime.checkHandler(handler);
runtime.runBeforeSnapshot().then(() => {
  v8.startupSnapshot.setDeserializeMainFunction(() => runtime.main({ handler }));
}, (err) => { console.error('before-snapshot hook failed:', err); process.exit(3); });
`;
}

/** Headroom over the function's memory for writing the heap out (serialization copies it). */
const BUILD_HEADROOM_MB = 512;

async function runBuild(spec: SnapshotBuildSpec, bundle: string, outBlob: string): Promise<void> {
  const sandbox = await spec.driver.create({
    id: `snap-${newInstanceId()}`,
    command: spec.node.binary,
    args: [spec.heapFlag, '--disable-warning=ExperimentalWarning', '--snapshot-blob', outBlob, '--build-snapshot', bundle],
    env: spec.env,
    cwd: spec.workDir,
    memoryBytes: (spec.memoryMb + BUILD_HEADROOM_MB) * 1024 * 1024,
    tmpBytes: spec.tmpMb * 1024 * 1024,
    readPaths: [spec.node.binary],
    writePaths: [spec.workDir],
    code: { codeDir: spec.codeDir, compileCacheDir: null, optDir: spec.optDir ?? null },
    // A snapshot cannot hold an IPC channel's handles.
    channel: false,
  }, spec.signal);
  let output = '';
  const keep = (d: Buffer) => { output = (output + d.toString('utf8')).slice(-4000); };
  sandbox.stdout.on('data', keep);
  sandbox.stderr.on('data', keep);
  let timedOut = false;
  const timer = setTimeout(() => { timedOut = true; sandbox.kill('snapshot build timed out'); }, spec.timeoutMs);
  const abort = () => sandbox.kill('snapshot build cancelled');
  spec.signal?.addEventListener('abort', abort, { once: true });
  const { code, signal, oomKilled } = await sandbox.exited;
  clearTimeout(timer);
  spec.signal?.removeEventListener('abort', abort);
  if (code === 0) return;
  if (timedOut) throw new SnapshotUnsupported(`init did not finish within ${Math.round(spec.timeoutMs / 1000)} s (a timer or open handle keeps the event loop alive?)`);
  if (spec.signal?.aborted) throw new SnapshotUnsupported('the build was cancelled');
  if (oomKilled) throw new SnapshotUnsupported(`writing the snapshot needed more than ${spec.memoryMb + BUILD_HEADROOM_MB} MB`);
  const why = output.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ')).slice(-3).join(' | ');
  throw new SnapshotUnsupported(`node --build-snapshot failed (${signal ?? `exit ${code}`}): ${why || 'no output'}`);
}
