// The S3-compatible origin (issue 15): the code phase of a cold start (fetch the package from the origin,
// unpack it into an empty node code cache on tmpfs) from s3rver on loopback against the data dir's blob
// store, for a 1 MB package and big-package (30 MB of dependencies). `bench/run.ts --origin-only`.
// Medians; the two origins alternate run by run, each run on a fresh empty cache.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { S3Client } from '@aws-sdk/client-s3';
import { generateBigPackage } from '../examples/big-package/generate.mjs';
import { BlobStore, CodeCache, S3Origin, defaultPackageLimits, s3ClientConfig, zipDirectory, type Origin } from '../src/codestore/index.ts';
import { startS3 } from '../test/s3.ts';
import { median } from './stats.ts';

export interface OriginRow { pkg: string; packageBytes: number; local: { fetchMs: number; unpackMs: number }; s3: { fetchMs: number; unpackMs: number }; ratio: number; runs: number }

export async function originBench(o: { runs: number; done: (s: string) => void }): Promise<OriginRow[]> {
  const s3 = await startS3('thaw-bench');
  const client = new S3Client(s3ClientConfig(s3.env));
  const work = await mkdtemp(join(tmpdir(), 'thaw-bench-origin-'));
  const rows: OriginRow[] = [];
  try {
    const local = new BlobStore(join(work, 'blobs'));
    const remote = new S3Origin({ bucket: s3.bucket, prefix: 'bench' }, client, s3.endpoint);
    const limits = { ...defaultPackageLimits, maxPackageBytes: 200 * 1048576, maxUnpackedBytes: 1024 * 1048576 };
    const oneMb = join(work, 'one-mb');
    mkdirSync(oneMb);
    writeFileSync(join(oneMb, 'index.mjs'), 'export const handler = async () => 1;\n');
    writeFileSync(join(oneMb, 'data.bin'), randomBytes(1048576));
    const big = join(work, 'big');
    generateBigPackage(big, 30);
    for (const [name, dir] of [['1 MB', oneMb], ['big-package', big]] as const) {
      const zip = await zipDirectory(dir);
      const { sha256 } = await local.put(zip);
      await remote.put(zip, sha256);
      const times: Record<'local' | 's3', { fetchMs: number[]; unpackMs: number[] }> = { local: { fetchMs: [], unpackMs: [] }, s3: { fetchMs: [], unpackMs: [] } };
      for (let i = 0; i < o.runs; i++) {
        for (const [side, origin] of [['local', local], ['s3', remote]] as [keyof typeof times, Origin][]) {
          const cacheDir = await mkdtemp('/dev/shm/thaw-bench-origin-');
          try {
            const got = await new CodeCache(cacheDir).ensure(sha256, origin, limits);
            times[side].fetchMs.push(got.fetchMs);
            times[side].unpackMs.push(got.unpackMs);
          } finally {
            await rm(cacheDir, { recursive: true, force: true });
          }
        }
      }
      const m = (s: keyof typeof times) => ({ fetchMs: median(times[s].fetchMs), unpackMs: median(times[s].unpackMs) });
      const row = { pkg: name, packageBytes: zip.length, local: m('local'), s3: m('s3'), ratio: 0, runs: o.runs };
      row.ratio = (row.s3.fetchMs + row.s3.unpackMs) / (row.local.fetchMs + row.local.unpackMs);
      rows.push(row);
      o.done(`origin: ${name} code phase s3 ${(row.s3.fetchMs + row.s3.unpackMs).toFixed(1)} ms vs local ${(row.local.fetchMs + row.local.unpackMs).toFixed(1)} ms`);
    }
  } finally {
    client.destroy();
    await s3.stop();
    await rm(work, { recursive: true, force: true });
  }
  return rows;
}

export function renderOrigin(rows: OriginRow[]): string[] {
  return [
    '', '### Origin: code phase of a cold start, package fetched from s3rver vs the data dir (empty code cache)', '',
    '| package | zip MB | local fetch (ms) | local unpack (ms) | s3 fetch (ms) | s3 unpack (ms) | s3 / local | runs |',
    '|---|---|---|---|---|---|---|---|',
    ...rows.map((r) => `| ${r.pkg} | ${(r.packageBytes / 1048576).toFixed(1)} | ${r.local.fetchMs.toFixed(1)} | ${r.local.unpackMs.toFixed(1)} | ${r.s3.fetchMs.toFixed(1)} | ${r.s3.unpackMs.toFixed(1)} | ${r.ratio.toFixed(2)}x | ${r.runs} |`),
    '',
  ];
}
