// Package images (issue 15): which image format, and what mounting one saves. `bench/run.ts --images-only`.
//   formats: squashfs (zstd, lz4, gzip; -noI) and EROFS (plain, lz4hc), for big-package (30 MB of
//     dependencies) and hello: build time, image size, mount time (kernel loop device through the mount
//     helper; squashfuse for squashfs), first read of the files init loads (on a fresh mount)
//   code phase of big-package on an empty node cache in tmpfs, same origin: the image fetched and mounted
//     against the package fetched and unpacked (target: at most 0.1x)
//   the same from a remote origin: a real S3 server behind a throttled link (test/throttle.ts, 20 MB/s,
//     20 ms latency per connection and per chunk)
// Medians; the two sides of each comparison alternate run by run.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { Mounter } from '../src/sandbox/index.ts';
import { S3Client } from '@aws-sdk/client-s3';
import { BlobStore, CodeCache, S3Origin, defaultPackageLimits, fuseImageMounts, ingestPackage, parseS3Url, s3ClientConfig, zipDirectory, type ImageMounts, type Origin } from '../src/codestore/index.ts';
import { startS3 } from '../test/s3.ts';
import { startThrottle } from '../test/throttle.ts';
import { median } from './stats.ts';

export interface FormatRow { pkg: string; format: string; mount: string; buildMs: number; bytes: number; mountMs: number; firstReadMs: number }
export interface CodePhase { unpack: { totalMs: number; fetchMs: number; unpackMs: number }; image: { totalMs: number; fetchMs: number; mountMs: number }; ratio: number; packageBytes: number; imageBytes: number; runs: number }
export interface ImagesResults { formats: FormatRow[]; codePhase: CodePhase | { skipped: string }; remote: (CodePhase & { link: string }) | { skipped: string } }

const now = () => performance.now();
const BIG_INIT = ['index.mjs', 'node_modules/dep-0/index.js', 'node_modules/dep-0/part-0.js'];

const VARIANTS: { format: string; fs: 'squashfs' | 'erofs'; build: (src: string, out: string) => string[] }[] = [
  { format: 'squashfs zstd-3 (chosen)', fs: 'squashfs', build: (s, o) => ['mksquashfs', s, o, '-comp', 'zstd', '-Xcompression-level', '3', '-noappend', '-quiet', '-no-progress', '-all-root', '-no-xattrs'] },
  { format: 'squashfs zstd-15', fs: 'squashfs', build: (s, o) => ['mksquashfs', s, o, '-comp', 'zstd', '-noappend', '-quiet', '-no-progress'] },
  { format: 'squashfs lz4', fs: 'squashfs', build: (s, o) => ['mksquashfs', s, o, '-comp', 'lz4', '-noappend', '-quiet', '-no-progress'] },
  { format: 'squashfs lz4 -noI', fs: 'squashfs', build: (s, o) => ['mksquashfs', s, o, '-comp', 'lz4', '-noI', '-noappend', '-quiet', '-no-progress'] },
  { format: 'squashfs gzip', fs: 'squashfs', build: (s, o) => ['mksquashfs', s, o, '-comp', 'gzip', '-noappend', '-quiet', '-no-progress'] },
  { format: 'erofs plain', fs: 'erofs', build: (s, o) => ['mkfs.erofs', '--quiet', o, s] },
  { format: 'erofs lz4hc', fs: 'erofs', build: (s, o) => ['mkfs.erofs', '--quiet', '-zlz4hc', o, s] },
];

function kernelMounts(): { mounts: ImageMounts & { fs: (t: 'squashfs' | 'erofs') => ImageMounts }; close(): void } | null {
  if (process.getuid?.() !== 0 || !existsSync('/dev/loop-control')) return null;
  const m = new Mounter();
  const of = (t: 'squashfs' | 'erofs'): ImageMounts => ({ kind: 'kernel', mount: (i, d) => m.loop(i, d, t), umount: (d) => m.umount(d) });
  return { mounts: { ...of('squashfs'), fs: of }, close: () => m.close() };
}

async function formatRows(name: string, src: string, initFiles: string[], work: string, runs: number, progress: (s: string) => void): Promise<FormatRow[]> {
  const rows: FormatRow[] = [];
  const kernel = kernelMounts();
  const fuse = fuseImageMounts();
  const mnt = join(work, 'mnt');
  mkdirSync(mnt, { recursive: true });
  try {
    for (const v of VARIANTS) {
      const img = join(work, `${name}.img`);
      const builds: number[] = [];
      for (let i = 0; i < Math.min(runs, 3); i++) {
        const [cmd, ...a] = v.build(src, img);
        const t0 = now();
        execFileSync(cmd, a, { stdio: 'ignore' });
        builds.push(now() - t0);
      }
      const bytes = statSync(img).size;
      const ways: [string, ImageMounts | null][] = [['kernel', kernel?.mounts.fs(v.fs) ?? null], ['squashfuse', v.fs === 'squashfs' ? fuse : null]];
      for (const [how, mounts] of ways) {
        if (!mounts) continue;
        const mountMs: number[] = [];
        const readMs: number[] = [];
        for (let i = 0; i < runs; i++) {
          progress(`images: ${name} ${v.format} ${how} ${i + 1}/${runs}`);
          const t0 = now();
          await mounts.mount(img, mnt);
          const t1 = now();
          for (const f of initFiles) readFileSync(join(mnt, f));
          const t2 = now();
          await mounts.umount(mnt);
          mountMs.push(t1 - t0);
          readMs.push(t2 - t1);
        }
        rows.push({ pkg: name, format: v.format, mount: how, buildMs: median(builds), bytes, mountMs: median(mountMs), firstReadMs: median(readMs) });
      }
    }
  } finally {
    kernel?.close();
  }
  return rows;
}

/** The code phase (fetch + unpack, or fetch + mount) of big-package on an empty cache, alternating. */
async function codePhase(bigZip: Buffer, work: string, runs: number, progress: (s: string) => void, origin?: Origin): Promise<CodePhase | { skipped: string }> {
  const kernel = kernelMounts();
  const mounts: ImageMounts | null = kernel?.mounts.fs('squashfs') ?? fuseImageMounts();
  if (!mounts) return { skipped: 'no way to mount images here (run as root with /dev/loop-control, or apt-get install squashfuse fuse3)' };
  const blobs = origin ?? new BlobStore(join(work, 'origin'));
  const limits = { ...defaultPackageLimits, maxUnpackedBytes: 512 * 1024 * 1024 };
  const ingested = await ingestPackage({ bytes: bigZip, handler: 'index.handler', blobs, cache: new CodeCache(join(work, 'deployer')), limits });
  if (!ingested.image) return { skipped: 'mksquashfs is missing (apt-get install squashfs-tools)' };
  const u = { totalMs: [] as number[], fetchMs: [] as number[], unpackMs: [] as number[] };
  const m = { totalMs: [] as number[], fetchMs: [] as number[], mountMs: [] as number[] };
  try {
    for (let i = 0; i < runs; i++) {
      progress(`images: code phase ${i + 1}/${runs}`);
      for (const side of i % 2 ? ['image', 'unpack'] : ['unpack', 'image']) {
        const cache = new CodeCache(await mkdtemp('/dev/shm/thaw-bench-images-'), { images: mounts });
        try {
          const t0 = now();
          const d = side === 'image' ? await cache.ensure(ingested.sha256, blobs, limits, ingested.image) : await cache.ensure(ingested.sha256, blobs, limits);
          const total = now() - t0;
          if (side === 'image') {
            if (!d.mounted) throw new Error(`the image was not mounted: ${cache.stats().images.lastError}`);
            m.totalMs.push(total); m.fetchMs.push(d.fetchMs); m.mountMs.push(d.unpackMs);
          } else {
            u.totalMs.push(total); u.fetchMs.push(d.fetchMs); u.unpackMs.push(d.unpackMs);
          }
          await readFile(join(d.dir, 'index.mjs'));
        } finally {
          await cache.close();
          await rm(cache.dir, { recursive: true, force: true });
        }
      }
    }
  } finally {
    kernel?.close();
  }
  const med = <T extends Record<string, number[]>>(o: T) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, median(v)])) as { [K in keyof T]: number };
  const unpack = med(u);
  const image = med(m);
  return { unpack, image, ratio: image.totalMs / unpack.totalMs, packageBytes: bigZip.length, imageBytes: ingested.image.size, runs };
}

export async function imagesBench(o: { runs: number; progress: (s: string) => void; done: (s: string) => void }): Promise<ImagesResults> {
  const work = await mkdtemp('/dev/shm/thaw-bench-images-work-');
  try {
    const big = join(work, 'big');
    generateBigPackage(big, 30);
    const small = join(import.meta.dirname, '..', 'examples', 'hello');
    const formats = [
      ...(await formatRows('big-package', big, BIG_INIT, work, o.runs, o.progress)),
      ...(await formatRows('hello', small, ['index.mjs'], work, o.runs, o.progress)),
    ];
    o.done('images: formats measured');
    const cp = await codePhase(await zipDirectory(big), work, o.runs, o.progress);
    o.done('images: code phase measured');
    const s3 = await startS3('thaw-bench-images');
    const link = await startThrottle({ port: Number(new URL(s3.endpoint).port) }, { bytesPerSecond: 20 * 1024 * 1024, latencyMs: 20 });
    let remote: ImagesResults['remote'];
    try {
      const origin = new S3Origin(parseS3Url(`s3://${s3.bucket}`), new S3Client(s3ClientConfig({ ...s3.env, AWS_ENDPOINT_URL_S3: link.endpoint })), link.endpoint);
      const r = await codePhase(await zipDirectory(big), join(work, 'remote'), o.runs, (t) => o.progress(`${t} (remote)`), origin);
      remote = 'skipped' in r ? r : { ...r, link: '20 MB/s, 20 ms' };
    } finally {
      await link.stop();
      await s3.stop();
    }
    o.done('images: remote code phase measured');
    return { formats, codePhase: cp, remote };
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

const ms = (x: number) => x.toFixed(1);
export function renderImages(r: ImagesResults): string[] {
  const lines = ['## Package images', '', '| package | format | mount | build ms | size | mount ms | first read of init files ms |', '|---|---|---|---|---|---|---|'];
  for (const f of r.formats) lines.push(`| ${f.pkg} | ${f.format} | ${f.mount} | ${ms(f.buildMs)} | ${(f.bytes / 1024).toFixed(0)} KB | ${ms(f.mountMs)} | ${ms(f.firstReadMs)} |`);
  lines.push('');
  for (const [what, c] of [['local origin', r.codePhase], ['S3 origin behind a throttled link', r.remote]] as const) {
    if ('skipped' in c) { lines.push(`Code phase, ${what}: not measured: ${c.skipped}`); continue; }
    lines.push(`Code phase of big-package on an empty cache, ${what}${'link' in c ? ` (${c.link})` : ''} (median of ${c.runs}): image fetched + mounted ${ms(c.image.totalMs)} ms (fetch ${ms(c.image.fetchMs)}, mount ${ms(c.image.mountMs)}; ${(c.imageBytes / 1048576).toFixed(2)} MB)`);
    lines.push(`vs package fetched + unpacked into tmpfs ${ms(c.unpack.totalMs)} ms (fetch ${ms(c.unpack.fetchMs)}, unpack ${ms(c.unpack.unpackMs)}; ${(c.packageBytes / 1048576).toFixed(2)} MB): **${c.ratio.toFixed(3)}x** (target <= 0.1x)`, '');
  }
  return [...lines, ''];
}
