// Snapshots on a cluster agent. A version's snapshot is built once in the cluster, by the agent the control
// plane chose, into the cluster's origin (the control plane's, reached through its cluster routes, or the
// S3 bucket), and its record goes to the control plane's store; the other agents fetch and decrypt it. What
// the agent's snapshot manager needs to know comes from the control plane (AgentSnapshotBook), never from
// the agent's own store, which holds no functions. Imports src/core, src/codestore and node built-ins.
import { Readable } from 'node:stream';
import { ThawError } from '../core/errors.ts';
import type { FunctionVersion, SnapshotRecord } from '../core/types.ts';
import { sha256, type Origin, type PutResult } from '../codestore/index.ts';

/** How an agent reaches the cluster's encrypted snapshots: by hash, null when absent. */
export interface SnapshotTransport {
  readonly location: string;
  put(hash: string, bytes: Buffer): Promise<void>;
  get(hash: string): Promise<Buffer | null>;
}

/**
 * The cluster's snapshot origin as an agent sees it. Deleting is the control plane's (it deletes a
 * function's snapshots with the function, once for the cluster): an agent's delete leaves the shared object.
 */
export class SharedSnapshotOrigin implements Origin {
  readonly kind = 'cluster';
  readonly #t: SnapshotTransport;

  constructor(t: SnapshotTransport) { this.#t = t; }

  get location() { return this.#t.location; }

  async put(bytes: Buffer, known?: string): Promise<PutResult> {
    const hash = known ?? sha256(bytes);
    await this.#t.put(hash, bytes);
    return { sha256: hash, size: bytes.length, created: true };
  }

  async has(hash: string): Promise<boolean> { return (await this.#t.get(hash)) !== null; }

  async get(hash: string): Promise<Buffer> {
    const bytes = await this.#t.get(hash);
    if (!bytes) throw new ThawError('THAW_E_PACKAGE_NOT_FOUND', `the cluster's origin (${this.location}) holds no snapshot ${hash}`);
    if (sha256(bytes) !== hash) throw new ThawError('THAW_E_INTERNAL', `the cluster's origin sent snapshot ${hash} with the wrong hash`);
    return bytes;
  }

  async stream(hash: string): Promise<Readable> { return Readable.from([await this.get(hash)]); }

  async getRange(hash: string, start: number, end: number): Promise<Buffer> { return (await this.get(hash)).subarray(start, end); }

  async delete(): Promise<void> {}

  async list(): Promise<string[]> { return []; }
}

const key = (fn: string, version: string) => `${fn}@${version}`;

/**
 * The snapshot manager's facts on an agent: the versions the control plane told it to build or hold, and
 * the records of those, each change reported to the control plane's store. A report the control plane
 * refuses because the version is gone makes the version gone here too, so a build's result is discarded.
 */
export class AgentSnapshotBook {
  readonly #versions = new Map<string, FunctionVersion>();
  readonly #records = new Map<string, SnapshotRecord>();
  readonly #report: (rec: SnapshotRecord) => Promise<void>;

  constructor(report: (rec: SnapshotRecord) => Promise<void>) { this.#report = report; }

  know(v: FunctionVersion): void { this.#versions.set(key(v.functionName, v.version), v); }

  /** A function's (or one version's) versions are gone; their records are dropped by the manager's remove. */
  forget(functionName: string, version: string | null): void {
    for (const [k, v] of this.#versions) if (v.functionName === functionName && (version === null || v.version === version)) this.#versions.delete(k);
  }

  /** Records as the manager holds them here (adopted snapshots get one, so remove finds their copies). */
  hold(rec: SnapshotRecord): void { this.#records.set(key(rec.functionName, rec.version), rec); }

  async getVersion(functionName: string, version: string): Promise<FunctionVersion | null> { return this.#versions.get(key(functionName, version)) ?? null; }

  async putSnapshot(rec: SnapshotRecord): Promise<void> {
    this.#records.set(key(rec.functionName, rec.version), rec);
    try {
      await this.#report(rec);
    } catch (err) {
      if ((err as ThawError).status === 404) this.forget(rec.functionName, rec.version);
      throw err;
    }
  }

  async getSnapshot(functionName: string, version: string): Promise<SnapshotRecord | null> { return this.#records.get(key(functionName, version)) ?? null; }

  async listSnapshots(functionName?: string): Promise<SnapshotRecord[]> {
    return [...this.#records.values()].filter((r) => functionName === undefined || r.functionName === functionName);
  }

  async deleteSnapshot(functionName: string, version: string): Promise<void> { this.#records.delete(key(functionName, version)); }

  async isSnapshotInUse(hash: string): Promise<boolean> { return [...this.#records.values()].some((r) => r.sha256 === hash); }
}
