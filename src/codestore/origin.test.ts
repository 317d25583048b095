// The data dir's BlobStore against the Origin conformance suite (S3Origin runs it in test/s3-origin.test.ts,
// against a real S3-protocol server), once as the package store and once as the snapshot store (.snap names).
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobStore } from './blobs.ts';
import { originConformance } from './origin.case.ts';

for (const suffix of ['', '.snap']) {
  originConformance(`BlobStore${suffix ? ` (names ending ${suffix})` : ''}`, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'thaw-origin-'));
    const origin = new BlobStore(dir, suffix);
    return {
      origin,
      damage: (hash) => writeFile(origin.path(hash), 'not the bytes this name promises'),
      close: () => rm(dir, { recursive: true, force: true }),
    };
  });
}
