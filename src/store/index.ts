// The store: functions, versions, aliases, invocation records, logs, the event queue and the call graph.
// Public entry of src/store; imports src/core. `openStore` picks the implementation from a spec string.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ThawError } from '../core/errors.ts';
import { SqliteStore } from './sqlite.ts';
import { PostgresStore, redactUrl } from './postgres.ts';
import type { Store } from './types.ts';

export type { Store, InvocationQuery, LogQuery, CallEdge } from './types.ts';
export { SqliteStore } from './sqlite.ts';
export { PostgresStore, redactUrl } from './postgres.ts';

/** Whether the spec names a store several processes share (PostgreSQL) rather than one a node owns (a file). */
export function isSharedStore(spec: string): boolean {
  return /^postgres(ql)?:\/\//i.test(spec);
}

/** A file path, `sqlite:PATH` or `:memory:`; or a `postgres://` / `postgresql://` URL. */
export async function openStore(spec: string): Promise<Store> {
  if (isSharedStore(spec)) return PostgresStore.open(spec);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new ThawError('THAW_E_CONFIG_INVALID', `unknown store ${JSON.stringify(redactUrl(spec))}; give a SQLite file path (or sqlite:PATH) or a postgres:// URL`);
  }
  const path = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec;
  if (path === '') throw new ThawError('THAW_E_CONFIG_INVALID', 'the store path is empty; give a SQLite file path');
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  return SqliteStore.open(path);
}
