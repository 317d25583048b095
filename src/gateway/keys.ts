// Access keys: creation (an id and a secret, the secret sealed with AES-256-GCM under the node's key file
// before it reaches the store), lookup for signature checks, listing and revocation. Used by the server
// and, with `thaw keys create --data DIR`, by whoever can write the data dir. Imports src/core,
// src/store and node built-ins.
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { ThawError, isThawError } from '../core/errors.ts';
import { KEY_ROLES, type AccessKey, type KeyRole } from '../core/types.ts';
import type { Store } from '../store/index.ts';

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** The view of a key that may be shown: never its secret. */
export const keyView = (k: AccessKey) => ({
  AccessKeyId: k.id, Role: k.role, Functions: k.functions, CreatedAt: new Date(k.createdAt).toISOString(),
  Status: k.revokedAt === null ? 'Active' : 'Revoked', ...(k.revokedAt !== null ? { RevokedAt: new Date(k.revokedAt).toISOString() } : {}),
});

export class KeyRing {
  readonly #store: Store;
  readonly #keyFile: string;
  #sealKey: Buffer | null = null;
  /**
   * Opened secrets by key id and sealed text, so a signature check costs no decryption after the first; with
   * the key as last read, to check signatures while a shared store is unreachable (a database restart).
   */
  #opened = new Map<string, { sealed: string; secret: string; key: AccessKey }>();
  /** The last answer of active(), given again while the store is unreachable, so the gate keeps its mode. */
  #lastActive: boolean | null = null;

  constructor(store: Store, dataDir: string) {
    this.#store = store;
    this.#keyFile = join(dataDir, 'keys', 'access.key');
  }

  /** The node's sealing key: 32 random bytes in a 0600 file, made on first use. */
  #key(): Buffer {
    if (this.#sealKey) return this.#sealKey;
    try {
      this.#sealKey = Buffer.from(readFileSync(this.#keyFile, 'utf8').trim(), 'base64');
    } catch {
      mkdirSync(dirname(this.#keyFile), { recursive: true, mode: 0o700 });
      const fresh = randomBytes(32);
      try {
        writeFileSync(this.#keyFile, fresh.toString('base64'), { mode: 0o600, flag: 'wx' });
        this.#sealKey = fresh;
      } catch {
        // Another process made it first: use theirs.
        this.#sealKey = Buffer.from(readFileSync(this.#keyFile, 'utf8').trim(), 'base64');
      }
      chmodSync(this.#keyFile, 0o600);
    }
    if (this.#sealKey.length !== 32) throw new ThawError('THAW_E_INTERNAL', 'the access-key sealing key is damaged (not 32 bytes); restore it from a backup or remove it and create new keys');
    return this.#sealKey;
  }

  #seal(secret: string): string {
    const iv = randomBytes(12);
    const c = createCipheriv('aes-256-gcm', this.#key(), iv);
    const body = Buffer.concat([c.update(secret, 'utf8'), c.final()]);
    return Buffer.concat([iv, c.getAuthTag(), body]).toString('base64');
  }

  #open(sealed: string): string {
    const raw = Buffer.from(sealed, 'base64');
    const d = createDecipheriv('aes-256-gcm', this.#key(), raw.subarray(0, 12));
    d.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([d.update(raw.subarray(28)), d.final()]).toString('utf8');
  }

  async create(role: KeyRole, functions: readonly string[] | null, now: number): Promise<{ key: AccessKey; secret: string }> {
    if (!KEY_ROLES.includes(role)) throw new ThawError('THAW_E_REQUEST_INVALID', `role must be one of ${KEY_ROLES.join(', ')}, got ${JSON.stringify(role)}`);
    if (functions !== null && functions.length === 0) throw new ThawError('THAW_E_REQUEST_INVALID', 'Functions must name at least one function, or be omitted for a key that may act on all');
    if (functions) functions = [...new Set(functions)];
    const id = `AKTH${[...randomBytes(16)].map((b) => BASE32[b & 31]).join('')}`;
    const secret = randomBytes(30).toString('base64').replace(/\+/g, 'x').replace(/\//g, 'y');
    const key: AccessKey = { id, secretSealed: this.#seal(secret), role, functions: functions ? [...functions] : null, createdAt: now, revokedAt: null };
    await this.#store.createKey(key);
    return { key, secret };
  }

  /** The key and its secret, if it exists and is not revoked. */
  async lookup(id: string): Promise<{ key: AccessKey; secret: string } | null> {
    let key: AccessKey | null;
    try {
      key = await this.#store.getKey(id);
    } catch (err) {
      const held = this.#opened.get(id);
      if (held && storeOutage(err)) return { key: held.key, secret: held.secret };
      throw err;
    }
    if (!key || key.revokedAt !== null) { this.#opened.delete(id); return null; }
    const cached = this.#opened.get(id);
    if (cached && cached.sealed === key.secretSealed) return { key, secret: cached.secret };
    const secret = this.#open(key.secretSealed);
    this.#opened.set(id, { sealed: key.secretSealed, secret, key });
    return { key, secret };
  }

  list(): Promise<AccessKey[]> { return this.#store.listKeys(); }

  async revoke(id: string, now: number): Promise<void> {
    if (!(await this.#store.revokeKey(id, now))) {
      throw new ThawError('THAW_E_KEY_NOT_FOUND', `no active access key ${id}`);
    }
    this.#opened.delete(id);
  }

  /** Whether any key is active; during a store outage, the last answer (a keyed node stays keyed). */
  async active(): Promise<boolean> {
    try {
      this.#lastActive = await this.#store.hasActiveKeys();
    } catch (err) {
      if (this.#lastActive === null || !storeOutage(err)) throw err;
    }
    return this.#lastActive;
  }
}

const storeOutage = (err: unknown) => isThawError(err) && err.code === 'THAW_E_STORE_UNAVAILABLE';
