// A cluster agent's PeerOrigin (its own copy, then peers, then the control plane's origin) against the Origin
// conformance suite, as every origin runs it: here with no peer and an origin that holds nothing, so what the
// suite stores and damages is the agent's own copy. Peer fetches are exercised with real agent processes in
// test/cluster.test.ts and test/hostile-cluster.test.ts.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BlobStore } from '../src/codestore/index.ts';
import { originConformance } from '../src/codestore/origin.case.ts';
import { PeerOrigin } from '../src/cluster/index.ts';
import { ThawError } from '../src/core/errors.ts';

originConformance('PeerOrigin (no peers)', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'thaw-peer-origin-'));
  const local = new BlobStore(dir);
  const origin = new PeerOrigin({
    local, peers: () => [], token: () => null,
    origin: async (hash) => { throw new ThawError('THAW_E_PACKAGE_NOT_FOUND', `the control plane holds no package ${hash}`); },
  });
  return {
    origin,
    damage: (hash) => writeFile(local.path(hash), 'not the bytes this name promises'),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});
