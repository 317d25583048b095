// Package images: a package's compiled tree as one read-only squashfs file, built at deploy and stored in
// the origin beside the package, so a node mounts it (once per package; every instance binds that one mount)
// instead of writing thousands of files. Squashfs rather than EROFS: one image serves the kernel (a loop
// device, as root) and squashfuse (without root), and zstd makes it about 4x smaller than EROFS's lz4hc
// for a fetch from a remote origin; mount and first reads take a few ms either way (docs/architecture.md). Imports node built-ins and src/core.
import { execFile } from 'node:child_process';
import { accessSync, constants, readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import type { CodeImage } from '../core/types.ts';
import { compilerTag } from './typescript.ts';

const run = promisify(execFile);
const MKSQUASHFS = '/usr/bin/mksquashfs';

/**
 * zstd level 3: for big-package (32 MB, 482 files) 1.4 MB built in 0.3-0.5 s, where the default level 15
 * was no smaller and took 35x as long. Owners and times are fixed so one tree always gives one image.
 */
const MKSQUASHFS_ARGS = ['-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-no-progress', '-quiet', '-all-root', '-no-xattrs', '-mkfs-time', '0', '-all-time', '0'];

/** How this node mounts images: `kernel` through a loop device (root), `fuse` through squashfuse. */
export interface ImageMounts {
  readonly kind: 'kernel' | 'fuse';
  /** Mounts the image file read-only, nosuid and nodev on dir (an empty directory). */
  mount(image: string, dir: string): Promise<void>;
  /** Detaches it (lazily: a process still reading keeps it until it is done). */
  umount(dir: string): Promise<void>;
}

const executable = (p: string) => { try { accessSync(p, constants.X_OK); return true; } catch { return false; } };

/** Whether this node can build images (mksquashfs from squashfs-tools). */
export const canBuildImages = (mksquashfs = MKSQUASHFS) => executable(mksquashfs);

/** Builds the image of a tree into `out` and returns its bytes (read back: it is what the origin stores). */
export async function buildImage(tree: string, out: string, mksquashfs = MKSQUASHFS): Promise<Buffer> {
  await run(mksquashfs, [tree, out, ...MKSQUASHFS_ARGS], { env: { PATH: '/usr/bin:/bin', LANG: 'C' } });
  return readFileSync(out);
}

/** The image record a version keeps, for bytes just stored under their hash. */
export const imageRecord = (sha256: string, size: number): CodeImage => ({ sha256, size, format: 'squashfs', compiler: compilerTag() });

/** Whether a node may mount this image: one of its own compiler's trees (otherwise the package is unpacked and compiled here). */
export const imageUsable = (image: CodeImage | undefined): image is CodeImage => image !== undefined && image.format === 'squashfs' && image.compiler === compilerTag();

/** squashfuse without root: FUSE mounts of an unprivileged user are nosuid and nodev already. Null where it is missing. */
export function fuseImageMounts(): ImageMounts | null {
  const fusermount = ['/usr/bin/fusermount3', '/usr/bin/fusermount', '/bin/fusermount'].find(executable);
  if (!executable('/usr/bin/squashfuse') || !fusermount) return null;
  try { accessSync('/dev/fuse', constants.R_OK | constants.W_OK); } catch { return null; }
  const env = { PATH: '/usr/bin:/bin', LANG: 'C' };
  return {
    kind: 'fuse',
    // squashfuse returns once the mount is there (its daemon forks after mounting).
    mount: async (image, dir) => { await run('/usr/bin/squashfuse', ['-o', 'ro', image, dir], { env }); },
    umount: async (dir) => { await run(fusermount, ['-u', '-z', dir], { env }); },
  };
}

