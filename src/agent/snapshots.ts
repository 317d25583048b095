// Snapshots of published versions: built one at a time in the background (with a visible status and a time
// limit), encrypted and stored in their own origin (the data dir's snapshots/ or the bucket's snapshots/
// prefix: they hold env vars and memory), named by the SHA-256 of the encrypted bytes, decrypted once per
// node onto tmpfs for restores, removed with their version. A version that cannot be snapshotted keeps working
// without one; the reason is recorded. Imports src/core, src/store, src/codestore, src/runtimes.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Clock } from '../core/clock.ts';
import { LATEST, ephemeralStorageMb, type FunctionVersion, type SnapshotRecord } from '../core/types.ts';
import type { SandboxDriver } from '../sandbox/index.ts';
import type { Origin, CodeCache, OptTrees, PackageLimits } from '../codestore/index.ts';
import { resolveHandlerFile, parseHandler } from '../codestore/index.ts';
import { buildNodeSnapshot, heapLimitMb, nodeBootstrapPath, runtimeKind, SnapshotUnsupported } from '../runtimes/index.ts';
import type { Store } from '../store/index.ts';

/**
 * What the manager knows of versions and snapshot records: the node's store, or on a cluster agent the
 * facts its control plane gave it (versions it was told to build or hold; records reported back to the
 * control plane's store), so an agent never reads its own empty store for them.
 */
export type SnapshotBook = Pick<Store, 'getVersion' | 'putSnapshot' | 'getSnapshot' | 'listSnapshots' | 'deleteSnapshot' | 'isSnapshotInUse'>;

export interface SnapshotOptions {
  enabled: boolean;
  /** Where encrypted snapshots live durably, beside the packages (content-addressed like them). */
  origin: Origin;
  /** Decrypted copies for restores, node-local (tmpfs). */
  localDir: string;
  keyFile: string;
  timeoutMs: number;
  /** Where versions and records are read and written; absent: the store. */
  book?: SnapshotBook;
}

interface Deps {
  driver: SandboxDriver;
  store: SnapshotBook;
  blobs: Origin;
  cache: CodeCache;
  packageLimits: PackageLimits;
  /** The agent's merged /opt trees: one per node, so a build and an instance share one merge. */
  optTrees: OptTrees;
  clock: Clock;
  env(v: FunctionVersion, codeDir: string): Record<string, string>;
  log(v: FunctionVersion, line: string): void;
}

const MAGIC = Buffer.from('THAWSNP1');
const key = (fn: string, version: string) => `${fn}@${version}`;

export class SnapshotManager {
  readonly #o: SnapshotOptions;
  readonly #d: Deps;
  /** Ready snapshots: the encrypted blob's hash and, once decrypted here, the local path. */
  #ready = new Map<string, { sha256: string; local: string | null; decrypting: boolean }>();
  #progress = new Map<string, { stage: string; detail: string; startedAt: number }>();
  #queue: FunctionVersion[] = [];
  #running: Promise<void> | null = null;
  /** The version whose build is under way, and whether it was removed meanwhile (its result is then discarded). */
  #building: { key: string; removed: boolean } | null = null;
  #abort = new AbortController();
  #key: Buffer | null = null;

  constructor(options: SnapshotOptions, deps: Deps) {
    this.#o = options;
    this.#d = { ...deps, store: options.book ?? deps.store };
  }

  get enabled() { return this.#o.enabled; }

  /** Where the encrypted snapshots are (a control plane serves its agents from it). */
  get origin(): Origin { return this.#o.origin; }

  /** The snapshot key (a control plane hands it to its agents at join). */
  key(): Promise<Buffer> { return this.#secret(); }

  /** The key file was replaced (a cluster agent given its control plane's key): read it again at next use. */
  rekey(): void { this.#key = null; }

  /** Versions whose snapshot is decrypted on this node now, as `function@version` (a cluster agent advertises them). */
  held(): string[] {
    return [...this.#ready].filter(([, r]) => r.local !== null && existsSync(r.local)).map(([k]) => k);
  }

  /**
   * A snapshot built elsewhere (by another agent of the cluster) becomes restorable here: fetched from the
   * origin and decrypted onto the local tmpfs now, ahead of the first cold start that needs it.
   */
  async adopt(v: FunctionVersion, sha256: string): Promise<void> {
    if (!this.#o.enabled) return;
    const k = key(v.functionName, v.version);
    const known = this.#ready.get(k);
    if (known?.sha256 === sha256 && (known.decrypting || (known.local && existsSync(known.local)))) return;
    const r = { sha256, local: null as string | null, decrypting: true };
    this.#ready.set(k, r);
    try {
      const local = await this.#decrypt(sha256);
      // Removed while it decrypted: its copy goes too.
      if (this.#ready.get(k) !== r) await rm(local, { force: true });
      else r.local = local;
    } catch (err) {
      if (this.#ready.get(k) === r) this.#ready.delete(k);
      throw err;
    } finally {
      r.decrypting = false;
    }
  }

  /** Loads the records of earlier runs: ready ones serve restores, interrupted builds start again. */
  async start(): Promise<void> {
    if (!this.#o.enabled) return;
    for (const rec of await this.#d.store.listSnapshots()) {
      if (rec.status === 'ready' && rec.sha256 && await this.#o.origin.has(rec.sha256)) {
        this.#ready.set(key(rec.functionName, rec.version), { sha256: rec.sha256, local: null, decrypting: false });
      } else if (rec.status === 'pending') {
        const v = await this.#d.store.getVersion(rec.functionName, rec.version);
        if (v) this.request(v);
      }
    }
  }

  /** Queues a build for a published version; $LATEST is never snapshotted (it changes), nor a version whose SnapStart.ApplyOn is None. */
  request(v: FunctionVersion): void {
    if (!this.#o.enabled || v.version === LATEST || v.config.snapStart === 'None' || this.#ready.has(key(v.functionName, v.version))) return;
    if (this.#queue.some((q) => q.functionName === v.functionName && q.version === v.version)) return;
    this.#queue.push(v);
    void this.#put(v, 'pending', 'queued');
    this.#pump();
  }

  /** A restorable blob for this version on this node now, or null (decryption then starts in the background). */
  blobFor(v: FunctionVersion): string | null {
    const r = this.#ready.get(key(v.functionName, v.version));
    if (!r) return null;
    if (r.local && existsSync(r.local)) return r.local;
    if (!r.decrypting) {
      r.decrypting = true;
      void this.#decrypt(r.sha256).then((p) => { r.local = p; }, (err) => this.failed(v, `cannot decrypt: ${(err as Error).message}`)).finally(() => { r.decrypting = false; });
    }
    return null;
  }

  /** A restore from this snapshot failed: stop using it and say why. Invocations fall back down the ladder. */
  failed(v: FunctionVersion, reason: string): void {
    const r = this.#ready.get(key(v.functionName, v.version));
    this.#ready.delete(key(v.functionName, v.version));
    this.#d.log(v, `snapshot of version ${v.version} disabled: ${reason}`);
    void (async () => {
      await this.#put(v, 'failed', reason);
      if (r && !(await this.#d.store.isSnapshotInUse(r.sha256))) {
        await this.#o.origin.delete(r.sha256);
        await rm(this.#localPath(r.sha256), { force: true });
      }
    })().catch((err) => this.#d.log(v, `could not clean up a failed snapshot: ${(err as Error).message}`));
  }

  async status(functionName: string, version: string) {
    const rec = await this.#d.store.getSnapshot(functionName, version);
    const p = this.#progress.get(key(functionName, version));
    return rec ? { ...rec, progress: p ? { stage: p.stage, detail: p.detail, elapsedMs: Math.round(this.#d.clock.monotonic() - p.startedAt) } : null } : null;
  }

  async list(functionName?: string) { return this.#d.store.listSnapshots(functionName); }

  /** Removes a version's snapshot (record, encrypted blob if unused, local copy); all versions when version is omitted. */
  async remove(functionName: string, version?: string, known?: SnapshotRecord[]): Promise<void> {
    const recs = (known ?? await this.#d.store.listSnapshots(functionName)).filter((r) => version === undefined || r.version === version);
    this.#queue = this.#queue.filter((q) => q.functionName !== functionName || (version !== undefined && q.version !== version));
    const b = this.#building;
    if (b && b.key.startsWith(`${functionName}@`) && (version === undefined || b.key === key(functionName, version))) b.removed = true;
    for (const r of recs) {
      this.#ready.delete(key(r.functionName, r.version));
      await this.#d.store.deleteSnapshot(r.functionName, r.version);
      if (r.sha256 && !(await this.#d.store.isSnapshotInUse(r.sha256))) {
        await this.#o.origin.delete(r.sha256);
        await rm(this.#localPath(r.sha256), { force: true });
      }
    }
  }

  /** Settles when no build is running or queued (tests; shutdown uses close). */
  async settled(): Promise<void> {
    while (this.#running) await this.#running.catch(() => {});
  }

  async close(): Promise<void> {
    this.#queue = [];
    this.#abort.abort();
    await this.#running?.catch(() => {});
  }

  #pump() {
    if (this.#running || !this.#queue.length) return;
    const v = this.#queue.shift()!;
    this.#building = { key: key(v.functionName, v.version), removed: false };
    this.#running = this.#build(v).finally(() => { this.#running = null; this.#building = null; this.#pump(); });
  }

  async #build(v: FunctionVersion): Promise<void> {
    const k = key(v.functionName, v.version);
    const t0 = this.#d.clock.monotonic();
    const progress = (stage: string, detail: string) => {
      this.#progress.set(k, { stage, detail, startedAt: t0 });
      this.#d.log(v, `snapshot of version ${v.version}: ${stage}: ${detail}`);
    };
    const work = join(this.#o.localDir, `.build-${randomBytes(6).toString('hex')}`);
    const plain = `${work}.blob`;
    let optKey: string | null = null;
    try {
      progress('preparing', 'fetching the package');
      const code = await this.#d.cache.ensure(v.config.codeSha256, this.#d.blobs, this.#d.packageLimits);
      const { file } = await resolveHandlerFile(code.dir, v.config.handler);
      // Its layers, as its instances see them at /opt: bundled from there, and bound there for init.
      const opt = v.config.layers?.length ? await this.#d.optTrees.ensure(v.config.layers.map((l) => l.codeSha256)) : null;
      if (opt) { optKey = opt.key; this.#d.cache.pin(optKey); }
      const kind = runtimeKind(v.config.runtime);
      await mkdir(this.#o.localDir, { recursive: true });
      await buildNodeSnapshot({
        codeDir: code.dir, optDir: opt?.dir ?? null, handlerFile: file, exportName: parseHandler(v.config.handler).exportName,
        env: this.#d.env(v, this.#d.driver.insideView({ codeDir: code.dir, compileCacheDir: null }).codeDir), memoryMb: v.config.memoryMb,
        tmpMb: ephemeralStorageMb(v.config), driver: this.#d.driver, workDir: work, outBlob: plain,
        timeoutMs: this.#o.timeoutMs, bootstrapPath: nodeBootstrapPath, heapFlag: `--max-old-space-size=${heapLimitMb(v.config.memoryMb)}`,
        // Built on the version's own Node: the blob restores only in the binary that wrote it (agent: runtime.sandboxSpec).
        node: { binary: kind.binary, major: kind.nodeMajor },
        onProgress: (stage, detail) => progress(stage, detail), signal: this.#abort.signal,
      });
      progress('encrypting', 'encrypting the snapshot at rest');
      const { sha256, size } = await this.#encrypt(plain);
      // Deleted while it built: nothing of it may stay (the encrypted file has no record to find it by).
      const gone = async () => this.#building?.removed || !(await this.#d.store.getVersion(v.functionName, v.version));
      const discard = async () => {
        this.#ready.delete(k);
        await this.#d.store.deleteSnapshot(v.functionName, v.version);
        if (!(await this.#d.store.isSnapshotInUse(sha256))) {
          await this.#o.origin.delete(sha256);
          await rm(this.#localPath(sha256), { force: true });
        }
      };
      if (await gone()) { await discard(); return; }
      this.#ready.set(k, { sha256, local: this.#localPath(sha256), decrypting: false });
      await rename(plain, this.#localPath(sha256));
      try {
        await this.#put(v, 'ready', null, { sha256, sizeBytes: size, buildMs: Math.round(this.#d.clock.monotonic() - t0) });
      } catch (err) {
        if (await gone()) { await discard(); return; }
        throw err;
      }
      if (await gone()) { await discard(); return; }
      this.#d.log(v, `snapshot of version ${v.version}: ready (${(size / 1024 / 1024).toFixed(1)} MB, ${Math.round(this.#d.clock.monotonic() - t0)} ms)`);
    } catch (err) {
      const reason = err instanceof SnapshotUnsupported ? err.message : `build failed: ${(err as Error).message}`;
      // The version may be gone by now (deleted while it built; its code then goes too, which fails the
      // build): then there is nothing to record.
      const deleted = this.#building?.removed || !(await this.#d.store.getVersion(v.functionName, v.version).catch(() => null));
      if (deleted) await this.#d.store.deleteSnapshot(v.functionName, v.version).catch(() => {});
      else if (!this.#abort.signal.aborted) {
        await this.#put(v, 'failed', reason).catch(() => {});
        this.#d.log(v, `snapshot of version ${v.version} failed; the version runs without one: ${reason}`);
      }
    } finally {
      this.#progress.delete(k);
      if (optKey) this.#d.cache.unpin(optKey);
      await rm(plain, { force: true });
    }
  }

  async #put(v: FunctionVersion, status: SnapshotRecord['status'], reason: string | null, extra: Partial<SnapshotRecord> = {}) {
    await this.#d.store.putSnapshot({ functionName: v.functionName, version: v.version, status, reason, sha256: null, sizeBytes: null, buildMs: null, updatedAt: this.#d.clock.now(), ...extra });
  }

  #localPath(sha: string) { return join(this.#o.localDir, `${sha}.blob`); }

  /** AES-256-GCM under the node's snapshot key, stored in the origin under the hash of its encrypted bytes. */
  async #encrypt(plainPath: string): Promise<{ sha256: string; size: number }> {
    const plain = await readFile(plainPath);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await this.#secret(), iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const out = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
    const { sha256, size } = await this.#o.origin.put(out);
    return { sha256, size };
  }

  async #decrypt(sha256: string): Promise<string> {
    // The origin checks the bytes against their name: a damaged snapshot is an error, never a restore.
    const data = await this.#o.origin.get(sha256);
    if (!data.subarray(0, MAGIC.length).equals(MAGIC)) throw new Error('not a Thaw snapshot');
    const iv = data.subarray(8, 20);
    const decipher = createDecipheriv('aes-256-gcm', await this.#secret(), iv);
    decipher.setAuthTag(data.subarray(20, 36));
    const plain = Buffer.concat([decipher.update(data.subarray(36)), decipher.final()]);
    await mkdir(this.#o.localDir, { recursive: true });
    const local = this.#localPath(sha256);
    const tmp = `${local}.tmp-${randomBytes(4).toString('hex')}`;
    // Readable by the sandboxes it is bound into; the local dir (0700, the platform's) keeps everyone else out.
    await writeFile(tmp, plain, { mode: 0o644 });
    await rename(tmp, local);
    return local;
  }

  /** The node's snapshot key: 32 random bytes in a 0600 file, made on first use. */
  async #secret(): Promise<Buffer> {
    if (this.#key) return this.#key;
    try {
      this.#key = Buffer.from((await readFile(this.#o.keyFile, 'utf8')).trim(), 'base64');
    } catch {
      await mkdir(dirname(this.#o.keyFile), { recursive: true, mode: 0o700 });
      this.#key = randomBytes(32);
      await writeFile(this.#o.keyFile, this.#key.toString('base64'), { mode: 0o600, flag: 'wx' }).catch(async () => {
        this.#key = Buffer.from((await readFile(this.#o.keyFile, 'utf8')).trim(), 'base64');
      });
      await chmod(this.#o.keyFile, 0o600);
    }
    if (this.#key.length !== 32) throw new Error(`the snapshot key in ${this.#o.keyFile} is not 32 bytes`);
    return this.#key;
  }
}
