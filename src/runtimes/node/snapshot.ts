// Building a V8 startup snapshot of a Node function with its handler module loaded and its init run
// (Huawei's process snapshot, AWS SnapStart): esbuild bundles the bootstrap and the user's code into one
// CommonJS script (what `--build-snapshot` takes), then `node --build-snapshot` runs it and writes the
// heap. A restored process starts in the bootstrap's main() with the handler already there.
// Imports src/core and node built-ins; esbuild is loaded on first use.
import { spawn } from 'node:child_process';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ThawError } from '../../core/errors.ts';

export interface SnapshotBuildSpec {
  /** The unpacked package and the handler in it. */
  codeDir: string;
  handlerFile: string;
  exportName: string;
  /** The environment init runs with: the runtime's variables plus the function's. */
  env: Record<string, string>;
  memoryMb: number;
  /** Scratch directory for the bundle; removed afterwards. */
  workDir: string;
  outBlob: string;
  timeoutMs: number;
  bootstrapPath: string;
  heapFlag: string;
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
    await writeFile(entry, entrySource(spec));
    const esbuild = await import('esbuild');
    try {
      await esbuild.build({
        entryPoints: [entry], bundle: true, platform: 'node', format: 'cjs', target: 'node24', outfile: bundle,
        logLevel: 'silent', absWorkingDir: spec.codeDir, nodePaths: [join(spec.codeDir, 'node_modules')],
      });
    } catch (err) {
      const errors = (err as { errors?: { text: string; location?: { file: string; line: number } | null }[] }).errors ?? [];
      const first = errors[0];
      throw new SnapshotUnsupported(first
        ? `the code cannot be bundled into one script: ${first.text}${first.location ? ` (${first.location.file}:${first.location.line})` : ''}`
        : `bundling failed: ${(err as Error).message}`);
    }
    spec.onProgress?.('initializing', 'running the module\'s init code and writing the heap');
    await runBuild(spec, bundle);
    spec.onProgress?.('writing', 'snapshot written');
    return { sizeBytes: (await stat(spec.outBlob)).size };
  } finally {
    await rm(spec.workDir, { recursive: true, force: true });
  }
}

/** The snapshot's entry: load the runtime and the handler (running init), run the before-snapshot hooks. */
function entrySource(spec: SnapshotBuildSpec): string {
  const q = JSON.stringify;
  return `'use strict';
const v8 = require('node:v8');
const runtime = require(${q(spec.bootstrapPath)});
const mod = require(${q(spec.handlerFile)});
const handler = mod[${q(spec.exportName)}] ?? mod.default?.[${q(spec.exportName)}];
if (typeof handler !== 'function') throw new Error(${q(`the module does not export a function named ${spec.exportName}`)});
runtime.runBeforeSnapshot().then(() => {
  v8.startupSnapshot.setDeserializeMainFunction(() => runtime.main({ handler }));
}, (err) => { console.error('before-snapshot hook failed:', err); process.exit(3); });
`;
}

function runBuild(spec: SnapshotBuildSpec, bundle: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [spec.heapFlag, '--disable-warning=ExperimentalWarning', '--snapshot-blob', spec.outBlob, '--build-snapshot', bundle], {
      cwd: spec.codeDir, env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true,
    });
    let output = '';
    const keep = (d: Buffer) => { output = (output + d.toString('utf8')).slice(-4000); };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    const kill = () => { try { process.kill(-child.pid!, 'SIGKILL'); } catch { /* gone */ } };
    const timer = setTimeout(() => { timedOut = true; kill(); }, spec.timeoutMs);
    let timedOut = false;
    spec.signal?.addEventListener('abort', kill, { once: true });
    child.once('error', (err) => { clearTimeout(timer); reject(new ThawError('THAW_E_INTERNAL', `could not run node --build-snapshot: ${err.message}`)); });
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      spec.signal?.removeEventListener('abort', kill);
      if (code === 0) return resolve();
      if (timedOut) return reject(new SnapshotUnsupported(`init did not finish within ${Math.round(spec.timeoutMs / 1000)} s (a timer or open handle keeps the event loop alive?)`));
      if (spec.signal?.aborted) return reject(new SnapshotUnsupported('the build was cancelled'));
      const why = output.split('\n').map((l) => l.trim()).filter((l) => l && !l.startsWith('at ')).slice(-3).join(' | ');
      reject(new SnapshotUnsupported(`node --build-snapshot failed (${signal ?? `exit ${code}`}): ${why || 'no output'}`));
    });
  });
}
