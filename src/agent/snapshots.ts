// Snapshots of published versions: built one at a time in the background (with a visible status and a time
// limit), encrypted at rest beside the packages (they hold env vars and memory), decrypted once per node
// onto tmpfs for restores, removed with their version. A version that cannot be snapshotted keeps working
// without one; the reason is recorded. Imports src/core, src/store, src/codestore, src/runtimes.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
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

export interface SnapshotOptions {
  enabled: boolean;
  /** Encrypted snapshots, beside the packages (data dir). */
  dir: string;
  /** Decrypted copies for restores, node-local (tmpfs). */
  localDir: string;
  keyFile: string;
  timeoutMs: number;
}

interface Deps {
  driver: SandboxDriver;
  store: Store;
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
    this.#d = deps;
  }

  get enabled() { return this.#o.enabled; }

  /** Loads the records of earlier runs: ready ones serve restores, interrupted builds start again. */
  async start(): Promise<void> {
    if (!this.#o.enabled) return;
    for (const rec of await this.#d.store.listSnapshots()) {
      if (rec.status === 'ready' && rec.sha256 && existsSync(this.#encPath(rec.sha256))) {
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
        await rm(this.#encPath(r.sha256), { force: true });
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
        await rm(this.#encPath(r.sha256), { force: true });
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
          await rm(this.#encPath(sha256), { force: true });
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

  #encPath(sha: string) { return join(this.#o.dir, sha.slice(0, 2), `${sha}.snap`); }
  #localPath(sha: string) { return join(this.#o.localDir, `${sha}.blob`); }

  /** AES-256-GCM under the node's snapshot key; the file is named by the hash of its encrypted bytes. */
  async #encrypt(plainPath: string): Promise<{ sha256: string; size: number }> {
    const plain = await readFile(plainPath);
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', await this.#secret(), iv);
    const body = Buffer.concat([cipher.update(plain), cipher.final()]);
    const out = Buffer.concat([MAGIC, iv, cipher.getAuthTag(), body]);
    const sha256 = createHash('sha256').update(out).digest('hex');
    await mkdir(join(this.#o.dir, sha256.slice(0, 2)), { recursive: true });
    const tmp = `${this.#encPath(sha256)}.tmp-${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, out, { mode: 0o600 });
    await rename(tmp, this.#encPath(sha256));
    return { sha256, size: out.length };
  }

  async #decrypt(sha256: string): Promise<string> {
    const data = await readFile(this.#encPath(sha256));
    if (createHash('sha256').update(data).digest('hex') !== sha256) throw new Error('the encrypted snapshot is damaged');
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
