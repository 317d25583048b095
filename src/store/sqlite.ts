// The embedded Store: one SQLite file through the built-in node:sqlite, WAL mode, schema migrations by
// user_version. Multi-row changes run in BEGIN IMMEDIATE transactions. Imports src/core and node:sqlite.
import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite';
import { ThawError, type ErrorCode } from '../core/errors.ts';
import { Statements, TelemetryWorker, TelemetryWriter, type TelemetryOp } from './sqlite-telemetry.ts';
import { LATEST, type LayerPermission, type LayerVersion, type AccessKey, type NetworkRecord, type SecurityGroupRecord, type DeadLetter, type EventInvokeConfig, type Alias, type FunctionRecord, type FunctionVersion, type InvocationRecord, type LogLine, type FunctionPolicy, type FunctionUrlRecord, type ResourcePolicy, type ProvisionedConfig, type Schedule, type QueuedEvent, type SnapshotRecord, type InitSet } from '../core/types.ts';
import type { CallEdge, InvocationQuery, LogQuery, Store } from './types.ts';

/** Each entry moves the schema one version forward; never edit a released one, append a new one. */
const MIGRATIONS: string[] = [
  `CREATE TABLE functions (
     name TEXT PRIMARY KEY,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     latest TEXT NOT NULL,
     latest_code TEXT NOT NULL,
     last_published INTEGER NOT NULL DEFAULT 0,
     reserved_concurrency INTEGER
   ) STRICT;
   CREATE INDEX functions_code ON functions(latest_code);
   CREATE TABLE versions (
     function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
     version TEXT NOT NULL,
     number INTEGER NOT NULL,
     revision_id TEXT NOT NULL,
     code_sha256 TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, version)
   ) STRICT;
   CREATE INDEX versions_code ON versions(code_sha256);
   CREATE TABLE aliases (
     function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
     name TEXT NOT NULL,
     function_version TEXT NOT NULL,
     routing_version TEXT,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, name)
   ) STRICT;
   CREATE TABLE invocations (
     id TEXT PRIMARY KEY,
     function_name TEXT NOT NULL,
     received_at INTEGER NOT NULL,
     body TEXT NOT NULL
   ) STRICT;
   CREATE INDEX invocations_time ON invocations(received_at, id);
   CREATE INDEX invocations_fn_time ON invocations(function_name, received_at, id);
   CREATE TABLE logs (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     at INTEGER NOT NULL,
     function_name TEXT NOT NULL,
     version TEXT NOT NULL,
     instance_id TEXT NOT NULL,
     invocation_id TEXT,
     stream TEXT NOT NULL,
     line TEXT NOT NULL
   ) STRICT;
   CREATE INDEX logs_fn ON logs(function_name, seq);
   CREATE INDEX logs_invocation ON logs(invocation_id);
   CREATE TABLE events (
     id TEXT PRIMARY KEY,
     function_name TEXT NOT NULL,
     qualifier TEXT NOT NULL,
     payload TEXT NOT NULL,
     attempts INTEGER NOT NULL,
     enqueued_at INTEGER NOT NULL,
     next_attempt_at INTEGER NOT NULL,
     leased_until INTEGER
   ) STRICT;
   CREATE INDEX events_due ON events(next_attempt_at);
   CREATE TABLE calls (
     caller TEXT NOT NULL,
     callee TEXT NOT NULL,
     count INTEGER NOT NULL,
     last_at INTEGER NOT NULL,
     PRIMARY KEY (caller, callee)
   ) STRICT;`,
  // 2: snapshots of published versions.
  `CREATE TABLE snapshots (
     function_name TEXT NOT NULL,
     version TEXT NOT NULL,
     sha256 TEXT,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, version)
   ) STRICT;
   CREATE INDEX snapshots_sha ON snapshots(sha256);`,
  // 3: reserved (provisioned) instances.
  `CREATE TABLE provisioned (
     function_name TEXT NOT NULL,
     qualifier TEXT NOT NULL,
     count INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     PRIMARY KEY (function_name, qualifier)
   ) STRICT;`,
  // 4: per-function policies and timer triggers.
  `CREATE TABLE policies (
     function_name TEXT PRIMARY KEY,
     spec TEXT NOT NULL,
     updated_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE schedules (
     id TEXT PRIMARY KEY,
     function_name TEXT NOT NULL,
     body TEXT NOT NULL
   ) STRICT;
   CREATE INDEX schedules_fn ON schedules(function_name);`,
  `CREATE TABLE access_keys (
     id TEXT PRIMARY KEY,
     revoked_at INTEGER,
     body TEXT NOT NULL
   ) STRICT;`,
  `ALTER TABLE events ADD COLUMN leases INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE events ADD COLUMN depth INTEGER NOT NULL DEFAULT 0;
   CREATE TABLE event_invoke_configs (
     function_name TEXT NOT NULL,
     qualifier TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, qualifier)
   ) STRICT;
   CREATE TABLE dead_letters (
     id TEXT PRIMARY KEY,
     function_name TEXT NOT NULL,
     failed_at INTEGER NOT NULL,
     body TEXT NOT NULL
   ) STRICT;
   CREATE INDEX dead_letters_fn ON dead_letters(function_name, failed_at);`,
  `CREATE TABLE networks (
     name TEXT PRIMARY KEY,
     body TEXT NOT NULL
   ) STRICT;
   CREATE TABLE security_groups (
     name TEXT PRIMARY KEY,
     body TEXT NOT NULL
   ) STRICT;`,
  // Function URLs and resource-based policies: both go with their function (and an alias's with the alias).
  `CREATE TABLE function_urls (
     function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
     qualifier TEXT NOT NULL,
     url_id TEXT NOT NULL UNIQUE,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, qualifier)
   ) STRICT;
   CREATE TABLE resource_policies (
     function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
     qualifier TEXT NOT NULL,
     revision_id TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (function_name, qualifier)
   ) STRICT;`,
  // Layers: a layer's newest number (kept after its versions are deleted, so numbers are never reused),
  // its versions (content by sha256, like packages) and their permission statements.
  `CREATE TABLE layers (
     name TEXT PRIMARY KEY,
     last_version INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE layer_versions (
     name TEXT NOT NULL,
     version INTEGER NOT NULL,
     sha256 TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (name, version)
   ) STRICT;
   CREATE INDEX layer_versions_sha ON layer_versions(sha256);
   CREATE TABLE layer_permissions (
     name TEXT NOT NULL,
     version INTEGER NOT NULL,
     statement_id TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (name, version, statement_id)
   ) STRICT;`,
  // Tags (TagResource): a function's, gone with it.
  `CREATE TABLE function_tags (
     function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
     key TEXT NOT NULL,
     value TEXT NOT NULL,
     PRIMARY KEY (function_name, key)
   ) STRICT;`,
  // Which node leased an event (a shared store releases only its own leases at start; see PostgresStore).
  `ALTER TABLE events ADD COLUMN lease_owner TEXT;`,
  // A function's log retention in days (Thaw's setting; Lambda keeps it on the log group); NULL: no age limit.
  `ALTER TABLE functions ADD COLUMN log_retention_days INTEGER;`,
  // The files a package's init read, per handler, and their bundle in the origin (on-demand code loading).
  `CREATE TABLE init_sets (
     code_sha256 TEXT NOT NULL,
     handler TEXT NOT NULL,
     bundle_sha256 TEXT NOT NULL,
     body TEXT NOT NULL,
     PRIMARY KEY (code_sha256, handler)
   ) STRICT;`,
];

type Row = Record<string, SQLInputValue>;
/** The tables #createNamed and its kin serve (constants: never from input). */
type NamedTable = 'networks' | 'security_groups';

export class SqliteStore implements Store {
  readonly kind = 'sqlite';
  readonly #db: DatabaseSync;
  /** Prepared statements by their SQL: preparing one costs more than running it on the invoke path. */
  readonly #statements: Statements;
  /** Records and logs written on this connection (an in-memory store, or once the worker has stopped)… */
  readonly #telemetry: TelemetryWriter;
  /** …and for a store in a file, on a worker thread's (sqlite-telemetry.ts). */
  readonly #worker: TelemetryWorker | null;
  #closed = false;
  /** Writes on this connection so far: a read cached before one is stale. */
  #writes = 0;
  #activeKeys: { writes: number; dataVersion: number; value: boolean } | null = null;

  private constructor(db: DatabaseSync, worker: TelemetryWorker | null) {
    this.#db = db;
    this.#statements = new Statements(db);
    this.#telemetry = new TelemetryWriter(this.#statements);
    this.#worker = worker;
  }

  static async open(path: string): Promise<SqliteStore> {
    let db: DatabaseSync | undefined;
    try {
      db = new DatabaseSync(path);
      db.exec('PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;');
      migrate(db);
    } catch (err) {
      db?.close();
      throw new ThawError('THAW_E_CONFIG_INVALID', `cannot open the SQLite store at ${path}: ${(err as Error).message}`, { cause: err });
    }
    if (path === ':memory:') return new SqliteStore(db, null);
    // The worker runs the checkpoints, off the event loop.
    db.exec('PRAGMA wal_autocheckpoint = 0');
    return new SqliteStore(db, new TelemetryWorker(path));
  }

  /** Runs fn in one write transaction; rolls back if it throws. */
  #tx<T>(fn: () => T): T { this.#writes++; return this.#statements.tx(fn); }

  /** The prepared statement for sql (every SQL text here is a constant or built from a fixed set of parts). */
  #statement(sql: string): StatementSync { return this.#statements.get(sql); }

  /** A telemetry write: on the worker thread while it runs, else here. */
  async #telemetryOp<A>(op: TelemetryOp, arg: A): Promise<number> {
    if (this.#worker?.alive) return this.#worker.call(op, arg);
    return (this.#telemetry[op] as (a: A) => number)(arg);
  }

  #get(sql: string, ...params: SQLInputValue[]): Row | undefined {
    return this.#statement(sql).get(...params) as Row | undefined;
  }

  #all(sql: string, ...params: SQLInputValue[]): Row[] {
    return this.#statement(sql).all(...params) as Row[];
  }

  #run(sql: string, ...params: SQLInputValue[]): number {
    this.#writes++;
    return Number(this.#statement(sql).run(...params).changes);
  }

  async createFunction(fn: FunctionRecord, tags: Readonly<Record<string, string>> = {}): Promise<void> {
    this.#tx(() => {
      if (this.#get('SELECT 1 FROM functions WHERE name = ?', fn.name)) throw new ThawError('THAW_E_FUNCTION_EXISTS', `function ${fn.name} already exists`);
      this.#run('INSERT INTO functions (name, created_at, updated_at, latest, latest_code, last_published, reserved_concurrency) VALUES (?, ?, ?, ?, ?, ?, ?)',
        fn.name, fn.createdAt, fn.updatedAt, JSON.stringify(fn.latest), fn.latest.config.codeSha256, fn.lastPublished, fn.reservedConcurrency);
      for (const [k, v] of Object.entries(tags)) this.#run('INSERT INTO function_tags (function_name, key, value) VALUES (?, ?, ?)', fn.name, k, v);
    });
  }

  async getTags(name: string): Promise<Record<string, string> | null> {
    if (!this.#get('SELECT 1 FROM functions WHERE name = ?', name)) return null;
    return this.#tagsOf(name);
  }

  #tagsOf(name: string): Record<string, string> {
    return Object.fromEntries(this.#all('SELECT key, value FROM function_tags WHERE function_name = ? ORDER BY key', name).map((r) => [r.key as string, r.value as string]));
  }

  async tagFunction(name: string, tags: Readonly<Record<string, string>>, maxTags: number): Promise<Record<string, string>> {
    return this.#tx(() => {
      if (!this.#get('SELECT 1 FROM functions WHERE name = ?', name)) throw notFound(name);
      for (const [k, v] of Object.entries(tags)) {
        this.#run('INSERT INTO function_tags (function_name, key, value) VALUES (?, ?, ?) ON CONFLICT (function_name, key) DO UPDATE SET value = excluded.value', name, k, v);
      }
      const all = this.#tagsOf(name);
      // Thrown inside the transaction: nothing of a refused TagResource is kept.
      if (Object.keys(all).length > maxTags) throw new ThawError('THAW_E_TAGS_INVALID', `function ${name} would have ${Object.keys(all).length} tags; the limit is ${maxTags}`);
      return all;
    });
  }

  async untagFunction(name: string, keys: readonly string[]): Promise<void> {
    this.#tx(() => {
      if (!this.#get('SELECT 1 FROM functions WHERE name = ?', name)) throw notFound(name);
      for (const k of keys) this.#run('DELETE FROM function_tags WHERE function_name = ? AND key = ?', name, k);
    });
  }

  async getFunction(name: string): Promise<FunctionRecord | null> {
    const row = this.#get('SELECT * FROM functions WHERE name = ?', name);
    return row ? toFunction(row) : null;
  }

  async listFunctions(): Promise<FunctionRecord[]> {
    return this.#all('SELECT * FROM functions ORDER BY name').map(toFunction);
  }

  async updateLatest(name: string, latest: FunctionVersion, updatedAt: number, expectedRevisionId?: string): Promise<void> {
    this.#tx(() => {
      const row = this.#get('SELECT latest FROM functions WHERE name = ?', name);
      if (!row) throw notFound(name);
      const current = JSON.parse(row.latest as string) as FunctionVersion;
      if (expectedRevisionId !== undefined && current.revisionId !== expectedRevisionId) {
        throw new ThawError('THAW_E_REVISION_MISMATCH', `function ${name} has revision ${current.revisionId}, not ${expectedRevisionId}`);
      }
      this.#run('UPDATE functions SET latest = ?, latest_code = ?, updated_at = ? WHERE name = ?', JSON.stringify(latest), latest.config.codeSha256, updatedAt, name);
    });
  }

  async setReservedConcurrency(name: string, limit: number | null): Promise<void> {
    if (this.#run('UPDATE functions SET reserved_concurrency = ? WHERE name = ?', limit, name) === 0) throw notFound(name);
  }

  async setLogRetention(name: string, days: number | null): Promise<void> {
    if (this.#run('UPDATE functions SET log_retention_days = ? WHERE name = ?', days, name) === 0) throw notFound(name);
  }

  async deleteFunction(name: string): Promise<void> {
    this.#tx(() => {
      if (this.#run('DELETE FROM functions WHERE name = ?', name) === 0) throw notFound(name);
      // Versions and aliases go by ON DELETE CASCADE; invocation records and call edges stay as history.
      this.#run('DELETE FROM logs WHERE function_name = ?', name);
      this.#run('DELETE FROM events WHERE function_name = ?', name);
      this.#run('DELETE FROM event_invoke_configs WHERE function_name = ?', name);
      this.#run('DELETE FROM dead_letters WHERE function_name = ?', name);
      this.#run('DELETE FROM snapshots WHERE function_name = ?', name);
      this.#run('DELETE FROM provisioned WHERE function_name = ?', name);
      this.#run('DELETE FROM policies WHERE function_name = ?', name);
      this.#run('DELETE FROM schedules WHERE function_name = ?', name);
    });
  }

  async publishVersion(name: string, createdAt: number, description?: string): Promise<FunctionVersion> {
    return this.#tx(() => {
      const row = this.#get('SELECT latest, last_published FROM functions WHERE name = ?', name);
      if (!row) throw notFound(name);
      const current = JSON.parse(row.latest as string) as FunctionVersion;
      // A version's own Description (PublishVersion's) replaces $LATEST's in what is published.
      const latest = description === undefined ? current : { ...current, config: { ...current.config, description } };
      const newest = this.#get('SELECT body FROM versions WHERE function_name = ? ORDER BY number DESC LIMIT 1', name);
      if (newest) {
        const prev = JSON.parse(newest.body as string) as FunctionVersion;
        // Lambda publishes nothing new when neither code nor configuration changed since the last version.
        if (prev.revisionId === latest.revisionId || sameConfig(prev, latest)) return prev;
      }
      const number = Number(row.last_published) + 1;
      const v: FunctionVersion = { ...latest, version: String(number), createdAt };
      this.#run('INSERT INTO versions (function_name, version, number, revision_id, code_sha256, body) VALUES (?, ?, ?, ?, ?, ?)',
        name, v.version, number, v.revisionId, v.config.codeSha256, JSON.stringify(v));
      this.#run('UPDATE functions SET last_published = ? WHERE name = ?', number, name);
      return v;
    });
  }

  async getVersion(name: string, version: string): Promise<FunctionVersion | null> {
    if (version === LATEST) return (await this.getFunction(name))?.latest ?? null;
    const row = this.#get('SELECT body FROM versions WHERE function_name = ? AND version = ?', name, version);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listVersions(name: string): Promise<FunctionVersion[]> {
    return this.#all('SELECT body FROM versions WHERE function_name = ? ORDER BY number', name).map((r) => JSON.parse(r.body as string));
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    this.#tx(() => {
      const user = this.#get('SELECT name FROM aliases WHERE function_name = ? AND (function_version = ? OR routing_version = ?) LIMIT 1', name, version, version);
      if (user) throw new ThawError('THAW_E_REQUEST_INVALID', `version ${version} of ${name} is used by alias ${user.name}; move the alias first`);
      if (this.#run('DELETE FROM versions WHERE function_name = ? AND version = ?', name, version) === 0) {
        throw new ThawError('THAW_E_VERSION_NOT_FOUND', `function ${name} has no version ${version}`);
      }
      this.#run('DELETE FROM resource_policies WHERE function_name = ? AND qualifier = ?', name, version);
    });
  }

  async putAlias(alias: Alias, create: boolean): Promise<void> {
    this.#tx(() => {
      if (!this.#get('SELECT 1 FROM functions WHERE name = ?', alias.functionName)) throw notFound(alias.functionName);
      const exists = this.#get('SELECT 1 FROM aliases WHERE function_name = ? AND name = ?', alias.functionName, alias.name);
      if (create && exists) throw new ThawError('THAW_E_ALIAS_EXISTS', `alias ${alias.name} of ${alias.functionName} already exists`);
      if (!create && !exists) throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${alias.functionName} has no alias ${alias.name}`);
      this.#run('INSERT OR REPLACE INTO aliases (function_name, name, function_version, routing_version, body) VALUES (?, ?, ?, ?, ?)',
        alias.functionName, alias.name, alias.functionVersion, alias.routing?.version ?? null, JSON.stringify(alias));
    });
  }

  async getAlias(functionName: string, name: string): Promise<Alias | null> {
    const row = this.#get('SELECT body FROM aliases WHERE function_name = ? AND name = ?', functionName, name);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listAliases(functionName: string): Promise<Alias[]> {
    return this.#all('SELECT body FROM aliases WHERE function_name = ? ORDER BY name', functionName).map((r) => JSON.parse(r.body as string));
  }

  async deleteAlias(functionName: string, name: string): Promise<void> {
    this.#tx(() => {
      if (this.#run('DELETE FROM aliases WHERE function_name = ? AND name = ?', functionName, name) === 0) {
        throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${functionName} has no alias ${name}`);
      }
      // As on Lambda, the alias's URL and policy go with it.
      this.#run('DELETE FROM function_urls WHERE function_name = ? AND qualifier = ?', functionName, name);
      this.#run('DELETE FROM resource_policies WHERE function_name = ? AND qualifier = ?', functionName, name);
    });
  }

  async isCodeInUse(codeSha256: string): Promise<boolean> {
    if (this.#get('SELECT 1 FROM functions WHERE latest_code = ? UNION ALL SELECT 1 FROM versions WHERE code_sha256 = ? UNION ALL SELECT 1 FROM layer_versions WHERE sha256 = ? LIMIT 1', codeSha256, codeSha256, codeSha256)) return true;
    // A version keeps a deleted layer version's content: its config names it (asked after deletes only, so a scan is fine).
    return Boolean(this.#get(`SELECT 1 FROM functions, json_each(functions.latest, '$.config.layers') l WHERE json_extract(l.value, '$.codeSha256') = ?
      UNION ALL SELECT 1 FROM versions, json_each(versions.body, '$.config.layers') l WHERE json_extract(l.value, '$.codeSha256') = ? LIMIT 1`, codeSha256, codeSha256));
  }

  async publishLayerVersion(layer: Omit<LayerVersion, 'version'>): Promise<LayerVersion> {
    return this.#tx(() => {
      const last = this.#get('SELECT last_version FROM layers WHERE name = ?', layer.name);
      const v: LayerVersion = { ...layer, version: last ? Number(last.last_version) + 1 : 1 };
      this.#run('INSERT INTO layers (name, last_version) VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET last_version = excluded.last_version', v.name, v.version);
      this.#run('INSERT INTO layer_versions (name, version, sha256, body) VALUES (?, ?, ?, ?)', v.name, v.version, v.codeSha256, JSON.stringify(v));
      return v;
    });
  }

  async getLayerVersion(name: string, version: number): Promise<LayerVersion | null> {
    const row = this.#get('SELECT body FROM layer_versions WHERE name = ? AND version = ?', name, version);
    return row ? JSON.parse(row.body as string) as LayerVersion : null;
  }

  async listLayerVersions(name?: string): Promise<LayerVersion[]> {
    const rows = name === undefined
      ? this.#all('SELECT body FROM layer_versions ORDER BY name, version DESC')
      : this.#all('SELECT body FROM layer_versions WHERE name = ? ORDER BY version DESC', name);
    return rows.map((r) => JSON.parse(r.body as string) as LayerVersion);
  }

  async deleteLayerVersion(name: string, version: number): Promise<boolean> {
    return this.#tx(() => {
      this.#run('DELETE FROM layer_permissions WHERE name = ? AND version = ?', name, version);
      return this.#run('DELETE FROM layer_versions WHERE name = ? AND version = ?', name, version) > 0;
    });
  }

  async addLayerPermission(p: LayerPermission): Promise<void> {
    this.#tx(() => {
      if (!this.#get('SELECT 1 FROM layer_versions WHERE name = ? AND version = ?', p.layerName, p.version)) {
        throw new ThawError('THAW_E_LAYER_NOT_FOUND', `layer ${p.layerName} has no version ${p.version}`);
      }
      if (this.#get('SELECT 1 FROM layer_permissions WHERE name = ? AND version = ? AND statement_id = ?', p.layerName, p.version, p.statementId)) {
        throw new ThawError('THAW_E_LAYER_PERMISSION_EXISTS', `layer ${p.layerName} version ${p.version} already has a statement ${p.statementId}`);
      }
      this.#run('INSERT INTO layer_permissions (name, version, statement_id, body) VALUES (?, ?, ?, ?)', p.layerName, p.version, p.statementId, JSON.stringify(p));
    });
  }

  async listLayerPermissions(name: string, version: number): Promise<LayerPermission[]> {
    return this.#all('SELECT body FROM layer_permissions WHERE name = ? AND version = ? ORDER BY statement_id', name, version).map((r) => JSON.parse(r.body as string) as LayerPermission);
  }

  async removeLayerPermission(name: string, version: number, statementId: string): Promise<boolean> {
    return this.#run('DELETE FROM layer_permissions WHERE name = ? AND version = ? AND statement_id = ?', name, version, statementId) > 0;
  }

  async recordInvocations(recs: readonly InvocationRecord[]): Promise<void> {
    if (recs.length) await this.#telemetryOp('recordInvocations', recs);
  }

  async getInvocation(id: string): Promise<InvocationRecord | null> {
    const row = this.#get('SELECT body FROM invocations WHERE id = ?', id);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listInvocations(q: InvocationQuery): Promise<InvocationRecord[]> {
    const where: string[] = [];
    const params: SQLInputValue[] = [];
    if (q.functionName !== undefined) { where.push('function_name = ?'); params.push(q.functionName); }
    if (q.before !== undefined) { where.push('received_at < ?'); params.push(q.before); }
    const sql = `SELECT body FROM invocations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at DESC, id DESC LIMIT ?`;
    return this.#all(sql, ...params, q.limit).map((r) => JSON.parse(r.body as string));
  }

  pruneInvocations(keep: number): Promise<number> { return this.#telemetryOp('pruneInvocations', keep); }

  async appendLogs(lines: Omit<LogLine, 'seq'>[]): Promise<void> {
    if (lines.length) await this.#telemetryOp('appendLogs', lines);
  }

  async readLogs(q: LogQuery): Promise<LogLine[]> {
    const where = ['function_name = ?'];
    const params: SQLInputValue[] = [q.functionName];
    if (q.invocationId !== undefined) { where.push('invocation_id = ?'); params.push(q.invocationId); }
    if (q.afterSeq !== undefined) {
      where.push('seq > ?');
      params.push(q.afterSeq);
      return this.#all(`SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY seq LIMIT ?`, ...params, q.limit).map(toLogLine);
    }
    // No cursor: the newest `limit` lines (a tail), oldest first.
    return this.#all(`SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT ?`, ...params, q.limit).map(toLogLine).reverse();
  }

  pruneLogs(keepPerFunction: number, now?: number): Promise<number> { return this.#telemetryOp('pruneLogs', { keepPerFunction, now }); }

  async enqueueEvent(ev: QueuedEvent): Promise<void> {
    this.#insertEvent(ev);
  }

  #insertEvent(ev: QueuedEvent) {
    this.#run('INSERT INTO events (id, function_name, qualifier, payload, attempts, enqueued_at, next_attempt_at, leased_until, depth) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?)',
      ev.id, ev.functionName, ev.qualifier, ev.payload, ev.attempts, ev.enqueuedAt, ev.nextAttemptAt, ev.depth ?? 0);
  }

  async leaseEvents(now: number, leaseMs: number, limit: number, owner: string | null = null): Promise<QueuedEvent[]> {
    return this.#tx(() => {
      const rows = this.#all('SELECT * FROM events WHERE next_attempt_at <= ? AND (leased_until IS NULL OR leased_until <= ?) ORDER BY next_attempt_at, enqueued_at LIMIT ?', now, now, limit);
      const lease = this.#statement('UPDATE events SET leased_until = ?, leases = leases + 1, lease_owner = ? WHERE id = ?');
      for (const r of rows) lease.run(now + leaseMs, owner, r.id);
      return rows.map((r) => ({ ...toEvent(r), leases: Number(r.leases) + 1 }));
    });
  }

  async completeEvent(id: string, outcome: { record?: InvocationRecord | null; enqueue?: QueuedEvent | null; deadLetter?: DeadLetter | null } = {}): Promise<void> {
    this.#tx(() => {
      if (outcome.record) this.#telemetry.putInvocation(outcome.record);
      if (outcome.enqueue) this.#insertEvent(outcome.enqueue);
      if (outcome.deadLetter) {
        const d = outcome.deadLetter;
        this.#run('INSERT OR REPLACE INTO dead_letters (id, function_name, failed_at, body) VALUES (?, ?, ?, ?)', d.id, d.functionName, d.failedAt, JSON.stringify(d));
      }
      this.#run('DELETE FROM events WHERE id = ?', id);
    });
  }

  async retryEvent(id: string, nextAttemptAt: number, record: InvocationRecord | null = null, countAttempt = true): Promise<void> {
    this.#tx(() => {
      if (record) this.#telemetry.putInvocation(record);
      this.#run(`UPDATE events SET attempts = attempts + ${countAttempt ? 1 : 0}, next_attempt_at = ?, leased_until = NULL, lease_owner = NULL WHERE id = ?`, nextAttemptAt, id);
    });
  }

  async putEventInvokeConfig(cfg: EventInvokeConfig): Promise<void> {
    this.#run('INSERT OR REPLACE INTO event_invoke_configs (function_name, qualifier, body) VALUES (?, ?, ?)', cfg.functionName, cfg.qualifier, JSON.stringify(cfg));
  }

  async getEventInvokeConfig(functionName: string, qualifier: string): Promise<EventInvokeConfig | null> {
    const row = this.#get('SELECT body FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?', functionName, qualifier);
    return row ? JSON.parse(row.body as string) as EventInvokeConfig : null;
  }

  async listEventInvokeConfigs(functionName: string): Promise<EventInvokeConfig[]> {
    return this.#all('SELECT body FROM event_invoke_configs WHERE function_name = ? ORDER BY qualifier', functionName).map((r) => JSON.parse(r.body as string) as EventInvokeConfig);
  }

  async deleteEventInvokeConfig(functionName: string, qualifier: string): Promise<boolean> {
    return this.#run('DELETE FROM event_invoke_configs WHERE function_name = ? AND qualifier = ?', functionName, qualifier) > 0;
  }

  async listDeadLetters(functionName: string, limit: number): Promise<DeadLetter[]> {
    return this.#all('SELECT body FROM dead_letters WHERE function_name = ? ORDER BY failed_at DESC, id LIMIT ?', functionName, limit).map((r) => JSON.parse(r.body as string) as DeadLetter);
  }

  async getDeadLetter(id: string): Promise<DeadLetter | null> {
    const row = this.#get('SELECT body FROM dead_letters WHERE id = ?', id);
    return row ? JSON.parse(row.body as string) as DeadLetter : null;
  }

  async deleteDeadLetter(id: string): Promise<boolean> {
    return this.#run('DELETE FROM dead_letters WHERE id = ?', id) > 0;
  }

  async releaseLeases(owner?: string): Promise<number> {
    if (owner === undefined) return this.#run('UPDATE events SET leased_until = NULL, lease_owner = NULL WHERE leased_until IS NOT NULL');
    return this.#run('UPDATE events SET leased_until = NULL, lease_owner = NULL WHERE leased_until IS NOT NULL AND lease_owner = ?', owner);
  }

  async renewLeases(ids: readonly string[], until: number, owner: string | null = null): Promise<number> {
    return this.#tx(() => {
      const renew = this.#statement('UPDATE events SET leased_until = ? WHERE id = ? AND leased_until IS NOT NULL AND lease_owner IS ?');
      let n = 0;
      for (const id of ids) n += Number(renew.run(until, id, owner).changes);
      return n;
    });
  }

  async countEvents(): Promise<number> {
    return Number(this.#get('SELECT count(*) AS n FROM events')!.n);
  }

  async oldestEventAt(): Promise<number | null> {
    const n = this.#get('SELECT min(enqueued_at) AS at FROM events')!.at;
    return n === null ? null : Number(n);
  }

  async putSnapshot(rec: SnapshotRecord): Promise<void> {
    this.#run('INSERT OR REPLACE INTO snapshots (function_name, version, sha256, body) VALUES (?, ?, ?, ?)', rec.functionName, rec.version, rec.sha256, JSON.stringify(rec));
  }

  async getSnapshot(functionName: string, version: string): Promise<SnapshotRecord | null> {
    const row = this.#get('SELECT body FROM snapshots WHERE function_name = ? AND version = ?', functionName, version);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listSnapshots(functionName?: string): Promise<SnapshotRecord[]> {
    const rows = functionName === undefined
      ? this.#all('SELECT body FROM snapshots ORDER BY function_name, CAST(version AS INTEGER)')
      : this.#all('SELECT body FROM snapshots WHERE function_name = ? ORDER BY CAST(version AS INTEGER)', functionName);
    return rows.map((r) => JSON.parse(r.body as string));
  }

  async deleteSnapshot(functionName: string, version: string): Promise<void> {
    this.#run('DELETE FROM snapshots WHERE function_name = ? AND version = ?', functionName, version);
  }

  async isSnapshotInUse(sha256: string): Promise<boolean> {
    return Boolean(this.#get('SELECT 1 FROM snapshots WHERE sha256 = ? LIMIT 1', sha256));
  }

  async putInitSet(set: InitSet): Promise<boolean> {
    return this.#run('INSERT OR IGNORE INTO init_sets (code_sha256, handler, bundle_sha256, body) VALUES (?, ?, ?, ?)', set.codeSha256, set.handler, set.bundleSha256, JSON.stringify(set)) > 0;
  }

  async getInitSet(codeSha256: string, handler: string): Promise<InitSet | null> {
    const row = this.#get('SELECT body FROM init_sets WHERE code_sha256 = ? AND handler = ?', codeSha256, handler);
    return row ? JSON.parse(row.body as string) : null;
  }

  async deleteInitSets(codeSha256: string): Promise<string[]> {
    const bundles = this.#all('SELECT DISTINCT bundle_sha256 FROM init_sets WHERE code_sha256 = ?', codeSha256).map((r) => r.bundle_sha256 as string);
    this.#run('DELETE FROM init_sets WHERE code_sha256 = ?', codeSha256);
    // Content-addressed: another package whose init reads the same files has the same bundle.
    return bundles.filter((b) => !this.#get('SELECT 1 FROM init_sets WHERE bundle_sha256 = ? LIMIT 1', b));
  }

  async putProvisioned(cfg: ProvisionedConfig): Promise<void> {
    this.#run('INSERT OR REPLACE INTO provisioned (function_name, qualifier, count, updated_at) VALUES (?, ?, ?, ?)', cfg.functionName, cfg.qualifier, cfg.count, cfg.updatedAt);
  }

  async listProvisioned(functionName?: string): Promise<ProvisionedConfig[]> {
    const rows = functionName === undefined
      ? this.#all('SELECT * FROM provisioned ORDER BY function_name, qualifier')
      : this.#all('SELECT * FROM provisioned WHERE function_name = ? ORDER BY qualifier', functionName);
    return rows.map((r) => ({ functionName: r.function_name as string, qualifier: r.qualifier as string, count: Number(r.count), updatedAt: Number(r.updated_at) }));
  }

  async putPolicy(p: FunctionPolicy): Promise<void> {
    this.#run('INSERT OR REPLACE INTO policies (function_name, spec, updated_at) VALUES (?, ?, ?)', p.functionName, p.spec, p.updatedAt);
  }

  async listPolicies(): Promise<FunctionPolicy[]> {
    return this.#all('SELECT * FROM policies ORDER BY function_name').map((r) => ({ functionName: r.function_name as string, spec: r.spec as string, updatedAt: Number(r.updated_at) }));
  }

  async deletePolicy(functionName: string): Promise<boolean> {
    return this.#run('DELETE FROM policies WHERE function_name = ?', functionName) > 0;
  }

  async putSchedule(sc: Schedule): Promise<void> {
    this.#run('INSERT OR REPLACE INTO schedules (id, function_name, body) VALUES (?, ?, ?)', sc.id, sc.functionName, JSON.stringify(sc));
  }

  async claimSchedule(sc: Schedule, expectedNextAt: number): Promise<boolean> {
    return this.#run("UPDATE schedules SET body = ? WHERE id = ? AND json_extract(body, '$.nextAt') = ?", JSON.stringify(sc), sc.id, expectedNextAt) > 0;
  }

  async listSchedules(functionName?: string): Promise<Schedule[]> {
    const rows = functionName === undefined
      ? this.#all('SELECT body FROM schedules ORDER BY function_name, id')
      : this.#all('SELECT body FROM schedules WHERE function_name = ? ORDER BY id', functionName);
    return rows.map((r) => JSON.parse(r.body as string) as Schedule);
  }

  createNetwork(n: NetworkRecord): Promise<void> { return this.#createNamed('networks', n, 'THAW_E_NETWORK_EXISTS', 'network'); }
  getNetwork(name: string): Promise<NetworkRecord | null> { return this.#getNamed('networks', name); }
  listNetworks(): Promise<NetworkRecord[]> { return this.#listNamed('networks'); }
  deleteNetwork(name: string): Promise<boolean> { return this.#deleteNamed('networks', name); }

  createSecurityGroup(g: SecurityGroupRecord): Promise<void> { return this.#createNamed('security_groups', g, 'THAW_E_SECURITY_GROUP_EXISTS', 'security group'); }
  getSecurityGroup(name: string): Promise<SecurityGroupRecord | null> { return this.#getNamed('security_groups', name); }
  listSecurityGroups(): Promise<SecurityGroupRecord[]> { return this.#listNamed('security_groups'); }
  deleteSecurityGroup(name: string): Promise<boolean> { return this.#deleteNamed('security_groups', name); }

  // Tables of records kept whole as JSON under a unique name (networks, security groups).
  async #createNamed(table: NamedTable, r: { name: string }, exists: ErrorCode, what: string): Promise<void> {
    this.#tx(() => {
      if (this.#get(`SELECT name FROM ${table} WHERE name = ?`, r.name)) throw new ThawError(exists, `${what} ${r.name} already exists`);
      this.#run(`INSERT INTO ${table} (name, body) VALUES (?, ?)`, r.name, JSON.stringify(r));
    });
  }

  async #getNamed<T>(table: NamedTable, name: string): Promise<T | null> {
    const row = this.#get(`SELECT body FROM ${table} WHERE name = ?`, name);
    return row ? JSON.parse(row.body as string) as T : null;
  }

  async #listNamed<T>(table: NamedTable): Promise<T[]> {
    return this.#all(`SELECT body FROM ${table} ORDER BY name`).map((r) => JSON.parse(r.body as string) as T);
  }

  async #deleteNamed(table: NamedTable, name: string): Promise<boolean> {
    return this.#run(`DELETE FROM ${table} WHERE name = ?`, name) > 0;
  }

  async createKey(key: AccessKey): Promise<void> {
    this.#run('INSERT INTO access_keys (id, revoked_at, body) VALUES (?, ?, ?)', key.id, key.revokedAt, JSON.stringify(key));
  }

  async getKey(id: string): Promise<AccessKey | null> {
    const row = this.#get('SELECT body FROM access_keys WHERE id = ?', id);
    return row ? JSON.parse(row.body as string) as AccessKey : null;
  }

  async listKeys(): Promise<AccessKey[]> {
    return this.#all('SELECT body FROM access_keys ORDER BY id').map((r) => JSON.parse(r.body as string) as AccessKey);
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    return this.#tx(() => {
      const row = this.#get('SELECT body FROM access_keys WHERE id = ? AND revoked_at IS NULL', id);
      if (!row) return false;
      const key = { ...(JSON.parse(row.body as string) as AccessKey), revokedAt: at };
      this.#run('UPDATE access_keys SET revoked_at = ?, body = ? WHERE id = ?', at, JSON.stringify(key), id);
      return true;
    });
  }

  /**
   * Asked on every request: answered from the last look while nothing has written since, on this
   * connection (#writes) or another (SQLite's data_version, e.g. `thaw keys create --data DIR`).
   */
  async hasActiveKeys(): Promise<boolean> {
    const dataVersion = Number(this.#get('PRAGMA data_version')!.data_version);
    const c = this.#activeKeys;
    if (c && c.writes === this.#writes && c.dataVersion === dataVersion) return c.value;
    const value = this.#get('SELECT 1 AS one FROM access_keys WHERE revoked_at IS NULL LIMIT 1') !== undefined;
    this.#activeKeys = { writes: this.#writes, dataVersion, value };
    return value;
  }

  async deleteSchedule(id: string): Promise<boolean> {
    return this.#run('DELETE FROM schedules WHERE id = ?', id) > 0;
  }

  async deleteProvisioned(functionName: string, qualifier: string): Promise<boolean> {
    return this.#run('DELETE FROM provisioned WHERE function_name = ? AND qualifier = ?', functionName, qualifier) > 0;
  }

  async putFunctionUrl(u: FunctionUrlRecord, create: boolean): Promise<void> {
    this.#tx(() => {
      if (!this.#get('SELECT 1 FROM functions WHERE name = ?', u.functionName)) throw notFound(u.functionName);
      const exists = this.#get('SELECT 1 FROM function_urls WHERE function_name = ? AND qualifier = ?', u.functionName, u.qualifier);
      if (create && exists) throw new ThawError('THAW_E_FUNCTION_URL_EXISTS', `function ${u.functionName}:${u.qualifier} already has a function URL`);
      if (!create && !exists) throw new ThawError('THAW_E_FUNCTION_URL_NOT_FOUND', `function ${u.functionName}:${u.qualifier} has no function URL`);
      this.#run('INSERT OR REPLACE INTO function_urls (function_name, qualifier, url_id, body) VALUES (?, ?, ?, ?)', u.functionName, u.qualifier, u.urlId, JSON.stringify(u));
    });
  }

  async getFunctionUrl(functionName: string, qualifier: string): Promise<FunctionUrlRecord | null> {
    const row = this.#get('SELECT body FROM function_urls WHERE function_name = ? AND qualifier = ?', functionName, qualifier);
    return row ? JSON.parse(row.body as string) as FunctionUrlRecord : null;
  }

  async getFunctionUrlById(urlId: string): Promise<FunctionUrlRecord | null> {
    const row = this.#get('SELECT body FROM function_urls WHERE url_id = ?', urlId);
    return row ? JSON.parse(row.body as string) as FunctionUrlRecord : null;
  }

  async listFunctionUrls(functionName: string): Promise<FunctionUrlRecord[]> {
    return this.#all('SELECT body FROM function_urls WHERE function_name = ? ORDER BY qualifier', functionName).map((r) => JSON.parse(r.body as string) as FunctionUrlRecord);
  }

  async deleteFunctionUrl(functionName: string, qualifier: string): Promise<boolean> {
    return this.#run('DELETE FROM function_urls WHERE function_name = ? AND qualifier = ?', functionName, qualifier) > 0;
  }

  async getResourcePolicy(functionName: string, qualifier: string): Promise<ResourcePolicy | null> {
    const row = this.#get('SELECT body FROM resource_policies WHERE function_name = ? AND qualifier = ?', functionName, qualifier);
    return row ? JSON.parse(row.body as string) as ResourcePolicy : null;
  }

  async putResourcePolicy(p: ResourcePolicy, expectedRevisionId: string | null): Promise<void> {
    this.#tx(() => {
      if (!this.#get('SELECT 1 FROM functions WHERE name = ?', p.functionName)) throw notFound(p.functionName);
      const current = this.#get('SELECT revision_id FROM resource_policies WHERE function_name = ? AND qualifier = ?', p.functionName, p.qualifier);
      const revision = (current?.revision_id as string | undefined) ?? null;
      if (revision !== expectedRevisionId) {
        throw new ThawError('THAW_E_REVISION_MISMATCH', `the policy of ${p.functionName}:${p.qualifier} has revision ${revision ?? '(none)'}, not ${expectedRevisionId ?? '(none)'}`);
      }
      if (p.statements.length === 0) this.#run('DELETE FROM resource_policies WHERE function_name = ? AND qualifier = ?', p.functionName, p.qualifier);
      else this.#run('INSERT OR REPLACE INTO resource_policies (function_name, qualifier, revision_id, body) VALUES (?, ?, ?, ?)', p.functionName, p.qualifier, p.revisionId, JSON.stringify(p));
    });
  }

  async recordCall(caller: string, callee: string, at: number): Promise<void> {
    this.#run(`INSERT INTO calls (caller, callee, count, last_at) VALUES (?, ?, 1, ?)
               ON CONFLICT (caller, callee) DO UPDATE SET count = count + 1, last_at = excluded.last_at`, caller, callee, at);
  }

  async listCalls(caller?: string): Promise<CallEdge[]> {
    const rows = caller === undefined
      ? this.#all('SELECT * FROM calls ORDER BY count DESC, caller, callee')
      : this.#all('SELECT * FROM calls WHERE caller = ? ORDER BY count DESC, callee', caller);
    return rows.map((r) => ({ caller: r.caller as string, callee: r.callee as string, count: Number(r.count), lastAt: Number(r.last_at) }));
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#worker?.close();
    // The last connection to close checkpoints the rest of the log into the file.
    this.#db.close();
  }

  [Symbol.asyncDispose](): Promise<void> { return this.close(); }
}

function migrate(db: DatabaseSync) {
  const current = Number((db.prepare('PRAGMA user_version').get() as { user_version: number }).user_version);
  if (current > MIGRATIONS.length) throw new Error(`the database has schema version ${current}, newer than this Thaw (${MIGRATIONS.length}); upgrade Thaw`);
  for (let v = current; v < MIGRATIONS.length; v++) {
    db.exec('BEGIN IMMEDIATE');
    try {
      db.exec(MIGRATIONS[v]);
      db.exec(`PRAGMA user_version = ${v + 1}`);
      db.exec('COMMIT');
    } catch (err) {
      db.exec('ROLLBACK');
      throw err;
    }
  }
}

export const notFound = (name: string) => new ThawError('THAW_E_FUNCTION_NOT_FOUND', `function ${name} does not exist`);

/** Same code and configuration: publishing again would add a version identical to the previous one. */
export function sameConfig(a: FunctionVersion, b: FunctionVersion): boolean {
  return JSON.stringify(sortKeys(a.config)) === JSON.stringify(sortKeys(b.config));
}

function sortKeys(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v && typeof v === 'object') return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sortKeys((v as Record<string, unknown>)[k])]));
  return v;
}

export function toFunction(r: Row): FunctionRecord {
  return {
    name: r.name as string,
    createdAt: Number(r.created_at),
    updatedAt: Number(r.updated_at),
    latest: JSON.parse(r.latest as string),
    lastPublished: Number(r.last_published),
    reservedConcurrency: r.reserved_concurrency === null ? null : Number(r.reserved_concurrency),
    logRetentionDays: r.log_retention_days === null || r.log_retention_days === undefined ? null : Number(r.log_retention_days),
  };
}

export function toLogLine(r: Row): LogLine {
  return {
    seq: Number(r.seq), at: Number(r.at), functionName: r.function_name as string, version: r.version as string, instanceId: r.instance_id as string,
    invocationId: (r.invocation_id as string | null) ?? null, stream: r.stream as LogLine['stream'], line: r.line as string,
  };
}

export function toEvent(r: Row): QueuedEvent {
  return {
    id: r.id as string, functionName: r.function_name as string, qualifier: r.qualifier as string, payload: r.payload as string,
    attempts: Number(r.attempts), enqueuedAt: Number(r.enqueued_at), nextAttemptAt: Number(r.next_attempt_at),
    ...(r.depth !== undefined && Number(r.depth) > 0 ? { depth: Number(r.depth) } : {}),
  };
}
