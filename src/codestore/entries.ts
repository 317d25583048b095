// Archive entries and the rules every package obeys, whatever its format: safe relative paths, links that
// stay inside, no duplicates, and limits on size, file count and expansion ratio. Imports src/core.
import { posix } from 'node:path';
import { ThawError } from '../core/errors.ts';

/** An entry as a format reader found it: the name is not yet trusted. */
export interface RawEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  compressedSize: number;
  read(): Buffer;
  linkTarget?: () => string;
}

export interface PackageLimits {
  /** The package as uploaded. */
  maxPackageBytes: number;
  /** All files once unpacked. */
  maxUnpackedBytes: number;
  maxFiles: number;
  /** Unpacked/packed bytes, per large entry and for the whole package. */
  maxRatio: number;
}

export const defaultPackageLimits: PackageLimits = Object.freeze({
  maxPackageBytes: 50 * 1024 * 1024,
  maxUnpackedBytes: 250 * 1024 * 1024,
  maxFiles: 20_000,
  maxRatio: 200,
});

/** Below this size the ratio rule does not apply: small text files compress very well legitimately. */
const RATIO_FLOOR_BYTES = 1024 * 1024;

export interface PackageEntry {
  /** Normalized relative POSIX path. */
  path: string;
  type: 'file' | 'dir' | 'symlink';
  mode: number;
  size: number;
  linkTarget?: string;
  read(): Buffer;
}

const MAX_PATH_BYTES = 1024;

/** A safe relative path for an entry name, or THAW_E_PACKAGE_PATH_UNSAFE. */
export function safePath(name: string): string {
  const unsafe = (why: string) => new ThawError('THAW_E_PACKAGE_PATH_UNSAFE', `entry ${JSON.stringify(name)} ${why}`);
  if (name.includes('\0')) throw unsafe('contains a NUL byte');
  if (name.length > 4096) throw unsafe('is longer than 4096 characters');
  if (name.includes('\\')) throw unsafe('contains a backslash (a Windows path separator)');
  if (name.startsWith('/')) throw unsafe('is an absolute path');
  if (/^[A-Za-z]:/.test(name)) throw unsafe('starts with a drive letter');
  const parts = name.split('/').filter((s) => s !== '' && s !== '.');
  if (parts.includes('..')) throw unsafe('climbs out with ".."');
  // Kept well inside what the file system takes once the node's cache directory is in front of it.
  if (parts.some((p) => Buffer.byteLength(p) > 255)) throw unsafe('has a path component longer than 255 bytes');
  const joined = parts.join('/');
  if (Buffer.byteLength(joined) > MAX_PATH_BYTES) throw unsafe(`is longer than ${MAX_PATH_BYTES} bytes; shorten the directory nesting`);
  return joined;
}

/** Checks every entry against the rules and limits; returns the normalized entries (root entry dropped). */
export function validateEntries(raw: RawEntry[], packedBytes: number, limits: PackageLimits): { entries: PackageEntry[]; unpackedBytes: number } {
  const entries: PackageEntry[] = [];
  const seen = new Map<string, PackageEntry>();
  let unpacked = 0;
  for (const r of raw) {
    const path = safePath(r.name);
    if (path === '') {
      if (r.type === 'dir') continue;
      throw new ThawError('THAW_E_PACKAGE_PATH_UNSAFE', `an entry has an empty name`);
    }
    const prior = seen.get(path);
    if (prior) {
      if (prior.type === 'dir' && r.type === 'dir') continue;
      throw new ThawError('THAW_E_PACKAGE_FORMAT', `${path} appears twice in the archive; re-create it so each path is there once`);
    }
    unpacked += r.size;
    if (unpacked > limits.maxUnpackedBytes) {
      throw new ThawError('THAW_E_PACKAGE_UNPACKED_TOO_LARGE', `the package unpacks to more than ${mbText(limits.maxUnpackedBytes)} (limit); ${path} crosses it`);
    }
    if (r.size > RATIO_FLOOR_BYTES && r.compressedSize > 0 && r.size / r.compressedSize > limits.maxRatio) {
      throw new ThawError('THAW_E_PACKAGE_BOMB', `${path} expands ${Math.round(r.size / r.compressedSize)}-fold (limit ${limits.maxRatio})`);
    }
    const e: PackageEntry = { path, type: r.type, mode: r.mode, size: r.size, read: r.read };
    if (r.type === 'symlink') e.linkTarget = r.linkTarget!();
    entries.push(e);
    seen.set(path, e);
    if (entries.length > limits.maxFiles) {
      throw new ThawError('THAW_E_PACKAGE_TOO_MANY_FILES', `the package has more than ${limits.maxFiles} entries (limit)`);
    }
  }
  if (unpacked > RATIO_FLOOR_BYTES && packedBytes > 0 && unpacked / packedBytes > limits.maxRatio) {
    throw new ThawError('THAW_E_PACKAGE_BOMB', `the package expands ${Math.round(unpacked / packedBytes)}-fold (limit ${limits.maxRatio})`);
  }
  checkLinks(entries, seen);
  return { entries, unpackedBytes: unpacked };
}

/** Longer link targets than this are not paths anyone packages (Linux PATH_MAX). */
const MAX_LINK_TARGET = 4096;
/** Links followed, in all, while resolving one target before giving up (Linux allows 40 too). */
const MAX_LINK_HOPS = 40;

/**
 * Links must resolve inside the package, and no entry may sit below a link (it would be written through
 * it) or below a file (extraction would fail half way).
 */
function checkLinks(entries: PackageEntry[], byPath: Map<string, PackageEntry>) {
  for (const e of entries) {
    const parts = e.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = byPath.get(parts.slice(0, i).join('/'));
      if (parent?.type === 'symlink') {
        throw new ThawError('THAW_E_PACKAGE_LINK_UNSAFE', `${e.path} lies below the symbolic link ${parent.path}; archive the real directory instead`);
      }
      if (parent?.type === 'file') throw new ThawError('THAW_E_PACKAGE_FORMAT', `${e.path} lies below ${parent.path}, which is a file`);
    }
    if (e.type === 'symlink') checkLinkTarget(e, byPath);
  }
}

function checkLinkTarget(e: PackageEntry, byPath: Map<string, PackageEntry>) {
  const target = e.linkTarget ?? '';
  const unsafe = (why: string) => new ThawError('THAW_E_PACKAGE_LINK_UNSAFE', `${e.path} links to ${JSON.stringify(target.slice(0, 200))}, ${why}`);
  if (target === '' || target.length > MAX_LINK_TARGET || target.includes('\0')) throw unsafe('which is not a usable path');
  if (target.startsWith('/') || /^[A-Za-z]:/.test(target)) throw unsafe('an absolute path; links must be relative and point inside the package');
  if (resolveLink(e.path.split('/').slice(0, -1), target, byPath, { hops: MAX_LINK_HOPS }) === null) throw unsafe('which leads outside the package (or round a loop of links)');
}

/**
 * Where a relative link target really lands, following links of the package on the way as the kernel
 * would: `a -> b/..` is only inside if b is not itself a link to somewhere deeper. null when it escapes.
 */
function resolveLink(from: string[], target: string, byPath: Map<string, PackageEntry>, budget: { hops: number }): string[] | null {
  let at = [...from];
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') {
      if (at.length === 0) return null;
      at.pop();
      continue;
    }
    at.push(part);
    const link = byPath.get(at.join('/'));
    if (link?.type !== 'symlink') continue;
    if (--budget.hops < 0) return null;
    const next = link.linkTarget ?? '';
    if (next.startsWith('/')) return null;
    const resolved = resolveLink(at.slice(0, -1), next, byPath, budget);
    if (resolved === null) return null;
    at = resolved;
  }
  return at;
}

export const mbText = (bytes: number) => `${Math.round((bytes / 1024 / 1024) * 10) / 10} MB`;
