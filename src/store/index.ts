// The store: functions, versions, aliases, invocation records, logs, the event queue and the call graph.
// Public entry of src/store; imports src/core. `openStore` picks the implementation from a spec string.
import { mkdirSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { ThawError } from '../core/errors.ts';
import { SqliteStore } from './sqlite.ts';
import type { Store } from './types.ts';

export type { Store, InvocationQuery, LogQuery, CallEdge } from './types.ts';
export { SqliteStore } from './sqlite.ts';

/** A file path, `sqlite:PATH` or `:memory:`. PostgreSQL arrives with the cluster work. */
export async function openStore(spec: string): Promise<Store> {
  if (/^postgres(ql)?:\/\//i.test(spec)) {
    throw new ThawError('THAW_E_CONFIG_INVALID', 'PostgreSQL store is not available yet; use a SQLite path');
  }
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(spec)) {
    throw new ThawError('THAW_E_CONFIG_INVALID', `unknown store ${JSON.stringify(spec)}; give a SQLite file path (or sqlite:PATH)`);
  }
  const path = spec.startsWith('sqlite:') ? spec.slice('sqlite:'.length) : spec;
  if (path === '') throw new ThawError('THAW_E_CONFIG_INVALID', 'the store path is empty; give a SQLite file path');
  if (path !== ':memory:') mkdirSync(dirname(resolve(path)), { recursive: true });
  return SqliteStore.open(path);
}
