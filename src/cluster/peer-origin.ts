// An agent's origin: packages it holds itself (a BlobStore in its data dir, which it also serves to its
// peers), else from a peer that holds it (L2: seed 001's zone-local cache), else from the control plane's
// origin. Bytes from elsewhere are checked against their hash before they are kept or used. Writes go to the
// local store only: an agent never publishes. Imports src/core, src/codestore and node built-ins.
import { request } from 'node:http';
import { Readable } from 'node:stream';
import { ThawError } from '../core/errors.ts';
import { sha256, type Origin, type PutResult } from '../codestore/index.ts';

export interface PeerSource {
  name: string;
  url: string;
  packages: ReadonlySet<string> | readonly string[];
}

export interface PeerOriginOptions {
  /** What this agent holds. */
  local: Origin;
  /** The peers now and what they hold (from the control plane's last heartbeat answer). */
  peers(): readonly PeerSource[];
  /** The token peers take (the control plane gives the same to every agent). */
  token(): string | null;
  /** The origin behind the peers: the control plane's /thaw/v1/cluster/code, or an S3 origin. */
  origin(hash: string): Promise<Buffer>;
  log?(line: string): void;
}

export class PeerOrigin implements Origin {
  readonly kind = 'peer';
  readonly #o: PeerOriginOptions;
  /** Where each package this agent fetched came from. */
  readonly fetches = { local: 0, peer: 0, origin: 0 };
  /** One fetch per package at a time: concurrent cold starts of one version share it. */
  readonly #pending = new Map<string, Promise<Buffer>>();

  constructor(o: PeerOriginOptions) { this.#o = o; }

  get location() { return `peers, then the control plane (local copy ${this.#o.local.location})`; }

  put(bytes: Buffer, known?: string): Promise<PutResult> { return this.#o.local.put(bytes, known); }

  async has(hash: string): Promise<boolean> { return (await this.#o.local.has(hash)) || this.#o.peers().some((p) => held(p, hash)); }

  async get(hash: string): Promise<Buffer> {
    if (await this.#o.local.has(hash)) {
      this.fetches.local++;
      return this.#o.local.get(hash);
    }
    let p = this.#pending.get(hash);
    if (!p) {
      p = this.#fetch(hash).finally(() => this.#pending.delete(hash));
      this.#pending.set(hash, p);
    }
    return p;
  }

  async #fetch(hash: string): Promise<Buffer> {
    const token = this.#o.token();
    for (const peer of this.#o.peers()) {
      if (!held(peer, hash) || !token) continue;
      try {
        const bytes = await download(`${peer.url}/agent/v1/blobs/${hash}`, token);
        if (!bytes) continue;
        if (sha256(bytes) !== hash) { this.#o.log?.(`peer ${peer.name} sent package ${hash.slice(0, 12)} with the wrong hash; ignored`); continue; }
        this.fetches.peer++;
        this.#o.log?.(`package ${hash.slice(0, 12)} (${bytes.length} bytes) fetched from peer ${peer.name}`);
        await this.#o.local.put(bytes, hash);
        return bytes;
      } catch (err) {
        this.#o.log?.(`peer ${peer.name} did not serve package ${hash.slice(0, 12)}: ${(err as Error).message}`);
      }
    }
    const bytes = await this.#o.origin(hash);
    if (sha256(bytes) !== hash) throw new ThawError('THAW_E_INTERNAL', `the origin sent package ${hash} with the wrong hash`);
    this.fetches.origin++;
    this.#o.log?.(`package ${hash.slice(0, 12)} (${bytes.length} bytes) fetched from the origin`);
    await this.#o.local.put(bytes, hash);
    return bytes;
  }

  async stream(hash: string): Promise<Readable> { return Readable.from([await this.get(hash)]); }

  async getRange(hash: string, start: number, end: number): Promise<Buffer> { return (await this.get(hash)).subarray(start, end); }

  delete(hash: string): Promise<void> { return this.#o.local.delete(hash); }

  list(): Promise<string[]> { return this.#o.local.list(); }
}

const held = (p: PeerSource, hash: string) => ('has' in p.packages ? p.packages.has(hash) : p.packages.includes(hash));

/**
 * A peer's package over node:http (fetch's web streams cost a large body more than the transfer itself);
 * null when the peer does not hold it.
 */
function download(url: string, token: string): Promise<Buffer | null> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { authorization: `Bearer ${token}` } }, (res) => {
      if (res.statusCode !== 200) { res.resume(); resolve(null); return; }
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve(Buffer.concat(chunks)));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}
