// Packages as a whole: sniff the format, validate every entry before anything touches the disk, extract
// without ever writing through a link, and build zips from directories for `thaw deploy`.
// Imports src/core and node built-ins.
import { constants } from 'node:fs';
import { lstat, mkdir, open, readFile, readdir, readlink, rm, stat, symlink } from 'node:fs/promises';
import { join, relative, sep } from 'node:path';
import { ThawError } from '../core/errors.ts';
import { mbText, validateEntries, type PackageEntry, type PackageLimits } from './entries.ts';
import { readTgz } from './tar.ts';
import { readZip, writeZip, type ZipInput } from './zip.ts';

export type PackageFormat = 'zip' | 'tgz';

export interface ReadPackage {
  format: PackageFormat;
  entries: PackageEntry[];
  unpackedBytes: number;
}

export function sniffFormat(bytes: Buffer): PackageFormat {
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === 0x04034b50) return 'zip';
  if (bytes.length >= 4 && bytes.readUInt32LE(0) === 0x06054b50) return 'zip';
  if (bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b) return 'tgz';
  throw new ThawError('THAW_E_PACKAGE_FORMAT', 'the package is neither a zip nor a gzip-compressed tar');
}

/** Parses and validates the whole package in memory, every entry's data included; nothing is written. */
export function readPackage(bytes: Buffer, limits: PackageLimits): ReadPackage {
  const pkg = scanPackage(bytes, limits);
  for (const e of pkg.entries) if (e.type === 'file') e.read();
  return pkg;
}

/**
 * Everything readPackage checks except decompressing each file's data (sizes, CRCs), which extraction
 * checks as it writes: one inflation per entry instead of two.
 */
export function scanPackage(bytes: Buffer, limits: PackageLimits): ReadPackage {
  if (bytes.length === 0) throw new ThawError('THAW_E_PACKAGE_MISSING', 'the package is empty (0 bytes)');
  checkPackageSize(bytes, limits);
  const format = sniffFormat(bytes);
  const raw = format === 'zip' ? readZip(bytes, limits.maxUnpackedBytes) : readTgz(bytes, limits.maxUnpackedBytes, limits.maxRatio);
  const { entries, unpackedBytes } = validateEntries(raw, bytes.length, limits);
  return { format, entries, unpackedBytes };
}

export function checkPackageSize(bytes: Buffer, limits: PackageLimits): void {
  if (bytes.length > limits.maxPackageBytes) {
    throw new ThawError('THAW_E_PACKAGE_TOO_LARGE', `the package is ${mbText(bytes.length)}, over the limit of ${mbText(limits.maxPackageBytes)}`);
  }
}

/**
 * Extracts into dir, which must not exist yet or be empty. Every entry's data is decompressed and checked
 * (size, CRC) as it is written; on any failure dir is removed entirely.
 */
export async function extractPackage(bytes: Buffer, dir: string, limits: PackageLimits): Promise<{ format: PackageFormat; files: number; unpackedBytes: number }> {
  const pkg = scanPackage(bytes, limits);
  await prepareDir(dir);
  try {
    const files = await writeEntries(pkg.entries, dir);
    return { format: pkg.format, files, unpackedBytes: pkg.unpackedBytes };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

/** Creates dir, or accepts it when it is an empty directory; anything else is not ours to overwrite. */
async function prepareDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o755 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    const st = await lstat(dir);
    if (!st.isDirectory() || (await readdir(dir)).length > 0) {
      throw new ThawError('THAW_E_INTERNAL', `cannot extract a package into ${dir}: it exists and is not an empty directory`);
    }
  }
}

async function writeEntries(entries: PackageEntry[], dir: string): Promise<number> {
  const made = new Set<string>();
  const ensureDir = async (rel: string) => {
    if (rel === '' || made.has(rel)) return;
    // Validation guarantees no entry lies below a link, so nothing here resolves through one.
    await mkdir(join(dir, rel), { recursive: true, mode: 0o755 });
    made.add(rel);
  };
  let files = 0;
  for (const e of entries) {
    if (e.type === 'dir') { await ensureDir(e.path); continue; }
    await ensureDir(e.path.split('/').slice(0, -1).join('/'));
    const target = join(dir, e.path);
    if (e.type === 'symlink') {
      await symlink(e.linkTarget!, target);
      continue;
    }
    // O_EXCL|O_NOFOLLOW: never write through something already there.
    const fh = await open(target, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, fileMode(e.mode));
    try { await fh.writeFile(e.read()); } finally { await fh.close(); }
    files++;
  }
  return files;
}

/** Files are at least readable by their owner's group and others (the instance may run as another user). */
const fileMode = (mode: number) => ((mode & 0o777) | 0o444) & 0o755;

/** A deflated zip of a directory tree, symlinks kept as links, modes kept; `skip` leaves paths out (relative, '/'-separated). */
export async function zipDirectory(root: string, options: { onProgress?: (doneBytes: number, totalBytes: number) => void; skip?: (rel: string) => boolean } = {}): Promise<Buffer> {
  const found: { rel: string; abs: string; kind: 'file' | 'dir' | 'symlink'; mode: number; size: number }[] = [];
  const walk = async (abs: string) => {
    for (const name of (await readdir(abs)).sort()) {
      const p = join(abs, name);
      const st = await lstat(p);
      const rel = relative(root, p).split(sep).join('/');
      if (options.skip?.(rel)) continue;
      if (st.isSymbolicLink()) found.push({ rel, abs: p, kind: 'symlink', mode: st.mode, size: 0 });
      else if (st.isDirectory()) { found.push({ rel: `${rel}/`, abs: p, kind: 'dir', mode: st.mode, size: 0 }); await walk(p); }
      else if (st.isFile()) found.push({ rel, abs: p, kind: 'file', mode: st.mode, size: st.size });
      else throw new ThawError('THAW_E_PACKAGE_ENTRY_UNSUPPORTED', `${p} is not a file, directory or symlink`);
    }
  };
  const st = await stat(root).catch(() => null);
  if (!st?.isDirectory()) throw new ThawError('THAW_E_PACKAGE_MISSING', `${root} is not a directory`);
  await walk(root);
  const total = found.reduce((n, f) => n + f.size, 0);
  let done = 0;
  options.onProgress?.(0, total);
  const inputs: ZipInput[] = [];
  for (const f of found) {
    if (f.kind === 'symlink') inputs.push({ path: f.rel, data: Buffer.from(await readlink(f.abs)), mode: 0o120777 });
    else if (f.kind === 'dir') inputs.push({ path: f.rel, data: Buffer.alloc(0), mode: 0o040000 | (f.mode & 0o777) });
    else {
      inputs.push({ path: f.rel, data: await readFile(f.abs), mode: 0o100000 | (f.mode & 0o777) });
      done += f.size;
      options.onProgress?.(done, total);
    }
  }
  if (total === 0) options.onProgress?.(0, 0);
  return writeZip(inputs);
}

/** A zip of in-memory files (tests, benchmarks, generated functions). */
export function zipEntries(entries: ZipInput[], options: { deflate?: boolean } = {}): Buffer {
  return writeZip(entries, options);
}
