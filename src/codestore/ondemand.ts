// On-demand code loading from a remote origin: a version's first start records the files its init read
// (the bootstrap reports them with initDone); they are packed into a small zip, the init bundle, kept in the
// origin beside the package. A later cold start on an empty cache fetches that bundle, runs on it at once
// (a partial tree), and fills the tree with the rest of the package in the background (cache.ts). The
// runtime waits for a file it does not find while the fill marker is in the tree, so nothing the function
// reads later fails. Imports node built-ins and the other codestore modules (hence src/core).
import { lstat, mkdir, readdir, readFile, realpath, rename, rm } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import type { ZipInput } from './zip.ts';
import { zipEntries } from './package.ts';

/**
 * The file that is in a partial tree until its fill completes; the runtime waits while it is there. Must
 * equal FILLING_MARKER in src/runtimes/node/bootstrap.cjs.
 */
export const FILLING_MARKER = '.thaw-filling';

/** An init bundle is for the few files init reads: a recording bigger than this is not kept (the full fetch is as good). */
export const MAX_BUNDLE_BYTES = 64 * 1024 * 1024;

export interface InitBundle {
  zip: Buffer;
  /** Relative, '/'-separated, sorted. */
  files: string[];
  bytes: number;
}

/**
 * Packs the files init read from `tree` (relative paths from the runtime) into a zip. Only regular files
 * reached without a symlink go in (the runtime's report is the function's to forge: a path out of the tree
 * or through a link is dropped). Every package.json on the way to one of them goes in too: the module
 * resolver reads them (a package's `type`, `exports`) without the fs calls the recording sees.
 * Null when nothing usable was recorded or the bundle would not be small.
 */
export async function buildInitBundle(tree: string, recorded: readonly string[]): Promise<InitBundle | null> {
  const root = await realpath(tree);
  const wanted = new Set<string>();
  for (const rel of recorded) {
    if (rel.startsWith('/') || rel.split('/').some((part) => part === '..' || part === '' || part === '.')) continue;
    wanted.add(rel);
    const parts = rel.split('/');
    for (let i = 0; i < parts.length; i++) wanted.add([...parts.slice(0, i), 'package.json'].join('/'));
  }
  const inputs: ZipInput[] = [];
  const files: string[] = [];
  let bytes = 0;
  for (const rel of [...wanted].sort()) {
    const abs = join(root, ...rel.split('/'));
    const st = await lstat(abs).catch(() => null);
    if (!st?.isFile() || (await realpath(abs).catch(() => '')) !== abs) continue;
    bytes += st.size;
    if (bytes > MAX_BUNDLE_BYTES) return null;
    inputs.push({ path: rel, data: await readFile(abs), mode: 0o100000 | (st.mode & 0o777) });
    files.push(rel);
  }
  if (files.length === 0) return null;
  return { zip: zipEntries(inputs, { deflate: true }), files, bytes };
}

/**
 * Moves every file of `from` that `to` lacks into `to`, each by one rename (so a file the runtime finds is
 * whole); directories are made first. Files `to` has already (the bundle's) stay. Both on one filesystem.
 */
export async function fillFrom(from: string, to: string): Promise<number> {
  let moved = 0;
  const walk = async (dir: string): Promise<void> => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const src = join(dir, entry.name);
      const dst = join(to, relative(from, src));
      if (entry.isDirectory()) {
        await mkdir(dst, { recursive: true, mode: 0o755 });
        await walk(src);
        continue;
      }
      if (await lstat(dst).then(() => true, () => false)) continue;
      await mkdir(dirname(dst), { recursive: true, mode: 0o755 });
      await rename(src, dst);
      moved++;
    }
  };
  await walk(from);
  await rm(from, { recursive: true, force: true });
  return moved;
}
