// The shared Store: PostgreSQL through a `pg` pool, for several Thaw processes on one database. Same tables
// and semantics as the SQLite store (sqlite.ts); what differs is what sharing needs: versioned migrations
// taken under an advisory lock (two processes starting on an empty database migrate once), row locks where
// SQLite's BEGIN IMMEDIATE serialized a read-then-write, event leases taken with FOR UPDATE SKIP LOCKED (two
// control planes never take one event), and telemetry written a batch per statement. Imports src/core and pg.
import { createHash } from 'node:crypto';
import pg from 'pg';
import { ThawError, isThawError, type ErrorCode } from '../core/errors.ts';
import { LATEST, type LayerPermission, type LayerVersion, type AccessKey, type NetworkRecord, type SecurityGroupRecord, type DeadLetter, type EventInvokeConfig, type Alias, type FunctionRecord, type FunctionVersion, type InvocationRecord, type LogLine, type FunctionPolicy, type FunctionUrlRecord, type ResourcePolicy, type ProvisionedConfig, type Schedule, type QueuedEvent, type SnapshotRecord, type InitSet } from '../core/types.ts';
import { notFound, sameConfig, toEvent, toFunction, toLogLine } from './sqlite.ts';
import type { CallEdge, InvocationQuery, LogQuery, Store } from './types.ts';

/** Each entry moves the schema one version forward; never edit a released one, append a new one. */
const MIGRATIONS: { name: string; sql: string }[] = [
  {
    // The SQLite schema as of its 10th migration (and the lease owner of its 11th), in PostgreSQL's types: epoch ms are BIGINT, bodies JSON text.
    name: 'initial schema',
    sql: `CREATE TABLE functions (
       name TEXT PRIMARY KEY,
       created_at BIGINT NOT NULL,
       updated_at BIGINT NOT NULL,
       latest TEXT NOT NULL,
       latest_code TEXT NOT NULL,
       last_published BIGINT NOT NULL DEFAULT 0,
       reserved_concurrency BIGINT
     );
     CREATE INDEX functions_code ON functions(latest_code);
     CREATE TABLE versions (
       function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
       version TEXT NOT NULL,
       number BIGINT NOT NULL,
       revision_id TEXT NOT NULL,
       code_sha256 TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, version)
     );
     CREATE INDEX versions_code ON versions(code_sha256);
     CREATE TABLE aliases (
       function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
       name TEXT NOT NULL,
       function_version TEXT NOT NULL,
       routing_version TEXT,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, name)
     );
     CREATE TABLE invocations (
       id TEXT COLLATE "C" PRIMARY KEY,
       function_name TEXT NOT NULL,
       received_at BIGINT NOT NULL,
       body TEXT NOT NULL
     );
     CREATE INDEX invocations_time ON invocations(received_at, id);
     CREATE INDEX invocations_fn_time ON invocations(function_name, received_at, id);
     CREATE TABLE logs (
       seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
       at BIGINT NOT NULL,
       function_name TEXT NOT NULL,
       version TEXT NOT NULL,
       instance_id TEXT NOT NULL,
       invocation_id TEXT,
       stream TEXT NOT NULL,
       line TEXT NOT NULL
     );
     CREATE INDEX logs_fn ON logs(function_name, seq);
     CREATE INDEX logs_invocation ON logs(invocation_id);
     CREATE TABLE events (
       id TEXT PRIMARY KEY,
       function_name TEXT NOT NULL,
       qualifier TEXT NOT NULL,
       payload TEXT NOT NULL,
       attempts BIGINT NOT NULL,
       enqueued_at BIGINT NOT NULL,
       next_attempt_at BIGINT NOT NULL,
       leased_until BIGINT,
       leases BIGINT NOT NULL DEFAULT 0,
       depth BIGINT NOT NULL DEFAULT 0,
       lease_owner TEXT
     );
     CREATE INDEX events_due ON events(next_attempt_at, enqueued_at);
     CREATE TABLE calls (
       caller TEXT NOT NULL,
       callee TEXT NOT NULL,
       count BIGINT NOT NULL,
       last_at BIGINT NOT NULL,
       PRIMARY KEY (caller, callee)
     );
     CREATE TABLE snapshots (
       function_name TEXT NOT NULL,
       version TEXT NOT NULL,
       sha256 TEXT,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, version)
     );
     CREATE INDEX snapshots_sha ON snapshots(sha256);
     CREATE TABLE provisioned (
       function_name TEXT NOT NULL,
       qualifier TEXT NOT NULL,
       count BIGINT NOT NULL,
       updated_at BIGINT NOT NULL,
       PRIMARY KEY (function_name, qualifier)
     );
     CREATE TABLE policies (
       function_name TEXT PRIMARY KEY,
       spec TEXT NOT NULL,
       updated_at BIGINT NOT NULL
     );
     CREATE TABLE schedules (
       id TEXT PRIMARY KEY,
       function_name TEXT NOT NULL,
       body TEXT NOT NULL
     );
     CREATE INDEX schedules_fn ON schedules(function_name);
     CREATE TABLE access_keys (
       id TEXT PRIMARY KEY,
       revoked_at BIGINT,
       body TEXT NOT NULL
     );
     CREATE TABLE event_invoke_configs (
       function_name TEXT NOT NULL,
       qualifier TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, qualifier)
     );
     CREATE TABLE dead_letters (
       id TEXT PRIMARY KEY,
       function_name TEXT NOT NULL,
       failed_at BIGINT NOT NULL,
       body TEXT NOT NULL
     );
     CREATE INDEX dead_letters_fn ON dead_letters(function_name, failed_at);
     CREATE TABLE networks (
       name TEXT PRIMARY KEY,
       body TEXT NOT NULL
     );
     CREATE TABLE security_groups (
       name TEXT PRIMARY KEY,
       body TEXT NOT NULL
     );
     CREATE TABLE function_urls (
       function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
       qualifier TEXT NOT NULL,
       url_id TEXT NOT NULL UNIQUE,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, qualifier)
     );
     CREATE TABLE resource_policies (
       function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
       qualifier TEXT NOT NULL,
       revision_id TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (function_name, qualifier)
     );
     CREATE TABLE layers (
       name TEXT PRIMARY KEY,
       last_version BIGINT NOT NULL
     );
     CREATE TABLE layer_versions (
       name TEXT NOT NULL,
       version BIGINT NOT NULL,
       sha256 TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (name, version)
     );
     CREATE INDEX layer_versions_sha ON layer_versions(sha256);
     CREATE TABLE layer_permissions (
       name TEXT NOT NULL,
       version BIGINT NOT NULL,
       statement_id TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (name, version, statement_id)
     );
     CREATE TABLE function_tags (
       function_name TEXT NOT NULL REFERENCES functions(name) ON DELETE CASCADE,
       key TEXT NOT NULL,
       value TEXT NOT NULL,
       PRIMARY KEY (function_name, key)
     );`,
  },
  // A function's log retention in days (Thaw's setting; Lambda keeps it on the log group); NULL: no age limit.
  { name: 'log retention', sql: 'ALTER TABLE functions ADD COLUMN log_retention_days BIGINT' },
  // The files a package's init read, per handler, and their bundle in the origin (on-demand code loading).
  {
    name: 'init sets',
    sql: `CREATE TABLE init_sets (
       code_sha256 TEXT NOT NULL,
       handler TEXT NOT NULL,
       bundle_sha256 TEXT NOT NULL,
       body TEXT NOT NULL,
       PRIMARY KEY (code_sha256, handler)
     )`,
  },
];

/** Thaw's tables: a database holding one of them without Thaw's migration table belongs to something else. */
const THAW_TABLES = ['functions', 'versions', 'aliases', 'invocations', 'logs', 'events', 'calls', 'snapshots', 'provisioned', 'policies', 'schedules',
  'access_keys', 'event_invoke_configs', 'dead_letters', 'networks', 'security_groups', 'function_urls', 'resource_policies', 'layers', 'layer_versions',
  'layer_permissions', 'function_tags'];

/** How long a statement waits for a row lock before failing as THAW_E_STORE_BUSY (SQLite's busy timeout is 5 s too). */
const LOCK_TIMEOUT_MS = 5000;

/** The advisory lock migrations hold ("thaw" in ASCII): one process migrates at a time. */
const MIGRATION_LOCK = 0x74686177;

type Row = Record<string, any>;
type Queryable = pg.Pool | pg.PoolClient;
type NamedTable = 'networks' | 'security_groups';

/** BIGINT columns hold epoch ms and counts, all below 2^53: read as numbers rather than strings. */
const types = {
  getTypeParser(oid: number, format?: string): unknown {
    if (oid === pg.types.builtins.INT8) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

export class PostgresStore implements Store {
  readonly kind = 'postgres';
  readonly #pool: pg.Pool;
  /** The URL without its password, for messages. */
  readonly #where: string;
  #closed: Promise<void> | null = null;

  private constructor(pool: pg.Pool, where: string) {
    this.#pool = pool;
    this.#where = where;
  }

  /** Connects, checks the database is Thaw's (or empty), and brings its schema up to date. */
  static async open(url: string, options: { maxConnections?: number } = {}): Promise<PostgresStore> {
    const where = redactUrl(url);
    // lock_timeout: a row another session keeps locked (an operator's open transaction) fails the call as busy
    // after 5 s, as SQLite's busy timeout does, instead of holding a pooled connection until it is let go.
    const pool = new pg.Pool({ connectionString: url, max: options.maxConnections ?? 10, connectionTimeoutMillis: 10_000, idleTimeoutMillis: 30_000, lock_timeout: LOCK_TIMEOUT_MS, types: types as pg.CustomTypesConfig });
    // An idle connection the server cut (a restart) is dropped by the pool; the next query opens another.
    pool.on('error', () => {});
    const store = new PostgresStore(pool, where);
    try {
      await store.#migrate();
    } catch (err) {
      await pool.end().catch(() => {});
      if ((err as { code?: unknown }).code === 'ERR_INVALID_URL') {
        throw new ThawError('THAW_E_CONFIG_INVALID', `the store URL ${where} is not a valid URL; percent-encode the special characters of the user and password (@ as %40, / as %2F, # as %23, : as %3A, % as %25)`);
      }
      throw isThawError(err) ? err : unavailable(where, err);
    }
    return store;
  }

  async #migrate(): Promise<void> {
    for (;;) {
      const done = await this.#tx(async (c) => {
        // Another process's migration may take longer than lock_timeout on a slow machine: wait it out.
        await c.query('SET LOCAL lock_timeout = 0');
        await c.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
        const current = await this.#schemaVersion(c);
        if (current > MIGRATIONS.length) {
          throw new ThawError('THAW_E_STORE_INCOMPATIBLE', `the PostgreSQL store at ${this.#where} has schema version ${current}, newer than this Thaw (${MIGRATIONS.length}); upgrade Thaw`);
        }
        if (current === MIGRATIONS.length) return true;
        const m = MIGRATIONS[current];
        if (current === 0) await c.query('CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())');
        await c.query(m.sql);
        await c.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [current + 1, m.name]);
        return false;
      });
      if (done) return;
    }
  }

  /** The applied schema version (0: an empty database); refuses a database that holds another program's tables. */
  async #schemaVersion(c: Queryable): Promise<number> {
    const columns = (await c.query(`SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = 'schema_migrations' ORDER BY column_name`)).rows.map((r) => r.column_name as string);
    if (columns.length === 0) {
      const taken = (await c.query('SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = ANY($1) ORDER BY table_name', [THAW_TABLES])).rows.map((r) => r.table_name as string);
      if (taken.length) throw this.#foreign(`it has table(s) ${taken.join(', ')} but no schema_migrations table`);
      return 0;
    }
    if (columns.join(',') !== 'applied_at,name,version') throw this.#foreign(`its schema_migrations table has columns ${columns.join(', ')}, not Thaw's (version, name, applied_at)`);
    return Number((await c.query('SELECT coalesce(max(version), 0) AS v FROM schema_migrations')).rows[0].v);
  }

  #foreign(why: string): ThawError {
    return new ThawError('THAW_E_STORE_INCOMPATIBLE', `the PostgreSQL database at ${this.#where} is not a Thaw store: ${why}; give Thaw an empty database (CREATE DATABASE thaw) or one it created`);
  }

  /** Runs fn in one transaction on one connection; rolls back if it throws. */
  async #tx<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    const c = await this.#pool.connect().catch((err) => { throw this.#lost(err); });
    let broken = false;
    try {
      await c.query('BEGIN');
      const out = await fn(c);
      await c.query('COMMIT');
      return out;
    } catch (err) {
      await c.query('ROLLBACK').catch(() => { broken = true; });
      throw this.#lost(err);
    } finally {
      c.release(broken);
    }
  }

  async #all(c: Queryable, sql: string, params: unknown[] = []): Promise<Row[]> {
    return (await this.#query(c, sql, params)).rows;
  }

  async #query(c: Queryable, sql: string, params: unknown[]): Promise<pg.QueryResult> {
    try {
      return await c.query({ name: statementName(sql), text: sql, values: params });
    } catch (err) {
      throw this.#lost(err);
    }
  }

  /** A lost server (stopped, restarted, unreachable) is the operator's to fix, not a bug: said so, with where. */
  #lost(err: unknown): unknown {
    if (!isThawError(err) && (err as { code?: unknown }).code === '55P03') {
      return new ThawError('THAW_E_STORE_BUSY', `a row of the PostgreSQL store at ${this.#where} stayed locked by another transaction for ${LOCK_TIMEOUT_MS / 1000} s (lock_timeout)`, { cause: err });
    }
    return !isThawError(err) && connectionLost(err) ? unavailable(this.#where, err) : err;
  }

  async #get(c: Queryable, sql: string, params: unknown[] = []): Promise<Row | undefined> {
    return (await this.#all(c, sql, params))[0];
  }

  async #run(c: Queryable, sql: string, params: unknown[] = []): Promise<number> {
    return (await this.#query(c, sql, params)).rowCount ?? 0;
  }

  async #functionExists(c: Queryable, name: string, lock = false): Promise<boolean> {
    return Boolean(await this.#get(c, `SELECT 1 FROM functions WHERE name = $1${lock ? ' FOR UPDATE' : ''}`, [name]));
  }

  async createFunction(fn: FunctionRecord, tags: Readonly<Record<string, string>> = {}): Promise<void> {
    await this.#tx(async (c) => {
      const made = await this.#run(c, `INSERT INTO functions (name, created_at, updated_at, latest, latest_code, last_published, reserved_concurrency)
        VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (name) DO NOTHING`,
        [fn.name, fn.createdAt, fn.updatedAt, JSON.stringify(fn.latest), fn.latest.config.codeSha256, fn.lastPublished, fn.reservedConcurrency]);
      if (made === 0) throw new ThawError('THAW_E_FUNCTION_EXISTS', `function ${fn.name} already exists`);
      const entries = Object.entries(tags);
      if (entries.length) {
        await this.#run(c, 'INSERT INTO function_tags (function_name, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)',
          [fn.name, entries.map(([k]) => k), entries.map(([, v]) => text(v))]);
      }
    });
  }

  async getTags(name: string): Promise<Record<string, string> | null> {
    if (!(await this.#functionExists(this.#pool, name))) return null;
    return this.#tagsOf(this.#pool, name);
  }

  async #tagsOf(c: Queryable, name: string): Promise<Record<string, string>> {
    return Object.fromEntries((await this.#all(c, 'SELECT key, value FROM function_tags WHERE function_name = $1 ORDER BY key', [name])).map((r) => [r.key as string, r.value as string]));
  }

  async tagFunction(name: string, tags: Readonly<Record<string, string>>, maxTags: number): Promise<Record<string, string>> {
    return this.#tx(async (c) => {
      // The function's row lock serializes TagResource calls on it, so the count checked is the count kept.
      if (!(await this.#functionExists(c, name, true))) throw notFound(name);
      const entries = Object.entries(tags);
      await this.#run(c, `INSERT INTO function_tags (function_name, key, value) SELECT $1, k, v FROM unnest($2::text[], $3::text[]) AS t(k, v)
        ON CONFLICT (function_name, key) DO UPDATE SET value = excluded.value`, [name, entries.map(([k]) => k), entries.map(([, v]) => text(v))]);
      const all = await this.#tagsOf(c, name);
      // Thrown inside the transaction: nothing of a refused TagResource is kept.
      if (Object.keys(all).length > maxTags) throw new ThawError('THAW_E_TAGS_INVALID', `function ${name} would have ${Object.keys(all).length} tags; the limit is ${maxTags}`);
      return all;
    });
  }

  async untagFunction(name: string, keys: readonly string[]): Promise<void> {
    await this.#tx(async (c) => {
      if (!(await this.#functionExists(c, name, true))) throw notFound(name);
      await this.#run(c, 'DELETE FROM function_tags WHERE function_name = $1 AND key = ANY($2::text[])', [name, [...keys]]);
    });
  }

  async getFunction(name: string): Promise<FunctionRecord | null> {
    const row = await this.#get(this.#pool, 'SELECT * FROM functions WHERE name = $1', [name]);
    return row ? toFunction(row) : null;
  }

  async listFunctions(): Promise<FunctionRecord[]> {
    return (await this.#all(this.#pool, 'SELECT * FROM functions ORDER BY name COLLATE "C"')).map(toFunction);
  }

  async updateLatest(name: string, latest: FunctionVersion, updatedAt: number, expectedRevisionId?: string): Promise<void> {
    await this.#tx(async (c) => {
      const row = await this.#get(c, 'SELECT latest FROM functions WHERE name = $1 FOR UPDATE', [name]);
      if (!row) throw notFound(name);
      const current = JSON.parse(row.latest as string) as FunctionVersion;
      if (expectedRevisionId !== undefined && current.revisionId !== expectedRevisionId) {
        throw new ThawError('THAW_E_REVISION_MISMATCH', `function ${name} has revision ${current.revisionId}, not ${expectedRevisionId}`);
      }
      await this.#run(c, 'UPDATE functions SET latest = $1, latest_code = $2, updated_at = $3 WHERE name = $4', [JSON.stringify(latest), latest.config.codeSha256, updatedAt, name]);
    });
  }

  async setReservedConcurrency(name: string, limit: number | null): Promise<void> {
    if (await this.#run(this.#pool, 'UPDATE functions SET reserved_concurrency = $1 WHERE name = $2', [limit, name]) === 0) throw notFound(name);
  }

  async setLogRetention(name: string, days: number | null): Promise<void> {
    if (await this.#run(this.#pool, 'UPDATE functions SET log_retention_days = $1 WHERE name = $2', [days, name]) === 0) throw notFound(name);
  }

  async deleteFunction(name: string): Promise<void> {
    await this.#tx(async (c) => {
      if (await this.#run(c, 'DELETE FROM functions WHERE name = $1', [name]) === 0) throw notFound(name);
      // Versions and aliases go by ON DELETE CASCADE; invocation records and call edges stay as history.
      for (const table of ['logs', 'events', 'event_invoke_configs', 'dead_letters', 'snapshots', 'provisioned', 'policies', 'schedules']) {
        await this.#run(c, `DELETE FROM ${table} WHERE function_name = $1`, [name]);
      }
    });
  }

  async publishVersion(name: string, createdAt: number, description?: string): Promise<FunctionVersion> {
    return this.#tx(async (c) => {
      // The row lock makes concurrent publishes of one function take turns: the second sees the first's version.
      const row = await this.#get(c, 'SELECT latest, last_published FROM functions WHERE name = $1 FOR UPDATE', [name]);
      if (!row) throw notFound(name);
      const current = JSON.parse(row.latest as string) as FunctionVersion;
      // A version's own Description (PublishVersion's) replaces $LATEST's in what is published.
      const latest = description === undefined ? current : { ...current, config: { ...current.config, description } };
      const newest = await this.#get(c, 'SELECT body FROM versions WHERE function_name = $1 ORDER BY number DESC LIMIT 1', [name]);
      if (newest) {
        const prev = JSON.parse(newest.body as string) as FunctionVersion;
        // Lambda publishes nothing new when neither code nor configuration changed since the last version.
        if (prev.revisionId === latest.revisionId || sameConfig(prev, latest)) return prev;
      }
      const number = Number(row.last_published) + 1;
      const v: FunctionVersion = { ...latest, version: String(number), createdAt };
      await this.#run(c, 'INSERT INTO versions (function_name, version, number, revision_id, code_sha256, body) VALUES ($1, $2, $3, $4, $5, $6)',
        [name, v.version, number, v.revisionId, v.config.codeSha256, JSON.stringify(v)]);
      await this.#run(c, 'UPDATE functions SET last_published = $1 WHERE name = $2', [number, name]);
      return v;
    });
  }

  async getVersion(name: string, version: string): Promise<FunctionVersion | null> {
    if (version === LATEST) return (await this.getFunction(name))?.latest ?? null;
    const row = await this.#get(this.#pool, 'SELECT body FROM versions WHERE function_name = $1 AND version = $2', [name, version]);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listVersions(name: string): Promise<FunctionVersion[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM versions WHERE function_name = $1 ORDER BY number', [name])).map((r) => JSON.parse(r.body as string));
  }

  async deleteVersion(name: string, version: string): Promise<void> {
    await this.#tx(async (c) => {
      // Locked like putAlias locks it: an alias cannot come to point at the version while it goes.
      await this.#functionExists(c, name, true);
      const user = await this.#get(c, 'SELECT name FROM aliases WHERE function_name = $1 AND (function_version = $2 OR routing_version = $2) LIMIT 1', [name, version]);
      if (user) throw new ThawError('THAW_E_REQUEST_INVALID', `version ${version} of ${name} is used by alias ${user.name}; move the alias first`);
      if (await this.#run(c, 'DELETE FROM versions WHERE function_name = $1 AND version = $2', [name, version]) === 0) {
        throw new ThawError('THAW_E_VERSION_NOT_FOUND', `function ${name} has no version ${version}`);
      }
      await this.#run(c, 'DELETE FROM resource_policies WHERE function_name = $1 AND qualifier = $2', [name, version]);
    });
  }

  async putAlias(alias: Alias, create: boolean): Promise<void> {
    await this.#tx(async (c) => {
      if (!(await this.#functionExists(c, alias.functionName, true))) throw notFound(alias.functionName);
      const exists = await this.#get(c, 'SELECT 1 FROM aliases WHERE function_name = $1 AND name = $2', [alias.functionName, alias.name]);
      if (create && exists) throw new ThawError('THAW_E_ALIAS_EXISTS', `alias ${alias.name} of ${alias.functionName} already exists`);
      if (!create && !exists) throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${alias.functionName} has no alias ${alias.name}`);
      await this.#run(c, `INSERT INTO aliases (function_name, name, function_version, routing_version, body) VALUES ($1, $2, $3, $4, $5)
        ON CONFLICT (function_name, name) DO UPDATE SET function_version = excluded.function_version, routing_version = excluded.routing_version, body = excluded.body`,
        [alias.functionName, alias.name, alias.functionVersion, alias.routing?.version ?? null, JSON.stringify(alias)]);
    });
  }

  async getAlias(functionName: string, name: string): Promise<Alias | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM aliases WHERE function_name = $1 AND name = $2', [functionName, name]);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listAliases(functionName: string): Promise<Alias[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM aliases WHERE function_name = $1 ORDER BY name COLLATE "C"', [functionName])).map((r) => JSON.parse(r.body as string));
  }

  async deleteAlias(functionName: string, name: string): Promise<void> {
    await this.#tx(async (c) => {
      if (await this.#run(c, 'DELETE FROM aliases WHERE function_name = $1 AND name = $2', [functionName, name]) === 0) {
        throw new ThawError('THAW_E_ALIAS_NOT_FOUND', `function ${functionName} has no alias ${name}`);
      }
      // As on Lambda, the alias's URL and policy go with it.
      await this.#run(c, 'DELETE FROM function_urls WHERE function_name = $1 AND qualifier = $2', [functionName, name]);
      await this.#run(c, 'DELETE FROM resource_policies WHERE function_name = $1 AND qualifier = $2', [functionName, name]);
    });
  }

  async isCodeInUse(codeSha256: string): Promise<boolean> {
    if (await this.#get(this.#pool, 'SELECT 1 FROM functions WHERE latest_code = $1 UNION ALL SELECT 1 FROM versions WHERE code_sha256 = $1 UNION ALL SELECT 1 FROM layer_versions WHERE sha256 = $1 LIMIT 1', [codeSha256])) return true;
    // A version keeps a deleted layer version's content: its config names it (asked after deletes only, so a scan
    // is fine). Found as text, then checked parsed: a cast to jsonb would fail on any body that escapes a NUL.
    const named = await this.#all(this.#pool, 'SELECT latest AS body FROM functions WHERE strpos(latest, $1) > 0 UNION ALL SELECT body FROM versions WHERE strpos(body, $1) > 0', [codeSha256]);
    return named.some((r) => (JSON.parse(r.body as string) as FunctionVersion).config.layers?.some((l) => l.codeSha256 === codeSha256) ?? false);
  }

  async publishLayerVersion(layer: Omit<LayerVersion, 'version'>): Promise<LayerVersion> {
    return this.#tx(async (c) => {
      // One statement takes the next number: concurrent publishes get distinct ones.
      const row = await this.#get(c, `INSERT INTO layers (name, last_version) VALUES ($1, 1)
        ON CONFLICT (name) DO UPDATE SET last_version = layers.last_version + 1 RETURNING last_version`, [layer.name]);
      const v: LayerVersion = { ...layer, version: Number(row!.last_version) };
      await this.#run(c, 'INSERT INTO layer_versions (name, version, sha256, body) VALUES ($1, $2, $3, $4)', [v.name, v.version, v.codeSha256, JSON.stringify(v)]);
      return v;
    });
  }

  async getLayerVersion(name: string, version: number): Promise<LayerVersion | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM layer_versions WHERE name = $1 AND version = $2', [name, version]);
    return row ? JSON.parse(row.body as string) as LayerVersion : null;
  }

  async listLayerVersions(name?: string): Promise<LayerVersion[]> {
    const rows = name === undefined
      ? await this.#all(this.#pool, 'SELECT body FROM layer_versions ORDER BY name COLLATE "C", version DESC')
      : await this.#all(this.#pool, 'SELECT body FROM layer_versions WHERE name = $1 ORDER BY version DESC', [name]);
    return rows.map((r) => JSON.parse(r.body as string) as LayerVersion);
  }

  async deleteLayerVersion(name: string, version: number): Promise<boolean> {
    return this.#tx(async (c) => {
      await this.#run(c, 'DELETE FROM layer_permissions WHERE name = $1 AND version = $2', [name, version]);
      return await this.#run(c, 'DELETE FROM layer_versions WHERE name = $1 AND version = $2', [name, version]) > 0;
    });
  }

  async addLayerPermission(p: LayerPermission): Promise<void> {
    await this.#tx(async (c) => {
      if (!(await this.#get(c, 'SELECT 1 FROM layer_versions WHERE name = $1 AND version = $2 FOR SHARE', [p.layerName, p.version]))) {
        throw new ThawError('THAW_E_LAYER_NOT_FOUND', `layer ${p.layerName} has no version ${p.version}`);
      }
      const added = await this.#run(c, 'INSERT INTO layer_permissions (name, version, statement_id, body) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING',
        [p.layerName, p.version, p.statementId, JSON.stringify(p)]);
      if (added === 0) throw new ThawError('THAW_E_LAYER_PERMISSION_EXISTS', `layer ${p.layerName} version ${p.version} already has a statement ${p.statementId}`);
    });
  }

  async listLayerPermissions(name: string, version: number): Promise<LayerPermission[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM layer_permissions WHERE name = $1 AND version = $2 ORDER BY statement_id COLLATE "C"', [name, version])).map((r) => JSON.parse(r.body as string) as LayerPermission);
  }

  async removeLayerPermission(name: string, version: number, statementId: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM layer_permissions WHERE name = $1 AND version = $2 AND statement_id = $3', [name, version, statementId]) > 0;
  }

  /** One INSERT for the whole batch (arrays unnested server-side: one round trip, one statement plan). */
  async recordInvocations(recs: readonly InvocationRecord[]): Promise<void> {
    if (recs.length) await putInvocations(this.#pool, recs).catch((err) => { throw this.#lost(err); });
  }

  async getInvocation(id: string): Promise<InvocationRecord | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM invocations WHERE id = $1', [id]);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listInvocations(q: InvocationQuery): Promise<InvocationRecord[]> {
    const where: string[] = [];
    const params: unknown[] = [];
    if (q.functionName !== undefined) { params.push(q.functionName); where.push(`function_name = $${params.length}`); }
    if (q.before !== undefined) { params.push(q.before); where.push(`received_at < $${params.length}`); }
    params.push(q.limit);
    const sql = `SELECT body FROM invocations ${where.length ? `WHERE ${where.join(' AND ')}` : ''} ORDER BY received_at DESC, id DESC LIMIT $${params.length}`;
    return (await this.#all(this.#pool, sql, params)).map((r) => JSON.parse(r.body as string));
  }

  /** Keeps the newest `keep` records: finds the oldest kept on the (received_at, id) index, deletes below it. */
  async pruneInvocations(keep: number): Promise<number> {
    if (keep <= 0) return this.#run(this.#pool, 'DELETE FROM invocations');
    const cut = await this.#get(this.#pool, 'SELECT received_at, id FROM invocations ORDER BY received_at DESC, id DESC LIMIT 1 OFFSET $1', [keep - 1]);
    if (!cut) return 0;
    return this.#run(this.#pool, 'DELETE FROM invocations WHERE received_at < $1 OR (received_at = $1 AND id < $2)', [cut.received_at, cut.id]);
  }

  /** One INSERT for the whole batch; sequence numbers follow the batch's order. */
  async appendLogs(lines: Omit<LogLine, 'seq'>[]): Promise<void> {
    if (!lines.length) return;
    await this.#run(this.#pool, `INSERT INTO logs (at, function_name, version, instance_id, invocation_id, stream, line)
      SELECT at, function_name, version, instance_id, invocation_id, stream, line
      FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[]) WITH ORDINALITY
        AS t(at, function_name, version, instance_id, invocation_id, stream, line, n) ORDER BY n`,
    [lines.map((l) => l.at), lines.map((l) => l.functionName), lines.map((l) => l.version), lines.map((l) => l.instanceId),
      lines.map((l) => l.invocationId), lines.map((l) => l.stream), lines.map((l) => text(l.line))]);
  }

  async readLogs(q: LogQuery): Promise<LogLine[]> {
    const where = ['function_name = $1'];
    const params: unknown[] = [q.functionName];
    if (q.invocationId !== undefined) { params.push(q.invocationId); where.push(`invocation_id = $${params.length}`); }
    if (q.afterSeq !== undefined) {
      params.push(q.afterSeq, q.limit);
      where.push(`seq > $${params.length - 1}`);
      return (await this.#all(this.#pool, `SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY seq LIMIT $${params.length}`, params)).map(toLogLine);
    }
    // No cursor: the newest `limit` lines (a tail), oldest first.
    params.push(q.limit);
    return (await this.#all(this.#pool, `SELECT * FROM logs WHERE ${where.join(' AND ')} ORDER BY seq DESC LIMIT $${params.length}`, params)).map(toLogLine).reverse();
  }

  /**
   * Keeps each function's newest lines: one DELETE bounded by each function's cut sequence number; then,
   * given now, one DELETE of the lines older than their function's retention.
   */
  async pruneLogs(keepPerFunction: number, now?: number): Promise<number> {
    let removed = keepPerFunction <= 0 ? await this.#run(this.#pool, 'DELETE FROM logs') : await this.#run(this.#pool, `DELETE FROM logs USING (
        SELECT f.function_name, (SELECT seq FROM logs x WHERE x.function_name = f.function_name ORDER BY seq DESC LIMIT 1 OFFSET $1) AS cut
        FROM (SELECT function_name FROM logs GROUP BY function_name HAVING count(*) > $2) f
      ) c WHERE logs.function_name = c.function_name AND logs.seq < c.cut`, [keepPerFunction - 1, keepPerFunction]);
    if (now !== undefined) {
      removed += await this.#run(this.#pool, `DELETE FROM logs USING functions f
        WHERE f.log_retention_days IS NOT NULL AND logs.function_name = f.name AND logs.at < $1 - f.log_retention_days * 86400000`, [now]);
    }
    return removed;
  }

  async enqueueEvent(ev: QueuedEvent): Promise<void> {
    await insertEvent(this.#pool, ev).catch((err) => { throw this.#lost(err); });
  }

  /**
   * Takes due events in one statement: rows another process is leasing right now are skipped (SKIP LOCKED),
   * and a row leased and committed meanwhile is re-checked against the lease, so no event goes out twice.
   */
  async leaseEvents(now: number, leaseMs: number, limit: number, owner: string | null = null): Promise<QueuedEvent[]> {
    const rows = await this.#all(this.#pool, `UPDATE events SET leased_until = $2, leases = leases + 1, lease_owner = $4
      WHERE id IN (SELECT id FROM events WHERE next_attempt_at <= $1 AND (leased_until IS NULL OR leased_until <= $1)
                   ORDER BY next_attempt_at, enqueued_at LIMIT $3 FOR UPDATE SKIP LOCKED)
      RETURNING *`, [now, now + leaseMs, limit, owner]);
    rows.sort((a, b) => a.next_attempt_at - b.next_attempt_at || a.enqueued_at - b.enqueued_at);
    return rows.map((r) => ({ ...toEvent(r), leases: Number(r.leases) }));
  }

  async completeEvent(id: string, outcome: { record?: InvocationRecord | null; enqueue?: QueuedEvent | null; deadLetter?: DeadLetter | null } = {}): Promise<void> {
    await this.#tx(async (c) => {
      if (outcome.record) await putInvocations(c, [outcome.record]);
      if (outcome.enqueue) await insertEvent(c, outcome.enqueue);
      if (outcome.deadLetter) {
        const d = outcome.deadLetter;
        await this.#run(c, `INSERT INTO dead_letters (id, function_name, failed_at, body) VALUES ($1, $2, $3, $4)
          ON CONFLICT (id) DO UPDATE SET function_name = excluded.function_name, failed_at = excluded.failed_at, body = excluded.body`, [d.id, d.functionName, d.failedAt, JSON.stringify(d)]);
      }
      await this.#run(c, 'DELETE FROM events WHERE id = $1', [id]);
    });
  }

  async retryEvent(id: string, nextAttemptAt: number, record: InvocationRecord | null = null, countAttempt = true): Promise<void> {
    await this.#tx(async (c) => {
      if (record) await putInvocations(c, [record]);
      await this.#run(c, 'UPDATE events SET attempts = attempts + $1, next_attempt_at = $2, leased_until = NULL, lease_owner = NULL WHERE id = $3', [countAttempt ? 1 : 0, nextAttemptAt, id]);
    });
  }

  async releaseLeases(owner?: string): Promise<number> {
    if (owner === undefined) return this.#run(this.#pool, 'UPDATE events SET leased_until = NULL, lease_owner = NULL WHERE leased_until IS NOT NULL');
    return this.#run(this.#pool, 'UPDATE events SET leased_until = NULL, lease_owner = NULL WHERE leased_until IS NOT NULL AND lease_owner = $1', [owner]);
  }

  async renewLeases(ids: readonly string[], until: number, owner: string | null = null): Promise<number> {
    return this.#run(this.#pool, 'UPDATE events SET leased_until = $2 WHERE id = ANY($1::text[]) AND leased_until IS NOT NULL AND lease_owner IS NOT DISTINCT FROM $3', [[...ids], until, owner]);
  }

  async countEvents(): Promise<number> {
    return Number((await this.#get(this.#pool, 'SELECT count(*) AS n FROM events'))!.n);
  }

  async oldestEventAt(): Promise<number | null> {
    const at = (await this.#get(this.#pool, 'SELECT min(enqueued_at) AS at FROM events'))!.at;
    return at === null ? null : Number(at);
  }

  async putEventInvokeConfig(cfg: EventInvokeConfig): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO event_invoke_configs (function_name, qualifier, body) VALUES ($1, $2, $3)
      ON CONFLICT (function_name, qualifier) DO UPDATE SET body = excluded.body`, [cfg.functionName, cfg.qualifier, JSON.stringify(cfg)]);
  }

  async getEventInvokeConfig(functionName: string, qualifier: string): Promise<EventInvokeConfig | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM event_invoke_configs WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]);
    return row ? JSON.parse(row.body as string) as EventInvokeConfig : null;
  }

  async listEventInvokeConfigs(functionName: string): Promise<EventInvokeConfig[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM event_invoke_configs WHERE function_name = $1 ORDER BY qualifier COLLATE "C"', [functionName])).map((r) => JSON.parse(r.body as string) as EventInvokeConfig);
  }

  async deleteEventInvokeConfig(functionName: string, qualifier: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM event_invoke_configs WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]) > 0;
  }

  async listDeadLetters(functionName: string, limit: number): Promise<DeadLetter[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM dead_letters WHERE function_name = $1 ORDER BY failed_at DESC, id COLLATE "C" LIMIT $2', [functionName, limit])).map((r) => JSON.parse(r.body as string) as DeadLetter);
  }

  async getDeadLetter(id: string): Promise<DeadLetter | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM dead_letters WHERE id = $1', [id]);
    return row ? JSON.parse(row.body as string) as DeadLetter : null;
  }

  async deleteDeadLetter(id: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM dead_letters WHERE id = $1', [id]) > 0;
  }

  async putSnapshot(rec: SnapshotRecord): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO snapshots (function_name, version, sha256, body) VALUES ($1, $2, $3, $4)
      ON CONFLICT (function_name, version) DO UPDATE SET sha256 = excluded.sha256, body = excluded.body`, [rec.functionName, rec.version, rec.sha256, JSON.stringify(rec)]);
  }

  async getSnapshot(functionName: string, version: string): Promise<SnapshotRecord | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM snapshots WHERE function_name = $1 AND version = $2', [functionName, version]);
    return row ? JSON.parse(row.body as string) : null;
  }

  async listSnapshots(functionName?: string): Promise<SnapshotRecord[]> {
    // Versions are numbers (or $LATEST, which sorts first as SQLite's CAST gives it 0).
    const order = `CASE WHEN version ~ '^[0-9]+$' THEN version::bigint ELSE 0 END`;
    const rows = functionName === undefined
      ? await this.#all(this.#pool, `SELECT body FROM snapshots ORDER BY function_name COLLATE "C", ${order}`)
      : await this.#all(this.#pool, `SELECT body FROM snapshots WHERE function_name = $1 ORDER BY ${order}`, [functionName]);
    return rows.map((r) => JSON.parse(r.body as string));
  }

  async deleteSnapshot(functionName: string, version: string): Promise<void> {
    await this.#run(this.#pool, 'DELETE FROM snapshots WHERE function_name = $1 AND version = $2', [functionName, version]);
  }

  async isSnapshotInUse(sha256: string): Promise<boolean> {
    return Boolean(await this.#get(this.#pool, 'SELECT 1 FROM snapshots WHERE sha256 = $1 LIMIT 1', [sha256]));
  }

  async putInitSet(set: InitSet): Promise<boolean> {
    return await this.#run(this.#pool, `INSERT INTO init_sets (code_sha256, handler, bundle_sha256, body) VALUES ($1, $2, $3, $4)
      ON CONFLICT (code_sha256, handler) DO NOTHING`, [set.codeSha256, set.handler, set.bundleSha256, JSON.stringify(set)]) > 0;
  }

  async getInitSet(codeSha256: string, handler: string): Promise<InitSet | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM init_sets WHERE code_sha256 = $1 AND handler = $2', [codeSha256, handler]);
    return row ? JSON.parse(row.body as string) : null;
  }

  async deleteInitSets(codeSha256: string): Promise<string[]> {
    const rows = await this.#all(this.#pool, 'DELETE FROM init_sets WHERE code_sha256 = $1 RETURNING bundle_sha256', [codeSha256]);
    const bundles = [...new Set(rows.map((r) => r.bundle_sha256 as string))];
    // Content-addressed: another package whose init reads the same files has the same bundle.
    const kept = await this.#all(this.#pool, 'SELECT DISTINCT bundle_sha256 FROM init_sets WHERE bundle_sha256 = ANY($1::text[])', [bundles]);
    return bundles.filter((b) => !kept.some((r) => r.bundle_sha256 === b));
  }

  async putProvisioned(cfg: ProvisionedConfig): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO provisioned (function_name, qualifier, count, updated_at) VALUES ($1, $2, $3, $4)
      ON CONFLICT (function_name, qualifier) DO UPDATE SET count = excluded.count, updated_at = excluded.updated_at`, [cfg.functionName, cfg.qualifier, cfg.count, cfg.updatedAt]);
  }

  async listProvisioned(functionName?: string): Promise<ProvisionedConfig[]> {
    const rows = functionName === undefined
      ? await this.#all(this.#pool, 'SELECT * FROM provisioned ORDER BY function_name COLLATE "C", qualifier COLLATE "C"')
      : await this.#all(this.#pool, 'SELECT * FROM provisioned WHERE function_name = $1 ORDER BY qualifier COLLATE "C"', [functionName]);
    return rows.map((r) => ({ functionName: r.function_name as string, qualifier: r.qualifier as string, count: Number(r.count), updatedAt: Number(r.updated_at) }));
  }

  async deleteProvisioned(functionName: string, qualifier: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM provisioned WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]) > 0;
  }

  async putPolicy(p: FunctionPolicy): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO policies (function_name, spec, updated_at) VALUES ($1, $2, $3)
      ON CONFLICT (function_name) DO UPDATE SET spec = excluded.spec, updated_at = excluded.updated_at`, [p.functionName, text(p.spec), p.updatedAt]);
  }

  async listPolicies(): Promise<FunctionPolicy[]> {
    return (await this.#all(this.#pool, 'SELECT * FROM policies ORDER BY function_name COLLATE "C"')).map((r) => ({ functionName: r.function_name as string, spec: r.spec as string, updatedAt: Number(r.updated_at) }));
  }

  async deletePolicy(functionName: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM policies WHERE function_name = $1', [functionName]) > 0;
  }

  async putSchedule(sc: Schedule): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO schedules (id, function_name, body) VALUES ($1, $2, $3)
      ON CONFLICT (id) DO UPDATE SET function_name = excluded.function_name, body = excluded.body`, [sc.id, sc.functionName, JSON.stringify(sc)]);
  }

  /**
   * Of two control planes firing the same due schedule, the one that finds its nextAt still there under the
   * row lock moves it on. Compared in JS, not as jsonb: jsonb refuses a body whose payload escapes a NUL.
   */
  async claimSchedule(sc: Schedule, expectedNextAt: number): Promise<boolean> {
    return this.#tx(async (c) => {
      const row = await this.#get(c, 'SELECT body FROM schedules WHERE id = $1 FOR UPDATE', [sc.id]);
      if (!row || (JSON.parse(row.body as string) as Schedule).nextAt !== expectedNextAt) return false;
      await this.#run(c, 'UPDATE schedules SET body = $2 WHERE id = $1', [sc.id, JSON.stringify(sc)]);
      return true;
    });
  }

  async listSchedules(functionName?: string): Promise<Schedule[]> {
    const rows = functionName === undefined
      ? await this.#all(this.#pool, 'SELECT body FROM schedules ORDER BY function_name COLLATE "C", id COLLATE "C"')
      : await this.#all(this.#pool, 'SELECT body FROM schedules WHERE function_name = $1 ORDER BY id COLLATE "C"', [functionName]);
    return rows.map((r) => JSON.parse(r.body as string) as Schedule);
  }

  async deleteSchedule(id: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM schedules WHERE id = $1', [id]) > 0;
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
    if (await this.#run(this.#pool, `INSERT INTO ${table} (name, body) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, [r.name, JSON.stringify(r)]) === 0) {
      throw new ThawError(exists, `${what} ${r.name} already exists`);
    }
  }

  async #getNamed<T>(table: NamedTable, name: string): Promise<T | null> {
    const row = await this.#get(this.#pool, `SELECT body FROM ${table} WHERE name = $1`, [name]);
    return row ? JSON.parse(row.body as string) as T : null;
  }

  async #listNamed<T>(table: NamedTable): Promise<T[]> {
    return (await this.#all(this.#pool, `SELECT body FROM ${table} ORDER BY name COLLATE "C"`)).map((r) => JSON.parse(r.body as string) as T);
  }

  async #deleteNamed(table: NamedTable, name: string): Promise<boolean> {
    return await this.#run(this.#pool, `DELETE FROM ${table} WHERE name = $1`, [name]) > 0;
  }

  async createKey(key: AccessKey): Promise<void> {
    await this.#run(this.#pool, 'INSERT INTO access_keys (id, revoked_at, body) VALUES ($1, $2, $3)', [key.id, key.revokedAt, JSON.stringify(key)]);
  }

  async getKey(id: string): Promise<AccessKey | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM access_keys WHERE id = $1', [id]);
    return row ? JSON.parse(row.body as string) as AccessKey : null;
  }

  async listKeys(): Promise<AccessKey[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM access_keys ORDER BY id COLLATE "C"')).map((r) => JSON.parse(r.body as string) as AccessKey);
  }

  async revokeKey(id: string, at: number): Promise<boolean> {
    return this.#tx(async (c) => {
      const row = await this.#get(c, 'SELECT body FROM access_keys WHERE id = $1 AND revoked_at IS NULL FOR UPDATE', [id]);
      if (!row) return false;
      const key = { ...(JSON.parse(row.body as string) as AccessKey), revokedAt: at };
      await this.#run(c, 'UPDATE access_keys SET revoked_at = $1, body = $2 WHERE id = $3', [at, JSON.stringify(key), id]);
      return true;
    });
  }

  /** Asked on every request, read every time: another process may have created or revoked a key. */
  async hasActiveKeys(): Promise<boolean> {
    return Boolean(await this.#get(this.#pool, 'SELECT 1 AS one FROM access_keys WHERE revoked_at IS NULL LIMIT 1'));
  }

  async putFunctionUrl(u: FunctionUrlRecord, create: boolean): Promise<void> {
    await this.#tx(async (c) => {
      if (!(await this.#functionExists(c, u.functionName, true))) throw notFound(u.functionName);
      const exists = await this.#get(c, 'SELECT 1 FROM function_urls WHERE function_name = $1 AND qualifier = $2', [u.functionName, u.qualifier]);
      if (create && exists) throw new ThawError('THAW_E_FUNCTION_URL_EXISTS', `function ${u.functionName}:${u.qualifier} already has a function URL`);
      if (!create && !exists) throw new ThawError('THAW_E_FUNCTION_URL_NOT_FOUND', `function ${u.functionName}:${u.qualifier} has no function URL`);
      await this.#run(c, `INSERT INTO function_urls (function_name, qualifier, url_id, body) VALUES ($1, $2, $3, $4)
        ON CONFLICT (function_name, qualifier) DO UPDATE SET url_id = excluded.url_id, body = excluded.body`, [u.functionName, u.qualifier, u.urlId, JSON.stringify(u)]);
    });
  }

  async getFunctionUrl(functionName: string, qualifier: string): Promise<FunctionUrlRecord | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM function_urls WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]);
    return row ? JSON.parse(row.body as string) as FunctionUrlRecord : null;
  }

  async getFunctionUrlById(urlId: string): Promise<FunctionUrlRecord | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM function_urls WHERE url_id = $1', [urlId]);
    return row ? JSON.parse(row.body as string) as FunctionUrlRecord : null;
  }

  async listFunctionUrls(functionName: string): Promise<FunctionUrlRecord[]> {
    return (await this.#all(this.#pool, 'SELECT body FROM function_urls WHERE function_name = $1 ORDER BY qualifier COLLATE "C"', [functionName])).map((r) => JSON.parse(r.body as string) as FunctionUrlRecord);
  }

  async deleteFunctionUrl(functionName: string, qualifier: string): Promise<boolean> {
    return await this.#run(this.#pool, 'DELETE FROM function_urls WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]) > 0;
  }

  async getResourcePolicy(functionName: string, qualifier: string): Promise<ResourcePolicy | null> {
    const row = await this.#get(this.#pool, 'SELECT body FROM resource_policies WHERE function_name = $1 AND qualifier = $2', [functionName, qualifier]);
    return row ? JSON.parse(row.body as string) as ResourcePolicy : null;
  }

  async putResourcePolicy(p: ResourcePolicy, expectedRevisionId: string | null): Promise<void> {
    await this.#tx(async (c) => {
      // The function's row lock orders concurrent puts: the revision checked is the one replaced.
      if (!(await this.#functionExists(c, p.functionName, true))) throw notFound(p.functionName);
      const current = await this.#get(c, 'SELECT revision_id FROM resource_policies WHERE function_name = $1 AND qualifier = $2', [p.functionName, p.qualifier]);
      const revision = (current?.revision_id as string | undefined) ?? null;
      if (revision !== expectedRevisionId) {
        throw new ThawError('THAW_E_REVISION_MISMATCH', `the policy of ${p.functionName}:${p.qualifier} has revision ${revision ?? '(none)'}, not ${expectedRevisionId ?? '(none)'}`);
      }
      if (p.statements.length === 0) await this.#run(c, 'DELETE FROM resource_policies WHERE function_name = $1 AND qualifier = $2', [p.functionName, p.qualifier]);
      else {
        await this.#run(c, `INSERT INTO resource_policies (function_name, qualifier, revision_id, body) VALUES ($1, $2, $3, $4)
          ON CONFLICT (function_name, qualifier) DO UPDATE SET revision_id = excluded.revision_id, body = excluded.body`, [p.functionName, p.qualifier, p.revisionId, JSON.stringify(p)]);
      }
    });
  }

  async recordCall(caller: string, callee: string, at: number): Promise<void> {
    await this.#run(this.#pool, `INSERT INTO calls (caller, callee, count, last_at) VALUES ($1, $2, 1, $3)
      ON CONFLICT (caller, callee) DO UPDATE SET count = calls.count + 1, last_at = excluded.last_at`, [caller, callee, at]);
  }

  async listCalls(caller?: string): Promise<CallEdge[]> {
    const rows = caller === undefined
      ? await this.#all(this.#pool, 'SELECT * FROM calls ORDER BY count DESC, caller COLLATE "C", callee COLLATE "C"')
      : await this.#all(this.#pool, 'SELECT * FROM calls WHERE caller = $1 ORDER BY count DESC, callee COLLATE "C"', [caller]);
    return rows.map((r) => ({ caller: r.caller as string, callee: r.callee as string, count: Number(r.count), lastAt: Number(r.last_at) }));
  }

  close(): Promise<void> {
    this.#closed ??= this.#pool.end();
    return this.#closed;
  }

  [Symbol.asyncDispose](): Promise<void> { return this.close(); }
}

/** Records by id, the last of a batch winning (INSERT … ON CONFLICT cannot touch one row twice in a statement). */
async function putInvocations(c: Queryable, recs: readonly InvocationRecord[]): Promise<void> {
  const byId = new Map(recs.map((r) => [r.id, r]));
  const list = [...byId.values()];
  const sql = `INSERT INTO invocations (id, function_name, received_at, body)
    SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[])
    ON CONFLICT (id) DO UPDATE SET function_name = excluded.function_name, received_at = excluded.received_at, body = excluded.body`;
  await c.query({ name: statementName(sql), text: sql, values: [list.map((r) => r.id), list.map((r) => r.functionName), list.map((r) => r.receivedAt), list.map((r) => JSON.stringify(r))] });
}

async function insertEvent(c: Queryable, ev: QueuedEvent): Promise<void> {
  const sql = `INSERT INTO events (id, function_name, qualifier, payload, attempts, enqueued_at, next_attempt_at, leased_until, depth)
    VALUES ($1, $2, $3, $4, $5, $6, $7, NULL, $8)`;
  await c.query({ name: statementName(sql), text: sql, values: [ev.id, ev.functionName, ev.qualifier, text(ev.payload), ev.attempts, ev.enqueuedAt, ev.nextAttemptAt, ev.depth ?? 0] });
}

/**
 * Text as PostgreSQL can keep it: it refuses NUL (0x00) in text, where SQLite keeps it. A NUL becomes U+FFFD,
 * so a log line or tag holding one is stored rather than failing its whole batch. (JSON bodies escape it.)
 */
function text(s: string): string;
function text(s: string | null): string | null;
function text(s: string | null): string | null {
  return s !== null && s.includes('\u0000') ? s.replaceAll('\u0000', '\ufffd') : s;
}

const names = new Map<string, string>();
/** A prepared statement's name, from its text: each connection prepares a statement once and reuses it. */
function statementName(sql: string): string {
  let name = names.get(sql);
  if (!name) { name = `thaw_${createHash('sha1').update(sql).digest('hex').slice(0, 16)}`; names.set(sql, name); }
  return name;
}

/** Query parameters libpq and pg read secrets from. */
const SECRET_PARAMS = /([?&](?:password|sslpassword)=)[^&#]*/gi;

/**
 * The URL with its password replaced, safe for messages and logs: the user-info password and a `password`
 * query parameter. Done on the text, since a password with an unencoded `/` or `#` makes the URL unparsable:
 * everything from the first `:` of the user info to its last `@` goes.
 */
export function redactUrl(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url)?.[0] ?? '';
  const rest = url.slice(scheme.length);
  const at = rest.lastIndexOf('@');
  const colon = rest.indexOf(':');
  const userinfo = at >= 0 && colon >= 0 && colon < at ? `${rest.slice(0, colon)}:***@` : at >= 0 ? rest.slice(0, at + 1) : '';
  return (scheme + userinfo + rest.slice(at + 1)).replace(SECRET_PARAMS, '$1***');
}

/** Errors that say the server is gone or unreachable (SQLSTATE classes 08 and 57P), not that a query is wrong. */
function connectionLost(err: unknown): boolean {
  const e = err as { code?: unknown; message?: unknown; errors?: { code?: string }[] };
  const code = typeof e?.code === 'string' ? e.code : e?.errors?.[0]?.code ?? '';
  return ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EAI_AGAIN'].includes(code) || /^08|^57P0/.test(code)
    || /Connection terminated|timeout exceeded when trying to connect|Client has encountered a connection error/i.test(String(e?.message ?? ''));
}

/** Why a connection failed, in the operator's terms, and what to check. */
function unavailable(where: string, err: unknown): ThawError {
  const e = err as { code?: string; message?: string; errors?: { code?: string }[] };
  const code = e.code ?? e.errors?.[0]?.code;
  const why = code === 'ECONNREFUSED' ? 'the connection was refused; check that PostgreSQL is running there and listens on that host and port'
    : code === 'ENOTFOUND' || code === 'EAI_AGAIN' ? 'the host name does not resolve; check the host in the URL'
    : code === '28P01' || code === '28000' ? `${e.message}; check the user and password in the URL (and pg_hba.conf)`
    : code === '3D000' ? `${e.message}; create it (CREATE DATABASE) or name an existing one in the URL`
    : `${e.message || String(err)}; check that the server is reachable from this host`;
  return new ThawError('THAW_E_STORE_UNAVAILABLE', `cannot use the PostgreSQL store at ${where}: ${why}`, { cause: err });
}
