// The Origin conformance suite: what every origin store (the data dir's BlobStore, the S3-compatible
// S3Origin, a cluster agent's PeerOrigin) must do, as node:test cases an implementation's test file
// registers with a fixture. `damage(hash)` overwrites the stored object with other bytes by the
// implementation's own means (a file write, a raw PUT), so the suite can prove a damaged object is told
// apart from good code.
// Imports node built-ins, src/core and this component's types.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { isThawError } from '../core/errors.ts';
import { sha256 } from './blobs.ts';
import type { Origin } from './origin.ts';

export interface OriginFixture {
  origin: Origin;
  /** Replaces the stored bytes of `hash` with different ones. */
  damage(hash: string): Promise<void>;
  close(): Promise<void>;
}

export function originConformance(name: string, make: () => Promise<OriginFixture>): void {
  describe(`${name} conforms to Origin`, () => {
    let f: OriginFixture;
    before(async () => { f = await make(); });
    after(async () => { await f?.close(); });

    test('put() stores bytes under their SHA-256; get() returns them and has() sees them', async () => {
      const bytes = Buffer.from(`package ${randomBytes(8).toString('hex')}`);
      const put = await f.origin.put(bytes);
      assert.deepEqual(put, { sha256: sha256(bytes), size: bytes.length, created: true });
      assert.equal(await f.origin.has(put.sha256), true);
      assert.deepEqual(await f.origin.get(put.sha256), bytes);
    });

    test('put() of bytes already there reports created: false and keeps one object', async () => {
      const bytes = randomBytes(1000);
      assert.equal((await f.origin.put(bytes)).created, true);
      assert.equal((await f.origin.put(bytes, sha256(bytes))).created, false);
      assert.equal((await f.origin.list()).filter((h) => h === sha256(bytes)).length, 1);
    });

    test('concurrent puts of the same bytes leave one good object, and at least one reports created', async () => {
      const bytes = randomBytes(256 * 1024);
      const results = await Promise.all(Array.from({ length: 6 }, () => f.origin.put(bytes)));
      assert.ok(results.some((r) => r.created));
      assert.deepEqual(await f.origin.get(sha256(bytes)), bytes);
    });

    test('has() of an absent or malformed hash is false, never an error', async () => {
      assert.equal(await f.origin.has(sha256(randomBytes(8))), false);
      assert.equal(await f.origin.has('not-a-hash'), false);
    });

    test('get() of an absent object is a ThawError, not empty bytes', async () => {
      await assert.rejects(f.origin.get(sha256(randomBytes(8))), (e) => isThawError(e));
    });

    test('a damaged object is detected by get(): THAW_E_INTERNAL, never wrong code', async () => {
      const bytes = randomBytes(4096);
      const { sha256: hash } = await f.origin.put(bytes);
      await f.damage(hash);
      await assert.rejects(f.origin.get(hash), (e) => isThawError(e) && e.code === 'THAW_E_INTERNAL' && /damaged/.test(e.message));
    });

    test('getRange() reads [start, end) of the object; past the end it reads what there is', async () => {
      const bytes = Buffer.from('0123456789abcdef');
      const { sha256: hash } = await f.origin.put(bytes);
      assert.equal((await f.origin.getRange(hash, 3, 7)).toString(), '3456');
      assert.equal((await f.origin.getRange(hash, 0, 1)).toString(), '0');
      assert.equal((await f.origin.getRange(hash, 12, 100)).toString(), 'cdef');
      assert.equal((await f.origin.getRange(hash, 5, 5)).length, 0);
    });

    test('stream() yields the whole object; of an absent one it rejects', async () => {
      const bytes = Buffer.from(`streamed ${randomBytes(8).toString('hex')}`);
      const { sha256: hash } = await f.origin.put(bytes);
      assert.equal(await text(await f.origin.stream(hash)), bytes.toString());
      await assert.rejects(f.origin.stream(sha256(randomBytes(8))), (e) => isThawError(e));
    });

    test('delete() removes the object; deleting an absent one is no error', async () => {
      const bytes = randomBytes(64);
      const { sha256: hash } = await f.origin.put(bytes);
      await f.origin.delete(hash);
      assert.equal(await f.origin.has(hash), false);
      assert.equal((await f.origin.list()).includes(hash), false);
      await f.origin.delete(hash);
      await f.origin.delete(sha256(randomBytes(8)));
    });

    test('list() names every stored object by its hash, sorted', async () => {
      const hashes = await Promise.all([randomBytes(10), randomBytes(20), randomBytes(30)].map(async (b) => (await f.origin.put(b)).sha256));
      const all = await f.origin.list();
      for (const h of hashes) assert.ok(all.includes(h), h);
      assert.deepEqual(all, [...all].sort());
      assert.ok(all.every((h) => /^[0-9a-f]{64}$/.test(h)));
    });

    test('kind and location name the origin', () => {
      assert.match(f.origin.kind, /^[a-z0-9-]+$/);
      assert.ok(f.origin.location.length > 0);
    });
  });
}
